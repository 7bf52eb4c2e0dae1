"""Each phenotype's signature is measurable in its simulated signal by an independent delineator.

R peaks come from neurokit2 (``ecg_clean`` + ``ecg_peaks`` on lead II); intervals and voltages are
measured on the median of the R-aligned beats with simple textbook rules (spatial-velocity QRS
boundaries, P peak before R, Sokolow-Lyon), never from the generator's own parameters. Each test
compares a handful of seeded records with the phenotype against seeded normal records.
"""
from __future__ import annotations

import warnings

import neurokit2 as nk
import numpy as np
import pytest
from scipy.signal import butter, find_peaks, sosfiltfilt

from ecgkit.synth.beats import make_morphology
from ecgkit.synth.render import simulate_record

FS = 500
SEEDS = range(6)
_SOS = butter(4, [0.5, 40.0], btype="bandpass", fs=FS, output="sos")


def _record(labels: set[str], seed: int) -> np.ndarray:
    morph = make_morphology(labels, np.random.default_rng([seed, 1]))
    return simulate_record(labels, morph, np.random.default_rng([seed, 2]), fs=FS, seconds=10).signal


def _clean(sig: np.ndarray) -> np.ndarray:
    """Zero-phase Butterworth band-pass 0.5-40 Hz (keeps QRS amplitudes and widths, removes wander,
    powerline and most muscle noise)."""
    return sosfiltfilt(_SOS, sig, axis=-1)


def _r_peaks(clean: np.ndarray) -> np.ndarray:
    """neurokit2 R peaks on the spatial magnitude of all 12 leads (every QRS is a positive peak there,
    whatever its axis: ectopic beats can be small in any single lead)."""
    magnitude = np.sqrt((clean ** 2).sum(axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_peaks(magnitude, sampling_rate=FS)
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


def _rr_s(sig: np.ndarray) -> np.ndarray:
    return np.diff(_r_peaks(_clean(sig))) / FS


def _median_beat(sig: np.ndarray, pre_s: float = 0.45, post_s: float = 0.5) -> np.ndarray:
    """(12, n) median of beats aligned on neurokit's R peaks, only beats of the dominant RR shape."""
    clean = _clean(sig)
    r = _r_peaks(clean)
    pre, post = int(pre_s * FS), int(post_s * FS)
    r = r[(r > pre) & (r < clean.shape[1] - post)]
    beats = np.stack([clean[:, i - pre: i + post] for i in r])
    return np.median(beats, axis=0)


def _qrs_ms(med: np.ndarray, pre_s: float = 0.45) -> float:
    """QRS duration from the spatial velocity of the median beat: the span around the R peak where it
    stays above 10% of its QRS maximum (gaps under 20 ms bridged, so the T wave is not included)."""
    sv = np.convolve(np.sqrt((np.diff(med, axis=1) ** 2).sum(axis=0)), np.ones(5) / 5, mode="same")
    r = int(pre_s * FS)
    above = sv > 0.1 * sv[r - int(0.1 * FS): r + int(0.1 * FS)].max()
    gap = int(0.02 * FS)
    lo = r
    while lo > 0 and above[max(lo - gap, 0): lo].any():
        lo -= 1
    hi = r
    while hi < sv.size - 1 and above[hi: hi + gap].any():
        hi += 1
    return (hi - lo) / FS * 1000


def _pr_peak_ms(med: np.ndarray, pre_s: float = 0.45) -> float:
    """P peak to R peak in lead II: the largest positive deflection (over the isoelectric median)
    between 420 and 80 ms before R."""
    r = int(pre_s * FS)
    seg = med[1, r - int(0.42 * FS): r - int(0.08 * FS)]
    seg = seg - np.median(seg)
    return (seg.size - int(np.argmax(seg))) / FS * 1000 + 80


def _p_polarity(med: np.ndarray, lead: int, pre_s: float = 0.45) -> float:
    r = int(pre_s * FS)
    seg = med[lead, r - int(0.30 * FS): r - int(0.08 * FS)]
    seg = seg - np.median(seg)
    return float(seg[np.argmax(np.abs(seg))])


def _sokolow_lyon(med: np.ndarray, pre_s: float = 0.45) -> float:
    r = int(pre_s * FS)
    w = slice(r - int(0.1 * FS), r + int(0.12 * FS))
    return max(-med[6, w].min(), -med[7, w].min()) + max(med[10, w].max(), med[11, w].max())


def test_afib_rr_irregular_vs_sinus() -> None:
    cv_af = [np.std(rr) / np.mean(rr) for rr in (_rr_s(_record({"AFIB"}, s)) for s in SEEDS)]
    cv_sr = [np.std(rr) / np.mean(rr) for rr in (_rr_s(_record(set(), s)) for s in SEEDS)]
    assert min(cv_af) > 0.10
    assert max(cv_sr) < 0.06


def test_first_degree_av_block_prolongs_pr() -> None:
    pr_avb = [_pr_peak_ms(_median_beat(_record({"1AVB"}, s))) for s in SEEDS]
    pr_norm = [_pr_peak_ms(_median_beat(_record(set(), s))) for s in SEEDS]
    assert min(pr_avb) > 200
    assert max(pr_norm) < 200


@pytest.mark.parametrize("label,low", [("RBBB", 120), ("LBBB", 120), ("IVCD", 110), ("NIVCD", 105)])
def test_wide_qrs_conduction_defects(label: str, low: float) -> None:
    wide = [_qrs_ms(_median_beat(_record({label}, s))) for s in SEEDS[:4]]
    normal = [_qrs_ms(_median_beat(_record(set(), s))) for s in SEEDS[:4]]
    assert min(wide) >= low, wide
    assert max(normal) < 110, normal


@pytest.mark.parametrize("label", ["IRBBB", "ILBBB"])
def test_incomplete_bundle_branch_blocks_are_intermediate(label: str) -> None:
    widths = [_qrs_ms(_median_beat(_record({label}, s))) for s in SEEDS[:4]]
    assert all(95 <= w < 125 for w in widths), widths


def test_rbbb_v1_terminal_positive_and_lbbb_v1_negative() -> None:
    for s in SEEDS[:3]:
        rb = _median_beat(_record({"RBBB"}, s))
        lb = _median_beat(_record({"LBBB"}, s))
        r = int(0.45 * FS)
        # RBBB: late (R') positive deflection in V1 and a wide S in I (60-120 ms after onset region)
        assert rb[6, r: r + int(0.12 * FS)].max() > 0.3
        assert rb[0, r: r + int(0.12 * FS)].min() < -0.1
        # LBBB: V1 dominated by a deep negative deflection, V6 by a positive one
        assert -lb[6, r - 50: r + 60].min() > lb[6, r - 50: r + 60].max()
        assert lb[11, r - 50: r + 60].max() > -lb[11, r - 50: r + 60].min()


def test_lvh_sokolow_lyon_voltage() -> None:
    lvh = [_sokolow_lyon(_median_beat(_record({"LVH"}, s))) for s in SEEDS]
    normal = [_sokolow_lyon(_median_beat(_record(set(), s))) for s in SEEDS]
    assert min(lvh) > 3.5, lvh
    assert max(normal) < 3.5, normal


def test_rvh_dominant_r_in_v1_and_right_axis() -> None:
    for s in SEEDS[:4]:
        med = _median_beat(_record({"RVH"}, s))
        r = int(0.45 * FS)
        w = slice(r - 40, r + 50)
        assert med[6, w].max() > -med[6, w].min()  # R > S in V1
        axis = np.degrees(np.arctan2(med[5, w].sum(), med[0, w].sum()))
        assert axis > 90


def test_ectopic_atrial_rhythm_inverts_inferior_p() -> None:
    for s in SEEDS[:4]:
        ear = _median_beat(_record({"EAR"}, s))
        sr = _median_beat(_record(set(), s))
        for lead in (1, 2, 5):  # II, III, aVF
            assert _p_polarity(ear, lead) < 0
        assert _p_polarity(sr, 1) > 0


def _premature(rr: np.ndarray) -> np.ndarray:
    med = np.median(rr)
    return np.flatnonzero((rr[:-1] < 0.85 * med) & (rr[1:] > 1.1 * rr[:-1]))


def test_vpc_premature_beats_with_pause() -> None:
    n_vpc = [len(_premature(_rr_s(_record({"VPC"}, s)))) for s in SEEDS]
    n_sr = [len(_premature(_rr_s(_record(set(), s)))) for s in SEEDS]
    assert min(n_vpc) >= 1
    assert max(n_sr) == 0


def test_ventricular_bigeminy_alternates() -> None:
    for s in SEEDS[:4]:
        rr = _rr_s(_record({"VBIG", "VPC"}, s))
        short, long_ = rr[0::2], rr[1::2]
        if short.mean() > long_.mean():
            short, long_ = long_, short
        assert short.mean() < 0.8 * long_.mean()
        assert int((rr[:-1] < 0.75 * rr[1:]).sum()) >= 3  # >= 3 premature beats, each with a pause


def test_vt_run_of_fast_beats() -> None:
    for s in SEEDS[:4]:
        rr = _rr_s(_record({"VT"}, s))
        fast = rr < 0.6  # > 100/min
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], fast.astype(int), [0]]))))[::2]
        assert runs.max() >= 2  # >= 2 consecutive fast RR = >= 3 beats


