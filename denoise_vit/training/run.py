"""`denoise-vit train`: sets a run up, then lets the engine run epochs.

Run folder (out_dir/name): config.json (resolved config), metrics.csv (one row per epoch),
checkpoint_last.pt (+ checkpoint_prev.pt, the one before), checkpoint_best.pt (best eval
PSNR), curves.png (loss and PSNR), samples.png (the course's figure on the evaluation set;
for videos the first evaluation clip frame by frame, plus samples.gif, noisy beside denoised).

Interruptions: SIGINT / SIGTERM write checkpoint_last.pt at the current step and end the run
(the CLI exits 128 + signal number: 130, 143); after SIGKILL, a crash or a corrupt last file,
`--resume` continues from the newest complete checkpoint (last, else prev). Checkpoints hold the
model, optimizer, scheduler, step, the epoch in progress, the RNG states and every rank's data
stream, so with deterministic=true a resumed run ends with the uninterrupted run's weights.
"""
import csv
import math
import os
import random
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import distributed
from ..device import resolve_device
from ..checkpoint import atomic_save, make_checkpoint, read_checkpoint, unwrap
from .config import save_config, to_dict
from .data import make_eval_data, make_train_stream
from .engine import StopFlag, evaluate, predict, train_steps
from ..errors import CheckpointError, TrainingError
from ..figures import save_batch_figure, save_clip_figures, save_curves
from ..inference.intensity import training_record
from ..metrics import psnr
from ..registry import build_model, model_keys

METRIC_FIELDS = ["epoch", "step", "train_loss", "eval_psnr", "eval_ssim", "images_per_s",
                 "train_seconds", "lr"]


def prepare_run_dir(path):
    """Create the run folder and prove it is writable, before any training time is spent."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise TrainingError(f"cannot write to run folder {path}: {exc.strerror or exc}") from exc
    return path


def model_args_for(cfg):
    """The model's keys, with the image size and frame count taken from the data by default."""
    keys = model_keys(cfg.model_name)
    args = dict(cfg.model_args)
    if "img_size" in keys:
        args.setdefault("img_size", cfg.data.size)
    if "num_frames" in keys and cfg.data.kind == "videos":
        args.setdefault("num_frames", cfg.data.frames)
    return args


def make_optimizer(cfg, model):
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg, optimizer):
    """Linear warm-up, then constant or cosine down to min_lr_ratio * lr, per step."""
    total = cfg.epochs * cfg.steps_per_epoch

    def factor(step):
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


RESUME_KEYS = ("optimizer", "scheduler", "step", "train_seconds", "best_psnr", "metrics", "rng",
               "streams")


def find_resume_checkpoint(run_dir, log):
    """The newest readable training checkpoint of a run: last, else the previous one."""
    errors = []
    for name in ("checkpoint_last.pt", "checkpoint_prev.pt"):
        path = Path(run_dir) / name
        if not path.exists():
            continue
        try:
            ckpt = read_checkpoint(path)
            missing = [key for key in RESUME_KEYS if key not in ckpt]
            if missing:
                raise CheckpointError(f"{path} is not a training checkpoint (no "
                                      f"{', '.join(missing)})")
            return path, ckpt
        except CheckpointError as exc:
            if name == "checkpoint_last.pt":
                log(f"warning: {exc}; trying checkpoint_prev.pt")
            errors.append(str(exc))
    detail = "; ".join(errors) if errors else "no checkpoint_last.pt or checkpoint_prev.pt there"
    raise CheckpointError(f"--resume: no usable checkpoint in {run_dir} ({detail})")


def remove_stale_temp_files(run_dir):
    """Temporary checkpoint files left by a process killed while writing (never read back)."""
    for tmp in Path(run_dir).glob(".checkpoint_*.tmp-*"):
        tmp.unlink(missing_ok=True)


@contextmanager
def writing(path):
    """Turn an OSError while writing `path` (full disk, permissions) into one clear message."""
    try:
        yield
    except OSError as exc:
        raise TrainingError(f"could not write {path}: {exc.strerror or exc}") from exc


def write_metrics(path, rows):
    tmp = Path(path).with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


