"""`denoise` driven through the command line with generated inputs: every dtype and value range,
file type, tiling and normalisation; bad folders; signals and read-only targets mid-write.

Each run must end one of two ways: exit 0 with the output verified against the input, or exit 2
with one line and no traceback. Either way no temporary file is left and no earlier output is
changed.
"""
import os
import signal
import zlib
import struct

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import shift_model
from denoise_vit import memory
from denoise_vit.cli import main
from denoise_vit.inference import denoise as denoise_module
from denoise_vit.inference.io import DTYPES, read_image, write_image

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])
EARLIER = b"an earlier output that must survive"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shift")
    return {"identity": shift_model.save(folder / "identity.pt"),
            "video": shift_model.save(folder / "video.pt", video=True),
            "up": shift_model.save(folder / "up.pt", 1000.0),
            "down": shift_model.save(folder / "down.pt", -1000.0),
            "nan": shift_model.save(folder / "nan.pt", float("nan")),
            "inf": shift_model.save(folder / "inf.pt", float("inf"))}


def denoise(*argv):
    return main(["denoise", "--no-progress", *map(str, argv)])


def error_line(capsys):
    """The single stderr line of a refused run (no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("denoise-vit denoise: error: "), err
    return lines[0]


def temp_files(folder):
    return sorted(p.name for p in folder.rglob(".*tmp-*"))


# ---------------------------------------------------------------------------------------------
# Generated images: dtype, range, layout
# ---------------------------------------------------------------------------------------------


def offset_noise(dtype, shape):
    """A large offset plus noise far below it: what float32 before normalising flattens."""
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
    top = min(float(info.max), 2.0**62) / 2
    return st.tuples(st.floats(-top if info.min < 0 else 0, top), st.floats(1e-3, 1e3),
                     st.integers(0, 2**32 - 1)).map(
        lambda t: np.clip(t[0] + t[1] * np.random.default_rng(t[2]).random(shape),
                          float(info.min), float(info.max)).astype(dtype))


@st.composite
def images(draw):
    """(array, axes): any supported dtype, values anywhere in its range (its limits, zero,
    subnormals, a huge offset with small noise, a constant), one to three planes."""
    dtype = draw(st.sampled_from(DTYPES))
    planes = draw(st.sampled_from([None, 2, 3]))
    shape = (draw(st.integers(2, 24)), draw(st.integers(2, 24)))
    shape = shape if planes is None else (planes,) + shape
    elements = hnp.from_dtype(dtype, allow_nan=False, allow_infinity=False)
    array = draw(st.one_of(hnp.arrays(dtype, shape, elements=elements),
                           offset_noise(dtype, shape),
                           elements.map(lambda v: np.full(shape, v, dtype))))
    return array, "YX" if planes is None else "ZYX"


def suffix_for(array, axes, choice):
    if array.dtype.name in ("uint8", "uint16") and axes == "YX" and choice == 2:
        return ".png"
    return (".npy", ".tif", ".npy")[choice]


@settings(max_examples=50, **SETTINGS)
@given(image=images(), file_type=st.integers(0, 2), tile=st.sampled_from(["8", "16", "0"]),
       normalize=st.sampled_from(["stack", "frame", "none"]))
def test_identity_round_trip_is_exact_or_refused(ckpts, tmp_path_factory, capsys, image,
                                                 file_type, tile, normalize):
    array, axes = image
    folder = tmp_path_factory.mktemp("rt")
    suffix = suffix_for(array, axes, file_type)
    src, dst = folder / f"in{suffix}", folder / f"out{suffix}"
    write_image(src, array, axes)
    dst.write_bytes(EARLIER)
    code = denoise(src, "--checkpoint", ckpts["identity"], "-o", dst, "--tile", tile,
                   "--overlap", "4" if tile == "16" else "2" if tile == "8" else "0",
                   "--normalize", normalize, "--overwrite")
    if code == 0:
        out, _ = read_image(dst)
        assert out.dtype == array.dtype and out.shape == array.shape
        # bit for bit: nothing wrapped, flattened or turned into NaN
        assert np.array_equal(out.view(f"u{out.itemsize}"), array.view(f"u{array.itemsize}"))
    else:
        assert code == 2
        line = error_line(capsys)
        # only a float64 image can lie beyond what float32 or float64 arithmetic can map
        assert array.dtype == np.float64, line
        assert "beyond the float32 range" in line or "cannot be mapped" in line, line
        assert dst.read_bytes() == EARLIER
    assert temp_files(folder) == []


@settings(max_examples=30, **SETTINGS)
@given(image=images(), up=st.booleans())
def test_shifted_output_is_clipped_never_wrapped(ckpts, tmp_path_factory, capsys, image, up):
    """A model that adds 1000 (or -1000) in its units: integers saturate at the type's limits,
    floats beyond their type's range are refused; the rest is input + shift / scale."""
    array, axes = image
    folder = tmp_path_factory.mktemp("shift")
    src, dst = folder / "in.npy", folder / "out.npy"
    np.save(src, array)
    code = denoise(src, "--checkpoint", ckpts["up" if up else "down"], "-o", dst, "--tile", "0")
    if code == 2:
        line = error_line(capsys)
        assert array.dtype.kind == "f", line
        assert "beyond the range of" in line or "float32" in line or "cannot be mapped" in line
        assert not dst.exists()
    else:
        assert code == 0
        out = np.load(dst)
        record = __import__("json").loads((folder / "denoise_log.jsonl").read_text())
        n = record["normalization"][0]
        scale = (n["target_high"] - n["target_low"]) / (n["high"] - n["low"]) \
            if n["high"] > n["low"] else 1.0
        step = (1000.0 if up else -1000.0) / scale
        x = array.astype(np.float64)
        # float32 rounding of the model's input and output, in input units
        slack = 1 + 2.0**-21 * (np.abs((x - n["low"]) * scale + n["target_low"]) + 1000) / scale
        if array.dtype.kind in "ui":
            info = np.iinfo(array.dtype)
            want = np.clip(x + step, float(info.min), float(info.max))
            assert (np.abs(out.astype(np.float64) - want) <= slack + 2.0**-52 * np.abs(want)).all()
            # monotone: nothing went round the type's range
            assert ((out >= array) if up else (out <= array)).all()
        else:
            assert np.isfinite(out).all()
            assert (np.abs(out.astype(np.float64) - (x + step))
                    <= slack + np.finfo(array.dtype).eps * np.abs(x + step)).all()
    assert temp_files(folder) == []


