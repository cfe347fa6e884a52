"""layers.norms.BatchNorm2d: nn.BatchNorm2d's results, state and layout, by another path."""
import pytest
import torch
from torch import nn

from denoise_vit.layers.norms import FEW_CHANNELS, BatchNorm2d


@pytest.fixture
def threads(request):
    """torch's thread count for one test (the NCHW path is taken only above 1), restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
@pytest.mark.parametrize("channels", [4, FEW_CHANNELS - 1, FEW_CHANNELS, 32])
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
    assert seen == ["nchw" if threads > 1 and channels < FEW_CHANNELS else "nhwc"]
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


def test_batchnorm_state_dict_is_torchs():
    """Checkpoints written with nn.BatchNorm2d load into models built with ours, and back."""
    ref = nn.BatchNorm2d(4)
    ours = BatchNorm2d(4)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    assert isinstance(ours, nn.BatchNorm2d)
