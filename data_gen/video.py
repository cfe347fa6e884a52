"""Videos of the course's cells: the same discs moving under transient clutter.

A clip of T frames draws its cells once (count, radius, amplitude and starting centre exactly as
``generate_images``) and moves them: each cell gets a random direction and a speed uniform in
``speed`` (pixels per frame); every frame it moves by that velocity plus N(0, jitter**2) per
axis, and bounces off the borders so its centre stays in [r, size - r]. The jitter does not
accumulate in the velocity, so a track wobbles around a straight (reflected) line instead of
drifting into a random walk of velocities.

Clutter (filled and noisy rectangles) is drawn independently for every frame by default, so
a model that sees several frames can look behind it. ``persistent_clutter=True`` keeps the
same rectangles, with the same per-pixel noise, in every frame; add
``redraw_pixel_noise=True`` to keep the rectangles but redraw the noise inside the noisy ones
every frame. ``persistent_fraction=f`` keeps a share: each rectangle is persistent with
probability f (drawn once per clip, as with ``persistent_clutter``) and the others are drawn
anew in every frame, so a frame holds as many rectangles on average as at either extreme;
f = 0 is the default (every rectangle per frame, the same draws bit for bit), f = 1 is
``persistent_clutter=True`` (the same draws bit for bit). Shot and Gaussian noise (``photons``, ``gaussian_sigma``) are always drawn per
frame: they are sensor noise.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from data_gen import compiled, images
from data_gen.checks import check_count, check_flag, check_nonnegative, check_range
from data_gen.images import Scene
from data_gen.rendering import render_cells, render_rects
from data_gen.sampling import Cells, Rects
from data_gen.settings import GeneratorSettings, settings_from_keywords

__all__ = ["Tracks", "generate_videos", "move_cells"]


@dataclass
class Tracks:
    """Moving discs of n clips of T frames, padded to K slots per clip.

    centre_y, centre_x: (n, T, K) float pixel coordinates.
    radius: (n, K) int64. amplitude: (n, K) float. valid: (n, K) bool.
    """

    centre_y: Tensor
    centre_x: Tensor
    radius: Tensor
    amplitude: Tensor
    valid: Tensor

    def frame_cells(self) -> Cells:
        """The discs of every frame as ``Cells`` of shape (n * T, K), clip-major."""
        n, t, k = self.centre_y.shape

        def per_frame(x):
            return x[:, None].expand(n, t, k).reshape(n * t, k)

        return Cells(
            centre_y=self.centre_y.reshape(n * t, k),
            centre_x=self.centre_x.reshape(n * t, k),
            radius=per_frame(self.radius),
            amplitude=per_frame(self.amplitude),
            valid=per_frame(self.valid),
        )


def _reflect(p: Tensor, v: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Fold positions ``p`` back into [lo, hi] as a ball bouncing off both walls.

    Handles any number of bounces in one step (a tiny image can have a span shorter than a
    step); the velocity ``v`` flips where the number of bounces is odd.
    """
    span = hi - lo
    moving = span > 0
    u = (p - lo) / torch.where(moving, span, 1.0)
    bounces = torch.floor(u)
    frac = u - bounces
    odd = (torch.remainder(bounces, 2) == 1) & moving
    folded = torch.where(odd, 1.0 - frac, frac)
    p = torch.where(moving, lo + folded * span, lo)
    return p, torch.where(odd, -v, v)


def move_cells(
    cells: Cells,
    frames: int,
    height: int,
    width: int,
    *,
    speed: tuple[float, float] = (0.5, 2.0),
    jitter: float = 0.3,
    generator: torch.Generator | None = None,
) -> Tracks:
    """Move the (n, K) ``cells`` (integer centres, as sampled) over ``frames`` frames.

    Frame 0 is the sampled position. Returns ``Tracks`` with (n, T, K) centres.
    """
    n, k = cells.valid.shape
    device = cells.radius.device
    dtype = cells.amplitude.dtype
    r = cells.radius.to(dtype)
    bounds = []
    for size in (height, width):
        # the same range as the sampler, bounds swapped when the image is smaller than a disc
        bounds.append((torch.minimum(r, size - r), torch.maximum(r, size - r)))
    angle = 2 * math.pi * torch.rand((n, k), generator=generator, device=device, dtype=dtype)
    s = speed[0] + (speed[1] - speed[0]) * torch.rand((n, k), generator=generator,
                                                     device=device, dtype=dtype)
    velocity = [s * torch.sin(angle), s * torch.cos(angle)]
    wobble = jitter * torch.randn((2, max(frames - 1, 0), n, k), generator=generator,
                                  device=device, dtype=dtype)
    position = [cells.centre_y.to(dtype), cells.centre_x.to(dtype)]
    track = [[position[0]], [position[1]]]
    # integrating the motion is inherently sequential in time; all clips and cells move at once
    for t in range(frames - 1):
        for axis in (0, 1):
            lo, hi = bounds[axis]
            moved = position[axis] + velocity[axis] + wobble[axis, t]
            position[axis], velocity[axis] = _reflect(moved, velocity[axis], lo, hi)
            track[axis].append(position[axis])
    return Tracks(
        centre_y=torch.stack(track[0], dim=1),
        centre_x=torch.stack(track[1], dim=1),
        radius=cells.radius,
        amplitude=cells.amplitude,
        valid=cells.valid,
    )


