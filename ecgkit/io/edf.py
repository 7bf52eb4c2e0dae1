"""EDF, EDF+ and BDF recordings (sleep labs, Holter and research exports) through ``edfio``.

``edfio`` was chosen over ``pyedflib`` by measurement (``benchmarks/bench_readers.py``, BENCHMARKS.md:
PTB-XL record 1 written as EDF reads in 0.43 ms with edfio against 0.85 ms with pyedflib, both
exact; with single-sample data records 0.42 ms against 40 ms, pyedflib walking record by record);
it also reads BDF's 24-bit samples and EDF+ annotations. ecgkit checks the header's promise (data
records x samples) against the file size
itself, because edfio only warns and reads what is there.

Signal labels map to leads by name (``ECG I``, ``EKG V1``, ``II``, ``Lead aVR``, ...); channels that
are not one of the 12 leads (EEG, SpO2, respiration, annotations) are ignored. Physical dimensions
``nV``/``uV``/``mV``/``V`` convert to millivolts. Leads sampled at different rates are resampled to
the highest of them (stated in ``repairs``). EDF+ annotations are kept as statements only when they
read as ECG interpretation text (not "Recording starts", sleep stages or markers).
"""
from __future__ import annotations

import logging
import re
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ecgkit.io._limits import read_file
from ecgkit.errors import FormatError, SignalError
from ecgkit.io._leads import to_canonical
from ecgkit.io._xml import age_in_years
from ecgkit.record import Record, canonical_lead
from ecgkit.signal import resample

logger = logging.getLogger(__name__)

_TO_MV = {"nv": 1e-6, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "mv": 1.0, "v": 1e3, "microvolt": 1e-3,
          "millivolt": 1.0, "volt": 1e3, "microvolts": 1e-3, "millivolts": 1.0}
_INTERPRETATION = re.compile(
    r"sinus|rhythm|fibrillation|flutter|tachycard|bradycard|\bblock|infarct|ischa?emi|hypertroph|\baxis|"
    r"\b(?:ab)?normal (?:ecg|ekg)|\becg\b|\bekg\b|st[- ](?:segment|elevation|depression)|t[- ]wave|\bqrs|"
    r"\bqtc?\b|premature|ectopic|extrasystol|\bpaced\b|pacemaker|bundle|\bwpw\b|pre-?excitation|arrhythm|"
    r"\bpvc\b|\bpac\b|\bsvt\b|\bafib\b|\blbbb\b|\brbbb\b", re.IGNORECASE)
_EVENTS = re.compile(r"^(?:recording (?:starts|ends)|start|stop|pause|resume|marker|event|impedance|"
                     r"calibrat\w*|lights? (?:on|off)|sleep stage \w+|movement|arousal|new segment|"
                     r"data ?(?:gap|loss)|\d+(?:\.\d+)?)$", re.IGNORECASE)


def _header_promise(buf: bytes, bdf: bool, path: Path, rid: str) -> None:
    """Refuse a file shorter than its header says (edfio would read what is there and only warn)."""
    try:
        header_bytes = int(buf[184:192].strip())
        n_records = int(buf[236:244].strip())
        ns = int(buf[252:256].strip())
        at = 256 + ns * 216
        samples = [int(buf[at + 8 * k:at + 8 * k + 8].strip()) for k in range(ns)]
    except ValueError as exc:
        raise FormatError(f"EDF header fields are not numbers: {exc}", path=path, record_id=rid) from exc
    if header_bytes != 256 * (ns + 1):
        raise FormatError(f"EDF header says {header_bytes} header bytes for {ns} signals "
                          f"(expected {256 * (ns + 1)})", path=path, record_id=rid)
    record_bytes = sum(samples) * (3 if bdf else 2)
    if n_records < 0 or record_bytes == 0:
        return  # -1: unknown while recording; edfio counts the records in the file
    held = (len(buf) - header_bytes) // record_bytes if len(buf) > header_bytes else 0
    if held < n_records:
        raise SignalError(f"EDF header promises {n_records} data records, the file holds {held} "
                          f"({len(buf)} bytes, {header_bytes + n_records * record_bytes} expected): truncated",
                          path=path, record_id=rid)


def _statements(edf: object) -> list[str]:
    out: list[str] = []
    for ann in getattr(edf, "annotations", ()):
        text = str(ann.text).strip()
        if text and not _EVENTS.match(text) and _INTERPRETATION.search(text) and text not in out:
            out.append(text)
    return out


def _demographics(edf: object, plus: bool) -> tuple[str | None, str | None, float | None, datetime | None]:
    """EDF+ patient subfields (code, sex, birthdate -> age); plain EDF's free text may be a name: unused."""
    try:
        start = edf.startdatetime  # type: ignore[attr-defined]
        acquired = start.replace(tzinfo=None) if start is not None else None
    except Exception:  # edfio raises on anonymised ("X") or malformed dates
        acquired = None
    if not plus:
        return None, None, None, acquired
    fields = str(edf.local_patient_identification).split()  # type: ignore[attr-defined]
    code = fields[0] if fields and fields[0] != "X" else None
    sex = {"M": "M", "F": "F"}.get(fields[1].upper()) if len(fields) > 1 else None
    birth = None
    if len(fields) > 2 and fields[2] != "X":
        try:
            birth = datetime.strptime(fields[2].title(), "%d-%b-%Y")
        except ValueError:
            birth = None
    return code, sex, age_in_years(birth, acquired), acquired


