"""A U-Net whose bottleneck is a transformer (TransUNet, Chen et al. 2021, at the course's size).

The project's U-Net (`models.cnn.UNet`) spends most of its work at full and half resolution,
where local detail is restored, and has a double conv at its coarsest level. Here that coarsest
double conv is replaced by a transformer over the 8 x 8 map (64 tokens for a 64 x 64 image):
every position of the image can draw on every other, which the convolutions see only through
their receptive field. The rest of the U-Net, its skips and its decoder, is unchanged, so the
preset against `unet` asks whether attention at the bottleneck beats a conv there, and the
preset against itself with `attention=false` (MLP-only blocks) what attention adds.

For experiments (issue 11; docs/VARIANTS.md, rounds 6-8), attention can also go where the
U-Net restores detail: `axial_levels` adds axial-attention blocks (`layers.AxialBlock`, each
position attending along its row and its column) after the encoder's double conv at those
levels, and `bottleneck = "conv"` keeps the U-Net's coarsest double conv, so that a network's
attention is all axial. No preset uses them: no such network with attention beat the U-Net.
`mdta_levels` adds Restormer's blocks instead (`layers.TransposedAttentionBlock`: attention
across channels, whose cost grows with the map's size, not its square; round 18), at any level
including the coarsest when `bottleneck = "conv"`.
"""
from dataclasses import dataclass
from typing import Tuple, Union

from einops import rearrange
from torch import nn

from ..errors import ConfigError
from ..layers import AxialBlock, Block, PosEmbed2d
from ..layers.transposed_attention import TransposedAttentionBlock
from ..layers.norms import BatchNorm2d
from ..registry import register_model
from .base import (DenoisingModel, ModelFacts, check_config, compose_output, image_size,
                   init_output)
from .cnn import UNet
from .vit_denoiser import init_weights


@dataclass
class ViTUNetConfig:
    """U-Net levels as `unet_denoiser` (16 base channels, 3 down-samplings); the coarsest level
    a transformer of `depth` blocks whose width is the U-Net's there (16 * 2**3 = 128)."""
    img_size: Union[int, Tuple[int, int]] = 64
    in_chans: int = 1
    base_channels: int = 16
    levels: int = 3                  # 2x down-samplings; tokens at 1 / 2**levels resolution
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    pos_embed: str = "learned"       # "learned" | "sincos"
    drop_path_rate: float = 0.0
    fused_attn: bool = True
    attention: bool = True           # False: MLP-only blocks (the attention ablation)
    qk_norm: bool = False            # LayerNorm on each head's queries and keys
    layer_scale: float = 0.0         # LayerScale on the blocks' branches from this value (0: off)
    residual: bool = False           # predict the clutter and subtract it from the input
    zero_init_out: bool = False      # the output conv starts at zero, as unet_denoiser's
    # "transformer": the coarsest double conv becomes a TransformerBottleneck; "conv": it
    # stays the U-Net's (a network whose attention is all in its axial blocks)
    bottleneck: str = "transformer"
    # axial attention (layers.AxialBlock) after the encoder's double conv at these levels
    # (0: full resolution, 16 channels; 1: half, 32; ...), `axial_depth` blocks at each; their
    # residual branches start at zero (the output projections zero-initialised), so the
    # network starts as it would without them and attention can only add
    axial_levels: Tuple[int, ...] = ()
    axial_depth: int = 1
    axial_heads: int = 2
    axial_mlp_ratio: float = 2.0
    # Restormer blocks (layers.TransposedAttentionBlock) after the encoder's double conv at
    # these levels (the coarsest, `levels`, only with bottleneck = "conv"), `mdta_depth` at
    # each, heads of `mdta_head_dim` channels; their branches start at zero as the axial ones
    mdta_levels: Tuple[int, ...] = ()
    mdta_depth: int = 1
    mdta_head_dim: int = 32
    mdta_ffn_expansion: float = 2.66

    def __post_init__(self):
        self.img_size = image_size(self.img_size)
        check_config(self, positive=("in_chans", "base_channels", "levels", "depth",
                                     "num_heads", "axial_depth", "axial_heads", "mdta_depth",
                                     "mdta_head_dim"),
                     nonnegative=("layer_scale",),
                     fractions=("drop_path_rate",),
                     positive_numbers=("mlp_ratio", "axial_mlp_ratio", "mdta_ffn_expansion"))
        if self.bottleneck not in ("transformer", "conv"):
            raise ConfigError(f"bottleneck must be 'transformer' or 'conv', got {self.bottleneck!r}")
        levels = self.axial_levels
        if (not isinstance(levels, (list, tuple))
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in levels)
                or any(not 0 <= v < self.levels for v in levels) or len(set(levels)) < len(levels)):
            raise ConfigError(f"axial_levels must be distinct levels in 0..{self.levels - 1} "
                              f"(below the transformer bottleneck), got {levels!r}")
        self.axial_levels = tuple(levels)
        top = self.levels if self.bottleneck == "conv" else self.levels - 1
        levels = self.mdta_levels
        if (not isinstance(levels, (list, tuple))
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in levels)
                or any(not 0 <= v <= top for v in levels) or len(set(levels)) < len(levels)):
            raise ConfigError(f"mdta_levels must be distinct levels in 0..{top} (the coarsest, "
                              f"{self.levels}, only with bottleneck = 'conv'), got {levels!r}")
        self.mdta_levels = tuple(levels)
        for v in self.axial_levels:
            if (self.base_channels * 2 ** v) % self.axial_heads:
                raise ConfigError(f"the width at axial level {v}, {self.base_channels * 2 ** v}, "
                                  f"is not divisible by axial_heads {self.axial_heads}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"the bottleneck width base_channels * 2**levels = {self.embed_dim} "
                              f"is not divisible by num_heads {self.num_heads}")
        m = 2 ** self.levels
        h, w = self.img_size
        if h % m or w % m:
            raise ConfigError(f"img_size {h}x{w} is not divisible by 2**levels = {m}")

    @property
    def embed_dim(self):
        return self.base_channels * 2 ** self.levels


