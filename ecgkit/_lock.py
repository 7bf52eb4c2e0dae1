"""Output-folder locks and crash-safe file writes shared by the stages.

:func:`output_lock` keeps two jobs from writing one output folder at once: the first job creates
``FOLDER/.ecgkit.lock`` (exclusive create) holding its pid, host, stage and process start time; a
second job finds it and refuses with a message naming the owner. A lock left by a process that no
longer exists on this host (killed, crashed, machine rebooted) is stale and is taken over. A lock
held by another host is never taken over automatically (its pid cannot be checked from here).

:func:`atomic_write_bytes` / :func:`atomic_write_text` write a file under a temporary name in the
same folder, fsync it and rename it over the target, so a reader (or a rerun after a kill) sees
the old file or the new one, never half of one. On any error (a full disk: ``ENOSPC``, ``EIO``) the
temporary file is removed before the error propagates.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from ecgkit.errors import EcgkitError

log = logging.getLogger(__name__)

LOCK_FILE = ".ecgkit.lock"


class LockedError(EcgkitError, RuntimeError):
    """The output folder is in use by another ecgkit job."""


class OutputError(EcgkitError, OSError):
    """An output could not be written (a full disk, a quota, an I/O error); temporary files are removed.

    The message names the folder, the bytes the write needed and the bytes free.
    """


def disk_error(exc: BaseException, path: str | Path, needed: int | None) -> OutputError:
    """An :class:`OutputError` for a failed write of ``needed`` bytes to ``path``."""
    import shutil

    folder = Path(path).parent if not Path(path).is_dir() else Path(path)
    try:
        free = f"{shutil.disk_usage(folder).free} bytes free"
    except OSError:
        free = "free space unknown"
    cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)[:200]
    need = f"needed {needed} bytes" if needed is not None else "needed an unknown number of bytes"
    err = OutputError(f"cannot write {path}: {cause} ({need}, {free}); temporary files removed")
    err.errno = getattr(exc, "errno", None)
    return err


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), to tell pid reuse apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    now = _start_time(pid)
    return started is None or now is None or now == started


def _owner_text(info: dict) -> str:
    since = info.get("started_at")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
    return f"ecgkit {info.get('stage', '?')} (pid {info.get('pid', '?')} on host {info.get('host', '?')} since {when})"


@contextlib.contextmanager
def output_lock(folder: str | Path, stage: str) -> Iterator[Path]:
    """Hold ``FOLDER/.ecgkit.lock`` for the duration of a ``with`` block.

    Parameters
    ----------
    folder : path
        The output folder; created if needed.
    stage : str
        Names the job in the lock and in the refusal message (``"scan"``, ``"shard"``, ``"train"``).

    Raises
    ------
    LockedError
        If a live process (or a process on another host) holds the folder's lock.

    Examples
    --------
    >>> with output_lock(tmp_path / "cohort", "scan"):  # doctest: +SKIP
    ...     write_manifest(df, tmp_path / "cohort")
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "stage": stage,
          "started_at": time.time(), "proc_start": _start_time(os.getpid())}
    payload = json.dumps(me).encode()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                info = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                info = {}
            if not info:
                # a lock being written this instant, or an empty one left by a kill during its write
                age = time.time() - path.stat().st_mtime if path.exists() else 0
                if age < 5:
                    time.sleep(0.2)
                    continue
            elif info.get("host") != me["host"] or _alive(int(info.get("pid", -1)), info.get("proc_start")):
                raise LockedError(f"{folder} is in use by {_owner_text(info)}; wait for it to finish, or, if "
                                  f"no such job runs, delete {path}") from None
            log.warning("taking over the stale lock of %s in %s", _owner_text(info), folder)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)
        break
    else:
        raise LockedError(f"could not take the lock {path} (another job keeps recreating it)")
    try:
        yield path
    finally:
        try:
            info = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        if info.get("pid") == me["pid"] and info.get("host") == me["host"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename (see the module docstring)."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and is_disk_error(exc):
            raise disk_error(exc, path, len(data)) from exc
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def is_disk_error(exc: BaseException) -> bool:
    """Whether an exception (or one it was raised from) is a full disk, a quota or an I/O error."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 10:
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
            return True
        text = str(cur)
        if "No space left" in text or "errno = 28" in text or "Disk quota" in text:
            return True  # h5py/HDF5 wraps ENOSPC in its own error types
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False
