"""Reader for DICOM ECG waveform objects (12-lead ECG and General ECG Waveform Storage), via pydicom.

Layout: ``WaveformSequence`` holds one item per multiplex group. GE devices write the 10 s
rhythm (``WaveformOriginality`` ORIGINAL, ``MultiplexGroupLabel`` RHYTHM) and a median beat
(DERIVED, "MEDIAN BEAT"); ecgkit reads the original rhythm group and never the median. Samples are
interleaved by channel (C1S1, C2S1, ..., CnS1, C1S2, ...). Each channel's physical value is
``sample * ChannelSensitivity * ChannelSensitivityCorrectionFactor + ChannelBaseline`` in the
unit of ``ChannelSensitivityUnitsSequence`` (the same formula pydicom's ``waveform_array`` uses).
Leads are identified by their ``ChannelSourceSequence`` code (SCPECG ``5.6.3-9-N`` or MDC
``2:N``), falling back to the code meaning ("Lead I (Einthoven)").
Statements are the ``UnformattedTextValue`` items of ``WaveformAnnotationSequence``.
"""
from __future__ import annotations

import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ecgkit.errors import FormatError, SignalError
from ecgkit._deid import names_repair, scrub_names
from ecgkit.io._leads import to_canonical
from ecgkit.io._limits import (MAX_CHANNELS, MAX_FILE_BYTES, MAX_SAMPLES, check_count, check_fs, check_scale,
                               clean_text, excerpt)
from ecgkit.io._xml import age_in_years, hl7_datetime
from ecgkit.record import LEADS, Record, canonical_lead

logger = logging.getLogger(__name__)

#: SOP classes that hold a surface ECG: 12-lead ECG and General ECG Waveform Storage.
ECG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG Waveform Storage",
}
#: Every waveform IOD (Ambulatory ECG, Hemodynamic, Cardiac Electrophysiology, ...) shares this
#: prefix; those are read when their channel source codes give the 12 leads (or the 8 they derive from).
WAVEFORM_SOP_PREFIX = "1.2.840.10008.5.1.4.1.1.9."
_WAVEFORM_IODS = {
    "1.2.840.10008.5.1.4.1.1.9.1.3": "Ambulatory ECG", "1.2.840.10008.5.1.4.1.1.9.2.1": "Hemodynamic Waveform",
    "1.2.840.10008.5.1.4.1.1.9.3.1": "Basic Cardiac Electrophysiology", "1.2.840.10008.5.1.4.1.1.9.5.1":
    "Arterial Pulse Waveform", "1.2.840.10008.5.1.4.1.1.9.6.1": "Respiratory Waveform",
    "1.2.840.10008.5.1.4.1.1.9.1.4": "12-lead ECG Waveform Storage (32-bit)",
}
# Lead numbers shared by the SCP-ECG ("5.6.3-9-N") and MDC ("2:N") code systems.
_LEAD_CODE_NUMBERS = {1: "I", 2: "II", 3: "V1", 4: "V2", 5: "V3", 6: "V4", 7: "V5", 8: "V6",
                      61: "III", 62: "aVR", 63: "aVL", 64: "aVF"}
_LEAD_CODE = re.compile(r"^(?:5\.6\.3-9-|2:|MDC_ECG_LEAD_)(\d+)$")
_MEANING_JUNK = re.compile(r"\(.*?\)|^\s*lead\s+", re.IGNORECASE)
_UNIT_TO_MV = {"uv": 1e-3, "mv": 1.0, "v": 1e3, "nv": 1e-6}
_DTYPES: dict[tuple[int, str], np.dtype] = {
    (8, "SB"): np.dtype("i1"), (8, "UB"): np.dtype("u1"), (16, "SS"): np.dtype("<i2"),
    (16, "US"): np.dtype("<u2"), (32, "SL"): np.dtype("<i4"), (32, "UL"): np.dtype("<u4")}
_AGE_UNITS = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}


def _lead_name(channel: Any) -> tuple[str, str]:
    """Return (native name, name to canonicalise) for one ChannelDefinitionSequence item."""
    source = channel.get("ChannelSourceSequence")
    if not source:
        label = str(channel.get("ChannelLabel", "") or "")
        return label, label
    item = source[0]
    meaning = str(item.get("CodeMeaning", "") or "")
    value = str(item.get("CodeValue", "") or "").strip()
    m = _LEAD_CODE.match(value)
    if m and int(m.group(1)) in _LEAD_CODE_NUMBERS:
        return meaning or _LEAD_CODE_NUMBERS[int(m.group(1))], _LEAD_CODE_NUMBERS[int(m.group(1))]
    if canonical_lead(value) is not None:  # MDC reference ids as code values ("MDC_ECG_LEAD_AVR")
        return meaning or value, value
    if not meaning:  # no usable code: the channel label, when the device wrote one
        label = str(channel.get("ChannelLabel", "") or "")
        return label or value, label or value
    return meaning, _MEANING_JUNK.sub("", meaning).strip()


