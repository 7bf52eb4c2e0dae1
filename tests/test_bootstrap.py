"""Patient-level bootstrap, paired bootstrap and DeLong test (``ecgkit.bootstrap``) against hand computations.

The references re-draw the documented resampling stream (``default_rng(seed).integers(0, G, (B, G))``
over patients in ``numpy.unique`` order), materialise each resample as a list of records (every
record of each drawn patient, repeated as often as the patient was drawn) and score it with
scikit-learn, so they share nothing with the weighted kernels under test but the draws.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecgkit import metrics as M
from ecgkit.bootstrap import bootstrap_ci, delong_test, paired_bootstrap


def _cohort(seed: int, n_patients: int = 40, t: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patients with 1-4 records each; a patient's label is shared by their records, scores noisy."""
    rng = np.random.default_rng(seed)
    reps = rng.integers(1, 5, n_patients)
    groups = np.repeat(np.array([f"P{i:03d}" for i in range(n_patients)]), reps)
    y_pat = (rng.random((n_patients, t)) < 0.4).astype(np.int8)
    y = np.repeat(y_pat, reps, axis=0)
    s = y + rng.normal(0, 0.8, y.shape)
    order = rng.permutation(len(y))  # records of a patient need not be adjacent
    return y[order], s[order], groups[order]


def _reference_aurocs(y: np.ndarray, s: np.ndarray, groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    units, inv = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(inv == u) for u in range(len(units))]
    draws = np.random.default_rng(seed).integers(0, len(units), size=(n, len(units)))
    out = np.full((n, y.shape[1]), np.nan)
    for b in range(n):
        rows = np.concatenate([rows_of[u] for u in draws[b]])
        for k in range(y.shape[1]):
            if len(np.unique(y[rows, k])) == 2:
                out[b, k] = roc_auc_score(y[rows, k], s[rows, k])
    return out


def test_patient_bootstrap_equals_resampling_patients_by_hand() -> None:
    y, s, groups = _cohort(0)
    thr = np.zeros(2)
    ref = _reference_aurocs(y, s, groups, 60, seed=5)
    for chunk in (60, 7):  # chunking does not change the stream
        ci = bootstrap_ci(y, s, thr, groups=groups, n_resamples=60, seed=5, chunk=chunk, min_positives=1)
        np.testing.assert_allclose(ci.low["auroc"], np.quantile(ref, 0.025, axis=0), atol=1e-12)
        np.testing.assert_allclose(ci.high["auroc"], np.quantile(ref, 0.975, axis=0), atol=1e-12)
    assert ci.unit == "patient" and ci.n_units == 40
    np.testing.assert_allclose(ci.estimate["auroc"], M.auroc(y, s))
    np.testing.assert_array_equal(ci.n_usable["auroc"], [60, 60])
    macro = ref.mean(axis=1)
    assert ci.macro_tasks == (0, 1)
    assert ci.low["macro_auroc"] == pytest.approx(np.quantile(macro, 0.025))
    assert ci.high["macro_auroc"] == pytest.approx(np.quantile(macro, 0.975))


def test_patient_intervals_are_wider_than_record_intervals_with_repeat_patients() -> None:
    rng = np.random.default_rng(3)
    n_pat = 150
    y_pat = (rng.random(n_pat) < 0.3).astype(np.int8)
    s_pat = y_pat + rng.normal(0, 1.0, n_pat)  # a patient's records score alike: they are one draw
    reps = np.full(n_pat, 4)
    y = np.repeat(y_pat, reps)[:, None]
    s = (np.repeat(s_pat, reps) + rng.normal(0, 0.05, reps.sum()))[:, None]
    groups = np.repeat(np.arange(n_pat), reps)
    by_patient = bootstrap_ci(y, s, [0.5], groups=groups, n_resamples=400, seed=1)
    by_record = bootstrap_ci(y, s, [0.5], n_resamples=400, seed=1)
    width_p = by_patient.high["auroc"][0] - by_patient.low["auroc"][0]
    width_r = by_record.high["auroc"][0] - by_record.low["auroc"][0]
    assert by_record.unit == "record" and by_record.n_units == 600
    assert width_p > 1.5 * width_r  # 4 near-copies per patient: about sqrt(4) = 2 times wider


