"""The generator's compiled path on the CPU (numba): the same images as the torch path, bit for
bit, about twice as fast.

Used when numba is installed (a dependency of the package; without it everything stays on the
torch path), the images live on the CPU in float32 or float64 and cells have integer centres:

* the samplers (data_gen.sampling) draw from a CPU generator through ``Stream``, which makes
  torch's draws (the same values, and the generator's state after them) in kernels, for
  float32 images each sampler in one kernel call; the arithmetic that turns draws into object
  parameters runs in kernels too (``handles``);
* ``draw_stills`` renders a chunk of generate_images / generate_noise2noise, each image in one
  pass while it is in cache (zero, cells, copy, filled and noisy rectangles); with more than
  one torch thread, the images are shared out in runs (``_Runs``): workers render runs while
  the caller draws the noisy rectangles and their pixel noise, then the caller renders too;
* ``render_cells``, ``render_rects`` and ``Scene.noisy_copy`` (videos) use ``add_discs``,
  ``add_rects`` and ``clutter_copy``.

Moving cells, bfloat16 and GPUs stay on the torch path; ``DATA_GEN_COMPILED=0`` in the
environment turns the kernels off.

Why: the torch path lists every pixel of every object (index and value arrays, then one
``scatter_add_``) after a dozen small ops to sort the objects; on a 2-core CPU that is most of a
batch's time. The kernels read the padded (B, K) object tensors as they are and add each
object's pixels in place, so nothing is listed, sorted or gathered.

Same images: each pixel receives the same additions, in the same order and with the same
float arithmetic, as on the torch path: discs of an image in order of (radius, slot), each
pixel amp * stamp with the same float stamp; rectangles in order of (shape group, slot), each
pixel ``value`` (filled) or ``max(0, n) * value`` (noisy, n from the same normal draws, drawn
per group in the same order and shapes). Adding 0, which the torch path does for the pixels of
a patch outside its object, changes nothing, so the kernels skip those pixels. Objects are
clipped to their image (the torch path assumes they fit), so a kernel never writes outside the
output. tests/test_generator_compiled.py compares the two paths at 1 and 2 threads.

Kernels are compiled on first use and cached on disk (numba's ``cache=True``, next to
data_gen/_kernels.py when that folder is writable); importing this module does not import
numba. Training streams call ``warm_up`` so that the compile is not counted in a time budget.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache, wraps
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from data_gen.sampling import Cells, Rects

__all__ = ["available", "one_decision", "torch_path", "warm_up", "usable", "handles", "kernels",
           "Stream", "add_discs",
           "add_rects",
           "draw_stills", "clutter_copy"]

_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}
_LOCAL = threading.local()   # per calling thread: torch_path() depth, one_decision's answer


@lru_cache(maxsize=1)
def kernels():
    """The kernels module (data_gen._kernels, which imports numba), or None without numba."""
    try:
        from data_gen import _kernels
    except ImportError:
        return None
    return _kernels


def available() -> bool:
    """Whether the compiled kernels can be used: numba is installed, DATA_GEN_COMPILED is not
    0 and this thread is not inside ``torch_path()``. Inside a call of a function wrapped by
    ``one_decision``, the answer found when that call began."""
    if getattr(_LOCAL, "torch_path", 0):
        return False
    decided = getattr(_LOCAL, "decided", None)
    if decided is not None:
        return decided
    return _available()


def _available() -> bool:
    if os.environ.get("DATA_GEN_COMPILED", "1").strip() in ("0", "false", "no", "off"):
        return False
    return kernels() is not None


def one_decision(fn):
    """Decorator for the generator's public functions: ``available()`` is found once per call
    (in the calling thread) instead of at each of the few hundred tensors a batch passes
    through ``handles`` / ``usable``. Reading the environment each time cost about 0.6 ms of a
    2 ms call of ``generate_images(64)`` at 2 threads on the 2-core CPU."""
    @wraps(fn)
    def call(*args, **kwargs):
        if getattr(_LOCAL, "decided", None) is not None:   # nested: the outer call decided
            return fn(*args, **kwargs)
        _LOCAL.decided = available()   # inside torch_path(): False, numba left unimported
        try:
            return fn(*args, **kwargs)
        finally:
            _LOCAL.decided = None
    return call


class torch_path:
    """``with torch_path():`` draws on the torch path in this thread: the same images, without
    importing numba or compiling (or loading) its kernels. For a few small images, where that
    start-up (about 1.5 s on the 2-core CPU with the kernels cached) is most of the time."""

    def __enter__(self):
        _LOCAL.torch_path = getattr(_LOCAL, "torch_path", 0) + 1
        return self

    def __exit__(self, *exc):
        _LOCAL.torch_path -= 1
        return False


def warm_up() -> None:
    """Compile the kernels a float32 CPU stream uses, or load them from numba's disk cache
    (several seconds the first time, under a second after), by drawing a few tiny images and
    clips. Training streams call it when they are made, so that a training clock started after
    does not count it."""
    if not available():
        return
    from data_gen.images import generate_images
    from data_gen.video import generate_videos

    clutter = dict(filled_rate=0.01, noisy_rate=0.01)  # rectangles in every tiny image
    generator = torch.Generator().manual_seed(0)
    generate_images(2, 32, generator=generator, **clutter)
    generate_videos(1, 2, 32, generator=generator, **clutter)


def usable(out: Tensor) -> bool:
    """Whether rendering into ``out`` can take the compiled path."""
    return (out.device.type == "cpu" and out.dtype in _NUMPY and out.is_contiguous()
            and available())


def handles(t: Tensor) -> bool:
    """Whether the samplers' arithmetic on ``t`` (a draw or an integer tensor) can run in the
    kernels: a contiguous CPU tensor of int64, bool, float32 or float64."""
    return (t.device.type == "cpu" and t.is_contiguous()
            and (t.dtype in _NUMPY or t.dtype in (torch.int64, torch.bool)) and available())


# Below this many output pixels a call runs on the calling thread alone: handing work to the
# pool costs more than it saves. Interleaved in one process on the 2-core AVX2 EPYC (2 threads,
# 20 rounds): generate_images(n, 64) with the worker against without, 0.73x at n = 16, 0.71x at
# 32, 0.91x at 64, 1.11x at 128 (and 1.37x at 256 in a 6-round run).
MIN_PARALLEL_PIXELS = 96 * 64 * 64


def _workers(pixels: int | None = None) -> tuple[ThreadPoolExecutor | None, int]:
    """Threads beside the caller's for the kernels, and how many: torch's thread count less
    one (none at one thread, nor for a call writing fewer than MIN_PARALLEL_PIXELS ``pixels``).
    Made anew after a fork or a change of torch's thread count."""
    global _POOL
    wanted = torch.get_num_threads() - 1
    if wanted < 1 or (pixels is not None and pixels < MIN_PARALLEL_PIXELS):
        return None, 0
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] != wanted:
        if _POOL is not None and _POOL[0] == os.getpid():
            _POOL[2].shutdown(wait=False)  # its threads end once idle
        _POOL = (os.getpid(), wanted, ThreadPoolExecutor(wanted, thread_name_prefix="data_gen"))
    return _POOL[2], wanted


