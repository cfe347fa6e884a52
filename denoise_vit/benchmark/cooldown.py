"""One training run that yields a model decayed to each budget: a constant-rate trunk with a
cooldown branch per budget (warmup-stable-decay).

    trunk:   warm-up, then the constant rate ......................................... ->
    budget B:                         fork at 0.8 B -> rate decayed linearly to the floor -> B

The model scored "after budget B" is the end of a schedule that knew B: the trunk's state at
0.8 B, trained for the last 0.2 B with the rate falling linearly to `min_lr_ratio` of the base.
The trunk itself never decays, so one run serves every budget, on the time axis (seconds of
wall clock or process CPU time) and on the training-images axis at once. Constant rate plus a
short cooldown matches a cosine timed to the budget (Hägele et al. 2024, "Scaling Laws and
Compute-Optimal Training Beyond Fixed Training Durations"; the WSD schedule of MiniCPM), and
costs the largest budget plus a fifth of the others instead of their sum (separate runs).

The trunk's warm-up is the config's `warmup_steps`, or with `warmup_share` it ends sooner, once
the trunk has trained for that share of the smallest budget of its stopping unit (as the rate
sweep's does): a slow network's 50-step warm-up would otherwise fill its short budgets (CARE's
U-Net makes about 40 steps in a CPU minute, SCUNet 42 and Restormer 30 in four), so it would
never train at the rate its sweep chose.

Each branch draws its batches from a stream of its own (seeded by the mark), so the trunk sees
the same data whatever budgets are asked for. Branch time is not trunk time: the trunk's clocks
stop while a branch runs.
"""
import copy
from dataclasses import dataclass

import torch

from ..training.data import make_train_stream
from ..training.engine import evaluate, train_steps
from ..training.schedule import CpuClock, TrainClock, warmup_factor

COOLDOWN = 0.2          # the share of each budget spent decaying the rate


@dataclass(frozen=True)
class Mark:
    """A budget: `value` seconds of "wall" or "cpu" time, or `value` training images."""
    unit: str
    value: float

    @property
    def fork_at(self):
        return (1 - COOLDOWN) * self.value


class _Factor:
    """What train_steps calls `scheduler`: sets the rate of every group before each step."""

    def __init__(self, optimizer, base_lrs, factor):
        self.optimizer, self.base_lrs, self.factor, self.step_count = optimizer, base_lrs, factor, 0
        self.apply()

    def apply(self):
        f = self.factor(self.step_count)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f

    def step(self):
        self.step_count += 1
        self.apply()

    def get_last_lr(self):
        return [g["lr"] for g in self.optimizer.param_groups]


class _Progress:
    """Where a run stands: steps, images, wall and CPU seconds of training."""

    def __init__(self):
        self.step, self.images, self.wall, self.cpu = 0, 0, TrainClock(), CpuClock()

    def reading(self, unit):
        return {"wall": self.wall.seconds, "cpu": self.cpu.seconds, "images": self.images}[unit]

    def copy(self):
        other = _Progress()
        other.step, other.images = self.step, self.images
        other.wall, other.cpu = TrainClock(self.wall.seconds), CpuClock(self.cpu.seconds)
        return other


def _one_step(model, stream, optimizer, scheduler, progress, cfg, device):
    n, loss, images, _ = train_steps(model, stream, optimizer, scheduler,
                                     first_step=progress.step, last_step=progress.step + 1,
                                     device=device, grad_clip=cfg.grad_clip, progress=False,
                                     loss=cfg.loss)
    progress.step += n
    progress.images += images
    return loss


