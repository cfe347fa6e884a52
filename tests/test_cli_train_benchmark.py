"""`train` and `benchmark` driven with generated bad input: one line and exit 2 before any
work, never a traceback; nothing written, nothing of an earlier run changed."""
import io
import math
import os
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from denoise_vit.cli import main
from denoise_vit.training.run_folder import RunFolder

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_cli(argv):
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            status = main(argv)
        except SystemExit as exc:   # argparse's usage errors
            status = exc.code
    return status, err.getvalue()


def assert_one_line_error(status, err, *needles):
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def toml(value):
    """A Python value as the TOML text of an override."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else
                                                "-inf" if value == -math.inf else repr(value))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


not_a_positive_int = st.one_of(st.integers(max_value=0), st.booleans(),
                               st.floats(allow_nan=True).filter(lambda x: x != int(x)
                                                                if math.isfinite(x) else True),
                               st.text(max_size=5))
not_a_positive_number = st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf),
                                  st.booleans(), st.text(max_size=5))
not_a_fraction = st.one_of(st.floats(min_value=1.0), st.floats(max_value=-1e-9), st.just(math.nan),
                           st.booleans(), st.text(max_size=5))
not_nonnegative = st.one_of(st.integers(max_value=-1), st.floats(max_value=-1e-9),
                            st.just(math.nan), st.booleans(), st.text(max_size=5))

BAD_VALUES = st.one_of(
    st.tuples(st.sampled_from(["epochs", "steps_per_epoch", "batch_size", "eval_batch_size",
                               "data.eval_size", "data.frames", "model.depth", "model.embed_dim",
                               "model.num_heads", "model.patch_size"]), not_a_positive_int),
    st.tuples(st.sampled_from(["lr", "model.mlp_ratio", "max_train_seconds", "grad_clip"]),
              not_a_positive_number),
    st.tuples(st.sampled_from(["model.drop_rate", "model.attn_drop_rate",
                               "model.drop_path_rate"]), not_a_fraction),
    st.tuples(st.sampled_from(["weight_decay", "warmup_steps", "figure_samples"]),
              not_nonnegative),
    st.tuples(st.sampled_from(["data.size", "model.img_size"]),
              st.one_of(st.integers(max_value=0), st.text(max_size=4), st.booleans(),
                        st.lists(st.integers(1, 64), min_size=3, max_size=3))),
    st.tuples(st.sampled_from(["data.generator.cell_rate", "data.generator.noisy_rate",
                               "data.generator.gaussian_sigma"]), not_nonnegative),
    st.tuples(st.sampled_from(["seed", "data.eval_seed"]),
              st.one_of(st.integers(max_value=-1), st.integers(min_value=2**64), st.text(max_size=3))),
    st.tuples(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
              .filter(lambda k: k not in {"name", "out_dir", "model", "data", "device", "epochs",
                                          "lr", "seed", "amp", "compile", "optimizer", "schedule",
                                          "deterministic", "batch_size", "weight_decay"}),
              st.integers()),
)


@SETTINGS
@given(BAD_VALUES)
def test_train_refuses_any_bad_value_before_any_work(bad):
    key, value = bad
    with tempfile.TemporaryDirectory() as tmp:
        status, err = run_cli(["train", "--config", "quick", "--out-dir", tmp, "--no-progress",
                               f"{key}={toml(value)}"])
        assert_one_line_error(status, err)
        assert os.listdir(tmp) == []            # no run folder, no file


@SETTINGS
@given(st.sampled_from(["../up", "/abs/path", "..", ".", "a/b", "a\\b", "", " "]))
def test_train_names_cannot_escape_the_output_folder(name):
    with tempfile.TemporaryDirectory() as tmp:
        status, err = run_cli(["train", "--out-dir", str(Path(tmp) / "runs"), f"name={toml(name)}"])
        assert_one_line_error(status, err, "name must be a plain folder name")
        assert os.listdir(tmp) == []


def test_out_dir_with_backslashes_and_quotes_is_taken_literally(tmp_path):
    odd = tmp_path / 'odd' / 'a\\new"q'
    status, err = run_cli(["train", "--out-dir", str(odd), "--no-progress", "epochs=1",
                           "steps_per_epoch=1", "batch_size=2", "model.depth=1", "data.size=16",
                           "data.eval_size=2", "figure_samples=1", "name=r"])
    assert status == 0, err
    assert (odd / "r" / "checkpoint_best.pt").exists()


@pytest.fixture()
def finished_run(tmp_path):
    args = ["train", "--out-dir", str(tmp_path), "--no-progress", "epochs=1",
            "steps_per_epoch=1", "batch_size=2", "model.depth=1", "data.size=16",
            "data.eval_size=2", "figure_samples=1", "name=r"]
    assert run_cli(args)[0] == 0
    run = tmp_path / "r"
    return args, run, {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_a_second_train_into_a_run_folder_is_refused_and_changes_nothing(finished_run):
    args, run, before = finished_run
    status, err = run_cli(args + ["lr=1e-2"])
    assert_one_line_error(status, err, "already holds a run", "--resume")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_run_folder_in_use_is_refused(finished_run):
    args, run, before = finished_run
    holder = RunFolder(run).claim(resume=True)      # another process would hold this lock
    try:
        status, err = run_cli(args + ["--resume", "epochs=2"])
    finally:
        holder.release()
    assert_one_line_error(status, err, "in use by another training process")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_stale_temp_files_of_a_killed_write_are_removed_on_resume(finished_run):
    args, run, _ = finished_run
    stale = run / ".checkpoint_last.pt.tmp-99999"
    stale.write_bytes(b"\0" * 1000)
    assert run_cli(args + ["--resume", "epochs=2"])[0] == 0
    assert not stale.exists()


# ---------------------------------------------------------------- benchmark

@SETTINGS
@given(st.one_of(st.sampled_from(["nan", "inf", "-inf", "0", "-1", "", ",", "1,nan", "x"]),
                 st.floats(max_value=0).map(str)))
def test_benchmark_refuses_bad_budgets_before_any_work(budgets):
    with tempfile.TemporaryDirectory() as tmp:
        status, err = run_cli(["benchmark", f"--budgets={budgets}", "--out-dir", tmp,
                               "--runs-dir", str(Path(tmp) / "runs")])
        assert_one_line_error(status, err, "--budgets")
        assert os.listdir(tmp) == []


@pytest.mark.parametrize("option", ["--eval-size", "--val-size", "--workers"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_benchmark_refuses_empty_sets_before_any_work(tmp_path, option, value):
    status, err = run_cli(["benchmark", f"{option}={value}", "--out-dir", str(tmp_path)])
    assert_one_line_error(status, err, option)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("which", ["--out-dir", "--runs-dir"])
def test_benchmark_unwritable_output_stops_before_any_work(tmp_path, which):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    other = "--runs-dir" if which == "--out-dir" else "--out-dir"
    status, err = run_cli(["benchmark", "--budgets", "0.01", which, str(blocker / "sub"),
                           other, str(tmp_path / "ok")])
    assert_one_line_error(status, err, "cannot write to", str(blocker / "sub"))
    assert not (tmp_path / "ok" / "BENCHMARKS.md").exists()


@SETTINGS
@given(st.binary(max_size=64))
def test_report_only_from_a_corrupt_results_file_is_one_line(content):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "benchmarks.json").write_bytes(content)
        status, err = run_cli(["benchmark", "--report-only", "--out-dir", tmp])
        assert_one_line_error(status, err, "benchmarks.json")
        assert sorted(os.listdir(tmp)) == ["benchmarks.json"]
