"""experiments/generator_overhead.py: a smoke run writes its figures; bad input exits 2."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "generator_overhead.py"


def test_smoke_run_writes_both_sides_for_each_thread_count(tmp_path):
    out = tmp_path / "g.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "4", "--threshold-sizes", "4", "--rounds", "1",
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    assert [(r["study"], r["threads"], r["n"]) for r in doc["rows"]] == [
        ("decision", 1, 4), ("decision", 2, 4), ("threshold", 2, 4)]
    assert all(r["before_images_per_s"] > 0 and r["after_images_per_s"] > 0 for r in doc["rows"])
    assert "cpu_capability" in doc["machine"]


def test_bad_sizes_exit_2_with_one_line(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "0,x", "--out",
                          str(tmp_path / "g.json")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--sizes" in run.stderr
    assert not (tmp_path / "g.json").exists()
