"""ISHNE Holter files (ISHNE Holter Output Standard 1.0, magic ``ISHNE1.0``).

Layout (little-endian): magic (8 bytes), CRC-CCITT (2 bytes, over the fixed and variable-length
header), a 512-byte fixed header, a variable-length block, then the ECG as int16 samples
interleaved lead by lead. Fixed-header offsets (from the file start): 10 variable block size,
14 samples per lead, 18 variable block offset, 22 ECG offset, 26 version, 28/68 first/last name,
108 patient id, 128 sex, 132 birth date (day, month, year), 138 record date, 150 start time,
156 number of leads, 158 lead codes (12 x int16), 182 lead quality, 206 amplitude resolution in nV
(12 x int16), 230 pacemaker, 232 recorder, 272 sampling rate (Hz).

Most ISHNE files are 2- or 3-lead Holters: they are refused with the leads they hold ("ISHNE
Holter: 3 leads ES, AS, AI; not a 12-lead ECG"). A 12-lead Holter is read from its start, at most
:data:`MAX_SECONDS` (a 24 h 12-lead recording would not fit a record), the crop stated in ``repairs``.
"""
from __future__ import annotations

import binascii
import struct
from datetime import datetime
from pathlib import Path

import numpy as np

from ecgkit.errors import FormatError, SignalError
from ecgkit.io._leads import to_canonical
from ecgkit.io._xml import age_in_years
from ecgkit.record import Record

#: Longest stretch read from a Holter (seconds): enough for any resting-ECG analysis window.
MAX_SECONDS = 600.0
_LEAD_CODES = {-9: "absent", 0: "unknown", 1: "generic bipolar", 2: "X", 3: "Y", 4: "Z", 5: "I", 6: "II",
               7: "III", 8: "aVR", 9: "aVL", 10: "aVF", 11: "V1", 12: "V2", 13: "V3", 14: "V4", 15: "V5",
               16: "V6", 17: "ES", 18: "AS", 19: "AI"}
_HEADER_END = 522


def _date(v: tuple[int, int, int]) -> datetime | None:
    day, month, year = v
    try:
        return datetime(year, month, day) if year > 0 else None
    except ValueError:
        return None


def read_ishne(path: str | Path, *, record_id: str | None = None) -> Record:
    """Read an ISHNE Holter file (12 standard leads, or the 8 they derive from) into a Record.

    Raises
    ------
    FormatError
        Bad magic or CRC, a header that points outside the file.
    SignalError
        Not a 12-lead ECG (naming the leads held), or a header promising more samples than the file holds.
    """
    path = Path(path)
    rid = record_id if record_id is not None else path.stem
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER_END)
            size = fh.seek(0, 2)
    except OSError as exc:
        raise FormatError(f"cannot read file: {exc.strerror}", path=path, record_id=rid) from exc
    if len(head) < _HEADER_END or not head.startswith(b"ISHNE1.0"):
        raise FormatError(f"ISHNE header cut short or without the ISHNE1.0 magic ({len(head)} bytes)",
                          path=path, record_id=rid)
    (crc, var_size, n_samples, var_offset, ecg_offset, _version) = struct.unpack_from("<HiiiiH", head, 8)
    if var_size < 0 or ecg_offset < _HEADER_END or ecg_offset > size or var_offset < _HEADER_END:
        raise FormatError(f"ISHNE header offsets are inconsistent (variable block {var_offset}+{var_size}, "
                          f"ECG at {ecg_offset}, file of {size} bytes)", path=path, record_id=rid)
    sex_code, = struct.unpack_from("<h", head, 128)
    birth = _date(struct.unpack_from("<3h", head, 132))
    day = _date(struct.unpack_from("<3h", head, 138))
    hh, mm, ss = struct.unpack_from("<3h", head, 150)
    n_leads, = struct.unpack_from("<h", head, 156)
    codes = struct.unpack_from("<12h", head, 158)
    resolution = struct.unpack_from("<12h", head, 206)
    fs, = struct.unpack_from("<h", head, 272)
    if not 1 <= n_leads <= 12 or fs <= 0:
        raise FormatError(f"ISHNE header: {n_leads} leads at {fs} Hz", path=path, record_id=rid)
    names = [_LEAD_CODES.get(c, f"lead code {c}") for c in codes[:n_leads]]
    try:
        # a 12-lead check first: most Holters are 2-3 leads and need no signal read
        to_canonical(names, np.zeros((n_leads, 1), dtype=np.float32), path=str(path), record_id=rid)
    except SignalError as exc:
        raise SignalError(f"ISHNE Holter: {n_leads} lead(s) {', '.join(names)}; not a 12-lead ECG",
                          path=path, record_id=rid) from exc
    with open(path, "rb") as fh:  # the CRC covers the fixed header and the variable-length block
        fh.seek(10)
        checked = fh.read(ecg_offset - 10)
    ends = {_HEADER_END - 10 + var_size, var_offset - 10 + var_size, len(checked)}
    if not any(binascii.crc_hqx(checked[:e], 0xFFFF) == crc for e in ends if 0 < e <= len(checked)):
        raise FormatError(f"ISHNE header CRC mismatch (stored 0x{crc:04X}): the header is corrupt",
                          path=path, record_id=rid)
    held = (size - ecg_offset) // (2 * n_leads) if size > ecg_offset else 0
    if held < n_samples:
        raise SignalError(f"ISHNE header promises {n_samples} samples per lead, the file holds {held}: truncated",
                          path=path, record_id=rid)
    n_read = min(n_samples, int(MAX_SECONDS * fs))
    data = np.fromfile(path, dtype="<i2", count=n_read * n_leads, offset=ecg_offset).reshape(n_read, n_leads).T
    gains = np.array(resolution[:n_leads], dtype=np.float64)
    if (gains <= 0).any():
        raise SignalError(f"ISHNE amplitude resolution {list(gains)} nV: not positive", path=path, record_id=rid)
    signal, repairs = to_canonical(names, data * (gains[:, None] / 1e6), path=str(path), record_id=rid)
    if n_read < n_samples:
        repairs = repairs + (f"read the first {n_read / fs:g} s of a {n_samples / fs:g} s Holter recording",)
    acquired = None
    if day is not None:
        try:
            acquired = day.replace(hour=hh, minute=mm, second=ss)
        except ValueError:
            acquired = day
    pid = head[108:128].split(b"\x00", 1)[0].decode("latin-1").strip() or None
    return Record(
        record_id=rid, patient_id=pid, signal=signal, fs=float(fs), source_format="ishne", source_path=str(path),
        statements=[], acquired_at=acquired, age=age_in_years(birth, acquired),
        sex={1: "M", 2: "F"}.get(sex_code), native_fs=float(fs), native_leads=tuple(names), codes={},
        repairs=repairs,
    )
