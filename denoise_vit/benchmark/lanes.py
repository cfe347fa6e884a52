"""The benchmark's network runs: side by side in worker processes, and kept so a stopped
benchmark resumes.

Each run (one network, one seed) is a task. With `jobs` > 1 the tasks go to that many worker
processes (spawned, so no torch state is forked), each with `threads` torch threads: on a
2-core machine, two runs of one thread each use the machine better than one run of two
threads (a small model's step does not split well over threads) and the budgets, counted in
process CPU time, stay fair. Every finished task is written to `runs_dir/<name>-seed<seed>.json`
with a key of everything that shaped it; with `resume` a task whose file has the same key is
read back instead of trained again.
"""
import hashlib
import json
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import torch

from ..outputs import atomic_output
from ..training.config import to_dict


def task_key(cfg, kwargs, extra):
    """A digest of everything that shapes a run's result."""
    what = {"config": to_dict(cfg), "kwargs": {k: v for k, v in kwargs.items()
                                               if k not in ("log", "runs_dir", "matmul_rate", "idle_wait")},
            "extra": extra}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def task_path(runs_dir, cfg, tag=""):
    """runs_dir/NAME-seedS.json; a rate-check run (tag "-lr0.01") has a file of its own."""
    return Path(runs_dir) / f"{cfg.name}-seed{cfg.seed}{tag}.json"


def _run(cfg, kwargs, eval_inputs, eval_targets, n_samples, threads, path, key):
    """One task, in a worker or in this process: (record, sample outputs)."""
    from .runner import run_network
    from ..training.engine import predict
    before = torch.get_num_threads()
    if threads:   # in this process (one task left), put the caller's count back afterwards
        torch.set_num_threads(threads)
    try:
        rec, model = run_network(cfg, eval_inputs=eval_inputs, eval_targets=eval_targets, **kwargs)
        samples = predict(model, eval_inputs[:n_samples], device=torch.device("cpu"))
    finally:
        torch.set_num_threads(before)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(samples, path.with_suffix(".samples.pt"))
        with atomic_output(path) as tmp:
            Path(tmp).write_text(json.dumps({"key": key, "record": rec}, indent=1))
    return rec, samples


def cached(path, key):
    """The record of a finished task with this key, and its samples; None if there is none."""
    try:
        saved = json.loads(path.read_text())
        if saved.get("key") != key:
            return None
        return saved["record"], torch.load(path.with_suffix(".samples.pt"))
    except (OSError, ValueError, KeyError, RuntimeError):
        return None


def run_tasks(tasks, eval_inputs, eval_targets, *, jobs=1, threads=None, n_samples=6,
              runs_dir=None, resume=False, extra=None, stale=None, log=print):
    """Run `tasks` [(cfg, run_network kwargs)], `jobs` at a time; returns [(record, samples)]
    in the order of `tasks`.

    stale(record): whether a record read back must go on training (a rule of the benchmark
    changed since it was written); the task then runs with the record as run_network's
    `prior`, under the same key."""
    results, todo = [None] * len(tasks), []
    for i, (cfg, kwargs) in enumerate(tasks):
        key = task_key(cfg, kwargs, extra)
        path = task_path(runs_dir, cfg, kwargs.get("tag", "")) if runs_dir is not None else None
        hit = cached(path, key) if (resume and path is not None) else None
        if hit is not None and stale is not None and stale(hit[0]):
            log(f"{cfg.name} (seed {cfg.seed}): read back from {path}, but it diverged by the "
                f"current rule; trained again at a lower rate (--resume)")
            todo.append((i, cfg, {**kwargs, "prior": hit[0]}, path, key))
        elif hit is not None:
            log(f"{cfg.name} (seed {cfg.seed}): read back from {path} (--resume)")
            hit[0]["read_back"] = time.strftime("%Y-%m-%d %H:%M",
                                                time.localtime(path.stat().st_mtime))
            results[i] = hit
        else:
            todo.append((i, cfg, kwargs, path, key))
    if jobs <= 1 or len(todo) <= 1:
        for i, cfg, kwargs, path, key in todo:
            results[i] = _run(cfg, kwargs, eval_inputs, eval_targets, n_samples, threads, path, key)
        return results
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=follow_parent, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_run, cfg, {k: v for k, v in kwargs.items() if k != "log"}, eval_inputs, eval_targets,
                               n_samples, threads, path, key): i
                   for i, cfg, kwargs, path, key in todo}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
    return results


def follow_parent(parent, poll=1.0):
    """In a worker: end this process when the benchmark that started it is gone.

    A worker of a stopped benchmark (`kill PID`, or the parent killed outright) would otherwise
    finish its run beside whatever starts next on the machine, out of the CPU lock the parent
    held, and write its record late (measured: one such run finished two minutes after its
    benchmark was stopped, as CI started). The run it was training is lost; nothing is
    half-written (records are written whole or not at all)."""
    def watch():
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(3)
    threading.Thread(target=watch, daemon=True, name="follow-parent").start()


def default_threads(jobs):
    """Torch threads per worker: the cores this process may use, shared out."""
    return max(1, torch.get_num_threads() // max(1, jobs)) if jobs > 1 else None

