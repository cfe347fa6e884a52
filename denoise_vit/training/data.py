"""Where a training run's data comes from: the one place train.py asks for batches.

The kinds images, videos and noise2noise are synthetic (data_gen); kind "pairs" reads a folder
of image pairs (denoise_vit.training.pairs). Each source returns an iterator of (input, target) batches
on `device` with state_dict / load_state_dict, and an evaluation set (inputs, targets) on the
CPU.
"""
from functools import lru_cache

from data_gen import SyntheticStream, make_eval_set

from ..errors import ConfigError


@lru_cache(maxsize=2)  # the train stream and the eval set read the folder once per process
def _pairs(pairs_dir):
    from .pairs import load_pairs
    return load_pairs(pairs_dir)


def _check_pairs(data):
    if data.generator:
        raise ConfigError("data.generator keys apply to synthetic data, not to data.kind='pairs'")
    return _pairs(str(data.pairs_dir))


def make_train_stream(data, batch_size, *, seed, device):
    """Endless (input, target) training batches for a DataConfig, on `device`."""
    if data.kind == "pairs":
        from .pairs import PairStream
        return PairStream(_check_pairs(data), batch_size, size=data.size, seed=seed, device=device)
    return SyntheticStream(batch_size, kind=data.kind, size=data.size, frames=data.frames,
                           seed=seed, device=device, **data.generator)


def make_eval_data(data):
    """The fixed evaluation set (inputs, clean targets) of a DataConfig, on the CPU.

    For "pairs" the targets are the folder's clean images if it has them, else the second
    noisy copies (a PSNR against noisy targets, lower than the true one).
    """
    if data.kind == "pairs":
        from .pairs import pair_eval_set
        return pair_eval_set(_check_pairs(data), data.eval_size, size=data.size,
                             seed=data.eval_seed)
    return make_eval_set(data.eval_size, kind=data.kind, size=data.size, frames=data.frames,
                         seed=data.eval_seed, **data.generator)