def read_edf(path: str | Path, *, record_id: str | None = None) -> Record:
    """Read an EDF, EDF+ or BDF file's 12 ECG leads into a :class:`~ecgkit.record.Record`.

    Parameters
    ----------
    path : str or Path
        The ``.edf`` / ``.bdf`` file.
    record_id : str or None
        Defaults to the file stem.

    Returns
    -------
    Record
        float32 millivolts at the leads' (highest) sampling rate; ``native_leads`` are the labels
        of the channels used; EDF+ patient code, sex and age (from the birth date, which is not kept).

    Raises
    ------
    FormatError
        A malformed header, or an EDF+D (discontinuous) recording.
    SignalError
        Truncated data, missing leads, non-voltage units.

    Examples
    --------
    >>> rec = read_edf("00001_hr.edf")  # doctest: +SKIP
    >>> rec.signal.shape, rec.fs
    ((12, 5000), 500.0)
    """
    import edfio

    path = Path(path)
    rid = record_id if record_id is not None else path.stem
    buf = read_file(path, record_id=rid)  # bounded, regular files only
    bdf = buf[:8] == b"\xffBIOSEMI"
    if len(buf) < 256:
        raise FormatError(f"EDF header cut short ({len(buf)} bytes)", path=path, record_id=rid)
    if not bdf and buf[:8] != b"0       ":
        raise FormatError(f"not an EDF/BDF file: version field {buf[:8]!r} (EDF has '0' and 7 spaces, BDF "
                          f"0xFF 'BIOSEMI')", path=path, record_id=rid)
    _header_promise(buf, bdf, path, rid)
    plus = buf[192:197] in (b"EDF+C", b"EDF+D", b"BDF+C", b"BDF+D")
    if buf[192:197] in (b"EDF+D", b"BDF+D"):
        raise FormatError("EDF+D (discontinuous) recording: its data records are not one continuous "
                          "stretch", path=path, record_id=rid)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edf = (edfio.read_bdf if bdf else edfio.read_edf)(buf, header_encoding="latin-1")
    except Exception as exc:  # edfio raises ValueError, IndexError, ZeroDivisionError... on malformed files
        raise FormatError(f"malformed {'BDF' if bdf else 'EDF'} file: {type(exc).__name__}: {exc}",
                          path=path, record_id=rid) from exc
    chosen: dict[str, tuple[str, float, NDArray[np.float64]]] = {}
    labels = []
    for sig in edf.signals:
        label = str(sig.label).strip()
        labels.append(label)
        lead = canonical_lead(label)
        if lead is None or lead in chosen:
            continue
        unit = str(sig.physical_dimension).strip().lower().replace(" ", "")
        scale = _TO_MV.get(unit)
        if scale is None:
            raise SignalError(f"lead {label} has physical dimension {sig.physical_dimension!r}, expected a "
                              f"voltage (nV, uV, mV, V)", path=path, record_id=rid)
        chosen[lead] = (label, float(sig.sampling_frequency), np.asarray(sig.data, dtype=np.float64) * scale)
    if not chosen:
        raise SignalError(f"not a 12-lead ECG: {len(labels)} channel(s) ({', '.join(labels) or 'none'}), "
                          f"none of them a standard lead", path=path, record_id=rid)
    fs = max(v[1] for v in chosen.values())
    repairs: list[str] = []
    rows, names = [], []
    for lead, (label, lead_fs, data) in chosen.items():
        if lead_fs != fs:
            try:
                data = resample(data.astype(np.float32), lead_fs, fs).astype(np.float64)
            except ValueError as exc:
                raise SignalError(f"lead {label} at {lead_fs:g} Hz cannot be resampled to {fs:g} Hz: {exc}",
                                  path=path, record_id=rid) from exc
            repairs.append(f"resampled {label} {lead_fs:g}->{fs:g} Hz")
        rows.append(data)
        names.append(label)
    n = min(len(r) for r in rows)
    try:
        signal, derived = to_canonical(names, np.stack([r[:n] for r in rows]), path=str(path), record_id=rid)
    except SignalError as exc:
        raise SignalError(f"{exc.problem} (EDF channels: {', '.join(labels)})", path=path, record_id=rid) from exc
    patient_id, sex, age, acquired = _demographics(edf, plus)
    return Record(
        record_id=rid,
        patient_id=patient_id,
        signal=signal,
        fs=fs,
        source_format="edf",
        source_path=str(path),
        statements=_statements(edf),
        acquired_at=acquired,
        age=age,
        sex=sex,
        native_fs=fs,
        native_leads=tuple(names),
        codes={},
        repairs=tuple(repairs) + derived,
    )
