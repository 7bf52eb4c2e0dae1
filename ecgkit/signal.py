"""Signal work on canonical arrays: resampling, crop/pad and QC flags.

All functions are vectorised over leads (one call for all 12), per ``MEASUREMENTS.md``:
``resample_poly`` on a (12, n) array costs ~0.8 ms per 10 s record.
"""
from __future__ import annotations

import dataclasses
import warnings
from fractions import Fraction
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

from ecgkit.errors import SignalError
from ecgkit.record import LEADS, Record

#: Absolute amplitude above which a lead is implausible for a surface ECG (mV).
MAX_PLAUSIBLE_MV = 20.0
#: A lead whose peak-to-peak range is below this is flat (mV): leads-off or a dead channel.
FLAT_PTP_MV = 0.01
#: Fraction of samples at the lead's extreme value above which the lead is clipped.
CLIPPED_FRACTION = 0.01
#: Records shorter than this (seconds) are flagged too short for a 10 s-style analysis.
MIN_DURATION_S = 5.0
#: A lead whose median sits further than this from 0 mV carries a baseline offset (DC not removed,
#: or a wrong baseline in the header): surface ECG leads wander by well under 1-2 mV.
BASELINE_OFFSET_MV = 3.0
#: Leads whose peak-to-peak ranges agree to this relative tolerance are "identical" (mV exports
#: never do; an export normalised lead by lead to a fixed range always does).
IDENTICAL_PTP_RTOL = 1e-4


def resample(signal: NDArray[np.float32], fs_in: float, fs_out: float) -> NDArray[np.float32]:
    """Resample a (leads, n) array with a polyphase anti-aliasing filter.

    Raises
    ------
    ValueError
        If the rate ratio is not a ratio of integers below 1000 (exact to 1e-6 Hz).
    """
    if fs_in == fs_out:
        return signal
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    if abs(float(ratio) * fs_in - fs_out) > 1e-6:  # the achieved rate must be exact to 1 uHz
        raise ValueError(f"cannot resample {fs_in} -> {fs_out} Hz with a small rational ratio")
    out = resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1)
    return np.ascontiguousarray(out, dtype=np.float32)


