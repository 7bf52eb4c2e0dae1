"""Decoder for Philips XLI waveform compression (Sierra ECG XML 1.03 / 1.04 ``parsedwaveforms``).

After base64 decoding, the waveform blob is a run of per-lead chunks::

    int32 LE  n_bytes     size of the compressed payload that follows the 8-byte header
    int16 LE  (unused)    always 1 in the files seen
    int16 LE  start       seed of the second-difference reconstruction
    n_bytes   payload     LZW stream

The payload is LZW with fixed 10-bit codes packed MSB first, no clear or end codes, a dictionary
that starts with the 256 single bytes and grows up to code 1022 (then stays frozen). The
decompressed bytes hold ``n`` 16-bit values split into two planes: the first ``n`` bytes are the
high bytes, the next ``n`` the low bytes. Those values ``d`` are turned into samples ``x`` by a
second-difference predictor::

    x[0] = d[0], x[1] = d[1]
    x[i] = 2 x[i-1] - x[i-2] - e[i],   e[2] = start,  e[i] = d[i-1] - 64  (i >= 3)

all in 16-bit wrap-around arithmetic. The predictor is a pair of cumulative sums and is
vectorised; only the LZW loop is sequential, in a small numba kernel.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

#: Code width of the LZW stream (bits).
CODE_BITS = 10
#: Highest code the dictionary may hold: (1 << 10) - 2; code 1023 ends the stream.
MAX_CODE = (1 << CODE_BITS) - 2
#: Offset subtracted from each stored second difference.
DELTA_BIAS = 64
HEADER_BYTES = 8

# Kernel return codes.
_BAD_CODE = -1
_OVERFLOW = -2


@njit(cache=True)
def _lzw10_kernel(src: NDArray[np.uint8], out: NDArray[np.uint8]) -> int:  # pragma: no cover - compiled
    """Decode an XLI LZW stream into ``out``; return bytes written, or -1 (bad code) / -2 (out too small)."""
    prefix = np.empty(MAX_CODE + 1, dtype=np.int32)
    first = np.empty(MAX_CODE + 1, dtype=np.uint8)
    length = np.empty(MAX_CODE + 1, dtype=np.int32)
    last = np.empty(MAX_CODE + 1, dtype=np.uint8)
    for c in range(256):
        prefix[c] = -1
        first[c] = c
        last[c] = c
        length[c] = 1
    next_code = 256
    prev = -1
    pos = 0
    cap = out.shape[0]
    n_codes = (src.shape[0] * 8) // CODE_BITS
    bitbuf = 0
    nbits = 0
    src_pos = 0
    for _ in range(n_codes):
        while nbits < CODE_BITS:
            bitbuf = (bitbuf << 8) | src[src_pos]
            src_pos += 1
            nbits += 8
        nbits -= CODE_BITS
        code = (bitbuf >> nbits) & 0x3FF
        bitbuf &= (1 << nbits) - 1
        if code > MAX_CODE:
            break
        if code < next_code:
            head = first[code]
        elif code == next_code and prev >= 0:
            head = first[prev]  # the KwKwK case: the string is prev + prev[0]
        else:
            return _BAD_CODE
        if prev >= 0 and next_code <= MAX_CODE:
            prefix[next_code] = prev
            first[next_code] = first[prev]
            last[next_code] = head
            length[next_code] = length[prev] + 1
            next_code += 1
        n = length[code]
        if pos + n > cap:
            return _OVERFLOW
        k = code
        for j in range(pos + n - 1, pos - 1, -1):
            out[j] = last[k]
            k = prefix[k]
        pos += n
        prev = code
    return pos


def lzw10_decode(payload: bytes | NDArray[np.uint8], size_hint: int = 0) -> NDArray[np.uint8]:
    """Decompress one XLI LZW payload (10-bit MSB-first codes) into bytes.

    Parameters
    ----------
    payload : bytes or NDArray[np.uint8]
        The compressed chunk payload (without its 8-byte header).
    size_hint : int
        Expected decompressed size in bytes; the buffer grows if the stream holds more.

    Returns
    -------
    NDArray[np.uint8], shape (n_bytes,)

    Raises
    ------
    ValueError
        If the stream holds a code that is neither in the dictionary nor the next one to be added.
    """
    src = np.frombuffer(payload, dtype=np.uint8) if isinstance(payload, (bytes, bytearray)) else payload
    out = np.empty(max(size_hint, 0) + 4096, dtype=np.uint8)
    n = _lzw10_kernel(src, out)
    if n == _OVERFLOW:
        # every code expands to at most MAX_CODE - 254 bytes; this bound always fits
        out = np.empty((src.shape[0] * 8 // CODE_BITS + 1) * (MAX_CODE - 254), dtype=np.uint8)
        n = _lzw10_kernel(src, out)
    if n < 0:
        raise ValueError("LZW stream holds a code that is not in the dictionary")
    return out[:n]


def unpack_deltas(raw: NDArray[np.uint8]) -> NDArray[np.int16]:
    """Join the high-byte plane and the low-byte plane into int16 values, shape (len(raw) // 2,)."""
    n = raw.shape[0] // 2
    joined = (raw[:n].astype(np.uint16) << 8) | raw[n:2 * n].astype(np.uint16)
    return joined.view(np.int16)


def reconstruct(deltas: NDArray[np.int16], start: int) -> NDArray[np.int16]:
    """Undo the XLI second-difference predictor (vectorised), 16-bit wrap-around like the encoder.

    Parameters
    ----------
    deltas : NDArray[np.int16], shape (n,)
        Unpacked values from :func:`unpack_deltas`.
    start : int
        The chunk header's seed.

    Returns
    -------
    NDArray[np.int16], shape (n,)
        Samples in the device's units (LSB).
    """
    d = deltas.astype(np.int64)
    n = d.shape[0]
    if n <= 2:
        return deltas.copy()
    # e[i] for i >= 2 is subtracted from the running first difference
    e = np.empty(n - 2, dtype=np.int64)
    e[0] = start
    e[1:] = d[2:n - 1] - DELTA_BIAS
    first_diff = (d[1] - d[0]) - np.cumsum(e)  # x[i] - x[i-1] for i >= 2
    x = np.empty(n, dtype=np.int64)
    x[0] = d[0]
    x[1] = d[1]
    x[2:] = d[1] + np.cumsum(first_diff)
    # ring arithmetic mod 2**16 commutes with +, -, *2: wrapping at the end equals wrapping each step
    return x.astype(np.int16)


def xli_decode(blob: bytes, n_samples: int | None = None) -> list[NDArray[np.int16]]:
    """Decode a whole XLI blob into one int16 array per chunk (lead), in file order.

    Parameters
    ----------
    blob : bytes
        The base64-decoded ``parsedwaveforms`` content.
    n_samples : int or None
        Samples expected per lead (sizes the output buffers only).

    Returns
    -------
    list of NDArray[np.int16]
        One array per chunk; a device may append chunks beyond the leads it labels.

    Raises
    ------
    ValueError
        On a chunk header that points past the end of the blob, or an invalid LZW stream; the
        message gives the chunk index and byte offset.
    """
    leads: list[NDArray[np.int16]] = []
    offset = 0
    size_hint = 2 * n_samples if n_samples else 0
    data = np.frombuffer(blob, dtype=np.uint8)
    while offset < len(blob):
        if offset + HEADER_BYTES > len(blob):
            raise ValueError(f"chunk {len(leads)} at byte {offset}: {len(blob) - offset} bytes left, "
                             f"less than the {HEADER_BYTES}-byte header")
        size = int.from_bytes(blob[offset:offset + 4], "little", signed=True)
        start = int.from_bytes(blob[offset + 6:offset + 8], "little", signed=True)
        body = offset + HEADER_BYTES
        if size < 0 or body + size > len(blob):
            raise ValueError(f"chunk {len(leads)} at byte {offset} declares {size} bytes, "
                             f"{len(blob) - body} remain")
        try:
            raw = lzw10_decode(data[body:body + size], size_hint)
        except ValueError as exc:
            raise ValueError(f"chunk {len(leads)} at byte {offset}: {exc}") from exc
        leads.append(reconstruct(unpack_deltas(raw), start))
        offset = body + size
    return leads
