"""Baselines: the CNN models, the classical filters and their grid search, benchmark records."""
import pytest
import torch

from denoise_vit import ConfigError, build_model

CNN_CASES = [
    ("unet_denoiser", dict()),
    ("unet_denoiser", dict(base_channels=4, levels=2, residual=True, in_chans=2)),
    ("dncnn_denoiser", dict(depth=4, features=8)),
    ("dncnn_denoiser", dict(depth=3, features=4, in_chans=3)),
]


@pytest.mark.parametrize("name,kwargs", CNN_CASES)
@pytest.mark.parametrize("size", [(37, 51), (8, 8), (64, 64)])
def test_cnn_shapes_and_gradients_at_odd_sizes(name, kwargs, size):
    model = build_model(name, **kwargs)
    x = torch.rand(2, model.config.in_chans, *size)
    out = model(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


def test_cnn_defaults_match_the_issue():
    unet, dncnn = build_model("unet_denoiser"), build_model("dncnn_denoiser")
    assert 0.4e6 < sum(p.numel() for p in unet.parameters()) < 0.6e6
    assert unet.config.base_channels == 16
    assert sum(isinstance(m, torch.nn.Conv2d) for m in dncnn.modules()) == 17


def test_unet_pads_and_crops_in_place():
    """An odd-size image gives the output it would have inside a larger image (away from the
    padded bottom/right border): padding and cropping do not shift the picture."""
    model = build_model("unet_denoiser", base_channels=4).eval()
    big = torch.rand(1, 1, 48, 56)
    small = big[..., :37, :45]
    with torch.no_grad():
        ref, out = model(big)[..., :16, :16], model(small)[..., :16, :16]
        # what a model padding at the top/left but cropping [:h, :w] would return
        misplaced = model(torch.nn.functional.pad(small, (3, 0, 3, 0)))[..., :16, :16]
    assert torch.allclose(out, ref, atol=1e-4)
    assert not torch.allclose(misplaced, ref, atol=1e-4)  # the check can tell a 3-pixel shift


def test_dncnn_is_residual():
    model = build_model("dncnn_denoiser", depth=3, features=4)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    x = torch.rand(1, 1, 9, 9)
    assert torch.equal(model(x), x)


@pytest.mark.parametrize("name,kwargs", [("unet_denoiser", dict(base_channels=0)),
                                         ("dncnn_denoiser", dict(depth=1)),
                                         ("unet_denoiser", dict(width=3))])
def test_cnn_bad_config(name, kwargs):
    with pytest.raises(ConfigError):
        build_model(name, **kwargs)


def test_cnn_wrong_channels():
    with pytest.raises(ConfigError, match="channel"):
        build_model("unet_denoiser", base_channels=4)(torch.rand(1, 3, 16, 16))


# ---------------------------------------------------------------- classical filters

from data_gen import make_eval_set  # noqa: E402
from denoise_vit.benchmark.baselines import (METHODS, ClassicalMethod, apply, bm3d_available,  # noqa: E402
                                   grid_search, validation_set)
from denoise_vit.metrics import psnr  # noqa: E402


def _scale(image, value):
    return image * value


def test_grid_search_picks_the_best_value():
    targets = torch.rand(3, 1, 8, 8)
    method = ClassicalMethod("scale", "scale", "value", (0.25, 0.5, 1.0, 2.0), _scale)
    result = grid_search(method, targets * 2, targets)   # halving the input is exact
    assert result.best == 0.5
    assert result.scores[0.5] == float("inf") or result.scores[0.5] > 100
    assert list(result.scores) == [0.25, 0.5, 1.0, 2.0]


def test_grid_search_agrees_with_scoring_each_value_by_hand():
    inputs, targets = validation_set(4)
    method = METHODS["median"]
    grid = (1, 3, 7, 15)
    by_hand = {v: psnr(apply(method, inputs, v), targets) for v in grid}
    result = grid_search(method, inputs, targets, grid=grid)
    assert result.best == max(by_hand, key=by_hand.get)
    assert result.scores == pytest.approx(by_hand)
    assert result.best != 1  # size 1 is the identity; filtering must help on this data


def test_grid_search_ties_go_to_the_first_value():
    zeros = torch.zeros(2, 1, 4, 4)   # every scale of zeros is exact: all values tie
    method = ClassicalMethod("scale", "scale", "value", (3.0, 1.0), _scale)
    assert grid_search(method, zeros, zeros).best == 3.0
    assert grid_search(method, zeros, zeros, grid=(1.0, 3.0)).best == 1.0


def test_validation_set_is_not_the_evaluation_set():
    val, _ = validation_set(2)
    ev, _ = make_eval_set(2)   # SPEC §4's default seed
    assert not torch.equal(val, ev)


def test_apply_with_worker_processes_matches_one_process():
    inputs, _ = validation_set(3)
    one = apply(METHODS["tv"], inputs, 0.2)
    two = apply(METHODS["tv"], inputs, 0.2, workers=2)
    assert one.shape == inputs.shape and one.dtype == torch.float32
    assert torch.allclose(one, two)


# On this data the "noise" is bright rectangles, not white noise: every filter helps only by
# blurring hard, so each is tuned on a validation set before being judged on other images.
@pytest.mark.parametrize("name", ["median", "tv", "wavelet", "nl_means", "bm3d"])
def test_each_classical_filter_beats_the_noisy_input(name):
    if name == "bm3d" and not bm3d_available():
        pytest.skip("bm3d is not installed (pip install denoise-vit[bench])")
    method = METHODS[name]
    inputs, targets = make_eval_set(6 if name != "bm3d" else 3)
    if name == "bm3d":  # about a second per image: no search, a value from the middle of its grid
        best = 0.8
    else:
        best = grid_search(method, *validation_set(8)).best
    assert psnr(apply(method, inputs, best), targets) > psnr(inputs, targets) + 1.0


# ---------------------------------------------------------------- the benchmark

from denoise_vit.benchmark.runner import (RECORD_FIELDS, BenchmarkOptions,  # noqa: E402
                                          count_flops, run_benchmark)
from denoise_vit.benchmark.report import render_markdown, write_report  # noqa: E402

TINY_VIT = """
name = "tiny_vit"
batch_size = 4
warmup_steps = 2
[model]
name = "vit_denoiser"
depth = 1
embed_dim = 8
num_heads = 2
decoder = "linear"
"""
TINY_UNET = """
name = "tiny_unet"
batch_size = 4
[model]
name = "unet_denoiser"
base_channels = 4
levels = 2
"""


def test_count_flops_of_a_known_layer():
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    assert count_flops(conv, (1, 8, 8)) == 2 * 9 * 64           # one multiply-add per tap
    assert count_flops(conv, (1, 8, 8), train=True) == 2 * (2 * 9 * 64)   # + weight gradient


@pytest.fixture(scope="module")
def tiny_benchmark(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    (tmp / "tiny_vit.toml").write_text(TINY_VIT)
    (tmp / "tiny_unet.toml").write_text(TINY_UNET)
    opts = BenchmarkOptions(configs=(str(tmp / "tiny_vit.toml"), str(tmp / "tiny_unet.toml")),
                            budgets_min=(0.005, 0.01), methods=("median",), eval_size=4,
                            val_size=2, workers=1, runs_dir=str(tmp / "runs"),
                            figure_samples=2, matmul_seconds=0.1, idle_wait=0)
    return run_benchmark(opts, log=lambda msg: None), tmp


def test_benchmark_records_have_the_documented_fields(tiny_benchmark):
    results, _ = tiny_benchmark
    names = [r["name"] for r in results["methods"]]
    assert names == ["median", "tiny_vit", "tiny_unet"]
    for rec in results["methods"]:
        assert set(RECORD_FIELDS) <= set(rec)
        assert isinstance(rec["psnr"], float) and -1 <= rec["ssim"] <= 1
        assert rec["infer_ms_per_image"] > 0
    median, vit, unet = results["methods"]
    assert median["params"] == 0 and median["tuned"]["value"] in (3, 5, 7, 9, 11, 13, 15, 17, 21)
    assert vit["params"] == sum(p.numel() for p in build_model(
        "vit_denoiser", depth=1, embed_dim=8, num_heads=2, decoder="linear").parameters())
    assert 0 < vit["flops"] < unet["flops"]


def test_benchmark_trains_to_each_budget(tiny_benchmark):
    results, tmp = tiny_benchmark
    assert results["budgets_s"] == [0.3, 0.6]
    for rec in results["methods"][1:]:
        curve = rec["curve"]
        assert [p["budget_s"] for p in curve] == [0.3, 0.6]
        assert all(p["train_seconds"] >= p["budget_s"] for p in curve)  # stops after the mark
        assert curve[0]["steps"] <= curve[1]["steps"]
        assert rec["train_seconds"] == curve[-1]["train_seconds"]
        assert 0 < rec["fraction_of_matmul_rate"] and rec["images_per_s"] > 0
        assert (tmp / "runs" / f"{rec['name']}-seed0.pt").exists()   # one checkpoint per seed


def test_benchmark_report_files(tiny_benchmark):
    import json
    results, tmp = tiny_benchmark
    md = write_report(results, tmp / "docs")
    text = md.read_text()
    for needle in ("denoise-vit benchmark --budgets 0.005,0.01", "tiny_vit", "median filter",
                   f"{results['machine']['cores']} cores", "PSNR @ 0.01 min", "## Verdict"):
        assert needle in text
    # the vector instructions of torch's kernels are named: one model name can be two speeds
    isa = results["machine"]["cpu_capability"]
    assert isa in ("DEFAULT", "AVX2", "AVX512", "NO AVX", "ZVECTOR", "VSX", "SVE256") or isa.startswith("SVE")
    assert f"({isa} kernels)" in text
    saved = json.loads((tmp / "docs" / "benchmarks.json").read_text())
    assert [r["name"] for r in saved["methods"]] == ["median", "tiny_vit", "tiny_unet"]
    for png in ("psnr_vs_time", "psnr_vs_params", "samples"):
        assert (tmp / "docs" / "benchmarks" / f"{png}.png").stat().st_size > 1000
    # the report can be re-rendered from the JSON alone (no sample images there)
    assert render_markdown(saved) == text


def test_where_vit_loses_names_only_rivals_of_the_best_vit():
    from denoise_vit.benchmark.report import where_vit_loses

    def net(name, model, psnr, curve, ms=1.0, params=10_000, flops=10):
        return {"name": name, "label": name, "kind": "network", "model": {"name": model},
                "psnr": psnr, "ssim": 0.9, "infer_ms_per_image": ms, "params": params,
                "flops": flops, "curve": [{"budget_s": 60 * (i + 1), "psnr": p}
                                          for i, p in enumerate(curve)]}
    best = net("vit_fast", "vit_denoiser", 33.0, [30.0, 33.0])
    small_vit = net("course", "vit_denoiser", 30.0, [25.0, 30.0], ms=0.5, params=1_000, flops=1)
    unet = net("unet", "unet_denoiser", 32.0, [31.0, 32.0], ms=5.0, params=5_000, flops=100)
    lines = where_vit_loses({"methods": [best, small_vit, unet]})
    assert lines == ["- Size: unet has fewer parameters (5 k vs 10 k).",
                     "- Training time: at 1 min unet is higher (31.00 vs 30.00 dB)."]
    unet["curve"][0]["psnr"], unet["params"] = 29.0, 20_000
    assert where_vit_loses({"methods": [best, small_vit, unet]}) == [
        "- Nowhere in these measurements."]


def test_report_adds_the_decayed_rate_cross_check(tiny_benchmark, tmp_path):
    import json

    from denoise_vit.benchmark.runner import rebuild_report
    results, _ = tiny_benchmark
    before = write_report(results, tmp_path).read_text()
    assert "## Cross-check" not in before
    check = json.loads((tmp_path / "benchmarks.json").read_text())
    check["command"] = "denoise-vit benchmark --separate-runs"
    (tmp_path / "cosine").mkdir()
    (tmp_path / "cosine" / "benchmarks.json").write_text(json.dumps(check))
    text = rebuild_report(tmp_path).read_text()
    assert "## Cross-check: learning rate decayed to each budget" in text
    assert "- Cross-check with the rate decayed to each budget (below, `denoise-vit benchmark " \
           "--separate-runs`):" in text
    assert text.count("| tiny_vit | ") == before.count("| tiny_vit | ") + 1   # its table row
