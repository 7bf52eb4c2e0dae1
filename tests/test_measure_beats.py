"""Beat fusion and the pause search of the measure stage, on hand-made beat lists (fs 500 Hz)."""
from __future__ import annotations

import numpy as np

from ecgkit import _measure_beats as mb

FS = 500.0


def test_fuse_beats_adds_secondary_only_beats_once_per_refractory_period() -> None:
    # 1500 and 1555 (110 ms apart) are one wide QRS the secondary detector took at two of its peaks
    got = mb.fuse_beats(np.array([1000, 2000]), np.array([1000, 1500, 1555, 2000]), FS)
    assert got.tolist() == [1000, 1500, 2000]
    # 250 ms apart they are two beats only if not a lone QRS + T pair: here both are secondary-only,
    # so both stay (the T-wave rule pairs one lone beat of each detector)
    got = mb.fuse_beats(np.array([1000, 3000]), np.array([1000, 2000, 2125, 3000]), FS)
    assert got.tolist() == [1000, 2000, 2125, 3000]


def test_fuse_beats_drops_the_later_of_a_lone_pair_200_to_360_ms_apart() -> None:
    # primary alone at 2000, secondary alone at 2150 (300 ms later): a QRS and its T wave, one beat
    got = mb.fuse_beats(np.array([1000, 2000, 3000]), np.array([1000, 2150, 3000]), FS)
    assert got.tolist() == [1000, 2000, 3000]


def test_fuse_beats_keeps_edge_beats_only_where_both_detectors_agree() -> None:
    n = 5000
    got = mb.fuse_beats(np.array([50, 1000, 2000, 4980]), np.array([1000, 2000, 4975]), FS, n_samples=n)
    assert got.tolist() == [1000, 2000, 4980]  # 50 (0.1 s, primary only) goes; 4980/4975 agree


def test_fill_pauses_takes_a_beat_the_second_detector_finds_in_other_leads() -> None:
    signal = np.zeros((12, 3500))
    peaks = np.array([0, 500, 1000, 2000, 2500, 3000])  # RR 1000 in a median of 500: a pause
    usable = np.ones(12, dtype=bool)
    none = lambda x: np.zeros(0, np.int64)  # noqa: E731 - the measured lead's detector sees nothing there
    second = lambda x: np.array([1500], np.int64)  # noqa: E731 - a wide early beat the second one finds
    got = mb.fill_pauses(signal, FS, peaks, 1, usable, none, detect_second=second)
    assert got.tolist() == [0, 500, 1000, 1500, 2000, 2500, 3000]
    # without the second detector the pause stays (a true pause has no QRS in any lead)
    assert mb.fill_pauses(signal, FS, peaks, 1, usable, none).tolist() == peaks.tolist()
    # one lead is not enough: PAUSE_MIN_LEADS (2) must show it
    only_v1 = np.zeros(12, dtype=bool)
    only_v1[[1, 6]] = True  # II (the measured lead) and V1
    got = mb.fill_pauses(signal, FS, peaks, 1, only_v1, none, detect_second=second)
    assert got.tolist() == peaks.tolist()


def _beats_signal(qrs: list[int], slow: list[int], n: int = 5000) -> np.ndarray:
    """12 leads: a sharp bump (QRS, 10 ms wide) at ``qrs``, a slow one (T wave, 60 ms) at ``slow``."""
    t = np.arange(n)
    x = sum(np.exp(-0.5 * ((t - q) / (0.01 * FS)) ** 2) for q in qrs)
    x = x + sum(0.5 * np.exp(-0.5 * ((t - s) / (0.06 * FS)) ** 2) for s in slow)
    return np.tile(x, (12, 1))


def test_drop_t_waves_drops_a_slow_primary_only_beat_in_the_t_window() -> None:
    qrs = [500, 1000, 1500, 2000, 2500]
    sig = _beats_signal(qrs, [1150])  # a T wave 300 ms after the QRS at 1000
    primary = np.array([500, 1000, 1150, 1500, 2000, 2500])
    got = mb.drop_t_waves(sig, FS, primary, np.array(qrs))
    assert got.tolist() == qrs
    # as fast as a QRS, it is a beat (an early premature one), and stays
    fast = _beats_signal(qrs + [1150], [])
    assert mb.drop_t_waves(fast, FS, primary, np.array(qrs)).tolist() == primary.tolist()
    # found by both detectors it stays whatever its speed
    both = np.array(qrs + [1150])
    assert mb.drop_t_waves(sig, FS, primary, both).tolist() == primary.tolist()


def _bump(t: np.ndarray, at: float, width_s: float, mv: float) -> np.ndarray:
    return mv * np.exp(-0.5 * ((t - at) / (width_s * FS)) ** 2)


