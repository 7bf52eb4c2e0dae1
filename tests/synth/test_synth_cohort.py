"""synth_cohort: layout, ids, truth table, determinism across workers, statements vs truth, and the
round trip through ecgkit's own readers and labeler (those two need the readers/labels stages merged)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from lxml import etree

from ecgkit.errors import ConfigError
from ecgkit.synth import LABELS, synth_cohort
from ecgkit.synth.phenotypes import (IMBALANCE_RATIO, record_prevalence, resolve_exclusions,
                                     sample_patient_findings, sample_record_findings, to_vector)
from ecgkit.synth.statements import load_phrases

EXPECTED_COLUMNS = ["record_id", "patient_id", *LABELS]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("cohort")
    return out, synth_cohort(30, out, fmt="both", seed=7)


def test_truth_table_layout_and_files(cohort: tuple[Path, pd.DataFrame]) -> None:
    out, truth = cohort
    assert list(truth.columns) == EXPECTED_COLUMNS
    assert all(truth[label].dtype == np.int8 for label in LABELS)
    assert truth["record_id"].is_unique
    on_disk = pd.read_parquet(out / "truth.parquet")
    pd.testing.assert_frame_equal(on_disk.reset_index(drop=True), truth.reset_index(drop=True), check_dtype=False)
    # record_id = path relative to out_dir without suffix, as the scan stage assigns it
    files = sorted(p.relative_to(out).with_suffix("").as_posix()
                   for p in list(out.rglob("*.hea")) + list(out.rglob("*.xml")))
    assert files == sorted(truth["record_id"])
    wf = truth[truth.record_id.str.startswith("wfdb/")]
    mu = truth[truth.record_id.str.startswith("muse/")]
    assert len(wf) == len(mu) and set(wf.record_id.str[5:]) == set(mu.record_id.str[5:])
    first = truth.iloc[0]
    assert first.record_id.endswith("/p000001/r000001") and first.patient_id == "P000001"
    # every patient id matches its folder
    assert (truth.patient_id.str.lower() == truth.record_id.str.split("/").str[1].str.upper().str.lower()).all()
    assert truth.patient_id.nunique() == 30


def test_headers_carry_patient_and_statements(cohort: tuple[Path, pd.DataFrame]) -> None:
    out, truth = cohort
    rid = truth[truth.record_id.str.startswith("wfdb/")].record_id.iloc[0]
    rec = wfdb.rdheader(str(out / rid))
    keys = [c.split(":", 1)[0] for c in rec.comments]
    assert keys[:4] == ["Age", "Sex", "Patient", "Acquired"]
    assert set(keys[4:]) == {"Statement"} and rec.comments[-1].startswith("Statement: Confirmed by ")
    assert rec.comments[2] == f"Patient: {truth.set_index('record_id').loc[rid, 'patient_id']}"
    xml = etree.parse(str(out / rid.replace("wfdb/", "muse/")) + ".xml").getroot()
    wfdb_statements = [c.split(": ", 1)[1] for c in rec.comments[4:]]
    assert [e.text for e in xml.findall("Diagnosis/DiagnosisStatement/StmtText")] == wfdb_statements


def test_same_cohort_for_any_number_of_workers(tmp_path: Path) -> None:
    a = synth_cohort(12, tmp_path / "a", fmt="wfdb", seed=3, workers=1, chunk_patients=4)
    b = synth_cohort(12, tmp_path / "b", fmt="wfdb", seed=3, workers=2, chunk_patients=4)
    pd.testing.assert_frame_equal(a, b)
    for rid in a.record_id[:5]:
        assert (tmp_path / "a" / f"{rid}.dat").read_bytes() == (tmp_path / "b" / f"{rid}.dat").read_bytes()
        assert (tmp_path / "a" / f"{rid}.hea").read_text() == (tmp_path / "b" / f"{rid}.hea").read_text()


def test_label_noise_flips_only_the_statements(tmp_path: Path) -> None:
    truth = synth_cohort(60, tmp_path, fmt="wfdb", seed=1, label_noise=0.1)
    stated = pd.read_parquet(tmp_path / "labels_stated.parquet")
    assert list(stated.columns) == EXPECTED_COLUMNS and (stated.record_id == truth.record_id).all()
    flipped = (stated[list(LABELS)].to_numpy() != truth[list(LABELS)].to_numpy()).mean()
    assert 0.06 < flipped < 0.14  # p = 0.1 per label (VBIG->VPC adds a little)
    clean = synth_cohort(5, tmp_path / "clean", fmt="wfdb", seed=1)
    clean_stated = pd.read_parquet(tmp_path / "clean" / "labels_stated.parquet")
    assert (clean_stated[list(LABELS)].to_numpy() == clean[list(LABELS)].to_numpy()).all()


def test_bad_arguments_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="format"):
        synth_cohort(1, tmp_path, fmt="dicom")
    with pytest.raises(ConfigError, match="label_noise"):
        synth_cohort(1, tmp_path, label_noise=1.5)


def test_prevalences_follow_the_imbalance_ratios() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(20000):
        patient = sample_patient_findings(rng)
        rows.extend(to_vector(sample_record_findings(patient, rng)) for _ in range(2))
    prev = np.stack(rows).mean(axis=0)
    target = record_prevalence()
    for j, label in enumerate(LABELS):
        if IMBALANCE_RATIO[label] <= 100:  # enough positives in 40,000 records for a 30% tolerance
            assert abs(prev[j] - target[label]) < 0.3 * target[label], label
    assert 0.38 < prev.sum() < 0.52  # label cardinality about 0.45


def test_exclusions() -> None:
    assert resolve_exclusions({"AFIB", "AFL", "EAR", "1AVB"}) == {"AFL"}
    assert resolve_exclusions({"RBBB", "IRBBB"}) == {"RBBB"}
    assert resolve_exclusions({"LBBB", "RBBB"}) == {"LBBB"}
    assert resolve_exclusions({"VBIG"}) == {"VBIG", "VPC"}
    assert resolve_exclusions({"3AVB", "1AVB", "2AVB"}) == {"3AVB"}


def test_statements_state_every_true_finding_before_comparison(cohort: tuple[Path, pd.DataFrame]) -> None:
    out, truth = cohort
    phrases = load_phrases()
    all_phrases = {lab: [p.lower() for sect in ("rhythm", "with", "line", "typed")
                         for key, vals in phrases[sect].items() if key.split("_")[0] == lab for p in vals]
                   for lab in LABELS}
    for _, row in truth[truth.record_id.str.startswith("wfdb/")].iterrows():
        comments = wfdb.rdheader(str(out / row.record_id)).comments
        lines = [c.split(": ", 1)[1] for c in comments if c.startswith("Statement: ")]
        current = []
        for line in lines:
            if line.startswith("When compared with") or line.startswith("Confirmed by"):
                break
            current.append(" ".join(line.lower().split()))
        text = " | ".join(current)
        for label in LABELS:
            if row[label]:
                assert any(p in text for p in all_phrases[label]), (row.record_id, label, lines)
        hedged = [ln for ln in current if ln.startswith(("possible", "probable", "consider", "cannot rule out"))]
        full = [p.lower() for vals in phrases["line"].values() for p in vals]
        assert not any(p in h for h in hedged for p in full), hedged


def _macro_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    f1 = []
    for j in range(truth.shape[1]):
        tp = int(((pred[:, j] == 1) & (truth[:, j] == 1)).sum())
        fp = int(((pred[:, j] == 1) & (truth[:, j] == 0)).sum())
        fn = int(((pred[:, j] == 0) & (truth[:, j] == 1)).sum())
        if tp + fp + fn:
            f1.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1))


@pytest.mark.slow
def test_labeler_recovers_truth_from_statements(tmp_path: Path) -> None:
    """Needs the label stage (ecgkit.labels.label_texts) on the branch."""
    from ecgkit.labels import label_texts

    truth = synth_cohort(600, tmp_path, fmt="wfdb", seed=11, workers=2)
    texts = []
    for rid in truth.record_id:
        comments = wfdb.rdheader(str(tmp_path / rid)).comments
        texts.append([c.split(": ", 1)[1] for c in comments if c.startswith("Statement: ")])
    pred = label_texts(texts)
    assert _macro_f1(pred[list(LABELS)].to_numpy(), truth[list(LABELS)].to_numpy()) >= 0.98


def test_records_read_back_through_ecgkit_readers(cohort: tuple[Path, pd.DataFrame]) -> None:
    """Needs the WFDB and MUSE readers (ecgkit.io.wfdb / ecgkit.io.muse) on the branch."""
    from ecgkit.io import read_record

    out, truth = cohort
    rid = truth.record_id[truth.record_id.str.startswith("wfdb/")].iloc[0]
    w = read_record(out / f"{rid}.hea")
    m = read_record(out / f"{rid.replace('wfdb/', 'muse/')}.xml")
    assert w.signal.shape == m.signal.shape == (12, 5000)
    assert w.patient_id == m.patient_id == truth.set_index("record_id").loc[rid, "patient_id"]
    # the MUSE reader leaves out the overreader's "Confirmed by" line; everything else is the same
    assert [t for t in w.statements if not t.startswith("Confirmed by")] == [
        t for t in m.statements if not t.startswith("Confirmed by")]
    assert len(w.statements) >= 2
    assert w.acquired_at == m.acquired_at and w.sex == m.sex
    # WFDB keeps 1 uV, MUSE 4.88 uV per bit on 8 leads with III/aVR/aVL/aVF derived from I and II
    np.testing.assert_allclose(m.signal, w.signal, atol=2 * 4.88e-3 + 1e-3)
