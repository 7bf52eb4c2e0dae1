"""Multi-lead (global) wave measurements behind :func:`ecgkit.measuring.measure_signal`: the spatial
velocity of the 8 independent leads, the global QRS duration and onset, the global PR interval, the
PR from a lead's P onsets to the global QRS onset.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter


#: Independent leads of the 12 (I, II, V1-V6): III, aVR, aVL, aVF are linear combinations of I and II.
_INDEPENDENT = (0, 1, 6, 7, 8, 9, 10, 11)
#: Global QRS threshold: share of the median beat's peak spatial velocity (above its 10th percentile).
GLOBAL_QRS_FRACTION = 0.1
#: Above-threshold runs closer than this are one QRS: the spatial velocity dips at the R apex and
#: between the components of a notched or bundle-branch-block QRS.
GLOBAL_QRS_GAP_S = 0.02
#: The QRS onset is searched this long (s) before the R peak of the measured lead. A wide QRS (bundle
#: branch block, IVCD: up to ~200 ms) can peak late in that lead and start more than 100 ms before
#: the peak: at 100 ms the onset sat on the window's edge in 42 of 70 synthetic LBBB records, and
#: the PR ended there (none at 200 ms). A P wave does not join the QRS's run: it is under a tenth of the QRS's
#: velocity and ends a PR segment (> GLOBAL_QRS_GAP_S) before it.
GLOBAL_QRS_PRE_S = 0.2
_GQRS_SOS: dict[tuple[float, float], NDArray[np.float64]] = {}
#: A PR interval under this (ms) is not a P wave's: the shortest PR of pre-excitation is about
#: 80-120 ms (Wolff-Parkinson-White: PR < 120 ms); a shorter "P onset" is the QRS's own start.
PR_MIN_MS = 80.0
#: Upper edge (Hz) of the band the P wave is searched in (:func:`global_pr`). The QRS needs 40 Hz; the
#: P wave's energy lies below ~20 Hz, and a derivative amplifies what is above it (muscle noise):
#: on 521 noisy synthetic records with 89 ectopic atrial rhythms, PR within 25 ms rose from 38 % to
#: 83 % (EAR) and from 86 % to 92 % (1AVB) with 20 Hz instead of 40 (15 and 25 Hz gave the same
#: within a few records; session 24, BENCHMARKS.md "Measure and audit").
P_BAND_HZ = 20.0


_ZI: dict[bytes, NDArray[np.float64]] = {}


def _odd_ext(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Odd extension of the rows of ``x`` by ``n`` samples at both ends (scipy's ``odd_ext``)."""
    left = 2 * x[:, :1] - x[:, n:0:-1]
    right = 2 * x[:, -1:] - x[:, -2:-(n + 2):-1]
    return np.concatenate([left, x, right], axis=1)


_Run = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


def _zero_phase(key: bytes, make_zi: Callable[[], NDArray[np.float64]], run: _Run, edge: int,
                x: NDArray[np.float64]) -> NDArray[np.float64]:
    """scipy's forward-backward filtering (odd padding by ``edge``, each pass started from the
    filter's steady state ``zi`` scaled by the first sample), with ``zi`` computed once per filter
    ``key``. ``run(x, zi, x0)`` filters the rows of ``x`` forward from ``zi`` scaled by ``x0``."""
    zi = _ZI.get(key)
    if zi is None:  # the initial state of a fixed filter (a cache of constants)
        zi = _ZI[key] = make_zi()
    ext = _odd_ext(x, edge)
    y = run(ext, zi, ext[:, :1])
    y = run(y[:, ::-1], zi, y[:, -1:])
    return np.asarray(y[:, ::-1][:, edge:-edge])