def _repeat_frames(rects: Rects, frames: int) -> Rects:
    """(n, K) rectangles as (n * T, K): the same rectangles in every frame of a clip."""
    def rep(x):
        return x.repeat_interleave(frames, dim=0)

    return Rects(top=rep(rects.top), left=rep(rects.left), height=rep(rects.height),
                 width=rep(rects.width), value=rep(rects.value), valid=rep(rects.valid))


def _keep(rects: Rects, fraction: float, generator, *, persistent: bool = True) -> Rects:
    """The rectangles that are persistent (probability ``fraction`` each), or the others."""
    u = torch.rand(rects.valid.shape, generator=generator, device=rects.valid.device)
    chosen = u < fraction if persistent else u >= fraction
    return dataclasses.replace(rects, valid=rects.valid & chosen)


@compiled.one_decision
def generate_videos(
    n: int,
    frames: int = 8,
    size=64,
    *,
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
    speed: tuple[float, float] = (0.5, 2.0),
    jitter: float = 0.3,
    persistent_clutter: bool = False,
    redraw_pixel_noise: bool = False,
    persistent_fraction: float = 0.0,
    settings: GeneratorSettings | None = None,
    **options,
) -> tuple[Tensor, Tensor]:
    """Draw ``n`` clips of ``frames`` frames of moving cells under clutter.

    speed: (lo, hi) pixels per frame. jitter: per-frame, per-axis standard deviation (pixels)
        added to each step. persistent_clutter / redraw_pixel_noise / persistent_fraction: see
        the module docstring.
    settings and the remaining keywords (its fields) are those of ``generate_images``, per frame.
    Returns (input, target), each (n, 1, T, H, W): target = the moving cells of each frame.
    """
    n = check_count("n", n)
    frames = check_count("frames", frames, minimum=1)
    speed = check_range("speed", speed, minimum=0)
    jitter = check_nonnegative("jitter", jitter)
    persistent_clutter = check_flag("persistent_clutter", persistent_clutter)
    redraw_pixel_noise = check_flag("redraw_pixel_noise", redraw_pixel_noise)
    fraction = check_nonnegative("persistent_fraction", persistent_fraction)
    if fraction > 1:
        raise ValueError(f"persistent_fraction must be in [0, 1], got {persistent_fraction}")
    if persistent_clutter:
        if fraction not in (0, 1):
            raise ValueError("persistent_clutter=True keeps every rectangle: give it or "
                             f"persistent_fraction={persistent_fraction}, not both")
        fraction = 1.0
    settings = settings_from_keywords("generate_videos", settings, options)
    scene = Scene.build(size, settings, generator=generator, device=device, dtype=dtype)
    h, w = scene.height, scene.width
    target, inp = scene.zeros(n, frames), scene.empty(n, frames)
    clips_per_chunk = max(1, images.chunk_size(scene.device) // frames)
    for start in range(0, n, clips_per_chunk):
        part = slice(start, min(start + clips_per_chunk, n))
        m = part.stop - part.start
        tracks = move_cells(scene.cells(m, generator), frames, h, w, speed=speed, jitter=jitter,
                            generator=generator)
        clean = target[part].view(m * frames, h, w)
        render_cells(tracks.frame_cells(), h, w, out=clean)
        observed = inp[part].view(m * frames, h, w)
        if fraction == 0:
            scene.noisy_copy(clean, observed, generator)
            continue
        filled_rects, noisy_rects = scene.filled(m, generator), scene.noisy(m, generator)
        if fraction < 1:  # the persistent share of the clip's rectangles
            filled_rects = _keep(filled_rects, fraction, generator)
            noisy_rects = _keep(noisy_rects, fraction, generator)
        clutter = render_rects(filled_rects, h, w)  # (m, H, W), one per clip
        if redraw_pixel_noise:
            clutter = clutter.repeat_interleave(frames, dim=0)
            render_rects(_repeat_frames(noisy_rects, frames), h, w, pixel_noise=True,
                         generator=generator, out=clutter)
        else:
            render_rects(noisy_rects, h, w, pixel_noise=True, generator=generator, out=clutter)
            clutter = clutter.repeat_interleave(frames, dim=0)
        torch.add(clean, clutter, out=observed)
        if fraction < 1:  # the other rectangles, drawn anew in every frame
            render_rects(_keep(scene.filled(m * frames, generator), fraction, generator,
                               persistent=False), h, w, out=observed)
            render_rects(_keep(scene.noisy(m * frames, generator), fraction, generator,
                               persistent=False), h, w, pixel_noise=True, generator=generator,
                         out=observed)
        scene.add_sensor_noise(observed, generator)
    return inp.unsqueeze(1), target.unsqueeze(1)
