"""MFER files (Medical waveform Format Encoding Rules, ISO 22077-1; preamble ``@ MFR``).

An MFER file is a sequence of tag-length-value items. A length byte below 0x80 is the length; with
its high bit set, its low 7 bits count the big-endian length bytes that follow. Items used here:
``0x40`` preamble, ``0x01`` byte order (0 big-, 1 little-endian; default big), ``0x04`` samples per
block, ``0x05`` channels, ``0x06`` sequences (blocks), ``0x08`` waveform type, ``0x09`` lead code
(the SCP-ECG/MDC lead table: 1 I, 2 II, 3-8 V1-V6, 61-64 III, aVR, aVL, aVF), ``0x0A`` data type,
``0x0B`` sampling (unit 0 = Hz or 1 = seconds, signed power of ten, mantissa), ``0x0C`` resolution
(unit 0 = volts, power of ten, mantissa), ``0x1E`` waveform data, ``0x3F`` a channel's own
attributes (channel number, then nested items), ``0x82`` patient id, ``0x83`` age, ``0x84`` sex,
``0x85`` measurement time, ``0x80`` end. Names (``0x81``) and birth dates are never kept.

Waveform data are blocks: for each sequence, each channel's block of samples in turn.
"""
from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ecgkit.io._limits import read_file
from ecgkit.errors import FormatError, SignalError
from ecgkit.io._leads import to_canonical
from ecgkit.io.scp import LEAD_CODES
from ecgkit.record import Record

_DTYPES = {0: "i2", 2: "i4", 5: "i1", 7: "f4", 8: "f8"}  # signed and float types (ECG values)
_END = 0x80


def _items(buf: bytes, start: int, end: int, path: Path, rid: str) -> list[tuple[int, int | None, bytes, int]]:
    """(tag, channel or None, value, value offset) for each item between ``start`` and ``end``."""
    out = []
    p = start
    while p < end:
        tag = buf[p]
        p += 1
        if tag == _END:
            break
        channel = None
        if tag == 0x3F:
            if p >= end:
                break
            channel = buf[p]
            p += 1
        if p >= end:
            raise FormatError(f"MFER item 0x{tag:02X} cut short at byte {p}", path=path, record_id=rid)
        n = buf[p]
        p += 1
        if n & 0x80:
            k = n & 0x7F
            if k == 0 or k > 8 or p + k > end:
                raise FormatError(f"MFER item 0x{tag:02X}: bad length field at byte {p - 1}",
                                  path=path, record_id=rid)
            n = int.from_bytes(buf[p:p + k], "big")
            p += k
        if p + n > end:
            raise FormatError(f"MFER item 0x{tag:02X} promises {n} bytes at byte {p}, the file holds "
                              f"{end - p}: truncated", path=path, record_id=rid)
        out.append((tag, channel, buf[p:p + n], p))
        p += n
    return out


def _uint(v: bytes, order: str) -> int:
    return int.from_bytes(v, order) if v else 0  # type: ignore[arg-type]


def _scaled(v: bytes, order: str) -> tuple[int, float]:
    """(unit code, value) of a sampling or resolution item: unit, signed power of ten, mantissa."""
    if len(v) < 3:
        raise ValueError(f"{len(v)} bytes")
    unit, exp = v[0], struct.unpack("b", v[1:2])[0]
    return unit, _uint(v[2:], order) * 10.0 ** exp


