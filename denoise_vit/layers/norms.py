"""BatchNorm2d for channels-last maps of few channels on the CPU.

torch's CPU batch-norm kernel for channels-last (NHWC) input vectorises over the channels; with
4 or 8 of them it runs 6-8x slower than on the same map in NCHW (fwd + bwd, batch 64, 2 threads,
Xeon with AVX-512: 4 channels at 64x64 17.5 ms vs 2.2 ms, 8 at 32x32 5.1 vs 0.8; from 16
channels on NHWC is the faster). vit_fast's decoder ends in 8 and 4 channels, and those two
stages' norms took a quarter of its training step. This module normalises such maps in NCHW and
hands them back channels-last; everything else goes to nn.BatchNorm2d unchanged.
"""
import torch
from torch import nn

# below this many channels a channels-last map is normalised in NCHW (CPU only)
FEW_CHANNELS = 16


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d with the same parameters and buffers (checkpoints load either way); on
    the CPU, a channels-last map of fewer than FEW_CHANNELS channels is normalised in NCHW."""

    def forward(self, x):
        if (self.num_features < FEW_CHANNELS and x.device.type == "cpu" and x.dim() == 4
                and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last)):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)
