"""The course's ViT denoiser, generalised: patch embedding, pre-norm encoder, pixel decoder."""
from dataclasses import dataclass
from typing import Tuple, Union

import torch
from timm.layers import trunc_normal_
from torch import nn

from ..errors import ConfigError
from ..layers import Block, PatchEmbed, PosEmbed2d
from ..registry import register_model
from .decoders import build_decoder


def to_2tuple(size):
    if isinstance(size, int):
        return (size, size)
    size = tuple(size)
    if len(size) != 2:
        raise ConfigError(f"img_size must be an int or (height, width), not {size!r}")
    return size


@dataclass
class ViTDenoiserConfig:
    """Course preset by default: 64x64, 1 channel, patch 8, width 32, 4 heads, MLP x4, 12 layers."""
    img_size: Union[int, Tuple[int, int]] = 64
    patch_size: int = 8
    in_chans: int = 1
    embed_dim: int = 32
    depth: int = 12
    num_heads: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    pos_embed: str = "learned"       # "learned" | "sincos"
    decoder: str = "conv"            # "conv" | "linear"
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    fused_attn: bool = True
    residual: bool = False           # predict the clutter and subtract it from the input

    def __post_init__(self):
        self.img_size = to_2tuple(self.img_size)
        for key in ("patch_size", "in_chans", "embed_dim", "depth", "num_heads"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, not {value!r}")
        h, w = self.img_size
        if h % self.patch_size or w % self.patch_size:
            raise ConfigError(f"img_size {h}x{w} is not divisible by patch_size {self.patch_size}")


class ViTEncoder(nn.Module):
    """(B, C, H, W) -> tokens (B, N, D), N = (H/p)(W/p): embed, add positions, blocks, norm."""

    def __init__(self, cfg: ViTDenoiserConfig):
        super().__init__()
        self.patch_size = cfg.patch_size
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        grid = (cfg.img_size[0] // cfg.patch_size, cfg.img_size[1] // cfg.patch_size)
        self.pos_embed = PosEmbed2d(grid, cfg.embed_dim, cfg.pos_embed)
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth).tolist()  # stochastic depth decay
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
                  drop=cfg.drop_rate, attn_drop=cfg.attn_drop_rate, drop_path=rate,
                  fused_attn=cfg.fused_attn)
            for rate in rates)
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def grid_of(self, x):
        h, w = x.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            raise ConfigError(f"input size {h}x{w} is not divisible by patch_size {p}; "
                              "pad it to a multiple of the patch first")
        return h // p, w // p

    def forward(self, x):
        grid = self.grid_of(x)
        x = self.pos_drop(self.pos_embed(self.patch_embed(x), grid))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def init_weights(module):
    """The course's init: trunc-normal(0.02) linear weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


@register_model("vit_denoiser", ViTDenoiserConfig)
class ViTDenoiser(nn.Module):
    """Image denoiser (B, C, H, W) -> (B, C, H, W), for any H, W divisible by the patch.

    `forward_features` gives the encoder tokens (B, N, D). Sizes other than `img_size` work
    through position-embedding interpolation.
    """

    def __init__(self, config: ViTDenoiserConfig):
        super().__init__()
        self.config = config
        self.encoder = ViTEncoder(config)
        self.decoder = build_decoder(config.decoder, config.embed_dim, config.patch_size,
                                     config.in_chans)
        self.encoder.apply(init_weights)
        self.decoder.apply(init_weights)

    def check_input(self, x):
        if x.ndim != 4:
            raise ConfigError(f"vit_denoiser expects images (B, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.config.in_chans:
            raise ConfigError(f"vit_denoiser was built for {self.config.in_chans} channel(s), "
                              f"got {x.shape[1]}")

    def forward_features(self, x):
        """(B, C, H, W) -> tokens (B, N, D)."""
        self.check_input(x)
        return self.encoder(x)

    def forward(self, x):
        tokens = self.forward_features(x)
        out = self.decoder(tokens, self.encoder.grid_of(x))
        return x - out if self.config.residual else out
