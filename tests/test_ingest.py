"""The scan stage on real PTB-XL, Challenge and MUSE files, and on corrupted copies of them."""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgkit.cli import main
from ecgkit.manifest import SCAN_COLUMNS, read_manifest
from ecgkit.ingest import ScanConfig, pseudonymize, scan

MUSE_NAME = "MUSE_20200923_093504_79000_example.xml"


def test_ptbxl_tree_is_joined_with_its_database(ptbxl_dir: Path) -> None:
    df = scan([ptbxl_dir], ScanConfig(workers=2))
    db = pd.read_csv(ptbxl_dir / "ptbxl_database.csv").set_index("filename_hr")
    assert list(df.columns) == list(SCAN_COLUMNS)
    assert len(df) == 500 and (df["status"] == "ok").all()
    assert set(df["record_id"]) == {f"records500/{i // 1000 * 1000:05d}/{i:05d}_hr" for i in range(1, 501)}
    row = df.set_index("record_id").loc["records500/00000/00001_hr"]
    assert row["patient_id"] == "15709"
    assert row["statements"] == ["sinusrhythmus periphere niederspannung"]
    assert json.loads(row["codes"]) == {"scp": {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}}
    assert row["age"] == 56.0 and row["sex"] == "F"  # PTB-XL sex 1 = female
    assert str(row["acquired_at"]) == "1984-11-09 09:17:34"
    # every record carries its PTB-XL patient and report
    joined = db.loc[df["record_id"]]
    assert df["patient_id"].tolist() == [str(int(p)) for p in joined["patient_id"]]
    # ecg_id 443 has an empty report: no statement rather than an empty one
    assert df["statements"].tolist() == [[r.strip()] if r.strip() else [] for r in joined["report"]]
    assert df["fs"].eq(500.0).all() and df["n_samples"].eq(5000).all()


def test_workers_give_the_same_manifest(shared_data: Path) -> None:
    one = scan([shared_data / "cinc2021"], ScanConfig(workers=1, chunk_size=8))
    two = scan([shared_data / "cinc2021"], ScanConfig(workers=2, chunk_size=8))
    pd.testing.assert_frame_equal(one, two)
    assert len(one) == 50


def test_scan_of_all_shared_data(shared_data: Path) -> None:
    not_records: list[dict[str, str]] = []
    df = scan([shared_data], skipped=not_records)
    quarantined = df[df["status"] == "quarantined"]
    # MIT-BIH record 100 (MLII, V5) is the only file that is not a 12-lead ECG
    assert quarantined["record_id"].tolist() == ["physionet-samples/100"]
    assert "not a 12-lead ECG: 2 channel(s) (MLII, V5)" in quarantined["reason"].iloc[0]
    assert df["source_format"].value_counts().to_dict() == {
        "wfdb": 52, "philips": 3, "dicom": 2, "scp": 2, "muse": 1, "cardiosoft": 1, "aecg": 1}
    skipped = {Path(s["path"]).name: s["reason"] for s in not_records}
    # the manifest carries only the counts (a list of every sidecar would be deep-copied by pandas)
    assert df.attrs["skipped_by_reason"] == {r: sum(v == r for v in skipped.values()) for r in set(skipped.values())}
    assert sum(df.attrs["skipped_by_reason"].values()) == len(not_records)
    assert skipped["records500.tar.xz"] == "compressed archive: unpack it first"
    assert skipped["README.md"] == "documentation"
    assert skipped["100.atr"].startswith("WFDB annotation file")
    assert skipped["E07500.mat"] == "WFDB signal file, read through its .hea header"


