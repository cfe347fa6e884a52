"""An inference copy of a model: BatchNorm folded into the convolution before it, and (image
models) channels-last memory for the convolutions. The same function up to float rounding;
the model given is left as it was (a copy is changed).

Measured on the 2-core CPU (docs/SPEED.md): the vit_fast preset's conv stem and decoder are
small-channel convolutions at full resolution, where oneDNN is faster on NHWC data and every
BatchNorm is one more pass over the maps. On the CPU, image models' attention (64 tokens of
head size 16 per tile) runs on the plain path (q k^T, softmax, times v as batched matmuls), the
same maths as torch's fused CPU kernel. Whether it is faster is not settled: a first timing
(2026-12-03 19:01, 2-core EPYC, alone under the CPU lock) gave 3-15 % less forward time for a
batch of 32 vit_fast tiles, but the committed measurement (`experiments/attention_path_speed.py`,
same machine and lock) found the two within noise: median plain/fused 1.02 over 6
alternations, video_fast 1.09 (2026-12-03 21:31); a run of 4 alternations just before printed
0.99 and 0.93, and one on 2026-12-04 0.997 and 1.061 (docs/attention_path.json).
Video models keep the fused path. Training keeps it too: the same script's training rows gave
plain/fused 0.95 for vit_fast and 1.06 for the course preset (4 alternations, 2026-12-04).
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
