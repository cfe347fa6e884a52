"""Image files in and out: PNG, JPEG, TIFF (single and multi-page) and .npy; their axes.

Reading gives the array exactly as stored (uint8, uint16, other integers or float) and, for
TIFF files that say so (ImageJ hyperstacks, tifffile's shaped files), the axes recorded in the
file. Axes are letters from T (time), Z (depth), C (channel), Y, X; the denoiser works on a
(D, C, H, W) stack (`to_stack`) and puts the result back in the file's own axis order
(`from_stack`). `apply_change` is the one conversion back to the output's dtype (checked: finite,
in range; exact where the model changed nothing), and `write_image` replaces the output file
atomically (denoise_vit.outputs), so a failure or a signal never leaves half a file behind.

Every problem is an `ImageFileError` whose message names the file.
"""
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import DenoiseVitError
from ..outputs import atomic_output

TIFF = (".tif", ".tiff")
PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
SUFFIXES = TIFF + tuple(PIL_FORMATS) + (".npy",)
AXIS_LETTERS = "TZCYX"
# tifffile's axis codes that mean ours: S (samples, e.g. RGB) is a channel axis
TIFF_AXES = {"T": "T", "Z": "Z", "C": "C", "S": "C", "Y": "Y", "X": "X"}
# pixel types read and written; others (float128, complex, bool, ...) are refused
DTYPES = tuple(np.dtype(t) for t in ("uint8", "uint16", "uint32", "uint64", "int8", "int16",
                                     "int32", "int64", "float16", "float32", "float64"))
CHUNK_PIXELS = 1 << 18   # pixels converted at a time by apply_change (float64 temporaries)
# (2 MiB a temporary stays in the CPU's caches and in malloc's reused memory: a 1024x1024 uint16
# image in 5.1 ms instead of 28.0 with 1 << 21, medians of 7 on the 2-core EPYC;
# experiments/denoise_levers.py, docs/denoise_levers.json, 2026-12-06)


class ImageFileError(DenoiseVitError):
    """An input or output file that cannot be used; the message names the file."""


# ------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------


def read_image(path):
    """(array, meta) for a PNG, JPEG, TIFF or .npy file.

    meta: {"axes": the axes recorded in the file, or None; "imagej": an ImageJ TIFF}.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ImageFileError(f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
                             f"use one of {', '.join(SUFFIXES)}")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageFileError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    if size == 0:
        raise ImageFileError(f"{path}: the file is empty (0 bytes)")
    try:
        if suffix in TIFF:
            array, meta = _read_tiff(path)
        elif suffix == ".npy":
            array, meta = np.load(path, allow_pickle=False), {"axes": None, "imagej": False}
        else:
            array, meta = _read_pil(path)
    except ImageFileError:
        raise
    except PermissionError as exc:
        raise ImageFileError(f"{path}: cannot read it ({exc.strerror})") from exc
    except Exception as exc:  # noqa: BLE001 -- file parsers raise anything on a corrupt file
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageFileError(f"{path}: cannot read it as {suffix[1:].upper()} ({detail})") from exc
    check_pixels(array, path)
    return array, meta


def _read_tiff(path):
    import tifffile
    with tifffile.TiffFile(path) as tif:
        series = tif.series
        if len(series) > 1:
            if all(s.shape == series[0].shape and s.dtype == series[0].dtype for s in series):
                # pages written one by one (no shared metadata): a stack of equal pages
                return np.stack([s.asarray() for s in series]), {"axes": None, "imagej": False}
            kinds = [f"{shape_text(s.shape)} {s.dtype}" for s in series]
            listed = ", ".join(kinds[:4]) + (f", ... ({len(kinds)} in all)" if len(kinds) > 4 else "")
            raise ImageFileError(f"{path}: the TIFF holds {len(series)} images of different sizes "
                                 f"or pixel types ({listed}); reading one of them would drop the "
                                 "others: save each as its own file")
        array = series[0].asarray()
        axes = "".join(TIFF_AXES.get(a, "?") for a in series[0].axes)
        known = "?" not in axes and len(set(axes)) == len(axes) and len(axes) == array.ndim
        recorded = known and (tif.is_imagej or tif.is_shaped)
        return array, {"axes": axes if recorded else None, "imagej": bool(tif.is_imagej)}


@contextmanager
def _no_pixel_limit():
    """Pillow refuses images above ~179 megapixels as possible "decompression bombs"; the size
    is checked against the memory available instead (`peek_image` + denoise_vit.memory)."""
    from PIL import Image
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _read_pil(path):
    from PIL import Image
    with _no_pixel_limit(), Image.open(path) as img:
        if img.mode in ("LA", "La", "PA"):
            raise ImageFileError(f"{path}: a grey image with an alpha (transparency) channel "
                                 f"(mode {img.mode}); remove the alpha channel first, e.g. save "
                                 "it as plain greyscale")
        img.load()
        if img.mode == "P":  # palette: expand to the colours it stands for
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode == "1":
            img = img.convert("L")
        array = np.array(img)
    return array, {"axes": "YXC" if array.ndim == 3 else None, "imagej": False}


def peek_image(path):
    """(shape, dtype) of an image file from its header, without reading the pixels; None where
    the header does not tell (the file is then read and checked as usual)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
            return tuple(shape), np.dtype(dtype)
        if suffix in TIFF:
            import tifffile
            with tifffile.TiffFile(path) as tif:
                series = tif.series
                if len(series) > 1:
                    return (len(series),) + tuple(series[0].shape), np.dtype(series[0].dtype)
                return tuple(series[0].shape), np.dtype(series[0].dtype)
        from PIL import Image
        with _no_pixel_limit(), Image.open(path) as img:
            bands = len(img.getbands()) if img.mode not in ("P", "1") else 3
            shape = (img.height, img.width) + ((bands,) if bands > 1 else ())
            wide = img.mode in ("I;16", "I;16B", "I;16L")
            big = img.mode in ("I", "F")
            return shape, np.dtype("uint16" if wide else "int32" if big else "uint8")
    except Exception:  # noqa: BLE001 -- a damaged header is reported by read_image
        return None


