"""Inference at any size: padding, tiling, blending, stacks, video windows, intensity mapping."""
from itertools import product

import numpy as np
import pytest
import torch
from torch import nn

from denoise_vit import build_model
from denoise_vit.errors import DenoiseVitError
from denoise_vit.models.base import DenoisingModel, ModelFacts
from denoise_vit.inference.tiling import (Denoiser, axis_windows, pad_to_multiple, reflect_indices,
                                   reflect_pad, tile_starts, tiled_apply, window_1d)
from denoise_vit.inference.intensity import Normalization, percentile_range, training_record


class LocalModel(DenoisingModel):
    """Stand-in denoiser whose output at a pixel depends only on pixels within 2 of it (two 3x3
    convolutions), so tiling with an overlap of at least 8 must reproduce the whole-image
    output exactly."""
    facts = property(lambda self: self._facts)

    def __init__(self, channels=1, patch_size=8, img_size=32):
        super().__init__()
        self._facts = ModelFacts("image", channels, (patch_size, patch_size), (img_size, img_size))
        self.net = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.Tanh(),
                                 nn.Conv2d(8, channels, 3, padding=1))

    def forward(self, x):
        return self.net(x)


class LocalVideoModel(DenoisingModel):
    """Stand-in video model (B, C, T, H, W): a 3x3x3 convolution, local in time and space."""
    facts = property(lambda self: self._facts)

    def __init__(self, num_frames=8, patch_size=8, img_size=32):
        super().__init__()
        self._facts = ModelFacts("video", 1, (1, patch_size, patch_size),
                                (num_frames, img_size, img_size))
        self.net = nn.Conv3d(1, 1, 3, padding=1)

    def forward(self, x):
        assert x.shape[2] == self.facts.frames, "the window must be num_frames long"
        return self.net(x)


@pytest.mark.parametrize("n, before, after", [(5, 2, 3), (3, 7, 11), (2, 5, 0), (9, 0, 8)])
def test_reflect_indices_match_numpy_reflect(n, before, after):
    expected = np.pad(np.arange(n), (before, after), mode="reflect")
    assert reflect_indices(n, before, after).tolist() == expected.tolist()


@pytest.mark.parametrize("h, w", [(37, 53), (8, 8), (2, 3), (65, 127), (9, 1000)])
def test_padding_to_patch_multiple_and_cropping_back(h, w):
    x = torch.randn(2, 1, h, w)
    padded, crop = pad_to_multiple(x, {2: 8, 3: 8})
    assert padded.shape[2] % 8 == 0 and padded.shape[3] % 8 == 0
    assert padded.shape[2] - h < 8 and padded.shape[3] - w < 8
    assert torch.equal(padded[crop], x)
    # the padding mirrors the image (numpy's reflect), not zeros
    top = (padded.shape[2] - h) // 2
    left = (padded.shape[3] - w) // 2
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (top, padded.shape[2] - h - top),
                                  (left, padded.shape[3] - w - left)), mode="reflect")
    assert np.array_equal(padded.numpy(), expected)


@pytest.mark.parametrize("size, tile, overlap", [(100, 32, 8), (64, 64, 16), (65, 64, 16),
                                                 (1000, 128, 32), (33, 16, 0)])
