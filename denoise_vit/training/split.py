"""A CPU training step as two halves of the batch on two threads.

Why: a small model's operations are short, and torch's threads wait for each other at the end of
every one (the waiting thread spins, through the Python between operations too). Two halves of
the batch, each forward and backward on its own thread with half of torch's threads, keep both
cores busy between operations, as `threads.concurrent_calls` does for the tiles of `denoise`.
Measured by `python experiments/split_speed.py` (docs/split_speed.json, the engine's own
train_steps with and without the split, in turns in one process; 2-core EPYC alone under the CPU
lock, 2026-12-06 10:07): vit_fast (batch 64) 385 -> 434 images/s (38 -> 43 % of the matmul
rate measured beside it), course 355 -> 428.

What changes: each half's batch norms normalise over its own 32 images (as under
DistributedDataParallel with two ranks), the batch norms' running statistics are those of the
caller's half, and the gradient is the mean of the two halves' gradients, summed in a fixed order:
the same expected step, and deterministic for a given thread count. The loss is the batch's
(the halves' losses weighted by their sizes).

The second half runs on a replica: a copy of the model whose parameters *are* the model's (the
optimizer's in-place updates reach it), with buffers of its own (its batch norms' running
statistics are never read). Gradients come from `torch.autograd.grad`, so neither thread writes
`.grad` while the other runs.
"""
import copy
import weakref
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

# each half gets at least this many images: a batch norm over fewer is a poorer estimate
MIN_HALF = 16


def _random_layers(model):
    """Whether the model draws random numbers in training (dropout, stochastic depth): two
    threads drawing from one generator would make the draws' order, hence the run, vary."""
    for module in model.modules():
        p = getattr(module, "p", None) if isinstance(module, nn.modules.dropout._DropoutNd) \
            else getattr(module, "drop_prob", None)
        if p:
            return True
    return False


def split_reason(model, device):
    """None when steps of `model` may run as two halves (given two threads and a batch of at
    least 2 * MIN_HALF images: `halves_fit`); else why not."""
    if device.type != "cpu":
        return "not on the CPU"
    if not isinstance(model, nn.Module) or isinstance(
            model, torch.nn.parallel.DistributedDataParallel) or hasattr(model, "_orig_mod"):
        return "a wrapped model (DDP or torch.compile)"
    if _random_layers(model):
        return "dropout or stochastic depth"
    return None


def halves_fit(batch_size, threads):
    """Whether a step of `batch_size` images on `threads` torch threads runs as two halves."""
    return threads >= 2 and batch_size >= 2 * MIN_HALF


def thread_shares(threads):
    """Torch threads of the caller's half and of the other half, out of `threads`."""
    return (threads + 1) // 2, max(threads // 2, 1)


def describe(model, device, batch_size, threads, enabled=True):
    """One line for a CPU run's log: how its steps will run (while the thread count stays)."""
    if not enabled:
        return "steps: one pass over each batch (split_batch = false)"
    why = split_reason(model, device)
    if why is None and not halves_fit(batch_size, threads):
        why = ("one torch thread" if threads < 2
               else f"batches of {batch_size}: under {2 * MIN_HALF} images")
    if why:
        return f"steps: one pass over each batch ({why})"
    mine, theirs = thread_shares(threads)
    return (f"steps: each batch of {batch_size} as two halves on two threads of {mine} and "
            f"{theirs} torch thread(s), each half's batch norms over its own images "
            "(split_batch = false: one pass)")


def _tied_replica(model):
    """A deep copy of `model` whose parameters are the model's own tensors."""
    replica = copy.deepcopy(model)
    own = dict(model.named_parameters())
    for name, module in replica.named_modules():
        for key in list(module._parameters):
            if module._parameters[key] is not None:
                module._parameters[key] = own[f"{name}.{key}" if name else key]
    return replica


class SplitStep:
    """Loss and gradients of one batch, computed as two halves on two threads.

    `__call__(inputs, targets, objective)` returns the batch's loss (a 0-d tensor, detached) and
    leaves the mean gradient in the parameters' `.grad`; `objective(model, x, y)` is the loss of
    `model` on one half (the caller's autocast and loss). Torch's thread count is split between
    the two threads for the step and put back after.
    """

    _made = weakref.WeakKeyDictionary()   # model -> its SplitStep, for `of`

    def __init__(self, model):
        # weakly: `of` keeps a SplitStep while its model lives, and no longer (the replica holds
        # the model's parameters, not the model)
        self._model = weakref.ref(model)
        self.replica = _tied_replica(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="denoise-vit-half")

    @classmethod
    def of(cls, model):
        """The model's SplitStep, made once and kept while the model lives and keeps the same
        trainable parameters (callers that run `train_steps` a step at a time pay for the copy
        and the thread once)."""
        made = cls._made.get(model)
        params = [p for p in model.parameters() if p.requires_grad]
        if made is None or len(made.params) != len(params) or any(
                p is not q for p, q in zip(made.params, params)):
            if made is not None:
                made.close()
            made = cls._made[model] = cls(model)
        return made

    def close(self):
        self.pool.shutdown(wait=True)

    @staticmethod
    def _half(model, params, objective, x, y, threads):
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        loss = objective(model, x, y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return loss.detach(), grads

    def __call__(self, inputs, targets, objective):
        total = torch.get_num_threads()
        mine, theirs = thread_shares(total)
        model = self._model()
        n = inputs.shape[0]
        k = n // 2
        if self.replica.training != model.training:
            self.replica.train(model.training)
        torch.set_num_threads(mine)
        other = self.pool.submit(self._half, self.replica, self.params, objective,
                                 inputs[k:], targets[k:], theirs)
        try:
            loss_a, grads_a = self._half(model, self.params, objective, inputs[:k],
                                         targets[:k], mine)
        finally:
            torch.set_num_threads(total)
            done = other.exception()    # wait for the other half either way
        if done is not None:
            raise done
        loss_b, grads_b = other.result()
        wa, wb = k / n, (n - k) / n
        with torch.no_grad():
            for p, ga, gb in zip(self.params, grads_a, grads_b):
                # in the parameter's own layout (channels-last kernels stay so), as backward()
                # would leave it: the fused optimizers read .grad element for element with it
                grad = None
                for g, w in ((ga, wa), (gb, wb)):
                    if g is None:
                        continue
                    if grad is None:
                        grad = torch.mul(g, w, out=torch.empty_like(p))
                    else:
                        grad.add_(g, alpha=w)
                p.grad = grad
        return loss_a * wa + loss_b * wb
