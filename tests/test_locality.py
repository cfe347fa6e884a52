"""experiments/locality.py: the receptive field of a known network is where it must be, uniform
attention has the uniform distance, a run on saved checkpoints writes its report, and bad input
exits 2 with one line."""
import json
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from denoise_vit import build_model
from denoise_vit.checkpoint import make_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "locality.py"
sys.path.insert(0, str(ROOT / "experiments"))
import locality  # noqa: E402


def test_a_3x3_conv_draws_on_its_neighbours_only():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.rand(2, 1, 16, 16)
    hist = locality.receptive_field(conv, x, [(8, 8), (5, 9)])
    assert abs(float(hist.sum()) - 1) < 1e-9
    # the centre, 4 neighbours at 1 px and 4 corners at sqrt(2) px (rounded to 1): 1/9 and 8/9
    assert abs(float(hist[0]) - 1 / 9) < 1e-9 and abs(float(hist[1]) - 8 / 9) < 1e-9
    assert locality.radii(hist) == {"r50": 1, "r90": 1, "r99": 1}
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 2.0               # the pixel itself only
    assert locality.radii(locality.receptive_field(conv, x, [(8, 8)])) == {
        "r50": 0, "r90": 0, "r99": 0}


def test_uniform_attention_has_the_uniform_distance():
    model = build_model("vit_denoiser", embed_dim=32, depth=2, num_heads=4).eval()
    for block in model.encoder.blocks:
        with torch.no_grad():                        # q = k = 0: every token weighs 1 / N
            block.attn.qkv.weight[:64].zero_()
            block.attn.qkv.bias[:64].zero_()
    att = locality.attention_distances(model, torch.rand(3, 1, 64, 64))
    assert len(att["blocks"]) == 2 and att["patch"] == 8
    for block in att["blocks"]:
        assert len(block["distance_px"]) == 4
        assert all(abs(d - att["uniform_px"]) < 1e-9 for d in block["distance_px"])
        assert all(abs(s - 1 / 64) < 1e-12 for s in block["self_weight"])
    # the model's own attention is back afterwards: same output as a fresh forward
    assert "attend" not in vars(model.encoder.blocks[0].attn)


def run(tmp_path, *args):
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)


def test_a_run_on_checkpoints_writes_the_report(tmp_path):
    paths = {}
    for name, kwargs in (("vit", dict(embed_dim=32, depth=1, num_heads=2)),
                         ("bare", dict(embed_dim=32, depth=0))):
        model = build_model("vit_denoiser", **kwargs)
        paths[name] = tmp_path / f"{name}.pt"
        torch.save(make_checkpoint(model), paths[name])
    done = run(tmp_path, "--images", "2", *(f"--checkpoint={n}={p}" for n, p in paths.items()))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "locality.json").read_text())
    nets = {n["name"]: n for n in report["networks"]}
    assert set(nets) == {"vit", "bare"}
    assert "attention" in nets["vit"] and "attention" not in nets["bare"]
    for net in nets.values():
        assert 0 <= net["r50"] <= net["r90"] <= net["r99"] <= 91
    assert (tmp_path / "locality" / "locality.png").stat().st_size > 0
    assert "| bare |" in (tmp_path / "LOCALITY.md").read_text()


def test_bad_input_exits_2_with_one_line(tmp_path):
    for args, words in ((["--checkpoint", "nameonly"], "NAME=PATH"),
                        (["--checkpoint", "a=/nowhere.pt"], "no checkpoint for a"),
                        (["--render-only"], "no ")):
        done = run(tmp_path, *args)
        assert done.returncode == 2 and words in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
