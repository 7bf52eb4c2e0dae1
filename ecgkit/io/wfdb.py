"""WFDB records (PTB-XL, PhysioNet Challenge ``.hea`` + ``.mat``, PTB Diagnostic, synthetic cohorts).

The common case (every signal in format 16, one sample per frame, no skew; signal files ``.dat`` or
the Challenge's MATLAB v4 ``.mat`` with a byte offset) is decoded with a small header parser and
``np.fromfile``: ``wfdb.rdsamp`` spends ~80% of its time parsing headers (``MEASUREMENTS.md``).
Everything else (formats 212, 310, 8, multi-segment records, ...) goes through the ``wfdb`` library.
Both paths produce identical physical values: ``(digital - baseline) / gain`` in the header's units,
converted to millivolts.

Header comments are parsed by :mod:`ecgkit.io._wfdb_comments` (``# Age: 63``, ``#<age>: 51``,
``# Sex``, ``# Dx`` SNOMED-CT codes, ``#<diagnoses>:`` blocks, ``# Reason for admission`` and other
diagnosis fields, MIT-BIH's positional first line, the ``Patient``/``Acquired``/``Statement`` lines
:mod:`ecgkit.synth` writes; all keys case-insensitive).
Other comment lines are ignored: they may hold free-text identifiers.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ecgkit._resources import data_path
from ecgkit.errors import FormatError, SignalError
from ecgkit.io._decode import decode_int16
from ecgkit.io._limits import MAX_CHANNELS, MAX_SAMPLES, check_fs, check_scale, excerpt, read_file
from ecgkit.io._leads import DERIVED_LEADS, DERIVED_REPAIR, INDEPENDENT_LEADS, derive_limb_leads
from ecgkit.io._wfdb_comments import parse_comments
from ecgkit.record import LEADS, Record, canonical_lead, lead_order
from ecgkit.signal import qc_flags, qc_flags_from_stats

logger = logging.getLogger(__name__)

# record line: name[/nseg] nsig [fs[/counter][(base)] [nsamp [time [date]]]]
_RECORD_LINE = re.compile(
    r"^(?P<name>[^\s/]+)(?:/(?P<nseg>\d+))?\s+(?P<nsig>\d+)"
    r"(?:\s+(?P<fs>[0-9.eE+-]+)(?:/[0-9.eE+-]+)?(?:\([0-9.eE+-]+\))?"
    r"(?:\s+(?P<nsamp>\d+)(?:\s+(?P<time>[0-9:.]+))?(?:\s+(?P<date>[0-9/]+))?)?)?"
)
# signal line: file fmt[xspf][:skew][+offset] [gain[(baseline)][/units] [adcres [adczero [init [cksum [bsize [desc]]]]]]]
_SIGNAL_LINE = re.compile(
    r"^(?P<file>\S+)\s+(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?"
    r"(?:\s+(?P<gain>[0-9.eE+-]+)?(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>\S+))?"
    r"(?:\s+(?P<adcres>-?\d+)(?:\s+(?P<adczero>-?\d+)(?:\s+(?P<init>-?\d+)(?:\s+(?P<cksum>-?\d+)"
    r"(?:\s+(?P<bsize>\d+)(?:\s+(?P<desc>.*))?)?)?)?)?)?)?\s*$"
)
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}
_DEFAULT_GAIN = 200.0  # WFDB's default ADC units per physical unit when the header gives 0 or none
MAX_HEADER_BYTES = 4 << 20  # a 12-lead header is ~1 kB; long free-text comments stay far below this


@functools.lru_cache(maxsize=1)
def snomed_terms() -> dict[str, str]:
    """SNOMED-CT code -> term, from the shipped ``data/snomed_ct.csv``."""
    import csv

    with open(data_path("snomed_ct.csv"), newline="", encoding="utf-8") as fh:
        return {row["code"].strip(): row["term"].strip() for row in csv.DictReader(fh)}


def _parse_datetime(value: str, formats: tuple[str, ...]) -> datetime | None:
    value = value.strip()
    for fmt in formats:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


@functools.lru_cache(maxsize=4096)
def _signal_spec(fields: tuple[str, ...]) -> dict[str, str | None] | None:
    """Parse a signal line's fields after the file name (initial value and checksum zeroed: unused)."""
    m = _SIGNAL_LINE.match("x " + " ".join(fields))
    return None if m is None else m.groupdict()


