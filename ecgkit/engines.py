"""Execution engines behind one map-like function: in-process, a local process pool, or Dask.

Stages hand :func:`map_tasks` a module-level function and a list of small task descriptions; each
task does its own I/O (reads its records, writes its own output file) and returns a small summary,
so nothing large crosses a process boundary (``MEASUREMENTS.md``: pickling arrays back through a
pool's pipe is slower than one process).

Dask is optional: it is imported only when ``engine="dask"`` is asked for. The output folder must
then be visible to every Dask worker at the same path (a shared file system).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Literal, Sequence, TypeVar

from ecgkit.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Engine = Literal["local", "dask"]


def resolve_workers(workers: int) -> int:
    """``workers <= 0`` means one per CPU core."""
    return workers if workers > 0 else (os.cpu_count() or 1)


def map_tasks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int = 0,
    engine: Engine = "local",
    scheduler: str | None = None,
) -> Iterator[R]:
    """Run ``fn`` on every task and yield the results as they complete (in completion order).

    Parameters
    ----------
    fn : callable
        A module-level (picklable) function of one task.
    tasks : sequence
        Small, picklable task descriptions.
    workers : int
        Local processes; ``<= 0`` means one per core, ``1`` runs in this process (no pool, easiest
        to debug and profile).
    engine : {"local", "dask"}
        ``"dask"`` submits the tasks to a ``dask.distributed`` cluster.
    scheduler : str or None
        Dask scheduler address (``tcp://host:8786``); ``None`` starts a local Dask cluster with
        ``workers`` worker processes for the duration of the call.

    Yields
    ------
    The results of ``fn``, as each task finishes. An exception in a task propagates (after the
    pool is shut down); tasks already finished keep their outputs.

    Raises
    ------
    ConfigError
        On an unknown engine, or ``engine="dask"`` without dask.distributed installed.
    """
    if engine == "local":
        yield from _map_local(fn, tasks, resolve_workers(workers))
    elif engine == "dask":
        yield from _map_dask(fn, tasks, resolve_workers(workers), scheduler)
    else:
        raise ConfigError(f"unknown engine {engine!r}; expected 'local' or 'dask'")


def _map_local(fn: Callable[[T], R], tasks: Sequence[T], workers: int) -> Iterator[R]:
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            yield fn(task)
        return
    # "fork" where the OS has it: works from scripts without a ``__main__`` guard and from notebooks,
    # and starts in milliseconds. Tasks open their own files, so no HDF5 handle is inherited.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    from ecgkit._procs import worker_init

    # worker_init: workers die with this process, so a SIGKILLed stage leaves no orphan writing output
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=worker_init,
                             initargs=(os.getpid(),)) as pool:
        pending = {pool.submit(fn, task) for task in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        finally:
            for fut in pending:
                fut.cancel()


def _map_dask(fn: Callable[[T], R], tasks: Sequence[T], workers: int, scheduler: str | None) -> Iterator[R]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ConfigError("engine 'dask' needs dask.distributed: pip install 'ecgkit[dask]'") from exc
    cluster: Any = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    log.info("running %d tasks on dask scheduler %s", len(tasks), client.scheduler.address)
    try:
        # pure=False: every task runs even if two task descriptions compare equal.
        futures = client.map(fn, list(tasks), pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
