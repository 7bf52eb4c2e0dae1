"""Confidence intervals and model comparisons: patient-level bootstrap, paired bootstrap, DeLong test.

Pure NumPy/SciPy on score matrices, like :mod:`ecgkit.metrics` (whose weighted kernels it reuses).

Why patients, not records
-------------------------
Archives hold several ECGs of one patient, and a patient's records share their findings and their
morphology, so they are not independent draws. Resampling records treats them as if they were and
gives intervals that are too narrow (10-27 % on a cohort with repeat ECGs). Pass ``groups`` (the
patient id of each record) and the bootstrap draws patients with replacement and keeps each drawn
patient's records together (the cluster bootstrap); without ``groups`` it resamples records.

Rare labels
-----------
A resample in which a task has no positive (or no negative) record cannot give that task an AUROC.
Such resamples are not silently dropped: :class:`BootstrapResult` counts the usable resamples per
task and metric (``n_usable``). A task with fewer than ``min_positives`` known positives in the
evaluated data is *flagged*: its per-task intervals are NaN rather than a tight-looking interval
such as 1.000-1.000 computed from two positives. The macro AUROC interval is computed over the tasks
that have both classes in every resample (``macro_tasks``), so its resamples always average the same
labels; the point estimate over those same tasks is ``macro_auroc_common``.

Draws
-----
With ``G`` resampling units (patients, numbered in ``numpy.unique`` order of ``groups``, or the N
records) each chunk of ``b`` resamples draws ``rng.integers(0, G, size=(b, G))`` from
``numpy.random.default_rng(seed)``; a record's weight in a resample is the number of times its
patient was drawn. Chunking does not change the stream, and the two models of a paired comparison
always see the same resamples.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

from ecgkit.metrics import _ap_weighted, _auroc_weighted, _check_pair, _confusion_weighted, _per_record_multi

__all__ = ["BootstrapResult", "bootstrap_ci", "PairedBootstrapResult", "paired_bootstrap", "DeLongResult",
           "delong_test", "PER_TASK", "SCALAR"]

#: Per-task metrics of a resample, each (T,).
PER_TASK = ("auroc", "ap", "f1", "precision", "sensitivity", "specificity")
#: Scalar metrics of a resample.
SCALAR = ("macro_auroc", "recall_multi", "jaccard", "exact_match")


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimates and percentile confidence intervals of every metric.

    Attributes
    ----------
    estimate, low, high : dict of name -> float64 array (T,) or float
        Metric on the full data and the interval bounds. Per-task keys :data:`PER_TASK`; scalar keys
        :data:`SCALAR` plus ``macro_auroc_common`` (macro AUROC over ``macro_tasks``). Bounds are NaN
        for flagged tasks and where no resample was usable; ``macro_auroc`` has bounds only when
        ``macro_tasks`` are all the tasks of its point estimate (else see ``macro_auroc_common``).
    n_usable : dict of name -> int array (T,) or int
        Resamples in which the metric was defined (the interval is over those).
    n_positives : int array (T,)
        Known positives per task in the evaluated data.
    flagged : bool array (T,)
        Tasks with fewer than ``min_positives`` positives: no per-task interval is given.
    macro_tasks : tuple of int
        Tasks with both classes in every resample: the macro AUROC interval averages these.
    level : float
    n_resamples : int
    n_units : int
        Resampled units: patients when ``groups`` was given, else records.
    unit : str
        ``"patient"`` or ``"record"``.
    min_positives : int
    """

    estimate: dict[str, Any]
    low: dict[str, Any]
    high: dict[str, Any]
    level: float
    n_resamples: int
    n_usable: dict[str, Any]
    n_positives: NDArray[np.int64]
    flagged: NDArray[np.bool_]
    macro_tasks: tuple[int, ...]
    n_units: int
    unit: str
    min_positives: int


def _units(groups: ArrayLike | None, n: int) -> tuple[NDArray[np.int64], int]:
    """Unit index (N,) of each record and the number of units."""
    if groups is None:
        return np.arange(n, dtype=np.int64), n
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have one entry per record ({n}), got shape {g.shape}")
    _, inv = np.unique(g, return_inverse=True)
    inv = inv.ravel().astype(np.int64)
    return inv, int(inv.max()) + 1 if n else 0