class SignalStop:
    """SIGINT / SIGTERM set the stop flag (the run checkpoints and exits) instead of killing.

    A second signal more than REPEAT_SECONDS after the first means the user insists: it raises
    KeyboardInterrupt (the last complete checkpoint stays the latest). One sooner is the same
    request twice: a job scheduler signals every process of a job, and torchrun forwards the
    signal it got to its workers as well.
    """

    REPEAT_SECONDS = 2.0

    def __init__(self, stop):
        self.stop = stop
        self.saved = {}
        self.first = None

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.saved[sig] = signal.signal(sig, self.handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def handle(self, signum, frame):
        now = time.monotonic()
        if self.first is None:
            self.first = now
            self.stop.set(signal.Signals(signum).name, signum)
        elif now - self.first > self.REPEAT_SECONDS:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def run_training(cfg, *, resume=False, progress=True, log=None):
    """Train `cfg` (a TrainConfig); returns a summary dict. Works alone or under torchrun."""
    info = distributed.init_distributed()
    try:
        return _run(cfg, info, resume=resume, progress=progress and info.is_main,
                    log=(log or tqdm.write) if info.is_main else (lambda *a, **k: None))
    finally:
        distributed.cleanup()


def new_epoch_sums():
    """Running totals of the epoch in progress (kept in checkpoints: a resumed epoch's row is
    the uninterrupted run's)."""
    return {"loss": 0.0, "steps": 0, "images": 0, "seconds": 0.0}


def restore(path, ckpt, model, optimizer, scheduler, stream, info, log):
    """Load a training checkpoint into this run's objects; this rank resumes its own stream."""
    streams = ckpt["streams"]
    try:
        unwrap(model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if info.rank < len(streams):
            stream.load_state_dict(streams[info.rank])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} does not fit this run's config: "
                              f"{' '.join(str(exc).split())[:300]}") from exc
    if len(streams) != info.world_size:
        log(f"warning: {path} was written by {len(streams)} process(es), this run has "
            f"{info.world_size}: ranks without a saved data stream start theirs from its seed, "
            "so the run does not repeat an uninterrupted one step for step")
    set_rng_state(ckpt["rng"])


