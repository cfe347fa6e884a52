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
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..checkpoint import atomic_save, make_checkpoint, read_checkpoint, unwrap
from ..device import resolve_device
from ..errors import CheckpointError, TrainingError
from ..figures import save_batch_figure, save_clip_figures, save_curves
from ..inference.intensity import training_record
from ..metrics import psnr
from . import distributed, split
from .config import save_config, to_dict
from .data import make_eval_data, make_train_stream
from .engine import StopFlag, evaluate, predict, train_steps
from .run_folder import RunFolder
from .schedule import CpuClock, TrainClock
from .setup import build_run_model, make_optimizer, make_run_scheduler, rng_state, set_rng_state

METRIC_FIELDS = ["epoch", "step", "train_loss", "eval_psnr", "eval_ssim", "images_per_s",
                 "train_seconds", "lr"]


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




def new_epoch_sums():
    """Running totals of the epoch in progress (kept in checkpoints: a resumed epoch's row is
    the uninterrupted run's)."""
    return {"loss": 0.0, "steps": 0, "images": 0, "seconds": 0.0}


class TrainingRun:
    """One training run, in the order it happens:

        run = TrainingRun(cfg, info, ...)   # device, seeds, model, optimizer, schedule, stream
        run.claim_folder()                  # refuse a folder that is not ours, before any work
        run.resume()                        # with --resume: the newest complete checkpoint
        run.start()                         # config.json, evaluation set, DDP / compile wrap
        while run.train_epoch(): ...        # steps to the end of an epoch or of the budget,
                                            # then evaluate_and_record() and save()
        run.finish()                        # figures; the summary dict

    `max_train_seconds` counts training steps only (not evaluation or checkpoints), in a
    fresh and a resumed run alike: the clock resumes from the checkpoint's seconds.
    """

    def __init__(self, cfg, info, *, resume=False, progress=True, log=print):
        self.cfg, self.info, self.resuming, self.progress, self.log = cfg, info, resume, progress, log
        self.device = resolve_device(cfg.device, info.local_rank)
        if cfg.deterministic:
            # cuBLAS is deterministic only with a fixed workspace; read when its first handle is made
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        self.folder = RunFolder(cfg.run_dir)
        self.model = build_run_model(cfg, self.device)   # same initial weights on every rank
        self.optimizer = make_optimizer(cfg, self.model)
        self.clock = CpuClock() if cfg.budget_clock == "cpu" else TrainClock()
        self.scheduler = make_run_scheduler(cfg, self.optimizer, clock=self.clock)
        # each rank draws its own data; the stream seed never collides with another run's ranks
        self.stream = make_train_stream(cfg.data, cfg.batch_size, seed=cfg.seed * 1000 + info.rank,
                                        device=self.device)
        self.total_steps = cfg.epochs * cfg.steps_per_epoch
        self.step, self.best, self.rows, self.epoch_sums = 0, -math.inf, [], new_epoch_sums()
        self.saved_step = None   # the step of the newest checkpoint_last.pt
        self.stop = StopFlag()
        self.net = self.model

    @property
    def run_dir(self):
        return self.folder.path

    def claim_folder(self):
        """Rank 0 claims the folder; every rank stops with its message if that fails."""
        error = None
        if self.info.is_main:
            try:
                self.folder.claim(resume=self.resuming)
            except TrainingError as exc:
                error = str(exc)
        error = distributed.broadcast_object(error)
        if error:
            raise TrainingError(error)

    def resume(self):
        path, ckpt = find_resume_checkpoint(self.run_dir, self.log)
        streams = ckpt["streams"]
        try:
            unwrap(self.model).load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if self.info.rank < len(streams):
                self.stream.load_state_dict(streams[self.info.rank])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path} does not fit this run's config: "
                                  f"{' '.join(str(exc).split())[:300]}"
                                  f"{optimizer_hint(ckpt.get('config'), self.cfg)}") from exc
        if len(streams) != self.info.world_size:
            self.log(f"warning: {path} was written by {len(streams)} process(es), this run has "
                     f"{self.info.world_size}: ranks without a saved data stream start theirs "
                     "from its seed, so the run does not repeat an uninterrupted one step for step")
        set_rng_state(ckpt["rng"])
        self.step, self.clock.done = ckpt["step"], ckpt["train_seconds"]
        self.best, self.rows = ckpt["best_psnr"], list(ckpt["metrics"])
        self.epoch_sums = dict(ckpt.get("epoch_sums", self.epoch_sums))
        self.saved_step = self.step
        self.log(f"resumed from {path} at step {self.step}")

    def start(self):
        cfg, info = self.cfg, self.info
        if info.is_main:
            with writing(self.run_dir / "config.json"):
                save_config(cfg, self.run_dir / "config.json")
            self.eval_inputs, self.eval_targets = make_eval_data(cfg.data)
            self.noisy_psnr = psnr(self.eval_inputs, self.eval_targets)
            # what the model is trained on, for `denoise` to map real images onto
            self.intensity = training_record(self.eval_inputs)
            self.log(f"run {self.run_dir}: {cfg.model_name}, "
                     f"{sum(p.numel() for p in self.model.parameters()):,} parameters, device "
                     f"{self.device}, world size {info.world_size}; evaluation set: "
                     f"{cfg.data.eval_size} {cfg.data.kind} (seed {cfg.data.eval_seed}), noisy "
                     f"input PSNR {self.noisy_psnr:.2f} dB")
        self.net = torch.compile(self.model) if cfg.compile else self.model
        if info.enabled:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if info.is_main and self.device.type == "cpu":
            self.log(split.describe(self.net, self.device, cfg.batch_size,
                                    torch.get_num_threads(), cfg.split_batch))

    def budget_left(self):
        if self.cfg.max_train_seconds is None:
            return None
        return self.cfg.max_train_seconds - self.clock.seconds

    def train_epoch(self):
        """Train to the end of the epoch (or the budget, or a signal); evaluate and save.
        Returns whether another epoch follows."""
        cfg = self.cfg
        epoch = self.step // cfg.steps_per_epoch
        end = min((epoch + 1) * cfg.steps_per_epoch, self.total_steps)
        left = self.budget_left()
        sync = ((lambda values: distributed.all_max(values, self.device)) if self.info.enabled
                else None)
        self.clock.start()
        try:
            done, loss_sum, images, seconds = train_steps(
                self.net, self.stream, self.optimizer, self.scheduler, first_step=self.step,
                last_step=end, device=self.device, amp=cfg.amp, grad_clip=cfg.grad_clip,
                stop=self.stop, deadline=None if left is None else self.clock.now() + left,
                now=self.clock.now,
                sync=sync, progress=self.progress, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                loss=cfg.loss, split=cfg.split_batch)
        finally:
            self.clock.stop()
        self.step += done
        for key, value in zip(("loss", "steps", "images", "seconds"),
                              (loss_sum, done, images, seconds)):
            self.epoch_sums[key] += value
        if self.stop.signum:  # a signal: keep every step done; the epoch finishes after --resume
            if self.step != self.saved_step:
                self.save()
            return False
        if done:  # the end of an epoch, or of the time budget: evaluate and checkpoint
            if self.info.is_main:
                self.evaluate_and_record()
            self.epoch_sums = new_epoch_sums()
            self.save()
            distributed.barrier()
        return not self.stop and self.step < self.total_steps

    def evaluate_and_record(self):
        cfg, sums = self.cfg, self.epoch_sums
        metrics = evaluate(self.model, self.eval_inputs, self.eval_targets, device=self.device,
                           batch_size=cfg.eval_batch_size, amp=cfg.amp)
        row = {"epoch": round(self.step / cfg.steps_per_epoch, 3), "step": self.step,
               "train_loss": sums["loss"] / sums["steps"], "eval_psnr": metrics["psnr"],
               "eval_ssim": metrics["ssim"],
               "images_per_s": sums["images"] * self.info.world_size / sums["seconds"],
               "train_seconds": self.clock.seconds, "lr": self.scheduler.get_last_lr()[0]}
        self.rows.append(row)
        self.log(f"epoch {row['epoch']:g}: loss {row['train_loss']:.3e}  eval PSNR "
                 f"{metrics['psnr']:.2f} dB  SSIM {metrics['ssim']:.3f}  "
                 f"{row['images_per_s']:.0f} images/s  ({row['train_seconds']:.0f} s)")
        if metrics["psnr"] > self.best:
            self.best = metrics["psnr"]
            atomic_save(make_checkpoint(self.model, step=self.step, epoch=row["epoch"],
                                        eval_psnr=self.best, config=to_dict(cfg),
                                        intensity=self.intensity),
                        self.run_dir / "checkpoint_best.pt")
        with writing(self.run_dir / "metrics.csv"):
            write_metrics(self.run_dir / "metrics.csv", self.rows)
        with writing(self.run_dir / "curves.png"):
            save_curves(self.run_dir / "curves.png", self.rows, noisy_psnr=self.noisy_psnr)

    def save(self):
        """checkpoint_last.pt (the previous one kept as checkpoint_prev.pt), with every rank's
        data stream so that each resumes its own."""
        streams = [self.stream.state_dict()]
        if self.info.enabled:
            streams = [None] * self.info.world_size
            torch.distributed.all_gather_object(streams, self.stream.state_dict())
        self.saved_step = self.step
        if not self.info.is_main:
            return
        cfg = self.cfg
        ckpt = make_checkpoint(self.model, optimizer=self.optimizer.state_dict(),
                               scheduler=self.scheduler.state_dict(), step=self.step,
                               epoch=round(self.step / cfg.steps_per_epoch, 3),
                               train_seconds=self.clock.seconds, best_psnr=self.best,
                               metrics=self.rows, epoch_sums=dict(self.epoch_sums),
                               rng=rng_state(), streams=streams, config=to_dict(cfg),
                               world_size=self.info.world_size, intensity=self.intensity)
        atomic_save(ckpt, self.run_dir / "checkpoint_last.pt",
                    previous=self.run_dir / "checkpoint_prev.pt")

    def finish(self):
        """The figures of the finished run, and its summary."""
        info = self.info
        distributed.broadcast_buffers(self.model)
        interrupted = self.stop.signum is not None and self.step < self.total_steps
        summary = {"run_dir": str(self.run_dir), "steps": self.step,
                   "train_seconds": self.clock.seconds, "stopped": self.stop.reason,
                   "signal": self.stop.signum if interrupted else None}
        if not info.is_main:
            return summary
        if interrupted:
            self.log(f"stopped by {self.stop.reason} at step {self.step} of {self.total_steps}: "
                     f"checkpoint written to {self.run_dir / 'checkpoint_last.pt'}; continue "
                     "with --resume")
            return summary
        if self.rows:
            self.save_samples()
        summary.update(noisy_psnr=self.noisy_psnr, best_psnr=self.best,
                       final_psnr=self.rows[-1]["eval_psnr"] if self.rows else None)
        return summary

    def save_samples(self):
        """samples.png: the course's figure; for videos the first evaluation clip frame by
        frame, plus samples.gif."""
        cfg, path = self.cfg, self.run_dir / "samples.png"
        title = f"{cfg.name}: eval PSNR {self.rows[-1]['eval_psnr']:.2f} dB"
        n = min(cfg.figure_samples, cfg.data.eval_size)
        if n == 0:
            return
        with writing(path):
            if cfg.data.kind == "videos":
                outputs = predict(self.model, self.eval_inputs[:1], device=self.device)
                save_clip_figures(path, self.run_dir / "samples.gif", self.eval_inputs[0],
                                  self.eval_targets[0], outputs[0], title=title)
            else:
                outputs = predict(self.model, self.eval_inputs[:n], device=self.device)
                save_batch_figure(path, self.eval_inputs[:n], self.eval_targets[:n], outputs,
                                  title=title)

    def run(self):
        self.claim_folder()
        try:
            if self.resuming:
                self.resume()
            self.start()
            with SignalStop(self.stop):
                while self.step < self.total_steps and self.train_epoch():
                    pass
            return self.finish()
        finally:
            self.folder.release()


def optimizer_hint(saved, cfg):
    """For a checkpoint whose optimizer differs from the config's (vit_fast's preset moved from
    Adam to AdamW on 2026-12-03): the overrides that resume it, else ''."""
    saved = saved or {}
    was = (saved.get("optimizer", "adam"), float(saved.get("weight_decay", 0.0)))
    if was == (cfg.optimizer, float(cfg.weight_decay)):
        return ""
    return (f" (the run was started with optimizer={was[0]} weight_decay={was[1]:g}: add those "
            f"overrides to resume it)")


def run_training(cfg, *, resume=False, progress=True, log=None):
    """Train `cfg` (a TrainConfig); returns a summary dict. Works alone or under torchrun."""
    info = distributed.init_distributed()
    finished = False
    try:
        log = (log or tqdm.write) if info.is_main else (lambda *a, **k: None)
        summary = TrainingRun(cfg, info, resume=resume, progress=progress and info.is_main,
                              log=log).run()
        finished = True
        return summary
    finally:
        # after a normal end every rank leaves together (rank 0 still draws the figures), with
        # the DDP wrapper gone: a rank that tore gloo down while its peer still held the group
        # aborted once in CI ("terminate called without an active exception")
        distributed.cleanup(synchronize=finished)
