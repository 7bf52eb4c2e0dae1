"""WFDB variants built from real PTB-XL and Challenge records: what other WFDB archives look like.

Each test writes a copy of a real record the way another database or tool stores it (other
sample formats, baselines, units, channel sets, segment layouts, file-name case) and checks
ecgkit against ``wfdb.rdsamp`` on the same files (the reference implementation) and against the
original record's values.
"""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgkit.errors import FormatError, SignalError
from ecgkit.ingest import scan
from ecgkit.io import read_record
from ecgkit.io.wfdb import read_wfdb
from ecgkit.record import LEADS

# bits of each WFDB sample format (what its digital values can hold)
FORMAT_BITS = {"212": 12, "80": 8, "16": 16, "24": 24, "32": 32}


@pytest.fixture(scope="module")
def digital(ptbxl_record1: Path) -> wfdb.Record:
    """PTB-XL record 1 as stored: int digital samples, gain 1000/mV, baseline 0."""
    return wfdb.rdrecord(str(ptbxl_record1.with_suffix("")), physical=False)


def _write(rec: wfdb.Record, folder: Path, name: str, d_signal: np.ndarray, fmt: str,
           gain: float | list[float] = 1000.0, baseline: int | list[int] = 0,
           units: str | list[str] = "mV", sig_name: list[str] | None = None) -> Path:
    n = d_signal.shape[1]
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=rec.fs, units=units if isinstance(units, list) else [units] * n,
                sig_name=sig_name or list(rec.sig_name), d_signal=d_signal, fmt=[fmt] * n,
                adc_gain=gain if isinstance(gain, list) else [gain] * n,
                baseline=baseline if isinstance(baseline, list) else [baseline] * n, write_dir=str(folder))
    return folder / f"{name}.hea"


@pytest.mark.parametrize("fmt", ["212", "80", "24", "32"])
def test_other_sample_formats(digital: wfdb.Record, ptbxl_record1: Path, tmp_path: Path, fmt: str) -> None:
    # narrow formats hold fewer bits: store coarser samples with a matching gain, as a device would
    span = int(np.abs(digital.d_signal).max())
    shift = max(0, int(np.ceil(np.log2((span + 1) / 2 ** (FORMAT_BITS[fmt] - 1) + 1e-12))) + 1) \
        if span >= 2 ** (FORMAT_BITS[fmt] - 1) - 1 else 0
    d = digital.d_signal >> shift
    hea = _write(digital, tmp_path, f"rec{fmt}", d, fmt, gain=1000.0 / 2 ** shift)
    rec = read_wfdb(hea)
    ref, _ = wfdb.rdsamp(str(hea.with_suffix("")))
    assert rec.signal.shape == (12, 5000) and rec.signal.dtype == np.float32
    np.testing.assert_allclose(rec.signal, ref.T, rtol=1e-6, atol=1e-6)
    original = read_wfdb(ptbxl_record1).signal
    np.testing.assert_allclose(rec.signal, original, atol=2 ** shift / 1000.0)


def test_big_endian_format61(digital: wfdb.Record, ptbxl_record1: Path, tmp_path: Path) -> None:
    # format 61 is format 16 with the bytes of each sample swapped (big-endian devices)
    hea = _write(digital, tmp_path, "be", digital.d_signal, "16")
    dat = hea.with_suffix(".dat")
    dat.write_bytes(np.fromfile(dat, dtype="<i2").astype(">i2").tobytes())
    hea.write_text(hea.read_text().replace("be.dat 16 ", "be.dat 61 "))
    rec = read_wfdb(hea)
    ref, _ = wfdb.rdsamp(str(hea.with_suffix("")))
    np.testing.assert_allclose(rec.signal, ref.T, atol=1e-6)
    np.testing.assert_allclose(rec.signal, read_wfdb(ptbxl_record1).signal, atol=1e-6)


def test_format16_with_nonzero_baseline(digital: wfdb.Record, ptbxl_record1: Path, tmp_path: Path) -> None:
    baselines = [1000 * (k - 6) for k in range(12)]
    d = digital.d_signal + np.array(baselines)[None, :]
    hea = _write(digital, tmp_path, "base", d, "16", baseline=baselines)
    rec = read_wfdb(hea)
    ref, _ = wfdb.rdsamp(str(hea.with_suffix("")))
    np.testing.assert_allclose(rec.signal, ref.T, atol=1e-6)
    np.testing.assert_allclose(rec.signal, read_wfdb(ptbxl_record1).signal, atol=1e-6)


