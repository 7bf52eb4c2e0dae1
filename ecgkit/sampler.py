"""Task-aware imbalance sampler (CO-TASK) and UCSF-style per-class oversampling.

ECG-P18 tasks are imbalanced by ratios that differ a hundredfold (LVH 1:7, 3AVB 1:2300), and one record
is positive for some tasks and negative for others, so no single-label sampler fits. For every batch
:class:`TaskAwareSampler` first picks a task ``t`` (uniformly or by ``task_weights``), then draws
``batch_size`` records, with replacement, each with probability proportional to ``w(n_c)``, where ``c``
is the record's class (0 or 1) in task ``t`` and ``n_c`` the class's count among the records whose
label for ``t`` is known. Records labelled -1 for ``t`` are never drawn for ``t``.

Equivalently a class is chosen with probability ``n_c w(n_c) / sum_c' n_c' w(n_c')`` and then a record
uniformly within the class; the kernel does exactly that (an alias table over tasks, a threshold
for the class, then a record from the class's index list or, for a class holding >= 1/4 of the
records, by rejection on its bit mask), so a draw costs a few nanoseconds and stays in cache.

This module imports neither torch nor h5py. Using it with a PyTorch ``DataLoader``::

    sampler = TaskAwareSampler(train_labels, batch_size=256, seed=cfg.seed,
                               rank=rank, world_size=world_size)
    loader = DataLoader(TaskBatchDataset(dataset), batch_sampler=sampler,
                        collate_fn=collate_task_batch, num_workers=4, pin_memory=True)
    for epoch in range(start_epoch, n_epochs):
        sampler.set_epoch(epoch)
        for task, batch in loader:          # task: int, batch: dataset.get_batch(indices)
            ...

or without a ``DataLoader``: ``for task, idx in sampler: batch = dataset.get_batch(idx)``.
``DataLoader`` runs a ``batch_sampler`` in the main process and hands the yielded item, here the
tuple ``(task, indices)``, to one worker's fetcher, which calls ``dataset.__getitems__(item)`` and then
``collate_fn``. :class:`TaskBatchDataset` turns that into ``(task, dataset.get_batch(indices))`` and
:func:`collate_task_batch` passes it through unchanged (PyTorch's default collate would split the
tuple). So the stream does not depend on ``num_workers``.

Streams, ranks and workers
--------------------------
Random numbers are counter-based (SplitMix64, see :mod:`ecgkit._sampler_kernels`): batch ``b`` of
rank ``r`` in epoch ``e`` is a pure function of ``(seed, e, g = b * world_size + r)``. The epoch key
comes from ``numpy.random.SeedSequence(seed, spawn_key=(e,))``. Hence

* ranks draw from disjoint counter ranges of one stream (disjoint by construction, not by luck);
  the union of the R ranks' batches equals the batches of a single-rank run with R times as many
  batches. Records are drawn with replacement, so one record can still appear on two ranks.
* if ``__iter__`` runs inside a DataLoader worker (e.g. the sampler is wrapped in an
  ``IterableDataset``), worker ``w`` of ``W`` yields the rank's batches ``b`` with ``b % W == w``:
  the workers' streams are disjoint and together equal the main-process stream.
* resuming is exact and needs no RNG state: ``state_dict()`` is ``{"epoch", "batch", ...}``.
"""
from __future__ import annotations

import logging
import math
import sys
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecgkit import _sampler_kernels as _k
from ecgkit.errors import ConfigError, SchemaError

logger = logging.getLogger(__name__)

WeightFn = Union[str, Callable[[NDArray[np.float64]], ArrayLike]]

# Per-record weight at n_c = 1 for weight_fn="log": log(1)/1 = 0 would make a class of one record
# undrawable, so it gets log(2)/2, the per-record weight of a class of two.
LOG_WEIGHT_FLOOR = math.log(2.0) / 2.0
# Batches drawn per kernel call: amortises the Python call over many batches while keeping the
# buffer small (capped at ~2**20 indices, 8 MiB).
_BLOCK_BATCHES = 64
_BLOCK_DRAWS = 1 << 20
# A class with at least 1/_REJECT_SHARE of all records is drawn by rejection on its bit mask
# (<= 4 tries expected); smaller classes from an explicit index list.
_REJECT_SHARE = 4
_STATE_VERSION = 1


