"""The course's synthetic microscopy images, generated in batches with torch.

The course helper ``gen(n)`` drew one image at a time in Python. Here every object of every
image is drawn at once:

* ``sample_cells`` / ``sample_filled_rects`` / ``sample_noisy_rects`` draw object parameters
  as tensors padded to K slots per image, with a ``valid`` mask of shape (n, K);
* ``render_cells`` / ``render_rects`` add given objects into (B, H, W) images;
* ``generate_images`` / ``generate_noise2noise`` put the two together.

The video generator (``data_gen.video``) reuses the same pieces with moving cells.

Rendering scatters one small patch per object (a disc's bounding square, a rectangle's
bounding box) into the batch with ``scatter_add_`` (one call per patch shape), so the cost
grows with the number of objects, not with (objects per image) x (pixels per image).

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

import math
from dataclasses import dataclass
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Cells",
    "Rects",
    "generate_images",
    "generate_noise2noise",
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

# The course's cell profile: amplitude * (PEAK - SLOPE * d2 / r**2) inside the disc.
PEAK = 0.39
SLOPE = 0.36


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def image_size(size) -> tuple[int, int]:
    """``size`` as (H, W): an int gives a square image, a pair gives (H, W)."""
    if isinstance(size, Integral) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, Integral) and not isinstance(s, bool) for s in size)
    ):
        hw = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f"size must be an int or a pair of ints (H, W), got {size!r}")
    if min(hw) < 1:
        raise ValueError(f"size must be at least 1 pixel on each side, got {size!r}")
    return hw


def check_count(name: str, value, minimum: int = 0) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_nonnegative(name: str, value) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


def check_range(name: str, value, *, integer: bool = False, minimum=None) -> tuple:
    """A (lo, hi) pair with lo <= hi (and lo >= minimum when given)."""
    kind = "ints" if integer else "numbers"
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    if ok:
        ok = all(
            isinstance(v, Integral if integer else Real)
            and not isinstance(v, bool)
            and math.isfinite(v)
            for v in value
        )
    if not ok:
        raise ValueError(f"{name} must be a pair (lo, hi) of {kind}, got {value!r}")
    lo, hi = (int(v) for v in value) if integer else (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name} must have lo <= hi, got {value!r}")
    if minimum is not None and lo < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return lo, hi


def check_photons(photons) -> float | None:
    if photons is None:
        return None
    if not isinstance(photons, Real) or isinstance(photons, bool) or not photons > 0:
        raise ValueError(f"photons must be None or a number > 0, got {photons!r}")
    return float(photons)


def resolve_device(generator: torch.Generator | None, device) -> torch.device:
    """The device to generate on: ``device`` if given, else the generator's, else the CPU.

    A generator can only drive random numbers on its own device, so a mismatch is an error.
    """
    if device is None:
        return generator.device if generator is not None else torch.device("cpu")
    device = torch.device(device)
    if generator is not None:
        gen = generator.device
        same = gen.type == device.type and (
            gen.index == device.index or device.index is None or gen.index is None
        )
        if not same:
            raise ValueError(
                f"device={device} differs from the generator's device {gen}; "
                "pass a generator created on the same device, or leave device=None"
            )
        return gen
    return device


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _poisson_counts(n: int, mean: float, generator, device) -> Tensor:
    """(n,) int64 draws from Poisson(mean)."""
    rates = torch.full((n,), float(mean), device=device)
    return torch.poisson(rates, generator=generator).long()


def _slots(counts: Tensor) -> tuple[int, Tensor]:
    """K = the largest count, and the (n, K) mask of slots in use."""
    k = int(counts.max()) if counts.numel() else 0
    valid = torch.arange(k, device=counts.device) < counts[:, None]
    return k, valid


def _uniform(lo: float, hi: float, shape, generator, device, dtype) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=generator, device=device, dtype=dtype)


def _randint(lo: int, hi: int, shape, generator, device) -> Tensor:
    """Uniform integers in [lo, hi], inclusive."""
    return torch.randint(lo, hi + 1, shape, generator=generator, device=device)


def _randint_between(lo: Tensor, hi: Tensor, generator) -> Tensor:
    """Uniform integers in [lo, hi] with per-element bounds (int64 tensors, lo <= hi)."""
    u = torch.rand(lo.shape, generator=generator, device=lo.device)
    span = hi - lo + 1
    # u * span can round up to span in float32; the clamp keeps the draw in range
    return lo + torch.minimum((u * span).long(), span - 1)


def sample_cells(
    n: int,
    height: int,
    width: int,
    *,
    rate: float = 0.002,
    radius: tuple[int, int] = (5, 10),
    amplitude: tuple[float, float] = (0.6, 1.0),
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> Cells:
    """Draw the discs of ``n`` images of size (height, width). Returns ``Cells`` of shape (n, K).

    Centres are int64; K is the largest count in the batch.
    """
    device = resolve_device(generator, device)
    counts = _poisson_counts(n, rate * height * width, generator, device)
    k, valid = _slots(counts)
    r = _randint(radius[0], radius[1], (n, k), generator, device)
    centres = []
    for size in (height, width):
        # [r, size - r] keeps the disc inside; when it is empty (tiny image) the bounds swap
        lo = torch.minimum(r, size - r)
        hi = torch.maximum(r, size - r)
        centres.append(_randint_between(lo, hi, generator))
    amp = _uniform(amplitude[0], amplitude[1], (n, k), generator, device, dtype)
    return Cells(centre_y=centres[0], centre_x=centres[1], radius=r, amplitude=amp, valid=valid)


def _place_rects(height, width, h, w, value, valid, generator) -> Rects:
    # a side longer than the image is cut to the image, then the top-left is uniform so it fits
    h = h.clamp(max=height)
    w = w.clamp(max=width)
    top = _randint_between(torch.zeros_like(h), height - h, generator)
    left = _randint_between(torch.zeros_like(w), width - w, generator)
    return Rects(top=top, left=left, height=h, width=w, value=value, valid=valid)


def sample_filled_rects(
    n: int,
    height: int,
    width: int,
    *,
    rate: float = 0.0003,
    long: tuple[int, int] = (20, 50),
    short: tuple[int, int] = (2, 10),
    value: tuple[float, float] = (0.0, 0.8),
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> Rects:
    """Draw the filled rectangles of ``n`` images. Returns ``Rects`` of shape (n, K)."""
    device = resolve_device(generator, device)
    counts = _poisson_counts(n, rate * height * width, generator, device)
    k, valid = _slots(counts)
    long_side = _randint(long[0], long[1], (n, k), generator, device)
    short_side = _randint(short[0], short[1], (n, k), generator, device)
    vertical = torch.rand((n, k), generator=generator, device=device) < 0.5
    h = torch.where(vertical, long_side, short_side)
    w = torch.where(vertical, short_side, long_side)
    val = _uniform(value[0], value[1], (n, k), generator, device, dtype)
    return _place_rects(height, width, h, w, val, valid, generator)


def sample_noisy_rects(
    n: int,
    height: int,
    width: int,
    *,
    rate: float = 0.0003,
    side: tuple[int, int] = (10, 30),
    value: tuple[float, float] = (0.0, 0.8),
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> Rects:
    """Draw the noisy rectangles of ``n`` images. Returns ``Rects`` of shape (n, K).

    The per-pixel noise is drawn at rendering time (``render_rects(..., pixel_noise=True)``).
    """
    device = resolve_device(generator, device)
    counts = _poisson_counts(n, rate * height * width, generator, device)
    k, valid = _slots(counts)
    h = _randint(side[0], side[1], (n, k), generator, device)
    w = _randint(side[0], side[1], (n, k), generator, device)
    val = _uniform(value[0], value[1], (n, k), generator, device, dtype)
    return _place_rects(height, width, h, w, val, valid, generator)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _patch_offsets(p: int, q: int, width: int, device) -> Tensor:
    """(P * Q,) flat offsets of the pixels of a P x Q patch in images ``width`` wide."""
    key = (p, q, width, str(device))
    table = _OFFSETS.get(key)
    if table is None:
        rows = torch.arange(p, device=device)[:, None] * width
        table = (rows + torch.arange(q, device=device)).reshape(-1)
        if len(_OFFSETS) > 256:  # a long-lived process may see many sizes
            _OFFSETS.clear()
        _OFFSETS[key] = table
    return table


_OFFSETS: dict = {}


def _add_patches(out: Tensor, anchor: Tensor, patch: Tensor) -> None:
    """Add patches into ``out`` (B, H, W) in place.

    anchor: (R,) int64 flat position in ``out`` of pixel (0, 0) of each patch.
    patch: (R, P, Q); pixel (a, b) of patch i lands ``a`` rows and ``b`` columns from its anchor.
    Patch pixels that fall off their image must be 0: they wrap into a neighbouring row (or
    image) or are clamped to the ends of the buffer, where adding 0 changes nothing. This lets
    one (P * Q,) offset table serve every patch instead of a per-patch, per-axis bounds test.
    """
    _, _, w = out.shape
    r, p, q = patch.shape
    if r == 0:
        return
    index = anchor[:, None] + _patch_offsets(p, q, w, out.device)
    lowest, highest = torch.aminmax(anchor)
    if lowest < 0 or highest + (p - 1) * w + q > out.numel():  # rare: skip the pass otherwise
        index = index.clamp_(0, out.numel() - 1)
    flat = out.view(-1)  # out is contiguous (checked by _output), so this writes through
    # scatter_add_ is deterministic on the CPU and measured faster there than index_add_
    flat.scatter_add_(0, index.reshape(-1), patch.reshape(-1))


def _output(out: Tensor | None, batch: int, height: int, width: int, like: Tensor) -> Tensor:
    if out is None:
        return like.new_zeros(batch, height, width)
    if out.shape != (batch, height, width) or not out.is_contiguous():
        raise ValueError(
            f"out must be a contiguous tensor of shape {(batch, height, width)}, "
            f"got {tuple(out.shape)}"
        )
    return out


def _disc_stamp(radius: int, dtype, device) -> Tensor:
    """(P, P) course profile of amplitude 1 for an integer radius, P = 2 * radius - 1."""
    key = (radius, dtype, str(device))
    stamp = _STAMPS.get(key)
    if stamp is None:
        offsets = torch.arange(1 - radius, radius, device=device)
        d2 = offsets[:, None] ** 2 + offsets[None, :] ** 2  # exact integers
        profile = PEAK - SLOPE * d2.to(torch.float64) / radius**2
        stamp = torch.where(d2 < radius**2, profile, 0.0).to(dtype)
        if len(_STAMPS) > 256:
            _STAMPS.clear()
        _STAMPS[key] = stamp
    return stamp


_STAMPS: dict = {}


def render_cells(cells: Cells, height: int, width: int, *, out: Tensor | None = None) -> Tensor:
    """Render discs into (B, height, width) images (added into ``out`` when given).

    Integer centres give exactly the course profile. Floating-point centres (moving cells)
    use the same formula with the distance to the sub-pixel centre.
    """
    batch = cells.valid.shape[0]
    out = _output(out, batch, height, width, cells.amplitude)
    image, slot = cells.valid.nonzero(as_tuple=True)
    if image.numel() == 0:
        return out
    # sorted by radius, the discs of one radius form one slice: each radius gets patches of
    # its own size (43% fewer pixels than sizing all for the largest of the course's radii)
    r, order = cells.radius[image, slot].sort()
    image, slot = image[order], slot[order]
    cy, cx = cells.centre_y[image, slot], cells.centre_x[image, slot]
    amp = cells.amplitude[image, slot].to(out.dtype)
    radii, counts = torch.unique_consecutive(r, return_counts=True)
    if len(radii) > 16:  # many distinct radii: one patch size for all beats many small calls
        radii, counts = radii[-1:], counts.sum(dim=0, keepdim=True)
    start = 0
    for radius, count in zip(radii.tolist(), counts.tolist()):
        part = slice(start, start + count)
        start += count
        if cy.is_floating_point() or cx.is_floating_point():
            _draw_subpixel_discs(out, image[part], cy[part], cx[part], r[part], amp[part],
                                 radius)
        else:
            _draw_discs(out, image[part], cy[part], cx[part], r[part], amp[part], radius)
    return out


def _draw_discs(out, image, cy, cx, r, amp, radius: int) -> None:
    """Add discs with integer centres into ``out`` (B, H, W); tensors are (R,), r <= radius."""
    _, height, width = out.shape
    half = radius - 1  # the disc d2 < r**2 spans |offset| <= r - 1
    if bool((r == radius).all()):
        patch = _disc_stamp(radius, out.dtype, out.device) * amp[:, None, None]
    else:  # mixed radii in one patch size
        stamps = torch.stack([_disc_stamp(radius, out.dtype, out.device)] + [
            F.pad(_disc_stamp(v, out.dtype, out.device), [radius - v] * 4)
            for v in range(1, radius)
        ])  # stamps[k]: radius radius if k == 0 else k, all (P, P)
        patch = stamps[torch.where(r == radius, 0, r)] * amp[:, None, None]
    y_lo, y_hi = torch.aminmax(cy)
    x_lo, x_hi = torch.aminmax(cx)
    # corners of the square may leave the image, but they are 0; only discs that leave the
    # image themselves (tiny images, or centres given by hand) need a mask
    if y_lo < half or y_hi > height - 1 - half or x_lo < half or x_hi > width - 1 - half:
        offsets = torch.arange(-half, half + 1, device=out.device)
        rows, cols = cy[:, None] + offsets, cx[:, None] + offsets
        row_in = (rows >= 0) & (rows < height)
        col_in = (cols >= 0) & (cols < width)
        patch = patch * (row_in[:, :, None] & col_in[:, None, :])
    anchor = image * (height * width) + (cy - half) * width + (cx - half)
    _add_patches(out, anchor, patch)


def _draw_subpixel_discs(out, image, cy, cx, r, amp, radius: int) -> None:
    """Add discs with floating-point centres into ``out``; tensors are (R,), r <= radius."""
    _, height, width = out.shape
    half = radius  # a centre rounded to the nearest pixel needs one more pixel each side
    offsets = torch.arange(-half, half + 1, device=out.device)
    y0, x0 = cy.round().long(), cx.round().long()
    rows, cols = y0[:, None] + offsets, x0[:, None] + offsets  # (R, P)
    # pixels off the image are pushed out of the disc, so they come out as 0
    far = float(2 * radius + 1)
    dy = torch.where((rows >= 0) & (rows < height), rows - cy[:, None], far).to(out.dtype)
    dx = torch.where((cols >= 0) & (cols < width), cols - cx[:, None], far).to(out.dtype)
    d2 = dy[:, :, None] ** 2 + dx[:, None, :] ** 2  # (R, P, P)
    r2 = (r * r).to(out.dtype)[:, None, None]
    a = amp[:, None, None]
    patch = torch.where(d2 < r2, a * PEAK - (a * SLOPE / r2) * d2, 0.0)
    anchor = image * (height * width) + (y0 - half) * width + (x0 - half)
    _add_patches(out, anchor, patch)


def _rect_groups(h: Tensor, w: Tensor) -> tuple[Tensor, list[int]]:
    """Order rectangles into up to 4 groups of similar shape; returns (order, group sizes).

    Each group is drawn with a patch as large as its largest rectangle. Splitting each side at
    the middle of its range in the batch keeps patches close to their rectangles: a mix of
    50 x 2 and 2 x 50 bars would otherwise need 50 x 50 patches (5 to 25 times the pixels),
    and 10 to 30 pixel squares 30 x 30 patches (a third more pixels than with the split).
    """
    h_lo, h_hi = torch.aminmax(h)
    w_lo, w_hi = torch.aminmax(w)
    key = (h > (h_lo + h_hi) // 2).long() * 2 + (w > (w_lo + w_hi) // 2).long()
    key, order = key.sort(stable=True)
    return order, torch.bincount(key, minlength=4).tolist()


def render_rects(rects: Rects, height: int, width: int, *, pixel_noise: bool = False,
                 generator: torch.Generator | None = None, out: Tensor | None = None) -> Tensor:
    """Render rectangles into (B, height, width) images (added into ``out`` when given).

    pixel_noise=False: each rectangle is its constant ``value`` (filled rectangles).
    pixel_noise=True: each pixel is ``value * max(0, N(0, 1))``, independently per pixel and
    per rectangle, drawn from ``generator`` (noisy rectangles).
    """
    batch = rects.valid.shape[0]
    out = _output(out, batch, height, width, rects.value)
    image, slot = rects.valid.nonzero(as_tuple=True)
    if image.numel() == 0:
        return out
    order, sizes = _rect_groups(rects.height[image, slot], rects.width[image, slot])
    image, slot = image[order], slot[order]
    h, w = rects.height[image, slot], rects.width[image, slot]
    anchor = image * (height * width) + rects.top[image, slot] * width + rects.left[image, slot]
    value = rects.value[image, slot].to(out.dtype)
    start = 0
    for size in sizes:
        if size == 0:
            continue
        part = slice(start, start + size)
        start += size
        gh, gw = h[part], w[part]
        p, q = int(gh.max()), int(gw.max())
        # rectangles fit in their image, so every patch pixel off the image is outside
        # the rectangle and 0
        inside = ((torch.arange(p, device=out.device) < gh[:, None])[:, :, None]
                  & (torch.arange(q, device=out.device) < gw[:, None])[:, None, :])
        if pixel_noise:
            patch = torch.randn((size, p, q), generator=generator, device=out.device,
                                dtype=out.dtype)
            patch.clamp_(min=0).mul_(inside).mul_(value[part][:, None, None])
        else:
            patch = value[part][:, None, None] * inside
        _add_patches(out, anchor[part], patch)
    return out


def add_sensor_noise(x: Tensor, *, gaussian_sigma: float = 0.0, photons: float | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """Shot noise then read noise, on a tensor of any shape; returns a new tensor.

    photons: mean photon count per unit intensity; x becomes Poisson(x * photons) / photons
        (negative intensities are counted as 0 photons).
    gaussian_sigma: standard deviation of additive N(0, sigma**2) noise.
    """
    if photons is not None:
        x = torch.poisson(x.clamp(min=0) * photons, generator=generator) / photons
    if gaussian_sigma > 0:
        x = x + gaussian_sigma * torch.randn(x.shape, generator=generator, device=x.device,
                                             dtype=x.dtype)
    return x


# --------------------------------------------------------------------------------------------
# Public generators
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    """Validated generator settings (shared by the image, noise2noise and video generators)."""

    height: int
    width: int
    device: torch.device
    dtype: torch.dtype
    cell_rate: float
    cell_radius: tuple
    cell_amplitude: tuple
    filled_rate: float
    filled_long: tuple
    filled_short: tuple
    filled_value: tuple
    noisy_rate: float
    noisy_side: tuple
    noisy_value: tuple
    gaussian_sigma: float
    photons: float | None

    def cells(self, n, generator) -> Cells:
        return sample_cells(n, self.height, self.width, rate=self.cell_rate,
                            radius=self.cell_radius, amplitude=self.cell_amplitude,
                            generator=generator, device=self.device, dtype=self.dtype)

    def filled(self, n, generator) -> Rects:
        return sample_filled_rects(n, self.height, self.width, rate=self.filled_rate,
                                   long=self.filled_long, short=self.filled_short,
                                   value=self.filled_value, generator=generator,
                                   device=self.device, dtype=self.dtype)

    def noisy(self, n, generator) -> Rects:
        return sample_noisy_rects(n, self.height, self.width, rate=self.noisy_rate,
                                  side=self.noisy_side, value=self.noisy_value,
                                  generator=generator, device=self.device, dtype=self.dtype)

    def add_clutter(self, out: Tensor, generator) -> None:
        """Add freshly drawn filled and noisy rectangles into ``out`` (B, H, W), in place."""
        n = out.shape[0]
        render_rects(self.filled(n, generator), self.height, self.width, out=out)
        render_rects(self.noisy(n, generator), self.height, self.width, pixel_noise=True,
                     generator=generator, out=out)

    def add_sensor_noise(self, x: Tensor, generator) -> None:
        """Shot and Gaussian noise, when on, applied to ``x`` in place."""
        if self.photons is not None or self.gaussian_sigma > 0:
            x.copy_(add_sensor_noise(x, gaussian_sigma=self.gaussian_sigma,
                                     photons=self.photons, generator=generator))

    def noisy_copy(self, clean: Tensor, out: Tensor, generator) -> None:
        """out = clean + fresh clutter (+ sensor noise); all (B, H, W), written in place.

        Rendering the clutter straight into ``out`` saves a buffer and a pass over the batch.
        """
        out.copy_(clean)
        self.add_clutter(out, generator)
        self.add_sensor_noise(out, generator)


def make_config(size, *, generator, device, dtype, cell_rate, cell_radius, cell_amplitude,
                filled_rate, filled_long, filled_short, filled_value, noisy_rate, noisy_side,
                noisy_value, gaussian_sigma, photons) -> _Config:
    """Check every generator keyword; errors name the keyword."""
    height, width = image_size(size)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {generator!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return _Config(
        height=height,
        width=width,
        device=resolve_device(generator, device),
        dtype=dtype,
        cell_rate=check_nonnegative("cell_rate", cell_rate),
        cell_radius=check_range("cell_radius", cell_radius, integer=True, minimum=1),
        cell_amplitude=check_range("cell_amplitude", cell_amplitude),
        filled_rate=check_nonnegative("filled_rate", filled_rate),
        filled_long=check_range("filled_long", filled_long, integer=True, minimum=1),
        filled_short=check_range("filled_short", filled_short, integer=True, minimum=1),
        filled_value=check_range("filled_value", filled_value),
        noisy_rate=check_nonnegative("noisy_rate", noisy_rate),
        noisy_side=check_range("noisy_side", noisy_side, integer=True, minimum=1),
        noisy_value=check_range("noisy_value", noisy_value),
        gaussian_sigma=check_nonnegative("gaussian_sigma", gaussian_sigma),
        photons=check_photons(photons),
    )


def _chunks(n: int, device: torch.device):
    step = chunk_size(device)
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def generate_images(
    n: int,
    size=64,
    *,
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
    cell_rate: float = 0.002,
    cell_radius: tuple[int, int] = (5, 10),
    cell_amplitude: tuple[float, float] = (0.6, 1.0),
    filled_rate: float = 0.0003,
    filled_long: tuple[int, int] = (20, 50),
    filled_short: tuple[int, int] = (2, 10),
    filled_value: tuple[float, float] = (0.0, 0.8),
    noisy_rate: float = 0.0003,
    noisy_side: tuple[int, int] = (10, 30),
    noisy_value: tuple[float, float] = (0.0, 0.8),
    gaussian_sigma: float = 0.0,
    photons: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw ``n`` images of the course distribution (see the module docstring).

    size: int (square) or (H, W).
    generator: a ``torch.Generator``; the same generator state gives the same images. Without
        one, torch's global generator for the device is used.
    device: where to generate; defaults to the generator's device, else the CPU.
    Returns (input, target), each (n, 1, H, W) of ``dtype``: target = the cells alone, input =
    cells + filled rectangles + noisy rectangles (+ optional shot and Gaussian noise).
    """
    n = check_count("n", n)
    cfg = make_config(size, generator=generator, device=device, dtype=dtype, cell_rate=cell_rate,
                      cell_radius=cell_radius, cell_amplitude=cell_amplitude,
                      filled_rate=filled_rate, filled_long=filled_long, filled_short=filled_short,
                      filled_value=filled_value, noisy_rate=noisy_rate, noisy_side=noisy_side,
                      noisy_value=noisy_value, gaussian_sigma=gaussian_sigma, photons=photons)
    shape = (n, cfg.height, cfg.width)
    target = torch.zeros(shape, device=cfg.device, dtype=dtype)
    inp = torch.empty(shape, device=cfg.device, dtype=dtype)
    for part in _chunks(n, cfg.device):
        m = part.stop - part.start
        render_cells(cfg.cells(m, generator), cfg.height, cfg.width, out=target[part])
        cfg.noisy_copy(target[part], inp[part], generator)
    return inp.unsqueeze(1), target.unsqueeze(1)