_POOL: tuple | None = None


def _ranges(batch: int, parts: int) -> list[tuple[int, int]]:
    """Up to ``parts`` runs of consecutive images covering 0..batch - 1."""
    edges = np.linspace(0, batch, parts + 1).round().astype(int).tolist()
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _start(kernel, args: tuple, batch: int) -> list[Future]:
    """kernel(*args, first, stop) over images 0..batch - 1, split between the worker threads
    and this one, which runs its share before returning; returns the workers' futures for
    ``_wait``. The kernels release the GIL, so the threads run at once. args[0] is the
    (B, H, W) array written: its size decides whether the pool is worth it."""
    pool, workers = _workers(args[0].size)
    if pool is None:
        kernel(*args, 0, batch)
        return []
    ranges = _ranges(batch, workers + 1)
    mine = ranges.pop()
    futures = [pool.submit(kernel, *args, first, stop) for first, stop in ranges]
    kernel(*args, *mine)
    return futures


def _wait(futures: list[Future]) -> None:
    for future in futures:
        future.result()  # re-raises a worker's error


def _np(t: Tensor) -> np.ndarray:
    """A numpy view of ``t`` (a copy only where it is not contiguous); each torch call this
    skips saves a few microseconds, and a batch converts a few dozen tensors."""
    if t.requires_grad:
        t = t.detach()
    return (t if t.is_contiguous() else t.contiguous()).numpy()


