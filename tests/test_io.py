"""Image files and the `denoise` command: formats, dtypes, axes, bad input, folder runs."""
import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from denoise_vit.checkpoint import atomic_save, make_checkpoint, read_checkpoint
from denoise_vit.cli import main
from denoise_vit.errors import DenoiseVitError
from denoise_vit.inference.io import (ImageFileError, cast, check_axes, from_stack, guess_axes, read_image,
                            to_stack, write_image)
from denoise_vit.registry import build_model

RNG = np.random.default_rng(0)


@pytest.fixture()
def checkpoint(trained_checkpoint):
    """A briefly trained image model (its checkpoint records the training intensities)."""
    return trained_checkpoint


@pytest.fixture(scope="module")
def video_checkpoint(tmp_path_factory):
    model = build_model("video_denoiser", variant="joint", img_size=32, depth=1, embed_dim=16,
                        num_heads=2, num_frames=4, tubelet_size=2)
    path = tmp_path_factory.mktemp("video") / "video.pt"
    atomic_save(make_checkpoint(model, intensity={"percentiles": [1.0, 99.8], "low": 0.0,
                                                  "high": 0.8}), path)
    return path


def denoise(*argv):
    return main(["denoise", "--no-progress", *map(str, argv)])


def one_error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Reading, writing, axes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, dtype", [(".png", np.uint8), (".png", np.uint16),
                                           (".tif", np.uint8), (".tif", np.uint16),
                                           (".tif", np.float32), (".npy", np.float64),
                                           (".npy", np.uint16)])
def test_write_read_round_trip_keeps_dtype_and_pixels(tmp_path, suffix, dtype):
    if np.dtype(dtype).kind == "f":
        a = RNG.random((37, 53)).astype(dtype)
    else:
        a = RNG.integers(0, np.iinfo(dtype).max, (37, 53), endpoint=True).astype(dtype)
    write_image(tmp_path / f"a{suffix}", a, "YX")
    b, _ = read_image(tmp_path / f"a{suffix}")
    assert b.dtype == a.dtype and np.array_equal(a, b)


def test_multipage_tiff_reads_as_a_stack(tmp_path):
    pages = RNG.integers(0, 60000, (5, 20, 30)).astype(np.uint16)
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tif:   # pages written one by one
        for page in pages:
            tif.write(page)
    a, meta = read_image(tmp_path / "pages.tif")
    assert np.array_equal(a, pages) and meta["axes"] is None
    write_image(tmp_path / "t.tif", pages, "TYX")   # the axes are recorded and read back
    a, meta = read_image(tmp_path / "t.tif")
    assert np.array_equal(a, pages) and meta["axes"] == "TYX"
    tifffile.imwrite(tmp_path / "ij.tif", pages, imagej=True, metadata={"axes": "ZYX"})
    assert read_image(tmp_path / "ij.tif")[1] == {"axes": "ZYX", "imagej": True}


@pytest.mark.parametrize("shape, video, channels, axes", [
    ((64, 80), False, 1, "YX"), ((64, 80, 3), False, 1, "YXC"), ((32, 64, 80), False, 1, "ZYX"),
    ((32, 64, 80), True, 1, "TYX"), ((3, 64, 80), False, 3, "CYX"), ((3, 64, 80), False, 1, "ZYX"),
    ((8, 64, 80, 3), True, 1, "TYXC")])
def test_axes_guessed_from_the_shape(shape, video, channels, axes):
    assert guess_axes(shape, video=video, channels=channels)[0] == axes


def test_axes_not_guessable_or_not_fitting_are_refused():
    with pytest.raises(ImageFileError, match="give --axes"):
        guess_axes((2, 5, 64, 80))
    with pytest.raises(ImageFileError, match="3 letters but the image has 2 dimensions"):
        check_axes("ZYX", (64, 80), "x.tif")
    with pytest.raises(ImageFileError, match="at most once"):
        check_axes("YYX", (4, 64, 80), "x.tif")
    with pytest.raises(ImageFileError, match="both T and Z"):
        check_axes("TZYX", (2, 4, 64, 80), "x.tif")
    with pytest.raises(ImageFileError, match="must contain Y and X"):
        check_axes("TZX", (2, 4, 64), "x.tif")
    assert check_axes("tyx", (4, 64, 80), "x.tif") == "TYX"


