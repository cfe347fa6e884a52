"""The benchmark's protocol (issue 11): CPU-time budgets, equal training images, a learning-rate
sweep on the validation set, each record naming its library, absent peers skipped."""
import time

import pytest

from denoise_vit import ConfigError
from denoise_vit.benchmark.report import render_markdown
from denoise_vit.benchmark.runner import (BenchmarkOptions, close_networks, divergence,
                                          merge_seeds, run_benchmark)
from denoise_vit.models import peers
from denoise_vit.training.schedule import CpuClock, TrainClock

TINY_UNET = """
name = "tiny_unet"
batch_size = 4
warmup_steps = 1
[model]
name = "unet_denoiser"
base_channels = 4
levels = 2
"""


def test_cpu_clock_counts_work_not_waiting():
    cpu, wall = CpuClock(), TrainClock()
    cpu.start()
    wall.start()
    time.sleep(0.2)
    cpu.stop()
    wall.stop()
    assert wall.seconds >= 0.2 and cpu.seconds < 0.1
    cpu.start()
    end = time.perf_counter() + 0.1
    while time.perf_counter() < end:
        pass
    cpu.stop()
    assert cpu.seconds >= 0.05


@pytest.fixture(scope="module")
def protocol_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("protocol")
    (tmp / "tiny_unet.toml").write_text(TINY_UNET)
    opts = BenchmarkOptions(configs=(str(tmp / "tiny_unet.toml"),), budgets_min=(0.004,),
                            methods=("median",), eval_size=4, val_size=2, workers=1,
                            runs_dir=str(tmp / "runs"), figure_samples=2, matmul_seconds=0.1,
                            idle_wait=0, clock="cpu", images=(16, 6), lr_rates=(1e-3, 3e-3),
                            sweep_min=0.002)
    return run_benchmark(opts, log=lambda msg: None), opts


def test_cpu_budgets_stop_on_process_cpu_time_and_record_both_clocks(protocol_run):
    results, _ = protocol_run
    assert results["budget_clock"] == "cpu"
    point = results["methods"][1]["curve"][0]
    assert point["unit"] == "cpu" and point["cpu_seconds"] >= point["budget_s"] == 0.24
    assert point["train_seconds"] > 0 and "foreign_cpu" in point


def test_equal_images_axis_stops_at_the_first_batch_past_each_count(protocol_run):
    results, _ = protocol_run
    unet = results["methods"][1]
    assert results["budgets_images"] == [6, 16]
    assert [(p["budget_images"], p["images"], p["steps"]) for p in unet["curve_images"]] == \
        [(6, 8, 2), (16, 16, 4)]   # batches of 4
    assert all(p["cpu_seconds"] > 0 and p["psnr"] > 0 for p in unet["curve_images"])


def test_the_rate_comes_from_the_validation_sweep(protocol_run):
    results, _ = protocol_run
    unet = results["methods"][1]
    sweep = unet["lr_sweep"]
    tried = sorted(map(float, sweep["validation_psnr"]))
    assert {1e-3, 3e-3} <= set(tried) and len(tried) == 2 + len(sweep.get("added", []))
    assert len(sweep.get("added", [])) <= 2 * results["lr_sweep"]["extend"] == 4
    best = max(sweep["validation_psnr"], key=sweep["validation_psnr"].get)
    assert sweep["chosen"] == unet["lr"] == float(best)
    # the sweep stops extending once its best rate is inside the tried range, or at its limit
    assert tried[0] < sweep["chosen"] < tried[-1] or len(sweep.get("added", [])) == 2
    assert results["lr_sweep"]["validation_seed"] != results["eval_set"]["seed"]
    assert sweep["warmup_share"] == results["lr_sweep"]["warmup_share"] == 0.2
    assert "its warm-up ended within the first 20% of it" in render_markdown(results)


def test_the_sweep_s_runs_end_their_warm_up_within_a_share_of_the_budget(monkeypatch):
    """The runs a sweep scores reach the rate they score: a slow network's 50 warm-up steps
    may be more than a 30-s run makes (before 2026-12-07 the U-Net's sweep was all warm-up)."""
    from denoise_vit.benchmark import runner
    from denoise_vit.training.config import TrainConfig
    seen = []

    def fake_marks(cfg, budgets, *args, warmup_share=None, cosine_to=None, **kwargs):
        seen.append((warmup_share, cosine_to))
        return None, [{"psnr": 20.0}]

    monkeypatch.setattr(runner, "train_with_marks", fake_marks)
    monkeypatch.setattr(runner, "validation_set", lambda n: (None, None))
    runner.sweep_learning_rate(TrainConfig(name="t"), (1e-3, 3e-3), 30, log=lambda msg: None)
    assert seen == [(runner.SWEEP_WARMUP, 30)] * 2
    seen.clear()
    runner.sweep_learning_rate(TrainConfig(name="t"), (1e-3,), 30, warmup_share=None,
                               log=lambda msg: None)
    assert seen == [(None, 30)]


