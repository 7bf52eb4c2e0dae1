"""The one preprocessing function between a source record and the network's input.

:func:`prepare_record` is what the shard stage applies to every record it writes, and what
``ecgkit predict`` applies to every raw file it scores: read (the readers of :mod:`ecgkit.io`, the
same format detection as ``scan``), conform (resample to ``fs`` with a polyphase filter, crop or
pad to ``seconds``, derive the limb leads when a source stores only the 8 independent leads), check
(the shard stage's quarantine rules below) and encode into the storage dtype. :func:`decode_stored`
turns stored values into the float32 millivolts the network sees, exactly as
:class:`ecgkit.data.ShardDataset` does. One code path, so a record is transformed identically at
training and at prediction time.

Quarantine rules (raised as :class:`~ecgkit.errors.RecordError`, never a silent repair): any error of
the reader (unreadable, truncated, missing leads, too short with ``short="reject"``); any non-finite
sample; all 12 leads flat; with int16 storage, a sample beyond the int16 range at ``scale_mv``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ecgkit.errors import SignalError
from ecgkit.record import LEADS, Record
from ecgkit.signal import FLAT_PTP_MV, conform

__all__ = ["prepare_record", "decode_stored", "qc_problem"]


def qc_problem(signal: NDArray[np.float32], *, dtype: str = "int16", scale_mv: float = 0.001) -> str | None:
    """The reason to quarantine a conformed (12, L) millivolt signal before storage, or None."""
    finite = np.isfinite(signal)
    if not finite.all():
        bad = [LEADS[i] for i in np.flatnonzero(~finite.all(axis=1))]
        return f"non-finite samples in lead(s) {', '.join(bad)}"
    if signal.shape[1] == 0 or ((signal.max(axis=1) - signal.min(axis=1)) < FLAT_PTP_MV).all():
        return f"all 12 leads flat (peak-to-peak < {FLAT_PTP_MV} mV)"
    if dtype == "int16":
        limit = 32767 * scale_mv
        peak = float(np.abs(signal).max())
        if peak > limit:
            return (f"amplitude {peak:.2f} mV beyond the int16 range +-{limit:.3f} mV "
                    f"at scale {scale_mv} mV")
    return None


def prepare_record(
    source: str | Path | Record,
    out: NDArray[Any],
    *,
    fs: float,
    seconds: float,
    short: Literal["pad", "reject"] = "pad",
    dtype: Literal["int16", "float16"] = "int16",
    scale_mv: float = 0.001,
    record_id: str | None = None,
) -> Record:
    """Read (or take) one record, conform it, check it and write its stored values into ``out``.

    Parameters
    ----------
    source : path or Record
        A file of any format :func:`ecgkit.io.read_record` reads, or a record already read (then
        only conformed).
    out : NDArray[int16 or float16], shape (12, round(fs * seconds))
        Receives the stored values: ``round(mV / scale_mv)`` as int16, or float16 millivolts.
    fs, seconds, short, dtype, scale_mv
        The shard settings (:class:`ecgkit.shards.ShardConfig`), i.e. a model's input contract.
    record_id : str, optional
        Overrides the reader's record id.

    Returns
    -------
    Record
        The conformed record (float32 millivolts at ``fs``); its ``repairs`` list every change
        (resampled, cropped, padded, derived leads) and ``qc_flags`` the native signal's QC findings.

    Raises
    ------
    RecordError
        Naming the record, its file and the problem (see the module docstring).
    """
    if isinstance(source, Record):
        rid = record_id or source.record_id
        rec = conform(source, fs=fs, seconds=seconds, short=short)
    else:
        from ecgkit.io import read_record  # the readers import signal work; keep this module light

        rec = read_record(source, fs=fs, seconds=seconds, short=short, record_id=record_id)
        rid = rec.record_id
    sig = np.array(rec.signal, dtype=np.float32)  # own copy: encoding works in place
    problem = qc_problem(sig, dtype=dtype, scale_mv=scale_mv)
    if problem is not None:
        raise SignalError(problem, path=rec.source_path, record_id=rid)
    encode_stored(sig, dtype, scale_mv, out)  # values checked to fit int16 above
    return rec


def encode_stored(mv: NDArray[np.float32], dtype: Any, scale_mv: float, out: NDArray[Any]) -> None:
    """Float32 millivolts -> stored values in ``out`` (int16: rounded ``mv / scale_mv``, clipped to
    the int16 range; float16: cast). Works in place on ``mv``; the inverse of :func:`decode_stored`."""
    if np.dtype(dtype) == np.int16:
        np.rint(mv / np.float32(scale_mv), out=mv)
        np.clip(mv, -32768, 32767, out=mv)
    out[...] = mv


def decode_stored(stored: NDArray[Any], scale_mv: float, out: NDArray[np.float32] | None = None
                  ) -> NDArray[np.float32]:
    """Stored values (int16 or float16, any leading shape) -> float32 millivolts, as the network sees them.

    The same arithmetic as :class:`ecgkit.data.ShardDataset` (cast, then one float32 multiply by
    ``scale_mv`` for int16), so predictions from raw files equal predictions from shards.
    """
    if out is None:
        out = np.empty(stored.shape, dtype=np.float32)
    out[...] = stored
    if stored.dtype == np.int16:
        out *= np.float32(scale_mv)
    return out
