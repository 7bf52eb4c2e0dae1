"""Rebalanced training sets: Hughes et al.'s UCSF subset and per-class oversampling with duplicates.

Hughes et al. (JAMA Cardiol 2021, the UCSF 12-lead study) built their training set by adding
minority-class examples "until there were 4000 examples of that class, or the class was depleted":
a subset of distinct records, not copies. :func:`ucsf_subset` does that; :func:`oversample_indices`
keeps the duplicating mode (and a subset mode from a random base set) under its own name. Both
work on the (N, T) 1/0/-1 label matrix only (no torch, no h5py).
"""
from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecgkit.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["ucsf_subset", "oversample_indices", "subset_class_counts"]


def ucsf_subset(labels: ArrayLike, k: int = 4000, *, seed: int = 0, n_negative: int | None = None
                ) -> NDArray[np.int64]:
    """Hughes et al.'s rebalanced training subset: up to ``k`` positives per class, no duplicates.

    Classes are the tasks' positive labels only (a negative label is not a class: "not LVH" is the
    bulk of the data). Visiting classes from the rarest (fewest positives) to the most common, records
    positive for the class are added, in a seeded random order, until the subset holds ``k`` positives
    of it or its records are depleted. A record that would push any class already at ``k`` past ``k``
    is passed over, so every class ends with at most ``k`` positives (co-occurring findings would
    otherwise overfill the common classes). Then ``n_negative`` records with no positive label (and
    at least one known negative) are added: ECG-P18 has no "normal" class, so the no-finding records
    are treated as one more class of size ``k`` by default.

    Parameters
    ----------
    labels
        (N, T) int8 with 1/0/-1.
    k
        Positives per class (Hughes: 4,000).
    seed
        Seed of the random orders.
    n_negative
        Records with no positive label to include (default ``k``; 0 for none).

    Returns
    -------
    ndarray
        (M,) int64 distinct record indices, ascending. ``subset_class_counts`` gives its positives.

    Raises
    ------
    ConfigError
        ``k`` or ``n_negative`` not a non-negative integer (``k`` >= 1).

    Examples
    --------
    >>> lab = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 0]], dtype=np.int8)
    >>> idx = ucsf_subset(lab, 2, seed=0, n_negative=1)
    >>> subset_class_counts(lab, idx).tolist(), len(idx) == len(set(idx.tolist()))
    ([2, 2], True)
    """
    from ecgkit.sampler import check_labels  # lazy: ecgkit.sampler re-exports this module

    lab = check_labels(labels)
    if int(k) != k or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    n_negative = int(k) if n_negative is None else n_negative
    if int(n_negative) != n_negative or n_negative < 0:
        raise ConfigError(f"n_negative must be a non-negative integer, got {n_negative!r}")
    k, n_negative = int(k), int(n_negative)
    pos = lab == 1  # (N, T)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    order = rng.permutation(lab.shape[0])  # one random priority for every record
    pos_o = pos[order]  # (N, T) in priority order
    selected = np.zeros(lab.shape[0], dtype=bool)
    counts = np.zeros(lab.shape[1], dtype=np.int64)
    for c in np.argsort(pos.sum(axis=0), kind="stable"):
        cand = np.flatnonzero(pos_o[:, c] & ~selected[order])  # positions in priority order
        while counts[c] < k and cand.size:
            full = counts >= k
            if full.any():  # pass over records that would overfill a class already at k
                cand = cand[~pos_o[cand][:, full].any(axis=1)]
            chunk = cand[:k - counts[c]]  # each record adds one positive of c
            if chunk.size == 0:
                break
            running = np.cumsum(pos_o[chunk], axis=0, dtype=np.int64) + counts  # (m, T)
            over = (running > k).any(axis=1)
            n_ok = int(np.argmax(over)) if over.any() else chunk.size  # first record past the cap
            take = chunk[:n_ok]
            selected[order[take]] = True
            counts += pos_o[take].sum(axis=0)
            cand = cand[n_ok:]  # the record at n_ok now hits a full class and is dropped next round
    negatives = order[~pos_o.any(axis=1) & (lab[order] == 0).any(axis=1)][:n_negative]
    selected[negatives] = True
    out = np.flatnonzero(selected).astype(np.int64)
    logger.info("UCSF subset: %d of %d records (k=%d positives per class, %d with no positive label)",
                out.size, lab.shape[0], k, negatives.size)
    return out


