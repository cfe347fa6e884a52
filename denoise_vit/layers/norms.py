"""BatchNorm2d for channels-last maps of few channels on the CPU.

torch's CPU batch-norm kernel for channels-last (NHWC) input is slow when the map has few
channels: each channel's statistics are gathered 4 or 8 values apart. vit_fast's decoder ends
in stages of 8 and 4 channels at 32x32 and 64x64. Forward + backward of one training-mode norm,
`python experiments/norm_speed.py` (docs/norm_speed.json; 2-core EPYC, alone under the CPU lock,
2026-12-06 10:05): 4 channels at 64x64, 32 images on 1 thread (a two-halves training step):
torch's kernel 6.3 ms, converted to NCHW and back 3.4 ms, `_FewChannelsNorm` 1.9 ms; 64 images
on 2 threads (a one-pass step): 15.1, 4.0 and 3.4 ms. With 8 channels at 32x32 torch's kernel
is as fast as ours on 1 thread (0.8 ms), and from 16 channels on it is the fastest.

So, on the CPU, for a channels-last map:
* fewer than WIDE_BELOW (8) channels, batch statistics (training): `_FewChannelsNorm`, the map
  viewed as rows of channels (no copy), each row of the view holding several pixels' channels
  side by side so that the sums run over wide rows; two passes for the variance; closer to
  float64 than torch's kernel in the tests. Running statistics are updated as nn.BatchNorm2d
  does;
* otherwise fewer than FEW_CHANNELS (16) channels on more than one thread: through NCHW;
* everything else: nn.BatchNorm2d unchanged.
"""
import torch
from einops import rearrange
from torch import nn

# below these many channels a channels-last map takes the paths above (CPU only)
FEW_CHANNELS = 16
WIDE_BELOW = 8
# pixels side by side in a row of the wide view (a power of two; fewer when the count is odd)
_WIDE = 16


def _wide(rows):
    """(M, C) rows of channels -> (M / k, k * C) and k, the same memory."""
    m, c = rows.shape
    k = _WIDE
    while m % k:
        k //= 2
    return rows.view(m // k, k * c), k


def _channel_sums(wide, k):
    """Per-channel sums of a wide view (M / k, k * C)."""
    return wide.sum(0).view(k, -1).sum(0)


class _FewChannelsNorm(torch.autograd.Function):
    """Batch normalisation with batch statistics of a channels-last map (N, C, H, W), affine;
    returns the output (channels-last) and the batch mean and biased variance."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        n, c, h, w = x.shape
        wide, k = _wide(rearrange(x, "n c h w -> (n h w) c"))
        m = n * h * w
        mean = _channel_sums(wide, k) / m
        centred = wide - mean.repeat(k)
        var = _channel_sums(centred * centred, k) / m
        invstd = torch.rsqrt(var + eps)
        scale = weight * invstd
        # written into a channels-last tensor of its own, not returned as a view: the ReLU
        # after it works in place
        out = torch.empty_like(x, memory_format=torch.channels_last)
        torch.addcmul((bias - mean * scale).repeat(k), wide, scale.repeat(k),
                      out=_wide(rearrange(out, "n c h w -> (n h w) c"))[0])
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad, _mean_grad, _var_grad):
        x, weight, mean, invstd = ctx.saved_tensors
        n, c, h, w = x.shape
        wide, k = _wide(rearrange(x, "n c h w -> (n h w) c"))
        g = rearrange(grad, "n c h w -> (n h w) c").reshape(wide.shape)
        m = n * h * w
        sum_g = _channel_sums(g, k)
        sum_g_xhat = invstd * (_channel_sums(g * wide, k) - mean * sum_g)   # sum of g * x-hat
        scale = weight * invstd
        # dx = scale * (g - mean(g) - x-hat * mean(g * x-hat)) = scale * g + a * x + b
        a = -scale * invstd * sum_g_xhat / m
        b = -scale * sum_g / m - a * mean
        dx = torch.addcmul(b.repeat(k), g, scale.repeat(k)).addcmul_(wide, a.repeat(k))
        dx = rearrange(dx.view(m, c), "(n h w) c -> n c h w", n=n, h=h)
        return dx, sum_g_xhat, sum_g, None


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d with the same parameters and buffers (checkpoints load either way); on
    the CPU, a channels-last map of fewer than FEW_CHANNELS channels takes the paths of the
    module docstring."""

    def _few_channels(self, x):
        return (self.num_features < FEW_CHANNELS and x.device.type == "cpu" and x.dim() == 4
                and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last))

    def forward(self, x):
        if not self._few_channels(x):
            return super().forward(x)
        batch_stats = self.training or not self.track_running_stats
        if (self.num_features < WIDE_BELOW and batch_stats and self.affine
                and x.dtype == torch.float32 and x.numel() > x.shape[1]):
            return self._train_forward(x)
        if torch.get_num_threads() > 1:
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)

    def _train_forward(self, x):
        out, mean, var = _FewChannelsNorm.apply(x, self.weight, self.bias, self.eps)
        if self.training and self.track_running_stats:   # as nn.BatchNorm2d.forward
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                count = x.numel() // x.shape[1]
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(var * (count / (count - 1)), factor)
        return out
