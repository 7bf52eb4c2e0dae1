"""GE MUSE reader against an independent xml.etree decode of the real MUSE example."""
from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ecgkit.errors import FormatError, SignalError
from ecgkit.io import detect_format, read_record
from ecgkit.io.muse import read_muse
from ecgkit.record import LEADS

MUSE_NAME = "MUSE_20200923_093504_79000_example.xml"


@pytest.fixture(scope="module")
def muse_file(shared_data: Path) -> Path:
    return shared_data / "muse" / MUSE_NAME


def _etree_rhythm(path: Path) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Decode the Rhythm waveform with xml.etree: int16 samples and units-per-bit per lead."""
    root = ET.parse(path).getroot()
    samples, per_bit = {}, {}
    for wf in root.iter("Waveform"):
        if wf.findtext("WaveformType") != "Rhythm":
            continue
        for lead in wf.iter("LeadData"):
            name = lead.findtext("LeadID")
            samples[name] = np.frombuffer(base64.b64decode(lead.findtext("WaveFormData")), dtype="<i2")
            per_bit[name] = float(lead.findtext("LeadAmplitudeUnitsPerBit"))
    return samples, per_bit


def test_detected_as_muse(muse_file: Path) -> None:
    assert detect_format(muse_file) == "muse"


def test_rhythm_amplitudes_and_derived_leads(muse_file: Path) -> None:
    rec = read_record(muse_file)
    raw, per_bit = _etree_rhythm(muse_file)
    assert sorted(raw) == sorted(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    assert rec.signal.shape == (12, 5000) and rec.signal.dtype == np.float32 and rec.fs == 500.0
    for name in raw:  # stored leads: sample * LeadAmplitudeUnitsPerBit uV
        expected = raw[name] * per_bit[name] / 1000.0
        np.testing.assert_allclose(rec.signal[LEADS.index(name)], expected, rtol=1e-6, atol=1e-6)
    lead_i = raw["I"] * per_bit["I"] / 1000.0
    lead_ii = raw["II"] * per_bit["II"] / 1000.0
    derived = {"III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2, "aVL": lead_i - lead_ii / 2,
               "aVF": lead_ii - lead_i / 2}
    for name, expected in derived.items():
        np.testing.assert_allclose(rec.signal[LEADS.index(name)], expected, rtol=1e-6, atol=1e-6)
    assert rec.repairs == ("derived III,aVR,aVL,aVF from I,II",)
    assert rec.native_leads == ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


def test_statements_are_stmttext_without_confirmed_by(muse_file: Path) -> None:
    root = ET.parse(muse_file).getroot()
    lines = [s.findtext("StmtText") for s in root.find("Diagnosis").iter("DiagnosisStatement")]
    expected = [t for t in lines if not t.startswith("Confirmed by")]
    assert len(expected) == len(lines) - 1
    rec = read_muse(muse_file)
    assert rec.statements == expected
    assert rec.statements == ["Sinus bradycardia", "with sinus arrhythmia", "with 1st degree A-V block",
                              "Otherwise normal ECG"]


def test_demographics_without_identifiers(muse_file: Path) -> None:
    rec = read_muse(muse_file)
    assert rec.patient_id == "201700237"
    assert rec.acquired_at == datetime(2020, 9, 22, 9, 3, 32)
    assert rec.age == 40.0 and rec.sex == "M"
    text = repr(rec.__dict__)
    for identifier in ("TESTONE", "MUSE\'", "06-10-1980", "1980"):
        assert identifier not in text


def test_median_beat_is_never_read(muse_file: Path) -> None:
    rec = read_muse(muse_file)
    assert rec.n_samples == 5000  # the Median waveform holds 600 samples (1.2 s)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-be", "iso-8859-1"])
def test_encodings_parse_identically(muse_file: Path, tmp_path: Path, encoding: str) -> None:
    text = muse_file.read_bytes().decode("iso-8859-1").replace('encoding="ISO-8859-1"', f'encoding="{encoding}"')
    text = text.replace("Sinus bradycardia", "Sinus bradycardia \u00e4\u00f6")
    out = tmp_path / f"muse-{encoding}.xml"
    out.write_bytes(text.encode(encoding))
    rec = read_muse(out)
    ref = read_muse(muse_file)
    np.testing.assert_array_equal(rec.signal, ref.signal)
    assert rec.statements[0] == "Sinus bradycardia \u00e4\u00f6"
    assert rec.statements[1:] == ref.statements[1:]


def test_truncated_mid_tag(muse_file: Path, tmp_path: Path) -> None:
    data = muse_file.read_bytes()
    out = tmp_path / "cut.xml"
    out.write_bytes(data[: data.index(b"<WaveFormData>", len(data) // 2) + 7])
    with pytest.raises(FormatError, match="truncated or malformed XML") as err:
        read_muse(out)
    assert "cut" in str(err.value) and str(out) in str(err.value)


def test_missing_lead(muse_file: Path, tmp_path: Path) -> None:
    text = muse_file.read_bytes().decode("iso-8859-1")
    rhythm_at = text.index("<WaveformType>Rhythm")
    v3 = text.index("<LeadID>V3</LeadID>", rhythm_at)
    block_start = text.rindex("<LeadData>", 0, v3)
    block_end = text.index("</LeadData>", v3) + len("</LeadData>")
    out = tmp_path / "no-v3.xml"
    out.write_bytes((text[:block_start] + text[block_end:]).encode("iso-8859-1"))
    with pytest.raises(SignalError, match=r"missing lead\(s\) V3") as err:
        read_muse(out)
    assert "no-v3" in str(err.value)


def test_sample_count_mismatch(muse_file: Path, tmp_path: Path) -> None:
    text = muse_file.read_bytes().decode("iso-8859-1")
    rhythm_at = text.index("<WaveformType>Rhythm")
    at = text.index("<LeadSampleCountTotal>5000</LeadSampleCountTotal>", rhythm_at)
    text = text[:at] + "<LeadSampleCountTotal>5001</LeadSampleCountTotal>" + text[at + 49:]
    out = tmp_path / "count.xml"
    out.write_bytes(text.encode("iso-8859-1"))
    with pytest.raises(SignalError, match="5000 samples, LeadSampleCountTotal says 5001"):
        read_muse(out)


def test_median_only_file_is_rejected(muse_file: Path, tmp_path: Path) -> None:
    text = muse_file.read_bytes().decode("iso-8859-1").replace("<WaveformType>Rhythm", "<WaveformType>Median")
    out = tmp_path / "median-only.xml"
    out.write_bytes(text.encode("iso-8859-1"))
    with pytest.raises(FormatError, match="no Rhythm waveform"):
        read_muse(out)


def test_xml_that_is_not_an_ecg(tmp_path: Path) -> None:
    out = tmp_path / "invoice.xml"
    out.write_text('<?xml version="1.0"?>\n<Invoice><Total>3</Total></Invoice>\n')
    with pytest.raises(FormatError, match="<Invoice> is not an ECG format") as err:
        read_record(out)
    assert "invoice.xml" in str(err.value)