def test_usable_resamples_match_the_exact_probability_and_few_positives_are_flagged() -> None:
    # patient A: 2 positive records; B: 2 negatives; C: 1 negative. An AUROC needs A and (B or C) drawn:
    # P = 1 - (2/3)^3 - (1/3)^3 = 18/27 by patient; by record 1 - (3/5)^5 - (2/5)^5 = 0.912
    y = np.array([1, 1, 0, 0, 0])[:, None]
    s = np.array([0.9, 0.6, 0.7, 0.2, 0.1])[:, None]
    groups = np.array(["A", "A", "B", "B", "C"])
    ci = bootstrap_ci(y, s, [0.5], groups=groups, n_resamples=4000, seed=0)
    assert ci.n_usable["auroc"][0] / 4000 == pytest.approx(18 / 27, abs=0.03)
    by_record = bootstrap_ci(y, s, [0.5], n_resamples=4000, seed=0)
    assert by_record.n_usable["auroc"][0] / 4000 == pytest.approx(1 - 0.6 ** 5 - 0.4 ** 5, abs=0.02)
    # two positives: flagged, no interval instead of a tight-looking one
    assert ci.n_positives.tolist() == [2] and ci.flagged.tolist() == [True]
    assert ci.estimate["auroc"][0] == pytest.approx(5 / 6)
    for key in ("auroc", "ap", "f1", "sensitivity"):
        assert np.isnan(ci.low[key][0]) and np.isnan(ci.high[key][0])
    assert ci.macro_tasks == ()  # absent from some resamples: no macro interval over it
    assert np.isnan(ci.low["macro_auroc"])


def test_macro_interval_is_over_the_labels_present_in_every_resample() -> None:
    y, s, groups = _cohort(1, n_patients=60, t=3)
    y[:, 2] = 0
    y[groups == groups[0], 2] = 1  # one positive patient: missing from about a third of the resamples
    ci = bootstrap_ci(y, s, np.zeros(3), groups=groups, n_resamples=200, seed=2)
    assert ci.macro_tasks == (0, 1)
    assert 0 < ci.n_usable["auroc"][2] < 200 and ci.flagged[2]
    point = M.auroc(y, s)
    assert ci.estimate["macro_auroc"] == pytest.approx(point.mean())  # all defined labels
    assert ci.estimate["macro_auroc_common"] == pytest.approx(point[:2].mean())
    ref = _reference_aurocs(y, s, groups, 200, seed=2)[:, :2].mean(axis=1)
    assert ci.low["macro_auroc_common"] == pytest.approx(np.quantile(ref, 0.025))
    assert np.isnan(ci.low["macro_auroc"])  # its estimate includes label 2: no interval that misstates it


def test_paired_bootstrap_differences_use_the_same_resamples() -> None:
    y, s_a, groups = _cohort(4, n_patients=50)
    rng = np.random.default_rng(9)
    s_b = s_a + rng.normal(0, 0.7, s_a.shape)  # a noisier model
    res = paired_bootstrap(y, s_a, s_b, np.zeros(2), np.zeros(2), groups=groups, n_resamples=80, seed=3)
    ref = _reference_aurocs(y, s_b, groups, 80, 3) - _reference_aurocs(y, s_a, groups, 80, 3)
    np.testing.assert_allclose(res.estimate["auroc"], M.auroc(y, s_b) - M.auroc(y, s_a))
    np.testing.assert_allclose(res.low["auroc"], np.quantile(ref, 0.025, axis=0), atol=1e-12)
    np.testing.assert_allclose(res.high["auroc"], np.quantile(ref, 0.975, axis=0), atol=1e-12)
    le, ge = (ref <= 0).mean(axis=0), (ref >= 0).mean(axis=0)
    np.testing.assert_allclose(res.p_value["auroc"], np.minimum(1, 2 * np.minimum(le, ge)))
    same = paired_bootstrap(y, s_a, s_a, np.zeros(2), np.zeros(2), groups=groups, n_resamples=50)
    assert same.low["macro_auroc"] == same.high["macro_auroc"] == 0.0
    assert same.p_value["macro_auroc"] == 1.0


