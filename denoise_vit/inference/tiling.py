"""Denoising inputs of any size with a model trained on small crops (no file I/O here).

* Padding: each spatial side is reflect-padded up to a multiple of the patch and cropped back.
  The padding is virtual: tiles are gathered through reflected indices, no padded copy is made.
* Tiling: a padded image larger than the tile is cut into overlapping tiles, the last one
  aligned with the far edge. Each tile's output is weighted by a separable window that is 1 in
  the tile's middle and rises smoothly (half a Hann window) over the overlap at every edge that
  faces another tile (its outermost pixels get no weight), divided by the summed windows, so the
  weights form a partition of unity and no seam is left where tiles meet. The windows are
  separable, so that division is done per axis, once: no image-sized weight array exists. Tiles
  go through the model in batches with a progress bar. An image no larger than the tile is one
  tile: the whole-image path.
* Stacks: image models denoise each plane (tiles of all planes share batches); video models
  slide a temporal window of `num_frames` frames along the time axis, with the stack's ends
  reflect-padded by half a window so that the first and last frames also get context on both
  sides, and windows blended in time the same way as tiles in space.
* Intensity: `Normalization` (denoise_vit.inference.intensity) maps each tile, in float64, onto
  the training range just before the model. What is blended is the model's change (output minus
  input, in the model's units), which io.apply_change adds back to the input's own values: a
  pixel the model leaves alone comes back bit for bit, whatever its dtype and magnitude.
* Memory: the input as it is, 4 bytes per pixel for the blended change, and one batch of tiles.
* Device: on a CUDA GPU the same tiling runs on the GPU (`tiled_apply_on`) when the input and
  the result fit in half its free memory: on an H200 the numpy tiling around the model took 94 %
  of `Denoiser`'s time, and tiling on the GPU made a 1024x1024 image 0.024 s instead of 0.046
  (docs/speed_gpu.md); on the CPU numpy's slice-adds are the faster way.
"""
import itertools
import math
from collections import deque

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import DenoiseVitError
from ..threads import concurrent_calls
from .intensity import Normalization
from .optimize import inference_copy

TILE_OVERLAP_FRACTION = 4   # default overlap: a quarter of the tile
# (16 of 64: 12 cost vit_fast 0.31 dB on 1024x1024 images, 24 gained 0.16 dB for 19 % more
# time; docs/DENOISE.md, experiments/overlap_study.py)
BATCH_PIXELS = 32 * 64 * 64  # default batch: tiles totalling this many pixels (32 of 64x64)
# On a CUDA GPU 16 times that (512 tiles of 64x64): vit_fast on an H200, tiling in numpy, denoised
# a 1024x1024 image in 0.054 s instead of 0.106 and a 4096x4096 one in 1.08 s instead of 1.46,
# the same PSNR to 0.01 dB, peak GPU memory 280-317 MiB instead of 80 (run of 2026-12-04 13:35).
# With the tiling on the GPU, 2048 tiles were 15-22 % faster than 512 (0.019 s against 0.024 on
# 1024x1024) but peaked at 1221 MiB against 454 on 4096x4096 (docs/speed_gpu.md): 512 stays,
# for GPUs with little memory.
BATCH_PIXELS_CUDA = 16 * BATCH_PIXELS
DEVICE_TILING_MEMORY = 0.5   # share of a GPU's free memory the input and result may take there
PRECISIONS = ("fp32", "bf16")
MAX_CONCURRENT_CALLS = 8     # each call holds one batch's activations (vit_fast: tens of MiB);
# measured on 2 cores only (docs/denoise_levers.json): beyond that the count is a guess


