"""DICOM ECG variants built from the real GE example: fields the standard allows that it lacks.

Each test edits a copy of ``example-DICOM2.dcm`` with pydicom the way another vendor writes the
same object (channels named by label or MDC code, millivolt sensitivity, a channel baseline,
a birth date instead of an age) and compares with pydicom's own ``waveform_array`` decode.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest

from ecgkit.io import read_record
from ecgkit.io.dicom import read_dicom

NAME = "example-DICOM2.dcm"
ORDER = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@pytest.fixture()
def ds(shared_data: Path) -> pydicom.Dataset:
    return pydicom.dcmread(shared_data / "dicom" / NAME)


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> np.ndarray:
    """pydicom's decode of the rhythm group, mV, rows in the file's channel order."""
    ds = pydicom.dcmread(shared_data / "dicom" / NAME)
    return ds.waveform_array(0).T / 1000.0


def _channels(ds: pydicom.Dataset) -> list:
    return list(ds.WaveformSequence[0].ChannelDefinitionSequence)


def _file_order(ds: pydicom.Dataset) -> list[str]:
    return [ch.ChannelSourceSequence[0].CodeMeaning for ch in _channels(ds)]


def test_channels_named_by_label_only(ds: pydicom.Dataset, reference: np.ndarray, tmp_path: Path) -> None:
    names = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert [m.split()[1] for m in _file_order(ds)] == names
    for ch, name in zip(_channels(ds), names):
        del ch.ChannelSourceSequence
        ch.ChannelLabel = f"Lead {name.upper()}"
    ds.save_as(tmp_path / "label.dcm")
    rec = read_dicom(tmp_path / "label.dcm")
    np.testing.assert_allclose(rec.signal, reference, atol=1e-6)
    assert rec.native_leads[3] == "Lead AVR"


def test_channels_coded_with_mdc_reference_ids(ds: pydicom.Dataset, reference: np.ndarray,
                                                tmp_path: Path) -> None:
    for ch, name in zip(_channels(ds), ORDER):
        src = ch.ChannelSourceSequence[0]
        src.CodeValue, src.CodingSchemeDesignator, src.CodeMeaning = f"MDC_ECG_LEAD_{name.upper()}", "MDC", ""
    ds.save_as(tmp_path / "mdc.dcm")
    rec = read_dicom(tmp_path / "mdc.dcm")
    np.testing.assert_allclose(rec.signal, reference, atol=1e-6)
    assert rec.native_leads[0] == "MDC_ECG_LEAD_I"


def test_millivolt_sensitivity_and_channel_baseline(ds: pydicom.Dataset, reference: np.ndarray,
                                                    tmp_path: Path) -> None:
    for k, ch in enumerate(_channels(ds)):
        units = ch.ChannelSensitivityUnitsSequence[0]
        units.CodeValue, units.CodeMeaning = "mV", "millivolt"
        ch.ChannelSensitivity = str(float(ch.ChannelSensitivity) / 1000)
        ch.ChannelBaseline = "0.1" if k == 0 else "0"  # mV, added to every sample of lead I
    ds.save_as(tmp_path / "mv.dcm")
    rec = read_dicom(tmp_path / "mv.dcm")
    ref = pydicom.dcmread(tmp_path / "mv.dcm").waveform_array(0).T
    np.testing.assert_allclose(rec.signal, ref, atol=1e-6)
    np.testing.assert_allclose(rec.signal[0], reference[0] + 0.1, atol=1e-6)
    np.testing.assert_allclose(rec.signal[1:], reference[1:], atol=1e-6)


def test_age_from_birth_date_which_is_never_kept(ds: pydicom.Dataset, tmp_path: Path) -> None:
    acquired = read_dicom(Path(ds.filename)).acquired_at
    assert acquired is not None
    if "PatientAge" in ds:
        del ds.PatientAge
    ds.PatientBirthDate = f"{acquired.year - 61:04d}{acquired.month:02d}{acquired.day:02d}"
    ds.save_as(tmp_path / "dob.dcm")
    rec = read_record(tmp_path / "dob.dcm")
    assert rec.age == 61.0
    assert ds.PatientBirthDate not in repr(rec.__dict__)


def test_patient_age_string_wins(ds: pydicom.Dataset, tmp_path: Path) -> None:
    ds.PatientAge = "018M"
    ds.PatientBirthDate = "19000101"
    ds.save_as(tmp_path / "age.dcm")
    assert read_dicom(tmp_path / "age.dcm").age == pytest.approx(1.5)


def test_rhythm_group_after_the_median_beat(ds: pydicom.Dataset, reference: np.ndarray, tmp_path: Path) -> None:
    seq = ds.WaveformSequence
    assert len(seq) == 2 and seq[1].WaveformOriginality == "DERIVED"
    ds.WaveformSequence = pydicom.Sequence([seq[1], seq[0]])
    ds.save_as(tmp_path / "order.dcm")
    rec = read_dicom(tmp_path / "order.dcm")
    np.testing.assert_allclose(rec.signal, reference, atol=1e-6)
    assert rec.acquired_at == datetime(2006, 2, 1, 10, 24, 3)


HEMODYNAMIC = "1.2.840.10008.5.1.4.1.1.9.2.1"


def _add_pressure_channel(ds: pydicom.Dataset) -> None:
    """Append an aortic pressure channel (mmHg) to the rhythm group, re-interleaving WaveformData."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    group = ds.WaveformSequence[0]
    n, n_ch = int(group.NumberOfWaveformSamples), int(group.NumberOfWaveformChannels)
    raw = np.frombuffer(group.WaveformData, dtype="<i2", count=n * n_ch).reshape(n, n_ch)
    pressure = (np.arange(n) % 100).astype("<i2")[:, None]
    group.WaveformData = np.hstack([raw, pressure]).astype("<i2").tobytes()
    group.NumberOfWaveformChannels = n_ch + 1
    src, unit, ch = Dataset(), Dataset(), Dataset()
    src.CodeValue, src.CodingSchemeDesignator, src.CodeMeaning = "2:18944", "MDC", "Aortic pressure"
    unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "mm[Hg]", "UCUM", "mmHg"
    ch.ChannelSourceSequence = Sequence([src])
    ch.ChannelSensitivityUnitsSequence = Sequence([unit])
    ch.ChannelSensitivity = 1.0
    group.ChannelDefinitionSequence.append(ch)


