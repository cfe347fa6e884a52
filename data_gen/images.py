"""The course's synthetic microscopy images, generated in batches with torch.

The course helper ``gen(n)`` drew one image at a time in Python. Here every object of every
image is drawn at once, in four modules:

* ``data_gen.settings``: ``GeneratorSettings``, the rates and ranges below, checked once;
* ``data_gen.sampling``: ``sample_cells`` / ``sample_filled_rects`` / ``sample_noisy_rects``
  draw object parameters as tensors padded to K slots per image;
* ``data_gen.rendering``: ``render_cells`` / ``render_rects`` add given objects into (B, H, W)
  images, ``add_sensor_noise`` the shot and Gaussian noise;
* this module: ``generate_images`` / ``generate_noise2noise`` put them together, in chunks.

The video generator (``data_gen.video``) reuses the same pieces with moving cells.

Distribution (SPEC section 1; pixel units, integer ranges inclusive):

* cells: count ~ Poisson(cell_rate * H * W); radius r uniform integer in ``cell_radius``;
  centre uniform integer in [r, size - r] per axis; profile
  ``amplitude * (0.39 - 0.36 * d2 / r**2)`` where ``d2 < r**2``, else 0; amplitude uniform in
  ``cell_amplitude``; overlapping cells add.
* filled rectangles: count ~ Poisson(filled_rate * H * W); long side uniform integer in
  ``filled_long``, short side in ``filled_short``, vertical or horizontal with p = 1/2;
  top-left uniform so the rectangle fits; constant value uniform in ``filled_value``.
* noisy rectangles: count ~ Poisson(noisy_rate * H * W); both sides uniform integers in
  ``noisy_side``, placed the same way; value uniform in ``noisy_value`` times, per pixel,
  max(0, N(0, 1)).
* ``target`` = cells; ``input`` = target + filled + noisy; then optional Poisson shot noise
  (``photons``) and Gaussian noise (``gaussian_sigma``) on the input only.

Objects that cannot fit (an image smaller than a disc or a rectangle) are handled as follows:
a rectangle side longer than the image is cut to the image; a disc whose centre range
[r, size - r] is empty gets its centre uniform in [size - r, r] instead, i.e. it is cropped
as evenly as the integer grid allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from data_gen import compiled
from data_gen.checks import check_count, check_dtype, check_generator, image_size, resolve_device
from data_gen.rendering import add_sensor_noise, render_cells, render_rects
from data_gen.sampling import (
    Cells,
    Rects,
    sample_cells,
    sample_filled_rects,
    sample_noisy_rects,
)
from data_gen.settings import GeneratorSettings, settings_from_keywords

__all__ = [
    "Scene",
    "generate_images",
    "generate_noise2noise",
    # re-exported from the modules that define them, where callers have long found them
    "Cells",
    "Rects",
    "sample_cells",
    "sample_filled_rects",
    "sample_noisy_rects",
    "render_cells",
    "render_rects",
    "add_sensor_noise",
    "resolve_device",
    "image_size",
]

# Images generated per chunk. It bounds memory; on the CPU a small chunk also keeps its buffers
# in cache (256 measured fastest on a 2-core machine, 1024 a quarter slower), while a GPU wants
# large batches. Constants per device type, not derived from the machine, so that a seed gives
# the same images on every machine of that type.
CHUNK_CPU = 256
CHUNK_ACCELERATOR = 4096


def chunk_size(device: torch.device) -> int:
    return CHUNK_CPU if device.type == "cpu" else CHUNK_ACCELERATOR


def _chunks(n: int, device: torch.device):
    step = chunk_size(device)
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


@dataclass(frozen=True)
class Scene:
    """What one generator call draws: its settings, image size, device and dtype, all checked.

    Shared by the image, noise2noise and video generators; its methods draw and render the
    objects of one chunk.
    """

    settings: GeneratorSettings
    height: int
    width: int
    device: torch.device
    dtype: torch.dtype

    @classmethod
    def build(cls, size, settings: GeneratorSettings, *, generator, device, dtype) -> Scene:
        """Check the call's arguments; errors name the argument."""
        height, width = image_size(size)
        generator = check_generator(generator)
        dtype = check_dtype(dtype)
        return cls(settings=settings, height=height, width=width,
                   device=resolve_device(generator, device), dtype=dtype)

    def cells(self, n, generator) -> Cells:
        s = self.settings
        return sample_cells(n, self.height, self.width, rate=s.cell_rate, radius=s.cell_radius,
                            amplitude=s.cell_amplitude, generator=generator, device=self.device,
                            dtype=self.dtype)

    def filled(self, n, generator) -> Rects:
        s = self.settings
        return sample_filled_rects(n, self.height, self.width, rate=s.filled_rate,
                                   long=s.filled_long, short=s.filled_short,
                                   value=s.filled_value, generator=generator,
                                   device=self.device, dtype=self.dtype)

    def noisy(self, n, generator) -> Rects:
        s = self.settings
        return sample_noisy_rects(n, self.height, self.width, rate=s.noisy_rate,
                                  side=s.noisy_side, value=s.noisy_value, generator=generator,
                                  device=self.device, dtype=self.dtype)

    def add_clutter(self, out: Tensor, generator) -> None:
        """Add freshly drawn filled and noisy rectangles into ``out`` (B, H, W), in place."""
        n = out.shape[0]
        render_rects(self.filled(n, generator), self.height, self.width, out=out)
        render_rects(self.noisy(n, generator), self.height, self.width, pixel_noise=True,
                     generator=generator, out=out)

    def add_sensor_noise(self, x: Tensor, generator) -> None:
        """Shot and Gaussian noise, when on, applied to ``x`` in place."""
        s = self.settings
        if s.photons is not None or s.gaussian_sigma > 0:
            x.copy_(add_sensor_noise(x, gaussian_sigma=s.gaussian_sigma, photons=s.photons,
                                     generator=generator))

    def noisy_copy(self, clean: Tensor, out: Tensor, generator) -> None:
        """out = clean + fresh clutter (+ sensor noise); all (B, H, W), written in place.

        Rendering the clutter straight into ``out`` saves a buffer and a pass over the batch;
        the compiled path copies and adds image by image, in one pass.
        """
        if compiled.usable(out) and compiled.usable(clean):
            n = out.shape[0]
            compiled.clutter_copy(out, clean, self.filled(n, generator),
                                  self.noisy(n, generator), generator)
        else:
            out.copy_(clean)
            self.add_clutter(out, generator)
        self.add_sensor_noise(out, generator)

    def empty(self, n: int, *frames: int) -> Tensor:
        return torch.empty((n, *frames, self.height, self.width), device=self.device,
                           dtype=self.dtype)

    def zeros(self, n: int, *frames: int) -> Tensor:
        return torch.zeros((n, *frames, self.height, self.width), device=self.device,
                           dtype=self.dtype)


