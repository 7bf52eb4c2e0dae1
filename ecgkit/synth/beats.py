"""Beat-by-beat 12-lead ECG model: Gaussian-sum P, QRS and T waves of a cardiac dipole, projected on leads.

Each wave is a sum of Gaussian bumps in time, each carrying a 3-D dipole vector (x left, y inferior,
z anterior, in mV). A lead's voltage is the dot product of the dipole with its lead vector, so the
axis, the precordial R/S progression and the bundle-branch morphologies come from where the dipole
points rather than from 12 hand-drawn shapes. Only the 8 independent leads (I, II, V1-V6) are
simulated (with their own noise); III, aVR, aVL, aVF are derived with Einthoven's and Goldberger's
equations, as an electrocardiograph does, so that a reader that derives them from I and II (GE MUSE
stores 8 leads) gets back the same 12 leads.

Each wave kind (sinus P, ectopic P, conducted QRS-T, ventricular QRS-T, escape QRS-T) is rendered
once per record as a short template and added at every beat's time with a slice add: the per-record
cost is a few Gaussian templates plus one slice add per beat, never per-sample Python.

Morphology (axis, amplitudes, QRS width, the ectopic focus) depends on the patient only
(:class:`Morphology`, drawn from a patient-seeded generator), so a patient's ECGs look alike;
rhythm, ectopy timing and noise are drawn per record. A :class:`~ecgkit.synth.difficulty.Difficulty`
other than ``easy`` widens the variation between patients, adds age and sex effects and draws a
share of findings near their defining boundary (see :mod:`ecgkit.synth.difficulty`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ecgkit.synth.difficulty import EASY, Difficulty, borderline

#: Simulated (independent) leads, in the order of :data:`LEAD_VECTORS` rows.
SIM_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
_PRECORDIAL_ANGLE_DEG = (115.0, 95.0, 75.0, 50.0, 20.0, 0.0)  # V1..V6, from +x (left) toward +z (anterior)
_PRECORDIAL_GAIN = (1.0, 1.4, 1.5, 1.4, 1.2, 1.0)  # chest electrodes sit closer to the heart


def _lead_vectors() -> NDArray[np.float64]:
    rows = [(1.0, 0.0, 0.0), (0.5, math.sqrt(3) / 2, 0.0)]
    for ang, gain in zip(_PRECORDIAL_ANGLE_DEG, _PRECORDIAL_GAIN):
        a = math.radians(ang)
        rows.append((gain * math.cos(a), -0.05 * gain, gain * math.sin(a)))
    return np.array(rows)


#: (8, 3) lead vectors of :data:`SIM_LEADS` in the (left, inferior, anterior) frame.
LEAD_VECTORS: NDArray[np.float64] = _lead_vectors()

# Wave kinds (template keys).
P_SINUS, P_ECTOPIC, P_APC = "p_sinus", "p_ectopic", "p_apc"
QRS_CONDUCTED, QRS_VPC, QRS_ESCAPE = 0, 1, 2

_QRS_PRE_S = 0.03  # template samples before QRS onset
_P_PRE_S = 0.02
_T_HALF_S = 0.25


@dataclass(frozen=True)
class Wave:
    """Gaussian components of one wave: centres and widths in seconds, dipole vectors in mV."""

    centre_s: NDArray[np.float64]  # (k,)
    sigma_s: NDArray[np.float64]  # (k,)
    vector_mv: NDArray[np.float64]  # (k, 3)

    def end_s(self) -> float:
        """Time where the last component has decayed (centre + 2.5 sigma), seconds after the origin."""
        return float(np.max(self.centre_s + 2.5 * self.sigma_s))


def _wave(*comps: tuple[float, float, tuple[float, float, float] | NDArray[np.float64]]) -> Wave:
    return Wave(np.array([c[0] for c in comps]), np.array([c[1] for c in comps]),
                np.array([np.asarray(c[2], dtype=float) for c in comps]).reshape(-1, 3))


def _rot_frontal(v: NDArray[np.float64] | tuple[float, float, float], deg: float) -> NDArray[np.float64]:
    """Rotate a dipole in the frontal (x, y) plane; positive angles turn it toward +y (rightward axis)."""
    v = np.asarray(v, dtype=float)
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]])


@dataclass(frozen=True)
class Morphology:
    """A patient's wave shapes, fixed across their records.

    Attributes
    ----------
    p_sinus, p_ectopic, p_apc : Wave
        Atrial waves, times relative to P onset.
    qrs : dict of int to Wave
        QRS complexes by kind (conducted, VPC, escape), times relative to QRS onset.
    t : dict of int to Wave
        T waves by kind, times relative to the T peak.
    qrs_ms : dict of int to float
        QRS duration per kind (ms).
    """

    p_sinus: Wave
    p_ectopic: Wave
    p_apc: Wave
    qrs: dict[int, Wave]
    t: dict[int, Wave]
    qrs_ms: dict[int, float]
    amplitude: float
    qtc_s: float
    extra: dict[str, float] = field(default_factory=dict)


def _render_wave(wave: Wave, fs: float, pre_s: float, length_s: float) -> NDArray[np.float32]:
    """Render a wave as an (8, n) template starting ``pre_s`` before the wave's origin."""
    t = np.arange(int(round(length_s * fs))) / fs - pre_s
    g = np.exp(-0.5 * ((t[None, :] - wave.centre_s[:, None]) / wave.sigma_s[:, None]) ** 2)  # (k, n)
    vcg = wave.vector_mv.T @ g  # (3, n)
    return (LEAD_VECTORS @ vcg).astype(np.float32)  # (8, n)


