"""`denoise-vit benchmark`: every method side by side on one evaluation set, in one run.

    denoise-vit benchmark --budgets 1,3,6      # minutes of training per network

1. Classical filters (denoise_vit.benchmark.baselines), each tuned on a validation set of its own seed.
2. Networks from experiment configs (ViT, U-Net, DnCNN, ...), trained by the training engine
   of `denoise-vit train` (same optimizer, warm-up, data stream), each for the same wall-clock
   budgets, with evaluation PSNR recorded when the training time reaches each budget.
3. Costs: parameters, FLOPs per image (torch.utils.flop_counter), inference ms per image,
   training images/s and the FLOP rate that reaches, as a fraction of this machine's dense
   matmul rate measured in the same run.
4. docs/BENCHMARKS.md (tables, the command, the machine), docs/benchmarks.json, PNG plots.

Budgets. By default one run per network is evaluated at each budget mark. That is only an
honest "trained for B minutes" figure if the learning-rate schedule does not know the budget,
so these runs use linear warm-up then a constant rate (the config's `schedule` is replaced;
the presets' cosine ends at their own step or time budget, a different point for
every model). `separate_runs=True` instead trains once per budget with a cosine decay timed
to end exactly at that budget (costs the sum of the budgets rather than the largest).

The peers (denoise_vit.models.peers: CAREamics' U-Net, deepinv's DRUNet, SCUNet, Restormer,
SwinIR) are networks like ours, trained by the same engine on the same stream: their records
keep `kind` "network" (every table and plot treats them alike) and, like every record, name
the library and version that built the method in `library` ("deepinv 0.5.0",
"denoise-vit 0.1.0", "scikit-image 0.26.0"). A peer whose library is absent is skipped with
one line and listed under `skipped`.

The protocol's knobs (issue 11):
- `clock="cpu"` counts the budgets in process CPU seconds (time.process_time, all threads)
  instead of wall-clock seconds; both are recorded at every point, as is the share of the
  CPU that other processes used meanwhile.
- `images=(25000, 50000)` adds a second axis, equal training images: a run of its own per
  network, evaluated after each count (`curve_images`), which separates learning per sample
  from speed (and so speaks for a GPU too). The DnCNN row, too slow for the time axis on a
  CPU, is read there.
- `lr_rates=(3e-4, 1e-3, 3e-3)` gives each network the rate that scores best on the
  validation set (the classical filters' seed) after a short run of `sweep_min` minutes (by
  default the smallest budget) with a cosine timed to it, whose warm-up ends within the
  first `SWEEP_WARMUP` of it (a slow network's step-counted warm-up would otherwise fill the
  whole run); the sweep's scores are kept in the record (`lr_sweep`). Where a
  network scores best at an edge of the rates, `sweep_extend` more rates beyond it are tried
  (one step of the sweep each, stopping at the first that scores lower), so that its rate is
  bracketed rather than capped by the sweep.
- `warmup_share=0.2`: every training run's warm-up ends within that share of the smallest
  budget, as the sweep's does, if that comes before the config's warm-up steps. The runs
  trained with the config's 50 steps whatever the budget until 2026-12-07 (night): CARE's U-Net makes
  about 40 steps in a CPU minute, SCUNet 42 and Restormer 30 in four, so their whole budgets
  were warm-up and they never trained at the rate their sweep chose.
- `cooldown=True` replaces both the per-budget runs and the images run with one constant-rate
  run per network, scored at every budget on a copy cooled down to it (benchmark.cooldown);
  `jobs` trains that many networks at once and `resume` reads finished runs back
  (benchmark.lanes); `max_budget` stops the slowest networks at a smaller budget.
- `rate_check=True`: a short sweep can pick a rate the longer budgets do not favour (1 min of
  CPU gave vit_unet 3e-3, 0.9 dB below its 1e-2 at 4 min; docs/sweep-check). Each network
  within `seed_margin` dB of another is trained, for its whole budgets, at the swept rates
  next to its own (one step up and down) and at its close rivals' rates too; while the best
  of them is at an edge away from the sweep's pick, up to `sweep_extend` more steps that way.
  It keeps the rate whose network scores highest on the validation set at its largest budget,
  so a verdict between close networks does not rest on the sweep's pick.
"""
import math
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from .cooldown import COOLDOWN, Mark, train_with_cooldowns
from .lanes import default_threads, run_tasks
from .baselines import (METHODS, VALIDATION_SEED, apply, available_methods, bm3d_available,
                        grid_search, validation_set)
from ..checkpoint import make_checkpoint
from ..training.config import OPTIMIZERS, DataConfig, load_config, to_dict
from ..training.data import make_eval_data, make_train_stream
from ..training.engine import evaluate, predict, train_steps
from ..errors import ConfigError
from ..metrics import psnr, ssim
from ..outputs import read_json, writable_folder
from ..registry import build_model
from ..models.peers import library_version, missing_library
from ..training.schedule import CpuClock, TrainClock, make_scheduler
from ..training.setup import build_run_model, make_optimizer, model_args_for
from ..threads import read_proc_stat

DEFAULT_CONFIGS = ("vit_fast", "unet", "dncnn", "course")
RECORD_FIELDS = ("name", "psnr", "ssim", "params", "flops", "train_seconds", "infer_ms_per_image")


