"""Bounds every reader applies to what it reads, allocates and returns, and text-field cleaning.

Sources come from outside: a header can claim 10^12 samples, a length field 4 GB, a patient id can
be 100 MB, a "file" can be a FIFO or an endless device. Readers check claims against the file's
real size and against the limits here *before* reading or allocating, and quarantine beyond them.

Limits (each chosen far above any real resting or Holter ECG, far below what exhausts a worker):

========================  ============  ==========================================================
limit                     value         why
========================  ============  ==========================================================
``MAX_FILE_BYTES``        1 GiB         a 24 h 12-lead 1 kHz int16 Holter file is ~2 GB in WFDB
                                        but ~1 GB per signal file; XML/DICOM resting ECGs < 50 MB
``MAX_SAMPLES``           2**28         per lead: 74 h at 1 kHz
``MAX_CHANNELS``          1024          a 12-lead record with every extra channel seen in the wild
``MIN_FS``, ``MAX_FS``    10, 100,000   Hz: no surface ECG below 10 Hz; above 100 kHz is absurd
``MAX_ID_CHARS``          256           patient and record ids (DICOM LO is 64 characters)
``MAX_STATEMENT_CHARS``   10,000        one diagnostic statement or report
========================  ============  ==========================================================
"""
from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path

from ecgkit.errors import FormatError, SignalError

MAX_FILE_BYTES = 1 << 30
MAX_SAMPLES = 1 << 28
MAX_CHANNELS = 1024
MIN_FS = 10.0
MAX_FS = 100_000.0
MAX_ID_CHARS = 256
MAX_STATEMENT_CHARS = 10_000

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_TAG = re.compile(r"<[^<>]{0,200}>")
_WS = re.compile(r"\s+")
_ENTITY = re.compile(r"&(#[xX][0-9a-fA-F]{1,8}|#[0-9]{1,10}|[A-Za-z_][\w.-]{0,64});")
_PREDEFINED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def read_file(path: str | Path, *, record_id: str | None = None, max_bytes: int = MAX_FILE_BYTES,
              what: str = "file") -> bytes:
    """Read a regular file whole, refusing FIFOs, devices and files over ``max_bytes``.

    The size is checked on the open descriptor (``fstat``), so a path swapped between a check and
    the read cannot slip an endless device in; the read itself is capped too.

    Raises
    ------
    FormatError
        If the file cannot be opened, is not a regular file, or is too large.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FormatError(f"cannot open {what}: {exc.strerror}", path=path, record_id=record_id) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FormatError(f"{what} is not a regular file (a FIFO, socket or device)", path=path,
                              record_id=record_id)
        if st.st_size > max_bytes:
            raise FormatError(f"{what} is {st.st_size} bytes, over the limit of {max_bytes} bytes", path=path,
                              record_id=record_id)
        chunks = []
        want = min(st.st_size, max_bytes) + 1  # one raw read for a regular file; loop if it was short
        got = 0
        while got <= max_bytes:
            block = os.read(fd, max(want - got, 1 << 16))
            if not block:
                break
            chunks.append(block)
            got += len(block)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except OSError as exc:
        raise FormatError(f"cannot read {what}: {exc.strerror}", path=path, record_id=record_id) from exc
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise FormatError(f"{what} grew past the limit of {max_bytes} bytes while being read", path=path,
                          record_id=record_id)
    return data


def check_fs(fs: float, *, path: str | Path | None, record_id: str | None = None,
             what: str = "sampling frequency") -> float:
    """Return ``fs`` if it can be a surface ECG's rate (finite, in [MIN_FS, MAX_FS] Hz), else raise.

    Raises
    ------
    SignalError
        Naming the value and the accepted range.
    """
    try:
        value = float(fs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SignalError(f"{what} {fs!r} is not a number", path=path, record_id=record_id) from exc
    if not math.isfinite(value) or not MIN_FS <= value <= MAX_FS:
        raise SignalError(f"{what} {value:g} Hz is impossible for a surface ECG (accepted: {MIN_FS:g}-{MAX_FS:g} Hz)",
                          path=path, record_id=record_id)
    return value


def check_count(n: int, *, limit: int, what: str, path: str | Path | None, record_id: str | None = None) -> int:
    """Return ``n`` if ``1 <= n <= limit``, else raise a :class:`SignalError` naming ``what``."""
    if n < 1:
        raise SignalError(f"{what} is {n}: no samples", path=path, record_id=record_id)
    if n > limit:
        raise SignalError(f"{what} is {n}, over the limit of {limit}", path=path, record_id=record_id)
    return n


def check_scale(value: float, *, what: str, path: str | Path | None, record_id: str | None = None) -> float:
    """A gain, resolution, scale or sensitivity: finite and positive, else a :class:`SignalError`.

    None of the formats ecgkit reads documents a negative value as an inversion, so a negative
    scale is a quarantine reason, never a silent sign flip; zero is never replaced by 1.
    """
    if not math.isfinite(value) or value <= 0:
        raise SignalError(f"{what} is {value:g}: it must be a positive number (a negative or zero value "
                          f"would flip or erase the signal)", path=path, record_id=record_id)
    return value


def clean_text(value: str | None) -> tuple[str | None, bool]:
    """Remove markup and control characters, decode entities, collapse whitespace.

    Every XML reader passes ids and statements through here, so ``"P&#x41;1"``, ``"<b>P1</b>"``
    and ``"P\x011"`` become ``"PA1"``, ``"P1"`` and ``"P1"`` whatever the dialect.

    Returns
    -------
    (text, changed)
        The cleaned text (``None`` when nothing is left), and whether markup or control characters
        were removed (the caller records that as a repair; decoding a standard entity is plain XML,
        not a repair).
    """
    if value is None:
        return None, False
    out = value
    changed = False
    if "<" in out:
        stripped = _TAG.sub("", out)
        changed = stripped != out
        out = stripped
    if "&" in out:
        dropped = [False]

        def _entity(m: re.Match[str]) -> str:
            ref = m.group(1)
            if ref[0] == "#":
                try:
                    return chr(int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:]))
                except (ValueError, OverflowError):
                    dropped[0] = True
                    return ""
            if ref in _PREDEFINED:
                return _PREDEFINED[ref]
            dropped[0] = True  # an entity the document defines itself: never expanded (XML bombs, XXE)
            return ""

        out = _ENTITY.sub(_entity, out)
        changed = changed or dropped[0]
    no_ctl = _CONTROL.sub("", out)
    changed = changed or no_ctl != out
    out = _WS.sub(" ", no_ctl).strip()
    return (out or None), changed


def cleaned_repair(fields: list[str]) -> str:
    """The repair entry recording which text fields had markup or control characters removed."""
    return "removed markup/control characters from " + ", ".join(sorted(set(fields)))


def excerpt(text: str | bytes, limit: int = 32) -> str:
    """A short, printable excerpt of file content for an error message (never the whole line)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    safe = "".join(c if c.isprintable() and c.isascii() else "?" for c in text[:limit])
    return safe + ("..." if len(text) > limit else "")
