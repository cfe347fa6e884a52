"""Checkpoints: written atomically, read without ever executing code from the file.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts:
  format, version, model_name, model_args, model (state dict), and for training runs
  optimizer, scheduler, step, epoch, rng, stream, config, metrics.
It is read with `torch.load(weights_only=True)`, which refuses any pickle that would build an
arbitrary object, so a crafted file cannot run code on load. A `digest` (SHA-256 over every
value) is checked on load: torch.load does not check the archive's CRCs, so without it a flipped
byte in a tensor would load silently.
"""
import hashlib
import math
import os
import pickle
import re
from pathlib import Path

import torch

from .errors import CheckpointError, ConfigError
from .registry import build_model, model_spec

FORMAT = "denoise-vit-checkpoint"
VERSION = 1


def unwrap(model):
    """The plain module under DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def atomic_save(obj, path, *, previous=None):
    """torch.save to a temporary file beside `path`, fsync, then rename over `path`.

    A kill or a full disk mid-write leaves the previous file intact; the temporary file is
    removed on failure. With `previous`, the file being replaced is kept under that name (so a
    resume can fall back one checkpoint). A checkpoint dict gets its `digest` here, over what
    is written. Raises CheckpointError naming the path and OS error.
    """
    path = Path(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = {**obj, "digest": digest(obj)}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        try:
            with open(tmp, "wb") as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
            if previous is not None and path.exists():
                keep_as(path, Path(previous))
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:  # a full disk, or a second Ctrl-C mid-write
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # the folder itself is the problem; nothing was written
            raise
    except OSError as exc:
        raise CheckpointError(f"could not write checkpoint {path}: {exc.strerror or exc}") from exc


def keep_as(path, previous):
    """Make `previous` a second name of the file `path` (which keeps its name throughout, so a
    kill at any moment leaves a complete latest file); a rename where hard links are missing."""
    tmp = previous.with_name(f".{previous.name}.tmp-{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)
    except OSError:
        os.replace(path, previous)
        return
    os.replace(tmp, previous)


def digest(ckpt):
    """SHA-256 over every key and value of a checkpoint (tensors by dtype, shape and bytes)."""
    h = hashlib.sha256()

    def feed(value):
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(value, dict):
            h.update(f"D{len(value)}".encode())
            for key, item in value.items():
                feed(key)
                feed(item)
        elif isinstance(value, (list, tuple)):
            h.update(f"L{len(value)}".encode())
            for item in value:
                feed(item)
        else:
            h.update(f"V{type(value).__name__}:{value!r};".encode())

    feed({k: v for k, v in ckpt.items() if k != "digest"})
    return h.hexdigest()


def make_checkpoint(model, **extra):
    name, args = model_spec(unwrap(model))
    return {"format": FORMAT, "version": VERSION, "model_name": name, "model_args": args,
            "model": unwrap(model).state_dict(), **extra}


def read_checkpoint(path, map_location="cpu"):
    """Load and check a checkpoint dict. Every failure is a CheckpointError naming the file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a folder, not a file: {path} "
                              "(give the .pt file, e.g. runs/quick/checkpoint_best.pt)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message starts with advice to load the file unsafely: never repeated here
        found = re.search(r"GLOBAL ([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)", str(exc))
        if found:
            raise CheckpointError(f"refusing to load {path}: it asks to build {found[1]}, an "
                                  "object other than tensors and plain data, which could run "
                                  "code") from exc
        raise CheckpointError(f"cannot read checkpoint {path}: not a checkpoint file, or a "
                              "truncated or corrupt one (its data cannot be decoded)") from exc
    except Exception as exc:  # a damaged archive or pickle fails in many ways
        raise CheckpointError(f"cannot read checkpoint {path}: truncated or corrupt file "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a denoise-vit checkpoint")
    version = ckpt.get("version", 0)
    if type(version) is not int:
        raise CheckpointError(f"{path}: not a usable denoise-vit checkpoint: 'version' is "
                              f"{type(version).__name__}, not an integer")
    if version > VERSION:
        raise CheckpointError(f"{path} was written by a newer denoise-vit (format version "
                              f"{ckpt['version']} > {VERSION})")
    if "digest" in ckpt and digest(ckpt) != ckpt["digest"]:
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt file (its contents do not "
                              "match the digest written with them)")
    problem = structure_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path}: not a usable denoise-vit checkpoint: {problem}")
    return ckpt


def _number(value):
    return type(value) in (int, float) and math.isfinite(value)


def structure_problem(ckpt):
    """None if the entries every command reads have the types they need, else what is wrong.

    The digest catches damage, not a file written (or forged) with entries missing or of the
    wrong type; those must stop here with one message, not as a KeyError deep in a command.
    """
    name, args, weights = ckpt.get("model_name"), ckpt.get("model_args"), ckpt.get("model")
    if not isinstance(name, str) or not name:
        return "no model name ('model_name' missing or not a string)"
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        return "'model_args' missing or not a table of named values"
    if not isinstance(weights, dict) or not weights:
        return "no weights ('model' missing, empty or not a table of tensors)"
    for key, value in weights.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            return f"weight {key!r} is {type(value).__name__}, not a tensor"
    config = ckpt.get("config", {})
    if not isinstance(config, dict) or not isinstance(config.get("data", {}), dict):
        return "'config' (or its 'data' part) is not a table"
    if "intensity" in ckpt:
        rec = ckpt["intensity"]
        pct = rec.get("percentiles") if isinstance(rec, dict) else None
        if not (isinstance(rec, dict) and _number(rec.get("low")) and _number(rec.get("high"))
                and isinstance(pct, (list, tuple)) and len(pct) == 2 and all(map(_number, pct))
                and 0 <= pct[0] < pct[1] <= 100 and rec["low"] <= rec["high"]):
            return ("'intensity' is not a record of two percentiles (0..100, rising) and the "
                    "finite low <= high values they had")
    return None


def model_from_checkpoint(ckpt, path="checkpoint"):
    try:
        model = build_model(ckpt["model_name"], **ckpt["model_args"])
    except ConfigError as exc:
        raise CheckpointError(f"cannot rebuild the model stored in {path}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 -- arguments of the wrong type fail anywhere inside
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot rebuild the model stored in {path}: its arguments do not "
                              f"fit model {ckpt['model_name']!r} ({detail})") from exc
    try:
        model.load_state_dict(ckpt["model"])
    except Exception as exc:  # noqa: BLE001 -- RuntimeError for shapes, others for odd values
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"weights in {path} do not fit model {ckpt['model_name']!r}: "
                              f"{detail}") from exc
    return model


def open_checkpoint(path, *, device="cpu", expect=None):
    """(checkpoint dict, model rebuilt from it in eval mode on `device`): the one way every
    command and `load_model` open a checkpoint.

    `expect`: a model name or a tuple of names; a checkpoint of another kind is refused.
    """
    ckpt = read_checkpoint(path)
    if expect is not None:
        names = (expect,) if isinstance(expect, str) else tuple(expect)
        if ckpt["model_name"] not in names:
            raise CheckpointError(f"{path} holds a {ckpt['model_name']!r} model; this needs "
                                  f"{' or '.join(map(repr, names))}")
    return ckpt, model_from_checkpoint(ckpt, path).to(device).eval()


def load_model(path, *, device="cpu", expect=None):
    """Rebuild a model from its checkpoint alone, in eval mode, on `device`."""
    return open_checkpoint(path, device=device, expect=expect)[1]