@lru_cache(maxsize=32)
def _stamp_table(rmax: int, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The course stamps of radii 1..rmax flattened end to end, where each starts, and the
    columns [lo, hi) inside the disc on each row of each stamp, (rmax + 1, 2 * rmax - 1, 2)."""
    from data_gen.rendering import _disc_stamp

    starts = np.zeros(rmax + 1, np.int64)
    spans = np.zeros((rmax + 1, 2 * rmax - 1, 2), np.int64)
    parts, offset = [], 0
    for r in range(1, rmax + 1):
        stamp = _disc_stamp(r, dtype, torch.device("cpu")).numpy()
        offsets = np.arange(1 - r, r)
        inside = offsets[:, None] ** 2 + offsets[None, :] ** 2 < r * r
        spans[r, :2 * r - 1, 0] = inside.argmax(axis=1)  # every row has its middle pixel
        spans[r, :2 * r - 1, 1] = 2 * r - 1 - inside[:, ::-1].argmax(axis=1)
        starts[r] = offset
        parts.append(stamp.reshape(-1))
        offset += stamp.size
    return np.concatenate(parts), starts, spans


def _cell_arrays(cells: Cells, dtype: torch.dtype) -> tuple:
    """The kernels' tuple for ``cells`` (see data_gen._kernels)."""
    if cells.centre_y.is_floating_point() or cells.centre_x.is_floating_point():
        raise ValueError("the compiled renderer draws discs with integer centres only")
    valid, radius = _np(cells.valid), _np(cells.radius)
    radii = radius[valid]
    rmax = int(radii.max()) if radii.size else 1
    if radii.size and int(radii.min()) < 1:
        raise ValueError("cell radius must be at least 1")
    return (_np(cells.centre_y), _np(cells.centre_x), radius, _np(cells.amplitude.to(dtype)),
            valid, *_stamp_table(rmax, dtype), rmax)


def _rect_arrays(rects: Rects, dtype: torch.dtype, generator=None, *,
                 pixel_noise: bool = False) -> tuple:
    """The kernels' tuple for ``rects`` (see data_gen._kernels); with ``pixel_noise``, draws the
    standard normals of each group's (size, P, Q) patches from ``generator`` now, group by
    group, as the torch path draws them (``torch.randn((size, P, Q))`` per non-empty group)."""
    h, w, valid = _np(rects.height), _np(rects.width), _np(rects.valid)
    key, rank, sizes, longest = kernels().groups(h, w, valid)
    counts = [int(size) * int(p) * int(q) for size, (p, q) in zip(sizes, longest)]
    offsets = np.zeros(4, np.int64)
    offsets[1:] = np.cumsum(counts)[:-1]
    noise = _scratch(sum(counts) if pixel_noise else 0, dtype)
    if pixel_noise:
        _normals([noise[start:start + count] for start, count in zip(offsets.tolist(), counts)
                  if count], generator)
    return (_np(rects.top), _np(rects.left), h, w, _np(rects.value.to(dtype)), valid, key,
            rank, longest, noise.numpy(), offsets)


class Stream:
    """The samplers' draws (data_gen.sampling) from a torch CPU generator, made in kernels
    (data_gen._kernels, ``stream_*``) on a copy of its state and written back at the end of the
    ``with`` block: the values and the final state are those of the torch calls
    (``torch.rand``, ``torch.randint``, ``torch.poisson``), each draw one kernel call instead of
    a torch call with its dispatch (about 5 us each, most of the samplers' time on a 2-core
    CPU, and more when the caches are cold, as between training steps).

    torch.Generator.get_state() on the CPU is at::CPUGeneratorImplState, 5056 bytes: the seed
    (int64), ``left`` (int32), ``seeded`` (int32), ``next`` (uint64), the 624 words of the
    Mersenne Twister as uint64, then the cached normal samples, which are kept as they are.
    ``usable`` checks that layout, and the kernels' draws, once per process against torch's.
    Draws the kernels do not make (other dtypes, Poisson rates of 10 and more) are torch calls
    on the generator, with the state handed over before and read back after."""

    WORDS = slice(24, 24 + 624 * 8)

    def __init__(self, generator: torch.Generator):
        self.generator = generator
        self._read()

    def _read(self) -> None:
        self.state = self.generator.get_state().numpy().copy()
        self.words = self.state[self.WORDS].view(np.uint64).astype(np.uint32)
        self.pos = np.array([self.state[8:12].view(np.int32)[0],
                             self.state[16:24].view(np.uint64)[0]], np.int64)

    def _write(self) -> None:
        self.state[8:12].view(np.int32)[0] = self.pos[0]
        self.state[16:24].view(np.uint64)[0] = self.pos[1]
        self.state[self.WORDS].view(np.uint64)[:] = self.words
        self.generator.set_state(torch.from_numpy(self.state))

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> bool:
        self._write()
        return False

    def _torch(self, draw):
        self._write()
        try:
            return draw(self.generator)
        finally:
            self._read()

    def rand(self, shape, dtype: torch.dtype) -> Tensor:
        out = torch.empty(shape, dtype=dtype)
        if dtype == torch.float32:
            kernels().stream_rand32(self.words, self.pos, out.numpy())
        elif dtype == torch.float64:
            kernels().stream_rand64(self.words, self.pos, out.numpy())
        else:
            return self._torch(lambda g: torch.rand(shape, generator=g, dtype=dtype))
        return out

    def normal(self, out: Tensor) -> Tensor:
        """``out.normal_()`` for a 1-d contiguous float32 ``out``, returned."""
        if out.numel() < 16:   # torch's scalar path, with its cached normal samples
            return self._torch(lambda g: out.normal_(generator=g))
        # as at::native normal_fill: uniforms, Box-Muller on each run of 16, and where the size
        # is not a multiple of 16, the last 16 values made again from 16 fresh uniforms. Kernel
        # by kernel rather than in one: one kernel calling the others took 2.5 s more to compile
        k, flat, n = kernels(), out.numpy(), out.numel()
        k.stream_rand32(self.words, self.pos, flat)
        k.box_muller(flat, 0, n // 16)
        if n % 16:
            tail = np.empty(16, np.float32)
            k.stream_rand32(self.words, self.pos, tail)
            k.box_muller(tail, 0, 1)
            flat[n - 16:] = tail
        return out

    def randint(self, low: int, high: int, shape) -> Tensor:
        """Integers in [low, high)."""
        out = torch.empty(shape, dtype=torch.int64)
        kernels().stream_randint(self.words, self.pos, out.numpy(), int(low), int(high - low))
        return out

    def poisson(self, mean: float, n: int) -> Tensor:
        """(n,) int64 from Poisson(mean), ``mean`` first rounded to torch's default dtype as
        ``torch.full`` stores it."""
        rate = _stored_rate(mean)
        if not 0 <= rate < 10:
            return self._torch(lambda g: torch.poisson(
                torch.full((n,), float(mean)), generator=g).long())
        out = np.empty(n, np.int64)
        kernels().stream_poisson_small(self.words, self.pos, out, rate)
        return torch.from_numpy(out)

    def objects(self, kind: str, dtype: torch.dtype, n: int, height: int, width: int,
                mean: float, *params) -> tuple[Tensor, ...] | None:
        """A sampler's draws and arithmetic in one kernel call (``sample_cells32`` ...):
        ``kind`` "cells", "filled" or "noisy", ``params`` the sampler's ranges, flattened.
        For float32 draws and images (torch's default dtype float32 too) and Poisson rates
        below 10; else None, and the sampler draws one tensor at a time."""
        if dtype != torch.float32 or torch.get_default_dtype() != torch.float32:
            return None
        rate = _stored_rate(mean)
        if not 0 <= rate < 10:
            return None
        kernel = getattr(kernels(), _OBJECT_KERNELS[kind])
        return tuple(map(torch.from_numpy, kernel(self.words, self.pos, n, height, width,
                                                  rate, *params)))

    @staticmethod
    def usable(generator) -> bool:
        """Whether the draws of ``generator`` can be made here: a CPU torch.Generator, the
        kernels available and checked against torch in this process."""
        return (isinstance(generator, torch.Generator) and generator.device.type == "cpu"
                and available() and _stream_checked())


def _stored_rate(mean: float) -> float:
    """A Poisson rate as ``torch.full`` stores it, in torch's default dtype."""
    return float(torch.tensor(float(mean)).item())


_OBJECT_KERNELS = {"cells": "sample_cells32", "filled": "sample_filled32",
                   "noisy": "sample_noisy32"}


@lru_cache(maxsize=1)
def _stream_checked() -> bool:
    """Whether ``Stream`` gives torch's values here: the same draws of every kind and the same
    state after them (across twists of the state), or False (then the samplers call torch)."""
    try:
        probe = torch.Generator().manual_seed(20261205)
        if probe.get_state().numel() != 5056:
            return False
        copy = torch.Generator().manual_seed(20261205)
        with Stream(copy) as stream:
            mine = [stream.rand((700,), torch.float32), stream.randint(3, 17, (5, 300)),
                    stream.poisson(8.19, 500), stream.rand((2, 400), torch.float64),
                    stream.poisson(0.4, 300), stream.randint(0, 2 ** 40, (50,)),
                    stream.poisson(30.0, 20), stream.rand((3,), torch.bfloat16)]
        theirs = [torch.rand((700,), generator=probe), torch.randint(3, 17, (5, 300), generator=probe),
                  torch.poisson(torch.full((500,), 8.19), generator=probe).long(),
                  torch.rand((2, 400), generator=probe, dtype=torch.float64),
                  torch.poisson(torch.full((300,), 0.4), generator=probe).long(),
                  torch.randint(0, 2 ** 40, (50,), generator=probe),
                  torch.poisson(torch.full((20,), 30.0), generator=probe).long(),
                  torch.rand((3,), generator=probe, dtype=torch.bfloat16)]
        same = all(a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(mine, theirs))
        return same and torch.equal(copy.get_state(), probe.get_state())
    except Exception:   # an unexpected layout or build: keep to torch's calls
        return False


def _normals(parts: list[Tensor], generator) -> None:
    """``part.normal_(generator=generator)`` for each of ``parts`` (1-d, contiguous), in turn.
    For float32 parts of 16 values or more the draws are made in a kernel
    (``Stream.normal``: about 1.6x as fast as torch's, the same values and the same state
    after), where ``_normal_checked`` found it equal to torch's normal_ in this process."""
    source = torch.default_generator if generator is None else generator
    fast = (all(p.dtype == torch.float32 for p in parts) and Stream.usable(source)
            and _normal_checked())
    if not fast:
        for part in parts:
            part.normal_(generator=generator)
        return
    with Stream(source) as stream:
        for part in parts:
            stream.normal(part)


@lru_cache(maxsize=1)
def _normal_checked() -> bool:
    """Whether ``Stream.normal`` gives torch's normal_ here, value for value and state for
    state (torch's Box-Muller depends on the CPU: its AVX2 path, which the kernel follows, or
    a scalar one)."""
    try:
        probe = torch.Generator().manual_seed(20261206)
        copy = torch.Generator().manual_seed(20261206)
        sizes = (16, 17, 400, 625, 5000, 1377)
        theirs = [torch.empty(n).normal_(generator=probe) for n in sizes]
        with Stream(copy) as stream:
            mine = [stream.normal(torch.empty(n)) for n in sizes]
        same = all(torch.equal(a.view(torch.int32), b.view(torch.int32))
                   for a, b in zip(mine, theirs))
        return same and torch.equal(copy.get_state(), probe.get_state())
    except Exception:   # an unexpected layout or build: keep to torch's calls
        return False


def _scratch(size: int, dtype: torch.dtype) -> Tensor:
    """A (size,) buffer for the pixel noise, kept per thread and reused by the next batch (the
    kernels are done with it when their call returns). Its size changes with every batch's
    rectangles; a fresh buffer each time left the heap a different shape from call to call,
    and some processes then took about 40 new pages (page faults) per batch."""
    buffers = _SCRATCH.__dict__.setdefault("buffers", {})
    buffer = buffers.get(dtype)
    if buffer is None or buffer.numel() < size:
        buffer = torch.empty(max(size, 2 * (0 if buffer is None else buffer.numel())),
                             dtype=dtype)
        buffers[dtype] = buffer
    return buffer[:size]


_SCRATCH = threading.local()


def add_discs(out: Tensor, cells: Cells) -> None:
    """Add cells with integer centres into ``out`` (B, H, W)."""
    if bool(cells.valid.any()):
        _wait(_start(kernels().discs, (out.numpy(), _cell_arrays(cells, out.dtype)),
                     out.shape[0]))


def add_rects(out: Tensor, rects: Rects, *, pixel_noise: bool, generator) -> None:
    """Add rectangles into ``out`` (B, H, W); noisy ones (``pixel_noise``) draw their pixel noise
    from ``generator`` as the torch path does."""
    if bool(rects.valid.any()):
        arrays = _rect_arrays(rects, out.dtype, generator, pixel_noise=pixel_noise)
        _wait(_start(kernels().rects, (out.numpy(), arrays, bool(pixel_noise)), out.shape[0]))


def draw_stills(clean: Tensor, outs: list[Tensor], *, cells, filled, noisy, sensor_noise,
                generator) -> None:
    """The generator's chunk: clean = fresh cells; each of ``outs`` = clean + fresh filled and
    noisy rectangles, then ``sensor_noise(out)``; all (B, H, W), overwritten.

    cells, filled, noisy: callables drawing the objects of the chunk (``Scene.cells`` ...),
    called in the torch path's order (cells; then for each out: filled, noisy and its pixel
    noise, sensor noise), so the random stream and the images are the torch path's. One
    thread draws everything, then renders each image in one pass. With more threads, the
    images are shared out in runs (``_Runs``): workers render runs from the front while this
    thread draws the noisy rectangles and their pixel noise, then this thread renders runs from
    the back, and all add the noisy rectangles to the runs rendered before they were drawn.
    """
    dtype, batch = clean.dtype, clean.shape[0]
    kernel = kernels().still
    cell_arrays = _cell_arrays(cells(), dtype)
    pool, workers = _workers(clean.numel())
    for i, out in enumerate(outs):
        first = i == 0
        filled_arrays = _rect_arrays(filled(), dtype)
        if pool is None:
            noisy_arrays = _rect_arrays(noisy(), dtype, generator, pixel_noise=True)
            kernel(clean.numpy(), out.numpy(), cell_arrays, filled_arrays, noisy_arrays, first,
                   True, True, 0, batch)
        else:
            runs = _Runs(kernel, (clean.numpy(), out.numpy(), cell_arrays, filled_arrays),
                         first, batch)
            futures = [pool.submit(runs.work) for _ in range(workers)]
            try:
                runs.give(_rect_arrays(noisy(), dtype, generator, pixel_noise=True))
            except BaseException:
                runs.give(None)   # the workers stop; their errors, if any, are not the cause
                for future in futures:
                    future.exception()
                raise
            runs.finish()
            _wait(futures)
        sensor_noise(out)


class _Runs:
    """One ``draw_stills`` image set shared between threads in runs of RUN images.

    Workers (``work``) take runs from the front: before the noisy rectangles are given, they
    render a run's cells, copy and filled rectangles and leave it ``pending``; after, the whole
    run in one pass. The thread that draws the noisy rectangles ``give``s them, then
    (``finish``) takes runs from the back in one pass each; then all add the noisy rectangles
    to the pending runs. Each image gets the same additions in the same order either way, so
    the images do not depend on who renders what. After ``give(None)`` (an error) workers stop.
    """

    RUN = 32

    def __init__(self, kernel, arrays: tuple, first: bool, batch: int):
        self.kernel, self.arrays, self.first = kernel, arrays, first
        self.runs = [(a, min(a + self.RUN, batch)) for a in range(0, batch, self.RUN)]
        self.front, self.back, self.pending = 0, len(self.runs), []
        self.lock, self.given, self.noisy = threading.Lock(), threading.Event(), None

    def _take(self, front: bool):
        with self.lock:
            if self.front >= self.back:
                return None
            if front:
                self.front += 1
                return self.runs[self.front - 1]
            self.back -= 1
            return self.runs[self.back]

    def _take_pending(self):
        with self.lock:
            return self.pending.pop() if self.pending else None

    def give(self, noisy) -> None:
        self.noisy = noisy
        self.given.set()

    def _whole(self, run) -> None:
        self.kernel(*self.arrays, self.noisy, self.first, True, True, *run)

    def _add_pending(self) -> None:
        while (run := self._take_pending()) is not None:
            self.kernel(*self.arrays, self.noisy, False, False, True, *run)

    def work(self) -> None:
        while (run := self._take(front=True)) is not None:
            if self.given.is_set():
                if self.noisy is None:
                    return
                self._whole(run)
            else:   # the filled arrays stand in for the noisy ones, which this stage skips
                self.kernel(*self.arrays, self.arrays[3], self.first, True, False, *run)
                with self.lock:
                    self.pending.append(run)
        self.given.wait()
        if self.noisy is not None:
            self._add_pending()

    def finish(self) -> None:
        while (run := self._take(front=False)) is not None:
            self._whole(run)
        self._add_pending()


def clutter_copy(out: Tensor, clean: Tensor, filled: Rects, noisy: Rects, generator) -> None:
    """out = clean + filled rectangles + noisy rectangles (pixel noise drawn from ``generator``),
    all (B, H, W): the same as copying and then adding each set, in one pass over the images."""
    if clean.shape != out.shape or clean.dtype != out.dtype or not clean.is_contiguous():
        raise ValueError("clean must be a contiguous tensor of out's shape and dtype")
    filled_arrays = _rect_arrays(filled, out.dtype)
    noisy_arrays = _rect_arrays(noisy, out.dtype, generator, pixel_noise=True)
    none = np.zeros((out.shape[0], 0), np.int64)  # no cells: that stage is off
    no_cells = (none, none, none, none.astype(_NUMPY[out.dtype]), none.astype(bool),
                *_stamp_table(1, out.dtype), 1)
    _wait(_start(kernels().still, (clean.numpy(), out.numpy(), no_cells, filled_arrays,
                                    noisy_arrays, False, True, True), out.shape[0]))
