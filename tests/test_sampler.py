"""Tests of the task-aware imbalance sampler, its numba kernels and per-class oversampling.

The statistical tests use fixed seeds, so they are deterministic: a failure is a real change, not
bad luck. Their thresholds (p > 1e-3, 4 standard deviations) were chosen so that a correct sampler
passes for all but a tiny fraction of seeds.
"""
from __future__ import annotations

import json
import logging
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from ecgkit import _sampler_kernels as K
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.sampler import (LOG_WEIGHT_FLOOR, TaskAwareSampler, TaskBatchDataset, class_weights,
                            collate_task_batch, major_task_weights, oversample_indices)

# ECG-P18 negatives per positive (the brief's imbalance ratios), in task order.
P18_RATIOS = [6.7, 100, 12, 60, 100, 30, 25, 50, 40, 500, 20, 700, 2321, 150, 300, 1000, 15, 12]
N_RECORDS = 300_000


@pytest.fixture(scope="module")
def p18_labels() -> np.ndarray:
    """(300000, 18) int8 labels with the ECG-P18 prevalences and 1% unknown (-1) entries."""
    rng = np.random.default_rng(20240518)
    lab = np.stack([(rng.random(N_RECORDS) < 1.0 / (1.0 + r)).astype(np.int8) for r in P18_RATIOS], axis=1)
    lab[rng.random(lab.shape) < 0.01] = -1
    return lab


@pytest.fixture(scope="module")
def p18_sampler(p18_labels: np.ndarray) -> TaskAwareSampler:
    return TaskAwareSampler(p18_labels, 256, seed=7)


