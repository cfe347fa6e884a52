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
