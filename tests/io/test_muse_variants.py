"""GE MUSE variants built from the real example: what other MUSE exports look like.

Each test edits a copy of the real file in ``tmp_path`` the way another MUSE version, site set-up
or export tool writes it (other encodings, 12 stored leads, other sampling rates and scales,
missing optional fields, another waveform order) and checks the decoded values against the
original, decoded independently with xml.etree.
"""
from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ecgkit.errors import FormatError, SignalError
from ecgkit.io import read_record
from ecgkit.io.muse import read_muse
from ecgkit.record import LEADS

MUSE_NAME = "MUSE_20200923_093504_79000_example.xml"
STORED = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


@pytest.fixture(scope="module")
def muse_text(shared_data: Path) -> str:
    return (shared_data / "muse" / MUSE_NAME).read_bytes().decode("iso-8859-1")


@pytest.fixture(scope="module")
def rhythm_int16(shared_data: Path) -> dict[str, np.ndarray]:
    """The Rhythm leads' stored int16 samples, decoded with xml.etree (independent of the reader)."""
    root = ET.parse(shared_data / "muse" / MUSE_NAME).getroot()
    for wf in root.iter("Waveform"):
        if wf.findtext("WaveformType") == "Rhythm":
            return {ld.findtext("LeadID"): np.frombuffer(base64.b64decode(ld.findtext("WaveFormData")), "<i2")
                    for ld in wf.iter("LeadData")}
    raise AssertionError("the example has no Rhythm waveform")


def _write(tmp_path: Path, name: str, text: str, encoding: str = "iso-8859-1") -> Path:
    out = tmp_path / name
    out.write_bytes(text.encode(encoding))
    return out


def _rhythm_span(text: str) -> tuple[int, int]:
    start = text.rindex("<Waveform>", 0, text.index("<WaveformType>Rhythm"))
    return start, text.index("</Waveform>", start) + len("</Waveform>")


def _edit_rhythm(text: str, old: str, new: str, count: int = -1) -> str:
    start, end = _rhythm_span(text)
    return text[:start] + text[start:end].replace(old, new, count) + text[end:]


def _lead_block(text: str, lead: str) -> tuple[int, int]:
    start, _ = _rhythm_span(text)
    at = text.index(f"<LeadID>{lead}</LeadID>", start)
    return text.rindex("<LeadData>", 0, at), text.index("</LeadData>", at) + len("</LeadData>")


def _mv(samples: np.ndarray, per_bit: float = 4.88) -> np.ndarray:
    return (samples.astype(np.float32) * np.float32(per_bit / 1000)).astype(np.float32)


@pytest.fixture(scope="module")
def reference(shared_data: Path):
    return read_muse(shared_data / "muse" / MUSE_NAME)


def test_utf8_with_bom(muse_text: str, reference, tmp_path: Path) -> None:
    text = muse_text.replace('encoding="ISO-8859-1"', 'encoding="UTF-8"').replace("Sinus brady", "Sinus br\u00e4dy")
    rec = read_record(_write(tmp_path, "bom.xml", text, "utf-8-sig"))
    np.testing.assert_array_equal(rec.signal, reference.signal)
    assert rec.statements[0] == "Sinus br\u00e4dycardia"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16"])
def test_utf16_without_declaration_change(muse_text: str, reference, tmp_path: Path, encoding: str) -> None:
    # some tools re-encode to UTF-16 but leave encoding="ISO-8859-1" in the declaration
    path = _write(tmp_path, "u16.xml", muse_text, encoding)
    rec = read_record(path)
    np.testing.assert_array_equal(rec.signal, reference.signal)
    assert rec.statements == reference.statements and rec.patient_id == "201700237"


