"""Writing output files so that nothing is lost: a whole new file or the old one, never half.

Every file the commands write for the user (denoised images, figures, animations) goes through
`atomic_output`: the writer writes a hidden temporary file beside the target
(`.NAME.tmp-PID.SUFFIX`), which replaces the target only once it is complete. On any error, on
Ctrl-C (SIGINT) and on SIGTERM the temporary file is removed and the target is left as it was.
Only SIGKILL (or a power cut) can leave a temporary file behind; `remove_stale_temps` deletes
those of processes that no longer run, and the commands call it for every folder they write to.

Output folders are proved writable before any work (`writable_folder`), so a long run never
ends on an unwritable folder; `read_json` reads back a command's earlier results.
"""
import json
import os
import re
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from .errors import DenoiseVitError

# .NAME.tmp-PID.SUFFIX (the suffix kept so that writers choosing a format by it still can)
TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.tmp-(?P<pid>\d+)(?P<suffix>\.[A-Za-z0-9]+)$")
CAUGHT = (signal.SIGINT, signal.SIGTERM) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())


class Terminated(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) turned into an exception, so `finally` clauses run.

    A KeyboardInterrupt, so that whatever handles Ctrl-C handles the others alike; `signum`
    gives the exit status 128 + signum.
    """

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def signals_raise():
    """While inside, SIGINT / SIGTERM / SIGHUP raise `Terminated` in the main thread instead of
    ending the process on the spot (elsewhere than the main thread: no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    previous = {}
    try:
        for sig in CAUGHT:
            previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def temp_path(path):
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


@contextmanager
def atomic_output(path):
    """Yield a temporary path to write; it replaces `path` when the block ends without error.

    The temporary file is removed on any exception, Ctrl-C or SIGTERM (the clean-up itself never
    raises over the original error). OSError from the rename propagates to the caller.
    """
    path = Path(path)
    tmp = temp_path(path)
    with signals_raise():
        try:
            yield tmp
            os.replace(tmp, path)
        except BaseException:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # the folder itself is the problem (read-only, gone); nothing was written
            raise


def pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True   # someone else's process: not ours to judge
    return True


def remove_stale_temps(folder, suffixes, log=print):
    """Delete this program's temporary files (`.NAME.tmp-PID.SUFFIX`, SUFFIX in `suffixes`) in
    `folder` whose process no longer runs: what a SIGKILL mid-write leaves. Returns them."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_NAME.match(entry.name)
        if (not match or match["suffix"].lower() not in suffixes or pid_alive(int(match["pid"]))
                or not entry.is_file()):
            continue
        try:
            entry.unlink()
        except OSError:
            continue
        removed.append(entry)
        log(f"removed {entry}: a partial file left by an interrupted run (process "
            f"{match['pid']})")
    return removed


def writable_folder(path, what="output folder", error=DenoiseVitError):
    """Create `path` if needed and prove that files can be written there; else one message
    (an `error`, a DenoiseVitError class)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise error(f"cannot write to {what} {path}: {exc.strerror or exc}") from exc
    return path


def read_json(path, what="file"):
    """A JSON file's content, or one message naming the file (missing, unreadable, corrupt)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DenoiseVitError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DenoiseVitError(f"cannot read {what} {path}: {exc}") from None
