"""Tests of the split stage on the real PTB-XL fixture (500 records, 466 patients).

Golden values: the patient ids and stand-in labels come from ``ptbxl_database.csv`` (see
``tests/ptbxl_cohort.py``); expected counts below are computed from that CSV in the test itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgkit.errors import ConfigError, SchemaError
from ecgkit.split import ECG_P18, SPLITS, _iterative_stratification, audit, patient_keys, split_by_patient
from ptbxl_cohort import ptbxl_manifest


@pytest.fixture(scope="module")
def manifest(ptbxl_dir):
    return ptbxl_manifest(ptbxl_dir)


def _patients_in_several_splits(df: pd.DataFrame) -> list[str]:
    ok = df[df["split"].notna()]
    n = ok.groupby("patient_id")["split"].nunique()
    return n[n > 1].index.tolist()


def test_stratified_split_groups_patients_and_hits_7_1_2(manifest):
    out = split_by_patient(manifest, ratios=(7, 1, 2), seed=0)
    assert list(out.columns) == [*manifest.columns, "split"]
    assert out["split"].dtype == "string"
    assert set(out["split"]) == set(SPLITS)
    assert _patients_in_several_splits(out) == []
    frac = out["split"].value_counts(normalize=True)
    for name, target in zip(SPLITS, (0.7, 0.1, 0.2)):
        assert abs(frac[name] - target) <= 0.02, (name, frac[name])
    # the input is not modified
    assert "split" not in manifest.columns


def test_stratified_split_keeps_label_prevalence_close(manifest):
    out = split_by_patient(manifest, seed=0)
    rep = audit(out)
    # LVH: 35 of 500 records (7.0 %) in the CSV; IRBBB 20 (4.0 %); each split within 1.5 pp
    assert rep.prevalence["LVH"]["all"] == pytest.approx(35 / 500)
    assert rep.prevalence["IRBBB"]["all"] == pytest.approx(20 / 500)
    for name in ("LVH", "IRBBB"):
        for s in SPLITS:
            assert abs(rep.prevalence[name][s] - rep.prevalence[name]["all"]) <= 0.015, (name, s)
    # every split gets at least one record of each label with >= 10 positives
    for name in manifest.columns.intersection(ECG_P18):
        if (manifest[name] == 1).sum() >= 10:
            assert all((out.loc[out["split"] == s, name] == 1).any() for s in SPLITS), name


def test_same_seed_same_split_regardless_of_row_order(manifest):
    a = split_by_patient(manifest, seed=3)
    shuffled = manifest.sample(frac=1.0, random_state=1)
    b = split_by_patient(shuffled, seed=3).set_index("record_id").loc[a["record_id"]]
    assert (a["split"].to_numpy() == b["split"].to_numpy()).all()
    c = split_by_patient(manifest, seed=4)
    assert (a["split"] != c["split"]).any()


def test_hash_split_never_moves_a_patient_when_the_cohort_grows(manifest):
    small = split_by_patient(manifest.iloc[:300], method="hash")
    big = split_by_patient(manifest, method="hash")
    merged = small[["record_id", "split"]].merge(big[["record_id", "split"]], on="record_id")
    assert len(merged) == 300
    assert (merged["split_x"] == merged["split_y"]).all()
    assert _patients_in_several_splits(big) == []
    # a different key gives a different assignment
    other = split_by_patient(manifest, method="hash", key="site-secret")
    assert (other["split"] != big["split"]).any()


def test_records_without_patient_id_count_as_their_own_patient(manifest):
    df = manifest.copy()
    df.loc[:99, "patient_id"] = pd.NA
    out = split_by_patient(df, seed=0)
    rep = audit(out)
    assert rep.n_without_patient_id == 100
    assert out.loc[:99, "split"].notna().all()
    # 100 one-record pseudo-patients plus the distinct ids among the other 400 records
    expected = 100 + df.loc[100:, "patient_id"].nunique()
    assert sum(rep.patients.values()) == expected


def test_quarantined_records_get_no_split(manifest):
    df = manifest.copy()
    df.loc[[0, 5], "status"] = "quarantined"
    df.loc[[0, 5], "reason"] = "scan: unreadable"
    out = split_by_patient(df, seed=0)
    assert out.loc[[0, 5], "split"].isna().all()
    assert out["split"].notna().sum() == 498
    assert audit(out).n_quarantined == 2


def test_stratified_without_label_columns_is_a_grouped_random_split(manifest):
    df = manifest.drop(columns=list(manifest.columns.intersection(ECG_P18)))
    out = split_by_patient(df, seed=0)
    assert _patients_in_several_splits(out) == []
    rep = audit(out)
    assert rep.prevalence == {}
    assert rep.ratios_ok and rep.max_ratio_drift <= 0.02


def test_audit_raises_on_leakage_naming_the_patient(manifest):
    out = split_by_patient(manifest, seed=0)
    pid = manifest["patient_id"].value_counts().index[0]  # a patient with several records
    rows = out.index[out["patient_id"] == pid]
    assert len(rows) >= 2
    out.loc[rows[0], "split"] = "train"
    out.loc[rows[1], "split"] = "test"
    with pytest.raises(SchemaError, match=str(pid)):
        audit(out)


def test_audit_raises_when_a_usable_record_has_no_split(manifest):
    out = split_by_patient(manifest, seed=0)
    out.loc[7, "split"] = pd.NA
    with pytest.raises(SchemaError, match=out.loc[7, "record_id"]):
        audit(out)


def test_audit_reports_ratio_drift_without_raising(manifest, caplog):
    out = split_by_patient(manifest.iloc[:20], seed=0)
    rep = audit(out, ratios=(0.2, 0.4, 0.4), tolerance=0.02)
    assert not rep.ratios_ok
    assert rep.max_ratio_drift > 0.02
    assert "drift" in caplog.text
    assert sum(rep.counts.values()) == 20
    unchecked = audit(out, ratios=None)  # no target: no drift, no warning
    assert unchecked.ratios_ok and unchecked.max_ratio_drift == 0.0


def test_iterative_stratification_splits_a_single_label_exactly():
    # 10 one-record patients all positive for label 0, 10 negatives: 7/1/2 of each
    weight = np.ones(20, dtype=np.int64)
    pos = np.zeros((20, 1), dtype=np.int64)
    pos[:10, 0] = 1
    got = _iterative_stratification(weight, pos, np.array([0.7, 0.1, 0.2]), np.random.default_rng(0))
    assert np.bincount(got[:10], minlength=3).tolist() == [7, 1, 2]
    assert np.bincount(got[10:], minlength=3).tolist() == [7, 1, 2]


def test_invalid_ratios_and_method_raise_config_error(manifest):
    with pytest.raises(ConfigError, match="ratios"):
        split_by_patient(manifest, ratios=(0.7, 0.3))
    with pytest.raises(ConfigError, match="method"):
        split_by_patient(manifest, method="random")  # type: ignore[arg-type]


def test_patient_keys_are_keyed_hashes_not_ids(manifest):
    keys = patient_keys(manifest)
    assert keys.shape == (500,)
    assert all(len(k) == 32 for k in keys)
    assert not set(keys) & set(manifest["patient_id"])
    # same patient -> same key; a different key -> different keys
    same = manifest.groupby("patient_id").indices
    multi = next(v for v in same.values() if len(v) > 1)
    assert len(set(keys[multi])) == 1
    assert (patient_keys(manifest, "secret") != keys).all()


def test_split_command_writes_the_split_and_reports_the_audit(manifest, tmp_path):
    from click.testing import CliRunner

    from ecgkit.cli import main
    from ecgkit.manifest import read_manifest, write_manifest

    cohort = tmp_path / "cohort"
    df = manifest.copy()
    df.loc[:9, "patient_id"] = pd.NA
    write_manifest(df, cohort)
    result = CliRunner().invoke(main, ["split", str(cohort), "--ratios", "7:1:2", "--seed", "0"])
    assert result.exit_code == 0, result.output
    out = read_manifest(cohort)
    rep = audit(out)  # the audit the command ran on what it wrote
    expected = split_by_patient(df, ratios=(7, 1, 2), seed=0)
    assert out["split"].tolist() == expected["split"].tolist()
    assert _patients_in_several_splits(out) == []
    # the printed summary is the audit: counts per split, records without patient id, prevalence
    assert rep.summary() in result.output
    assert f"train {rep.counts['train']}, val {rep.counts['val']}, test {rep.counts['test']}" in result.output
    assert "10 without patient id" in result.output
    lvh = [ln for ln in result.output.splitlines() if ln.startswith("LVH ")]
    assert lvh and f"{100 * rep.prevalence['LVH']['val']:6.2f}" in lvh[0]


# --- patient-level k-fold ----------------------------------------------------------------------------

def test_kfold_puts_each_patient_in_one_fold_with_balanced_sizes_and_prevalence(manifest):
    from ecgkit.split import audit_folds, split_kfold

    out = split_kfold(manifest, folds=5, seed=0)
    assert list(out.columns) == [*manifest.columns, "fold", "split"]
    ok = out["status"] == "ok"
    assert out.loc[ok, "fold"].notna().all() and set(out.loc[ok, "fold"].astype(int)) == set(range(5))
    # no patient in two folds (checked directly, and by the audit)
    per_patient = out[ok & out["patient_id"].notna()].groupby("patient_id")["fold"].nunique()
    assert (per_patient == 1).all()
    rep = audit_folds(out)
    assert rep.leaked_patients == () and sum(rep.counts.values()) == int(ok.sum())
    assert max(rep.counts.values()) - min(rep.counts.values()) <= 0.05 * ok.sum()
    # each label's positives spread over the folds like the cohort's (rarest first)
    for name in ("LVH", "IRBBB"):
        pos = out.loc[ok & (out[name] == 1), "fold"].value_counts()
        assert pos.max() - pos.min() <= max(2, 0.1 * pos.sum()), (name, pos.to_dict())
    # fold 0 is test, fold 1 val, the rest train; the same seed gives the same folds
    f = out["fold"].astype("Int8")
    assert (out.loc[f == 0, "split"] == "test").all() and (out.loc[f == 1, "split"] == "val").all()
    assert (out.loc[f >= 2, "split"] == "train").all()
    shuffled = split_kfold(manifest.sample(frac=1.0, random_state=3), folds=5, seed=0).loc[manifest.index]
    assert shuffled["fold"].tolist() == out["fold"].tolist()


def test_kfold_audit_raises_on_a_patient_in_two_folds(manifest):
    from ecgkit.split import audit_folds, select_fold, split_kfold

    out = split_kfold(manifest, folds=4, seed=1)
    moved = select_fold(out, 3)
    f = moved["fold"].astype("Int8")
    assert (moved.loc[f == 3, "split"] == "test").all() and (moved.loc[f == 0, "split"] == "val").all()
    pid = out["patient_id"].dropna().value_counts().index[0]  # a patient with several records
    rows = out.index[out["patient_id"] == pid]
    bad = out.copy()
    bad.loc[rows[0], "fold"] = (int(out.loc[rows[1], "fold"]) + 1) % 4
    with pytest.raises(SchemaError, match=f"more than one fold.*{pid}"):
        audit_folds(bad)
    with pytest.raises(ConfigError, match="folds must be"):
        split_kfold(manifest, folds=2)
    with pytest.raises(ConfigError, match="test_fold"):
        select_fold(out, 4)


def test_split_command_kfold(manifest, tmp_path):
    from click.testing import CliRunner

    from ecgkit.cli import main
    from ecgkit.manifest import read_manifest, write_manifest
    from ecgkit.split import split_kfold

    cohort = tmp_path / "cohort"
    write_manifest(manifest, cohort)
    result = CliRunner().invoke(main, ["split", str(cohort), "--method", "kfold", "--folds", "5", "--fold", "2"])
    assert result.exit_code == 0, result.output
    out = read_manifest(cohort)
    want = split_kfold(manifest, folds=5, seed=0, test_fold=2)
    assert out["fold"].astype(int).tolist() == want["fold"].astype(int).tolist()
    assert out["split"].tolist() == want["split"].tolist()
    assert "no patient in two folds; fold 2 = test, fold 3 = val" in result.output
