"""Rendering objects into (B, H, W) images.

``render_cells`` / ``render_rects`` add given objects into a batch; ``add_sensor_noise`` adds
shot and Gaussian noise. Rendering scatters one small patch per object (a disc's bounding
square, a rectangle's bounding box) into the batch with ``scatter_add_`` (one call per patch
shape), so the cost grows with the number of objects, not with (objects per image) x (pixels
per image).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from data_gen import compiled
from data_gen.sampling import Cells, Rects

__all__ = ["PEAK", "SLOPE", "render_cells", "render_rects", "add_sensor_noise"]

# The course's cell profile: amplitude * (PEAK - SLOPE * d2 / r**2) inside the disc.
PEAK = 0.39
SLOPE = 0.36


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
    subpixel = cells.centre_y.is_floating_point() or cells.centre_x.is_floating_point()
    if not subpixel and compiled.usable(out):
        compiled.add_discs(out, cells)
        return out
    image, slot = cells.valid.nonzero(as_tuple=True)
    if image.numel() == 0:
        return out
    # sorted by radius, the discs of one radius form one slice: each radius gets patches of
    # its own size (43% fewer pixels than sizing all for the largest of the course's radii).
    # A stable sort: discs that overlap add in (radius, image, slot) order, the order the
    # compiled kernels (data_gen.compiled) use, rather than in whatever order torch's default
    # sort leaves ties (which moved pixels by 1 ulp between the two paths)
    r, order = cells.radius[image, slot].sort(stable=True)
    image, slot = image[order], slot[order]
    cy, cx = cells.centre_y[image, slot], cells.centre_x[image, slot]
    amp = cells.amplitude[image, slot].to(out.dtype)
    radii, counts = torch.unique_consecutive(r, return_counts=True)
    if len(radii) > 16:  # many distinct radii: one patch size for all beats many small calls
        radii, counts = radii[-1:], counts.sum(dim=0, keepdim=True)
    elif not (cy.is_floating_point() or cx.is_floating_point()) and _inside(cy, cx, r, height,
                                                                           width):
        _draw_disc_pixels(out, image, cy, cx, amp, radii.tolist(), counts.tolist())
        return out
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


def _inside(cy: Tensor, cx: Tensor, r: Tensor, height: int, width: int) -> bool:
    """Whether every disc (integer centre, pixels d2 < r**2) lies inside the image."""
    reach = r - 1
    return bool(torch.minimum(cy, cx).sub_(reach).min() >= 0
                and (cy + reach).max() < height and (cx + reach).max() < width)


def _disc_pixels(radius: int, width: int, dtype, device) -> tuple[Tensor, Tensor]:
    """The pixels of a disc of amplitude 1: (flat offsets from its centre in images ``width``
    wide, course profile values), both (N,), N = the number of pixels with d2 < radius**2."""
    key = (radius, width, dtype, str(device))
    table = _PIXELS.get(key)
    if table is None:
        stamp = _disc_stamp(radius, dtype, device)
        offsets = torch.arange(1 - radius, radius, device=device)
        d2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
        flat = offsets[:, None] * width + offsets[None, :]
        inside = d2 < radius**2
        table = (flat[inside], stamp[inside])
        if len(_PIXELS) > 256:
            _PIXELS.clear()
        _PIXELS[key] = table
    return table


_PIXELS: dict = {}


def _draw_disc_pixels(out, image, cy, cx, amp, radii: list[int], counts: list[int]) -> None:
    """Add discs that lie inside their image into ``out`` (B, H, W) with one scatter.

    The discs are sorted by radius, ``counts[i]`` of radius ``radii[i]`` in turn. Only the
    pixels of each disc are listed, not its bounding square; the discs keep their order, so
    every pixel receives the same additions in the same order as disc-by-disc rendering.
    """
    _, height, width = out.shape
    tables = [_disc_pixels(radius, width, out.dtype, out.device) for radius in radii]
    total = sum(count * len(table[0]) for count, table in zip(counts, tables))
    index = torch.empty(total, dtype=torch.long, device=out.device)
    values = torch.empty(total, dtype=out.dtype, device=out.device)
    centre = image * (height * width) + cy * width + cx
    flat = out.view(-1)  # out is contiguous (checked by _output), so this writes through
    # scatter_add_ sums the contributions to a pixel in a float accumulator and rounds once:
    # for bfloat16 or float16 each radius keeps its own scatter (and rounding), as before
    one_scatter = out.dtype in (torch.float32, torch.float64)
    start = done = 0
    for count, (offsets, profile) in zip(counts, tables):
        stop = start + count * len(offsets)
        torch.add(centre[done:done + count, None], offsets,
                  out=index[start:stop].view(count, len(offsets)))
        torch.mul(amp[done:done + count, None], profile,
                  out=values[start:stop].view(count, len(offsets)))
        if not one_scatter:
            flat.scatter_add_(0, index[start:stop], values[start:stop])
        start, done = stop, done + count
    if one_scatter:
        flat.scatter_add_(0, index, values)


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
    if compiled.usable(out):
        compiled.add_rects(out, rects, pixel_noise=pixel_noise, generator=generator)
        return out
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
        # value on the rectangle's rows times 1 on its columns: value inside, 0 outside
        rows = value[part][:, None] * (torch.arange(p, device=out.device) < gh[:, None])
        cols = (torch.arange(q, device=out.device) < gw[:, None]).to(out.dtype)
        if pixel_noise:
            patch = torch.randn((size, p, q), generator=generator, device=out.device,
                                dtype=out.dtype)
            patch.clamp_(min=0).mul_(rows[:, :, None]).mul_(cols[:, None, :])
        else:
            patch = rows[:, :, None] * cols[:, None, :]
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

