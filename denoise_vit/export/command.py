"""`denoise-vit export`: checks first, then the export written beside the target and renamed.

Nothing half-written is left: every format is written to a temporary name in the target's
folder, checked (against torch, or by bioimageio.core's model test), and only then renamed
onto the target. Every refusal is one ExportError line.
"""
import contextlib
import importlib.util
import os
import tempfile
from pathlib import Path

from ..errors import DenoiseVitError, ExportError
from .checks import TOLERANCE, check_sizes, describe, max_difference

FORMATS = {   # format -> (suffixes of the output, Python packages it needs beyond torch)
    "bioimageio": ((".zip",), ("bioimageio.core", "onnx", "onnxscript", "onnxruntime")),
    "onnx": ((".onnx",), ("onnx", "onnxscript", "onnxruntime")),
    "torchscript": ((".pt", ".ts", ".pth"), ()),
}
INSTALL_HINT = "pip install 'denoise-vit[export]'"


def missing_packages(fmt):
    return [name for name in FORMATS[fmt][1] if importlib.util.find_spec(name) is None]


def check_output(output, fmt, overwrite):
    """The output path, or ExportError: wrong suffix, exists, folder missing or unwritable."""
    output = Path(output)
    suffixes = FORMATS[fmt][0]
    if output.suffix.lower() not in suffixes:
        raise ExportError(f"-o {output}: a {fmt} export is written to a {' or '.join(suffixes)} "
                          "file")
    if output.is_dir():
        raise ExportError(f"-o {output} is a folder; give the file to write")
    if output.exists() and not overwrite:
        raise ExportError(f"{output} exists already; give --overwrite to replace it")
    folder = output.parent
    if not folder.is_dir():
        raise ExportError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"output folder is not writable: {folder}")
    return output


@contextlib.contextmanager
def staged(target):
    """A temporary path beside `target`, renamed onto it when the block succeeds and removed
    otherwise (also on Ctrl-C)."""
    tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}{target.suffix}")
    try:
        tmp.touch()   # the folder's permissions, found out before the work (root ignores access)
    except OSError as exc:
        raise ExportError(f"cannot write into {target.parent}: {exc.strerror or exc}") from exc
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def checked(errors, what):
    worst = max(errors.values())
    if not worst <= TOLERANCE:   # also catches NaN
        raise ExportError(f"the {what} export differs from torch by {worst:.2e} (more than "
                          f"{TOLERANCE:g}): {describe(errors)}")
    return errors


def write(fmt, model, ckpt, path, record, author):
    """Write one format to `path` and check it; returns a line saying what was checked."""
    if fmt == "onnx":
        from .onnx import OPSET, export_onnx, onnx_runner
        export_onnx(model, path)
        errors = checked(max_difference(onnx_runner(path), model, check_sizes(model)), "ONNX")
        return f"ONNX opset {OPSET}; onnxruntime vs torch max |difference| {describe(errors)}"
    if fmt == "torchscript":
        from .torchscript import export_torchscript, torchscript_runner
        export_torchscript(model, path)
        errors = checked(max_difference(torchscript_runner(path), model, check_sizes(model)),
                         "TorchScript")
        return f"TorchScript; vs torch max |difference| {describe(errors)}"
    from .bioimageio import build_package
    with tempfile.TemporaryDirectory(prefix="denoise-vit-export-") as workdir:
        build_package(ckpt, model, path, workdir, record=record, author=author)
    return ("bioimage.io model package (spec 0.5: pytorch_state_dict, torchscript, onnx); "
            "bioimageio.core's model test passed")


def run_export(checkpoint, fmt, output, *, overwrite=False, author="denoise-vit", log=print):
    """Export the model of `checkpoint` as `fmt` to `output`; returns the line to print."""
    from ..checkpoint import open_checkpoint
    from ..inference.denoise import model_intensity
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    missing = missing_packages(fmt)
    if missing:
        raise ExportError(f"--format {fmt} needs {', '.join(missing)}: {INSTALL_HINT}")
    output = check_output(output, fmt, overwrite)
    ckpt, model = open_checkpoint(checkpoint)
    if model.facts.kind == "image":   # framewise_vit: what runs on each plane is a vit_denoiser
        model = model.plane_model()
    record = model_intensity(ckpt, log) if fmt == "bioimageio" else None
    with staged(output) as tmp:
        try:
            checks = write(fmt, model, ckpt, tmp, record, author)
        except DenoiseVitError:
            raise
        except Exception as exc:  # an exporter that cannot translate this model
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"cannot export {ckpt['model_name']} as {fmt}: {first[:300]}") from exc
    return f"wrote {output} ({checks})"
