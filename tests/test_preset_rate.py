"""experiments/variants/preset_rate.py (round 19) and experiments/quick_report.py: bad input
exits 2 with one line and writes nothing; --collect-only reads finished runs into the json."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RATE = ROOT / "experiments" / "variants" / "preset_rate.py"
QUICK = ROOT / "experiments" / "quick_report.py"


def run(script, *args):
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=120)


def test_bad_rates_or_seeds_exit_2_with_one_line(tmp_path):
    out = tmp_path / "rate.json"
    for args, words in ((["--rates", "0.01,x"], "--rates must be numbers"),
                        (["--rates", "0.01,-1"], "every rate positive"),
                        (["--seeds", "0"], "--seeds must be at least 1"),
                        (["--set", "lr"], "--set takes KEY=VALUE"),
                        (["--set", "model.zero_init_out=true"], "--set needs --tag"),
                        (["--set", "lr=1", "--tag", "a/b"], "--tag must be letters")):
        done = run(RATE, *args, "--out", str(out), "--runs-dir", str(tmp_path / "runs"))
        assert done.returncode == 2 and words in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_collect_only_reads_the_last_row_of_each_finished_run(tmp_path):
    runs = tmp_path / "runs"
    for name, psnr in (("vit_fast_lr0.01_s0", 30.5), ("vit_fast_lr0.03_s0", 31.25)):
        (runs / name).mkdir(parents=True)
        (runs / name / "metrics.csv").write_text(
            "epoch,step,train_loss,eval_psnr,eval_ssim,images_per_s,train_seconds\n"
            f"1,10,0.1,20.0,0.5,100,5\n2,20,0.05,{psnr},0.9,100,9.5\n")
    out = tmp_path / "rate.json"
    done = run(RATE, "--collect-only", "--seeds", "2", "--runs-dir", str(runs), "--out", str(out))
    assert done.returncode == 0, done.stderr
    got = json.loads(out.read_text())["runs"]
    assert set(got) == {"vit_fast_lr0.01_s0", "vit_fast_lr0.03_s0"}     # seed 1: not run
    assert got["vit_fast_lr0.03_s0"] == {
        "preset": "vit_fast", "seed": 0, "lr": 0.03, "psnr": 31.25, "steps": 20,
        "train_seconds": 9.5, "loadavg_before": None, "other_processes_cpu_share": None,
        "command": None}                          # collected, not trained: which run is unknown


def test_a_second_invocation_keeps_the_first_ones_command(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "rate.json"
    (runs / "vit_fast_lr0.01_s0").mkdir(parents=True)
    (runs / "vit_fast_lr0.01_s0" / "metrics.csv").write_text(
        "epoch,step,train_loss,eval_psnr,eval_ssim,images_per_s,train_seconds\n"
        "1,10,0.1,30.0,0.9,100,5\n")
    out.write_text(json.dumps({"runs": {}, "command": "an older invocation"}))
    for rates in ("0.01", "0.03", "0.01"):
        done = run(RATE, "--collect-only", "--rates", rates, "--seeds", "1",
                   "--runs-dir", str(runs), "--out", str(out))
        assert done.returncode == 0, done.stderr
    got = json.loads(out.read_text())
    assert "command" not in got and len(got["commands"]) == 3
    assert got["commands"][0] == "an older invocation"
    assert "--rates 0.01" in got["commands"][1] and "--rates 0.03" in got["commands"][2]


def test_quick_report_into_a_used_run_folder_exits_2_and_keeps_it(tmp_path):
    used = tmp_path / "vit_fast"
    used.mkdir()
    (used / "metrics.csv").write_text("epoch,step\n1,10\n")
    done = run(QUICK, "--out-dir", str(tmp_path), "--docs", str(tmp_path / "docs"))
    assert done.returncode == 2 and "already holds a run" in done.stderr
    assert "--out-dir" in done.stderr and "--resume" not in done.stderr   # options it has
    assert len(done.stderr.strip().splitlines()) == 1
    assert (used / "metrics.csv").read_text() == "epoch,step\n1,10\n"
    assert not (tmp_path / "docs").exists()


def test_set_and_tag_name_the_runs_and_record_the_overrides(tmp_path):
    runs = tmp_path / "runs"
    (runs / "vit_unet_new_lr0.01_s0").mkdir(parents=True)
    (runs / "vit_unet_new_lr0.01_s0" / "metrics.csv").write_text(
        "epoch,step,train_loss,eval_psnr,eval_ssim,images_per_s,train_seconds\n"
        "1,10,0.1,33.5,0.9,100,5\n")
    out = tmp_path / "rate.json"
    done = run(RATE, "--collect-only", "--preset", "vit_unet", "--rates", "0.01", "--seeds", "1",
               "--set", "model.zero_init_out=true", "--tag", "new", "--runs-dir", str(runs),
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    got = json.loads(out.read_text())["runs"]
    assert list(got) == ["vit_unet_new_lr0.01_s0"]
    assert got["vit_unet_new_lr0.01_s0"]["overrides"] == ["model.zero_init_out=true"]
    assert got["vit_unet_new_lr0.01_s0"]["psnr"] == 33.5
