"""Tests of CO-TASK auxiliary task generation and labelling.

Statistical checks use fixed seeds (deterministic) with 4-standard-deviation bounds.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ecgkit.cotask import (ALLOWED_CLASSES, aux_labels, expected_pair_probs, load_aux_tasks, make_aux_tasks,
                           save_aux_tasks, subset_mask)
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.sampler import TaskAwareSampler

P18 = ["LVH", "RVH", "AFIB", "AFL", "IVCD", "NIVCD", "RBBB", "LBBB", "IRBBB", "ILBBB", "1AVB", "2AVB", "3AVB",
       "EAR", "VBIG", "VT", "VPC", "APC"]


def _labels(n: int = 2000, t: int = 18, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = (rng.random((n, t)) < 0.2).astype(np.int8)
    lab[rng.random((n, t)) < 0.05] = -1
    return lab


def _python_splitmix(key: int, counter: int) -> int:
    """SplitMix64 in Python integers (Vigna's splitmix64.c), independent of the module under test."""
    m = (1 << 64) - 1
    z = (key + counter * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def test_definitions_are_json_with_distinct_pairs_and_allowed_classes() -> None:
    lab = _labels()
    defs = make_aux_tasks(lab, 153, seed=1, task_names=P18)  # every pair of 18 tasks
    assert len(defs) == 153
    assert json.loads(json.dumps(defs)) == defs
    pairs = [tuple(d["pair"]) for d in defs]
    assert len(set(frozenset(p) for p in pairs)) == 153
    assert all(i < j for i, j in pairs)
    classes = [tuple(d["classes"]) for d in defs]
    assert (0, 0) not in classes  # the excluded mapping never appears
    assert set(classes) == set(ALLOWED_CLASSES)
    for c in ALLOWED_CLASSES:  # and the three allowed ones are uniform: 51 each expected of 153
        assert abs(classes.count(c) - 51) < 4 * math.sqrt(153 * (1 / 3) * (2 / 3))
    d = defs[0]
    i, j = d["pair"]
    a, b = d["classes"]
    assert d["tasks"] == [P18[i], P18[j]]
    assert d["name"] == f"aux00_{P18[i]}={a}|{P18[j]}={b}"
    assert d["subset"] == {"method": "splitmix64-bernoulli", "seed": d["subset"]["seed"], "fraction": 0.5,
                           "n_records": 2000}
    with pytest.raises(ConfigError, match=r"\[0, 153\]"):
        make_aux_tasks(lab, 154)


def test_same_seed_same_definitions() -> None:
    lab = _labels()
    assert make_aux_tasks(lab, 12, seed=5) == make_aux_tasks(lab, 12, seed=5)
    assert make_aux_tasks(lab, 12, seed=5) != make_aux_tasks(lab, 12, seed=6)
    assert "tasks" not in make_aux_tasks(lab, 1, seed=5)[0]


def test_aux_labels_equal_definitions_record_by_record() -> None:
    lab = _labels(n=600)
    defs = make_aux_tasks(lab, 20, seed=2)
    got = aux_labels(defs, lab, subset=False)
    assert got.shape == (600, 20) and got.dtype == np.int8
    sub = aux_labels(defs, lab)
    for k, d in enumerate(defs):
        (i, j), (a, b) = d["pair"], d["classes"]
        mask = subset_mask(d)
        for r in range(600):
            yi, yj = int(lab[r, i]), int(lab[r, j])
            want = -1 if (yi == -1 or yj == -1) else int(yi == a or yj == b)
            assert got[r, k] == want
            assert sub[r, k] == (want if mask[r] else -1)


def test_subset_is_regenerated_from_seed_by_documented_formula() -> None:
    lab = _labels(n=300)
    d = make_aux_tasks(lab, 1, seed=3)[0]
    seed = d["subset"]["seed"]
    # record r is in the subset when the top 53 bits of splitmix64(seed, r), as a fraction, are < 1/2
    want = [(_python_splitmix(seed, r) >> 11) / 2.0 ** 53 < 0.5 for r in range(300)]
    assert subset_mask(d).tolist() == want
    with pytest.raises(SchemaError, match="made for 300 training records, got 299"):
        aux_labels([d], lab[:299])


def test_subset_sizes_are_one_half_within_sampling_error() -> None:
    n = 100_000
    lab = _labels(n=n, t=6)
    defs = make_aux_tasks(lab, 15, seed=4)
    masks = np.stack([subset_mask(d, n) for d in defs])
    sd = math.sqrt(n * 0.25)
    assert (np.abs(masks.sum(axis=1) - n / 2) < 4 * sd).all()
    # subsets of different tasks are independent: overlap ~ n/4
    overlap = (masks[0] & masks[1]).sum()
    assert abs(overlap - n / 4) < 4 * math.sqrt(n * 0.25 * 0.75)
    third = make_aux_tasks(lab, 1, seed=4, subset_fraction=1 / 3)[0]
    assert abs(subset_mask(third).sum() - n / 3) < 4 * math.sqrt(n * 2 / 9)


def test_major_weighting_shifts_pair_frequencies() -> None:
    lab = _labels(n=50)
    majors = [0, 2, 12]
    seeds = range(400)

    def share_with_major(**kw: object) -> float:
        picks = [make_aux_tasks(lab, 1, seed=s, major_tasks=majors, **kw)[0]["pair"] for s in seeds]
        return float(np.mean([bool(set(p) & set(majors)) for p in picks]))

    # first-draw probabilities q_i q_j: with weight 4, (3*16 + 45*4) / (3*16 + 45*4 + 105) = 228/333;
    # with weight 1, 48/153 pairs touch a major task
    p4 = expected_pair_probs(18, majors, 4.0)
    p1 = expected_pair_probs(18, majors, 1.0)
    touch = np.zeros((18, 18), bool)
    touch[majors, :] = touch[:, majors] = True
    assert p4[touch].sum() == pytest.approx(228 / 333)
    assert p1[touch].sum() == pytest.approx(48 / 153)
    sd4 = math.sqrt(228 / 333 * (1 - 228 / 333) / 400)
    sd1 = math.sqrt(48 / 153 * (1 - 48 / 153) / 400)
    assert abs(share_with_major(major_weight=4.0) - 228 / 333) < 4 * sd4
    assert abs(share_with_major(major_weight=1.0) - 48 / 153) < 4 * sd1
    # and with several tasks per run, the major pair (0, 2) shows up far more often
    many = [tuple(d["pair"]) for s in range(100) for d in make_aux_tasks(lab, 10, seed=s, major_tasks=majors)]
    few = [tuple(d["pair"]) for s in range(100) for d in make_aux_tasks(lab, 10, seed=s)]
    assert many.count((0, 2)) > 3 * max(few.count((0, 2)), 1)


def test_save_load_round_trip_and_errors(tmp_path: Path) -> None:
    lab = _labels()
    defs = make_aux_tasks(lab, 8, seed=7, task_names=P18, major_tasks=[0])
    path = tmp_path / "aux_tasks.json"
    save_aux_tasks(defs, path)
    loaded = load_aux_tasks(path)
    assert loaded == defs
    np.testing.assert_array_equal(aux_labels(loaded, lab), aux_labels(defs, lab))

    bad = json.loads(path.read_text())
    bad["aux_tasks"][3]["classes"] = [0, 0]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(bad))
    with pytest.raises(SchemaError, match=r"broken\.json: auxiliary task 3: classes \[0, 0\]"):
        load_aux_tasks(broken)
    truncated = tmp_path / "truncated.json"
    truncated.write_text(path.read_text()[:100])
    with pytest.raises(SchemaError, match="truncated.json"):
        load_aux_tasks(truncated)
    with pytest.raises(SchemaError, match="not two distinct tasks of 4"):
        aux_labels([{**defs[0], "pair": [1, 9]}], lab[:, :4], subset=False)


def test_aux_labels_feed_the_sampler() -> None:
    lab = _labels(n=3000)
    defs = make_aux_tasks(lab, 6, seed=8)
    full = np.concatenate([lab, aux_labels(defs, lab)], axis=1)
    s = TaskAwareSampler(full, 32, seed=0)
    tasks, idx = s.draw(0, np.arange(400))
    drawn = full[idx, tasks[:, None]]
    assert (drawn != -1).all()
    aux_draws = tasks >= 18
    assert aux_draws.any()
    for k, d in enumerate(defs):  # auxiliary batches only contain records of the task's subset
        sel = idx[tasks == 18 + k]
        assert subset_mask(d)[sel].all()


def test_major_pairs_fixes_how_many_pairs_hold_a_major_task() -> None:
    # the CO-TASK authors' ECG-EchoLVH runs: 8 auxiliary tasks over 5 tasks, 4 of them with the major task
    lab = _labels(n=200, t=5)
    for seed in range(20):
        defs = make_aux_tasks(lab, 8, seed=seed, major_tasks=[0], major_pairs=4)
        pairs = [tuple(d["pair"]) for d in defs]
        assert len(set(pairs)) == 8
        assert sum(0 in p for p in pairs) == 4
    assert make_aux_tasks(lab, 8, seed=3, major_tasks=[0], major_pairs=4) == \
        make_aux_tasks(lab, 8, seed=3, major_tasks=[0], major_pairs=4)
    with pytest.raises(ConfigError, match="major_tasks"):
        make_aux_tasks(lab, 2, major_pairs=1)
    with pytest.raises(ConfigError, match="pairs with a major task"):
        make_aux_tasks(lab, 8, major_tasks=[0], major_pairs=5)  # only 4 pairs hold task 0
