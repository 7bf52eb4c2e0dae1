"""Fused int16 -> millivolt decode with the per-lead statistics QC needs, in one pass.

Decoding a 12-lead record with NumPy costs a gather, a conversion, two arithmetic passes and four
more passes for QC (min, max, count at min, count at max). This numba kernel does all of it in one
pass over the samples, which is what keeps the WFDB read path near the speed of ``np.fromfile``.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

#: WFDB's "no sample" value for 16-bit formats
MISSING_INT16 = -32768


@njit(cache=True, nogil=True)
def _decode_int16_kernel(data, order, base, inv_gain, out, stats, sums):  # pragma: no cover - compiled
    # data (n, n_chan) int16; order (L,) int64; base, inv_gain (L,) float32; out (L, n) float32;
    # stats (L, 5) float64: max, min, count at max, count at min, count missing;
    # sums (L,) int64: sum of the stored samples (WFDB's checksum is its low 16 bits)
    n = data.shape[0]
    for k in range(order.shape[0]):
        c = order[k]
        b = base[k]
        g = inv_gain[k]
        hi = -np.inf
        lo = np.inf
        n_hi = 0
        n_lo = 0
        n_missing = 0
        total = 0
        for t in range(n):
            d = data[t, c]
            total += d
            if d == -32768:
                out[k, t] = np.nan
                n_missing += 1
                continue
            v = (np.float32(d) - b) * g
            out[k, t] = v
            if v > hi:
                hi = v
                n_hi = 1
            elif v == hi:
                n_hi += 1
            if v < lo:
                lo = v
                n_lo = 1
            elif v == lo:
                n_lo += 1
        stats[k, 0] = hi
        stats[k, 1] = lo
        stats[k, 2] = n_hi
        stats[k, 3] = n_lo
        stats[k, 4] = n_missing
        sums[k] = total


def decode_int16(data: NDArray[np.int16], order: NDArray[np.int64], base: NDArray[np.float32],
                 inv_gain: NDArray[np.float32],
                 sums: NDArray[np.int64] | None = None) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Decode selected channels of interleaved int16 samples to physical units, with QC statistics.

    Parameters
    ----------
    data : NDArray[int16], shape (n_samples, n_channels)
        Interleaved digital samples as stored (frame after frame).
    order : NDArray[int64], shape (L,)
        Channel of ``data`` for each output row.
    base, inv_gain : NDArray[float32], shape (L,)
        Baseline (ADC units) and 1/gain (physical units per ADC unit) of each output row.

    Returns
    -------
    signal : NDArray[float32], shape (L, n_samples)
        ``(digital - base) * inv_gain``; WFDB's missing value -32768 becomes NaN.
    stats : NDArray[float64], shape (L, 5)
        Per row: max, min, samples at the max, samples at the min, missing samples (ignoring NaN).

    ``sums``, when given (int64, shape (L,)), receives each row's sum of stored samples, for source
    checksums (WFDB's is its low 16 bits), computed in the same pass.
    """
    order = np.ascontiguousarray(order, dtype=np.int64)
    if data.ndim != 2 or (order.size and (order.min() < 0 or order.max() >= data.shape[1])):
        raise ValueError(f"order {order.tolist()} does not index the {data.shape[-1]} channels of data")
    out = np.empty((order.size, data.shape[0]), dtype=np.float32)
    stats = np.empty((order.size, 5), dtype=np.float64)
    if sums is None or sums.shape != (order.size,) or sums.dtype != np.int64:
        sums = np.empty(order.size, dtype=np.int64)
    _decode_int16_kernel(data, order, np.ascontiguousarray(base, dtype=np.float32),
                         np.ascontiguousarray(inv_gain, dtype=np.float32), out, stats, sums)
    return out, stats


# base64 alphabet -> 6-bit value; 64 = whitespace (skipped), 65 = "=" (padding: end), -1 = invalid
_B64_TABLE = np.full(256, -1, dtype=np.int16)
for _i, _c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"):
    _B64_TABLE[_c] = _i
for _c in b" \t\r\n":
    _B64_TABLE[_c] = 64
_B64_TABLE[ord("=")] = 65


@njit(cache=True, nogil=True)
def _b64_kernel(src, table, out):  # pragma: no cover - compiled
    # src (n,) uint8 base64 text; out (>= n * 3 // 4,) uint8. Returns bytes written, or -(1 + i)
    # for an invalid character at i, or -(1 + n) when the last group is a single character.
    n = 0
    q = 0
    acc = 0
    for i in range(src.shape[0]):
        v = table[src[i]]
        if v < 64:
            if v < 0:
                return -(1 + i)
            acc = (acc << 6) | v
            q += 1
            if q == 4:
                out[n] = (acc >> 16) & 0xFF
                out[n + 1] = (acc >> 8) & 0xFF
                out[n + 2] = acc & 0xFF
                n += 3
                q = 0
                acc = 0
        elif v == 65:
            break
    if q == 1:
        return -(1 + src.shape[0])
    if q == 2:
        out[n] = (acc >> 4) & 0xFF
        n += 1
    elif q == 3:
        out[n] = (acc >> 10) & 0xFF
        out[n + 1] = (acc >> 2) & 0xFF
        n += 2
    return n


def decode_base64(text: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Decode base64 text (whitespace allowed, ``=`` padding ends it) to bytes, strictly.

    Unlike ``binascii.a2b_base64`` in its default mode, a character outside the alphabet is an
    error rather than skipped (a damaged payload must not decode silently), and the decode runs
    ~1.5x faster (one compiled pass, no intermediate ``bytes`` object).

    Parameters
    ----------
    text : NDArray[uint8], shape (n,)
        The base64 characters, e.g. ``np.frombuffer(memoryview(doc)[a:b], np.uint8)``.

    Returns
    -------
    NDArray[uint8]
        The decoded bytes (a view into a fresh buffer).

    Raises
    ------
    ValueError
        At an invalid character (its offset in ``text``) or a dangling last character.
    """
    out = np.empty(text.shape[0] * 3 // 4 + 3, dtype=np.uint8)
    n = _b64_kernel(text, _B64_TABLE, out)
    if n < 0:
        at = -n - 1
        if at >= text.shape[0]:
            raise ValueError("base64 text ends with a single character (a byte was lost)")
        raise ValueError(f"invalid base64 character {chr(text[at])!r} at offset {at}")
    return out[:n]
