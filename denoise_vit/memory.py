"""How much memory a command would need, checked before the work instead of found out by the
kernel's out-of-memory killer half-way through."""
import os
from pathlib import Path

from .errors import DenoiseVitError


def _read_int(path):
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes():
    """Memory this process can still take: the system's MemAvailable, lowered to the room left
    under a cgroup (container) limit; None where neither can be read."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        found.append(max(0, limit - used))
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(found)


def gib(n):
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def require_memory(needed, what, how):
    """Raise DenoiseVitError if `needed` bytes are more than the memory available now.

    what: the work ("denoising x.tif"); how: how the estimate is made ("17 bytes per pixel x ...").
    """
    available = available_bytes()
    if available is not None and needed > available:
        raise DenoiseVitError(f"{what} needs about {gib(needed)} of memory ({how}) but only "
                              f"{gib(available)} is available; nothing was done")


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20   # the largest value glibc accepts on 64-bit systems
TRIM_THRESHOLD = 512 * 2**20
_MALLOC_ENV = "DENOISE_VIT_MALLOC"


def keep_freed_memory(environ=None):
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the system.

    With glibc's defaults, a block above its (adaptive) mmap threshold is mapped fresh on every
    allocation and the top of the heap is given back when more than a few MB are free, so a loop
    that frees and reallocates the same tensors (a training step's activations, a generator
    batch) touches new pages every time: a minor page fault per 4 KiB. Measured on a 2-core
    Xeon: 3,000-10,000 faults per vit_fast training step and ~2,100 per `generate_images(256)`
    call, about 0.85 us each. Blocks below 32 MiB then come from the heap, and up to 512 MiB of
    free heap is kept; larger blocks (a whole image) are still mapped and returned.

    The commands call this at start-up; a library import does not change the process.
    ``DENOISE_VIT_MALLOC=system`` keeps glibc's defaults (``keep``, the default, applies these
    settings). Returns whether they were applied (False off glibc, e.g. macOS or musl, where
    nothing is changed).
    """
    environ = os.environ if environ is None else environ
    choice = environ.get(_MALLOC_ENV, "").strip().lower()
    if choice not in ("", "keep", "system"):
        raise DenoiseVitError(f"{_MALLOC_ENV} must be 'keep' or 'system', got "
                              f"{environ[_MALLOC_ENV]!r}")
    if choice == "system":
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version   # glibc only: musl's mallopt is a no-op
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
