"""ONNX export with torch's exporter (torch.export + onnxscript), opset 18.

Batch, spatial (and, for video models, time) axes are dynamic: any size that is a multiple of
the model's input multiple runs. Opset 18 is the first whose Resize has `antialias`, which the
learned position embedding's bicubic resampling needs (`layers.pos_embed.resample_grid`).
"""
import contextlib
import io
import warnings

import torch

from .checks import example_input

OPSET = 18
AXIS_NAMES = {"image": ("height", "width"), "video": ("time", "height", "width")}


def dynamic_shapes(model):
    """torch.export's description of the input: batch free, each other axis a multiple."""
    facts = model.facts
    dims = {0: torch.export.Dim("batch", min=1)}
    for axis, (name, multiple) in enumerate(zip(AXIS_NAMES[facts.kind], facts.multiple), start=2):
        # torch.export treats sizes 0 and 1 as special: a free axis starts at 2
        dims[axis] = multiple * torch.export.Dim(name, min=1) if multiple > 1 \
            else torch.export.Dim(name, min=2)
    return (dims,)


def export_onnx(model, path):
    """Write `model` (eval mode, CPU) to the ONNX file `path`, weights inside the file."""
    x = example_input(model, batch=2)
    # the exporter prints its progress on stdout and warns about deprecated internals
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["input"],
                          output_names=["output"], dynamic_shapes=dynamic_shapes(model),
                          opset_version=OPSET, external_data=False, verbose=False)


def onnx_runner(path, threads=None):
    """A function running the ONNX file on a float32 array with onnxruntime (CPU)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]
