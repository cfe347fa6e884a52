"""Image files in and out: PNG, JPEG, TIFF (single and multi-page) and .npy; their axes.

Reading gives the array exactly as stored (uint8, uint16, other integers or float) and, for
TIFF files that say so (ImageJ hyperstacks, tifffile's shaped files), the axes recorded in the
file. Axes are letters from T (time), Z (depth), C (channel), Y, X; the denoiser works on a
(D, C, H, W) stack (`to_stack`) and puts the result back in the file's own axis order
(`from_stack`). Writing converts back to the input's dtype (rounded and clipped for integers)
and replaces the output file atomically, so a failure never leaves half a file behind.

Every problem is an `ImageFileError` whose message names the file.
"""
import os
from pathlib import Path

import numpy as np

from ..errors import DenoiseVitError

TIFF = (".tif", ".tiff")
PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
SUFFIXES = TIFF + tuple(PIL_FORMATS) + (".npy",)
AXIS_LETTERS = "TZCYX"
# tifffile's axis codes that mean ours: S (samples, e.g. RGB) is a channel axis
TIFF_AXES = {"T": "T", "Z": "Z", "C": "C", "S": "C", "Y": "Y", "X": "X"}


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
            array, meta = _read_pil(path), {"axes": None, "imagej": False}
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
        if len(series) > 1 and all(s.shape == series[0].shape and s.dtype == series[0].dtype
                                   for s in series):
            # pages written one by one (no shared metadata): a stack of equal pages
            return np.stack([s.asarray() for s in series]), {"axes": None, "imagej": False}
        array = series[0].asarray()
        axes = "".join(TIFF_AXES.get(a, "?") for a in series[0].axes)
        known = "?" not in axes and len(set(axes)) == len(axes) and len(axes) == array.ndim
        recorded = known and (tif.is_imagej or tif.is_shaped)
        return array, {"axes": axes if recorded else None, "imagej": bool(tif.is_imagej)}


def _read_pil(path):
    from PIL import Image
    with Image.open(path) as img:
        img.load()
        if img.mode == "P":  # palette: expand to the colours it stands for
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode == "1":
            img = img.convert("L")
        return np.asarray(img).copy()


def check_pixels(array, path):
    """Refuse arrays the denoiser cannot use: no pixels, unsupported dtype, NaN or inf."""
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "uif":
        kind = getattr(array, "dtype", type(array).__name__)
        raise ImageFileError(f"{path}: pixel type {kind} is not supported "
                             "(use unsigned/signed integers or floats)")
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


def check_axes(axes, shape, path):
    """Validate an axes string against an array shape; returns it upper-cased."""
    axes = axes.upper()
    if any(a not in AXIS_LETTERS for a in axes) or len(set(axes)) != len(axes):
        raise ImageFileError(f"--axes {axes!r}: use each of the letters {', '.join(AXIS_LETTERS)} "
                             "at most once (e.g. YX, ZYX, TYX)")
    if "Y" not in axes or "X" not in axes:
        raise ImageFileError(f"--axes {axes!r}: must contain Y and X")
    if "T" in axes and "Z" in axes:
        raise ImageFileError(f"--axes {axes!r}: stacks with both T and Z are not supported; "
                             "split them into TYX or ZYX files")
    if len(axes) != len(shape):
        raise ImageFileError(f"{path}: --axes {axes} has {len(axes)} letters but the image has "
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


def to_stack(array, axes):
    """Array in `axes` order -> float32 (D, C, H, W); D from T or Z, C from C (1 if absent)."""
    order = [axes.index(a) for a in ("T", "Z", "C", "Y", "X") if a in axes]
    x = np.transpose(array, order).astype(np.float32, copy=False)
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
    """Float array -> `dtype`: integers rounded and clipped to the type's range."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(array), info.min, info.max).astype(dtype)
    return array.astype(dtype)


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
    """Write `array` (axes `axes`) to `path`, replacing it atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    problem = writable_suffix(suffix, array.dtype, axes)
    if problem:
        raise ImageFileError(f"{path}: cannot store {problem} in a {suffix or 'suffix-less'} file")
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        if suffix in TIFF:
            _write_tiff(tmp, array, axes, imagej)
        elif suffix == ".npy":
            np.save(tmp, array)
        else:
            from PIL import Image
            Image.fromarray(array).save(tmp, format=PIL_FORMATS[suffix],
                                        **({"quality": 95} if suffix != ".png" else {}))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
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