def _weights(rng: np.random.Generator, inv: NDArray[np.int64], n_units: int, b: int) -> NDArray[np.float64]:
    """(b, N) record weights of b resamples of the units (see the module docstring for the draws)."""
    idx = rng.integers(0, n_units, size=(b, n_units))
    counts = np.bincount((idx + (np.arange(b) * n_units)[:, None]).ravel(),
                         minlength=b * n_units).reshape(b, n_units)
    return counts[:, inv].astype(np.float64)


def _metrics(y_true: NDArray, y_score: NDArray, pred: NDArray, w: NDArray) -> dict[str, NDArray]:
    """Per-task metrics (B, T) and multi-label metrics (B,) for each weight row w (B, N); no macro."""
    T = y_true.shape[1]
    B = w.shape[0]
    au = np.full((B, T), np.nan)
    ap = np.full((B, T), np.nan)
    for k in range(T):
        known = y_true[:, k] >= 0
        au[:, k] = _auroc_weighted(y_true[known, k], y_score[known, k], w[:, known])
        ap[:, k] = _ap_weighted(y_true[known, k], y_score[known, k], w[:, known])
    out: dict[str, NDArray] = {"auroc": au, "ap": ap}
    out.update(_confusion_weighted(y_true, pred, w))
    rec = _per_record_multi(y_true, pred)
    den = w @ rec["_has"]
    for name in ("recall_multi", "jaccard", "exact_match"):
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(den > 0, (w @ rec[name]) / np.where(den > 0, den, 1), np.nan)
    return out


def _nanmean_rows(a: NDArray, cols: NDArray | list[int] | None = None) -> NDArray:
    a = a if cols is None else a[:, cols]
    if a.shape[1] == 0:
        return np.full(a.shape[0], np.nan)
    with warnings.catch_warnings():  # all-NaN rows give NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=1)


