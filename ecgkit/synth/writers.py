"""Write synthetic records in real export formats: WFDB (format 16) and GE MUSE RestingECG XML.

Both writers build the files with numpy and string formatting (``wfdb.wrsamp`` costs more than the
whole simulation of a record), and match the real formats byte for byte where a reader could care:

- WFDB: PTB-XL-style header (``r000001 12 500 5000`` then one line per signal with ``16
  1000.0(0)/mV 16 0 <first value> <checksum> 0 <lead>``), int16 little-endian interleaved ``.dat``,
  1 uV resolution, and ``#`` comment lines ``Age``, ``Sex``, ``Patient``, ``Acquired`` and one
  ``Statement`` line per diagnosis statement.
- MUSE: the structure of ``MUSE_20200923_093504_79000_example.xml`` (ISO-8859-1, CRLF line ends,
  3-space indents, ``<!DOCTYPE RestingECG SYSTEM "restecg.dtd">``), with ``PatientDemographics``,
  ``TestDemographics``, ``RestingECGMeasurements``, ``Diagnosis``/``OriginalDiagnosis``,
  ``QRSTimesTypes``, a ``Median`` and a ``Rhythm`` ``Waveform`` of 8 leads (I, II, V1-V6), each
  base64 of little-endian int16 at ``LeadAmplitudeUnitsPerBit`` 4.88 uV, 68 characters a line, with
  ``LeadDataCRC32`` the CRC-32 of the raw bytes.
"""
from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape

import numpy as np
from numpy.typing import NDArray

from ecgkit.record import LEADS

#: MUSE amplitude resolution, microvolts per bit (as in real MUSE exports).
MUSE_UV_PER_BIT = 4.88
#: WFDB gain, ADC units per mV (1 uV resolution, as PTB-XL).
WFDB_GAIN = 1000.0
_MUSE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
_MUSE_ROWS = tuple(LEADS.index(name) for name in _MUSE_LEADS)
_NL = "\r\n"


@dataclass(frozen=True)
class Demographics:
    """Who and when: what the writers put in headers besides the signal and statements."""

    patient_id: str
    age: int
    sex: str  # "M" or "F"
    acquired: datetime
    last_name: str = ""
    first_name: str = ""
    birth_date: datetime | None = None


def to_adc(signal_mv: NDArray[np.floating], units_per_mv: float) -> NDArray[np.int16]:
    """Quantise millivolts to int16 ADC units (round half to even, clipped to the int16 range)."""
    adc = np.rint(np.asarray(signal_mv, dtype=np.float64) * units_per_mv)
    return np.clip(adc, -32768, 32767).astype(np.int16)


def write_wfdb(header_path: str | Path, signal_mv: NDArray[np.floating], fs: float, demo: Demographics,
               statements: Sequence[str]) -> tuple[Path, Path]:
    """Write a 12-lead WFDB record (``.hea`` + format-16 ``.dat``) beside ``header_path``.

    Parameters
    ----------
    header_path : str or Path
        The ``.hea`` file to write; the record name is its stem, the ``.dat`` goes beside it.
    signal_mv : NDArray[np.floating], shape (12, n_samples)
        Millivolts in :data:`ecgkit.record.LEADS` order.
    fs : float
        Sampling frequency, Hz.
    demo : Demographics
        Patient id, age, sex and acquisition time, written as ``#`` comment lines.
    statements : sequence of str
        Diagnosis statements, one ``# Statement:`` line each, in order.

    Returns
    -------
    (Path, Path)
        The header and signal files.
    """
    header_path = Path(header_path)
    name = header_path.stem
    adc = to_adc(signal_mv, WFDB_GAIN)  # (12, n)
    n = adc.shape[1]
    dat_path = header_path.with_suffix(".dat")
    np.ascontiguousarray(adc.T).astype("<i2").tofile(dat_path)
    checksums = (adc.astype(np.int64).sum(axis=1) & 0xFFFF).tolist()
    fs_text = f"{fs:g}"
    lines = [f"{name} {len(LEADS)} {fs_text} {n}"]
    for i, lead in enumerate(LEADS):
        lines.append(f"{dat_path.name} 16 {WFDB_GAIN:.1f}(0)/mV 16 0 {int(adc[i, 0])} {checksums[i]} 0 {lead}")
    lines.append(f"# Age: {demo.age}")
    lines.append(f"# Sex: {'Male' if demo.sex == 'M' else 'Female'}")
    lines.append(f"# Patient: {demo.patient_id}")
    lines.append(f"# Acquired: {demo.acquired.isoformat(timespec='seconds')}")
    lines.extend(f"# Statement: {s}" for s in statements)
    header_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return header_path, dat_path


def _b64_block(raw: bytes, indent: str) -> str:
    text = base64.b64encode(raw).decode("ascii")
    lines = [text[i: i + 68] for i in range(0, len(text), 68)]
    return _NL + _NL.join(lines) + _NL + indent


