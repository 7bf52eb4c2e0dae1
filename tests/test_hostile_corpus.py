"""The hostile corpus (``tests/hostile_corpus.py``): 250 damaged variants of the real fixtures.

Every variant is scanned through the CLI path; none may crash the scan, hang, or be silently
wrong (an impossible record accepted as ok, a rate changed, a non-regular file opened, bytes of a
file outside the archive in any output). Measured before and after the hardening (issue 11):
before (commit 9edf0b0), of 250 variants 10 crashed, 3 hung and 36 were silently wrong; after, 0, 0, 0.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hostile_corpus import OUTSIDE_MARKER, Variant, build_corpus, run_variant

from ecgkit.ingest import ScanConfig, scan


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Variant]:
    root = tmp_path_factory.mktemp("hostile")
    return {v.name: v for v in build_corpus(shared_data, root)}


def test_corpus_covers_every_kind(corpus: dict[str, Variant]) -> None:
    kinds = {v.kind for v in corpus.values()}
    assert kinds == set(KINDS)
    assert len(corpus) == 250


KINDS = ("truncation", "bitflip", "random", "encoding", "absurd", "entity", "xxe", "nesting", "blob", "symlink",
         "fifo", "name")


@pytest.mark.parametrize("kind", KINDS)
def test_every_variant_is_ok_or_quarantined_never_crashed_hung_or_wrong(corpus: dict[str, Variant], kind: str,
                                                                          tmp_path: Path) -> None:
    bad = []
    for name, v in corpus.items():
        if v.kind != kind:
            continue
        o = run_variant(v, tmp_path / v.folder.name, timeout_s=20)
        if o.status in ("crashed", "hung") or o.silently_wrong:
            bad.append(f"{name}: {o.status} {o.detail}")
    assert bad == []


def test_one_scan_of_the_whole_corpus_accounts_for_every_record(corpus: dict[str, Variant]) -> None:
    roots = sorted({v.folder.parent for v in corpus.values()})
    skipped: list[dict[str, str]] = []
    df = scan(roots, ScanConfig(workers=1), skipped=skipped)
    assert set(df["status"]) <= {"ok", "quarantined"}
    assert df.loc[df["status"] == "quarantined", "reason"].notna().all()
    assert df["record_id"].is_unique
    # no reason quotes more than a short excerpt, and none carries the planted outside content
    assert df["reason"].dropna().str.len().max() <= 603
    assert not df["reason"].dropna().str.contains(OUTSIDE_MARKER.decode()).any()
    assert not df["reason"].dropna().str.contains("root:x").any()
    kinds = {s["reason"] for s in skipped}
    assert "not a regular file (FIFO, socket or device): never opened" in kinds
    assert "broken symlink or symlink loop" in kinds


def _scan_one(v: Variant, **cfg: object) -> pd.Series:
    df = scan([v.folder], ScanConfig(**cfg))  # type: ignore[arg-type]
    assert len(df) == 1
    return df.iloc[0]


def test_signal_file_outside_the_record_folder_is_refused(corpus: dict[str, Variant]) -> None:
    row = _scan_one(corpus["ptbxl-sigfile-../../outside/secret.dat"])
    assert row["status"] == "quarantined"
    assert "lies outside the record's folder: refused" in row["reason"]
    assert row["record_id"] == "00001_hr"
    for name in ("ptbxl-sigfile-/etc/passwd", "ptbxl-sigfile-/dev/zero", "ptbxl-multiseg-escape"):
        row = corpus[name] and scan([corpus[name].folder])
        assert (row["status"] == "quarantined").any() and row["reason"].str.contains("outside").any(), name


def test_symlink_leaving_the_tree_is_skipped_unless_allowed(corpus: dict[str, Variant]) -> None:
    v = corpus["ptbxl-header-symlink-out"]
    skipped: list[dict[str, str]] = []
    df = scan([v.folder], skipped=skipped)
    # only the orphan signal file is a candidate (quarantined: no header); the link is never read
    assert df["record_id"].tolist() == ["00001_hr"] and df["source_path"].iloc[0].endswith(".dat")
    assert any("outside the scanned folder" in s["reason"] for s in skipped)
    allowed = scan([v.folder], ScanConfig(follow_external_symlinks=True))
    assert allowed["source_path"].iloc[0].endswith(".hea")  # read, then refused (12 signal lines missing)
    assert allowed["status"].tolist() == ["quarantined"]


def test_unparsable_and_impossible_rates_are_quarantined_never_250_hz(corpus: dict[str, Variant]) -> None:
    for fs in ("0", "-500", "nan", "inf", "abc", "1e308", "5e6"):
        row = _scan_one(corpus[f"ptbxl-fs-{fs}"])
        assert row["status"] == "quarantined", fs
        assert "sampling frequency" in row["reason"], row["reason"]


def test_negative_gain_and_zero_sensitivity_are_quarantined(corpus: dict[str, Variant]) -> None:
    row = _scan_one(corpus["ptbxl-gain-negative"])
    assert "lead I ADC gain is -1000" in row["reason"]
    row = _scan_one(corpus["dicom-sensitivity-0"])
    assert "ChannelSensitivity is 0" in row["reason"]
    assert _scan_one(corpus["aecg-scale-negative"])["status"] == "quarantined"


def test_checksums_flag_by_default_and_quarantine_when_strict(corpus: dict[str, Variant]) -> None:
    row = _scan_one(corpus["ptbxl-checksum"])
    assert row["status"] == "ok"
    # byte 1000 of a 12-channel format-16 file: frame 41, channel (1000 % 24) // 2 = 8, i.e. V3
    assert [f for f in row["qc_flags"] if f.startswith("integrity:")] == ["integrity:checksum:V3"]
    strict = _scan_one(corpus["ptbxl-checksum"], strict_integrity=True)
    assert strict["status"] == "quarantined" and "integrity:checksum:V3" in strict["reason"]
    row = _scan_one(corpus["muse-crc32"])
    assert "integrity:crc32:I" in list(row["qc_flags"])
    clean = scan([corpus["ptbxl-header-crlf"].folder])  # the unmodified record: no integrity flag
    assert not [f for f in clean["qc_flags"].iloc[0] if f.startswith("integrity:")]


def test_entities_markup_and_control_characters_are_cleaned_the_same_way(corpus: dict[str, Variant]) -> None:
    assert _scan_one(corpus["muse-pid-entity"])["patient_id"] == "2017A00237"
    for name in ("muse-pid-markup", "muse-pid-control"):
        row = _scan_one(corpus[name])
        assert row["patient_id"] == "201700237", name
        assert "repair:removed markup/control characters from PatientID" in list(row["qc_flags"])
    assert _scan_one(corpus["cardiosoft-pid-entity"])["patient_id"] == "PA1&2"
    assert _scan_one(corpus["philips-pid-markup"])["patient_id"] == "P1"
    stmts = list(_scan_one(corpus["muse-stmt-markup"])["statements"])
    assert stmts[0].startswith("AF & ")
    for name in ("muse-xxe", "cardiosoft-xxe", "philips-xxe"):  # the external entity is never fetched
        row = _scan_one(corpus[name])
        assert row["status"] == "ok" and row["patient_id"] in ("201700237", "P1"), name
    assert _scan_one(corpus["muse-billion-laughs"])["patient_id"] == "201700237"  # dropped, never expanded
    row = _scan_one(corpus["philips-billion-laughs"])  # libxml2 refuses the amplification itself
    assert row["status"] == "quarantined" and "amplification" in row["reason"]


def test_non_utf8_names_are_stored_escaped(corpus: dict[str, Variant], tmp_path: Path) -> None:
    v = corpus["name-nonutf8-wfdb"]
    o = run_variant(v, tmp_path / "out")
    assert o.status == "ok"
    df = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert df["record_id"].tolist() == ["x/r\\xe9c/00001_hr"]
    assert df["source_path"].iloc[0].endswith("x/r\\xe9c/00001_hr.hea")
    from ecgkit._names import escape_name, unescape_name
    from ecgkit.io import read_record

    assert read_record(unescape_name(df["source_path"].iloc[0])).signal.shape == (12, 5000)
    for raw in ("a\\x41", "caf\udce9\n\t\\", "plain/name.xml"):
        assert unescape_name(escape_name(raw)) == raw
    summary = json.loads((tmp_path / "out" / "scan_summary.json").read_text())
    assert summary["ok"] == 1


def test_checksums_are_checked_on_the_wfdb_library_path_too(shared_data: Path, tmp_path: Path) -> None:
    import wfdb
    from hostile_corpus import _ptbxl_record

    from ecgkit.io.wfdb import read_wfdb

    src = _ptbxl_record(shared_data, tmp_path / "src")
    rec = wfdb.rdrecord(str(src.with_suffix("")))
    out = tmp_path / "f212"
    out.mkdir()
    wfdb.wrsamp("r212", fs=500, units=["mV"] * 12, sig_name=rec.sig_name, p_signal=rec.p_signal,
                fmt=["212"] * 12, adc_gain=[200.0] * 12, baseline=[0] * 12, write_dir=str(out))
    clean = read_wfdb(out / "r212.hea")
    assert not [f for f in clean.qc_flags or () if f.startswith("integrity:")]
    dat = bytearray((out / "r212.dat").read_bytes())
    dat[300] ^= 0x01  # frame 16 (18 bytes a frame), byte 12: the low 8 bits of channel 8 (pair 8-9), V3
    (out / "r212.dat").write_bytes(bytes(dat))
    damaged = read_wfdb(out / "r212.hea")
    assert [f for f in damaged.qc_flags or () if f.startswith("integrity:")] == ["integrity:checksum:V3"]