def sokolow_lyon_mv(template8: NDArray[np.floating]) -> float:
    """Sokolow-Lyon voltage of an (8, n) template in :data:`SIM_LEADS` order: max S(V1,V2) + max R(V5,V6), mV."""
    s = max(-float(template8[2].min()), -float(template8[3].min()), 0.0)
    r = max(float(template8[6].max()), float(template8[7].max()), 0.0)
    return s + r


def make_morphology(labels: set[str], rng: np.random.Generator, difficulty: Difficulty = EASY,
                    age: float | None = None, sex: str | None = None) -> Morphology:
    """Draw a patient's wave shapes given the conduction/hypertrophy labels they carry.

    Parameters
    ----------
    labels : set of str
        ECG-P18 labels present in the patient (only LVH, RVH, RBBB, LBBB, IRBBB, ILBBB, IVCD, NIVCD
        and EAR change the morphology; rhythm labels act in :func:`simulate_beats`).
    rng : numpy.random.Generator
        A generator seeded per patient.
    difficulty : Difficulty
        ``easy`` draws exactly as the original generator; others add variation and borderline shapes.
    age, sex : optional
        Years and ``"M"``/``"F"``; used when ``difficulty.demographics`` (voltage falls with age and is
        higher in men, the axis turns left with age, PR lengthens, women have a longer QTc and a
        faster rate).
    """
    d = difficulty
    easy = d.is_easy
    amp = float(rng.uniform(0.8, 1.2))
    axis = float(rng.normal(0.0, 12.0))
    width = float(rng.uniform(0.95, 1.08))  # QRS time scale
    extra: dict[str, float] = {}
    if not easy:
        amp = float(np.exp(rng.normal(0.0, d.amplitude_sd))) if d.amplitude_sd > 0 else amp
        axis = float(rng.normal(0.0, d.axis_sd_deg))
        width = float(rng.uniform(0.92, 1.12))
        if d.demographics and age is not None:
            amp *= (1.08 if sex == "M" else 0.9) * max(0.6, 1.0 - 0.004 * (age - 50.0))
            axis -= 0.4 * (age - 50.0)  # leftward with age
            extra["pr_offset_s"] = 0.0004 * (age - 50.0)
            extra["hr_offset_bpm"] = 4.0 if sex == "F" else 0.0
            extra["qtc_offset_s"] = 0.015 if sex == "F" else 0.0

    # --- P waves (times from P onset) -------------------------------------------------------------
    p_amp = float(rng.uniform(0.10, 0.18))
    p_sinus = _wave((0.045, 0.017, np.array([0.55, 0.8, 0.15]) * p_amp))
    p_ectopic = _wave((0.045, 0.017, np.array([0.35, -0.85, 0.2]) * p_amp))  # inverted in II, III, aVF
    if not easy and "EAR" in labels and borderline(rng, d):  # low atrial focus: flat, barely negative inferior P
        p_ectopic = _wave((0.045, 0.017, np.array([0.5, -0.2, 0.2]) * p_amp))
    p_apc = _wave((0.035, 0.013, np.array([0.3, 0.5, 0.3]) * p_amp),
                  (0.075, 0.013, np.array([-0.1, -0.35, -0.3]) * p_amp))  # notched/biphasic

    # --- conducted QRS (times from QRS onset, then scaled by `width`) -------------------------------
    septal = (0.012, 0.005, np.array([-0.12, 0.04, 0.22]))
    main_v = _rot_frontal(np.array([0.9, 0.85, -0.35]) * amp, axis)
    terminal = (0.062, 0.008, np.array([-0.25, -0.25, -0.35]) * amp)
    t_vec = _rot_frontal(np.array([0.5, 0.55, 0.15]) * amp * float(rng.uniform(0.5, 0.8)), axis)
    comps: list[tuple[float, float, NDArray[np.float64]]] = []
    lvh_border = False
    if "LVH" in labels:
        shift = 25.0 if easy else float(rng.uniform(0.0, 25.0))
        main_v = _rot_frontal(np.array([0.95, 0.55, -0.6]) * amp, axis - shift)  # left axis, posterior
        if rng.random() < (0.6 if easy else 0.4):  # strain: repolarisation abnormality opposite the QRS
            t_vec = _rot_frontal(np.array([-0.3, 0.05, 0.25]) * amp, axis)
        lvh_border = borderline(rng, d)
    if "RVH" in labels:
        rvh_v = np.array([-0.35, 1.0, 0.6]) * amp * float(rng.uniform(0.9, 1.2))  # right axis, anterior
        mix = 1.0 if easy or not borderline(rng, d) else float(rng.uniform(0.45, 0.75))
        main_v = mix * rvh_v + (1.0 - mix) * main_v
        terminal = (0.062, 0.008, np.array([0.15, -0.1, -0.25]) * amp)
        t_vec = np.array([0.2, 0.5, -0.25]) * amp * 0.5
    if "LBBB" in labels or "ILBBB" in labels:
        septal = (0.015, 0.008, np.array([0.15, 0.0, -0.1]))  # left-to-right septum lost: no q in I/V6
    if "LBBB" in labels:
        late = 0.100 if easy or not borderline(rng, d) else float(rng.uniform(0.085, 0.100))
        comps = [septal,
                 (0.045, 0.016, _rot_frontal(np.array([0.8, -0.1, -0.65]) * amp, axis)),
                 (late, 0.017, _rot_frontal(np.array([0.9, 0.2, -0.5]) * amp, axis))]
        t_vec = _rot_frontal(np.array([-0.35, -0.1, 0.35]) * amp, axis)  # secondary ST-T
    elif "ILBBB" in labels:
        late = 0.072 if easy or not borderline(rng, d) else float(rng.uniform(0.072, 0.088))
        comps = [septal,
                 (0.040, 0.012, _rot_frontal(np.array([0.6, 0.4, -0.4]) * amp, axis)),
                 (late, 0.012, _rot_frontal(np.array([0.6, 0.5, -0.3]) * amp, axis))]
    else:
        comps = [septal, (0.040, 0.009, main_v), terminal]
    if easy:
        if "RBBB" in labels:  # slow right-anterior terminal force: R' in V1, wide S in I and V6
            comps.append((0.100, 0.016, np.array([-0.35, 0.05, 0.85]) * amp))
            t_vec = t_vec + np.array([0.15, 0.0, -0.35]) * amp
        elif "IRBBB" in labels:
            comps.append((0.080, 0.010, np.array([-0.35, 0.05, 0.6]) * amp))
    else:
        comps, t_vec = _right_bundle_continuum(labels, rng, d, comps, t_vec, amp)
    if "IVCD" in labels:
        border = not easy and borderline(rng, d)
        width *= float(rng.uniform(1.30, 1.48)) if border else float(rng.uniform(1.50, 1.60))
    elif "NIVCD" in labels:
        border = not easy and borderline(rng, d)
        width *= float(rng.uniform(1.28, 1.40)) if border else float(rng.uniform(1.42, 1.52))
    elif not easy and not labels & {"LBBB", "ILBBB", "RBBB"} and borderline(rng, d, positive=False):
        width *= float(rng.uniform(1.15, 1.32))  # a wide-ish normal QRS (100-118 ms)
    qrs_c = _wave(*[(c * width, s * width, v) for c, s, v in comps])

    # LVH must meet the Sokolow-Lyon criterion (> 3.5 mV), the others stay clearly below it.
    tmpl = _render_wave(qrs_c, 500.0, _QRS_PRE_S, 0.3)
    sl = sokolow_lyon_mv(tmpl)
    if easy:
        target = float(rng.uniform(3.8, 5.0)) if "LVH" in labels else min(sl, float(rng.uniform(1.4, 2.8)))
    elif "LVH" in labels:
        target = float(rng.uniform(3.1, 3.7)) if lvh_border else float(rng.uniform(3.5, 5.0))
    elif borderline(rng, d, positive=False):
        target = float(rng.uniform(3.0, 3.9))  # high voltage without LVH (young, thin)
    else:
        target = float(np.clip(rng.normal(2.2, 0.55) * amp, 0.8, 3.4))
    if abs(sl - target) > 1e-6:
        qrs_c = Wave(qrs_c.centre_s, qrs_c.sigma_s, qrs_c.vector_mv * (target / sl))
        t_vec = t_vec * (1.0 if "LVH" not in labels else 1.4)

    # --- ventricular ectopic focus (VPC, VT): wide, bizarre, large -----------------------------------
    u = rng.normal(size=3)
    u /= np.linalg.norm(u)
    u2 = u + rng.normal(scale=0.4, size=3)
    u2 /= np.linalg.norm(u2)
    v_amp = float(rng.uniform(1.3, 2.0))
    qrs_v = _wave((0.045, 0.020, u * v_amp), (0.095, 0.020, u2 * v_amp * 0.6))
    t_v = _wave((-0.02, 0.05, -u * v_amp * 0.3), (0.0, 0.035, -u * v_amp * 0.2))
    # --- ventricular escape (3AVB): wide, LBBB-like -----------------------------------------------
    qrs_e = _wave((0.015, 0.008, np.array([0.15, 0.0, -0.1])),
                  (0.045, 0.014, _rot_frontal(np.array([1.0, 0.3, -0.8]) * amp * 1.4, axis)),
                  (0.095, 0.015, _rot_frontal(np.array([0.9, 0.6, -0.5]) * amp * 1.4, axis)))
    t_e = _wave((-0.02, 0.05, np.array([-0.3, -0.1, 0.3]) * amp * 0.6), (0.0, 0.035, np.array([-0.2, 0, 0.2]) * amp))

    t_c = _wave((-0.03, 0.05, t_vec * 0.6), (0.0, 0.035, t_vec * 0.5))
    qrs = {QRS_CONDUCTED: qrs_c, QRS_VPC: qrs_v, QRS_ESCAPE: qrs_e}
    qrs_ms = {k: 1000.0 * max(w.end_s() - max(0.0, float(np.min(w.centre_s - 2.5 * w.sigma_s))), 0.0)
              for k, w in qrs.items()}
    return Morphology(p_sinus=p_sinus, p_ectopic=p_ectopic, p_apc=p_apc, qrs=qrs,
                      t={QRS_CONDUCTED: t_c, QRS_VPC: t_v, QRS_ESCAPE: t_e}, qrs_ms=qrs_ms,
                      amplitude=amp, qtc_s=float(rng.uniform(0.39, 0.43)) + extra.get("qtc_offset_s", 0.0),
                      extra={"axis_deg": axis, **extra})


