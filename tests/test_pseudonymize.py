"""``--pseudonymize`` end to end: identifiers planted in every format and field reach no output.

Planted: the patient's name in folder and file names and in the name fields of every XML/DICOM
format, the patient id (an MRN), a date of birth and a phone number in free-text statements. The
cohort goes through scan, label, split and shard; every output (Parquet cells, HDF5 datasets and
attributes, JSON/CSV files, the commands' output) is searched for them. Only the two
``IDENTIFIABLE_*`` files may hold them.
"""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pydicom
from click.testing import CliRunner
from hostile_corpus import _ptbxl_record

from ecgkit.cli import main

PLANTED = ("jane", "roe", "4455667788", "19800610", "06/10/1980", "1980-06-10", "555 123 4567", "555-123-4567")
STATEMENT = "seen by Jane Roe MRN 4455667788 born 06/10/1980 tel +1 555 123 4567 sinus rhythm"


def _plant(shared: Path, root: Path) -> Path:
    src = root / "Jane_Roe_4455667788"
    src.mkdir(parents=True)
    muse = (shared / "muse" / "MUSE_20200923_093504_79000_example.xml").read_bytes()
    muse = muse.replace(b"<PatientID>201700237</PatientID>", b"<PatientID>4455667788</PatientID>")
    muse = muse.replace(b"<PatientLastName>MUSE</PatientLastName>", b"<PatientLastName>ROE</PatientLastName>")
    muse = muse.replace(b"<PatientFirstName>TESTONE</PatientFirstName>", b"<PatientFirstName>JANE</PatientFirstName>")
    muse = re.sub(rb"<StmtText>", b"<StmtText>" + STATEMENT.encode() + b" ", muse, count=1)
    (src / "Roe_Jane_19800610.xml").write_bytes(muse)
    cs = (shared / "ge-cardiosoft" / "example-XML1.xml").read_bytes()
    cs = cs.replace(b"<FamilyName>1532006361</FamilyName>", b"<FamilyName>Roe</FamilyName>")
    cs = cs.replace(b"1532006361", b"4455667788").replace(b"<GivenName>ACE</GivenName>",
                                                          b"<GivenName>Jane</GivenName>")
    cs = re.sub(rb"<ConclusionText>", b"<ConclusionText>Roe, Jane: 555-123-4567. ", cs, count=1)
    (src / "cardiosoft_jane_roe.xml").write_bytes(cs)
    ds = pydicom.dcmread(shared / "dicom" / "example-DICOM1.dcm")
    ds.PatientID = "4455667788"
    ds.PatientName = "Roe^Jane"
    ds.save_as(src / "Roe.dcm", enforce_file_format=False)
    wf = _ptbxl_record(shared, root / "ptb")
    hea = wf.read_bytes() + b"# Patient: 4455667788\n# Statement: DOB 1980-06-10, phone 555-123-4567\n"
    (src / "Roe_Jane_ecg.hea").write_bytes(hea)
    (src / "00001_hr.dat").write_bytes(wf.with_suffix(".dat").read_bytes())
    (src / "notes_jane_roe.txt").write_text("not a record")
    return src


def _strings_in_parquet(path: Path) -> str:
    df = pq.read_table(path).to_pandas()
    parts = [" ".join(map(str, df.columns))]
    for col in df.columns:
        for v in df[col]:
            if isinstance(v, (list, tuple, np.ndarray)):
                parts.extend(map(str, v))
            else:
                parts.append(str(v))
    return "\n".join(parts)


def _strings_in_h5(path: Path) -> str:
    parts: list[str] = []

    def visit(name: str, obj: object) -> None:
        parts.append(name)
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in ("O", "S", "U"):
            parts.extend(v.decode() if isinstance(v, bytes) else str(v) for v in obj[()])
        parts.extend(f"{k}={v}" for k, v in getattr(obj, "attrs", {}).items())

    with h5py.File(path, "r") as f:
        parts.extend(f"{k}={v}" for k, v in f.attrs.items())
        f.visititems(visit)
    return "\n".join(parts)


def _leaks(text: str) -> list[str]:
    low = text.lower()
    return [t for t in PLANTED if t in low]


def test_pseudonymised_outputs_carry_no_planted_identifier(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ECGKIT_PSEUDONYM_KEY", "k3y-for-the-test")
    src = _plant(shared_data, tmp_path / "archive")
    cohort, shards = tmp_path / "cohort", tmp_path / "shards"
    runner = CliRunner()
    outputs = []
    for args in (["scan", str(src), "--out", str(cohort), "--pseudonymize", "--max-quarantine-rate", "1"],
                 ["label", str(cohort)], ["split", str(cohort), "--method", "hash", "--ratios", "1:0:0"],
                 ["shard", str(cohort), "--out", str(shards), "--workers", "1", "--max-quarantine-rate", "1"]):
        res = runner.invoke(main, args)
        assert res.exit_code == 0, (args, res.output)
        outputs.append(res.output)
    manifest = pd.read_parquet(cohort / "manifest.parquet")
    assert len(manifest) == 4 and (manifest["status"] == "ok").all(), manifest["reason"].tolist()
    assert manifest["record_id"].str.fullmatch(r"r[0-9a-f]{20}").all()
    assert (manifest["source_path"].str.startswith("<pseudonymized")).all()
    # the scrub is counted and visible per record
    assert any("repair:scrubbed" in f for flags in manifest["qc_flags"] for f in flags)
    stmts = [s for ss in manifest["statements"] for s in ss]
    assert any("[removed]" in s and "sinus rhythm" in s for s in stmts)
    found = {}
    for p in sorted(cohort.rglob("*")) + sorted(shards.rglob("*")):
        if not p.is_file() or p.name.startswith("IDENTIFIABLE_"):
            continue
        if p.suffix == ".parquet":
            text = _strings_in_parquet(p)
        elif p.suffix == ".h5":
            text = _strings_in_h5(p)
        else:
            text = p.read_bytes().decode("utf-8", "replace")
        leaks = _leaks(text + " " + p.name)
        if leaks:
            found[str(p.relative_to(tmp_path))] = leaks
    found.update({f"output of {i}": _leaks(o) for i, o in enumerate(outputs) if _leaks(o)})
    assert found == {}
    # the identifiable mapping holds the real paths, so the shard stage could read the signals
    mapping = pd.read_parquet(cohort / "IDENTIFIABLE_source_paths.parquet")
    assert set(mapping["record_id"]) == set(manifest["record_id"])
    assert mapping["source_path"].str.contains("Jane_Roe_4455667788").all()
    assert len(pd.read_parquet(shards / "index.parquet")) == 4


def test_content_record_ids_are_stable_when_another_source_is_scanned_beside(shared_data: Path, tmp_path: Path
                                                                            ) -> None:
    from ecgkit.ingest import ScanConfig, scan

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    muse = (shared_data / "muse" / "MUSE_20200923_093504_79000_example.xml").read_bytes()
    (a / "x.xml").write_bytes(muse)
    (b / "x.xml").write_bytes(muse.replace(b"201700237", b"201700238"))  # same relative path, other content
    cfg = ScanConfig(pseudonymize_key="k")
    alone = scan([a], cfg)
    both = scan([a, b], cfg)
    assert alone["record_id"].iloc[0] in set(both["record_id"])
    assert both["record_id"].is_unique and len(both) == 2
