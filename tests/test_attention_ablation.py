"""experiments/attention_ablation.py: the report names the best attention arm and judges the
goal on it against MLP-only blocks, renders reports of earlier versions, a tiny run writes its
report, --resume adds seeds to a saved report, gaps are paired by seed with a 95 % interval, and
bad input exits 2 with one line."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "attention_ablation.py"
sys.path.insert(0, str(ROOT / "experiments"))
import attention_ablation as ablation  # noqa: E402

MACHINE = {"cpu": "test CPU", "cores": 2, "torch": "2.x"}


def report_of(psnrs):
    """A report whose runs have the given {preset: [psnr per seed]}."""
    runs = [{"preset": pr, "seed": s, "psnr": v, "steps": 100, "train_cpu_seconds": 240,
             "wall_seconds": 140, "loadavg_before": 0.1, "other_processes_cpu_share": 0.01}
            for pr, vals in psnrs.items() for s, v in enumerate(vals)]
    return {"command": "test", "machine": MACHINE, "cpu_seconds": 240, "runs": runs,
            "means": {pr: sum(v) / len(v) for pr, v in psnrs.items()},
            "params": {pr: 1000 for pr in psnrs}, "lr": 0.01, "warmup_steps": 50,
            "optimizer": "adamw", "weight_decay": 0.05, "wall_s": 600}


def test_the_goal_is_judged_on_the_best_attention_arm_against_mlp_only_blocks():
    report = report_of({"vit_fast": [33.0, 33.2], "vit_fast_local": [34.6, 34.4],
                        "vit_fast_no_attention": [33.5, 33.3], "vit_fast_no_blocks": [36.0, 36.0]})
    text = ablation.render(report)
    assert "Attention in vit_fast adds -0.30 dB" in text
    assert "Attention in vit_fast_local adds +1.10 dB" in text
    assert "Best here: vit_fast_local, +1.10 dB: met" in text
    assert "The transformer blocks of vit_fast_local add -1.50 dB" in text
    report["runs"] = [r for r in report["runs"] if r["preset"] != "vit_fast_local"]
    del report["means"]["vit_fast_local"]
    text = ablation.render(report)
    assert "Best here: vit_fast, -0.30 dB: **not met**" in text and "vit_fast_local" not in text


def test_a_report_of_the_two_arm_version_still_renders():
    text = ablation.render(report_of({"vit_fast": [33.0], "vit_fast_no_attention": [32.5]}))
    assert "Attention in vit_fast adds +0.50 dB" in text and "transformer blocks of" not in text


def test_gaps_are_paired_by_seed_with_a_student_t_interval():
    report = report_of({"vit_fast": [34.0, 36.0, 30.0], "vit_fast_no_attention": [33.0, 33.0]})
    gap = ablation.gaps(report["runs"], ["vit_fast", "vit_fast_no_attention"])["vit_fast"][
        "vit_fast_no_attention"]
    # seed 2 ran for one arm only: the gap is over seeds 0 and 1 (+1, +3), not 33.33 - 33.0
    assert gap["per_seed"] == {0: 1.0, 1: 3.0} and gap["gap_db"] == 2.0
    lo, hi = gap["interval"]          # mean 2, standard error 1, t(1 dof) = 12.706
    assert abs(lo - (2 - 12.706)) < 1e-9 and abs(hi - (2 + 12.706)) < 1e-9
    text = ablation.render(report)
    assert "Arms ran different numbers of seeds: vit_fast 3, vit_fast_no_attention 2" in text
    assert "mean over seeds: 35.00 vs 33.00 dB" in text
    assert "contains 1 dB: these seeds do not settle the goal either way" in text
    settled = report_of({"vit_fast": [33.0, 33.1, 33.2], "vit_fast_no_attention": [33.0] * 3})
    assert "lies below 1 dB: more seeds would not meet the goal" in ablation.render(settled)
    assert ablation.paired_interval({0: 1.0}) is None


def run(tmp_path, *args):
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--out-dir", str(tmp_path / "docs"),
                           "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_a_tiny_run_writes_its_report(tmp_path):
    done = run(tmp_path, "--quick", "--cpu-minutes", "0.02", "--seeds", "1",
               "--presets", "vit_fast_local,vit_fast_no_attention")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "docs" / "attention_ablation.json").read_text())
    assert {r["preset"] for r in report["runs"]} == {"vit_fast_local", "vit_fast_no_attention"}
    assert set(report["gaps"]) == {"vit_fast_local"}
    assert (tmp_path / "docs" / "attention" / "psnr.png").stat().st_size > 0
    assert "Attention in vit_fast_local adds" in (tmp_path / "docs" / "ATTENTION.md").read_text()
    # the equal-images axis: one epoch of ceil(24 / 8) steps each, its own json, a second section
    done = run(tmp_path, "--quick", "--images", "24", "--seeds", "1",
               "--presets", "vit_fast,vit_fast_no_attention")
    assert done.returncode == 0, done.stderr
    by_images = json.loads((tmp_path / "docs" / "attention_ablation_images_24.json").read_text())
    assert by_images["images"] == 24 and {r["steps"] for r in by_images["runs"]} == {3}
    assert json.loads((tmp_path / "docs" / "attention_ablation.json").read_text()) == report
    text = (tmp_path / "docs" / "ATTENTION.md").read_text()
    assert text.index("Attention in vit_fast_local adds") < text.index("## At equal training images: 24") \
        < text.index("Attention in vit_fast adds") and "24 training images each" in text
    assert (tmp_path / "docs" / "attention" / "psnr_images_24.png").stat().st_size > 0
    # a second image count: its own json and section, after the fewer images' one
    done = run(tmp_path, "--quick", "--images", "32", "--seeds", "1",
               "--presets", "vit_fast,vit_fast_no_attention")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "docs" / "attention_ablation_images_24.json").read_text()) \
        == by_images
    text = (tmp_path / "docs" / "ATTENTION.md").read_text()
    assert text.index("## At equal training images: 24") \
        < text.index("## At equal training images: 32")


def test_resume_adds_seeds_and_keeps_the_saved_runs(tmp_path):
    args = ["--quick", "--cpu-minutes", "0.02", "--presets", "vit_fast,vit_fast_no_attention"]
    assert run(tmp_path, *args, "--seeds", "1").returncode == 0
    path = tmp_path / "docs" / "attention_ablation.json"
    first = json.loads(path.read_text())
    done = run(tmp_path, *args, "--seeds", "2", "--resume")
    assert done.returncode == 0, done.stderr
    report = json.loads(path.read_text())
    assert report["runs"][:2] == first["runs"]        # kept as they were, not trained again
    assert sorted((r["preset"], r["seed"]) for r in report["runs"][2:]) == [
        ("vit_fast", 1), ("vit_fast_no_attention", 1)]
    assert report["earlier_commands"] == [first["command"]]
    # other --set overrides: the runs would not compare either
    done = run(tmp_path, *args, "--seeds", "3", "--resume", "--set", "model.zero_init_out=true")
    assert done.returncode == 2 and "was trained with --set []" in done.stderr
    assert "keeping the runs of" in (tmp_path / "docs" / "ATTENTION.md").read_text()
    # a preset whose rate changed since: the saved runs trained at another rate
    path.write_text(json.dumps({**report, "lr": 0.5}))
    done = run(tmp_path, *args, "--seeds", "3", "--resume")
    assert done.returncode == 2 and "was trained with lr = 0.5" in done.stderr
    assert json.loads(path.read_text())["lr"] == 0.5      # the saved report left as it was
    path.write_text(json.dumps(report))
    # another budget: its runs would not compare with the saved ones
    done = run(tmp_path, "--quick", "--cpu-minutes", "0.03", "--seeds", "2", "--resume")
    assert done.returncode == 2 and "--resume" in done.stderr and "1.2 CPU s" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert json.loads(path.read_text()) == report


def test_bad_input_exits_2_with_one_line(tmp_path):
    for args, words in ((["--presets", "vit_fast,unet"], "--presets takes some of"),
                        (["--seeds", "0"], "--seeds must be at least 1"),
                        (["--images", "0"], "--images must be at least 1"),
                        (["--set", "model.nope=1"], "--set: unknown model.vit_denoiser key"),
                        (["--render-only"], "no ")):
        done = run(tmp_path, *args)
        assert done.returncode == 2 and words in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_set_overrides_reach_every_arm_and_the_report(tmp_path):
    done = run(tmp_path, "--quick", "--cpu-minutes", "0.02", "--seeds", "1",
               "--presets", "vit_fast,vit_fast_no_attention", "--set", "model.zero_init_out=true")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "docs" / "attention_ablation.json").read_text())
    assert report["settings"] == ["model.zero_init_out=true"]
    assert all("model.zero_init_out=true" in r["overrides"] for r in report["runs"])
    config = json.loads((tmp_path / "runs" / "vit_fast-s0" / "config.json").read_text())
    assert config["model"]["zero_init_out"] is True
    assert "every arm with `model.zero_init_out=true`" in \
        (tmp_path / "docs" / "ATTENTION.md").read_text()