def _right_bundle_continuum(labels: set[str], rng: np.random.Generator, d: Difficulty,
                            comps: list[tuple[float, float, NDArray[np.float64]]], t_vec: NDArray[np.float64],
                            amp: float) -> tuple[list[tuple[float, float, NDArray[np.float64]]], NDArray[np.float64]]:
    """Terminal right-ventricular delay on a continuum s in [0, 1]: IRBBB s < 0.45, RBBB s > 0.55.

    A borderline IRBBB reaches 0.4-0.75 and a borderline RBBB 0.3-0.6, so the two overlap; a
    borderline normal gets the small rSr' of the normal variant.
    """
    comps = list(comps)
    if "RBBB" in labels or "IRBBB" in labels:
        if "RBBB" in labels:
            s = float(rng.uniform(0.3, 0.6)) if borderline(rng, d) else float(rng.uniform(0.6, 1.0))
        else:
            s = float(rng.uniform(0.4, 0.75)) if borderline(rng, d) else float(rng.uniform(0.0, 0.4))
        comps.append((0.080 + 0.02 * s, 0.010 + 0.006 * s, np.array([-0.35, 0.05, 0.6 + 0.25 * s]) * amp))
        if "RBBB" in labels:
            t_vec = t_vec + np.array([0.15, 0.0, -0.35]) * amp * s
    elif not labels & {"LBBB", "ILBBB"} and borderline(rng, d, positive=False):
        comps.append((0.072, 0.007, np.array([-0.25, 0.03, 0.3]) * amp))  # rSr' normal variant
    return comps, t_vec