def check_pixels(array, path):
    """Refuse arrays the denoiser cannot use: no pixels, unsupported dtype, NaN or inf."""
    if not isinstance(array, np.ndarray) or array.dtype not in DTYPES:
        kind = getattr(array, "dtype", type(array).__name__)
        raise ImageFileError(f"{path}: pixel type {kind} is not supported (use 8- to 64-bit "
                             "integers or 16- to 64-bit floats)")
    if array.size == 0:
        raise ImageFileError(f"{path}: the image has no pixels (shape {shape_text(array.shape)})")
    if array.ndim < 2:
        raise ImageFileError(f"{path}: a {array.ndim}-D array (shape {shape_text(array.shape)}) "
                             "is not an image")
    if array.dtype.kind == "f":
        nans = int(np.isnan(array).sum())
        if nans:
            raise ImageFileError(f"{path}: {nans} NaN pixel(s); fill or remove them first")
        infs = int(np.isinf(array).sum())
        if infs:
            raise ImageFileError(f"{path}: {infs} infinite pixel(s); fill or remove them first")


def shape_text(shape):
    return "x".join(map(str, shape)) if shape else "()"


# ------------------------------------------------------------------------------------------
# Axes
# ------------------------------------------------------------------------------------------


def check_axes(axes, shape, path, source="--axes"):
    """Validate an axes string against an array shape; returns it upper-cased.

    source: where the axes come from, for the message ("--axes", "the file's axes").
    """
    axes = axes.upper()
    what = f"{path}: {source} {axes}"
    if any(a not in AXIS_LETTERS for a in axes) or len(set(axes)) != len(axes):
        raise ImageFileError(f"{what}: use each of the letters {', '.join(AXIS_LETTERS)} "
                             "at most once (e.g. YX, ZYX, TYX)")
    if "Y" not in axes or "X" not in axes:
        raise ImageFileError(f"{what}: must contain Y and X")
    if "T" in axes and "Z" in axes:
        raise ImageFileError(f"{what}: stacks with both T and Z are not supported; "
                             "split them into TYX or ZYX files")
    if len(axes) != len(shape):
        raise ImageFileError(f"{what} has {len(axes)} letters but the image has "
                             f"{len(shape)} dimensions (shape {shape_text(shape)})")
    return axes


