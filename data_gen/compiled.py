"""Compiled rendering on the CPU (numba), giving the same images as the torch path, bit for bit.

``render_cells`` and ``render_rects`` (data_gen.rendering) hand their work to the kernels here
when numba is installed (``pip install "denoise-vit[fast]"``), the images live on the CPU in
float32 or float64, and cells have integer centres (still images). Everything else (moving
cells, other dtypes, GPUs) stays on the torch path. ``DATA_GEN_COMPILED=0`` in the environment
turns the kernels off.

Why: the torch path lists every pixel of every object (index and value arrays, then one
``scatter_add_``) after a dozen small ops to sort the objects; on a 2-core CPU that is most of a
batch's time. The kernels read the padded (B, K) object tensors as they are and add each
object's pixels in place, so nothing is listed, sorted or gathered.

Same images: each pixel receives the same additions, in the same order and with the same
float arithmetic, as on the torch path: discs of an image in order of (radius, slot), each
pixel amp * stamp with the same float stamp; rectangles in order of (shape group, slot), each
pixel ``value`` (filled) or ``max(0, n) * value`` (noisy, n from the same normal draws, drawn
per group in the same order and shapes). Adding 0, which the torch path does for the pixels of
a patch outside its object, changes nothing, so the kernels skip those pixels. Objects are
clipped to their image (the torch path assumes they fit), so a kernel never writes outside the
output. tests/test_generator_compiled.py compares the two paths.

Kernels are compiled on first use and cached on disk (numba's ``cache=True``, next to this
file, when that folder is writable); importing this module does not import numba.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from data_gen.sampling import Cells, Rects

__all__ = ["available", "usable", "add_discs", "add_rects", "clutter_copy"]

_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}


@lru_cache(maxsize=1)
def _kernels():
    """The compiled kernels (data_gen._kernels, which imports numba), or None without numba."""
    try:
        from data_gen import _kernels as kernels
    except ImportError:
        return None
    return kernels


def available() -> bool:
    """Whether the compiled kernels can be used: numba is installed and DATA_GEN_COMPILED is not
    0."""
    if os.environ.get("DATA_GEN_COMPILED", "1").strip() in ("0", "false", "no", "off"):
        return False
    return _kernels() is not None


def usable(out: Tensor) -> bool:
    """Whether rendering into ``out`` can take the compiled path."""
    return (out.device.type == "cpu" and out.dtype in _NUMPY and out.is_contiguous()
            and available())


def handles(t: Tensor) -> bool:
    """Whether the samplers' arithmetic on ``t`` (a draw or an integer tensor) can run in the
    kernels: a contiguous CPU tensor of int64, bool, float32 or float64."""
    return (t.device.type == "cpu" and t.is_contiguous()
            and (t.dtype in _NUMPY or t.dtype in (torch.int64, torch.bool)) and available())


def kernels():
    """The kernels module (data_gen._kernels); call only after ``usable`` or ``handles``."""
    return _kernels()


def _np(t: Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


@lru_cache(maxsize=32)
def _stamp_table(rmax: int, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The course stamps of radii 1..rmax flattened end to end, where each starts, and the
    columns [lo, hi) inside the disc on each row of each stamp, (rmax + 1, 2 * rmax - 1, 2)."""
    from data_gen.rendering import _disc_stamp

    starts = np.zeros(rmax + 1, np.int64)
    spans = np.zeros((rmax + 1, 2 * rmax - 1, 2), np.int64)
    parts, offset = [], 0
    for r in range(1, rmax + 1):
        stamp = _disc_stamp(r, dtype, torch.device("cpu")).numpy()
        offsets = np.arange(1 - r, r)
        inside = offsets[:, None] ** 2 + offsets[None, :] ** 2 < r * r
        spans[r, :2 * r - 1, 0] = inside.argmax(axis=1)  # every row has its middle pixel
        spans[r, :2 * r - 1, 1] = 2 * r - 1 - inside[:, ::-1].argmax(axis=1)
        starts[r] = offset
        parts.append(stamp.reshape(-1))
        offset += stamp.size
    return np.concatenate(parts), starts, spans