def train_with_cooldowns(cfg, marks, eval_inputs, eval_targets, *, model, optimizer,
                         device=torch.device("cpu"), stop_unit=None, warmup_share=None,
                         load_meter=None, log=print):
    """Train `model` on a constant-rate trunk and score a cooled-down copy at every mark.

    marks: Mark objects (time units and "images" may be mixed). The trunk stops once every
    mark of `stop_unit` (default: the unit of the first mark) is done; a mark of another unit
    whose fork point the trunk has not reached by then is left out and listed in the second
    return value. Returns (points, left_out): one dict per scored mark (in the order they were
    reached) with both clocks, steps, images, the branch's last loss and rate, eval psnr/ssim,
    and with `load_meter` (a ForeignLoad class) the share of the CPU other processes used since
    the previous point (`foreign_cpu`). On return `model` holds the cooled-down weights of the
    largest `stop_unit` mark, the model the benchmark scores at its largest budget.

    warmup_share: the warm-up ends by this share (0..1) of the smallest `stop_unit` mark, if
    that comes before the config's `warmup_steps` (None: those steps, whatever the budget).
    """
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    stop_unit = stop_unit or marks[0].unit
    pending = sorted(marks, key=lambda m: (m.unit, m.value))
    trunk = _Progress()
    end = (warmup_share * min(m.value for m in marks if m.unit == stop_unit)
           if warmup_share else None)

    def warm(step):   # the rate multiplier of the trunk's step `step`, from where it stands
        return warmup_factor(step, cfg.warmup_steps,
                             trunk.reading(stop_unit) / end if end else 0.0)

    trunk_factor = _Factor(optimizer, base_lrs, warm)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=cfg.seed * 1000, device=device)
    last = max(m.value for m in marks if m.unit == stop_unit)
    points, final_state = [], None
    meter = load_meter() if load_meter else None
    while any(m.unit == stop_unit for m in pending):
        due = [m for m in pending if trunk.reading(m.unit) >= m.fork_at]
        for mark in due:
            pending.remove(mark)
            keep = mark.unit == stop_unit and mark.value == last
            point, state = _branch(cfg, mark, trunk, model, optimizer, base_lrs, eval_inputs,
                                   eval_targets, device, f0=warm(trunk.step), keep=keep)
            if keep:
                final_state = state
            point["foreign_cpu"] = meter.stop() if meter else None
            meter = load_meter() if load_meter else None
            points.append(point)
            log(f"  {cfg.name}: {_describe(mark)}: {point['train_seconds']:.0f} s wall, "
                f"{point['cpu_seconds']:.0f} s CPU, {point['steps']} steps, {point['images']} "
                f"images, eval PSNR {point['psnr']:.2f} dB, SSIM {point['ssim']:.3f}")
        if due:
            trunk_factor.step_count = trunk.step
            trunk_factor.apply()
            continue
        trunk.wall.start()
        trunk.cpu.start()
        _one_step(model, stream, optimizer, trunk_factor, trunk, cfg, device)
        trunk.wall.stop()
        trunk.cpu.stop()
        trunk_factor.apply()   # the next step's rate from where the trunk now stands
    model.load_state_dict(final_state)
    return points, pending


def _describe(mark):
    return (f"{mark.value:g} images" if mark.unit == "images"
            else f"{mark.value / 60:g} min of {mark.unit} time")


def _branch(cfg, mark, trunk, model, optimizer, base_lrs, eval_inputs, eval_targets, device, *,
            f0, keep=False):
    """Cool a copy of the trunk's state down to `mark` from the trunk's rate multiplier `f0`,
    score it, and put the trunk back. Returns (point, the cooled weights if `keep` else None)."""
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    here = trunk.copy()
    start = here.reading(mark.unit)
    span = max(mark.value - start, 1e-9)

    def factor(_step):
        done = min(1.0, max(0.0, (here.reading(mark.unit) - start) / span))
        return f0 + (cfg.min_lr_ratio - f0) * done

    scheduler = _Factor(optimizer, base_lrs, factor)
    seed = (cfg.seed * 1000 + 7919 * int(mark.value) + {"wall": 1, "cpu": 2, "images": 3}[mark.unit])
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=seed % (2 ** 31), device=device)
    loss_sum = steps = 0
    while here.reading(mark.unit) < mark.value:
        here.wall.start()
        here.cpu.start()
        loss_sum += _one_step(model, stream, optimizer, scheduler, here, cfg, device)
        here.wall.stop()
        here.cpu.stop()
        scheduler.apply()   # the next step's rate from where the branch now stands
        steps += 1
    metrics = evaluate(model, eval_inputs, eval_targets, device=device,
                       batch_size=cfg.eval_batch_size)
    point = {"unit": mark.unit, "train_seconds": here.wall.seconds, "cpu_seconds": here.cpu.seconds,
             "steps": here.step, "images": here.images, "cooldown_steps": steps,
             "train_loss": loss_sum / max(steps, 1), "lr": scheduler.get_last_lr()[0], **metrics}
    point["budget_images" if mark.unit == "images" else "budget_s"] = mark.value
    cooled = copy.deepcopy(model.state_dict()) if keep else None
    model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_optimizer)
    return point, cooled