def log_default(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- machine and costs

def machine_info():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # the vector instructions torch's kernels use ("AVX512", "AVX2", ...): the same model name
    # can be machines of different speed
    return {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform()}


def matmul_gflops(n=1024, seconds=2.0):
    """Dense float32 matmul rate of this machine (GFLOP/s, best of repeated n x n products)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best, end = math.inf, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def count_flops(model, image_shape, *, train=False, batch=2):
    """FLOPs per image: the forward pass, or forward + backward of the MSE loss with `train`.

    Counts what torch.utils.flop_counter counts (matmuls, convolutions, attention), per image
    of shape (C, H, W); norms and activations are not counted.
    """
    was_training = model.training
    model.train(train)
    x = torch.rand(batch, *image_shape)
    with FlopCounterMode(display=False) as counter:
        if train:
            model(x).square().mean().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                model(x)
    model.train(was_training)
    return counter.get_total_flops() / batch


def time_per_image(fn, inputs, *, repeats=2):
    """Milliseconds per image of `fn(inputs)` (best of `repeats`), and the last output."""
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(inputs)
        best = min(best, time.perf_counter() - t)
    return 1e3 * best / inputs.shape[0], out


class ForeignLoad:
    """Share of the machine's CPU used by *other* processes between start() and stop().

    The benchmark's timings mean something only on an otherwise idle machine; this measures
    whether it was (Linux /proc/stat, read by the thread policy's reader; None elsewhere): all
    busy CPU time minus this process's and its finished children's.
    """

    def __init__(self):
        self.start()

    @staticmethod
    def _own_seconds():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def start(self):
        self.t0, self.stat0, self.own0 = time.perf_counter(), read_proc_stat(), self._own_seconds()

    def stop(self):
        stat, wall = read_proc_stat(), time.perf_counter() - self.t0
        if stat is None or self.stat0 is None or wall <= 0 or stat[1] <= self.stat0[1]:
            return None
        busy, total, cpus = stat
        all_busy = (busy - self.stat0[0]) / (total - self.stat0[1]) * cpus      # cores
        own = (self._own_seconds() - self.own0) / wall                          # cores
        return max(0.0, (all_busy - own) / cpus)


def wait_for_idle(*, threshold=0.1, window=3.0, max_wait=1200.0, log=None):
    """Wait until other processes use less than `threshold` of the CPU over `window` seconds
    (at most `max_wait` seconds); returns the last share measured (None where unknown)."""
    deadline = time.monotonic() + max_wait
    while True:
        load = ForeignLoad()
        time.sleep(window)
        share = load.stop()
        if share is None or share < threshold or time.monotonic() > deadline:
            return share
        if log:
            log(f"  waiting: other processes use {100 * share:.0f} % of the CPU")
        time.sleep(30)


def data_ms_per_batch(data, batch_size, *, batches=5):
    """Time the training stream takes to draw one batch (part of every training step)."""
    stream = make_train_stream(data, batch_size, seed=0, device=torch.device("cpu"))
    next(stream)
    t = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return 1e3 * (time.perf_counter() - t) / batches


# ---------------------------------------------------------------- classical methods

CLASSICAL_LIBRARY = {"median": "scipy", "bm3d": "bm3d"}   # the others: scikit-image


def run_classical(eval_inputs, eval_targets, *, methods=None, val_size=32, workers=1,
                  data_kwargs=None, log=log_default):
    """Tune each classical method on the validation set, then evaluate it on the eval set."""
    val_inputs, val_targets = validation_set(val_size, **(data_kwargs or {}))
    records, outputs = [], {}
    chosen = available_methods() if methods is None else [m for m in available_methods()
                                                          if m.name in methods]
    for method in chosen:
        t = time.perf_counter()
        tuned = grid_search(method, val_inputs, val_targets, workers=workers)
        ms, out = time_per_image(lambda x: apply(method, x, tuned.best, workers=workers),
                                 eval_inputs, repeats=1)
        rec = {"name": method.name, "label": method.label, "kind": "classical",
               "library": library_version(CLASSICAL_LIBRARY.get(method.name, "scikit-image")),
               "psnr": psnr(out, eval_targets), "ssim": ssim(out, eval_targets), "params": 0,
               "flops": None, "train_seconds": 0.0, "infer_ms_per_image": ms,
               "tuned": {"param": tuned.param, "value": tuned.best,
                         "validation_psnr": {str(k): v for k, v in tuned.scores.items()}}}
        records.append(rec)
        outputs[method.name] = out
        log(f"{method.label}: {tuned.param}={tuned.best} (validation grid {list(tuned.scores)}), "
            f"eval PSNR {rec['psnr']:.2f} dB, SSIM {rec['ssim']:.3f}, {ms:.1f} ms/image "
            f"({time.perf_counter() - t:.0f} s)")
    return records, outputs


# ---------------------------------------------------------------- networks

OWN_OPTIMIZER = "config"   # --optimizer: each network keeps its config's optimizer and decay

UNITS = ("wall", "cpu", "images")   # what a budget counts: seconds of wall clock or of
                                    # process CPU time spent training, or training images


def train_with_marks(cfg, marks, eval_inputs, eval_targets, *, unit="wall", cosine_to=None,
                     warmup_share=None, idle_wait=1200.0, log=log_default):
    """Train `cfg` on the CPU until its training reaches each of `marks` (sorted; seconds of
    `unit` "wall" or "cpu", or a count of training images for "images") and evaluate there.
    Evaluation time is not training time. Both clocks are recorded whatever the unit.

    Schedule: warm-up then constant, or with `cosine_to` (in `unit`) a cosine timed to end there.
    With `warmup_share` the warm-up ends within that share of the cosine's budget, or of the
    first mark without one, if that is sooner than the config's warm-up steps (make_scheduler).
    First waits up to `idle_wait` seconds for other processes to leave the CPU (0: no wait).
    Returns (model, points): one dict per mark with wall and CPU seconds, steps, images and
    eval psnr / ssim.
    """
    if unit not in UNITS:
        raise ConfigError(f"budget unit must be one of {', '.join(UNITS)}, not {unit!r}")
    device = torch.device("cpu")
    if idle_wait:
        wait_for_idle(max_wait=idle_wait, log=log)
    model = build_run_model(cfg, device)
    optimizer = make_optimizer(cfg, model)
    wall, cpu = TrainClock(), CpuClock()
    timed = {"wall": wall, "cpu": cpu}.get(unit)
    span = cosine_to or (marks[0] if warmup_share else None)   # what the schedule is timed to
    timing = {} if not span else (
        {"total_steps": math.ceil(span / cfg.batch_size)} if unit == "images"
        else {"budget_seconds": span, "clock": timed})
    scheduler = make_scheduler(optimizer, schedule="cosine" if cosine_to else "constant",
                               warmup_steps=cfg.warmup_steps, min_lr_ratio=cfg.min_lr_ratio,
                               warmup_share=warmup_share if span else None, **timing)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=cfg.seed * 1000, device=device)
    points, step, images = [], 0, 0

    def reached():
        return timed.seconds if timed else images

    for mark in marks:
        load = ForeignLoad()
        done = loss_sum = 0
        wall.start()
        cpu.start()
        while reached() < mark:   # one step at a time: the budget is checked between steps
            n_done, loss, n, _ = train_steps(model, stream, optimizer, scheduler,
                                             first_step=step, last_step=step + 1,
                                             device=device, grad_clip=cfg.grad_clip,
                                             progress=False, loss=cfg.loss)
            step, images, done, loss_sum = step + n_done, images + n, done + n_done, loss_sum + loss
        wall.stop()
        cpu.stop()
        foreign = load.stop()
        metrics = evaluate(model, eval_inputs, eval_targets, device=device,
                           batch_size=cfg.eval_batch_size)
        point = {"unit": unit, "train_seconds": wall.seconds, "cpu_seconds": cpu.seconds,
                 "steps": step, "images": images, "train_loss": loss_sum / max(done, 1),
                 "lr": scheduler.get_last_lr()[0], "foreign_cpu": foreign, **metrics}
        point["budget_images" if unit == "images" else "budget_s"] = mark
        points.append(point)
        log(f"  {cfg.name}: {wall.seconds:6.0f} s wall, {cpu.seconds:6.0f} s CPU, {step} steps, "
            f"{images} images, eval PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}"
            + (f"; other processes used {100 * foreign:.0f} % of the CPU meanwhile"
               if foreign else ""))
    return model, points


SWEEP_WARMUP = 0.2   # the sweep's warm-up ends within this share of its budget
WARMUP_SHARE = SWEEP_WARMUP   # and the training runs' within this share of the smallest budget


def sweep_learning_rate(cfg, rates, budget, *, unit="wall", val_size=32, extend=0,
                        warmup_share=SWEEP_WARMUP, steps=None, log=log_default):
    """The rate among `rates` whose short run (a cosine over `budget`, in `unit`) scores best
    on the validation set (its own seed, never the evaluation set).

    warmup_share: the warm-up ends at the first of the config's `warmup_steps` and this share
        of `budget`, so that every rate is trained at, not only ramped towards (None: the
        config's warm-up whatever the budget, as before 2026-12-07: at 30 s, the U-Net's
        run on one thread was all warm-up).
    steps: a dict to fill with {rate: steps its run made}.

    extend: when the best rate is the highest (lowest) one tried, try the next one beyond it,
        a step as wide as the last (first) step of `rates`, up to `extend` times on each side,
        stopping at the first that does not score higher: the chosen rate is then bracketed by
        lower-scoring rates on both sides, or the report says it is not.

    Returns (best rate, {rate: validation PSNR}, the rates added beyond `rates`).
    """
    val_inputs, val_targets = validation_set(val_size)
    scores = {}

    def score(rate):
        _, points = train_with_marks(replace(cfg, lr=float(rate)), [budget], val_inputs,
                                     val_targets, unit=unit, cosine_to=budget,
                                     warmup_share=warmup_share, idle_wait=0,
                                     log=lambda msg: None)
        scores[float(rate)] = points[-1]["psnr"]
        if steps is not None:
            steps[float(rate)] = points[-1]["steps"]
        log(f"  {cfg.name}: lr {rate:g} -> validation PSNR {scores[float(rate)]:.2f} dB "
            f"after {budget:g} {'images' if unit == 'images' else 's ' + unit}")

    def best():
        finite = {r: v for r, v in scores.items() if math.isfinite(v)}
        return max(finite, key=finite.get) if finite else min(scores)

    for rate in rates:
        score(rate)
    given = sorted({float(r) for r in rates})   # a repeated rate would make a step of 1
    added, up, down = [], 0, 0
    while extend and len(given) > 1:
        top, bottom = max(scores), min(scores)
        if best() == top and up < extend:
            rate, up = top * given[-1] / given[-2], up + 1
        elif best() == bottom and down < extend:
            rate, down = bottom * given[0] / given[1], down + 1
        else:
            break
        rate = float(f"{rate:.3g}")   # 3e-2 * 3 = 0.09, not 0.09000000000000001
        log(f"  {cfg.name}: best at the edge of the sweep; trying lr {rate:g}")
        added.append(rate)
        score(rate)
    scores = dict(sorted(scores.items()))
    return best(), scores, added


def model_library(model):
    """Who built the architecture: "deepinv 0.5.0" for a peer, "denoise-vit 0.1.0" for ours."""
    return getattr(model, "library_version", None) or library_version("denoise-vit") \
        or "denoise-vit"


FALL_DB = 1.0   # a later budget this far below an earlier one of the same run: it diverged


def divergence(points, noisy_psnr, fall=FALL_DB):
    """Where a run diverged, or None: a point scored below the noisy input after an earlier
    point of the same axis had scored above it, or more than `fall` dB below an earlier point
    of the same axis once that one had scored above the input, or its PSNR is not finite.

    A network that has not learned anything yet scores below the input too (the first minute
    of a slow one): that is not divergence; getting worse than the input after having learned
    is, and so is losing what it had learned: every later budget trained longer on the same
    run, so a fall of more than `fall` dB (measured: vit_fast at lr 0.03, 36.74 dB at 4 min,
    33.32 at 15) is a rate too high for the longer budget, not noise (seeds differ by tenths).
    Returns {"at": "4 min" | "25,000 images", "psnr": ..., "best": the best before, "why":
    which of the three, in words, with the best before}."""
    for key in ("budget_s", "budget_images"):
        best = -math.inf
        for p in sorted((p for p in points if p.get(key) is not None), key=lambda p: p[key]):
            why = (f"not finite, after {best:.2f}" if not math.isfinite(p["psnr"])
                   else None if best <= noisy_psnr
                   else f"below the noisy input's {noisy_psnr:.2f} after {best:.2f}"
                   if p["psnr"] < noisy_psnr
                   else f"more than {fall:g} dB below an earlier budget's {best:.2f}"
                   if p["psnr"] < best - fall else None)
            if why:
                at = f"{p[key] / 60:g} min" if key == "budget_s" else f"{p[key]:,} images"
                return {"at": at, "psnr": p["psnr"], "best": best, "why": why}
            best = max(best, p["psnr"])
    return None


def rates_below(sweep, lr):
    """The swept rates below `lr`, lowest first: where a diverged run goes next."""
    return sorted(float(r) for r in (sweep or {}).get("validation_psnr", ()) if float(r) < lr)


def retrain_due(rec, noisy_psnr):
    """Whether a finished run's record (read back by --resume, written before the current
    divergence rule) diverged by that rule with a lower swept rate left to train at: then the
    benchmark trains it again there, as it would have in one go."""
    if rec.get("kind") != "network" or not rec.get("lr_sweep"):
        return False
    return bool(rates_below(rec["lr_sweep"], rec["lr"])) and divergence(
        rec["curve"] + (rec.get("curve_images") or []), noisy_psnr) is not None


def train_curves(cfg, budgets, eval_inputs, eval_targets, *, unit="wall", image_budgets=(),
                 separate_runs=False, cooldown=False, warmup_share=None, idle_wait=1200.0,
                 log=log_default):
    """Train `cfg` and score it along both axes: (model, the points at `budgets` in `unit`, the
    points at `image_budgets` or None, the image counts left out). See run_network."""
    left_out, curve_images = [], None
    if cooldown:
        if idle_wait:
            wait_for_idle(max_wait=idle_wait, log=log)
        model = build_run_model(cfg, torch.device("cpu"))
        marks = [Mark(unit, b) for b in budgets] + [Mark("images", n) for n in image_budgets]
        got, left = train_with_cooldowns(cfg, marks, eval_inputs, eval_targets, model=model,
                                         optimizer=make_optimizer(cfg, model), stop_unit=unit,
                                         warmup_share=warmup_share, load_meter=ForeignLoad,
                                         log=log)
        points = sorted((p for p in got if p["unit"] == unit), key=lambda p: p["budget_s"])
        curve_images = sorted((p for p in got if p["unit"] == "images"),
                              key=lambda p: p["budget_images"]) or None
        left_out = sorted(int(m.value) for m in left)
        if left_out:
            log(f"  {cfg.name}: left out {', '.join(f'{n:,}' for n in left_out)} images (not "
                f"reached within {budgets[-1] / 60:g} min of {unit} time)")
    elif separate_runs:
        points = []
        for budget in budgets:
            model, pts = train_with_marks(cfg, [budget], eval_inputs, eval_targets, unit=unit,
                                          cosine_to=budget, warmup_share=warmup_share,
                                          idle_wait=idle_wait, log=log)
            points += pts
    else:
        model, points = train_with_marks(cfg, budgets, eval_inputs, eval_targets, unit=unit,
                                         warmup_share=warmup_share, idle_wait=idle_wait, log=log)
    if image_budgets and not cooldown:
        _, curve_images = train_with_marks(cfg, sorted(image_budgets), eval_inputs, eval_targets,
                                           unit="images", warmup_share=warmup_share,
                                           idle_wait=idle_wait, log=log)
    return model, points, curve_images, left_out


def run_network(cfg, budgets, eval_inputs, eval_targets, *, unit="wall", image_budgets=(),
                lr_rates=(), sweep_budget=None, sweep_extend=0, sweep_warmup=SWEEP_WARMUP,
                val_size=32, separate_runs=False, cooldown=False, warmup_share=None,
                runs_dir=None, matmul_rate=None, idle_wait=1200.0, tag="", prior=None,
                log=log_default):
    """Cost figures and the PSNR curves of one experiment config: against training time
    (`budgets` in `unit`) and, with `image_budgets`, against training images (a run of its own,
    or with `cooldown` the same run). With `lr_rates` the rate comes from a short sweep on the
    validation set first.

    cooldown: one constant-rate run per network with a cooldown branch per budget, on both axes
    (benchmark.cooldown); an image count the run does not reach within the largest time budget
    is left out (`images_left_out` in the record).

    warmup_share: the training runs' warm-up ends within this share of the smallest budget (of
    each run's own budget with `separate_runs`) if that is sooner than the config's warm-up
    steps, as the sweep's does (None: the config's steps, as before 2026-12-07 (night)).

    The record keeps the trained network's PSNR on the validation set too (`validation_psnr`,
    at the largest budget): what `--rate-check` chooses a rate by, never the evaluation set.
    tag: appended to the checkpoint's file name (a rate-check run keeps its own).
    prior: this task's record from before the current divergence rule, which that rule rejects
    (retrain_due): its sweep and diverged run are kept, and training starts at the next lower
    rate, as the run would have gone in one go."""
    shape = tuple(eval_inputs.shape[1:])
    probe = build_model(cfg.model_name, **model_args_for(cfg))
    params = sum(p.numel() for p in probe.parameters())
    flops, train_flops = count_flops(probe, shape), count_flops(probe, shape, train=True)
    library = model_library(probe)
    log(f"{cfg.name} ({cfg.model_name}, {library}): {params:,} parameters, "
        f"{flops / 1e6:.1f} MFLOP/image forward, {train_flops / 1e6:.1f} MFLOP/image "
        f"forward+backward")
    sweep = None
    if prior is not None:
        sweep = prior["lr_sweep"]
        cfg = replace(cfg, lr=prior["lr"])
        log(f"  {cfg.name}: read back from an earlier run (sweep chose lr {sweep['chosen']:g})")
    elif lr_rates:
        steps = {}
        best, scores, added = sweep_learning_rate(cfg, lr_rates, sweep_budget, unit=unit,
                                                  val_size=val_size, extend=sweep_extend,
                                                  warmup_share=sweep_warmup, steps=steps,
                                                  log=log)
        sweep = {"budget": sweep_budget, "unit": unit, "warmup_share": sweep_warmup,
                 "validation_psnr": {f"{r:g}": v for r, v in scores.items()},
                 "steps": {f"{r:g}": n for r, n in sorted(steps.items())}, "chosen": best}
        if added:
            sweep["added"] = added
        cfg = replace(cfg, lr=best)
        log(f"  {cfg.name}: trains at lr {best:g}")

    def curves(cfg):
        return train_curves(cfg, budgets, eval_inputs, eval_targets, unit=unit,
                            image_budgets=image_budgets, separate_runs=separate_runs,
                            cooldown=cooldown, warmup_share=warmup_share, idle_wait=idle_wait,
                            log=log)

    if prior is None:
        model, points, curve_images, left_out = curves(cfg)
    else:
        model, points, curve_images = None, prior["curve"], prior.get("curve_images")
        left_out = prior.get("images_left_out", [])
    # a run that diverged gets the care the others got: the next lower rate of the sweep
    noisy = psnr(eval_inputs, eval_targets)
    lower = rates_below(sweep, cfg.lr)
    diverged = list(prior.get("diverged", [])) if prior is not None else []
    while bad := divergence(points + (curve_images or []), noisy):
        diverged.append({"lr": cfg.lr, **bad})
        if not lower:   # nothing lower was swept: the run is kept, and marked
            log(f"  {cfg.name}: diverged at lr {cfg.lr:g}, "
                + ("the lowest rate of the sweep " if sweep else "with no sweep's lower rate "
                   "to train at (a further seed keeps the first seed's rate) ")
                + f"({bad['psnr']:.2f} dB at {bad['at']}, after {bad['best']:.2f}); its figures "
                f"are kept and marked")
            break
        rate = lower.pop()
        log(f"  {cfg.name}: diverged at lr {cfg.lr:g} ({bad['psnr']:.2f} dB at {bad['at']}, "
            f"{bad['why']}); trained again at lr {rate:g}")
        cfg = replace(cfg, lr=rate)
        model, points, curve_images, left_out = curves(cfg)
    if model is None:
        raise ValueError(f"{cfg.name}: the earlier run given as prior has nothing to train "
                         f"again (see retrain_due)")
    last = points[-1]
    images_per_s = last["images"] / last["train_seconds"]
    ms, _ = time_per_image(lambda x: predict(model, x, device=torch.device("cpu"),
                                             batch_size=cfg.eval_batch_size), eval_inputs)
    val_inputs, val_targets = validation_set(val_size)
    val_psnr = psnr(predict(model, val_inputs, device=torch.device("cpu"),
                            batch_size=cfg.eval_batch_size), val_targets)
    if runs_dir is not None:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        torch.save(make_checkpoint(model, step=last["steps"], train_seconds=last["train_seconds"],
                                   eval_psnr=last["psnr"], config=to_dict(cfg)),
                   Path(runs_dir) / f"{cfg.name}-seed{cfg.seed}{tag}.pt")
    rec = {"name": cfg.name, "label": f"{cfg.name} ({cfg.model_name})", "kind": "network",
           "library": library,
           "psnr": last["psnr"], "ssim": last["ssim"], "validation_psnr": val_psnr,
           "params": params, "flops": flops,
           "train_seconds": last["train_seconds"], "cpu_seconds": last["cpu_seconds"],
           "infer_ms_per_image": ms,
           "model": cfg.model, "lr": cfg.lr, "batch_size": cfg.batch_size,
           "optimizer": cfg.optimizer, "weight_decay": cfg.weight_decay,
           "warmup_steps": cfg.warmup_steps, "train_flops_per_image": train_flops,
           "images_per_s": images_per_s, "train_gflops_per_s": train_flops * images_per_s / 1e9,
           "foreign_cpu_max": max((p["foreign_cpu"] for p in points + (curve_images or [])
                                   if p["foreign_cpu"] is not None), default=None),
           "curve": points}
    if sweep:
        rec["lr_sweep"] = sweep
    if diverged:
        rec["diverged"] = diverged
    if left_out:
        rec["images_left_out"] = left_out
    if curve_images:
        rec["curve_images"] = curve_images
    if matmul_rate:
        rec["fraction_of_matmul_rate"] = rec["train_gflops_per_s"] / matmul_rate
    log(f"{cfg.name}: {images_per_s:.0f} images/s in training "
        f"({rec['train_gflops_per_s']:.1f} GFLOP/s), inference {ms:.2f} ms/image")
    return rec, model


def within(a, b, margin):
    """Whether two network records are within `margin` dB of each other at the largest budget
    both reached (a network with a --max-budget cap is compared where it stopped)."""
    shared = max(set(p["budget_s"] for p in a["curve"]) & set(p["budget_s"] for p in b["curve"]),
                 default=None)
    if shared is None:
        return False
    at = [next(p["psnr"] for p in r["curve"] if p["budget_s"] == shared) for r in (a, b)]
    return abs(at[0] - at[1]) <= margin


def close_networks(records, margin):
    """Names of the networks whose PSNR is within `margin` dB of another's (`within`)."""
    return {a["name"] for a in records for b in records if a is not b and within(a, b, margin)}


