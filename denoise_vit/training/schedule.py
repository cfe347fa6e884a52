"""The learning-rate schedule of every training run: linear warm-up, then constant or cosine.

One function, `lr_factor`, used by `denoise-vit train` and by the benchmark. The cosine's
progress is measured in steps (epochs x steps_per_epoch), in training seconds (a time budget,
`max_train_seconds`), or both, whichever is further along: a run ends when the first of its
limits is reached, and the rate reaches its floor exactly then.
"""
import math
import time

import torch


def warmup_factor(step, warmup_steps, reached=0.0):
    """The rate multiplier at optimisation step `step` of a linear warm-up over `warmup_steps`
    that ends sooner, at 1, once `reached` (the share done of a warm-up timed in seconds or
    images) gets there first."""
    if step >= warmup_steps:
        return 1.0
    return min(1.0, max((step + 1) / warmup_steps, reached))


def lr_factor(step, progress, *, warmup_steps=0, schedule="cosine", min_lr_ratio=0.0):
    """Multiplier of the base rate at optimisation step `step` (0-based).

    progress: the fraction (0..1) of the run done after warm-up; only the cosine reads it.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, max(0.0, progress))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class TrainClock:
    """Seconds spent training (evaluation and checkpoints excluded), readable while it runs.

    A time-based schedule reads it at every step; a resumed run starts it from the seconds
    stored in its checkpoint, so a time budget means the same in a fresh and a resumed run.
    """

    now = staticmethod(time.perf_counter)

    def __init__(self, seconds=0.0):
        self.done = float(seconds)
        self._since = None

    def start(self):
        self._since = self.now()

    def stop(self):
        if self._since is not None:
            self.done += self.now() - self._since
            self._since = None

    @property
    def seconds(self):
        running = self.now() - self._since if self._since is not None else 0.0
        return self.done + running


class CpuClock(TrainClock):
    """Process CPU seconds spent training (all threads, user + system; time.process_time).

    On a machine shared with other jobs a wall-clock budget shrinks with their load, and
    differently for different models; the CPU time a run was given does not. With n busy
    torch threads it advances about n times as fast as the wall clock.
    """

    now = staticmethod(time.process_time)


def make_scheduler(optimizer, *, schedule="cosine", warmup_steps=0, min_lr_ratio=0.0,
                   total_steps=None, budget_seconds=None, clock=None, warmup_share=None):
    """A LambdaLR stepped once per optimisation step.

    The cosine decays over `total_steps` steps after warm-up, or over `budget_seconds` of
    `clock.seconds`, or over whichever of the two ends first when both are given.

    warmup_share: the warm-up ends at the first of `warmup_steps` steps and this share of the
        budget (steps or seconds), and the cosine decays over the rest of the budget. A short
        run of a slow network is otherwise all warm-up: the benchmark's 30-s rate sweep of the
        U-Net does about 50 steps, the length of its warm-up, so it never trained at the rate
        it was scoring (issue 11).
    """
    if schedule == "cosine" and total_steps is None and budget_seconds is None:
        raise ValueError("a cosine schedule needs total_steps or budget_seconds")
    if budget_seconds is not None and clock is None:
        raise ValueError("a time-based schedule needs the run's clock")
    if warmup_share is not None and not (0 < warmup_share < 1
                                         and (total_steps or budget_seconds)):
        raise ValueError("warmup_share is a share (0..1) of a budget in steps or seconds")

    def progress(step):
        parts = []
        if total_steps is not None:
            parts.append((step - warmup_steps) / max(1, total_steps - warmup_steps))
        if budget_seconds is not None:
            parts.append(clock.seconds / budget_seconds)
        return max(parts) if parts else 0.0

    def done(step):
        """The share of the whole budget done (warm-up included)."""
        parts = ([step / total_steps] if total_steps else []) \
            + ([clock.seconds / budget_seconds] if budget_seconds else [])
        return max(parts)

    def factor(step):
        if warmup_share is None:
            return lr_factor(step, progress(step) if schedule == "cosine" else 0.0,
                             warmup_steps=warmup_steps, schedule=schedule,
                             min_lr_ratio=min_lr_ratio)
        share = done(step)
        if step < warmup_steps and share < warmup_share:
            return warmup_factor(step, warmup_steps, share / warmup_share)
        return lr_factor(step, (share - warmup_share) / (1 - warmup_share), warmup_steps=0,
                         schedule=schedule, min_lr_ratio=min_lr_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