def test_third_degree_block_slow_wide_escape() -> None:
    for s in SEEDS[:3]:
        sig = _record({"3AVB"}, s)
        # ventricular rate from the tall peaks of the spatial magnitude (neurokit's adaptive detector
        # also fires on the dissociated P waves when QRS complexes are this sparse)
        clean = _clean(sig)
        magnitude = np.sqrt((clean ** 2).sum(axis=0))
        peaks, _ = find_peaks(magnitude, height=0.5 * magnitude.max(), distance=int(0.3 * FS))
        assert 60 / np.median(np.diff(peaks) / FS) < 50
        assert _qrs_ms(_median_beat(sig, pre_s=0.45, post_s=0.5)) >= 120


def test_second_degree_block_drops_beats() -> None:
    for s in SEEDS[:4]:
        rr = _rr_s(_record({"2AVB"}, s))
        assert rr.max() > 1.4 * rr.min()


def test_apc_premature_narrow_beat() -> None:
    for s in SEEDS[:4]:
        rr = _rr_s(_record({"APC"}, s))
        assert rr.min() < 0.85 * np.median(rr)


def test_flutter_regular_fast_without_isoelectric_baseline() -> None:
    for s in SEEDS[:3]:
        sig = _record({"AFL"}, s)
        clean = _clean(sig)
        # flutter waves: a spectral peak at 4-6 Hz in lead II that sinus rhythm lacks
        f = np.fft.rfftfreq(clean.shape[1], 1 / FS)
        spec = np.abs(np.fft.rfft(clean[1]))
        band = (f > 4) & (f < 6)
        sr = np.abs(np.fft.rfft(_clean(_record(set(), s))[1]))
        assert spec[band].max() / spec[(f > 0.5) & (f < 40)].mean() > sr[band].max() / sr[(f > 0.5) & (f < 40)].mean()