def check_rates(records, margin):
    """{name: [rates]}: for each network within `margin` dB of another (as close_networks
    judges), the rates `--rate-check` trains it at besides its own: the rates next to its own
    among those its sweep tried (one step up, one step down), and the rates its close rivals
    trained at. A short sweep's pick between neighbouring rates is within its noise (the
    U-Net's 1-min sweep chose 1e-2, then 3e-3 an hour later; docs/sweep-check)."""
    out = {}
    for a in records:
        rivals = [b for b in records if b is not a and within(a, b, margin)]
        if not rivals:
            continue
        tried = sorted(float(r) for r in (a.get("lr_sweep") or {}).get("validation_psnr", ()))
        rates = set()
        if a["lr"] in tried:
            i = tried.index(a["lr"])
            rates.update(tried[max(i - 1, 0):i + 2])
        rates.update(b["lr"] for b in rivals)
        rates.discard(a["lr"])
        if rates:
            out[a["name"]] = sorted(rates)
    return out


def rate_beyond(rec, others):
    """The next rate for `--rate-check` to try, or None: where the best of a network's runs
    (`rec` at the sweep's rate, `others` at checked rates) is the highest (lowest) rate tried
    and above (below) the sweep's, one more step that way: the next rate its sweep tried
    beyond it, else a step as wide as the last one. The check climbs as the sweep extends."""
    runs = [rec, *others]
    rates = sorted({r["lr"] for r in runs})
    best = max(runs, key=lambda r: r["validation_psnr"])["lr"]
    if len(rates) < 2 or best == rec["lr"] or best not in (rates[0], rates[-1]):
        return None
    up = best == rates[-1]
    grid = sorted(float(r) for r in (rec.get("lr_sweep") or {}).get("validation_psnr", ()))
    beyond = [r for r in grid if (r > best if up else r < best)]
    if beyond:
        return min(beyond) if up else max(beyond)
    step = rates[-1] / rates[-2] if up else rates[0] / rates[1]
    return float(f"{best * step:.3g}")


