"""Models that leave the project: `denoise-vit export CHECKPOINT --format FORMAT -o OUT`.

    onnx.py          ONNX (dynamic batch, time and spatial axes), run by onnxruntime
    torchscript.py   TorchScript (traced; sizes stay dynamic), run by libtorch / deepImageJ
    bioimageio.py    a BioImage Model Zoo package (spec 0.5) holding all three weight formats
    command.py       the command: checks, staging beside the target, the consumers' own checks

Each export is checked before it is kept: ONNX and TorchScript against the torch model at two
sizes, the bioimage.io package by bioimageio.core's own model test.
"""
