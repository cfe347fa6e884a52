"""Distributed training: `torchrun --nproc_per_node 2 -m denoise_vit train` on the CPU (gloo).

Each rank dumps what it holds through a test-only hook (a sitecustomize.py put on PYTHONPATH,
so the real `-m denoise_vit` entry point runs unchanged): its final state dict, the first batch it
trained on, the gradients of its first step, and how many checkpoint writes it made.
"""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from denoise_vit.checkpoint import read_checkpoint
from denoise_vit.training.config import load_config
from denoise_vit.registry import build_model
from denoise_vit.training.setup import model_args_for, seed_everything

pytestmark = pytest.mark.slow   # subprocess scenarios (CI runs them)

SPE, EPOCHS = 3, 2
# no dropout, so one step's gradient can be recomputed here exactly; BatchNorm stays (conv decoder)
ARGS = ["model.depth=1", "data.size=16", "batch_size=4", f"steps_per_epoch={SPE}",
        f"epochs={EPOCHS}", "data.eval_size=4", "figure_samples=1", "seed=5", "name=ddp"]

HOOK = textwrap.dedent("""
    import os
    if os.environ.get("DUMP_RANK_STATE") and "RANK" in os.environ:  # torchrun's workers only
        import torch
        import denoise_vit.training.run as train

        rank, seen = int(os.environ["RANK"]), {"saves": 0}

        def build_run_model(*args, **kwargs):
            seen["model"] = model = real_build_run_model(*args, **kwargs)
            return model

        def make_optimizer(cfg, model):
            optimizer = real_make_optimizer(cfg, model)
            def first_grads(opt, args, kwargs):
                seen.setdefault("first_grads", {n: p.grad.clone()
                                                for n, p in seen["model"].named_parameters()})
            optimizer.register_step_pre_hook(first_grads)
            return optimizer

        class Recording:
            def __init__(self, stream):
                self.stream = stream
            def __next__(self):
                batch = next(self.stream)
                seen.setdefault("first_batch", [t.clone() for t in batch])
                return batch
            def state_dict(self):
                return self.stream.state_dict()
            def load_state_dict(self, state):
                self.stream.load_state_dict(state)

        def make_train_stream(*args, **kwargs):
            return Recording(real_make_train_stream(*args, **kwargs))

        def atomic_save(*args, **kwargs):
            seen["saves"] += 1
            return real_atomic_save(*args, **kwargs)

        def run_training(*args, **kwargs):
            summary = real_run_training(*args, **kwargs)
            torch.save({"state": seen["model"].state_dict(), "first_batch": seen["first_batch"],
                        "first_grads": seen["first_grads"], "saves": seen["saves"]},
                       os.path.join(os.environ["DUMP_RANK_STATE"], f"rank{rank}.pt"))
            return summary

        real_build_run_model, train.build_run_model = train.build_run_model, build_run_model
        real_make_optimizer, train.make_optimizer = train.make_optimizer, make_optimizer
        real_make_train_stream, train.make_train_stream = train.make_train_stream, make_train_stream
        real_atomic_save, train.atomic_save = train.atomic_save, atomic_save
        real_run_training, train.run_training = train.run_training, run_training
""")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    (tmp / "hook").mkdir()
    (tmp / "hook" / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "DUMP_RANK_STATE": str(tmp),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp / "hook"),
                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "denoise_vit", "train", "--no-progress", "--out-dir", str(tmp / "runs"), *ARGS],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in range(2)]
    return tmp / "runs" / "ddp", proc, ranks


def test_ranks_end_with_identical_weights(ddp_run):
    run_dir, _, (r0, r1) = ddp_run
    assert r0["state"].keys() == r1["state"].keys()
    assert [k for k in r0["state"] if not torch.equal(r0["state"][k], r1["state"][k])] == []
    ckpt = read_checkpoint(run_dir / "checkpoint_last.pt")
    assert ckpt["step"] == SPE * EPOCHS and ckpt["world_size"] == 2
    assert all(torch.equal(ckpt["model"][k], r0["state"][k]) for k in ckpt["model"])


def test_each_rank_draws_its_own_data(ddp_run):
    run_dir, _, (r0, r1) = ddp_run
    assert not torch.equal(r0["first_batch"][0], r1["first_batch"][0])
    streams = read_checkpoint(run_dir / "checkpoint_last.pt")["streams"]
    assert [s["seed"] for s in streams] == [5000, 5001]
    assert [s["step"] for s in streams] == [SPE * EPOCHS] * 2


def test_gradients_are_the_mean_over_ranks(ddp_run):
    """The first step's gradient, identical on both ranks, is the mean of each rank's own."""
    _, _, (r0, r1) = ddp_run
    cfg = load_config(None, ARGS)
    seed_everything(cfg.seed)
    model = build_model(cfg.model_name, **model_args_for(cfg)).train()
    local = []
    for rank in (r0, r1):
        model.zero_grad()
        inputs, targets = rank["first_batch"]
        F.mse_loss(model(inputs), targets).backward()
        local.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, grad in r0["first_grads"].items():
        assert torch.equal(grad, r1["first_grads"][name])
        torch.testing.assert_close(grad, (local[0][name] + local[1][name]) / 2,
                                   rtol=1e-4, atol=1e-6)
    assert not all(torch.allclose(local[0][n], local[1][n]) for n in local[0])


def test_rank_zero_alone_writes_logs_and_checkpoints(ddp_run):
    run_dir, proc, (r0, r1) = ddp_run
    assert r1["saves"] == 0 and r0["saves"] >= EPOCHS
    assert proc.stdout.count("epoch 1:") == 1 and proc.stdout.count("world size 2") == 1
    assert f"done: {SPE * EPOCHS} steps" in proc.stdout
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".lock", "checkpoint_best.pt", "checkpoint_last.pt", "checkpoint_prev.pt", "config.json",
        "curves.png", "metrics.csv", "samples.png"]