# ------------------------------------------------------------------------------------------------
# Rhythm: beat times
# ------------------------------------------------------------------------------------------------
@dataclass
class Beats:
    """Event times of one record (seconds, may extend beyond the visible window).

    ``p_times``/``p_kinds``: atrial depolarisations (P onsets) and their wave kind; ``qrs_times``/
    ``qrs_kinds``: QRS onsets and kind (:data:`QRS_CONDUCTED`, :data:`QRS_VPC`, :data:`QRS_ESCAPE`).
    ``atrial``: ``"sinus"``, ``"ectopic"``, ``"fib"`` or ``"flutter"``; ``f_rate_hz``: flutter rate.
    """

    p_times: list[float]
    p_kinds: list[str]
    qrs_times: list[float]
    qrs_kinds: list[int]
    atrial: str
    pr_s: float
    atrial_rate_bpm: float
    f_rate_hz: float = 0.0


def _sinus_times(rng: np.random.Generator, hr: float, t0: float, t1: float,
                 arrhythmia: float = 1.0) -> NDArray[np.float64]:
    rr = 60.0 / hr
    n = int((t1 - t0) / rr) + 3
    resp = 0.03 * arrhythmia * np.sin(2 * np.pi * rng.uniform(0.15, 0.3) * np.arange(n) * rr + rng.uniform(0, 2 * np.pi))
    intervals = rr * (1.0 + resp + rng.normal(0, 0.01 * arrhythmia, n))
    return t0 + rng.uniform(0, rr) + np.concatenate([[0.0], np.cumsum(intervals[:-1])])


