"""The temporal CNN peer of the video transformers: FastDVDnet without a noise map.

FastDVDnet (Tassano, Delon and Veit, CVPR 2020) denoises frame t from the window t-2 .. t+2 in
two stages of small U-Nets and no optical flow: stage 1 denoises each of the triplets
(t-2, t-1, t), (t-1, t, t+1), (t, t+1, t+2) into one frame (one U-Net, shared weights), stage 2
denoises the three results into frame t. Each U-Net predicts the noise of its middle input
(residual), as FastDVDnet's blocks do. Here the U-Nets are the course's (`cnn.UNet`), and the
model is blind (FastDVDnet also takes a noise-level map; the generator's noise is not one level).

Why FastDVDnet-style rather than a 3D U-Net:
  * it is what a practitioner tries first for video denoising without flow: the standard
    baseline of the video-denoising literature, good on moving content because its two
    stages let the second compensate the motion the first leaves;
  * its cost is 2-D convolutions (T + 2 stage-1 and T stage-2 passes per clip, the stage-1
    outputs shared between neighbouring frames), which PyTorch runs well on a small CPU, where
    Conv3d is several times slower per FLOP;
  * the window is fixed (5 frames), so a clip of any length T >= 1 works without padding T to
    a power of two (a 3D U-Net pooling over time needs that), and inference slides it along a
    stack of any length;
  * the task's clutter is drawn anew each frame while the cells move smoothly: the gain is in
    a few neighbouring frames, which a 5-frame window sees; a 3D U-Net's wider temporal
    receptive field buys little here and costs the time the budget counts.

Clip (B, C, T, H, W) -> (B, C, T, H, W); the clip's ends are padded by repeating the first
and last frames; H, W of any size (the U-Nets pad to a multiple of 2**levels and crop back).
"""
from dataclasses import dataclass
from typing import Tuple, Union

import torch
from einops import rearrange

from ..registry import register_model
from .base import DenoisingModel, ModelFacts, check_config, image_size
from .cnn import UNet

STAGE_FRAMES = 3      # frames into each U-Net; two stages: a 5-frame window


@dataclass
class TemporalCNNConfig:
    """FastDVDnet's widths by default (32, 64, 128: base 32, two down-samplings)."""
    img_size: Union[int, Tuple[int, int]] = 64   # accepted for the training driver; any size works
    in_chans: int = 1
    num_frames: int = 8              # the clip length it trains on; inference windows of this
    base_channels: int = 32
    levels: int = 2                  # 2x down-samplings in each U-Net

    def __post_init__(self):
        self.img_size = image_size(self.img_size)
        check_config(self, positive=("in_chans", "num_frames", "base_channels", "levels"))


def triplets(x):
    """(B, C, n, H, W) -> (B * (n - 2), 3 C, H, W): every 3 consecutive frames, stacked as
    channels (earliest first), and (B * (n - 2), C, H, W): each triplet's middle frame."""
    n = x.shape[2]
    stacked = torch.stack([x[:, :, k:k + n - 2] for k in range(STAGE_FRAMES)], dim=1)
    return (rearrange(stacked, "b k c t h w -> (b t) (k c) h w"),
            rearrange(stacked[:, 1], "b c t h w -> (b t) c h w"))


@register_model("fastdvdnet", TemporalCNNConfig)
class FastDVDnet(DenoisingModel):
    """Two stages of U-Nets over a 5-frame window, (B, C, T, H, W) -> (B, C, T, H, W)."""

    def __init__(self, config: TemporalCNNConfig):
        super().__init__()
        self.config = config
        c = config.in_chans
        self.stage1 = UNet(STAGE_FRAMES * c, c, config.base_channels, config.levels)
        self.stage2 = UNet(STAGE_FRAMES * c, c, config.base_channels, config.levels)

    @property
    def facts(self):
        # any T and size run (ends repeated, U-Nets pad inside); inference slides a window of
        # the training clip's length, tiles of the training size
        m = 2 ** self.config.levels
        return ModelFacts("video", self.config.in_chans, (1, m, m),
                          (self.config.num_frames, *self.config.img_size))

    def stage(self, unet, x):
        """(B, C, n, H, W) -> (B, C, n - 2, H, W): each triplet's middle frame minus its noise."""
        inputs, middle = triplets(x)
        return rearrange(middle - unet.unet(inputs), "(b t) c h w -> b c t h w", b=x.shape[0])

    def forward(self, x):
        self.check_input(x)
        half = STAGE_FRAMES - 1      # frames each side of the 5-frame window
        first, last = x[:, :, :1], x[:, :, -1:]
        padded = torch.cat([first.expand(-1, -1, half, -1, -1), x,
                            last.expand(-1, -1, half, -1, -1)], dim=2)
        # stage 1 on the T + 2 triplets centred on frames -1 .. T, shared by neighbouring outputs
        return self.stage(self.stage2, self.stage(self.stage1, padded))

