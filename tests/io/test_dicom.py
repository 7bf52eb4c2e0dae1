"""DICOM ECG waveform reader, checked against pydicom's own waveform decoding.

Golden values: the reference signal is ``pydicom``'s ``ds.waveform_array(i)`` (which applies
ChannelSensitivity x CorrectionFactor + Baseline, in uV for these files) divided by 1000, for the
multiplex group whose label is RHYTHM / originality ORIGINAL; metadata is read from the dataset
(``PatientID``, ``PatientSex``, ``AcquisitionDateTime``, ``UnformattedTextValue``).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest

from ecgkit.errors import FormatError, SignalError
from ecgkit.io import read_record
from ecgkit.io.detect import detect_format
from ecgkit.io.dicom import read_dicom

FILES = ["example-DICOM1.dcm", "example-DICOM2.dcm"]


@pytest.fixture(scope="module")
def dicom_dir(shared_data: Path) -> Path:
    return shared_data / "dicom"


def _reference(path: Path) -> tuple[np.ndarray, pydicom.Dataset, int]:
    ds = pydicom.dcmread(path)
    idx = next(i for i, item in enumerate(ds.WaveformSequence) if item.WaveformOriginality == "ORIGINAL")
    units = {ch.ChannelSensitivityUnitsSequence[0].CodeValue
             for ch in ds.WaveformSequence[idx].ChannelDefinitionSequence}
    assert units == {"uV"}
    return ds.waveform_array(idx).T / 1000.0, ds, idx


@pytest.mark.parametrize("name", FILES)
def test_dicom_signal_matches_pydicom(dicom_dir: Path, name: str) -> None:
    path = dicom_dir / name
    rec = read_dicom(path)
    ref, ds, idx = _reference(path)
    group = ds.WaveformSequence[idx]
    assert rec.signal.dtype == np.float32
    assert rec.signal.shape == (12, group.NumberOfWaveformSamples) == (12, 5000)
    assert rec.fs == float(group.SamplingFrequency) == 500.0
    # both files list channels in canonical order (I, II, III, aVR, aVL, aVF, V1-V6)
    codes = [ch.ChannelSourceSequence[0].CodeValue for ch in group.ChannelDefinitionSequence]
    assert codes == ["5.6.3-9-1", "5.6.3-9-2", "5.6.3-9-61", "5.6.3-9-62", "5.6.3-9-63", "5.6.3-9-64",
                     "5.6.3-9-3", "5.6.3-9-4", "5.6.3-9-5", "5.6.3-9-6", "5.6.3-9-7", "5.6.3-9-8"]
    np.testing.assert_allclose(rec.signal, ref, atol=2e-6)
    assert rec.source_format == "dicom" and rec.repairs == ()
    assert rec.native_leads == tuple(ch.ChannelSourceSequence[0].CodeMeaning
                                     for ch in group.ChannelDefinitionSequence)


@pytest.mark.parametrize("name", FILES)
def test_dicom_lead_identities_and_amplitudes(dicom_dir: Path, name: str) -> None:
    sig = read_dicom(dicom_dir / name).signal
    lsb = 0.005  # sensitivity 4.88-5 uV; stored leads are rounded independently
    assert np.abs(sig[0] + sig[2] - sig[1]).max() <= lsb + 1e-5
    assert np.abs(sig[3] + sig[4] + sig[5]).max() <= 2 * lsb + 1e-5
    ptp = np.ptp(sig, axis=1)
    assert np.all(ptp > 0.2) and np.all(ptp < 5.0)


def test_dicom_metadata_and_statements(dicom_dir: Path) -> None:
    one, two = read_dicom(dicom_dir / FILES[0]), read_dicom(dicom_dir / FILES[1])
    ds1, ds2 = pydicom.dcmread(dicom_dir / FILES[0]), pydicom.dcmread(dicom_dir / FILES[1])
    assert one.patient_id == ds1.PatientID == "removed"  # the de-identifier's placeholder, kept as given
    assert two.patient_id == ds2.PatientID == "66954"
    assert one.sex == ds1.PatientSex == "F" and two.sex is None and ds2.PatientSex == ""
    assert one.acquired_at == datetime(2023, 1, 4, 8, 58, 44)
    assert two.acquired_at == datetime(2006, 2, 1, 10, 24, 3)
    assert str(ds2.AcquisitionDateTime) == "20060201102403"
    assert one.age is None and two.age is None and "PatientAge" not in ds1 and "PatientAge" not in ds2
    texts = [str(a.UnformattedTextValue) for a in ds2.WaveformAnnotationSequence
             if "UnformattedTextValue" in a]
    assert two.statements == texts and len(texts) == 8
    assert two.statements[0] == "ATRIAL FIBRILLATION"
    assert one.statements == [] and "WaveformAnnotationSequence" not in ds1
    # the patient name never reaches the record
    assert str(ds1.PatientName) == "12-lead-example"
    assert "12-lead-example" not in " ".join([one.record_id, str(one.patient_id), *one.statements])


def test_dicom_detected_and_dispatched(dicom_dir: Path) -> None:
    path = dicom_dir / FILES[1]
    assert detect_format(path) == "dicom"
    rec = read_record(path, fs=500, seconds=10)
    assert rec.signal.shape == (12, 5000) and rec.repairs == ()


def test_dicom_not_an_ecg_sop_class(dicom_dir: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_dir / FILES[0])
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    bad = tmp_path / "ct.dcm"
    ds.save_as(bad)
    with pytest.raises(FormatError, match="SOP class 1.2.840.10008.5.1.4.1.1.2 is not an ECG") as err:
        read_dicom(bad)
    assert str(bad) in str(err.value)


def test_dicom_without_waveform_sequence(dicom_dir: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_dir / FILES[0])
    del ds.WaveformSequence
    bad = tmp_path / "nowave.dcm"
    ds.save_as(bad)
    with pytest.raises(FormatError, match="no rhythm waveform") as err:
        read_dicom(bad)
    assert "nowave" in str(err.value)


def test_dicom_only_median_beat(dicom_dir: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_dir / FILES[1])
    del ds.WaveformSequence[0]  # keep only the DERIVED median beat
    bad = tmp_path / "median.dcm"
    ds.save_as(bad)
    with pytest.raises(FormatError, match="no rhythm waveform"):
        read_dicom(bad)


def test_dicom_missing_lead_names_it(dicom_dir: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_dir / FILES[1])
    src = ds.WaveformSequence[0].ChannelDefinitionSequence[8].ChannelSourceSequence[0]
    assert src.CodeMeaning == "Lead V3"
    src.CodeValue, src.CodeMeaning = "5.6.3-9-99", "Lead X"
    bad = tmp_path / "nov3.dcm"
    ds.save_as(bad)
    with pytest.raises(SignalError, match=r"missing lead\(s\) V3") as err:
        read_dicom(bad)
    assert "nov3" in str(err.value)


def test_dicom_truncated_waveform_data(dicom_dir: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_dir / FILES[0])
    ds.WaveformSequence[0].WaveformData = ds.WaveformSequence[0].WaveformData[:60000]
    bad = tmp_path / "short.dcm"
    ds.save_as(bad)
    with pytest.raises(SignalError, match="WaveformData has 60000 bytes, expected 120000"):
        read_dicom(bad)


def test_dicom_garbage_file(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.dcm"
    bad.write_bytes(b"\x00" * 128 + b"DICM" + b"\x07" * 64)
    with pytest.raises(FormatError) as err:
        read_dicom(bad)
    assert "garbage" in str(err.value)