@pytest.mark.parametrize("axes, shape", [("YX", (5, 7)), ("XY", (7, 5)), ("YXC", (5, 7, 3)),
                                         ("CYX", (3, 5, 7)), ("TYX", (4, 5, 7)),
                                         ("XZY", (7, 4, 5)), ("ZCYX", (4, 2, 5, 7))])
def test_stack_layout_round_trip(axes, shape):
    a = RNG.random(shape).astype(np.float32)
    stack = to_stack(a, axes)
    depth = shape[axes.index("T")] if "T" in axes else shape[axes.index("Z")] if "Z" in axes else 1
    channels = shape[axes.index("C")] if "C" in axes else 1
    assert stack.shape == (depth, channels, shape[axes.index("Y")], shape[axes.index("X")])
    assert np.array_equal(from_stack(stack, axes), a)


def test_cast_rounds_and_clips_to_integer_range():
    x = np.array([-3.2, 1.6, 254.5, 300.4])
    assert cast(x, np.uint8).tolist() == [0, 2, 254, 255]
    assert cast(np.array([70000.0]), np.uint16).tolist() == [65535]
    assert cast(x, np.float32).dtype == np.float32


def test_png_cannot_hold_float_or_stacks(tmp_path):
    with pytest.raises(ImageFileError, match="use .tif"):
        write_image(tmp_path / "f.png", np.zeros((4, 4), np.float32), "YX")
    with pytest.raises(ImageFileError, match="stack"):
        write_image(tmp_path / "s.png", np.zeros((2, 4, 4), np.uint8), "ZYX")


# ---------------------------------------------------------------------------------------------
# The denoise command
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, dtype", [(".png", np.uint8), (".tif", np.uint16),
                                           (".npy", np.float32)])
def test_denoise_keeps_shape_and_dtype(checkpoint, tmp_path, capsys, suffix, dtype):
    a = (RNG.random((45, 70)) * (200 if dtype == np.uint8 else 5000 if dtype == np.uint16 else 1))
    write_image(tmp_path / f"in{suffix}", a.astype(dtype), "YX")
    assert denoise(tmp_path / f"in{suffix}", "--checkpoint", checkpoint, "-o",
                   tmp_path / f"out{suffix}") == 0
    out, _ = read_image(tmp_path / f"out{suffix}")
    assert out.shape == (45, 70) and out.dtype == dtype
    stdout = capsys.readouterr().out
    assert ("axes YX (recorded in the file)" if suffix == ".tif"
            else "axes YX (guessed from the shape") in stdout
    assert "note:" not in stdout  # the checkpoint recorded its training intensities
    record = json.loads((tmp_path / "denoise_log.jsonl").read_text().splitlines()[-1])
    assert record["dtype_out"] == np.dtype(dtype).name and record["axes"] == "YX"
    assert record["normalization"][0]["target_high"] > 0


