"""HL7 aECG reader, checked against the standard's example file read independently with xml.etree.

Golden values: the RHYTHM series' ``SLIST_PQ`` sequences are parsed in the test with ``xml.etree``
(``origin + scale * digit``, uV -> mV); fs is 1 / the time sequence's increment; the subject id,
gender code, birth time and effective time are read from the same tree. The example has no
interpretation statements (its only annotations are beats, waves, intervals and a coded rhythm).
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
from ecgkit.io.aecg import read_aecg
from ecgkit.io.detect import detect_format

NS = {"h": "urn:hl7-org:v3"}
MDC = {"MDC_ECG_LEAD_I": "I", "MDC_ECG_LEAD_II": "II", "MDC_ECG_LEAD_III": "III", "MDC_ECG_LEAD_AVR": "aVR",
       "MDC_ECG_LEAD_AVL": "aVL", "MDC_ECG_LEAD_AVF": "aVF",
       **{f"MDC_ECG_LEAD_V{k}": f"V{k}" for k in range(1, 7)}}
ORDER = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(scope="module")
def aecg_file(shared_data: Path) -> Path:
    return shared_data / "hl7-aecg" / "subject1_0.xml"


def _rhythm(root: ET.Element) -> ET.Element:
    return next(s for s in root.findall("h:component/h:series", NS)
                if s.find("h:code", NS).get("code") == "RHYTHM")


def _reference(path: Path) -> tuple[dict[str, np.ndarray], float]:
    root = ET.parse(path).getroot()
    leads, fs = {}, None
    for seq in _rhythm(root).findall("h:component/h:sequenceSet/h:component/h:sequence", NS):
        code = seq.find("h:code", NS).get("code")
        value = seq.find("h:value", NS)
        if code.startswith("TIME_"):
            inc = value.find("h:increment", NS)
            assert inc.get("unit") == "s"
            fs = 1.0 / float(inc.get("value"))
            continue
        origin, scale = value.find("h:origin", NS), value.find("h:scale", NS)
        assert origin.get("unit") == scale.get("unit") == "uV"
        digits = np.array(value.find("h:digits", NS).text.split(), dtype=np.float64)
        leads[MDC[code]] = (float(origin.get("value")) + float(scale.get("value")) * digits) / 1000.0
    return leads, fs


def test_aecg_signal_matches_rhythm_series(aecg_file: Path) -> None:
    rec = read_aecg(aecg_file)
    ref, fs = _reference(aecg_file)
    assert rec.signal.dtype == np.float32 and rec.signal.shape == (12, 5000)  # not the 599-sample beat
    assert rec.fs == pytest.approx(fs) and rec.fs == 500.0
    np.testing.assert_allclose(rec.signal, np.stack([ref[lead] for lead in ORDER]), atol=1e-6)
    assert rec.native_leads[:3] == ("MDC_ECG_LEAD_I", "MDC_ECG_LEAD_II", "MDC_ECG_LEAD_V1")
    assert rec.source_format == "aecg" and rec.repairs == () and rec.codes == {}


def test_aecg_lead_identities_and_amplitudes(aecg_file: Path) -> None:
    sig = read_aecg(aecg_file).signal
    lsb = 0.0025
    assert np.abs(sig[0] + sig[2] - sig[1]).max() <= lsb + 1e-6
    assert np.abs(sig[3] + sig[4] + sig[5]).max() <= 2 * lsb + 1e-6
    ptp = np.ptp(sig, axis=1)
    assert np.all(ptp > 0.2) and np.all(ptp < 5.0)


def test_aecg_metadata(aecg_file: Path) -> None:
    rec = read_aecg(aecg_file)
    root = ET.parse(aecg_file).getroot()
    subject = root.find(".//h:trialSubject", NS)
    assert rec.patient_id == subject.find("h:id", NS).get("extension") == "subject1"
    person = subject.find("h:subjectDemographicPerson", NS)
    assert rec.sex == person.find("h:administrativeGenderCode", NS).get("code") == "M"
    assert root.find("h:effectiveTime/h:center", NS).get("value") == "20021122091000"
    assert rec.acquired_at == datetime(2002, 11, 22, 9, 10, 0)
    birth = datetime.strptime(person.find("h:birthTime", NS).get("value"), "%Y%m%d")
    completed = rec.acquired_at.year - birth.year - ((rec.acquired_at.month, rec.acquired_at.day)
                                                     < (birth.month, birth.day))
    assert rec.age == float(completed) == 49.0
    # the subject's name ("Clark") and birth date never reach the record
    text = " ".join([rec.record_id, str(rec.patient_id), *rec.statements, *rec.native_leads, *rec.repairs])
    assert person.find("h:name", NS).text == "Clark" and "Clark" not in text and "1953" not in text


def test_aecg_has_no_statements(aecg_file: Path) -> None:
    root = ET.parse(aecg_file).getroot()
    codes = {c.get("code") for c in root.iter("{urn:hl7-org:v3}code")}
    assert not any(code and code.startswith("MDC_ECG_INTERPRETATION") for code in codes)
    assert read_aecg(aecg_file).statements == []


def test_aecg_interpretation_statements_are_read(aecg_file: Path, tmp_path: Path) -> None:
    tree = etree.parse(str(aecg_file))
    root = tree.getroot()
    h = "{urn:hl7-org:v3}"
    xsi = "{http://www.w3.org/2001/XMLSchema-instance}type"
    comp = etree.SubElement(root, h + "component")
    for line in ("Sinus rhythm", "Left ventricular hypertrophy", "Confirmed by Dr X"):
        ann = etree.SubElement(comp, h + "annotation")
        etree.SubElement(ann, h + "code", code="MDC_ECG_INTERPRETATION_STATEMENT")
        etree.SubElement(ann, h + "value", {xsi: "ST"}).text = line
    path = tmp_path / "stmts.xml"
    tree.write(str(path), encoding="UTF-8", xml_declaration=True)
    assert read_aecg(path).statements == ["Sinus rhythm", "Left ventricular hypertrophy"]


def test_aecg_detected_and_dispatched(aecg_file: Path) -> None:
    assert detect_format(aecg_file) == "aecg"
    rec = read_record(aecg_file, fs=500, seconds=10)
    assert rec.signal.shape == (12, 5000)


def _drop_rhythm_leads(src: Path, dst: Path, codes: set[str]) -> Path:
    tree = etree.parse(str(src))
    for seq in tree.getroot().iterfind(".//{*}series/{*}component/{*}sequenceSet/{*}component/{*}sequence"):
        series = seq.getparent().getparent().getparent().getparent()
        if series.find("{*}code").get("code") == "RHYTHM" and seq.find("{*}code").get("code") in codes:
            comp = seq.getparent()
            comp.getparent().remove(comp)
    tree.write(str(dst), encoding="UTF-8", xml_declaration=True)
    return dst


def test_aecg_missing_lead_names_it(aecg_file: Path, tmp_path: Path) -> None:
    bad = _drop_rhythm_leads(aecg_file, tmp_path / "nov3.xml", {"MDC_ECG_LEAD_V3"})
    with pytest.raises(SignalError, match=r"missing lead\(s\) V3") as err:
        read_aecg(bad)
    assert "nov3" in str(err.value)


def test_aecg_eight_leads_derives_limb_leads(aecg_file: Path, tmp_path: Path) -> None:
    path = _drop_rhythm_leads(aecg_file, tmp_path / "eight.xml", {"MDC_ECG_LEAD_III", "MDC_ECG_LEAD_AVR",
                                                                   "MDC_ECG_LEAD_AVL", "MDC_ECG_LEAD_AVF"})
    eight, full = read_aecg(path), read_aecg(aecg_file)
    assert eight.repairs == ("derived III,aVR,aVL,aVF from I,II",)
    assert np.abs(eight.signal[2:6] - full.signal[2:6]).max() <= 0.0026  # stored leads: rounded to 1 LSB


def test_aecg_truncated_mid_tag(aecg_file: Path, tmp_path: Path) -> None:
    data = aecg_file.read_bytes()
    bad = tmp_path / "cut.xml"
    bad.write_bytes(data[: data.index(b"<digits>", 20000) + 4])
    with pytest.raises(FormatError, match="malformed XML at line") as err:
        read_aecg(bad)
    assert str(bad) in str(err.value)


def test_aecg_without_rhythm_series(aecg_file: Path, tmp_path: Path) -> None:
    tree = etree.parse(str(aecg_file))
    root = tree.getroot()
    for comp in root.findall("{*}component"):
        root.remove(comp)
    path = tmp_path / "noseries.xml"
    tree.write(str(path), encoding="UTF-8", xml_declaration=True)
    with pytest.raises(FormatError, match="no rhythm waveform"):
        read_aecg(path)


def test_aecg_unequal_lead_lengths(aecg_file: Path, tmp_path: Path) -> None:
    tree = etree.parse(str(aecg_file))
    digits = tree.getroot().find(".//{*}digits")
    digits.text = " ".join(digits.text.split()[:4500])
    path = tmp_path / "short.xml"
    tree.write(str(path), encoding="UTF-8", xml_declaration=True)
    with pytest.raises(SignalError, match="MDC_ECG_LEAD_I=4500"):
        read_aecg(path)
