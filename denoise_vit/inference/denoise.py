"""`denoise-vit denoise`: files and folders in, denoised files out.

Each input file is read (denoise_vit.inference.io), its axes checked or guessed, its intensities mapped
onto the range the model was trained on, denoised at any size (denoise_vit.inference.tiling), mapped
back and written in the input's dtype, shape and axes (io.apply_change: checked and converted;
io.write_image: atomic). Before any work: the output folders must be writable, and each file's
size (from its header) must fit in the memory available (`memory_per_pixel`). Every file
written adds one JSON line to `denoise_log.jsonl` beside it: input, output, checkpoint, axes,
the intensity mapping used, the tiling and the time taken. With several inputs, a bad file is reported and skipped and the rest
are still written; the run then fails at the end, saying how many files failed.
"""
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import CheckpointError, DenoiseVitError
from ..memory import gib, require_memory
from ..outputs import remove_stale_temps
from .tiling import Denoiser, native_bf16
from .intensity import Normalization, training_record
from .io import (PIL_FORMATS, SUFFIXES, ImageFileError, apply_change, check_axes, from_stack,
                 guess_axes, peek_image, read_image, shape_text, to_stack, writable_suffix,
                 write_image)

LOG_NAME = "denoise_log.jsonl"
OVERHEAD_BYTES = 512 * 2**20   # the model, torch itself, a batch of tiles, conversion chunks
FLOAT32_MAX = float(np.finfo(np.float32).max)


def memory_per_pixel(dtype_in, dtype_out):
    """Bytes per pixel (and channel) of denoising one file: the input as read, the blended
    change (float32), the output (which, for float32 output, is written into the change)."""
    out = 0 if np.dtype(dtype_out) == np.float32 else np.dtype(dtype_out).itemsize
    return np.dtype(dtype_in).itemsize + 4 + out


@dataclass
class DenoiseOptions:
    axes: Optional[str] = None          # None: recorded in the file, else guessed from the shape
    dtype: str = "input"                # "input" | "float32"
    normalize: str = "stack"            # "stack" (per file) | "frame" (per plane) | "none"
    overwrite: bool = False


def folder_entry(f):
    """None for an image file in an input folder, else why it is skipped."""
    if f.is_symlink() and not f.exists():
        return (f"{f}: a symbolic link that leads nowhere (its target is missing or the link "
                "loops); skipped")
    if f.is_dir():
        return f"{f}: a folder named like an image file (folders are not searched); skipped"
    if not f.is_file():
        return f"{f}: not a regular file; skipped"
    return None


