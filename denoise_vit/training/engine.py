"""The training engine: one epoch of steps, and evaluation on a fixed set."""
import math
import signal
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import threads
from ..errors import TrainingError
from ..metrics import psnr, ssim
from .split import SplitStep, halves_fit, split_reason


def autocast(device, enabled):
    """bf16 autocast where asked for (GPU runs); a no-op context otherwise."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if enabled else nullcontext()


class StopFlag:
    """Why a run should stop between steps: a signal (SIGINT / SIGTERM) or the time budget."""

    BUDGET = "time budget reached"

    def __init__(self):
        self.reason = None
        self.signum = None   # set when a signal asked for the stop

    def set(self, reason, signum=None):
        if self.reason is None or (signum and not self.signum):  # a signal outranks the budget
            self.reason, self.signum = reason, signum

    def __bool__(self):
        return self.reason is not None


CHARBONNIER_EPS = 1e-3


def training_loss(outputs, targets, kind="mse"):
    """The training loss, in float32: "mse" (mean squared error, which PSNR measures) or
    "charbonnier" (mean of sqrt(d**2 + eps**2), eps = 1e-3: a smooth L1, as Restormer, SwinIR
    and many restoration networks train; large errors pull less than under MSE)."""
    outputs, targets = outputs.float(), targets.float()
    if kind == "charbonnier":
        return torch.sqrt((outputs - targets).square() + CHARBONNIER_EPS ** 2).mean()
    if kind != "mse":
        raise ValueError(f"unknown loss {kind!r}")
    return F.mse_loss(outputs, targets)


def train_steps(model, stream, optimizer, scheduler, *, first_step, last_step, device, amp=False,
                grad_clip=None, stop=None, deadline=None, now=time.monotonic, sync=None,
                progress=True, desc="train", loss="mse", split=True):
    """Run optimisation steps first_step .. last_step-1 on fresh batches from `stream`.

    Stops early (between steps) when `stop` is set or `deadline` (read on `now`, a clock such as
    time.monotonic or time.process_time) has passed.
    The stop is checked before a batch is drawn, so a stopped run has consumed exactly the
    batches of the steps it did: its stream state resumes the uninterrupted run's data.
    `sync(values) -> values` (the maximum of each value over all ranks) makes distributed runs
    agree on stopping and on a non-finite loss, so every rank leaves at the same step.
    Raises TrainingError on a non-finite loss, before the optimizer touches the weights.
    `loss`: "mse" or "charbonnier" (`training_loss`).
    `split`: on the CPU with two or more torch threads, each batch's forward and backward run as
    two halves on two threads (training/split.py: faster for small models; each half's batch
    norms see its own images); False: one pass on all threads. Models it cannot apply to
    (`split_reason`) and steps with one thread or a small batch (`halves_fit`) run in one pass.
    Returns (steps done, summed loss, images seen, seconds).
    """
    agree = sync or (lambda values: values)
    model.train()

    def objective_of(net, inputs, targets):
        with autocast(device, amp):
            outputs = net(inputs)
        return training_loss(outputs, targets, loss)

    halves = None
    can_split = split and split_reason(model, device) is None
    total, images, step = 0.0, 0, first_step
    start = time.perf_counter()
    bar = tqdm(total=last_step - first_step, desc=desc, disable=not progress, leave=False,
               dynamic_ncols=True)
    while step < last_step:
        if stop is not None:
            if deadline is not None and now() > deadline:
                stop.set(StopFlag.BUDGET)
            signum, stopping = agree([stop.signum or 0, bool(stop)])
            if signum:
                stop.set(signal.Signals(int(signum)).name, int(signum))
            elif stopping:
                stop.set(StopFlag.BUDGET)
            if stop:
                break
        threads.adapt()   # the command's thread policy: fewer threads when cores get busy
        inputs, targets = next(stream)
        halved = can_split and halves_fit(inputs.shape[0], torch.get_num_threads())
        if halved:
            halves = halves or SplitStep.of(model)
            objective = halves(inputs, targets, objective_of)   # gradients already in .grad
        else:
            objective = objective_of(model, inputs, targets)
        value = objective.item()
        bad = not math.isfinite(value)
        if agree([bad])[0]:
            what = f"non-finite loss ({value})" if bad else "non-finite loss on another rank"
            raise TrainingError(f"{what} at step {step + 1}; stopping. The last checkpoint "
                                "written before it is kept as the latest.")
        if not halved:
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        total += value
        images += inputs.shape[0]
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{value:.2e}")
    bar.close()
    return step - first_step, total, images, time.perf_counter() - start


@torch.no_grad()
def predict(model, inputs, *, device, batch_size=128, amp=False, progress=False):
    """Outputs of `model` for a CPU tensor of inputs, in batches; returned on the CPU as float32."""
    model.eval()
    outs = []
    for i in tqdm(range(0, inputs.shape[0], batch_size), desc="predict", disable=not progress,
                  leave=False):
        with autocast(device, amp):
            outs.append(model(inputs[i:i + batch_size].to(device)).float().cpu())
    return torch.cat(outs)


def evaluate(model, inputs, targets, *, device, batch_size=128, amp=False):
    """PSNR (pooled over the set) and mean SSIM of the model's outputs against clean targets."""
    outputs = predict(model, inputs, device=device, batch_size=batch_size, amp=amp)
    return {"psnr": psnr(outputs, targets), "ssim": ssim(outputs, targets)}
