"""The beat list behind :func:`ecgkit.measuring.measure_signal`: two detectors' R peaks on the measured
lead fused into one list and repaired from all 8 independent leads.

``drop_p_waves`` (P waves taken for beats) -> ``fuse_beats`` (the second detector's beats the first
missed) -> ``drop_t_waves`` (T waves taken for beats) -> ``fill_pauses`` (beats the measured lead
does not show: other leads' detectors in pauses, and the spatial velocity, ``velocity_beats``);
``dominant_beats`` (the beats intervals are read on). All read the 8 band-passed leads and their
spatial velocity through one :class:`BeatVelocity` per record, computed only when a step needs it.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from ecgkit._measure_global import _INDEPENDENT, band_passed, velocity_of
from ecgkit._measure_signal import clean_leads


#: Record edge (s) where a beat needs both detectors (:func:`fuse_beats`).
EDGE_S = 0.3
#: Two lone beats, one of each detector, at most this far apart (ms) are a QRS and its T wave
#: (:func:`fuse_beats`).
T_WAVE_MAX_MS = 360.0


def fuse_beats(primary: NDArray[np.integer], secondary: NDArray[np.integer], fs: float,
               refractory_ms: float = 200.0, n_samples: int | None = None) -> NDArray[np.int64]:
    """The primary detector's beats plus the secondary's beats that have no primary beat within
    ``refractory_ms`` (no second QRS can follow within the ventricular refractory period, ~200 ms);
    of such secondary beats closer than ``refractory_ms`` to each other, only the first.

    One detector alone misses beats of an unusual shape (a premature ventricular beat that is small
    or negative in the measured lead); two detectors with different filters rarely miss the same
    beat (the premise of bSQI, Li et al. 2008, who fuse detectors by their agreement). With
    ``n_samples`` (the record length), a beat within ``EDGE_S`` of either end is kept only when both
    detectors find it within 50 ms. Of two beats each found by one detector only, 200 to
    ``T_WAVE_MAX_MS`` ms apart, the later is dropped (a T wave).
    """
    a = np.sort(np.asarray(primary, dtype=np.int64))
    b = np.sort(np.asarray(secondary, dtype=np.int64))
    if b.size == 0 or a.size == 0:
        return a if a.size else b
    tol = refractory_ms * fs / 1000.0
    a_near, b_near = _nearest(a, b), _nearest(b, a)
    extra = b[b_near > tol]
    if extra.size > 1:  # secondary-only beats closer than refractory_ms are one QRS (a wide one that the
        keep = np.r_[True, np.diff(extra) > tol]  # detector took at two of its peaks): the first stays
        extra = extra[keep]
    fused = np.sort(np.concatenate([a, extra]))
    # one lone beat of each detector 200-360 ms apart is one beat seen twice: one detector took the
    # QRS, the other its T wave (the T apex is 250-350 ms after R at normal rates), so the later one
    # is dropped; a premature beat that early (R on T) is a large QRS that both detectors find
    lone_a = a[a_near > int(round(0.05 * fs))]
    lone_b = b[b_near > tol]
    if lone_a.size and lone_b.size:
        lag = (lone_b[None, :] - lone_a[:, None]) * (1000.0 / fs)  # (lone a, lone b)
        pair = (np.abs(lag) >= refractory_ms) & (np.abs(lag) <= T_WAVE_MAX_MS)
        ia, ib = np.nonzero(pair)
        later = np.where(lag[ia, ib] > 0, lone_b[ib], lone_a[ia])
        fused = fused[~np.isin(fused, later)]
    if n_samples is None:
        return fused
    # within EDGE_S of either end only beats both detectors find: there the filters' edge transients
    # and a cut QRS make single-detector beats mostly artefacts (one such beat in a 10 s record moves
    # the rate by ~10 %)
    edge = int(round(EDGE_S * fs))
    agreed = a[a_near <= int(round(0.05 * fs))]
    at_edge = (fused < edge) | (fused >= n_samples - edge)
    keep = ~at_edge | np.isin(fused, agreed)
    return fused[keep]


def _nearest(x: NDArray[np.int64], y: NDArray[np.int64]) -> NDArray[np.int64]:
    """Distance (samples) from each of ``x`` to the nearest of ``y`` (both sorted, ``y`` not empty)."""
    pos = np.searchsorted(y, x)
    before = np.abs(x - y[np.clip(pos - 1, 0, y.size - 1)])
    after = np.abs(y[np.clip(pos, 0, y.size - 1)] - x)
    return np.asarray(np.minimum(before, after), dtype=np.int64)


class BeatVelocity:
    """A record's 8 band-passed independent leads and their spatial velocity
    (:func:`ecgkit._measure_global.spatial_velocity`, 40 Hz), computed on first use and then shared
    by the steps that read them (:func:`drop_t_waves`, :func:`drop_p_waves`, :func:`fill_pauses`, the
    global QRS), with the velocity's peak and the leads' amplitude near a beat."""

    def __init__(self, signal: NDArray[np.floating], fs: float) -> None:
        self._signal, self._fs = signal, fs
        self._half = int(round(0.05 * fs))
        self._wide = int(round(0.06 * fs))
        self._leads: NDArray[np.float64] | None = None
        self._values: NDArray[np.float64] | None = None
        self._slopes: NDArray[np.float64] | None = None

    @property
    def leads(self) -> NDArray[np.float64]:
        if self._leads is None:
            self._leads = band_passed(self._signal, self._fs)
        return self._leads

    @property
    def values(self) -> NDArray[np.float64]:
        if self._values is None:
            self._values = velocity_of(self.leads, self._fs)
        return self._values

    @property
    def slopes(self) -> NDArray[np.float64]:
        """Absolute slope (mV/s) of each of the 8 leads."""
        if self._slopes is None:
            self._slopes = np.abs(np.gradient(self.leads, axis=1)) * self._fs
        return self._slopes

    def peak(self, i: int) -> float:
        """The largest velocity within 50 ms of sample ``i``."""
        return float(self.values[max(0, i - self._half): i + self._half + 1].max())

    def _windows(self, at: NDArray[np.integer], half: int) -> NDArray[np.int64]:
        n = self.values.size if self._values is not None else self.leads.shape[1]
        idx = np.asarray(at, dtype=np.int64)[:, None] + np.arange(-half, half + 1)[None, :]
        return np.clip(idx, 0, n - 1)

    def peaks_at(self, at: NDArray[np.integer]) -> NDArray[np.float64]:
        """:meth:`peak` at each of the samples ``at``, in one gather."""
        if len(at) == 0:
            return np.zeros(0)
        return np.asarray(self.values[self._windows(at, self._half)].max(axis=1))

    def robust_size_at(self, at: NDArray[np.integer]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(second-largest lead amplitude, spatial slope without the steepest lead) at each sample of
        ``at``: the size of a wave with one lead's artefact (an electrode pop) left out."""
        if len(at) == 0:
            return np.zeros(0), np.zeros(0)
        amps = np.sort(self.amplitudes_at(at), axis=1)
        sl = np.sort(self.lead_peaks_at(at), axis=1)  # (n, 8)
        return amps[:, -2], np.sqrt((sl[:, :-1] ** 2).sum(axis=1))

    def amplitudes_at(self, at: NDArray[np.integer]) -> NDArray[np.float64]:
        """:meth:`amplitudes` at each of the samples ``at``, shape (len(at), 8), in one gather."""
        if len(at) == 0:
            return np.zeros((0, self.leads.shape[0]))
        seg = self.leads[:, self._windows(at, self._wide)]  # (8, beats, window)
        return np.asarray((seg.max(axis=2) - seg.min(axis=2)).T)

    def lead_peaks_at(self, at: NDArray[np.integer]) -> NDArray[np.float64]:
        """The largest slope of each of the 8 leads within 50 ms of each sample of ``at``, (len(at), 8)."""
        return np.asarray(self.slopes[:, self._windows(at, self._half)].max(axis=2).T)

    def lead_peaks(self, i: int) -> NDArray[np.float64]:
        """:meth:`lead_peaks_at` at one sample."""
        return self.lead_peaks_at(np.array([i]))[0]

    def wave_width_ms(self, i: int) -> float:
        """Time (ms) within 60 ms of sample ``i`` that the spatial velocity is over half its value at
        ``i``."""
        seg = self.values[max(0, i - self._wide): i + self._wide + 1]
        return float((seg >= 0.5 * self.values[i]).sum() * 1000.0 / self._fs)

    def amplitude(self, i: int) -> float:
        """The largest peak-to-peak amplitude (mV) of the 8 leads within 60 ms of sample ``i``."""
        return float(self.amplitudes_at(np.array([i])).max())


