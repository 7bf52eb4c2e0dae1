"""SCP-ECG reader (EN 1064 / ISO 11073-91064, the standard of many European carts and converters).

A record is a CRC-CCITT (2 bytes), a record size (4 bytes) and numbered sections, each with a
16-byte header (CRC, id, length, section and protocol version, 6 reserved bytes). Section 0 points
at the others (1-based byte offsets); 1 patient and acquisition tags; 2 Huffman tables; 3 lead
definitions; 4 QRS locations (reference-beat subtraction zones, bimodal protected zones); 5 the
reference beat; 6 the rhythm (or, with subtraction, the residual); 7 global measurements; 8 and 11
interpretive statements; 10 per-lead measurements. All integers are little-endian.

The rhythm is reconstructed at full rate: Huffman decoding (default or section 2 tables), undoing
first/second differences, expanding bimodal compression (decimated samples outside the protected
QRS zones, linearly interpolated) and adding the reference beat back in each subtraction zone.
Amplitudes are ``value * AVM`` nanovolts; the sample interval is in microseconds.
"""
from __future__ import annotations

import binascii
import logging
import struct
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ecgkit.io._limits import read_file
from ecgkit.errors import FormatError, SignalError
from ecgkit.io._leads import to_canonical
from ecgkit.io._scp_huffman import (HuffmanTableError, HuffmanTables, build_tables, decode_huffman,
                                    default_tables, undifference)
from ecgkit.io._xml import age_in_years
from ecgkit.record import Record

logger = logging.getLogger(__name__)

#: Section 3 lead codes (the standard's lead table; MFER uses the same codes). Device-derived limb
#: leads (dI, dII, dIII, daVR, daVL, daVF) are the same leads computed by the cart; derived chest
#: leads (dV1..) are estimates from reduced lead sets and keep their own names.
LEAD_CODES: dict[int, str] = {
    0: "unspecified", 1: "I", 2: "II", 3: "V1", 4: "V2", 5: "V3", 6: "V4", 7: "V5", 8: "V6", 9: "V7",
    10: "V2R", 11: "V3R", 12: "V4R", 13: "V5R", 14: "V6R", 15: "V7R", 16: "X", 17: "Y", 18: "Z",
    19: "CC5", 20: "CM5", 21: "LA", 22: "RA", 23: "LL", 24: "fI", 25: "fE", 26: "fC", 27: "fA",
    28: "fM", 29: "fF", 30: "fH", 31: "I", 32: "II", 33: "dV1", 34: "dV2", 35: "dV3", 36: "dV4",
    37: "dV5", 38: "dV6", 61: "III", 62: "aVR", 63: "aVL", 64: "aVF", 65: "-aVR", 66: "V8", 67: "V9",
    68: "V8R", 69: "V9R", 70: "D", 71: "A", 72: "J", 73: "defibrillator", 74: "external pacing",
    75: "A1", 76: "A2", 77: "A3", 78: "A4", 86: "C", 87: "V", 88: "VR", 89: "VL", 90: "VF",
    111: "III", 112: "aVR", 113: "aVL", 114: "aVF", 115: "-aVR", 151: "V10",
}
_AGE_UNITS = {1: 1.0, 2: 1 / 12, 3: 7 / 365.25, 4: 1 / 365.25, 5: 1 / 8766}  # years per unit
_NOT_COMPUTED = 29999  # the standard's "value not computed" in section 7/10 measurements


@dataclass(frozen=True)
class _Lead:
    name: str
    start: int  # 1-based first sample
    end: int    # 1-based last sample


def _fail(msg: str, path: Path, rid: str) -> FormatError:
    return FormatError(f"SCP-ECG: {msg}", path=path, record_id=rid)