class TransformerBottleneck(nn.Module):
    """(B, C_in, h, w) -> (B, D, h, w): conv3x3 -> BN -> ReLU to D channels (each token sees
    its 3 x 3 neighbourhood, as the double conv it replaces), position embedding, pre-norm
    blocks over the h*w tokens, LayerNorm, back to a map."""

    def __init__(self, in_ch, cfg: ViTUNetConfig):
        super().__init__()
        d = cfg.embed_dim
        self.embed = nn.Sequential(nn.Conv2d(in_ch, d, 3, padding=1, bias=False),
                                   BatchNorm2d(d), nn.ReLU(inplace=True))
        m = 2 ** cfg.levels
        self.pos_embed = PosEmbed2d((cfg.img_size[0] // m, cfg.img_size[1] // m), d,
                                    cfg.pos_embed)
        rates = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(
            Block(d, cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
                  drop_path=rate, fused_attn=cfg.fused_attn, attention=cfg.attention,
                  qk_norm=cfg.qk_norm, layer_scale=cfg.layer_scale)
            for rate in rates)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        grid = x.shape[-2:]
        x = rearrange(self.embed(x), "b d h w -> b (h w) d")
        x = self.pos_embed(x, grid)
        for block in self.blocks:
            x = block(x)
        return rearrange(self.norm(x), "b (h w) d -> b d h w", h=grid[0], w=grid[1])


@register_model("vit_unet", ViTUNetConfig)
class ViTUNet(UNet, DenoisingModel):
    """`UNet` with its coarsest double conv replaced by a `TransformerBottleneck`,
    (B, C, H, W) -> (B, C, H, W) for any H, W (padded to a multiple of 2**levels inside)."""

    def __init__(self, config: ViTUNetConfig):
        super().__init__(config.in_chans, config.in_chans, config.base_channels, config.levels)
        self.config = config
        if config.bottleneck == "transformer":
            self.down[-1] = TransformerBottleneck(
                config.base_channels * 2 ** (config.levels - 1), config)
            self.down[-1].apply(init_weights)
        for level in config.axial_levels:   # the level's double conv, then its axial blocks
            width = config.base_channels * 2 ** level
            blocks = [AxialBlock(width, config.axial_heads, mlp_ratio=config.axial_mlp_ratio,
                                 qkv_bias=config.qkv_bias, fused_attn=config.fused_attn,
                                 attention=config.attention)
                      for _ in range(config.axial_depth)]
            for block in blocks:
                block.apply(init_weights)
                block.zero_branches()
            self.down[level] = nn.Sequential(self.down[level], *blocks)
        for level in config.mdta_levels:    # the level's stage, then its Restormer blocks
            width = config.base_channels * 2 ** level
            blocks = [TransposedAttentionBlock(width, max(1, width // config.mdta_head_dim),
                                               ffn_expansion=config.mdta_ffn_expansion,
                                               attention=config.attention)
                      for _ in range(config.mdta_depth)]
            for block in blocks:
                block.apply(init_weights)
                block.zero_branches()
            self.down[level] = nn.Sequential(self.down[level], *blocks)
        init_output(self.out, config)

    @property
    def facts(self):
        m = 2 ** self.config.levels
        return ModelFacts("image", self.config.in_chans, (m, m), tuple(self.config.img_size))

    def forward(self, x):
        self.check_input(x)
        out = self.unet(x)
        return compose_output(x, out, self.config)
