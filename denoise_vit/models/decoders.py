"""Decoders from a grid of tokens back to pixels."""
import math

from einops import rearrange
from torch import nn

from ..errors import ConfigError

DECODERS = ("conv", "linear")


class DoubleConv(nn.Sequential):
    """(conv3x3 -> BN -> ReLU) x 2."""

    def __init__(self, in_ch, out_ch):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
        )


class UpStage(nn.Sequential):
    """Doubles the resolution (ConvTranspose2d k=2, s=2), then a double conv to `out_ch`."""

    def __init__(self, in_ch, out_ch):
        super().__init__(nn.ConvTranspose2d(in_ch, in_ch, kernel_size=2, stride=2),
                         DoubleConv(in_ch, out_ch))


class ConvDecoder(nn.Module):
    """The course's decoder, for any power-of-two patch, width and grid.

    tokens (B, gh*gw, D) -> map (B, D, gh, gw) -> log2(p) up-stages halving the channels
    -> 1x1 conv -> (B, C, gh*p, gw*p). With the course preset (D=32, p=8): 32->16->8->4->1.
    """

    def __init__(self, embed_dim, patch_size, out_chans):
        super().__init__()
        stages = math.log2(patch_size)
        if patch_size < 1 or stages != int(stages):
            raise ConfigError(f"decoder='conv' needs a power-of-two patch_size (got {patch_size}); "
                              "use decoder='linear' for other patch sizes")
        stages, ch = [], embed_dim
        for _ in range(int(math.log2(patch_size))):
            stages.append(UpStage(ch, max(ch // 2, 1)))
            ch = max(ch // 2, 1)
        self.up = nn.Sequential(*stages)
        self.out = nn.Conv2d(ch, out_chans, kernel_size=1)

    def forward(self, tokens, grid):
        x = rearrange(tokens, "b (gh gw) d -> b d gh gw", gh=grid[0], gw=grid[1])
        return self.out(self.up(x))


class LinearDecoder(nn.Module):
    """MAE-style: each token predicts its own p x p x C patch, then unpatchify.

    tokens (B, gh*gw, D) -> (B, gh*gw, p*p*C) -> image (B, C, gh*p, gw*p).
    """

    def __init__(self, embed_dim, patch_size, out_chans):
        super().__init__()
        self.patch_size = patch_size
        self.head = nn.Linear(embed_dim, patch_size * patch_size * out_chans)

    def forward(self, tokens, grid):
        p = self.patch_size
        return rearrange(self.head(tokens), "b (gh gw) (p1 p2 c) -> b c (gh p1) (gw p2)",
                         gh=grid[0], gw=grid[1], p1=p, p2=p)


def build_decoder(kind, embed_dim, patch_size, out_chans):
    if kind == "conv":
        return ConvDecoder(embed_dim, patch_size, out_chans)
    if kind == "linear":
        return LinearDecoder(embed_dim, patch_size, out_chans)
    raise ConfigError(f"decoder must be one of {DECODERS}, not {kind!r}")