def add_discs(out: Tensor, cells: Cells, *, overwrite: bool = False) -> None:
    """Add discs with integer centres into ``out`` (B, H, W); with ``overwrite``, set each image
    to 0 first (``out`` may then be uninitialised)."""
    if cells.centre_y.is_floating_point() or cells.centre_x.is_floating_point():
        raise ValueError("the compiled renderer draws discs with integer centres only")
    valid = cells.valid
    if not bool(valid.any()):
        if overwrite:
            out.zero_()
        return
    rmax = int(cells.radius[valid].max())
    if int(cells.radius[valid].min()) < 1:
        raise ValueError("cell radius must be at least 1")
    stamps, starts, spans = _stamp_table(rmax, out.dtype)
    _kernels().discs(out.numpy(), _np(cells.centre_y), _np(cells.centre_x), _np(cells.radius),
                     _np(cells.amplitude.to(out.dtype)), _np(valid), stamps, starts, spans, rmax,
                     overwrite)


def _rect_arrays(rects: Rects, dtype: torch.dtype) -> tuple:
    """The kernels' view of ``rects``: (top, left, h, w, value, valid, key, rank, longest) and
    each group's size, see the ``groups`` kernel."""
    h, w, valid = _np(rects.height), _np(rects.width), _np(rects.valid)
    key, rank, sizes, longest = _kernels().groups(h, w, valid)
    arrays = (_np(rects.top), _np(rects.left), h, w, _np(rects.value.to(dtype)), valid, key,
              rank, longest)
    return arrays, sizes


def _pixel_noise(sizes: np.ndarray, longest: np.ndarray, generator,
                 dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Standard normals for each group's (size, P, Q) patches, drawn group by group as the torch
    path draws them (``torch.randn((size, P, Q))`` per non-empty group) into one buffer;
    returns it and where each group's block starts."""
    counts = [int(size) * int(p) * int(q) for size, (p, q) in zip(sizes, longest)]
    offsets = np.zeros(4, np.int64)
    offsets[1:] = np.cumsum(counts)[:-1]
    buffer = torch.empty(sum(counts), dtype=dtype)
    for start, count in zip(offsets.tolist(), counts):
        if count:
            buffer[start:start + count].normal_(generator=generator)
    return buffer.numpy(), offsets


def add_rects(out: Tensor, rects: Rects, *, pixel_noise: bool, generator) -> None:
    """Add rectangles into ``out`` (B, H, W); noisy ones (``pixel_noise``) draw their pixel noise
    from ``generator`` as the torch path does."""
    if not bool(rects.valid.any()):
        return
    arrays, sizes = _rect_arrays(rects, out.dtype)
    if pixel_noise:
        noise, offsets = _pixel_noise(sizes, arrays[-1], generator, out.dtype)
    else:
        noise, offsets = np.zeros(0, _NUMPY[out.dtype]), np.zeros(4, np.int64)
    _kernels().rects(out.numpy(), *arrays, noise, offsets, bool(pixel_noise))


def clutter_copy(out: Tensor, clean: Tensor, filled: Rects, noisy: Rects, generator) -> None:
    """out = clean + filled rectangles + noisy rectangles (pixel noise drawn from ``generator``),
    all (B, H, W): the same as copying and then adding each set, in one pass over the images."""
    if clean.shape != out.shape or clean.dtype != out.dtype or not clean.is_contiguous():
        raise ValueError("clean must be a contiguous tensor of out's shape and dtype")
    filled_arrays, _ = _rect_arrays(filled, out.dtype)
    noisy_arrays, sizes = _rect_arrays(noisy, out.dtype)
    noise, offsets = _pixel_noise(sizes, noisy_arrays[-1], generator, out.dtype)
    _kernels().clutter(out.numpy(), clean.numpy(), *filled_arrays, *noisy_arrays, noise,
                       offsets)