def _interval(values: NDArray, alpha: float) -> tuple[NDArray, NDArray, NDArray]:
    """Percentile bounds over the finite resamples (axis 0) and how many there were."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanquantile(values, alpha, axis=0)
        hi = np.nanquantile(values, 1 - alpha, axis=0)
    return lo, hi, np.isfinite(values).sum(axis=0)


def _prepare(y_true: NDArray, y_score: NDArray, thresholds: ArrayLike) -> tuple[NDArray, NDArray, NDArray]:
    """Labels (N, T), scores (S, N, T) and predictions (S, N, T): S models (seeds) of one arm."""
    y_true = np.asarray(y_true)
    y_true = y_true[:, None] if y_true.ndim == 1 else y_true
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3 or s.shape[1:] != y_true.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but the scores have shape {np.shape(y_score)}")
    thr = np.asarray(thresholds, dtype=np.float64)
    thr = np.broadcast_to(thr.reshape(-1, y_true.shape[1]) if thr.ndim <= 1 else thr, (s.shape[0], y_true.shape[1]))
    return y_true, s, s >= thr[:, None, :]


def _run(y_true: NDArray, scores: list[NDArray], preds: list[NDArray], groups: ArrayLike | None,
         n_resamples: int, seed: int, chunk: int) -> tuple[list[dict[str, NDArray]], list[dict[str, NDArray]], int]:
    """Point values (one row) and all resamples of each model group (mean over its S models)."""
    N = y_true.shape[0]
    inv, n_units = _units(groups, N)

    def per_group(w: NDArray) -> list[dict[str, NDArray]]:
        res = []
        for s, p in zip(scores, preds):
            parts = [_metrics(y_true, s[i], p[i], w) for i in range(s.shape[0])]
            res.append({k: np.mean([q[k] for q in parts], axis=0) for k in parts[0]})
        return res

    point = per_group(np.ones((1, N)))
    rng = np.random.default_rng(seed)
    chunks: list[list[dict[str, NDArray]]] = []
    done = 0
    while done < n_resamples:
        b = min(chunk, n_resamples - done)
        chunks.append(per_group(_weights(rng, inv, n_units, b)))
        done += b
    boot = [{k: np.concatenate([c[g][k] for c in chunks], axis=0) for k in point[g]} for g in range(len(scores))]
    return point, boot, n_units


def _check_args(n_resamples: int, level: float, min_positives: int) -> float:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if min_positives < 0:
        raise ValueError(f"min_positives must be >= 0, got {min_positives}")
    return (1.0 - level) / 2


def bootstrap_ci(y_true: NDArray, y_score: NDArray, thresholds: ArrayLike, *, groups: ArrayLike | None = None,
                 n_resamples: int = 1000, level: float = 0.95, seed: int = 0, chunk: int = 100,
                 min_positives: int = 10) -> BootstrapResult:
    """Percentile bootstrap CIs of every metric, resampling patients (``groups``) or records.

    Parameters
    ----------
    y_true : int array (N, T), 1/0/-1
    y_score : float array (N, T), or (S, N, T) for S models (e.g. seeds) whose metrics are averaged
    thresholds : float array (T,) or (S, T)
        Decision thresholds chosen on validation (see :func:`ecgkit.metrics.choose_thresholds`).
    groups : array (N,), optional
        Patient id of each record: resample patients with all their records (recommended whenever a
        patient can have several records). None resamples records.
    n_resamples : int
    level : float
        Confidence level of the percentile interval.
    seed : int
        Seed of the resampling (same seed, same intervals).
    chunk : int
        Resamples per vectorised chunk (memory ~ chunk * N * 8 bytes * a few).
    min_positives : int
        Tasks with fewer known positives are flagged and get no per-task interval.

    Returns
    -------
    BootstrapResult
    """
    alpha = _check_args(n_resamples, level, min_positives)
    y_true, s, pred = _prepare(y_true, y_score, thresholds)
    (point,), (boot,), n_units = _run(y_true, [s], [pred], groups, n_resamples, seed, chunk)
    n_pos = (y_true == 1).sum(axis=0).astype(np.int64)
    flagged = n_pos < min_positives
    est: dict[str, Any] = {}
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    usable: dict[str, Any] = {}
    for k in PER_TASK:
        lo, hi, n_ok = _interval(boot[k], alpha)
        est[k], low[k], high[k], usable[k] = point[k][0], np.where(flagged, np.nan, lo), np.where(flagged, np.nan, hi), n_ok
    for k in ("recall_multi", "jaccard", "exact_match"):
        lo, hi, n_ok = _interval(boot[k], alpha)
        est[k], low[k], high[k], usable[k] = float(point[k][0]), float(lo), float(hi), int(n_ok)
    _macro(point["auroc"][0], boot["auroc"], alpha, est, low, high, usable)
    macro_tasks = tuple(int(i) for i in np.flatnonzero(np.isfinite(boot["auroc"]).all(axis=0)
                                                       & np.isfinite(point["auroc"][0])))
    return BootstrapResult(est, low, high, level, n_resamples, usable, n_pos, flagged, macro_tasks, n_units,
                           "record" if groups is None else "patient", min_positives)


def _macro(point_au: NDArray, boot_au: NDArray, alpha: float, est: dict[str, Any], low: dict[str, Any],
           high: dict[str, Any], usable: dict[str, Any]) -> None:
    """Fill ``macro_auroc`` and ``macro_auroc_common`` (see :class:`BootstrapResult`)."""
    defined = np.isfinite(point_au)
    common = np.flatnonzero(np.isfinite(boot_au).all(axis=0) & defined)
    est["macro_auroc"] = float(point_au[defined].mean()) if defined.any() else float("nan")
    est["macro_auroc_common"] = float(point_au[common].mean()) if len(common) else float("nan")
    vals = _nanmean_rows(boot_au, common)
    lo, hi, n_ok = _interval(vals, alpha)
    low["macro_auroc_common"], high["macro_auroc_common"], usable["macro_auroc_common"] = float(lo), float(hi), int(n_ok)
    same = len(common) == int(defined.sum())
    low["macro_auroc"] = float(lo) if same else float("nan")
    high["macro_auroc"] = float(hi) if same else float("nan")
    usable["macro_auroc"] = int(n_ok) if same else 0


@dataclass(frozen=True)
class PairedBootstrapResult:
    """Differences ``b - a`` between two models (or two arms of S seeds each) on the same records.

    Attributes
    ----------
    estimate, low, high, p_value : dict of name -> float64 array (T,) or float
        Point difference, percentile interval and two-sided bootstrap p-value
        (``min(1, 2 * min(P(d <= 0), P(d >= 0)))`` over the usable resamples) per metric; keys as in
        :class:`BootstrapResult` (``macro_auroc`` is over ``macro_tasks``). NaN for flagged tasks.
    n_usable, n_positives, flagged, macro_tasks, level, n_resamples, n_units, unit, min_positives
        As in :class:`BootstrapResult`.
    """

    estimate: dict[str, Any]
    low: dict[str, Any]
    high: dict[str, Any]
    p_value: dict[str, Any]
    n_usable: dict[str, Any]
    n_positives: NDArray[np.int64]
    flagged: NDArray[np.bool_]
    macro_tasks: tuple[int, ...]
    level: float
    n_resamples: int
    n_units: int
    unit: str
    min_positives: int


def _p_two_sided(d: NDArray) -> NDArray:
    ok = np.isfinite(d)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        le = np.where(ok, d <= 0, False).sum(axis=0) / n
        ge = np.where(ok, d >= 0, False).sum(axis=0) / n
        return np.where(n > 0, np.minimum(1.0, 2 * np.minimum(le, ge)), np.nan)


def paired_bootstrap(y_true: NDArray, score_a: NDArray, score_b: NDArray, thresholds_a: ArrayLike,
                     thresholds_b: ArrayLike, *, groups: ArrayLike | None = None, n_resamples: int = 1000,
                     level: float = 0.95, seed: int = 0, chunk: int = 100,
                     min_positives: int = 10) -> PairedBootstrapResult:
    """Paired bootstrap of the difference ``b - a`` of every metric, both models on the same resamples.

    Parameters
    ----------
    y_true : int array (N, T), 1/0/-1
        Labels of the records both models were evaluated on (same order).
    score_a, score_b : float arrays (N, T) or (S, N, T)
        Scores of model (arm) a and b; with S seeds per arm, each resample averages the metric over
        the arm's seeds, so the difference is that of the arms' mean performance.
    thresholds_a, thresholds_b : float arrays (T,) or (S, T)
    groups, n_resamples, level, seed, chunk, min_positives
        As in :func:`bootstrap_ci`.

    Returns
    -------
    PairedBootstrapResult
    """
    alpha = _check_args(n_resamples, level, min_positives)
    y_true, sa, pa = _prepare(y_true, score_a, thresholds_a)
    _, sb, pb = _prepare(y_true, score_b, thresholds_b)
    (pta, ptb), (ba, bb), n_units = _run(y_true, [sa, sb], [pa, pb], groups, n_resamples, seed, chunk)
    n_pos = (y_true == 1).sum(axis=0).astype(np.int64)
    flagged = n_pos < min_positives
    # AUROC is defined in a resample for both models or for neither (it depends on labels and weights)
    common = np.flatnonzero(np.isfinite(ba["auroc"]).all(axis=0) & np.isfinite(pta["auroc"][0]))
    est: dict[str, Any] = {}
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    pv: dict[str, Any] = {}
    usable: dict[str, Any] = {}
    for k in PER_TASK:
        d = bb[k] - ba[k]
        lo, hi, n_ok = _interval(d, alpha)
        est[k] = ptb[k][0] - pta[k][0]
        low[k], high[k] = np.where(flagged, np.nan, lo), np.where(flagged, np.nan, hi)
        pv[k], usable[k] = np.where(flagged, np.nan, _p_two_sided(d)), n_ok
    for k in ("recall_multi", "jaccard", "exact_match"):
        d = bb[k] - ba[k]
        lo, hi, n_ok = _interval(d, alpha)
        est[k], low[k], high[k] = float(ptb[k][0] - pta[k][0]), float(lo), float(hi)
        pv[k], usable[k] = float(_p_two_sided(d)), int(n_ok)
    d = _nanmean_rows(bb["auroc"], common) - _nanmean_rows(ba["auroc"], common)
    lo, hi, n_ok = _interval(d, alpha)
    est["macro_auroc"] = float(ptb["auroc"][0][common].mean() - pta["auroc"][0][common].mean()) \
        if len(common) else float("nan")
    low["macro_auroc"], high["macro_auroc"], usable["macro_auroc"] = float(lo), float(hi), int(n_ok)
    pv["macro_auroc"] = float(_p_two_sided(d))
    return PairedBootstrapResult(est, low, high, pv, usable, n_pos, flagged, tuple(int(i) for i in common), level,
                                 n_resamples, n_units, "record" if groups is None else "patient", min_positives)


# --------------------------------------------------------------------------- DeLong

@dataclass(frozen=True)
class DeLongResult:
    """DeLong et al. (1988) test of two correlated AUROCs, per task (each a float64 array (T,)).

    ``diff = auc_b - auc_a``; ``se`` its standard error; ``z = diff / se``; ``p_value`` two-sided
    (normal). NaN where a task lacks a class; ``p_value`` is 1 where both models rank identically
    (``se`` 0 and ``diff`` 0). The test assumes independent records: with repeat patients prefer
    :func:`paired_bootstrap` with ``groups``, and read DeLong as a per-record sanity check.
    """

    auc_a: NDArray[np.float64]
    auc_b: NDArray[np.float64]
    diff: NDArray[np.float64]
    se: NDArray[np.float64]
    z: NDArray[np.float64]
    p_value: NDArray[np.float64]
    n_positives: NDArray[np.int64]
    n_negatives: NDArray[np.int64]


def _structural(pos: NDArray, neg: NDArray) -> tuple[float, NDArray, NDArray]:
    """AUROC and DeLong's structural components V10 (per positive) and V01 (per negative), midranks."""
    m, n = len(pos), len(neg)
    r_all = rankdata(np.concatenate([pos, neg]))
    v10 = (r_all[:m] - rankdata(pos)) / n  # share of negatives below each positive (ties 1/2)
    v01 = 1.0 - (r_all[m:] - rankdata(neg)) / m  # share of positives above each negative
    return float(v10.mean()), v10, v01


