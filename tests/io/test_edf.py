"""EDF/EDF+/BDF reader on files written by edfio (the chosen library) from a real PTB-XL record.

Golden values: PTB-XL record 1 read by the WFDB reader (itself checked against ``wfdb.rdsamp``).
Written at a 1 uV resolution (PTB-XL's own), so reading back must be exact to float32.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import edfio
import numpy as np
import pytest

from ecgkit.errors import FormatError, SignalError
from ecgkit.ingest import scan
from ecgkit.io import read_record
from ecgkit.io.detect import detect_format
from ecgkit.io.edf import read_edf
from ecgkit.io.wfdb import read_wfdb
from ecgkit.record import LEADS

UV_RANGE = (-32768.0, 32767.0)  # physical = digital: 1 uV per step


@pytest.fixture(scope="module")
def ptbxl(ptbxl_record1: Path):
    return read_wfdb(ptbxl_record1)


def _signals(sig_mv: np.ndarray, labels: list[str], fs: float = 500.0) -> list[edfio.EdfSignal]:
    return [edfio.EdfSignal(np.round(sig_mv[k] * 1000), sampling_frequency=fs, label=labels[k],
                            physical_dimension="uV", physical_range=UV_RANGE) for k in range(len(labels))]


def _write(path: Path, signals: list, **kwargs) -> Path:
    edfio.Edf(signals, **kwargs).write(path)
    return path


def test_edf_from_ptbxl_reads_back_equal(ptbxl, tmp_path: Path) -> None:
    path = _write(tmp_path / "ptbxl.edf", _signals(ptbxl.signal, [f"ECG {n}" for n in LEADS]))
    assert detect_format(path) == "edf"
    rec = read_edf(path)
    assert rec.fs == 500.0 and rec.signal.shape == (12, 5000) and rec.repairs == ()
    np.testing.assert_allclose(rec.signal, ptbxl.signal, atol=1e-6)
    assert rec.native_leads == tuple(f"ECG {n}" for n in LEADS) and rec.patient_id is None


def test_edf_plus_demographics_annotations_and_extra_channels(ptbxl, tmp_path: Path) -> None:
    labels = ["EKG I", "EKG II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    extra = [edfio.EdfSignal(np.zeros(1250), 125, label="SpO2", physical_dimension="%", physical_range=(0, 100)),
             edfio.EdfSignal(np.zeros(5000), 500, label="EEG Fpz-Cz", physical_dimension="uV",
                             physical_range=UV_RANGE)]
    anns = [edfio.EdfAnnotation(0, None, "Recording starts"), edfio.EdfAnnotation(1, None, "Sinus rhythm"),
            edfio.EdfAnnotation(2, 1, "Left axis deviation"), edfio.EdfAnnotation(3, None, "Sleep stage W"),
            edfio.EdfAnnotation(4, None, "Lights off")]
    patient = edfio.Patient(code="P-001", sex="F", birthdate=dt.date(1951, 5, 2), name="Jane_Doe")
    rec_info = edfio.Recording(startdate=dt.date(2020, 5, 1))
    path = _write(tmp_path / "plus.edf", extra[:1] + _signals(ptbxl.signal, labels) + extra[1:], patient=patient,
                  recording=rec_info, starttime=dt.time(8, 15), annotations=anns)
    rec = read_edf(path)
    np.testing.assert_allclose(rec.signal, ptbxl.signal, atol=1e-6)
    assert rec.statements == ["Sinus rhythm", "Left axis deviation"]
    assert (rec.patient_id, rec.sex, rec.age) == ("P-001", "F", 68.0)
    assert rec.acquired_at == dt.datetime(2020, 5, 1, 8, 15)
    assert "Jane" not in repr((rec.patient_id, rec.statements, rec.native_leads, dict(rec.codes)))


def test_single_sample_data_records_and_millivolts(ptbxl, tmp_path: Path) -> None:
    sigs = [edfio.EdfSignal(ptbxl.signal[k].astype(np.float64), 500, label=f"ECG {n}", physical_dimension="mV",
                            physical_range=(-32.768, 32.767)) for k, n in enumerate(LEADS)]
    path = _write(tmp_path / "single.edf", sigs, data_record_duration=0.002)
    assert path.read_bytes()[244:252].strip() == b"0.002"
    np.testing.assert_allclose(read_edf(path).signal, ptbxl.signal, atol=1e-5)  # 1% of the 1 uV step


def test_bdf_24_bit(ptbxl, tmp_path: Path) -> None:
    sigs = [edfio.BdfSignal(np.round(ptbxl.signal[k] * 1000), 500, label=f"ECG {n}", physical_dimension="uV",
                            physical_range=(-8388608.0, 8388607.0)) for k, n in enumerate(LEADS)]
    path = tmp_path / "ptbxl.bdf"
    edfio.Bdf(sigs).write(path)
    assert path.read_bytes()[:8] == b"\xffBIOSEMI" and detect_format(path) == "edf"
    np.testing.assert_allclose(read_edf(path).signal, ptbxl.signal, atol=1e-6)


def test_leads_at_different_rates_are_resampled_and_stated(ptbxl, tmp_path: Path) -> None:
    sigs = _signals(ptbxl.signal[:6], [f"ECG {n}" for n in LEADS[:6]])
    sigs += _signals(ptbxl.signal[6:, ::2], [f"ECG {n}" for n in LEADS[6:]], fs=250.0)
    rec = read_edf(_write(tmp_path / "mixed.edf", sigs))
    assert rec.fs == 500.0 and rec.signal.shape == (12, 5000)
    assert rec.repairs == tuple(f"resampled ECG {n} 250->500 Hz" for n in LEADS[6:])
    np.testing.assert_allclose(rec.signal[:6], ptbxl.signal[:6], atol=1e-6)


def test_bad_edf_files_are_quarantined_with_reasons(ptbxl, tmp_path: Path) -> None:
    root = tmp_path / "cohort"
    root.mkdir()
    good = _write(root / "good.edf", _signals(ptbxl.signal, [f"ECG {n}" for n in LEADS]))
    raw = good.read_bytes()
    (root / "truncated.edf").write_bytes(raw[: len(raw) - 5000])
    promise = bytearray(raw)
    promise[236:244] = b"20      "  # 20 data records promised, 10 present
    (root / "promise.edf").write_bytes(bytes(promise))
    _write(root / "holter.edf", _signals(ptbxl.signal[:3], ["ECG X", "ECG Y", "ECG Z"]))
    _write(root / "temp.edf", [edfio.EdfSignal(np.zeros(5000), 500, label=f"ECG {n}", physical_dimension="degC",
                                               physical_range=(0, 50)) for n in LEADS])
    garbled = bytearray(raw)
    garbled[184:192] = b"abcdefgh"
    (root / "garbled.edf").write_bytes(bytes(garbled))
    df = scan([root]).set_index("record_id")
    assert df.loc["good", "status"] == "ok" and df.loc["good", "source_format"] == "edf"
    expected = {"truncated": "EDF header promises 10 data records, the file holds 9",
                "promise": "EDF header promises 20 data records, the file holds 10",
                "holter": "not a 12-lead ECG: 3 channel(s) (ECG X, ECG Y, ECG Z)",
                "temp": "physical dimension 'degC', expected a voltage",
                "garbled": "EDF header fields are not numbers"}
    for rid, reason in expected.items():
        assert df.loc[rid, "status"] == "quarantined", rid
        assert reason in df.loc[rid, "reason"] and rid in df.loc[rid, "reason"], df.loc[rid, "reason"]
    with pytest.raises(SignalError, match="truncated"):
        read_record(root / "truncated.edf")
    discontinuous = bytearray(raw)
    discontinuous[192:197] = b"EDF+D"
    (root / "plusd.edf").write_bytes(bytes(discontinuous))
    with pytest.raises(FormatError, match="EDF\\+D"):
        read_edf(root / "plusd.edf")
