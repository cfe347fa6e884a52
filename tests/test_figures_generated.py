"""`evaluate` and `visualize` driven through the command line with generated options: --n,
output names and types, image and video checkpoints, the evaluation set's memory.

Each run ends with exit 0 and the files it names written (and only those), or exit 2 with one
line and no traceback, the files that were there before unchanged. No temporary file is left.
"""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import shift_model
from denoise_vit import memory
from denoise_vit.cli import main

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EARLIER = b"an earlier figure"
PNG, GIF = b"\x89PNG\r\n\x1a\n", b"GIF8"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fig")
    return {
        "image": shift_model.save(folder / "image.pt", config={"data": {"size": 16,
                                                                        "eval_size": 4}}),
        "video": shift_model.save(folder / "video.pt", video=True, config={
            "data": {"kind": "videos", "size": 16, "frames": 4, "eval_size": 2}}),
    }


def one_line(capsys, command):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"denoise-vit {command}: error: "), err
    return lines[0]


def files(folder):
    return sorted(p.name for p in folder.iterdir())


@settings(max_examples=25, **SETTINGS)
@given(n=st.integers(-3, 0), command=st.sampled_from(["evaluate", "visualize"]))
def test_n_below_one_is_one_line(ckpts, capsys, n, command):
    assert main([command, "--checkpoint", str(ckpts["image"]), "--n", str(n)]) == 2
    assert f"--n must be at least 1 (got {n})" in one_line(capsys, command)


def test_figure_with_too_many_columns_is_refused_before_work(ckpts, tmp_path, capsys):
    assert main(["visualize", "--checkpoint", str(ckpts["image"]), "--n", "500", "-o",
                 str(tmp_path / "f.png")]) == 2
    assert "at most 100 images" in one_line(capsys, "visualize")
    assert files(tmp_path) == []


SUFFIXES = ["png", "pdf", "svg", "jpg", "tif", "webp", "eps", "PNG", "gif", "xyz", "bmp", "txt",
            "", "png.bak"]


@settings(max_examples=20, **SETTINGS)   # matplotlib: ~0.5 s a figure
@given(suffix=st.sampled_from(SUFFIXES), kind=st.sampled_from(["image", "video"]),
       target=st.sampled_from(["file", "existing", "folder"]))
def test_visualize_writes_exactly_what_it_names(ckpts, tmp_path_factory, capsys, suffix, kind,
                                                target):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    folder = tmp_path_factory.mktemp("vis")
    name = f"fig.{suffix}" if suffix else "fig"
    out = folder / name
    if target == "existing":
        out.write_bytes(EARLIER)
    if target == "folder":
        out.mkdir()
    before = files(folder)
    code = main(["visualize", "--checkpoint", str(ckpts[kind]), "--n", "1", "-o", str(out)])
    # what it should write
    if target == "folder":
        expected = [out / "denoised.png"]
    else:
        base = out if suffix else folder / "fig.png"
        if kind == "video" and suffix == "gif":
            base = base.with_suffix(".png")
        expected = [base]
    if kind == "video":
        expected.append(expected[0].with_suffix(".gif"))
    writable = expected[0].suffix.lower()[1:] in FigureCanvasAgg.get_supported_filetypes()
    if writable:
        assert code == 0, capsys.readouterr().err
        stdout = capsys.readouterr().out
        assert f"wrote {' and '.join(map(str, expected))}" in stdout
        for path in expected:
            assert path.is_file() and path.read_bytes() != EARLIER
        if expected[0].suffix == ".png":
            assert expected[0].read_bytes()[:8] == PNG
        if kind == "video":
            assert expected[1].read_bytes()[:4] == GIF
        new = set(files(folder)) - set(before)
        written_here = {p.name for p in expected if p.parent == folder}
        assert new <= written_here
    else:
        assert code == 2
        line = one_line(capsys, "visualize")
        assert "matplotlib cannot write" in line
        assert files(folder) == before
        if target == "existing":
            assert out.read_bytes() == EARLIER
    assert not list(folder.rglob(".*tmp-*"))


def test_evaluation_set_too_large_for_memory_is_refused_with_its_size(ckpts, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**30)
    assert main(["evaluate", "--checkpoint", str(ckpts["image"]), "--n", "300000"]) == 2
    line = one_line(capsys, "evaluate")
    assert "an evaluation set of 300000 images needs about" in line
    assert "40 bytes per pixel x 76800000 pixels" in line and "smaller --n" in line
    assert main(["evaluate", "--checkpoint", str(ckpts["image"]), "--n", "3"]) == 0
    assert "evaluation set: 3 images" in capsys.readouterr().out


@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_seed_out_of_range_is_one_line(ckpts, capsys, seed):
    assert main(["evaluate", "--checkpoint", str(ckpts["image"]), "--seed", seed]) == 2
    assert "--seed must be in [0, 2**63)" in one_line(capsys, "evaluate")
