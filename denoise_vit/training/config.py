"""Training configuration: small dataclasses, read from a TOML file plus key=value overrides.

A preset (denoise_vit/presets/NAME.toml) or a user's file states only what differs from the
defaults, e.g. presets/quick.toml:

    name = "quick"
    epochs = 8
    [model]
    name = "vit_denoiser"
    [data]
    eval_size = 256

Overrides use dotted keys: `lr=3e-4 model.embed_dim=64 data.generator.gaussian_sigma=0.05`.
Every key and value is checked when the config loads (`from_dict`), model and generator keys
included, so a mistake stops with one message naming the key before any work starts. Every
run writes its resolved config (config.json) beside its outputs.
"""
import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Optional

from ..checks import check_choice, check_config, check_int_range, image_size
from ..errors import ConfigError

DATA_KINDS = ("images", "videos", "noise2noise", "pairs")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine")
LOSSES = ("mse", "charbonnier")
BUDGET_CLOCKS = ("wall", "cpu")
SEED_MAX = 2**32 - 1      # numpy's seed range; the streams derive seed * 1000 + rank from it


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
    loss: str = "mse"             # mse | charbonnier (sqrt(d**2 + 1e-6), Restormer's / SwinIR's)
    lr: float = 1e-3
    weight_decay: float = 0.0     # on weight matrices and kernels only (not norms, biases, pos)
    schedule: str = "constant"    # constant | cosine (after linear warm-up)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0     # cosine floor, as a fraction of lr
    grad_clip: Optional[float] = None
    max_train_seconds: Optional[float] = None   # training time budget (evaluation not counted)
    budget_clock: str = "wall"    # wall | cpu: max_train_seconds in wall-clock or process CPU s
    seed: int = 0
    device: str = "auto"          # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    amp: bool = False             # bf16 autocast (for GPUs)
    compile: bool = False         # torch.compile (for GPUs)
    channels_last: bool = False   # conv weights and maps NHWC (measured on the CPU: vit_fast
                                  # training +31 % images/s; the vit_fast preset sets it)
    split_batch: bool = True      # CPU, 2+ threads: each batch as two halves on two threads
                                  # (training/split.py; docs/split_speed.json: vit_fast x1.13,
                                  # course x1.21 images/s on the 2-core EPYC)
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


def _table(values, key):
    table = values.pop(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"config key {key!r} must be a table, not {table!r}")
    return table


def check_run_name(name):
    """A run name is one folder name inside out_dir: no separators, not '.' or '..'."""
    parts = {PurePosixPath(name).name, PureWindowsPath(name).name}
    if not name.strip() or parts != {name} or name in (".", "..") or "\0" in name:
        raise ConfigError(f"name must be a plain folder name (no '/', '\\\\', '.' or '..'), "
                          f"not {name!r}")
    return name


def check_data(data):
    check_config(data, positive=("frames", "eval_size"), prefix="data.")
    check_choice("data.kind", data.kind, DATA_KINDS)
    image_size(data.size, "data.size")
    check_int_range("data.eval_seed", data.eval_seed, 0, 2**63 - 1)
    if data.kind == "pairs":
        if not data.pairs_dir:
            raise ConfigError("data.kind='pairs' needs data.pairs_dir (a folder with input/ "
                              "and target/)")
        if data.generator:
            raise ConfigError("data.generator keys apply to synthetic data, not to "
                              "data.kind='pairs'")
        return
    from data_gen import check_generator_options
    try:
        check_generator_options(data.kind, data.generator)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        unknown = "unknown generator key '"
        raise ConfigError(msg.replace(unknown, "unknown config key 'data.generator.", 1)
                          if msg.startswith(unknown) else f"data.generator.{msg}") from None


def check_train(cfg):
    check_config(cfg, positive=("epochs", "steps_per_epoch", "batch_size", "eval_batch_size"),
                 nonnegative=("weight_decay", "warmup_steps", "figure_samples"),
                 positive_numbers=("lr", "grad_clip", "max_train_seconds"))
    check_run_name(cfg.name)
    if not cfg.out_dir:
        raise ConfigError("out_dir must name a folder")
    check_choice("optimizer", cfg.optimizer, OPTIMIZERS)
    check_choice("loss", cfg.loss, LOSSES)
    check_choice("schedule", cfg.schedule, SCHEDULES)
    check_choice("budget_clock", cfg.budget_clock, BUDGET_CLOCKS)
    if not 0 <= cfg.min_lr_ratio <= 1:
        raise ConfigError(f"min_lr_ratio must be in [0, 1], not {cfg.min_lr_ratio!r}")
    check_int_range("seed", cfg.seed, 0, SEED_MAX)
    if not isinstance(cfg.model.get("name", ""), str):
        raise ConfigError(f"model.name must be a string, not {cfg.model['name']!r}")
    from ..registry import check_model_args
    from .setup import model_args_for
    check_model_args(cfg.model_name, {}, prefix="model.")   # the name first
    check_model_args(cfg.model_name, model_args_for(cfg), prefix="model.")


def from_dict(values):
    """TrainConfig from a nested dict, checking every key and value."""
    values = dict(values)
    _check_keys(TrainConfig, values)
    data, model = _table(values, "data"), _table(values, "model")
    _check_keys(DataConfig, data, "data.")
    data = DataConfig(**data)
    check_data(data)
    cfg = TrainConfig(**values, data=data, model={"name": "vit_denoiser", **model})
    check_train(cfg)
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
        set_key(values, key.strip(), parse_value(raw.strip()), item)
    return values


def set_key(values, key, value, what=None):
    """values['a']['b']['c'] = value for key 'a.b.c' (tables created as needed)."""
    node = values
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {what or key!r}: {part!r} is not a table")
    node[leaf] = value
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
    if str(path) in presets.list_presets():
        return presets.read_preset(str(path)), str(path)
    if p.exists():
        raise ConfigError(f"config path {p} is not a file")
    raise ConfigError(f"config {str(path)!r} is neither a file nor a preset; presets: "
                      f"{', '.join(presets.list_presets())} (denoise-vit train --list-configs)")


def load_config(path=None, overrides=(), values=None):
    """TrainConfig from a file or preset name (None: the defaults), key=value overrides, then
    `values` ({dotted key: Python value}, e.g. from command-line options: taken as they are,
    never parsed as TOML)."""
    config = {}
    if path is not None:
        text, name = read_config_text(path)
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
        config.setdefault("name", name)
    apply_overrides(config, overrides)
    for key, value in (values or {}).items():
        set_key(config, key, value)
    return from_dict(config)


def save_config(cfg, path):
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