def guess_axes(shape, *, video=False, channels=1):
    """(axes, reason) for an array shape, or raise if it is not obvious.

    2-D: YX. 3-D: YXC when the last axis has 3 or 4 entries (a colour image); CYX when the first
    has as many entries as the model has channels (>1); otherwise a stack, TYX for a video
    model and ZYX for an image model (which denoises each plane alone, so T and Z are alike).
    4-D: TYXC / ZYXC when the last axis is colour.
    """
    stack = "T" if video else "Z"
    if len(shape) == 2:
        return "YX", "a single image"
    if len(shape) == 3:
        if shape[-1] in (3, 4) and min(shape[:2]) > 4:
            return "YXC", f"last axis of {shape[-1]} looks like colour"
        if channels > 1 and shape[0] == channels:
            return "CYX", f"first axis matches the model's {channels} channels"
        return (f"{stack}YX", f"a stack of {shape[0]} planes"
                + ("" if video else ", each denoised on its own"))
    if len(shape) == 4 and shape[-1] in (3, 4):
        return f"{stack}YXC", "a stack of colour images"
    raise ImageFileError(f"cannot guess the axes of a {len(shape)}-D image of shape "
                         f"{shape_text(shape)}; give --axes (letters from {AXIS_LETTERS})")


def to_stack(array, axes, dtype=np.float32):
    """Array in `axes` order -> (D, C, H, W); D from T or Z, C from C (1 if absent).

    dtype: the stack's dtype (a copy where it differs); None keeps the array's, and the stack is
    then a view of it.
    """
    order = [axes.index(a) for a in ("T", "Z", "C", "Y", "X") if a in axes]
    x = np.transpose(array, order)
    if dtype is not None:
        x = x.astype(dtype, copy=False)
    if "C" not in axes:
        x = x[..., None, :, :]
    if "T" not in axes and "Z" not in axes:
        x = x[None]
    return x


def from_stack(stack, axes):
    """Inverse of `to_stack`: (D, C, H, W) -> array in `axes` order."""
    x = stack
    if "T" not in axes and "Z" not in axes:
        x = x[0]
    if "C" not in axes:
        x = x[..., 0, :, :]
    canonical = [a for a in ("T", "Z", "C", "Y", "X") if a in axes]
    return np.transpose(x, [canonical.index(a) for a in axes])


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


