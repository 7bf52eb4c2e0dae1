"""Render one synthetic record: beat templates placed at beat times, atrial activity, noise, 12 leads.

See :mod:`ecgkit.synth.beats` for the model. The output is a :class:`SimulatedEcg` with the 10 s
signal, a 1.2 s median beat (as GE MUSE stores one) and the global measurements a 12SL-style
analysis would print (rates, PR, QRS, QT, axes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ecgkit.synth.beats import (_P_PRE_S, _QRS_PRE_S, _T_HALF_S, LEAD_VECTORS, P_APC, P_ECTOPIC, P_SINUS,
                                QRS_CONDUCTED, QRS_ESCAPE, Beats, Morphology, _render_wave, simulate_beats)
from ecgkit.synth.difficulty import EASY, Difficulty, borderline, misplace_leads, motion_artifact

_MARGIN_S = 1.5  # beats are simulated from -1.5 s so the first visible beat has its P and T
_MEDIAN_S = 1.2  # GE MUSE median beat length
_MEDIAN_QRS_ONSET_S = 0.42  # QRS onset inside the median beat (the MUSE example has QOnset 211 / 600)


@dataclass(frozen=True)
class SimulatedEcg:
    """One simulated record.

    Attributes
    ----------
    signal : NDArray[np.float32], shape (12, n_samples)
        Millivolts in :data:`ecgkit.record.LEADS` order; III, aVR, aVL, aVF derived from I and II.
    median : NDArray[np.float32], shape (12, round(1.2 * fs))
        Noise-free representative beat, millivolts, QRS onset at 0.42 s.
    measurements : dict
        ``ventricular_rate``, ``atrial_rate`` (bpm), ``pr_ms`` (None without conducted P waves),
        ``qrs_ms``, ``qt_ms``, ``qtc_ms``, ``p_axis``, ``r_axis``, ``t_axis`` (degrees),
        ``qrs_onsets`` (sample indices of visible QRS onsets), ``qrs_kinds``, ``p_onsets``, ``p_kinds``,
        and the median-beat fiducials ``p_onset``, ``p_offset``, ``q_onset``, ``q_offset``,
        ``t_offset`` (samples in the median beat).
    """

    signal: NDArray[np.float32]
    median: NDArray[np.float32]
    measurements: dict[str, Any]


def derive_limb_leads(sim8: NDArray[np.floating]) -> NDArray[np.float32]:
    """Expand (8, n) leads I, II, V1-V6 to the 12 standard leads (III, aVR, aVL, aVF derived)."""
    i, ii = sim8[0], sim8[1]
    out = np.empty((12, sim8.shape[1]), dtype=np.float32)
    out[0], out[1] = i, ii
    out[2] = ii - i
    out[3] = -(i + ii) / 2
    out[4] = i - ii / 2
    out[5] = ii - i / 2
    out[6:] = sim8[2:]
    return out


def _qt_s(morph: Morphology, rr_s: float, kind: int) -> float:
    qt = morph.qtc_s * math.sqrt(min(max(rr_s, 0.3), 2.0))
    return min(max(qt, 0.30), 0.48) + max(morph.qrs_ms[kind] - 90.0, 0.0) / 1000.0


def _place(buf: NDArray[np.float32], tmpl: NDArray[np.float32], start: int) -> None:
    n = tmpl.shape[1]
    lo, hi = max(start, 0), min(start + n, buf.shape[1])
    if hi > lo:
        buf[:, lo:hi] += tmpl[:, lo - start: hi - start]


def _atrial_baseline(beats: Beats, rng: np.random.Generator, t: NDArray[np.float64],
                     d: Difficulty = EASY) -> NDArray[np.float32]:
    """Fibrillatory (4-9 Hz) or flutter (sawtooth) atrial activity as (8, n) leads; zeros otherwise.

    Beyond ``easy`` a borderline share has fine fibrillation (10-50 uV) or small flutter waves.
    """
    if beats.atrial == "fib":
        f = np.zeros_like(t)
        for _ in range(3):
            f += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(4.0, 9.0) * t + rng.uniform(0, 2 * np.pi)
                                                + rng.uniform(0.5, 2.0) * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t))
        fine = borderline(rng, d)
        f *= (rng.uniform(0.01, 0.05) if fine else rng.uniform(0.05, 0.10)) / max(float(np.std(f)) * 2.0, 1e-9)
        vec = np.array([-0.1, 0.45, 0.9])
    elif beats.atrial == "flutter":
        origin = beats.qrs_times[0] - 0.22
        phase = np.mod((t - origin) * beats.f_rate_hz, 1.0)
        # slow downslope, sharp upstroke: the negative sawtooth of typical flutter in II, III, aVF
        f = np.where(phase < 0.8, -phase / 0.8, -1.0 + (phase - 0.8) / 0.2) + 0.5
        f *= rng.uniform(0.06, 0.12) if borderline(rng, d) else rng.uniform(0.15, 0.25)
        vec = np.array([0.05, 1.0, -0.35])
    else:
        return np.zeros((8, t.size), dtype=np.float32)
    return (LEAD_VECTORS @ vec)[:, None].astype(np.float32) * f[None, :].astype(np.float32)


def _noise(rng: np.random.Generator, t: NDArray[np.float64], level: float,
           powerline_share: float = 0.5) -> NDArray[np.float32]:
    """Baseline wander, powerline interference and muscle noise for the 8 simulated leads (mV).

    float32 throughout: this is the most expensive step of a record (SIMD sin and normal draws).
    """
    n = t.size
    t32 = t.astype(np.float32)
    freqs = rng.uniform(0.05, 0.45, size=(8, 2, 1)).astype(np.float32)
    amps = rng.uniform(0.0, 0.12 * level, size=(8, 2, 1)).astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, size=(8, 2, 1)).astype(np.float32)
    wander = (amps * np.sin(np.float32(2 * np.pi) * freqs * t32[None, None, :] + phases)).sum(axis=1)
    mains = rng.choice([50.0, 60.0])
    pl_amp = rng.uniform(0.0, 0.02 * level) if rng.random() < powerline_share else 0.0
    out = wander
    if pl_amp:
        out += np.float32(pl_amp) * np.sin(np.float32(2 * np.pi * mains) * t32 + np.float32(rng.uniform(0, 2 * np.pi)))
    muscle = rng.standard_normal(size=(8, n), dtype=np.float32)
    muscle *= np.float32(rng.uniform(0.003, 0.015 * level))
    out += muscle
    return out


def _axis_deg(sig12: NDArray[np.float32], lo: int, hi: int) -> int:
    """Frontal axis from the net area of leads I and aVF over samples [lo, hi)."""
    a_i = float(sig12[0, lo:hi].sum())
    a_f = float(sig12[5, lo:hi].sum())
    return int(round(math.degrees(math.atan2(a_f, a_i))))


def simulate_record(labels: set[str], morph: Morphology, rng: np.random.Generator, *, fs: float = 500.0,
                    seconds: float = 10.0, noise: float = 1.0, difficulty: Difficulty = EASY) -> SimulatedEcg:
    """Simulate one 12-lead record for a patient's morphology and this record's labels.

    Parameters
    ----------
    labels : set of str
        ECG-P18 labels true in this record (rhythm, conduction and ectopy act here).
    morph : Morphology
        The patient's wave shapes (:func:`ecgkit.synth.beats.make_morphology`).
    rng : numpy.random.Generator
        A generator seeded per record.
    fs : float
        Sampling frequency, Hz.
    seconds : float
        Duration, seconds.
    noise : float
        Scale of baseline wander, powerline and muscle noise (0 gives a clean signal), multiplied by
        ``difficulty.noise``.
    difficulty : Difficulty
        Beyond ``easy`` also: electrode-motion artefacts and lead misplacements in a share of records,
        borderline rhythm and ectopy (see :mod:`ecgkit.synth.difficulty`). Pass the same one given to
        :func:`ecgkit.synth.beats.make_morphology`.
    """
    d = difficulty
    beats = simulate_beats(labels, rng, seconds, d, morph.extra)
    n_out = int(round(seconds * fs))
    n_buf = n_out + int(round(2 * _MARGIN_S * fs)) + int(fs)  # +1 s so late templates fit
    buf = np.zeros((8, n_buf), dtype=np.float32)
    t_buf = np.arange(n_buf) / fs - _MARGIN_S

    def idx(t_s: float) -> int:
        return int(round((t_s + _MARGIN_S) * fs))

    p_templates = {}
    for p_kind, wave in ((P_SINUS, morph.p_sinus), (P_ECTOPIC, morph.p_ectopic), (P_APC, morph.p_apc)):
        if p_kind in beats.p_kinds:
            p_templates[p_kind] = _render_wave(wave, fs, _P_PRE_S, 0.18)
    for t, p_kind in zip(beats.p_times, beats.p_kinds):
        _place(buf, p_templates[p_kind], idx(t - _P_PRE_S))
    q_templates, t_templates = {}, {}
    for kind in set(beats.qrs_kinds):
        q_templates[kind] = _render_wave(morph.qrs[kind], fs, _QRS_PRE_S, 0.3)
        t_templates[kind] = _render_wave(morph.t[kind], fs, _T_HALF_S, 2 * _T_HALF_S)
    q_t = beats.qrs_times
    for j, (t, kind) in enumerate(zip(q_t, beats.qrs_kinds)):
        rr = q_t[j] - q_t[j - 1] if j > 0 else (q_t[1] - q_t[0] if len(q_t) > 1 else 1.0)
        _place(buf, q_templates[kind], idx(t - _QRS_PRE_S))
        t_peak = t + _qt_s(morph, rr, kind) - 0.10
        _place(buf, t_templates[kind], idx(t_peak - _T_HALF_S))
    buf += _atrial_baseline(beats, rng, t_buf, d)
    lo = idx(0.0)
    sim8 = buf[:, lo: lo + n_out]
    level = noise * d.noise
    if level > 0:
        sim8 = sim8 + _noise(rng, t_buf[lo: lo + n_out], level, d.powerline_share)
    misplaced: str | None = None
    if not d.is_easy:
        if level > 0 and rng.random() < d.motion_share:
            sim8 = sim8 + motion_artifact(rng, t_buf[lo: lo + n_out].astype(np.float32), level / d.noise)
        if rng.random() < d.misplacement_share:
            misplaced = "la_ra" if rng.random() < 0.7 else "v1_v2"
            sim8 = misplace_leads(sim8, misplaced)
    signal = derive_limb_leads(sim8)

    # --- median beat and measurements -------------------------------------------------------------
    visible = [(t, k) for t, k in zip(q_t, beats.qrs_kinds) if 0.0 <= t < seconds]
    rrs = np.diff([t for t, _ in visible]) if len(visible) > 1 else np.array([60.0 / beats.atrial_rate_bpm])
    rr_mean = float(np.mean(rrs))
    main_kind = QRS_ESCAPE if "3AVB" in labels else QRS_CONDUCTED
    n_med = int(round(_MEDIAN_S * fs))
    med8 = np.zeros((8, n_med + int(fs)), dtype=np.float32)
    q_on = int(round(_MEDIAN_QRS_ONSET_S * fs))
    conducted_p = beats.atrial in ("sinus", "ectopic") and "3AVB" not in labels
    p_on: int | None = None
    if conducted_p:
        p_on = q_on - int(round(beats.pr_s * fs))
        p_wave = morph.p_ectopic if beats.atrial == "ectopic" else morph.p_sinus
        _place(med8, _render_wave(p_wave, fs, _P_PRE_S, 0.18), p_on - int(round(_P_PRE_S * fs)))
    _place(med8, _render_wave(morph.qrs[main_kind], fs, _QRS_PRE_S, 0.3), q_on - int(round(_QRS_PRE_S * fs)))
    qt = _qt_s(morph, rr_mean, main_kind)
    t_peak = q_on + int(round((qt - 0.10) * fs))
    _place(med8, _render_wave(morph.t[main_kind], fs, _T_HALF_S, 2 * _T_HALF_S), t_peak - int(round(_T_HALF_S * fs)))
    median = derive_limb_leads(med8[:, :n_med] if misplaced is None else misplace_leads(med8[:, :n_med], misplaced))
    qrs_ms = morph.qrs_ms[main_kind]
    q_off = q_on + int(round(qrs_ms / 1000 * fs))
    t_off = q_on + int(round(qt * fs))
    p_off = None if p_on is None else p_on + int(round(0.09 * fs))
    meas: dict[str, Any] = {
        "ventricular_rate": int(round(60.0 / rr_mean)),
        "atrial_rate": int(round(beats.atrial_rate_bpm)),
        "pr_ms": None if not conducted_p else int(round(beats.pr_s * 1000)),
        "qrs_ms": int(round(qrs_ms)),
        "qt_ms": int(round(qt * 1000)),
        "qtc_ms": int(round(qt / math.sqrt(rr_mean) * 1000)),
        "p_axis": None if p_on is None else _axis_deg(median, p_on, p_off or p_on),
        "r_axis": _axis_deg(median, q_on, q_off),
        "t_axis": _axis_deg(median, q_off, t_off),
        "qrs_onsets": [int(round(t * fs)) for t, _ in visible],
        "qrs_kinds": [int(k) for _, k in visible],
        "p_onsets": [int(round(t * fs)) for t in beats.p_times if 0.0 <= t < seconds],
        "p_kinds": [k for t, k in zip(beats.p_times, beats.p_kinds) if 0.0 <= t < seconds],
        "p_onset": p_on, "p_offset": p_off, "q_onset": q_on, "q_offset": q_off, "t_offset": t_off,
        "misplaced_leads": misplaced,
    }
    return SimulatedEcg(signal=np.ascontiguousarray(signal), median=np.ascontiguousarray(median),
                        measurements=meas)
