"""Training that survives: SIGKILL, SIGINT / SIGTERM, a kill mid-write, corrupt checkpoints, a full
disk, non-finite losses. Each interrupted run is resumed and must end with exactly the weights of
an uninterrupted run (deterministic=true, same seed).

The subprocess scenarios are independent, so each phase starts them all at once (2 cores).
"""
import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from denoise_vit.training import engine
from denoise_vit.checkpoint import atomic_save, read_checkpoint
from denoise_vit.cli import main
from denoise_vit.training.engine import StopFlag
from denoise_vit.training.run import SignalStop

pytestmark = pytest.mark.slow   # subprocess scenarios (CI runs them)

# Dropout, stochastic depth (global torch RNG), BatchNorm (conv decoder), a cosine schedule with
# warm-up and Adam's moments: everything a resume has to restore.
SPE, EPOCHS = 20, 3
ARGS = ["--no-progress", "model.depth=1", "data.size=16", "batch_size=8",
        f"steps_per_epoch={SPE}", f"epochs={EPOCHS}", "data.eval_size=16", "figure_samples=2",
        "model.drop_rate=0.1", "model.drop_path_rate=0.1", "schedule=cosine", "warmup_steps=5",
        "lr=2e-3", "seed=3", "deterministic=true"]
MID_EPOCH = 29  # the stream batch during which a signal arrives: step 30, inside epoch 2

# Runs `denoise-vit train` after a test-only hook: `signal SIG N` sends SIG to itself while
# drawing batch N; `die-in-save STEP` dies by SIGKILL half-way through writing checkpoint_last.pt
# of STEP (the bytes written so far reach the disk).
LAUNCHER = textwrap.dedent("""
    import os, signal, sys
    import torch
    from data_gen import SyntheticStream
    from denoise_vit.cli import main

    mode, value, at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if mode == "signal":
        draw = SyntheticStream.__next__
        def draw_and_signal(self):
            if self.step == at:
                os.kill(os.getpid(), value)
            return draw(self)
        SyntheticStream.__next__ = draw_and_signal
    else:
        save = torch.save
        def save_and_die(obj, f, *args, **kwargs):
            save(obj, f, *args, **kwargs)
            if "checkpoint_last" in getattr(f, "name", "") and obj.get("step") == at:
                f.truncate(f.tell() // 2)
                f.flush()
                os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
        torch.save = save_and_die
    sys.exit(main(sys.argv[4:]))
""")


def env():
    # one thread each: the scenarios run side by side, and float sums do not depend on threads
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def train_cmd(out_dir, name, *extra):
    return ["train", "--out-dir", str(out_dir), *ARGS, f"name={name}", *extra]


