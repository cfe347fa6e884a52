"""A BioImage Model Zoo package (bioimage.io spec 0.5), built and tested with bioimageio.core.

The package holds the model three times: `pytorch_state_dict` (the architecture imported from
the installed denoise_vit, `build_model(name, **model_args)`), and `torchscript` and `onnx`
converted from it for consumers without this package (deepImageJ, ilastik, ONNX tools). Beside
them: a test input from the training run's evaluation set and the output expected for it, the
axes with the smallest size and the step each accepts, the checkpoint's intensity record as
pre- and post-processing, a cover (the samples figure), a README and the papers to cite.

Intensities. `denoise-vit denoise` maps an input's 1st and 99.8th percentiles onto the values
those percentiles had in the training inputs (`inference.intensity`). In the package that map
is `scale_range` (percentiles -> 0..1) then `scale_linear` (0..1 -> the training values). The
post-processing undoes the `scale_linear`, so outputs come back on the 0..1 percentile scale:
spec 0.5 has no operation that maps back to the input's own units (that would need the input's
percentiles in the output's processing).
"""
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from ..errors import ExportError
from ..registry import model_spec
from .checks import TOLERANCE
from .onnx import OPSET, export_onnx
from .torchscript import export_torchscript

CITATIONS = {
    "vit": ("Dosovitskiy et al. (2021) An Image is Worth 16x16 Words: Transformers for Image "
            "Recognition at Scale. ICLR.", "10.48550/arXiv.2010.11929"),
    "vivit": ("Arnab et al. (2021) ViViT: A Video Vision Transformer. ICCV.",
              "10.48550/arXiv.2103.15691"),
    "timesformer": ("Bertasius, Wang and Torresani (2021) Is Space-Time Attention All You Need "
                    "for Video Understanding? ICML.", "10.48550/arXiv.2102.05095"),
    "conv_stem": ("Xiao et al. (2021) Early Convolutions Help Transformers See Better. NeurIPS.",
                  "10.48550/arXiv.2106.14881"),
    "unet": ("Ronneberger, Fischer and Brox (2015) U-Net: Convolutional Networks for Biomedical "
             "Image Segmentation. MICCAI.", "10.1007/978-3-319-24574-4_28"),
    "dncnn": ("Zhang et al. (2017) Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for "
              "Image Denoising. IEEE TIP.", "10.1109/TIP.2017.2662206"),
}
COVER_SAMPLES = 8   # columns of the samples figure: 8 x 4 rows is the 2:1 a cover should have


def citations(model_name, model_args):
    """Keys of CITATIONS for a model: the transformer papers its layers come from."""
    if model_name == "unet_denoiser":
        return ["unet"]
    if model_name == "dncnn_denoiser":
        return ["dncnn"]
    keys = ["vit"]
    if model_args.get("embed") == "conv_stem":
        keys.append("conv_stem")
    if model_name == "video_denoiser":
        keys.append("timesformer" if model_args.get("variant") == "divided_space_time" else "vivit")
    return keys


def yaml_value(value):
    """Model arguments as YAML values (tuples become lists)."""
    if isinstance(value, (tuple, list)):
        return [yaml_value(v) for v in value]
    if isinstance(value, dict):
        return {k: yaml_value(v) for k, v in value.items()}
    return value


def evaluation_samples(ckpt, n, kind):
    """The first `n` inputs and targets of the checkpoint's evaluation set (its config's data),
    as images for an image model."""
    from ..training.config import from_dict
    from ..training.data import make_eval_data
    data = from_dict({"data": ckpt.get("config", {}).get("data", {})}).data
    data.eval_size = max(n, 1)
    try:
        inputs, targets = make_eval_data(data)
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot make the evaluation set the package's test tensors come from: "
                          f"{exc}") from exc
    if kind == "image" and inputs.ndim == 5:   # framewise_vit trained on clips: their frames
        inputs, targets = (rearrange(t, "n c t h w -> (n t) c h w") for t in (inputs, targets))
    return inputs[:n], targets[:n]


def normalise(x, record, eps=1e-6):
    """The package's pre-processing in numpy, as bioimageio.core computes it (per sample)."""
    low, high = record["low"], record["high"]
    axes = tuple(range(2, x.ndim))
    p_low, p_high = np.percentile(x, record["percentiles"], axis=axes, keepdims=True)
    return ((x - p_low) / (p_high - p_low + eps) * (high - low) + low).astype(np.float32)


