"""experiments/variants/ema.py (round 17): a tiny paired run scores the raw weights and each EMA
at every epoch end; bad input exits 2 with one line and writes nothing."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "variants" / "ema.py"
TINY = ["epochs=2", "steps_per_epoch=2", "batch_size=4", "warmup_steps=1", "data.eval_size=8",
        "data.size=32", "model.depth=1", "model.embed_dim=16", "model.decoder_width=8"]


def test_tiny_run_scores_raw_and_each_decay_per_epoch(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--seed", "3", "--decays", "0.5,0.9",
                          "--out-dir", str(tmp_path), *TINY],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    doc = json.loads((tmp_path / "ema_s3.json").read_text())
    assert [r["step"] for r in doc["rows"]] == [2, 4]
    assert doc["seed"] == 3 and doc["decays"] == [0.5, 0.9] and doc["steps"] == 4
    for row in doc["rows"]:
        assert {"raw", "ema_0.5", "ema_0.9", "cpu_s", "lr"} <= set(row)
        assert all(v == v for v in row.values())          # no NaN
    # at step 2 the warm-up decay (1 - 1/(1 + t)) is below both: the two EMAs are one average
    assert doc["rows"][0]["ema_0.5"] == doc["rows"][0]["ema_0.9"]


def test_bad_decays_exit_2_with_one_line(tmp_path):
    for decays in ("0.9,x", "1.5"):
        run = subprocess.run([sys.executable, str(SCRIPT), "--decays", decays, "--out-dir",
                              str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and "--decays" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_a_bad_override_exits_2(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--out-dir", str(tmp_path), "epochs=0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "epochs" in run.stderr
    assert not list(tmp_path.iterdir())