def start(argv, launcher=None):
    prefix = [sys.executable, "-m", "denoise_vit"] if launcher is None else [sys.executable, "-c",
                                                                            LAUNCHER, *launcher]
    return subprocess.Popen(prefix + argv, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(procs):
    """Wait for every process; {name: (returncode, stdout, stderr)}."""
    outputs = {name: p.communicate(timeout=300) for name, p in procs.items()}
    return {name: (p.returncode, *outputs[name]) for name, p in procs.items()}


def weights(path):
    return read_checkpoint(path)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ: {different}"


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    """Phase 1: the reference run and every interrupted run; phase 2: the resumes."""
    out = tmp_path_factory.mktemp("robust")
    procs = {
        "reference": start(train_cmd(out, "reference")),
        "sigkill": start(train_cmd(out, "sigkill")),
        "sigint": start(train_cmd(out, "sigint"), ["signal", str(int(signal.SIGINT)), str(MID_EPOCH)]),
        "sigterm": start(train_cmd(out, "sigterm"), ["signal", str(int(signal.SIGTERM)), str(MID_EPOCH)]),
        "die_in_save": start(train_cmd(out, "die_in_save"), ["die-in-save", "0", str(2 * SPE)]),
    }
    # a real SIGKILL from outside, at whatever moment the run has reached after its first
    # checkpoint (training, evaluating or writing)
    last = out / "sigkill" / "checkpoint_last.pt"
    deadline = time.monotonic() + 240
    while not last.exists() and procs["sigkill"].poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    procs["sigkill"].send_signal(signal.SIGKILL)
    procs["sigkill"].wait()
    first = finish(procs)
    # what each interrupted run left behind, before the resume changes it
    left = {name: read_checkpoint(out / name / "checkpoint_last.pt")
            for name in ("sigkill", "sigint", "sigterm", "die_in_save")}
    stale = sorted(p.name for p in (out / "die_in_save").glob(".checkpoint_last.pt.tmp-*"))
    second = finish({name: start(train_cmd(out, name, "--resume"))
                     for name in ("sigkill", "sigint", "die_in_save")})
    return {"out": out, "first": first, "left": left, "stale": stale, "second": second}


def test_uninterrupted_reference_run(scenarios):
    code, stdout, stderr = scenarios["first"]["reference"]
    assert code == 0, stderr
    assert f"done: {SPE * EPOCHS} steps" in stdout


def test_sigkill_at_any_moment_then_resume_gives_identical_weights(scenarios):
    out = scenarios["out"]
    code, _, _ = scenarios["first"]["sigkill"]
    assert code == -signal.SIGKILL  # it was still running when killed
    assert scenarios["left"]["sigkill"]["step"] < SPE * EPOCHS
    code, stdout, stderr = scenarios["second"]["sigkill"]
    assert code == 0, stderr
    assert f"resumed from {out / 'sigkill' / 'checkpoint_last.pt'}" in stdout
    assert f"done: {SPE * EPOCHS} steps" in stdout
    assert_same_weights(weights(out / "sigkill" / "checkpoint_last.pt"),
                        weights(out / "reference" / "checkpoint_last.pt"))


def test_sigint_mid_epoch_checkpoints_exits_130_and_resumes_identically(scenarios):
    out = scenarios["out"]
    code, stdout, stderr = scenarios["first"]["sigint"]
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert (f"stopped by SIGINT at step {MID_EPOCH + 1} of {SPE * EPOCHS}: checkpoint written to "
            f"{out / 'sigint' / 'checkpoint_last.pt'}; continue with --resume") in stdout
    left = scenarios["left"]["sigint"]
    assert left["step"] == MID_EPOCH + 1 and left["streams"][0]["step"] == MID_EPOCH + 1
    code, stdout, stderr = scenarios["second"]["sigint"]
    assert code == 0, stderr
    assert f"at step {MID_EPOCH + 1}" in stdout and f"done: {SPE * EPOCHS} steps" in stdout
    resumed, reference = (read_checkpoint(out / name / "checkpoint_last.pt")
                          for name in ("sigint", "reference"))
    assert_same_weights(resumed["model"], reference["model"])
    assert resumed["step"] == reference["step"] == SPE * EPOCHS
    # the interrupted epoch's metrics row is whole: same step, loss and evaluation
    for row, ref in zip(resumed["metrics"], reference["metrics"], strict=True):
        assert row["step"] == ref["step"] and row["eval_psnr"] == ref["eval_psnr"]
        assert row["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-12)


def test_sigterm_checkpoint_is_the_sigint_one(scenarios):
    out = scenarios["out"]
    code, stdout, stderr = scenarios["first"]["sigterm"]
    assert code == 143, stderr
    assert "Traceback" not in stderr
    assert f"stopped by SIGTERM at step {MID_EPOCH + 1}" in stdout
    term, intr = scenarios["left"]["sigterm"], scenarios["left"]["sigint"]
    assert_same_weights(term["model"], intr["model"])
    assert torch.equal(term["streams"][0]["generator_state"], intr["streams"][0]["generator_state"])
    assert term["optimizer"]["state"][0]["step"] == MID_EPOCH + 1


def test_kill_during_checkpoint_write_leaves_the_previous_one_as_latest(scenarios):
    out = scenarios["out"]
    code, _, _ = scenarios["first"]["die_in_save"]
    assert code == -signal.SIGKILL
    # the half-written file never became checkpoint_last.pt: that is still epoch 1's
    assert scenarios["left"]["die_in_save"]["step"] == SPE
    assert len(scenarios["stale"]) == 1
    code, stdout, stderr = scenarios["second"]["die_in_save"]
    assert code == 0, stderr
    assert f"at step {SPE}" in stdout
    assert not list((out / "die_in_save").glob(".checkpoint_*.tmp-*"))  # cleaned on resume
    assert_same_weights(weights(out / "die_in_save" / "checkpoint_last.pt"),
                        weights(out / "reference" / "checkpoint_last.pt"))


# In-process checks: plain tiny runs (no determinism needed).

QUICK = ["--no-progress", "model.depth=1", "data.size=16", "batch_size=4", "steps_per_epoch=3",
         "data.eval_size=4", "figure_samples=1"]


def quick(out_dir, *extra):
    return ["train", "--out-dir", str(out_dir), *QUICK, "name=q", *extra]


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A finished 2-epoch run: checkpoint_last at step 6, checkpoint_prev at step 3."""
    out = tmp_path_factory.mktemp("two")
    assert main(quick(out, "epochs=2")) == 0
    return out


@pytest.fixture
def run_copy(two_epochs, tmp_path):
    shutil.copytree(two_epochs / "q", tmp_path / "q")
    return tmp_path


def corrupt(path, how):
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:  # one flipped byte in the weights (torch.load alone does not notice this)
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped byte"])
def test_corrupt_last_checkpoint_falls_back_to_previous(run_copy, how, capsys):
    run = run_copy / "q"
    corrupt(run / "checkpoint_last.pt", how)
    assert main(quick(run_copy, "epochs=3", "--resume")) == 0
    out = capsys.readouterr().out
    assert (f"warning: cannot read checkpoint {run / 'checkpoint_last.pt'}: truncated or corrupt "
            "file" if how == "truncated" else "corrupt file (its contents do not match") in out
    assert f"resumed from {run / 'checkpoint_prev.pt'} at step 3" in out
    assert "done: 9 steps" in out


def test_no_usable_checkpoint_is_one_message(run_copy, capsys):
    run = run_copy / "q"
    for name in ("checkpoint_last.pt", "checkpoint_prev.pt"):
        corrupt(run / name, "truncated")
    assert main(quick(run_copy, "epochs=3", "--resume")) == 2
    err = capsys.readouterr().err
    assert err.startswith("denoise-vit train: error: --resume: no usable checkpoint in")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_resume_refuses_a_best_checkpoint_as_last(run_copy, capsys):
    run = run_copy / "q"
    shutil.copy(run / "checkpoint_best.pt", run / "checkpoint_last.pt")
    assert main(quick(run_copy, "epochs=3", "--resume")) == 0
    out = capsys.readouterr().out
    assert "is not a training checkpoint (no optimizer" in out
    assert "resumed from" in out and "checkpoint_prev.pt at step 3" in out


def test_resume_loads_through_the_weights_only_reader(run_copy, monkeypatch, capsys):
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    assert main(quick(run_copy, "epochs=3", "--resume")) == 0
    assert calls == [True]


def test_disk_full_on_checkpoint_is_one_message_and_keeps_previous(run_copy, monkeypatch, capsys):
    run = run_copy / "q"
    before = {name: (run / name).read_bytes() for name in ("checkpoint_last.pt", "checkpoint_prev.pt")}

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    assert main(quick(run_copy, "epochs=3", "--resume")) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for name, data in before.items():
        assert (run / name).read_bytes() == data
    assert not list(run.glob(".checkpoint_*"))


def test_unwritable_run_folder_is_one_message(tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file where the run folder's parent should be")
    assert main(quick(tmp_path / "blocker", "epochs=1")) == 2
    err = capsys.readouterr().err
    assert "cannot write to run folder" in err and "Not a directory" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_run_folder_is_one_message(run_copy, capsys):
    run = run_copy / "q"
    run.chmod(0o555)
    try:
        assert main(quick(run_copy, "epochs=3", "--resume")) == 2
    finally:
        run.chmod(0o755)
    err = capsys.readouterr().err
    assert "Permission denied" in err and "Traceback" not in err


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_loss_stops_naming_the_step_and_keeps_last(run_copy, bad, monkeypatch, capsys):
    run = run_copy / "q"
    before = (run / "checkpoint_last.pt").read_bytes()
    calls = {"n": 0}
    real = engine.F.mse_loss

    def poisoned(a, b):
        calls["n"] += 1
        return real(a, b) * bad if calls["n"] == 2 else real(a, b)

    monkeypatch.setattr(engine.F, "mse_loss", poisoned)
    assert main(quick(run_copy, "epochs=3", "--resume")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"denoise-vit train: error: non-finite loss ({bad}) at step 8; stopping")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (run / "checkpoint_last.pt").read_bytes() == before
    assert read_checkpoint(run / "checkpoint_last.pt")["step"] == 6


def test_a_repeated_signal_is_one_request_and_a_later_one_aborts():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    stop = StopFlag()
    with SignalStop(stop) as handler:
        os.kill(os.getpid(), signal.SIGTERM)  # a job scheduler signals every process...
        os.kill(os.getpid(), signal.SIGTERM)  # ...and torchrun forwards it once more
        assert (stop.reason, stop.signum) == ("SIGTERM", signal.SIGTERM)
        handler.REPEAT_SECONDS = 0.0  # the user insists, later
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_the_latest_checkpoint_exists_at_every_moment_of_a_save(tmp_path, monkeypatch):
    """checkpoint_prev is made by a hard link, not by renaming checkpoint_last away."""
    last, prev = tmp_path / "last.pt", tmp_path / "prev.pt"
    atomic_save({"n": 1}, last, previous=prev)
    real = os.replace

    def die_before_the_new_file_lands(src, dst):
        if str(dst) == str(last):
            raise KeyboardInterrupt  # stands for a kill at this instant
        return real(src, dst)

    monkeypatch.setattr(os, "replace", die_before_the_new_file_lands)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"n": 2}, last, previous=prev)
    assert torch.load(last)["n"] == 1 and torch.load(prev)["n"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "prev.pt"]