def _pr_s(labels: set[str], rng: np.random.Generator, d: Difficulty, extra: dict[str, float]) -> float:
    if d.is_easy:
        return float(rng.uniform(0.24, 0.34)) if "1AVB" in labels else float(rng.uniform(0.13, 0.19))
    if "1AVB" in labels:  # borderline: 190-215 ms, some of it below the 200 ms criterion
        pr = float(rng.uniform(0.190, 0.215)) if borderline(rng, d) else float(rng.uniform(0.205, 0.32))
    else:
        pr = float(rng.uniform(0.185, 0.210)) if borderline(rng, d, positive=False) else float(rng.uniform(0.12, 0.195))
    return max(0.10, pr + extra.get("pr_offset_s", 0.0) * (0.0 if "1AVB" in labels else 1.0))


def simulate_beats(labels: set[str], rng: np.random.Generator, seconds: float, difficulty: Difficulty = EASY,
                   extra: dict[str, float] | None = None) -> Beats:
    """Draw the beat times of one record for its rhythm, AV-conduction and ectopy labels.

    Times cover ``[-1.5, seconds + 1.5]`` so that waves straddling the edges are cut, not missing.
    Ectopic events (VPC, APC, VBIG, VT) are placed inside ``[0.5, seconds - 0.5]`` so they are visible.
    ``extra`` is the patient's :attr:`Morphology.extra` (age/sex offsets of PR and rate).
    """
    d = difficulty
    extra = extra or {}
    arr = d.sinus_arrhythmia
    t0, t1 = -1.5, seconds + 1.5
    pr = _pr_s(labels, rng, d, extra)
    hr_off = extra.get("hr_offset_bpm", 0.0)
    p_t: list[float] = []
    p_k: list[str] = []
    q_t: list[float] = []
    q_k: list[int] = []
    f_rate = 0.0
    if "AFIB" in labels:
        atrial = "fib"
        hr = float(rng.uniform(65, 135))
        cv = float(rng.uniform(0.15, 0.30)) if d.is_easy else float(rng.uniform(0.10, 0.30))
        shape = 1.0 / cv**2
        rrs = rng.gamma(shape, (60.0 / hr) / shape, size=int((t1 - t0) * hr / 60 * 2) + 10)
        rrs = np.clip(rrs, 0.33, 2.0)
        q_t = list(t0 + rng.uniform(0, 0.5) + np.cumsum(rrs))
        q_t = [t for t in q_t if t < t1]
        q_k = [QRS_CONDUCTED] * len(q_t)
        atrial_rate = float(rng.uniform(350, 500))
    elif "AFL" in labels:
        atrial = "flutter"
        f_rate = float(rng.uniform(250, 340)) / 60.0
        waves = t0 + rng.uniform(0, 1 / f_rate) + np.arange(int((t1 - t0) * f_rate) + 2) / f_rate
        ratio_choice = rng.choice(["2", "4", "3", "var"], p=[0.5, 0.25, 0.1, 0.15])
        i = 0
        while i < len(waves):
            q_t.append(float(waves[i]) + 0.22)
            q_k.append(QRS_CONDUCTED)
            i += int(rng.choice([2, 3, 4])) if ratio_choice == "var" else int(ratio_choice)
        atrial_rate = f_rate * 60.0
    elif "3AVB" in labels:
        atrial = "sinus"
        atrial_rate = float(rng.uniform(70, 90))
        p_t = list(_sinus_times(rng, atrial_rate, t0, t1, arr))
        p_k = [P_SINUS] * len(p_t)
        v_rate = float(rng.uniform(35, 45))
        q_t = list(t0 + rng.uniform(0, 60 / v_rate) + np.arange(int((t1 - t0) * v_rate / 60) + 2) * 60 / v_rate)
        q_k = [QRS_ESCAPE] * len(q_t)
    else:
        atrial = "ectopic" if "EAR" in labels else "sinus"
        kind = P_ECTOPIC if atrial == "ectopic" else P_SINUS
        atrial_rate = float(rng.uniform(55, 95)) if "2AVB" not in labels else float(rng.uniform(70, 95))
        atrial_rate += hr_off
        p_t = list(_sinus_times(rng, atrial_rate, t0, t1, arr))
        p_k = [kind] * len(p_t)
        if "2AVB" in labels:  # Mobitz I: PR lengthens by decreasing steps, then one P is not conducted
            group = int(rng.integers(3, 6))
            steps = np.array([0.0, 0.10, 0.16, 0.19, 0.21])
            offset = int(rng.integers(0, group))
            for i, t in enumerate(p_t):
                pos = (i + offset) % group
                if pos < group - 1:
                    q_t.append(t + pr + float(steps[pos]))
                    q_k.append(QRS_CONDUCTED)
        else:
            q_t = [t + pr for t in p_t]
            q_k = [QRS_CONDUCTED] * len(q_t)
    _add_ectopy(labels, rng, seconds, p_t, p_k, q_t, q_k, pr, d)
    return Beats(p_t, p_k, q_t, q_k, atrial, pr, atrial_rate, f_rate)


