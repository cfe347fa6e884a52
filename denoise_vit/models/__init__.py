"""Every model module is imported here so that its `register_model` runs."""
from . import framewise_vit, video_denoiser, vit_denoiser  # noqa: F401
from . import cnn, temporal_cnn, vit_unet  # noqa: F401
from . import peers  # noqa: F401  (registers the adapters; their libraries load when built)