def _sections(buf: bytes, path: Path, rid: str) -> dict[int, bytes]:
    """Check the record CRC and size; return each present section's body (after its 16-byte header)."""
    if len(buf) < 6 + 16:
        raise _fail(f"file of {len(buf)} bytes is too short for a record", path, rid)
    crc, size = struct.unpack_from("<HI", buf, 0)
    if size > len(buf):
        raise _fail(f"truncated: the record says {size} bytes, the file holds {len(buf)}", path, rid)
    if size < 6 + 16:
        raise _fail(f"record size {size} is too small", path, rid)
    actual = binascii.crc_hqx(buf[2:size], 0xFFFF)  # CRC-CCITT (0x1021, initial 0xFFFF)
    if actual != crc:
        raise _fail(f"record CRC mismatch (stored 0x{crc:04X}, computed 0x{actual:04X}): the file is corrupt",
                    path, rid)
    sid0, len0 = struct.unpack_from("<HI", buf, 8)
    if sid0 != 0 or not 16 <= len0 <= size - 6:
        raise _fail("section 0 (pointers) missing at byte 7", path, rid)
    out: dict[int, bytes] = {}
    for p in range(6 + 16, 6 + len0 - 9, 10):
        sid, length, index = struct.unpack_from("<HII", buf, p)
        if length == 0 or index == 0 or sid == 0:
            continue
        start = index - 1
        if start + length > size or length < 16:
            raise _fail(f"section {sid} ({length} bytes at byte {index}) lies outside the {size}-byte record",
                        path, rid)
        hid, hlen = struct.unpack_from("<HI", buf, start + 2)
        if hid != sid:
            raise _fail(f"section 0 points at byte {index} for section {sid}, but a section {hid} header "
                        f"is there", path, rid)
        if hlen != length:  # writers disagree by padding bytes; the section's own length wins if it fits
            logger.debug("%s: section %d header says %d bytes, pointer %d", path, sid, hlen, length)
            if not 16 <= hlen <= size - start:
                raise _fail(f"section {sid}: its header says {hlen} bytes, the pointer {length}, the record "
                            f"holds {size - start} from its start", path, rid)
            length = hlen
        out[sid] = buf[start + 16:start + length]
    return out


def _text(raw: bytes) -> str:
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()


def _date(v: bytes) -> date | None:
    if len(v) < 4:
        return None
    year, month, day = struct.unpack_from("<HBB", v)
    try:
        return date(year, month, day) if year else None
    except ValueError:
        return None


def _patient(body: bytes) -> dict:
    """Section 1 tags: patient id, age (or birth date -> age only), sex, acquisition date and time."""
    tags: dict[int, bytes] = {}
    p = 0
    while p + 3 <= len(body):
        tag, length = struct.unpack_from("<BH", body, p)
        if tag == 255:
            break
        tags.setdefault(tag, body[p + 3:p + 3 + length])
        p += 3 + length
    pid = _text(tags[2]) if 2 in tags else None
    day = _date(tags.get(25, b""))
    acquired = None
    if day is not None:
        t = tags.get(26, b"")
        h, m, s = struct.unpack_from("<BBB", t) if len(t) >= 3 else (0, 0, 0)
        try:
            acquired = datetime(day.year, day.month, day.day, h, m, s)
        except ValueError:
            acquired = datetime(day.year, day.month, day.day)
    age = None
    if len(tags.get(4, b"")) >= 3:
        value, unit = struct.unpack_from("<HB", tags[4])
        if value and unit in _AGE_UNITS:
            age = round(value * _AGE_UNITS[unit], 3)
    if age is None and 5 in tags:  # the birth date itself never leaves the reader
        birth = _date(tags[5])
        if birth is not None:
            age = age_in_years(datetime(birth.year, birth.month, birth.day), acquired)
    sex = {1: "M", 2: "F"}.get(tags[8][0]) if tags.get(8) else None
    return {"patient_id": pid or None, "age": age, "sex": sex, "acquired_at": acquired}


def _huffman(body: bytes | None, path: Path, rid: str) -> HuffmanTables | None:
    """Section 2 -> flattened tables; ``None`` when the data are not Huffman coded (no section 2)."""
    if body is None:
        return None
    try:
        (n_tables,) = struct.unpack_from("<H", body)
        if n_tables == 19999:
            return default_tables()
        tables, p = [], 2
        for _ in range(n_tables):
            (n_codes,) = struct.unpack_from("<H", body, p)
            p += 2
            codes = [struct.unpack_from("<BBBhI", body, p + 9 * k) for k in range(n_codes)]
            p += 9 * n_codes
            tables.append(codes)
        return build_tables(tables)
    except (struct.error, HuffmanTableError) as exc:
        raise _fail(f"section 2 (Huffman tables) is malformed: {exc}", path, rid) from exc


def _leads(body: bytes, path: Path, rid: str) -> tuple[list[_Lead], bool]:
    if len(body) < 2:
        raise _fail("section 3 (lead definitions) is empty", path, rid)
    n, flags = body[0], body[1]
    if n == 0 or len(body) < 2 + 9 * n:
        raise _fail(f"section 3 defines {n} leads in {len(body)} bytes", path, rid)
    leads = []
    for k in range(n):
        start, end, code = struct.unpack_from("<IIB", body, 2 + 9 * k)
        start = max(start, 1)  # some writers count from 0 and give the sample count as the end
        if end < start:
            raise _fail(f"section 3: lead {k + 1} runs from sample {start} to {end}", path, rid)
        leads.append(_Lead(LEAD_CODES.get(code, f"lead code {code}"), start, end))
    return leads, bool(flags & 0x01)


