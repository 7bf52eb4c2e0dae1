"""In-memory stand-ins with the protocols of ShardDataset and TaskAwareSampler.

They let the trainer be tested on its own; ``tests/test_train.py`` also runs the real stages on
shards written from real PTB-XL records.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np


class FakeShardDataset:
    """Learnable synthetic ECG-like data: task k positive adds a sinusoid to lead k % 12.

    Same protocol as ``ecgkit.data.ShardDataset``: ``len``, ``get_batch(indices, raw=False)``,
    ``labels`` (N, T) int8 with -1 unknown, ``label_names``, ``fs``, ``scale_mv`` (mV per int16 unit; the proposed raw extension).
    """

    def __init__(self, n: int, n_tasks: int = 3, length: int = 256, seed: int = 0, unknown: float = 0.1):
        rng = np.random.default_rng(seed)
        self.fs = 100.0
        self.scale_mv = 0.005
        self.label_names = tuple(f"T{k}" for k in range(n_tasks))
        labels = (rng.random((n, n_tasks)) < np.linspace(0.3, 0.15, n_tasks)).astype(np.int8)
        t = np.arange(length) / self.fs
        sig = rng.normal(0, 0.3, size=(n, 12, length)).astype(np.float32)
        for k in range(n_tasks):
            sig[labels[:, k] == 1, k % 12] += np.sin(2 * np.pi * (3 + 4 * k) * t).astype(np.float32)
        labels[rng.random((n, n_tasks)) < unknown] = -1
        self.raw = np.round(sig / self.scale_mv).astype(np.int16)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def get_batch(self, indices: Any, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(indices)
        sig = self.raw[idx]
        return (sig if raw else sig.astype(np.float32) * np.float32(self.scale_mv)), self.labels[idx]


class FakeTaskAwareSampler:
    """Per batch: a task (weights or uniform), then class-balanced draws among its known records."""

    def __init__(self, labels: np.ndarray, batch_size: int, *, task_weights: Any = None, weight_fn: str = "log",
                 seed: int = 0, batches_per_epoch: int | None = None, rank: int = 0, world_size: int = 1,
                 task_names: Any = None):
        self.labels, self.batch_size, self.seed, self.rank = labels, batch_size, seed, rank
        self.task_weights = None if task_weights is None else np.asarray(task_weights) / np.sum(task_weights)
        self.n_batches = batches_per_epoch or max(len(labels) // batch_size, 1)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        T = self.labels.shape[1]
        for _ in range(self.n_batches):
            t = int(rng.choice(T, p=self.task_weights))
            col = self.labels[:, t]
            pos, neg = np.flatnonzero(col == 1), np.flatnonzero(col == 0)
            n_pos = self.batch_size // 2 if len(pos) else 0
            idx = np.r_[rng.choice(pos, n_pos) if n_pos else np.zeros(0, np.int64),
                        rng.choice(neg, self.batch_size - n_pos)]
            yield t, idx.astype(np.int64)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = state["epoch"]
