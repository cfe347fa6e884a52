"""Noise2Noise from a folder of pairs: crops, normalisation, resume, evaluation, bad folders."""
import numpy as np
import pytest
import torch

from data_gen import generate_noise2noise
from denoise_vit.training.config import load_config
from denoise_vit.training.data import make_eval_data, make_train_stream
from denoise_vit.errors import ConfigError
from denoise_vit.inference.io import write_image
from denoise_vit.training.pairs import PairStream, load_pairs
from denoise_vit.training.run import run_training


def make_pairs(root, n=4, size=(40, 56), clean=True, scale=1.0, dtype=np.float32):
    a, b, c = generate_noise2noise(n, size=size, generator=torch.Generator().manual_seed(0))
    for role, images in (("input", a), ("target", b)) + ((("clean", c),) if clean else ()):
        (root / role).mkdir(parents=True)
        for i in range(n):
            write_image(root / role / f"p{i}.tif", (images[i, 0].numpy() * scale).astype(dtype),
                        "YX")
    return a, b, c


def data_cfg(root, *extra):
    return load_config(None, ["data.kind=pairs", f'data.pairs_dir="{root}"', "data.size=32",
                              "data.eval_size=8", *extra]).data


def test_crops_are_reproducible_and_resume_exactly(tmp_path):
    make_pairs(tmp_path)
    data = data_cfg(tmp_path)
    s1 = make_train_stream(data, 4, seed=3, device="cpu")
    s2 = make_train_stream(data, 4, seed=3, device="cpu")
    x1, y1 = next(s1)
    assert x1.shape == y1.shape == (4, 1, 32, 32)
    assert torch.equal(x1, next(s2)[0])
    state = s1.state_dict()
    after = next(s1)
    s3 = make_train_stream(data, 4, seed=99, device="cpu")
    s3.load_state_dict(state)
    assert torch.equal(next(s3)[0], after[0]) and s3.step == 2


def test_pairs_in_counts_are_put_on_the_same_scale(tmp_path):
    make_pairs(tmp_path / "float")
    make_pairs(tmp_path / "u16", scale=20000, dtype=np.uint16)
    a = load_pairs(tmp_path / "float")
    b = load_pairs(tmp_path / "u16")
    for role in ("input", "target", "clean"):
        for x, y in zip(a[role], b[role]):
            assert torch.allclose(x, y, atol=2e-4)


def test_crops_keep_input_and_target_aligned(tmp_path):
    make_pairs(tmp_path)
    pairs = load_pairs(tmp_path)
    # the clean image is the same under both noisy copies, so where the input equals the clean
    # image (no clutter there) a clean-target crop must coincide with the input crop
    stream = PairStream(pairs, 16, size=24, seed=0)
    inputs, clean = stream.crops(16, ("input", "clean"))
    untouched = (inputs - clean).abs() < 1e-6
    assert untouched.float().mean() > 0.3


def test_eval_set_uses_clean_images_when_present(tmp_path):
    make_pairs(tmp_path / "with")
    make_pairs(tmp_path / "without", clean=False)
    x, y = make_eval_data(data_cfg(tmp_path / "with"))
    x2, y2 = make_eval_data(data_cfg(tmp_path / "without"))
    assert torch.allclose(x, x2)          # same files, same seed: the same crops
    assert not torch.allclose(y, y2)       # clean targets in one, noisy copies in the other
    assert ((y - x).abs() > 1e-6).float().mean() < ((y2 - x).abs() > 1e-6).float().mean()


def test_bad_pair_folders_are_one_message(tmp_path):
    with pytest.raises(ConfigError, match="needs data.pairs_dir"):
        load_config(None, ["data.kind=pairs"])
    with pytest.raises(ConfigError, match="no input/ folder"):
        make_eval_data(data_cfg(tmp_path / "nothing"))
    make_pairs(tmp_path / "p")
    (tmp_path / "p" / "target" / "p0.tif").unlink()
    with pytest.raises(ConfigError, match="without a partner"):
        make_eval_data(data_cfg(tmp_path / "p"))
    make_pairs(tmp_path / "small", size=(20, 20))
    with pytest.raises(ConfigError, match="smaller than the crop"):
        make_eval_data(data_cfg(tmp_path / "small"))


def test_training_from_a_pair_folder(tmp_path):
    make_pairs(tmp_path / "pairs")
    cfg = load_config(None, ["data.kind=pairs", f'data.pairs_dir="{tmp_path / "pairs"}"',
                             "data.size=32", "data.eval_size=8", "model.depth=1", "batch_size=4",
                             "steps_per_epoch=2", "epochs=1", f'out_dir="{tmp_path}"', "name=n2n"])
    summary = run_training(cfg, progress=False, log=lambda *a: None)
    assert summary["steps"] == 2 and np.isfinite(summary["final_psnr"])