#: A beat is the size of a P wave when its amplitude (second-largest peak-to-peak of the 8 independent
#: leads: one lead's artefact left out) is under ``P_WAVE_MAX_MV`` and its spatial slope (without its
#: steepest lead) under ``P_SIZED_SHARE`` of the median QRS's
#: (:func:`drop_p_waves`, :func:`fill_pauses`). A P wave is at most 0.25 mV in the limb leads, more in
#: right atrial enlargement (Hancock et al., Circulation 2009;119:e251) and seldom over 0.5 mV; a QRS
#: is 1 mV or more in some precordial lead unless the whole ECG is of low voltage, and then it keeps
#: the velocity of the other QRS complexes. On 4,092 synthetic records (two realistic cohorts, one
#: easy), P waves away from any QRS measured 0.12-0.39 mV and at most 0.21 of the median QRS's
#: velocity; premature ventricular beats 0.89-2.96 mV, QRS complexes 0.73 mV and more.
P_WAVE_MAX_MV = 0.5
P_SIZED_SHARE = 0.25


def _p_sized(vel: BeatVelocity, at: NDArray[np.int64], ref_v: float) -> NDArray[np.bool_]:
    """Whether each wave of ``at`` has a P wave's size against QRS complexes of robust slope ``ref_v``
    (:meth:`BeatVelocity.robust_size_at`: one lead's artefact left out of both); none when ``ref_v``
    is NaN (a low-voltage record)."""
    amp, v = vel.robust_size_at(at)
    return (amp < P_WAVE_MAX_MV) & (v < P_SIZED_SHARE * ref_v)