@pytest.mark.parametrize("which", ["nan", "inf"])
def test_non_finite_model_output_is_refused(ckpts, tmp_path, capsys, which):
    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    write_image(src, np.arange(400, dtype=np.uint16).reshape(20, 20), "YX")
    dst.write_bytes(EARLIER)
    assert denoise(src, "--checkpoint", ckpts[which], "-o", dst, "--overwrite") == 2
    assert "non-finite value(s)" in error_line(capsys)
    assert dst.read_bytes() == EARLIER and temp_files(tmp_path) == []


@settings(max_examples=25, **SETTINGS)
@given(image=images(), frames=st.integers(1, 9), frame_overlap=st.integers(0, 3))
def test_video_identity_round_trip_is_exact(ckpts, tmp_path_factory, capsys, image, frames,
                                            frame_overlap):
    """Sliding temporal windows, per-frame normalisation: still the input, bit for bit."""
    array, _ = image
    plane = array.reshape(-1, *array.shape[-2:])[0]
    stack = np.stack([np.roll(plane, t, axis=1) for t in range(frames)])
    folder = tmp_path_factory.mktemp("video")
    write_image(folder / "in.tif", stack, "TYX")
    code = denoise(folder / "in.tif", "--checkpoint", ckpts["video"], "-o", folder / "out.tif",
                   "--frame-overlap", frame_overlap, "--normalize", "frame")
    if code == 2:  # as above: only float64 beyond float32's reach
        line = error_line(capsys)
        assert stack.dtype == np.float64 and ("float32" in line or "cannot be mapped" in line)
    else:
        out, meta = read_image(folder / "out.tif")
        assert meta["axes"] == "TYX"
        assert np.array_equal(out.view(f"u{out.itemsize}"), stack.view(f"u{stack.itemsize}"))
    assert temp_files(folder) == []