def test_twelve_stored_leads_need_no_derivation(muse_text: str, rhythm_int16, tmp_path: Path) -> None:
    i, ii = rhythm_int16["I"].astype(np.int32), rhythm_int16["II"].astype(np.int32)
    # what a 12-lead MUSE export stores: the limb leads as their own int16 channels
    extra = {"III": ii - i, "aVR": -(i + ii) // 2, "aVL": i - ii // 2, "aVF": ii - i // 2}
    a, b = _lead_block(muse_text, "V6")
    template = muse_text[a:b]
    payload = template[template.index("<WaveFormData>") + 14: template.index("</WaveFormData>")]
    blocks = ""
    for name, samples in extra.items():
        data = base64.b64encode(samples.astype("<i2").tobytes()).decode()
        blocks += "\n      " + template.replace("<LeadID>V6</LeadID>", f"<LeadID>{name}</LeadID>").replace(
            payload, data)
    rec = read_record(_write(tmp_path, "twelve.xml", muse_text[:b] + blocks + muse_text[b:]))
    assert rec.repairs == ()
    assert rec.native_leads == STORED + ("III", "aVR", "aVL", "aVF")
    for name, samples in extra.items():
        np.testing.assert_array_equal(rec.signal[LEADS.index(name)], _mv(samples))
    np.testing.assert_array_equal(rec.signal[0], _mv(rhythm_int16["I"]))


def test_lead_ids_in_other_case_and_spelling(muse_text: str, reference, tmp_path: Path) -> None:
    text = muse_text
    for old, new in [("V1", "v1 "), ("V2", "Lead V2"), ("I", "i"), ("II", "LEAD_II")]:
        text = _edit_rhythm(text, f"<LeadID>{old}</LeadID>", f"<LeadID>{new}</LeadID>")
    rec = read_muse(_write(tmp_path, "ids.xml", text))
    np.testing.assert_array_equal(rec.signal, reference.signal)
    assert rec.native_leads[:4] == ("i", "LEAD_II", "v1", "Lead V2")


@pytest.mark.parametrize("base,exponent,fs", [("250", "0", 250.0), ("1000", "0", 1000.0), ("5", "2", 500.0)])
def test_other_sampling_rates(muse_text: str, rhythm_int16, tmp_path: Path, base: str, exponent: str,
                              fs: float) -> None:
    text = _edit_rhythm(muse_text, "<SampleBase>500</SampleBase>", f"<SampleBase>{base}</SampleBase>")
    text = _edit_rhythm(text, "<SampleExponent>0</SampleExponent>", f"<SampleExponent>{exponent}</SampleExponent>")
    path = _write(tmp_path, "fs.xml", text)
    rec = read_muse(path)
    assert rec.fs == fs and rec.n_samples == 5000
    np.testing.assert_array_equal(rec.signal[1], _mv(rhythm_int16["II"]))
    canon = read_record(path, fs=500)
    assert canon.fs == 500.0 and canon.n_samples == round(5000 * 500 / fs)
    assert canon.native_fs == fs


def test_other_amplitude_scales_and_units(muse_text: str, rhythm_int16, tmp_path: Path) -> None:
    a, b = _lead_block(muse_text, "V2")
    block = muse_text[a:b].replace("<LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>",
                                   "<LeadAmplitudeUnitsPerBit>1</LeadAmplitudeUnitsPerBit>")
    text = muse_text[:a] + block + muse_text[b:]
    a, b = _lead_block(text, "V3")
    block = text[a:b].replace("<LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>",
                              "<LeadAmplitudeUnitsPerBit>0.005</LeadAmplitudeUnitsPerBit>").replace(
        "MICROVOLTS", "MILLIVOLTS")
    rec = read_muse(_write(tmp_path, "scale.xml", text[:a] + block + text[b:]))
    np.testing.assert_allclose(rec.signal[LEADS.index("V2")], rhythm_int16["V2"] / 1000.0, rtol=1e-6)
    np.testing.assert_allclose(rec.signal[LEADS.index("V3")], rhythm_int16["V3"] * 0.005, rtol=1e-6)
    np.testing.assert_allclose(rec.signal[LEADS.index("V4")], rhythm_int16["V4"] * 4.88e-3, rtol=1e-6)


def test_unknown_amplitude_unit_is_an_error(muse_text: str, tmp_path: Path) -> None:
    text = _edit_rhythm(muse_text, "MICROVOLTS", "FURLONGS", 1)
    with pytest.raises(SignalError, match="lead I has unknown LeadAmplitudeUnits 'FURLONGS'") as err:
        read_muse(_write(tmp_path, "units.xml", text))
    assert "units" in str(err.value)


def test_missing_optional_fields(muse_text: str, reference, tmp_path: Path) -> None:
    text = muse_text
    for tag in ("PatientID", "PatientAge", "AgeUnits", "Gender", "AcquisitionDate", "AcquisitionTime"):
        start = text.index(f"<{tag}>")
        text = text[:start] + text[text.index(f"</{tag}>") + len(tag) + 3:]
    rec = read_record(_write(tmp_path, "anon.xml", text))
    assert (rec.patient_id, rec.age, rec.sex, rec.acquired_at) == (None, None, None, None)
    np.testing.assert_array_equal(rec.signal, reference.signal)
    assert rec.statements == reference.statements


def test_date_only_and_other_age_units(muse_text: str, tmp_path: Path) -> None:
    text = muse_text.replace("<AcquisitionTime>09:03:32</AcquisitionTime>", "")
    text = text.replace("<PatientAge>40</PatientAge>", "<PatientAge>18</PatientAge>").replace(
        "<AgeUnits>YEARS</AgeUnits>", "<AgeUnits>MONTHS</AgeUnits>").replace("<Gender>MALE</Gender>",
                                                                            "<Gender>FEMALE</Gender>")
    rec = read_muse(_write(tmp_path, "infant.xml", text))
    assert rec.acquired_at == datetime(2020, 9, 22)
    assert rec.age == pytest.approx(1.5) and rec.sex == "F"


def test_rhythm_before_median_is_still_the_rhythm(muse_text: str, reference, tmp_path: Path) -> None:
    r0, r1 = _rhythm_span(muse_text)
    m0 = muse_text.rindex("<Waveform>", 0, muse_text.index("<WaveformType>Median"))
    m1 = muse_text.index("</Waveform>", m0) + len("</Waveform>")
    text = muse_text[:m0] + muse_text[r0:r1] + muse_text[m1:r0] + muse_text[m0:m1] + muse_text[r1:]
    rec = read_muse(_write(tmp_path, "order.xml", text))
    np.testing.assert_array_equal(rec.signal, reference.signal)


def test_rhythm_type_in_other_case(muse_text: str, reference, tmp_path: Path) -> None:
    text = muse_text.replace("<WaveformType>Rhythm</WaveformType>", "<WaveformType> RHYTHM </WaveformType>")
    rec = read_muse(_write(tmp_path, "upper.xml", text))
    np.testing.assert_array_equal(rec.signal, reference.signal)


def test_statement_flags_and_escapes(muse_text: str, tmp_path: Path) -> None:
    # flags after the text, several flags, an escaped character, a CDATA section
    text = muse_text.replace("<StmtText>Sinus bradycardia</StmtText>",
                             "<StmtText>Sinus bradycardia &amp; arrhythmia</StmtText><StmtFlag>ENDSLINE</StmtFlag>"
                             "<StmtFlag>USERINSERT</StmtFlag>", 1)
    text = text.replace("<StmtText>Otherwise normal ECG</StmtText>",
                        "<StmtText><![CDATA[Otherwise normal ECG <unconfirmed>]]></StmtText>", 1)
    rec = read_muse(_write(tmp_path, "flags.xml", text))
    assert rec.statements == ["Sinus bradycardia & arrhythmia", "with sinus arrhythmia",
                              "with 1st degree A-V block", "Otherwise normal ECG <unconfirmed>"]


def test_only_original_diagnosis(muse_text: str, tmp_path: Path) -> None:
    # an unconfirmed export keeps the device's reading only
    start = muse_text.index("<Diagnosis>")
    text = muse_text[:start] + muse_text[muse_text.index("</Diagnosis>") + len("</Diagnosis>"):]
    rec = read_muse(_write(tmp_path, "unconfirmed.xml", text))
    assert rec.statements == ["Sinus bradycardia", "with sinus arrhythmia", "with 1st degree A-V block",
                              "Otherwise normal ECG"]


def test_byte_count_mismatch_is_an_error(muse_text: str, tmp_path: Path) -> None:
    a, b = _lead_block(muse_text, "V4")
    block = muse_text[a:b].replace("<LeadByteCountTotal>10000</LeadByteCountTotal>",
                                   "<LeadByteCountTotal>12000</LeadByteCountTotal>")
    with pytest.raises(SignalError, match="lead V4 WaveFormData decodes to 10000 bytes, LeadByteCountTotal says "
                                          "12000") as err:
        read_muse(_write(tmp_path, "bytes.xml", muse_text[:a] + block + muse_text[b:]))
    assert "bytes" in str(err.value)


def test_short_payload_is_an_error(muse_text: str, tmp_path: Path) -> None:
    a, b = _lead_block(muse_text, "V5")
    block = muse_text[a:b]
    p0, p1 = block.index("<WaveFormData>") + 14, block.index("</WaveFormData>")
    short = base64.b64encode(base64.b64decode(block[p0:p1])[:8000]).decode()
    block = block[:p0] + short + block[p1:]
    with pytest.raises(SignalError, match="lead V5 WaveFormData decodes to 8000 bytes"):
        read_muse(_write(tmp_path, "short.xml", muse_text[:a] + block + muse_text[b:]))


def test_leads_of_unequal_length_are_an_error(muse_text: str, tmp_path: Path) -> None:
    a, b = _lead_block(muse_text, "V5")
    block = muse_text[a:b]
    p0, p1 = block.index("<WaveFormData>") + 14, block.index("</WaveFormData>")
    short = base64.b64encode(base64.b64decode(block[p0:p1])[:8000]).decode()
    block = (block[:p0] + short + block[p1:]).replace("<LeadByteCountTotal>10000", "<LeadByteCountTotal>8000")
    block = block.replace("<LeadSampleCountTotal>5000", "<LeadSampleCountTotal>4000")
    with pytest.raises(SignalError, match="unequal sample counts .*V5 4000"):
        read_muse(_write(tmp_path, "ragged.xml", muse_text[:a] + block + muse_text[b:]))


def test_damaged_base64_is_an_error(muse_text: str, tmp_path: Path) -> None:
    # one character lost in transfer: the payload no longer decodes to whole samples
    a, b = _lead_block(muse_text, "V1")
    block = muse_text[a:b]
    p0 = block.index("<WaveFormData>") + 14
    block = block[:p0 + 10] + block[p0 + 11:]
    with pytest.raises((FormatError, SignalError), match="lead V1") as err:
        read_muse(_write(tmp_path, "b64.xml", muse_text[:a] + block + muse_text[b:]))
    assert "b64" in str(err.value)


def test_markup_inside_waveform_data_is_malformed(muse_text: str, tmp_path: Path) -> None:
    a, b = _lead_block(muse_text, "V1")
    block = muse_text[a:b].replace("</WaveFormData>", "", 1)
    with pytest.raises(FormatError, match="malformed XML: element <WaveFormData> is not closed"):
        read_muse(_write(tmp_path, "wfd.xml", muse_text[:a] + block + muse_text[b:]))


@pytest.mark.parametrize("seed", range(5))
def test_base64_kernel_matches_binascii(seed: int) -> None:
    import binascii

    from ecgkit.io._decode import decode_base64

    rng = np.random.default_rng(seed)
    for size in (0, 1, 2, 3, 4, 5, 100, 10001):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        text = base64.encodebytes(data)  # MIME lines of 76 characters, "\n" separated, "=" padded
        if seed % 2:
            text = text.replace(b"\n", b"\r\n  \t")
        got = decode_base64(np.frombuffer(text, dtype=np.uint8))
        assert got.tobytes() == binascii.a2b_base64(text) == data


def test_base64_kernel_rejects_what_binascii_skips() -> None:
    from ecgkit.io._decode import decode_base64

    with pytest.raises(ValueError, match="invalid base64 character '!' at offset 4"):
        decode_base64(np.frombuffer(b"AAAA!AAA", dtype=np.uint8))
    with pytest.raises(ValueError, match="single character"):
        decode_base64(np.frombuffer(b"AAAAA", dtype=np.uint8))


def test_foreign_characters_in_a_payload_are_an_error(muse_text: str, tmp_path: Path) -> None:
    a, b = _lead_block(muse_text, "V2")
    block = muse_text[a:b]
    p0 = block.index("<WaveFormData>") + 14
    block = block[:p0 + 10] + "!!!!" + block[p0 + 10:]
    with pytest.raises(FormatError, match="lead V2 WaveFormData is not valid base64: invalid base64 character"):
        read_muse(_write(tmp_path, "junk.xml", muse_text[:a] + block + muse_text[b:]))
