"""experiments/sweep_check.py: its sweep settings are checked before any work (one line, exit 2),
and the table shows every rate tried, with the steps each run made and the rate chosen."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "sweep_check.py"
sys.path.insert(0, str(ROOT / "experiments"))

import sweep_check  # noqa: E402


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--sweeps", "later:1"], "--sweeps takes before:MIN or now:MIN"),
    (["--sweeps", "now:0"], "--sweeps takes before:MIN or now:MIN"),
    (["--rates", "0.01,x"], "--rates must be numbers"),
    (["--configs", "no_such_preset"], "no_such_preset"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = run(*args, "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not out.exists()


def test_the_table_shows_each_rate_with_its_steps_and_the_choice():
    results = {"command": "python experiments/sweep_check.py", "date": "2026-12-07 15:05",
               "wall_minutes": 20.0, "rates_shown": ["0.003", "0.01", "0.03"],
               "machine": {"cpu": "Test CPU", "cores": 2, "cpu_capability": "AVX512",
                           "torch": "2.14", "load_average_at_start": [0.4, 0.5, 0.7]},
               "sweeps": [{"config": "unet", "sweep": "before", "minutes": 0.5,
                           "validation_psnr": {"0.003": 29.9, "0.01": 27.7},
                           "steps": {"0.003": 52, "0.01": 51}, "chosen": 0.003},
                          {"config": "unet", "sweep": "now", "minutes": 0.5,
                           "validation_psnr": {"0.003": 30.1, "0.01": 31.2, "0.03": 30.5},
                           "steps": {"0.003": 52, "0.01": 50, "0.03": 51}, "chosen": 0.01}]}
    text = sweep_check.render(results)
    assert "| unet | before, 0.5 min | 29.90 (52 st) | 27.70 (51 st) | – | 0.003 |" in text
    assert "| unet | now, 0.5 min | 30.10 (52 st) | 31.20 (50 st) | 30.50 (51 st) | 0.01 |" in text
    assert "load average 0.40 at the start" in text


def test_sweep_settings_parse_in_order():
    assert sweep_check.parse_sweeps("before:0.5, now:1") == [("before", 0.5), ("now", 1.0)]
