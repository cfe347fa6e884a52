"""A run folder belongs to one run: checked, claimed and locked before any training time.

- A fresh run into a folder that already holds a run's files is refused (continue that run
  with --resume, or give another name / --out-dir): nothing of the earlier run is replaced.
- While a run trains, it holds an exclusive lock on `.lock` in its folder; a second process
  training into the same folder at the same time is refused at once. The lock dies with its
  process (a killed run leaves no stale lock behind). On systems without fcntl there is no lock.
- Temporary files of interrupted writes (`.NAME.tmp-PID`) are removed when a run claims the
  folder.
"""
from pathlib import Path

from ..errors import TrainingError
from ..outputs import writable_folder

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the folder check still applies
    fcntl = None

RUN_FILES = ("checkpoint_last.pt", "checkpoint_prev.pt", "checkpoint_best.pt", "metrics.csv")
LOCK_NAME = ".lock"


class RunFolder:
    def __init__(self, path):
        self.path = Path(path)
        self._lock = None

    def existing_run_files(self):
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def claim(self, *, resume):
        """Create, probe, lock and check the folder; TrainingError (one line) if it is not ours."""
        writable_folder(self.path, "run folder", error=TrainingError)
        self._take_lock()
        if not resume:
            found = self.existing_run_files()
            if found:
                self.release()
                raise TrainingError(
                    f"run folder {self.path} already holds a run ({', '.join(found)}); continue "
                    "it with --resume, or train into another folder (name=NEW or --out-dir)")
        self.remove_stale_temp_files()
        return self

    def _take_lock(self):
        if fcntl is None:
            return
        f = open(self.path / LOCK_NAME, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise TrainingError(f"run folder {self.path} is in use by another training process; "
                                "wait for it to finish, or train into another folder") from None
        self._lock = f

    def release(self):
        if self._lock is not None:
            self._lock.close()   # closing the file drops the lock
            self._lock = None

    def remove_stale_temp_files(self):
        """Temporary files left by a process killed while writing (never read back)."""
        for tmp in self.path.glob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)
        (self.path / "metrics.csv.tmp").unlink(missing_ok=True)