def _data_block(body: bytes, n_leads: int, what: str, path: Path, rid: str):
    """Section 5/6 common part: AVM (nV), interval (us), difference order, flag, per-lead byte arrays."""
    head = 6 + 2 * n_leads
    if len(body) < head:
        raise _fail(f"{what} is truncated in its header", path, rid)
    avm, interval, diff, flag = struct.unpack_from("<HHBB", body)
    lengths = struct.unpack_from(f"<{n_leads}H", body, 6)
    if avm == 0 or interval == 0:
        raise _fail(f"{what}: amplitude value multiplier {avm} nV, sample interval {interval} us", path, rid)
    if diff > 2:
        raise _fail(f"{what}: difference encoding {diff} (the standard defines 0, 1 and 2)", path, rid)
    blobs, p = [], head
    for k, n in enumerate(lengths):
        if p + n > len(body):
            raise _fail(f"{what}: lead {k + 1} data ({n} bytes) run past the section's end", path, rid)
        blobs.append(body[p:p + n])
        p += n
    return avm, interval, diff, flag, blobs


def _decode(blob: bytes, n: int, diff: int, tables, what: str, path: Path, rid: str) -> NDArray[np.int64]:
    if tables is None:
        if len(blob) < 2 * n:
            raise _fail(f"{what}: {len(blob) // 2} of {n} samples present (the data are cut short)", path, rid)
        values = np.frombuffer(blob, dtype="<i2", count=n).astype(np.int64)
    else:
        try:
            values = decode_huffman(blob, n, tables)
        except ValueError as exc:
            raise _fail(f"{what}: Huffman data broken: {exc}", path, rid) from exc
    return undifference(values, diff)


def _qrs(body: bytes | None) -> tuple[int, int, list[tuple[int, int, int, int]], list[tuple[int, int]]]:
    """Section 4: reference beat length (ms), its fiducial, subtraction zones, protected zones."""
    if body is None or len(body) < 6:
        return 0, 0, [], []
    length_ms, fiducial, n = struct.unpack_from("<HHH", body)
    if len(body) < 6 + 14 * n:
        n = (len(body) - 6) // 14
    zones = [struct.unpack_from("<HIII", body, 6 + 14 * k) for k in range(n)]
    p = 6 + 14 * n
    protected = [struct.unpack_from("<II", body, p + 8 * k) for k in range(n)] if len(body) >= p + 8 * n else []
    return length_ms, fiducial, zones, protected


def _bimodal_positions(lead: _Lead, protected: list[tuple[int, int]], rate: int) -> NDArray[np.float64]:
    """Full-rate positions (0-based in the lead) of the values bimodal compression stores.

    Inside protected zones every sample is stored; elsewhere one value per block of ``rate``
    samples (the last block of a stretch may be shorter), standing for the block's centre.
    """
    n = lead.end - lead.start + 1
    mask = np.zeros(n, dtype=bool)
    for a, b in protected:
        lo, hi = max(a, lead.start) - lead.start, min(b, lead.end) - lead.start
        if hi >= lo:
            mask[lo:hi + 1] = True
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    bounds = np.concatenate(([0], change, [n]))
    parts: list[NDArray[np.float64]] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if mask[a]:
            parts.append(np.arange(a, b, dtype=np.float64))
        else:
            starts = np.arange(a, b, rate, dtype=np.float64)
            parts.append(starts + (np.minimum(starts + rate, b) - 1 - starts) / 2)
    return np.concatenate(parts)


def _statements(sections: dict[int, bytes], coded: list[str] | None = None) -> list[str]:
    """Sections 8 (full text) and 11 (universal statements: coded or text) -> statement lines.

    Section 11's coded statements (SCP-ECG statement acronyms, the codes PTB-XL's ``scp_codes`` use)
    are also appended to ``coded``.
    """
    out: list[str] = []
    for sid in (8, 11):
        body = sections.get(sid)
        if body is None or len(body) < 9:
            continue
        n, p = body[8], 9
        for _ in range(n):
            if p + 3 > len(body):
                break
            length = struct.unpack_from("<H", body, p + 1)[0]
            field = body[p + 3:p + 3 + length]
            p += 3 + length
            if sid == 11:
                if not field or field[0] not in (1, 2):  # 3 = statement logic, not a statement
                    continue
                if field[0] == 1 and coded is not None:
                    coded.extend(t for t in (_text(x) for x in field[1:].split(b"\x00")) if t)
                field = field[1:]
            for part in field.split(b"\x00"):
                text = _text(part)
                if text and text not in out:
                    out.append(text)
    return out