def test_a_sweep_run_on_the_images_axis_trains_at_its_rate_after_a_share_of_it(monkeypatch,
                                                                              tmp_path):
    from denoise_vit.benchmark import runner
    from denoise_vit.training.config import load_config
    import torch
    rates = []
    real = runner.train_steps

    def spy(model, stream, optimizer, scheduler, **kwargs):
        rates.append(optimizer.param_groups[0]["lr"])
        return real(model, stream, optimizer, scheduler, **kwargs)

    monkeypatch.setattr(runner, "train_steps", spy)
    (tmp_path / "tiny_unet.toml").write_text(TINY_UNET)
    cfg = load_config(str(tmp_path / "tiny_unet.toml"),
                      ["batch_size=2", "warmup_steps=50", "data.size=16"])
    x = torch.rand(2, 1, 16, 16)
    runner.train_with_marks(cfg, [20], x, x, unit="images", cosine_to=20, warmup_share=0.2,
                            idle_wait=0, log=lambda msg: None)
    # 10 steps of 2 images: warm-up over after 2 steps (20 %), not 50; then the cosine
    assert len(rates) == 10 and rates[2] == pytest.approx(cfg.lr) and rates[1] < cfg.lr
    assert rates[-1] < rates[5] < cfg.lr

    # a constant run: the warm-up ends within the share of its first mark, then the full rate
    rates.clear()
    runner.train_with_marks(cfg, [20, 40], x, x, unit="images", warmup_share=0.2, idle_wait=0,
                            log=lambda msg: None)
    assert len(rates) == 20 and rates[1] < cfg.lr and rates[2:] == pytest.approx([cfg.lr] * 18)
    rates.clear()   # without it the config's 50 steps, however short the run
    runner.train_with_marks(cfg, [20], x, x, unit="images", idle_wait=0, log=lambda msg: None)
    assert rates == pytest.approx([cfg.lr * (i + 1) / 50 for i in range(10)])


def test_every_record_names_its_library_and_the_report_shows_the_axes(protocol_run):
    results, opts = protocol_run
    median, unet = results["methods"]
    assert median["library"].startswith("scipy ") and unet["library"].startswith("denoise-vit")
    assert unet["kind"] == "network"
    text = render_markdown(results)
    for needle in ("### Learning rates", "### Quality against training images",
                   "PSNR @ 16 images", "of process CPU time", "| denoise-vit"):
        assert needle in text
    assert opts.command_line().endswith(
        "--clock cpu --images 16,6 --lr-sweep 0.001,0.003 --sweep-budget 0.002")


def test_a_peer_without_its_library_is_skipped_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(peers, "installed", lambda dist: False)
    (tmp_path / "tiny_unet.toml").write_text(TINY_UNET)
    lines = []
    opts = BenchmarkOptions(configs=("peer_drunet", str(tmp_path / "tiny_unet.toml")),
                            budgets_min=(0.002,), methods=(), eval_size=2, val_size=2,
                            workers=1, runs_dir=str(tmp_path / "runs"), figure_samples=1,
                            matmul_seconds=0.05, idle_wait=0)
    results = run_benchmark(opts, log=lines.append)
    assert [r["name"] for r in results["methods"]] == ["tiny_unet"]
    reason = f"deepinv_drunet needs deepinv, which is not installed: {peers.PEERS_EXTRA}"
    assert f"skipped peer_drunet: {reason}" in lines
    assert results["skipped"] == [{"name": "peer_drunet", "reason": reason}]
    assert f"- skipped peer_drunet: {reason}" in render_markdown(results)


@pytest.mark.parametrize("kwargs, message", [
    (dict(images="100,x"), "--images must be numbers"),
    (dict(images="0"), "--images must be positive"),
    (dict(lr_sweep="1e-3,-1"), "--lr-sweep must be positive"),
    (dict(clock="gpu"), "--clock must be 'wall' or 'cpu'"),
    (dict(sweep_min=0), "--sweep-budget must be positive"),
    (dict(sweep_extend=-1), "--sweep-extend must be a whole number"),
    (dict(idle_wait=float("nan")), "--idle-wait must be seconds"),
    (dict(seeds=0), "--seeds must be a whole number from 1 to 10"),
    (dict(seed_margin=-1.0), "--seed-margin must be dB"),
    (dict(optimizer="sgd"), "--optimizer must be one of adam, adamw or config"),
    (dict(optimizer="config", weight_decay=0.1), "--weight-decay goes with --optimizer adam"),
    (dict(weight_decay=-0.1), "--weight-decay must be a finite number of at least 0"),
])
def test_bad_protocol_options_are_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        BenchmarkOptions.from_cli(budgets="1", **kwargs)


