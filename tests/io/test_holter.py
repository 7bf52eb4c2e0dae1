"""ISHNE and MFER files written here from their public specifications, from a real PTB-XL record.

The writers below follow the ISHNE Holter Output Standard 1.0 (fixed 512-byte header, CRC-CCITT,
interleaved int16) and MFER's tag-length-value items (ISO 22077-1), independently of the readers.
"""
from __future__ import annotations

import binascii
import struct
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ecgkit.errors import FormatError, SignalError
from ecgkit.ingest import scan
from ecgkit.io.detect import detect_format
from ecgkit.io.ishne import read_ishne
from ecgkit.io.mfer import read_mfer
from ecgkit.io.wfdb import read_wfdb
from ecgkit.record import LEADS

ISHNE_CODES = {"I": 5, "II": 6, "III": 7, "aVR": 8, "aVL": 9, "aVF": 10, "V1": 11, "V2": 12, "V3": 13,
               "V4": 14, "V5": 15, "V6": 16, "ES": 17, "AS": 18, "AI": 19}
MFER_CODES = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8, "III": 61, "aVR": 62,
              "aVL": 63, "aVF": 64}


@pytest.fixture(scope="module")
def ptbxl(ptbxl_record1: Path):
    return read_wfdb(ptbxl_record1)


def write_ishne(path: Path, digital: np.ndarray, leads: list[str], fs: int = 500, resolution_nv: int = 1000,
                n_samples: int | None = None, var_block: bytes = b"note") -> Path:
    n_leads = len(leads)
    fixed = bytearray(512)

    def put(offset: int, fmt: str, *values) -> None:  # offsets are from the file start
        struct.pack_into(fmt, fixed, offset - 10, *values)

    put(10, "<i", len(var_block))
    put(14, "<i", digital.shape[1] if n_samples is None else n_samples)
    put(18, "<i", 522)
    put(22, "<i", 522 + len(var_block))
    put(26, "<h", 1)
    fixed[18:18 + 4] = b"Jane"           # first name (offset 28)
    fixed[58:58 + 3] = b"Doe"            # last name (offset 68)
    fixed[98:98 + 5] = b"H-123"          # patient id (offset 108)
    put(128, "<h", 2)                    # female
    put(132, "<3h", 2, 5, 1951)          # birth date: day, month, year
    put(138, "<3h", 1, 5, 2020)          # record date
    put(150, "<3h", 8, 15, 0)
    put(156, "<h", n_leads)
    put(158, "<12h", *([ISHNE_CODES[n] for n in leads] + [-9] * (12 - n_leads)))
    put(206, "<12h", *([resolution_nv] * n_leads + [-9] * (12 - n_leads)))
    put(272, "<h", fs)
    header = bytes(fixed) + var_block
    crc = binascii.crc_hqx(header, 0xFFFF)
    path.write_bytes(b"ISHNE1.0" + struct.pack("<H", crc) + header + digital.T.astype("<i2").tobytes())
    return path


def _item(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | 4]) + n.to_bytes(4, "big")
    return bytes([tag]) + length + value


def write_mfer(path: Path, digital: np.ndarray, leads: list[str], *, block: int = 500, little: bool = False,
               sequences: int | None = None, waveform_type: int = 1) -> Path:
    order = "little" if little else "big"
    n_ch, n = digital.shape
    seq = n // block
    items = [bytes([0x40, 0x20]) + b"MFR ecgkit test file".ljust(32, b" "),
             _item(0x01, b"\x01" if little else b"\x00"),
             _item(0x08, waveform_type.to_bytes(2, order)),
             _item(0x05, bytes([n_ch])), _item(0x06, (sequences or seq).to_bytes(2, order)),
             _item(0x04, block.to_bytes(2, order)), _item(0x0A, b"\x00"),
             _item(0x0B, b"\x01\xfd" + (2).to_bytes(1, order)),          # interval 2 x 10^-3 s = 500 Hz
             _item(0x0C, b"\x00\xfa" + (1).to_bytes(1, order)),          # 1 x 10^-6 V = 1 uV per unit
             _item(0x81, b"Doe^Jane"), _item(0x82, b"M-55"),
             _item(0x83, bytes([68]) + b"\x00\x00" + b"\x07\x9f\x05\x02"),  # 68 y, birth date 1951-05-02
             _item(0x84, b"\x02"), _item(0x85, (2020).to_bytes(2, order) + bytes([5, 1, 8, 15, 0]))]
    for ch, name in enumerate(leads):
        inner = _item(0x09, MFER_CODES.get(name, 0xC005).to_bytes(2, order))
        items.append(bytes([0x3F, ch]) + bytes([len(inner)]) + inner)
    dt = np.dtype("<i2" if little else ">i2")
    blocks = digital[:, :seq * block].reshape(n_ch, seq, block).transpose(1, 0, 2)
    items.append(_item(0x1E, blocks.astype(dt).tobytes()))
    items.append(b"\x80\x00")
    path.write_bytes(b"".join(items))
    return path


