"""Numba kernels behind :mod:`ecgkit.sampler` and :mod:`ecgkit.cotask`, with slow NumPy references.

Random numbers come from a counter-based SplitMix64: output ``i`` of a stream with key ``k`` is
``mix64(k + i * GAMMA)`` (mod 2**64). Any draw can be recomputed from ``(key, counter)`` alone, so a
sampler's whole state is "which epoch, which batch", ranks and workers take disjoint counter ranges,
and the NumPy reference below reproduces the kernels bit for bit.

The kernels take typed NumPy arrays only (no Python objects, no list appends); the public wrappers in
:mod:`ecgkit.sampler` check inputs. Each kernel has a ``_reference`` twin written in plain
NumPy/Python that the tests compare against on small inputs.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

# SplitMix64 constants (Steele, Lea & Flood 2014; the finaliser of Vigna's splitmix64.c).
GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_ONE = np.uint64(1)
# 2**-53: turns the top 53 bits of a 64-bit word into a double in [0, 1) exactly.
_INV53 = 1.0 / 9007199254740992.0
# Counter slots per batch: batch g uses counters (g << 32) + 0 .. 2*batch_size, so batch sizes up to
# 2**31 never collide with the next batch's range.
BATCH_SHIFT = 32


@njit(cache=True, inline="always")
def _mix64(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _to_unit(r: np.uint64) -> float:
    return np.float64(r >> _S11) * _INV53


@njit(cache=True, inline="always")
def _alias_pick(u: float, prob: NDArray[np.float64], alias: NDArray[np.int64], k: int) -> int:
    # One uniform does both steps of Walker's method: the integer part picks a column, the
    # fractional part decides between the column and its alias.
    x = u * k
    col = int(x)
    if col >= k:  # u < 1 makes this impossible; kept so a rounding surprise cannot index out of range
        col = k - 1
    if x - col < prob[col]:
        return col
    return alias[col]


@njit(cache=True)
def _build_alias(p: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Vose's alias table for probabilities ``p`` (K,), float64, summing to 1 (zeros allowed)."""
    k = p.shape[0]
    prob = np.zeros(k, dtype=np.float64)
    alias = np.arange(k).astype(np.int64)
    scaled = p * k
    small = np.empty(k, dtype=np.int64)
    large = np.empty(k, dtype=np.int64)
    n_small = 0
    n_large = 0
    for i in range(k):
        if scaled[i] < 1.0:
            small[n_small] = i
            n_small += 1
        else:
            large[n_large] = i
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        n_large -= 1
        g = large[n_large]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            small[n_small] = g
            n_small += 1
        else:
            large[n_large] = g
            n_large += 1
    # Leftovers are 1 up to rounding: they keep their own column.
    for i in range(n_large):
        prob[large[i]] = 1.0
    for i in range(n_small):
        prob[small[i]] = 1.0
    return prob, alias


@njit(cache=True)
def _draw_batches(key: np.uint64, batch_ids: NDArray[np.int64], batch_size: int,
                  task_prob: NDArray[np.float64], task_alias: NDArray[np.int64],
                  pos_prob: NDArray[np.float64], class_start: NDArray[np.int64],
                  class_count: NDArray[np.int64], members: NDArray[np.int32],
                  class_bits: NDArray[np.uint64], n_records: int,
                  out_task: NDArray[np.int64], out_idx: NDArray[np.int64]) -> None:
    """Draw whole batches: one task per batch, then ``batch_size`` records for that task.

    Each (task, class) is drawn from in one of two ways. A class holding at least a quarter of the
    N records (the negatives of every ECG-P18 task) is drawn by rejection: a uniform record of
    ``[0, N)`` is accepted when its bit in ``class_bits`` is set (<= 4 tries expected, ~1.1 for most).
    Other classes (``class_start >= 0``) are drawn uniformly from their explicit list in
    ``members``. The bit masks take N/8 bytes per class and the lists hold only minority classes, so
    a task's working set stays in L1/L2 cache: a random gather from one 21 MB table of all records
    of all tasks ran 5-10x slower, bound by cache misses.

    Parameters
    ----------
    key
        Stream key of the epoch (uint64).
    batch_ids
        (n,) int64 global batch numbers. Batch ``g`` reads counters ``(g << 32) + 0, 1, 2, ...`` in
        order: one for the task, then per draw one for the class and one per try for the record.
    task_prob, task_alias
        (T,) alias table over tasks.
    pos_prob
        (T,) float64 probability that a draw for task t is a positive record.
    class_start, class_count
        (T, 2) int64 for class ``c`` (0 negative, 1 positive) of task ``t``: its record count, and
        where its list starts in ``members`` (-1: drawn by rejection from ``class_bits``).
    members
        (M,) int32 or int64 record indices of the list-drawn classes.
    class_bits
        (T, 2, ceil(N/64)) uint64; bit ``r % 64`` of word ``r // 64`` set when record r is in the class.
    n_records
        N.
    out_task
        (n,) int64, filled with the picked task of each batch.
    out_idx
        (n, batch_size) int64, filled with record indices.
    """
    n_tasks = task_prob.shape[0]
    f_records = np.float64(n_records)
    for i in range(batch_ids.shape[0]):
        state = key + (np.uint64(batch_ids[i]) << np.uint64(BATCH_SHIFT)) * GAMMA
        t = _alias_pick(_to_unit(_mix64(state)), task_prob, task_alias, n_tasks)
        out_task[i] = t
        p1 = pos_prob[t]
        for j in range(batch_size):
            state += GAMMA
            c = 1 if _to_unit(_mix64(state)) < p1 else 0
            start = class_start[t, c]
            if start >= 0:
                n = class_count[t, c]
                state += GAMMA
                r = min(np.int64(_to_unit(_mix64(state)) * np.float64(n)), n - 1)
                out_idx[i, j] = members[start + r]
            else:
                bits = class_bits[t, c]
                while True:
                    state += GAMMA
                    r = np.int64(_to_unit(_mix64(state)) * f_records)
                    if r >= n_records:  # u < 1 makes this impossible; guards the index all the same
                        r = n_records - 1
                    if (bits[r >> 6] >> np.uint64(r & 63)) & _ONE:
                        break
                out_idx[i, j] = r


