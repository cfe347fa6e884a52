"""Checkpoints: round trip, atomic writes, and refusing bad or unsafe files."""
import errno
import os
import pickle

import pytest
import torch

from denoise_vit import CheckpointError, build_model, load_model
from denoise_vit.checkpoint import atomic_save, make_checkpoint, read_checkpoint


@pytest.fixture
def model():
    m = build_model("vit_denoiser", depth=2, img_size=(32, 48), decoder="conv")
    m.train()
    m(torch.rand(4, 1, 32, 48))  # move BatchNorm running stats away from their init
    return m.eval()


def test_round_trip_gives_identical_outputs(tmp_path, model):
    atomic_save(make_checkpoint(model, step=7), tmp_path / "ckpt.pt")
    loaded = load_model(tmp_path / "ckpt.pt")
    x = torch.rand(2, 1, 32, 48)
    assert not loaded.training
    assert loaded.config == model.config
    assert torch.equal(loaded(x), model(x))


def test_atomic_save_keeps_previous_and_leaves_no_temp(tmp_path, model):
    path, prev = tmp_path / "last.pt", tmp_path / "prev.pt"
    atomic_save({"format": "x", "n": 1}, path, previous=prev)
    atomic_save({"format": "x", "n": 2}, path, previous=prev)
    assert torch.load(path)["n"] == 2 and torch.load(prev)["n"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "prev.pt"]


def test_disk_full_keeps_previous_checkpoint(tmp_path, model, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save(make_checkpoint(model, step=1), path)
    before = path.read_bytes()

    def full_disk(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device"):
        atomic_save(make_checkpoint(model, step=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_unwritable_folder_is_a_clear_error(tmp_path, model):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="could not write checkpoint"):
        atomic_save(make_checkpoint(model), blocker / "ckpt.pt")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_model(tmp_path / "nope.pt")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder"):
        load_model(tmp_path)


def test_truncated_checkpoint(tmp_path, model):
    path = tmp_path / "ckpt.pt"
    atomic_save(make_checkpoint(model), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match=f"{path}"):
        load_model(path)


def test_not_a_denoise_vit_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="not a denoise-vit checkpoint"):
        load_model(path)


def test_checkpoint_of_another_model_kind(tmp_path, model):
    path = tmp_path / "ckpt.pt"
    atomic_save(make_checkpoint(model), path)
    with pytest.raises(CheckpointError, match="holds a 'vit_denoiser' model; this needs 'video_denoiser'"):
        load_model(path, expect="video_denoiser")


def test_weights_that_do_not_fit(tmp_path, model):
    ckpt = make_checkpoint(model)
    ckpt["model_args"]["depth"] = 3
    path = tmp_path / "ckpt.pt"
    atomic_save(ckpt, path)
    with pytest.raises(CheckpointError, match="do not fit model"):
        load_model(path)


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = _RunsCode()
    payload.marker = marker
    path = tmp_path / "evil.pt"
    torch.save({"format": "denoise-vit-checkpoint", "version": 1, "x": payload}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_checkpoint(path)
    assert not marker.exists()
    # the same object through plain pickle does run the command: the test is real
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()
