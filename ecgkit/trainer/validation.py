"""The validation score that drives early stopping and ``best.pt``, on arrays (no torch).

Two criteria (``TrainConfig.early_stopping``), both over the *scored tasks*: the major tasks
(``TrainConfig.major_tasks``, default every task) that have at least ``early_stopping_min_positives``
validation positives and one validation negative:

- ``macro_auroc``: mean AUROC over the scored tasks (higher is better). With one or two validation
  positives a task's AUROC moves in large steps when one positive changes rank; such tasks
  made the macro swing by 0.06 between epochs, so leave them out with ``min_positives``.
- ``val_loss``: mean over the scored tasks of each task's mean binary cross-entropy on its known
  validation labels; the score is minus the loss (higher is better).

When no task qualifies (a small split without positives), the run trains without early stopping:
every epoch counts as the best, ``best.pt`` follows ``last.pt``, and ``run_info.json`` says why.

Every epoch's row carries ``val_macro_auroc`` (over all major tasks with both classes, the number
reported as before), ``val_loss`` and ``val_score`` (the criterion's value).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from ecgkit.errors import ConfigError
from ecgkit.metrics import auroc

__all__ = ["scored_tasks", "check_scored_tasks", "val_scores"]

_EPS = 1e-7  # probability clip for the BCE (float32 sigmoids reach exactly 0 or 1)


def scored_tasks(labels: NDArray, major: Sequence[int], min_positives: int) -> list[int]:
    """Columns of ``labels`` (among ``major``) with >= ``min_positives`` positives and >= 1 negative."""
    y = np.asarray(labels)
    return [int(j) for j in major if (y[:, j] == 1).sum() >= min_positives and (y[:, j] == 0).any()]


def check_scored_tasks(labels: NDArray, major: Sequence[int], names: Sequence[str], criterion: str,
                       min_positives: int) -> tuple[list[int], str | None]:
    """:func:`scored_tasks`, and when there is none the reason (with each major task's counts)."""
    cols = scored_tasks(labels, major, min_positives)
    if cols:
        return cols, None
    y = np.asarray(labels)
    counts = ", ".join(f"{names[j]} {int((y[:, j] == 1).sum())}/{int((y[:, j] == 0).sum())}" for j in major)
    return cols, (f"early_stopping={criterion!r} has no task to score: no major task has >= {min_positives} "
                  f"validation positive(s) and a negative (positives/negatives: {counts})")


def _task_bce(y: NDArray, p: NDArray) -> NDArray[np.float64]:
    """(T,) mean binary cross-entropy of each task over its known labels (NaN when none)."""
    known = y >= 0
    q = np.clip(p.astype(np.float64), _EPS, 1.0 - _EPS)
    ll = np.where(y == 1, np.log(q), np.log1p(-q))
    with np.errstate(invalid="ignore", divide="ignore"):
        return -(np.where(known, ll, 0.0).sum(axis=0) / known.sum(axis=0))


def val_scores(labels: NDArray, probs: NDArray, *, major: Sequence[int], scored: Sequence[int],
               criterion: str) -> dict[str, Any]:
    """One epoch's validation numbers.

    Parameters
    ----------
    labels : (N, T) int 1/0/-1; probs : (N, T) float sigmoid probabilities
    major : columns of the major tasks; scored : columns the criterion averages over
    criterion : "macro_auroc" or "val_loss"

    Returns
    -------
    dict
        ``val_macro_auroc`` (major tasks with both classes), ``val_loss`` (scored tasks) and
        ``val_score`` (the criterion, higher is better).
    """
    y = np.asarray(labels)
    p = np.asarray(probs)
    aucs = auroc(y, p)  # (T,), NaN for a task without both classes
    major_aucs = aucs[list(major)]
    finite = np.isfinite(major_aucs)
    macro = float(major_aucs[finite].mean()) if finite.any() else float("nan")
    loss = float(np.mean(_task_bce(y[:, list(scored)], p[:, list(scored)])))
    if criterion == "val_loss":
        score = -loss
    elif criterion == "macro_auroc":
        score = float(np.mean(aucs[list(scored)]))
    else:
        raise ConfigError(f"early_stopping must be macro_auroc or val_loss, got {criterion!r}")
    return {"val_macro_auroc": macro, "val_loss": loss, "val_score": score}
