"""experiments/warmup_share.py: without the runs it exits 2 with one line and writes nothing;
from two arms' records it writes the table (one row per network and budget, the change between
the arms) and a reading whose figures come from the records."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "warmup_share.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120)


def record(name, lr, points):
    """A benchmark record: points = [(minutes, steps, psnr, other load)]."""
    return {"name": name, "kind": "network", "library": "denoise-vit 0.1.0", "lr": lr,
            "warmup_steps": 50,
            "curve": [{"budget_s": 60.0 * m, "steps": steps, "psnr": psnr, "foreign_cpu": load}
                      for m, steps, psnr, load in points]}


def write_arm(folder, records):
    folder.mkdir(parents=True)
    (folder / "benchmarks.json").write_text(json.dumps({
        "date": "2026-12-07 21:02",
        "machine": {"cpu": "test CPU", "cores": 2, "torch_threads": 1, "gpu": None,
                    "python": "3.11", "torch": "2.14.1"},
        "methods": records}))


def test_without_runs_it_exits_2_with_one_line(tmp_path):
    result = run("--dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "steps/benchmarks.json" in result.stderr
    assert not (tmp_path / "WARMUP.md").exists()


def test_the_report_takes_its_figures_from_both_arms(tmp_path):
    # a slow network all warm-up at 1 min (20 steps) and a fast one out of it (100 steps)
    write_arm(tmp_path / "steps", [record("slow", 1e-3, [(1, 20, 20.0, 0.5), (4, 80, 25.0, 0.5)]),
                                   record("fast", 3e-2, [(1, 100, 33.0, 0.5), (4, 400, 38.0, 0.5)])])
    write_arm(tmp_path / "share", [record("slow", 1e-3, [(1, 20, 22.5, 0.5), (4, 80, 26.0, 0.5)]),
                                   record("fast", 3e-2, [(1, 100, 31.0, 0.5), (4, 400, 37.0, 0.5)])])
    result = run("--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "WARMUP.md").read_text()
    assert "| slow | denoise-vit 0.1.0 | 0.001 / 0.001 | 1 min | 20 / 20 | all | 20.00 | 22.50 | +2.50 |" in text
    assert "| fast | denoise-vit 0.1.0 | 0.03 / 0.03 | 4 min | 400 / 400 | 12% | 38.00 | 37.00 | -1.00 |" in text
    assert "filled the whole 1-min budget (slow)" in text
    assert "do better with the longer ramp" in text          # fast is lower at 4 min
    assert "swept" not in text.split("## What it shows")[1]  # no swept pair: no such reading
    assert (tmp_path / "warmup.png").stat().st_size > 0
