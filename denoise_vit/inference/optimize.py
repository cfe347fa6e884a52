"""An inference copy of a model: BatchNorm folded into the convolution before it, and (image
models) channels-last memory for the convolutions. The same function up to float rounding;
the model given is left as it was (a copy is changed).

Measured on the 2-core CPU (docs/SPEED.md): the vit_fast preset's conv stem and decoder are
small-channel convolutions at full resolution, where oneDNN is faster on NHWC data and every
BatchNorm is one more pass over the maps.

Attention keeps torch's fused kernel (scaled_dot_product_attention) everywhere. Image models
ran on the plain path (q k^T, softmax, times v as batched matmuls; the same maths) on the CPU
from 2026-12-03 to 2026-12-05, after a first timing gave it 3-15 % less forward time. The
committed measurements (`experiments/attention_path_speed.py`, 2-core EPYCs alone under the
CPU lock) never confirmed it: plain/fused forward time 1.02 (AVX-512, 2026-12-03), 0.997
(AVX2, 2026-12-04), and 1.087 on the AVX-512 EPYC on 2026-12-05 (docs/attention_path.json;
the earlier runs are in its git history), where all six plain timings were slower than all
six fused ones. Training keeps the fused path too (plain/fused images/s 0.95 on AVX2, 0.993
on AVX-512).
"""
import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..layers.attention import set_fused_attention

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_batchnorm(model):
    """In place: every (Conv, BatchNorm) pair of consecutive children of an nn.Sequential
    becomes the folded conv and an Identity (eval mode only: running statistics)."""
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module)
        for i in range(len(children) - 1):
            conv, norm = children[i], children[i + 1]
            if (isinstance(conv, CONVS) and isinstance(norm, NORMS) and norm.track_running_stats
                    and conv.groups == 1
                    and norm.num_features == conv.out_channels):
                module[i] = fuse_conv_bn_eval(conv, norm)
                module[i + 1] = nn.Identity()
    return model


def inference_copy(model, *, channels_last=True, fused_attention=True):
    """A copy of `model` in eval mode for inference (see the module docstring).

    fused_attention=False puts every attention layer on its plain path (same maths)."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        fold_batchnorm(model)
    if not fused_attention:
        set_fused_attention(model, False)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