def test_microvolt_and_volt_units(digital: wfdb.Record, ptbxl_record1: Path, tmp_path: Path) -> None:
    # channels 0-5 in uV (1 ADC unit per uV), 6-11 in V (1e6 ADC units per V): the same samples
    units = ["uV"] * 6 + ["V"] * 6
    gains = [1.0] * 6 + [1e6] * 6
    hea = _write(digital, tmp_path, "units", digital.d_signal, "16", gain=gains, units=units)
    rec = read_wfdb(hea)
    np.testing.assert_allclose(rec.signal, read_wfdb(ptbxl_record1).signal, rtol=1e-6, atol=1e-7)


def test_non_voltage_units_are_an_error(digital: wfdb.Record, tmp_path: Path) -> None:
    hea = _write(digital, tmp_path, "mmhg", digital.d_signal, "16", units=["mV"] * 11 + ["mmHg"])
    with pytest.raises(SignalError, match="lead V6 has units 'mmhg'") as err:
        read_wfdb(hea)
    assert "mmhg" in str(err.value)


def test_extra_channels_are_dropped_in_canonical_order(digital: wfdb.Record, ptbxl_record1: Path,
                                                       tmp_path: Path) -> None:
    # 14 channels: a respiration channel first, lead order shuffled, a rhythm strip last
    perm = [11, 3, 0, 7, 5, 1, 9, 2, 10, 4, 8, 6]
    names = ["RESP"] + [digital.sig_name[k] for k in perm] + ["Rhythm II"]
    d = np.column_stack([digital.d_signal[:, 0] // 2, digital.d_signal[:, perm], digital.d_signal[:, 0]])
    hea = _write(digital, tmp_path, "extra", d, "16", sig_name=names)
    rec = read_wfdb(hea)
    assert rec.native_leads == tuple(names)
    np.testing.assert_array_equal(rec.signal, read_wfdb(ptbxl_record1).signal)


def test_utf8_bom_and_crlf_header(ptbxl_record1: Path, tmp_path: Path) -> None:
    for f in ptbxl_record1.parent.glob("00001_hr.*"):
        shutil.copy(f, tmp_path / f.name)
    hea = tmp_path / "00001_hr.hea"
    text = hea.read_text().replace("\n", "\r\n")
    text += "# Age: 56\r\n# Sex: Female\r\n# Bemerkung: Gr\u00f6\u00dfe\r\n"
    hea.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    rec = read_wfdb(hea)
    assert rec.record_id == "00001_hr" and rec.age == 56.0 and rec.sex == "F"
    np.testing.assert_array_equal(rec.signal, read_wfdb(ptbxl_record1).signal)


def test_base_time_and_date_on_the_record_line(ptbxl_record1: Path, tmp_path: Path) -> None:
    for f in ptbxl_record1.parent.glob("00001_hr.*"):
        shutil.copy(f, tmp_path / f.name)
    hea = tmp_path / "00001_hr.hea"
    hea.write_text(hea.read_text().replace("00001_hr 12 500 5000", "00001_hr 12 500 5000 09:17:34 09/11/1984"))
    assert read_wfdb(hea).acquired_at == datetime(1984, 11, 9, 9, 17, 34)


def test_header_without_sample_count(ptbxl_record1: Path, tmp_path: Path) -> None:
    for f in ptbxl_record1.parent.glob("00001_hr.*"):
        shutil.copy(f, tmp_path / f.name)
    hea = tmp_path / "00001_hr.hea"
    hea.write_text(hea.read_text().replace("00001_hr 12 500 5000", "00001_hr 12 500"))
    rec = read_wfdb(hea)
    assert rec.n_samples == 5000
    np.testing.assert_array_equal(rec.signal, read_wfdb(ptbxl_record1).signal)


def test_signal_file_name_in_other_case(ptbxl_record1: Path, tmp_path: Path) -> None:
    shutil.copy(ptbxl_record1, tmp_path / "00001_hr.hea")
    shutil.copy(ptbxl_record1.with_suffix(".dat"), tmp_path / "00001_HR.DAT")
    rec = read_wfdb(tmp_path / "00001_hr.hea")
    np.testing.assert_array_equal(rec.signal, read_wfdb(ptbxl_record1).signal)


def test_signal_file_named_by_the_header_is_missing(ptbxl_record1: Path, tmp_path: Path) -> None:
    # the record was renamed but its header still names the old signal file
    shutil.copy(ptbxl_record1, tmp_path / "renamed.hea")
    shutil.copy(ptbxl_record1.with_suffix(".dat"), tmp_path / "renamed.dat")
    with pytest.raises(FormatError, match=r"signal file 00001_hr.dat named by the header is missing "
                                          r"\(the folder has renamed.dat\)") as err:
        read_record(tmp_path / "renamed.hea", record_id="renamed")
    assert "renamed" in str(err.value)


def test_multi_segment_record(digital: wfdb.Record, ptbxl_record1: Path, tmp_path: Path) -> None:
    # a fixed-layout multi-segment record: two halves of record 1, joined by a master header
    for k, (a, b) in enumerate([(0, 2000), (2000, 5000)]):
        _write(digital, tmp_path, f"seg{k}", digital.d_signal[a:b], "16")
    (tmp_path / "multi.hea").write_text("multi/2 12 500 5000\nseg0 2000\nseg1 3000\n# Age: 56\n")
    rec = read_record(tmp_path / "multi.hea")
    assert rec.n_samples == 5000 and rec.age == 56.0
    np.testing.assert_allclose(rec.signal, read_wfdb(ptbxl_record1).signal, atol=1e-6)
    # a scan reads it once, through its master header; the segment headers are not records
    not_records: list[dict[str, str]] = []
    df = scan([tmp_path], skipped=not_records)
    assert df["record_id"].tolist() == ["multi"] and (df["status"] == "ok").all()
    skipped = {Path(s["path"]).name: s["reason"] for s in not_records}
    assert skipped["seg0.hea"].startswith("WFDB segment header") and skipped["seg1.dat"].startswith("WFDB signal")


def test_challenge_header_variants(shared_data: Path, tmp_path: Path) -> None:
    # other Challenge sources write lower-case units, NaN ages, "Unknown" sex and codes outside the table
    src = shared_data / "cinc2021" / "E07500"
    for suffix in (".hea", ".mat"):
        shutil.copy(src.with_suffix(suffix), tmp_path / f"E07500{suffix}")
    hea = tmp_path / "E07500.hea"
    lines = hea.read_text().splitlines()
    lines = [ln.replace("/mV", "/mv") for ln in lines if not ln.startswith(("# Age", "# Sex", "# Dx"))]
    hea.write_text("\n".join(lines + ["# Age: NaN", "# Sex: Unknown", "# Dx: 164889003,999999999"]) + "\n")
    rec = read_record(hea)
    ref, _ = wfdb.rdsamp(str(src))
    np.testing.assert_allclose(rec.signal, ref.T, atol=1e-6)
    assert rec.age is None and rec.sex is None
    # data/snomed_ct.csv names 164889003; an unknown code keeps its number
    assert rec.statements == ["Atrial fibrillation", "SNOMED-CT 999999999"]
    assert rec.codes == {"snomed": ["164889003", "999999999"]}


def test_mat_file_with_other_matlab_header_size(shared_data: Path, tmp_path: Path) -> None:
    # a .mat written with a longer variable name has a longer MATLAB header: the byte offset says so
    src = shared_data / "cinc2021" / "E07500"
    mat = src.with_suffix(".mat").read_bytes()
    hea_text = src.with_suffix(".hea").read_text()
    (tmp_path / "E07500.mat").write_bytes(mat[:24] + b"\x00" * 8 + mat[24:])
    (tmp_path / "E07500.hea").write_text(hea_text.replace("16x1+24", "16x1+32"))
    rec = read_record(tmp_path / "E07500.hea")
    ref, _ = wfdb.rdsamp(str(src))
    np.testing.assert_allclose(rec.signal, ref.T, atol=1e-6)
    assert rec.signal.shape == (len(LEADS), 5000)


def test_eight_stored_leads_get_the_limb_leads_derived(digital: wfdb.Record, ptbxl_record1: Path,
                                                       tmp_path: Path) -> None:
    # a device that stores I, II, V1-V6 only (as MUSE does), exported to WFDB
    keep = [0, 1, 6, 7, 8, 9, 10, 11]
    hea = _write(digital, tmp_path, "eight", digital.d_signal[:, keep], "16",
                 sig_name=[digital.sig_name[k] for k in keep])
    rec = read_record(hea)
    full = read_wfdb(ptbxl_record1).signal
    assert rec.repairs == ("derived III,aVR,aVL,aVF from I,II",)
    np.testing.assert_array_equal(rec.signal[[0, 1, 6, 7, 8, 9, 10, 11]], full[keep])
    i, ii = full[0], full[1]
    np.testing.assert_allclose(rec.signal[2:6], np.stack([ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]),
                               atol=1e-6)
    # PTB-XL stores the limb leads; the derived ones agree with them to the 1 uV quantisation
    np.testing.assert_allclose(rec.signal[2:6], full[2:6], atol=2e-3)


def test_seven_leads_are_still_an_error(digital: wfdb.Record, tmp_path: Path) -> None:
    keep = [0, 1, 6, 7, 8, 9, 10]  # no V6
    hea = _write(digital, tmp_path, "seven", digital.d_signal[:, keep], "16",
                 sig_name=[digital.sig_name[k] for k in keep])
    with pytest.raises(SignalError, match=r"missing lead\(s\) III, aVR, aVL, aVF, V6") as err:
        read_wfdb(hea)
    assert "seven" in str(err.value)
