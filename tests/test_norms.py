"""layers.norms.BatchNorm2d: nn.BatchNorm2d's results, state and layout, by another path."""
import pytest
import torch
from torch import nn

from denoise_vit.layers.norms import FEW_CHANNELS, WIDE_BELOW, BatchNorm2d


@pytest.fixture
def threads(request):
    """torch's thread count for one test (the NCHW path is taken only above 1), restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
@pytest.mark.parametrize("channels", [4, WIDE_BELOW, FEW_CHANNELS - 1, FEW_CHANNELS, 32])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_torch_on_channels_last_maps(channels, training, threads,
                                                       monkeypatch):
    torch.manual_seed(0)
    ours, ref = BatchNorm2d(channels), nn.BatchNorm2d(channels)
    seen, forward = [], nn.BatchNorm2d.forward

    def spy(self, x):   # the layout torch's kernel gets from ours
        if self is ours:
            seen.append("nchw" if x.is_contiguous() else "nhwc")
        return forward(self, x)

    monkeypatch.setattr(nn.BatchNorm2d, "forward", spy)
    with torch.no_grad():
        for m in (ours, ref):
            m.weight.copy_(torch.linspace(0.5, 1.5, channels))
            m.bias.copy_(torch.linspace(-0.2, 0.2, channels))
            m.running_mean.fill_(0.1)
            m.running_var.fill_(2.0)
    ours.train(training)
    ref.train(training)
    x = (torch.randn(3, channels, 9, 7) * 2 + 1).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), ref(xb)
    few = channels < FEW_CHANNELS
    # under WIDE_BELOW channels training takes _FewChannelsNorm (torch's kernel not called);
    # the other few-channel cases go through NCHW on more than one thread
    assert seen == ([] if channels < WIDE_BELOW and training else
                    ["nchw" if few and threads > 1 else "nhwc"])
    assert ya.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ya, yb)
    grad = torch.randn_like(yb)
    ya.backward(grad)
    yb.backward(grad)
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    assert ours.num_batches_tracked == ref.num_batches_tracked


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
@pytest.mark.parametrize("shape", [(4, 4, 16, 16), (3, WIDE_BELOW - 1, 9, 7), (2, 1, 5, 5)])
def test_few_channels_training_is_closer_to_float64_than_torchs_kernel(shape, threads):
    """The wide-row sums of _FewChannelsNorm against float64, beside torch's own kernel."""
    torch.manual_seed(1)
    c = shape[1]
    x = (torch.randn(shape) * 3 + 2).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    results = {}
    for name, module, dtype in (("ours", BatchNorm2d(c), torch.float32),
                                ("torch", nn.BatchNorm2d(c), torch.float32),
                                ("f64", nn.BatchNorm2d(c).double(), torch.float64)):
        with torch.no_grad():
            module.weight.copy_(torch.linspace(0.5, 1.5, c))
            module.bias.copy_(torch.linspace(-0.2, 0.2, c))
        xi = x.to(dtype).clone().requires_grad_()
        y = module(xi)
        y.backward(grad.to(dtype))
        results[name] = [t.double() for t in (y, xi.grad, module.weight.grad, module.bias.grad,
                                               module.running_mean, module.running_var)]
    for ours, theirs, exact in zip(results["ours"], results["torch"], results["f64"]):
        err, torch_err = (ours - exact).abs().max(), (theirs - exact).abs().max()
        assert err <= max(2 * torch_err, 1e-6)
        torch.testing.assert_close(ours, exact, rtol=1e-5, atol=1e-5)


def test_few_channels_output_takes_an_inplace_relu_as_torchs_does():
    torch.manual_seed(3)
    x = (torch.randn(4, 4, 8, 8) + 0.3).contiguous(memory_format=torch.channels_last)
    grads = []
    for norm in (BatchNorm2d(4), nn.BatchNorm2d(4)):
        xi = x.clone().requires_grad_()
        y = nn.ReLU(inplace=True)(norm(xi))
        y.square().sum().backward()
        assert y.is_contiguous(memory_format=torch.channels_last)
        grads.append(xi.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)


def test_few_channels_with_momentum_none_keep_a_cumulative_average():
    torch.manual_seed(2)
    ours, ref = BatchNorm2d(4, momentum=None), nn.BatchNorm2d(4, momentum=None)
    for _ in range(3):
        x = torch.randn(2, 4, 6, 6).contiguous(memory_format=torch.channels_last)
        ours(x), ref(x)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    assert int(ours.num_batches_tracked) == 3


def test_one_value_per_channel_is_refused_as_torch_refuses_it():
    x = torch.randn(1, 4, 1, 1).contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm2d(4)(x)


def test_batchnorm_state_dict_is_torchs():
    """Checkpoints written with nn.BatchNorm2d load into models built with ours, and back."""
    ref = nn.BatchNorm2d(4)
    ours = BatchNorm2d(4)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    assert isinstance(ours, nn.BatchNorm2d)