def generate_noise2noise(
    n: int,
    size=64,
    *,
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
    cell_rate: float = 0.002,
    cell_radius: tuple[int, int] = (5, 10),
    cell_amplitude: tuple[float, float] = (0.6, 1.0),
    filled_rate: float = 0.0005,
    filled_long: tuple[int, int] = (20, 50),
    filled_short: tuple[int, int] = (2, 10),
    filled_value: tuple[float, float] = (0.0, 0.8),
    noisy_rate: float = 0.0005,
    noisy_side: tuple[int, int] = (10, 30),
    noisy_value: tuple[float, float] = (0.0, 0.8),
    gaussian_sigma: float = 0.0,
    photons: float | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Noise2Noise pairs: the same cells under two independent clutter draws.

    Keywords as ``generate_images`` (rectangle rates default to the course's 0.0005 here);
    shot and Gaussian noise, when on, are drawn independently for each noisy image.
    Returns (noisy_a, noisy_b, clean), each (n, 1, H, W).
    """
    n = check_count("n", n)
    cfg = make_config(size, generator=generator, device=device, dtype=dtype, cell_rate=cell_rate,
                      cell_radius=cell_radius, cell_amplitude=cell_amplitude,
                      filled_rate=filled_rate, filled_long=filled_long, filled_short=filled_short,
                      filled_value=filled_value, noisy_rate=noisy_rate, noisy_side=noisy_side,
                      noisy_value=noisy_value, gaussian_sigma=gaussian_sigma, photons=photons)
    shape = (n, cfg.height, cfg.width)
    clean = torch.zeros(shape, device=cfg.device, dtype=dtype)
    noisy_a = torch.empty(shape, device=cfg.device, dtype=dtype)
    noisy_b = torch.empty(shape, device=cfg.device, dtype=dtype)
    for part in _chunks(n, cfg.device):
        m = part.stop - part.start
        render_cells(cfg.cells(m, generator), cfg.height, cfg.width, out=clean[part])
        for noisy in (noisy_a, noisy_b):
            cfg.noisy_copy(clean[part], noisy[part], generator)
    return noisy_a.unsqueeze(1), noisy_b.unsqueeze(1), clean.unsqueeze(1)
