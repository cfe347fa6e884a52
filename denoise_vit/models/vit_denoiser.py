"""The course's ViT denoiser, generalised: patch embedding, pre-norm encoder, pixel decoder."""
from dataclasses import dataclass
from typing import Tuple, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..layers import Block, ConvStem, PatchEmbed, PosEmbed2d
from ..layers.timm_parts import trunc_normal_
from ..registry import register_model
from .base import (DenoisingModel, ModelFacts, check_config, check_output, init_output,
                   compose_output, image_size, output_chans)
from .decoders import build_decoder, stem_skip_chans, stem_skips


EMBEDS = ("patch", "conv_stem")


def check_embed_and_decoder(cfg, embeds):
    """The embed / decoder keys shared by the image and the video ViTs: one message each."""
    if cfg.decoder_width < 0:
        raise ConfigError(f"decoder_width must be 0 (embed_dim) or positive, not "
                          f"{cfg.decoder_width!r}")
    if cfg.embed not in embeds:
        raise ConfigError(f"embed must be one of {embeds}, not {cfg.embed!r}")
    if cfg.stem_skips and cfg.embed != "conv_stem":
        raise ConfigError("stem_skips needs embed='conv_stem'")
    if (cfg.stem_skips or cfg.image_skip or cfg.decoder_width) and cfg.decoder != "conv":
        raise ConfigError("stem_skips, image_skip and decoder_width need decoder='conv'")
    if cfg.image_skip and cfg.patch_size == 1:
        raise ConfigError("image_skip needs patch_size > 1 (the decoder has no up-stage)")


@dataclass
class ViTDenoiserConfig:
    """Course preset by default: 64x64, 1 channel, patch 8, width 32, 4 heads, MLP x4, 12 layers."""
    img_size: Union[int, Tuple[int, int]] = 64
    patch_size: int = 8
    in_chans: int = 1
    embed_dim: int = 32
    depth: int = 12                  # 0: no blocks (the tokens go from the stem to the decoder)
    num_heads: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    pos_embed: str = "learned"       # "learned" | "sincos"
    decoder: str = "conv"            # "conv" | "linear"
    embed: str = "patch"             # "patch" (one p x p Conv2d) | "conv_stem" (stride-2 convs)
    decoder_width: int = 0           # conv decoder: channels of its first stage (0: embed_dim)
    stem_skips: bool = False         # conv decoder gets the conv stem's maps (U-Net-like skips)
    stem_full_res: int = 0           # conv stem: a stride-1 stage of this many channels first,
                                     # its full-resolution map a skip of the decoder's last stage
    image_skip: bool = False         # conv decoder gets the input image at full resolution
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    fused_attn: bool = True
    residual: bool = False           # predict the clutter and subtract it from the input
    gate: bool = False               # predict a gate and an offset: sigmoid(g) * input + b
    attention: bool = True           # False: MLP-only blocks (the attention ablation)
    attention_every: int = 1         # attention in every k-th block only (k, 2k, ...); the
                                     # others MLP-only: attention at a fraction of its cost
    qk_norm: bool = False            # LayerNorm on each head's queries and keys
    distance_bias: bool = False      # attention logits - slope_h x token distance (2-D ALiBi)
    rel_pos_bias: bool = False       # attention logits + a learned table per offset (Swin)
    layer_scale: float = 0.0         # LayerScale on the blocks' branches from this value (0: off)
    zero_init_out: bool = False      # the decoder's output layer starts at zero (predicts 0)

    def __post_init__(self):
        self.img_size = image_size(self.img_size)
        check_config(self, positive=("patch_size", "in_chans", "embed_dim", "num_heads",
                                     "attention_every"),
                     nonnegative=("depth", "layer_scale"),
                     fractions=("drop_rate", "attn_drop_rate", "drop_path_rate"),
                     positive_numbers=("mlp_ratio",))
        check_embed_and_decoder(self, EMBEDS)
        check_output(self)
        if self.gate and self.decoder != "conv":   # the gate channels are the conv's first ones
            raise ConfigError("gate needs decoder='conv'")
        if self.stem_full_res < 0:
            raise ConfigError(f"stem_full_res must be channels (0: none), not {self.stem_full_res!r}")
        if self.stem_full_res and not (self.embed == "conv_stem" and self.stem_skips):
            raise ConfigError("stem_full_res needs embed='conv_stem' and stem_skips=true")
        if self.stem_full_res and self.image_skip:
            raise ConfigError("stem_full_res and image_skip both feed the decoder's last stage: "
                              "choose one")
        h, w = self.img_size
        if h % self.patch_size or w % self.patch_size:
            raise ConfigError(f"img_size {h}x{w} is not divisible by patch_size {self.patch_size}")