def _corrupt_cohort(shared_data: Path, ptbxl_record1: Path, root: Path) -> dict[str, str]:
    """Copies of real files, broken in each way the issue lists; returns record_id -> expected reason."""
    root.mkdir()
    good = root / "good"
    good.mkdir()
    for f in ptbxl_record1.parent.glob("0000[12]_hr.*"):
        shutil.copy(f, good / f.name)
    shutil.copy(shared_data / "muse" / MUSE_NAME, good / "muse.xml")
    bad = root / "bad"
    bad.mkdir()
    expected = {}

    (bad / "empty.xml").write_bytes(b"")
    expected["bad/empty"] = "empty file"
    for name, mutate, reason in [
        ("truncated", lambda d: d[:50000], "truncated"),
        ("mismatch", None, "promises 6000 samples"),
        ("noV3", None, "missing lead(s) V3"),
        ("latin1", None, "not UTF-8"),
    ]:
        hea = (ptbxl_record1.parent / "00003_hr.hea").read_text()
        hea = hea.replace("00003_hr", name)
        dat = (ptbxl_record1.parent / "00003_hr.dat").read_bytes()
        if mutate is not None:
            dat = mutate(dat)
        raw = hea.encode()
        if name == "mismatch":
            raw = hea.replace(f"{name} 12 500 5000", f"{name} 12 500 6000").encode()
        if name == "noV3":
            raw = hea.replace(" 0 V3\n", " 0 X3\n").encode()
        if name == "latin1":
            raw = raw + "# Bemerkung: Gr\xf6\xdfe\n".encode("latin-1")
        (bad / f"{name}.hea").write_bytes(raw)
        (bad / f"{name}.dat").write_bytes(dat)
        expected[f"bad/{name}"] = reason
    muse = (shared_data / "muse" / MUSE_NAME).read_bytes()
    (bad / "cut.xml").write_bytes(muse[: len(muse) // 2])
    expected["bad/cut"] = "truncated or malformed XML"
    at = muse.rindex(b"</Waveform>")  # the Rhythm waveform's end tag
    (bad / "garbled.xml").write_bytes(muse[:at] + b"</Wave>" + muse[at + len(b"</Waveform>"):])
    expected["bad/garbled"] = "malformed XML: element <Waveform> is not closed"
    (bad / "note.xml").write_text('<?xml version="1.0"?><Note><to>x</to></Note>')
    expected["bad/note"] = "<Note> is not an ECG format"
    (bad / "blob.bin").write_bytes(b"\x00\x01binary stuff" * 20)
    expected["bad/blob"] = "unknown format"
    (bad / "orphan.dat").write_bytes(b"\x00" * 100)
    expected["bad/orphan"] = "WFDB signal file without its .hea header"
    return expected


def test_corrupted_copies_are_quarantined_with_reasons(shared_data: Path, ptbxl_record1: Path,
                                                       tmp_path: Path) -> None:
    expected = _corrupt_cohort(shared_data, ptbxl_record1, tmp_path / "cohort")
    df = scan([tmp_path / "cohort"]).set_index("record_id")
    assert sorted(df.index[df["status"] == "ok"]) == ["good/00001_hr", "good/00002_hr", "good/muse"]
    bad = df[df["status"] == "quarantined"]
    assert sorted(bad.index) == sorted(expected)
    for rid, reason in expected.items():
        msg = bad.loc[rid, "reason"]
        assert reason in msg, (rid, msg)
        assert rid in msg  # the message names the record
    assert len(df) == 3 + len(expected)  # records in = ok + quarantined


def test_cli_scan_writes_manifest_quarantine_and_summary(shared_data: Path, ptbxl_record1: Path,
                                                        tmp_path: Path) -> None:
    expected = _corrupt_cohort(shared_data, ptbxl_record1, tmp_path / "cohort")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["scan", str(tmp_path / "cohort"), "--out", str(out),
                                       "--max-quarantine-rate", "1.0"])
    assert result.exit_code == 0, result.output
    assert f"scan: {3 + len(expected)} records, 3 ok, {len(expected)} quarantined" in result.output
    manifest = read_manifest(out)
    quarantine = pd.read_parquet(out / "quarantine.parquet")
    assert sorted(quarantine["record_id"]) == sorted(expected)
    assert set(quarantine["stage"]) == {"scan"}
    summary = json.loads((out / "scan_summary.json").read_text())
    assert summary["records"] == len(manifest) == summary["ok"] + summary["quarantined"]
    # the default 5% limit fails the job
    strict = CliRunner().invoke(main, ["scan", str(tmp_path / "cohort"), "--out", str(tmp_path / "o2")])
    assert strict.exit_code == 3


def test_pseudonymized_ids_never_store_raw_ids_or_key(shared_data: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECGKIT_PSEUDONYM_KEY", "s3cret-key")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["scan", str(shared_data / "muse"), "--out", str(out), "--pseudonymize"])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert manifest["patient_id"].tolist() == [pseudonymize("201700237", "s3cret-key")]
    for f in out.iterdir():
        data = f.read_bytes()
        assert b"201700237" not in data and b"s3cret-key" not in data, f.name
        assert b"TESTONE" not in data and b"06-10-1980" not in data, f.name
    summary = json.loads((out / "scan_summary.json").read_text())
    assert summary["config"]["pseudonymize_key"] == "<set>"
    # a keyed hash: HMAC-SHA256 of the id, different under another key, and no key means no run
    import hashlib
    import hmac

    assert pseudonymize("201700237", "s3cret-key") == hmac.new(b"s3cret-key", b"201700237",
                                                               hashlib.sha256).hexdigest()[:20]
    assert pseudonymize("201700237", "other-key") != pseudonymize("201700237", "s3cret-key")
    assert "s3cret-key" not in repr(ScanConfig(pseudonymize_key="s3cret-key"))
    monkeypatch.delenv("ECGKIT_PSEUDONYM_KEY")
    refused = CliRunner().invoke(main, ["scan", str(shared_data / "muse"), "--out", str(tmp_path / "o2"),
                                        "--pseudonymize"])
    assert refused.exit_code != 0 and "ECGKIT_PSEUDONYM_KEY" in refused.output
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize("pid,placeholder", [
    ("removed", True), ("xxxxxx", True), ("", True), ("Anonymous", True), ("000000", True), ("N/A", True),
    ("201700237", False), ("P000123", False), ("x1", False), ("subject1", False),
])
def test_placeholder_patient_ids(pid: str, placeholder: bool) -> None:
    from ecgkit.ingest import is_placeholder_id

    assert is_placeholder_id(pid) is placeholder


def test_placeholder_ids_in_real_exports_become_null(shared_data: Path) -> None:
    # DICOM example 1 says "removed", the Philips examples "xxxxxx": de-identified, not one patient
    df = scan([shared_data / "dicom", shared_data / "philips"]).set_index("record_id")
    assert pd.isna(df.loc["example-DICOM1", "patient_id"])
    assert pd.isna(df.loc["2020-5-18_15-48-11", "patient_id"])
    assert df.loc["129DYPRG", "patient_id"] == "1112010721168bdc"
    assert (df["status"] == "ok").all() and len(df) == 5


def test_scan_of_all_shared_data_with_ptbxl_unpacked(shared_data: Path, ptbxl_dir: Path) -> None:
    # the acceptance scan: every real file, PTB-XL unpacked beside its CSV
    not_records: list[dict[str, str]] = []
    df = scan([shared_data, ptbxl_dir], ScanConfig(workers=2), skipped=not_records)
    counts = df["status"].value_counts().to_dict()
    assert counts == {"ok": 561, "quarantined": 1}  # 500 PTB-XL, 50 CinC, 11 others (2 SCP-ECG)
    assert len(df) == counts["ok"] + counts["quarantined"]
    bad = df[df["status"] == "quarantined"]
    assert bad["record_id"].tolist() == ["physionet-samples/100"]
    assert bad["reason"].iloc[0].startswith("record physionet-samples/100 (")
    ptbxl = df[df["source_path"].str.startswith(str(ptbxl_dir))]
    assert len(ptbxl) == 500 and ptbxl["patient_id"].notna().all()
    # every skipped file has a reason, and none of them is an ECG the scan should have read
    reasons = {s["reason"] for s in not_records}
    assert reasons == {"WFDB signal file, read through its .hea header", "CSV table, not an ECG record",
                       "PTB-XL metadata table, joined to its records", "documentation",
                       "WFDB annotation file (not used), read through its .hea header",
                       "compressed archive: unpack it first"}


def _mini_ptbxl(ptbxl_dir: Path, root: Path) -> Path:
    """A PTB-XL tree with records 1 and 2 only, the CSV beside ``records500/``."""
    rec = root / "records500" / "00000"
    rec.mkdir(parents=True)
    for f in (ptbxl_dir / "records500" / "00000").glob("0000[12]_hr.*"):
        shutil.copy(f, rec / f.name)
    shutil.copy(ptbxl_dir / "ptbxl_database.csv", root / "ptbxl_database.csv")
    return root


@pytest.mark.parametrize("where", ["nested", "records500", "one-file"])
def test_ptbxl_csv_is_found_below_or_above_the_scanned_folder(ptbxl_dir: Path, tmp_path: Path,
                                                               where: str) -> None:
    tree = _mini_ptbxl(ptbxl_dir, tmp_path / "archive" / "ptbxl")
    source = {"nested": tmp_path / "archive", "records500": tree / "records500",
              "one-file": tree / "records500" / "00000" / "00001_hr.hea"}[where]
    df = scan([source])
    assert (df["status"] == "ok").all()
    db = pd.read_csv(tree / "ptbxl_database.csv").set_index("ecg_id")
    pids = sorted(df["patient_id"].tolist())
    want = sorted(str(int(db.loc[i, "patient_id"])) for i in ((1,) if where == "one-file" else (1, 2)))
    assert pids == want
    assert df["statements"].map(len).eq(1).all()


def test_cli_summary_explains_skipped_files(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["scan", str(shared_data / "physionet-samples"), "--out", str(out),
                                       "--max-quarantine-rate", "1.0"])
    assert result.exit_code == 0, result.output
    assert "scan: 2 records, 1 ok, 1 quarantined" in result.output
    # s0010_re: .dat + .xyz; 100: .dat + .atr
    assert ("4 files are not records and were skipped (3 WFDB signal file, read through its .hea header; "
            "1 WFDB annotation file (not used), read through its .hea header)") in result.output
    summary = json.loads((out / "scan_summary.json").read_text())
    assert summary["skipped_by_reason"] == {"WFDB signal file, read through its .hea header": 3,
                                            "WFDB annotation file (not used), read through its .hea header": 1}
    skipped = pd.read_csv(out / "skipped_files.csv")
    assert len(skipped) == 4 and skipped["reason"].notna().all()


_IDENTIFYING_TAG = re.compile(r"(?:first|last|given|family|middle|maiden)name$|^name$|birth|^dob$", re.I)


def _identifiers_in_xml(path: Path) -> set[str]:
    """Names and birth dates in an XML export, found with lxml independently of the readers."""
    from lxml import etree

    found: set[str] = set()
    for el in etree.parse(str(path)).getroot().iter():
        if not isinstance(el.tag, str) or not _IDENTIFYING_TAG.search(etree.QName(el).localname):
            continue
        values = [el.text or ""] + list(el.attrib.values())
        values += [ch.text or "" for ch in el.iter() if ch is not el and isinstance(ch.tag, str)]
        found.update(v.strip() for v in values)
    return found


def _identifiers_in_dicom(path: Path) -> set[str]:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    found = set()
    for key in ("PatientName", "PatientBirthDate", "ReferringPhysicianName", "OperatorsName",
                "PerformingPhysicianName", "NameOfPhysiciansReadingStudy", "PatientMotherBirthName"):
        value = ds.get(key)
        if value:
            found.add(str(value))
            found.update(str(value).split("^"))
    return found


def _date_spellings(value: str) -> set[str]:
    """A birth date as written and in the other spellings a reader could turn it into."""
    out = {value}
    for fmt in ("%m-%d-%Y", "%Y-%m-%d", "%Y%m%d", "%d.%m.%Y", "%m/%d/%Y"):
        try:
            day = datetime.strptime(value, fmt)
        except ValueError:
            continue
        out |= {day.strftime("%Y-%m-%d"), day.strftime("%Y%m%d"), day.strftime("%m-%d-%Y")}
    return out


def test_manifest_holds_no_names_or_birth_dates(shared_data: Path, tmp_path: Path) -> None:
    files = [shared_data / "muse" / MUSE_NAME, shared_data / "ge-cardiosoft" / "example-XML1.xml",
             shared_data / "hl7-aecg" / "subject1_0.xml", *sorted((shared_data / "philips").iterdir()),
             *sorted((shared_data / "dicom").glob("*.dcm"))]
    df = scan(files)
    assert (df["status"] == "ok").all() and len(df) == len(files)
    out = tmp_path / "cohort"
    from ecgkit.manifest import write_manifest

    write_manifest(df, out)
    stored = read_manifest(out).set_index("source_path")
    muse_ids = _identifiers_in_xml(files[0])
    assert {"TESTONE", "MUSE", "06-10-1980"} <= muse_ids  # the example does carry them
    checked = 0
    for f in files:
        row = stored.loc[str(f)]
        ids = _identifiers_in_dicom(f) if f.suffix == ".dcm" else _identifiers_in_xml(f)
        # placeholders ("---", "xxxxxx") and the patient id itself (some exports repeat it as the name)
        pid = None if pd.isna(row["patient_id"]) else row["patient_id"]
        ids = {i for i in ids if len(i) >= 3 and i.strip("-x* ") and i != pid}
        ids = set().union(*(_date_spellings(i) for i in ids)) if ids else set()
        cells = [row[c] for c in stored.columns if c not in ("record_id",)]
        text = " | ".join(" ".join(map(str, c)) if isinstance(c, (list, np.ndarray)) else str(c) for c in cells)
        leaked = sorted(i for i in ids if i in text)
        assert not leaked, (f.name, leaked)
        checked += len(ids)
    assert checked >= 20  # names, physicians and birth dates of 8 exports were looked for


def test_corrupted_copies_of_every_format_are_quarantined(shared_data: Path, tmp_path: Path) -> None:
    # each reader's bad input, made from its real example; the intact copies still come through
    root = tmp_path / "mixed"
    good, bad = root / "good", root / "bad"
    good.mkdir(parents=True)
    bad.mkdir()
    sources = {
        "philips": shared_data / "philips" / "129DYPRG.XML",
        "cardiosoft": shared_data / "ge-cardiosoft" / "example-XML1.xml",
        "aecg": shared_data / "hl7-aecg" / "subject1_0.xml",
        "dicom": shared_data / "dicom" / "example-DICOM1.dcm",
    }
    for name, src in sources.items():
        shutil.copy(src, good / f"{name}{src.suffix}")
        data = src.read_bytes()
        (bad / f"{name}{src.suffix}").write_bytes(data[: len(data) * 2 // 3])
    for suffix in (".hea", ".mat"):
        shutil.copy((shared_data / "cinc2021" / "E07500").with_suffix(suffix), good / f"E07500{suffix}")
        shutil.copy((shared_data / "cinc2021" / "E07501").with_suffix(suffix), bad / f"E07501{suffix}")
    mat = bad / "E07501.mat"
    mat.write_bytes(mat.read_bytes()[:-1000])
    df = scan([root]).set_index("record_id")
    assert sorted(df.index[df["status"] == "ok"]) == ["good/E07500", "good/aecg", "good/cardiosoft",
                                                      "good/dicom", "good/philips"]
    reasons = df.loc[df["status"] == "quarantined", "reason"].to_dict()
    assert sorted(reasons) == ["bad/E07501", "bad/aecg", "bad/cardiosoft", "bad/dicom", "bad/philips"]
    for rid, msg in reasons.items():
        assert msg.startswith(f"record {rid} ("), msg
    for rid in ("bad/aecg", "bad/cardiosoft", "bad/philips"):
        assert "malformed XML" in reasons[rid], reasons[rid]
    assert "signal file E07501.mat is truncated" in reasons["bad/E07501"]
    assert "truncated or malformed DICOM file" in reasons["bad/dicom"], reasons["bad/dicom"]
