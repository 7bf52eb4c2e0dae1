"""The run folder's gatekeeping, done before anything is written to it.

- :func:`check_shards` refuses a missing folder, an empty one, or a cohort folder passed as shards,
  naming what it found and the command to run.
- :func:`prepare_run_dir` refuses a folder that already holds a run unless the caller resumes it or
  overwrites it (then the earlier run's files are removed first, nothing else), and refuses a folder
  that holds a cohort or shards.
- :func:`run_lock` holds ``RUN_DIR/.lock`` (an ``O_EXCL`` file with the owner's pid) while a job
  trains, so a second ``ecgkit train`` into the same folder stops instead of interleaving
  checkpoints; a lock left by a dead process is taken over.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ecgkit.errors import DataError
from ecgkit.trainer.config import AUX_FILE, BEST_CKPT, CONFIG_FILE, LAST_CKPT, METRICS_FILE

__all__ = ["check_shards", "has_run", "prepare_run_dir", "run_lock", "RUN_FILES", "LOCK_FILE"]

#: what a run folder holds (``eval-*`` report folders and ``tb/`` too); ``--overwrite`` removes these
RUN_FILES = (CONFIG_FILE, AUX_FILE, LAST_CKPT, BEST_CKPT, METRICS_FILE)
LOCK_FILE = ".lock"


def check_shards(shards_dir: str | Path) -> Path:
    """The absolute shards folder, or a :class:`DataError` saying what the folder is instead."""
    path = Path(shards_dir).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"shards folder {path} does not exist; write it with `ecgkit shard COHORT --out {path}`")
    if (path / "index.parquet").exists():
        return path
    if (path / "manifest.parquet").exists():
        raise DataError(f"{path} is a cohort folder (manifest.parquet), not a shards folder: write shards "
                        f"with `ecgkit shard {path} --out SHARDS_DIR` and train on SHARDS_DIR")
    if (path / LAST_CKPT).exists() or (path / CONFIG_FILE).exists():
        raise DataError(f"{path} is a run folder, not a shards folder: train on the shards folder its "
                        f"{CONFIG_FILE} names (shards_dir)")
    what = "is empty" if not any(path.iterdir()) else "holds no index.parquet"
    raise DataError(f"{path} {what}: no shards to train on; write them with `ecgkit shard COHORT --out {path}`")


def has_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that trained: a checkpoint or a metrics row (a config file
    alone is an attempt that failed before its first epoch, and is replaced without asking)."""
    return any((run_dir / name).exists() for name in (LAST_CKPT, BEST_CKPT, METRICS_FILE))


def prepare_run_dir(run_dir: str | Path, *, resume: bool, overwrite: bool) -> Path:
    """Check that ``run_dir`` may be trained into; with ``overwrite``, remove an earlier run's files.

    Raises
    ------
    DataError
        ``run_dir`` holds a run and neither ``resume`` nor ``overwrite`` is given; ``resume``
        without ``last.pt``; ``run_dir`` is a cohort or shards folder, or a file.
    """
    out = Path(run_dir).expanduser().resolve()
    if resume and overwrite:
        raise DataError("--resume and --overwrite exclude each other")
    if out.exists() and not out.is_dir():
        raise DataError(f"run folder {out} is a file")
    for marker, kind in (("index.parquet", "shards"), ("manifest.parquet", "cohort")):
        if (out / marker).exists():
            raise DataError(f"{out} is a {kind} folder ({marker}); give the run its own folder with --out")
    if resume:
        if not (out / LAST_CKPT).exists():
            raise DataError(f"--resume given but {out / LAST_CKPT} does not exist (nothing to resume; "
                            f"train without --resume)")
        return out
    if has_run(out) and not overwrite:
        found = ", ".join(n for n in RUN_FILES if (out / n).exists())
        raise DataError(f"{out} already holds a run ({found}); pass --resume to continue it or "
                        f"--overwrite to replace it")
    if has_run(out) or (out / CONFIG_FILE).exists():
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for sub in [out / "tb", *out.glob("eval-*")]:
            if sub.is_dir():
                shutil.rmtree(sub)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


@contextmanager
def run_lock(run_dir: Path, *, enabled: bool = True) -> Iterator[None]:
    """Hold ``run_dir/.lock`` for the block; :class:`DataError` when a live process holds it."""
    if not enabled:
        yield
        return
    path = run_dir / LOCK_FILE
    run_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise DataError(f"{run_dir} is being trained by another process (pid {pid}, {path}); wait for "
                                f"it to finish, or use another --out") from None
            path.unlink(missing_ok=True)  # left by a process that died
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    else:
        raise DataError(f"cannot take the lock {path}")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
