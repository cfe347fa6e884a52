"""Decoders from a grid of tokens back to pixels."""
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..errors import ConfigError
from ..layers.norms import BatchNorm2d

DECODERS = ("conv", "linear")


class DoubleConv(nn.Sequential):
    """(conv3x3 -> BN -> ReLU) x 2."""

    def __init__(self, in_ch, out_ch):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1), BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1), BatchNorm2d(out_ch), nn.ReLU(inplace=True),
        )


class UpStage(nn.Sequential):
    """Doubles the resolution (ConvTranspose2d k=2, s=2), then a double conv to `out_ch`;
    with `skip_ch`, a map of that many channels at the new resolution is concatenated first."""

    def __init__(self, in_ch, out_ch, skip_ch=0):
        super().__init__(nn.ConvTranspose2d(in_ch, in_ch, kernel_size=2, stride=2),
                         DoubleConv(in_ch + skip_ch, out_ch))

    def forward(self, x, skip=None):
        x = self[0](x)
        if skip is None:
            return self[1](x)
        # conv(cat([x, skip])) computed as conv(x) + conv(skip) with the two halves of the same
        # weight (the parameters, hence checkpoints, are unchanged): no concatenated copy
        conv = self[1][0]
        c = x.shape[1]
        y = (F.conv2d(x, conv.weight[:, :c], conv.bias, padding=conv.padding)
             + F.conv2d(skip, conv.weight[:, c:], None, padding=conv.padding))
        for layer in list(self[1])[1:]:
            y = layer(y)
        return y


class ConvDecoder(nn.Module):
    """The course's decoder, for any power-of-two patch, width and grid.

    tokens (B, gh*gw, D) -> map (B, D, gh, gw) -> log2(p) up-stages halving the channels
    -> 1x1 conv -> (B, C, gh*p, gw*p). With the course preset (D=32, p=8): 32->16->8->4->1.
    `width` sets the channels of the first stage (default D; a 1x1 conv maps D to it).
    `skip_chans` (one entry per stage, 0 for none) makes stage i concatenate a map of that many
    channels at its output resolution before its convolutions, as a U-Net's decoder does; the
    maps are passed to `forward` as `skips`, coarsest first and the finest (full resolution)
    last: a shorter list goes to the last stages. Stages built without a skip ignore theirs.
    """

    def __init__(self, embed_dim, patch_size, out_chans, *, width=None, skip_chans=None):
        super().__init__()
        n = math.log2(patch_size)
        if patch_size < 1 or n != int(n):
            raise ConfigError(f"decoder='conv' needs a power-of-two patch_size (got {patch_size}); "
                              "use decoder='linear' for other patch sizes")
        n = int(n)
        skip_chans = list(skip_chans or [0] * n)
        if len(skip_chans) != n:
            raise ConfigError(f"skip_chans needs one entry per up-stage ({n}), got {skip_chans}")
        width = width or embed_dim
        self.proj = nn.Conv2d(embed_dim, width, 1) if width != embed_dim else nn.Identity()
        stages, ch = [], width
        for skip in skip_chans:
            stages.append(UpStage(ch, max(ch // 2, 1), skip))
            ch = max(ch // 2, 1)
        self.up = nn.Sequential(*stages)
        self.out = nn.Conv2d(ch, out_chans, kernel_size=1)
        self.skip_chans = skip_chans

    def forward(self, tokens, grid, skips=None):
        x = self.proj(rearrange(tokens, "b (gh gw) d -> b d gh gw", gh=grid[0], gw=grid[1]))
        skips = [None] * (len(self.up) - len(skips or ())) + list(skips or ())
        for stage, skip, chans in zip(self.up, skips, self.skip_chans):
            x = stage(x, skip if chans else None)
        return self.out(x)


class LinearDecoder(nn.Module):
    """MAE-style: each token predicts its own p x p x C patch, then unpatchify.

    tokens (B, gh*gw, D) -> (B, gh*gw, p*p*C) -> image (B, C, gh*p, gw*p).
    """

    def __init__(self, embed_dim, patch_size, out_chans):
        super().__init__()
        self.patch_size = patch_size
        self.head = nn.Linear(embed_dim, patch_size * patch_size * out_chans)

    def forward(self, tokens, grid, skips=None):
        p = self.patch_size
        return rearrange(self.head(tokens), "b (gh gw) (p1 p2 c) -> b c (gh p1) (gw p2)",
                         gh=grid[0], gw=grid[1], p1=p, p2=p)


def stem_skip_chans(patch_size, stem_channels=None, image_chans=0):
    """The conv decoder's `skip_chans` (one per up-stage, coarsest first) for a conv stem's
    maps and the input image: stem maps at H/2 ... H/(p/2) (and H, with a full-resolution stem
    stage) join the stages ending there (the stem's last map, at the tokens' own resolution,
    does not), the image the last stage."""
    stages = patch_size.bit_length() - 1      # log2 of a power-of-two patch
    chans = list(reversed(stem_channels[:-1])) if stem_channels else []   # coarsest first
    chans += [0] * (stages - len(chans))      # no full-resolution stem map: the last stage none
    if image_chans:
        chans[-1] = image_chans
    return chans


def stem_skips(maps, image):
    """The skips `ConvDecoder.forward` takes (coarsest first) from a conv stem's maps (finest
    first, the last one being the tokens' own resolution) and the input image; either may be
    None. The decoder uses those it was built for (`stem_skip_chans`)."""
    return [*reversed(maps[:-1]), image] if maps is not None else [image]


def build_decoder(kind, embed_dim, patch_size, out_chans, *, width=None, skip_chans=None):
    if kind == "conv":
        return ConvDecoder(embed_dim, patch_size, out_chans, width=width, skip_chans=skip_chans)
    if kind == "linear":
        return LinearDecoder(embed_dim, patch_size, out_chans)
    raise ConfigError(f"decoder must be one of {DECODERS}, not {kind!r}")