def _pick_rhythm(seq: Any) -> Any | None:
    """The original (non-derived) multiplex group with the most samples, preferring a RHYTHM label."""
    best, best_key = None, None
    for item in seq:
        if str(item.get("WaveformOriginality", "ORIGINAL")).upper() != "ORIGINAL":
            continue
        label = str(item.get("MultiplexGroupLabel", "") or "").upper()
        if "MEDIAN" in label or "REPRESENTATIVE" in label:
            continue
        # a group holding the ECG leads wins (Hemodynamic objects put pressures in groups of their own)
        n_leads = len({canonical_lead(_lead_name(ch)[1]) for ch in item.get("ChannelDefinitionSequence", None) or []}
                      - {None})
        key = (n_leads >= 8, "RHYTHM" in label, int(item.get("NumberOfWaveformChannels", 0) or 0) >= len(LEADS),
               int(item.get("NumberOfWaveformSamples", 0) or 0))
        if best_key is None or key > best_key:
            best, best_key = item, key
    return best


def _acquired_at(ds: Any) -> datetime | None:
    for dt_key, date_key, time_key in (("AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime"),
                                       (None, "ContentDate", "ContentTime"),
                                       (None, "StudyDate", "StudyTime")):
        value = str(ds.get(dt_key, "") or "") if dt_key else ""
        if not value:
            value = str(ds.get(date_key, "") or "") + str(ds.get(time_key, "") or "")
        parsed = hl7_datetime(value)
        if parsed is not None:
            return parsed
    return None


def _age(ds: Any, acquired: datetime | None) -> float | None:
    """PatientAge (``040Y``, ``006M``), else completed years from PatientBirthDate (never kept)."""
    value = str(ds.get("PatientAge", "") or "").strip().upper()
    if len(value) >= 2 and value[-1] in _AGE_UNITS and value[:-1].isdigit():
        return int(value[:-1]) * _AGE_UNITS[value[-1]]
    return age_in_years(hl7_datetime(str(ds.get("PatientBirthDate", "") or "")), acquired)


def _statements(ds: Any) -> list[str]:
    out = []
    for item in ds.get("WaveformAnnotationSequence", None) or []:
        value = item.get("UnformattedTextValue")
        if value is None:
            continue
        for line in str(value).splitlines():
            line = line.strip()
            if line and not line.lower().startswith("confirmed by"):
                out.append(line)
    return out