@pytest.mark.parametrize("optimizer, decay, text", [
    ("adam", None, "whatever a preset says: Adam without weight decay; MSE"),
    ("adamw", None, "AdamW with weight decay 0.05 on weight matrices"),
    ("adamw", 0.01, "AdamW with weight decay 0.01 on weight matrices"),
    ("config", None, "its config's optimizer: tiny_unet AdamW with weight decay 0.2; MSE"),
])
def test_every_network_gets_the_protocols_optimizer_whatever_its_preset_says(
        tmp_path, optimizer, decay, text):
    (tmp_path / "tiny_unet.toml").write_text(TINY_UNET.replace(
        "warmup_steps = 1", 'warmup_steps = 1\noptimizer = "adamw"\nweight_decay = 0.2'))
    opts = BenchmarkOptions.from_cli(
        budgets="0.002", configs=str(tmp_path / "tiny_unet.toml"), methods="none",
        eval_size=2, val_size=2, workers=1, runs_dir=str(tmp_path / "runs"), idle_wait=0,
        optimizer=optimizer, weight_decay=decay)
    opts.figure_samples, opts.matmul_seconds = 1, 0.05
    results = run_benchmark(opts, log=lambda msg: None)
    (rec,) = results["methods"]
    expected = decay if decay is not None else {"adamw": 0.05, "adam": 0.0}.get(optimizer)
    if optimizer == "config":    # the config's own, as an optimizer A/B needs
        assert (rec["optimizer"], rec["weight_decay"]) == ("adamw", 0.2)
    else:
        assert (rec["optimizer"], rec["weight_decay"]) == (optimizer, expected)
    assert results["optimizer"] == {"name": optimizer, "weight_decay": expected}
    assert text in render_markdown(results)
    line = opts.command_line()
    assert ("--optimizer " in line) == (optimizer != "adam")
    assert BenchmarkOptions.from_cli(budgets="1", optimizer=optimizer,
                                     weight_decay=decay).command_line() == \
        BenchmarkOptions.from_cli(budgets="1").command_line() + \
        {"adam": "", "adamw": " --optimizer adamw", "config": " --optimizer config"}[optimizer] + \
        (f" --weight-decay {decay:g}" if decay is not None else "")
    assert ("--weight-decay 0.01" in line) == (decay == 0.01)


def test_the_report_names_the_filters_only_when_the_run_had_some(protocol_run):
    results, _ = protocol_run   # median filter and a network
    assert "grid search on a validation set of 2 images" in render_markdown(results)
    nets = {**results, "methods": [r for r in results["methods"] if r["kind"] == "network"]}
    text = render_markdown(nets)
    assert "grid search" not in text and "none in this run (`--methods none`)" in text


def test_a_report_of_a_run_before_the_optimizer_was_recorded_says_adam(protocol_run):
    results, _ = protocol_run
    old = {k: v for k, v in results.items() if k != "optimizer"}
    assert "whatever a preset says: Adam without weight decay;" in render_markdown(old)


def test_close_networks_get_more_seeds_and_report_the_mean(tmp_path):
    """Two networks within the margin are both trained with a second seed (a different stream
    and initialisation), and every figure becomes the mean with the seeds kept beside it."""
    (tmp_path / "tiny_unet.toml").write_text(TINY_UNET)
    (tmp_path / "tiny_unet_b.toml").write_text(TINY_UNET.replace('"tiny_unet"', '"tiny_unet_b"')
                                               .replace("base_channels = 4", "base_channels = 2"))
    opts = BenchmarkOptions(configs=(str(tmp_path / "tiny_unet.toml"),
                                     str(tmp_path / "tiny_unet_b.toml")),
                            budgets_min=(0.002,), methods=(), eval_size=2, val_size=2,
                            workers=1, runs_dir=str(tmp_path / "runs"), figure_samples=1,
                            matmul_seconds=0.05, idle_wait=0, clock="cpu", seeds=2,
                            seed_margin=100.0)
    results = run_benchmark(opts, log=lambda msg: None)
    for rec in results["methods"]:
        seeds = rec["seeds"]
        assert [x["seed"] for x in seeds] == [0, 1]
        assert seeds[0]["psnr"] != seeds[1]["psnr"]             # another seed, another run
        assert rec["psnr"] == pytest.approx((seeds[0]["psnr"] + seeds[1]["psnr"]) / 2)
        assert rec["curve"][-1]["psnr_seeds"] == [x["psnr"] for x in seeds]
    assert "--seeds 2 --seed-margin 100" in opts.command_line()
    assert "0: " in render_markdown(results) and "2 seeds" in render_markdown(results)


