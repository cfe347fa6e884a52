"""The benchmark's one-run protocol (issue 11): a constant-rate trunk with a cooldown branch per
budget on both axes, networks side by side in worker processes, finished runs read back by
--resume, and the slowest networks capped by --max-budget."""
import json

import pytest
import torch

from denoise_vit import ConfigError
from denoise_vit.benchmark import cooldown
from denoise_vit.benchmark.cooldown import Mark, train_with_cooldowns
from denoise_vit.benchmark.report import render_markdown
from denoise_vit.benchmark.runner import BenchmarkOptions, run_benchmark
from denoise_vit.training.config import load_config
from denoise_vit.training.data import make_eval_data
from denoise_vit.training.setup import build_run_model, make_optimizer

TINY = """
name = "{name}"
batch_size = 4
warmup_steps = 1
min_lr_ratio = 0.1
[model]
name = "unet_denoiser"
base_channels = {channels}
levels = 2
"""


def tiny_config(tmp_path, name="tiny", channels=4):
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(name=name, channels=channels))
    return path


def eval_set(cfg, n=2):
    cfg.data.eval_size = n
    return make_eval_data(cfg.data)


def test_each_mark_scores_a_cooled_copy_and_the_trunk_is_untouched(tmp_path):
    cfg = load_config(str(tiny_config(tmp_path)), [])
    inputs, targets = eval_set(cfg)
    rates = []

    def run(marks):
        torch.manual_seed(0)
        model = build_run_model(cfg, torch.device("cpu"))
        optimizer = make_optimizer(cfg, model)
        points, left = train_with_cooldowns(cfg, marks, inputs, targets, model=model,
                                            optimizer=optimizer, stop_unit="images",
                                            log=lambda msg: None)
        return points, left, model

    # images marks only: a deterministic unit. 40 images = 10 steps, forks at 32 images.
    points, left, model = run([Mark("images", 40), Mark("images", 20)])
    assert left == []
    assert [p["budget_images"] for p in points] == [20, 40]
    for p in points:
        assert p["images"] >= p["budget_images"] and p["cooldown_steps"] >= 1
        assert p["lr"] == pytest.approx(cfg.lr * cfg.min_lr_ratio)   # decayed to the floor
    # the largest mark's cooled weights are the ones the model holds at the end
    alone, _, model_alone = run([Mark("images", 40)])
    assert alone[0]["psnr"] == pytest.approx(points[1]["psnr"], abs=1e-6)
    for a, b in zip(model.state_dict().values(), model_alone.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("share, trunk, branch_start", [
    # the config's 50 steps: the trunk is still warming up at its fork (8 steps, 32 images)
    (None, [i / 50 for i in range(1, 9)], 9 / 50),
    # within 20 % of the smallest mark (40 images: 8 images, 2 steps of 4), then the full rate
    (0.2, [1 / 50, 0.5, 1, 1, 1, 1, 1, 1], 1.0),
])
def test_the_warm_up_ends_within_its_share_of_the_smallest_mark(tmp_path, monkeypatch, share,
                                                                  trunk, branch_start):
    cfg = load_config(str(tiny_config(tmp_path)), ["warmup_steps=50"])
    inputs, targets = eval_set(cfg)
    model = build_run_model(cfg, torch.device("cpu"))
    optimizer = make_optimizer(cfg, model)
    seen, step = [], cooldown._one_step

    def record(model, stream, optimizer, scheduler, *rest):
        seen.append((scheduler, optimizer.param_groups[0]["lr"] / cfg.lr))
        return step(model, stream, optimizer, scheduler, *rest)

    monkeypatch.setattr(cooldown, "_one_step", record)
    train_with_cooldowns(cfg, [Mark("images", 40), Mark("images", 80)], inputs, targets,
                         model=model, optimizer=optimizer, stop_unit="images",
                         warmup_share=share, log=lambda msg: None)
    trunk_factor = seen[0][0]
    rates = [f for s, f in seen if s is trunk_factor]
    branch = [f for s, f in seen if s is not trunk_factor]
    assert rates[:8] == pytest.approx(trunk)
    assert branch[0] == pytest.approx(branch_start)   # the branch starts where the trunk is


def test_marks_of_another_unit_not_reached_are_left_out(tmp_path):
    cfg = load_config(str(tiny_config(tmp_path)), [])
    inputs, targets = eval_set(cfg)
    model = build_run_model(cfg, torch.device("cpu"))
    points, left = train_with_cooldowns(
        cfg, [Mark("cpu", 0.05), Mark("images", 4), Mark("images", 10 ** 9)], inputs, targets,
        model=model, optimizer=make_optimizer(cfg, model), stop_unit="cpu", log=lambda m: None)
    assert sorted(p["unit"] for p in points) == ["cpu", "images"]
    assert left == [Mark("images", 10 ** 9)]
    assert next(p for p in points if p["unit"] == "cpu")["cpu_seconds"] >= 0.05


def test_jobs_resume_and_caps(tmp_path):
    a, b = tiny_config(tmp_path, "tiny_a", 4), tiny_config(tmp_path, "tiny_b", 2)
    # budgets of 0.3 and 0.6 CPU s: two steps of batch 4 (8 images) fit even on a slow, busy
    # machine (0.12 s did not, in CI beside a benchmark on an AVX2 CPU)
    opts = BenchmarkOptions(configs=(str(a), str(b)), budgets_min=(0.005, 0.01), methods=(),
                            eval_size=2, val_size=2, workers=1, runs_dir=str(tmp_path / "runs"),
                            figure_samples=1, matmul_seconds=0.05, idle_wait=0, clock="cpu",
                            images=(8, 10 ** 9), cooldown=True, jobs=2,
                            max_budget=((str(b), 0.005),))
    first = run_benchmark(opts, log=lambda msg: None)
    recs = {r["name"]: r for r in first["methods"]}
    assert [p["budget_s"] for p in recs["tiny_a"]["curve"]] == [0.3, 0.6]
    assert [p["budget_s"] for p in recs["tiny_b"]["curve"]] == [0.3]       # capped
    assert recs["tiny_a"]["images_left_out"] == [10 ** 9]
    assert first["jobs"] == 2 and first["threads_per_job"] >= 1
    saved = json.loads((tmp_path / "runs" / "tiny_a-seed0.json").read_text())
    assert saved["record"]["psnr"] == recs["tiny_a"]["psnr"]
    text = render_markdown(first)
    assert "– (stops at 0.005 min)" in text and "not reached" in text

    lines = []
    again = run_benchmark(BenchmarkOptions(**{**opts.__dict__, "resume": True}), log=lines.append)
    assert sum("read back" in line for line in lines) == 2
    assert [r["psnr"] for r in again["methods"]] == [r["psnr"] for r in first["methods"]]
    assert first["read_back"] == [] and "read back by `--resume`" not in text
    assert [(r["name"], r["seed"]) for r in again["read_back"]] == [("tiny_a", 0), ("tiny_b", 0)]
    assert all("read_back" not in r for r in again["methods"])
    assert "2 of the network runs were read back by `--resume`" in render_markdown(again)
    # another option, another key: trained again
    lines.clear()
    run_benchmark(BenchmarkOptions(**{**opts.__dict__, "resume": True, "images": (8,)}),
                  log=lines.append)
    assert not any("read back" in line for line in lines)


@pytest.mark.parametrize("kwargs, message", [
    (dict(cooldown=True, separate_runs=True), "choose one"),
    (dict(jobs=0), "--jobs must be at least 1"),
    (dict(warmup_share=1.0), "--warmup-share must be a share"),
    (dict(warmup_share=-0.1), "--warmup-share must be a share"),
    (dict(max_budget="vit_fast=x"), "--max-budget takes NAME=MINUTES"),
    (dict(max_budget="nope=1"), "'nope', which is not in --configs"),
    (dict(configs="vit_fast", max_budget="vit_fast=0.5"), "at least the smallest budget"),
])
def test_bad_options_are_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        BenchmarkOptions.from_cli(budgets="1", **kwargs)
