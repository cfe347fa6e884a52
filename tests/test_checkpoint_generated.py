"""Reading checkpoints through the command line: generated forgeries (entries missing or of the
wrong type, with or without a valid digest), random bytes, truncated files.

Each must end with exit 2 and one line naming the file and no traceback, or (where the change
left a usable checkpoint) exit 0 with a verified output. Random bytes are never reported as
something that "could run code", and torch's advice to load a file unsafely is never repeated.
"""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from denoise_vit.checkpoint import atomic_save, make_checkpoint
from denoise_vit.cli import main
from denoise_vit.inference.io import read_image, write_image
from denoise_vit.registry import build_model

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
INTENSITY = {"percentiles": [1.0, 99.8], "low": 0.0, "high": 0.8}
CONFIG = {"data": {"size": 16, "eval_size": 2}}


@pytest.fixture(scope="module")
def valid():
    """A real (tiny) ViT checkpoint dict, the basis of every forgery."""
    model = build_model("vit_denoiser", img_size=16, depth=1, embed_dim=16, num_heads=2)
    return make_checkpoint(model, config=CONFIG, intensity=INTENSITY)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "in.tif"
    write_image(path, np.arange(400, dtype=np.uint16).reshape(20, 20), "YX")
    return path


def run(command, ckpt, image, out):
    if command == "denoise":
        return main(["denoise", "--no-progress", str(image), "--checkpoint", str(ckpt), "-o",
                     str(out)])
    return main(["evaluate", "--checkpoint", str(ckpt), "--n", "2"])


def check_refused(capsys, command, ckpt):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"denoise-vit {command}: error: "), err
    assert str(ckpt) in lines[0], lines[0]
    return lines[0]


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**70), st.floats(),
                   st.text(max_size=4), st.lists(st.integers(), max_size=3),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                   st.just(torch.zeros(2)))
KEYS = ["model_name", "model_args", "model", "version", "config", "intensity"]
ARG_KEYS = ["img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio",
            "pos_embed", "decoder", "in_chans"]


@st.composite
def forgeries(draw):
    """(what was done, mutate(dict) -> dict)."""
    where = draw(st.sampled_from(["top", "argument", "weight"]))
    delete = draw(st.booleans())
    value = draw(VALUES)
    if where == "top":
        key = draw(st.sampled_from(KEYS))
    elif where == "argument":
        key = draw(st.sampled_from(ARG_KEYS))
    else:
        key = draw(st.integers(0, 10))

    def mutate(ckpt):
        ckpt = {**ckpt, "model_args": dict(ckpt["model_args"]), "model": dict(ckpt["model"])}
        table = ckpt if where == "top" else ckpt["model_args" if where == "argument" else "model"]
        name = key if where != "weight" else sorted(table)[key % len(table)]
        if delete:
            table.pop(name, None)
        else:
            table[name] = value
        return ckpt
    return f"{'delete' if delete else 'set'} {where} {key} = {value!r}", mutate


@settings(max_examples=50, **SETTINGS)
@given(forgery=forgeries(), with_digest=st.booleans(),
       command=st.sampled_from(["denoise", "denoise", "evaluate"]))
def test_forged_checkpoint_is_refused_in_one_line_or_works(valid, image, tmp_path_factory, capsys,
                                                           forgery, with_digest, command):
    what, mutate = forgery
    folder = tmp_path_factory.mktemp("forged")
    ckpt = folder / "forged.pt"
    forged = mutate(valid)
    if with_digest:   # a forger who recomputes the digest
        atomic_save(forged, ckpt)
    else:
        torch.save(forged, ckpt)
    out = folder / "out.tif"
    code = run(command, ckpt, image, out)
    if code == 0:
        if command == "denoise":
            result, _ = read_image(out)
            assert result.shape == (20, 20) and result.dtype == np.uint16, what
    else:
        assert code == 2, what
        check_refused(capsys, command, ckpt)
        assert not out.exists()


@settings(max_examples=30, **SETTINGS)
@given(data=st.binary(max_size=3000), zip_magic=st.booleans())
def test_random_bytes_are_not_a_checkpoint(image, tmp_path_factory, capsys, data, zip_magic):
    folder = tmp_path_factory.mktemp("bytes")
    ckpt = folder / "random.pt"
    ckpt.write_bytes((b"PK\x03\x04" if zip_magic else b"") + data)
    assert run("denoise", ckpt, image, folder / "out.tif") == 2
    line = check_refused(capsys, "denoise", ckpt)
    if "could run code" in line:   # only where the bytes do name a global, as pickle reads them
        name = line.split("asks to build ")[1].split(",")[0]
        assert name.split(".")[-1].encode() in data, line
    assert "weights_only" not in line.lower() and "trusted" not in line


@settings(max_examples=25, **SETTINGS)
@given(fraction=st.floats(0.0, 0.999))
def test_truncated_checkpoint_is_one_line(valid, image, tmp_path_factory, capsys, fraction):
    folder = tmp_path_factory.mktemp("cut")
    ckpt = folder / "cut.pt"
    atomic_save(valid, ckpt)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[:int(len(data) * fraction)])
    assert run("denoise", ckpt, image, folder / "out.tif") == 2
    line = check_refused(capsys, "denoise", ckpt)
    assert "could run code" not in line


def test_a_pickle_asking_for_code_is_named_as_such(image, tmp_path, capsys):
    import os

    class RunsCode:
        def __reduce__(self):
            return (os.system, ("true",))

    ckpt = tmp_path / "evil.pt"
    torch.save({"format": "denoise-vit-checkpoint", "x": RunsCode()}, ckpt)
    assert run("denoise", ckpt, image, tmp_path / "o.tif") == 2
    line = check_refused(capsys, "denoise", ckpt)
    assert "asks to build posix.system" in line and "could run code" in line
    assert "weights_only" not in line.lower() and "trusted" not in line