class _Header:
    """Parsed WFDB header: record line, signal specs, comments."""

    __slots__ = ("name", "nseg", "nsig", "fs", "nsamp", "base_dt", "signals", "comments", "checksums",
                 "segments")

    def __init__(self, text: str, path: Path):
        lines = [ln.strip() for ln in text.splitlines()]
        body = [ln for ln in lines if ln and not ln.startswith("#")]
        self.comments = [ln[1:].strip() for ln in lines if ln.startswith("#")]
        if not body:
            raise FormatError("WFDB header has no record line", path=path)
        m = _RECORD_LINE.match(body[0])
        if m is None:
            # never quote the line: a "header" that is really another file would leak its content
            raise FormatError("the first line is not a WFDB record line ('name nsig [fs [nsamp]]'): not a WFDB "
                              "header", path=path)
        tokens = body[0].split()
        if len(tokens) >= 3 and m.group("fs") is None:
            raise FormatError(f"WFDB record line has an unreadable sampling frequency {excerpt(tokens[2], 24)!r}",
                              path=path)
        self.nseg = int(m.group("nseg")) if m.group("nseg") else 0
        self.name = m.group("name")
        self.nsig = int(m.group("nsig"))
        if self.nsig > MAX_CHANNELS:
            raise FormatError(f"WFDB header declares {self.nsig} signals, over the limit of {MAX_CHANNELS}",
                              path=path)
        if self.nseg > MAX_CHANNELS * 64:
            raise FormatError(f"WFDB header declares {self.nseg} segments, over the limit of {MAX_CHANNELS * 64}",
                              path=path)
        # WFDB's default rate is 250 Hz only when the field is absent; a present field must parse
        self.fs = check_fs(float(m.group("fs")), path=path) if m.group("fs") else 250.0
        self.nsamp = int(m.group("nsamp")) if m.group("nsamp") else None
        if self.nsamp is not None and self.nsamp > MAX_SAMPLES:
            raise SignalError(f"WFDB header declares {self.nsamp} samples per signal, over the limit of "
                              f"{MAX_SAMPLES}", path=path)
        self.base_dt = None
        if m.group("time") and m.group("date"):
            self.base_dt = _parse_datetime(f"{m.group('date')} {m.group('time')}",
                                           ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S.%f"))
        self.signals: list[dict[str, str | None]] = []
        self.checksums: list[int | None] = []
        self.segments: list[str] = []
        if self.nseg:  # segment lines follow, not signal lines: the wfdb library reads these
            self.segments = [ln.split()[0] for ln in body[1:1 + self.nseg]]
            return
        sig_lines = body[1:1 + self.nsig]
        if len(sig_lines) != self.nsig:
            raise FormatError(f"WFDB header declares {self.nsig} signals but has {len(sig_lines)} signal lines",
                              path=path)
        for ln in sig_lines:
            parts = ln.split(None, 8)
            # initial value and checksum (fields 6-7) differ per record; everything else repeats
            # across an archive, so the regex runs once per distinct signal spec, not per line
            fields = parts[1:]
            fields[4:6] = ["0"] * len(fields[4:6])
            spec = _signal_spec(tuple(fields))
            if spec is None:
                raise FormatError(f"invalid WFDB signal line {excerpt(ln)!r}", path=path)
            self.signals.append(dict(spec, file=parts[0]))
            cksum = parts[6] if len(parts) > 6 else ""
            self.checksums.append(int(cksum) if cksum.lstrip("-").isdigit() else None)


def _read_header(path: Path) -> _Header:
    raw = read_file(path, max_bytes=MAX_HEADER_BYTES, what="WFDB header")
    if not raw.strip():
        raise FormatError("empty WFDB header", path=path)
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark written by Windows editors
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"WFDB header is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                          path=path) from exc
    return _Header(text, path)


def _confine(path: Path, fname: str, record_id: str | None, what: str = "signal file") -> str:
    """``fname`` joined to the header's folder, refused unless it resolves inside that folder.

    A header may name any file (``../../x``, ``/etc/passwd``, a symlink to elsewhere, a device):
    ecgkit reads only regular files inside the record's own folder, so a planted header cannot make
    it copy another file's bytes into a shard.
    """
    folder = os.path.dirname(path) or "."
    fpath = os.path.join(folder, fname)
    if not (os.sep in fname or fname.startswith(".") or os.path.islink(fpath)):
        return fpath  # a plain name, not a link: inside the folder by construction (no realpath needed)
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(fpath)
    if os.path.isabs(fname) or not real.startswith(real_folder.rstrip(os.sep) + os.sep):
        raise FormatError(f"{what} {excerpt(fname, 60)!r} named by the header lies outside the record's folder: "
                          "refused", path=path, record_id=record_id)
    if os.path.exists(real) and not os.path.isfile(real):
        raise FormatError(f"{what} {excerpt(fname, 60)!r} is not a regular file (a FIFO, socket or device)",
                          path=path, record_id=record_id)
    return fpath


def _confine_all(hdr: _Header, path: Path, record_id: str) -> None:
    """Check every file the header names (signal files; segment headers and theirs) before wfdb opens any."""
    for spec in hdr.signals:
        _confine(path, str(spec["file"]), record_id)
    for seg in hdr.segments:
        if seg == "~":  # a gap segment
            continue
        seg_path = Path(_confine(path, seg + ".hea", record_id, "segment header"))
        if os.path.exists(seg_path):
            for spec in _read_header(seg_path).signals:
                _confine(path, os.path.join(os.path.dirname(seg), str(spec["file"])), record_id)


def _signal_file(path: Path, fname: str, record_id: str) -> str:
    """Path of a signal file named by the header, matched case-insensitively when the exact name is absent.

    Archives copied through Windows or FAT media often change the case of file names
    (``00001_HR.DAT`` for ``00001_hr.dat``); the header keeps the original. The file must lie in
    the header's folder (:func:`_confine`).
    """
    folder = os.path.dirname(path)
    fpath = _confine(path, fname, record_id)
    if os.path.isfile(fpath):
        return fpath
    try:
        matches = [f for f in os.listdir(folder or ".") if f.lower() == fname.lower()]
    except OSError:
        matches = []
    if len(matches) == 1:
        return os.path.join(folder, matches[0])
    near = sorted(f for f in os.listdir(folder or ".") if f.endswith((".dat", ".mat")))[:5] if folder else []
    hint = f" (the folder has {', '.join(near)})" if near else ""
    raise FormatError(f"signal file {fname} named by the header is missing{hint}", path=path,
                      record_id=record_id)


def _fast_path_ok(hdr: _Header) -> bool:
    return all(s["fmt"] == "16" and s["spf"] in (None, "1") and s["skew"] in (None, "0") for s in hdr.signals)


def _bad_checksums(hdr: _Header, order: NDArray[np.int64], sums: NDArray[np.int64]) -> list[int]:
    """Decoded channels whose 16-bit sample sum differs from the header's checksum field (WFDB signal(5))."""
    return [int(c) for c, total in zip(order, sums)
            if hdr.checksums[c] is not None and (int(total) - int(hdr.checksums[c] or 0)) & 0xFFFF]


def _decode_fast(hdr: _Header, path: Path, record_id: str, order: NDArray[np.int64],
                 unit_scale: list[float], bad_sums: list[int]) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Decode the channels ``order`` of format-16 signal files to mV, with per-lead QC statistics.

    Only the selected channels are converted, in float32: ``(digital - baseline) * (unit / gain)``
    differs from wfdb's float64 division by < 1e-7 relative, far below the 1 uV resolution.
    """
    chans_of: dict[str, list[int]] = {}
    for i, spec in enumerate(hdr.signals):
        chans_of.setdefault(str(spec["file"]), []).append(i)
    nsamp = hdr.nsamp
    blocks: list[NDArray[np.int16]] = []
    column: dict[int, int] = {}  # header channel -> column of the stacked (nsamp, n) array
    for fname in dict.fromkeys(str(hdr.signals[i]["file"]) for i in order):
        chans = chans_of[fname]
        fpath = _signal_file(path, fname, record_id)
        offset = int(hdr.signals[chans[0]]["offset"] or 0)
        size = os.stat(fpath).st_size
        frame_bytes = 2 * len(chans)
        if nsamp is None:
            nsamp = (size - offset) // frame_bytes if size > offset else 0
        expected = offset + nsamp * frame_bytes
        if size != expected:
            kind = "truncated" if size < expected else "longer than declared"
            raise SignalError(
                f"signal file {fname} is {kind}: the header promises {nsamp} samples x {len(chans)} signals "
                f"({expected} bytes incl. {offset}-byte offset), the file has {size} bytes",
                path=path, record_id=record_id)
        if nsamp == 0:
            raise SignalError(f"signal file {fname} holds 0 samples", path=path, record_id=record_id)
        start = sum(b.shape[1] for b in blocks)
        column.update({c: start + k for k, c in enumerate(chans)})
        blocks.append(np.fromfile(fpath, dtype="<i2", offset=offset).reshape(nsamp, len(chans)))
    data = blocks[0] if len(blocks) == 1 else np.hstack(blocks)
    base = np.array([float(hdr.signals[i]["baseline"] if hdr.signals[i]["baseline"] is not None
                           else hdr.signals[i]["adczero"] or 0) for i in order], dtype=np.float32)
    inv_gain = np.array([unit_scale[k] / (float(hdr.signals[i]["gain"] or 0) or _DEFAULT_GAIN)
                         for k, i in enumerate(order)], dtype=np.float32)
    sums = np.empty(len(order), dtype=np.int64)
    out = decode_int16(data, np.array([column[i] for i in order]), base, inv_gain, sums)
    bad_sums.extend(_bad_checksums(hdr, order, sums))
    return out


def _rdrecord(hdr: _Header, path: Path, record_id: str, what: str, *, digital: bool = False,
              **kwargs: Any) -> tuple[Any, NDArray[np.float32]]:
    """``wfdb.rdrecord`` (physical units) with its errors named, and the length the header promises checked.

    Returns the wfdb record and its (n_channels, nsamp) float32 signal. With ``digital`` the record
    keeps its stored samples (``d_signal``, for the checksums) and the signal is converted here.
    """
    import wfdb  # slow import, needed only for uncommon formats and multi-segment records

    _confine_all(hdr, path, record_id)
    try:
        rec = wfdb.rdrecord(str(path.with_suffix("")), physical=not digital, **kwargs)
        physical = rec.dac(expanded=False, return_res=64, inplace=False) if digital else rec.p_signal
    except Exception as exc:  # wfdb raises bare ValueError/IndexError/OSError on bad files
        raise SignalError(f"wfdb could not read {what}: {type(exc).__name__}: {excerpt(str(exc), 200)}",
                          path=path, record_id=record_id) from exc
    sig = np.asarray(physical, dtype=np.float32).T
    if hdr.nsamp is not None and sig.shape[1] != hdr.nsamp:
        raise SignalError(f"{what} holds {sig.shape[1]} samples, the header promises {hdr.nsamp}",
                          path=path, record_id=record_id)
    return rec, sig


def _decode_wfdb_lib(hdr: _Header, path: Path, record_id: str) -> tuple[NDArray[np.float32], list[int]]:
    """The signal through the wfdb library, and the channels whose header checksum does not match."""
    rec, sig = _rdrecord(hdr, path, record_id, "the signal", digital=True)
    try:
        sums = rec.calc_checksum()
    except Exception:  # noqa: BLE001 - a checksum that cannot be computed is not checked
        return sig, []
    bad = [c for c, total in enumerate(sums)
           if c < len(hdr.checksums) and hdr.checksums[c] is not None
           and (int(total) - int(hdr.checksums[c] or 0)) & 0xFFFF]
    return sig, bad


def _decode_multisegment(hdr: _Header, path: Path, record_id: str) -> tuple[list[str], list[str | None],
                                                                             NDArray[np.float32]]:
    """Read a multi-segment record through the wfdb library, joined into one signal.

    Returns the channel names, their units and the (n_channels, nsamp) physical signal. Channels
    absent from a segment of a variable-layout record are NaN there (the QC flags report them).
    """
    rec, sig = _rdrecord(hdr, path, record_id, f"the {hdr.nseg}-segment record", m2s=True)
    return [str(n).strip() for n in rec.sig_name], list(rec.units), sig


def _independent_leads_only(names: list[str]) -> NDArray[np.int64] | None:
    """Channels of I, II, V1-V6 when a record stores those 8 and none of III, aVR, aVL, aVF.

    Such records (exports of devices that store the 8 independent leads, as MUSE does) get the 4
    limb leads derived; any other gap is left to :func:`~ecgkit.record.lead_order` to report.
    """
    found: dict[str, int] = {}
    for i, name in enumerate(names):
        canon = canonical_lead(name)
        if canon is not None and canon not in found:
            found[canon] = i
    if not found.keys() >= set(INDEPENDENT_LEADS) or found.keys() & set(DERIVED_LEADS):
        return None
    return np.array([found[lead] for lead in INDEPENDENT_LEADS], dtype=np.int64)


def _metadata(hdr: _Header) -> dict:
    # the comment conventions live in ecgkit.io._wfdb_comments (one table of PhysioNet habits)
    return parse_comments(hdr.comments, base_dt=hdr.base_dt, snomed=snomed_terms, parse_datetime=_parse_datetime)


def read_wfdb(path: str | Path, *, record_id: str | None = None) -> Record:
    """Read a 12-lead WFDB record at its native sampling frequency.

    Parameters
    ----------
    path : str or Path
        The header file (``.hea``); the signal files it names are read from the same folder.
    record_id : str or None
        Defaults to the record name in the header.

    Returns
    -------
    Record
        ``signal`` float32 mV, shape (12, nsamp), canonical lead order. Extra channels (Frank XYZ,
        rhythm strips) are dropped; ``native_leads`` keeps all channel names.

    Raises
    ------
    FormatError
        Empty, non-UTF-8 or malformed header; missing signal file.
    SignalError
        Truncated or over-long signal file, missing leads, unsupported units.

    Examples
    --------
    >>> rec = read_wfdb("records500/00000/00001_hr.hea")  # doctest: +SKIP
    >>> rec.signal.shape, rec.fs
    ((12, 5000), 500.0)
    """
    path = Path(path)
    if path.suffix.lower() != ".hea":
        path = path.with_suffix(".hea")
    hdr = _read_header(path)
    rid = record_id or hdr.name
    full: NDArray[np.float32] | None = None
    if hdr.nseg:
        names, units, full = _decode_multisegment(hdr, path, rid)
    else:
        names = [(s["desc"] or "").strip() for s in hdr.signals]
        units = [s["units"] for s in hdr.signals]
    derive = _independent_leads_only(names)
    order = derive if derive is not None else lead_order(names, path=str(path), record_id=rid)
    scale = []
    for i in order:
        if not hdr.nseg:  # 0 or absent is WFDB's default gain (200); negative is not documented: refused
            gain = float(hdr.signals[i]["gain"] or 0)
            if gain != 0:
                check_scale(gain, what=f"lead {names[i]} ADC gain", path=path, record_id=rid)
        unit = (units[i] or "mV").strip().lower()
        if unit not in _UNIT_TO_MV:
            raise SignalError(f"lead {names[i]} has units {unit!r}, expected a voltage (mV, uV, V)",
                              path=path, record_id=rid)
        scale.append(_UNIT_TO_MV[unit])
    if full is not None:
        sig = full[order] * np.asarray(scale, dtype=np.float32)[:, None]
        flags = tuple(qc_flags(sig, hdr.fs))
    elif _fast_path_ok(hdr):
        bad_sums: list[int] = []
        sig, stats = _decode_fast(hdr, path, rid, order, scale, bad_sums)
        flags = tuple(qc_flags_from_stats(stats, sig.shape[1], hdr.fs))
        flags += tuple(f"integrity:checksum:{names[c] or c}" for c in sorted(bad_sums))
    else:
        full_lib, bad_lib = _decode_wfdb_lib(hdr, path, rid)
        sig = full_lib[order] * np.asarray(scale, dtype=np.float32)[:, None]
        flags = tuple(qc_flags(sig, hdr.fs))
        flags += tuple(f"integrity:checksum:{names[c] or c}" for c in bad_lib if c in set(order.tolist()))
    repairs: tuple[str, ...] = ()
    if derive is not None:  # 8 stored leads: place them and derive III, aVR, aVL, aVF from I and II
        out = np.empty((len(LEADS), sig.shape[1]), dtype=np.float32)
        out[[LEADS.index(lead) for lead in INDEPENDENT_LEADS]] = sig
        out[2:6] = derive_limb_leads(out[0], out[1])
        sig, repairs = out, (DERIVED_REPAIR,)
        flags = tuple(qc_flags(sig, hdr.fs)) + tuple(f for f in flags if f.startswith("integrity:"))
    meta = _metadata(hdr)
    return Record(
        record_id=rid,
        patient_id=meta["patient_id"],
        signal=np.ascontiguousarray(sig, dtype=np.float32),
        fs=hdr.fs,
        source_format="wfdb",
        source_path=str(path),
        statements=meta["statements"],
        acquired_at=meta["acquired_at"],
        age=meta["age"],
        sex=meta["sex"],
        native_fs=hdr.fs,
        native_leads=tuple(names),
        codes=meta["codes"],
        repairs=repairs,
        qc_flags=flags,
    )