def processing(record, kind, v0_5):
    """(preprocessing, postprocessing) descriptions of the intensity record."""
    low, high = float(record["low"]), float(record["high"])
    if not high > low:
        raise ExportError(f"the checkpoint's intensity record has no range ({low} .. {high})")
    p_low, p_high = (float(p) for p in record["percentiles"])
    axes = [v0_5.AxisId(a) for a in (("time", "y", "x") if kind == "video" else ("y", "x"))]
    pre = [v0_5.ScaleRangeDescr(kwargs=v0_5.ScaleRangeKwargs(
               axes=axes, min_percentile=p_low, max_percentile=p_high)),
           v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=high - low, offset=low))]
    post = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(
                gain=1 / (high - low), offset=-low / (high - low)))]
    return pre, post


def axes(kind, facts, v0_5, *, output=False):
    """batch, channel, (time,) y, x; input sizes: min and step = the model's multiple; output
    sizes: the input's."""
    names = ("time", "y", "x") if kind == "video" else ("y", "x")
    result = [v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=[
        v0_5.Identifier(f"{'denoised' if output else 'channel'}{i}")
        for i in range(facts.in_chans)])]
    for name, multiple in zip(names, facts.multiple):
        cls = ((v0_5.TimeOutputAxis if output else v0_5.TimeInputAxis) if name == "time"
               else (v0_5.SpaceOutputAxis if output else v0_5.SpaceInputAxis))
        size = (v0_5.SizeReference(tensor_id=v0_5.TensorId("raw"), axis_id=v0_5.AxisId(name))
                if output else v0_5.ParameterizedSize(min=multiple, step=multiple))
        result.append(cls(id=v0_5.AxisId(name), size=size))
    return result


def readme(ckpt, model, facts, record, sizes_note):
    cfg = ckpt.get("config", {})
    psnr = ckpt.get("eval_psnr", ckpt.get("best_psnr"))
    data = cfg.get("data", {})
    budget = (f"{cfg.get('epochs')} epochs x {cfg.get('steps_per_epoch')} steps of batch "
              f"{cfg.get('batch_size')}, wall-clock cap {cfg.get('max_train_seconds')} s; "
              f"this checkpoint: step {ckpt.get('step')}")
    lines = [
        f"# {cfg.get('name', 'denoise-vit')}: {ckpt['model_name']} denoiser",
        "",
        f"Exported by `denoise-vit export` from a checkpoint of the training config "
        f"**{cfg.get('name', 'unknown')}** (model `{ckpt['model_name']}`, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters).",
        "",
        "## Training",
        "",
        f"- data: synthetic {data.get('kind', 'images')} (cells corrupted by rectangles), "
        f"size {data.get('size')}" + (f", {data.get('frames')} frames" if facts.kind == "video" else ""),
        f"- budget: {budget}",
        f"- measured PSNR on the evaluation set ({data.get('eval_size')} {data.get('kind')}, seed "
        f"{data.get('eval_seed')}): " + (f"**{psnr:.2f} dB**" if psnr is not None else "not recorded"),
        "- training config:",
        "",
        "```json",
        json.dumps(cfg, indent=1, sort_keys=True),
        "```",
        "",
        "## Input and output",
        "",
        f"- axes: batch, channel ({facts.in_chans}), " + ("time, " if facts.kind == "video" else "")
        + f"y, x. {sizes_note}",
        f"- pre-processing: the {record['percentiles'][0]:g}th and {record['percentiles'][1]:g}th "
        f"percentiles of each sample are mapped onto {record['low']:.4g} and {record['high']:.4g}, "
        "the values they had in the training inputs (scale_range, then scale_linear).",
        "- post-processing: the scale_linear is undone, so the output is on the 0..1 percentile "
        "scale of the input (spec 0.5 has no operation back to the input's own units; "
        "`denoise-vit denoise` restores them).",
        "",
        "## Weights",
        "",
        "- `pytorch_state_dict`: needs the `denoise_vit` package (`build_model(name, **kwargs)`).",
        "- `torchscript`: traced; runs in any PyTorch / libtorch (deepImageJ) at any allowed size.",
        f"- `onnx`: opset {OPSET}, dynamic batch and sizes (ONNX Runtime, ilastik).",
        "",
        f"Each converted format reproduces the torch model within {TOLERANCE:g} (checked at export).",
    ]
    return "\n".join(lines) + "\n"