def _weight_log(n: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.log(n) / n
    return np.where(n <= 1, LOG_WEIGHT_FLOOR, w)


def _weight_inverse_log(n: NDArray[np.float64]) -> NDArray[np.float64]:
    # 1/log(n) is infinite at n = 1: a class of one record weighs as a class of two, as for "log"
    with np.errstate(divide="ignore"):
        return 1.0 / np.log(np.maximum(n, 2.0))


_WEIGHT_FNS: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "log": _weight_log,
    "inverse_log": _weight_inverse_log,  # the CO-TASK authors' code: wf_onedivlogx
    "inverse": lambda n: 1.0 / n,
    "sqrt": lambda n: 1.0 / np.sqrt(n),
    "none": lambda n: np.ones_like(n),
}


def class_weights(counts: ArrayLike, weight_fn: WeightFn = "log") -> NDArray[np.float64]:
    """Per-record weight ``w(n_c)`` of each class from its count.

    Parameters
    ----------
    counts
        (C,) class counts ``n_c`` (all >= 1).
    weight_fn
        ``"log"``: ``log(n)/n`` (``log(2)/2`` at ``n = 1``, see :data:`LOG_WEIGHT_FLOOR`);
        ``"inverse"``: ``1/n``; ``"inverse_log"``: ``1/log(n)`` (``1/log(2)`` at ``n = 1``);
        ``"sqrt"``: ``1/sqrt(n)``; ``"none"``: 1; or a callable taking the
        (C,) float64 count array and returning (C,) non-negative finite weights.

    Returns
    -------
    ndarray
        (C,) float64 per-record weights.

    Raises
    ------
    ConfigError
        Unknown name, or a callable returning the wrong shape, negative or non-finite weights.
    """
    n = np.asarray(counts, dtype=np.float64)
    if isinstance(weight_fn, str):
        if weight_fn not in _WEIGHT_FNS:
            raise ConfigError(f"weight_fn must be one of {sorted(_WEIGHT_FNS)} or a callable, "
                              f"got {weight_fn!r}")
        return _WEIGHT_FNS[weight_fn](n)
    if not callable(weight_fn):
        raise ConfigError(f"weight_fn must be a name or a callable, got {type(weight_fn).__name__}")
    w = np.asarray(weight_fn(n.copy()), dtype=np.float64)
    if w.shape != n.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ConfigError(f"weight_fn {weight_fn!r} returned {w!r} for class counts {n!r}: expected "
                          f"{n.shape[0]} finite non-negative weights")
    return w


def major_task_weights(n_tasks: int, major_tasks: Sequence[int], major_weight: float = 4.0
                       ) -> NDArray[np.float64]:
    """Task weights favouring major tasks: ``major_weight`` for each task in ``major_tasks``, else 1.

    Pass the result as ``task_weights`` to :class:`TaskAwareSampler` (e.g. the 18 ECG-P18 tasks as
    major, the CO-TASK auxiliary tasks appended after them as minor).

    Returns
    -------
    ndarray
        (n_tasks,) float64.
    """
    if major_weight <= 0 or not np.isfinite(major_weight):
        raise ConfigError(f"major_weight must be a positive number, got {major_weight!r}")
    w = np.ones(n_tasks, dtype=np.float64)
    majors = np.asarray(list(major_tasks), dtype=np.int64)
    if majors.size and (majors.min() < 0 or majors.max() >= n_tasks):
        raise ConfigError(f"major_tasks {majors.tolist()} out of range for {n_tasks} tasks")
    w[majors] = major_weight
    return w


