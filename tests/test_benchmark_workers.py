"""A stopped benchmark takes its worker processes with it (benchmark.lanes.follow_parent)."""
import subprocess
import sys
import textwrap
import time
from pathlib import Path

PARENT = textwrap.dedent("""
    import os, signal, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from denoise_vit.benchmark.lanes import follow_parent

    def train(path):             # stands for a network's run: long, and writes at its end
        open(path + ".pid", "w").write(str(os.getpid()))
        time.sleep(60)
        open(path, "w").write("record")

    if __name__ == "__main__":
        pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=follow_parent,
                                   initargs=(os.getpid(), 0.1))
        pool.submit(train, sys.argv[1])
        while not os.path.exists(sys.argv[1] + ".pid"):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)   # the benchmark stopped outright
""")


def gone(pid):
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "State:\tZ" in state   # ended, not yet reaped by its new parent


def test_a_worker_ends_when_the_benchmark_that_started_it_is_killed(tmp_path):
    script, record = tmp_path / "parent.py", tmp_path / "run.json"
    script.write_text(PARENT)
    done = subprocess.run([sys.executable, str(script), str(record)], timeout=120)
    assert done.returncode != 0                                   # killed, as a stop does
    pid = int(Path(str(record) + ".pid").read_text())
    end = time.monotonic() + 15
    while not gone(pid) and time.monotonic() < end:
        time.sleep(0.1)
    assert gone(pid), "the worker outlived its benchmark"
    assert not record.exists()                                    # its run is lost, not late
