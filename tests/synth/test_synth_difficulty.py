"""Difficulty presets, borderline phenotypes, artefacts and the CO-TASK Table 1 prevalences of the generator."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgkit.errors import ConfigError
from ecgkit.synth import synth_cohort
from ecgkit.synth.beats import make_morphology, simulate_beats, sokolow_lyon_mv, _render_wave, _QRS_PRE_S
from ecgkit.synth.difficulty import EASY, HARD, REALISTIC, Difficulty, get_difficulty, misplace_leads, signal_findings
from ecgkit.synth.phenotypes import (LABELS, TABLE1_CARDINALITY, TABLE1_RATIO, check_ratios, parse_ratios,
                                     record_prevalence, sample_patient_findings, sample_record_findings, to_vector)
from ecgkit.synth.render import derive_limb_leads, simulate_record


def test_table1_prevalences_within_sampling_error_at_100000_records() -> None:
    # the ten ratios quoted from CO-TASK Table 1; cardinality the paper's 0.4536
    for label, r in {"LVH": 6.7, "AFL": 171, "LBBB": 138, "IRBBB": 105, "ILBBB": 1843, "VT": 1843, "IVCD": 50,
                     "APC": 39, "VBIG": 125, "3AVB": 2321}.items():
        assert TABLE1_RATIO[label] == r
    assert sum(record_prevalence().values()) == pytest.approx(TABLE1_CARDINALITY)
    rng = np.random.default_rng(11)
    rows = []
    for _ in range(50_000):  # 2 records per patient: 100,000 records after exclusions
        patient = sample_patient_findings(rng)
        rows.extend(to_vector(sample_record_findings(patient, rng)) for _ in range(2))
    counts = np.stack(rows).sum(axis=0)
    target = record_prevalence()
    for j, label in enumerate(LABELS):
        expect = target[label] * 100_000
        # binomial SD with a design effect of 2 (a patient's two records are correlated), 4.5 SD
        assert abs(counts[j] - expect) <= 4.5 * np.sqrt(2 * expect) + 2, (label, counts[j], expect)
    assert counts.sum() / 100_000 == pytest.approx(TABLE1_CARDINALITY, abs=0.01)


def test_user_ratios_override_and_bad_ratios_are_refused() -> None:
    assert parse_ratios("VT=500, 3AVB=1000") == {"VT": 500.0, "3AVB": 1000.0}
    assert parse_ratios(None) is None
    assert record_prevalence({"VT": 99})["VT"] == pytest.approx(0.01)
    assert check_ratios({"VT": 99})["LVH"] == 6.7
    with pytest.raises(ConfigError, match="unknown label 'XYZ'"):
        check_ratios({"XYZ": 3})
    with pytest.raises(ConfigError, match="must be > 0"):
        check_ratios({"VT": 0})
    with pytest.raises(ConfigError, match="must look like"):
        parse_ratios("VT:500")
    with pytest.raises(ConfigError, match="difficulty must be one of"):
        get_difficulty("brutal")
    with pytest.raises(ConfigError, match="borderline"):
        Difficulty("x", borderline=1.5)


def _pr_ms(d: Difficulty, labels: set[str], n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.array([simulate_beats(labels, rng, 10.0, d).pr_s * 1000 for _ in range(n)])


def test_pr_interval_continuum_around_the_1avb_boundary() -> None:
    easy_pos, easy_neg = _pr_ms(EASY, {"1AVB"}, 400), _pr_ms(EASY, set(), 400)
    assert easy_pos.min() >= 240 and easy_neg.max() <= 190  # a clear gap
    pos, neg = _pr_ms(REALISTIC, {"1AVB"}, 2000), _pr_ms(REALISTIC, set(), 2000)
    assert 0.03 < (pos < 200).mean() < 0.2  # some stated 1AVB below the 200 ms criterion ...
    assert 0.01 < (neg > 200).mean() < 0.08  # ... and some unstated above it
    assert (pos > 300).any()


def test_lvh_voltage_and_right_bundle_continua_overlap_beyond_easy() -> None:
    def sl(labels: set[str], d: Difficulty, n: int = 300) -> np.ndarray:
        out = []
        for i in range(n):
            m = make_morphology(labels, np.random.default_rng(i), d, age=55, sex="M")
            out.append(sokolow_lyon_mv(_render_wave(m.qrs[0], 500.0, _QRS_PRE_S, 0.3)))
        return np.array(out)
    assert sl({"LVH"}, EASY).min() > 3.5 > sl(set(), EASY).max()
    lvh, normal = sl({"LVH"}, REALISTIC), sl(set(), REALISTIC)
    assert (lvh < 3.5).any() and (normal > 3.5).any()

    def qrs(labels: set[str], d: Difficulty) -> np.ndarray:
        return np.array([make_morphology(labels, np.random.default_rng(i), d).qrs_ms[0] for i in range(300)])
    assert qrs({"IRBBB"}, EASY).max() < qrs({"RBBB"}, EASY).min()
    assert qrs({"IRBBB"}, REALISTIC).max() > qrs({"RBBB"}, REALISTIC).min()  # IRBBB-to-RBBB continuum


def test_la_ra_reversal_derives_the_swapped_limb_leads() -> None:
    rng = np.random.default_rng(1)
    sim8 = rng.normal(size=(8, 50)).astype(np.float32)
    true12 = derive_limb_leads(sim8)
    swapped = derive_limb_leads(misplace_leads(sim8, "la_ra"))
    # LA/RA reversal: I -> -I, II <-> III, aVR <-> aVL, aVF and the chest leads unchanged
    np.testing.assert_allclose(swapped[0], -true12[0], atol=1e-6)
    np.testing.assert_allclose(swapped[1], true12[2], atol=1e-6)
    np.testing.assert_allclose(swapped[2], true12[1], atol=1e-6)
    np.testing.assert_allclose(swapped[3], true12[4], atol=1e-6)
    np.testing.assert_allclose(swapped[4], true12[3], atol=1e-6)
    np.testing.assert_allclose(swapped[5:], true12[5:], atol=1e-6)
    v = derive_limb_leads(misplace_leads(sim8, "v1_v2"))
    np.testing.assert_allclose(v[6], true12[7])
    np.testing.assert_allclose(v[7], true12[6])


def test_noise_artefacts_and_misplacement_grow_with_difficulty() -> None:
    def stats(d: Difficulty, n: int = 60) -> tuple[float, int]:
        hf, misplaced = [], 0
        for i in range(n):
            rng = np.random.default_rng(i)
            m = make_morphology(set(), rng, d, age=60, sex="F")
            sim = simulate_record(set(), m, rng, fs=250, difficulty=d)
            hf.append(float(np.median(np.abs(np.diff(sim.signal, 2)))))  # muscle-noise scale
            misplaced += sim.measurements["misplaced_leads"] is not None
        return float(np.median(hf)), misplaced
    easy, realistic, hard = stats(EASY), stats(REALISTIC), stats(HARD)
    assert easy[0] < realistic[0] < hard[0]
    assert easy[1] == 0


def test_silent_and_mimic_findings_keep_the_stated_prevalence(tmp_path: Path) -> None:
    prev = {"LVH": 0.13, "VT": 0.0005}
    d = Difficulty("t", silent=0.5, mimic=1.0)
    rng = np.random.default_rng(0)
    shown_pos = [("LVH" in signal_findings({"LVH"}, prev, d, rng)) for _ in range(4000)]
    mimics = [("LVH" in signal_findings(set(), prev, d, rng)) for _ in range(4000)]
    assert np.mean(shown_pos) == pytest.approx(0.5, abs=0.03)
    assert np.mean(mimics) == pytest.approx(0.13 / 0.87, abs=0.02)  # mimic x positives
    assert signal_findings({"LVH"}, prev, EASY, rng) == {"LVH"}
    truth = synth_cohort(12, tmp_path, fs=100, seconds=4, difficulty="hard", seed=3)
    stated = pd.read_parquet(tmp_path / "labels_stated.parquet")
    shown = pd.read_parquet(tmp_path / "labels_signal.parquet")
    pd.testing.assert_frame_equal(truth, stated)  # statements keep the truth; the signal may not
    assert list(shown.columns) == list(truth.columns) and len(shown) == len(truth)


def test_cli_synth_difficulty_and_ratios(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ecgkit.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["synth", "--patients", "3", "--out", str(tmp_path / "a"), "--difficulty", "realistic",
                               "--fs", "100", "--ratios", "VT=50"])
    assert res.exit_code == 0, res.output
    truth = pd.read_parquet(tmp_path / "a" / "truth.parquet")
    assert list(truth.columns) == ["record_id", "patient_id", *LABELS]
    bad = runner.invoke(main, ["synth", "--patients", "3", "--out", str(tmp_path / "b"), "--ratios", "VT:5"])
    assert bad.exit_code != 0 and "must look like 'VT=500,3AVB=1000'" in bad.output