def lead_stats(signal: NDArray[np.floating]) -> NDArray[np.float64]:
    """Per-lead max, min, samples at max, samples at min and non-finite samples (NaN/inf ignored).

    Returns
    -------
    NDArray[float64], shape (leads, 5)
        The same layout as :func:`ecgkit.io._decode.decode_int16` returns with its decode.
    """
    finite = np.isfinite(signal)
    if finite.all():
        clean = signal
        n_bad = np.zeros(signal.shape[0])
    else:
        n_bad = (~finite).sum(axis=1)
        clean = np.where(finite, signal, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN leads give NaN max/min, flagged below
        hi = np.nanmax(clean, axis=1) if clean is not signal else clean.max(axis=1)
        lo = np.nanmin(clean, axis=1) if clean is not signal else clean.min(axis=1)
    n_hi = np.count_nonzero(clean == hi[:, None], axis=1)
    n_lo = np.count_nonzero(clean == lo[:, None], axis=1)
    return np.stack([hi, lo, n_hi, n_lo, n_bad], axis=1).astype(np.float64)


def qc_flags_from_stats(stats: NDArray[np.float64], n_samples: int, fs: float) -> list[str]:
    """QC flags from :func:`lead_stats` (or the fused decoder's statistics); see :func:`qc_flags`."""
    flags: list[str] = []
    hi, lo, n_hi, n_lo, n_bad = stats.T
    for i in np.flatnonzero(n_bad > 0):
        flags.append(f"nan:{LEADS[i]}")
    with np.errstate(invalid="ignore"):
        ptp = hi - lo
        valid = np.isfinite(ptp)
        for i in np.flatnonzero(valid & (ptp < FLAT_PTP_MV) | ~valid):
            flags.append(f"flat:{LEADS[i]}")
        for i in np.flatnonzero(valid & (np.maximum(hi, -lo) > MAX_PLAUSIBLE_MV)):
            flags.append(f"amplitude:{LEADS[i]}")
        clipped = valid & (n_hi + n_lo > CLIPPED_FRACTION * n_samples) & (ptp >= FLAT_PTP_MV)
    for i in np.flatnonzero(clipped):
        flags.append(f"clipped:{LEADS[i]}")
    with np.errstate(invalid="ignore"):
        if valid.all() and (ptp >= FLAT_PTP_MV).all() and np.ptp(ptp) <= IDENTICAL_PTP_RTOL * ptp.max():
            flags.append("identical_ptp")  # a gain-normalised export, not a recording in mV
    duration = n_samples / fs
    if duration < MIN_DURATION_S:
        flags.append(f"short:{duration:.1f}s")
    return flags


def qc_flags(signal: NDArray[np.floating], fs: float) -> list[str]:
    """Compute signal QC findings; QC never changes the data.

    Parameters
    ----------
    signal : NDArray, shape (12, n_samples)
        Millivolts, canonical lead order.
    fs : float
        Sampling frequency, Hz.

    Returns
    -------
    list of str
        Flags such as ``"nan:V3"`` (non-finite samples), ``"flat:V3"`` (peak-to-peak below
        :data:`FLAT_PTP_MV`, or no finite sample), ``"clipped:II"`` (over :data:`CLIPPED_FRACTION` of
        samples at the lead's extreme values), ``"amplitude:V1"`` (beyond :data:`MAX_PLAUSIBLE_MV`),
        ``"short:4.0s"``, ``"baseline:V2"`` (median beyond :data:`BASELINE_OFFSET_MV`),
        ``"identical_ptp"`` (every lead has the same peak-to-peak range: a gain-normalised export);
        empty when the record is clean.
    """
    if signal.shape[1] == 0:
        return ["short:0.0s"]
    return qc_flags_from_stats(lead_stats(signal), signal.shape[1], fs) + baseline_flags(signal)


def baseline_flags(signal: NDArray[np.floating]) -> list[str]:
    """``"baseline:V3"`` for each lead whose median is beyond :data:`BASELINE_OFFSET_MV` (flags only).

    The median is the middle element (``np.partition``) of every 16th sample: the flag is coarse
    (mV), and ``np.median`` of the whole record costs ~0.3 ms per 10 s record on the 2-core box, a
    large share of a fast reader's time (this costs ~45 us). NaN sorts last, so a lead with a few
    NaN samples gets a slightly high estimate; NaN leads are flagged ``nan:`` anyway.
    """
    sub = signal[:, ::16]
    if sub.shape[1] == 0:
        return []
    k = sub.shape[1] // 2
    med = np.partition(sub, k, axis=1)[:, k]
    with np.errstate(invalid="ignore"):
        return [f"baseline:{LEADS[i]}" for i in np.flatnonzero(np.abs(med) > BASELINE_OFFSET_MV)]


def conform(
    record: Record,
    *,
    fs: float = 500,
    seconds: float | None = None,
    short: Literal["pad", "reject"] = "pad",
) -> Record:
    """Return the record resampled to ``fs`` and cropped/padded to ``seconds``.

    Every change is appended to ``record.repairs`` so the manifest can show it.

    Raises
    ------
    SignalError
        If the record is shorter than ``seconds`` and ``short="reject"``, or cannot be resampled.
    """
    if short not in ("pad", "reject"):
        raise ValueError(f"short must be 'pad' or 'reject', got {short!r}")
    sig = record.signal
    repairs = list(record.repairs)
    if record.fs != fs:
        try:
            sig = resample(sig, record.fs, fs)
        except ValueError as exc:
            raise SignalError(str(exc), path=record.source_path, record_id=record.record_id) from exc
        repairs.append(f"resampled {record.fs:g}->{fs:g} Hz")
    if seconds is not None:
        n_target = int(round(seconds * fs))
        n = sig.shape[1]
        if n > n_target:
            sig = np.ascontiguousarray(sig[:, :n_target])
            repairs.append(f"cropped {n}->{n_target} samples")
        elif n < n_target:
            if short == "reject":
                raise SignalError(f"record is {n / fs:.2f} s long, shorter than the required {seconds:g} s",
                                  path=record.source_path, record_id=record.record_id)
            sig = np.pad(sig, ((0, 0), (0, n_target - n)))
            repairs.append(f"padded {n}->{n_target} samples")
    if sig is record.signal:
        return record
    return dataclasses.replace(record, signal=sig, fs=float(fs), repairs=tuple(repairs))