def _lead_data(adc_row: NDArray[np.int16], lead: str) -> list[str]:
    raw = np.ascontiguousarray(adc_row).astype("<i2").tobytes()
    ind = " " * 9
    return [
        "      <LeadData>",
        f"{ind}<LeadByteCountTotal>{len(raw)}</LeadByteCountTotal>",
        f"{ind}<LeadTimeOffset>0</LeadTimeOffset>",
        f"{ind}<LeadSampleCountTotal>{adc_row.size}</LeadSampleCountTotal>",
        f"{ind}<LeadAmplitudeUnitsPerBit>{MUSE_UV_PER_BIT}</LeadAmplitudeUnitsPerBit>",
        f"{ind}<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>",
        f"{ind}<LeadHighLimit>32767</LeadHighLimit>",
        f"{ind}<LeadLowLimit>-32768</LeadLowLimit>",
        f"{ind}<LeadID>{lead}</LeadID>",
        f"{ind}<LeadOffsetFirstSample>0</LeadOffsetFirstSample>",
        f"{ind}<FirstSampleBaseline>0</FirstSampleBaseline>",
        f"{ind}<LeadSampleSize>2</LeadSampleSize>",
        f"{ind}<LeadOff>FALSE</LeadOff>",
        f"{ind}<BaselineSway>FALSE</BaselineSway>",
        f"{ind}<LeadDataCRC32>{zlib.crc32(raw)}</LeadDataCRC32>",
        f"{ind}<WaveFormData>{_b64_block(raw, ind)}</WaveFormData>",
        "      </LeadData>",
    ]


def _waveform(kind: str, adc8: NDArray[np.int16], fs: float) -> list[str]:
    out = ["   <Waveform>",
           f"      <WaveformType>{kind}</WaveformType>",
           "      <WaveformStartTime>0</WaveformStartTime>",
           f"      <NumberofLeads>{len(_MUSE_LEADS)}</NumberofLeads>",
           "      <SampleType>CONTINUOUS_SAMPLES</SampleType>",
           f"      <SampleBase>{int(round(fs))}</SampleBase>",
           "      <SampleExponent>0</SampleExponent>",
           "      <HighPassFilter>16</HighPassFilter>",
           "      <LowPassFilter>150</LowPassFilter>",
           "      <ACFilter>NONE</ACFilter>"]
    for row, lead in zip(adc8, _MUSE_LEADS):
        out += _lead_data(row, lead)
    out.append("   </Waveform>")
    return out


def _measurements(tag: str, m: dict[str, Any], fs: float, frederica: bool) -> list[str]:
    def val(key: str) -> str:
        v = m.get(key)
        return "" if v is None else str(v)

    fields = [("VentricularRate", val("ventricular_rate")), ("AtrialRate", val("atrial_rate")),
              ("PRInterval", val("pr_ms")), ("QRSDuration", val("qrs_ms")), ("QTInterval", val("qt_ms")),
              ("QTCorrected", val("qtc_ms")), ("PAxis", val("p_axis")), ("RAxis", val("r_axis")),
              ("TAxis", val("t_axis")), ("QRSCount", str(len(m.get("qrs_onsets", ())))),
              ("QOnset", val("q_onset")), ("QOffset", val("q_offset")), ("POnset", val("p_onset")),
              ("POffset", val("p_offset")), ("TOffset", val("t_offset")),
              ("ECGSampleBase", str(int(round(fs)))), ("ECGSampleExponent", "0")]
    if frederica:
        qt, rr = m.get("qt_ms"), 60.0 / max(float(m.get("ventricular_rate") or 60), 1.0)
        fields.append(("QTcFrederica", "" if qt is None else str(int(round(qt / rr ** (1 / 3))))))
    return [f"   <{tag}>"] + [f"      <{k}>{v}</{k}>" for k, v in fields if v != ""] + [f"   </{tag}>"]


def _diagnosis(tag: str, statements: Sequence[tuple[str | None, str]]) -> list[str]:
    out = [f"   <{tag}>", "      <Modality>RESTING</Modality>"]
    for flag, text in statements:
        out.append("      <DiagnosisStatement>")
        if flag:
            out.append(f"         <StmtFlag>{flag}</StmtFlag>")
        out.append(f"         <StmtText>{escape(text)}</StmtText>")
        out.append("      </DiagnosisStatement>")
    out.append(f"   </{tag}>")
    return out


