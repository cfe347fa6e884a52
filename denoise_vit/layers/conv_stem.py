"""Convolutional stem: the patch embedding of "Early Convolutions Help Transformers See Better"
(Xiao et al., 2021), a stack of stride-2 3x3 convolutions in place of one p x p convolution."""
import math

from einops import rearrange
from torch import nn

from ..errors import ConfigError
from .norms import BatchNorm2d


class ConvStem(nn.Module):
    """(B, C, H, W) -> tokens (B, N, D), N = (H/p)(W/p), like PatchEmbed.

    log2(p) stages of conv3x3 (stride 2) -> BatchNorm -> ReLU, the channels doubling up to D
    (D/4, D/2, D for p = 8), then a 1x1 conv to D. `forward(x, features=True)` also returns the
    stage outputs (H/2, H/4, ..., H/p resolution), which a decoder can use as skip connections.
    `full_res` > 0 puts a stride-1 stage of that many channels first, whose map (at H) is the
    finest of those outputs.
    """

    def __init__(self, patch_size, in_chans, embed_dim, full_res=0):
        super().__init__()
        n = math.log2(patch_size)
        if patch_size < 2 or n != int(n):
            raise ConfigError(f"embed='conv_stem' needs a power-of-two patch_size >= 2, "
                              f"not {patch_size}")
        n = int(n)
        self.patch_size = patch_size
        self.channels = [max(embed_dim >> (n - 1 - i), 1) for i in range(n)]
        strides = [2] * n
        if full_res:   # a stride-1 stage first: a full-resolution map for the decoder's last stage
            self.channels, strides = [full_res] + self.channels, [1] + strides
        stages, ch = [], in_chans
        for out, stride in zip(self.channels, strides):
            stages.append(nn.Sequential(nn.Conv2d(ch, out, 3, stride=stride, padding=1, bias=False),
                                        BatchNorm2d(out), nn.ReLU(inplace=True)))
            ch = out
        self.stages = nn.ModuleList(stages)
        self.proj = nn.Conv2d(ch, embed_dim, kernel_size=1)

    def forward(self, x, features=False):
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        tokens = rearrange(self.proj(x), "b d gh gw -> b (gh gw) d")
        return (tokens, maps) if features else tokens
