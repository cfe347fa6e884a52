"""Output locations checked before any work: a long run never ends on an unwritable folder."""
import json
import os
from pathlib import Path

from .errors import DenoiseVitError


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
