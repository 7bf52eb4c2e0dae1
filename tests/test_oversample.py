"""Hughes et al.'s UCSF subset (no duplicates, <= k positives per class) and the duplicating mode."""
from __future__ import annotations

import numpy as np
import pytest

from ecgkit.errors import ConfigError
from ecgkit.oversample import oversample_indices, subset_class_counts, ucsf_subset

# ECG-P18-like imbalance ratios 1:r (positives : negatives), a few common and many rare findings
_RATIOS = (2, 4, 7, 15, 39, 50, 105, 138, 171, 400, 1843, 2300)


def _labels(n: int = 60_000, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = np.stack([(rng.random(n) < 1.0 / (1.0 + r)).astype(np.int8) for r in _RATIOS], axis=1)
    lab[rng.random(lab.shape) < 0.02] = -1
    return lab


def test_ucsf_subset_has_no_duplicate_and_at_most_k_positives_per_class() -> None:
    lab = _labels()
    k = 1_000
    idx = ucsf_subset(lab, k, seed=5)
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)  # ascending, distinct
    counts = subset_class_counts(lab, idx)
    assert counts.max() <= k
    total = (lab == 1).sum(axis=0)
    # rare classes (fewer than k positives in all) are taken whole: depleted, not duplicated
    rare = total < k
    assert rare.sum() >= 5
    np.testing.assert_array_equal(counts[rare], total[rare])
    # common classes are filled to exactly k (enough positives that no cap blocks them here)
    assert (counts[~rare] == k).all()
    # k records with no positive label come on top; the rest are positives of some class
    no_pos = ~(lab[idx] == 1).any(axis=1)
    assert no_pos.sum() == k and (lab[idx][no_pos] == 0).any(axis=1).all()
    assert len(idx) < len(lab) // 4  # a subset, far smaller than the split
    np.testing.assert_array_equal(idx, ucsf_subset(lab, k, seed=5))
    assert not np.array_equal(idx, ucsf_subset(lab, k, seed=6))


def test_ucsf_subset_hand_example_caps_a_cooccurring_class() -> None:
    # task 0 is rare (2 positives, both also positive for task 1); task 1 is common. With k = 2 the
    # rare class is visited first and takes both records, filling task 1 too: no more task-1 records.
    lab = np.array([[1, 1], [1, 1], [0, 1], [0, 1], [0, 1], [0, 0], [0, 0], [-1, -1]], dtype=np.int8)
    idx = ucsf_subset(lab, 2, seed=0, n_negative=5)
    assert idx.tolist() == [0, 1, 5, 6]  # the all-unknown record 7 is no negative
    assert subset_class_counts(lab, idx).tolist() == [2, 2]
    # without the cap problem (k = 3) one task-1-only record joins
    idx3 = ucsf_subset(lab, 3, seed=0, n_negative=0)
    assert subset_class_counts(lab, idx3).tolist() == [2, 3] and len(idx3) == 3


def test_ucsf_subset_rejects_bad_arguments() -> None:
    lab = _labels(200)
    with pytest.raises(ConfigError, match="k must"):
        ucsf_subset(lab, 0)
    with pytest.raises(ConfigError, match="n_negative"):
        ucsf_subset(lab, 5, n_negative=-1)


def test_duplicating_mode_positive_only_leaves_negative_classes_alone() -> None:
    lab = _labels(5_000)
    k = 300
    out = oversample_indices(lab, k, seed=1, positive_only=True)
    counts = subset_class_counts(lab, out)
    assert (counts >= k).all()  # every positive class topped up to k (with duplicates)
    assert len(out) > len(np.unique(out))
    # the old mode also tops the (task, 0) classes up; with k far below every negative count the two agree
    np.testing.assert_array_equal(out, oversample_indices(lab, k, seed=1))