def test_only_networks_within_the_margin_are_close():
    def net(name, *psnrs):
        return {"name": name, "curve": [{"budget_s": 60.0 * (i + 1), "psnr": v}
                                        for i, v in enumerate(psnrs)]}
    recs = [net("a", 25.0, 30.0), net("b", 20.0, 31.2), net("c", 30.0, 35.0)]
    assert close_networks(recs, 1.5) == {"a", "b"}
    assert close_networks(recs, 0.5) == set()
    # a network capped at the first budget is compared there, not with the others' last figure
    capped = net("slow", 29.5)
    assert close_networks(recs + [capped], 1.0) == {"c", "slow"}
    rec = {"curve": [{"budget_s": 60.0, "psnr": 30.0, "ssim": 0.5}], "foreign_cpu_max": 0.1,
           "curve_images": [{"budget_images": 100, "psnr": 20.0, "ssim": 0.1},
                            {"budget_images": 200, "psnr": 21.0, "ssim": 0.2}]}
    other = {"curve": [{"budget_s": 60.0, "psnr": 32.0, "ssim": 0.7}], "foreign_cpu_max": 0.3,
             "curve_images": [{"budget_images": 100, "psnr": 22.0, "ssim": 0.3}]}
    merge_seeds(rec, [other], [0, 1])
    assert "diverged_seeds" not in rec
    assert rec["psnr"] == 31.0 and rec["ssim"] == pytest.approx(0.6)
    assert rec["seeds"] == [{"seed": 0, "psnr": 30.0}, {"seed": 1, "psnr": 32.0}]
    # an image count only one seed reached is dropped, the shared one averaged
    assert [p["budget_images"] for p in rec["curve_images"]] == [100]
    assert rec["curve_images"][0]["psnr"] == 21.0
    assert rec["foreign_cpu_max"] == 0.3


def point(minutes, value):
    return {"budget_s": 60 * minutes, "psnr": value}


@pytest.mark.parametrize("points, where", [
    ([point(1, 18.0), point(4, 30.0)], None),
    ([point(1, 13.0), point(4, 19.0)], None),                 # slow to start is not divergence
    ([point(1, 18.5), point(4, -34.6), point(15, 33.0)], "4 min"),
    ([point(1, 18.0), point(4, float("nan"))], "4 min"),
    ([point(1, 18.0), {"budget_images": 25000, "psnr": 20.0},
      {"budget_images": 50000, "psnr": 10.0}], "50,000 images"),
    # losing what it learned: more than 1 dB below an earlier budget of the same run
    ([point(1, 33.86), point(4, 36.74), point(15, 33.32)], "15 min"),
    ([point(1, 33.86), point(4, 36.74), point(15, 35.80)], None),   # 0.94 dB: within
    ([point(1, 13.0), point(4, 11.0), point(15, 30.0)], None),      # had not learned yet
])
def test_divergence_is_falling_below_the_input_or_1_db_below_the_best_after_learning(points,
                                                                                     where):
    bad = divergence(points, noisy_psnr=15.0)
    assert (bad and bad["at"]) == where


@pytest.mark.parametrize("peak, extend, tried, chosen", [
    # steps of the sweep's ends: x 10/3 upwards, x 1/3 downwards
    (0.05, 2, [1e-3, 3e-3, 1e-2, 3.33e-2, 0.111], 3.33e-2),  # best at the top: on till lower
    (1.0, 2, [1e-3, 3e-3, 1e-2, 3.33e-2, 0.111], 0.111),  # still rising: stops at its limit
    (1e-4, 2, [1.11e-4, 3.33e-4, 1e-3, 3e-3, 1e-2], 1.11e-4),  # best at the bottom: downwards
    (5e-3, 2, [1e-3, 3e-3, 1e-2], 3e-3),                # bracketed already: nothing added
    (1.0, 0, [1e-3, 3e-3, 1e-2], 1e-2),                 # extend 0: only the given rates
])
def test_the_sweep_extends_beyond_an_edge_until_a_rate_scores_lower(monkeypatch, peak, extend,
                                                                    tried, chosen):
    from denoise_vit.benchmark import runner
    from denoise_vit.training.config import TrainConfig
    import math

    def fake_marks(cfg, budgets, *args, **kwargs):   # scores peak at `peak`, falling off in log
        return None, [{"psnr": 30.0 - abs(math.log(cfg.lr / peak))}]

    monkeypatch.setattr(runner, "train_with_marks", fake_marks)
    monkeypatch.setattr(runner, "validation_set", lambda n: (None, None))
    best, scores, added = runner.sweep_learning_rate(TrainConfig(name="t"), (1e-3, 3e-3, 1e-2), 1,
                                                     extend=extend, log=lambda msg: None)
    assert list(scores) == pytest.approx(tried) and best == pytest.approx(chosen)
    assert sorted(added) == pytest.approx([r for r in tried if r not in (1e-3, 3e-3, 1e-2)])