def _measurements(body: bytes | None) -> dict[str, float]:
    """Section 7 global measurements of reference beat type 0 (ms, degrees, bpm)."""
    if body is None or len(body) < 6 + 16:
        return {}
    _n, _spikes, rr, pp = struct.unpack_from("<BBHH", body)
    p_on, p_off, qrs_on, qrs_off, t_off = struct.unpack_from("<5H", body, 6)
    p_axis, qrs_axis, t_axis = struct.unpack_from("<3h", body, 16)
    ok = lambda *v: all(0 < x < _NOT_COMPUTED for x in v)  # noqa: E731
    out: dict[str, float] = {}
    if ok(rr):
        out.update(rr_ms=rr, heart_rate_bpm=round(60000 / rr, 1))
    if ok(p_on, qrs_on) and qrs_on > p_on:
        out["pr_ms"] = qrs_on - p_on
    if ok(qrs_on, qrs_off) and qrs_off > qrs_on:
        out["qrs_ms"] = qrs_off - qrs_on
    if ok(qrs_on, t_off) and t_off > qrs_on:
        out["qt_ms"] = t_off - qrs_on
    for name, v in (("p_axis_deg", p_axis), ("qrs_axis_deg", qrs_axis), ("t_axis_deg", t_axis)):
        if -360 <= v <= 360:
            out[name] = v
    return out


# Section 10 per-lead fields, in the standard's order (durations ms, amplitudes uV); the rest
# (morphologies, ST slope, quality) are not kept.
_LEAD_FIELDS = ("p_ms", "pr_ms", "qrs_ms", "qt_ms", "q_ms", "r_ms", "s_ms", "r2_ms", "s2_ms", "q_uv", "r_uv",
                "s_uv", "r2_uv", "s2_uv", "j_uv", "p_pos_uv", "p_neg_uv", "t_pos_uv", "t_neg_uv")


def _lead_measurements(body: bytes | None) -> dict[str, dict[str, int]]:
    """Section 10: per-lead measurements of the reference beat, by lead name."""
    if body is None or len(body) < 4:
        return {}
    (n_leads,) = struct.unpack_from("<H", body)
    out: dict[str, dict[str, int]] = {}
    p = 4
    for _ in range(n_leads):
        if p + 4 > len(body):
            break
        code, length = struct.unpack_from("<HH", body, p)
        block = body[p + 4:p + 4 + length]
        p += 4 + length
        values = struct.unpack_from(f"<{min(len(block) // 2, len(_LEAD_FIELDS))}h", block)
        kept = {k: v for k, v in zip(_LEAD_FIELDS, values) if abs(v) < _NOT_COMPUTED and
                not (k.endswith("_ms") and v <= 0)}
        if kept:
            out[LEAD_CODES.get(code, f"lead code {code}")] = kept
    return out