def build_package(ckpt, model, target, workdir, *, record, author="denoise-vit"):
    """Write the package zip to `target` (files staged in `workdir`) and run bioimageio.core's
    model test on it; ExportError with the first failure if the test does not pass."""
    import bioimageio.spec.model.v0_5 as v0_5
    from bioimageio.core import test_model
    from bioimageio.spec import ValidationContext, save_bioimageio_package

    from ..figures import save_batch_figure

    workdir = Path(workdir)
    facts = model.facts
    inputs, targets = evaluation_samples(ckpt, COVER_SAMPLES if facts.kind == "image" else 1,
                                         facts.kind)
    test_input = inputs[:1].numpy().astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(normalise(test_input, record))).numpy()
    test_output = ((y - record["low"]) / (record["high"] - record["low"])).astype(np.float32)
    np.save(workdir / "test_input.npy", test_input)
    np.save(workdir / "test_output.npy", test_output)

    with torch.no_grad():   # the training run's samples figure: model units, as the targets
        outputs = model(inputs)
    if facts.kind == "video":  # the frames of one clip as the columns
        inputs, targets, outputs = (t[0].transpose(0, 1) for t in (inputs, targets, outputs))
    save_batch_figure(workdir / "cover.png", inputs, targets, outputs,
                      title=f"{ckpt.get('config', {}).get('name', '')} {ckpt['model_name']}: "
                            "input, target, output, error")

    torch.save(model.state_dict(), workdir / "weights.pt")
    export_torchscript(model, workdir / "weights_torchscript.pt")
    export_onnx(model, workdir / "weights.onnx")
    sizes_note = ("Sizes: at least " + " x ".join(map(str, facts.multiple)) + " and multiples of "
                  "it" + (f"; trained on {'x'.join(map(str, facts.train_size))}."))
    (workdir / "README.md").write_text(readme(ckpt, model, facts, record, sizes_note))

    pre, post = processing(record, facts.kind, v0_5)
    name, args = model_spec(model)   # the exported module (framewise_vit's plane model)
    version = v0_5.Version(torch.__version__.split("+")[0])
    cfg = ckpt.get("config", {})
    with ValidationContext(root=workdir, perform_io_checks=True):
        descr = v0_5.ModelDescr(
            name=f"denoise-vit {cfg.get('name', ckpt['model_name'])}",
            description=f"{ckpt['model_name']} denoiser of fluorescence-like "
                        f"{'image sequences' if facts.kind == 'video' else 'images'} "
                        f"trained by denoise-vit (config {cfg.get('name', 'unknown')}).",
            authors=[v0_5.Author(name=author)],
            cite=[v0_5.CiteEntry(text=CITATIONS[k][0], doi=v0_5.Doi(CITATIONS[k][1]))
                  for k in citations(name, args)],
            license=v0_5.LicenseId("MIT"),
            documentation=v0_5.FileDescr(source=Path("README.md")),
            covers=[v0_5.FileDescr(source=Path("cover.png"))],
            tags=["denoising", "vision-transformer", "fluorescence-light-microscopy", "2d"
                  if facts.kind == "image" else "2d+t", "pytorch", "onnx", "torchscript"],
            inputs=[v0_5.InputTensorDescr(
                id=v0_5.TensorId("raw"), axes=axes(facts.kind, facts, v0_5),
                test_tensor=v0_5.FileDescr(source=Path("test_input.npy")),
                data=v0_5.IntervalOrRatioDataDescr(type="float32"), preprocessing=pre)],
            outputs=[v0_5.OutputTensorDescr(
                id=v0_5.TensorId("denoised"), axes=axes(facts.kind, facts, v0_5, output=True),
                test_tensor=v0_5.FileDescr(source=Path("test_output.npy")),
                data=v0_5.IntervalOrRatioDataDescr(type="float32"), postprocessing=post)],
            weights=v0_5.WeightsDescr(
                pytorch_state_dict=v0_5.PytorchStateDictWeightsDescr(
                    source=Path("weights.pt"), pytorch_version=version,
                    architecture=v0_5.ArchitectureFromLibraryDescr(
                        callable=v0_5.Identifier("build_model"), import_from="denoise_vit",
                        kwargs={"name": name, **yaml_value(args)})),
                torchscript=v0_5.TorchscriptWeightsDescr(
                    source=Path("weights_torchscript.pt"), pytorch_version=version,
                    parent="pytorch_state_dict"),
                onnx=v0_5.OnnxWeightsDescr(
                    source=Path("weights.onnx"), opset_version=OPSET, parent="pytorch_state_dict")),
        )
    save_bioimageio_package(descr, output_path=Path(target))
    with warnings.catch_warnings():   # torch.jit.load's deprecation, once per test
        warnings.simplefilter("ignore")
        summary = test_model(Path(target), devices=["cpu"])
    if summary.status != "passed":
        raise ExportError(f"bioimageio.core's model test failed: {first_failure(summary)}")
    return summary


def first_failure(summary):
    for detail in summary.details:
        if detail.status == "failed":
            msg = detail.errors[0].msg if detail.errors else ""
            return f"{detail.name}: {' '.join(str(msg).split())[:300]}"
    return summary.status