# ---------------------------------------------------------------------------------------------
# Slow references (plain NumPy / Python), used by the tests and by cotask's subset hashing.
# ---------------------------------------------------------------------------------------------

def splitmix64_reference(key: int | np.uint64, counters: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64 outputs ``mix64(key + counter * GAMMA)`` for each counter, vectorised in NumPy.

    Parameters
    ----------
    key
        Stream key, 0 <= key < 2**64.
    counters
        (n,) uint64 counters.

    Returns
    -------
    ndarray
        (n,) uint64 pseudo-random words.
    """
    c = np.asarray(counters, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(key) + c * GAMMA
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def unit_reference(words: NDArray[np.uint64]) -> NDArray[np.float64]:
    """Map uint64 words to doubles in [0, 1) by their top 53 bits (same as the kernels)."""
    return (np.asarray(words, dtype=np.uint64) >> _S11).astype(np.float64) * _INV53


def build_alias_reference(p: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Vose's alias method in plain Python, step for step as :func:`_build_alias`."""
    k = len(p)
    prob = [0.0] * k
    alias = list(range(k))
    scaled = [float(x) * k for x in p]
    small = [i for i in range(k) if scaled[i] < 1.0]
    large = [i for i in range(k) if scaled[i] >= 1.0]
    while small and large:
        s = small.pop()
        g = large.pop()
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        (small if scaled[g] < 1.0 else large).append(g)
    for i in large + small:
        prob[i] = 1.0
    return np.array(prob, dtype=np.float64), np.array(alias, dtype=np.int64)


def alias_implied_probs(prob: NDArray[np.float64], alias: NDArray[np.int64]) -> NDArray[np.float64]:
    """The distribution an alias table samples from: column mass ``prob/K`` plus aliased mass."""
    k = len(prob)
    out = np.asarray(prob, dtype=np.float64) / k
    np.add.at(out, np.asarray(alias), (1.0 - np.asarray(prob, dtype=np.float64)) / k)
    return out


def draw_batches_reference(key: int, batch_ids: NDArray[np.int64], batch_size: int,
                           task_prob: NDArray[np.float64], task_alias: NDArray[np.int64],
                           pos_prob: NDArray[np.float64], class_start: NDArray[np.int64],
                           class_count: NDArray[np.int64], members: NDArray[np.int64],
                           class_bits: NDArray[np.uint64], n_records: int
                           ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Plain Python twin of :func:`_draw_batches`; returns ``(tasks (n,), indices (n, batch_size))``."""
    n = len(batch_ids)
    n_tasks = len(task_prob)
    tasks = np.empty(n, dtype=np.int64)
    idx = np.empty((n, batch_size), dtype=np.int64)
    for i, g in enumerate(np.asarray(batch_ids, dtype=np.uint64)):
        counter = int(g) << BATCH_SHIFT

        def unit() -> float:
            nonlocal counter
            u = float(unit_reference(splitmix64_reference(key, np.array([counter], dtype=np.uint64)))[0])
            counter += 1
            return u

        x = unit() * n_tasks
        col = min(int(x), n_tasks - 1)
        t = col if x - col < task_prob[col] else int(task_alias[col])
        tasks[i] = t
        for j in range(batch_size):
            c = 1 if unit() < pos_prob[t] else 0
            if class_start[t, c] >= 0:
                n_c = int(class_count[t, c])
                idx[i, j] = members[class_start[t, c] + min(int(unit() * n_c), n_c - 1)]
            else:
                while True:
                    r = min(int(unit() * n_records), n_records - 1)
                    if (int(class_bits[t, c, r // 64]) >> (r % 64)) & 1:
                        break
                idx[i, j] = r
    return tasks, idx
