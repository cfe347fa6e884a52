"""BatchNorm2d for channels-last maps of few channels on a multi-threaded CPU.

torch's CPU batch-norm kernel for channels-last (NHWC) input, run on more than one thread, is
slower than on one when the map has few channels: with 4 or 8 of them it runs 4-6x slower than
the same map in NCHW (fwd + bwd, batch 64, 2 threads, idle Xeon with AVX-512: 4 channels at
64x64 17.5 ms in NHWC vs 4.2 ms converted to NCHW and back; 8 at 32x32 5.1 vs 1.8; from 16
channels on NHWC is the faster). On one thread NHWC is fine (4 channels 9.9 vs 8.4 ms, 8
channels 1.3 vs 3.3). vit_fast's decoder ends in 8 and 4 channels, and at 2 threads those two
stages' norms took a quarter of its training step. This module normalises such maps in NCHW
and hands them back channels-last when torch uses more than one thread; everything else goes
to nn.BatchNorm2d unchanged.
"""
import torch
from torch import nn

# below this many channels a channels-last map is normalised in NCHW (CPU only)
FEW_CHANNELS = 16


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d with the same parameters and buffers (checkpoints load either way); on
    the CPU with more than one torch thread, a channels-last map of fewer than FEW_CHANNELS
    channels is normalised in NCHW."""

    def forward(self, x):
        if (self.num_features < FEW_CHANNELS and x.device.type == "cpu" and x.dim() == 4
                and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last)
                and torch.get_num_threads() > 1):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)
