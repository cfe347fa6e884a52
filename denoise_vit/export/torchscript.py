"""TorchScript export by tracing, with sizes that stay dynamic.

`torch.jit.script` cannot compile einops' `rearrange`, so the model is traced. Tracing records
shape arithmetic as graph operations, and the size shortcuts of the position embeddings are
skipped while tracing (`layers.pos_embed.exporting`), so the traced module runs at any batch
and any size the model accepts, not only the example's.
"""
import warnings

import torch

from .checks import example_input


def export_torchscript(model, path):
    """Write `model` (eval mode, CPU) as a TorchScript archive to `path`."""
    with torch.no_grad(), warnings.catch_warnings():
        # TracerWarnings flag the input checks (constant in the trace) and jit's deprecation
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example_input(model, batch=2), check_trace=False)
        torch.jit.save(traced, str(path))


def torchscript_runner(path):
    """A function running the TorchScript archive on a float32 array."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x):
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()
    return run
