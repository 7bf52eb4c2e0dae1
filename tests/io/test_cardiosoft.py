"""GE CardioSoft XML reader, checked against the real example read independently with xml.etree.

Golden values: every expected value below is parsed in the test itself from
``ge-cardiosoft/example-XML1.xml`` with the standard library's ``xml.etree`` (a parser independent
of the reader's lxml): the StripData integers times ``Resolution`` (uV/LSB), ``PID``, ``Age``,
``Gender``, ``ObservationDateTime`` fields and the ``ConclusionText`` lines.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from ecgkit.errors import FormatError, SignalError
from ecgkit.io import read_record
from ecgkit.io.cardiosoft import read_cardiosoft
from ecgkit.io.detect import detect_format
from ecgkit.record import LEADS


@pytest.fixture(scope="module")
def cs_file(shared_data: Path) -> Path:
    return shared_data / "ge-cardiosoft" / "example-XML1.xml"


def _strip_reference(path: Path) -> tuple[dict[str, np.ndarray], float, float]:
    """Lead -> mV array, fs, uV per LSB, from StripData via xml.etree."""
    root = ET.parse(path).getroot()
    strip = root.find("StripData")
    res = float(strip.find("Resolution").text)
    fs = float(strip.find("SampleRate").text)
    leads = {}
    for w in strip.findall("WaveformData"):
        values = [int(v) for v in w.text.replace("\n", "").split(",") if v.strip()]
        leads[w.get("lead")] = np.array(values, dtype=np.float64) * res / 1000.0
    return leads, fs, res


def _all_text(rec) -> str:
    return " ".join([rec.record_id, str(rec.patient_id), *rec.statements, *rec.native_leads,
                     *rec.repairs, repr(rec.codes)])


def test_cardiosoft_signal_matches_strip_data(cs_file: Path) -> None:
    rec = read_cardiosoft(cs_file)
    ref, fs, res = _strip_reference(cs_file)
    assert res == 5.0
    assert rec.signal.dtype == np.float32 and rec.signal.shape == (12, 5000)
    assert rec.fs == fs == 500.0 and rec.native_fs == 500.0
    expected = np.stack([ref[lead] for lead in LEADS])
    np.testing.assert_allclose(rec.signal, expected, atol=1e-6)
    assert rec.native_leads == tuple(ref)
    assert rec.source_format == "cardiosoft" and rec.source_path == str(cs_file)
    assert rec.record_id == "example-XML1" and rec.repairs == ()


def test_cardiosoft_lead_identities_and_amplitudes(cs_file: Path) -> None:
    sig = read_cardiosoft(cs_file).signal
    lsb = 0.005  # mV; stored leads are rounded independently, so identities hold to ~1-2 LSB
    assert np.abs(sig[0] + sig[2] - sig[1]).max() <= lsb + 1e-6
    assert np.abs(sig[3] + sig[4] + sig[5]).max() <= 2 * lsb + 1e-6
    ptp = np.ptp(sig, axis=1)
    assert np.all(ptp[[0, 1, 6, 7, 8, 9, 10, 11]] > 0.2) and np.all(ptp < 5.0)


def test_cardiosoft_metadata(cs_file: Path) -> None:
    rec = read_cardiosoft(cs_file)
    root = ET.parse(cs_file).getroot()
    obs = root.find("ObservationDateTime")
    when = datetime(*(int(obs.find(k).text) for k in ("Year", "Month", "Day", "Hour", "Minute", "Second")))
    assert rec.acquired_at == when == datetime(2018, 7, 19, 14, 19, 39)
    assert rec.patient_id == root.find("PatientInfo/PID").text == "1532006361"
    assert rec.age == float(root.find("PatientInfo/Age").text) == 53.0
    assert root.find("PatientInfo/Gender").text == "MALE" and rec.sex == "M"
    assert rec.codes == {}
    # names and the birth date never reach the record
    given = root.find("PatientInfo/Name/GivenName").text
    assert given == "ACE" and given not in _all_text(rec)
    assert "1965" not in _all_text(rec)


def test_cardiosoft_statements_are_conclusion_lines(cs_file: Path) -> None:
    rec = read_cardiosoft(cs_file)
    root = ET.parse(cs_file).getroot()
    lines = [e.text.strip() for e in root.iter("ConclusionText") if e.text and e.text.strip()]
    expected = [line for line in lines if set(line) != {"-"}]
    assert rec.statements == expected
    assert rec.statements[:2] == ["Sinus bradycardia", "Otherwise normal ECG"]
    assert "---" not in rec.statements


def test_cardiosoft_detected_and_dispatched(cs_file: Path) -> None:
    assert detect_format(cs_file) == "cardiosoft"
    rec = read_record(cs_file, fs=250, seconds=10)
    assert rec.signal.shape == (12, 2500) and rec.fs == 250.0
    assert any(r.startswith("resampled 500->250") for r in rec.repairs)


def _edit(src: Path, dst: Path, fn) -> Path:
    tree = etree.parse(str(src))
    fn(tree.getroot())
    tree.write(str(dst), encoding="ISO-8859-1", xml_declaration=True)
    return dst


def test_cardiosoft_truncated_mid_tag(cs_file: Path, tmp_path: Path) -> None:
    data = cs_file.read_bytes()
    cut = data.index(b"<WaveformData", data.index(b"<StripData")) + 7
    bad = tmp_path / "truncated.xml"
    bad.write_bytes(data[:cut])
    with pytest.raises(FormatError, match="malformed XML at line") as err:
        read_cardiosoft(bad)
    assert str(bad) in str(err.value) and "record truncated" in str(err.value)


def test_cardiosoft_missing_lead_names_it(cs_file: Path, tmp_path: Path) -> None:
    def drop_v3(root):
        strip = root.find("StripData")
        strip.remove(strip.find("WaveformData[@lead='V3']"))
    bad = _edit(cs_file, tmp_path / "no_v3.xml", drop_v3)
    with pytest.raises(SignalError, match=r"missing lead\(s\) V3") as err:
        read_cardiosoft(bad)
    assert "no_v3" in str(err.value)


def test_cardiosoft_eight_leads_derives_limb_leads(cs_file: Path, tmp_path: Path) -> None:
    def keep_eight(root):
        strip = root.find("StripData")
        for lead in ("III", "aVR", "aVL", "aVF"):
            strip.remove(strip.find(f"WaveformData[@lead='{lead}']"))
    eight = read_cardiosoft(_edit(cs_file, tmp_path / "eight.xml", keep_eight))
    full = read_cardiosoft(cs_file)
    assert eight.repairs == ("derived III,aVR,aVL,aVF from I,II",)
    i, ii = full.signal[0], full.signal[1]
    np.testing.assert_allclose(eight.signal[2:6], np.stack([ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]),
                               atol=1e-6)
    # the device's own stored limb leads agree with the derived ones to rounding (1-2 LSB)
    assert np.abs(eight.signal[2:6] - full.signal[2:6]).max() <= 0.0101
    stored = [0, 1, 6, 7, 8, 9, 10, 11]
    np.testing.assert_array_equal(eight.signal[stored], full.signal[stored])


def test_cardiosoft_sample_count_mismatch(cs_file: Path, tmp_path: Path) -> None:
    def shorten(root):
        w = root.find("StripData/WaveformData[@lead='V2']")
        w.text = ",".join(w.text.split(",")[:4000])
    bad = _edit(cs_file, tmp_path / "short.xml", shorten)
    with pytest.raises(SignalError, match="lead V2 has 4000 samples, expected 5000"):
        read_cardiosoft(bad)


def test_cardiosoft_without_strip_data(cs_file: Path, tmp_path: Path) -> None:
    bad = _edit(cs_file, tmp_path / "nostrip.xml", lambda root: root.remove(root.find("StripData")))
    with pytest.raises(FormatError, match="no rhythm waveform") as err:
        read_cardiosoft(bad)
    assert "nostrip.xml" in str(err.value)


def test_cardiosoft_non_numeric_sample(cs_file: Path, tmp_path: Path) -> None:
    def corrupt(root):
        w = root.find("StripData/WaveformData[@lead='I']")
        w.text = w.text.replace(",", ",x", 1)
    with pytest.raises(SignalError, match="lead I holds a value that is not a number"):
        read_cardiosoft(_edit(cs_file, tmp_path / "nan.xml", corrupt))


def test_cardiosoft_external_entities_are_not_resolved(cs_file: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = cs_file.read_bytes()
    doctype = f'<!DOCTYPE CardiologyXML [<!ENTITY e SYSTEM "file://{secret}">]>\n'
    data = data.replace(b"<CardiologyXML>", doctype.encode() + b"<CardiologyXML>", 1)
    data = data.replace(b"<PID>1532006361</PID>", b"<PID>&e;</PID>", 1)
    bad = tmp_path / "xxe.xml"
    bad.write_bytes(data)
    rec = read_cardiosoft(bad)
    assert rec.patient_id is None  # the entity stays an unresolved reference, never the file's content
    assert rec.signal.shape == (12, 5000)
