"""ONNX Runtime as the model behind `denoise-vit denoise --backend onnx`.

The checkpoint's model is exported once (`export.onnx`, checked against torch like every ONNX
export) into a cache folder, keyed by the checkpoint's contents and the versions that made the
file; later runs with the same checkpoint reuse it. docs/EXPORT.md has the measured speeds.
"""
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import ExportError
from .checks import check_sizes, max_difference
from .command import INSTALL_HINT, checked, missing_packages, staged
from .onnx import OPSET, export_onnx, onnx_runner


def cache_dir():
    """$DENOISE_VIT_CACHE, else $XDG_CACHE_HOME/denoise-vit, else ~/.cache/denoise-vit."""
    if os.environ.get("DENOISE_VIT_CACHE"):
        return Path(os.environ["DENOISE_VIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "denoise-vit"


def cache_key(ckpt):
    """The checkpoint's digest (over every value) with the versions that write the ONNX file."""
    from ..checkpoint import digest
    text = f"{ckpt.get('digest') or digest(ckpt)}|{__version__}|{torch.__version__}|{OPSET}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class OnnxModel:
    """Called like the torch model on a batch tensor; runs the ONNX export in onnxruntime."""

    def __init__(self, ckpt, model, *, log=print):
        missing = missing_packages("onnx")
        if missing:
            raise ExportError(f"--backend onnx needs {', '.join(missing)}: {INSTALL_HINT}")
        path = cache_dir() / "onnx" / f"{ckpt['model_name']}-{cache_key(ckpt)}.onnx"
        if not path.exists():
            log(f"exporting the model to ONNX once, into {path}")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ExportError(f"cannot create the ONNX cache folder {path.parent} "
                                  f"({exc.strerror or exc}); set DENOISE_VIT_CACHE") from exc
            model = model.cpu().eval()
            with staged(path) as tmp:
                export_onnx(model, tmp)
                checked(max_difference(onnx_runner(tmp), model, check_sizes(model)), "ONNX")
        self.run = onnx_runner(path, threads=torch.get_num_threads())

    def __call__(self, batch):
        return torch.from_numpy(np.asarray(self.run(batch.cpu().numpy())))
