"""The per-frame baseline: the image ViT denoiser applied to every frame of a clip on its own."""
from einops import rearrange
from ..errors import ConfigError
from ..registry import register_model
from .base import DenoisingModel
from .vit_denoiser import ViTDenoiser, ViTDenoiserConfig


@register_model("framewise_vit", ViTDenoiserConfig)
class FramewiseViT(DenoisingModel):
    """Clip (B, C, T, H, W) -> (B, C, T, H, W), each frame denoised by one `ViTDenoiser`.

    No token ever sees another frame, so this is what the video models must beat: anything
    they gain comes from looking across time. Same keys as `vit_denoiser`.
    """

    def __init__(self, config: ViTDenoiserConfig):
        super().__init__()
        self.config = config
        self.frame_model = ViTDenoiser(config)

    @property
    def facts(self):
        """An image model: inference runs `plane_model()` on each plane of a stack."""
        return self.frame_model.facts

    def plane_model(self):
        return self.frame_model

    def check_input(self, x):
        if x.ndim != 5:
            raise ConfigError(f"framewise_vit expects clips (B, C, T, H, W), got shape "
                              f"{tuple(x.shape)}; for single images use vit_denoiser")

    def forward_features(self, x):
        """(B, C, T, H, W) -> tokens (B, T, ns, D), as the video models (nt = T)."""
        self.check_input(x)
        tokens = self.frame_model.forward_features(rearrange(x, "b c t h w -> (b t) c h w"))
        return rearrange(tokens, "(b t) s d -> b t s d", b=x.shape[0])

    def forward(self, x):
        self.check_input(x)
        out = self.frame_model(rearrange(x, "b c t h w -> (b t) c h w"))
        return rearrange(out, "(b t) c h w -> b c t h w", b=x.shape[0])