class ViTEncoder(nn.Module):
    """(B, C, H, W) -> tokens (B, N, D), N = (H/p)(W/p): embed, add positions, blocks, norm."""

    def __init__(self, cfg: ViTDenoiserConfig):
        super().__init__()
        self.patch_size = cfg.patch_size
        if cfg.embed == "conv_stem":
            self.patch_embed = ConvStem(cfg.patch_size, cfg.in_chans, cfg.embed_dim,
                                        full_res=cfg.stem_full_res)
        else:
            self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        grid = (cfg.img_size[0] // cfg.patch_size, cfg.img_size[1] // cfg.patch_size)
        self.pos_embed = PosEmbed2d(grid, cfg.embed_dim, cfg.pos_embed)
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth).tolist()  # stochastic depth decay
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
                  drop=cfg.drop_rate, attn_drop=cfg.attn_drop_rate, drop_path=rate,
                  fused_attn=cfg.fused_attn,
                  attention=cfg.attention and (i + 1) % cfg.attention_every == 0,
                  qk_norm=cfg.qk_norm, layer_scale=cfg.layer_scale,
                  distance_bias=cfg.distance_bias,
                  rel_pos_grid=grid if cfg.rel_pos_bias else None)
            for i, rate in enumerate(rates))
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def grid_of(self, x):
        h, w = x.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            raise ConfigError(f"input size {h}x{w} is not divisible by patch_size {p}; "
                              "pad it to a multiple of the patch first")
        return h // p, w // p

    def forward(self, x, stem_maps=False):
        """Tokens; with `stem_maps` (conv stem only) also the stem's maps, finest first."""
        grid = self.grid_of(x)
        x, maps = self.patch_embed(x, features=True) if stem_maps else (self.patch_embed(x), None)
        x = self.pos_drop(self.pos_embed(x, grid))
        for block in self.blocks:
            x = block(x, grid)
        return (self.norm(x), maps) if stem_maps else self.norm(x)


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
class ViTDenoiser(DenoisingModel):
    """Image denoiser (B, C, H, W) -> (B, C, H, W), for any H, W divisible by the patch.

    `forward_features` gives the encoder tokens (B, N, D). Sizes other than `img_size` work
    through position-embedding interpolation.
    """

    def __init__(self, config: ViTDenoiserConfig):
        super().__init__()
        self.config = config
        self.encoder = ViTEncoder(config)
        self.decoder = build_decoder(config.decoder, config.embed_dim, config.patch_size,
                                     output_chans(config), width=config.decoder_width,
                                     skip_chans=self.skip_chans())
        self.encoder.apply(init_weights)
        self.decoder.apply(init_weights)
        init_output(self.decoder.out if config.decoder == "conv" else self.decoder.head, config)

    @property
    def facts(self):
        p = self.config.patch_size
        return ModelFacts("image", self.config.in_chans, (p, p), tuple(self.config.img_size))

    def forward_features(self, x):
        """(B, C, H, W) -> tokens (B, N, D)."""
        self.check_input(x)
        return self.encoder(x)

    def skip_chans(self):
        """Channels joining each decoder stage (coarsest first): stem maps, then the image."""
        cfg = self.config
        if cfg.decoder != "conv":
            return None
        return stem_skip_chans(cfg.patch_size,
                               self.encoder.patch_embed.channels if cfg.stem_skips else None,
                               cfg.in_chans if cfg.image_skip else 0)

    def forward(self, x):
        self.check_input(x)
        grid = self.encoder.grid_of(x)
        if self.config.stem_skips:
            tokens, maps = self.encoder(x, stem_maps=True)
        else:
            tokens, maps = self.encoder(x), None
        # the conv decoder uses those it was built for (skip_chans); the linear one none
        out = self.decoder(tokens, grid, stem_skips(maps, x))
        return compose_output(x, out, self.config)
