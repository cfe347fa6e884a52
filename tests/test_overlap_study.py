"""experiments/overlap_study.py: a small run covers every (tile, overlap) with overlap < tile and
draws its figure; older runs without a tile field still render; bad input exits 2."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "overlap_study.py"


def run(*args, timeout=300):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_small_run_measures_each_tile_and_overlap(tmp_path, trained_checkpoint):
    done = run("--checkpoint", str(trained_checkpoint), "--images", "1", "--size", "96",
               "--tiles", "32,64", "--overlaps", "8,0,40", "--repeats", "1",
               "--out-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "overlap.json").read_text())
    # overlap 40 is not smaller than a 32 tile: left out there, kept for 64
    assert [(r["tile"], r["overlap"]) for r in doc["rows"]] == [
        (32, 8), (32, 0), (64, 8), (64, 0), (64, 40)]
    assert all(r["seconds"] > 0 and 5 < r["psnr_db"] < 60 for r in doc["rows"])
    assert (tmp_path / "overlap.png").stat().st_size > 0


def test_an_older_run_without_tiles_renders(tmp_path):
    doc = {"date": "2026-12-04 13:56", "machine": {"cpu": "x"}, "images": 1, "size": 64,
           "rows": [{"overlap": 16, "psnr_db": 30.0, "seconds_per_image": 0.5},
                    {"overlap": 0, "psnr_db": 27.0, "seconds_per_image": 0.3}]}
    (tmp_path / "overlap.json").write_text(json.dumps(doc))
    done = run("--render-only", "--out-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "overlap.png").stat().st_size > 0


def test_bad_tiles_exit_2_with_one_line(tmp_path, trained_checkpoint):
    for tiles in ("64,x", "7"):
        done = run("--checkpoint", str(trained_checkpoint), "--tiles", tiles,
                   "--out-dir", str(tmp_path))
        assert done.returncode == 2 and "tile" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "overlap.json").exists()