def test_denoise_float32_output_and_large_uint16_tiled(checkpoint, tmp_path, capsys):
    a = (RNG.random((150, 97)) * 3000 + 1000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", a)
    assert denoise(tmp_path / "big.tif", "--checkpoint", checkpoint, "-o", tmp_path / "o.tif",
                   "--dtype", "float32", "--tile", "32", "--overlap", "8") == 0
    out, _ = read_image(tmp_path / "o.tif")
    assert out.dtype == np.float32 and out.shape == a.shape
    # the output is in the input's units (counts around 1000..4000), not the model's 0..1
    assert 500 < np.median(out) < 5000
    assert "tiles of 32x32 (overlap 8)" in capsys.readouterr().out
    # the thread count decides how many tile batches run at once, and the log says so
    assert denoise(tmp_path / "big.tif", "--checkpoint", checkpoint, "-o", tmp_path / "o2.tif",
                   "--dtype", "float32", "--tile", "32", "--overlap", "8", "--threads", "2") == 0
    assert "tile batches: up to 2 at a time, 1 torch thread each" in capsys.readouterr().out
    np.testing.assert_array_equal(read_image(tmp_path / "o2.tif")[0], out)
    assert denoise(tmp_path / "big.tif", "--checkpoint", checkpoint, "-o", tmp_path / "o1.tif",
                   "--dtype", "float32", "--tile", "32", "--overlap", "8", "--threads", "1") == 0
    assert "tile batches" not in capsys.readouterr().out


def test_denoise_tyx_stack_with_image_and_video_models(checkpoint, video_checkpoint, tmp_path,
                                                       capsys):
    stack = RNG.random((6, 40, 50)).astype(np.float32)
    write_image(tmp_path / "s.tif", stack, "TYX")
    assert denoise(tmp_path / "s.tif", "--checkpoint", checkpoint, "-o", tmp_path / "a.tif",
                   "--tile", "64") == 0
    assert "6 planes, each whole image" in capsys.readouterr().out
    assert denoise(tmp_path / "s.tif", "--checkpoint", video_checkpoint, "-o",
                   tmp_path / "b.tif") == 0
    assert "windows of 4 frames" in capsys.readouterr().out
    for name in ("a.tif", "b.tif"):
        out, meta = read_image(tmp_path / name)
        assert out.shape == stack.shape and meta["axes"] == "TYX"
    np.save(tmp_path / "z.npy", stack)  # no recorded axes: a video model guesses TYX
    assert denoise(tmp_path / "z.npy", "--checkpoint", video_checkpoint, "-o",
                   tmp_path / "z_out.npy") == 0
    assert "axes TYX (guessed from the shape" in capsys.readouterr().out


def bad_inputs(tmp_path):
    """name -> (file, extra args, expected message) for every kind of bad input."""
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"this is not a PNG file at all")
    np.save(tmp_path / "one_row.npy", np.zeros((1, 40), np.float32))
    np.save(tmp_path / "no_rows.npy", np.zeros((0, 40), np.float32))
    nan = np.ones((30, 30), np.float32)
    nan[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    Image.fromarray(RNG.integers(0, 255, (30, 40, 3)).astype(np.uint8)).save(tmp_path / "rgb.png")
    write_image(tmp_path / "ok.tif", np.ones((30, 30), np.uint16), "YX")
    return {
        "empty": ("empty.tif", [], "the file is empty (0 bytes)"),
        "unreadable": ("junk.png", [], "cannot read it as PNG"),
        "missing": ("missing.png", [], "no such file"),
        "one row": ("one_row.npy", [], "1 pixel(s) high"),
        "no rows": ("no_rows.npy", [], "the image has no pixels"),
        "nan": ("nan.npy", [], "1 NaN pixel(s)"),
        "rgb": ("rgb.png", [], "a colour image (axes YXC, shape 30x40x3) but the model takes 1"),
        "axes": ("ok.tif", ["--axes", "ZYX"], "--axes ZYX has 3 letters but the image has 2"),
        "bad tile": ("ok.tif", ["--tile", "30"], "must be 0 (whole image) or a positive multiple"),
    }


@pytest.mark.parametrize("case", ["empty", "unreadable", "missing", "one row", "no rows", "nan",
                                  "rgb", "axes", "bad tile"])
def test_bad_input_is_one_message(checkpoint, tmp_path, capsys, case):
    name, extra, message = bad_inputs(tmp_path)[case]
    out = tmp_path / "out" / name
    assert denoise(tmp_path / name, "--checkpoint", checkpoint, "-o", out, *extra) == 2
    line = one_error_line(capsys)
    assert line.startswith("denoise-vit denoise: error:") and message in line, line
    assert not out.exists()


def test_existing_output_is_refused_unless_overwrite(checkpoint, tmp_path, capsys):
    a = (RNG.random((30, 30)) * 255).astype(np.uint8)
    write_image(tmp_path / "in.png", a, "YX")
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    assert denoise(tmp_path / "in.png", "--checkpoint", checkpoint, "-o", out) == 2
    assert "exists already; give --overwrite" in one_error_line(capsys)
    assert out.read_bytes() == b"precious"
    assert denoise(tmp_path / "in.png", "--checkpoint", checkpoint, "-o", out, "--overwrite") == 0
    assert read_image(out)[0].shape == (30, 30)


def test_output_never_replaces_its_input(checkpoint, tmp_path, capsys):
    write_image(tmp_path / "in.png", np.ones((30, 30), np.uint8), "YX")
    assert denoise(tmp_path, "--checkpoint", checkpoint, "-o", tmp_path, "--overwrite") == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert read_image(tmp_path / "in.png")[0].max() == 1


def test_folder_run_skips_the_bad_file_and_writes_the_others(checkpoint, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a.tif", (RNG.random((40, 50)) * 4000).astype(np.uint16), "YX")
    write_image(folder / "b.png", (RNG.random((33, 65)) * 255).astype(np.uint8), "YX")
    (folder / "c.png").write_bytes(b"")              # bad
    (folder / "notes.txt").write_text("not an image")  # ignored
    jpeg = Image.fromarray((RNG.random((30, 30)) * 255).astype(np.uint8))
    jpeg.save(folder / "d.jpg")
    assert denoise(folder, "--checkpoint", checkpoint, "-o", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "skipped" in err and "c.png: the file is empty" in err
    assert "1 of 4 inputs failed" in err.strip().splitlines()[-1]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["a.tif", "b.png", "d.png", "denoise_log.jsonl"]   # JPEG -> lossless PNG
    assert read_image(tmp_path / "out" / "a.tif")[0].dtype == np.uint16
    assert len((tmp_path / "out" / "denoise_log.jsonl").read_text().splitlines()) == 3


def test_checkpoint_without_intensity_record_falls_back_to_its_training_data(checkpoint, tmp_path,
                                                                            capsys):
    ckpt = read_checkpoint(checkpoint)
    del ckpt["intensity"]
    ckpt.pop("digest", None)
    old = tmp_path / "old.pt"
    atomic_save(ckpt, old)
    write_image(tmp_path / "in.tif", np.ones((30, 30), np.float32), "YX")
    assert denoise(tmp_path / "in.tif", "--checkpoint", old, "-o", tmp_path / "o.tif") == 0
    assert "no intensity record; using its training data's" in capsys.readouterr().out


def test_image_model_run_directly_raises_denoise_vit_errors(checkpoint, tmp_path):
    from denoise_vit.inference.denoise import DenoiseOptions, run_denoise
    with pytest.raises(DenoiseVitError, match="no such file or folder"):
        run_denoise([tmp_path / "nope.tif"], tmp_path / "o.tif", checkpoint,
                    options=DenoiseOptions(), denoiser_args={}, log=lambda *a: None)


def test_output_format_that_cannot_hold_the_result_is_refused_before_work(checkpoint, tmp_path,
                                                                           capsys):
    np.save(tmp_path / "stack.npy", RNG.random((3, 30, 30)).astype(np.float32))
    assert denoise(tmp_path / "stack.npy", "--checkpoint", checkpoint, "-o", tmp_path / "s.png") == 2
    captured = capsys.readouterr()
    assert "cannot store a ZYX stack" in captured.err and "use .tif" in captured.err
    assert "planes" not in captured.out   # refused before any denoising was logged


def test_output_folder_that_cannot_be_created_is_one_message(checkpoint, tmp_path, capsys):
    write_image(tmp_path / "in.png", np.ones((30, 30), np.uint8), "YX")
    (tmp_path / "taken").write_text("a file where the output folder should go")
    assert denoise(tmp_path / "in.png", "--checkpoint", checkpoint, "-o",
                   tmp_path / "taken" / "out.png") == 2
    assert "cannot create the output folder" in one_error_line(capsys)


def test_the_intensity_fallback_imports_neither_numba_nor_timm_and_finds_the_same_record():
    """Its start-up was 4-5 s on the 2-core CPU (timm.optim through the config check, numba for
    64 small images); the record is the one the compiled path gives."""
    import subprocess
    import sys
    code = ("import sys, json\n"
            "from denoise_vit.inference.denoise import model_intensity\n"
            "r = model_intensity({'config': {'data': {'kind': 'images'}}}, lambda m: None)\n"
            "print(json.dumps([r['low'], r['high'], 'numba' in sys.modules, 'timm' in sys.modules]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    low, high, numba, timm = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not numba and not timm
    from denoise_vit.inference.intensity import training_record
    from denoise_vit.training.config import from_dict
    from denoise_vit.training.data import make_eval_data
    cfg = from_dict({"data": {"kind": "images", "eval_size": 64}}).data
    record = training_record(make_eval_data(cfg)[0])
    assert (low, high) == (record["low"], record["high"])
