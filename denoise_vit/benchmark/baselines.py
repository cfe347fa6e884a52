"""Classical denoisers to compare the networks against, each with one tuned parameter.

Every method is a function (2-D float64 image, value) -> 2-D image applied to each plane of a
(N, C, H, W) batch. Its main parameter is chosen by `grid_search` on a validation set drawn
with a seed of its own (never the evaluation set, which would flatter the baseline):

    inputs, targets = validation_set(64)
    result = grid_search(METHODS["median"], inputs, targets)   # result.best, result.scores
    denoised = apply(METHODS["median"], eval_inputs, result.best)

BM3D comes from the optional `bm3d` package (`pip install denoise-vit[bench]`); without it
`available_methods()` leaves it out.
"""
import importlib.util
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import torch
from scipy import ndimage
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet

from data_gen import make_eval_set

from ..metrics import psnr

VALIDATION_SEED = 4321   # the evaluation set's default seed is 1234 (DataConfig.eval_seed)


def median(image, size):
    return ndimage.median_filter(image, size=int(size), mode="reflect")


def total_variation(image, weight):
    return denoise_tv_chambolle(image, weight=weight)


def wavelet(image, sigma):
    return denoise_wavelet(image, sigma=sigma, mode="soft", rescale_sigma=True)


def nl_means(image, h):
    return denoise_nl_means(image, h=h, patch_size=5, patch_distance=6, fast_mode=True)


def bm3d(image, sigma):
    import bm3d as _bm3d  # optional dependency (the "bench" extra)
    return _bm3d.bm3d(image, sigma_psd=sigma)


@dataclass(frozen=True)
class ClassicalMethod:
    name: str
    label: str
    param: str              # the parameter the grid search tunes
    grid: tuple
    fn: Callable            # (2-D image, value) -> 2-D image


# The grids span "barely filter" to "blur everything": the clutter here is large bright
# rectangles, not white noise, so the best settings sit far above a noise-level estimate.
# Each grid brackets its validation optimum (median 21, TV 1.6, non-local means 0.8 with the
# values above them scoring lower); the wavelet's PSNR is flat from 1.6 up.
METHODS = {m.name: m for m in (
    ClassicalMethod("median", "median filter", "size", (3, 5, 7, 9, 11, 13, 15, 17, 21, 25, 31),
                    median),
    ClassicalMethod("tv", "total variation (Chambolle)", "weight", (0.1, 0.2, 0.4, 0.8, 1.6, 3.2),
                    total_variation),
    ClassicalMethod("wavelet", "wavelet (BayesShrink, soft)", "sigma", (0.1, 0.2, 0.4, 0.8, 1.6, 3.2),
                    wavelet),
    ClassicalMethod("nl_means", "non-local means", "h", (0.1, 0.2, 0.4, 0.8, 1.6), nl_means),
    ClassicalMethod("bm3d", "BM3D", "sigma_psd", (0.2, 0.4, 0.8, 1.6), bm3d),
)}


def bm3d_available():
    return importlib.util.find_spec("bm3d") is not None


def available_methods():
    """The methods that can run here (BM3D only with the `bm3d` package installed)."""
    return [m for name, m in METHODS.items() if name != "bm3d" or bm3d_available()]


def _apply_plane(fn, value, plane):
    return fn(plane, value)


def apply(method, images, value, *, workers=1):
    """Denoise every 2-D plane of `images` (N, C, H, W) with `method` at `value`.

    Returns a float32 tensor of the same shape. `workers` > 1 spreads the planes over processes
    (the skimage and BM3D filters use one core each).
    """
    planes = images.detach().double().cpu().numpy().reshape(-1, *images.shape[-2:])
    work = partial(_apply_plane, method.fn, value)
    if workers > 1 and len(planes) > 1:
        with ProcessPoolExecutor(workers) as pool:
            out = list(pool.map(work, planes, chunksize=max(1, len(planes) // (4 * workers))))
    else:
        out = [work(p) for p in planes]
    return torch.from_numpy(np.stack(out).astype(np.float32)).reshape(images.shape)


@dataclass
class GridResult:
    method: str
    param: str
    best: object
    scores: dict            # value -> validation PSNR (dB)


def grid_search(method, inputs, targets, *, grid=None, workers=1):
    """The value of `method.param` with the highest PSNR on (inputs, targets); ties go to the
    first value in the grid."""
    scores = {v: psnr(apply(method, inputs, v, workers=workers), targets)
              for v in (grid if grid is not None else method.grid)}
    best = max(scores, key=scores.get)  # max keeps the first of equal scores
    return GridResult(method.name, method.param, best, scores)


def validation_set(n=64, *, seed=VALIDATION_SEED, **data_kwargs):
    """(inputs, targets) for tuning baselines: the evaluation distribution, another seed."""
    return make_eval_set(n, seed=seed, **data_kwargs)
