"""A run's heads and batch sampler, decided once from the training labels.

:func:`_make_heads` lists the heads (the shards' labels first, then CO-TASK auxiliary tasks made from
the training labels, kept on resume) and applies ``label_noise`` to the training labels only;
:func:`_make_sampler` builds the batch sampler the config names (task-aware, major-task, or joint
batches over the whole or a rebalanced training set) and says what it decided, for ``run_info.json``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from numpy.typing import NDArray

from ecgkit.errors import ConfigError
from ecgkit.trainer import batches
from ecgkit.trainer.config import TrainConfig
from ecgkit.trainer.distributed import _Dist

logger = logging.getLogger("ecgkit.train")


@dataclass
class _Heads:
    """The model's heads: major tasks first, then CO-TASK auxiliary tasks."""

    labels: NDArray[np.int8]  # (N, H) training labels of every head, -1 unknown
    names: list[str]  # H head names
    n_major: int  # label heads (the shards' tasks); aux heads follow
    aux_defs: list[dict]
    major: list[int] = field(default_factory=list)  # label heads named in major_tasks (default: all)
    noise_changed: int = 0  # training labels changed by config.label_noise


def _make_heads(config: TrainConfig, train_ds: Any, ckpt: Mapping[str, Any] | None) -> _Heads:
    """Major labels plus CO-TASK auxiliary tasks (made once from the training labels; kept on resume)."""
    names = list(train_ds.label_names)
    clean = np.asarray(train_ds.labels, dtype=np.int8)
    # label noise in the training labels only: validation and test are read clean from the shards
    major = batches.noisy_labels(clean, config.label_noise, config.seed) if config.label_noise > 0 else clean
    majors = _major_indices(config, names)
    aux_defs: list[dict] = []
    labels = major
    if ckpt is not None:
        aux_defs = ckpt["aux_tasks"]
        if aux_defs:
            labels = np.concatenate([major, batches._apply_aux(aux_defs, major)], axis=1)
    elif config.aux_tasks:
        aux_defs, aux = batches._make_aux(major, config.aux_tasks, config.seed, names,
                                          major_tasks=majors if config.major_tasks else None,
                                          major_weight=config.major_weight,
                                          major_pairs=config.aux_major_pairs)
        labels = np.concatenate([major, aux], axis=1)
    head_names = names + [str(d.get("name", f"aux{i}")) for i, d in enumerate(aux_defs)]
    return _Heads(labels, head_names, major.shape[1], aux_defs, majors, int((major != clean).sum()))


def _stitch_columns(heads: _Heads, config: TrainConfig | None = None, train_ds: Any = None) -> list[list[int]]:
    """Cross-stitch columns: one per label head, or one per cohort (``cross_stitch_columns="cohort"``: the
    heads of the labels its source defines); an auxiliary head joins its pair's first task's (first) column."""
    if config is not None and config.cross_stitch_columns == "cohort":
        cohorts = getattr(train_ds, "cohort_labels", None)
        if not cohorts:
            raise ConfigError("cross_stitch_columns='cohort' needs shards of several cohorts "
                              "(`ecgkit shard --cohort NAME=DIR ...`)")
        names = heads.names[:heads.n_major]
        cols = [[names.index(n) for n in labs if n in names] for labs in cohorts.values()]
        cols = [c for c in cols if c]
        orphans = [n for j, n in enumerate(names) if not any(j in c for c in cols)]
        if orphans:
            raise ConfigError(f"labels {orphans} belong to no cohort's label set")
    else:
        cols = [[j] for j in range(heads.n_major)]
    for i, d in enumerate(heads.aux_defs):
        first = int(d["pair"][0])
        next(c for c in cols if first in c).append(heads.n_major + i)
    return cols


def _major_indices(config: TrainConfig, names: list[str]) -> list[int]:
    """Columns of ``major_tasks`` among the label names (all columns when unset)."""
    if not config.major_tasks:
        return list(range(len(names)))
    missing = [t for t in config.major_tasks if t not in names]
    if missing:
        raise ConfigError(f"major_tasks {missing} are not among the trained tasks {names}")
    return [names.index(t) for t in config.major_tasks]


def _task_weights(config: TrainConfig, heads: _Heads) -> NDArray[np.float64] | None:
    """Task-aware sampler weights: major_weight for major label heads, 1 for minor ones and aux heads,
    then aux heads rescaled to aux_task_fraction of the total when that is set (None: uniform)."""
    n_heads = len(heads.names)
    has_aux = n_heads > heads.n_major
    if not config.major_tasks and not (config.aux_task_fraction is not None and has_aux):
        return None
    w = np.ones(n_heads, dtype=np.float64)
    if config.major_tasks:
        w[heads.major] = config.major_weight
    if config.aux_task_fraction is not None and has_aux:
        f = config.aux_task_fraction
        lab, aux = w[:heads.n_major], w[heads.n_major:]
        w = np.r_[(1 - f) * lab / lab.sum(), f * aux / aux.sum()]
    return w / w.sum()


def _make_sampler(config: TrainConfig, heads: _Heads, dist_info: _Dist) -> tuple[Any, dict[str, Any]]:
    """The batch sampler and what it decided (task weights, the rebalanced training set's size)."""
    n_records = len(heads.labels)
    info: dict[str, Any] = {"sampler": config.sampler, "n_train_records": n_records}
    if config.sampler in ("task_aware", "major_task"):
        if config.sampler == "major_task":  # balanced for the major tasks only, all heads trained
            weights: NDArray[np.float64] | None = np.zeros(len(heads.names))
            weights[heads.major] = 1.0 / len(heads.major)  # type: ignore[index]
        else:
            weights = _task_weights(config, heads)
        info["task_weights"] = None if weights is None else dict(zip(heads.names, map(float, weights)))
        per_epoch = config.batches_per_epoch
        if per_epoch is None and config.batches_per_epoch_scale != 1.0:  # default: one pass, scaled
            per_epoch = max(1, math.ceil(config.batches_per_epoch_scale * n_records
                                         / (config.batch_size * dist_info.world_size)))
        info["batches_per_epoch"] = per_epoch
        sampler = batches._task_aware_sampler(heads.labels, config.batch_size, task_weights=weights,
                                              weight_fn=config.weight_fn, seed=config.seed,
                                              batches_per_epoch=per_epoch, rank=dist_info.rank,
                                              world_size=dist_info.world_size, task_names=heads.names)
        return (batches.MultiLabelBatches(sampler) if config.sampler == "major_task" else sampler), info
    pool = None
    if config.oversample != "none":  # dataset-level rebalancing (Hughes et al.), joint batches over it
        major = heads.labels[:, :heads.n_major]
        k = config.oversample_k or 4000
        pool = batches._oversample(major, k, config.seed, mode=config.oversample,
                                   n_negative=config.oversample_negatives)
        positives = (major[pool] == 1).sum(axis=0)
        info["oversample"] = {"mode": config.oversample, "k": k, "n_records": int(len(pool)),
                              "n_distinct_records": int(len(np.unique(pool))),
                              "positives": dict(zip(heads.names[:heads.n_major], map(int, positives)))}
        logger.info("oversample=%s (k=%d): training set of %d records (%d distinct) from %d", config.oversample,
                    k, len(pool), info["oversample"]["n_distinct_records"], n_records)
    return batches.JointBatchSampler(n_records, config.batch_size, seed=config.seed,
                                     batches_per_epoch=config.batches_per_epoch, rank=dist_info.rank,
                                     world_size=dist_info.world_size, pool=pool), info