def _visible_slots(q_t: list[float], seconds: float) -> list[int]:
    return [i for i in range(1, len(q_t) - 1) if 0.6 < q_t[i] < seconds - 0.6]


#: Shortest coupling (s) of a ventricular premature beat or VT run to the beat before it: after the
#: ventricles' effective refractory period (200-300 ms) and the T-wave apex; an earlier beat (R on T)
#: is rare and dangerous, not the common bigeminy or VPC of an archive.
_MIN_COUPLING_S = 0.35


def _add_ectopy(labels: set[str], rng: np.random.Generator, seconds: float, p_t: list[float], p_k: list[str],
                q_t: list[float], q_k: list[int], pr: float, d: Difficulty = EASY) -> None:
    """Insert VPCs, bigeminy, a VT run or APCs into the beat lists, in place.

    Beyond ``easy``: VT runs are brief (3 beats) in the borderline share and up to 11 beats (sustained
    through much of the record) otherwise; VPCs are sparse (1) to frequent (up to 5); a borderline APC
    comes only 10-20 % early.
    """
    if "3AVB" in labels:
        return
    if "VT" in labels:  # a run of 3-8 wide beats at 120-200/min, then the underlying rhythm resumes
        slots = _visible_slots(q_t, seconds - 2.0)
        if slots:
            i = int(rng.choice(slots[: max(1, len(slots) // 2 + 1)]))
            if d.is_easy:
                n = int(rng.integers(3, 9))
                rr_vt = 60.0 / float(rng.uniform(120, 170))
            else:
                n = 3 if borderline(rng, d) else int(rng.integers(4, 12))
                rr_vt = 60.0 / float(rng.uniform(110, 190))
            start = q_t[i - 1] + max(_MIN_COUPLING_S, 0.55 * (q_t[i] - q_t[i - 1]))
            run = [start + k * rr_vt for k in range(n)]
            end = run[-1] + max(0.6, rr_vt * 1.5)
            keep = [j for j in range(len(q_t)) if not (start - 0.1 < q_t[j] < end)]
            q_t[:], q_k[:] = [q_t[j] for j in keep], [q_k[j] for j in keep]
            keep_p = [j for j in range(len(p_t)) if not (start - 0.25 < p_t[j] < end - pr)]
            p_t[:], p_k[:] = [p_t[j] for j in keep_p], [p_k[j] for j in keep_p]
            q_t.extend(run)
            q_k.extend([QRS_VPC] * n)
            _sort(q_t, q_k)
            _sort(p_t, p_k)
    vpc_slots: list[int] = []
    slots = [i for i in _visible_slots(q_t, seconds) if q_k[i] == QRS_CONDUCTED and q_k[i - 1] == QRS_CONDUCTED
             and q_k[i + 1] == QRS_CONDUCTED]
    if "VBIG" in labels:
        first = slots[0] if slots else 1
        vpc_slots = [i for i in range(first, len(q_t) - 1, 2) if q_k[i] == QRS_CONDUCTED]
    elif "VPC" in labels and slots:
        n = min(len(slots), int(rng.choice([1, 1, 2, 3] if d.is_easy else [1, 1, 1, 2, 3, 4, 5])))
        vpc_slots = sorted(int(s) for s in rng.choice(slots, size=n, replace=False))
        vpc_slots = [s for k, s in enumerate(vpc_slots) if k == 0 or s - vpc_slots[k - 1] > 1]
    for i in vpc_slots:  # premature wide beat, sinus beat i (and its P) hidden: compensatory pause
        rr = q_t[i] - q_t[i - 1]
        # coupled at 0.55-0.70 of the RR, and not inside the previous beat's ventricular refractory
        # period (~300 ms; clinical coupling intervals are 350-600 ms): at least _MIN_COUPLING_S, as
        # the VT run's first beat, while still premature (at most 0.9 of the RR)
        t_v = q_t[i - 1] + min(max(float(rng.uniform(0.55, 0.70)) * rr, _MIN_COUPLING_S), 0.9 * rr)
        p_t[:], p_k[:] = _drop_near(p_t, p_k, q_t[i] - pr, 0.05)
        q_t[i], q_k[i] = t_v, QRS_VPC
    if "APC" in labels:
        slots = [i for i in _visible_slots(q_t, seconds) if q_k[i] == QRS_CONDUCTED and q_k[i - 1] == QRS_CONDUCTED
                 and q_k[i + 1] == QRS_CONDUCTED]
        if slots:
            i = int(rng.choice(slots))
            rr = q_t[i] - q_t[i - 1]
            early = (0.60, 0.72) if d.is_easy or not borderline(rng, d) else (0.80, 0.90)
            shift = (1.0 - float(rng.uniform(*early))) * rr  # premature by this much; sinus node reset
            pr_apc = float(rng.uniform(0.13, 0.17))
            has_p = bool(p_t)
            if has_p:
                p_t[:], p_k[:] = _drop_near(p_t, p_k, q_t[i] - pr, 0.05)
            for j in range(i, len(q_t)):
                q_t[j] -= shift
            later = [j for j in range(len(p_t)) if p_t[j] > q_t[i] + shift - pr - 0.05]
            for j in later:
                p_t[j] -= shift
            if has_p:
                p_t.append(q_t[i] - pr_apc)
                p_k.append(P_APC)
                _sort(p_t, p_k)


def _drop_near(times: list[float], kinds: list, t: float, tol: float) -> tuple[list[float], list]:
    keep = [j for j in range(len(times)) if abs(times[j] - t) > tol]
    return [times[j] for j in keep], [kinds[j] for j in keep]


def _sort(times: list[float], kinds: list) -> None:
    order = sorted(range(len(times)), key=times.__getitem__)
    times[:], kinds[:] = [times[j] for j in order], [kinds[j] for j in order]
