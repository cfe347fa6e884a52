"""Where a training run's data comes from: the one place train.py asks for batches.

Today every kind is synthetic (data_gen); other sources (e.g. folders of noisy pairs) plug in
here by returning an iterator of (input, target) batches on `device` with state_dict /
load_state_dict, and an evaluation set (inputs, clean targets) on the CPU.
"""
from data_gen import SyntheticStream, make_eval_set


def make_train_stream(data, batch_size, *, seed, device):
    """Endless (input, target) training batches for a DataConfig, on `device`."""
    return SyntheticStream(batch_size, kind=data.kind, size=data.size, frames=data.frames,
                           seed=seed, device=device, **data.generator)


def make_eval_data(data):
    """The fixed evaluation set (inputs, clean targets) of a DataConfig, on the CPU."""
    return make_eval_set(data.eval_size, kind=data.kind, size=data.size, frames=data.frames,
                         seed=data.eval_seed, **data.generator)
