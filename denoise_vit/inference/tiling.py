"""Denoising inputs of any size with a model trained on small crops (no file I/O here).

* Padding: each spatial side is reflect-padded up to a multiple of the patch and cropped back.
* Tiling: a padded image larger than the tile is cut into overlapping tiles, the last one
  aligned with the far edge. Each tile's output is weighted by a separable window that is 1 in
  the tile's middle and rises smoothly (half a Hann window) over the overlap at every edge that
  faces another tile (its outermost pixels get no weight), and the weighted sum is divided by
  the summed weights, so the weights form a partition of unity and no seam is left where tiles
  meet. Tiles go through the model in batches with a progress bar. An image no larger than the
  tile is one tile: the whole-image path.
* Stacks: image models denoise each plane (tiles of all planes share batches); video models
  slide a temporal window of `num_frames` frames along the time axis, with the stack's ends
  reflect-padded by half a window so that the first and last frames also get context on both
  sides, and windows blended in time the same way as tiles in space.
* Intensity: `Normalization` (denoise_vit.inference.intensity) maps the input onto the training range and
  back; `Denoiser.denoise` applies it around the model.
"""
import math
from itertools import product

import torch
from tqdm.auto import tqdm

from ..errors import DenoiseVitError
from .intensity import Normalization

TILE_OVERLAP_FRACTION = 4   # default overlap: a quarter of the tile
BATCH_PIXELS = 32 * 64 * 64  # default batch: tiles totalling this many pixels (32 of 64x64)


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


def window(sizes, tiles, overlaps, starts):
    """Separable blending weights, shape `tiles`, for the tile at `starts`."""
    w = torch.ones((), dtype=torch.float64)
    for size, tile, overlap, start in zip(sizes, tiles, overlaps, starts):
        w = w.unsqueeze(-1) * window_1d(size, tile, overlap, start)
    return w


def tile_grid(sizes, tiles, overlaps):
    """Every tile's start offsets (a tuple per tile) over an N-D grid."""
    return list(product(*(tile_starts(s, t, o) for s, t, o in zip(sizes, tiles, overlaps))))


def weight_sum(sizes, tiles, overlaps):
    """Sum of all tiles' windows over the grid (the normaliser of the blend), float64."""
    total = torch.zeros(sizes, dtype=torch.float64)
    for starts in tile_grid(sizes, tiles, overlaps):
        region = tuple(slice(s, s + t) for s, t in zip(starts, tiles))
        total[region] += window(sizes, tiles, overlaps, starts)
    return total


def tiled_apply(fn, x, tiles, overlaps, *, batch_size=8, progress=False, desc="tiles"):
    """Apply `fn` to overlapping tiles of x and blend the outputs.

    x: (N, C, *S) with len(S) == len(tiles); every tile must fit (tiles[i] <= S[i]).
    fn: (B, C, *tiles) -> (B, C', *tiles); it sees tiles of all N items in batches of
    `batch_size`. Returns (N, C', *S) float32 on x's device, each pixel the weighted mean of the
    outputs of the tiles that cover it.
    """
    sizes = tuple(x.shape[2:])
    tiles, overlaps = tuple(tiles), tuple(overlaps)
    if len(tiles) != len(sizes) or any(t > s for t, s in zip(tiles, sizes)):
        raise ValueError(f"tiles {tiles} do not fit input of spatial size {sizes}")
    grid = tile_grid(sizes, tiles, overlaps)
    weights = {starts: window(sizes, tiles, overlaps, starts).to(x.device, torch.float32)
               for starts in grid}
    jobs = list(product(range(x.shape[0]), grid))
    acc, norm = None, weight_sum(sizes, tiles, overlaps).to(x.device, torch.float32)
    # progress=True shows the bar on a terminal only (tqdm's disable=None)
    with tqdm(total=len(jobs), desc=desc, unit="tile", disable=None if progress else True,
              leave=False, dynamic_ncols=True) as bar:
        for first in range(0, len(jobs), batch_size):
            batch = jobs[first:first + batch_size]
            regions = [(n, (slice(None),) + tuple(slice(s, s + t) for s, t in zip(starts, tiles)))
                       for n, starts in batch]
            out = fn(torch.stack([x[n][region] for n, region in regions])).float()
            if acc is None:
                acc = torch.zeros((x.shape[0], out.shape[1], *sizes), dtype=torch.float32,
                                  device=x.device)
            for y, (n, region), (_, starts) in zip(out, regions, batch):
                acc[n][region] += y.to(x.device) * weights[starts]
            bar.update(len(batch))
    return acc / norm


