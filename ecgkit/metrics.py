"""Evaluation metrics for multi-label ECG phenotyping: per task, multi-label, thresholds, bootstrap.

Pure NumPy (no torch, no h5py), so other stages and notebooks can call it on any score matrix.
Bootstrap confidence intervals (resampling patients), paired comparisons of two models and the
DeLong test are in :mod:`ecgkit.bootstrap` and re-exported here.

Conventions
-----------
- ``y_true`` is an integer array (N, T) (or (N,) for one task) with 1 = positive, 0 = negative and
  -1 = unknown. Unknown entries are ignored by every metric (per task, and per record in the
  multi-label metrics).
- ``y_score`` is a float array of the same shape, higher = more likely positive (probabilities or
  logits; only the order matters except for thresholds, which are in the same unit as the scores).
- A record is predicted positive for a task when ``score >= threshold``.
- Metrics undefined on the given data (a task with one class only) are NaN, never silently 0.

Multi-label metrics follow the CO-TASK paper: over the records with at least one true label,
``recall = mean |Y ∩ Z| / |Y|``, ``jaccard = mean |Y ∩ Z| / |Y ∪ Z|`` and
``exact match = mean 1[Y = Z]``, with Y the true and Z the predicted label set of a record.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

__all__ = [
    "recall_multi", "jaccard", "exact_match", "auroc", "average_precision", "macro_auroc",
    "sensitivity_at_specificity", "choose_thresholds", "confusion_metrics", "delta_m",
    "bootstrap_ci", "BootstrapResult", "per_task_metrics", "paired_bootstrap", "PairedBootstrapResult",
    "delong_test", "DeLongResult",
]


def _as_2d(y: NDArray) -> NDArray:
    y = np.asarray(y)
    return y[:, None] if y.ndim == 1 else y


def _check_pair(y_true: NDArray, other: NDArray, name: str) -> tuple[NDArray, NDArray]:
    y_true = _as_2d(y_true)
    other = _as_2d(other)
    if y_true.shape != other.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but {name} has shape {other.shape}")
    return y_true, other


# --------------------------------------------------------------------------- multi-label (CO-TASK)

def _set_counts(y_true: NDArray, y_pred: NDArray) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Per-record |Y|, |Z|, |Y∩Z| and the mask of records with >= 1 true label (unknowns ignored)."""
    y_true, y_pred = _check_pair(y_true, y_pred, "y_pred")
    known = y_true >= 0
    t = (y_true == 1)
    p = (y_pred == 1) & known
    n_true = t.sum(axis=1)
    n_pred = p.sum(axis=1)
    n_both = (t & p).sum(axis=1)
    return n_true, n_pred, n_both, n_true > 0


def _per_record_multi(y_true: NDArray, y_pred: NDArray) -> dict[str, NDArray]:
    n_true, n_pred, n_both, has = _set_counts(y_true, y_pred)
    union = n_true + n_pred - n_both
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "recall_multi": np.where(has, n_both / np.maximum(n_true, 1), 0.0),
            "jaccard": np.where(has, n_both / np.maximum(union, 1), 0.0),
            "exact_match": np.where(has, (n_both == n_true) & (n_pred == n_true), False).astype(float),
            "_has": has.astype(float),
        }


def _mean_over_labelled(values: NDArray, has: NDArray) -> float:
    n = has.sum()
    return float(values.sum() / n) if n > 0 else float("nan")


def recall_multi(y_true: NDArray, y_pred: NDArray) -> float:
    """Multi-label recall: mean over records with >= 1 true label of |Y ∩ Z| / |Y|.

    Parameters
    ----------
    y_true : int array (N, T)
        1/0, with -1 for unknown (ignored).
    y_pred : int or bool array (N, T)
        Binary predictions.

    Returns
    -------
    float
        NaN when no record has a true label.
    """
    r = _per_record_multi(y_true, y_pred)
    return _mean_over_labelled(r["recall_multi"], r["_has"])


def jaccard(y_true: NDArray, y_pred: NDArray) -> float:
    """Multi-label Jaccard index: mean over records with >= 1 true label of |Y ∩ Z| / |Y ∪ Z|."""
    r = _per_record_multi(y_true, y_pred)
    return _mean_over_labelled(r["jaccard"], r["_has"])