def keep_best_rate(rec, others):
    """Of a network's run at its own rate (`rec`) and its runs at the checked rates, the one
    whose network scores highest on the validation set at the largest budget, with the check
    recorded in `rate_check` ({rate: validation PSNR}, the rate kept, the rate swept)."""
    runs = [rec, *others]
    best = max(runs, key=lambda r: r["validation_psnr"])
    if rec.get("lr_sweep"):   # the sweep that chose the first rate stays on the record
        best["lr_sweep"] = rec["lr_sweep"]
    best["rate_check"] = {"validation_psnr": {f"{r['lr']:g}": r["validation_psnr"] for r in runs},
                          "eval_psnr": {f"{r['lr']:g}": r["psnr"] for r in runs},
                          "kept": best["lr"], "swept": rec["lr"]}
    return best


def merge_seeds(rec, others, seeds):
    """Fold the runs of other seeds into `rec`: every PSNR / SSIM becomes the mean over seeds,
    with the per-seed values kept beside it (`psnr_seeds`, and `seeds` on the record)."""
    runs = [rec, *others]
    rec["seeds"] = [{"seed": s, "psnr": r["curve"][-1]["psnr"]} for s, r in zip(seeds, runs)]
    # a further seed trains at the first seed's rate, with no lower one to go to: where it
    # diverged, its figures are kept (in the mean) and named
    fell = [{"seed": s, **d} for s, r in zip(seeds[1:], others) for d in r.get("diverged", ())]
    if fell:
        rec["diverged_seeds"] = fell
    for key, budget in (("curve", "budget_s"), ("curve_images", "budget_images")):
        if not rec.get(key):
            continue
        kept = []   # a point every seed reached (an image count may be reached by some only)
        for point in rec[key]:
            same = [next((p for p in r.get(key) or () if p[budget] == point[budget]), None)
                    for r in runs]
            if any(p is None for p in same):
                continue
            point["psnr_seeds"] = [p["psnr"] for p in same]
            point["psnr"] = sum(point["psnr_seeds"]) / len(runs)
            point["ssim"] = sum(p["ssim"] for p in same) / len(runs)
            kept.append(point)
        rec[key] = kept
    rec["psnr"], rec["ssim"] = rec["curve"][-1]["psnr"], rec["curve"][-1]["ssim"]
    rec["foreign_cpu_max"] = max((r["foreign_cpu_max"] for r in runs
                                  if r.get("foreign_cpu_max") is not None), default=None)
    return rec