def test_a_rate_that_fails_ends_the_extension(monkeypatch):
    from denoise_vit.benchmark import runner
    from denoise_vit.training.config import TrainConfig

    def fake_marks(cfg, budgets, *args, **kwargs):   # rising with the rate, NaN beyond 2e-2
        return None, [{"psnr": float("nan") if cfg.lr > 2e-2 else 1e3 * cfg.lr}]

    monkeypatch.setattr(runner, "train_with_marks", fake_marks)
    monkeypatch.setattr(runner, "validation_set", lambda n: (None, None))
    best, scores, added = runner.sweep_learning_rate(TrainConfig(name="t"), (3e-3, 1e-2), 1,
                                                     extend=2, log=lambda msg: None)
    assert best == 1e-2 and added == [3.33e-2] and len(scores) == 3


def test_the_rates_table_shows_every_rate_tried_and_judges_each_network_s_own_edge():
    from denoise_vit.benchmark.report import lr_sweep_section
    def net(name, scores, lr):
        return {"name": name, "kind": "network", "lr": lr,
                "lr_sweep": {"validation_psnr": scores, "chosen": lr}}
    results = {"methods": [net("a", {"0.001": 20.0, "0.003": 22.0, "0.01": 21.0}, 3e-3),
                           net("b", {"0.001": 20.0, "0.003": 22.0, "0.01": 23.0, "0.0333": 24.0,
                                     "0.111": 25.0}, 0.111)],
               "lr_sweep": {"validation_seed": 4321, "extend": 2}}
    text = "\n".join(lr_sweep_section(results))
    assert "| network | lr 0.001 | lr 0.003 | lr 0.01 | lr 0.0333 | lr 0.111 |" in text
    assert "| a | 20.00 | 22.00 | 21.00 | – | – | 0.003 | 0.003 |" in text
    assert "tried at up to 2 more beyond it" in text
    assert text.endswith("At the edge of the swept range (a rate beyond it might score higher): b.")


@pytest.mark.parametrize("learns_below, trained_at, edge", [
    (5e-4, 3e-4, True),      # 3e-3 and 1e-3 diverge: trained at the lowest rate, its edge
    (2e-3, 1e-3, False),     # 3e-3 diverges: trained at 1e-3, inside the swept range
    (1e-4, 3e-4, True),      # every rate diverges: the lowest run is kept and marked
])
def test_a_run_that_diverged_is_trained_again_at_the_next_lower_rate(monkeypatch, tmp_path,
                                                                      learns_below, trained_at,
                                                                      edge):
    import torch
    from denoise_vit import build_model
    from denoise_vit.benchmark import runner
    from denoise_vit.training.config import load_config
    (tmp_path / "tiny_unet.toml").write_text(TINY_UNET)
    cfg = load_config(str(tmp_path / "tiny_unet.toml"))
    trained = []

    def fake_curves(cfg, budgets, *args, **kwargs):   # rates above learns_below diverge
        trained.append(cfg.lr)
        model = build_model("unet_denoiser", base_channels=4, levels=2)
        end = -30.0 if cfg.lr > learns_below else 25.0
        pts = [{**point(1, 20.0), "images": 8, "train_seconds": 1.0, "cpu_seconds": 1.0,
                "steps": 2, "ssim": 0.5, "foreign_cpu": 0.0},
               {**point(4, end), "images": 16, "train_seconds": 2.0, "cpu_seconds": 2.0,
                "steps": 4, "ssim": 0.5, "foreign_cpu": 0.0}]
        return model, pts, None, []

    monkeypatch.setattr(runner, "train_curves", fake_curves)
    monkeypatch.setattr(runner, "sweep_learning_rate",
                        lambda cfg, rates, *a, **k: (3e-3, {r: 20.0 for r in rates}, []))
    x = torch.rand(2, 1, 16, 16)
    rec, _ = runner.run_network(cfg, [60, 240], x, torch.full_like(x, 0.5),   # noisy: 10.8 dB
                                lr_rates=(3e-4, 1e-3, 3e-3), sweep_budget=1)
    rates = [r for r in (3e-3, 1e-3, 3e-4) if r >= trained_at]
    assert trained == rates
    all_diverged = learns_below < 3e-4
    assert rec["lr"] == trained_at and rec["psnr"] == (-30.0 if all_diverged else 25.0)
    assert [(d["lr"], d["at"], d["psnr"]) for d in rec["diverged"]] == \
        [(r, "4 min", -30.0) for r in (rates if all_diverged else rates[:-1])]
    assert rec["lr_sweep"]["chosen"] == 3e-3
    from denoise_vit.benchmark.report import lr_sweep_section
    text = "\n".join(lr_sweep_section({"methods": [rec], "lr_sweep": {"validation_seed": 4321}}))
    assert f"| 0.003 | {trained_at:g} |" in text   # chosen by the sweep, trained at
    assert "- tiny_unet: at lr 0.003, -30.00 dB at 4 min (after 20.00)" in text
    assert ("no lower rate was swept" in text) == all_diverged
    # the edge of the range is judged by the rate it trained at, not the sweep's choice
    assert ("At the edge of the swept range (a rate beyond it might score higher): tiny_unet"
            in text) == edge


