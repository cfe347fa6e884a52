"""The one learning-rate schedule (train and benchmark), the optimizer's parameter groups."""
import pytest
import torch

from denoise_vit import build_model
from denoise_vit.training.config import load_config
from denoise_vit.training.schedule import TrainClock, lr_factor, make_scheduler
from denoise_vit.training.setup import make_optimizer, make_run_scheduler


class FakeClock:
    def __init__(self):
        self.seconds = 0.0


def factors(sched, opt, steps, clock=None, times=None):
    out = []
    for i in range(steps):
        if clock is not None:
            clock.seconds = times[i]
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def sgd():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_warmup_then_constant():
    assert [lr_factor(s, 0.9, warmup_steps=4, schedule="constant") for s in range(6)] == \
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_step_cosine_reaches_the_floor_at_the_last_step():
    opt = sgd()
    sched = make_scheduler(opt, schedule="cosine", warmup_steps=2, min_lr_ratio=0.1,
                           total_steps=12)
    f = factors(sched, opt, 12)
    assert f[0] == 1.0                                   # end of warm-up (step 2 starts decay)
    assert f[6] == pytest.approx(0.55)                   # after step 7: 5 of 10 decay steps
    assert f[-1] == pytest.approx(0.1) and min(f) == pytest.approx(0.1)


def test_time_cosine_reaches_the_floor_at_the_budget():
    opt, clock = sgd(), FakeClock()
    sched = make_scheduler(opt, schedule="cosine", warmup_steps=2, min_lr_ratio=0.1,
                           budget_seconds=10.0, clock=clock)
    f = factors(sched, opt, 5, clock, [0.0, 0.0, 5.0, 10.0, 20.0])
    assert f[:2] == [1.0, 1.0]                           # end of warm-up; no time has passed
    assert f[2] == pytest.approx(0.55)                   # half-way through the budget
    assert f[3] == pytest.approx(0.1) and f[4] == pytest.approx(0.1)


def test_with_steps_and_time_the_cosine_follows_whichever_ends_first():
    opt, clock = sgd(), FakeClock()
    sched = make_scheduler(opt, schedule="cosine", total_steps=100, budget_seconds=10.0,
                           clock=clock)
    # 5 of 100 steps, but 5 of 10 seconds: time is further along
    assert factors(sched, opt, 5, clock, [1, 2, 3, 4, 5.0])[-1] == pytest.approx(0.5)


def test_train_config_with_a_time_budget_gets_the_time_based_cosine():
    cfg = load_config(None, ["schedule=cosine", "epochs=1000", "max_train_seconds=10"])
    model = build_model("vit_denoiser", depth=1)
    opt, clock = make_optimizer(cfg, model), TrainClock()
    sched = make_run_scheduler(cfg, opt, clock=clock)
    clock.done = 5.0        # half the budget spent, a negligible share of the steps
    opt.step()
    sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(cfg.lr * 0.5, rel=1e-3)


def test_weight_decay_spares_norms_biases_and_position_embeddings():
    cfg = load_config(None, ["optimizer=adamw", "weight_decay=0.05"])
    model = build_model("vit_denoiser", depth=1)
    opt = make_optimizer(cfg, model)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    spared = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert "encoder.pos_embed.weight" in spared
    assert "encoder.blocks.0.attn.qkv.weight" in decayed
    assert all(not n.endswith(".bias") for n in decayed)
    assert any("norm" in n for n in spared) and not any("norm" in n for n in decayed)
    assert decayed | spared == set(names.values())


def test_without_weight_decay_one_group_as_earlier_checkpoints_have():
    cfg = load_config(None, [])
    assert len(make_optimizer(cfg, build_model("vit_denoiser", depth=1)).param_groups) == 1