class Denoiser:
    """A model wrapped to denoise images and stacks of any size.

    tile: spatial tile side in pixels (a multiple of the patch); None: the training size;
        0: always the whole image (padded to the patch), however large.
    overlap: pixels shared by neighbouring tiles (None: a quarter of the tile).
    frame_overlap: video models only, frames shared by consecutive temporal windows
        (None: half the window).
    batch_size: tiles per model call (None: as many as make BATCH_PIXELS pixels, at least 1;
        on this CPU 32 tiles of 64x64 run 1.5x faster than 8).
    """

    def __init__(self, model, *, device="cpu", tile=None, overlap=None, frame_overlap=None,
                 batch_size=None, progress=False):
        facts = model.facts
        self.kind = facts.kind
        self.model = (model if self.kind == "video" else model.plane_model()).to(device).eval()
        self.device = torch.device(device)
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
        self.progress = progress

    @torch.inference_mode()
    def _run(self, batch):
        return self.model(batch.to(self.device)).float().to(batch.device)

    def batch_for(self, tiles):
        return self.batch_size or max(1, BATCH_PIXELS // math.prod(tiles))

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

    def denoise_planes(self, x):
        """(N, C, H, W) -> (N, C, H, W): each plane on its own (image models)."""
        x, crop = pad_to_multiple(x.float(), {2: self.patch, 3: self.patch})
        tiles = self.spatial_tiles(*x.shape[2:])
        out = tiled_apply(self._run, x, tiles, (self.overlap, self.overlap),
                          batch_size=self.batch_for(tiles), progress=self.progress)
        return out[crop]

    def denoise_video(self, x):
        """(C, T, H, W) -> (C, T, H, W) with a sliding temporal window (video models)."""
        half = self.frames // 2
        x = reflect_pad(x.float(), {1: (half, half)})
        x, crop = pad_to_multiple(x, {2: self.patch, 3: self.patch})
        tiles = (self.frames, *self.spatial_tiles(*x.shape[2:]))
        out = tiled_apply(self._run, x.unsqueeze(0), tiles,
                          (self.frame_overlap, self.overlap, self.overlap),
                          batch_size=self.batch_for(tiles), progress=self.progress)[0]
        crop = (crop[0], slice(half, out.shape[1] - half)) + crop[2:]
        return out[crop]

    def denoise(self, stack, normalization=None):
        """Denoise a (D, C, H, W) stack (D = 1 for a single image; D = frames or slices).

        Image models denoise each of the D planes; video models treat D as time.
        normalization: a `Normalization` for the whole stack, a list of D of them (one per
        plane), or None (identity). The input is mapped by it before the model and back after.
        Returns float32 (D, C, H, W) in the input's units.
        """
        x = torch.as_tensor(stack, dtype=torch.float32)
        if x.ndim != 4:
            raise DenoiseVitError(f"expected a (D, C, H, W) stack, got shape {tuple(x.shape)}")
        if x.shape[1] != self.channels:
            raise DenoiseVitError(f"the model takes {self.channels} channel(s), the input has "
                                  f"{x.shape[1]}")
        norms = normalization if isinstance(normalization, (list, tuple)) else \
            [normalization or Normalization.identity()] * x.shape[0]
        if len(norms) != x.shape[0]:
            raise ValueError(f"{len(norms)} normalizations for {x.shape[0]} planes")
        x = torch.stack([n.apply(plane) for n, plane in zip(norms, x)])
        if self.kind == "video":
            out = self.denoise_video(x.transpose(0, 1)).transpose(0, 1)
        else:
            out = self.denoise_planes(x)
        return torch.stack([n.invert(plane) for n, plane in zip(norms, out)])
