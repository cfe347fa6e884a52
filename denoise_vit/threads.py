"""How many threads torch computes with: the cores that are free now, not all of them.

Every command (train, evaluate, visualize, denoise, benchmark) goes through one policy:

- `--threads N` on the command line: exactly N intra-op threads, fixed for the whole command;
  `--threads auto` asks for the automatic choice even where the environment names a count.
- else `DENOISE_VIT_THREADS=N` (or `auto`) in the environment, the same way;
- else `OMP_NUM_THREADS=N` when the user set it: N, fixed (torch reads it too);
- else "auto" (the default): the cores this process may run on (its CPU affinity) minus those
  other processes keep busy, at least 1. Busy time is read from /proc/stat over a short window
  (at least 0.1 s: the command's start-up, its imports, usually covers it), less our own CPU
  time. A core counts as taken when other processes use more than 0.4 of one. Long work
  (training) looks again every `RECHECK_SECONDS` over the time since its last look, without
  pausing, and calls torch.set_num_threads when the count of free cores changes.
  Without /proc/stat (macOS, Windows) auto uses all the cores of the affinity mask.

Why: OpenMP threads wait for each other at the end of every operation, so two threads on a
machine where another process holds one of the two cores run at the speed of the thread that
shares its core (measured: vit_fast training at 20 % of its idle speed); one thread on the free
core keeps about half.

The choice is logged in one line on stdout, beside the command's other messages (stderr keeps
errors alone: a refused command prints its one line there).
"""
import math
import os
import time
from contextlib import contextmanager

ENV = "DENOISE_VIT_THREADS"
MIN_WINDOW = 0.1          # seconds of /proc/stat the first choice looks at
RECHECK_SECONDS = 10.0    # how often long work looks again
TAKEN_SHARE = 0.4         # other processes' use of a core above which it counts as taken


class ThreadsError(ValueError):
    """A thread count that is not a positive integer or 'auto'."""


def parse_threads(text, what="--threads"):
    """'auto' or a positive integer (as text or int) -> 'auto' or int; ThreadsError otherwise."""
    value = str(text).strip().lower()
    if value == "auto":
        return "auto"
    try:
        n = int(value)
    except ValueError:
        raise ThreadsError(f"{what} must be a positive integer or 'auto', not {text!r}") from None
    if n < 1:
        raise ThreadsError(f"{what} must be a positive integer or 'auto', not {text!r}")
    return n


def requested_threads(option=None, environ=None):
    """(request, source): the count asked for ('auto' or int) and who asked for it.
    Precedence: the --threads option, then DENOISE_VIT_THREADS, then OMP_NUM_THREADS, then auto."""
    environ = os.environ if environ is None else environ
    if option is not None:
        return parse_threads(option), "--threads"
    if environ.get(ENV, "").strip():
        return parse_threads(environ[ENV], ENV), ENV
    omp = environ.get("OMP_NUM_THREADS", "").strip()
    if omp:
        try:
            return parse_threads(omp, "OMP_NUM_THREADS"), "OMP_NUM_THREADS"
        except ThreadsError:
            pass  # OpenMP's own syntax ("4,2"): leave it to the runtime, choose automatically
    return "auto", "default"


def usable_cores():
    """Cores this process may run on: its affinity mask where the platform has one."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def choose_threads(cores, others_busy):
    """The automatic thread count: `cores` usable, `others_busy` = cores' worth of CPU time
    other processes used (e.g. 1.0: one core fully busy). Pure: no measurement here."""
    if others_busy is None:            # nothing measured (no /proc/stat): all cores
        return max(int(cores), 1)
    taken = math.floor(max(others_busy, 0.0) + (1.0 - TAKEN_SHARE))
    return max(1, min(int(cores), int(cores) - taken))


class Sample:
    """One reading: /proc/stat busy and total jiffies (all CPUs), CPUs there, our CPU seconds,
    wall time."""

    def __init__(self, busy, total, cpus, own, wall):
        self.busy, self.total, self.cpus, self.own, self.wall = busy, total, cpus, own, wall


def read_proc_stat(path="/proc/stat"):
    """(busy jiffies, total jiffies, number of CPUs) summed over all CPUs, or None."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    head = next((line for line in lines if line.startswith("cpu ")), None)
    if head is None:
        return None
    fields = [int(x) for x in head.split()[1:9]]     # user nice system idle iowait irq softirq steal
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields)
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return total - idle, total, max(cpus, 1)


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def take_sample(path="/proc/stat"):
    stat = read_proc_stat(path)
    if stat is None:
        return None
    return Sample(*stat, own_cpu_seconds(), time.monotonic())


