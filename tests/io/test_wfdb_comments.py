"""WFDB header comment conventions of PhysioNet databases, on copies of a real PTB-XL record.

Each test appends the comment lines a database writes (LUDB, INCART, the Challenges, PTB
Diagnostic, MIT-BIH) to PTB-XL record 1's header and checks age, sex and statements; a scan then
carries them into the manifest (and so to the labeler).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ecgkit.ingest import scan
from ecgkit.io._wfdb_comments import parse_age, parse_sex
from ecgkit.io.wfdb import read_wfdb

CASES = {
    "ludb": (["<age>: 51", "<sex>: F", "<diagnoses>:", "Rhythm: Sinus bradycardia.",
              "Electric axis of the heart: left axis deviation.", "Left ventricular hypertrophy."],
             51.0, "F", ["Rhythm: Sinus bradycardia.", "Electric axis of the heart: left axis deviation.",
                         "Left ventricular hypertrophy."]),
    "ludb_upper": (["<AGE>: 74", "<SEX>: M", "<DIAGNOSES>:", "Sinus rhythm.", "Complete left bundle branch block."],
                   74.0, "M", ["Sinus rhythm.", "Complete left bundle branch block."]),
    "incart": (["<age>: 65 <sex>: M <diagnoses> Coronary artery disease, arterial hypertension"],
               65.0, "M", ["Coronary artery disease", "arterial hypertension"]),
    "challenge": (["Age: 63", "Sex: Male", "Dx: 164889003,59118001", "Rx: Unknown", "Hx: Unknown"],
                  63.0, "M", ["Atrial fibrillation", "Right bundle branch block"]),
    "lowercase": (["age: 81", "sex: female", "Diagnose:", "Reason for admission: Myocardial infarction",
                   "Former infarction (localization): no", "Smoker: no"], 81.0, "F", ["Myocardial infarction"]),
    "spaced": (["AGE = 45 years", "GENDER: f", "Diagnosis: Sinus tachycardia"], 45.0, "F", ["Sinus tachycardia"]),
    "one_line": (["Age: 51  Sex: F  Weight: 70 kg", "Diagnosis: Atrial fibrillation"], 51.0, "F",
                 ["Atrial fibrillation"]),
    "mitbih": (["69 M 1085 1629 x1", "Aldomet, Inderal"], 69.0, "M", []),
    "private": (["Age: 90+", "Sex: F", "Patient name: Jane Doe", "Date of birth: 1930-02-01", "Patient: John Smith",
                 "Statement: 12/03/1999", "Statement: Atrial flutter"], 90.0, "F", ["Atrial flutter"]),
}


@pytest.fixture(scope="module")
def variants(ptbxl_record1: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("comments")
    hea = ptbxl_record1.read_text()
    for name, (comments, *_rest) in CASES.items():
        text = hea.replace("00001_hr", name).rstrip("\n") + "\n" + "".join(f"#{c}\n" for c in comments)
        (root / f"{name}.hea").write_text(text)
        shutil.copy(ptbxl_record1.with_suffix(".dat"), root / f"{name}.dat")
    return root


@pytest.mark.parametrize("name", sorted(CASES))
def test_comment_conventions_give_age_sex_statements(variants: Path, name: str) -> None:
    _comments, age, sex, statements = CASES[name]
    rec = read_wfdb(variants / f"{name}.hea")
    assert (rec.age, rec.sex) == (age, sex)
    assert rec.statements == statements
    assert rec.signal.shape == (12, 5000)


def test_names_and_birth_dates_are_never_kept(variants: Path) -> None:
    rec = read_wfdb(variants / "private.hea")
    kept = repr((rec.patient_id, rec.statements, dict(rec.codes)))
    assert rec.patient_id is None
    for private in ("Jane", "Doe", "John", "Smith", "1930", "1999"):
        assert private not in kept


def test_challenge_dx_codes_are_kept(variants: Path) -> None:
    rec = read_wfdb(variants / "challenge.hea")
    assert dict(rec.codes) == {"snomed": ["164889003", "59118001"]}


def test_scan_carries_comment_metadata_into_the_manifest(variants: Path) -> None:
    df = scan([variants]).set_index("record_id")
    assert (df["status"] == "ok").all() and len(df) == len(CASES)
    assert df.loc["ludb", "age"] == 51.0 and df.loc["ludb", "sex"] == "F"
    assert list(df.loc["incart", "statements"]) == ["Coronary artery disease", "arterial hypertension"]


@pytest.mark.parametrize("text, years", [("63", 63.0), ("63 years", 63.0), ("81y", 81.0), ("6 months", 0.5),
                                         (">89", 89.0), ("90+", 90.0), ("NaN", None), ("-1", None), ("", None),
                                         ("abc", None), ("200", None)])
def test_parse_age(text: str, years: float | None) -> None:
    assert parse_age(text) == years


def test_parse_sex() -> None:
    assert [parse_sex(v) for v in ("M", "male", "Female", "f", "w", "x", "")] == ["M", "M", "F", "F", "F", None, None]