def delong_test(y_true: NDArray, score_a: NDArray, score_b: NDArray) -> DeLongResult:
    """Per-task DeLong test of AUROC(b) - AUROC(a) on the same records (fast midrank algorithm).

    Parameters
    ----------
    y_true : int array (N, T) or (N,), 1/0/-1 (-1 ignored)
    score_a, score_b : float arrays of the same shape

    Returns
    -------
    DeLongResult
    """
    y_true, score_a = _check_pair(y_true, score_a, "score_a")
    _, score_b = _check_pair(y_true, score_b, "score_b")
    T = y_true.shape[1]
    out = {k: np.full(T, np.nan) for k in ("auc_a", "auc_b", "diff", "se", "z", "p_value")}
    n_pos = (y_true == 1).sum(axis=0).astype(np.int64)
    n_neg = (y_true == 0).sum(axis=0).astype(np.int64)
    for k in range(T):
        m, n = int(n_pos[k]), int(n_neg[k])
        if m == 0 or n == 0:
            continue
        p, q = y_true[:, k] == 1, y_true[:, k] == 0
        aa, v10a, v01a = _structural(score_a[p, k], score_a[q, k])
        ab, v10b, v01b = _structural(score_b[p, k], score_b[q, k])
        s10 = np.cov(np.vstack([v10a, v10b])) if m > 1 else np.zeros((2, 2))
        s01 = np.cov(np.vstack([v01a, v01b])) if n > 1 else np.zeros((2, 2))
        var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
        diff = ab - aa
        se = math.sqrt(max(var, 0.0))
        out["auc_a"][k], out["auc_b"][k], out["diff"][k], out["se"][k] = aa, ab, diff, se
        if se > 0:
            z = diff / se
            out["z"][k], out["p_value"][k] = z, math.erfc(abs(z) / math.sqrt(2))
        else:
            out["z"][k], out["p_value"][k] = (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    return DeLongResult(out["auc_a"], out["auc_b"], out["diff"], out["se"], out["z"], out["p_value"], n_pos, n_neg)