def _run(cfg, info, *, resume, progress, log):
    device = resolve_device(cfg.device, info.local_rank)
    if cfg.deterministic:
        # cuBLAS is deterministic only with a fixed workspace; read when its first handle is made
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    seed_everything(cfg.seed)  # same initial weights on every rank
    model = build_model(cfg.model_name, **model_args_for(cfg)).to(device)
    run_dir = Path(cfg.run_dir)
    if info.is_main:
        prepare_run_dir(run_dir)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_scheduler(cfg, optimizer)
    # each rank draws its own data; the stream seed never collides with another run's ranks
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=cfg.seed * 1000 + info.rank,
                               device=device)
    step, train_seconds, best, rows, epoch_sums = 0, 0.0, -math.inf, [], new_epoch_sums()
    saved_step = None  # the step of the newest checkpoint_last.pt
    if resume:
        path, ckpt = find_resume_checkpoint(run_dir, log)
        restore(path, ckpt, model, optimizer, scheduler, stream, info, log)
        step, train_seconds = ckpt["step"], ckpt["train_seconds"]
        best, rows = ckpt["best_psnr"], list(ckpt["metrics"])
        epoch_sums = dict(ckpt.get("epoch_sums", epoch_sums))
        saved_step = step
        log(f"resumed from {path} at step {step}")
    if info.is_main:
        remove_stale_temp_files(run_dir)
        with writing(run_dir / "config.json"):
            save_config(cfg, run_dir / "config.json")
        eval_inputs, eval_targets = make_eval_data(cfg.data)
        noisy_psnr = psnr(eval_inputs, eval_targets)
        # what the model is trained on, for `denoise` to map real images onto
        intensity = training_record(eval_inputs)
        log(f"run {run_dir}: {cfg.model_name}, {sum(p.numel() for p in model.parameters()):,} "
            f"parameters, device {device}, world size {info.world_size}; evaluation set: "
            f"{cfg.data.eval_size} {cfg.data.kind} (seed {cfg.data.eval_seed}), noisy input "
            f"PSNR {noisy_psnr:.2f} dB")
    net = torch.compile(model) if cfg.compile else model
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    sync = (lambda values: distributed.all_max(values, device)) if info.enabled else None

    def save():
        nonlocal saved_step
        streams = [stream.state_dict()]
        if info.enabled:  # rank 0 stores every rank's stream so each resumes its own data
            streams = [None] * info.world_size
            torch.distributed.all_gather_object(streams, stream.state_dict())
        saved_step = step
        if not info.is_main:
            return
        ckpt = make_checkpoint(model, optimizer=optimizer.state_dict(),
                               scheduler=scheduler.state_dict(), step=step,
                               epoch=round(step / cfg.steps_per_epoch, 3),
                               train_seconds=train_seconds, best_psnr=best, metrics=rows,
                               epoch_sums=dict(epoch_sums), rng=rng_state(), streams=streams,
                               config=to_dict(cfg), world_size=info.world_size,
                               intensity=intensity)
        atomic_save(ckpt, run_dir / "checkpoint_last.pt", previous=run_dir / "checkpoint_prev.pt")

    total_steps = cfg.epochs * cfg.steps_per_epoch
    stop = StopFlag()
    budget_left = None if cfg.max_train_seconds is None else cfg.max_train_seconds - train_seconds
    with SignalStop(stop):
        deadline = None if budget_left is None else time.monotonic() + budget_left
        while step < total_steps:
            epoch = step // cfg.steps_per_epoch
            end = min((epoch + 1) * cfg.steps_per_epoch, total_steps)
            done, loss_sum, images, seconds = train_steps(
                net, stream, optimizer, scheduler, first_step=step, last_step=end, device=device,
                amp=cfg.amp, grad_clip=cfg.grad_clip, stop=stop, deadline=deadline, sync=sync,
                progress=progress, desc=f"epoch {epoch + 1}/{cfg.epochs}")
            step += done
            train_seconds += seconds
            for key, value in zip(("loss", "steps", "images", "seconds"),
                                  (loss_sum, done, images, seconds)):
                epoch_sums[key] += value
            if stop.signum:  # a signal: keep every step done; the epoch finishes after --resume
                if step != saved_step:
                    save()
                break
            if done:  # the end of an epoch, or of the time budget: evaluate and checkpoint
                if info.is_main:
                    metrics = evaluate(model, eval_inputs, eval_targets, device=device,
                                       batch_size=cfg.eval_batch_size, amp=cfg.amp)
                    rows.append({"epoch": round(step / cfg.steps_per_epoch, 3), "step": step,
                                 "train_loss": epoch_sums["loss"] / epoch_sums["steps"],
                                 "eval_psnr": metrics["psnr"], "eval_ssim": metrics["ssim"],
                                 "images_per_s": epoch_sums["images"] * info.world_size
                                                 / epoch_sums["seconds"],
                                 "train_seconds": train_seconds, "lr": scheduler.get_last_lr()[0]})
                    log(f"epoch {rows[-1]['epoch']:g}: loss {rows[-1]['train_loss']:.3e}  eval "
                        f"PSNR {metrics['psnr']:.2f} dB  SSIM {metrics['ssim']:.3f}  "
                        f"{rows[-1]['images_per_s']:.0f} images/s  ({train_seconds:.0f} s)")
                    if metrics["psnr"] > best:
                        best = metrics["psnr"]
                        atomic_save(make_checkpoint(model, step=step, epoch=rows[-1]["epoch"],
                                                    eval_psnr=best, config=to_dict(cfg),
                                                    intensity=intensity),
                                    run_dir / "checkpoint_best.pt")
                    with writing(run_dir / "metrics.csv"):
                        write_metrics(run_dir / "metrics.csv", rows)
                    with writing(run_dir / "curves.png"):
                        save_curves(run_dir / "curves.png", rows, noisy_psnr=noisy_psnr)
                epoch_sums = new_epoch_sums()
                save()
                distributed.barrier()
            if stop:  # the time budget, agreed on by every rank in train_steps
                break
    distributed.broadcast_buffers(model)
    interrupted = stop.signum is not None and step < total_steps
    summary = {"run_dir": str(run_dir), "steps": step, "train_seconds": train_seconds,
               "stopped": stop.reason, "signal": stop.signum if interrupted else None}
    if info.is_main:
        if interrupted:
            log(f"stopped by {stop.reason} at step {step} of {total_steps}: checkpoint written "
                f"to {run_dir / 'checkpoint_last.pt'}; continue with --resume")
            return summary
        n = min(cfg.figure_samples, cfg.data.eval_size)
        if rows and cfg.data.kind == "videos":  # the first evaluation clip, frame by frame
            outputs = predict(model, eval_inputs[:1], device=device)
            with writing(run_dir / "samples.png"):
                save_clip_figures(run_dir / "samples.png", run_dir / "samples.gif",
                                  eval_inputs[0], eval_targets[0], outputs[0],
                                  title=f"{cfg.name}: eval PSNR {rows[-1]['eval_psnr']:.2f} dB")
        elif rows:
            outputs = predict(model, eval_inputs[:n], device=device)
            with writing(run_dir / "samples.png"):
                save_batch_figure(run_dir / "samples.png", eval_inputs[:n], eval_targets[:n],
                                  outputs, title=f"{cfg.name}: eval PSNR "
                                                 f"{rows[-1]['eval_psnr']:.2f} dB")
        summary.update(noisy_psnr=noisy_psnr, best_psnr=best,
                       final_psnr=rows[-1]["eval_psnr"] if rows else None)
    return summary
