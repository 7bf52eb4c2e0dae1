"""Readers, one module per source format, behind one entry point: :func:`read_record`.

Each format module exposes ``read_<format>(path, *, record_id=None) -> Record`` returning the record
at its native sampling frequency and length; :func:`read_record` detects the format, calls the
reader, and canonicalises sampling frequency and duration (see :func:`ecgkit.signal.conform`).
"""
from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import Callable, Literal

from ecgkit.errors import FormatError, SignalError
from ecgkit.io._limits import MAX_ID_CHARS, MAX_SAMPLES, MAX_STATEMENT_CHARS, check_fs
from ecgkit.io.detect import detect_format
from ecgkit.record import Record
from ecgkit.signal import baseline_flags, conform, qc_flags

ReaderFn = Callable[..., Record]


def _reader(fmt: str) -> ReaderFn:
    # Imported lazily so that reading WFDB files never pays for pydicom or lxml imports.
    if fmt == "wfdb":
        from ecgkit.io.wfdb import read_wfdb
        return read_wfdb
    if fmt == "muse":
        from ecgkit.io.muse import read_muse
        return read_muse
    if fmt == "cardiosoft":
        from ecgkit.io.cardiosoft import read_cardiosoft
        return read_cardiosoft
    if fmt == "dicom":
        from ecgkit.io.dicom import read_dicom
        return read_dicom
    if fmt == "aecg":
        from ecgkit.io.aecg import read_aecg
        return read_aecg
    if fmt == "philips":
        from ecgkit.io.philips import read_philips
        return read_philips
    if fmt == "scp":
        from ecgkit.io.scp import read_scp
        return read_scp
    if fmt == "edf":
        from ecgkit.io.edf import read_edf
        return read_edf
    if fmt == "ishne":
        from ecgkit.io.ishne import read_ishne
        return read_ishne
    if fmt == "mfer":
        from ecgkit.io.mfer import read_mfer
        return read_mfer
    raise FormatError(f"no reader for format {fmt!r}")


def read_native(path: str | Path, *, record_id: str | None = None, fmt: str | None = None) -> Record:
    """Read a record at its native sampling frequency and length (no resampling, no crop).

    The record carries its QC flags (``Record.qc_flags``), computed on the native signal.

    Raises
    ------
    FormatError
        If the format is unknown or the file is malformed.
    SignalError
        If the signal is unusable (missing leads, truncated data).
    """
    path = Path(path)
    _check_regular(path, record_id)
    fmt = fmt or detect_format(path)
    rec = _reader(fmt)(path, record_id=record_id)
    _check_record(rec)
    if rec.qc_flags is None:  # readers may compute QC while decoding; the rest get it here
        rec = dataclasses.replace(rec, qc_flags=tuple(qc_flags(rec.signal, rec.fs)))
    elif not any(f.startswith("baseline:") for f in rec.qc_flags):  # the decoders' statistics have no median
        extra = [f for f in baseline_flags(rec.signal) if f not in rec.qc_flags]
        if extra:
            rec = dataclasses.replace(rec, qc_flags=rec.qc_flags + tuple(extra))
    return rec


def _check_regular(path: Path, record_id: str | None) -> None:
    """Refuse FIFOs, sockets and devices before anything opens them (an open could block forever)."""
    try:
        st = os.stat(path)
    except OSError:
        return  # missing: the reader names the problem (a WFDB path may also come without its suffix)
    if not stat.S_ISREG(st.st_mode):
        raise FormatError("not a regular file (a FIFO, socket, device or folder): not opened", path=path,
                          record_id=record_id)


def _check_record(rec: Record) -> None:
    """Values that cannot be a surface ECG, whatever the reader: quarantined, never passed on."""
    where = {"path": rec.source_path, "record_id": rec.record_id}
    check_fs(rec.fs, **where)
    if rec.n_samples < 1:
        raise SignalError("the record holds 0 samples", **where)
    if rec.n_samples > MAX_SAMPLES:
        raise SignalError(f"the record holds {rec.n_samples} samples per lead, over the limit of {MAX_SAMPLES}",
                          **where)
    if rec.patient_id is not None and len(rec.patient_id) > MAX_ID_CHARS:
        raise FormatError(f"patient id is {len(rec.patient_id)} characters long, over the limit of {MAX_ID_CHARS}",
                          **where)
    longest = max((len(s) for s in rec.statements), default=0)
    if longest > MAX_STATEMENT_CHARS:
        raise FormatError(f"a statement is {longest} characters long, over the limit of {MAX_STATEMENT_CHARS}",
                          **where)


def read_record(
    path: str | Path,
    *,
    fs: float = 500,
    seconds: float | None = None,
    short: Literal["pad", "reject"] = "pad",
    record_id: str | None = None,
) -> Record:
    """Read one ECG file of any supported format into a canonical :class:`~ecgkit.record.Record`.

    Parameters
    ----------
    path : str or Path
        The file: a WFDB header (``.hea``; the signal file beside it), a MUSE, CardioSoft,
        Philips or HL7 aECG XML file, a DICOM waveform object, an SCP-ECG, EDF/EDF+/BDF, ISHNE
        Holter or MFER file (detected by content, see :func:`ecgkit.io.detect.detect_format`).
    fs : float
        Target sampling frequency in Hz; the signal is resampled with a polyphase filter when the
        source differs.
    seconds : float or None
        Target duration. Longer records are cropped (from the start); shorter ones are zero-padded
        at the end (``short="pad"``) or rejected (``short="reject"``). ``None`` keeps the length.
    short : {"pad", "reject"}
        What to do with records shorter than ``seconds``.
    record_id : str or None
        Overrides the reader's record id (default: the file stem).

    Returns
    -------
    Record
        ``signal`` float32 millivolts, shape (12, round(fs * seconds)) in :data:`ecgkit.record.LEADS`
        order; ``repairs`` lists each change (resampled, cropped, padded, derived leads).

    Raises
    ------
    FormatError, SignalError
        Naming the file and the problem.

    Examples
    --------
    >>> rec = read_record("records500/00000/00001_hr.hea")  # doctest: +SKIP
    >>> rec.signal.shape, rec.signal.dtype, rec.fs
    ((12, 5000), dtype('float32'), 500.0)
    """
    return conform(read_native(path, record_id=record_id), fs=fs, seconds=seconds, short=short)


__all__ = ["read_record", "read_native", "detect_format"]
