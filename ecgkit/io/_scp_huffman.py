"""SCP-ECG Huffman decoding (EN 1064 / ISO 11073-91064 section 2) and difference reconstruction.

A Huffman table is a list of code structures, each ``(prefix_bits, total_bits, mode, base_value,
base_code)``: ``base_code`` holds the code's ``prefix_bits`` bits in transmission order starting at
its least significant bit (the standard stores codes bit-reversed); ``mode == 0`` switches decoding
to table number ``base_value`` (1-based); otherwise the code stands for ``base_value``, or, when
``total_bits > prefix_bits``, for the two's-complement integer in the ``total_bits - prefix_bits``
bits that follow it. The data stream is read most significant bit first.

Decoding is sequential by nature (each code's length depends on the previous ones), so it runs
in one small numba kernel walking a flattened binary tree; :func:`decode_reference` is the
straightforward pure-Python decoder it is tested (and benchmarked) against.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

#: The standard's default table (used when section 2 says 19999 tables): 0 -> "0"; +-n (n = 1..8) ->
#: "1" * n + "0" + sign bit; then 8-bit and 16-bit original values after a 10-bit prefix.
DEFAULT_TABLE: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 1, 1, 0, 0b0),
    *((n + 2, n + 2, 1, v, code)
      for n in range(1, 9)
      for v, code in ((n, (1 << n) - 1), (-n, (1 << n) - 1 | 1 << (n + 1)))),
    (10, 18, 1, 0, 0b0111111111),    # "1111111110" + 8-bit value
    (10, 26, 1, 0, 0b1111111111),    # "1111111111" + 16-bit value
)


#: Codes up to this many bits are decoded by one table look-up; longer ones walk the tree.
LUT_BITS = 12


@dataclass(frozen=True)
class HuffmanTables:
    """Section 2's tables as look-up tables plus a binary tree per table (arrays for the numba kernel)."""

    lut: NDArray[np.int32]        # (n_tables, 2**LUT_BITS): entry whose code starts the window, -1 = longer
    child: NDArray[np.int32]      # (n_nodes, 2): next node, -(entry + 1) for a leaf, 0 = no such code
    roots: NDArray[np.int32]      # (n_tables,) root node of each table
    prefix: NDArray[np.int32]     # (n_entries,) per code structure
    total: NDArray[np.int32]
    mode: NDArray[np.int32]
    base: NDArray[np.int32]


class HuffmanTableError(ValueError):
    """A section 2 table is not a prefix code (two codes collide, or a code is a prefix of another)."""


def build_tables(tables: list[list[tuple[int, int, int, int, int]]]) -> HuffmanTables:
    """Flatten code structures into per-table look-up tables and binary trees.

    Raises
    ------
    HuffmanTableError
        If a table's codes collide or one is the prefix of another, or a length is out of range.
    """
    child: list[list[int]] = []
    roots: list[int] = []
    flat: list[tuple[int, int, int, int, int]] = []
    lut = np.full((max(len(tables), 1), 1 << LUT_BITS), -1, dtype=np.int32)
    for t, table in enumerate(tables):
        roots.append(len(child))
        child.append([0, 0])
        for prefix, total, mode, base, code in table:
            if not 1 <= prefix <= 32 or total < prefix or total - prefix > 32:
                raise HuffmanTableError(f"table {t + 1}: code of {prefix} prefix bits and {total} total bits")
            entry = len(flat)
            flat.append((prefix, total, mode, base, code))
            node = roots[-1]
            for i in range(prefix):
                bit = (code >> i) & 1
                nxt = child[node][bit]
                if nxt < 0 or (i == prefix - 1 and nxt != 0):
                    raise HuffmanTableError(f"table {t + 1}: a code is the prefix of another")
                if i == prefix - 1:
                    child[node][bit] = -(entry + 1)
                else:
                    if nxt == 0:
                        nxt = len(child)
                        child.append([0, 0])
                        child[node][bit] = nxt
                    node = nxt
            if prefix <= LUT_BITS:
                msb_first = int(format(code & ((1 << prefix) - 1), f"0{prefix}b")[::-1], 2)
                lo = msb_first << (LUT_BITS - prefix)
                lut[t, lo:lo + (1 << (LUT_BITS - prefix))] = entry
    arr = np.array(flat, dtype=np.int64).reshape(-1, 5)
    return HuffmanTables(
        lut=lut,
        child=np.array(child, dtype=np.int32).reshape(-1, 2),
        roots=np.array(roots, dtype=np.int32),
        prefix=arr[:, 0].astype(np.int32), total=arr[:, 1].astype(np.int32),
        mode=arr[:, 2].astype(np.int32), base=arr[:, 3].astype(np.int32),
    )


@functools.lru_cache(maxsize=1)
def default_tables() -> HuffmanTables:
    """The standard's default table, built once per process (it is constant)."""
    return build_tables([list(DEFAULT_TABLE)])


