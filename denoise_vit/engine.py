"""The training engine: one epoch of steps, and evaluation on a fixed set."""
import math
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .errors import TrainingError
from .metrics import psnr, ssim


def autocast(device, enabled):
    """bf16 autocast where asked for (GPU runs); a no-op context otherwise."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if enabled else nullcontext()


class StopFlag:
    """Set by SIGINT / SIGTERM handlers or the time budget; read between steps."""

    def __init__(self):
        self.reason = None

    def set(self, reason):
        self.reason = self.reason or reason

    def __bool__(self):
        return self.reason is not None


def train_steps(model, stream, optimizer, scheduler, *, first_step, last_step, device, amp=False,
                grad_clip=None, stop=None, deadline=None, sync=None, progress=True, desc="train"):
    """Run optimisation steps first_step .. last_step-1 on fresh batches from `stream`.

    Stops early (between steps) when `stop` is set or `deadline` (time.monotonic) has passed.
    `sync(flags) -> flags` lets distributed runs agree on stopping. Raises TrainingError on a
    non-finite loss, before the optimizer touches the weights.
    Returns (steps done, mean loss, images seen, seconds).
    """
    model.train()
    total, images, step = 0.0, 0, first_step
    start = time.perf_counter()
    bar = tqdm(total=last_step - first_step, desc=desc, disable=not progress, leave=False,
               dynamic_ncols=True)
    while step < last_step:
        if deadline is not None and time.monotonic() > deadline and stop is not None:
            stop.set("time budget reached")
        inputs, targets = next(stream)
        with autocast(device, amp):
            outputs = model(inputs)
        loss = F.mse_loss(outputs.float(), targets.float())
        value = loss.item()
        flags = [not math.isfinite(value), bool(stop)]
        if sync is not None:
            flags = sync(flags)
        if flags[0]:
            raise TrainingError(f"non-finite loss ({value}) at step {step + 1}; stopping. "
                                "The last checkpoint written before it is kept as the latest.")
        if flags[1]:
            if stop is not None:
                stop.set("stopped on another rank")
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
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
    done = step - first_step
    return done, (total / done if done else math.nan), images, time.perf_counter() - start


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
