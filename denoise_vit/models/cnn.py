"""Convolutional baselines registered beside the ViT: the course's U-Net and DnCNN.

Both map (B, C, H, W) -> (B, C, H, W) for any H, W: the U-Net pads to a multiple of
2**levels and crops back. Their configs accept `img_size` (unused by the weights) so that the
training driver can pass the data's image size to every model alike.
"""
from dataclasses import dataclass
from typing import Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..layers.norms import BatchNorm2d
from ..registry import register_model
from .base import (DenoisingModel, ModelFacts, check_config, check_output, init_output,
                   compose_output, image_size, output_chans)
from .decoders import DoubleConv


@dataclass
class UNetConfig:
    """The course's U-Net: 16 base channels doubled at each of 3 down-samplings (~0.48 M weights)."""
    img_size: Union[int, Tuple[int, int]] = 64   # accepted for the training driver; any size works
    in_chans: int = 1
    base_channels: int = 16
    levels: int = 3                  # number of 2x down-samplings
    residual: bool = False           # predict the clutter and subtract it from the input
    gate: bool = False               # predict a gate and an offset: sigmoid(g) * input + b
    zero_init_out: bool = False      # the output conv starts at zero (the network predicts 0)

    def __post_init__(self):
        self.img_size = image_size(self.img_size)
        check_config(self, positive=("in_chans", "base_channels", "levels"))
        check_output(self)


class UNet(nn.Module):
    """The course's U-Net body, `in_chans` -> `out_chans` maps, written once for the U-Net
    denoiser and the stages of the temporal CNN (models.temporal_cnn).

    Encoder: DoubleConv at widths c, 2c, ..., c * 2**levels with 2x max-pooling between them.
    Decoder: per level, ConvTranspose2d(k=2, s=2) halving the width, concatenation with the
    encoder map of the same resolution, DoubleConv; then a 1x1 conv to `out_chans` channels.
    `unet(x)` pads H, W to a multiple of 2**levels (replicate) and crops back.
    """

    def __init__(self, in_chans, out_chans, base_channels, levels):
        super().__init__()
        self.levels = levels
        widths = [base_channels * 2 ** i for i in range(levels + 1)]
        self.down = nn.ModuleList(
            DoubleConv(c_in, c_out) for c_in, c_out in zip([in_chans] + widths[:-1], widths))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(c, c // 2, kernel_size=2, stride=2) for c in reversed(widths[1:]))
        self.fuse = nn.ModuleList(DoubleConv(c, c // 2) for c in reversed(widths[1:]))
        self.out = nn.Conv2d(widths[0], out_chans, kernel_size=1)

    def unet(self, x):
        h, w = x.shape[-2:]
        m = 2 ** self.levels
        # pad to a multiple of 2**levels so every pooled map halves exactly, crop back at the end
        y = F.pad(x, (0, -w % m, 0, -h % m), mode="replicate")
        skips = []
        for i, block in enumerate(self.down):
            y = block(y if i == 0 else F.max_pool2d(y, 2))
            skips.append(y)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips[:-1])):
            y = fuse(torch.cat([skip, up(y)], dim=1))
        return self.out(y)[..., :h, :w]


@register_model("unet_denoiser", UNetConfig)
class UNetDenoiser(UNet, DenoisingModel):
    """Double-conv encoder-decoder with skip connections (`UNet`), (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, config: UNetConfig):
        super().__init__(config.in_chans, output_chans(config), config.base_channels,
                         config.levels)
        self.config = config
        init_output(self.out, config)

    @property
    def facts(self):
        m = 2 ** self.config.levels   # any size runs (padded inside); multiples pool exactly
        return ModelFacts("image", self.config.in_chans, (m, m), tuple(self.config.img_size))

    def forward(self, x):
        self.check_input(x)
        return compose_output(x, self.unet(x), self.config)


@dataclass
class DnCNNConfig:
    """DnCNN (Zhang et al. 2017): 17 conv layers of 64 features, residual learning (~0.56 M)."""
    img_size: Union[int, Tuple[int, int]] = 64   # accepted for the training driver; any size works
    in_chans: int = 1
    depth: int = 17
    features: int = 64

    def __post_init__(self):
        self.img_size = image_size(self.img_size)
        check_config(self, positive=("in_chans", "features", "depth"))
        if self.depth < 2:
            raise ConfigError(f"depth must be an integer of at least 2, not {self.depth!r}")


@register_model("dncnn_denoiser", DnCNNConfig)
class DnCNNDenoiser(DenoisingModel):
    """conv-ReLU, (depth - 2) x conv-BN-ReLU, conv; predicts the noise, returns x - noise.

    (B, C, H, W) -> (B, C, H, W) for any size (3x3 convs, zero padding, no resampling).
    """

    def __init__(self, config: DnCNNConfig):
        super().__init__()
        self.config = config
        f = config.features
        layers = [nn.Conv2d(config.in_chans, f, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(config.depth - 2):
            layers += [nn.Conv2d(f, f, 3, padding=1, bias=False), BatchNorm2d(f),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(f, config.in_chans, 3, padding=1))
        self.body = nn.Sequential(*layers)

    @property
    def facts(self):
        return ModelFacts("image", self.config.in_chans, (1, 1), tuple(self.config.img_size))

    def forward(self, x):
        self.check_input(x)
        return x - self.body(x)
