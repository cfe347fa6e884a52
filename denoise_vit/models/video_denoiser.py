"""Video denoisers: ViViT Models 1-4 and TimeSformer's divided attention on noisy clips.

Clip (B, C, T, H, W) -> tubelet embedding -> tokens (B, nt, ns, D) + space-time positions ->
layers (`layers.SpaceTimeBlock`, the image model's Attention and Mlp) -> LayerNorm -> the image
model's decoder on every tubelet, which predicts its t frames as t output channels -> clip.

`embed="conv_stem"` (tubelet 1) is the image lesson of docs/BENCHMARKS.md applied to video: the
image model's `layers.ConvStem` embeds every frame, and with `stem_skips` its maps feed the
per-frame conv decoder as U-Net-like skips (`image_skip`: the input frames too), exactly as in
`vit_denoiser`.

The variants differ only in which tokens attend to which (`VARIANTS`; the einops patterns are
in `layers.token_groups`):

    joint                      all nt*ns tokens together                        ViViT Model 1
    factorised_encoder         Ls spatial layers (per frame), then Lt temporal    ViViT Model 2
                               layers (across frames at each position: dense output)
    factorised_self_attention  spatial attention, temporal attention, MLP        ViViT Model 3
    factorised_dot_product     half the heads within the frame, half across      ViViT Model 4
                               frames at the same position, one projection, MLP
    divided_space_time         temporal attention + temporal_fc, spatial, MLP    TimeSformer
"""
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
from einops import rearrange
from torch import nn

from ..errors import ConfigError
from ..layers import ConvStem, PosEmbedSpaceTime, SpaceTimeBlock, TubeletEmbed
from ..registry import register_model
from .base import DenoisingModel, ModelFacts, check_config, compose_output, image_size
from .decoders import build_decoder, stem_skip_chans, stem_skips
from .vit_denoiser import check_embed_and_decoder, init_weights

EMBEDS = ("tubelet", "conv_stem")

VARIANTS = {  # variant -> token mixers of one layer (factorised_encoder: see `layer_mixings`)
    "joint": ("joint",),
    "factorised_encoder": None,
    "factorised_self_attention": ("space", "time"),
    "factorised_dot_product": ("split_heads",),
    "divided_space_time": ("time", "space"),
}