# ---------------------------------------------------------------- the whole run

@dataclass
class BenchmarkOptions:
    configs: tuple = DEFAULT_CONFIGS      # experiment configs (names in experiments/ or paths)
    budgets_min: tuple = (1, 3, 6)        # training budgets, minutes
    methods: tuple = None                 # classical methods (None: all available)
    eval_size: int = None                 # default: DataConfig's (SPEC §4 set)
    eval_seed: int = None
    val_size: int = 32
    separate_runs: bool = False
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    overrides: tuple = ()                 # key=value for every network config
    runs_dir: str = "runs/benchmark"
    figure_samples: int = 6
    matmul_seconds: float = 2.0
    idle_wait: float = 1200.0             # seconds to wait for other processes to go (0: none)
    clock: str = "wall"                   # what --budgets count: "wall" or "cpu" seconds
    images: tuple = ()                    # the second axis: training images (one run each)
    lr_rates: tuple = ()                  # learning rates of the sweep (empty: the config's)
    sweep_min: float = None               # budget of each sweep run, minutes of `clock`
                                          # (None: the smallest budget)
    sweep_extend: int = 2                 # rates tried beyond an edge of the sweep that wins
    seeds: int = 1                        # networks within `seed_margin` dB of another: this many seeds
    seed_margin: float = 1.5              # dB at the largest budget
    cooldown: bool = False                # one constant-rate run per network, cooled down per budget
    jobs: int = 1                         # networks trained at once (worker processes)
    max_budget: tuple = ()                # ((config name, minutes), ...): these stop earlier
    resume: bool = False                  # read finished runs back from runs_dir
    rate_check: bool = False              # close networks also train at the rates next to
                                          # theirs and at their rivals' (check_rates)
    optimizer: str = "adam"               # every network's optimizer, whatever its preset says,
                                          # or "config": each network's own
    weight_decay: float = None            # its decay (None: 0.05 for adamw, 0 for adam)
    warmup_share: float = WARMUP_SHARE    # the training runs' warm-up ends within this share
                                          # of the smallest budget (0: the config's steps only)

    @classmethod
    def from_cli(cls, *, budgets, configs=None, methods=None, workers=None, images=None,
                 lr_sweep=None, max_budget=None, **kwargs):
        """Options from the command line's comma-separated strings."""
        def split(text):
            return tuple(x.strip() for x in text.split(",") if x.strip())

        def numbers(text, option, kind=float):
            try:
                return tuple(kind(float(x)) for x in split(text))
            except ValueError:
                raise ConfigError(f"{option} must be numbers separated by commas, not {text!r}")
        budgets_min = numbers(budgets, "--budgets")
        if images is not None:
            kwargs["images"] = numbers(images, "--images", int)
        if lr_sweep is not None:
            kwargs["lr_rates"] = numbers(lr_sweep, "--lr-sweep")
        if max_budget is not None:
            caps = []
            for item in split(max_budget):
                name, _, value = item.partition("=")
                try:
                    caps.append((name.strip(), float(value)))
                except ValueError:
                    raise ConfigError(f"--max-budget takes NAME=MINUTES pairs separated by "
                                      f"commas, not {item!r}")
            kwargs["max_budget"] = tuple(caps)
        opts = cls(budgets_min=budgets_min, **kwargs)
        if configs is not None:
            opts.configs = split(configs)
        if methods is not None:
            opts.methods = () if methods.strip() == "none" else split(methods)
        if workers is not None:
            opts.workers = workers
        return opts.check()

    def check(self):
        """Every option checked before any work (one message naming the option)."""
        if not self.budgets_min or not all(math.isfinite(b) and b > 0 for b in self.budgets_min):
            raise ConfigError(f"--budgets must be positive, finite minutes, not "
                              f"{','.join(f'{b:g}' for b in self.budgets_min) or 'nothing'}")
        if not (math.isfinite(self.idle_wait) and self.idle_wait >= 0):
            raise ConfigError(f"--idle-wait must be seconds of at least 0, not {self.idle_wait:g}")
        for name, value, minimum in (("--eval-size", self.eval_size, 1),
                                     ("--val-size", self.val_size, 1),
                                     ("--workers", self.workers, 1),
                                     ("figure_samples", self.figure_samples, 0)):
            if value is not None and value < minimum:
                raise ConfigError(f"{name} must be at least {minimum}, not {value}")
        if not self.configs:
            raise ConfigError("--configs names no network")
        if self.clock not in ("wall", "cpu"):
            raise ConfigError(f"--clock must be 'wall' or 'cpu', not {self.clock!r}")
        if not all(n >= 1 for n in self.images):
            raise ConfigError(f"--images must be positive image counts, not "
                              f"{','.join(map(str, self.images))}")
        if not all(math.isfinite(r) and r > 0 for r in self.lr_rates):
            raise ConfigError(f"--lr-sweep must be positive rates, not "
                              f"{','.join(f'{r:g}' for r in self.lr_rates)}")
        if self.sweep_min is not None and not (math.isfinite(self.sweep_min)
                                               and self.sweep_min > 0):
            raise ConfigError(f"--sweep-budget must be positive minutes, not {self.sweep_min:g}")
        if self.optimizer not in OPTIMIZERS + (OWN_OPTIMIZER,):
            raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)} or "
                              f"{OWN_OPTIMIZER}, not {self.optimizer!r}")
        if self.optimizer == OWN_OPTIMIZER and self.weight_decay is not None:
            raise ConfigError(f"--weight-decay goes with --optimizer {' or '.join(OPTIMIZERS)}; "
                              f"with --optimizer {OWN_OPTIMIZER} each config's own is used")
        if self.weight_decay is not None and not (math.isfinite(self.weight_decay)
                                                  and self.weight_decay >= 0):
            raise ConfigError(f"--weight-decay must be a finite number of at least 0, not "
                              f"{self.weight_decay:g}")
        if not (math.isfinite(self.warmup_share) and 0 <= self.warmup_share < 1):
            raise ConfigError(f"--warmup-share must be a share from 0 up to (not including) 1, "
                              f"not {self.warmup_share:g}")
        if isinstance(self.sweep_extend, bool) or not isinstance(self.sweep_extend, int) \
                or self.sweep_extend < 0:
            raise ConfigError(f"--sweep-extend must be a whole number of rates, 0 or more, "
                              f"not {self.sweep_extend!r}")
        if not (isinstance(self.seeds, int) and 1 <= self.seeds <= 10):
            raise ConfigError(f"--seeds must be a whole number from 1 to 10, not {self.seeds}")
        if not (math.isfinite(self.seed_margin) and self.seed_margin >= 0):
            raise ConfigError(f"--seed-margin must be dB of at least 0, not {self.seed_margin:g}")
        if self.cooldown and self.separate_runs:
            raise ConfigError("--cooldown and --separate-runs are two ways to decay the rate to "
                              "each budget: choose one")
        if not (isinstance(self.jobs, int) and self.jobs >= 1):
            raise ConfigError(f"--jobs must be at least 1, not {self.jobs}")
        for name, minutes_ in self.max_budget:
            if name not in self.configs:
                raise ConfigError(f"--max-budget names {name!r}, which is not in --configs")
            if not (math.isfinite(minutes_) and minutes_ >= min(self.budgets_min)):
                raise ConfigError(f"--max-budget for {name} must be minutes of at least the "
                                  f"smallest budget ({min(self.budgets_min):g}), not {minutes_:g}")
        return self

    def decay(self):
        """The weight decay every network trains with (--weight-decay, else the optimizer's
        default: 0.05 for AdamW as DeiT and Swin train, none for Adam); None with "config"."""
        if self.optimizer == OWN_OPTIMIZER:
            return None
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return 0.05 if self.optimizer == "adamw" else 0.0

    @property
    def sweep_seconds(self):
        """Each sweep run's budget: --sweep-budget, else the smallest budget. A shorter run
        decides on too few steps: at 30 s the U-Net's sweep chose 3e-3, and 1e-2 scores
        higher at every budget from 1 to 15 min (docs/sweep-check, docs/benchmark-vit-unet)."""
        return 60 * (self.sweep_min if self.sweep_min is not None else min(self.budgets_min))

    def budgets_for(self, name):
        """The budgets (seconds) a network trains to: all of them, or those up to its cap."""
        cap = dict(self.max_budget).get(name, math.inf)
        return sorted(float(b) * 60 for b in self.budgets_min if b <= cap)

    def command_line(self):
        """The `denoise-vit benchmark` command that reproduces these options."""
        default = BenchmarkOptions()
        parts = ["denoise-vit benchmark", "--budgets " + ",".join(f"{b:g}" for b in self.budgets_min)]
        if self.configs != default.configs:
            parts.append("--configs " + ",".join(self.configs))
        if self.methods is not None:
            parts.append("--methods " + (",".join(self.methods) or "none"))
        if self.eval_size is not None:
            parts.append(f"--eval-size {self.eval_size}")
        if self.val_size != default.val_size:
            parts.append(f"--val-size {self.val_size}")
        if self.separate_runs:
            parts.append("--separate-runs")
        if self.clock != default.clock:
            parts.append(f"--clock {self.clock}")
        if self.images:
            parts.append("--images " + ",".join(map(str, self.images)))
        if self.lr_rates:
            parts.append("--lr-sweep " + ",".join(f"{r:g}" for r in self.lr_rates))
            if self.sweep_min is not None:
                parts.append(f"--sweep-budget {self.sweep_min:g}")
            if self.sweep_extend != default.sweep_extend:
                parts.append(f"--sweep-extend {self.sweep_extend}")
        if self.warmup_share != default.warmup_share:
            parts.append(f"--warmup-share {self.warmup_share:g}")
        if self.seeds != default.seeds:
            parts.append(f"--seeds {self.seeds}")
            if self.seed_margin != default.seed_margin:
                parts.append(f"--seed-margin {self.seed_margin:g}")
        if self.cooldown:
            parts.append("--cooldown")
        if self.rate_check:
            parts.append("--rate-check")
        if self.max_budget:
            parts.append("--max-budget " + ",".join(f"{n}={m:g}" for n, m in self.max_budget))
        if self.optimizer != default.optimizer:
            parts.append(f"--optimizer {self.optimizer}")
        if self.weight_decay is not None:
            parts.append(f"--weight-decay {self.weight_decay:g}")
        if self.jobs != default.jobs:
            parts.append(f"--jobs {self.jobs}")
        return " ".join(parts)


