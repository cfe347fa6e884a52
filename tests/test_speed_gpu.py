"""experiments/speed_gpu.py: the GPU figures of issue 14, their section in SPEED.md."""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "speed_gpu.py"
DOC = ROOT / "docs" / "speed_gpu.json"


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "no CUDA GPU" in proc.stderr
    assert not (tmp_path / "speed_gpu.json").exists()


def test_sections_run_on_the_cpu_and_are_saved_as_they_end(tmp_path):
    gpu = load("speed_gpu", SCRIPT)
    status = gpu.main(["--device", "cpu", "--quick", "--out-dir", str(tmp_path), "--skip",
                       "train_preset,inference,training,commands,train_compiled"])
    doc = json.loads((tmp_path / "speed_gpu.json").read_text())
    assert status == 0 and doc["errors"] == {} and doc["quick"] is True
    assert doc["sections"]["matmul"]["bf16_tflops"] > 0
    assert doc["sections"]["machine"]["device"] == "cpu"
    assert (tmp_path / "speed_gpu.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failing_section_is_recorded_and_the_next_one_still_runs(tmp_path):
    gpu = load("speed_gpu", SCRIPT)
    report = gpu.Report(tmp_path / "speed_gpu.json")
    report.section("broken", lambda: 1 / 0)
    report.section("fine", lambda: {"x": 1})
    doc = json.loads((tmp_path / "speed_gpu.json").read_text())
    assert "ZeroDivisionError" in doc["errors"]["broken"]
    assert doc["sections"]["fine"]["x"] == 1


def test_the_committed_run_renders_into_its_own_page_and_speed_md(tmp_path):
    gpu = load("speed_gpu", SCRIPT)
    shutil.copy(DOC, tmp_path / "speed_gpu.json")
    assert gpu.main(["--render-only", "--out-dir", str(tmp_path)]) == 0
    doc = json.loads(DOC.read_text())
    page = (tmp_path / "speed_gpu.md").read_text()
    row = doc["sections"]["training"]["rows"][0]
    assert f"| {row['preset']} | {row['batch']} | {row['data']} |" in page
    assert f"{row['images_per_s']:.0f}" in page
    for note in doc.get("notes", []):
        assert note in page
    report = load("speed_report", ROOT / "experiments" / "speed_report.py")
    speed = json.loads((ROOT / "docs" / "speed.json").read_text())
    with_gpu, without = report.render(speed, doc), report.render(speed)
    assert "## GPU (goal 5)" in with_gpu and "## GPU (goal 5)" not in without
    assert "GPU (images/s, share of the bf16 peak): unmeasured" in without
    assert "unmeasured" not in with_gpu.split("## Goals")[1].split("\n## ")[0]


def test_render_only_without_a_run_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--render-only", "--out-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "cannot read" in proc.stderr