def subset_class_counts(labels: ArrayLike, indices: ArrayLike) -> NDArray[np.int64]:
    """(T,) positives of each task among ``indices`` (duplicates counted each time)."""
    lab = np.asarray(labels)
    return (lab[np.asarray(indices, dtype=np.int64)] == 1).sum(axis=0).astype(np.int64)


def oversample_indices(labels: ArrayLike, k: int, *, seed: int = 0, base_size: int | None = None,
                       positive_only: bool = False) -> NDArray[np.int64]:
    """Per-class oversampling: top each class up to ``k`` records, with duplicates or from a base set.

    For Hughes et al.'s subset (no duplicates, positive classes only, at most ``k`` positives per
    class) use :func:`ucsf_subset`; this is the general tool (the trainer's ``oversample="duplicate"``).

    A class is a (task, value) pair with value 0 or 1 (unknown -1 labels belong to no class); with
    ``positive_only`` only the (task, 1) classes are topped up. Starting
    from a base set, classes are visited rarest first (by their count in the base set, ties by task
    then value); a class with fewer than ``k`` records in the current set gets records of that class
    appended until it has ``k`` or its supply is exhausted. Counts of all classes are updated after
    each class, so records added for a rare class count toward the others.

    Two modes:

    * ``base_size=None`` (default): the base set is every record once, and the supply of a class is
      its own records repeated: duplicates are appended cycling through the class's records in a
      seeded random order (each record copied once before any is copied twice). Only a class with no
      records is exhausted. This is the dataset-level oversampling to compare with the sampler.
    * ``base_size=m``: the base set is ``m`` distinct random records, and the supply of a class is
      its records not yet in the set (no duplicates), in a seeded random order: a class is exhausted
      when all its records are in. This builds a rebalanced training subset.

    Parameters
    ----------
    labels
        (N, T) int8 with 1/0/-1.
    k
        Target count per class, >= 1.
    seed
        Seed of the random orders (and of the base sample).
    base_size
        See above; ``0 <= base_size <= N``.
    positive_only
        Top up only the positive class of each task (the negative class of a rare finding is the
        bulk of the data; of a common one it is better left alone too).

    Returns
    -------
    ndarray
        (M,) int64 record indices: the base set (ascending) followed by the added records in the
        order they were added. Shuffle before use.
    """
    from ecgkit.sampler import check_labels  # lazy: ecgkit.sampler re-exports this module

    lab = check_labels(labels)
    n, n_tasks = lab.shape
    if int(k) != k or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    if base_size is None:
        base = np.arange(n, dtype=np.int64)
    else:
        if int(base_size) != base_size or not 0 <= base_size <= n:
            raise ConfigError(f"base_size must be an integer in [0, {n}], got {base_size!r}")
        base = np.sort(rng.permutation(n)[:int(base_size)]).astype(np.int64)
    selected = np.zeros(n, dtype=bool)
    selected[base] = True
    # (2T,) class counts in the current set, class id = 2 * task + value
    counts = np.concatenate([((lab[base] == v).sum(axis=0)) for v in (0, 1)])
    counts = counts.reshape(2, n_tasks).T.reshape(-1).astype(np.int64)
    added: list[NDArray[np.int64]] = []
    for cls in np.argsort(counts, kind="stable"):
        t, v = divmod(int(cls), 2)
        if positive_only and v == 0:
            continue
        need = int(k) - int(counts[cls])
        if need <= 0:
            continue
        members = np.flatnonzero(lab[:, t] == v)
        if base_size is None:
            if members.size == 0:
                continue
            order = rng.permutation(members)
            take = np.resize(order, need)  # cycles: every record once before any twice
        else:
            pool = members[~selected[members]]
            take = rng.permutation(pool)[:need]
            selected[take] = True
        if take.size == 0:
            continue
        added.append(take.astype(np.int64))
        sub = lab[take]
        counts += np.stack([(sub == 0).sum(axis=0), (sub == 1).sum(axis=0)], axis=1).reshape(-1)
    return np.concatenate([base, *added]) if added else base
