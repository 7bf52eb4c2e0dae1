"""Beat fusion and the pause search of the measure stage, on hand-made beat lists (fs 500 Hz)."""
from __future__ import annotations

import numpy as np

from ecgkit import _measure_signal as ms

FS = 500.0


def test_fuse_beats_adds_secondary_only_beats_once_per_refractory_period() -> None:
    # 1500 and 1555 (110 ms apart) are one wide QRS the secondary detector took at two of its peaks
    got = ms.fuse_beats(np.array([1000, 2000]), np.array([1000, 1500, 1555, 2000]), FS)
    assert got.tolist() == [1000, 1500, 2000]
    # 250 ms apart they are two beats only if not a lone QRS + T pair: here both are secondary-only,
    # so both stay (the T-wave rule pairs one lone beat of each detector)
    got = ms.fuse_beats(np.array([1000, 3000]), np.array([1000, 2000, 2125, 3000]), FS)
    assert got.tolist() == [1000, 2000, 2125, 3000]


def test_fuse_beats_drops_the_later_of_a_lone_pair_200_to_360_ms_apart() -> None:
    # primary alone at 2000, secondary alone at 2150 (300 ms later): a QRS and its T wave, one beat
    got = ms.fuse_beats(np.array([1000, 2000, 3000]), np.array([1000, 2150, 3000]), FS)
    assert got.tolist() == [1000, 2000, 3000]


def test_fuse_beats_keeps_edge_beats_only_where_both_detectors_agree() -> None:
    n = 5000
    got = ms.fuse_beats(np.array([50, 1000, 2000, 4980]), np.array([1000, 2000, 4975]), FS, n_samples=n)
    assert got.tolist() == [1000, 2000, 4980]  # 50 (0.1 s, primary only) goes; 4980/4975 agree


def test_fill_pauses_takes_a_beat_the_second_detector_finds_in_other_leads() -> None:
    signal = np.zeros((12, 3500))
    peaks = np.array([0, 500, 1000, 2000, 2500, 3000])  # RR 1000 in a median of 500: a pause
    usable = np.ones(12, dtype=bool)
    none = lambda x: np.zeros(0, np.int64)  # noqa: E731 - the measured lead's detector sees nothing there
    second = lambda x: np.array([1500], np.int64)  # noqa: E731 - a wide early beat the second one finds
    got = ms.fill_pauses(signal, FS, peaks, 1, usable, none, detect_second=second)
    assert got.tolist() == [0, 500, 1000, 1500, 2000, 2500, 3000]
    # without the second detector the pause stays (a true pause has no QRS in any lead)
    assert ms.fill_pauses(signal, FS, peaks, 1, usable, none).tolist() == peaks.tolist()
    # one lead is not enough: PAUSE_MIN_LEADS (2) must show it
    only_v1 = np.zeros(12, dtype=bool)
    only_v1[[1, 6]] = True  # II (the measured lead) and V1
    assert ms.fill_pauses(signal, FS, peaks, 1, only_v1, none, detect_second=second).tolist() == peaks.tolist()


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
    got = ms.drop_t_waves(sig, FS, primary, np.array(qrs))
    assert got.tolist() == qrs
    # as fast as a QRS, it is a beat (an early premature one), and stays
    fast = _beats_signal(qrs + [1150], [])
    assert ms.drop_t_waves(fast, FS, primary, np.array(qrs)).tolist() == primary.tolist()
    # found by both detectors it stays whatever its speed
    both = np.array(qrs + [1150])
    assert ms.drop_t_waves(sig, FS, primary, both).tolist() == primary.tolist()