def test_ishne_12_lead_reads_back_equal(ptbxl, tmp_path: Path) -> None:
    digital = np.round(ptbxl.signal * 1000).astype(np.int64)
    path = write_ishne(tmp_path / "holter12.ecg", digital, list(LEADS))
    assert detect_format(path) == "ishne"
    rec = read_ishne(path)
    np.testing.assert_allclose(rec.signal, ptbxl.signal, atol=1e-6)
    assert (rec.fs, rec.patient_id, rec.sex, rec.age) == (500.0, "H-123", "F", 68.0)
    assert rec.acquired_at == datetime(2020, 5, 1, 8, 15)
    assert "Jane" not in repr((rec.patient_id, rec.statements, rec.native_leads))


def test_ishne_3_lead_holter_is_refused_with_its_leads(ptbxl, tmp_path: Path) -> None:
    digital = np.round(ptbxl.signal[:3] * 1000).astype(np.int64)
    path = write_ishne(tmp_path / "holter3.ecg", digital, ["ES", "AS", "AI"], fs=200)
    with pytest.raises(SignalError, match=r"ISHNE Holter: 3 lead\(s\) ES, AS, AI; not a 12-lead ECG"):
        read_ishne(path)


def test_long_ishne_holter_is_read_from_its_start_with_a_stated_crop(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    digital = rng.integers(-500, 500, size=(12, 620 * 100))
    rec = read_ishne(write_ishne(tmp_path / "long.ecg", digital, list(LEADS), fs=100))
    assert rec.signal.shape == (12, 60000)
    assert rec.repairs == ("read the first 600 s of a 620 s Holter recording",)


def test_mfer_12_and_8_lead_read_back_equal(ptbxl, tmp_path: Path) -> None:
    digital = np.round(ptbxl.signal * 1000).astype(np.int64)
    path = write_mfer(tmp_path / "rest.mwf", digital, list(LEADS))
    assert detect_format(path) == "mfer"
    rec = read_mfer(path)
    np.testing.assert_allclose(rec.signal, ptbxl.signal, atol=1e-6)
    assert (rec.fs, rec.patient_id, rec.sex, rec.age) == (500.0, "M-55", "F", 68.0)
    assert rec.acquired_at == datetime(2020, 5, 1, 8, 15)
    eight = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    idx = [LEADS.index(n) for n in eight]
    rec8 = read_mfer(write_mfer(tmp_path / "rest8.mwf", digital[idx], eight, little=True, block=250))
    np.testing.assert_allclose(rec8.signal, ptbxl.signal, atol=2e-3)  # limb leads derived from I, II
    assert rec8.repairs == ("derived III,aVR,aVL,aVF from I,II",)


def test_holter_and_monitor_files_are_records_ok_or_quarantined(ptbxl, tmp_path: Path) -> None:
    root = tmp_path / "holters"
    root.mkdir()
    digital = np.round(ptbxl.signal * 1000).astype(np.int64)
    write_ishne(root / "good.ecg", digital, list(LEADS))
    (root / "good.ann").write_bytes(b"ANN  1.0" + bytes(600))  # its annotation file: a sidecar
    write_ishne(root / "three.ecg", digital[:3], ["ES", "AS", "AI"], fs=200)
    write_ishne(root / "promise.ecg", digital, list(LEADS), n_samples=6000)
    bad_crc = bytearray(write_ishne(root / "crc.ecg", digital, list(LEADS)).read_bytes())
    bad_crc[300] ^= 0xFF
    (root / "crc.ecg").write_bytes(bytes(bad_crc))
    write_mfer(root / "mfer.mwf", digital, list(LEADS))
    write_mfer(root / "mfer2.mwf", digital[:2], ["I", "II"], waveform_type=2)
    write_mfer(root / "mferpromise.mwf", digital, list(LEADS), sequences=20)
    skipped: list[dict[str, str]] = []
    df = scan([root], skipped=skipped).set_index("record_id")
    assert [Path(s["path"]).name for s in skipped] == ["good.ann"]
    assert df.loc["good", "status"] == df.loc["mfer", "status"] == "ok"
    assert set(df["source_format"]) == {"ishne", "mfer"}
    expected = {"three": "ISHNE Holter: 3 lead(s) ES, AS, AI; not a 12-lead ECG",
                "promise": "ISHNE header promises 6000 samples per lead, the file holds 5000: truncated",
                "crc": "ISHNE header CRC mismatch",
                "mfer2": "MFER long-term ECG: 2 channel(s) I, II; not a 12-lead ECG",
                "mferpromise": "MFER header promises 10000 samples per channel (20 blocks of 500), "
                               "the waveform data hold 5000"}
    for rid, reason in expected.items():
        assert df.loc[rid, "status"] == "quarantined", rid
        assert reason in df.loc[rid, "reason"] and rid in df.loc[rid, "reason"], df.loc[rid, "reason"]
    assert len(df) == 7  # records in = ok + quarantined


def test_mfer_cut_short_is_a_format_error(ptbxl, tmp_path: Path) -> None:
    digital = np.round(ptbxl.signal * 1000).astype(np.int64)
    raw = write_mfer(tmp_path / "x.mwf", digital, list(LEADS)).read_bytes()
    (tmp_path / "cut.mwf").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError, match=r"MFER item 0x1E promises 120000 bytes .* truncated"):
        read_mfer(tmp_path / "cut.mwf")
