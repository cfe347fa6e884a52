"""denoise-vit: transformer denoisers for microscopy-like images and image sequences."""
from .checkpoint import load_model
from .errors import CheckpointError, ConfigError, DenoiseVitError, TrainingError
from .registry import build_model, list_models, register_model

__version__ = "0.1.0"
__all__ = ["build_model", "load_model", "list_models", "register_model", "DenoiseVitError",
           "ConfigError", "CheckpointError", "TrainingError", "__version__"]