def native_bf16(device):
    """Whether `device` computes bfloat16 in hardware: a CUDA GPU, or a CPU with AVX512-BF16 or
    AMX (elsewhere torch emulates it: the AVX2 EPYC trained at a tenth of fp32's speed)."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    cpu = getattr(torch, "cpu", None)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in probes)


def reflect_indices(n, before, after):
    """Indices into range(n) that reflect-pad it by `before` and `after` (any amount).

    Mirror without repeating the edge (numpy's "reflect"), repeated periodically when the pad is
    longer than the axis; an axis of length 1 is replicated.
    """
    idx = torch.arange(-before, n + after)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= n, period - idx, idx)


def reflect_pad(x, pads):
    """Reflect-pad `x`; pads: {dim: (before, after)}."""
    for dim, (before, after) in pads.items():
        if before or after:
            x = x.index_select(dim, reflect_indices(x.shape[dim], before, after).to(x.device))
    return x


def pad_to_multiple(x, multiples):
    """Reflect-pad dims of `x` up to multiples; multiples: {dim: m}.

    The padding is split between both ends (the extra pixel, if odd, at the end). Returns the
    padded tensor and a tuple of slices (one per dim of x) that crops the padding back off.
    """
    pads, crop = {}, [slice(None)] * x.ndim
    for dim, m in multiples.items():
        size = x.shape[dim]
        total = -size % m
        pads[dim] = (total // 2, total - total // 2)
        crop[dim] = slice(total // 2, total // 2 + size)
    return reflect_pad(x, pads), tuple(crop)


def tile_starts(size, tile, overlap):
    """Start offsets of tiles of length `tile` covering range(size), consecutive tiles sharing at
    least `overlap` pixels; the last tile ends at `size`. One tile if tile >= size."""
    if tile >= size:
        return [0]
    stride = tile - overlap
    return list(range(0, size - tile, stride)) + [size - tile]


def edge_ramp(overlap):
    """Rising weights over an overlap of `overlap` pixels: 0 for the outer quarter, a half-Hann
    ramp over the middle half, 1 for the inner quarter.

    A tile's outer pixels are its worst (they lack context on one side), so they get no weight
    while the neighbouring tile is at full weight there; a model whose output depends only on
    pixels within overlap // 4 gives the same result tiled as whole. The ramps of two tiles
    meeting over the same overlap add up to exactly 1 at every pixel.
    """
    margin = overlap // 4
    n = overlap - 2 * margin
    k = torch.arange(n, dtype=torch.float64)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (k + 0.5) / n)
    return torch.cat([torch.zeros(margin, dtype=torch.float64), ramp,
                      torch.ones(margin, dtype=torch.float64)])


def window_1d(size, tile, overlap, start):
    """Blending weights (tile,) of the tile at `start` along an axis of length `size`.

    1 inside; `edge_ramp` at an edge that another tile overlaps; flat at the input's own
    borders, where no other tile takes over.
    """
    w = torch.ones(tile, dtype=torch.float64)
    n = min(overlap, tile)
    if n > 0:
        ramp = edge_ramp(n)
        if start > 0:
            w[:n] = torch.minimum(w[:n], ramp)
        if start + tile < size:
            w[tile - n:] = torch.minimum(w[tile - n:], ramp.flip(0))
    return w


def axis_windows(size, tile, overlap):
    """[(start, weights)] of the tiles along one axis, each tile's `window_1d` divided by the sum
    of all windows at its pixels: the weights of the tiles covering a pixel add up to 1.

    Windows are separable, so the N-D weight of a tile, the product of its axes' normalised
    windows, is normalised too; no image-sized weight array is ever built.
    """
    starts = tile_starts(size, tile, overlap)
    windows = [window_1d(size, tile, overlap, s) for s in starts]
    total = torch.zeros(size, dtype=torch.float64)
    for s, w in zip(starts, windows):
        total[s:s + tile] += w
    return [(s, (w / total[s:s + tile]).float().numpy()) for s, w in zip(starts, windows)]


class TileGrid:
    """Every tile of an (N, C, *S) input, as arrays.

    Per spatial axis a: `source[a]` (tiles along a, tile_a), the input index of each tile pixel
    (reflected where the tile reaches into the virtual padding); `weight[a]`, its normalised
    blending weight (`axis_windows`), 0 where the pixel is padding; `part[a]` and `dest[a]`,
    per tile the slice of its pixels inside the input (padding is only ever at a tile's ends)
    and the slice of the output they land on; `direct[a]`, True where the tile's source is a
    plain range of the input (no reflection, no padding), which starts at `start[a]`. `jobs` (J, 1 + ndim): the item and the tile number along each
    axis of every tile, item-major.

    Gathering: tiles that are plain ranges on every axis are copied out of a sliding-window
    view of the input (one indexed copy per batch); the rest through their reflected indices.
    Adding: one slice-add per tile of its inside part (measured on the 2-core CPU, 4096x4096,
    7225 tiles: 5x faster than one flat index_add_ of the batch whose index arrays must be
    built; the gather 10x faster than indexing every pixel).
    """

    def __init__(self, items, sizes, tiles, overlaps, pads):
        padded = tuple(s + b + a for s, (b, a) in zip(sizes, pads))
        self.sizes, self.tiles = tuple(sizes), tuple(tiles)
        self.source, self.weight = [], []
        self.direct, self.start, self.part, self.dest = [], [], [], []
        for size, tile, overlap, (before, after), full in zip(sizes, tiles, overlaps, pads, padded):
            index = reflect_indices(size, before, after).numpy()
            starts, weights = zip(*axis_windows(full, tile, overlap))
            pos = np.asarray(starts)[:, None] + np.arange(tile)[None, :]   # padded coordinates
            inside = (pos >= before) & (pos < before + size)
            source = index[pos]
            self.source.append(source)
            self.weight.append(np.where(inside, np.stack(weights), 0).astype(np.float32))
            self.direct.append((source == source[:, :1] + np.arange(tile)).all(axis=1)
                               & inside.all(axis=1))
            self.start.append(source[:, 0])
            first, count = inside.argmax(axis=1), inside.sum(axis=1)
            out_first = pos[np.arange(len(pos)), first] - before
            # per tile: the slice of its inside pixels, and the slice of the output they land on
            self.part.append([slice(int(f), int(f + c)) for f, c in zip(first, count)])
            self.dest.append([slice(int(o), int(o + c)) for o, c in zip(out_first, count)])
        counts = [items] + [len(w) for w in self.weight]
        self.jobs = np.stack(np.unravel_index(np.arange(math.prod(counts)), counts), axis=1)

    def __len__(self):
        return len(self.jobs)

    def axis_index(self, arrays, jobs):
        """Per axis, (B, 1, ..., tile_a, ..., 1) arrays of `arrays[a]` for these jobs' tiles,
        shaped to broadcast into (B, *tiles) (numpy arrays, or tensors from `on_device`)."""
        ndim = len(self.tiles)
        out = []
        for a, arr in enumerate(arrays):
            shape = [len(jobs)] + [1] * ndim
            shape[1 + a] = self.tiles[a]
            out.append(arr[jobs[:, 1 + a]].reshape(shape))
        return out

    def gather(self, x, jobs):
        """The tiles (B, C, *tiles) of x (N, C, *S) for these jobs, in x's dtype."""
        direct = np.logical_and.reduce([d[jobs[:, 1 + a]] for a, d in enumerate(self.direct)])
        if direct.all():
            return self._gather_direct(x, jobs)
        if not direct.any():
            return self._gather_indexed(x, jobs)
        out = np.empty((len(jobs), x.shape[1], *self.tiles), x.dtype)
        out[direct] = self._gather_direct(x, jobs[direct])
        out[~direct] = self._gather_indexed(x, jobs[~direct])
        return out

    def _gather_direct(self, x, jobs):
        """Tiles that are plain ranges: an indexed copy out of a sliding-window view of x."""
        ndim = len(self.tiles)
        windows = np.lib.stride_tricks.sliding_window_view(
            x, self.tiles, axis=tuple(range(2, 2 + ndim)))        # (N, C, *starts, *tiles)
        starts = [s[jobs[:, 1 + a]] for a, s in enumerate(self.start)]
        return windows[(jobs[:, 0], slice(None), *starts)]      # (B, C, *tiles), a copy

    def _gather_indexed(self, x, jobs):
        """Any tiles, through their (reflected) pixel indices."""
        channels_last = np.moveaxis(x, 1, -1)                 # a view: (N, *S, C)
        n = jobs[:, 0].reshape([-1] + [1] * len(self.tiles))
        tiles = channels_last[(n, *self.axis_index(self.source, jobs))]   # (B, *tiles, C)
        return np.moveaxis(tiles, -1, 1)

    def on_device(self, device):
        """The grid's index and weight arrays as tensors on `device`, for `gather_on` and
        `add_on` (built once per input)."""
        as_t = lambda arrays, dtype: [torch.as_tensor(a, dtype=dtype, device=device) for a in arrays]
        return {"source": as_t(self.source, torch.long), "weight": as_t(self.weight, torch.float32),
                "jobs": torch.as_tensor(self.jobs, dtype=torch.long, device=device)}

    def gather_on(self, x, dev, first, count):
        """Tiles (B, C, *tiles) of x (N, C, *S), a tensor on the device, for jobs
        [first, first + count): one indexed read through the (reflected) pixel indices."""
        jobs = dev["jobs"][first:first + count]
        n = jobs[:, 0].reshape([-1] + [1] * len(self.tiles))
        return x.movedim(1, -1)[(n, *self.axis_index(dev["source"], jobs))].movedim(-1, 1)

    def add_on(self, acc, out, dev, first, count):
        """acc (N, C', *S) += each tile of `out` (B, C', *tiles) times its blending weight, on
        the device: one accumulating index_put_. Padding pixels (weight 0) land on the reflected
        pixel they were read from and add exactly 0 (a NaN there is dropped, as in
        `scatter_add`)."""
        jobs = dev["jobs"][first:first + count]
        weight = None
        for w in self.axis_index(dev["weight"], jobs):
            weight = w if weight is None else weight * w
        weight = weight.unsqueeze(1)                                      # (B, 1, *tiles)
        contribution = torch.where(weight > 0, out * weight, torch.zeros((), device=out.device))
        n = jobs[:, 0].reshape([-1] + [1] * len(self.tiles))
        acc.movedim(1, -1).index_put_((n, *self.axis_index(dev["source"], jobs)),
                                      contribution.movedim(1, -1), accumulate=True)

    def scatter_add(self, acc, out, jobs):
        """acc (N, C', *S) += each tile of `out` (B, C', *tiles) times its blending weight.

        Only a tile's inside part is added: its padding pixels (weight 0) are left out, so a
        NaN there does not count."""
        weight = None
        for w in self.axis_index(self.weight, jobs):
            weight = w if weight is None else weight * w
        contribution = (out * torch.from_numpy(weight).unsqueeze(1)).numpy()
        target, every = acc.numpy(), slice(None)
        for k, (item, *tile) in enumerate(jobs.tolist()):
            target[(item, every, *map(list.__getitem__, self.dest, tile))] += \
                contribution[(k, every, *map(list.__getitem__, self.part, tile))]


def tiled_apply(fn, x, tiles, overlaps, *, pads=None, prepare=None, batch_size=8, progress=False,
                desc="tiles", device=None, workers=1, threads_each=1):
    """Apply `fn` to overlapping tiles of x and blend the outputs.

    x: (N, C, *S), a numpy array or a CPU tensor, of any dtype. pads: (before, after) per
    spatial axis: x is reflect-padded by that much (virtually: tiles are gathered through
    reflected indices, no padded copy is made), the tiles cover the padded extent and only the
    unpadded part is returned. Every tile must fit the padded extent.
    prepare(tiles, items, index) -> float32 tensor (B, C, *tiles): a batch of tiles as gathered
    (x's dtype), the item of each (B,) and, per axis, the input index of each tile pixel
    (B, tile_a) (default: the tiles as float32). Tiles are gathered, prepared and weighted a
    batch at a time with array operations, and added one slice-add each (TileGrid).
    fn: (B, C, *tiles) -> (B, C', *tiles); it sees tiles of all N items in batches of
    `batch_size`. Returns (N, C', *S) float32 (a tensor if x is one), each pixel the weighted
    mean of the outputs of the tiles that cover it. Memory: the result, one batch of tiles.

    device: None, the above (numpy on the CPU, `fn` wherever it runs). A torch device: the
    tiling runs there (`tiled_apply_on`): x is copied to it once, the tiles are gathered,
    prepared and blended there and only the result comes back; `prepare` then receives tensors
    on that device (the tiles in x's dtype or the widened one of `device_dtype`, the items and
    the indices). On a CUDA GPU the numpy tiling around the model was most of the time.

    workers: batches computed at once, each on its own thread with `threads_each` torch
    threads (`denoise_vit.threads.concurrent_calls`; `fn` must be thread-safe then). The
    outputs are added in the batches' order whatever finishes first: the result is the one `fn`
    gives on that many torch threads (an operation may round a last bit differently on two
    threads than on one). With more than one batch, the batches are evened out to a whole
    number per worker (49 tiles of at most 32: two of 25, not 32 and 17); a single batch is one
    call on torch's own threads.
    """
    if device is not None:
        return tiled_apply_on(fn, x, tiles, overlaps, device=device, pads=pads, prepare=prepare,
                              batch_size=batch_size, progress=progress, desc=desc)
    as_tensor = isinstance(x, torch.Tensor)
    if as_tensor:
        x = x.detach().cpu().numpy()
    sizes = tuple(x.shape[2:])
    pads = tuple(pads) if pads is not None else ((0, 0),) * len(sizes)
    padded = tuple(s + b + a for s, (b, a) in zip(sizes, pads))
    tiles, overlaps = tuple(tiles), tuple(overlaps)
    if len(tiles) != len(sizes) or any(t > s for t, s in zip(tiles, padded)):
        raise ValueError(f"tiles {tiles} do not fit input of spatial size {padded}")
    grid = TileGrid(x.shape[0], sizes, tiles, overlaps, pads)
    if prepare is None:
        def prepare(batch, items, index):
            return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    batches = -(-len(grid) // batch_size)
    if workers > 1 and batches > 1:
        # a whole number of batches per worker, of equal size: none waits for a short last one
        batches = -(-batches // workers) * workers
        batch_size = -(-len(grid) // batches)
    # one batch: one call on torch's own threads (splitting it was slower: DENOISE.md)
    workers = min(workers, -(-len(grid) // batch_size))

    def compute(first):
        jobs = grid.jobs[first:first + batch_size]
        index = [src[jobs[:, 1 + a]] for a, src in enumerate(grid.source)]
        out = fn(prepare(grid.gather(x, jobs), jobs[:, 0], index))
        return jobs, out.detach().float().cpu()

    acc = None
    # progress=True shows the bar on a terminal only (tqdm's disable=None)
    with tqdm(total=len(grid), desc=desc, unit="tile", disable=None if progress else True,
              leave=False, dynamic_ncols=True) as bar, \
            concurrent_calls(workers, threads_each) as pool:
        for jobs, out in in_order(compute, range(0, len(grid), batch_size), pool, 2 * workers):
            if acc is None:
                acc = torch.zeros((x.shape[0], out.shape[1], *sizes), dtype=torch.float32)
            grid.scatter_add(acc, out, jobs)
            bar.update(len(jobs))
    return acc if as_tensor else acc.numpy()


def in_order(fn, items, pool=None, ahead=1):
    """fn(item) for each item, yielded in the items' order. With a thread pool, `ahead` calls
    are submitted at a time (the caller adds one batch's tiles while the workers compute the
    next ones); without, one call at a time here."""
    if pool is None:
        yield from map(fn, items)
        return
    items, pending = iter(items), deque()
    for item in itertools.islice(items, max(ahead, 1)):
        pending.append(pool.submit(fn, item))
    while pending:
        result = pending.popleft().result()
        item = next(items, None)
        if item is not None:
            pending.append(pool.submit(fn, item))
        yield result


# numpy dtypes torch has no (full) tensor type for -> the one they are copied to the device as
# (exact: every value is kept)
DEVICE_DTYPES = {np.dtype(np.uint16): np.int32, np.dtype(np.uint32): np.int64,
                 np.dtype(np.uint64): np.float64, np.dtype(np.bool_): np.uint8}


def device_dtype(dtype):
    """The numpy dtype an input of `dtype` is copied to a torch device in: native byte order
    (torch has no other), widened where DEVICE_DTYPES says."""
    dtype = np.dtype(dtype)
    if dtype.byteorder not in "=|":      # big-endian files (TIFF, FITS) read as such
        dtype = dtype.newbyteorder("=")
    return np.dtype(DEVICE_DTYPES.get(dtype, dtype))


def tiled_apply_on(fn, x, tiles, overlaps, *, device, pads=None, prepare=None, batch_size=8,
                   progress=False, desc="tiles"):
    """`tiled_apply` with the tiling on a torch device (same tiles, weights and result, up to
    the order of float32 additions where tiles overlap).

    Memory on the device: x in `device_dtype`, 4 bytes per pixel (and output channel) for the
    result, one batch of tiles. Used by `Denoiser` on a CUDA GPU when that fits.
    """
    as_tensor = isinstance(x, torch.Tensor)
    if as_tensor:
        x = x.detach().cpu().numpy()
    sizes = tuple(x.shape[2:])
    pads = tuple(pads) if pads is not None else ((0, 0),) * len(sizes)
    padded = tuple(s + b + a for s, (b, a) in zip(sizes, pads))
    tiles, overlaps = tuple(tiles), tuple(overlaps)
    if len(tiles) != len(sizes) or any(t > s for t, s in zip(tiles, padded)):
        raise ValueError(f"tiles {tiles} do not fit input of spatial size {padded}")
    device = torch.device(device)
    grid = TileGrid(x.shape[0], sizes, tiles, overlaps, pads)
    dev = grid.on_device(device)
    xd = torch.from_numpy(np.ascontiguousarray(x, dtype=device_dtype(x.dtype))).to(device)
    if prepare is None:
        def prepare(batch, items, index):
            return batch.float()
    acc = None
    with tqdm(total=len(grid), desc=desc, unit="tile", disable=None if progress else True,
              leave=False, dynamic_ncols=True) as bar:
        for first in range(0, len(grid), batch_size):
            count = min(batch_size, len(grid) - first)
            jobs = dev["jobs"][first:first + count]
            index = [src[jobs[:, 1 + a]] for a, src in enumerate(dev["source"])]
            out = fn(prepare(grid.gather_on(xd, dev, first, count), jobs[:, 0], index))
            out = out.detach().float()
            if acc is None:
                acc = torch.zeros((x.shape[0], out.shape[1], *sizes), dtype=torch.float32,
                                  device=device)
            grid.add_on(acc, out, dev, first, count)
            bar.update(count)
    acc = acc.cpu()
    return acc if as_tensor else acc.numpy()


class Denoiser:
    """A model wrapped to denoise images and stacks of any size.

    tile: spatial tile side in pixels (a multiple of the patch); None: the training size;
        0: always the whole image (padded to the patch), however large.
    overlap: pixels shared by neighbouring tiles (None: a quarter of the tile).
    frame_overlap: video models only, frames shared by consecutive temporal windows
        (None: half the window).
    batch_size: tiles per model call (None: as many as make BATCH_PIXELS pixels, at least 1,
        on the CPU: there 32 tiles of 64x64 run 1.5x faster than 8; BATCH_PIXELS_CUDA on a
        CUDA GPU, 512 tiles of 64x64).
    tile_on_device: where the tiles are cut and blended. None: on the model's device if that
        is a CUDA GPU and the input (in `device_dtype`) and the result take at most
        DEVICE_TILING_MEMORY of its free memory, else on the CPU (numpy; there that is the
        faster way); True / False: on the model's device / on the CPU, always.
    precision: "fp32" (default) or "bf16": the model under bfloat16 autocast (convolutions,
        linear layers and attention in bf16, the blending in float32). Measured on an AVX-512
        EPYC with AVX512-BF16 (docs/DENOISE.md): 1.1-1.2x faster, PSNR 0.07 dB lower for
        vit_fast; on a CPU without AVX512-BF16 or AMX torch emulates it, much slower
        (`native_bf16`).
    workers: batches of tiles computed at once, each on its own thread
        (`denoise_vit.threads.concurrent_calls`), torch's threads shared out between them.
        None: on the CPU, torch's thread count as the command's thread policy set it
        (`--threads`; 1 when another process holds a core), at most MAX_CONCURRENT_CALLS;
        else 1. The same result whatever the count, up to the last bit of an operation that
        rounds differently on other thread counts. Measured on 2 cores only.
    """

    def __init__(self, model, *, device="cpu", tile=None, overlap=None, frame_overlap=None,
                 batch_size=None, progress=False, tile_on_device=None, precision="fp32",
                 workers=None):
        if precision not in PRECISIONS:
            raise DenoiseVitError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                                  f"not {precision!r}")
        self.precision = precision
        facts = model.facts
        self.kind = facts.kind
        # BatchNorm folded, channels-last convolutions for planes (denoise_vit.inference.optimize)
        self.channels_last = self.kind == "image"
        self.device = torch.device(device)
        self.model = inference_copy(model if self.kind == "video" else model.plane_model(),
                                    channels_last=self.channels_last).to(device)
        # one spatial multiple for both axes (the models' patches are square)
        self.patch = max(facts.multiple[-2:])
        self.channels = facts.in_chans
        self.frames = facts.frames
        if tile is None:  # the size it was trained on: measured best (docs/DENOISE.md)
            tile = max(facts.train_size[-2:])
        if tile < 0 or tile % self.patch:
            raise DenoiseVitError(f"--tile {tile} must be 0 (whole image) or a positive multiple "
                                  f"of {self.patch} (the model's patch size)")
        self.tile = tile
        self.overlap = tile // TILE_OVERLAP_FRACTION if overlap is None else overlap
        if self.overlap < 0 or (tile and self.overlap >= tile):
            raise DenoiseVitError(f"--overlap {self.overlap} must be at least 0 and smaller than "
                                  f"the tile ({tile})")
        self.frame_overlap = self.frames // 2 if frame_overlap is None else frame_overlap
        if self.kind == "video" and not 0 <= self.frame_overlap < self.frames:
            raise DenoiseVitError(f"frame overlap {self.frame_overlap} must be in "
                                  f"[0, {self.frames - 1}] for a {self.frames}-frame window")
        if batch_size is not None and batch_size < 1:
            raise DenoiseVitError(f"--batch-size must be at least 1 (got {batch_size})")
        self.batch_size = batch_size
        if workers is not None and workers < 1:
            raise DenoiseVitError(f"workers must be at least 1 (got {workers})")
        self.workers = workers
        self.progress = progress
        self.tile_on_device = tile_on_device

    @torch.inference_mode()
    def _change(self, batch):
        """The model's output minus its input, for a batch of tiles (model units)."""
        x = batch.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=self.precision == "bf16"):
            y = self.model(x.contiguous(memory_format=torch.channels_last)
                           if self.channels_last else x)
        return y.float() - x

    def tiles_on_device(self, x):
        """Whether the tiling of the (D, C, H, W) array x runs on the model's device."""
        if self.tile_on_device is not None:
            return self.tile_on_device
        if self.device.type != "cuda":
            return False
        need = x.size * (device_dtype(x.dtype).itemsize + 4)
        return need <= DEVICE_TILING_MEMORY * torch.cuda.mem_get_info(self.device)[0]

    def workers_for(self, on_device):
        """(model calls at once, torch threads each): on the CPU torch's threads shared out,
        at most MAX_CONCURRENT_CALLS calls (each holds its batch's activations); on a device
        (1, torch's thread count). An input of a single batch is one call all the same
        (`tiled_apply`)."""
        threads = torch.get_num_threads()
        if on_device or self.device.type != "cpu":
            return 1, threads
        workers = self.workers or min(threads, MAX_CONCURRENT_CALLS)
        return workers, max(1, threads // workers)

    def batch_for(self, tiles):
        pixels = BATCH_PIXELS_CUDA if self.device.type == "cuda" else BATCH_PIXELS
        return self.batch_size or max(1, pixels // math.prod(tiles))

    def spatial_tiles(self, height, width):
        """Tile shape for padded planes of (height, width)."""
        if self.tile == 0:
            return height, width
        return min(self.tile, height), min(self.tile, width)

    def describe(self, height, width, frames=None):
        """One line on how an input of this size is cut: whole image or a number of tiles."""
        ph, pw = -height % self.patch + height, -width % self.patch + width
        th, tw = self.spatial_tiles(ph, pw)
        n = len(tile_starts(ph, th, self.overlap)) * len(tile_starts(pw, tw, self.overlap))
        where = "whole image" if n == 1 else f"{n} tiles of {th}x{tw} (overlap {self.overlap})"
        if self.kind == "image" and frames and frames > 1:
            where = f"{frames} planes, each {where}"
        if self.kind == "video" and frames is not None:
            padded = frames + 2 * (self.frames // 2)
            windows = len(tile_starts(padded, self.frames, self.frame_overlap))
            where += (f", {windows} windows of {self.frames} frames (overlap "
                      f"{self.frame_overlap}, ends reflect-padded)")
        return where

    def change(self, stack, normalization=None):
        """The model's change to every pixel of a (D, C, H, W) stack, in the model's units.

        stack: a numpy array or CPU tensor of any dtype (D = 1 for a single image, else frames
        or slices; image models denoise each plane, video models treat D as time).
        normalization: a `Normalization` for the whole stack, a list of D (one per plane), or
        None (identity); each tile is mapped by it, in float64, only when it goes to the model.
        Returns float32 numpy (D, C, H, W): blended (model output - model input). Adding it,
        divided by each plane's scale, to the input gives the denoised stack in the input's
        units, exactly the input where the model changes nothing (io.apply_change).
        Memory: 4 bytes per pixel for the result, plus one batch of tiles.
        """
        x = stack.detach().cpu().numpy() if isinstance(stack, torch.Tensor) else np.asarray(stack)
        if x.ndim != 4:
            raise DenoiseVitError(f"expected a (D, C, H, W) stack, got shape {tuple(x.shape)}")
        if x.shape[1] != self.channels:
            raise DenoiseVitError(f"the model takes {self.channels} channel(s), the input has "
                                  f"{x.shape[1]}")
        norms = self.plane_norms(normalization, x.shape[0])
        low, scale, target = (np.array([getattr(n, k) for n in norms], np.float64)
                              for k in ("low", "scale", "target_low"))
        h, w = x.shape[2:]
        spatial = tuple((m // 2, m - m // 2) for m in (-h % self.patch, -w % self.patch))
        tiles = self.spatial_tiles(h + sum(spatial[0]), w + sum(spatial[1]))

        on_device = self.tiles_on_device(x)
        if on_device:   # the tiles come as tensors on the device: the same arithmetic there
            low, scale, target = (torch.from_numpy(a).to(self.device) for a in (low, scale, target))

        def prepare(batch, items, index, planes=None):
            """Tiles (B, C, *tile) as gathered (numpy, or tensors on the device) -> float32
            tensor in model units, mapped in float64 by the Normalization of each tile's plane
            (planes: (B,) for image tiles, (B, T) for video tiles, whose frames are planes)."""
            sel = (slice(None), None) + (None,) * (batch.ndim - 2) if planes is None else \
                (slice(None), None, slice(None)) + (None,) * (batch.ndim - 3)
            planes = items if planes is None else planes
            # in place from here: one float64 array a batch
            mapped = batch.double() if on_device else batch.astype(np.float64)
            mapped -= low[planes][sel]
            mapped *= scale[planes][sel]
            mapped += target[planes][sel]
            return mapped.float() if on_device else torch.from_numpy(mapped.astype(np.float32))

        device = self.device if on_device else None
        workers, threads_each = self.workers_for(on_device)
        if self.kind == "image":
            return tiled_apply(self._change, x, tiles, (self.overlap, self.overlap), pads=spatial,
                               prepare=prepare, batch_size=self.batch_for(tiles),
                               progress=self.progress, device=device, workers=workers,
                               threads_each=threads_each)
        half = self.frames // 2
        clip = x.transpose(1, 0, 2, 3)[None]   # (1, C, T, H, W), a view
        tiles = (self.frames, *tiles)
        out = tiled_apply(self._change, clip, tiles, (self.frame_overlap, self.overlap, self.overlap),
                          pads=((half, half),) + spatial,
                          prepare=lambda batch, items, index: prepare(batch, items, index, index[0]),
                          batch_size=self.batch_for(tiles), progress=self.progress, device=device,
                          workers=workers, threads_each=threads_each)
        return out[0].transpose(1, 0, 2, 3)

    @staticmethod
    def plane_norms(normalization, planes):
        norms = normalization if isinstance(normalization, (list, tuple)) else \
            [normalization or Normalization.identity()] * planes
        if len(norms) != planes:
            raise ValueError(f"{len(norms)} normalizations for {planes} planes")
        return norms

    def denoise(self, stack, normalization=None):
        """Denoise a (D, C, H, W) stack; returns float32 (D, C, H, W) in the input's units.

        As `change`, plus the input: for files, denoise_vit.inference.io.apply_change does that
        step in the output's dtype, a chunk at a time.
        """
        x = stack.detach().cpu().numpy() if isinstance(stack, torch.Tensor) else np.asarray(stack)
        delta = self.change(x, normalization)
        scale = np.array([n.scale for n in self.plane_norms(normalization, x.shape[0])])
        return torch.from_numpy((x + delta / scale[:, None, None, None]).astype(np.float32))