def read_dicom(path: str | Path, *, record_id: str | None = None) -> Record:
    """Read a DICOM 12-lead/General ECG waveform object at its native sampling frequency and length.

    Parameters
    ----------
    path : str or Path
        The DICOM file.
    record_id : str or None
        Record id; default: the file stem.

    Returns
    -------
    Record
        ``signal`` float32 mV, shape (12, NumberOfWaveformSamples) from the original rhythm
        multiplex group; ``source_format="dicom"``; ``statements`` from the unformatted-text
        waveform annotations.

    Raises
    ------
    FormatError
        Not DICOM, not an ECG SOP class, no rhythm waveform, or unsupported sample encoding/units.
    SignalError
        Waveform data shorter than the declared samples x channels, or a missing lead.

    Examples
    --------
    >>> rec = read_dicom("../shared/data/dicom/example-DICOM1.dcm")  # doctest: +SKIP
    >>> rec.signal.shape, rec.fs
    ((12, 5000), 500.0)
    """
    path = Path(path)
    rid = record_id if record_id is not None else path.stem
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise FormatError(f"cannot open file: {exc.strerror}", path=path, record_id=rid) from exc
    if size > MAX_FILE_BYTES:
        raise FormatError(f"file is {size} bytes, over the limit of {MAX_FILE_BYTES} bytes", path=path, record_id=rid)
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise FormatError(f"not a DICOM file: {exc}", path=path, record_id=rid) from exc
    except (OSError, EOFError, ValueError, KeyError, TypeError, OverflowError, MemoryError) as exc:
        raise FormatError(f"truncated or malformed DICOM file: {type(exc).__name__}: {excerpt(str(exc), 120)}",
                          path=path, record_id=rid) from exc
    sop = str(ds.get("SOPClassUID", "") or "")
    if sop not in ECG_SOP_CLASSES and not sop.startswith(WAVEFORM_SOP_PREFIX):
        raise FormatError(f"DICOM SOP class {sop or '(none)'} is not an ECG or other waveform object "
                          f"(expected one of {', '.join(ECG_SOP_CLASSES)} or another waveform IOD)",
                          path=path, record_id=rid)
    seq = ds.get("WaveformSequence")
    if not seq:
        raise FormatError("no rhythm waveform: WaveformSequence is missing or empty",
                          path=path, record_id=rid)
    group = _pick_rhythm(seq)
    if group is None:
        raise FormatError("no rhythm waveform: every multiplex group is derived (median beat)",
                          path=path, record_id=rid)
    try:
        n_ch = int(group.NumberOfWaveformChannels)
        n = int(group.NumberOfWaveformSamples)
        fs = float(group.SamplingFrequency)
        bits = int(group.WaveformBitsAllocated)
        interp = str(group.WaveformSampleInterpretation)
        raw_bytes = group.WaveformData
        channels = list(group.ChannelDefinitionSequence)
    except AttributeError as exc:
        raise FormatError(f"rhythm multiplex group lacks a required element: {exc}",
                          path=path, record_id=rid) from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise FormatError(f"rhythm multiplex group has an unreadable value: {excerpt(str(exc), 120)}",
                          path=path, record_id=rid) from exc
    check_fs(fs, path=path, record_id=rid, what="SamplingFrequency")
    check_count(n, limit=MAX_SAMPLES, what="NumberOfWaveformSamples", path=path, record_id=rid)
    check_count(n_ch, limit=MAX_CHANNELS, what="NumberOfWaveformChannels", path=path, record_id=rid)
    dtype = _DTYPES.get((bits, interp))
    if dtype is None:
        raise FormatError(f"unsupported waveform encoding: {bits} bits, {interp}", path=path, record_id=rid)
    if len(channels) != n_ch:
        raise FormatError(f"ChannelDefinitionSequence has {len(channels)} items, "
                          f"NumberOfWaveformChannels is {n_ch}", path=path, record_id=rid)
    need = n * n_ch * dtype.itemsize
    if len(raw_bytes) < need:
        raise SignalError(f"WaveformData has {len(raw_bytes)} bytes, expected {need} "
                          f"({n} samples x {n_ch} channels x {dtype.itemsize} bytes)",
                          path=path, record_id=rid)
    raw = np.frombuffer(raw_bytes, dtype=dtype, count=n * n_ch).reshape(n, n_ch).T  # (channels, samples)

    gain = np.empty(n_ch, dtype=np.float64)
    offset = np.empty(n_ch, dtype=np.float64)
    native, canon, used, ignored = [], [], [], []
    for k, ch in enumerate(channels):
        units_seq = ch.get("ChannelSensitivityUnitsSequence")
        unit = str(units_seq[0].get("CodeValue", "")) if units_seq else "uV"
        to_mv = _UNIT_TO_MV.get(unit.strip().lower())
        name, key = _lead_name(ch)
        if canonical_lead(key) is None:  # pressures, respiration, intracardiac channels: not read
            ignored.append(name or f"channel {k + 1}")
            continue
        used.append(k)
        if to_mv is None:
            raise FormatError(f"channel {name}: unknown sensitivity unit {unit!r}", path=path, record_id=rid)
        # absent: uncalibrated samples (scale 1, as pydicom's waveform_array); present: must be positive,
        # a zero sensitivity is not 1.0 and a negative one is not a documented inversion
        sens_raw = ch.get("ChannelSensitivity")
        corr_raw = ch.get("ChannelSensitivityCorrectionFactor")
        sens = 1.0 if sens_raw is None or sens_raw == "" else float(sens_raw)
        corr = 1.0 if corr_raw is None or corr_raw == "" else float(corr_raw)
        check_scale(sens, what=f"channel {name} ChannelSensitivity", path=path, record_id=rid)
        check_scale(corr, what=f"channel {name} ChannelSensitivityCorrectionFactor", path=path, record_id=rid)
        gain[k] = sens * corr * to_mv
        offset[k] = float(ch.get("ChannelBaseline", 0.0) or 0.0) * to_mv
        native.append(name)
        canon.append(key)
    iod = ECG_SOP_CLASSES.get(sop) or _WAVEFORM_IODS.get(sop, f"waveform SOP class {sop}")
    if not used:
        raise SignalError(f"DICOM {iod}: {n_ch} channel(s) {', '.join(ignored)}; not a 12-lead ECG",
                          path=path, record_id=rid)
    sel = np.array(used)
    data = (raw[sel].astype(np.float32) * gain[sel, None].astype(np.float32)
            + offset[sel, None].astype(np.float32))
    try:
        signal, repairs = to_canonical(canon, data, path=str(path), record_id=rid)
    except SignalError as exc:
        if sop in ECG_SOP_CLASSES:
            raise
        raise SignalError(f"DICOM {iod}: {exc.problem}", path=path, record_id=rid) from exc
    if ignored:
        repairs = repairs + (f"ignored non-ECG channels: {', '.join(ignored)}",)

    patient, _ = clean_text(str(ds.get("PatientID", "") or ""))
    acquired = _acquired_at(ds)
    sex = str(ds.get("PatientSex", "") or "").strip().upper()
    # the names are read only to be removed from the statements, and go no further
    statements, n_names = scrub_names(_statements(ds), str(ds.get("PatientName", "") or "").split("^"))
    return Record(
        record_id=rid,
        patient_id=patient,
        signal=signal,
        fs=fs,
        source_format="dicom",
        source_path=str(path),
        statements=statements,
        acquired_at=acquired,
        age=_age(ds, acquired),
        sex=sex if sex in ("M", "F") else None,
        native_fs=fs,
        native_leads=tuple(native),
        codes={},
        repairs=tuple(repairs) + names_repair(n_names),
    )