def check_labels(labels: ArrayLike) -> NDArray[np.int8]:
    """Validate a (N, T) label matrix of 1/0/-1 and return it as int8 (no copy when already int8).

    Raises
    ------
    SchemaError
        Wrong shape, non-integer dtype, or a value other than 1, 0, -1 (naming row and task).
    """
    arr = np.asarray(labels)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise SchemaError(f"labels must be a non-empty (N, T) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise SchemaError(f"labels must be an integer array of 1/0/-1, got dtype {arr.dtype}")
    bad = (arr != 1) & (arr != 0) & (arr != -1)
    if bad.any():
        r, t = np.argwhere(bad)[0]
        raise SchemaError(f"labels must be 1, 0 or -1; record row {r}, task {t} has {arr[r, t]}")
    return arr.astype(np.int8, copy=False)


def _worker() -> tuple[int, int]:
    """(worker id, number of workers) inside a torch DataLoader worker, else (0, 1).

    torch is only consulted when something else already imported it, so this module never
    imports torch itself.
    """
    if "torch" not in sys.modules:
        return 0, 1
    from torch.utils.data import get_worker_info  # lazy: keeps the module torch-free

    info = get_worker_info()
    return (0, 1) if info is None else (int(info.id), int(info.num_workers))


class TaskAwareSampler:
    """Batch sampler: pick a task per batch, then draw records by class weight ``w(n_c)``.

    Parameters
    ----------
    labels
        (N, T) int8 (any integer dtype accepted) with 1 positive, 0 negative, -1 unknown.
        N records of the training split, T tasks (ECG-P18 tasks, then any CO-TASK auxiliary tasks).
    batch_size
        Records per batch (drawn with replacement).
    task_weights
        ``None`` or ``"uniform"``: every usable task equally likely; or (T,) non-negative weights,
        e.g. from :func:`major_task_weights`. Renormalised over usable tasks.
    weight_fn
        Per-record class weight ``w(n_c)``: ``"log"`` (default, ``log(n)/n``), ``"inverse"``,
        ``"sqrt"``, ``"none"`` or a callable; see :func:`class_weights`.
    seed
        Non-negative integer seed.
    batches_per_epoch
        Epoch length per rank. Default ``ceil(N / (batch_size * world_size))``: across all ranks one
        epoch draws about N records, as one pass over the split would.
    rank, world_size
        Data-parallel rank and number of ranks; rank ``r`` takes global batches
        ``b * world_size + r``.

    Notes
    -----
    A task is *usable* when it has at least one known positive and one known negative record.
    Unusable tasks (all -1, or a single class) get task probability 0, are never yielded, and are
    logged once as a warning; if no task is usable a :class:`~ecgkit.errors.ConfigError` is raised.

    Iterating yields ``(task_index, indices)``: ``task_index`` an ``int``, ``indices`` an int64
    array (batch_size,), a view into a freshly allocated block (never overwritten later).
    Iteration continues from the current position to the end of the epoch, then advances to the
    next epoch; ``set_epoch`` (as with ``DistributedSampler``) jumps to an epoch's start.
    """

    def __init__(self, labels: ArrayLike, batch_size: int, *, task_weights: ArrayLike | str | None = None,
                 weight_fn: WeightFn = "log", seed: int = 0, batches_per_epoch: int | None = None,
                 rank: int = 0, world_size: int = 1, task_names: Sequence[str] | None = None) -> None:
        lab = check_labels(labels)
        n_records, n_tasks = lab.shape
        if int(batch_size) != batch_size or not 1 <= batch_size < 2 ** 31:
            raise ConfigError(f"batch_size must be an integer in [1, 2**31), got {batch_size!r}")
        if int(seed) != seed or not 0 <= seed < 2 ** 63:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        if int(world_size) != world_size or world_size < 1:
            raise ConfigError(f"world_size must be a positive integer, got {world_size!r}")
        if int(rank) != rank or not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, {world_size}), got {rank!r}")
        if batches_per_epoch is None:
            batches_per_epoch = math.ceil(n_records / (batch_size * world_size))
        if int(batches_per_epoch) != batches_per_epoch or batches_per_epoch < 1:
            raise ConfigError(f"batches_per_epoch must be a positive integer, got {batches_per_epoch!r}")
        self.n_records = int(n_records)
        self.n_tasks = int(n_tasks)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.batches_per_epoch = int(batches_per_epoch)
        self.weight_fn = weight_fn
        self._epoch = 0
        self._batch = 0
        self._key_cache: tuple[int, np.uint64] = (-1, np.uint64(0))

        counts = np.stack([(lab == 0).sum(axis=0), (lab == 1).sum(axis=0)], axis=1).astype(np.int64)
        self.class_counts: NDArray[np.int64] = counts  # (T, 2): known negatives, known positives
        usable: NDArray[np.bool_] = np.asarray((counts > 0).all(axis=1), dtype=bool)
        # Per (task, class): a bit mask over records (N/8 bytes) for the rejection draw of large
        # classes, and an explicit index list for the others (see _sampler_kernels._draw_batches).
        n_words = (n_records + 63) // 64
        padded = np.zeros((n_words * 64, n_tasks, 2), dtype=bool)
        padded[:n_records, :, 0] = lab == 0
        padded[:n_records, :, 1] = lab == 1
        # (T, 2, n_words) uint64, bit r % 64 of word r // 64 = record r (little-endian bit order)
        packed = np.packbits(padded.transpose(1, 2, 0), axis=-1, bitorder="little")
        self._class_bits = np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)
        starts = np.full((n_tasks, 2), -1, dtype=np.int64)
        pieces = []
        offset = 0
        for t in range(n_tasks):
            for c in range(2):
                if _REJECT_SHARE * counts[t, c] < n_records:  # small class: explicit list
                    rec = np.flatnonzero(lab[:, t] == c)
                    pieces.append(rec)
                    starts[t, c] = offset
                    offset += int(rec.shape[0])
        # int32 halves the lists and the cache they occupy; int64 only past 2**31 records.
        member_dtype = np.int32 if n_records < 2 ** 31 else np.int64
        all_members = np.concatenate(pieces) if pieces else np.empty(0, np.int64)
        self._members: NDArray[Any] = all_members.astype(member_dtype)
        self._class_start = starts
        self._class_count = counts

        class_probs = np.zeros((n_tasks, 2), dtype=np.float64)
        for task in np.flatnonzero(usable):
            mass = counts[task] * class_weights(counts[task], weight_fn)
            if mass.sum() <= 0:
                usable[task] = False
                continue
            class_probs[task] = mass / mass.sum()
        self.class_probs: NDArray[np.float64] = class_probs  # (T, 2): P(class | task)
        self.task_probs: NDArray[np.float64] = self._task_probs(task_weights, usable)  # (T,)
        if not usable.all():
            logger.warning("TaskAwareSampler: task(s) %s have no known positive or no known negative "
                           "record and are never drawn",
                           np.flatnonzero(~usable).tolist() if task_names is None else
                           ", ".join(str(task_names[t]) for t in np.flatnonzero(~usable).tolist()))
        self.usable_tasks: NDArray[np.int64] = np.flatnonzero(self.task_probs > 0)

        self._task_prob, self._task_alias = _k._build_alias(self.task_probs)
        self._pos_prob = np.ascontiguousarray(class_probs[:, 1])

    def _task_probs(self, task_weights: ArrayLike | str | None,
                    usable: NDArray[np.bool_]) -> NDArray[np.float64]:
        if task_weights is None or (isinstance(task_weights, str) and task_weights == "uniform"):
            w = np.ones(self.n_tasks, dtype=np.float64)
        elif isinstance(task_weights, str):
            raise ConfigError(f"task_weights must be None, 'uniform' or {self.n_tasks} weights, "
                              f"got {task_weights!r} (see major_task_weights)")
        else:
            w = np.asarray(task_weights, dtype=np.float64)
            if w.shape != (self.n_tasks,) or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ConfigError(f"task_weights must be {self.n_tasks} finite non-negative numbers, "
                                  f"got shape {w.shape}")
        w = np.where(usable, w, 0.0)
        if w.sum() <= 0:
            raise ConfigError(f"no task can be drawn: usable tasks {np.flatnonzero(usable).tolist()} "
                              f"(a task needs a known positive and a known negative record) with "
                              f"non-zero task weight")
        return w / w.sum()

    # -- stream ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Batches per epoch for this rank (the full epoch, also when resumed mid-epoch)."""
        return self.batches_per_epoch

    @property
    def epoch(self) -> int:
        """Current epoch."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Go to the start of ``epoch``; a no-op when already in ``epoch`` (so a restored mid-epoch
        position survives the usual ``for epoch ...: sampler.set_epoch(epoch)`` loop)."""
        if int(epoch) != epoch or epoch < 0:
            raise ConfigError(f"epoch must be a non-negative integer, got {epoch!r}")
        if int(epoch) != self._epoch:
            self._epoch = int(epoch)
            self._batch = 0

    def epoch_key(self, epoch: int) -> np.uint64:
        """The SplitMix64 key of ``epoch``: ``SeedSequence(seed, spawn_key=(epoch,))``'s first word."""
        if self._key_cache[0] != epoch:  # SeedSequence costs ~10 us; iteration asks once per block
            ss = np.random.SeedSequence(self.seed, spawn_key=(int(epoch),))
            self._key_cache = (int(epoch), ss.generate_state(1, dtype=np.uint64)[0])
        return self._key_cache[1]

    def draw(self, epoch: int, batches: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Draw the given batches (this rank's batch numbers within ``epoch``) in one kernel call.

        Returns
        -------
        tasks, indices
            (n,) int64 picked tasks and (n, batch_size) int64 record indices.
        """
        b = np.asarray(batches, dtype=np.int64).reshape(-1)
        g = b * self.world_size + self.rank
        tasks = np.empty(b.shape[0], dtype=np.int64)
        idx = np.empty((b.shape[0], self.batch_size), dtype=np.int64)
        _k._draw_batches(self.epoch_key(epoch), g, self.batch_size, self._task_prob, self._task_alias,
                         self._pos_prob, self._class_start, self._class_count, self._members,
                         self._class_bits, self.n_records, tasks, idx)
        return tasks, idx

    def __iter__(self) -> Iterator[tuple[int, NDArray[np.int64]]]:
        if self._batch >= self.batches_per_epoch:  # previous epoch fully consumed
            self._epoch += 1
            self._batch = 0
        worker, n_workers = _worker()
        epoch = self._epoch
        mine = np.arange(self._batch, self.batches_per_epoch, dtype=np.int64)
        if n_workers > 1:
            mine = mine[mine % n_workers == worker]
        block = max(1, min(_BLOCK_BATCHES, _BLOCK_DRAWS // self.batch_size))
        for lo in range(0, mine.shape[0], block):
            ids = mine[lo:lo + block]
            tasks, idx = self.draw(epoch, ids)
            for i in range(ids.shape[0]):
                self._batch = int(ids[i]) + 1
                yield int(tasks[i]), idx[i]
        if self._epoch == epoch and self._batch >= self.batches_per_epoch:
            self._epoch += 1
            self._batch = 0

    # -- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Position of the stream: the next batch this sampler will yield, plus identity fields.

        A ``DataLoader`` pulls batches ahead of the training loop (``prefetch_factor`` per worker),
        so the sampler's ``batch`` runs ahead of what the model has seen. For an exact resume, store
        the number of batches the loop consumed in ``"batch"`` (random access makes any value valid).
        """
        return {"version": _STATE_VERSION, "epoch": self._epoch, "batch": self._batch,
                "seed": self.seed, "rank": self.rank, "world_size": self.world_size,
                "batch_size": self.batch_size, "batches_per_epoch": self.batches_per_epoch,
                "n_records": self.n_records, "n_tasks": self.n_tasks}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the next batch yielded is exactly the one that followed.

        Raises
        ------
        ConfigError
            If the state was saved by a sampler with a different seed, rank layout, batch size or
            label shape (the stream would silently differ).
        """
        for key in ("seed", "rank", "world_size", "batch_size", "n_records", "n_tasks"):
            if key in state and state[key] != getattr(self, key):
                raise ConfigError(f"sampler state has {key}={state[key]!r} but this sampler has "
                                  f"{key}={getattr(self, key)!r}; refusing to resume a different stream")
        epoch, batch = int(state["epoch"]), int(state["batch"])
        if epoch < 0 or batch < 0:
            raise ConfigError(f"sampler state has negative epoch/batch: {epoch}, {batch}")
        self._epoch, self._batch = epoch, batch

    # -- introspection --------------------------------------------------------------------------
    def record_weights(self, task: int) -> NDArray[np.float64]:
        """(N,) float64 per-record draw probabilities for ``task`` (0 for unknown labels)."""
        out = np.zeros(self.n_records, dtype=np.float64)
        for c in range(2):
            n = self._class_count[task, c]
            if n:
                words = self._class_bits[task, c].view(np.uint8)
                member = np.unpackbits(words, bitorder="little")[:self.n_records].astype(bool)
                out[member] = self.class_probs[task, c] / n
        return out


class TaskBatchDataset:
    """Adapter so a ``DataLoader`` with ``batch_sampler=TaskAwareSampler(...)`` fetches whole batches.

    PyTorch's fetcher calls ``dataset.__getitems__(item)`` with the item the batch sampler yielded,
    here ``(task, indices)``; this returns ``(task, dataset.get_batch(indices))``. Use it together with
    ``collate_fn=collate_task_batch``. ``dataset`` needs ``get_batch(indices)`` and ``__len__``.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, item: tuple[int, NDArray[np.int64]]) -> tuple[int, Any]:
        task, indices = item
        return int(task), self.dataset.get_batch(indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]


def collate_task_batch(item: tuple[int, Any]) -> tuple[int, Any]:
    """``collate_fn`` for :class:`TaskBatchDataset`: the batch is already assembled; pass it through."""
    return item


# oversample_indices lives in ecgkit.oversample (with the UCSF subset); re-exported here for old imports
from ecgkit.oversample import oversample_indices, ucsf_subset  # noqa: E402,F401