def test_the_attention_line_gives_each_seed_s_gap_where_both_ran_several():
    from denoise_vit.benchmark.report import attention_lines

    def rec(name, attention, curve):
        return {"name": name, "kind": "network", "library": "denoise-vit 0.1.0",
                "model": {"name": "vit_denoiser", "embed_dim": 64, "attention": attention},
                "curve": curve}
    results = {"budgets_s": [60, 240], "budget_clock": "cpu", "methods": [
        rec("vit_fast", True, [{"budget_s": 60, "psnr": 30.0},
                               {"budget_s": 240, "psnr": 34.0, "psnr_seeds": [35.0, 33.0]}]),
        rec("vit_fast_no_attention", False, [{"budget_s": 60, "psnr": 29.5},
                                             {"budget_s": 240, "psnr": 33.0,
                                              "psnr_seeds": [33.5, 32.5]}])]}
    line, = attention_lines(results)
    assert "+0.50 dB at 1 min of CPU time, +1.00 dB at 4 min of CPU time (per seed +1.50 / +0.50)" \
        in line   # one seed at 1 min: no per-seed gaps
    assert "met at 4 min of CPU time" in line and "caveats" not in line
    # different rates, or a seed that diverged, are named beside the goal
    results["methods"][0]["lr"], results["methods"][1]["lr"] = 0.01, 0.03
    results["methods"][1]["diverged_seeds"] = [{"seed": 1, "lr": 0.03, "at": "4 min",
                                                "psnr": 32.5, "best": 33.7}]
    line, = attention_lines(results)
    assert line.endswith("met at 4 min of CPU time (caveats: vit_fast trained at lr 0.01, "
                         "vit_fast_no_attention trained at lr 0.03; vit_fast_no_attention's seed "
                         "1 diverged at 4 min (32.50 dB, after 33.70) and is in its mean).")


def test_a_sweep_run_lasts_the_smallest_budget_unless_told_otherwise():
    opts = BenchmarkOptions.from_cli(budgets="4,1,15", lr_sweep="1e-3,3e-3")
    assert opts.sweep_seconds == 60 and "--sweep-budget" not in opts.command_line()
    opts = BenchmarkOptions.from_cli(budgets="4,1,15", lr_sweep="1e-3,3e-3", sweep_min=0.5)
    assert opts.sweep_seconds == 30
    assert opts.command_line().endswith("--lr-sweep 0.001,0.003 --sweep-budget 0.5")


def curve(**psnr_at):
    return [{"budget_s": float(b[1:]), "psnr": v} for b, v in psnr_at.items()]


def test_check_rates_gives_close_networks_their_sweep_neighbours_and_rivals_rates():
    from denoise_vit.benchmark.runner import check_rates

    def swept(*rates):
        return {"validation_psnr": {f"{r:g}": 30.0 for r in rates}}

    recs = [{"name": "a", "lr": 1e-2, "curve": curve(s60=30.0, s240=35.0),
             "lr_sweep": swept(1e-3, 3e-3, 1e-2, 3e-2)},
            {"name": "b", "lr": 3e-3, "curve": curve(s60=30.5, s240=34.0),   # close to a
             "lr_sweep": swept(3e-3, 1e-2, 3e-2)},                           # 3e-3: lowest tried
            {"name": "c", "lr": 3e-3, "curve": curve(s60=20.0, s240=25.0),   # far from all
             "lr_sweep": swept(1e-3, 3e-3, 1e-2)},
            {"name": "d", "lr": 1e-2, "curve": curve(s60=29.0)},   # stops at 1 min; no sweep
            {"name": "e", "lr": 3e-3, "curve": curve(s60=40.0, s240=34.5)}]   # close to a, b
    assert check_rates(recs, 1.5) == {"a": [3e-3, 3e-2], "b": [1e-2],
                                      "d": [3e-3], "e": [1e-2]}
    assert check_rates(recs, 0.1) == {}


def test_keep_best_rate_chooses_by_validation_never_by_evaluation():
    from denoise_vit.benchmark.runner import keep_best_rate
    sweep = {"validation_psnr": {"0.003": 30.0, "0.01": 29.0}, "chosen": 3e-3}
    own = {"name": "a", "lr": 3e-3, "psnr": 38.0, "validation_psnr": 37.0, "lr_sweep": sweep}
    rival = {"name": "a", "lr": 1e-2, "psnr": 37.5, "validation_psnr": 37.4}
    kept = keep_best_rate(own, [rival])
    assert kept is rival and kept["rate_check"]["kept"] == 1e-2
    assert kept["lr_sweep"] is sweep   # the report's rates table still shows the sweep
    assert kept["rate_check"]["swept"] == 3e-3
    assert kept["rate_check"]["validation_psnr"] == {"0.003": 37.0, "0.01": 37.4}
    assert keep_best_rate({**own, "validation_psnr": 38.0}, [rival])["lr"] == 3e-3