def others_busy_between(a, b):
    """Cores' worth of CPU time used by processes other than this one between two samples."""
    if a is None or b is None or b.total <= a.total or b.wall <= a.wall:
        return None
    all_busy = (b.busy - a.busy) / (b.total - a.total) * b.cpus
    own = (b.own - a.own) / (b.wall - a.wall)
    return max(all_busy - own, 0.0)


class ThreadPolicy:
    """Chooses torch's intra-op thread count at the start of a command and, in auto mode,
    again during long work (`adapt`, called between training steps)."""

    def __init__(self, request="auto", source="default", *, sample=take_sample, cores=None,
                 set_threads=None, clock=time.monotonic, sleep=time.sleep,
                 recheck_seconds=RECHECK_SECONDS, log=None):
        self.request, self.source = request, source
        self.sample, self.clock, self.sleep = sample, clock, sleep
        self.cores = cores if cores is not None else usable_cores()
        self.set_threads = set_threads
        self.recheck_seconds = recheck_seconds
        self.log = log if log is not None else (lambda line: print(line, flush=True))
        self.threads = None
        self.others = None
        self.last = sample() if request == "auto" else None
        self.last_check = clock()

    @property
    def auto(self):
        return self.request == "auto"

    def _set(self, n):
        if self.set_threads is None:
            import torch
            torch.set_num_threads(n)
        else:
            self.set_threads(n)
        self.threads = n

    def apply(self):
        """The first choice (waits until the window since construction is MIN_WINDOW long)."""
        if not self.auto:
            self._set(self.request)
            self.log(f"threads: {self.request} (from {self.source}, fixed)")
            return self.threads
        if self.last is not None:
            left = MIN_WINDOW - (self.clock() - self.last_check)
            if left > 0:
                self.sleep(left)
        now = self.sample()
        self.others = others_busy_between(self.last, now)
        self.last, self.last_check = now, self.clock()
        self._set(choose_threads(self.cores, self.others))
        self.log(f"threads: {self.threads} of {self.cores} cores ({self.reason()}; "
                 f"set --threads N or {ENV}=N to fix the count)")
        return self.threads

    def reason(self):
        if self.others is None:
            return "auto: no /proc/stat here, all cores"
        return f"auto: other processes busy on {self.others:.1f} cores"

    def adapt(self):
        """In auto mode, every recheck_seconds: the busy share since the last look, and a new
        thread count if the free cores changed. Returns the count when it changed, else None."""
        if not self.auto or self.threads is None:
            return None
        if self.clock() - self.last_check < self.recheck_seconds:
            return None
        now = self.sample()
        others = others_busy_between(self.last, now)
        self.last, self.last_check = now, self.clock()
        if others is None:
            return None
        self.others = others
        n = choose_threads(self.cores, others)
        if n == self.threads:
            return None
        old = self.threads
        self._set(n)
        self.log(f"threads: {old} -> {n} ({self.reason()})")
        return n


_policy = None


def start(option=None, *, environ=None, log=None):
    """Begin the command's policy (before its imports: they become the measuring window)."""
    global _policy
    request, source = requested_threads(option, environ)
    _policy = ThreadPolicy(request, source, log=log)
    return _policy


def apply():
    """Make the first choice of the command's policy (no-op without one)."""
    return _policy.apply() if _policy is not None else None


def adapt():
    """Between steps of long work: let the command's policy look again (cheap otherwise)."""
    if _policy is not None:
        return _policy.adapt()
    return None


def current():
    return _policy


def reset():
    global _policy
    _policy = None


@contextmanager
def concurrent_calls(workers, threads_each=1):
    """A pool of `workers` threads, each computing with `threads_each` torch threads, for
    independent model calls (the tiles of `denoise`); torch's own thread count is
    `threads_each` meanwhile and is put back after. Yields None (nothing changed) for
    workers <= 1.

    Why: a small model's operations are short, and torch's threads wait for each other at the
    end of every one; two calls on one thread each keep both cores busy between them.
    Measured with vit_fast on the 2-core EPYC, 441 tiles of 64x64 (experiments/
    denoise_levers.py, docs/denoise_levers.json, 2026-12-06 03:41): 0.41 s this way against
    0.54 s one call at a time on two torch threads (medians of 7, taken in turns).
    A call's numbers are those of `threads_each` torch threads, which may round a last bit
    differently from torch's full count (docs/denoise_levers.json records the largest
    difference on vit_fast's 1024x1024 image).
    """
    if workers <= 1:
        yield None
        return
    import torch
    from concurrent.futures import ThreadPoolExecutor
    before = torch.get_num_threads()
    torch.set_num_threads(threads_each)
    # each worker sets its own OpenMP count too: a new thread otherwise starts a team of its own
    pool = ThreadPoolExecutor(workers, thread_name_prefix="denoise-vit-model",
                              initializer=torch.set_num_threads, initargs=(threads_each,))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(before)
