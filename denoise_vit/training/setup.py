"""What every training run sets up the same way: seeds, the model, the optimizer, the schedule.

Used by `denoise-vit train` (training.run) and by the benchmark, so that both train a config
exactly alike.
"""
import random

import numpy as np
import torch

from ..registry import build_model, model_keys
from .schedule import make_scheduler


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state():
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "python": random.getstate()}


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])


def model_args_for(cfg):
    """The model's keys, with the image size and frame count taken from the data by default."""
    keys = model_keys(cfg.model_name)
    args = dict(cfg.model_args)
    if "img_size" in keys:
        args.setdefault("img_size", cfg.data.size)
    if "num_frames" in keys and cfg.data.kind == "videos":
        args.setdefault("num_frames", cfg.data.frames)
    return args


def build_run_model(cfg, device="cpu"):
    """The config's model, seeded by cfg.seed (the same initial weights on every rank)."""
    seed_everything(cfg.seed)
    model = build_model(cfg.model_name, **model_args_for(cfg)).to(device)
    if getattr(cfg, "channels_last", False):
        # 4-D conv weights NHWC: oneDNN's convolutions then run channels-last on any input
        model = model.to(memory_format=torch.channels_last)
    return model


def no_decay_names(model):
    """Parameters that weight decay must not shrink besides norms and biases (which timm's
    grouping finds by shape and name): position embeddings, as MAE and timm's ViT exclude, and
    relative position bias tables, as Swin excludes."""
    return [name for name, _ in model.named_parameters()
            if ".pos_embed." in f".{name}." or name.endswith(".rel_pos_table")]


def make_optimizer(cfg, model):
    """Adam or AdamW at cfg.lr. With weight decay, two parameter groups as nanoGPT and MAE:
    decay on weight matrices and kernels, none on norms, biases and position embeddings.
    Without it, one group (as checkpoints of earlier versions have, so they resume)."""
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    kind = fused_kind(model)
    if not cfg.weight_decay:
        return cls(model.parameters(), lr=cfg.lr, weight_decay=0.0, **kind)
    # imported here: timm.optim pulls in torchvision and torch._dynamo (3-4 s on the 2-core
    # CPU), which config checks (`from_dict`, e.g. `denoise` of an old checkpoint) need not pay
    from timm.optim import param_groups_weight_decay
    groups = param_groups_weight_decay(model, cfg.weight_decay,
                                       no_weight_decay_list=no_decay_names(model))
    return cls(groups, lr=cfg.lr, **kind)


def fused_kind(model):
    """Adam's fused kernel (one pass over all parameters) where torch has it for the model's
    device and dtype: the same update as the per-parameter loop, less Python per step
    (measured: vit_fast training +12 % images/s on the CPU). Else torch's default."""
    params = list(model.parameters())
    if params and all(p.dtype in (torch.float32, torch.float16, torch.bfloat16) and
                      p.device.type in ("cpu", "cuda") for p in params) and \
            len({p.device for p in params}) == 1:
        return {"fused": True}
    return {}


def make_run_scheduler(cfg, optimizer, *, clock=None, budget_seconds=None):
    """The config's schedule: warm-up, then constant or a cosine that ends with the run, at
    epochs x steps_per_epoch steps or at `budget_seconds` of training (default:
    cfg.max_train_seconds), whichever comes first."""
    if budget_seconds is None:
        budget_seconds = cfg.max_train_seconds
    return make_scheduler(optimizer, schedule=cfg.schedule, warmup_steps=cfg.warmup_steps,
                          min_lr_ratio=cfg.min_lr_ratio,
                          total_steps=cfg.epochs * cfg.steps_per_epoch,
                          budget_seconds=budget_seconds if clock is not None else None,
                          clock=clock)
