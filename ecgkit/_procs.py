"""Worker processes that die with their parent.

A pool worker outlives a parent killed with SIGKILL (no ``atexit``, no pool shutdown): it keeps
its memory and, in the shard stage, keeps writing shards nobody will index. :func:`worker_init` is
the pool initializer: on Linux it asks the kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to kill the
worker when its parent exits; elsewhere, and as a backstop for the race where the parent dies
before the ``prctl`` call, a daemon thread polls the parent pid once a second and exits the worker
when it changes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1


def _prctl_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    import time

    while True:
        if os.getppid() != parent:
            os._exit(1)  # the parent is gone: no cleanup that could block, no more writes
        time.sleep(1.0)


def worker_init(parent_pid: int) -> None:
    """Pool initializer: make this worker die when the process ``parent_pid`` exits."""
    _prctl_pdeathsig()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="ecgkit-parent-watch").start()
