"""What every export is checked with: example inputs and the largest difference from torch."""
import numpy as np
import torch

TOLERANCE = 1e-4   # largest |exported - torch| accepted, on outputs of order 1


def example_input(model, size=None, batch=1, seed=0):
    """A random (batch, C, *size) input; `size` defaults to the model's training size."""
    facts = model.facts
    size = tuple(size or facts.train_size)
    g = torch.Generator().manual_seed(seed)
    return torch.rand((batch, facts.in_chans, *size), generator=g)


def check_sizes(model):
    """Two input sizes the export must reproduce torch at: the training size and a non-square
    one that resamples the position embedding (64x64 and 48x80 for a 64x64, patch-8 ViT)."""
    facts = model.facts
    *time, h, w = facts.train_size
    *_, mh, mw = facts.multiple
    other = (h - 2 * mh if h > 2 * mh else h + mh, w + 2 * mw)
    return [tuple(facts.train_size), (*time, *other)]


def max_difference(run, model, sizes, batch=2):
    """{size: max |run(x) - model(x)|} over random inputs of each size; `run` maps a float32
    numpy array to one."""
    errors = {}
    for i, size in enumerate(sizes):
        x = example_input(model, size, batch=batch, seed=i)
        with torch.no_grad():
            expected = model(x).numpy()
        errors[tuple(size)] = float(np.abs(np.asarray(run(x.numpy())) - expected).max())
    return errors


def describe(errors):
    return ", ".join(f"{e:.1e} at {'x'.join(map(str, size))}" for size, e in errors.items())