def test_tiles_cover_the_axis_with_the_overlap(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == size
    for a, b in zip(starts, starts[1:]):
        assert 0 < b - a <= tile - overlap
    assert tile_starts(size, size + 8, overlap) == [0]


def axis_total(size, tile, overlap):
    """Sum over the tiles of an axis of their unnormalised windows (the blend's normaliser)."""
    total = torch.zeros(size, dtype=torch.float64)
    for s in tile_starts(size, tile, overlap):
        total[s:s + tile] += window_1d(size, tile, overlap, s)
    return total


@pytest.mark.parametrize("size, tile, overlap", [(112, 32, 16), (104, 32, 8), (56, 8, 4)])
def test_blend_windows_sum_to_one_on_a_regular_grid(size, tile, overlap):
    # the stride divides size - tile: every pixel's windows add up to exactly 1, no normaliser
    assert torch.allclose(axis_total(size, tile, overlap), torch.ones(size, dtype=torch.float64),
                          atol=1e-12)


@pytest.mark.parametrize("size", [100, 77])
def test_blend_windows_are_positive_cover_everything_and_vanish_at_inner_edges(size):
    tile, overlap = 32, 16
    assert axis_total(size, tile, overlap).min() > 0.5  # every pixel covered by a tile that counts
    for s in tile_starts(size, tile, overlap):
        w = window_1d(size, tile, overlap, s)
        assert w.min() >= 0 and w.max() == 1
        if s > 0:  # an edge facing another tile: its outer quarter-overlap has no weight
            assert w[:4].abs().max() == 0
        else:  # the image border: full weight
            assert (w[:16] == 1).all()


@pytest.mark.parametrize("sizes", [(100, 77), (24, 56, 41)])
def test_normalised_separable_weights_form_a_partition_of_unity(sizes):
    # the N-D weight of a tile is the product of its axes' normalised windows: summed over every
    # tile of the grid it is 1 at every pixel, although no image-sized weight array is built
    tile, overlap = 16, 6
    total = np.zeros(sizes)
    axes = [axis_windows(size, tile, overlap) for size in sizes]
    for grid in product(*axes):
        weight = np.ones(())
        for _, w in grid:
            weight = np.multiply.outer(weight, w)
        total[tuple(slice(s, s + tile) for s, _ in grid)] += weight
    assert np.allclose(total, 1, atol=1e-6)


@pytest.mark.parametrize("h, w", [(37, 53), (100, 131)])
def test_tiled_identity_reconstructs_the_input(h, w):
    x = torch.randn(3, 2, h, w)
    out = tiled_apply(lambda b: b.clone(), x, (16, 16), (6, 6), batch_size=5)
    assert torch.allclose(out, x, atol=1e-6)


@torch.no_grad()
@pytest.mark.parametrize("h, w, tile, overlap", [(150, 97, 32, 8), (200, 200, 64, 16),
                                                 (77, 131, 48, 24)])
def test_tiled_equals_whole_image_for_a_local_model(h, w, tile, overlap):
    model = LocalModel()
    x = torch.rand(2, 1, h, w)
    tiled = Denoiser(model, tile=tile, overlap=overlap, batch_size=3).denoise(x)
    whole = Denoiser(model, tile=0).denoise(x)
    assert tiled.shape == whole.shape == x.shape
    assert (tiled - whole).abs().max() < 1e-3
    assert (tiled - whole).abs().max() < 1e-5  # in fact equal up to float rounding


@torch.no_grad()
def test_vit_tiled_equals_whole_when_the_image_fits_one_tile():
    model = build_model("vit_denoiser", img_size=32, depth=1, embed_dim=16, num_heads=2).eval()
    x = torch.rand(1, 1, 45, 61)  # padded to 48x64: one tile of 64
    tiled = Denoiser(model, tile=64).denoise(x)
    whole = Denoiser(model, tile=0).denoise(x)
    padded, crop = pad_to_multiple(x, {2: 8, 3: 8})
    assert (tiled - whole).abs().max() < 1e-3
    assert torch.allclose(whole, model(padded)[crop], atol=1e-6)


@torch.no_grad()
@pytest.mark.parametrize("h, w", [(37, 53), (130, 70), (2, 2)])
def test_vit_denoises_any_size_tiled(h, w):
    model = build_model("vit_denoiser", img_size=32, depth=1, embed_dim=16, num_heads=2)
    out = Denoiser(model, tile=32, overlap=8).denoise(torch.rand(1, 1, h, w))
    assert out.shape == (1, 1, h, w) and torch.isfinite(out).all()


@torch.no_grad()
def test_stack_with_an_image_model_is_denoised_plane_by_plane():
    model = build_model("vit_denoiser", img_size=32, depth=1, embed_dim=16, num_heads=2)
    den = Denoiser(model, tile=32, overlap=8, batch_size=4)
    stack = torch.rand(3, 1, 50, 41)
    together = den.denoise(stack)
    for d in range(3):
        assert torch.allclose(together[d], den.denoise(stack[d:d + 1])[0], atol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("frames", [1, 3, 8, 21])
def test_video_sliding_window_equals_the_model_on_the_whole_padded_clip(frames):
    model = LocalVideoModel(num_frames=8)
    clip = torch.rand(frames, 1, 40, 40)   # (T, C, H, W) as Denoiser.denoise takes stacks
    den = Denoiser(model, tile=0, frame_overlap=4)
    out = den.denoise(clip)
    assert out.shape == clip.shape
    # reference: the model once on the clip reflect-padded by half a window in time
    x = reflect_pad(clip.transpose(0, 1)[None], {2: (4, 4)})
    reference = model.net(x)[0, :, 4:4 + frames].transpose(0, 1)
    assert (out - reference).abs().max() < 1e-5


@torch.no_grad()
def test_video_denoiser_model_runs_on_long_uneven_stacks():
    model = build_model("video_denoiser", variant="divided_space_time", img_size=32, depth=1,
                        embed_dim=16, num_heads=2, num_frames=4, tubelet_size=2)
    den = Denoiser(model)
    assert den.kind == "video"
    for frames in (1, 7):
        out = den.denoise(torch.rand(frames, 1, 45, 70))
        assert out.shape == (frames, 1, 45, 70) and torch.isfinite(out).all()


def test_normalization_maps_percentiles_and_inverts():
    x = torch.rand(1, 1, 64, 64) * 3000 + 200
    record = {"percentiles": [1.0, 99.8], "low": 0.0, "high": 0.8}
    norm = Normalization.fit(x, record)
    low, high = percentile_range(norm.apply(x), (1.0, 99.8))
    assert abs(low - 0.0) < 1e-4 and abs(high - 0.8) < 1e-4
    assert torch.allclose(norm.invert(norm.apply(x)), x, rtol=1e-5)


def test_sparse_images_fall_back_to_min_and_max():
    x = np.zeros((100, 100))
    x[5, 5] = 7.0   # one bright pixel: the 1st and 99.8th percentiles are both 0
    assert percentile_range(x) == (0.0, 7.0)
    assert training_record(torch.zeros(4, 4))["high"] == 0.0
    assert Normalization.fit(np.full((4, 4), 3.0), {"low": 0, "high": 1}).scale == 1.0


@torch.no_grad()
def test_percentile_normalisation_makes_denoising_independent_of_units():
    model = build_model("vit_denoiser", img_size=32, depth=1, embed_dim=16, num_heads=2)
    den = Denoiser(model, tile=32, overlap=8)
    record = {"percentiles": [1.0, 99.8], "low": 0.0, "high": 0.8}
    x = torch.rand(1, 1, 40, 50)
    counts = x * 4000 + 100    # the same image in camera counts
    out = den.denoise(x, Normalization.fit(x, record))
    out_counts = den.denoise(counts, Normalization.fit(counts, record))
    assert torch.allclose(out_counts, out * 4000 + 100, rtol=1e-4, atol=0.05)


def test_bad_options_are_one_message():
    model = LocalModel()
    with pytest.raises(DenoiseVitError, match="multiple of 8"):
        Denoiser(model, tile=30)
    with pytest.raises(DenoiseVitError, match="smaller than the tile"):
        Denoiser(model, tile=32, overlap=32)
    with pytest.raises(DenoiseVitError, match="batch-size"):
        Denoiser(model, batch_size=0)
    with pytest.raises(DenoiseVitError, match="takes 1 channel"):
        Denoiser(model).denoise(torch.rand(1, 3, 16, 16))
