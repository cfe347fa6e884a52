"""Evaluation metrics of SPEC §4."""
import math

import numpy as np
import torch
from skimage.metrics import structural_similarity


def psnr(outputs, targets, data_range=1.0):
    """PSNR over a whole set: 10 log10(range^2 / MSE over all pixels of the set), in dB.

    Pooling the MSE over the set keeps the figure finite when some images have nothing to
    remove (a per-image mean would be infinite there).
    """
    mse = torch.mean((outputs.double() - targets.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(data_range ** 2 / mse)


def ssim(outputs, targets, data_range=1.0):
    """Mean SSIM (skimage, data_range=1) over 2-D images; leading axes (B, C, T, ...) flattened."""
    out = outputs.detach().float().cpu().numpy().reshape(-1, *outputs.shape[-2:])
    tgt = targets.detach().float().cpu().numpy().reshape(-1, *targets.shape[-2:])
    return float(np.mean([structural_similarity(t, o, data_range=data_range)
                          for o, t in zip(out, tgt)]))
