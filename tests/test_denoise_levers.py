"""experiments/denoise_levers.py: a tiny run writes its report and figure."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_denoise_levers_writes_its_report(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "denoise_levers.py"),
                           "--repeats", "1", "--size", "96", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "denoise_levers.json").read_text())
    assert report["max_abs_difference"] < 1e-5   # concurrent calls: the same result (to the
    # last bit, which one torch thread may round differently from two)
    for side in ("freeze", "nofreeze"):
        assert report["command"][side]["work"]["median"] > 0
        assert report["command"][side]["exit"]["median"] > 0
    assert (tmp_path / "denoise_levers.png").stat().st_size > 10000
    assert "same bits:" in proc.stdout
