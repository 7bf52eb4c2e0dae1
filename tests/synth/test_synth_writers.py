"""WFDB and GE MUSE writers: files read back equal the generated signal within quantisation, and the
MUSE XML has the structure of the real MUSE example in ``../shared/data/muse``."""
from __future__ import annotations

import base64
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import wfdb
from lxml import etree

from ecgkit.record import LEADS
from ecgkit.synth.beats import make_morphology
from ecgkit.synth.render import simulate_record
from ecgkit.synth.writers import MUSE_UV_PER_BIT, Demographics, to_adc, write_muse, write_wfdb

STATEMENTS = [(None, "Sinus rhythm"), ("ENDSLINE", "with 1st degree A-V block"),
              ("ENDSLINE", "Right bundle branch block"), ("ENDSLINE", "Abnormal ECG"),
              ("USERINSERT", "Confirmed by DOE, JOHN (123) on 3/4/2019 10:45:12 AM")]
DEMO = Demographics(patient_id="P000123", age=63, sex="M", acquired=datetime(2019, 3, 4, 10, 22, 0),
                    last_name="SYNTHETIC", first_name="ALEX", birth_date=datetime(1955, 7, 1))


def _sim():
    labels = {"RBBB", "1AVB"}
    return simulate_record(labels, make_morphology(labels, np.random.default_rng(3)), np.random.default_rng(4))


def test_wfdb_round_trip_with_wfdb_rdsamp(tmp_path: Path) -> None:
    sim = _sim()
    hea, dat = write_wfdb(tmp_path / "r000456.hea", sim.signal, 500, DEMO, [t for _, t in STATEMENTS])
    assert dat.stat().st_size == 12 * 5000 * 2
    sig, fields = wfdb.rdsamp(str(tmp_path / "r000456"))
    assert sig.shape == (5000, 12)
    assert fields["fs"] == 500 and fields["sig_name"] == list(LEADS) and fields["units"] == ["mV"] * 12
    np.testing.assert_allclose(sig.T, sim.signal, atol=0.0005 + 1e-6)  # 1 uV steps, round to nearest
    assert fields["comments"] == ["Age: 63", "Sex: Male", "Patient: P000123", "Acquired: 2019-03-04T10:22:00",
                                  *[f"Statement: {t}" for _, t in STATEMENTS]]
    raw = wfdb.rdrecord(str(tmp_path / "r000456"), physical=False)
    adc = to_adc(sim.signal, 1000.0)
    assert raw.checksum == [int(c) for c in (adc.astype(np.int64).sum(axis=1) & 0xFFFF)]
    assert raw.fmt == ["16"] * 12 and raw.adc_gain == [1000.0] * 12
    assert hea.read_text().splitlines()[0] == "r000456 12 500 5000"


def test_muse_xml_decodes_to_the_generated_samples(tmp_path: Path) -> None:
    sim = _sim()
    path = write_muse(tmp_path / "r000456.xml", sim.signal, sim.median, 500, DEMO, STATEMENTS, sim.measurements)
    head = path.read_bytes()[:120]
    assert head.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>\r\n<!DOCTYPE RestingECG SYSTEM "restecg.dtd">')
    root = etree.parse(str(path)).getroot()
    assert root.findtext("PatientDemographics/PatientID") == "P000123"
    assert root.findtext("PatientDemographics/Gender") == "MALE"
    assert root.findtext("TestDemographics/AcquisitionDate") == "03-04-2019"
    assert root.findtext("TestDemographics/AcquisitionTime") == "10:22:00"
    stm = root.findall("Diagnosis/DiagnosisStatement")
    assert [(s.findtext("StmtFlag"), s.findtext("StmtText")) for s in stm] == STATEMENTS
    assert [s.findtext("StmtText") for s in root.findall("OriginalDiagnosis/DiagnosisStatement")] == [
        t for f, t in STATEMENTS if f != "USERINSERT"]
    rhythm = root.find("Waveform[WaveformType='Rhythm']")
    leads = rhythm.findall("LeadData")
    assert [ld.findtext("LeadID") for ld in leads] == ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    units_per_mv = 1000.0 / MUSE_UV_PER_BIT
    for ld in leads:
        raw = base64.b64decode(ld.findtext("WaveFormData"))
        samples = np.frombuffer(raw, dtype="<i2")
        assert samples.size == int(ld.findtext("LeadSampleCountTotal")) == 5000
        assert len(raw) == int(ld.findtext("LeadByteCountTotal"))
        assert zlib.crc32(raw) == int(ld.findtext("LeadDataCRC32"))
        assert float(ld.findtext("LeadAmplitudeUnitsPerBit")) == 4.88
        expected = to_adc(sim.signal[LEADS.index(ld.findtext("LeadID"))], units_per_mv)
        np.testing.assert_array_equal(samples, expected)
        np.testing.assert_allclose(samples * MUSE_UV_PER_BIT / 1000, sim.signal[LEADS.index(ld.findtext("LeadID"))],
                                   atol=MUSE_UV_PER_BIT / 2000 + 1e-6)
    median = root.find("Waveform[WaveformType='Median']")
    assert [int(ld.findtext("LeadSampleCountTotal")) for ld in median.findall("LeadData")] == [600] * 8


def _tags(elem) -> list[str]:
    return [c.tag for c in elem if isinstance(c.tag, str)]


def test_muse_structure_matches_the_real_export(tmp_path: Path, shared_data: Path) -> None:
    sim = _sim()
    ours = etree.parse(str(write_muse(tmp_path / "x.xml", sim.signal, sim.median, 500, DEMO, STATEMENTS,
                                      sim.measurements))).getroot()
    real = etree.parse(str(shared_data / "muse" / "MUSE_20200923_093504_79000_example.xml")).getroot()
    # our top-level elements are a subsequence of the real file's, in the same order
    real_top = _tags(real)
    positions = [real_top.index(t) for t in _tags(ours)]
    assert positions == sorted(positions)
    # waveform headers and each LeadData have exactly the real children, in the real order
    for kind in ("Median", "Rhythm"):
        rw, ow = real.find(f"Waveform[WaveformType='{kind}']"), ours.find(f"Waveform[WaveformType='{kind}']")
        assert _tags(ow) == _tags(rw)
        assert _tags(ow.find("LeadData")) == _tags(rw.find("LeadData"))
        for tag in ("SampleBase", "NumberofLeads", "SampleType"):
            assert ow.findtext(tag) == rw.findtext(tag)
    for section in ("PatientDemographics", "TestDemographics", "RestingECGMeasurements"):
        real_tags = _tags(real.find(section))
        pos = [real_tags.index(t) for t in _tags(ours.find(section))]
        assert pos == sorted(pos), section
