"""denoise-vit: transformer denoisers for microscopy-like images and image sequences.

The names below are imported on first use (PEP 562), so that `import denoise_vit.cli` does not
import torch: the commands start their thread policy first and measure the machine's load over
torch's import (`denoise_vit.threads`), instead of waiting for a window of their own.
"""
from importlib import import_module

from .errors import CheckpointError, ConfigError, DenoiseVitError, TrainingError

__version__ = "0.1.0"
__all__ = ["build_model", "load_model", "list_models", "register_model", "DenoiseVitError",
           "ConfigError", "CheckpointError", "TrainingError", "__version__"]

_LAZY = {"load_model": ".checkpoint", "build_model": ".registry", "list_models": ".registry",
         "register_model": ".registry"}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
