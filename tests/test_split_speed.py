"""experiments/split_speed.py: a smoke run writes both timings and the figure; bad input exits 2
with one line and writes nothing."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "split_speed.py"


def run(tmp_path, *args, threads="2"):
    env = dict(os.environ, DENOISE_VIT_THREADS=threads)
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=env)


def test_smoke_run_writes_both_modes_and_the_figure(tmp_path):
    done = run(tmp_path, "--rounds", "1", "--steps", "1", "--presets", "course")
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "split_speed.json").read_text())
    res = doc["presets"]["course"]
    assert set(res["images_per_s"]) == {"one pass", "two halves"}
    assert all(len(v) == 1 and v[0] > 0 for v in res["images_per_s"].values())
    assert 0 < res["share_of_matmul"]["two halves"] < 1 and doc["threads"] == 2
    assert (tmp_path / "split_speed.png").stat().st_size > 0


def test_bad_input_exits_2_with_one_line(tmp_path):
    for args, words in ((["--rounds", "0"], "--rounds"), (["--presets", "nope"], "nope")):
        done = run(tmp_path, *args)
        assert done.returncode == 2 and words in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_one_thread_is_refused(tmp_path):
    done = run(tmp_path, "--rounds", "1", threads="1")
    assert done.returncode == 2 and "two halves need two" in done.stderr
    assert not list(tmp_path.iterdir())