def list_inputs(paths):
    """(file, problem or None) for every input: files as given, folders expanded (sorted,
    non-recursive, image suffixes only; hidden files ignored, anything else named like an image
    -- a folder, a broken or looping link -- reported)."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            try:
                entries = sorted(f for f in p.iterdir() if not f.name.startswith(".")
                                 and f.suffix.lower() in SUFFIXES)
            except OSError as exc:
                found.append((p, f"{p}: cannot list the folder ({exc.strerror or exc})"))
                continue
            if not entries:
                found.append((p, f"{p}: no image files ({', '.join(SUFFIXES)}) in this folder"))
            found.extend((f, folder_entry(f)) for f in entries)
        elif p.is_symlink() and not p.exists():
            found.append((p, f"{p}: a symbolic link that leads nowhere (missing target or loop)"))
        elif p.exists():
            found.append((p, None))
        else:
            found.append((p, f"{p}: no such file or folder"))
    return found


def output_name(path, dtype):
    """The output file name for an input in a folder run.

    JPEG inputs are written as PNG (re-encoding a denoised image as JPEG would add compression
    artefacts back); float output from PNG or JPEG goes to TIFF, which can hold it.
    """
    suffix = path.suffix.lower()
    if suffix in PIL_FORMATS and dtype == "float32":
        return path.with_suffix(".tif").name
    if PIL_FORMATS.get(suffix) == "JPEG":
        return path.with_suffix(".png").name
    return path.name


def plan(inputs, output, dtype):
    """[(input, output or None, problem or None)] and whether the output is a single file.

    One input file and an output with an image suffix (not an existing folder): that file.
    Otherwise the output is a folder (created if needed) and each file keeps its name.
    """
    found = list_inputs(inputs)
    output = Path(output)
    single = (len(found) == 1 and not Path(inputs[0]).is_dir() and not output.is_dir()
              and output.suffix != "")
    if single:
        if output.suffix.lower() not in SUFFIXES:
            raise ImageFileError(f"{output}: unsupported output file type {output.suffix!r}; "
                                 f"use one of {', '.join(SUFFIXES)}")
        src, problem = found[0]
        return [(src, output, problem)], True
    if output.suffix.lower() in SUFFIXES and not output.is_dir():
        raise ImageFileError(f"-o {output} names a file, but there are {len(found)} inputs "
                             "(or a folder); give an output folder")
    jobs, taken = [], {}
    for src, problem in found:
        dst = output / output_name(src, dtype) if problem is None else None
        if dst is not None and dst in taken:
            problem = f"{src}: writes the same output file {dst} as {taken[dst]}; skipped"
        elif dst is not None:
            taken[dst] = src
        jobs.append((src, dst, problem))
    return jobs, False


def model_intensity(ckpt, log):
    """The training-input intensity record of a checkpoint.

    Checkpoints written before the record existed: recomputed from the training run's own
    (synthetic) evaluation data, else the 0..1 range.
    """
    if "intensity" in ckpt:
        return ckpt["intensity"]
    data = ckpt.get("config", {}).get("data")
    if data:
        from data_gen.compiled import torch_path
        from ..training.config import from_dict
        from ..training.data import make_eval_data
        cfg = from_dict({"data": {**data, "eval_size": min(64, data.get("eval_size", 64))}}).data
        try:
            with torch_path():   # the same images; no numba start-up for 64 small ones
                record = training_record(make_eval_data(cfg)[0])
            log("note: the checkpoint has no intensity record; using its training data's "
                f"({record['low']:.3g}..{record['high']:.3g} at percentiles "
                f"{record['percentiles'][0]:g}/{record['percentiles'][1]:g})")
            return record
        except (DenoiseVitError, OSError, ValueError):
            pass
    log("note: the checkpoint has no intensity record; assuming the model was trained on 0..1")
    return {"percentiles": [0.0, 100.0], "low": 0.0, "high": 1.0}


def prepare(array, meta, path, denoiser, options):
    """(stack (D, C, H, W), axes, how the axes were found) after every check on the input."""
    video = denoiser.kind == "video"
    if options.axes:
        axes, how = check_axes(options.axes, array.shape, path), "given"
    elif meta.get("axes"):  # checked as given ones are (an ImageJ TZYX hyperstack, ...)
        axes = check_axes(meta["axes"], array.shape, path, source="the axes recorded in the file,")
        how = "recorded in the file"
    else:
        try:
            axes, why = guess_axes(array.shape, video=video, channels=denoiser.channels)
        except ImageFileError as exc:
            raise ImageFileError(f"{path}: {exc}") from None
        how = f"guessed from the shape: {why}"
    h, w = array.shape[axes.index("Y")], array.shape[axes.index("X")]
    if h < 2 or w < 2:
        raise ImageFileError(f"{path}: the image is {h} pixel(s) high and {w} wide (shape "
                             f"{shape_text(array.shape)}, axes {axes}); at least 2x2 is needed")
    channels = array.shape[axes.index("C")] if "C" in axes else 1
    if channels != denoiser.channels:
        what = "a colour image" if channels in (3, 4) else f"an image with {channels} channels"
        hint = ("; convert it to grayscale first" if denoiser.channels == 1
                else "; give --axes if the channel axis is another one")
        raise ImageFileError(f"{path}: {what} (axes {axes}, shape {shape_text(array.shape)}) but "
                             f"the model takes {denoiser.channels} channel(s){hint}")
    if video and "T" not in axes:
        raise ImageFileError(f"{path}: a video model denoises TYX stacks, this input has axes "
                             f"{axes}" + ("; give --axes TYX if Z is really time" if "Z" in axes
                                          else "; use an image checkpoint"))
    return to_stack(array, axes, dtype=None), axes, how


def normalizations(stack, record, mode, path):
    """One Normalization per plane of the stack; refused where the model's float32 could not
    hold the mapped values."""
    if mode == "none":
        norms, parts = [Normalization.identity()], [stack]
    elif mode == "frame":
        parts = list(stack)
        norms = [Normalization.fit(plane, record) for plane in parts]
    else:
        norms, parts = [Normalization.fit(stack, record)], [stack]
    for norm, part in zip(norms, parts):
        lo, hi = (norm.apply(float(v)) for v in (part.min(), part.max()))
        if not max(abs(lo), abs(hi)) <= FLOAT32_MAX:
            raise ImageFileError(
                f"{path}: values {float(part.min()):.4g}..{float(part.max()):.4g} map to "
                f"{lo:.4g}..{hi:.4g} for the model, beyond the float32 range it computes in"
                + ("; use --normalize stack or frame" if mode == "none" else
                   "; a few extreme pixels outside the percentile range? clip them first"))
    return norms if mode == "frame" else norms * stack.shape[0]


def denoise_file(src, dst, denoiser, record, options, log):
    """Denoise one file; returns its log record. Raises ImageFileError on bad input."""
    start = time.perf_counter()
    if dst.exists() and not options.overwrite:
        raise ImageFileError(f"{dst}: the output file exists already; give --overwrite to "
                             "replace it")
    if dst.resolve() == src.resolve():
        raise ImageFileError(f"{src}: the output would overwrite the input; choose another -o")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageFileError(f"{dst.parent}: cannot create the output folder "
                             f"({exc.strerror or exc})") from exc
    check_memory(src, options)
    array, meta = read_image(src)
    stack, axes, how = prepare(array, meta, src, denoiser, options)
    dtype = array.dtype if options.dtype == "input" else np.dtype(options.dtype)
    problem = writable_suffix(dst.suffix, dtype, axes)
    if problem:  # found out before the work, not after it
        raise ImageFileError(f"{dst}: cannot store {problem} in a {dst.suffix} file")
    try:
        norms = normalizations(stack, record, options.normalize, src)
    except ValueError as exc:
        raise ImageFileError(f"{src}: {exc}") from None
    n0 = norms[0]
    scope = {"stack": "per file", "frame": "per plane", "none": "off"}[options.normalize]
    log(f"{src}: {shape_text(array.shape)} {array.dtype}, axes {axes} ({how}); intensity "
        + (f"{scope}, p{n0.percentiles[0]:g}..p{n0.percentiles[1]:g} = {n0.low:.4g}..{n0.high:.4g}"
           f" -> model {n0.target_low:.3g}..{n0.target_high:.3g}"
           if options.normalize != "none" else "not normalised")
        + f"; {denoiser.describe(stack.shape[2], stack.shape[3], stack.shape[0])}")
    change = denoiser.change(stack, norms)
    scales = np.array([n.scale for n in norms], np.float64)
    out = apply_change(stack, change, scales, dtype, src,
                       out=change if dtype == np.float32 else None)
    del change
    result = from_stack(out, axes)
    write_image(dst, result, axes, imagej=meta.get("imagej", False))
    seconds = time.perf_counter() - start
    log(f"  wrote {dst} ({result.dtype}, {shape_text(result.shape)}) in {seconds:.1f} s")
    return {"input": str(src), "output": str(dst), "axes": axes, "axes_source": how,
            "shape": list(array.shape), "dtype_in": str(array.dtype), "dtype_out": str(result.dtype),
            "normalize": options.normalize,
            "normalization": [n.as_dict() for n in (norms if options.normalize == "frame" else norms[:1])],
            "tiling": denoiser.describe(stack.shape[2], stack.shape[3], stack.shape[0]),
            "precision": denoiser.precision,
            "seconds": round(seconds, 3)}


def check_memory(src, options):
    """Refuse a file whose denoising would not fit in the memory available, before reading it."""
    peek = peek_image(src)
    if peek is None:
        return
    shape, dtype_in = peek
    pixels = int(np.prod(shape, dtype=np.float64))
    dtype_out = dtype_in if options.dtype == "input" else np.dtype(options.dtype)
    per_pixel = memory_per_pixel(dtype_in, dtype_out)
    require_memory(pixels * per_pixel + OVERHEAD_BYTES, f"{src}: denoising this "
                   f"{shape_text(shape)} {dtype_in} image",
                   f"{per_pixel} bytes per pixel x {pixels} pixels + {gib(OVERHEAD_BYTES)}")


def check_output_folder(folder, log):
    """Before any work: the output folder (or the nearest existing parent it will be made in)
    must be writable; temporary files of our interrupted runs found there are removed."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ImageFileError(f"{folder}: cannot create the output folder ({existing} is not a "
                             "folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ImageFileError(f"{folder}: cannot write there ({existing} is read-only)")
    if existing == folder:
        remove_stale_temps(folder, SUFFIXES, log=log)


def append_record(path, record):
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise ImageFileError(f"{path}: cannot write the run record ({exc.strerror or exc})") from exc


def run_denoise(inputs, output, checkpoint, *, options, denoiser_args, device="cpu", log=print,
                warn=None):
    """Denoise every input into `output`; returns (written, failed) counts.

    Raises DenoiseVitError for a problem that stops the whole run (checkpoint, options, a single
    bad input) and, after the others are written, when some of several inputs failed.
    """
    from ..checkpoint import open_checkpoint
    warn = warn or (lambda msg: print(f"denoise-vit denoise: skipped {msg}", file=sys.stderr))
    if options.dtype not in ("input", "float32"):
        raise DenoiseVitError(f"--dtype must be 'input' or 'float32', not {options.dtype!r}")
    jobs, single = plan(inputs, output, options.dtype)
    if single and jobs[0][2]:
        raise ImageFileError(jobs[0][2])
    for folder in sorted({dst.parent for _, dst, problem in jobs if dst is not None}):
        check_output_folder(folder, log)
    ckpt, model = open_checkpoint(checkpoint, device=device)
    denoiser = Denoiser(model, device=device, **denoiser_args)
    calls, each = denoiser.workers_for(on_device=False)
    if denoiser.device.type == "cpu" and calls > 1:
        log(f"tile batches: up to {calls} at a time, {each} torch thread{'s' if each > 1 else ''} "
            "each")
    if denoiser.precision == "bf16":
        log("precision bf16: the model runs under bfloat16 autocast" +
            ("" if native_bf16(device) else "; this CPU has no AVX512-BF16 or AMX, so torch "
             "emulates it: expect it slower than fp32"))
    record = model_intensity(ckpt, log)
    if options.normalize != "none" and not record["high"] > record["low"]:
        raise CheckpointError(f"{checkpoint}: its training inputs' intensities "
                              f"({record['low']:.4g}..{record['high']:.4g}) give no range to map "
                              "images onto; use --normalize none")
    written, failed = 0, 0
    for src, dst, problem in jobs:
        try:
            if problem:
                raise ImageFileError(problem)
            entry = denoise_file(src, dst, denoiser, record, options, log)
            entry.update(checkpoint=str(checkpoint), model=ckpt["model_name"],
                         time=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            append_record(dst.parent / LOG_NAME, entry)
            written += 1
        except DenoiseVitError as exc:
            if single:
                raise
            failed += 1
            warn(str(exc))
    if failed:
        raise DenoiseVitError(f"{failed} of {len(jobs)} inputs failed (see above); "
                              f"{written} written to {output}")
    return written, failed