def test_seed_axis_averages_each_arms_models() -> None:
    y, s, groups = _cohort(5)
    rng = np.random.default_rng(0)
    seeds = np.stack([s + rng.normal(0, 0.3, s.shape) for _ in range(3)])
    ci = bootstrap_ci(y, seeds, np.zeros((3, 2)), groups=groups, n_resamples=30)
    np.testing.assert_allclose(ci.estimate["auroc"], np.mean([M.auroc(y, x) for x in seeds], axis=0))
    res = paired_bootstrap(y, seeds, s, np.zeros(2), np.zeros(2), groups=groups, n_resamples=30)
    np.testing.assert_allclose(res.estimate["auroc"], M.auroc(y, s) - ci.estimate["auroc"])


def test_delong_hand_computed() -> None:
    # positives a = 0.9, 0.4; negatives 0.5, 0.1: AUC 3/4; V10 = (1, 1/2), V01 = (1/2, 1);
    # S10 = S01 = 1/8 (ddof 1); b ranks perfectly (AUC 1, zero variance). Var(b - a) = 1/8/2 + 1/8/2 = 1/8.
    y = np.array([1, 1, 0, 0])
    a = np.array([0.9, 0.4, 0.5, 0.1])
    b = np.array([0.8, 0.6, 0.3, 0.2])
    r = delong_test(y, a, b)
    assert r.auc_a[0] == pytest.approx(0.75) and r.auc_b[0] == pytest.approx(1.0)
    assert r.se[0] == pytest.approx(math.sqrt(1 / 8))
    assert r.z[0] == pytest.approx(0.25 / math.sqrt(1 / 8))
    assert r.p_value[0] == pytest.approx(math.erfc(0.5))  # erfc(|z| / sqrt 2), z = 1/sqrt(2)


def _delong_pairs(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """DeLong's variance from explicit pairwise kernels psi(x, y) = 1, 1/2, 0 (no ranks)."""
    def comps(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)
    v10a, v01a = comps(a)
    v10b, v01b = comps(b)
    m, n = len(v10a), len(v01a)
    var = np.var(v10b - v10a, ddof=1) / m + np.var(v01b - v01a, ddof=1) / n
    return float(v10b.mean() - v10a.mean()), float(var)


def test_delong_equals_the_pairwise_definition_with_ties_and_unknowns() -> None:
    rng = np.random.default_rng(7)
    y = (rng.random((120, 3)) < 0.3).astype(np.int8)
    y[rng.random((120, 3)) < 0.1] = -1
    a = np.round(y + rng.normal(0, 1, y.shape), 1)  # rounding makes ties
    b = np.round(y + rng.normal(0, 0.6, y.shape), 1)
    r = delong_test(y, a, b)
    for k in range(3):
        known = y[:, k] >= 0
        diff, var = _delong_pairs(y[known, k], a[known, k], b[known, k])
        assert r.diff[k] == pytest.approx(diff)
        assert r.se[k] == pytest.approx(math.sqrt(var))
        assert r.auc_a[k] == pytest.approx(roc_auc_score(y[known, k], a[known, k]))
    one_class = delong_test(np.zeros((5, 1), int), a[:5, :1], b[:5, :1])
    assert np.isnan(one_class.p_value[0])


def test_bad_arguments_are_rejected() -> None:
    y, s, groups = _cohort(0)
    with pytest.raises(ValueError, match="groups must have one entry per record"):
        bootstrap_ci(y, s, np.zeros(2), groups=groups[:-1])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(y, s, np.zeros(2), level=1.5)
    with pytest.raises(ValueError, match="scores have shape"):
        paired_bootstrap(y, s, s[:-1], np.zeros(2), np.zeros(2))
