"""Per-record signal measurements behind :func:`ecgkit.measuring.measure_signal`.

One 12-lead record in, one flat dict of numbers out. neurokit2 and biosppy are imported inside
the functions that use them, so importing ecgkit (and every CLI command but ``measure``) never pays
their import time (about 1-2 s together).

Steps, each a small private function (the shape of NeuroKit's ``ecg_process``):
``_lead_shares`` (flat and noisy 1 s windows of every lead, all 12 leads at once) ->
``_choose_lead`` -> ``nk.ecg_clean`` -> ``nk.ecg_peaks`` and a biosppy detector -> ``_bsqi`` ->
the beat list's repairs (:mod:`ecgkit._measure_beats`: ``drop_p_waves`` -> ``fuse_beats`` ->
``drop_t_waves`` -> ``fill_pauses``) -> ``_rr_features`` -> ``_template_quality`` -> optionally
``nk.ecg_delineate`` -> ``_intervals``; the multi-lead (global) QRS and PR are in
:mod:`ecgkit._measure_global`.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, sosfilt

from ecgkit._measure_global import filtfilt_rows, sosfiltfilt_rows
from ecgkit.record import LEADS
from ecgkit.signal import FLAT_PTP_MV

#: A 1 s window is noisy when the RMS of its content above 40 Hz exceeds this (mV). Diagnostic ECG
#: energy lies mostly below 40 Hz (AHA bandwidth recommendations, Kligfield et al., Circulation
#: 2007;115:1306); 50 uV RMS above it is muscle tremor or mains interference large enough to read on
#: paper (half a small square).
NOISE_HF_RMS_MV = 0.05
#: A lead is listed in ``flat_leads``/``noisy_leads`` when more than this share of its windows is.
BAD_LEAD_SHARE = 0.5
_HF_SOS: dict[float, NDArray[np.float64]] = {}


def _hf_sos(fs: float) -> NDArray[np.float64]:
    sos = _HF_SOS.get(fs)
    if sos is None:  # a cache of filter coefficients per rate, not run-time state that changes results
        sos = butter(4, min(40.0, 0.45 * fs), btype="highpass", fs=fs, output="sos")
        _HF_SOS[fs] = sos
    return sos


def lead_shares(signal: NDArray[np.floating], fs: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Share of 1 s windows of each lead that are flat (peak-to-peak < ``FLAT_PTP_MV``) or noisy.

    Returns
    -------
    flat, noisy : NDArray[float64], shape (leads,)
        Shares in [0, 1]; a record shorter than 1 s is one window.
    """
    x = np.nan_to_num(np.asarray(signal, dtype=np.float64))
    win = max(1, int(round(fs)))
    n_win = max(1, x.shape[1] // win)
    used = x[:, : n_win * win] if x.shape[1] >= win else x
    blocks = used.reshape(x.shape[0], n_win, -1)
    flat = (blocks.max(axis=2) - blocks.min(axis=2)) < FLAT_PTP_MV
    if x.shape[1] > 27:
        # one causal pass: only the RMS per window matters, so the phase a forward-backward pass
        # would correct is irrelevant, and it costs half
        hf = sosfilt(_hf_sos(fs), used, axis=1).reshape(blocks.shape)
        noisy = np.sqrt((hf ** 2).mean(axis=2)) > NOISE_HF_RMS_MV
    else:
        noisy = np.zeros_like(flat)
    return flat.mean(axis=1), (noisy & ~flat).mean(axis=1)


def match_beats(a: NDArray[np.integer], b: NDArray[np.integer], tol: int) -> int:
    """Number of beats of ``a`` with a beat of ``b`` within ``tol`` samples, each used once (greedy
    in time order, as beat-by-beat comparisons in ANSI/AAMI EC57 do)."""
    a = np.sort(np.asarray(a, dtype=np.int64))
    b = np.sort(np.asarray(b, dtype=np.int64))
    i = j = hits = 0
    while i < a.size and j < b.size:  # O(n) over ~10-20 beats: a loop is clearer than vector tricks
        d = a[i] - b[j]
        if abs(d) <= tol:
            hits += 1
            i += 1
            j += 1
        elif d > 0:
            j += 1
        else:
            i += 1
    return hits


def bsqi(a: NDArray[np.integer], b: NDArray[np.integer], fs: float, tol_ms: float = 150.0) -> float:
    """Beat agreement F1 of two detectors (bSQI, Li, Mark and Clifford, Physiol Meas 2008;29:15).

    ``2 * matched / (len(a) + len(b))`` with beats matched within ``tol_ms``; NaN when both are empty.
    """
    n = len(a) + len(b)
    if n == 0:
        return float("nan")
    return 2.0 * match_beats(a, b, int(round(tol_ms * fs / 1000.0))) / n


def rr_features(peaks: NDArray[np.integer], fs: float) -> dict[str, float]:
    """Heart rate and RR irregularity from R-peak sample indices."""
    out = {"n_beats": float(len(peaks)), "hr_bpm": math.nan, "rr_mean_ms": math.nan,
           "rr_min_ms": math.nan, "rr_cv": math.nan, "rr_pnn50": math.nan}
    if len(peaks) < 2:
        return out
    rr = np.diff(np.asarray(peaks, dtype=np.float64)) * (1000.0 / fs)  # ms
    mean = float(rr.mean())
    out.update(hr_bpm=60000.0 / mean, rr_mean_ms=mean, rr_min_ms=float(rr.min()))
    if rr.size >= 2:
        out["rr_cv"] = float(rr.std() / mean)
        out["rr_pnn50"] = float((np.abs(np.diff(rr)) > 50.0).mean())
    return out


def template_quality(clean: NDArray[np.floating], peaks: NDArray[np.integer], fs: float) -> float:
    """Mean correlation of each beat with the record's average beat (template matching).

    The method of ``nk.ecg_quality(method="templatematch")`` (Orphanidou et al., IEEE J Biomed Health
    Inform 2015;19:832), vectorised: beats are windows of one mean RR interval centred on each R
    peak, those that fit inside the record are averaged into a template, and each beat's Pearson
    correlation with it is averaged. NaN with fewer than 2 whole beats. Orphanidou et al. accept a
    record at a mean correlation >= 0.66.
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    if peaks.size < 3:
        return math.nan
    half = int(round(0.5 * float(np.diff(peaks).mean())))
    if half < 2:
        return math.nan
    ok = peaks[(peaks - half >= 0) & (peaks + half < len(clean))]
    if ok.size < 2:
        return math.nan
    beats = np.asarray(clean, dtype=np.float64)[ok[:, None] + np.arange(-half, half)[None, :]]  # (beats, w)
    templ = beats.mean(axis=0)
    b = beats - beats.mean(axis=1, keepdims=True)
    t = templ - templ.mean()
    denom = np.sqrt((b ** 2).sum(axis=1) * (t ** 2).sum())
    cc = np.where(denom > 0, (b @ t) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(cc.mean())


def _biosppy_detector(name: str) -> Callable[..., Any]:
    from biosppy.signals import ecg as bse

    fn = {"hamilton": bse.hamilton_segmenter, "engzee": bse.engzee_segmenter,
          "christov": bse.christov_segmenter}.get(name)
    if fn is None:
        raise ValueError(f"unknown biosppy detector {name!r}; expected hamilton, engzee or christov")
    return fn


def detect_biosppy(clean: NDArray[np.floating], fs: float, detector: str = "hamilton") -> NDArray[np.int64]:
    """R peaks by a biosppy segmenter, moved to the largest absolute deflection within 50 ms (as
    ``biosppy.signals.ecg.ecg`` does with ``correct_rpeaks``, here vectorised).

    The detector's cost (~3 ms per 10 s lead) is mostly fixed overhead (filter design, smoothing)
    and does not fall when the rate is halved (measured), so it runs at the full rate.
    """
    x = np.asarray(clean, dtype=np.float64)
    found = np.asarray(_biosppy_detector(detector)(signal=x, sampling_rate=float(fs))[0], dtype=np.int64)
    if found.size == 0:
        return found
    tol = int(round(0.05 * fs))
    offs = np.arange(-tol, tol + 1)
    idx = np.clip(found[:, None] + offs[None, :], 0, len(clean) - 1)
    best = idx[np.arange(found.size), np.abs(np.asarray(clean)[idx]).argmax(axis=1)]
    return np.unique(best)


def detect_neurokit(clean: NDArray[np.floating], fs: float, method: str = "neurokit") -> NDArray[np.int64]:
    """R peaks of ``nk.ecg_peaks`` (``method``, default "neurokit"; no artefact correction) on a cleaned lead.

    Calls the detection step that ``ecg_peaks`` runs, ``nk.ecg_findpeaks``, and skips the per-sample
    DataFrame ``ecg_peaks`` then builds: the same peaks (tested) at about a third of the cost.
    """
    import neurokit2 as nk

    info = nk.ecg_findpeaks(clean, sampling_rate=int(round(fs)), method=method)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


_CLEAN_SOS: dict[int, NDArray[np.float64]] = {}


def clean_leads(x: NDArray[np.floating], fs: float) -> NDArray[np.float64]:
    """``nk.ecg_clean(method="neurokit")`` of each row of ``x`` (leads, samples), with the filter
    designed once per rate and all rows filtered in one call.

    The same two steps as neurokit2's ``_ecg_clean_nk`` (0.12-0.16): a 5th-order Butterworth
    high-pass at 0.5 Hz (``sosfiltfilt``), then the "powerline" moving average of one 50 Hz period
    (``filtfilt`` with ``method="pad"``). Designing the filter took a third of neurokit2's call, and
    the filters' initial states (a linear solve each) a third of what remained: both are computed
    once per rate (:func:`ecgkit._measure_global.sosfiltfilt_rows`). The result equals
    ``nk.ecg_clean`` to rounding (``tests/test_measure.py``). Rows with non-finite
    samples go through ``nk.ecg_clean`` itself (it fills them first).
    """
    sr = int(round(fs))
    arr = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if not np.isfinite(arr).all():
        import neurokit2 as nk

        return np.stack([np.asarray(nk.ecg_clean(row, sampling_rate=sr, method="neurokit"), dtype=np.float64)
                         for row in arr])
    sos = _CLEAN_SOS.get(sr)
    if sos is None:  # filter coefficients per rate (a cache of constants)
        sos = butter(5, 0.5, btype="highpass", output="sos", fs=sr)
        _CLEAN_SOS[sr] = sos
    y = sosfiltfilt_rows(sos, arr)
    b = np.ones(int(sr / 50)) if sr >= 100 else np.ones(2)
    return filtfilt_rows(b, np.array([float(len(b))]), y)


def clean_lead(x: NDArray[np.floating], fs: float) -> NDArray[np.float64]:
    """``nk.ecg_clean`` (method "neurokit": 0.5 Hz high-pass, powerline moving average) of one lead;
    see :func:`clean_leads`."""
    return clean_leads(np.asarray(x, dtype=np.float64)[None, :], fs)[0]


def delineate(clean: NDArray[np.floating], peaks: NDArray[np.integer], fs: float,
              method: str = "dwt") -> dict[str, NDArray[np.float64]]:
    """Wave onsets/offsets per beat from ``nk.ecg_delineate`` (sample indices, NaN where not found).

    Keys: ``P_Onsets``, ``P_Peaks``, ``R_Onsets``, ``R_Offsets``, ``T_Offsets``, each aligned with
    ``peaks``.
    """
    import neurokit2 as nk

    with warnings.catch_warnings():  # neurokit warns per beat it cannot delineate: counted below
        warnings.simplefilter("ignore")
        _, waves = nk.ecg_delineate(clean, rpeaks=np.asarray(peaks), sampling_rate=int(round(fs)),
                                    method=method)
    out = {}
    for key in ("P_Onsets", "P_Peaks", "R_Onsets", "R_Offsets", "T_Offsets"):
        v = np.asarray(waves.get(f"ECG_{key}", [np.nan] * len(peaks)), dtype=np.float64)
        out[key] = v if v.size == len(peaks) else np.full(len(peaks), np.nan)
    return out


def intervals(waves: dict[str, NDArray[np.float64]], fs: float, rr_mean_ms: float) -> dict[str, float]:
    """Medians over beats of PR, QRS and QT (ms), QTc (Bazett, Fridericia) and P-wave presence.

    PR is P onset to QRS onset (the PR interval), QRS is QRS onset to offset, QT is QRS onset to
    T end; beats where a wave is missing do not count for that interval (never invented).
    QTc Bazett = QT / sqrt(RR s), Fridericia = QT / RR^(1/3), with the record's mean RR.
    """
    ms = 1000.0 / fs
    pr = (waves["R_Onsets"] - waves["P_Onsets"]) * ms
    qrs = (waves["R_Offsets"] - waves["R_Onsets"]) * ms
    qt = (waves["T_Offsets"] - waves["R_Onsets"]) * ms
    # a delineator's wrong-order fiducials (offset before onset, a P onset after the QRS) are misses
    pr[(pr <= 0) | (pr > 600)] = np.nan
    qrs[(qrs <= 0) | (qrs > 300)] = np.nan
    qt[(qt <= 0) | (qt > 800)] = np.nan

    def med(v: NDArray[np.float64]) -> float:
        return float(np.nanmedian(v)) if np.isfinite(v).any() else math.nan

    def iqr(v: NDArray[np.float64]) -> float:
        f = v[np.isfinite(v)]
        return float(np.subtract(*np.percentile(f, [75, 25]))) if f.size >= 3 else math.nan

    n = len(pr)
    qt_med = med(qt)
    rr_s = rr_mean_ms / 1000.0
    return {"pr_ms": med(pr), "pr_iqr_ms": iqr(pr), "qrs_ms": med(qrs), "qt_ms": qt_med,
            "qtc_bazett_ms": qt_med / math.sqrt(rr_s) if rr_s > 0 else math.nan,
            "qtc_fridericia_ms": qt_med / rr_s ** (1.0 / 3.0) if rr_s > 0 else math.nan,
            "p_share": float(np.isfinite(waves["P_Peaks"]).mean()) if n else math.nan,
            "n_delineated": float(np.isfinite(qrs).sum())}


def shares_columns(flat: NDArray[np.float64], noisy: NDArray[np.float64]) -> dict[str, Any]:
    """The record-level flat/noise columns from per-lead shares."""
    return {"flat_share": float(flat.mean()), "noise_share": float(noisy.mean()),
            "flat_leads": [LEADS[i] for i in np.flatnonzero(flat > BAD_LEAD_SHARE)],
            "noisy_leads": [LEADS[i] for i in np.flatnonzero(noisy > BAD_LEAD_SHARE)]}