def qrs_slope(vel: BeatVelocity, beats: NDArray[np.int64]) -> float:
    """Median robust slope (:meth:`BeatVelocity.robust_size_at`) of the beats over ``P_WAVE_MAX_MV``
    (QRS complexes); NaN when there are none (a low-voltage record)."""
    amp, v = vel.robust_size_at(beats)
    return float(np.median(v[amp >= P_WAVE_MAX_MV])) if (amp >= P_WAVE_MAX_MV).any() else math.nan


def _raw_spread(signal: NDArray[np.floating], beats: NDArray[np.int64], fs: float) -> bool:
    """Whether the beats' amplitudes (largest peak-to-peak of the 8 unfiltered independent leads
    within 60 ms) differ by more than 2x: cheap, no filtering."""
    if beats.size == 0:
        return False
    w = int(round(0.06 * fs))
    x = np.asarray(signal)
    idx = np.clip(beats[:, None] + np.arange(-w, w + 1)[None, :], 0, x.shape[1] - 1)
    seg = x[np.asarray(_INDEPENDENT)[:, None, None], idx[None, :, :]]  # (8, beats, window), no copy of x
    amps = (seg.max(axis=2) - seg.min(axis=2)).max(axis=0)  # (beats,)
    return bool(amps.min() < 0.5 * amps.max())


