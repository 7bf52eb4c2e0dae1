"""SCP-ECG reader against independent references.

Golden values: ``Example.scp`` carries the same recording as ``hl7-aecg/subject1_0.xml`` (the aECG
reader, itself tested against xml.etree, is the reference: they must agree to the 2.5 uV step);
``demo.scp`` stores raw int16, read here with ``struct``/``numpy`` from the pointers in section 0.
Other encodings are written in the test by ``_scp_writer`` (from the standard's layout) from a
known signal: custom Huffman tables with a table switch, first differences, reference-beat
subtraction with different AVMs, bimodal compression, non-simultaneous leads.
"""
from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import _scp_writer as w
from ecgkit.errors import FormatError, SignalError
from ecgkit.ingest import scan
from ecgkit.io import read_record
from ecgkit.io._scp_huffman import build_tables, decode_huffman, decode_reference, default_tables
from ecgkit.io.aecg import read_aecg
from ecgkit.io.detect import detect_format
from ecgkit.io.scp import read_scp
from ecgkit.record import LEADS

CODES_12 = [1, 2, 61, 62, 63, 64, 3, 4, 5, 6, 7, 8]  # section 3 codes of I, II, III, aVR, aVL, aVF, V1-V6


@pytest.fixture(scope="module")
def scp_dir(shared_data: Path) -> Path:
    return shared_data / "scp-ecg"


