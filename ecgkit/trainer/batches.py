"""Which records each training step sees: the samplers' glue, the joint sampler and epoch batches.

The shard reader, the task-aware sampler and CO-TASK live in their own stage modules; they are
imported inside these functions so that ``ecgkit.trainer`` imports fast and tests can pass fakes
(patch ``ecgkit.trainer.batches._task_aware_sampler``, say).

Every sampler follows one protocol: iterating yields ``(task, indices int64 (batch_size,))`` with
task -1 for a multi-label batch; ``set_epoch``, ``state_dict``/``load_state_dict``, ``len``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from numpy.typing import NDArray

__all__ = ["JointBatchSampler", "MultiLabelBatches"]


def _open_dataset(shards_dir: str, split: str, tasks: tuple[str, ...] | None) -> Any:
    from ecgkit.data import ShardDataset
    return ShardDataset(shards_dir, split=split, tasks=list(tasks) if tasks else None)


def _task_aware_sampler(labels: NDArray, batch_size: int, *, task_weights: NDArray | None, weight_fn: str,
                        seed: int, batches_per_epoch: int | None, rank: int, world_size: int,
                        task_names: list[str] | None = None) -> Any:
    from ecgkit.sampler import TaskAwareSampler
    return TaskAwareSampler(labels, batch_size, task_weights=task_weights, weight_fn=weight_fn, seed=seed,
                            batches_per_epoch=batches_per_epoch, rank=rank, world_size=world_size,
                            task_names=task_names)


def _make_aux(labels: NDArray, n_aux: int, seed: int, task_names: list[str] | None = None, *,
              major_tasks: list[int] | None = None, major_weight: float = 4.0,
              major_pairs: int | None = None) -> tuple[list[dict], NDArray]:
    from ecgkit.cotask import aux_labels, make_aux_tasks
    defs = make_aux_tasks(labels, n_aux, seed=seed, task_names=task_names, major_tasks=major_tasks,
                          major_weight=major_weight, major_pairs=major_pairs)
    return defs, np.asarray(aux_labels(defs, labels), dtype=np.int8)


def _save_aux(defs: list[dict], path: Path) -> None:
    """Write the definitions in the ``ecgkit.cotask`` file format (readable by ``load_aux_tasks``)."""
    from ecgkit.cotask import save_aux_tasks
    save_aux_tasks(defs, path)


def _oversample(labels: NDArray, k: int, seed: int, *, mode: str = "duplicate",
                n_negative: int | None = None) -> NDArray[np.int64]:
    """Training-set record indices: Hughes' UCSF subset (``mode="ucsf"``) or positives duplicated to k."""
    from ecgkit.oversample import oversample_indices, ucsf_subset
    if mode == "ucsf":
        return ucsf_subset(labels, k, seed=seed, n_negative=n_negative)
    return oversample_indices(labels, k, seed=seed, positive_only=True)


def noisy_labels(labels: NDArray, rate: float, seed: int) -> NDArray[np.int8]:
    """Symmetric label noise: each known entry (0/1) replaced, with probability ``rate``, by a fair coin.

    An entry is thus flipped with probability ``rate / 2``; unknown entries (-1) stay unknown. The
    draw is a function of ``seed`` and the matrix shape only.
    """
    y = np.asarray(labels, dtype=np.int8)
    if rate <= 0:
        return y.copy()
    rng = np.random.default_rng([int(seed), 0x6E6F6973])  # "nois": a stream of its own
    replace = rng.random(y.shape) < rate
    coin = (rng.random(y.shape) < 0.5).astype(np.int8)
    return np.where((y >= 0) & replace, coin, y).astype(np.int8)


def _apply_aux(defs: list[dict], labels: NDArray) -> NDArray:
    from ecgkit.cotask import aux_labels
    return np.asarray(aux_labels(defs, labels), dtype=np.int8)


class JointBatchSampler:
    """Shuffled multi-label batches: a seeded permutation per epoch, strided over ranks.

    Same protocol as ``TaskAwareSampler``: iterating yields ``(-1, indices int64 (batch_size,))``
    (task -1 = all tasks); ``set_epoch``, ``state_dict``/``load_state_dict``, ``len``. The last
    partial batch is dropped so every batch has the same shape (no recompiles).

    ``pool`` (optional, int64 record indices with repeats, e.g. from
    :func:`ecgkit.sampler.oversample_indices`) is shuffled instead of ``range(n_records)``: an epoch
    is then a pass over the oversampled pool.
    """

    def __init__(self, n_records: int, batch_size: int, *, seed: int = 0, batches_per_epoch: int | None = None,
                 rank: int = 0, world_size: int = 1, pool: NDArray[np.int64] | None = None):
        self.pool = None if pool is None else np.asarray(pool, dtype=np.int64)
        if self.pool is not None:
            if self.pool.size and (self.pool.min() < 0 or self.pool.max() >= n_records):
                raise ValueError(f"pool indices must lie in [0, {n_records})")
            n_records = len(self.pool)
        if n_records < batch_size * world_size:
            raise ValueError(f"{n_records} records cannot fill one batch of {batch_size} on {world_size} rank(s)")
        self.n_records, self.batch_size, self.seed = n_records, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = batches_per_epoch or n_records // (batch_size * world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[tuple[int, NDArray[np.int64]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n_per_pass = self.n_records // (self.batch_size * self.world_size)
        for b in range(self.batches_per_epoch):
            if b % n_per_pass == 0:
                perm = rng.permutation(self.n_records)[self.rank::self.world_size]
            j = b % n_per_pass
            idx = perm[j * self.batch_size:(j + 1) * self.batch_size].astype(np.int64)
            yield -1, (idx if self.pool is None else self.pool[idx])

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])


class MultiLabelBatches:
    """A task-aware sampler's batches trained as multi-label batches: yields ``(-1, indices)``.

    ``sampler="major_task"``: the records are drawn class-balanced for a major task, and every
    head learns from them (masked BCE), as CO-TASK's major-task sampler baseline does. Position,
    epochs and state are the wrapped sampler's.
    """

    def __init__(self, sampler: Any):
        self.sampler = sampler

    @property
    def batch_size(self) -> int:  # the GPU loader sizes its pinned buffers by it
        return int(self.sampler.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[int, NDArray[np.int64]]]:
        for _, idx in self.sampler:
            yield -1, idx

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state)


class _EpochBatches:
    """The sampler's epoch as DataLoader items ``(task, indices, k)``, skipping k < ``skip`` (resume)."""

    def __init__(self, sampler: Any, skip: int):
        self.sampler, self.skip = sampler, skip

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)

    def __iter__(self) -> Iterator[tuple[int, NDArray[np.int64], int]]:
        for k, (task, idx) in enumerate(self.sampler):
            if k >= self.skip:
                yield int(task), np.asarray(idx, dtype=np.int64), k