def drop_p_waves(signal: NDArray[np.floating], fs: float, primary: NDArray[np.integer],
                 secondary: NDArray[np.integer], velocity: BeatVelocity | None = None
                 ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Both detectors' beats less those that have the size of a P wave: under ``P_WAVE_MAX_MV``, and
    under ``P_SIZED_SHARE`` of the median spatial slope of the beats over ``P_WAVE_MAX_MV`` (QRS
    complexes), both read with one lead's artefact left out (:meth:`BeatVelocity.robust_size_at`).

    Run before :func:`fuse_beats`. In complete heart block the P waves march through at their own
    rate, and between slow escape beats a detector's adaptive threshold falls until it takes them for
    beats (43/min read as 79/min; both detectors when the escape QRS is small in the lead); with a
    wide QRS whose start is slurred (LBBB) a detector may take each P wave 170 ms before its QRS, and
    the other detector's QRS then lies inside the 200 ms that fusing leaves to the first detector's
    beat. Costs no filtering when the two lists agree and the beats' raw amplitudes are alike.
    """
    a = np.sort(np.asarray(primary, dtype=np.int64))
    b = np.sort(np.asarray(secondary, dtype=np.int64))
    if a.size == 0 or b.size == 0:
        return a, b
    near, edge, n = int(round(0.05 * fs)), int(round(EDGE_S * fs)), np.asarray(signal).shape[1]
    beats = np.union1d(a, b)

    def lone(x: NDArray[np.int64], y: NDArray[np.int64]) -> bool:  # away from the record's edges, where
        inner = (x >= edge) & (x < n - edge)                        # fuse_beats keeps only agreed beats
        return bool((inner & (_nearest(x, y) > near)).any())

    inner = beats[(beats >= edge) & (beats < n - edge)]
    if not (lone(a, b) or lone(b, a) or _raw_spread(signal, inner, fs)):
        return a, b
    vel = velocity if velocity is not None else BeatVelocity(signal, fs)
    ref_v = qrs_slope(vel, beats)
    if not math.isfinite(ref_v):  # a low-voltage record: no QRS to measure against
        return a, b
    small = beats[_p_sized(vel, beats, ref_v)]
    return a[~np.isin(a, small)], b[~np.isin(b, small)]


#: A beat one detector alone finds in the T-wave window is a T wave only when its spatial velocity
#: is also under this share of the slowest beat both detectors find (:func:`drop_t_waves`): beats
#: of one ectopic focus vary by ~10-20 % in velocity with noise and respiration.
AGREED_VELOCITY_SHARE = 0.75


#: A beat one detector alone finds in the T-wave window is a T wave when its spatial velocity is under
#: this share of the median beat's (:func:`drop_t_waves`). Higher than the share a candidate needs to
#: be added (``T_WAVE_VELOCITY_SHARE``): next to a wide, slow QRS (bundle branch block, IVCD) a T wave
#: reaches a third of the QRS's velocity.
T_WAVE_DROP_SHARE = 0.4
#: Upper normal QTc (ms, Bazett): the T wave of a beat ends by ``QT_UPPER_MS * sqrt(RR s)`` after
#: it (QTc over 450-470 ms is prolonged, Rautaharju et al., Circulation 2009;119:e241).
QT_UPPER_MS = 450.0


def _t_window(rr: float, fs: float) -> int:
    """Samples after a beat that its T wave may reach: ``T_WAVE_MAX_MS``, at slow rates the upper
    normal QT at the median RR ``rr`` (samples)."""
    return int(round(max(T_WAVE_MAX_MS, QT_UPPER_MS * math.sqrt(rr / fs)) * fs / 1000.0))


def drop_t_waves(signal: NDArray[np.floating], fs: float, fused: NDArray[np.integer],
                 secondary: NDArray[np.integer], refractory_ms: float = 200.0,
                 velocity: BeatVelocity | None = None) -> NDArray[np.int64]:
    """``fused`` less the beats that are the previous beat's T wave: found by one detector only
    (no ``secondary`` beat within 50 ms), ``refractory_ms`` to ``T_WAVE_MAX_MS`` after the beat
    before (at slow rates up to the upper normal QT, ``QT_UPPER_MS`` at the RR of the beats both
    detectors found), with a spatial velocity peak under ``T_WAVE_DROP_SHARE`` of the median at
    those beats.

    A tall T wave (hyperkalaemia, LVH, a secondary ST-T) crosses a detector's threshold; over the 8
    independent leads a T wave is slow (its velocity ~10-20 % of the QRS's), a QRS is not. The same
    rule admits a beat in the T-wave window in :func:`fill_pauses`. Costs nothing (no velocity) when
    no such beat is found. ``velocity``: the record's :class:`BeatVelocity`, when the caller shares one.
    """
    pk = np.sort(np.asarray(fused, dtype=np.int64))
    b = np.sort(np.asarray(secondary, dtype=np.int64))
    if pk.size < 3 or b.size == 0:
        return pk
    agreed = _nearest(pk, b) <= int(round(0.05 * fs))
    if agreed.sum() < 2:
        return pk
    lag = np.diff(pk) * (1000.0 / fs)
    # the T wave ends later at slow rates: up to the upper normal QT at the agreed beats' RR
    t_max = _t_window(float(np.median(np.diff(pk[agreed]))), fs) * 1000.0 / fs
    cand = np.flatnonzero(~agreed[1:] & (lag >= refractory_ms) & (lag <= t_max)) + 1
    if cand.size == 0:
        return pk
    vel = velocity if velocity is not None else BeatVelocity(signal, fs)
    known = vel.peaks_at(pk[agreed])
    # slow against the median beat, and against every beat both detectors take (wide premature
    # beats, as slow as a fifth to a third of the sinus QRS, are such beats in bigeminy)
    limit = min(T_WAVE_DROP_SHARE * float(np.median(known)), AGREED_VELOCITY_SHARE * float(known.min()))
    slow = [int(i) for i in cand if vel.peak(int(pk[i])) < limit]
    return np.delete(pk, slow) if slow else pk


#: An RR interval this many times the median RR is a pause: a dropped beat, or a beat the measured
#: lead does not show (a premature ventricular beat whose axis is perpendicular to it).
PAUSE_RR_RATIO = 1.5
#: A beat found in a pause counts when this many other independent leads show it within 100 ms.
PAUSE_MIN_LEADS = 2
#: A beat found in the previous beat's T-wave window counts when its spatial velocity peaks at least at
#: this share of the known beats' median peak (:func:`fill_pauses`).
T_WAVE_VELOCITY_SHARE = 0.25
#: A median RR over this many seconds (a rate under 60/min: bigeminy at a sinus rate up to 120 whose
#: premature beats the lead misses) has every interval searched for beats
#: the measured lead misses (:func:`fill_pauses`).
SLOW_RR_S = 1.0
#: The second detector run in the other leads when pauses or a slow rate are searched
#: (:func:`fill_pauses`): neurokit2's "kalidas2017" (stationary-wavelet QRS detector). It finds the
#: wide, early premature beats the "neurokit" method misses, as biosppy's Hamilton does, with the same
#: measured accuracy on three synthetic cohorts (session 25) at 1.2 instead of 3.9 ms per 10 s lead.
SECOND_DETECTOR = "kalidas2017"


def fill_pauses(signal: NDArray[np.floating], fs: float, peaks: NDArray[np.integer], lead: int,
                usable: NDArray[np.bool_], detect: Callable[[NDArray[np.float64]], NDArray[np.int64]],
                refractory_ms: float = 200.0,
                detect_second: Callable[[NDArray[np.float64]], NDArray[np.int64]] | None = None,
                velocity: BeatVelocity | None = None) -> NDArray[np.int64]:
    """Beats inside pauses of ``peaks`` that the other independent leads show.

    A premature ventricular beat with a compensatory pause leaves, when the measured lead misses it,
    one RR of about twice the others; rate and rhythm are read from all leads (a beat is a QRS in any
    lead). Only when ``peaks`` has an RR > ``PAUSE_RR_RATIO`` x its median, or a median RR over
    ``SLOW_RR_S`` (bigeminy whose every premature beat the lead misses looks like a regular rhythm at
    half the rate; then every RR is searched), or a record start or end longer than such a pause,
    each other usable independent lead (I, II, V1-V6, not ``lead``) is cleaned (:func:`clean_leads`)
    and run through ``detect`` (the detector of the measured lead) and ``detect_second`` (a second
    detector: the first misses wide, early beats). A candidate ``refractory_ms`` from the beats around
    it is added when ``PAUSE_MIN_LEADS`` leads find it within 100 ms (its median position), it has
    ``PAUSE_VELOCITY_SHARE`` of the known beats' spatial velocity and is not the size of a P wave;
    inside the previous beat's T-wave window (up to ``T_WAVE_MAX_MS``) it needs one lead more and
    ``T_WAVE_VELOCITY_SHARE``. Those intervals and the ones over ``SUSPECT_RR_RATIO`` x the short
    ones are then searched in the spatial velocity (:func:`velocity_beats`). Candidates closer than
    ``refractory_ms`` are one beat. A true pause (a non-conducted P, a sinus pause) has no QRS in any
    lead and stays. ``velocity``: the record's :class:`BeatVelocity`, when the caller shares one.
    """
    pk = np.sort(np.asarray(peaks, dtype=np.int64))
    if pk.size < 3:
        return pk
    rr = np.diff(pk)
    ref = int(round(refractory_ms * fs / 1000.0))
    long_gap = PAUSE_RR_RATIO * float(np.median(rr))
    pause = rr > long_gap
    # a slow rate may be every other beat: bigeminy whose premature beats the lead does not show
    # leaves a regular rhythm at half the rate, with no pause to find; then every interval is searched
    slow = float(np.median(rr)) > SLOW_RR_S * fs
    gaps = np.arange(rr.size) if slow else np.flatnonzero(pause)
    # windows searched: the gaps, and a record's start or end longer than a pause with no beat (a run
    # of wide beats that the measured lead does not show, before its first or after its last beat)
    windows = [(int(pk[g]) + ref, int(pk[g + 1]) - ref) for g in gaps]
    edge, n = int(round(EDGE_S * fs)), np.asarray(signal).shape[1]
    if pk[0] - edge > long_gap:
        windows.append((edge, int(pk[0]) - ref))
    if n - edge - pk[-1] > long_gap:
        windows.append((int(pk[-1]) + ref, n - edge))
    # an interval over SUSPECT_RR_RATIO x the shortest ones may hold a beat no lead's detector found
    # (every other beat of a ventricular run): searched in the spatial velocity only (cheap)
    inf = np.array([np.inf])
    neighbour = np.minimum(np.r_[inf, rr[:-1]], np.r_[rr[1:], inf])  # the shorter RR beside each
    suspect = np.flatnonzero((rr > SUSPECT_RR_RATIO * float(np.percentile(rr, 10)))
                             | (rr > SUSPECT_RR_RATIO * neighbour))
    vgaps = np.union1d(gaps, suspect)
    if not windows and vgaps.size == 0:
        return pk
    vel = velocity if velocity is not None else BeatVelocity(signal, fs)
    qrs_v = float(np.median(vel.peaks_at(pk)))
    added = (_detector_beats(signal, fs, pk, lead, usable, detect, detect_second, windows, vel, qrs_v)
             if windows else [])
    added += velocity_beats(vel, pk, vgaps, added, fs, ref, qrs_v)
    if not added:
        return pk
    added.sort()
    # a wide premature QRS peaks at different times in different leads: two clusters closer than the
    # refractory period are one beat (its first cluster kept)
    merged = [added[0]]
    for a in added[1:]:
        if a - merged[-1] >= ref:
            merged.append(a)
    return np.sort(np.concatenate([pk, np.asarray(merged, dtype=np.int64)]))


def _detector_beats(signal: NDArray[np.floating], fs: float, pk: NDArray[np.int64], lead: int,
                    usable: NDArray[np.bool_], detect: Callable[[NDArray[np.float64]], NDArray[np.int64]],
                    detect_second: Callable[[NDArray[np.float64]], NDArray[np.int64]] | None,
                    windows: list[tuple[int, int]], vel: BeatVelocity, qrs_v: float) -> list[int]:
    """Beats the other independent leads' detectors find inside ``windows`` (:func:`fill_pauses`)."""
    t_win = int(round(T_WAVE_MAX_MS * fs / 1000.0))
    found: list[NDArray[np.int64]] = []
    leads = [i for i in _INDEPENDENT if i != lead and usable[i]]
    if not leads:
        return []
    cleaned = clean_leads(np.asarray(signal, dtype=np.float64)[leads], fs)
    for row in cleaned:
        try:
            other = detect(row)
            if detect_second is not None:  # a second detector: whole beats may be missing
                other = np.union1d(other, detect_second(row))
        except Exception:  # a lead the library cannot read does not vote
            continue
        inside = [other[(other > lo) & (other < hi)] for lo, hi in windows]
        found.append(np.concatenate(inside) if inside else np.zeros(0, np.int64))
    if not found:
        return []
    cand = np.sort(np.concatenate(found))
    ref_p = qrs_slope(vel, pk)
    tol = int(round(0.1 * fs))
    added = []
    # a candidate inside the previous beat's T-wave window (200-360 ms after it; an early, R-on-T
    # premature beat or the T wave itself) needs one more lead and a QRS-sized spatial velocity: at
    # least T_WAVE_VELOCITY_SHARE of the median peak at the known beats (a T wave is slow, ~10-20 %)
    j = 0
    while j < cand.size:  # clusters of candidates within 100 ms of the cluster's first
        k = int(np.searchsorted(cand, cand[j] + tol, side="right"))
        votes = sum(bool(((f >= cand[j]) & (f <= cand[j] + tol)).any()) for f in found)
        at = int(np.median(cand[j:k]))
        prev = pk[max(0, int(np.searchsorted(pk, at)) - 1)]
        in_t = 0 < at - prev < t_win
        floor = T_WAVE_VELOCITY_SHARE if in_t else PAUSE_VELOCITY_SHARE  # slower: a T or a P wave
        if (votes >= PAUSE_MIN_LEADS + in_t and vel.peak(at) >= floor * qrs_v
                and not _p_sized(vel, np.array([at]), ref_p)[0]):  # P waves, seen in 2 leads
            added.append(at)
        j = k
    return added


#: A beat that no detector finds (:func:`velocity_beats`) has at least this many times the spatial
#: velocity found at the same lag after the record's other beats of the same shape (``SAME_SHAPE``:
#: their T waves).
OVER_OWN_T = 2.0
#: Two beats have the same shape when their amplitudes in the 8 independent leads differ by at most
#: this share (vector norm): a beat of another focus has another electrical axis.
SAME_SHAPE = 0.25
#: ... and a slope of at least this share of the lead's median QRS slope in ``PAUSE_MIN_LEADS``
#: of the 8 independent leads: a beat's electrical axis projects onto neighbouring leads; an
#: electrode's artefact (a pop, a step of the baseline) is in its own leads (a limb electrode: I or
#: II and a third of it in V1-V6, through the central terminal). An amplitude test was fooled by the
#: T waves in the same window.
VELOCITY_BEAT_LEAD_SHARE = 0.2
#: ... and a spatial velocity over half its peak for at least this long (ms, :meth:`BeatVelocity.
#: wave_width_ms`): 32-50 ms at synthetic QRS complexes and ventricular beats, 12 ms at electrode
#: pops and baseline steps (the band-pass's transient).
MIN_WAVE_MS = 20.0
#: ... and at least this share of the median beat's velocity beyond the T wave, when its
#: amplitude is over ``P_WAVE_MAX_MV`` (in the T wave: ``T_WAVE_VELOCITY_SHARE``). Premature
#: ventricular beats measured 0.14-1.4 of the median QRS's velocity on 4,092 synthetic records.
PAUSE_VELOCITY_SHARE = 0.15


def velocity_beats(vel: BeatVelocity, pk: NDArray[np.int64], gaps: NDArray[np.int64], added: list[int],
                   fs: float, ref: int, qrs_v: float) -> list[int]:
    """Beats that no detector finds in any lead, from the spatial velocity of the 8 independent leads:
    the largest velocity peak ``ref`` after each searched beat ``pk[gaps]`` and ``ref`` before the
    next, where :func:`fill_pauses` added none.

    QRS detectors wait 250-300 ms after a beat before they look for the next (neurokit2's
    ``ecg_findpeaks`` 300 ms), so a ventricular premature beat coupled closer (R on T) is in no
    lead's list; a small one (a fifth of the sinus QRS's velocity) may be under every lead's
    threshold. Kept in the previous beat's T wave when it reaches ``T_WAVE_VELOCITY_SHARE`` of the
    median beat's velocity ``qrs_v`` (a T wave measured 0.05-0.2), beyond it when it reaches
    ``PAUSE_VELOCITY_SHARE`` and an amplitude over ``P_WAVE_MAX_MV`` (not a P wave), and in both
    when it has ``OVER_OWN_T`` times the 25th percentile of the velocity at the same lag after the
    other beats of its shape (their own T waves: a T wave tall or peaked enough to pass the first
    bound, as in hyperkalaemia, recurs after every beat and fails this one), a velocity over half
    its peak for ``MIN_WAVE_MS`` (an electrode pop's is a 12 ms transient), and in
    ``PAUSE_MIN_LEADS`` leads ``VELOCITY_BEAT_LEAD_SHARE`` of their QRS slope. Bigeminy whose every
    premature beat has the same coupling fails the reference too, and is left to the detectors.
    """
    t_win = int(round(T_WAVE_MAX_MS * fs / 1000.0))
    nxt = np.r_[pk[1:], np.iinfo(np.int64).max]
    out: list[int] = []
    per_beat: dict[str, NDArray[np.float64]] = {}

    def beat_amps() -> NDArray[np.float64]:  # (beats, 8) each beat's amplitude in each lead, on first use
        if "amps" not in per_beat:
            per_beat["amps"] = vel.amplitudes_at(pk)
        return per_beat["amps"]

    def lead_qrs() -> NDArray[np.float64]:  # each lead's median QRS slope
        if "slopes" not in per_beat:
            per_beat["slopes"] = np.median(vel.lead_peaks_at(pk), axis=0)
        return per_beat["slopes"]

    for g in gaps:
        a0, a1 = int(pk[g]) + ref, int(pk[g + 1]) - ref
        if a1 - a0 < 3 or any(a0 - ref <= a < a1 + ref for a in added):
            continue
        at = a0 + int(np.argmax(vel.values[a0:a1]))
        v = float(vel.values[at])
        lag = at - int(pk[g])
        in_t = lag < t_win
        if at in (a0, a1 - 1) or v < (T_WAVE_VELOCITY_SHARE if in_t else PAUSE_VELOCITY_SHARE) * qrs_v:
            continue  # not a peak, or slow
        if not in_t and vel.amplitude(at) < P_WAVE_MAX_MV:
            continue
        # an electrode's pop or step is a transient: its velocity is up for a few ms, a QRS's stays up
        # over its 60-200 ms; and it sits in one electrode's leads, a beat in two leads or more
        if (vel.wave_width_ms(at) < MIN_WAVE_MS
                or (vel.lead_peaks(at) >= VELOCITY_BEAT_LEAD_SHARE * lead_qrs()).sum() < PAUSE_MIN_LEADS):
            continue
        # the other beats of the same shape (amplitude in the 8 leads within 25 %): a premature
        # ventricular beat's own T wave is larger than the sinus beats'
        amps = beat_amps()
        same = np.linalg.norm(amps - amps[g], axis=1) <= SAME_SHAPE * float(np.linalg.norm(amps[g]))
        use = same & (pk != pk[g]) & (nxt - pk > lag + ref // 2) & (pk + lag < vel.values.size)
        others = vel.peaks_at(pk[use] + lag)
        if others.size and v >= OVER_OWN_T * float(np.percentile(others, 25)):
            out.append(at)
    return out


#: An RR interval over this many times the record's short ones (10th percentile) or the shorter of
#: the two beside it is searched for a beat in the spatial velocity (:func:`fill_pauses`,
#: :func:`velocity_beats`): one beat of a run missed doubles its interval.
SUSPECT_RR_RATIO = 1.6


#: A beat is premature when its RR is under this share of the median RR, or of the RR after it.
PREMATURE_RR_RATIO = 0.85


def shape_classes(shapes: NDArray[np.float64]) -> NDArray[np.int64]:
    """Class of each beat by its amplitude in the 8 independent leads (``shapes``, (beats, 8)): a beat
    joins the first class whose first beat it is within ``SAME_SHAPE`` of (vector norm), else starts
    a class. Beats of one focus share an electrical axis; a ventricular beat has another."""
    reps: list[NDArray[np.float64]] = []
    out = np.empty(len(shapes), dtype=np.int64)
    for i, a in enumerate(shapes):
        for k, r in enumerate(reps):
            if np.linalg.norm(a - r) <= SAME_SHAPE * float(np.linalg.norm(r)):
                out[i] = k
                break
        else:
            out[i] = len(reps)
            reps.append(a)
    return out


def dominant_beats(peaks: NDArray[np.integer],
                   shapes: NDArray[np.float64] | None = None) -> NDArray[np.int64]:
    """The beats of the dominant rhythm: ``peaks`` less the premature ones (RR before the beat under
    ``PREMATURE_RR_RATIO`` of the median RR or of the RR after it: an ectopic beat and its
    compensatory pause), which carry another QRS shape (ventricular) or P wave (atrial).

    A median beat over all beats is the ectopic beat's shape when every other beat is ectopic
    (bigeminy); intervals (QRS duration, PR) are read on the dominant beats, as a reader does. With
    ``shapes`` (each beat's amplitude in the 8 independent leads), the beats are first limited to the
    shape class (:func:`shape_classes`, 3 beats or more) that comes slowest (longest median RR before
    its beats): a run of ventricular tachycardia that fills most of the record is not premature
    against its own rate, but faster than the rhythm it interrupts. With fewer than 3 dominant beats
    (an irregular rhythm), ``peaks`` unchanged.
    """
    pk = np.sort(np.asarray(peaks, dtype=np.int64))
    if pk.size < 4:
        return pk
    rr = np.diff(pk).astype(np.float64)
    prev, nxt = rr[:-1], rr[1:]  # around beats 1 .. n-2
    early = (prev < PREMATURE_RR_RATIO * float(np.median(rr))) | (prev < PREMATURE_RR_RATIO * nxt)
    keep = np.ones(pk.size, dtype=bool)
    keep[1:-1] = ~early
    # the last beat has no RR after it: premature by the median alone
    keep[-1] = not rr[-1] < PREMATURE_RR_RATIO * float(np.median(rr))
    if shapes is not None and len(shapes) == pk.size:
        cls = shape_classes(np.asarray(shapes, dtype=np.float64)[np.argsort(np.asarray(peaks))])
        before = np.r_[np.nan, rr]
        big = [k for k in np.unique(cls) if (cls == k).sum() >= 3]
        if len(big) > 1:
            slowest = max(big, key=lambda k: float(np.nanmedian(before[cls == k])))
            # in the slowest class, its beats that are premature against the median or the next RR
            # stay out; against the median of the whole record a slower class is never premature
            in_cls = cls == slowest
            late = np.r_[True, ~(before[1:-1] < PREMATURE_RR_RATIO * nxt), True]
            if (in_cls & late).sum() >= 3:
                return pk[in_cls & late]
            return pk[in_cls]
    return pk[keep] if keep.sum() >= 3 else pk
