"""The batched tiling (TileGrid: gathered with array operations, added a slice per tile) gives what
the tile-by-tile loop it replaced gave, and the inference copy of a model computes the model."""
import numpy as np
import pytest
import torch

from denoise_vit import build_model
from denoise_vit.inference.optimize import inference_copy
from denoise_vit.inference.tiling import Denoiser, axis_windows, reflect_indices, tiled_apply


def take(a, index):
    """a[:, index[0], index[1], ...] for 1-D integer index arrays (slices where they are runs)."""
    key = [slice(None)]
    for idx in index:
        run = len(idx) > 0 and idx[-1] - idx[0] == len(idx) - 1 and (np.diff(idx) == 1).all()
        key.append(slice(int(idx[0]), int(idx[-1]) + 1) if run else idx)
    if all(isinstance(k, slice) for k in key):
        return a[tuple(key)]
    return a[np.ix_(np.arange(a.shape[0]), *[np.arange(k.start, k.stop) if isinstance(k, slice)
                                              else k for k in key[1:]])]


def tile_by_tile(fn, x, tiles, pads):
    """The previous implementation's loop: one tile at a time, slices of the unpadded part."""
    from itertools import product
    sizes = x.shape[2:]
    padded = tuple(s + b + a for s, (b, a) in zip(sizes, pads))
    index = [reflect_indices(s, b, a).numpy() for s, (b, a) in zip(sizes, pads)]
    axes = [axis_windows(s, t, t // 4) for s, t in zip(padded, tiles)]
    acc = None
    for n in range(x.shape[0]):
        for grid in product(*axes):
            tile = take(x[n], [idx[s:s + t] for idx, (s, _), t in zip(index, grid, tiles)])
            y = fn(torch.from_numpy(np.ascontiguousarray(tile, np.float32))[None])[0].numpy()
            if acc is None:
                acc = np.zeros((x.shape[0], y.shape[0], *sizes), np.float32)
            src, dst, weight = [slice(None)], [slice(None)], None
            for (s, w), t, size, (before, _) in zip(grid, tiles, sizes, pads):
                lo, hi = max(0, before - s), min(t, before + size - s)
                src.append(slice(lo, hi))
                dst.append(slice(s + lo - before, s + hi - before))
                weight = w[lo:hi] if weight is None else np.multiply.outer(weight, w[lo:hi])
            if all(sl.stop > sl.start for sl in src[1:]):
                acc[n][tuple(dst)] += y[tuple(src)] * weight
    return acc


@pytest.mark.parametrize("shape, tiles, pads", [
    ((2, 1, 70, 45), (32, 16), ((3, 3), (1, 2))),
    ((1, 2, 64, 64), (32, 32), ((0, 0), (0, 0))),
    ((1, 1, 5, 40, 33), (4, 16, 16), ((2, 2), (0, 0), (4, 3))),   # a video clip, time padded
    ((3, 1, 9, 130), (8, 48), ((0, 0), (1, 0))),
])
def test_batched_tiling_equals_the_tile_by_tile_loop(shape, tiles, pads):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60000, size=shape).astype(np.uint16)
    dims = len(shape) - 2
    conv = torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d
    torch.manual_seed(0)
    layer = conv(shape[1], 2, 3, padding=1)

    @torch.no_grad()
    def fn(b):
        # not local (each tile its own mean): tiles differ from the whole
        return torch.tanh(layer(b / 60000.0)) + b.mean(dim=tuple(range(1, b.ndim)), keepdim=True)

    overlaps = tuple(t // 4 for t in tiles)
    batched = tiled_apply(fn, x, tiles, overlaps, pads=pads, batch_size=5)
    assert batched.shape == (shape[0], 2, *shape[2:]) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, tile_by_tile(fn, x, tiles, pads), rtol=1e-5, atol=1e-5)


def test_a_nan_in_the_padding_does_not_reach_the_output():
    x = torch.rand(1, 1, 30, 30)

    def fn(b):
        out = b.clone()
        out[:, :, :2] = float("nan")   # the first rows of every tile: padding in the top tiles
        return out

    out = tiled_apply(fn, x, (16, 16), (0, 0), pads=((2, 0), (0, 2)))
    assert torch.isfinite(out[:, :, :14]).all()


@torch.no_grad()
@pytest.mark.parametrize("config", [dict(embed="conv_stem", stem_skips=True, embed_dim=32,
                                         depth=1, num_heads=2),
                                    dict(depth=1, embed_dim=16, num_heads=2)])
def test_inference_copy_computes_the_model_and_leaves_it_alone(config):
    model = build_model("vit_denoiser", **config).eval()
    for m in model.modules():            # BatchNorm statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = inference_copy(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    x = torch.rand(3, 1, 64, 64)
    assert torch.allclose(fast(x.contiguous(memory_format=torch.channels_last)), model(x),
                          atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


@torch.no_grad()
def test_cpu_image_denoiser_keeps_fused_attention_with_the_plain_paths_output():
    from denoise_vit.layers.attention import Attention, set_fused_attention
    model = build_model("vit_denoiser", depth=2, embed_dim=16, num_heads=2).eval()
    den = Denoiser(model)
    inner = [m for m in den.model.modules() if isinstance(m, Attention)]
    assert inner and all(m.fused for m in inner)
    x = torch.rand(2, 1, 64, 64)
    plain = inference_copy(model.plane_model())
    set_fused_attention(plain, False)
    assert not any(m.fused for m in plain.modules() if isinstance(m, Attention))
    assert torch.allclose(den.model(x), plain(x), atol=1e-5)


@torch.no_grad()
def test_denoiser_is_the_plain_model_on_one_tile():
    model = build_model("vit_denoiser", embed="conv_stem", stem_skips=True, embed_dim=32,
                        depth=1, num_heads=2).eval()
    x = torch.rand(2, 1, 64, 64)
    assert torch.allclose(Denoiser(model).denoise(x), model(x), atol=1e-5)


def test_default_batch_is_larger_on_a_cuda_gpu_and_follows_the_tile_size():
    model = build_model("vit_denoiser", depth=1, embed_dim=16, num_heads=2).eval()
    den = Denoiser(model)
    assert den.batch_for((64, 64)) == 32 and den.batch_for((128, 128)) == 8
    den.device = torch.device("cuda")        # the rule alone; nothing runs on it here
    assert den.batch_for((64, 64)) == 512 and den.batch_for((128, 128)) == 128
    assert Denoiser(model, batch_size=5).batch_for((64, 64)) == 5   # given: kept


def test_gathering_through_the_window_view_equals_indexing_every_pixel():
    from denoise_vit.inference.tiling import TileGrid
    x = np.random.default_rng(1).integers(0, 60000, size=(2, 3, 70, 45)).astype(np.uint16)
    grid = TileGrid(2, (70, 45), (32, 16), (8, 4), ((3, 3), (1, 2)))
    direct = np.logical_and.reduce([d[grid.jobs[:, 1 + a]] for a, d in enumerate(grid.direct)])
    assert direct.any() and not direct.all()          # both paths, and batches that mix them
    for first in range(0, len(grid), 5):
        jobs = grid.jobs[first:first + 5]
        np.testing.assert_array_equal(grid.gather(x, jobs), grid._gather_indexed(x, jobs))


# --- the tiling on a torch device (used on a CUDA GPU; run here on the CPU, forced)

@pytest.mark.parametrize("shape, tiles, pads", [
    ((2, 1, 70, 45), (32, 16), ((3, 3), (1, 2))),
    ((1, 1, 5, 40, 33), (4, 16, 16), ((2, 2), (0, 0), (4, 3))),   # a video clip, time padded
])
def test_tiling_on_a_device_equals_the_numpy_tiling(shape, tiles, pads):
    from denoise_vit.inference.tiling import tiled_apply_on
    x = np.random.default_rng(0).integers(0, 60000, size=shape).astype(np.uint16)
    torch.manual_seed(0)
    layer = (torch.nn.Conv2d if len(shape) == 4 else torch.nn.Conv3d)(1, 2, 3, padding=1)

    @torch.no_grad()
    def fn(b):
        assert b.dtype == torch.float32
        return torch.tanh(layer(b / 60000.0)) + b.mean(dim=tuple(range(1, b.ndim)), keepdim=True)

    overlaps = tuple(t // 4 for t in tiles)
    numpy_way = tiled_apply(fn, x, tiles, overlaps, pads=pads, batch_size=5)
    on_device = tiled_apply_on(fn, x, tiles, overlaps, pads=pads, batch_size=5, device="cpu")
    assert on_device.dtype == np.float32 and on_device.shape == numpy_way.shape
    np.testing.assert_allclose(on_device, numpy_way, rtol=1e-6, atol=1e-5)
    assert np.abs(numpy_way).max() > 1   # not trivially equal


def test_a_nan_in_the_padding_does_not_reach_the_output_on_a_device():
    x = torch.rand(1, 1, 30, 30)

    def fn(b):
        out = b.clone()
        out[:, :, :2] = float("nan")
        return out

    out = tiled_apply(fn, x, (16, 16), (0, 0), pads=((2, 0), (0, 2)), device="cpu")
    assert isinstance(out, torch.Tensor) and torch.isfinite(out[:, :, :14]).all()


def small_model_and_stack(kind, seed):
    """A tiny image or video model, a uint16 stack for it and a Normalization per plane."""
    from denoise_vit.inference.intensity import Normalization
    rng = np.random.default_rng(seed)
    if kind == "image":
        model = build_model("vit_denoiser", depth=1, embed_dim=16, num_heads=2).eval()
        stack = rng.integers(0, 4000, size=(3, 1, 90, 75)).astype(np.uint16)
    else:
        model = build_model("video_denoiser", variant="divided_space_time", img_size=32, depth=1,
                            embed_dim=16, num_heads=2, num_frames=4).eval()
        stack = rng.integers(0, 4000, size=(7, 1, 40, 37)).astype(np.uint16)
    norms = [Normalization(10.0 * i, 3000.0 + 100 * i, 0.0, 1.0) for i in range(len(stack))]
    return model, stack, norms


@torch.no_grad()
@pytest.mark.parametrize("kind", ["image", "video"])
def test_denoiser_tiling_on_the_device_gives_the_same_change(kind):
    model, stack, norms = small_model_and_stack(kind, 2)
    numpy_way = Denoiser(model, tile=32, batch_size=7).change(stack, norms)
    den = Denoiser(model, tile=32, batch_size=7, tile_on_device=True)
    assert den.tiles_on_device(stack)
    np.testing.assert_allclose(den.change(stack, norms), numpy_way, rtol=1e-5, atol=1e-5)
    assert not Denoiser(model).tiles_on_device(stack)   # the CPU default: numpy


@pytest.mark.parametrize("dtype", [">u2", ">f4", "<i2", "bool", "float16", "uint32"])
def test_tiling_on_a_device_takes_any_byte_order_and_dtype(dtype):
    from denoise_vit.inference.tiling import device_dtype, tiled_apply_on
    x = (np.random.default_rng(0).random((1, 1, 40, 40)) * 100).astype(dtype)
    assert device_dtype(x.dtype).isnative
    out = tiled_apply_on(lambda b: b * 2, x, (16, 16), (4, 4), device="cpu")
    np.testing.assert_allclose(out, 2 * x.astype(np.float64), rtol=1e-6)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_concurrent_model_calls_give_the_same_change_bit_for_bit(kind):
    model, stack, norms = small_model_and_stack(kind, 3)
    before = torch.get_num_threads()
    torch.set_num_threads(1)    # the reference: the same calls, one at a time, on one thread
    try:
        one = Denoiser(model, tile=32, batch_size=3, workers=1).change(stack, norms)
    finally:
        torch.set_num_threads(before)
    calls = []
    den = Denoiser(model, tile=32, batch_size=3, workers=3)
    change = den._change
    den._change = lambda batch: calls.append(torch.get_num_threads()) or change(batch)
    three = den.change(stack, norms)
    assert len(calls) > 3 and set(calls) == {1}     # each call on one torch thread
    assert torch.get_num_threads() == before        # put back after
    np.testing.assert_array_equal(three, one)       # added in the same order: the same bits


def test_denoiser_workers_follow_torch_threads_on_the_cpu_only():
    from denoise_vit.inference.tiling import MAX_CONCURRENT_CALLS
    model = build_model("vit_denoiser", depth=1, embed_dim=16, num_heads=2).eval()
    den = Denoiser(model)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert den.workers_for(on_device=False) == (2, 1)
        assert den.workers_for(on_device=True)[0] == 1
        assert Denoiser(model, workers=1).workers_for(on_device=False) == (1, 2)
        torch.set_num_threads(MAX_CONCURRENT_CALLS * 2)   # many cores: capped, threads shared
        assert den.workers_for(on_device=False) == (MAX_CONCURRENT_CALLS, 2)
    finally:
        torch.set_num_threads(before)
    from denoise_vit.errors import DenoiseVitError
    with pytest.raises(DenoiseVitError, match="workers"):
        Denoiser(model, workers=0)


def test_results_come_in_order_whatever_finishes_first():
    import time
    from denoise_vit.inference.tiling import in_order
    from denoise_vit.threads import concurrent_calls

    def slow_first(i):
        time.sleep(0.05 if i % 3 == 0 else 0.0)
        return i

    with concurrent_calls(3) as pool:
        assert list(in_order(slow_first, range(10), pool, ahead=6)) == list(range(10))
    assert list(in_order(slow_first, range(4))) == [0, 1, 2, 3]


def test_a_single_batch_keeps_torchs_threads():
    x = np.random.default_rng(4).random((1, 1, 40, 40)).astype(np.float32)
    seen = []

    def fn(batch):
        seen.append((len(batch), torch.get_num_threads()))
        return batch * 2

    before = torch.get_num_threads()
    out = tiled_apply(fn, x, (16, 16), (4, 4), batch_size=32, workers=2)   # 9 tiles, 1 batch
    np.testing.assert_allclose(out, 2 * x, rtol=1e-6)
    assert seen == [(9, before)]
    seen.clear()
    tiled_apply(fn, x, (16, 16), (4, 4), batch_size=4, workers=2)   # 3 batches -> evened to 3 x 3
    assert [n for n, _ in seen] == [3, 3, 3] and {t for _, t in seen} == {1}
