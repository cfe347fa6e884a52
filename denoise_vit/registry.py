"""Model registry: named factories, each with a dataclass config whose fields are its keys.

`build_model(name, **kwargs)` checks every key against the config before anything is built,
so a typo stops with a message listing the keys that exist.
"""
import dataclasses

from .errors import ConfigError

_MODELS = {}


def register_model(name, config_cls):
    """Class decorator: register `cls(config)` under `name` with config dataclass `config_cls`."""
    def wrap(cls):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        from .models.base import DenoisingModel
        if not issubclass(cls, DenoisingModel) or cls.facts is DenoisingModel.facts:
            raise TypeError(f"model {name!r} must subclass models.base.DenoisingModel and "
                            "define `facts` (what inference needs to know of it)")
        _MODELS[name] = (cls, config_cls)
        cls.model_name = name
        return cls
    return wrap


def list_models():
    from . import models  # noqa: F401  (registers the models)
    return sorted(_MODELS)


def model_keys(name):
    """The configuration keys of a registered model."""
    from . import models  # noqa: F401
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return [f.name for f in dataclasses.fields(_MODELS[name][1])]


def make_config(config_cls, kwargs, what="model"):
    """Instantiate `config_cls(**kwargs)`, naming unknown keys instead of a TypeError."""
    fields = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(kwargs) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {', '.join(map(repr, unknown))}; "
                          f"valid keys: {', '.join(fields)}")
    return config_cls(**kwargs)


def check_model_args(name, kwargs, prefix=""):
    """Build (and so validate) the config of model `name` without the model; the message of a
    bad value names the key with `prefix` (e.g. "model.depth must be ...")."""
    from . import models  # noqa: F401
    if name not in _MODELS:
        raise ConfigError(f"unknown {prefix}name {name!r}; available: {', '.join(list_models())}")
    config_cls = _MODELS[name][1]
    try:
        return make_config(config_cls, kwargs, what=f"{prefix}{name}")
    except ConfigError as exc:
        msg = str(exc)
        if prefix and msg.split(" ", 1)[0] in {f.name for f in dataclasses.fields(config_cls)}:
            raise ConfigError(prefix + msg) from None
        raise


def build_model(name="vit_denoiser", **kwargs):
    """Build a registered model; every key has a default (`build_model("vit_denoiser")` is the
    course preset). Raises ConfigError for an unknown name, key or an unusable value."""
    from . import models  # noqa: F401  (registers the models)
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    cls, config_cls = _MODELS[name]
    return cls(make_config(config_cls, kwargs, what=name))


def model_spec(model):
    """(name, config dict) that rebuilds `model` with build_model; stored in checkpoints."""
    return model.model_name, dataclasses.asdict(model.config)