def test_the_rate_check_trains_close_networks_at_their_rivals_rates(tmp_path):
    (tmp_path / "tiny_unet.toml").write_text(TINY_UNET)
    (tmp_path / "tiny_b.toml").write_text(TINY_UNET.replace('"tiny_unet"', '"tiny_b"')
                                          .replace("warmup_steps = 1", "warmup_steps = 1\nlr = 3e-3"))
    opts = BenchmarkOptions(configs=(str(tmp_path / "tiny_unet.toml"), str(tmp_path / "tiny_b.toml")),
                            budgets_min=(0.003,), methods=(), eval_size=4, val_size=2, workers=1,
                            runs_dir=str(tmp_path / "runs"), figure_samples=2, matmul_seconds=0.1,
                            idle_wait=0, clock="cpu", seed_margin=100.0, rate_check=True,
                            sweep_extend=0)   # no climbing beyond the rates first checked
    lines = []
    results = run_benchmark(opts, log=lines.append)
    a, b = results["methods"]
    for rec, own, rival in ((a, 1e-3, 3e-3), (b, 3e-3, 1e-3)):
        check = rec["rate_check"]
        assert check["swept"] == own and set(check["validation_psnr"]) == {f"{own:g}", f"{rival:g}"}
        best = max(check["validation_psnr"], key=check["validation_psnr"].get)
        assert rec["lr"] == check["kept"] == float(best)
        assert rec["validation_psnr"] == check["validation_psnr"][best]
    runs = {p.name for p in (tmp_path / "runs").iterdir()}
    assert {"tiny_unet-seed0.json", "tiny_unet-seed0-lr0.003.json", "tiny_b-seed0-lr0.001.json",
            "tiny_unet-seed0-lr0.003.pt"} <= runs
    text = render_markdown(results)
    assert "### Rate check" in text and "| tiny_b | 0.001 | checked |" in text
    from denoise_vit.benchmark.report import write_report
    write_report(results, tmp_path / "report")
    assert (tmp_path / "report" / "benchmarks" / "rate_check.png").stat().st_size > 0
    assert "benchmarks/rate_check.png" in (tmp_path / "report" / "BENCHMARKS.md").read_text()
    assert opts.command_line().endswith("--rate-check")
    assert any("trained at lr 0.003 too (--rate-check)" in line for line in lines)


def test_the_rate_check_says_when_the_kept_rate_is_at_the_edge_of_those_checked():
    from denoise_vit.benchmark.report import rate_check_section

    def net(name, swept, kept, rates):
        return {"name": name, "kind": "network", "lr": kept,
                "rate_check": {"validation_psnr": {f"{r:g}": 30.0 for r in rates},
                               "eval_psnr": {f"{r:g}": 29.0 for r in rates},
                               "kept": kept, "swept": swept}}
    results = {"rate_check": True, "seed_margin": 1.5,
               "methods": [net("up", 3e-3, 1e-2, (9e-4, 3e-3, 1e-2)),        # edge, upwards
                           net("mid", 3e-3, 3e-3, (9e-4, 3e-3, 1e-2)),       # the sweep's pick
                           net("down", 3e-3, 9e-4, (9e-4, 3e-3, 1e-2))]}     # edge, downwards
    text = "\n".join(rate_check_section(results))
    assert "might score higher): up, down." in text


@pytest.mark.parametrize("rates_vals, grid, expected", [
    ({3e-3: 37.8, 9e-4: 36.5, 1e-2: 38.8}, (9e-4, 3e-3, 1e-2, 3e-2), 3e-2),  # up: the sweep's next
    ({3e-3: 37.8, 9e-4: 36.5, 1e-2: 38.8}, (9e-4, 3e-3, 1e-2), 3.33e-2),     # up: a step beyond
    ({3e-3: 37.8, 9e-4: 38.5, 1e-2: 36.8}, (9e-4, 3e-3, 1e-2), 2.7e-4),      # down: x 0.3
    ({3e-3: 38.8, 9e-4: 36.5, 1e-2: 37.8}, (9e-4, 3e-3, 1e-2), None),        # the sweep's pick
    ({3e-3: 37.8, 9e-4: 36.5, 1e-2: 38.8, 3e-2: 38.0}, (3e-3, 1e-2), None),  # bracketed
])
def test_the_rate_check_climbs_while_its_best_rate_is_at_an_edge(rates_vals, grid, expected):
    from denoise_vit.benchmark.runner import rate_beyond
    own, *others = [{"lr": r, "validation_psnr": v} for r, v in rates_vals.items()]
    own["lr_sweep"] = {"validation_psnr": {f"{r:g}": 30.0 for r in grid}}
    assert rate_beyond(own, others) == (pytest.approx(expected) if expected else None)