def _signal(n: int, seed: int = 0) -> np.ndarray:
    """12 leads of plausible integer samples (slow waves plus small noise), in AVM units."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = np.stack([300 * np.sin(2 * np.pi * t / (250 + 17 * k)) for k in range(12)])
    return np.round(base + rng.normal(0, 3, size=base.shape)).astype(np.int64)


def test_example_equals_the_aecg_reading_of_the_same_recording(scp_dir: Path, shared_data: Path) -> None:
    rec = read_scp(scp_dir / "Example.scp")
    ref = read_aecg(shared_data / "hl7-aecg" / "subject1_0.xml")
    assert rec.signal.shape == ref.signal.shape == (12, 5000) and rec.signal.dtype == np.float32
    assert rec.fs == ref.fs == 500.0
    assert np.abs(rec.signal - ref.signal).max() <= 0.0025 / 2  # the quantisation step: AVM 2500 nV
    assert rec.native_leads == ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF")
    assert (rec.age, rec.sex, rec.acquired_at) == (ref.age, ref.sex, ref.acquired_at) == (
        49.0, "M", datetime(2002, 11, 22, 9, 10))
    assert rec.patient_id == "SBJ-123" and rec.source_format == "scp" and rec.repairs == ()
    assert rec.codes == {"scp_measurements": {"pr_ms": 148, "qrs_ms": 120, "qt_ms": 420, "p_axis_deg": 44,
                                              "qrs_axis_deg": -61, "t_axis_deg": 86}}
    assert detect_format(scp_dir / "Example.scp") == "scp"


def _demo_reference(path: Path) -> tuple[np.ndarray, float, int]:
    buf = path.read_bytes()
    ptr = {}
    for p in range(22, 22 + 10 * 12, 10):
        sid, length, index = struct.unpack_from("<HII", buf, p)
        ptr[sid] = (length, index)
    s6 = ptr[6][1] - 1 + 16
    avm, interval, diff, bimodal = struct.unpack_from("<HHBB", buf, s6)
    lengths = struct.unpack_from("<8H", buf, s6 + 6)
    assert diff == 0 and bimodal == 0 and 2 not in {k for k, v in ptr.items() if v[0]}
    data, p = [], s6 + 6 + 16
    for n in lengths:
        data.append(np.frombuffer(buf, dtype="<i2", count=n // 2, offset=p).astype(np.float64) * avm / 1e6)
        p += n
    return np.stack(data), 1e6 / interval, avm


def test_demo_raw_8_leads_at_1000_hz(scp_dir: Path) -> None:
    rec = read_scp(scp_dir / "demo.scp")
    ref, fs, avm = _demo_reference(scp_dir / "demo.scp")
    assert avm == 183 and fs == 1000.0 and rec.fs == 1000.0
    order = [LEADS.index(n) for n in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")]
    np.testing.assert_allclose(rec.signal[order], ref, atol=1e-6)
    i, ii = ref[0], ref[1]
    np.testing.assert_allclose(rec.signal[2:6], np.stack([ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]), atol=1e-6)
    assert rec.repairs == ("derived III,aVR,aVL,aVF from I,II",)
    assert (rec.patient_id, rec.age, rec.sex) == ("12-678-QW", 47.0, "M")
    assert rec.acquired_at == datetime(2004, 6, 24, 16, 52, 16)


def test_kernel_matches_pure_python_decoder_on_real_data(scp_dir: Path) -> None:
    buf = (scp_dir / "Example.scp").read_bytes()
    s6 = struct.unpack_from("<I", buf, 22 + 60 + 6)[0] - 1 + 16  # pointer 6's index
    lengths = struct.unpack_from("<12H", buf, s6 + 6)
    p = s6 + 6 + 24
    for n in lengths[:3]:
        blob = buf[p:p + n]
        np.testing.assert_array_equal(decode_huffman(blob, 5000, default_tables()), decode_reference(blob, 5000))
        p += n


def _write(tmp_path: Path, name: str, bodies: dict[int, bytes]) -> Path:
    path = tmp_path / f"{name}.scp"
    path.write_bytes(w.record(bodies))
    return path


def test_custom_tables_with_a_switch_and_first_differences(tmp_path: Path) -> None:
    t1: list[w.Code] = [(1, 1, 1, 0, "0"), (2, 2, 1, 1, "10"), (3, 3, 1, -1, "110"), (4, 4, 0, 2, "1110"),
                        (4, 20, 1, 0, "1111")]
    t2: list[w.Code] = [(2, 2, 1, 2, "00"), (2, 2, 1, -2, "01"), (2, 2, 0, 1, "10"), (2, 18, 1, 0, "11")]
    x = _signal(1200)
    leads = [w.encode(w.difference(v, 1).tolist(), [t1, t2], switches={600: 2}) for v in x]
    head = struct.pack("<HHBB", 1000, 2000, 1, 0) + struct.pack("<12H", *(len(b) + len(b) % 2 for b in leads))
    body6 = head + b"".join(b + b"\x00" * (len(b) % 2) for b in leads)
    path = _write(tmp_path, "custom", {2: w.section2([t1, t2]), 3: w.section3(CODES_12, 1, 1200), 6: body6})
    rec = read_scp(path)
    np.testing.assert_allclose(rec.signal, x / 1000.0, atol=1e-6)  # AVM 1000 nV = 1 uV
    assert rec.fs == 500.0


def test_reference_beat_subtraction_with_different_avms(tmp_path: Path) -> None:
    n, fs = 2500, 500
    rng = np.random.default_rng(1)
    beat = np.round(800 * np.exp(-0.5 * ((np.arange(300) - 100) / 8) ** 2)).astype(np.int64)  # 600 ms, fiducial 101
    ref = np.stack([beat * (k + 1) // 4 for k in range(12)])  # in section 5 units (AVM 1000)
    truth_nv = rng.normal(0, 20, size=(12, n)).round() * 5000  # residual-free part, AVM 5000
    residual = (truth_nv / 5000).astype(np.int64)
    zones = []
    for fc in (300, 1100, 1900):  # 1-based fiducial sample of each beat
        sb, se = fc - 60, fc + 120
        zones.append((0, sb, fc, se))
        m = np.arange(sb, se + 1) - fc + 101 - 1
        truth_nv[:, sb - 1:se] += ref[:, m] * 1000
    zones.append((1, 2300, 2350, 2400))  # a beat of another type: never subtracted
    bodies = {3: w.section3(CODES_12, 1, n, subtracted=True), 2: w.section2(None),
              4: w.section4(600, 101, zones), 5: w.data_section(list(ref), 1000, 1_000_000 // fs, 2, None),
              6: w.data_section(list(residual), 5000, 1_000_000 // fs, 2, None)}
    rec = read_scp(_write(tmp_path, "subtracted", bodies))
    np.testing.assert_allclose(rec.signal, truth_nv / 1e6, atol=1e-6)


def test_bimodal_compression_is_expanded_to_full_rate(tmp_path: Path) -> None:
    n, rate = 2000, 4
    t = np.arange(n)
    x = np.stack([np.round(400 * np.sin(2 * np.pi * t / 500 + k)) for k in range(12)]).astype(np.int64)
    protected = [(401, 480), (1201, 1280)]  # 1-based, full rate
    mask = np.zeros(n, bool)
    for a, b in protected:
        mask[a - 1:b] = True
    stored = []
    for row in x:
        vals, i = [], 0
        while i < n:
            if mask[i]:
                vals.append(row[i])
                i += 1
            else:
                j = i
                while j < n and not mask[j] and j - i < rate:
                    j += 1
                vals.append(int(round(row[i:j].mean())))
                i = j
        stored.append(np.array(vals))
    ref = [np.zeros(250, dtype=np.int64)] * 12
    bodies = {3: w.section3(CODES_12, 1, n), 4: w.section4(500, 126, [(1, 401, 440, 480), (1, 1201, 1240, 1280)],
                                                           protected),
              5: w.data_section(ref, 2500, 2000, 0, "raw"),
              6: w.data_section(stored, 2500, 8000, 0, "raw", flag=1)}
    rec = read_scp(_write(tmp_path, "bimodal", bodies))
    assert rec.fs == 500.0 and rec.signal.shape == (12, n)
    got = rec.signal / 0.0025
    np.testing.assert_allclose(got[:, mask], x[:, mask], atol=1e-3)  # protected zones: exact
    assert np.abs(got[:, ~mask] - x[:, ~mask]).max() < 12  # elsewhere: interpolated block means


def test_patient_tags_age_from_birth_date_and_names_never_kept(tmp_path: Path) -> None:
    x = _signal(1000)
    tags = {0: b"DOE\x00", 1: b"JOHN\x00", 2: b"P-77\x00", 5: struct.pack("<HBB", 1950, 6, 30), 8: b"\x02",
            25: struct.pack("<HBB", 2020, 6, 29), 26: struct.pack("<BBB", 8, 30, 5)}
    bodies = {1: w.section1(tags), 3: w.section3(CODES_12, 1, 1000), 6: w.data_section(list(x), 5000, 2000, 0, "raw"),
              8: w.section8(["Sinus rhythm", "Left axis deviation"]),
              11: w.section11([(2, "Abnormal ECG"), (3, "1&2"), (1, "LAD")])}
    # section 10: lead I with P, PR, QRS, QT durations and Q/R/S amplitudes; QT "not computed" (29999)
    values = [100, 160, 90, 29999, 20, 40, 30, 0, 0, -150, 1200, -300]
    bodies[10] = struct.pack("<HH", 1, 0) + struct.pack("<HH", 1, 2 * len(values)) + struct.pack(
        f"<{len(values)}h", *values)
    rec = read_scp(_write(tmp_path, "tags", bodies))
    assert rec.codes["scp_lead_measurements"] == {"I": {"p_ms": 100, "pr_ms": 160, "qrs_ms": 90, "q_ms": 20,
                                                        "r_ms": 40, "s_ms": 30, "q_uv": -150, "r_uv": 1200,
                                                        "s_uv": -300}}
    assert (rec.patient_id, rec.sex, rec.age) == ("P-77", "F", 69.0)  # the day before the 70th birthday
    assert rec.acquired_at == datetime(2020, 6, 29, 8, 30, 5)
    assert rec.statements == ["Sinus rhythm", "Left axis deviation", "Abnormal ECG", "LAD"]
    assert rec.codes["scp"] == {"LAD": 0.0}  # coded statements reach the labeler's SCP code table
    fields = repr((rec.record_id, rec.patient_id, rec.statements, dict(rec.codes), rec.native_leads))
    assert "DOE" not in fields and "JOHN" not in fields and "1950" not in fields


def test_leads_recorded_in_groups_are_cropped_or_refused(tmp_path: Path) -> None:
    x = _signal(1000)
    starts = [1] * 6 + [101] * 6
    ends = [900] * 6 + [1000] * 6
    body6 = w.data_section([row[s - 1:e] for row, s, e in zip(x, starts, ends)], 1000, 2000, 0, "raw")
    rec = read_scp(_write(tmp_path, "groups", {3: w.section3(CODES_12, 0, 0, starts=starts, ends=ends), 6: body6}))
    assert rec.signal.shape == (12, 800) and rec.repairs == ("cropped to samples 101-900, recorded by every lead",)
    np.testing.assert_allclose(rec.signal, x[:, 100:900] / 1000, atol=1e-6)
    starts, ends = [1] * 6 + [501] * 6, [500] * 6 + [1000] * 6
    body6 = w.data_section([row[s - 1:e] for row, s, e in zip(x, starts, ends)], 1000, 2000, 0, "raw")
    path = _write(tmp_path, "sequential", {3: w.section3(CODES_12, 0, 0, starts=starts, ends=ends), 6: body6})
    with pytest.raises(SignalError, match="not recorded simultaneously"):
        read_scp(path)


def test_three_lead_scp_is_not_a_12_lead_ecg(tmp_path: Path) -> None:
    x = _signal(1000)[:3]
    path = _write(tmp_path, "holter3", {3: w.section3([1, 2, 5], 1, 1000), 2: w.section2(None),
                                        6: w.data_section(list(x), 1000, 2000, 2, None)})
    with pytest.raises(SignalError, match=r"missing lead\(s\) III, .*; the source has I, II, V3") as exc:
        read_scp(path)
    assert "holter3" in str(exc.value)


def test_corrupt_scp_files_are_quarantined_and_the_rest_come_through(scp_dir: Path, tmp_path: Path) -> None:
    good = (scp_dir / "Example.scp").read_bytes()
    root = tmp_path / "cohort"
    root.mkdir()
    (root / "good.scp").write_bytes(good)
    (root / "truncated.scp").write_bytes(good[:20000])
    flipped = bytearray(good)
    flipped[15000] ^= 0x10
    (root / "bitflip.scp").write_bytes(bytes(flipped))
    wrong = bytearray(good)
    wrong[0:2] = b"\x00\x00"
    (root / "wrongcrc.scp").write_bytes(bytes(wrong))
    x = _signal(1000)
    promise = w.record({3: w.section3(CODES_12, 1, 5000), 2: w.section2(None),
                        6: w.data_section(list(x), 1000, 2000, 2, None)})  # says 5000 samples, holds 1000
    (root / "promise.scp").write_bytes(promise)
    expected = {"truncated": "truncated: the record says 34144 bytes, the file holds 20000",
                "bitflip": "record CRC mismatch", "wrongcrc": "record CRC mismatch (stored 0x0000",
                "promise": "Huffman data broken: the data ends after"}
    df = scan([root]).set_index("record_id")
    assert df.loc["good", "status"] == "ok" and df.loc["good", "source_format"] == "scp"
    # the manifest's leads are canonical; the file's own names have their own column
    assert list(df.loc["good", "leads"]) == list(LEADS)
    assert list(df.loc["good", "native_leads"]) == ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR",
                                                    "aVL", "aVF"]
    for rid, reason in expected.items():
        assert df.loc[rid, "status"] == "quarantined"
        assert reason in df.loc[rid, "reason"] and rid in df.loc[rid, "reason"], df.loc[rid, "reason"]
    with pytest.raises(FormatError, match="record CRC mismatch"):
        read_record(root / "bitflip.scp")


def test_bad_huffman_table_is_a_format_error(tmp_path: Path) -> None:
    bad = [[(1, 1, 1, 0, "0"), (2, 2, 1, 1, "01")]]  # "0" is a prefix of "01"
    x = _signal(100)
    path = _write(tmp_path, "badtable", {2: w.section2(bad), 3: w.section3(CODES_12, 1, 100),
                                         6: w.data_section(list(x), 1000, 2000, 0, "raw")})
    with pytest.raises(FormatError, match="section 2 .*prefix of another"):
        read_scp(path)
    with pytest.raises(ValueError):
        build_tables([[(0, 0, 1, 0, 0)]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_pure_python_decoder_on_random_tables(seed: int) -> None:
    """Random prefix codes (long ones past the kernel's 12-bit look-up window) and escape codes."""
    rng = np.random.default_rng(seed)
    n_codes = int(rng.integers(4, 30))  # up to 29-bit codes: the kernel walks its tree past 12 bits
    # a complete prefix code: codes "1"*k + "0" for k < n-1, and "1"*(n-1), then two escapes appended
    codes = ["1" * k + "0" for k in range(n_codes - 1)] + ["1" * (n_codes - 1)]
    values = rng.permutation(np.arange(-n_codes, n_codes))[:n_codes - 2].tolist()
    table: list[w.Code] = [(len(c), len(c), 1, int(v), c) for c, v in zip(codes, values)]
    table += [(len(codes[-2]), len(codes[-2]) + 16, 1, 0, codes[-2]), (len(codes[-1]), len(codes[-1]) + 8, 1, 0,
                                                                      codes[-1])]
    data = rng.choice(values + [1000, -2000, 77], size=3000).tolist()
    blob = w.encode(data, [table])
    rev = [(p, t, m, b, sum(int(bit) << i for i, bit in enumerate(c))) for p, t, m, b, c in table]
    tables = build_tables([rev])
    np.testing.assert_array_equal(decode_huffman(blob, len(data), tables), data)
    np.testing.assert_array_equal(decode_reference(blob, len(data), tuple(rev)), data)
