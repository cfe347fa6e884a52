"""`denoise-vit export`: each format runs outside this package as the model runs inside it.

A small trained checkpoint is exported in every format; the ONNX file (in onnxruntime) and the
TorchScript archive must give torch's output within 1e-4 at 64x64 and at a non-square size, and
the bioimage.io package must pass bioimageio.core's own model test. Bad input: one line, exit 2,
nothing left behind.
"""
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.layers import resample_abs_pos_embed

from denoise_vit import build_model, load_model
from denoise_vit.checkpoint import atomic_save, make_checkpoint
from denoise_vit.cli import main
from denoise_vit.export import command
from denoise_vit.layers.pos_embed import resample_grid

SIZES = [(64, 64), (48, 80), (128, 96)]


@pytest.fixture
def checkpoint(trained_checkpoint):
    """conftest's briefly trained ViT (32x32, patch 8): a real training run's checkpoint."""
    return trained_checkpoint


def torch_outputs(model, size, batch=3, seed=0):
    x = torch.rand((batch, 1, *size), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return x, model(x).numpy()


def test_resampling_is_timms(tmp_path):
    """The export-friendly resampling gives the numbers earlier versions got from timm, so their
    checkpoints denoise as before."""
    weight = torch.randn(1, 64, 32)
    for grid in [(6, 10), (16, 12), (8, 8), (1, 1)]:
        old = resample_abs_pos_embed(weight, new_size=list(grid), old_size=[8, 8],
                                     num_prefix_tokens=0)
        assert torch.equal(resample_grid(weight, (8, 8), grid), old)


def test_onnx_matches_torch_at_any_size(checkpoint, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "-o", str(out)]) == 0
    assert "opset 18" in capsys.readouterr().out
    assert {o.domain: o.version for o in onnx.load(str(out)).opset_import}[""] == 18
    model = load_model(checkpoint)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for size in SIZES:   # batch 3 and sizes the export never saw
        x, expected = torch_outputs(model, size)
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4, size


def test_torchscript_matches_torch_at_any_size(checkpoint, tmp_path):
    out = tmp_path / "model.pt"
    assert main(["export", str(checkpoint), "--format", "torchscript", "-o", str(out)]) == 0
    model, scripted = load_model(checkpoint), torch.jit.load(str(out))
    for size in SIZES:
        x, expected = torch_outputs(model, size)
        with torch.no_grad():
            assert np.abs(scripted(x).numpy() - expected).max() < 1e-4, size


def test_bioimageio_package_passes_the_model_test(checkpoint, tmp_path):
    pytest.importorskip("bioimageio.core")
    import yaml   # PyYAML comes with timm
    from bioimageio.core import test_model
    out = tmp_path / "model.zip"
    assert main(["export", str(checkpoint), "--format", "bioimageio", "-o", str(out)]) == 0
    summary = test_model(out, devices=["cpu"])
    assert summary.status == "passed"
    tested = {d.name for d in summary.details if d.status == "passed"}
    for fmt in ("pytorch_state_dict", "torchscript", "onnx"):
        assert f"Reproduce test outputs from test inputs ({fmt})" in tested
    with zipfile.ZipFile(out) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
        assert "training config **c**" in z.read("README.md").decode()
        assert {"cover.png", "test_input.npy", "test_output.npy"} <= set(z.namelist())
    assert rdf["format_version"].startswith("0.5")
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"]["name"] == "vit_denoiser"
    y = next(a for a in rdf["inputs"][0]["axes"] if a.get("id") == "y")
    assert y["size"] == {"min": 8, "step": 8}
    steps = {p["id"]: p.get("kwargs") for p in rdf["inputs"][0]["preprocessing"]}
    record = torch.load(checkpoint, weights_only=True)["intensity"]
    assert steps["scale_range"]["max_percentile"] == record["percentiles"][1]
    assert steps["scale_linear"]["offset"] == pytest.approx(record["low"])
    assert any("2010.11929" in c.get("doi", "") for c in rdf["cite"])