def read_mfer(path: str | Path, *, record_id: str | None = None) -> Record:
    """Read an MFER file's 12 ECG leads (or the 8 they derive from) into a :class:`~ecgkit.record.Record`.

    Raises
    ------
    FormatError
        Malformed items, unsupported data types, missing sampling or resolution.
    SignalError
        Not a 12-lead ECG (naming the leads held), or fewer waveform bytes than the header promises.
    """
    path = Path(path)
    rid = record_id if record_id is not None else path.stem
    buf = read_file(path, record_id=rid)  # bounded, regular files only
    items = _items(buf, 0, len(buf), path, rid)
    top: dict[int, bytes] = {}
    per_channel: dict[int, dict[int, bytes]] = {}
    wave: bytes | None = None
    for tag, channel, value, offset in items:
        if tag == 0x3F and channel is not None:
            per_channel[channel] = {t: v for t, _c, v, _o in _items(buf, offset, offset + len(value), path, rid)}
        elif tag == 0x1E:
            wave = value
        else:
            top.setdefault(tag, value)
    order = "little" if top.get(0x01, b"\x00")[:1] == b"\x01" else "big"
    n_ch = _uint(top.get(0x05, b"\x01"), order)
    n_seq = _uint(top.get(0x06, b"\x01"), order)
    if n_ch <= 0:
        raise FormatError(f"MFER: {n_ch} channels", path=path, record_id=rid)

    def attr(ch: int, tag: int) -> bytes | None:
        return per_channel.get(ch, {}).get(tag, top.get(tag))

    names, fs_list, gains, blocks, dtypes = [], [], [], [], []
    for ch in range(n_ch):
        ldn = attr(ch, 0x09)
        code = (_uint(ldn[:2], order) if len(ldn) >= 2 else ldn[0]) if ldn else 0
        names.append(LEAD_CODES.get(code, f"lead code {code}"))
        blocks.append(_uint(attr(ch, 0x04) or b"\x01", order))
        dtp = (attr(ch, 0x0A) or b"\x00")[0]
        if dtp not in _DTYPES:
            raise FormatError(f"MFER channel {ch + 1} ({names[-1]}): data type {dtp} is not a signed or float "
                              f"ECG sample type", path=path, record_id=rid)
        dtypes.append(_DTYPES[dtp])
        try:
            ivl, sen = attr(ch, 0x0B), attr(ch, 0x0C)
            if ivl is None or sen is None:
                raise ValueError("no sampling (0x0B)" if ivl is None else "no resolution (0x0C)")
            unit, step = _scaled(ivl, order)
            if unit not in (0, 1):
                raise ValueError(f"sampling unit code {unit} (0 = Hz, 1 = seconds per sample)")
            fs_list.append(step if unit == 0 else 1.0 / step)
            sen_unit, volts = _scaled(sen, order)
            if sen_unit != 0:
                raise ValueError(f"resolution unit code {sen_unit}, not volts")
            gains.append(volts * 1e3)
        except (ValueError, ZeroDivisionError) as exc:
            raise FormatError(f"MFER channel {ch + 1} ({names[-1]}): {exc}", path=path, record_id=rid) from exc
    try:
        to_canonical(names, np.zeros((n_ch, 1), dtype=np.float32), path=str(path), record_id=rid)
    except SignalError as exc:
        kind = {1: "standard 12-lead ECG", 2: "long-term ECG", 3: "vector cardiogram"}.get(
            _uint(top.get(0x08, b""), order), "waveform")
        raise SignalError(f"MFER {kind}: {n_ch} channel(s) {', '.join(names)}; not a 12-lead ECG",
                          path=path, record_id=rid) from exc
    if len(set(fs_list)) != 1 or len(set(blocks)) != 1 or len(set(dtypes)) != 1:
        raise FormatError(f"MFER channels differ in sampling ({sorted(set(fs_list))} Hz), block length or "
                          f"data type", path=path, record_id=rid)
    dtype = np.dtype(dtypes[0]).newbyteorder("<" if order == "little" else ">")
    need = n_seq * n_ch * blocks[0] * dtype.itemsize
    if wave is None or len(wave) < need:
        have = 0 if wave is None else len(wave)
        raise SignalError(f"MFER header promises {n_seq * blocks[0]} samples per channel ({n_seq} blocks of "
                          f"{blocks[0]}), the waveform data hold {have // (n_ch * dtype.itemsize)}: truncated",
                          path=path, record_id=rid)
    raw = np.frombuffer(wave, dtype=dtype, count=need // dtype.itemsize).reshape(n_seq, n_ch, blocks[0])
    data = raw.transpose(1, 0, 2).reshape(n_ch, -1).astype(np.float64) * np.array(gains)[:, None]
    signal, repairs = to_canonical(names, data, path=str(path), record_id=rid)
    meta = _patient(top, order)
    return Record(record_id=rid, patient_id=meta.get("patient_id"), signal=signal, fs=float(fs_list[0]),
                  source_format="mfer", source_path=str(path), statements=[], acquired_at=meta.get("acquired_at"),
                  age=meta.get("age"), sex=meta.get("sex"), native_fs=float(fs_list[0]), native_leads=tuple(names),
                  codes={}, repairs=repairs)


def _patient(top: dict[int, bytes], order: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if top.get(0x82):
        out["patient_id"] = top[0x82].split(b"\x00", 1)[0].decode("latin-1").strip() or None
    if top.get(0x83):
        out["age"] = float(top[0x83][0]) if top[0x83][0] < 150 else None  # years; the birth date is not kept
    if top.get(0x84):
        out["sex"] = {1: "M", 2: "F"}.get(top[0x84][0])
    t = top.get(0x85, b"")
    if len(t) >= 7:
        try:
            out["acquired_at"] = datetime(_uint(t[:2], order), t[2], t[3], t[4], t[5], t[6])
        except ValueError:
            pass
    return out