def test_hemodynamic_object_with_the_12_leads(ds: pydicom.Dataset, reference: np.ndarray, tmp_path: Path) -> None:
    ds.SOPClassUID = HEMODYNAMIC
    ds.file_meta.MediaStorageSOPClassUID = HEMODYNAMIC
    _add_pressure_channel(ds)
    ds.save_as(tmp_path / "hemo.dcm")
    rec = read_dicom(tmp_path / "hemo.dcm")
    np.testing.assert_allclose(rec.signal, reference, atol=1e-6)
    assert rec.repairs == ("ignored non-ECG channels: Aortic pressure",)


def test_hemodynamic_object_without_ecg_leads_is_refused(ds: pydicom.Dataset, tmp_path: Path) -> None:
    from ecgkit.errors import SignalError

    ds.SOPClassUID = HEMODYNAMIC
    _add_pressure_channel(ds)
    group = ds.WaveformSequence[0]
    for ch in list(group.ChannelDefinitionSequence)[:9]:  # leave V4-V6 and the pressure
        ch.ChannelSourceSequence[0].CodeValue = "2:18945"
        ch.ChannelSourceSequence[0].CodeMeaning = "Left ventricular pressure"
    ds.save_as(tmp_path / "hemo3.dcm")
    with pytest.raises(SignalError, match=r"DICOM Hemodynamic Waveform: .*missing lead") as err:
        read_dicom(tmp_path / "hemo3.dcm")
    assert "hemo3" in str(err.value)