def sosfiltfilt_rows(sos: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``scipy.signal.sosfiltfilt(sos, x, axis=1)`` (odd padding, default length) with the filter's
    initial state (``sosfilt_zi``, a linear solve per section, a third of the call on a 10 s lead)
    computed once per filter. The same arithmetic as scipy's, so the same result."""
    from scipy.signal import sosfilt, sosfilt_zi, sosfiltfilt

    ntaps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    if x.shape[1] <= 3 * ntaps:
        return np.asarray(sosfiltfilt(sos, x, axis=1))
    return _zero_phase(b"sos" + sos.tobytes(), lambda: sosfilt_zi(sos),
                       lambda u, zi, x0: sosfilt(sos, u, axis=1, zi=zi[:, None, :] * x0[None, :, :])[0],
                       3 * ntaps, x)


def filtfilt_rows(b: NDArray[np.float64], a: NDArray[np.float64],
                  x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``scipy.signal.filtfilt(b, a, x, axis=1, method="pad")`` (odd padding, default length) with
    the initial state (``lfilter_zi``) computed once per filter; the same arithmetic as scipy's."""
    from scipy.signal import filtfilt, lfilter, lfilter_zi

    edge = 3 * max(len(a), len(b))
    if x.shape[1] <= edge:
        return np.asarray(filtfilt(b, a, x, axis=1, method="pad"))
    return _zero_phase(b"ba" + b.tobytes() + b"|" + a.tobytes(), lambda: lfilter_zi(b, a),
                       lambda u, zi, x0: lfilter(b, a, u, axis=1, zi=zi[None, :] * x0)[0], edge, x)


def band_passed(signal: NDArray[np.floating], fs: float, high_hz: float = 40.0) -> NDArray[np.float64]:
    """The 8 independent leads after a 1-``high_hz`` Hz band-pass (zero phase, so wave onsets do not
    move), shape (8, n)."""
    sos = _GQRS_SOS.get((fs, high_hz))
    if sos is None:  # filter coefficients per rate and band (a cache of constants)
        sos = butter(2, [1.0, min(high_hz, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
        _GQRS_SOS[(fs, high_hz)] = sos
    return sosfiltfilt_rows(sos, np.asarray(signal, dtype=np.float64)[list(_INDEPENDENT)])


def velocity_of(x: NDArray[np.float64], fs: float) -> NDArray[np.float64]:
    """``sqrt(sum over rows of (dV/dt)^2)`` (mV/s) of band-passed leads (:func:`band_passed`)."""
    return np.asarray(np.sqrt((np.gradient(x, axis=1) ** 2).sum(axis=0)) * fs, dtype=np.float64)


def spatial_velocity(signal: NDArray[np.floating], fs: float, high_hz: float = 40.0) -> NDArray[np.float64]:
    """Spatial velocity ``sqrt(sum over the 8 independent leads of (dV/dt)^2)`` (mV/s) after a
    1-``high_hz`` Hz band-pass (zero phase, so wave onsets do not move)."""
    return velocity_of(band_passed(signal, fs, high_hz), fs)


def _runs(mask_idx: NDArray[np.int64], gap: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start and end positions (into ``mask_idx``) of runs of indices closer than ``gap``."""
    cuts = np.flatnonzero(np.diff(mask_idx) > gap)
    return np.concatenate([[0], cuts + 1]), np.concatenate([cuts, [mask_idx.size - 1]])


def global_qrs(signal: NDArray[np.floating], fs: float, peaks: NDArray[np.integer],
               velocity: NDArray[np.float64] | None = None) -> tuple[float, float]:
    """Global QRS duration and its onset before the R peaks (both ms) from the spatial velocity of
    the 8 independent leads.

    The multi-lead convention of electrocardiographs (earliest QRS onset to latest offset over the
    leads, CSE Working Party, Willems et al., Circulation 1985;71:523) computed as in vectorcardiographic
    delineation: band-pass 1-40 Hz, spatial velocity ``sqrt(sum over leads of (dV/dt)^2)``, median
    over beats aligned on the R peaks, then the span of the run above ``GLOBAL_QRS_FRACTION`` of its
    peak (runs closer than ``GLOBAL_QRS_GAP_S`` merged) within -``GLOBAL_QRS_PRE_S``..+150 ms of the R peak.
    A single lead misses forces that are perpendicular to it (RBBB terminal forces in lead II).
    NaN (both) with fewer than 2 beats 300 ms from the record's edges. ``velocity``: the record's
    :func:`spatial_velocity`, when the caller has it already.
    """
    nan = (math.nan, math.nan)
    w = int(0.3 * fs)
    pk = np.asarray(peaks, dtype=np.int64)
    pk = pk[(pk >= w) & (pk < np.asarray(signal).shape[1] - w)]
    if pk.size < 2:
        return nan
    v = spatial_velocity(signal, fs) if velocity is None else velocity
    med = np.median(v[pk[:, None] + np.arange(-w, w)[None, :]], axis=0)  # median beat, R at w
    near = int(0.08 * fs)
    top = w - near + int(np.argmax(med[w - near: w + near]))
    base = float(np.percentile(med, 10))
    thr = base + GLOBAL_QRS_FRACTION * (float(med[top]) - base)
    lo = w - int(GLOBAL_QRS_PRE_S * fs)
    above = np.flatnonzero(med[lo: w + int(0.15 * fs)] > thr) + lo
    if above.size == 0:
        return nan
    starts, ends = _runs(above, int(GLOBAL_QRS_GAP_S * fs))
    k = min(int(np.searchsorted(above[ends], top)), len(starts) - 1)
    ms_per = 1000.0 / fs
    return float(above[ends[k]] - above[starts[k]]) * ms_per, float(w - above[starts[k]]) * ms_per


#: The P wave is searched between the previous beat's T end and the PR segment, the velocity's
#: lowest point between 100 ms and this many seconds before the global QRS onset.
_P_SEARCH_END_S = 0.01
#: The search starts at the previous T end, and at most this long before the QRS onset: the
#: longest PR of a marked first-degree block (~600 ms, also the bound of a valid PR here). 350 ms cut
#: the P wave of a real first-degree block (GE MUSE example, PR 330 ms by GE's 12SL) off at its
#: onset. A P wave on the preceding T wave is read from the valley between them (:func:`_p_onset_on_t`).
_P_SEARCH_FALLBACK_S = 0.6


def global_pr(signal: NDArray[np.floating], fs: float, peaks: NDArray[np.integer], onset_before_r_ms: float,
              t_end_after_r_ms: float, velocity: NDArray[np.float64] | None = None) -> float:
    """PR interval (ms): global P onset to global QRS onset, from the spatial velocity's median beat.

    The PR interval runs from the earliest P onset in any lead to the earliest QRS onset in any lead
    (Surawicz et al., Circulation 2009;119:e235, AHA/ACCF/HRS recommendations part II); both are read
    as for the global QRS (:func:`global_qrs`): the P wave is the largest spatial velocity between the
    previous beat's T end (``t_end_after_r_ms`` after its R, from the delineation) and
    ``_P_SEARCH_END_S`` before the QRS onset, and its onset the start of that run above
    ``GLOBAL_QRS_FRACTION`` of its peak (runs closer than ``GLOBAL_QRS_GAP_S`` merged), read again
    against the floor just before the P wave (:func:`_p_onset_from_floor`). A P wave that starts before
    the T end (a long PR at a fast rate) or lasts under ``P_MIN_S`` from that onset is read from the
    valley between the T and the P wave instead (:func:`_p_onset_on_t`). The spatial
    velocity is blind to the P wave's polarity, so an ectopic atrial P inverted in II and aVF (low
    atrial rhythm) is read like an upright sinus P, where a single-lead delineator tuned for upright
    P waves (neurokit2's) reads it wrongly. The velocity is band-passed to ``P_BAND_HZ``, not the
    QRS's 40 Hz. NaN when no P run is found or fewer than 2 beats fit. ``velocity``: the record's
    ``spatial_velocity(signal, fs, P_BAND_HZ)``, when the caller has it.
    """
    if not math.isfinite(onset_before_r_ms):
        return math.nan
    pk = np.asarray(peaks, dtype=np.int64)
    if pk.size < 3:
        return math.nan
    rr = float(np.median(np.diff(pk)))
    wl, wr = int(min(0.9 * rr, 1.2 * fs)), int(0.05 * fs)
    pk = pk[(pk >= wl) & (pk < np.asarray(signal).shape[1] - wr)]
    if pk.size < 2:
        return math.nan
    v = spatial_velocity(signal, fs, P_BAND_HZ) if velocity is None else velocity
    med = np.median(v[pk[:, None] + np.arange(-wl, wr)[None, :]], axis=0)  # R at wl
    qon = wl - int(round(onset_before_r_ms * fs / 1000.0))
    # the search ends at the PR segment: the velocity's lowest point 10-100 ms before the QRS onset
    # (the QRS upstroke rises before its 10 % onset and would join the P wave's run)
    a0 = max(0, qon - int(round(0.1 * fs)))
    a1 = qon - int(round(_P_SEARCH_END_S * fs))
    hi = a0 + int(np.argmin(med[a0:a1])) + 1 if a1 > a0 else a1
    prev_r = wl - rr
    lo = qon - int(round(_P_SEARCH_FALLBACK_S * fs))
    if math.isfinite(t_end_after_r_ms) and t_end_after_r_ms > 0:
        lo = max(lo, int(round(prev_r + t_end_after_r_ms * fs / 1000.0)))
    lo = int(max(0, prev_r + 0.2 * fs, min(lo, qon - int(0.12 * fs))))
    if hi - lo < int(0.04 * fs):
        return math.nan
    seg = med[lo:hi]
    base = float(np.percentile(seg, 10))
    thr = base + GLOBAL_QRS_FRACTION * (float(seg.max()) - base)
    above = np.flatnonzero(seg > thr)
    if above.size == 0 or float(seg.max()) <= base:
        return math.nan
    starts, ends = _runs(above, int(GLOBAL_QRS_GAP_S * fs))
    # the P wave is the last wave before the QRS: the latest run of at least 20 ms (earlier runs
    # are the previous beat's T wave when the T-P segment is short)
    # a run that starts under PR_MIN_MS before the QRS onset is the QRS's own slurred start (LBBB)
    onset_pr = (qon - (lo + above[starts])) * 1000.0 / fs
    long = np.flatnonzero((above[ends] - above[starts] >= int(0.02 * fs)) & (onset_pr >= PR_MIN_MS))
    if long.size == 0:
        return math.nan
    # of those, only runs that peak at P_PEAK_SHARE of the largest: a small bump in the PR segment
    # (noise, atrial repolarisation) is not the P wave; a run from the window's start (the previous
    # T wave's tail) sets no reference
    tops = np.array([seg[above[starts[i]]: above[ends[i]] + 1].max() for i in long])
    inner = above[starts[long]] > int(0.01 * fs)
    ref = float(tops[inner].max()) if inner.any() else float(tops.max())
    long = long[tops >= P_PEAK_SHARE * ref]
    k = int(long[-1])
    p_end = lo + int(above[ends[k]])
    # the run ends on its own, not at the search's end (a short PR puts the P wave's second half
    # less than 100 ms before the QRS onset, and the PR-segment minimum is then the P's apex dip)
    ends_free = hi - p_end > int(GLOBAL_QRS_GAP_S * fs)
    if above[starts[k]] <= int(0.01 * fs):
        if not ends_free:
            return math.nan
        # the run starts with the search window: the P wave began before the T end read by the
        # delineator (a long PR at a fast rate puts the P on the T wave), or the window starts in the
        # previous T wave's tail; the onset is the valley between the T and the P wave
        at = _p_onset_on_t(med, p_end, int(max(0, prev_r + 0.2 * fs)), fs)
    else:
        # the run (over the window's 10 % threshold) holds the P wave; its onset is read against the
        # floor just before it
        at = lo + _p_onset_from_floor(seg, int(above[starts[k]]), int(above[ends[k]]), fs)
        if ends_free and p_end - at < int(P_MIN_S * fs):  # shorter than any P: the window began in it
            at = _p_onset_on_t(med, p_end, int(max(0, prev_r + 0.2 * fs)), fs)
    if at is None:
        return math.nan
    pr = float(qon - at) * 1000.0 / fs
    return pr if 0 < pr < 600 else math.nan


#: The shortest and longest P wave (s) :func:`_p_onset_on_t` allows: a normal P lasts 80-110 ms;
#: under 60 ms is not seen in sinus rhythm, and a left atrial abnormality (P mitrale) lengthens it to
#: 120-140 ms (Hancock et al., Circulation 2009;119:e251, AHA/ACCF/HRS recommendations part V).
P_MIN_S = 0.06
P_MAX_S = 0.14
#: The valley between a T wave and a P wave on it (:func:`_p_onset_on_t`) is under this share of the P
#: wave's peak velocity: 0.06-0.23 on 12 synthetic first-degree blocks at 90/min; in a noisy record
#: with no P wave standing out it was 0.4 and more.
P_VALLEY_SHARE = 0.3


def _p_onset_on_t(med: NDArray[np.float64], p_end: int, first: int, fs: float) -> int | None:
    """Onset (index into ``med``) of a P wave that ends at ``p_end`` and may sit on the previous T wave.

    The onset is the rise from the valley between the T wave and the P wave: the lowest velocity
    ``P_MAX_S`` to ``P_MIN_S`` before the P end (a P wave's own dip at its apex lies about half its
    duration before its end, so after that window for a P under 120 ms), not before ``first``. The
    rise is where the
    velocity crosses ``P_ONSET_FRACTION`` of the way from the valley to the P wave's peak. None when
    there is no valley (the lowest point over ``P_VALLEY_SHARE`` of the P wave's peak: P and T wave
    are merged, or noise as large as the P wave).
    """
    a0, a1 = max(first, p_end - int(round(P_MAX_S * fs))), p_end - int(round(P_MIN_S * fs))
    if a1 - a0 < 2:
        return None
    valley = a0 + int(np.argmin(med[a0:a1]))
    peak = float(med[valley:p_end + 1].max())
    floor = float(med[valley])
    if floor > P_VALLEY_SHARE * peak:
        return None
    thr = floor + P_ONSET_FRACTION * (peak - floor)
    rise = np.flatnonzero(med[valley:p_end + 1] > thr)
    return valley + int(rise[0]) if rise.size else None


#: The P onset is where the velocity rises above this share of the P wave's peak over the floor just
#: before it (:func:`_p_onset_from_floor`). The share of the QRS (``GLOBAL_QRS_FRACTION``, 0.1) is
#: too low for the P wave: its peak is ~10x smaller, so the slow tail of a large T wave (the
#: secondary ST-T of a bundle branch block) and baseline wander reach a tenth of it, and a
#: threshold over the whole search window joins that tail to the P wave (P onsets 50-130 ms early on
#: synthetic LBBB records). Shares of 0.15-0.3 gave the same within 2 records on 521 noisy synthetic
#: records (LBBB PR within 25 ms 80 -> 92 %, EAR 87 -> 91 %; 0.1 with the local floor: 83 and 78 %).
P_ONSET_FRACTION = 0.2
#: A run of the P search that peaks under this share of the largest run's peak is not the P wave
#: (:func:`global_pr`): on a real first-degree block (GE MUSE example, PR 330 ms by GE's 12SL) a
#: bump at 45 % of the P wave's velocity in the PR segment was read as the P wave (PR 164 ms).
P_PEAK_SHARE = 0.5
#: The floor under the P wave is the velocity's lowest point this long (s) before its peak: the
#: T-P segment or PR-level stretch before a P wave, which lasts up to ~120 ms.
P_FLOOR_S = 0.15


def _p_onset_from_floor(seg: NDArray[np.float64], s0: int, e0: int, fs: float) -> int:
    """Onset (index into ``seg``) of the P wave whose above-threshold run is ``seg[s0:e0+1]``.

    The threshold is ``P_ONSET_FRACTION`` of the way from the local floor (the lowest velocity in the
    ``P_FLOOR_S`` before the run's peak) to the peak; the onset is the start of the above-threshold
    run that holds the peak (gaps under ``GLOBAL_QRS_GAP_S`` bridged: the velocity dips at the P
    apex). The floor is local because what precedes the P wave (a T wave's tail, wander) differs
    from record to record; never earlier than ``s0``'s run started.
    """
    p = s0 + int(np.argmax(seg[s0: e0 + 1]))
    f0 = max(0, p - int(round(P_FLOOR_S * fs)))
    if p - f0 < 2:
        return s0
    floor = float(seg[f0:p].min())
    thr = floor + P_ONSET_FRACTION * (float(seg[p]) - floor)
    above = np.flatnonzero(seg[f0: p + 1] > thr) + f0
    starts, _ = _runs(above, int(GLOBAL_QRS_GAP_S * fs))
    return max(s0, int(above[starts[-1]]))


def pr_to_global_onset(waves: dict[str, NDArray[np.float64]], peaks: NDArray[np.integer], fs: float,
                       onset_before_r_ms: float) -> tuple[float, float]:
    """PR interval (ms) from each beat's P onset (one lead) to the global QRS onset, and its IQR.

    The PR interval ends at the earliest QRS onset in any lead (Surawicz et al. 2009); in LBBB the
    QRS starts late in lead II, and lead II's own onset lengthened PR by ~70 ms on synthetic
    records. Per beat, R peak - P onset; the median minus the global onset's lead over the R peak.
    """
    rp = (np.asarray(peaks, dtype=np.float64) - waves["P_Onsets"]) * (1000.0 / fs)
    rp = rp[np.isfinite(rp) & (rp > 0) & (rp < 700)]
    if rp.size == 0 or not math.isfinite(onset_before_r_ms):
        return math.nan, math.nan
    pr = float(np.median(rp)) - onset_before_r_ms
    iqr = float(np.subtract(*np.percentile(rp, [75, 25]))) if rp.size >= 3 else math.nan
    return (pr, iqr) if 0 < pr < 600 else (math.nan, math.nan)
