"""Every model module is imported here so that its `register_model` runs."""
from . import vit_denoiser  # noqa: F401
from . import cnn  # noqa: F401
