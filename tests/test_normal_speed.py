"""experiments/normal_speed.py: a smoke run writes its figures and finds torch's values; bad
input exits 2 without writing."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "normal_speed.py"


def test_smoke_run_writes_the_four_timings_and_torchs_values(tmp_path):
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("torch's normal_ takes its scalar path on this CPU; the kernel is not used")
    run = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "2", "--out-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    doc = json.loads((tmp_path / "normal_speed.json").read_text())
    assert doc["same_values_and_state"] is True
    assert set(doc["median_us"]) == {"torch normal_", "Stream.normal", "torch uniform_",
                                     "Stream.rand"}
    assert all(v > 0 for v in doc["median_us"].values()) and doc["rounds"] == 2


def test_bad_rounds_exit_2_with_one_line(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "0", "--out-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--rounds" in run.stderr
    assert not (tmp_path / "normal_speed.json").exists()