def exact_match(y_true: NDArray, y_pred: NDArray) -> float:
    """Exact match ratio: fraction of records with >= 1 true label whose predicted set equals Y."""
    r = _per_record_multi(y_true, y_pred)
    return _mean_over_labelled(r["exact_match"], r["_has"])


# --------------------------------------------------------------------------- weighted ranking kernels
# Every per-task metric below is computed from per-record weights w (N,) or (B, N): w = 1 for the
# plain metric and w = bootstrap counts for a resample, so the bootstrap is the same code, vectorised.

def _groups(score: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Sort order, start offsets of runs of equal scores, and the unique scores (ascending)."""
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.zeros(0, dtype=np.int64)
    return order, starts, s[starts] if len(s) else s


def _grouped(w: NDArray, y: NDArray, order: NDArray, starts: NDArray) -> tuple[NDArray, NDArray]:
    """Positive and negative weight per unique score, ascending: each (B, G)."""
    w = np.atleast_2d(w)[:, order]
    yo = y[order]
    pos = np.add.reduceat(w * (yo == 1), starts, axis=1)
    neg = np.add.reduceat(w * (yo == 0), starts, axis=1)
    return pos, neg


def _auroc_weighted(y: NDArray, score: NDArray, w: NDArray) -> NDArray:
    """AUROC (Mann-Whitney with ties counted 1/2) for each row of weights w (B, N) -> (B,)."""
    order, starts, _ = _groups(score)
    if len(starts) == 0:
        return np.full(np.atleast_2d(w).shape[0], np.nan)
    pos, neg = _grouped(w, y, order, starts)
    neg_below = np.cumsum(neg, axis=1) - neg
    num = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _ap_weighted(y: NDArray, score: NDArray, w: NDArray) -> NDArray:
    """Average precision (sklearn's step-wise definition) for each row of weights -> (B,)."""
    order, starts, _ = _groups(score)
    if len(starts) == 0:
        return np.full(np.atleast_2d(w).shape[0], np.nan)
    pos, neg = _grouped(w, y, order, starts)
    # descending thresholds: cumulative TP/FP from the highest score down
    tp = np.cumsum(pos[:, ::-1], axis=1)
    fp = np.cumsum(neg[:, ::-1], axis=1)
    p_total = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), 0.0)
        recall_step = pos[:, ::-1] / np.where(p_total > 0, p_total, 1)
        ap = (recall_step * precision).sum(axis=1)
    return np.where(p_total[:, 0] > 0, ap, np.nan)


def _known(y_true: NDArray, y_score: NDArray, k: int) -> tuple[NDArray, NDArray, NDArray]:
    known = y_true[:, k] >= 0
    return y_true[known, k], y_score[known, k], known


def auroc(y_true: NDArray, y_score: NDArray) -> NDArray[np.float64]:
    """Per-task area under the ROC curve.

    Parameters
    ----------
    y_true : int array (N, T) or (N,)
        1/0/-1; -1 entries are ignored.
    y_score : float array, same shape

    Returns
    -------
    float64 array (T,)
        NaN for tasks without both classes among the known entries.
    """
    y_true, y_score = _check_pair(y_true, y_score, "y_score")
    out = np.full(y_true.shape[1], np.nan)
    for k in range(y_true.shape[1]):
        y, s, _ = _known(y_true, y_score, k)
        out[k] = _auroc_weighted(y, s, np.ones(len(y)))[0]
    return out


def average_precision(y_true: NDArray, y_score: NDArray) -> NDArray[np.float64]:
    """Per-task average precision (area under the step-wise precision-recall curve), (T,)."""
    y_true, y_score = _check_pair(y_true, y_score, "y_score")
    out = np.full(y_true.shape[1], np.nan)
    for k in range(y_true.shape[1]):
        y, s, _ = _known(y_true, y_score, k)
        out[k] = _ap_weighted(y, s, np.ones(len(y)))[0]
    return out


def macro_auroc(y_true: NDArray, y_score: NDArray) -> float:
    """Mean AUROC over the tasks that have both classes present (unknown entries ignored).

    Returns NaN when no task has both classes.
    """
    values = auroc(y_true, y_score)
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


