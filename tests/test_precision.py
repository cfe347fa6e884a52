"""bf16 in `denoise`: the Denoiser's precision option, the command's --precision, and
experiments/precision_study.py (a small run, its figure, bad input)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from denoise_vit import build_model
from denoise_vit.cli import main
from denoise_vit.errors import DenoiseVitError
from denoise_vit.inference.tiling import Denoiser, native_bf16

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "precision_study.py"


@pytest.mark.parametrize("name, kwargs, shape", [
    ("vit_denoiser", dict(depth=1, embed_dim=16, num_heads=2), (3, 1, 80, 72)),
    ("video_denoiser", dict(variant="divided_space_time", img_size=32, depth=1, embed_dim=16,
                            num_heads=2, num_frames=4, tubelet_size=2), (6, 1, 32, 40))])
@torch.no_grad()
def test_bf16_is_close_to_fp32_but_not_the_same(name, kwargs, shape):
    torch.manual_seed(0)
    model = build_model(name, **kwargs).eval()
    x = torch.rand(*shape)
    fp32 = Denoiser(model).denoise(x)
    bf16 = Denoiser(model, precision="bf16").denoise(x)
    assert bf16.dtype == fp32.dtype == torch.float32 and bf16.shape == fp32.shape
    diff = (bf16 - fp32).abs()
    assert 0 < diff.max() < 0.05    # rounded to bf16 inside the model: close, never equal


def test_unknown_precision_is_refused():
    model = build_model("vit_denoiser", depth=1, embed_dim=16, num_heads=2).eval()
    with pytest.raises(DenoiseVitError, match="--precision must be one of fp32, bf16"):
        Denoiser(model, precision="fp16")


def test_native_bf16_answers_per_device():
    assert native_bf16("cuda") is True and native_bf16("meta") is False
    assert native_bf16("cpu") in (True, False)


def test_denoise_command_records_the_precision(trained_checkpoint, tmp_path, capsys):
    image = tmp_path / "in.tif"
    tifffile.imwrite(image, (np.random.default_rng(0).random((40, 48)) * 1000).astype(np.uint16))
    outs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"out_{precision}.tif"
        assert main(["denoise", str(image), "--checkpoint", str(trained_checkpoint), "-o",
                     str(out), "--no-progress", "--precision", precision]) == 0
        outs[precision] = tifffile.imread(out)
    log = [json.loads(line) for line in (tmp_path / "denoise_log.jsonl").read_text().splitlines()]
    assert [entry["precision"] for entry in log] == ["fp32", "bf16"]
    assert "precision bf16" in capsys.readouterr().out
    assert outs["bf16"].dtype == np.uint16 and outs["bf16"].shape == (40, 48)
    assert np.abs(outs["bf16"].astype(int) - outs["fp32"].astype(int)).max() <= 100


def test_denoise_command_refuses_an_unknown_precision(trained_checkpoint, tmp_path, capsys):
    image = tmp_path / "in.tif"
    tifffile.imwrite(image, np.zeros((32, 32), np.uint16))
    with pytest.raises(SystemExit) as exc:
        main(["denoise", str(image), "--checkpoint", str(trained_checkpoint), "-o",
              str(tmp_path / "out.tif"), "--precision", "fp16"])
    assert exc.value.code == 2 and "--precision" in capsys.readouterr().err
    assert not (tmp_path / "out.tif").exists()


def run(*args, timeout=300):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_study_small_run_and_render(tmp_path, trained_checkpoint):
    done = run("--checkpoint", str(trained_checkpoint), "--images", "1", "--size", "64",
               "--frames", "8", "--video-size", "64", "--repeats", "1", "--out-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "precision.json").read_text())
    assert [(r["precision"], r["psnr_db"] is None) for r in doc["rows"]] == [
        ("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True)]  # video: untrained
    assert all(r["seconds"] > 0 for r in doc["rows"])
    assert doc["native_bf16"] in (True, False) and "--repeats 1" in doc["command"]
    (tmp_path / "precision.png").unlink()
    again = run("--render-only", "--out-dir", str(tmp_path))
    assert again.returncode == 0 and "| bf16 |" in again.stdout
    assert (tmp_path / "precision.png").stat().st_size > 0


def test_study_bad_input_exits_2_with_one_line(tmp_path, trained_checkpoint):
    for args in (["--checkpoint", str(tmp_path / "missing.pt")],
                 ["--checkpoint", str(trained_checkpoint), "--video-checkpoint",
                  str(tmp_path / "none.pt")],
                 ["--checkpoint", str(trained_checkpoint), "--repeats", "0"],
                 ["--render-only"]):
        done = run(*args, "--out-dir", str(tmp_path))
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "precision.json").exists()