# ---------------------------------------------------------------------------------------------
# Generated folders: good files, bad files, things named like images
# ---------------------------------------------------------------------------------------------

ENTRIES = ["good_npy", "good_png", "good_tif", "empty", "junk", "folder", "loop", "dangling",
           "hidden", "text", "mixed_pages", "grey_alpha", "imagej_tzyx", "earlier"]


def make_entry(folder, out, kind, i):
    """Create one entry; returns (name, expected array or None if it must be reported, or
    'ignored' for what a folder run passes over without a word)."""
    rng = np.random.default_rng(i)
    a = rng.integers(0, 60000, (9 + i % 5, 11)).astype(np.uint16)
    name = f"{kind}{i}"
    if kind == "good_npy":
        np.save(folder / f"{name}.npy", a)
        return f"{name}.npy", a
    if kind == "good_png":
        write_image(folder / f"{name}.png", (a // 256).astype(np.uint8), "YX")
        return f"{name}.png", (a // 256).astype(np.uint8)
    if kind == "good_tif":
        write_image(folder / f"{name}.tif", a, "YX")
        return f"{name}.tif", a
    if kind == "empty":
        (folder / f"{name}.tif").write_bytes(b"")
    elif kind == "junk":
        (folder / f"{name}.png").write_bytes(rng.bytes(50))
    elif kind == "folder":
        (folder / f"{name}.tif").mkdir()
    elif kind == "loop":
        os.symlink(f"{name}.npy", folder / f"{name}.npy")
    elif kind == "dangling":
        os.symlink(folder / "nowhere.npy", folder / f"{name}.npy")
    elif kind == "hidden":
        np.save(folder / f".{name}.npy", a)
        return f".{name}.npy", "ignored"
    elif kind == "text":
        (folder / f"{name}.txt").write_text("notes")
        return f"{name}.txt", "ignored"
    elif kind == "mixed_pages":
        with tifffile.TiffWriter(folder / f"{name}.tif") as tif:
            tif.write(a)
            tif.write(a[:5, :5].astype(np.uint8))
    elif kind == "grey_alpha":
        Image.fromarray(np.dstack([a // 256, a // 256]).astype(np.uint8), "LA").save(
            folder / f"{name}.png")
    elif kind == "imagej_tzyx":   # a hyperstack with both T and Z: refused, the file named
        tifffile.imwrite(folder / f"{name}.tif", np.stack([np.stack([a, a + 1]),
                                                            np.stack([a + 2, a + 3])]),
                         imagej=True, metadata={"axes": "TZYX"})
    elif kind == "earlier":  # its output exists already: refused, left as it was
        np.save(folder / f"{name}.npy", a)
        (out / f"{name}.npy").write_bytes(EARLIER)
    return next(p.name for p in folder.iterdir() if p.name.startswith(name)), None


@settings(max_examples=25, **SETTINGS)
@given(kinds=st.lists(st.sampled_from(ENTRIES), min_size=1, max_size=6))
def test_folder_run_writes_every_good_file_and_names_every_bad_one(ckpts, tmp_path_factory,
                                                                   capsys, kinds):
    root = tmp_path_factory.mktemp("folder")
    folder, out = root / "in", root / "out"
    folder.mkdir()
    out.mkdir()
    entries = dict(make_entry(folder, out, kind, i) for i, kind in enumerate(kinds))
    code = denoise(folder, "--checkpoint", ckpts["identity"], "-o", out)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    good = {name: a for name, a in entries.items() if isinstance(a, np.ndarray)}
    bad = [name for name, a in entries.items() if a is None]
    for name, a in good.items():   # written, and (identity model) equal to the input
        assert np.array_equal(read_image(out / name)[0], a)
    lines = captured.err.strip().splitlines()
    if not bad and good:
        assert code == 0 and lines == []
    else:
        assert code == 2
        for name in bad:    # each named on its own line
            assert sum(name in line for line in lines) == 1, (name, lines)
        assert lines[-1].startswith("denoise-vit denoise: error:")
        assert all(line.startswith("denoise-vit denoise: skipped ") for line in lines[:-1])
    for name, a in entries.items():
        if isinstance(a, str):
            assert name not in captured.err and not (out / name).exists()
    if "earlier" in kinds:
        earlier = next(n for n in entries if n.startswith("earlier"))
        assert (out / earlier).read_bytes() == EARLIER
    assert temp_files(root) == []


# ---------------------------------------------------------------------------------------------
# Interrupted and refused writes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("suffix", [".npy", ".tif", ".png"])
def test_signal_while_writing_leaves_no_temp_file(ckpts, tmp_path, capsys, monkeypatch, signum,
                                                  suffix):
    """A real signal arrives half-way through writing the output file."""
    src, dst = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    write_image(src, np.arange(900, dtype=np.uint8).reshape(30, 30), "YX")
    dst.write_bytes(EARLIER)
    from denoise_vit.inference import io

    real = {".npy": np.save, ".tif": io._write_tiff}[suffix] if suffix != ".png" else None

    def interrupted(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a file" * 1000)
        os.kill(os.getpid(), signum)
        raise AssertionError("the signal should have stopped the write")

    if real is np.save:
        monkeypatch.setattr(io.np, "save", interrupted)
    elif suffix == ".tif":
        monkeypatch.setattr(io, "_write_tiff", interrupted)
    else:
        monkeypatch.setattr(Image.Image, "save", lambda self, path, **kw: interrupted(path))
    before = signal.getsignal(signal.SIGTERM)
    assert denoise(src, "--checkpoint", ckpts["identity"], "-o", dst, "--overwrite") == 128 + signum
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"interrupted by {signal.Signals(signum).name}" in err
    assert dst.read_bytes() == EARLIER
    assert temp_files(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == before   # handlers restored


def test_stale_temp_files_of_dead_runs_are_removed(ckpts, tmp_path, capsys):
    pid = 2**22 + 12345   # above the default pid_max: no such process
    stale = tmp_path / f".out.tmp-{pid}.npy"
    stale.write_bytes(b"x" * 1000)
    alive = tmp_path / f".other.tmp-{os.getppid()}.npy"   # a running process's: kept
    alive.write_bytes(b"y")
    np.save(tmp_path / "in.npy", np.ones((10, 10), np.float32))
    assert denoise(tmp_path / "in.npy", "--checkpoint", ckpts["identity"], "-o",
                   tmp_path / "out.npy") == 0
    assert not stale.exists() and alive.exists()
    assert f"removed {stale}: a partial file left by an interrupted run" in capsys.readouterr().out


def test_read_only_target_is_one_line_and_a_folder_run_goes_on(ckpts, tmp_path, capsys,
                                                               monkeypatch):
    """The rename onto a target that refuses it (read-only file system, permissions)."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name in ("a", "b", "c"):
        np.save(folder / f"{name}.npy", np.full((10, 10), ord(name), np.uint8))
    real = os.replace

    def refuse_b(src, dst):
        if str(dst).endswith("b.npy"):
            raise PermissionError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_b)
    assert denoise(folder, "--checkpoint", ckpts["identity"], "-o", out) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "b.npy: cannot write it (Permission denied)" in err and "1 of 3 inputs failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "c.npy", "denoise_log.jsonl"]
    assert temp_files(tmp_path) == []
    assert denoise(folder / "b.npy", "--checkpoint", ckpts["identity"], "-o", out / "b.npy") == 2
    assert "cannot write it (Permission denied)" in error_line(capsys)


def test_unwritable_output_folder_is_refused_before_any_work(ckpts, tmp_path, capsys,
                                                             monkeypatch):
    np.save(tmp_path / "in.npy", np.ones((10, 10), np.float32))
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path / "ro")
                        else real(p, mode))
    (tmp_path / "ro").mkdir()
    assert denoise(tmp_path / "in.npy", "--checkpoint", ckpts["identity"], "-o",
                   tmp_path / "ro" / "out.npy") == 2
    assert "cannot write there" in error_line(capsys)
    assert capsys.readouterr().out == ""   # refused before the checkpoint was even read


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder_for_real(ckpts, tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.ones((10, 10), np.float32))
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        assert denoise(tmp_path / "in.npy", "--checkpoint", ckpts["identity"], "-o",
                       tmp_path / "ro" / "out.npy") == 2
    finally:
        (tmp_path / "ro").chmod(0o755)
    assert "cannot write there" in error_line(capsys)


# ---------------------------------------------------------------------------------------------
# Memory: refused up front with the size it would need, never a decompression-bomb error
# ---------------------------------------------------------------------------------------------


@settings(max_examples=25, **SETTINGS)
@given(dtype=st.sampled_from(DTYPES), out_dtype=st.sampled_from(["input", "float32"]),
       height=st.integers(1000, 100_000), width=st.integers(1000, 100_000))
def test_memory_guard_refuses_with_the_size_needed(ckpts, tmp_path_factory, capsys, monkeypatch,
                                                   dtype, out_dtype, height, width):
    """The header's size against the memory available (made small here: nothing big is
    allocated; a .npy header can promise any size)."""
    folder = tmp_path_factory.mktemp("mem")
    src = folder / "big.npy"
    with open(src, "wb") as f:   # a header promising height x width pixels, and no data
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                 "fortran_order": False,
                                                 "shape": (height, width)})
    per_pixel = denoise_module.memory_per_pixel(dtype, dtype if out_dtype == "input"
                                                else np.float32)
    assert per_pixel == dtype.itemsize + 4 + (0 if (dtype if out_dtype == "input" else
                                                    np.dtype("float32")) == np.float32
                                              else dtype.itemsize)
    needed = height * width * per_pixel + denoise_module.OVERHEAD_BYTES
    monkeypatch.setattr(memory, "available_bytes", lambda: needed - 1)
    assert denoise(src, "--checkpoint", ckpts["identity"], "-o", folder / "out.npy",
                   "--dtype", out_dtype) == 2
    line = error_line(capsys)
    assert f"{per_pixel} bytes per pixel x {height * width} pixels" in line
    assert "needs about" in line and not (folder / "out.npy").exists()


def png_of_zeros(path, width, height):
    """A valid 8-bit greyscale PNG of any size, written without holding its pixels."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    pack = zlib.compressobj(9)
    row = bytes(width + 1)
    body = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                       8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_png_above_pillows_bomb_limit_is_read_and_sized_not_refused_as_a_bomb(ckpts, tmp_path,
                                                                              capsys,
                                                                              monkeypatch):
    from denoise_vit.inference.io import peek_image
    path = tmp_path / "large.png"
    png_of_zeros(path, 16000, 12000)   # 192 megapixels, above Pillow's 179
    assert peek_image(path) == ((12000, 16000), np.dtype("uint8"))
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**30)
    assert denoise(path, "--checkpoint", ckpts["identity"], "-o", tmp_path / "o.png") == 2
    line = error_line(capsys)
    assert "needs about" in line and "192000000 pixels" in line and "decompression" not in line
    array, _ = read_image(path)   # the pixels themselves: no DecompressionBombError
    assert array.shape == (12000, 16000) and array.dtype == np.uint8
    del array


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux's sysfs")
def test_a_target_no_one_can_write_is_one_line(ckpts, tmp_path, capsys):
    """sysfs refuses new files even to root: the write fails, the clean-up must not raise."""
    np.save(tmp_path / "in.npy", np.ones((10, 10), np.float32))
    assert denoise(tmp_path / "in.npy", "--checkpoint", ckpts["identity"], "-o",
                   "/sys/kernel/denoise-vit-test.npy") == 2
    line = error_line(capsys)
    assert "denoise-vit-test.npy" in line and "cannot write" in line
