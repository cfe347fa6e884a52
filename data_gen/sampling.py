"""Drawing the objects of a batch: every object of every image at once, as tensors.

``sample_cells`` / ``sample_filled_rects`` / ``sample_noisy_rects`` draw object parameters as
tensors padded to K slots per image (K = the largest count in the batch), with a ``valid`` mask
of shape (n, K). Their defaults are the course's (``GeneratorSettings()``); the laws are in the
``data_gen.images`` docstring. Drawing nothing but parameters is cheap, which is what the
statistical tests rely on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from data_gen import compiled
from data_gen.checks import resolve_device
from data_gen.settings import GeneratorSettings

__all__ = ["Cells", "Rects", "sample_cells", "sample_filled_rects", "sample_noisy_rects"]

_COURSE = GeneratorSettings()


@dataclass
class Cells:
    """Discs, padded to K slots per image (slots where ``valid`` is False are ignored).

    centre_y, centre_x: (B, K) pixel coordinates; int64 for still images, floating point for
        moving cells (rendering handles both).
    radius: (B, K) int64.
    amplitude: (B, K) float.
    valid: (B, K) bool.
    """

    centre_y: Tensor
    centre_x: Tensor
    radius: Tensor
    amplitude: Tensor
    valid: Tensor

    @property
    def counts(self) -> Tensor:
        """(B,) int64: number of cells per image."""
        return self.valid.sum(dim=1)


@dataclass
class Rects:
    """Axis-aligned rectangles, padded to K slots per image.

    top, left: (B, K) int64, the top-left pixel (always inside the image).
    height, width: (B, K) int64, at least 1 and at most the image size.
    value: (B, K) float, the constant (filled) or the scale of the per-pixel noise (noisy).
    valid: (B, K) bool.
    """

    top: Tensor
    left: Tensor
    height: Tensor
    width: Tensor
    value: Tensor
    valid: Tensor

    @property
    def counts(self) -> Tensor:
        """(B,) int64: number of rectangles per image."""
        return self.valid.sum(dim=1)



class _TorchDraws:
    """The samplers' draws as torch calls on ``generator`` (None: torch's default generator
    for the device). ``compiled.Stream`` makes the same draws in kernels on the CPU."""

    def __init__(self, generator, device):
        self.generator, self.device = generator, device

    def __enter__(self) -> _TorchDraws:
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def rand(self, shape, dtype: torch.dtype) -> Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device, dtype=dtype)

    def randint(self, low: int, high: int, shape) -> Tensor:
        """Integers in [low, high)."""
        return torch.randint(low, high, shape, generator=self.generator, device=self.device)

    def objects(self, *args) -> None:
        """No sampler in one call here (``compiled.Stream.objects``)."""
        return None

    def poisson(self, mean: float, n: int) -> Tensor:
        """(n,) int64 draws from Poisson(mean)."""
        rates = torch.full((n,), float(mean), device=self.device)
        return torch.poisson(rates, generator=self.generator).long()


def _draws(generator, device):
    """Where a sampler's draws come from: ``compiled.Stream`` for a CPU generator when the
    kernels are available (the same values, fewer torch calls), else torch calls."""
    if device.type == "cpu":
        source = torch.default_generator if generator is None else generator
        if compiled.Stream.usable(source):
            return compiled.Stream(source)
    return _TorchDraws(generator, device)


def _slots(counts: Tensor) -> tuple[int, Tensor]:
    """K = the largest count, and the (n, K) mask of slots in use."""
    if compiled.handles(counts):
        valid = torch.from_numpy(compiled.kernels().slots(counts.numpy()))
        return valid.shape[1], valid
    k = int(counts.max()) if counts.numel() else 0
    valid = torch.arange(k, device=counts.device) < counts[:, None]
    return k, valid


def _uniform(lo: float, hi: float, u: Tensor) -> Tensor:
    """lo + (hi - lo) * u for uniforms ``u`` (overwritten on the compiled path)."""
    if compiled.handles(u):  # the same arithmetic, in place, without two more passes
        compiled.kernels().uniform(lo, hi, u.numpy())
        return u
    return lo + (hi - lo) * u


def _between(lo: Tensor, hi: Tensor, u: Tensor) -> Tensor:
    """Uniform integers in [lo, hi] (int64 tensors, lo <= hi) from uniforms ``u`` in [0, 1)."""
    if compiled.handles(u):
        return torch.from_numpy(compiled.kernels().between(lo.numpy(), hi.numpy(), u.numpy()))
    span = hi - lo + 1
    # u * span can round up to span in float32; the clamp keeps the draw in range
    return lo + torch.minimum((u * span).long(), span - 1)


def _centres(r: Tensor, size: int, u: Tensor) -> Tensor:
    """Centres uniform in [r, size - r] from uniforms ``u``, which keeps a disc inside; when
    that range is empty (tiny image) the bounds swap."""
    if compiled.handles(u):
        return torch.from_numpy(compiled.kernels().centres(r.numpy(), size, u.numpy()))
    return _between(torch.minimum(r, size - r), torch.maximum(r, size - r), u)


def sample_cells(
    n: int,
    height: int,
    width: int,
    *,
    rate: float = _COURSE.cell_rate,
    radius: tuple[int, int] = _COURSE.cell_radius,
    amplitude: tuple[float, float] = _COURSE.cell_amplitude,
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> Cells:
    """Draw the discs of ``n`` images of size (height, width). Returns ``Cells`` of shape (n, K).

    Centres are int64; K is the largest count in the batch.
    """
    device = resolve_device(generator, device)
    default = torch.get_default_dtype()
    with _draws(generator, device) as draw:
        drawn = draw.objects("cells", dtype, n, height, width, rate * height * width, *radius,
                             *amplitude)
        if drawn is not None:
            return Cells(*drawn)
        counts = draw.poisson(rate * height * width, n)
        k, valid = _slots(counts)
        r = draw.randint(radius[0], radius[1] + 1, (n, k))
        centre_y = _centres(r, height, draw.rand(r.shape, default))
        centre_x = _centres(r, width, draw.rand(r.shape, default))
        amp = _uniform(amplitude[0], amplitude[1], draw.rand((n, k), dtype))
    return Cells(centre_y=centre_y, centre_x=centre_x, radius=r, amplitude=amp, valid=valid)


def _place_rects(height, width, h, w, value, valid, draw) -> Rects:
    # a side longer than the image is cut to the image, then the top-left is uniform so it fits
    u_top = draw.rand(h.shape, torch.get_default_dtype())
    u_left = draw.rand(h.shape, torch.get_default_dtype())
    if compiled.handles(u_top):
        top, left, h, w = map(torch.from_numpy, compiled.kernels().place(
            h.numpy(), w.numpy(), height, width, u_top.numpy(), u_left.numpy()))
    else:
        h = h.clamp(max=height)
        w = w.clamp(max=width)
        top = _between(torch.zeros_like(h), height - h, u_top)
        left = _between(torch.zeros_like(w), width - w, u_left)
    return Rects(top=top, left=left, height=h, width=w, value=value, valid=valid)


def sample_filled_rects(
    n: int,
    height: int,
    width: int,
    *,
    rate: float = _COURSE.filled_rate,
    long: tuple[int, int] = _COURSE.filled_long,
    short: tuple[int, int] = _COURSE.filled_short,
    value: tuple[float, float] = _COURSE.filled_value,
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> Rects:
    """Draw the filled rectangles of ``n`` images. Returns ``Rects`` of shape (n, K)."""
    device = resolve_device(generator, device)
    with _draws(generator, device) as draw:
        drawn = draw.objects("filled", dtype, n, height, width, rate * height * width, *long,
                             *short, *value)
        if drawn is not None:
            return Rects(*drawn)
        counts = draw.poisson(rate * height * width, n)
        k, valid = _slots(counts)
        long_side = draw.randint(long[0], long[1] + 1, (n, k))
        short_side = draw.randint(short[0], short[1] + 1, (n, k))
        vertical = draw.rand((n, k), torch.get_default_dtype()) < 0.5
        h = torch.where(vertical, long_side, short_side)
        w = torch.where(vertical, short_side, long_side)
        val = _uniform(value[0], value[1], draw.rand((n, k), dtype))
        return _place_rects(height, width, h, w, val, valid, draw)


def sample_noisy_rects(
    n: int,
    height: int,
    width: int,
    *,
    rate: float = _COURSE.noisy_rate,
    side: tuple[int, int] = _COURSE.noisy_side,
    value: tuple[float, float] = _COURSE.noisy_value,
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> Rects:
    """Draw the noisy rectangles of ``n`` images. Returns ``Rects`` of shape (n, K).

    The per-pixel noise is drawn at rendering time (``render_rects(..., pixel_noise=True)``).
    """
    device = resolve_device(generator, device)
    with _draws(generator, device) as draw:
        drawn = draw.objects("noisy", dtype, n, height, width, rate * height * width, *side,
                             *value)
        if drawn is not None:
            return Rects(*drawn)
        counts = draw.poisson(rate * height * width, n)
        k, valid = _slots(counts)
        h = draw.randint(side[0], side[1] + 1, (n, k))
        w = draw.randint(side[0], side[1] + 1, (n, k))
        val = _uniform(value[0], value[1], draw.rand((n, k), dtype))
        return _place_rects(height, width, h, w, val, valid, draw)

