"""Training end to end on tiny runs: learning, resume, non-finite loss, run outputs."""
import csv
import json

import pytest
import torch

from denoise_vit import TrainingError, load_model
from denoise_vit.training import engine
from denoise_vit.training.config import load_config
from denoise_vit.training.data import make_eval_data
from denoise_vit.metrics import psnr
from denoise_vit.training.run import run_training

TINY = ["model.depth=2", "data.size=32", "batch_size=16", "steps_per_epoch=25", "epochs=2",
        "data.eval_size=64", "lr=2e-3", "figure_samples=3"]


def tiny(tmp_path, *extra):
    return load_config(None, TINY + [f'out_dir="{tmp_path}"', 'name="tiny"', *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    summary = run_training(tiny(tmp), progress=False, log=lambda *a: None)
    return tmp / "tiny", summary


def test_short_training_lowers_loss_and_beats_noisy_input(trained):
    run_dir, summary = trained
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert len(rows) == 2 and summary["steps"] == 50
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    assert summary["final_psnr"] > summary["noisy_psnr"] + 2
    # predicting all zeros already beats the noisy input (~17 dB vs ~15): the model must do better
    _, targets = make_eval_data(load_config(None, TINY).data)
    assert summary["final_psnr"] > psnr(torch.zeros_like(targets), targets) + 1
    for name in ("config.json", "curves.png", "samples.png", "checkpoint_last.pt",
                 "checkpoint_best.pt"):
        assert (run_dir / name).stat().st_size > 0
    assert json.loads((run_dir / "config.json").read_text())["model"]["depth"] == 2


def test_best_checkpoint_rebuilds_the_model(trained):
    run_dir, summary = trained
    model = load_model(run_dir / "checkpoint_best.pt")
    assert model.config.img_size == (32, 32) and model.config.depth == 2
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_resume_finishes_with_the_same_step_count(tmp_path):
    run_training(tiny(tmp_path, "epochs=1"), progress=False, log=lambda *a: None)
    logs = []
    summary = run_training(tiny(tmp_path, "epochs=3"), resume=True, progress=False, log=logs.append)
    assert any("resumed from" in line and "step 25" in line for line in logs)
    assert summary["steps"] == 75
    rows = list(csv.DictReader(open(tmp_path / "tiny" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [25, 50, 75]


def test_resume_with_another_optimizer_names_the_one_the_run_was_started_with(tmp_path):
    """vit_fast's preset moved from Adam to AdamW: a run started before cannot load its Adam
    state into AdamW's two parameter groups, and the error says which overrides resume it."""
    from denoise_vit.errors import CheckpointError
    run_training(tiny(tmp_path, "epochs=1", "steps_per_epoch=2"), progress=False,
                 log=lambda *a: None)
    with pytest.raises(CheckpointError, match="started with optimizer=adam weight_decay=0: add "
                                              "those overrides to resume it"):
        run_training(tiny(tmp_path, "epochs=2", "steps_per_epoch=2", "optimizer=adamw",
                          "weight_decay=0.05"), resume=True, progress=False, log=lambda *a: None)
    summary = run_training(tiny(tmp_path, "epochs=2", "steps_per_epoch=2"), resume=True,
                           progress=False, log=lambda *a: None)
    assert summary["steps"] == 4


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    run_training(tiny(tmp_path, "epochs=1"), progress=False, log=lambda *a: None)
    last = tmp_path / "tiny" / "checkpoint_last.pt"
    before = last.read_bytes()
    calls = {"n": 0}
    real = engine.F.mse_loss

    def poisoned(a, b):
        calls["n"] += 1
        loss = real(a, b)
        return loss * float("nan") if calls["n"] == 5 else loss

    monkeypatch.setattr(engine.F, "mse_loss", poisoned)
    with pytest.raises(TrainingError, match="non-finite loss .* at step 30"):
        run_training(tiny(tmp_path, "epochs=2"), resume=True, progress=False, log=lambda *a: None)
    assert last.read_bytes() == before


def test_time_budget_stops_mid_epoch_and_still_evaluates(tmp_path):
    summary = run_training(tiny(tmp_path, "max_train_seconds=0.5", "steps_per_epoch=100000",
                                "epochs=1"), progress=False, log=lambda *a: None)
    assert summary["stopped"] == "time budget reached"
    assert 0 < summary["steps"] < 100000 and summary["train_seconds"] >= 0.5
    rows = list(csv.DictReader(open(tmp_path / "tiny" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [summary["steps"]]      # evaluated where it stopped
    assert summary["final_psnr"] == pytest.approx(float(rows[0]["eval_psnr"]))
    assert (tmp_path / "tiny" / "samples.png").stat().st_size > 0


def test_time_budget_counts_training_only_in_fresh_and_resumed_runs(tmp_path, monkeypatch):
    import time
    import denoise_vit.training.run as run_module
    calls = {"n": 0}

    def slow_evaluate(*args, **kwargs):   # evaluation that takes 0.4 s of wall clock
        calls["n"] += 1
        time.sleep(0.4)
        return real_evaluate(*args, **kwargs)

    real_evaluate = run_module.evaluate
    monkeypatch.setattr(run_module, "evaluate", slow_evaluate)
    start = time.perf_counter()
    fresh = run_training(tiny(tmp_path, "max_train_seconds=0.3", "steps_per_epoch=1",
                              "epochs=100000"), progress=False, log=lambda *a: None)
    wall = time.perf_counter() - start
    assert fresh["train_seconds"] >= 0.3
    assert fresh["train_seconds"] <= wall - 0.4 * calls["n"]       # evaluation not counted
    # resumed with a larger budget: the clock goes on from the checkpoint's seconds
    budget = fresh["train_seconds"] + 0.3
    resumed = run_training(tiny(tmp_path, f"max_train_seconds={budget}", "steps_per_epoch=1",
                                "epochs=100000"), resume=True, progress=False, log=lambda *a: None)
    assert resumed["train_seconds"] >= budget and resumed["steps"] > fresh["steps"]


def test_a_cpu_time_budget_counts_process_cpu_seconds(tmp_path):
    import time
    cpu0 = time.process_time()
    summary = run_training(tiny(tmp_path, "max_train_seconds=0.5", 'budget_clock="cpu"',
                                "steps_per_epoch=100000", "epochs=1"),
                           progress=False, log=lambda *a: None)
    assert summary["stopped"] == "time budget reached" and summary["train_seconds"] >= 0.5
    assert time.process_time() - cpu0 >= summary["train_seconds"]   # it counted CPU seconds


def test_charbonnier_loss_is_a_smooth_l1():
    """loss = "charbonnier": mean sqrt(d**2 + 1e-6), so about mean |d| for errors far above
    1e-3 and 1e-3 for none; "mse" is the mean squared error."""
    out, target = torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    out[0] = 0.5
    assert torch.isclose(engine.training_loss(out, target, "charbonnier"),
                         torch.tensor(0.25 + 0.5e-3), atol=1e-6)
    assert torch.isclose(engine.training_loss(out, target, "mse"), torch.tensor(0.125))
    assert torch.isclose(engine.training_loss(target, target, "charbonnier"),
                         torch.tensor(1e-3))


def test_training_with_the_charbonnier_loss_learns(tmp_path, trained):
    """A run with loss = "charbonnier" trains on it and logs it: it learns, and its logged
    losses lie above those of the same run with MSE (|d| > d**2 for errors below 1)."""
    summary = run_training(tiny(tmp_path, 'loss="charbonnier"'), progress=False,
                           log=lambda *a: None)
    assert summary["final_psnr"] > summary["noisy_psnr"] + 2
    mse_rows = list(csv.DictReader(open(trained[0] / "metrics.csv")))
    rows = list(csv.DictReader(open(tmp_path / "tiny" / "metrics.csv")))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    for row, mse_row in zip(rows, mse_rows):
        assert float(row["train_loss"]) > 2 * float(mse_row["train_loss"])


def test_unwritable_run_folder_fails_before_training(tmp_path):
    (tmp_path / "blocker").write_text("a file, not a folder")
    with pytest.raises(TrainingError, match="cannot write to run folder"):
        run_training(load_config(None, TINY + [f'out_dir="{tmp_path / "blocker"}"']),
                     progress=False, log=lambda *a: None)
