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


def test_a_warmup_share_ends_a_slow_runs_warmup_within_its_budget():
    # 50 warm-up steps, but a run of 10 steps in 10 s: without the share it never leaves warm-up
    opt, clock = sgd(), FakeClock()
    sched = make_scheduler(opt, schedule="cosine", warmup_steps=50, min_lr_ratio=0.1,
                           budget_seconds=10.0, clock=clock, warmup_share=0.2)
    f = factors(sched, opt, 10, clock, [float(t) for t in range(1, 11)])
    assert f[0] == pytest.approx(0.5)                    # 1 s of the 2-s warm-up
    assert f[1] == 1.0                                   # warm-up over at 20 % of the budget
    assert f[5] == pytest.approx(0.55)                   # half-way through the cosine's 8 s
    assert f[-1] == pytest.approx(0.1)
    plain = make_scheduler(sgd(), schedule="cosine", warmup_steps=50, min_lr_ratio=0.1,
                           budget_seconds=10.0, clock=FakeClock())
    assert max(factors(plain, plain.optimizer, 10, FakeClock(), list(range(1, 11)))) <= 0.22


def test_a_warmup_share_keeps_a_fast_runs_shorter_warmup_then_holds_the_rate():
    opt, clock = sgd(), FakeClock()
    sched = make_scheduler(opt, schedule="cosine", warmup_steps=2, min_lr_ratio=0.0,
                           total_steps=100, warmup_share=0.2)
    f = factors(sched, opt, 100)
    assert f[0] == 1.0 and f[18] == 1.0                  # steps 2..20: warmed up, not decaying
    assert f[59] == pytest.approx(0.5)                   # step 60: half of the cosine's 80 steps
    assert f[-1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("share, budget", [(0.0, 10.0), (1.0, 10.0), (0.2, None)])
def test_a_warmup_share_needs_a_budget_and_a_share_between_0_and_1(share, budget):
    with pytest.raises(ValueError, match="warmup_share"):
        make_scheduler(sgd(), schedule="cosine" if budget else "constant", warmup_steps=5,
                       budget_seconds=budget, clock=FakeClock(), warmup_share=share)