def _draw_stills(n, size, copies: int, settings: GeneratorSettings, *, generator, device,
                 dtype) -> tuple[list[Tensor], Tensor]:
    """``copies`` noisy versions of ``n`` images of cells; returns (noisy list, clean), each
    (n, 1, H, W). Per chunk: the cells, then each copy's clutter and sensor noise in turn."""
    n = check_count("n", n)
    scene = Scene.build(size, settings, generator=generator, device=device, dtype=dtype)
    clean = scene.empty(n)
    noisy = [scene.empty(n) for _ in range(copies)]
    for part in _chunks(n, scene.device):
        m = part.stop - part.start
        if compiled.usable(clean):
            compiled.draw_stills(
                clean[part], [copy[part] for copy in noisy], generator=generator,
                cells=lambda: scene.cells(m, generator),
                filled=lambda: scene.filled(m, generator),
                noisy=lambda: scene.noisy(m, generator),
                sensor_noise=lambda x: scene.add_sensor_noise(x, generator))
            continue
        clean[part].zero_()
        render_cells(scene.cells(m, generator), scene.height, scene.width, out=clean[part])
        for copy in noisy:
            scene.noisy_copy(clean[part], copy[part], generator)
    return [copy.unsqueeze(1) for copy in noisy], clean.unsqueeze(1)


@compiled.one_decision
def generate_images(n: int, size=64, *, generator: torch.Generator | None = None, device=None,
                    dtype: torch.dtype = torch.float32, settings: GeneratorSettings | None = None,
                    **options) -> tuple[Tensor, Tensor]:
    """Draw ``n`` images of the course distribution (see the module docstring).

    size: int (square) or (H, W).
    generator: a ``torch.Generator``; the same generator state gives the same images. Without
        one, torch's global generator for the device is used.
    device: where to generate; defaults to the generator's device, else the CPU.
    settings: a ``GeneratorSettings`` (default: the course's); any field of it can also be
        given as a keyword (``cell_rate=0.01``), which changes that field of ``settings``.
    Returns (input, target), each (n, 1, H, W) of ``dtype``: target = the cells alone, input =
    cells + filled rectangles + noisy rectangles (+ optional shot and Gaussian noise).
    """
    settings = settings_from_keywords("generate_images", settings, options)
    (inp,), target = _draw_stills(n, size, 1, settings, generator=generator, device=device,
                                  dtype=dtype)
    return inp, target


@compiled.one_decision
def generate_noise2noise(n: int, size=64, *, generator: torch.Generator | None = None,
                         device=None, dtype: torch.dtype = torch.float32,
                         settings: GeneratorSettings | None = None,
                         **options) -> tuple[Tensor, Tensor, Tensor]:
    """Noise2Noise pairs: the same cells under two independent clutter draws.

    Arguments as ``generate_images``, except that ``settings`` defaults to
    ``GeneratorSettings.noise2noise()`` (the course's rectangle rates 0.0005); shot and
    Gaussian noise, when on, are drawn independently for each noisy image.
    Returns (noisy_a, noisy_b, clean), each (n, 1, H, W).
    """
    settings = settings_from_keywords("generate_noise2noise", settings, options,
                                      preset=GeneratorSettings.noise2noise)
    (noisy_a, noisy_b), clean = _draw_stills(n, size, 2, settings, generator=generator,
                                             device=device, dtype=dtype)
    return noisy_a, noisy_b, clean
