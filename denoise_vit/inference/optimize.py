"""An inference copy of a model: BatchNorm folded into the convolution before it, and (image
models) channels-last memory for the convolutions. The same function up to float rounding;
the model given is left as it was (a copy is changed).

Measured on the 2-core CPU (docs/SPEED.md): the vit_fast preset's conv stem and decoder are
small-channel convolutions at full resolution, where oneDNN is faster on NHWC data and every
BatchNorm is one more pass over the maps.
"""
import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

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


def inference_copy(model, *, channels_last=True):
    """A copy of `model` in eval mode for inference (see the module docstring)."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        fold_batchnorm(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