def cast(array, dtype):
    """Float array -> `dtype`: integers rounded and clipped to the type's range (computed in
    float64, where every clip bound of a 32-bit type is exact and none wraps)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return add_saturating(np.zeros(np.shape(array), dtype), np.asarray(array, np.float64))
    return np.asarray(array).astype(dtype)


def add_saturating(x, d):
    """x (integer array) + rint(d) (float64), clipped to x's dtype range; exact at any magnitude.

    Nothing goes through float32, so uint32 4294967295 plus 0 stays 4294967295, and 64-bit values
    beyond float64's 53 bits come back unchanged where d is 0.
    """
    info = np.iinfo(x.dtype)
    d = np.rint(d)
    if x.dtype.itemsize <= 4:  # exact in int64
        y = x.astype(np.int64) + np.clip(d, -2.0**40, 2.0**40).astype(np.int64)
        return np.clip(y, info.min, info.max).astype(x.dtype)
    # 64-bit: wrapping arithmetic on the two's-complement bits, with the room to each limit
    u = x.astype(np.uint64)
    up = np.uint64(info.max) - u                      # info.max - x, exact (mod 2**64)
    down = u - np.uint64(info.min % 2**64)            # x - info.min, exact
    pos = d >= 0
    mag = np.abs(d)
    saturated = mag >= np.where(pos, up, down).astype(np.float64)
    step = np.where(saturated, 0.0, mag).astype(np.uint64)
    y = np.where(pos, u + step, u - step).astype(x.dtype)
    y[saturated & pos] = info.max
    y[saturated & ~pos] = info.min
    return y


def apply_change(stack, change, scales, dtype, path, out=None):
    """The output stack in `dtype`: each pixel of `stack` plus the model's change to it.

    stack: (D, C, H, W) input pixels, any supported dtype; change: (D, C, H, W) float32, the
    model's output minus its input in the model's units; scales: (D,) the model units per input
    unit of each plane (the normalisation's scale). Computed in float64 from the input's own
    values, a chunk at a time: integers get rint(change / scale) added and are clipped to the
    type's range (never wrapped); floats are refused, not clipped, beyond the type's range. An
    unchanged pixel comes back bit for bit. Raises ImageFileError for a non-finite change (the
    model's output had NaN or inf) or an unrepresentable value; nothing is written then.
    out: where to put the result (may be `change` itself, for float32 output); default new.
    """
    dtype = np.dtype(dtype)
    out = np.empty(stack.shape, dtype) if out is None else out
    rows = max(1, CHUNK_PIXELS // max(1, stack.shape[1] * stack.shape[3]))
    for d in range(stack.shape[0]):
        for r in range(0, stack.shape[2], rows):
            region = (d, slice(None), slice(r, r + rows))
            delta = change[region].astype(np.float64)
            if not np.isfinite(delta).all():
                bad = int((~np.isfinite(delta)).sum())
                raise ImageFileError(f"{path}: the model's output has {bad} non-finite value(s) "
                                     f"(NaN or infinite) in plane {d}; nothing written")
            with np.errstate(over="ignore"):
                delta /= scales[d]
            if not np.isfinite(delta).all():   # a tiny scale: the change is huge in input units
                raise ImageFileError(f"{path}: denoised values go beyond the range of float64 "
                                     f"once mapped back to the input's units; nothing written")
            x = stack[region]
            if dtype.kind in "ui":
                out[region] = add_saturating(x.astype(dtype, copy=False), delta)
                continue
            y = x.astype(np.float64)
            np.add(y, delta, out=y, where=delta != 0)   # unchanged stays unchanged, -0.0 too
            limit = float(np.finfo(dtype).max)
            worst = float(np.abs(y).max())
            if not worst <= limit:
                raise ImageFileError(f"{path}: denoised values reach {worst:.4g}, beyond the "
                                     f"range of {dtype} (+-{float(limit):.4g}); nothing written")
            out[region] = y.astype(dtype)
    return out


def writable_suffix(suffix, dtype, axes):
    """None if an array of this dtype and these axes can be stored as `suffix`, else why not."""
    suffix = suffix.lower()
    dtype = np.dtype(dtype)
    if suffix in TIFF or suffix == ".npy":
        return None if suffix == ".npy" or dtype.kind in "uif" else f"{dtype} pixels"
    if suffix not in PIL_FORMATS:
        return f"the file type {suffix or '(no suffix)'!r}"
    if axes not in ("YX", "YXC"):
        return f"a {axes} stack (PNG and JPEG hold one image; use .tif)"
    allowed = ("uint8", "uint16") if suffix == ".png" else ("uint8",)
    if dtype.name not in allowed:
        return f"{dtype} pixels ({suffix} holds {' or '.join(allowed)}; use .tif)"
    return None


def write_image(path, array, axes, *, imagej=False):
    """Write `array` (axes `axes`) to `path`, replacing it atomically: on any error, Ctrl-C or
    SIGTERM the temporary file is removed and an earlier file at `path` is left unchanged."""
    path = Path(path)
    suffix = path.suffix.lower()
    problem = writable_suffix(suffix, array.dtype, axes)
    if problem:
        raise ImageFileError(f"{path}: cannot store {problem} in a {suffix or 'suffix-less'} file")
    try:
        with atomic_output(path) as tmp:
            if suffix in TIFF:
                _write_tiff(tmp, array, axes, imagej)
            elif suffix == ".npy":
                np.save(tmp, array)
            else:
                from PIL import Image
                Image.fromarray(np.ascontiguousarray(array)).save(
                    tmp, format=PIL_FORMATS[suffix], **({"quality": 95} if suffix != ".png" else {}))
    except OSError as exc:
        raise ImageFileError(f"{path}: cannot write it ({exc.strerror or exc})") from exc


def _write_tiff(path, array, axes, imagej):
    import tifffile
    colour = axes.endswith("C") and array.shape[-1] in (3, 4) and array.dtype == np.uint8
    # ImageJ reads only its own axis order and dtypes; otherwise tifffile's shaped format keeps
    # the axes in the file's metadata
    if imagej and array.dtype.name in ("uint8", "uint16", "float32") and "C" not in axes:
        tifffile.imwrite(path, array, imagej=True, metadata={"axes": axes})
    else:
        tifffile.imwrite(path, array, photometric="rgb" if colour else "minisblack",
                         metadata={"axes": axes})