def test_drop_p_waves_removes_p_waves_one_detector_took_for_beats() -> None:
    # complete heart block: escape QRS (1.2 mV) every 1.4 s, P waves (0.15 mV) at their own 0.75 s;
    # the primary detector takes the P waves away from the QRS for beats too, the secondary does not
    t = np.arange(6000)
    qrs = [400, 1100, 1800, 2500, 3200, 3900, 4600, 5300]
    p_waves = [775, 1525, 2275, 2975, 3725, 4475, 5225]
    x = sum(_bump(t, q, 0.012, 1.2) for q in qrs) + sum(_bump(t, p, 0.02, 0.15) for p in p_waves)
    sig = np.tile(x, (12, 1))
    primary = np.sort(np.array(qrs + p_waves))
    a, b = mb.drop_p_waves(sig, FS, primary, np.array(qrs), velocity=None)
    assert a.tolist() == qrs and b.tolist() == qrs
    # a lone beat of QRS size (a premature ventricular beat only one detector sees) stays
    x2 = x + _bump(t, 2150, 0.03, 1.0)
    a, _ = mb.drop_p_waves(np.tile(x2, (12, 1)), FS, np.sort(np.r_[primary, 2150]), np.array(qrs))
    assert 2150 in a.tolist() and not set(p_waves) & set(a.tolist())


def test_drop_p_waves_lets_the_qrs_behind_a_p_wave_through_fusion() -> None:
    # a slurred wide QRS (LBBB): the primary detector takes each P wave 170 ms before the QRS, the
    # secondary the QRS; fusing keeps the primary's beat within 200 ms, so the P waves must go first
    t = np.arange(5000)
    qrs = [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500]
    p_waves = [q - 85 for q in qrs]
    x = sum(_bump(t, q, 0.03, 1.0) for q in qrs) + sum(_bump(t, p, 0.02, 0.15) for p in p_waves)
    sig = np.tile(x, (12, 1))
    a, b = mb.drop_p_waves(sig, FS, np.array(p_waves), np.array(qrs))
    assert mb.fuse_beats(a, b, FS).tolist() == qrs


def _none(x: np.ndarray) -> np.ndarray:
    return np.zeros(0, np.int64)


def test_fill_pauses_finds_an_r_on_t_beat_no_detector_finds_from_the_spatial_velocity() -> None:
    # sinus QRS every 400 ms with a T wave 300 ms after each; one premature ventricular beat 280 ms
    # after the QRS at 2000 (on its T wave), the sinus beat at 2400 hidden: a compensatory pause
    t = np.arange(5000)
    sinus = [400, 800, 1200, 1600, 2000, 2800, 3200, 3600, 4000, 4400]
    x = sum(_bump(t, q, 0.01, 1.2) + _bump(t, q + 150, 0.05, 0.4) for q in sinus)
    pvc = x + _bump(t, 2140, 0.025, 1.5)
    usable = np.ones(12, dtype=bool)
    got = mb.fill_pauses(np.tile(pvc, (12, 1)), FS, np.array(sinus), 1, usable, _none)
    added = sorted(set(got.tolist()) - set(sinus))
    assert len(added) == 1 and abs(added[0] - 2140) <= 20  # at its steepest slope, before its apex
    # a step of the baseline in one electrode (V3) in that pause is not a beat
    pop = np.tile(x, (12, 1))
    pop[8, 2140:] += 1.5
    assert mb.fill_pauses(pop, FS, np.array(sinus), 1, usable, _none).tolist() == sinus
    # nor a left-arm electrode's step: lead I, and a third of it in V1-V6 through the central terminal
    # (7 leads: the lead test passes; the velocity is up for a few ms only, not a QRS's 30-50)
    limb = np.tile(x, (12, 1))
    limb[0, 2140:] += 1.5
    limb[6:, 2140:] -= 0.5
    assert mb.fill_pauses(limb, FS, np.array(sinus), 1, usable, _none).tolist() == sinus
    # nor a wave as wide as a beat in one lead only (one electrode's artefact: the lead test)
    one = np.tile(x, (12, 1))
    one[8] += _bump(t, 2140, 0.025, 3.0)
    assert mb.fill_pauses(one, FS, np.array(sinus), 1, usable, _none).tolist() == sinus
    # nor is a peaked T wave that follows every beat alike (the T waves' velocity is the reference)
    peaked = sum(_bump(t, q, 0.01, 1.2) + _bump(t, q + 150, 0.012, 0.9) for q in sinus)
    assert mb.fill_pauses(np.tile(peaked, (12, 1)), FS, np.array(sinus), 1, usable, _none).tolist() == sinus


def test_dominant_beats_keeps_the_slower_shape_when_a_vt_run_fills_the_record() -> None:
    # 4 sinus beats (RR 900 ms) around a run of 8 ventricular beats (RR 350 ms): by RR alone the run
    # is the record's rhythm (its beats are not premature against the median RR); by shape the sinus
    # class comes slower, and intervals are read on it
    sinus = [250, 700]
    run = [875 + 175 * k for k in range(8)]
    after = [run[-1] + 450, run[-1] + 900]
    peaks = np.array(sinus + run + after)
    shapes = np.array([[1.0, 1.2, 0.4, 0.8, 1.1, 1.3, 1.2, 0.9]] * len(peaks))
    shapes[2:10] = [0.3, 2.0, 1.8, 1.5, 0.6, 0.4, 0.5, 0.7]  # another electrical axis
    assert mb.dominant_beats(peaks).tolist() != sinus + after
    assert mb.dominant_beats(peaks, shapes).tolist() == sinus + after
    # one shape: the RR rule alone (an ectopic beat and its compensatory pause left out)
    one = np.array([0, 500, 1000, 1300, 2000, 2500, 3000])
    assert mb.dominant_beats(one, np.ones((7, 8))).tolist() == [0, 500, 1000, 2000, 2500, 3000]
