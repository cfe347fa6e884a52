"""The thread policy: its choice from measured busy shares, the option and environment, and
that training changes torch's thread count when the free cores change (measurement mocked)."""
import subprocess
import sys

import pytest
import torch

from denoise_vit import threads
from denoise_vit.cli import main
from denoise_vit.threads import (Sample, ThreadPolicy, ThreadsError, choose_threads,
                                 others_busy_between, parse_threads, requested_threads)


@pytest.mark.parametrize("cores, others, expected", [
    (2, 0.0, 2), (2, 0.3, 2), (2, 0.5, 1), (2, 1.0, 1), (2, 1.9, 1), (2, 2.0, 1),
    (2, 5.0, 1), (8, 2.2, 6), (8, 2.7, 5), (1, 0.0, 1), (4, None, 4), (4, -0.2, 4),
])
def test_choice_from_busy_share(cores, others, expected):
    assert choose_threads(cores, others) == expected


def test_others_busy_subtracts_our_own_time():
    # 2 CPUs, 1 s: 150 of 200 jiffies busy = 1.5 cores, of which 0.5 core ours -> 1.0 others
    a = Sample(busy=1000, total=5000, cpus=2, own=10.0, wall=100.0)
    b = Sample(busy=1150, total=5200, cpus=2, own=10.5, wall=101.0)
    assert others_busy_between(a, b) == pytest.approx(1.0)
    assert others_busy_between(None, b) is None
    assert others_busy_between(b, b) is None


def test_read_proc_stat_parses(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 5 0 2 40 3 0 0 0 0 0\n"
                    "cpu1 5 0 3 40 2 0 0 0 0 0\nintr 1\n")
    assert threads.read_proc_stat(str(stat)) == (15, 100, 2)
    assert threads.read_proc_stat(str(tmp_path / "missing")) is None


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("AUTO", "auto"), ("3", 3), (2, 2)])
def test_parse_threads(text, expected):
    assert parse_threads(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "x", "", "1.5"])
def test_parse_threads_refuses(text):
    with pytest.raises(ThreadsError, match="positive integer or 'auto'"):
        parse_threads(text)


def test_precedence():
    env = {"DENOISE_VIT_THREADS": "3", "OMP_NUM_THREADS": "4"}
    assert requested_threads("1", env) == (1, "--threads")
    assert requested_threads("auto", env) == ("auto", "--threads")
    assert requested_threads(None, env) == (3, "DENOISE_VIT_THREADS")
    assert requested_threads(None, {"OMP_NUM_THREADS": "4"}) == (4, "OMP_NUM_THREADS")
    assert requested_threads(None, {"OMP_NUM_THREADS": "4,2"}) == ("auto", "default")
    assert requested_threads(None, {}) == ("auto", "default")
    with pytest.raises(ThreadsError, match="DENOISE_VIT_THREADS"):
        requested_threads(None, {"DENOISE_VIT_THREADS": "zero"})


class FakeMachine:
    """/proc/stat readings where other processes use `others` cores (2 CPUs, 100 jiffies/s)."""

    def __init__(self):
        self.t, self.busy, self.total, self.others = 0.0, 0.0, 0.0, 0.0

    def advance(self, seconds):
        self.t += seconds
        self.busy += 100 * seconds * self.others
        self.total += 200 * seconds

    def sample(self):
        return Sample(self.busy, self.total, 2, 0.0, self.t)


def make_policy(machine, calls, request="auto"):
    return ThreadPolicy(request, "test", sample=machine.sample, cores=2, set_threads=calls.append,
                        clock=lambda: machine.t, sleep=machine.advance, recheck_seconds=10,
                        log=lambda line: None)


def test_policy_adapts_only_when_free_cores_change():
    machine, calls = FakeMachine(), []
    policy = make_policy(machine, calls)
    assert policy.apply() == 2 and calls == [2]          # waited its window: idle
    machine.others = 1.0
    machine.advance(5)
    assert policy.adapt() is None and calls == [2]      # not yet time to look
    machine.advance(6)
    assert policy.adapt() == 1 and calls == [2, 1]
    machine.advance(11)
    assert policy.adapt() is None and calls == [2, 1]   # unchanged: no call
    machine.others = 0.0
    machine.advance(11)
    assert policy.adapt() == 2 and calls == [2, 1, 2]


def test_fixed_count_never_adapts():
    machine, calls = FakeMachine(), []
    policy = make_policy(machine, calls, request=1)
    assert policy.apply() == 1
    machine.others = 2.0
    machine.advance(100)
    assert policy.adapt() is None and calls == [1]


def test_training_calls_set_num_threads_when_free_count_changes(monkeypatch, tmp_path):
    """A real (tiny) training run through the CLI, the measurement mocked: a core becomes busy
    after the first steps, and training switches torch to 1 thread."""
    machine, calls = FakeMachine(), []
    real_set = torch.set_num_threads

    def start(option=None, **kwargs):
        threads._policy = ThreadPolicy("auto", "test", sample=machine.sample, cores=2,
                                       set_threads=lambda n: (calls.append(n), real_set(n)),
                                       clock=lambda: machine.t, sleep=machine.advance,
                                       recheck_seconds=10, log=lambda line: None)
        return threads._policy

    original_adapt = threads.adapt

    def adapt():   # each step: 6 s pass; from the third step on a core is busy
        machine.advance(6)
        if machine.t > 12:
            machine.others = 1.0
        return original_adapt()

    monkeypatch.setattr(threads, "start", start)
    monkeypatch.setattr(threads, "adapt", adapt)
    args = ["train", "--out-dir", str(tmp_path), "--no-progress", "model.depth=1", "data.size=16",
            "steps_per_epoch=8", "epochs=1", "batch_size=2", "data.eval_size=2", "name=t",
            "figure_samples=0"]
    assert main(args) == 0
    assert calls[0] == 2 and 1 in calls


@pytest.mark.parametrize("value", ["0", "x"])
def test_bad_threads_option_is_one_line(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--threads", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--threads" in err and "Traceback" not in err


def test_bad_environment_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("DENOISE_VIT_THREADS", "0")
    assert main(["train", "--config", "no-such-experiment"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "DENOISE_VIT_THREADS" in err


def test_threads_option_on_every_command():
    from denoise_vit.cli import build_parser
    parser = build_parser()
    for command in (["train"], ["evaluate", "--checkpoint", "c"], ["visualize", "--checkpoint", "c"],
                    ["denoise", "x", "--checkpoint", "c", "-o", "y"], ["benchmark"]):
        assert parser.parse_args(command + ["--threads", "1"]).threads == 1


def test_cli_logs_its_choice_and_sets_it():
    code = ("import torch, sys; from denoise_vit.cli import main; "
            "import denoise_vit.cli as c; c.cmd_train = lambda a: print(torch.get_num_threads()); "
            "main(['train', '--threads', '1'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "1"
    assert "threads: 1 (from --threads, fixed)" in proc.stderr + proc.stdout


def test_concurrent_calls_restore_the_thread_count_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        with threads.concurrent_calls(2) as pool:
            assert torch.get_num_threads() == 1
            assert pool.submit(torch.get_num_threads).result() == 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with threads.concurrent_calls(1) as pool:     # one worker: nothing changes
        assert pool is None and torch.get_num_threads() == before


def test_commands_freeze_the_imported_objects_out_of_the_collector():
    code = ("import gc, sys; from denoise_vit.cli import main; import denoise_vit.cli as c; "
            "c.cmd_train = lambda a: print(gc.get_freeze_count()); main(['train', '--threads', '1'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert int(proc.stdout.strip().splitlines()[-1]) > 10000   # torch's objects, frozen
