"""CO-TASK auxiliary tasks: new binary tasks made from pairs of existing task labels.

Each auxiliary task takes a distinct pair of tasks ``(i, j)`` and a class mapping ``(a, b)`` drawn
uniformly from ``(1, 1)``, ``(1, 0)``, ``(0, 1)``, and labels a record positive when
``y_i == a or y_j == b``. The mapping ``(0, 0)`` is excluded, as in the CO-TASK paper: its complement
is "both diseases vs the rest", which duplicates information the model already has. A record with an
unknown (-1) label in either input task gets -1. Each auxiliary task trains on a random ``1/n`` subset
of the training records (``n = 2``, the number of tasks combined); outside it the label is -1, which
:class:`ecgkit.sampler.TaskAwareSampler` never draws and a masked loss ignores.

Reproducibility
---------------
Everything random comes from SplitMix64 words keyed by ``SeedSequence(seed)`` (see
:mod:`ecgkit._sampler_kernels`), not from ``numpy.random.Generator`` methods, whose algorithms NumPy
may change between releases. The subset is stored as ``{seed, fraction, n_records}``: record ``r`` is
in it when ``unit(splitmix64(seed, r)) < fraction``. That is 60 bytes per task instead of ~1.2 MB of
explicit int64 indices for a 300,000-record split, and it stays stable across NumPy versions; the cost
is that the subset is tied to the row order of the training label matrix (``n_records`` is checked).
Save the definitions with the run (:func:`save_aux_tasks`) so heads can be matched or dropped later.

Definition format (one dict per auxiliary task, JSON-serialisable)::

    {"name": "aux00_LVH=1|RVH=0", "pair": [0, 1], "classes": [1, 0],
     "tasks": ["LVH", "RVH"],                       # only when task_names was given
     "subset": {"method": "splitmix64-bernoulli", "seed": 1234, "fraction": 0.5,
                "n_records": 300000}}
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecgkit._sampler_kernels import splitmix64_reference
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.sampler import check_labels, major_task_weights

logger = logging.getLogger(__name__)

ALLOWED_CLASSES: tuple[tuple[int, int], ...] = ((1, 1), (1, 0), (0, 1))
SUBSET_METHOD = "splitmix64-bernoulli"
_FORMAT = "ecgkit.cotask"
_FORMAT_VERSION = 1
# Counter ranges of the root stream, kept apart so adding tasks never shifts another draw.
_CTR_PAIRS = 0
_CTR_CLASSES = 1 << 40
_CTR_SUBSETS = 2 << 40
_INV53 = 1.0 / 9007199254740992.0


def _open_unit(words: NDArray[np.uint64]) -> NDArray[np.float64]:
    """Top 53 bits of each word as a double in the open interval (0, 1) (never 0: we take logs)."""
    return ((words >> np.uint64(11)).astype(np.float64) + 0.5) * _INV53


def _root_key(seed: int) -> int:
    if int(seed) != seed or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint64)[0])


def make_aux_tasks(labels: ArrayLike, n_aux: int, *, seed: int = 0, major_tasks: Sequence[int] | None = None,
                   major_weight: float = 4.0, task_names: Sequence[str] | None = None,
                   subset_fraction: float | None = None, major_pairs: int | None = None
                   ) -> list[dict[str, Any]]:
    """Generate ``n_aux`` CO-TASK auxiliary task definitions.

    Pairs are sampled without replacement among all unordered task pairs, pair ``{i, j}`` with weight
    ``q_i * q_j`` where ``q`` is ``major_weight`` for tasks in ``major_tasks`` and 1 otherwise
    (Efraimidis-Spirakis weighted sampling). With ``major_pairs`` the split is fixed instead, as the
    CO-TASK authors' code fixes it (its ``mi_aux_task_count``: 4 of 8 auxiliary tasks in the
    ECG-EchoLVH runs): exactly ``major_pairs`` pairs hold a major task and the rest hold none, each
    group drawn uniformly. The mapping ``(a, b)`` is uniform over :data:`ALLOWED_CLASSES`.

    Parameters
    ----------
    labels
        (N, T) int8 training labels with 1/0/-1; N fixes the subset size, T the task count.
    n_aux
        Number of auxiliary tasks, 0 <= n_aux <= T (T - 1) / 2 (pairs are distinct).
    seed
        Non-negative integer; the same seed and inputs give the same definitions.
    major_tasks
        Task indices sampled with higher probability; ``None``: all tasks equal.
    major_weight
        Per-task weight of a major task (others 1). The default 4 makes a pair of two major tasks
        16 times as likely as a pair of two others: a clear preference that still mixes in all tasks.
    task_names
        Optional (T,) names, stored in each definition and used in its ``name``.
    subset_fraction
        Fraction of training records each auxiliary task trains on; default ``1/n`` with ``n = 2``.
    major_pairs
        Number of the ``n_aux`` pairs that include a major task (needs ``major_tasks``); ``None``:
        weighted sampling as above.

    Returns
    -------
    list of dict
        JSON-serialisable definitions (format in the module docstring), in sampling order.

    Raises
    ------
    ConfigError
        ``n_aux`` larger than the number of distinct pairs, bad names, weights or fraction.
    """
    lab = check_labels(labels)
    n_records, n_tasks = lab.shape
    n_pairs = n_tasks * (n_tasks - 1) // 2
    if int(n_aux) != n_aux or not 0 <= n_aux <= n_pairs:
        raise ConfigError(f"n_aux must be an integer in [0, {n_pairs}] (distinct pairs of {n_tasks} tasks), "
                          f"got {n_aux!r}")
    if task_names is not None and len(task_names) != n_tasks:
        raise ConfigError(f"task_names has {len(task_names)} names for {n_tasks} tasks")
    fraction = 0.5 if subset_fraction is None else float(subset_fraction)
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"subset_fraction must be in (0, 1], got {subset_fraction!r}")
    q = major_task_weights(n_tasks, [] if major_tasks is None else major_tasks, major_weight)

    key = _root_key(seed)
    ii, jj = np.triu_indices(n_tasks, k=1)  # (P,) all unordered pairs i < j
    pair_w = q[ii] * q[jj]
    # Efraimidis-Spirakis: the n_aux largest u**(1/w), i.e. log(u)/w, are a weighted sample
    # without replacement.
    u = _open_unit(splitmix64_reference(key, _CTR_PAIRS + np.arange(ii.size, dtype=np.uint64)))
    if major_pairs is None:
        order = np.argsort(-(np.log(u) / pair_w), kind="stable")[:int(n_aux)]
    else:
        order = _split_pairs(u, ii, jj, major_tasks, int(n_aux), major_pairs)
    cls_u = _open_unit(splitmix64_reference(key, _CTR_CLASSES + np.arange(n_aux, dtype=np.uint64)))
    subset_seeds = splitmix64_reference(key, _CTR_SUBSETS + np.arange(n_aux, dtype=np.uint64))

    defs: list[dict[str, Any]] = []
    for k, p in enumerate(order):
        i, j = int(ii[p]), int(jj[p])
        a, b = ALLOWED_CLASSES[min(int(cls_u[k] * 3), 2)]
        names = (str(task_names[i]), str(task_names[j])) if task_names is not None else (f"t{i}", f"t{j}")
        d: dict[str, Any] = {
            "name": f"aux{k:02d}_{names[0]}={a}|{names[1]}={b}",
            "pair": [i, j],
            "classes": [a, b],
            "subset": {"method": SUBSET_METHOD, "seed": int(subset_seeds[k]), "fraction": fraction,
                       "n_records": int(n_records)},
        }
        if task_names is not None:
            d["tasks"] = list(names)
        defs.append(d)
    logger.info("made %d CO-TASK auxiliary tasks from %d tasks (seed %d)", len(defs), n_tasks, seed)
    return defs


def _split_pairs(u: NDArray[np.float64], ii: NDArray, jj: NDArray, major_tasks: Sequence[int] | None,
                 n_aux: int, major_pairs: int) -> NDArray[np.int64]:
    """Pair indices: ``major_pairs`` uniform picks among pairs holding a major task, the rest among others."""
    if not major_tasks:
        raise ConfigError("major_pairs needs major_tasks (which tasks are major)")
    majors = np.isin(ii, list(major_tasks)) | np.isin(jj, list(major_tasks))
    with_major, without = np.flatnonzero(majors), np.flatnonzero(~majors)
    if int(major_pairs) != major_pairs or not 0 <= major_pairs <= n_aux:
        raise ConfigError(f"major_pairs must be an integer in [0, n_aux={n_aux}], got {major_pairs!r}")
    if major_pairs > with_major.size or n_aux - major_pairs > without.size:
        raise ConfigError(f"major_pairs={major_pairs} of n_aux={n_aux}: there are {with_major.size} pairs "
                          f"with a major task and {without.size} without")
    # uniform sampling without replacement within each group: the smallest u (same stream as above)
    pick_major = with_major[np.argsort(u[with_major], kind="stable")[:major_pairs]]
    pick_other = without[np.argsort(u[without], kind="stable")[:n_aux - major_pairs]]
    return np.concatenate([pick_major, pick_other]).astype(np.int64)


def _check_def(d: Any, n_tasks: int | None, where: str) -> None:
    try:
        i, j = (int(x) for x in d["pair"])
        a, b = (int(x) for x in d["classes"])
        sub = d["subset"]
        method, fraction, n_rec = sub["method"], float(sub["fraction"]), int(sub["n_records"])
        seed = int(sub["seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"{where}: malformed auxiliary task definition {d!r}") from exc
    if i == j or min(i, j) < 0 or (n_tasks is not None and max(i, j) >= n_tasks):
        raise SchemaError(f"{where}: pair {[i, j]} is not two distinct tasks of {n_tasks}")
    if (a, b) not in ALLOWED_CLASSES:
        raise SchemaError(f"{where}: classes {[a, b]} not in {ALLOWED_CLASSES} ((0, 0) is excluded)")
    if method != SUBSET_METHOD or not 0.0 < fraction <= 1.0 or n_rec < 0 or not 0 <= seed < 2 ** 64:
        raise SchemaError(f"{where}: bad subset {sub!r}")


def subset_mask(definition: dict[str, Any], n_records: int | None = None) -> NDArray[np.bool_]:
    """(N,) bool: the records in an auxiliary task's training subset, regenerated from its seed.

    Raises
    ------
    SchemaError
        If ``n_records`` is given and differs from the N the definition was made for.
    """
    sub = definition["subset"]
    n = int(sub["n_records"])
    if n_records is not None and int(n_records) != n:
        raise SchemaError(f"auxiliary task {definition.get('name')!r} was made for {n} training records, "
                          f"got {n_records}; its subset is tied to the training split's row order")
    words = splitmix64_reference(int(sub["seed"]), np.arange(n, dtype=np.uint64))
    return (words >> np.uint64(11)).astype(np.float64) * _INV53 < float(sub["fraction"])


def aux_labels(defs: Sequence[dict[str, Any]], labels: ArrayLike, *, subset: bool = True) -> NDArray[np.int8]:
    """Auxiliary labels ``(y_i == a) | (y_j == b)`` for each definition.

    Parameters
    ----------
    defs
        Definitions from :func:`make_aux_tasks` or :func:`load_aux_tasks`.
    labels
        (N, T) int8 with 1/0/-1: the training labels the definitions were made for (``subset=True``),
        or any split's labels with ``subset=False``.
    subset
        True (training): -1 outside each task's 1/n subset. False (validation, test, export):
        every record labelled.

    Returns
    -------
    ndarray
        (N, len(defs)) int8 with 1/0, and -1 where either input label is -1 or (with ``subset``)
        the record is outside the task's subset.

    Raises
    ------
    SchemaError
        Malformed definitions, pair indices beyond T, or (with ``subset``) N different from the
        definitions' ``n_records``.
    """
    lab = check_labels(labels)
    n_records, n_tasks = lab.shape
    out = np.empty((n_records, len(defs)), dtype=np.int8)
    for k, d in enumerate(defs):
        _check_def(d, n_tasks, f"auxiliary task {k}")
        (i, j), (a, b) = d["pair"], d["classes"]
        yi, yj = lab[:, i], lab[:, j]
        col = ((yi == a) | (yj == b)).astype(np.int8)
        col[(yi < 0) | (yj < 0)] = -1
        if subset:
            col[~subset_mask(d, n_records)] = -1
        out[:, k] = col
    return out


def save_aux_tasks(defs: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Write definitions as JSON (``{"format", "version", "aux_tasks"}``) to ``path``."""
    for k, d in enumerate(defs):
        _check_def(d, None, f"auxiliary task {k}")
    doc = {"format": _FORMAT, "version": _FORMAT_VERSION, "aux_tasks": list(defs)}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def load_aux_tasks(path: str | Path) -> list[dict[str, Any]]:
    """Read definitions written by :func:`save_aux_tasks`.

    Raises
    ------
    SchemaError
        Not valid JSON, not an ecgkit CO-TASK file, or a malformed definition (the message names
        the path).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{path}: cannot read CO-TASK definitions: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or doc.get("version") != _FORMAT_VERSION:
        raise SchemaError(f"{path}: not an {_FORMAT} v{_FORMAT_VERSION} file")
    defs = doc.get("aux_tasks")
    if not isinstance(defs, list):
        raise SchemaError(f"{path}: 'aux_tasks' must be a list")
    for k, d in enumerate(defs):
        _check_def(d, None, f"{path}: auxiliary task {k}")
    return defs


def expected_pair_probs(n_tasks: int, major_tasks: Sequence[int] | None = None,
                        major_weight: float = 4.0) -> NDArray[np.float64]:
    """(T, T) first-draw probability of each pair ``i < j`` (upper triangle) under major weighting.

    Useful to check or explain a run's pair choice: ``q_i q_j / sum``.
    """
    q = major_task_weights(n_tasks, [] if major_tasks is None else major_tasks, major_weight)
    w = np.triu(np.outer(q, q), k=1)
    return w / w.sum() if n_tasks > 1 else w


__all__ = ["ALLOWED_CLASSES", "make_aux_tasks", "aux_labels", "subset_mask", "save_aux_tasks",
           "load_aux_tasks", "expected_pair_probs"]