@dataclass
class VideoDenoiserConfig:
    """Course widths by default (patch 8, width 32, 4 heads, MLP x4, 12 layers) on 8-frame clips.

    factorised_encoder uses spatial_depth + temporal_depth layers instead of depth; left unset,
    they split depth 2:1 (12 -> 8 + 4, the ratio of ViViT-B's 12 + 4 rounded to a total of 12).
    """
    variant: str = "divided_space_time"
    img_size: Union[int, Tuple[int, int]] = 64
    patch_size: int = 8
    in_chans: int = 1
    num_frames: int = 8
    tubelet_size: int = 1            # frames per token; 1 = ViViT's uniform frame sampling
    embed_dim: int = 32
    depth: int = 12
    spatial_depth: Optional[int] = None    # factorised_encoder only
    temporal_depth: Optional[int] = None   # factorised_encoder only
    num_heads: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    pos_embed: str = "learned"       # "learned" | "sincos"
    pos_embed_layout: str = "separate"   # "separate" (space + time, shared) | "joint" (per token)
    decoder: str = "conv"            # "conv" | "linear", run on every tubelet
    embed: str = "tubelet"           # "tubelet" (one Conv3d) | "conv_stem" (per frame, tubelet 1)
    decoder_width: int = 0           # conv decoder: channels of its first stage (0: embed_dim)
    stem_skips: bool = False         # conv decoder gets the conv stem's maps of its frame
    image_skip: bool = False         # conv decoder gets the input frames at full resolution
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    fused_attn: bool = True
    residual: bool = False           # predict the clutter and subtract it from the input

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {self.variant!r}; valid variants: "
                              f"{', '.join(VARIANTS)}")
        self.img_size = image_size(self.img_size)
        check_config(self, positive=("patch_size", "in_chans", "embed_dim", "depth", "num_heads",
                                     "num_frames", "tubelet_size"),
                     fractions=("drop_rate", "attn_drop_rate", "drop_path_rate"),
                     positive_numbers=("mlp_ratio",))
        h, w = self.img_size
        if h % self.patch_size or w % self.patch_size:
            raise ConfigError(f"img_size {h}x{w} is not divisible by patch_size {self.patch_size}")
        if self.num_frames % self.tubelet_size:
            raise ConfigError(f"num_frames {self.num_frames} is not divisible by tubelet_size "
                              f"{self.tubelet_size}")
        check_embed_and_decoder(self, EMBEDS)
        if self.embed == "conv_stem" and self.tubelet_size != 1:
            raise ConfigError("embed='conv_stem' embeds every frame on its own: it needs "
                              f"tubelet_size=1 (got {self.tubelet_size})")
        self._resolve_factorised_depths()

    def _resolve_factorised_depths(self):
        given = [k for k in ("spatial_depth", "temporal_depth") if getattr(self, k) is not None]
        if self.variant != "factorised_encoder":
            if given:
                raise ConfigError(f"{' and '.join(given)} apply to variant='factorised_encoder' "
                                  f"only; {self.variant} has depth layers")
            return
        if self.spatial_depth is None and self.temporal_depth is None:
            if self.depth < 2:
                raise ConfigError("factorised_encoder needs depth >= 2 (a spatial and a temporal "
                                  "encoder), or spatial_depth and temporal_depth")
            self.temporal_depth = max(1, self.depth // 3)
        if self.spatial_depth is None:
            self.spatial_depth = max(1, self.depth - self.temporal_depth)
        if self.temporal_depth is None:
            self.temporal_depth = max(1, self.depth - self.spatial_depth)
        check_config(self, positive=("spatial_depth", "temporal_depth"))


def layer_mixings(cfg):
    """The token mixers of every layer, in order: a list of tuples of MIXINGS names."""
    if cfg.variant == "factorised_encoder":
        return [("space",)] * cfg.spatial_depth + [("time",)] * cfg.temporal_depth
    return [VARIANTS[cfg.variant]] * cfg.depth


class VideoEncoder(nn.Module):
    """(B, C, T, H, W) -> tokens (B, nt, ns, D): tubelets, positions, layers, final norm."""

    def __init__(self, cfg: VideoDenoiserConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.embed == "conv_stem":
            self.stem = ConvStem(cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        else:
            self.tubelet_embed = TubeletEmbed(cfg.tubelet_size, cfg.patch_size, cfg.in_chans,
                                              cfg.embed_dim)
        grid = (cfg.img_size[0] // cfg.patch_size, cfg.img_size[1] // cfg.patch_size)
        self.pos_embed = PosEmbedSpaceTime(cfg.num_frames // cfg.tubelet_size, grid,
                                           cfg.embed_dim, cfg.pos_embed, cfg.pos_embed_layout)
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        mixings = layer_mixings(cfg)
        rates = torch.linspace(0, cfg.drop_path_rate, len(mixings)).tolist()
        self.blocks = nn.ModuleList(
            SpaceTimeBlock(cfg.embed_dim, cfg.num_heads, mixing,
                           temporal_fc=cfg.variant == "divided_space_time",
                           mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, drop=cfg.drop_rate,
                           attn_drop=cfg.attn_drop_rate, drop_path=rate, fused_attn=cfg.fused_attn)
            for mixing, rate in zip(mixings, rates))
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def grid_of(self, x):
        """(nt, (gh, gw)) of a clip, with one clear error for each way it cannot be tokenised."""
        cfg = self.cfg
        if x.ndim != 5:
            raise ConfigError(f"video_denoiser expects clips (B, C, T, H, W), got shape "
                              f"{tuple(x.shape)}; a single image is a one-frame clip "
                              "(x.unsqueeze(2) with tubelet_size 1)")
        if x.shape[1] != cfg.in_chans:
            raise ConfigError(f"video_denoiser was built for {cfg.in_chans} channel(s), "
                              f"got {x.shape[1]}")
        t, h, w = x.shape[2:]
        if t % cfg.tubelet_size:
            raise ConfigError(f"clip of {t} frames is not divisible by tubelet_size "
                              f"{cfg.tubelet_size}; trim or pad it to a multiple")
        p = cfg.patch_size
        if h % p or w % p:
            raise ConfigError(f"input size {h}x{w} is not divisible by patch_size {p}; "
                              "pad it to a multiple of the patch first")
        return t // cfg.tubelet_size, (h // p, w // p)

    def embed(self, x):
        """Clip -> (tokens (B, nt, ns, D), the conv stem's maps per frame or None)."""
        if self.cfg.embed != "conv_stem":
            return self.tubelet_embed(x), None
        tokens, maps = self.stem(rearrange(x, "b c t h w -> (b t) c h w"), features=True)
        return rearrange(tokens, "(b t) s d -> b t s d", b=x.shape[0]), maps

    def forward(self, x, stem_maps=False):
        """Tokens; with `stem_maps` also the conv stem's maps ((B T, c, h, w), finest first)."""
        _, grid = self.grid_of(x)
        x, maps = self.embed(x)
        x = self.pos_drop(self.pos_embed(x, grid))
        for block in self.blocks:
            x = block(x)
        return (self.norm(x), maps) if stem_maps else self.norm(x)


@register_model("video_denoiser", VideoDenoiserConfig)
class VideoDenoiser(DenoisingModel):
    """Clip denoiser (B, C, T, H, W) -> (B, C, T, H, W) for any T divisible by the tubelet and
    H, W divisible by the patch (position embeddings interpolate to other sizes).

    `forward_features` gives the encoder tokens (B, nt, ns, D).
    """

    def __init__(self, config: VideoDenoiserConfig):
        super().__init__()
        self.config = config
        self.encoder = VideoEncoder(config)
        # the image decoder on every tubelet; its t frames come out as t x C channels
        chans = config.in_chans * config.tubelet_size
        skip_chans = None
        if config.decoder == "conv":
            skip_chans = stem_skip_chans(
                config.patch_size, self.encoder.stem.channels if config.stem_skips else None,
                chans if config.image_skip else 0)
        self.decoder = build_decoder(config.decoder, config.embed_dim, config.patch_size, chans,
                                     width=config.decoder_width, skip_chans=skip_chans)
        self.encoder.apply(init_weights)
        self.decoder.apply(init_weights)
        for block in self.encoder.blocks:  # TimeSformer: temporal_fc starts at zero
            block.zero_temporal_fc()

    @property
    def facts(self):
        cfg = self.config
        return ModelFacts("video", cfg.in_chans, (cfg.tubelet_size, cfg.patch_size, cfg.patch_size),
                          (cfg.num_frames, *cfg.img_size))

    def forward_features(self, x):
        """(B, C, T, H, W) -> tokens (B, nt, ns, D)."""
        return self.encoder(x)

    def forward(self, x):
        _, grid = self.encoder.grid_of(x)
        tokens, maps = self.encoder(x, stem_maps=True)
        pt = self.config.tubelet_size
        image = rearrange(x, "b c (nt pt) h w -> (b nt) (c pt) h w", pt=pt)
        # the conv decoder uses the skips it was built for (skip_chans); the linear one none
        frames = self.decoder(rearrange(tokens, "b nt s d -> (b nt) s d"), grid,
                              stem_skips(maps, image))
        out = rearrange(frames, "(b nt) (c pt) h w -> b c (nt pt) h w", b=x.shape[0],
                        pt=self.config.tubelet_size)
        return compose_output(x, out, self.config)