def _small_labels(seed: int = 3, n: int = 60, t: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = (rng.random((n, t)) < 0.3).astype(np.int8)
    lab[rng.random((n, t)) < 0.2] = -1
    lab[0, :] = 1  # every task has a known positive and negative
    lab[1, :] = 0
    return lab


def _python_splitmix(key: int, counter: int) -> int:
    """SplitMix64 in Python integers, written from Vigna's splitmix64.c, independent of the module."""
    m = (1 << 64) - 1
    z = (key + counter * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


# --- kernels against references -------------------------------------------------------------------

def test_splitmix_matches_published_sequence() -> None:
    # Golden values: the first three outputs of Vigna's splitmix64.c seeded with x = 0 (also the
    # test vector of Java's SplittableRandom), i.e. counters 1, 2, 3 of the stream with key 0.
    got = K.splitmix64_reference(0, np.array([1, 2, 3], dtype=np.uint64))
    assert got.tolist() == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    key = 0x0123456789ABCDEF
    counters = np.array([0, 5, 1 << 40, (1 << 64) - 1], dtype=np.uint64)
    expected = [_python_splitmix(key, int(c)) for c in counters]
    assert K.splitmix64_reference(key, counters).tolist() == expected


def test_alias_kernel_matches_reference_and_target() -> None:
    rng = np.random.default_rng(1)
    for k in (1, 2, 3, 18, 50):
        p = rng.random(k) ** 3
        p[rng.random(k) < 0.3] = 0.0
        if p.sum() == 0:
            p[0] = 1.0
        p /= p.sum()
        prob, alias = K._build_alias(p)
        ref_prob, ref_alias = K.build_alias_reference(p)
        np.testing.assert_array_equal(prob, ref_prob)
        np.testing.assert_array_equal(alias, ref_alias)
        np.testing.assert_allclose(K.alias_implied_probs(prob, alias), p, atol=1e-12)
        assert prob.dtype == np.float64 and alias.dtype == np.int64


@pytest.mark.parametrize("member_dtype", [np.int32, np.int64])
def test_draw_kernel_matches_reference(member_dtype: type) -> None:
    lab = _small_labels()
    s = TaskAwareSampler(lab, 7, seed=11, task_weights=[1.0, 2.0, 0.5, 3.0])
    key = s.epoch_key(2)
    ids = np.array([0, 1, 5, 1000, 123456], dtype=np.int64)
    members = s._members.astype(member_dtype)
    # both draw paths are exercised: rejection on bit masks (-1) and explicit lists (>= 0)
    assert (s._class_start == -1).any() and (s._class_start >= 0).any()
    tasks = np.empty(len(ids), np.int64)
    idx = np.empty((len(ids), 7), np.int64)
    K._draw_batches(key, ids, 7, s._task_prob, s._task_alias, s._pos_prob, s._class_start,
                    s._class_count, members, s._class_bits, s.n_records, tasks, idx)
    ref_tasks, ref_idx = K.draw_batches_reference(int(key), ids, 7, s._task_prob, s._task_alias, s._pos_prob,
                                                  s._class_start, s._class_count, s._members,
                                                  s._class_bits, s.n_records)
    np.testing.assert_array_equal(tasks, ref_tasks)
    np.testing.assert_array_equal(idx, ref_idx)
    # the public draw() is the same kernel
    pub_tasks, pub_idx = s.draw(2, ids)
    np.testing.assert_array_equal(pub_tasks, ref_tasks)
    np.testing.assert_array_equal(pub_idx, ref_idx)


# --- weights ------------------------------------------------------------------------------------

def test_class_weights_by_name_and_log_floor() -> None:
    n = np.array([1.0, 2.0, 10.0, 1000.0])
    np.testing.assert_allclose(class_weights(n, "log"), [LOG_WEIGHT_FLOOR, math.log(2) / 2, math.log(10) / 10,
                                                         math.log(1000) / 1000])
    assert LOG_WEIGHT_FLOOR == pytest.approx(math.log(2) / 2)
    np.testing.assert_allclose(class_weights(n, "inverse"), 1.0 / n)
    np.testing.assert_allclose(class_weights(n, "sqrt"), 1.0 / np.sqrt(n))
    np.testing.assert_allclose(class_weights(n, "none"), np.ones(4))
    np.testing.assert_allclose(class_weights(n, lambda c: c ** -2.0), n ** -2.0)
    with pytest.raises(ConfigError, match="weight_fn must be one of"):
        class_weights(n, "cubic")
    with pytest.raises(ConfigError, match="finite non-negative"):
        class_weights(n, lambda c: -c)


def test_singleton_class_is_drawable_under_log() -> None:
    lab = np.zeros((50, 1), np.int8)
    lab[17, 0] = 1  # one positive: log(1)/1 = 0 would make it undrawable
    s = TaskAwareSampler(lab, 64, seed=0)
    expected_p1 = LOG_WEIGHT_FLOOR / (LOG_WEIGHT_FLOOR + math.log(49))
    assert s.class_probs[0, 1] == pytest.approx(expected_p1)
    _, idx = s.draw(0, np.arange(200))
    assert (idx == 17).mean() == pytest.approx(expected_p1, abs=4 * math.sqrt(expected_p1 / idx.size))


# --- statistics on the real-shaped label matrix -------------------------------------------------------

def _drawn(sampler: TaskAwareSampler, labels: np.ndarray, n_batches: int, epoch: int = 0):
    tasks, idx = sampler.draw(epoch, np.arange(n_batches))
    drawn_labels = labels[idx, tasks[:, None]]  # (n_batches, batch_size): label of each draw for its task
    return tasks, idx, drawn_labels


def test_class_frequencies_match_log_weights_chi_square(p18_labels: np.ndarray,
                                                        p18_sampler: TaskAwareSampler) -> None:
    lab = p18_labels
    n_pos = (lab == 1).sum(axis=0)
    n_neg = (lab == 0).sum(axis=0)
    # w(n) = log(n)/n per record, so class mass n_c w(n_c) = log(n_c)
    expected_p1 = np.log(n_pos) / (np.log(n_pos) + np.log(n_neg))
    np.testing.assert_allclose(p18_sampler.class_probs[:, 1], expected_p1, rtol=1e-12)

    tasks, idx, drawn = _drawn(p18_sampler, lab, 2000)
    assert not (drawn == -1).any()  # masked labels never drawn for their task
    chi2 = 0.0
    for t in range(18):
        d = drawn[tasks == t].ravel()
        n = d.size
        assert n > 20_000
        obs = np.array([(d == 0).sum(), (d == 1).sum()])
        exp = n * np.array([1 - expected_p1[t], expected_p1[t]])
        chi2 += ((obs - exp) ** 2 / exp).sum()
    # 18 independent binomial tests, one degree of freedom each
    assert stats.chi2.sf(chi2, df=18) > 1e-3
    # and not merely prevalence: 3AVB (1:2321) positives make up ~28% of its draws
    assert (drawn[tasks == 12] == 1).mean() > 0.25

    # tasks uniform
    task_counts = np.bincount(tasks, minlength=18)
    assert stats.chisquare(task_counts).pvalue > 1e-3

    # records uniform within a class: the 3AVB positives
    d_idx = idx[tasks == 12].ravel()
    pos_records = np.flatnonzero(lab[:, 12] == 1)
    counts = np.array([(d_idx == r).sum() for r in pos_records])
    assert counts.sum() == (drawn[tasks == 12] == 1).sum()
    assert stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("weight_fn", ["inverse", "sqrt", "none", "callable"])
def test_class_frequencies_other_weight_fns(p18_labels: np.ndarray, weight_fn: str) -> None:
    lab = p18_labels
    n1 = (lab == 1).sum(axis=0).astype(float)
    n0 = (lab == 0).sum(axis=0).astype(float)
    fn = (lambda c: c ** -0.75) if weight_fn == "callable" else weight_fn
    mass = {"inverse": (np.ones(18), np.ones(18)), "sqrt": (np.sqrt(n0), np.sqrt(n1)),
            "none": (n0, n1), "callable": (n0 ** 0.25, n1 ** 0.25)}[weight_fn]
    expected_p1 = mass[1] / (mass[0] + mass[1])
    s = TaskAwareSampler(lab, 256, seed=3, weight_fn=fn)
    np.testing.assert_allclose(s.class_probs[:, 1], expected_p1, rtol=1e-12)
    tasks, _, drawn = _drawn(s, lab, 600)
    assert not (drawn == -1).any()
    chi2 = 0.0
    for t in range(18):
        d = drawn[tasks == t].ravel()
        obs = np.array([(d == 0).sum(), (d == 1).sum()])
        exp = d.size * np.array([1 - expected_p1[t], expected_p1[t]])
        chi2 += ((obs - exp) ** 2 / exp).sum()
    assert stats.chi2.sf(chi2, df=18) > 1e-3


def test_record_weights_equal_class_weight_per_record(p18_labels: np.ndarray,
                                                      p18_sampler: TaskAwareSampler) -> None:
    w = p18_sampler.record_weights(12)
    y = p18_labels[:, 12]
    assert w.shape == (N_RECORDS,) and w.dtype == np.float64
    assert w.sum() == pytest.approx(1.0)
    assert (w[y == -1] == 0).all()
    n1, n0 = (y == 1).sum(), (y == 0).sum()
    ratio = (math.log(n1) / n1) / (math.log(n0) / n0)  # w(n_1) / w(n_0)
    assert w[y == 1][0] / w[y == 0][0] == pytest.approx(ratio)


def test_records_uniform_within_rejection_drawn_class() -> None:
    rng = np.random.default_rng(12)
    lab = (rng.random((400, 1)) < 0.15).astype(np.int8)
    lab[rng.random(400) < 0.1, 0] = -1
    s = TaskAwareSampler(lab, 500, seed=2)
    assert s._class_start[0, 0] == -1 and s._class_start[0, 1] >= 0  # negatives by rejection
    tasks, idx = s.draw(0, np.arange(400))
    neg = np.flatnonzero(lab[:, 0] == 0)
    counts = np.bincount(idx.ravel(), minlength=400)
    assert counts[lab[:, 0] == -1].sum() == 0
    assert counts[neg].sum() == pytest.approx(idx.size * s.class_probs[0, 0], rel=0.02)
    assert stats.chisquare(counts[neg]).pvalue > 1e-3
    assert stats.chisquare(counts[lab[:, 0] == 1]).pvalue > 1e-3


def test_heavily_masked_task_never_draws_unknown() -> None:
    rng = np.random.default_rng(5)
    lab = (rng.random((5000, 2)) < 0.1).astype(np.int8)
    lab[rng.random(5000) < 0.95, 1] = -1
    s = TaskAwareSampler(lab, 128, seed=1, task_weights=[0.0, 1.0])
    tasks, idx = s.draw(0, np.arange(300))
    assert (tasks == 1).all()
    assert (lab[idx, 1] != -1).all()
    known = np.flatnonzero(lab[:, 1] != -1)
    assert np.isin(idx, known).all()
    assert len(np.unique(idx)) > 0.9 * known.size  # and every known record is reachable


# --- determinism, ranks, resume -------------------------------------------------------------------

def _stream(sampler: TaskAwareSampler, n: int) -> list[tuple[int, list[int]]]:
    out = []
    for task, idx in sampler:
        out.append((task, idx.tolist()))
        if len(out) == n:
            break
    return out


def test_same_seed_same_stream_and_types() -> None:
    lab = _small_labels(n=400)
    a = _stream(TaskAwareSampler(lab, 16, seed=42), 30)
    b = _stream(TaskAwareSampler(lab, 16, seed=42), 30)
    c = _stream(TaskAwareSampler(lab, 16, seed=43), 30)
    assert a == b
    assert a != c
    task, idx = next(iter(TaskAwareSampler(lab, 16, seed=42)))
    assert isinstance(task, int) and idx.dtype == np.int64 and idx.shape == (16,)
    assert (task, idx.tolist()) == a[0]


def test_epochs_differ_and_iteration_advances_epoch() -> None:
    lab = _small_labels(n=400)
    s = TaskAwareSampler(lab, 16, seed=1)
    assert len(s) == math.ceil(400 / 16) == 25
    first = [(t, i.tolist()) for t, i in s]
    assert len(first) == 25 and s.epoch == 1
    second = [(t, i.tolist()) for t, i in s]
    assert len(second) == 25 and s.epoch == 2
    assert first != second
    s.set_epoch(0)
    assert [(t, i.tolist()) for t, i in s] == first


def test_ranks_disjoint_and_union_equals_single_rank() -> None:
    lab = _small_labels(n=900)
    world = 3
    ranks = [TaskAwareSampler(lab, 10, seed=9, rank=r, world_size=world) for r in range(world)]
    assert all(len(s) == math.ceil(900 / (10 * world)) == 30 for s in ranks)
    streams = [[(t, i.tolist()) for t, i in s] for s in ranks]
    assert streams[0] != streams[1] and streams[1] != streams[2]
    assert all(a[1] != b[1] for a, b in zip(streams[0], streams[1]))
    # the ranks together draw exactly what one rank with 3x the batches draws, interleaved
    single = [(t, i.tolist()) for t, i in TaskAwareSampler(lab, 10, seed=9, batches_per_epoch=90)]
    interleaved = [streams[g % world][g // world] for g in range(90)]
    assert interleaved == single
    # so the ranks are disjoint slices of one stream: no batch of the single stream is drawn twice
    # (batches of 10 out of 900 records: equal batches would only come from shared counters)
    assert len({tuple(i) for _, i in single}) == 90


def test_state_dict_resumes_exact_stream_mid_epoch_and_across_epochs() -> None:
    lab = _small_labels(n=500)
    ref = TaskAwareSampler(lab, 8, seed=5, batches_per_epoch=12)
    it = iter(ref)
    for _ in range(7):
        next(it)
    state = ref.state_dict()
    assert state["epoch"] == 0 and state["batch"] == 7
    state = json.loads(json.dumps(state))  # checkpoint-safe
    tail = [(t, i.tolist()) for t, i in it] + _stream(ref, 12)  # rest of epoch 0, then epoch 1
    resumed = TaskAwareSampler(lab, 8, seed=5, batches_per_epoch=12)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)  # the usual loop calls set_epoch(epoch); same epoch keeps the position
    got = [(t, i.tolist()) for t, i in resumed] + _stream(resumed, 12)
    assert got == tail
    assert len(tail) == 5 + 12

    other = TaskAwareSampler(lab, 8, seed=6, batches_per_epoch=12)
    with pytest.raises(ConfigError, match="seed=5"):
        other.load_state_dict(state)


def test_end_of_epoch_state_resumes_at_next_epoch() -> None:
    lab = _small_labels(n=100)
    s = TaskAwareSampler(lab, 10, seed=1)
    it = iter(s)
    for _ in range(len(s)):
        next(it)  # consumer stops exactly at the end without exhausting the generator
    state = s.state_dict()
    nxt = TaskAwareSampler(lab, 10, seed=1)
    nxt.load_state_dict(state)
    expected = TaskAwareSampler(lab, 10, seed=1)
    expected.set_epoch(1)
    assert [(t, i.tolist()) for t, i in nxt] == [(t, i.tolist()) for t, i in expected]


# --- tasks without usable records, task weights, errors -----------------------------------------------

def test_unusable_tasks_are_skipped_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    lab = _small_labels(n=200, t=4)
    lab[:, 1] = -1  # no known label
    lab[:, 3] = np.where(lab[:, 3] == -1, -1, 0)  # negatives only
    with caplog.at_level(logging.WARNING, logger="ecgkit.sampler"):
        s = TaskAwareSampler(lab, 16, seed=0)
    assert "[1, 3]" in caplog.text
    np.testing.assert_allclose(s.task_probs, [0.5, 0.0, 0.5, 0.0])
    assert s.usable_tasks.tolist() == [0, 2]
    tasks, _ = s.draw(0, np.arange(500))
    assert set(tasks.tolist()) == {0, 2}

    lab[:, [0, 2]] = -1
    with pytest.raises(ConfigError, match="no task can be drawn"):
        TaskAwareSampler(lab, 16)


def test_major_task_weights_shift_task_frequencies(p18_labels: np.ndarray) -> None:
    w = major_task_weights(18, [0, 2, 6], major_weight=5.0)
    assert w.tolist() == [5.0, 1.0, 5.0, 1, 1, 1, 5.0] + [1.0] * 11
    s = TaskAwareSampler(p18_labels, 32, seed=2, task_weights=w)
    np.testing.assert_allclose(s.task_probs, w / w.sum())
    tasks, _ = s.draw(0, np.arange(20_000))
    counts = np.bincount(tasks, minlength=18)
    assert stats.chisquare(counts, counts.sum() * w / w.sum()).pvalue > 1e-3
    with pytest.raises(ConfigError, match="18 finite non-negative"):
        TaskAwareSampler(p18_labels, 32, task_weights=[1.0, 2.0])
    with pytest.raises(ConfigError, match="major_tasks"):
        major_task_weights(18, [18])


def test_bad_labels_and_arguments_raise() -> None:
    lab = _small_labels()
    bad = lab.copy()
    bad[4, 2] = 2
    with pytest.raises(SchemaError, match="row 4, task 2 has 2"):
        TaskAwareSampler(bad, 8)
    with pytest.raises(SchemaError, match="integer"):
        TaskAwareSampler(lab.astype(float), 8)
    with pytest.raises(SchemaError, match=r"\(N, T\)"):
        TaskAwareSampler(lab[:, 0], 8)
    with pytest.raises(ConfigError, match="batch_size"):
        TaskAwareSampler(lab, 0)
    with pytest.raises(ConfigError, match="rank"):
        TaskAwareSampler(lab, 8, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="weight_fn"):
        TaskAwareSampler(lab, 8, weight_fn="median")


# --- PyTorch integration and the import wall -------------------------------------------------------

class _ArrayDataset:
    """Minimal stand-in for ShardDataset: get_batch returns the records' rows."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.x[i]

    def get_batch(self, idx: np.ndarray) -> np.ndarray:
        return self.x[np.asarray(idx)]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_batch_sampler_gives_same_stream(num_workers: int) -> None:
    from torch.utils.data import DataLoader

    lab = _small_labels(n=300)
    data = np.arange(300 * 2).reshape(300, 2)
    loader = DataLoader(TaskBatchDataset(_ArrayDataset(data)),
                        batch_sampler=TaskAwareSampler(lab, 12, seed=4),
                        collate_fn=collate_task_batch, num_workers=num_workers)
    got = [(task, batch.tolist()) for task, batch in loader]
    direct = [(task, data[idx].tolist()) for task, idx in TaskAwareSampler(lab, 12, seed=4)]
    assert len(got) == len(loader) == 25
    assert got == direct


def test_iteration_inside_workers_partitions_the_stream() -> None:
    from torch.utils.data import DataLoader, IterableDataset

    lab = _small_labels(n=400)

    class Stream(IterableDataset):
        def __iter__(self):
            for task, idx in TaskAwareSampler(lab, 10, seed=8):
                yield task, idx.tolist()

    got = list(DataLoader(Stream(), batch_size=None, num_workers=2))
    got = [(int(t), [int(v) for v in i]) for t, i in got]
    main = [(t, i.tolist()) for t, i in TaskAwareSampler(lab, 10, seed=8)]
    assert len(got) == len(main) == 40
    # worker w yields batches b % 2 == w; the loader alternates workers, so the merged stream is
    # the main-process stream in order
    assert got == main


def test_modules_import_neither_torch_nor_h5py() -> None:
    # ARCHITECTURE's wall: labels, split, sampler, cotask and metrics work on arrays and tables only
    code = ("import sys, ecgkit.sampler, ecgkit.cotask, ecgkit.split, ecgkit.metrics, ecgkit.labels; "
            "bad = [m for m in ('torch', 'h5py') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --- UCSF-style oversampling ---------------------------------------------------------------------------

def _class_counts(lab: np.ndarray, idx: np.ndarray) -> np.ndarray:
    sub = lab[idx]
    return np.stack([(sub == 0).sum(axis=0), (sub == 1).sum(axis=0)], axis=1)  # (T, 2)


def test_oversample_duplicates_until_each_class_has_k(p18_labels: np.ndarray) -> None:
    lab = p18_labels[:30_000]
    k = 500
    out = oversample_indices(lab, k, seed=1)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out[:30_000], np.arange(30_000))  # every record once, first
    counts = _class_counts(lab, out)
    present = _class_counts(lab, np.arange(30_000)) > 0
    assert (counts[present] >= k).all()
    # cycling: within the copies added for 3AVB positives no record is copied twice before all once
    pos = np.flatnonzero(lab[:, 12] == 1)
    assert pos.size < k
    added = out[30_000:]
    copies = np.bincount(added[np.isin(added, pos)], minlength=30_000)[pos]
    assert copies.max() - copies.min() <= 1
    np.testing.assert_array_equal(out, oversample_indices(lab, k, seed=1))
    assert not np.array_equal(out, oversample_indices(lab, k, seed=2))


def test_oversample_subset_mode_adds_distinct_records_until_exhausted(p18_labels: np.ndarray) -> None:
    lab = p18_labels[:30_000]
    k = 50
    out = oversample_indices(lab, k, seed=3, base_size=2_000)
    assert np.unique(out).size == out.size  # no duplicates
    assert (np.diff(out[:2_000]) > 0).all()
    counts = _class_counts(lab, out)
    available = _class_counts(lab, np.arange(30_000))
    # each class reaches k, or every record of the class is in (exhausted)
    assert ((counts >= k) | (counts == available)).all()
    assert (counts[12, 1] == available[12, 1]) and available[12, 1] < k  # 3AVB positives exhausted
    with pytest.raises(ConfigError, match="base_size"):
        oversample_indices(lab, k, base_size=30_001)
