"""Files that appear whole or not at all, and safe loading of torch files.

Every writer goes to a temporary file in the destination folder and renames it into place:
a crash leaves either the old file or the new one, never half of either.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import socket
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from core.errors import RunFailure, UsageError


def ensure_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFailure(f"cannot create output folder {path}: {err.strerror}") from err
    if not os.access(path, os.W_OK):
        raise RunFailure(f"output folder {path} is not writable")
    return path


def _umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status), else set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call write(tmp_path), then rename tmp_path to path. The temp file is removed on failure.
    The file gets the mode any other file would (0666 less the umask), not mkstemp's private 0600."""
    path = Path(path)
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        full = _disk_full(err, path.parent)
        if full:
            raise RunFailure(f"no space left on the device writing {path} ({full}); nothing was half-written: free "
                             "some space (or point --out / RESULTS elsewhere) and rerun") from err
        raise
    return path


def _disk_full(err: BaseException, folder: Path) -> str | None:
    """What to say when a write failed for want of space: ENOSPC itself, or a library's own wording of it (torch.save
    says "enforce fail ... file write failed") on a device with (almost) nothing free; None otherwise."""
    import errno
    import shutil

    if not isinstance(err, (OSError, RuntimeError)):
        return None
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    said = f"{free / 2**20:,.0f} MB free in {folder}" if free is not None else f"free space in {folder} unknown"
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return said
    text = str(err).lower()
    if free is not None and free < 64 * 2**20 and any(w in text for w in ("write failed", "enforce fail", "no space")):
        return said
    return None


class LockBusy(RunFailure):
    """Another live process holds the lock."""


def clean_partial(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files an interrupted atomic_write of `path` left behind (call it only while
    holding the lock that makes you the one writer of `path`)."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


# ---------------------------------------------------------------- one writer at a time

def _owner(lock: Path) -> dict | None:
    try:
        owner = json.loads(lock.read_text())
        return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def mtime_ns(path: str | os.PathLike) -> int | None:
    """A file's modification time in ns, None if it is not there: what a writer waiting for a lock compares to
    tell whether the holder wrote the file meanwhile."""
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return None


def lock_wait() -> float:
    """Seconds a second writer waits for a held lock before giving up: TRUSTLAB_LOCK_WAIT (Make sets it, so
    two `make`s of one target never fail on each other), else 0 (stop at once)."""
    try:
        return max(0.0, float(os.environ.get("TRUSTLAB_LOCK_WAIT", "0") or 0))
    except ValueError:
        return 0.0


@contextmanager
def exclusive(lock: str | os.PathLike, what: str, wait: float | None = None):
    """Hold `lock` while the block runs: an flock on the lock file (the kernel drops it when its process
    dies, however it dies; NFS forwards it to the server), with the owner's pid and host written inside
    for messages. A second writer waits up to `wait` seconds (default: lock_wait()) for the holder, saying so
    once on stderr, then stops with a one-line LockBusy naming the owner. A lock file left by a process that
    died holding it is reported on stderr and taken over."""
    import fcntl

    lock = Path(lock)
    ensure_dir(lock.parent)
    deadline, said, changes = time.time() + (lock_wait() if wait is None else wait), False, 0
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = _owner(lock) or {}
            if time.time() < deadline:
                if not said:
                    print(f"waiting for pid {owner.get('pid', '?')} on {owner.get('host', '?')} to finish with "
                          f"{what} (lock {lock}; up to {deadline - time.time():.0f} s)", file=sys.stderr, flush=True)
                    said = True
                time.sleep(0.2)
                continue
            raise LockBusy(f"{what} is in use by pid {owner.get('pid', '?')} on {owner.get('host', '?')} "
                           f"(lock {lock}); wait for it to finish") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder released (and removed) the file between our open and our lock: again
        changes += 1
        if changes >= 5:
            raise LockBusy(f"{what}: the lock {lock} keeps changing hands; try again")
    stale = _owner(lock)
    if stale:
        print(f"warning: taking over the stale lock {lock} (pid {stale['pid']} on {stale.get('host')} died "
              "holding it)", file=sys.stderr)
    me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
    os.ftruncate(fd, 0)
    os.pwrite(fd, me.encode(), 0)
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)  # removed while still held, so no one locks a file about to vanish
        os.close(fd)


def _json_default(obj: Any):
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: store them as null so every reader agrees."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_jsonable(obj: Any) -> Any:
    """The exact value a later json.load of this object returns."""
    return json.loads(json.dumps(_finite(obj), default=_json_default))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(_finite(obj), indent=2, sort_keys=False, default=_json_default) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise UsageError(f"no such results file: {path}") from err
    except json.JSONDecodeError as err:
        raise RunFailure(f"results file {path} is not valid JSON ({err.msg} at line {err.lineno})") from err


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_figure(path: str | os.PathLike, fig) -> Path:
    """Save a matplotlib figure atomically (format from the final suffix) and close it."""
    import matplotlib.pyplot as plt

    fmt = Path(path).suffix.lstrip(".") or "png"
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)


def load_torch(path: str | os.PathLike, what: str = "file") -> Any:
    """torch.load with weights_only=True: tensors, dicts, lists and numbers only, never code.

    A whole pickled nn.Module is refused: loading it would run arbitrary code from the file.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} not found: {path}")
    try:
        with warnings.catch_warnings():  # the refusal below is the one line a user sees, not torch's advice
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise RunFailure(
            f"{what} {path} holds pickled Python objects (a whole model?), which are refused for safety; "
            "save model.state_dict() instead"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunFailure(f"{what} {path} is truncated or corrupt ({first})") from err
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as err:  # the unpickler on a file that
        # is not a torch file at all (a text file, another format): it fails anywhere in its stack machine
        raise RunFailure(f"{what} {path} is not a PyTorch file (torch.save's format): "
                         f"torch.load failed with {type(err).__name__}") from err
