"""Content-based detection and the scan's skip rules.

Real files (the aECG example, a MUSE export) are rewritten with the prologs real writers emit: a
BOM, an XML declaration, processing instructions, comments holding angle-bracketed words, a DOCTYPE
with an internal subset. Files that look like ECGs of unknown formats must become quarantined
records, never skipped; only known sidecars are skipped, each counted by kind.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ecgkit.errors import FormatError
from ecgkit.ingest import scan
from ecgkit.io.aecg import read_aecg
from ecgkit.io.detect import detect_format, skip_reason, xml_root


@pytest.fixture(scope="module")
def aecg_bytes(shared_data: Path) -> bytes:
    return (shared_data / "hl7-aecg" / "subject1_0.xml").read_bytes()


def _body(xml: bytes) -> bytes:
    """The document from its root element on (declaration and prolog dropped)."""
    return xml[xml.index(b"<AnnotatedECG"):]


PROLOGS = {
    "comment_with_tag": b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- exported from <Cardiograph> v2 -->\n',
    "pi": b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="aecg.xsl"?>\n',
    "doctype": b'<?xml version="1.0"?>\n<!DOCTYPE AnnotatedECG [ <!ENTITY x "<y>"> <!-- <z> --> ]>\n',
    "bom": b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\r\n',
    "long_comment": b"<!--" + b" <Note> " * 2000 + b"-->\n",
}


@pytest.mark.parametrize("name", sorted(PROLOGS))
def test_xml_root_found_after_any_prolog(aecg_bytes: bytes, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.xml"
    path.write_bytes(PROLOGS[name] + _body(aecg_bytes))
    assert detect_format(path) == "aecg"
    assert read_aecg(path).signal.shape == (12, 5000)


def test_utf16_xml_is_detected(aecg_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "utf16.xml"
    text = '<?xml version="1.0" encoding="UTF-16"?>\n<!-- <x> -->\n' + _body(aecg_bytes)[:3000].decode()
    path.write_bytes(text.encode("utf-16"))
    assert detect_format(path) == "aecg"


def test_xml_root_parser() -> None:
    assert xml_root(b"<?xml version='1.0'?><!-- <a> --><ns:RestingECG x='1'>") == b"RestingECG"
    assert xml_root(b"<!-- unterminated <a>") is None
    assert xml_root(b"<!DOCTYPE r SYSTEM 'r.dtd'>\n<r/>") == b"r"


def test_unknown_xml_and_binaries_say_what_they_look_like(tmp_path: Path) -> None:
    (tmp_path / "note.xml").write_bytes(b"<?xml version='1.0'?><!-- <RestingECG> --><Note/>")
    with pytest.raises(FormatError, match="<Note> is not an ECG format"):
        detect_format(tmp_path / "note.xml")
    (tmp_path / "vendor.ECG").write_bytes(b"MCE\x00\x01\x02" + bytes(range(256)) * 4)
    with pytest.raises(FormatError, match=r"unknown format: a binary file \(first bytes 4d 43 45 00"):
        detect_format(tmp_path / "vendor.ECG")
    (tmp_path / "empty.scp").write_bytes(b"")
    with pytest.raises(FormatError, match="empty file"):
        detect_format(tmp_path / "empty.scp")


def test_scan_skips_only_known_sidecars_and_counts_each_kind(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(shared_data / "physionet-samples", root / "physionet")
    shutil.copy(shared_data / "scp-ecg" / "Example.scp", root / "Example.scp")
    (root / "orphans").mkdir()
    shutil.copy(shared_data / "physionet-samples" / "100.atr", root / "orphans" / "200.atr")
    (root / "orphans" / "holter.ECG").write_bytes(b"\x00\x01vendor" + bytes(1000))
    (root / "orphans" / "scan.dat").write_bytes(bytes(1000))
    (root / "RECORDS").write_text("physionet/100\n")
    (root / "SHA256SUMS.txt").write_text("0 x\n")
    (root / "notes.md").write_text("# notes\n")
    (root / "data.zip").write_bytes(b"PK\x03\x04")
    skipped: list[dict[str, str]] = []
    df = scan([root], skipped=skipped).set_index("record_id")
    reasons = {Path(s["path"]).name: s["reason"] for s in skipped}
    assert reasons == {
        "100.dat": "WFDB signal file, read through its .hea header",
        "100.atr": "WFDB annotation file (not used), read through its .hea header",
        "s0010_re.dat": "WFDB signal file, read through its .hea header",
        "s0010_re.xyz": "WFDB signal file, read through its .hea header",
        "RECORDS": "database index or checksum list",
        "SHA256SUMS.txt": "text file",
        "notes.md": "documentation",
        "data.zip": "zip archive: unpack it first",
    }
    assert df.attrs["skipped_by_reason"]["WFDB signal file, read through its .hea header"] == 3
    # every other file is a record: ok or quarantined with a reason, records in = ok + quarantined
    assert set(df.index) == {"Example", "physionet/s0010_re", "physionet/100", "orphans/200", "orphans/holter",
                             "orphans/scan"}
    assert df.loc["Example", "status"] == "ok" and df.loc["physionet/s0010_re", "status"] == "ok"
    q = df[df["status"] == "quarantined"]["reason"]
    assert "annotation file (.atr) without a record of the same name" in q["orphans/200"]
    assert "unknown format: a binary file" in q["orphans/holter"]
    assert "WFDB signal file without its .hea header" in q["orphans/scan"]


def test_skip_rules_table() -> None:
    stems = {"/d/rec", "/d/holter"}
    assert skip_reason("/d/holter.ann", set(), set(), stems) == "annotation file beside its record (not used)"
    assert skip_reason("/d/other.ann", set(), set(), stems) is None
    assert skip_reason("/d/DICOMDIR", set(), set(), stems).startswith("DICOM directory index")
    assert skip_reason("/d/.DS_Store", set(), set(), stems) == "hidden file"
    assert skip_reason("/d/x.ecg", set(), set(), stems) is None  # ISHNE and vendor files are candidates
    assert skip_reason("/d/rec.hea", {"/d/rec.hea"}, set(), stems) is None
    assert skip_reason("/d/LICENSE", set(), set(), stems) == "documentation or text"
    assert skip_reason("/d/index.xml", set(), set(), stems) is None  # a record may be called anything
    # beside a WFDB header: annotators of any name are skipped, other records' formats are not
    assert skip_reason("/d/rec.16a", {"/d/rec.hea"}, set(), stems).startswith("WFDB annotation file")
    assert skip_reason("/d/rec.xml", {"/d/rec.hea"}, set(), stems) is None
    assert skip_reason("/d/rec.scp", {"/d/rec.hea"}, set(), stems) is None


def test_suffix_hints_give_the_readers_reason(tmp_path: Path) -> None:
    from ecgkit.io import read_record

    (tmp_path / "short.scp").write_bytes(b"\x01\x02\x03")
    assert detect_format(tmp_path / "short.scp") == "scp"
    with pytest.raises(FormatError, match="SCP-ECG: file of 3 bytes is too short"):
        read_record(tmp_path / "short.scp")
    (tmp_path / "bad.edf").write_bytes(b"1.0     " + b" " * 300)
    with pytest.raises(FormatError, match="not an EDF/BDF file: version field"):
        read_record(tmp_path / "bad.edf")
