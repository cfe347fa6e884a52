"""experiments/speed_report.py: one command, every part on both trees, one report."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "speed_report.py"

pytestmark = pytest.mark.slow


def test_a_part_runs_on_both_trees_and_the_report_shows_them_side_by_side(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--parts", "generator",
                           "--before", "HEAD", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "speed.json").read_text())
    part = report["parts"][0]
    assert part["name"] == "generator" and report["matmul_gflops"] > 0
    for side in ("before", "after"):
        figures = part[side]["result"]["figures"]
        assert figures["images_per_s_1t"] > 0 and figures["loop_images_per_s_1t"] > 0
        assert "other_processes_cpu_share" in part[side]["load"]
    text = (tmp_path / "SPEED.md").read_text()
    assert "| figure | before | after | after / before |" in text
    assert "| `speedup_1t` |" in text and "unmeasured" in text
    # measured as the commands run it and with glibc's defaults, both said
    after = part["after"]["result"]
    assert after["figures"]["speedup_system_1t"] > 0 and "malloc: kept" in after["notes"]
    assert "| 1 | kept |" in text and "| 1 | system |" in text


def test_an_unknown_part_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--parts", "inference,gpu_magic",
                           "--out-dir", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "speed_report: unknown part(s) gpu_magic; choose from inference, training, load, generator"]
    assert not (tmp_path / "SPEED.md").exists()