# --------------------------------------------------------------------------- operating points

def _roc_points(y: NDArray, s: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Thresholds (descending, starting at +inf), sensitivity and specificity at score >= threshold."""
    order, starts, uniq = _groups(s)
    pos, neg = _grouped(np.ones(len(y)), y, order, starts)
    tp = np.r_[0.0, np.cumsum(pos[0, ::-1])]
    fp = np.r_[0.0, np.cumsum(neg[0, ::-1])]
    thr = np.r_[np.inf, uniq[::-1]]
    n_pos, n_neg = tp[-1], fp[-1]
    sens = tp / n_pos if n_pos > 0 else np.full_like(tp, np.nan)
    spec = 1.0 - fp / n_neg if n_neg > 0 else np.full_like(fp, np.nan)
    return thr, sens, spec


def sensitivity_at_specificity(y_true: NDArray, y_score: NDArray,
                               specificity: float | Sequence[float]) -> float | NDArray[np.float64]:
    """Highest sensitivity among thresholds whose specificity is >= the target.

    Parameters
    ----------
    y_true : int array (N,) or (N, T)
        1/0/-1; -1 ignored.
    y_score : float array, same shape
    specificity : float or sequence of T floats
        Target specificity in [0, 1], e.g. that of a reference reader; one per task allowed.

    Returns
    -------
    float for 1-D input, else float64 array (T,); NaN for a task without both classes.
    """
    one_d = np.asarray(y_true).ndim == 1
    y_true, y_score = _check_pair(y_true, y_score, "y_score")
    targets = np.broadcast_to(np.asarray(specificity, dtype=float), (y_true.shape[1],))
    if np.any((targets < 0) | (targets > 1)):
        raise ValueError(f"specificity must lie in [0, 1], got {specificity!r}")
    out = np.full(y_true.shape[1], np.nan)
    for k in range(y_true.shape[1]):
        y, s, _ = _known(y_true, y_score, k)
        if (y == 1).any() and (y == 0).any():
            _, sens, spec = _roc_points(y, s)
            out[k] = sens[spec >= targets[k] - 1e-12].max()
    return float(out[0]) if one_d else out


def choose_thresholds(y_true_val: NDArray, y_score_val: NDArray,
                      rule: str | float = "max_f1") -> NDArray[np.float64]:
    """Choose one decision threshold per task on the validation split.

    Parameters
    ----------
    y_true_val : int array (N, T)
        Validation labels, 1/0/-1 (-1 ignored).
    y_score_val : float array (N, T)
        Validation scores.
    rule : "max_f1" or float
        ``"max_f1"``: the threshold maximising F1 (ties: the highest threshold). A float in [0, 1]
        (or a string such as ``"0.95"``): the lowest threshold whose specificity is >= that target,
        i.e. the highest sensitivity at that specificity.

    Returns
    -------
    float64 array (T,)
        Predict positive when ``score >= threshold``. A task with no positive (max F1) or no
        negative (target specificity) in validation gets ``+inf`` (never predicted positive) and a
        warning in the log.
    """
    y_true_val, y_score_val = _check_pair(y_true_val, y_score_val, "y_score_val")
    target: float | None = None
    if rule != "max_f1":
        try:
            target = float(rule)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"threshold rule must be 'max_f1' or a target specificity, got {rule!r}") from exc
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"target specificity must lie in [0, 1], got {target}")
    out = np.full(y_true_val.shape[1], np.inf)
    for k in range(y_true_val.shape[1]):
        y, s, _ = _known(y_true_val, y_score_val, k)
        n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
        if (target is None and n_pos == 0) or (target is not None and n_neg == 0) or len(y) == 0:
            logger.warning("task %d: no %s in validation; threshold set to +inf", k,
                           "positive" if target is None else "negative")
            continue
        thr, sens, spec = _roc_points(y, s)
        if target is None:
            tp = sens * n_pos
            fp = (1.0 - spec) * n_neg if n_neg else np.zeros_like(tp)
            f1 = 2 * tp / np.maximum(2 * tp + fp + (n_pos - tp), 1e-12)
            out[k] = thr[int(np.argmax(f1))]
        else:
            ok = np.flatnonzero(spec >= target - 1e-12)
            out[k] = thr[ok[-1]]  # thresholds descend: the last admissible one has the most sensitivity
    return out


def confusion_metrics(y_true: NDArray, y_pred: NDArray) -> dict[str, NDArray[np.float64]]:
    """Per-task F1, precision, sensitivity (recall) and specificity of binary predictions.

    Returns
    -------
    dict of float64 arrays (T,)
        Keys ``f1``, ``precision``, ``sensitivity``, ``specificity``; NaN where undefined
        (e.g. precision with no predicted positive).
    """
    y_true, y_pred = _check_pair(y_true, y_pred, "y_pred")
    return _confusion_weighted(y_true, y_pred.astype(bool), np.ones((1, y_true.shape[0])), squeeze=True)


def _confusion_weighted(y_true: NDArray, pred: NDArray, w: NDArray, squeeze: bool = False) -> dict[str, NDArray]:
    """Weighted confusion metrics: w (B, N) -> dict of (B, T) (or (T,) with squeeze)."""
    pos = (y_true == 1).astype(float)
    neg = (y_true == 0).astype(float)
    p = pred.astype(float)
    tp = w @ (pos * p)
    fp = w @ (neg * p)
    fn = w @ (pos * (1 - p))
    tn = w @ (neg * (1 - p))

    def ratio(a: NDArray, b: NDArray) -> NDArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)

    out = {"f1": ratio(2 * tp, 2 * tp + fp + fn), "precision": ratio(tp, tp + fp),
           "sensitivity": ratio(tp, tp + fn), "specificity": ratio(tn, tn + fp)}
    return {k: v[0] for k, v in out.items()} if squeeze else out


def per_task_metrics(y_true: NDArray, y_score: NDArray, thresholds: NDArray) -> dict[str, NDArray[np.float64]]:
    """AUROC, AP and the confusion metrics at the given (validation-chosen) thresholds, per task.

    Returns
    -------
    dict of float64 arrays (T,)
        ``auroc``, ``ap``, ``f1``, ``precision``, ``sensitivity``, ``specificity``.
    """
    y_true, y_score = _check_pair(y_true, y_score, "y_score")
    out = {"auroc": auroc(y_true, y_score), "ap": average_precision(y_true, y_score)}
    out.update(confusion_metrics(y_true, y_score >= np.asarray(thresholds)[None, :]))
    return out


def delta_m(metrics: NDArray, baseline: NDArray, higher_is_better: NDArray | bool = True) -> float:
    """Average relative gain over a baseline, in percent (Maninis et al. 2019; used by CO-TASK).

    ``Δm = 100 / K * Σ_k (-1)^{l_k} (M_k - B_k) / B_k`` with l_k = 1 when lower is better; entries
    where either value is NaN or the baseline is 0 are left out.

    Parameters
    ----------
    metrics, baseline : float arrays (K,)
        The same metrics (e.g. per-task AUROC) of the model and the baseline.
    higher_is_better : bool or bool array (K,)
    """
    m = np.asarray(metrics, dtype=float).ravel()
    b = np.asarray(baseline, dtype=float).ravel()
    if m.shape != b.shape:
        raise ValueError(f"metrics has shape {m.shape} but baseline has shape {b.shape}")
    sign = np.where(np.broadcast_to(higher_is_better, m.shape), 1.0, -1.0)
    ok = np.isfinite(m) & np.isfinite(b) & (b != 0)
    if not ok.any():
        return float("nan")
    return float(100.0 * np.mean(sign[ok] * (m[ok] - b[ok]) / b[ok]))


# The bootstrap and the tests between models live in ecgkit.bootstrap (which builds on the kernels
# above); they are re-exported here lazily so ``metrics.bootstrap_ci`` keeps working without an
# import cycle.
_STATS_NAMES = ("bootstrap_ci", "BootstrapResult", "paired_bootstrap", "PairedBootstrapResult", "delong_test",
                "DeLongResult")


def __getattr__(name: str) -> Any:
    if name in _STATS_NAMES:
        from ecgkit import bootstrap

        return getattr(bootstrap, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