def test_video_model_package(tmp_path):
    """A TimeSformer-style video model: time is an axis of the package like y and x."""
    pytest.importorskip("bioimageio.core")
    from bioimageio.core import test_model
    model = build_model("video_denoiser", depth=1, num_frames=4, img_size=32)
    ckpt = tmp_path / "video.pt"
    atomic_save(make_checkpoint(model, config={"name": "v", "data": {
        "kind": "videos", "size": 32, "frames": 4, "eval_size": 1}}), ckpt)
    out = tmp_path / "video.zip"
    assert main(["export", str(ckpt), "--format", "bioimageio", "-o", str(out)]) == 0
    assert test_model(out, devices=["cpu"]).status == "passed"


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt, name, message", [
    ("onnx", "model.pt", "a onnx export is written to a .onnx file"),
    ("bioimageio", "missing/model.zip", "output folder does not exist"),
    ("torchscript", "exists.pt", "exists already; give --overwrite"),
])
def test_bad_output_is_one_line(checkpoint, tmp_path, capsys, fmt, name, message):
    (tmp_path / "exists.pt").write_bytes(b"keep")
    before = listing(tmp_path)
    assert main(["export", str(checkpoint), "--format", fmt, "-o", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert listing(tmp_path) == before and (tmp_path / "exists.pt").read_bytes() == b"keep"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_unwritable_folder_is_one_line(checkpoint, capsys):
    """/proc refuses new files even to root, for whom permission bits do not count."""
    assert main(["export", str(checkpoint), "--format", "torchscript", "-o", "/proc/m.pt"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write into /proc" in err


def test_missing_package_says_what_to_install(checkpoint, tmp_path, capsys, monkeypatch):
    real = command.importlib.util.find_spec
    monkeypatch.setattr(command.importlib.util, "find_spec",
                        lambda name: None if name == "onnxruntime" else real(name))
    assert main(["export", str(checkpoint), "--format", "onnx", "-o",
                 str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "needs onnxruntime" in err and "pip install 'denoise-vit[export]'" in err
    assert listing(tmp_path) == []


def test_failed_export_leaves_nothing(checkpoint, tmp_path, capsys, monkeypatch):
    """An exporter that fails mid-write (here: a model it cannot translate) leaves neither the
    target nor its temporary file, and an existing target is kept."""
    from denoise_vit.export import torchscript

    def half_written(model, path):
        path.write_bytes(b"partial")
        raise RuntimeError("cannot trace this model\nsecond line of the traceback")
    monkeypatch.setattr(torchscript, "export_torchscript", half_written)
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    assert main(["export", str(checkpoint), "--format", "torchscript", "-o", str(target),
                 "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("cannot export vit_denoiser as torchscript: cannot trace this model")
    assert listing(tmp_path) == ["model.pt"] and target.read_bytes() == b"old"



def test_position_biased_attention_exports_at_any_size(tmp_path):
    """A ViT whose heads carry Swin's relative position bias (a learned table, clipped on grids
    larger than the one it was built for) and the distance penalty runs in onnxruntime and as
    TorchScript as in torch, at the training size and at sizes that clip the table."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from denoise_vit.export.onnx import export_onnx, onnx_runner
    from denoise_vit.export.torchscript import export_torchscript, torchscript_runner
    torch.manual_seed(0)
    model = build_model("vit_denoiser", img_size=32, embed_dim=16, depth=2, num_heads=2,
                        rel_pos_bias=True, distance_bias=True).eval()
    with torch.no_grad():
        for block in model.encoder.blocks:
            block.attn.rel_pos_table.normal_()
    export_onnx(model, tmp_path / "model.onnx")
    export_torchscript(model, tmp_path / "model.pt")
    runners = (onnx_runner(tmp_path / "model.onnx"), torchscript_runner(tmp_path / "model.pt"))
    for size in SIZES:                       # grids 8x8 to 16x12 against the table's 4x4
        x, expected = torch_outputs(model, size)
        for run in runners:
            got = np.asarray(run(x.numpy()))
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() < 1e-4, size
