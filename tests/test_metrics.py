"""Metrics against scikit-learn and hand-computed cases.

Golden values: the multi-label case (``Y``/``Z`` below) was computed by hand from the CO-TASK
definitions (worked per record in the comments); per-task values are compared with scikit-learn
1.9 (``roc_auc_score``, ``average_precision_score``, ``f1_score``, ``roc_curve``,
``precision_recall_curve``) on the same arrays.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (average_precision_score, f1_score, precision_recall_curve, precision_score,
                             recall_score, roc_auc_score, roc_curve)

from ecgkit import metrics as M

# 4 records x 3 tasks. Record 3 has no true label, so it is left out of the multi-label means.
Y = np.array([[1, 0, 1],
              [0, 1, 0],
              [1, 1, 1],
              [0, 0, 0]], dtype=np.int8)
Z = np.array([[1, 1, 0],   # |Y∩Z|=1 |Y|=2 |Y∪Z|=3 -> recall 1/2, jaccard 1/3, exact 0
              [0, 1, 0],   # 1,1,1 -> 1, 1, 1
              [1, 0, 1],   # 2,3,3 -> 2/3, 2/3, 0
              [1, 0, 0]], dtype=np.int8)  # no true label: excluded


def test_multilabel_metrics_hand_computed() -> None:
    assert M.recall_multi(Y, Z) == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    assert M.jaccard(Y, Z) == pytest.approx((1 / 3 + 1 + 2 / 3) / 3)
    assert M.exact_match(Y, Z) == pytest.approx(1 / 3)


def test_multilabel_metrics_ignore_unknown_entries() -> None:
    y = Y.copy()
    y[0, 1] = -1  # the predicted-but-unknown label of record 0 no longer counts in its union
    assert M.jaccard(y, Z) == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    assert M.exact_match(np.array([[1, -1]]), np.array([[1, 1]])) == 1.0  # unknown entry ignored
    assert np.isnan(M.exact_match(np.array([[-1, 0]]), np.array([[1, 0]])))  # no true label
    assert np.isnan(M.recall_multi(np.zeros((2, 2)), np.ones((2, 2))))


def _random_case(seed: int, n: int = 400, t: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, t)) < np.linspace(0.05, 0.5, t)).astype(np.int8)
    s = np.round(rng.normal(size=(n, t)) + 1.2 * y, 1)  # rounding creates ties on purpose
    return y, s


def test_auroc_and_ap_match_sklearn_with_ties() -> None:
    y, s = _random_case(1)
    got_auc, got_ap = M.auroc(y, s), M.average_precision(y, s)
    for k in range(y.shape[1]):
        assert got_auc[k] == pytest.approx(roc_auc_score(y[:, k], s[:, k]), abs=1e-12)
        assert got_ap[k] == pytest.approx(average_precision_score(y[:, k], s[:, k]), abs=1e-12)
    assert M.macro_auroc(y, s) == pytest.approx(np.mean([roc_auc_score(y[:, k], s[:, k]) for k in range(5)]))


def test_macro_auroc_skips_one_class_tasks_and_unknowns() -> None:
    y, s = _random_case(2)
    y[:, 0] = 0  # one class only -> left out
    y[:50, 1] = -1  # unknown -> ignored
    per = M.auroc(y, s)
    assert np.isnan(per[0])
    assert per[1] == pytest.approx(roc_auc_score(y[50:, 1], s[50:, 1]))
    assert M.macro_auroc(y, s) == pytest.approx(np.mean(per[1:]))


def test_sensitivity_at_specificity_matches_roc_curve() -> None:
    y, s = _random_case(3)
    for target in (0.5, 0.9, 0.97):
        got = M.sensitivity_at_specificity(y, s, target)
        for k in range(y.shape[1]):
            fpr, tpr, _ = roc_curve(y[:, k], s[:, k])
            assert got[k] == pytest.approx(tpr[fpr <= 1 - target + 1e-12].max())
    assert isinstance(M.sensitivity_at_specificity(y[:, 0], s[:, 0], 0.9), float)


def test_max_f1_threshold_matches_precision_recall_curve() -> None:
    y, s = _random_case(4)
    thr = M.choose_thresholds(y, s, "max_f1")
    for k in range(y.shape[1]):
        p, r, t = precision_recall_curve(y[:, k], s[:, k])
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0)[:-1]
        best = f1.max()
        assert f1_score(y[:, k], s[:, k] >= thr[k]) == pytest.approx(best)


def test_specificity_threshold_reaches_target_on_validation() -> None:
    y, s = _random_case(5)
    thr = M.choose_thresholds(y, s, 0.9)
    pred = s >= thr
    for k in range(y.shape[1]):
        spec = ((~pred[:, k]) & (y[:, k] == 0)).sum() / (y[:, k] == 0).sum()
        assert spec >= 0.9
        sens = recall_score(y[:, k], pred[:, k])
        assert sens == pytest.approx(M.sensitivity_at_specificity(y[:, k], s[:, k], 0.9))


def test_thresholds_use_validation_only() -> None:
    y_val, s_val = _random_case(6)
    y_test, s_test = _random_case(7)
    thr = M.choose_thresholds(y_val, s_val)
    # thresholds chosen on validation differ from those the test split would pick for itself, and
    # the test metrics are computed at the validation thresholds
    assert not np.array_equal(thr, M.choose_thresholds(y_test, s_test))
    per = M.per_task_metrics(y_test, s_test, thr)
    for k in range(y_val.shape[1]):
        pred = s_test[:, k] >= thr[k]
        assert per["f1"][k] == pytest.approx(f1_score(y_test[:, k], pred))
        assert per["precision"][k] == pytest.approx(precision_score(y_test[:, k], pred, zero_division=np.nan))
        assert per["sensitivity"][k] == pytest.approx(recall_score(y_test[:, k], pred))
        assert per["specificity"][k] == pytest.approx(recall_score(1 - y_test[:, k], ~pred))


def test_threshold_errors_and_degenerate_tasks() -> None:
    y, s = _random_case(8)
    y[:, 2] = 0
    assert np.isinf(M.choose_thresholds(y, s)[2])
    with pytest.raises(ValueError, match="target specificity"):
        M.choose_thresholds(y, s, 1.5)
    with pytest.raises(ValueError, match="max_f1"):
        M.choose_thresholds(y, s, "youden")
    with pytest.raises(ValueError, match=r"shape \(400, 4\)"):
        M.auroc(y, s[:, :4])


def test_delta_m_hand_computed() -> None:
    # (0.9-0.8)/0.8 = 12.5 %, (0.6-0.75)/0.75 = -20 % -> mean -3.75 %
    assert M.delta_m([0.9, 0.6], [0.8, 0.75]) == pytest.approx(-3.75)
    # lower-is-better flips the sign of the second term
    assert M.delta_m([0.9, 0.6], [0.8, 0.75], [True, False]) == pytest.approx(16.25)
    assert M.delta_m([0.9, np.nan], [0.8, 0.7]) == pytest.approx(12.5)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    y, s = _random_case(9, n=300, t=3)
    thr = M.choose_thresholds(y, s)
    a = M.bootstrap_ci(y, s, thr, n_resamples=200, seed=3)
    b = M.bootstrap_ci(y, s, thr, n_resamples=200, seed=3, chunk=33)
    assert np.array_equal(a.low["auroc"], b.low["auroc"])  # chunking does not change the stream
    assert a.estimate["auroc"] == pytest.approx(M.auroc(y, s))
    assert a.estimate["jaccard"] == pytest.approx(M.jaccard(y, s >= thr))
    for key in ("auroc", "ap", "f1", "sensitivity"):
        assert np.all(a.low[key] <= a.estimate[key]) and np.all(a.estimate[key] <= a.high[key])
    assert a.low["macro_auroc"] < a.estimate["macro_auroc"] < a.high["macro_auroc"]


def test_bootstrap_resample_auroc_equals_sklearn_on_the_resample() -> None:
    """The weighted (count) AUROC of one resample equals sklearn's on the materialised resample."""
    y, s = _random_case(10, n=200, t=1)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 200, 200)
    counts = np.bincount(idx, minlength=200).astype(float)[None, :]
    got = M._auroc_weighted(y[:, 0], s[:, 0], counts)[0]
    assert got == pytest.approx(roc_auc_score(y[idx, 0], s[idx, 0]), abs=1e-12)
    got_ap = M._ap_weighted(y[:, 0], s[:, 0], counts)[0]
    assert got_ap == pytest.approx(average_precision_score(y[idx, 0], s[idx, 0]), abs=1e-12)