def write_muse(path: str | Path, signal_mv: NDArray[np.floating], median_mv: NDArray[np.floating], fs: float,
               demo: Demographics, statements: Sequence[tuple[str | None, str]],
               measurements: dict[str, Any]) -> Path:
    """Write a GE MUSE RestingECG XML file.

    Parameters
    ----------
    path : str or Path
        The ``.xml`` file to write.
    signal_mv : NDArray[np.floating], shape (12, n_samples)
        The 10 s recording, millivolts, :data:`ecgkit.record.LEADS` order; leads I, II, V1-V6 are
        stored (a reader derives III, aVR, aVL, aVF).
    median_mv : NDArray[np.floating], shape (12, n_median)
        The representative beat, stored as the ``Median`` waveform.
    fs : float
        Sampling frequency, Hz (``SampleBase``).
    demo : Demographics
        ``PatientID``, age, gender, acquisition date and time; names and birth date when given.
    statements : sequence of (flag, text)
        ``DiagnosisStatement`` elements in order (``StmtFlag`` omitted when ``flag`` is None). The
        machine's ``OriginalDiagnosis`` is the same list without the overreader's ``USERINSERT`` lines.
    measurements : dict
        Global measurements (see :class:`ecgkit.synth.render.SimulatedEcg`).
    """
    path = Path(path)
    units_per_mv = 1000.0 / MUSE_UV_PER_BIT
    rhythm = to_adc(np.asarray(signal_mv)[list(_MUSE_ROWS)], units_per_mv)
    median = to_adc(np.asarray(median_mv)[list(_MUSE_ROWS)], units_per_mv)
    acq = demo.acquired
    edit = acq.replace(hour=min(acq.hour + 2, 23))
    pd_lines = ["   <PatientDemographics>",
                f"      <PatientID>{escape(demo.patient_id)}</PatientID>",
                f"      <PatientAge>{demo.age}</PatientAge>",
                "      <AgeUnits>YEARS</AgeUnits>"]
    if demo.birth_date is not None:
        pd_lines.append(f"      <DateofBirth>{demo.birth_date:%m-%d-%Y}</DateofBirth>")
    pd_lines.append(f"      <Gender>{'MALE' if demo.sex == 'M' else 'FEMALE'}</Gender>")
    if demo.last_name:
        pd_lines.append(f"      <PatientLastName>{escape(demo.last_name)}</PatientLastName>")
    if demo.first_name:
        pd_lines.append(f"      <PatientFirstName>{escape(demo.first_name)}</PatientFirstName>")
    pd_lines.append("   </PatientDemographics>")
    confirmed = any(flag == "USERINSERT" and text.startswith("Confirmed by") for flag, text in statements)
    lines = ['<?xml version="1.0" encoding="ISO-8859-1"?>',
             '<!DOCTYPE RestingECG SYSTEM "restecg.dtd">',
             "<RestingECG>",
             "   <MuseInfo>",
             "      <MuseVersion>9.0.10.18530</MuseVersion>",
             "   </MuseInfo>",
             *pd_lines,
             "   <TestDemographics>",
             "      <DataType>RESTING</DataType>",
             "      <Site>1</Site>",
             "      <SiteName>ECGKIT SYNTHETIC HOSPITAL</SiteName>",
             "      <AcquisitionDevice>MAC55</AcquisitionDevice>",
             f"      <Status>{'CONFIRMED' if confirmed else 'UNCONFIRMED'}</Status>",
             f"      <EditListStatus>{'Confirmed' if confirmed else 'Unconfirmed'}</EditListStatus>",
             "      <Priority>NORMAL</Priority>",
             f"      <AcquisitionTime>{acq:%H:%M:%S}</AcquisitionTime>",
             f"      <AcquisitionDate>{acq:%m-%d-%Y}</AcquisitionDate>",
             "      <CartNumber>2</CartNumber>",
             "      <AcquisitionSoftwareVersion>009C</AcquisitionSoftwareVersion>",
             "      <AnalysisSoftwareVersion>239</AnalysisSoftwareVersion>",
             f"      <EditTime>{edit:%H:%M:%S}</EditTime>",
             f"      <EditDate>{edit:%m-%d-%Y}</EditDate>",
             "   </TestDemographics>",
             *_measurements("RestingECGMeasurements", measurements, fs, True),
             *_measurements("OriginalRestingECGMeasurements", measurements, fs, False),
             *_diagnosis("Diagnosis", statements),
             *_diagnosis("OriginalDiagnosis", [(f, t) for f, t in statements if f != "USERINSERT"]),
             "   <QRSTimesTypes>"]
    for k, (onset, kind) in enumerate(zip(measurements.get("qrs_onsets", ()), measurements.get("qrs_kinds", ()))):
        # MUSE "Time" is the QRS fiducial in samples; type 0 = dominant, 1 = ectopic
        lines += ["      <QRS>", f"         <Number>{k + 1}</Number>",
                  f"         <Type>{0 if kind == 0 else 1}</Type>", f"         <Time>{onset}</Time>", "      </QRS>"]
    rr_ms = int(round(60000.0 / max(float(measurements.get("ventricular_rate") or 60), 1.0)))
    lines += [f"      <GlobalRR>{rr_ms}</GlobalRR>", "   </QRSTimesTypes>",
              *_waveform("Median", median, fs), *_waveform("Rhythm", rhythm, fs),
              "   <PharmaData>", f"      <PharmaRRinterval>{rr_ms}</PharmaRRinterval>",
              f"      <PharmaUniqueECGID>{escape(demo.patient_id)}{acq:%d%m%Y%H%M%S}</PharmaUniqueECGID>",
              "   </PharmaData>", "</RestingECG>", ""]
    path.write_bytes(_NL.join(lines).encode("iso-8859-1", errors="replace"))
    return path