@njit(cache=True)
def _peek(data, pos, n):  # pragma: no cover - compiled
    # n <= 17 bits starting at bit pos, MSB first; data carries 4 zero bytes of padding
    i = pos >> 3
    w = (np.int64(data[i]) << 16) | (np.int64(data[i + 1]) << 8) | np.int64(data[i + 2])
    return (w >> (24 - (pos & 7) - n)) & ((1 << n) - 1)


@njit(cache=True)
def _decode_kernel(data, nbits, n_out, lut, child, roots, prefix, total, mode, base, out):  # pragma: no cover
    # data uint8 (padded), lut (n_tables, 2**LUT_BITS) int32, child (n_nodes, 2) int32, the rest int32
    # per code structure; out int64 (n_out,).
    # returns (samples decoded, status): 0 ok, 1 data ended, 2 bit pattern that is no code, 3 bad switch
    lut_bits = np.int64(LUT_BITS)
    pos = np.int64(0)
    table = 0
    k = 0
    while k < n_out:
        if pos >= nbits:
            return k, 1
        entry = lut[table, _peek(data, pos, lut_bits)]
        if entry >= 0:
            pos += prefix[entry]
            if pos > nbits:
                return k, 1
        else:  # a code longer than the look-up window (or none): walk the tree bit by bit
            node = roots[table]
            while entry < 0:
                if pos >= nbits:
                    return k, 1
                bit = (data[pos >> 3] >> (7 - (pos & 7))) & 1
                pos += 1
                nxt = child[node, bit]
                if nxt == 0:
                    return k, 2
                if nxt < 0:
                    entry = -nxt - 1
                else:
                    node = nxt
        if mode[entry] == 0:
            table = base[entry] - 1
            if table < 0 or table >= roots.shape[0]:
                return k, 3
            continue
        extra = total[entry] - prefix[entry]
        if extra > 0:
            if pos + extra > nbits:
                return k, 1
            if extra <= 17:
                v = _peek(data, pos, np.int64(extra))
                pos += extra
            else:
                v = np.int64(0)
                for _ in range(extra):
                    v = (v << 1) | ((data[pos >> 3] >> (7 - (pos & 7))) & 1)
                    pos += 1
            if v >= (np.int64(1) << (extra - 1)):
                v -= np.int64(1) << extra
            out[k] = v
        else:
            out[k] = base[entry]
        k += 1
    return k, 0


_STATUS = {1: "the data ends", 2: "a bit pattern is not a code of the Huffman table",
           3: "a code switches to a Huffman table that does not exist"}


def decode_huffman(data: bytes, n_out: int, tables: HuffmanTables) -> NDArray[np.int64]:
    """Decode ``n_out`` values from one lead's Huffman-coded bytes (decoding starts in table 1).

    Raises
    ------
    ValueError
        If the stream ends or breaks before ``n_out`` values, saying after how many.
    """
    out = np.empty(n_out, dtype=np.int64)
    buf = np.frombuffer(data + b"\x00\x00\x00\x00", dtype=np.uint8)
    k, status = _decode_kernel(buf, len(data) * 8, n_out, tables.lut, tables.child, tables.roots,
                               tables.prefix, tables.total, tables.mode, tables.base, out)
    if status:
        raise ValueError(f"{_STATUS[status]} after {k} of {n_out} samples")
    return out


def undifference(values: NDArray[np.int64], order: int) -> NDArray[np.int64]:
    """Undo SCP-ECG difference encoding: 0 none, 1 first differences, 2 second differences.

    First: ``x[0] = d[0]``, ``x[n] = d[n] + x[n-1]``. Second: ``x[0], x[1] = d[0], d[1]``,
    ``x[n] = d[n] + 2 x[n-1] - x[n-2]`` (two cumulative sums, vectorised).
    """
    if order == 0 or len(values) == 0:
        return values
    if order == 1:
        return np.cumsum(values)
    if order == 2:
        if len(values) == 1:
            return values.copy()
        first = values[1:].copy()
        first[0] -= values[0]                  # x[1] - x[0]
        out = np.empty_like(values)
        out[0] = values[0]
        out[1:] = values[0] + np.cumsum(np.cumsum(first))
        return out
    raise ValueError(f"difference encoding {order} (the standard defines 0, 1 and 2)")


def decode_reference(data: bytes, n_out: int,
                     table: tuple[tuple[int, int, int, int, int], ...] = DEFAULT_TABLE) -> list[int]:
    """Straightforward pure-Python decoder of one table without switches (test and benchmark reference)."""
    codes = {}
    for prefix, total, _mode, base, code in table:
        key = "".join(str((code >> i) & 1) for i in range(prefix))
        codes[key] = (total - prefix, base)
    bits = "".join(f"{b:08b}" for b in data)
    out: list[int] = []
    pos, cur = 0, ""
    while len(out) < n_out:
        if pos >= len(bits):
            raise ValueError(f"the data ends after {len(out)} of {n_out} samples")
        cur += bits[pos]
        pos += 1
        if cur in codes:
            extra, base = codes[cur]
            cur = ""
            if extra:
                v = int(bits[pos:pos + extra], 2)
                pos += extra
                out.append(v - (1 << extra) if v >= 1 << (extra - 1) else v)
            else:
                out.append(base)
    return out
