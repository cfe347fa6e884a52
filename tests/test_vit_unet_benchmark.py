"""experiments/vit_unet_benchmark.py: the summary pairs seeds, merges the U-Net's one-seed runs
at 1e-2 into one column, and a missing report or network exits 2 with one line."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "vit_unet_benchmark.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120)


def record(name, lr, cpu, images):
    """A benchmark network record: cpu {minutes: [psnr per seed]}, images {n: [...]}."""
    def point(values, **budget):
        return {"psnr": sum(values) / len(values), **budget,
                **({"psnr_seeds": values} if len(values) > 1 else {})}
    return {"name": name, "kind": "network", "lr": lr,
            "curve": [point(v, budget_s=m * 60.0) for m, v in cpu.items()],
            "curve_images": [point(v, budget_images=n) for n, v in images.items()]}


def write(path, *records):
    path.mkdir(parents=True, exist_ok=True)
    (path / "benchmarks.json").write_text(json.dumps(
        {"machine": {"cpu": "Test CPU", "cores": 2, "torch_threads": 2, "gpu": None,
                     "python": "3.11", "torch": "2.14"}, "date": "2026-12-07 12:42",
         "methods": [{"name": "noisy input", "kind": "input"}, *records]}))


def test_summary_pairs_seeds_and_merges_the_unet_at_1e2(tmp_path):
    write(tmp_path,
          record("vit_unet", 0.01, {1: [33.0, 34.0], 4: [38.0, 38.5]}, {25000: [37.5, 38.0]}),
          record("vit_unet_no_attention", 0.01, {1: [33.5, 33.0], 4: [38.25, 38.0]},
                 {25000: [37.0, 38.5]}),
          record("unet", 0.003, {1: [32.0, 33.0], 4: [37.0, 37.5]}, {25000: [37.0, 37.0]}))
    write(tmp_path / "unet-lr1e-2-seed0", record("x_unet", 0.01, {1: [32.5], 4: [39.0]}, {}))
    write(tmp_path / "unet-lr1e-2-seed1", record("x_unet", 0.01, {1: [33.5], 4: [39.5]}, {}))
    done = run("--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "SUMMARY.md").read_text()
    assert (tmp_path / "summary.png").stat().st_size > 1000
    assert "U-Net at 1e-2 0.01" in text and "U-Net (sweep's rate) 0.003" in text
    # 4 min: vit_unet 38.25 (38.00 / 38.50), the U-Net at 1e-2 39.25 (39.00 / 39.50)
    assert "| 4 CPU min | 38.25 (38.00 / 38.50) | 38.12 (38.25 / 38.00) | 37.25 (37.00 / 37.50) " \
           "| 39.25 (39.00 / 39.50) |" in text
    # gaps paired by seed: against the sweep's U-Net +1.00 / +1.00, against 1e-2 -1.00 / -1.00,
    # attention -0.25 / +0.50
    assert "| 4 CPU min | +1.00 (+1.00 / +1.00) | -1.00 (-1.00 / -1.00) | +0.12 (-0.25 / +0.50) |" in text
    # the U-Net at 1e-2 has no image points: its column says so, its gap is a dash
    assert "| 25,000 images | 37.75 (37.50 / 38.00) | 37.75 (37.00 / 38.50) | 37.00 (37.00 / 37.00) " \
           "| not reached |" in text
    assert "| 25,000 images | +0.75 (+0.50 / +1.00) | – | +0.00 (+0.50 / -0.50) |" in text
    assert "- vit_unet against the U-Net (sweep's rate) (means): at least as high at all 3 budgets both reached." in text
    assert "- vit_unet against the U-Net at 1e-2 (means): **behind** at 4 CPU min (1 of the 2 budgets both reached)." in text
    assert "item 4): **at no budget**." in text


def test_missing_report_or_network_exits_2_with_one_line(tmp_path):
    done = run("--dir", str(tmp_path))
    assert done.returncode == 2 and "no " in done.stderr and "benchmarks.json" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    write(tmp_path, record("vit_unet", 0.01, {1: [33.0]}, {}))
    done = run("--dir", str(tmp_path))
    assert done.returncode == 2 and "has no vit_unet_no_attention, unet" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "SUMMARY.md").exists()
