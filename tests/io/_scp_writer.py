"""A small SCP-ECG writer for tests, written from the standard's layout (not from the reader).

Builds records whose content is known exactly: raw or Huffman-coded (default or custom tables,
with table switches), first/second differences, reference-beat subtraction and bimodal compression.
"""
from __future__ import annotations

import binascii
import struct
from typing import Sequence

import numpy as np

# (prefix bits, total bits, mode, base value, code as a bit string in transmission order)
Code = tuple[int, int, int, int, str]


def _section(sid: int, body: bytes, version: int = 20) -> bytes:
    if len(body) % 2:
        body += b"\x00"
    reserved = b"SCPECG" if sid == 0 else b"\x00" * 6
    rest = struct.pack("<HIBB6s", sid, 16 + len(body), version, version, reserved) + body
    return struct.pack("<H", binascii.crc_hqx(rest, 0xFFFF)) + rest


def record(bodies: dict[int, bytes]) -> bytes:
    """An SCP-ECG record from section bodies (section 0 and the CRCs are computed here)."""
    ids = sorted(set(range(12)) | set(bodies))
    n0 = 16 + 10 * len(ids)
    pointers, blobs, index = [], [], 7 + n0
    for sid in ids:
        if sid == 0:
            pointers.append(struct.pack("<HII", 0, n0, 7))
        elif sid in bodies:
            blob = _section(sid, bodies[sid])
            pointers.append(struct.pack("<HII", sid, len(blob), index))
            blobs.append(blob)
            index += len(blob)
        else:
            pointers.append(struct.pack("<HII", sid, 0, 0))
    rest = _section(0, b"".join(pointers)) + b"".join(blobs)
    size = 6 + len(rest)
    tail = struct.pack("<I", size) + rest
    return struct.pack("<H", binascii.crc_hqx(tail, 0xFFFF)) + tail


def difference(x: np.ndarray, order: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if order == 0:
        return x.copy()
    d = x.copy()
    if order == 1:
        d[1:] = x[1:] - x[:-1]
    else:
        d[2:] = x[2:] - 2 * x[1:-1] + x[:-2]
    return d


DEFAULT: list[Code] = [(1, 1, 1, 0, "0")] + [
    (n + 2, n + 2, 1, v, "1" * n + "0" + ("1" if v < 0 else "0")) for n in range(1, 9) for v in (n, -n)
] + [(10, 18, 1, 0, "1111111110"), (10, 26, 1, 0, "1111111111")]


def encode(values: Sequence[int], tables: list[list[Code]], switches: dict[int, int] | None = None) -> bytes:
    """Huffman-encode ``values``; ``switches`` maps a sample index to the table (1-based) to switch to."""
    switches = switches or {}
    bits: list[str] = []
    table = 0
    for k, v in enumerate(values):
        if k in switches:
            target = switches[k]
            code = next(c for c in tables[table] if c[2] == 0 and c[3] == target)
            bits.append(code[4])
            table = target - 1
        direct = [c for c in tables[table] if c[2] == 1 and c[0] == c[1] and c[3] == v]
        if direct:
            bits.append(direct[0][4])
            continue
        esc = next(c for c in sorted(tables[table], key=lambda c: c[1])
                   if c[2] == 1 and c[1] > c[0] and -(1 << (c[1] - c[0] - 1)) <= v < 1 << (c[1] - c[0] - 1))
        bits.append(esc[4] + format(v & ((1 << (esc[1] - esc[0])) - 1), f"0{esc[1] - esc[0]}b"))
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


def section2(tables: list[list[Code]] | None) -> bytes:
    """Section 2 body; ``None`` gives the default-table marker (19999)."""
    if tables is None:
        return struct.pack("<H", 19999)
    out = [struct.pack("<H", len(tables))]
    for t in tables:
        out.append(struct.pack("<H", len(t)))
        for prefix, total, mode, base, code in t:
            rev = sum(int(b) << i for i, b in enumerate(code))
            out.append(struct.pack("<BBBhI", prefix, total, mode, base, rev))
    return b"".join(out)


def section3(lead_codes: Sequence[int], start: int, end: int, *, subtracted: bool = False,
             starts: Sequence[int] | None = None, ends: Sequence[int] | None = None) -> bytes:
    flags = (0x01 if subtracted else 0) | 0x04 | (len(lead_codes) << 3 & 0xF8)
    out = [struct.pack("<BB", len(lead_codes), flags)]
    for k, code in enumerate(lead_codes):
        out.append(struct.pack("<IIB", starts[k] if starts else start, ends[k] if ends else end, code))
    return b"".join(out)


def data_section(leads: Sequence[np.ndarray], avm: int, interval_us: int, diff: int,
                 tables: list[list[Code]] | None | str, flag: int = 0) -> bytes:
    """Section 5/6 body. ``tables="raw"`` stores int16; otherwise Huffman with those tables (``None`` default)."""
    blobs = []
    for x in leads:
        d = difference(x, diff)
        if isinstance(tables, str):
            blob = d.astype("<i2").tobytes()
        else:
            blob = encode(d.tolist(), DEFAULT_TABLES if tables is None else tables)
        blobs.append(blob + b"\x00" * (len(blob) % 2))
    head = struct.pack("<HHBB", avm, interval_us, diff, flag) + struct.pack(f"<{len(blobs)}H", *map(len, blobs))
    return head + b"".join(blobs)


DEFAULT_TABLES = [DEFAULT]


def section1(tags: dict[int, bytes]) -> bytes:
    out = [struct.pack("<BH", tag, len(v)) + v for tag, v in tags.items()]
    return b"".join(out) + struct.pack("<BH", 255, 0)


def section4(ref_ms: int, fiducial: int, zones: Sequence[tuple[int, int, int, int]],
             protected: Sequence[tuple[int, int]] | None = None) -> bytes:
    out = [struct.pack("<HHH", ref_ms, fiducial, len(zones))]
    out += [struct.pack("<HIII", *z) for z in zones]
    if protected is not None:
        out += [struct.pack("<II", *p) for p in protected]
    return b"".join(out)


def section8(statements: Sequence[str]) -> bytes:
    out = [struct.pack("<BHBBBBBB", 1, 2020, 1, 2, 3, 4, 5, len(statements))]
    for k, text in enumerate(statements, 1):
        raw = text.encode("latin-1") + b"\x00"
        out.append(struct.pack("<BH", k, len(raw)) + raw)
    return b"".join(out)


def section11(statements: Sequence[tuple[int, str]]) -> bytes:
    out = [struct.pack("<BHBBBBBB", 1, 2020, 1, 2, 3, 4, 5, len(statements))]
    for k, (kind, text) in enumerate(statements, 1):
        raw = bytes([kind]) + text.encode("latin-1") + b"\x00"
        out.append(struct.pack("<BH", k, len(raw)) + raw)
    return b"".join(out)
