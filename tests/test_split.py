"""training.split: a step as two halves of the batch on two threads."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from denoise_vit.layers.norms import BatchNorm2d
from denoise_vit.training.engine import train_steps
from denoise_vit.training.split import MIN_HALF, SplitStep, describe, halves_fit, split_reason

CPU = torch.device("cpu")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def conv_net(norm=False):
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 8, 3, padding=1)]
    layers += [BatchNorm2d(8)] if norm else []
    layers += [nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1)]
    return nn.Sequential(*layers)


def mse(net, x, y):
    return F.mse_loss(net(x), y)


def batch(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 12, 12, generator=g)
    return x, x * 0.5


def test_without_batch_norms_the_halves_give_the_whole_batch_gradient(two_threads):
    net, ref = conv_net(), conv_net()
    x, y = batch(41)                       # uneven halves: weighted by their sizes
    loss = SplitStep(net)(x, y, mse)
    whole = mse(ref, x, y)
    whole.backward()
    torch.testing.assert_close(loss, whole.detach())
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)
    assert torch.get_num_threads() == 2    # torch's count is put back after the step


def test_with_batch_norms_each_half_normalises_its_own_images(two_threads):
    net, ref = conv_net(norm=True), conv_net(norm=True)
    x, y = batch(40)
    loss = SplitStep(net)(x, y, mse)
    halves = [mse(ref, x[:20], y[:20]), mse(ref, x[20:], y[20:])]
    torch.testing.assert_close(loss, (halves[0] + halves[1]).detach() / 2)
    ((halves[0] + halves[1]) / 2).backward()
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)
    # the model's running statistics are its own half's; the whole batch's would differ
    ref_first = conv_net(norm=True)
    ref_first(x[:20])
    torch.testing.assert_close(net[1].running_mean, ref_first[1].running_mean)


def test_the_replica_shares_the_parameters_and_not_the_buffers():
    net = conv_net(norm=True)
    step = SplitStep(net)
    assert step._model() is net
    for p, q in zip(net.parameters(), step.replica.parameters()):
        assert p is q
    assert net[1].running_mean is not step.replica[1].running_mean
    step.close()


def test_a_model_keeps_its_split_step_until_its_parameters_change():
    net = conv_net()
    first = SplitStep.of(net)
    assert SplitStep.of(net) is first
    net[0].weight = nn.Parameter(net[0].weight.detach().clone())
    again = SplitStep.of(net)
    assert again is not first and again.replica[0].weight is net[0].weight


def test_a_split_step_does_not_keep_its_model_alive():
    import gc
    import weakref
    net = conv_net()
    step = weakref.ref(SplitStep.of(net))
    gone = weakref.ref(net)
    del net
    gc.collect()
    assert gone() is None and step() is None


def test_gradients_keep_the_parameters_layout(two_threads):
    net = conv_net().to(memory_format=torch.channels_last)
    x, y = batch(32)
    SplitStep(net)(x.contiguous(memory_format=torch.channels_last), y, mse)
    for p in net.parameters():
        assert p.grad.stride() == p.stride()


def test_an_error_in_the_other_half_reaches_the_caller(two_threads):
    net = conv_net()
    x, y = batch(32)

    def failing(model, a, b):
        if a.shape[0] and model is not net:
            raise RuntimeError("broken half")
        return mse(model, a, b)

    with pytest.raises(RuntimeError, match="broken half"):
        SplitStep(net)(x, y, failing)
    assert torch.get_num_threads() == 2


def test_when_steps_may_split():
    assert split_reason(conv_net(), CPU) is None
    assert split_reason(conv_net(), torch.device("cuda")) == "not on the CPU"
    assert split_reason(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)), CPU) == \
        "dropout or stochastic depth"
    assert split_reason(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.0)), CPU) is None
    assert halves_fit(2 * MIN_HALF, 2) and not halves_fit(2 * MIN_HALF - 1, 2)
    assert not halves_fit(64, 1)


def test_the_runs_log_line_says_how_steps_run():
    net = conv_net()
    assert "two halves on two threads of 1 and 1 torch thread(s)" in describe(net, CPU, 64, 2)
    assert describe(net, CPU, 64, 1) == "steps: one pass over each batch (one torch thread)"
    assert "batches of 16: under 32 images" in describe(net, CPU, 16, 2)
    assert "split_batch = false" in describe(net, CPU, 64, 2, enabled=False)
    dropout = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert "dropout" in describe(dropout, CPU, 64, 2)


class Stream:
    def __init__(self, n):
        self.batches = (batch(n, seed) for seed in itertools.count())

    def __next__(self):
        return next(self.batches)


def train(split, norm, steps=4, n=48):
    net = conv_net(norm=norm)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    done, loss, images, _ = train_steps(net, Stream(n), opt, sched, first_step=0,
                                        last_step=steps, device=CPU, progress=False, split=split)
    assert (done, images) == (steps, steps * n)
    return net, loss


def test_train_steps_with_halves_follow_the_one_pass_run(two_threads):
    # without batch norms the two are the same optimisation, up to rounding
    one, loss_one = train(False, norm=False)
    two, loss_two = train(True, norm=False)
    assert loss_two == pytest.approx(loss_one, rel=1e-4)
    for p, q in zip(one.parameters(), two.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_train_steps_with_halves_repeat_exactly(two_threads):
    a, loss_a = train(True, norm=True)
    b, loss_b = train(True, norm=True)
    assert loss_a == loss_b
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    one, _ = train(False, norm=True)   # and they differ from one pass: the norms saw halves
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), one.parameters()))


@pytest.mark.parametrize("split_batch", [True, False])
def test_the_config_key_reaches_the_engine(tmp_path, two_threads, monkeypatch, split_batch):
    from denoise_vit.training import split
    from denoise_vit.training.config import load_config
    from denoise_vit.training.run import run_training
    calls = []
    real = split.SplitStep.__call__
    monkeypatch.setattr(split.SplitStep, "__call__",
                        lambda self, *a: calls.append(1) or real(self, *a))
    cfg = load_config(None, ["model.depth=1", "data.size=16", "batch_size=32", "epochs=1",
                             "steps_per_epoch=2", "data.eval_size=8", "figure_samples=1",
                             f"split_batch={str(split_batch).lower()}",
                             f'out_dir="{tmp_path}"', 'name="run"'])
    lines = []
    run_training(cfg, progress=False, log=lines.append)
    assert len(calls) == (2 if split_batch else 0)
    assert any(line.startswith("steps: each batch of 32 as two halves" if split_batch
                               else "steps: one pass over each batch (split_batch = false)")
               for line in lines)