def read_scp(path: str | Path, *, record_id: str | None = None) -> Record:
    """Read an SCP-ECG file (``.scp``) into a :class:`~ecgkit.record.Record` at its native rate.

    Parameters
    ----------
    path : str or Path
        The SCP-ECG file.
    record_id : str or None
        Defaults to the file stem.

    Returns
    -------
    Record
        float32 millivolts in canonical order (limb leads derived from I and II when only the 8
        independent leads are stored); ``native_leads`` are the section 3 lead names; ``statements``
        come from sections 8 and 11; ``codes["scp_measurements"]`` holds section 7's intervals and axes,
        ``codes["scp_lead_measurements"]`` section 10's per-lead durations (ms) and amplitudes (uV).
        Names and birth dates are read only to compute the age, never returned.

    Raises
    ------
    FormatError
        Truncated file, CRC mismatch, a section outside the record, broken Huffman data.
    SignalError
        No standard 12-lead set, or leads not recorded simultaneously.

    Examples
    --------
    >>> rec = read_scp("../shared/data/scp-ecg/Example.scp")  # doctest: +SKIP
    >>> rec.signal.shape, rec.fs
    ((12, 5000), 500.0)
    """
    path = Path(path)
    rid = record_id if record_id is not None else path.stem
    buf = read_file(path, record_id=rid)  # bounded, regular files only
    sections = _sections(buf, path, rid)
    if 3 not in sections:
        raise _fail("no lead definition (section 3)", path, rid)
    if 6 not in sections:
        what = "only reference beats (section 5)" if 5 in sections else "no waveform"
        raise _fail(f"no rhythm data (section 6): the file holds {what}", path, rid)
    tables = _huffman(sections.get(2), path, rid)
    leads, subtracted = _leads(sections[3], path, rid)
    avm6, interval6, diff6, bimodal, blobs6 = _data_block(sections[6], len(leads), "section 6", path, rid)
    if (subtracted or bimodal) and 4 not in sections:
        raise _fail("rhythm is stored as residual or bimodal data but the file has no QRS locations "
                    "(section 4)", path, rid)
    ref_ms, fiducial, zones, protected = _qrs(sections.get(4))
    ref = None
    interval = interval6
    if 5 in sections and (subtracted or bimodal):
        avm5, interval5, diff5, _, blobs5 = _data_block(sections[5], len(leads), "section 5", path, rid)
        n_ref = int(round(ref_ms * 1000 / interval5))
        ref = [_decode(b, n_ref, diff5, tables, f"section 5 lead {ld.name}", path, rid) * float(avm5)
               for b, ld in zip(blobs5, leads)]
        interval = interval5
    elif subtracted or bimodal:
        raise _fail("rhythm is stored as residual or bimodal data but the file has no reference beat "
                    "(section 5)", path, rid)
    if subtracted and not bimodal and interval6 != interval:
        raise _fail(f"residual rhythm at {interval6} us per sample but reference beat at {interval} us, "
                    f"without bimodal compression: the two cannot be added", path, rid)
    rate = interval6 // interval if bimodal else 1
    if bimodal and (interval6 % interval or not 1 <= rate <= 16):
        raise _fail(f"bimodal compression with rhythm interval {interval6} us and reference beat interval "
                    f"{interval} us (not an integer ratio)", path, rid)
    rows: list[NDArray[np.float64]] = []
    for blob, ld in zip(blobs6, leads):
        n = ld.end - ld.start + 1
        what = f"section 6 lead {ld.name}"
        if bimodal and rate > 1:
            pos = _bimodal_positions(ld, protected, rate)
            stored = _decode(blob, len(pos), diff6, tables, what, path, rid).astype(np.float64)
            x = np.interp(np.arange(n, dtype=np.float64), pos, stored) * float(avm6)
        else:
            x = _decode(blob, n, diff6, tables, what, path, rid).astype(np.float64) * float(avm6)
        rows.append(x)
    if ref is not None and subtracted:
        for k, ld in enumerate(leads):
            _add_reference(rows[k], ref[k], ld, fiducial, zones)
    start = max(ld.start for ld in leads)
    end = min(ld.end for ld in leads)
    if end < start:
        spans = ", ".join(f"{ld.name} {ld.start}-{ld.end}" for ld in leads)
        raise SignalError(f"SCP-ECG leads were not recorded simultaneously (samples {spans}): no common "
                          f"stretch", path=path, record_id=rid)
    data = np.stack([r[start - ld.start:end - ld.start + 1] for r, ld in zip(rows, leads)]) / 1e6  # nV -> mV
    names = [ld.name for ld in leads]
    signal, repairs = to_canonical(names, data, path=str(path), record_id=rid)
    if any(ld.start != start or ld.end != end for ld in leads):
        repairs = repairs + (f"cropped to samples {start}-{end}, recorded by every lead",)
    fs = round(1e6 / interval, 6)
    meta = _patient(sections.get(1, b""))
    codes: dict[str, object] = {}
    measurements = _measurements(sections.get(7))
    if measurements:
        codes["scp_measurements"] = measurements
    per_lead = _lead_measurements(sections.get(10))
    if per_lead:
        codes["scp_lead_measurements"] = per_lead
    coded: list[str] = []
    statements = _statements(sections, coded)
    if coded:  # likelihood 0 = "not given", as in PTB-XL's scp_codes
        codes["scp"] = {c: 0.0 for c in coded}
    return Record(
        record_id=rid,
        patient_id=meta["patient_id"],
        signal=signal,
        fs=fs,
        source_format="scp",
        source_path=str(path),
        statements=statements,
        acquired_at=meta["acquired_at"],
        age=meta["age"],
        sex=meta["sex"],
        native_fs=fs,
        native_leads=tuple(names),
        codes=codes,
        repairs=repairs,
    )


def _add_reference(row: NDArray[np.float64], ref: NDArray[np.floating], lead: _Lead, fiducial: int,
                   zones: list[tuple[int, int, int, int]]) -> None:
    """Add the reference beat back into each type-0 subtraction zone (sample numbers are 1-based)."""
    for beat_type, sb, fc, se in zones:
        if beat_type != 0 or se < sb:
            continue
        s = np.arange(max(sb, lead.start), min(se, lead.end) + 1)
        m = fiducial - fc + s - 1          # reference beat index aligned on the fiducial point
        keep = (m >= 0) & (m < len(ref))
        row[s[keep] - lead.start] += ref[m[keep]]