def test_resume_trains_a_run_again_that_the_current_divergence_rule_rejects(monkeypatch,
                                                                          tmp_path):
    """A run written before the fall rule (15 min 3.4 dB below 4 min) is read back by --resume,
    found diverged, and trained again at the next lower swept rate, keeping its sweep; a run the
    rule accepts, or one with no lower rate left, is read back as it is."""
    import json
    from denoise_vit.benchmark import runner
    (tmp_path / "tiny_unet.toml").write_text(TINY_UNET)
    opts = BenchmarkOptions(configs=(str(tmp_path / "tiny_unet.toml"),), budgets_min=(0.004,),
                            methods=("median",), eval_size=4, val_size=2, workers=1,
                            runs_dir=str(tmp_path / "runs"), figure_samples=2,
                            matmul_seconds=0.1, idle_wait=0, clock="cpu", lr_rates=(1e-3, 3e-3),
                            sweep_min=0.002)
    run_benchmark(opts, log=lambda msg: None)
    path = tmp_path / "runs" / "tiny_unet-seed0.json"
    saved = json.loads(path.read_text())
    rec = saved["record"]
    rec["lr"] = rec["lr_sweep"]["chosen"] = 3e-3
    rec["curve"] = [{**rec["curve"][0], "budget_s": 60.0, "psnr": 36.74},
                    {**rec["curve"][0], "budget_s": 240.0, "psnr": 33.32}]
    path.write_text(json.dumps(saved))
    swept = []
    real_sweep = runner.sweep_learning_rate
    monkeypatch.setattr(runner, "sweep_learning_rate",
                        lambda *a, **k: swept.append(1) or real_sweep(*a, **k))
    lines = []
    again = run_benchmark(BenchmarkOptions(**{**opts.__dict__, "resume": True}), log=lines.append)
    net = again["methods"][-1]
    assert any("diverged by the current rule; trained again" in line for line in lines)
    assert any("diverged at lr 0.003 (33.32 dB at 4 min, more than 1 dB below an earlier "
               "budget's 36.74); trained again at lr 0.001" in line for line in lines)
    assert not swept                                 # the sweep was kept, not run again
    assert net["lr"] == 1e-3 and net["lr_sweep"]["chosen"] == 3e-3
    assert [(d["lr"], d["psnr"]) for d in net["diverged"]] == [(3e-3, 33.32)]
    assert json.loads(path.read_text())["key"] == saved["key"]   # the same task, trained on
    assert again["divergence_fall_db"] == 1.0
    text = render_markdown(again)
    assert "or more than 1 dB below an earlier budget of the same run" in text
    # read back again: now accepted as it is
    lines = []
    third = run_benchmark(BenchmarkOptions(**{**opts.__dict__, "resume": True}), log=lines.append)
    assert any("read back from" in line and "(--resume)" in line and "diverged" not in line
               for line in lines)
    assert third["methods"][-1]["psnr"] == net["psnr"]
    # a diverged run at the lowest swept rate has nothing lower to go to: kept as it is
    fell = {**net, "curve": [point(1, 36.74), point(4, 33.32)], "curve_images": None}
    assert runner.retrain_due(fell, 10.0) is False
    assert runner.retrain_due({**fell, "lr": 3e-3}, 10.0) is True
    assert runner.retrain_due({**fell, "lr": 3e-3, "curve": [point(1, 36.0)]}, 10.0) is False


def test_a_further_seed_that_diverged_is_kept_in_the_mean_and_named_in_the_report():
    from denoise_vit.benchmark.report import lr_sweep_section
    rec = {"name": "twin", "kind": "network", "lr": 0.03,
           "lr_sweep": {"validation_psnr": {"0.01": 35.7, "0.03": 36.0}, "chosen": 0.03},
           "curve": [{"budget_s": 240.0, "psnr": 37.42, "ssim": 0.9},
                     {"budget_s": 900.0, "psnr": 37.81, "ssim": 0.9}], "foreign_cpu_max": 0.5}
    other = {"curve": [{"budget_s": 240.0, "psnr": 37.23, "ssim": 0.9},
                       {"budget_s": 900.0, "psnr": 36.16, "ssim": 0.9}], "foreign_cpu_max": 0.5,
             "diverged": [{"lr": 0.03, "at": "15 min", "psnr": 36.16, "best": 37.23}]}
    merge_seeds(rec, [other], [0, 1])
    assert rec["psnr"] == pytest.approx((37.81 + 36.16) / 2)     # kept in the mean
    assert rec["diverged_seeds"] == [{"seed": 1, "lr": 0.03, "at": "15 min", "psnr": 36.16,
                                      "best": 37.23}]
    text = "\n".join(lr_sweep_section({"methods": [rec], "lr_sweep": {}}))
    assert "- twin: seed 1 at lr 0.03, 36.16 dB at 15 min (after 37.23)" in text