def run_benchmark(opts, *, log=log_default):
    """Everything of one benchmark run, as a dict (what benchmarks.json holds)."""
    started = time.time()
    opts.check()
    budgets = sorted(float(b) * 60 for b in opts.budgets_min)
    data = DataConfig()
    if opts.eval_size is not None:
        data.eval_size = opts.eval_size
    if opts.eval_seed is not None:
        data.eval_seed = opts.eval_seed
    if data.eval_seed == VALIDATION_SEED:
        raise ConfigError(f"the evaluation seed must differ from the validation seed "
                          f"{VALIDATION_SEED} used to tune the classical baselines")
    cfgs, skipped, entry = [], [], {}
    for name in opts.configs:
        cfg = load_config(name, list(opts.overrides))
        missing = missing_library(cfg.model_name)
        if missing:   # a peer whose library is absent: one line, then the others
            log(f"skipped {name}: {missing}")
            skipped.append({"name": name, "reason": missing})
            continue
        if cfg.data.kind != "images" or cfg.data.generator:
            raise ConfigError(f"{name}: the benchmark compares image denoisers on the default "
                              f"generator (data.kind='images', no generator keys)")
        cfg.data = replace(cfg.data, eval_size=data.eval_size, eval_seed=data.eval_seed)
        # the same care for every network: NHWC conv weights, which the fastest preset has
        # (measured: the U-Net +43 %, CARE's U-Net +33 % training images/s on the CPU)
        cfg.channels_last = True
        # and one optimizer: the presets' own choices differ (vit_fast and the U-Net train
        # with AdamW), the comparison must not; "config" keeps each one's (an optimizer A/B)
        if opts.optimizer != OWN_OPTIMIZER:
            cfg.optimizer, cfg.weight_decay = opts.optimizer, opts.decay()
        cfgs.append(cfg)
        entry[cfg.name] = name   # --max-budget names the --configs entry (a preset or a path)
    machine = machine_info()
    rate = matmul_gflops(seconds=opts.matmul_seconds)
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, torch threads "
        f"{machine['torch_threads']}, GPU {machine['gpu'] or 'none'}; dense float32 matmul "
        f"{rate:.1f} GFLOP/s")
    eval_inputs, eval_targets = make_eval_data(data)
    noisy = {"name": "noisy input", "psnr": psnr(eval_inputs, eval_targets),
             "ssim": ssim(eval_inputs, eval_targets)}
    log(f"evaluation set: {data.eval_size} images, seed {data.eval_seed}; noisy input PSNR "
        f"{noisy['psnr']:.2f} dB")
    unknown = set(opts.methods or ()) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown classical method(s) {sorted(unknown)}; known: {list(METHODS)}")
    if opts.methods and "bm3d" in opts.methods and not bm3d_available():
        log("warning: bm3d is not installed (pip install denoise-vit[bench]); BM3D left out")
    records, classical_out = run_classical(eval_inputs, eval_targets, methods=opts.methods,
                                           val_size=opts.val_size, workers=opts.workers, log=log)
    n = min(opts.figure_samples, data.eval_size)
    samples = {name: out[:n] for name, out in classical_out.items()}
    jobs = min(opts.jobs, len(cfgs)) or 1
    threads = default_threads(jobs)
    if jobs > 1:
        log(f"networks: {jobs} at a time, {threads} torch thread(s) each")
        if opts.idle_wait:
            wait_for_idle(max_wait=opts.idle_wait, log=log)
    common = {"unit": opts.clock, "image_budgets": opts.images, "val_size": opts.val_size,
              "separate_runs": opts.separate_runs, "cooldown": opts.cooldown,
              "runs_dir": opts.runs_dir, "matmul_rate": rate,
              "idle_wait": 0 if jobs > 1 else opts.idle_wait, "log": log}
    if opts.warmup_share:   # absent when 0, so that runs of the old warm-up keep their keys
        common["warmup_share"] = opts.warmup_share
    extra = {"eval_set": [data.eval_size, data.eval_seed], "threads": threads,
             "torch": torch.__version__}

    def tasks_run(tasks):
        return run_tasks(tasks, eval_inputs, eval_targets, jobs=jobs, threads=threads,
                         n_samples=n, runs_dir=opts.runs_dir, resume=opts.resume, extra=extra,
                         stale=lambda rec: retrain_due(rec, noisy["psnr"]), log=log)

    read_back = []   # runs taken from runs_dir by --resume: (name, seed, when it was written)

    def note_read_back(cfg, rec):
        if rec.get("read_back"):
            read_back.append({"name": cfg.name, "seed": cfg.seed, "date": rec.pop("read_back")})

    first = tasks_run([(cfg, {**common, "budgets": opts.budgets_for(entry[cfg.name]),
                              "lr_rates": opts.lr_rates, "sweep_budget": opts.sweep_seconds,
                              "sweep_extend": opts.sweep_extend, "sweep_warmup": SWEEP_WARMUP})
                       for cfg in cfgs])
    for cfg, (rec, out) in zip(cfgs, first):
        note_read_back(cfg, rec)
        records.append(rec)
        samples[cfg.name] = out
    if opts.rate_check:
        nets = [r for r in records if r["kind"] == "network"]
        pending = check_rates(nets, opts.seed_margin)
        tried = {cfg.name: [(rec, out)] for cfg, (rec, out) in zip(cfgs, first)}
        steps_left = {name: opts.sweep_extend for name in pending}
        while pending:
            checks = [(cfg, lr) for cfg in cfgs for lr in pending.get(cfg.name, ())]
            for cfg, lr in checks:
                log(f"{cfg.name}: within {opts.seed_margin:g} dB of another network; trained "
                    f"at lr {lr:g} too (--rate-check)")
            done = tasks_run([(replace(cfg, lr=lr),
                               {**common, "budgets": opts.budgets_for(entry[cfg.name]),
                                "tag": f"-lr{lr:g}"}) for cfg, lr in checks])
            for (cfg, _), (other, out) in zip(checks, done):
                note_read_back(cfg, other)
                tried[cfg.name].append((other, out))
            pending = {}
            for name, left in steps_left.items():
                beyond = rate_beyond(tried[name][0][0], [r for r, _ in tried[name][1:]])
                if beyond is not None and left > 0:
                    pending[name], steps_left[name] = [beyond], left - 1
        for i, cfg in enumerate(cfgs):
            if cfg.name not in steps_left:
                continue
            (rec, _), *mine = tried[cfg.name]
            best = keep_best_rate(rec, [other for other, _ in mine])
            if best is not rec:
                best_out = next(o for other, o in mine if other is best)
                records[records.index(rec)] = best
                samples[cfg.name] = best_out
                first[i] = (best, best_out)
            log(f"{cfg.name}: validation PSNR " + ", ".join(
                f"{v:.2f} dB at lr {k}" for k, v in best["rate_check"]["validation_psnr"].items())
                + f"; keeps lr {best['lr']:g}")
    if opts.seeds > 1:
        close = close_networks([r for r in records if r["kind"] == "network"], opts.seed_margin)
        again = [(cfg, rec) for cfg, (rec, _) in zip(cfgs, first) if cfg.name in close]
        for cfg, _ in again:
            log(f"{cfg.name}: within {opts.seed_margin:g} dB of another network; "
                f"{opts.seeds - 1} more seed(s)")
        tasks = [(replace(cfg, seed=cfg.seed + k, lr=rec["lr"]),
                  {**common, "budgets": opts.budgets_for(entry[cfg.name])})
                 for cfg, rec in again for k in range(1, opts.seeds)]
        more = iter(zip(tasks, tasks_run(tasks)))
        for cfg, rec in again:
            others = []
            for _ in range(1, opts.seeds):
                (seed_cfg, _), (other, _) = next(more)
                note_read_back(seed_cfg, other)
                others.append(other)
            merge_seeds(rec, others, [cfg.seed + k for k in range(opts.seeds)])
    warmup = ("linear warm-up over each config's warm-up steps" + (
        f", or over the first {opts.warmup_share:.0%} of the "
        f"{'budget' if opts.separate_runs else 'smallest budget'} if that is sooner"
        if opts.warmup_share else " (however short the budget)"))
    return {
        "command": opts.command_line(),
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "wall_seconds": time.time() - started,
        "machine": machine, "matmul_gflops": rate,
        "data_ms_per_batch": {c.batch_size: data_ms_per_batch(data, c.batch_size) for c in cfgs},
        "budgets_s": budgets, "budget_clock": opts.clock, "budgets_images": sorted(opts.images),
        "lr_sweep": ({"rates": list(opts.lr_rates), "budget_s": opts.sweep_seconds,
                      "extend": opts.sweep_extend, "warmup_share": SWEEP_WARMUP,
                      "validation_seed": VALIDATION_SEED} if opts.lr_rates else None),
        "skipped": skipped, "separate_runs": opts.separate_runs,
        "seeds": opts.seeds, "seed_margin": opts.seed_margin,
        # the climb beyond an edge is --sweep-extend steps, with or without a sweep
        "rate_check": {"extend": opts.sweep_extend} if opts.rate_check else None,
        "schedule": (f"{warmup} then a cosine timed to each budget, one run per budget"
                     if opts.separate_runs
                     else f"{warmup} then constant; for each budget a copy cooled down "
                          f"over its last {COOLDOWN:.0%} (the rate falling linearly to the "
                          f"config's floor), one run per network" if opts.cooldown
                     else f"{warmup} then constant; one run per network, evaluated at each "
                          "budget"),
        "warmup_share": opts.warmup_share or None, "divergence_fall_db": FALL_DB,
        "cooldown": COOLDOWN if opts.cooldown else None, "jobs": jobs,
        "memory_format": "channels_last", "read_back": read_back,
        "optimizer": {"name": opts.optimizer, "weight_decay": opts.decay()},
        "threads_per_job": threads or torch.get_num_threads(),
        "max_budget_min": {cfg.name: dict(opts.max_budget)[entry[cfg.name]] for cfg in cfgs
                           if entry[cfg.name] in dict(opts.max_budget)},
        "eval_set": {"size": data.eval_size, "seed": data.eval_seed},
        "validation_set": {"size": opts.val_size, "seed": VALIDATION_SEED},
        "noisy": noisy, "methods": records,
        "_samples": {"inputs": eval_inputs[:n], "targets": eval_targets[:n], "outputs": samples},
    }




def run_and_report(opts, out_dir="docs", *, log=log_default):
    """Run the benchmark and write out_dir/BENCHMARKS.md, benchmarks.json and the plots."""
    from .report import load_ablation, load_crosscheck, write_report
    opts.check()
    writable_folder(out_dir, "report folder (--out-dir)")
    writable_folder(opts.runs_dir, "folder of the trained networks (--runs-dir)")
    ablation, crosscheck = load_ablation(out_dir), load_crosscheck(out_dir)  # readable, up front
    results = run_benchmark(opts, log=log)
    return write_report(results, out_dir, ablation=ablation, crosscheck=crosscheck)


def rebuild_report(out_dir="docs"):
    """Rewrite BENCHMARKS.md and the plots from out_dir/benchmarks.json (and ablation.json)."""
    from .report import load_ablation, load_crosscheck, write_report
    results = read_json(Path(out_dir) / "benchmarks.json", "benchmark results (run the benchmark first)")
    if not isinstance(results, dict) or not isinstance(results.get("methods"), list):
        raise ConfigError(f"{Path(out_dir) / 'benchmarks.json'} is not a benchmark's results")
    return write_report(results, out_dir, ablation=load_ablation(out_dir),
                        crosscheck=load_crosscheck(out_dir))
