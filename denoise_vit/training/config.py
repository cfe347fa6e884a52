"""Training configuration: small dataclasses, read from a TOML file plus key=value overrides.

An experiment file states only what differs from the defaults, e.g. presets/quick.toml:

    name = "quick"
    epochs = 8
    [model]
    name = "vit_denoiser"
    [data]
    eval_size = 256

Overrides use dotted keys: `lr=3e-4 model.embed_dim=64 data.generator.gaussian_sigma=0.05`.
Every run writes its resolved config (config.json) beside its outputs.
"""
import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import ConfigError

DATA_KINDS = ("images", "videos", "noise2noise", "pairs")


@dataclass
class DataConfig:
    kind: str = "images"          # images | videos | noise2noise (noisy targets for training)
                                  # | pairs (files in pairs_dir/input and pairs_dir/target)
    size: object = 64             # int or [height, width]
    frames: int = 8               # videos only
    eval_size: int = 512          # images in the fixed evaluation set
    eval_seed: int = 1234
    generator: dict = field(default_factory=dict)   # keywords for data_gen (rates, ranges, noise)
    pairs_dir: str = ""           # kind "pairs": folder with input/, target/ (and optional clean/)


@dataclass
class TrainConfig:
    name: str = "run"
    out_dir: str = "runs"
    model: dict = field(default_factory=lambda: {"name": "vit_denoiser"})  # name + build_model keys
    data: DataConfig = field(default_factory=DataConfig)
    epochs: int = 30              # the course recipe: 30 epochs, MSE, Adam
    steps_per_epoch: int = 100
    batch_size: int = 64
    optimizer: str = "adam"       # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"    # constant | cosine (after linear warm-up)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0     # cosine floor, as a fraction of lr
    grad_clip: Optional[float] = None
    max_train_seconds: Optional[float] = None   # stop (and evaluate) once training time exceeds this
    seed: int = 0
    device: str = "auto"          # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    amp: bool = False             # bf16 autocast (for GPUs)
    compile: bool = False         # torch.compile (for GPUs)
    deterministic: bool = False
    eval_batch_size: int = 128
    figure_samples: int = 6

    @property
    def model_name(self):
        return self.model.get("name", "vit_denoiser")

    @property
    def model_args(self):
        return {k: v for k, v in self.model.items() if k != "name"}

    @property
    def run_dir(self):
        return Path(self.out_dir) / self.name


def _check_keys(cls, values, prefix=""):
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise ConfigError(f"unknown config key {prefix + key!r}; valid keys"
                              f"{' under ' + prefix[:-1] if prefix else ''}: {', '.join(sorted(names))}")


def _typed(cls, key, value, prefix):
    """Check a value against the type of the default (ints are accepted for floats)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if default is None or value is None or isinstance(default, (dict, DataConfig)) or key == "size":
        return value
    if isinstance(default, bool) != isinstance(value, bool):
        raise ConfigError(f"config key {prefix + key!r} must be true or false, not {value!r}")
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    if not isinstance(value, type(default)):
        raise ConfigError(f"config key {prefix + key!r} must be a {type(default).__name__}, "
                          f"not {value!r}")
    return value


def from_dict(values):
    """TrainConfig from a nested dict, checking every key and type."""
    values = dict(values)
    _check_keys(TrainConfig, values)
    data = values.pop("data", {})
    if not isinstance(data, dict):
        raise ConfigError("config key 'data' must be a table")
    _check_keys(DataConfig, data, "data.")
    data = DataConfig(**{k: _typed(DataConfig, k, v, "data.") for k, v in data.items()})
    if data.kind not in DATA_KINDS:
        raise ConfigError(f"data.kind must be one of {DATA_KINDS}, not {data.kind!r}")
    if data.kind == "pairs" and not data.pairs_dir:
        raise ConfigError("data.kind='pairs' needs data.pairs_dir (a folder with input/ and target/)")
    model = values.pop("model", {})
    if not isinstance(model, dict):
        raise ConfigError("config key 'model' must be a table")
    cfg = TrainConfig(**{k: _typed(TrainConfig, k, v, "") for k, v in values.items()},
                      data=data, model={"name": "vit_denoiser", **model})
    for key in ("epochs", "steps_per_epoch", "batch_size", "eval_size"):
        holder = cfg.data if key == "eval_size" else cfg
        if getattr(holder, key) < 1:
            raise ConfigError(f"{key} must be at least 1 (got {getattr(holder, key)})")
    if cfg.optimizer not in ("adam", "adamw"):
        raise ConfigError(f"optimizer must be 'adam' or 'adamw', not {cfg.optimizer!r}")
    if cfg.schedule not in ("constant", "cosine"):
        raise ConfigError(f"schedule must be 'constant' or 'cosine', not {cfg.schedule!r}")
    return cfg


def to_dict(cfg):
    return dataclasses.asdict(cfg)


def parse_value(text):
    """A TOML value if it parses as one (3e-4, true, [48, 80], "x"), else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(values, overrides):
    """Apply 'a.b.c=value' strings to a nested dict (in place) and return it."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        node = values
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a table")
        node[leaf] = parse_value(raw.strip())
    return values


def read_config_text(path):
    """(TOML text, name) of a config: a file path, else a preset shipped with the package."""
    from .. import presets
    p = Path(path)
    if p.is_file():
        try:
            return p.read_text(encoding="utf-8"), p.stem
        except UnicodeDecodeError:
            raise ConfigError(f"config file {p} is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
    name = p.stem if p.suffix == ".toml" and p.parent == Path(".") else str(path)
    if name in presets.list_presets():
        return presets.read_preset(name), name
    if p.exists():
        raise ConfigError(f"config path {p} is not a file")
    raise ConfigError(f"config {path!r} is neither a file nor a preset; presets: "
                      f"{', '.join(presets.list_presets())} (denoise-vit train --list-configs)")


def load_config(path=None, overrides=()):
    """TrainConfig from a file or preset name (None: the defaults) plus key=value overrides."""
    values = {}
    if path is not None:
        text, name = read_config_text(path)
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
        values.setdefault("name", name)
    return from_dict(apply_overrides(values, overrides))


def save_config(cfg, path):
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
