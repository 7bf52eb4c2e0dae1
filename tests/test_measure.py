"""measure + audit on a synthetic cohort whose generator knows the truth, and on the real fixtures.

Tolerances (stated here and in BENCHMARKS.md, "measure"): heart rate within 5 bpm, PR within 25 ms
and QRS within 30 ms of the generator's values, for >= 90 % of the records of each phenotype (in
groups under 10 records, all but one). ``ecgkit measure`` measures intervals on one lead (II) with
``nk.ecg_delineate(method="prominence")``; on the synthetic generator that single-lead QRS misses
the late forces of bundle branch blocks and IVCD (RBBB/LBBB/IRBBB/IVCD/NIVCD underestimated by
35-75 ms) and reads the inverted ectopic P of EAR poorly, so the single-lead QRS check leaves out
those conduction phenotypes (the global QRS, ``qrs_global_ms``, is checked on all of them). PR is
read on all leads at once (``global_pr``), so EAR's inverted P is checked too; the PR check leaves
out AF/AFL/3AVB, where PR is undefined. A first-degree block whose long PR puts the P wave on the
preceding T wave is read from the valley between the two (``_p_onset_on_t``).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgkit import _measure_signal as ms
from ecgkit.auditing import audit, flag_scores
from ecgkit.ingest import ScanConfig, scan
from ecgkit.io import read_record
from ecgkit.labels import label_manifest
from ecgkit.manifest import MEASURE_COLUMNS, read_manifest, write_manifest
from ecgkit.measuring import MeasureConfig, measure, measure_signal
from ecgkit.record import LEADS
from ecgkit.synth import LABELS, pr_error_ms, synth_cohort

HR_TOL_BPM, PR_TOL_MS, QRS_TOL_MS = 5.0, 25.0, 30.0
_QRS_UNRELIABLE = {"RBBB", "LBBB", "IRBBB", "IVCD", "NIVCD", "3AVB"}  # 3AVB: a wide escape QRS
_PR_UNDEFINED = {"AFIB", "AFL", "3AVB"}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(measured + labelled manifest, truth with true intervals, stated labels) at label noise 0.05."""
    root = tmp_path_factory.mktemp("synth")
    truth = synth_cohort(50, root, fmt="wfdb", seed=21, label_noise=0.05)
    manifest = label_manifest(scan([root], ScanConfig(workers=1)))
    measured = measure(manifest, MeasureConfig(delineate=True, workers=1))
    intervals = pd.read_parquet(root / "truth_intervals.parquet")
    return measured, truth.merge(intervals, on="record_id"), pd.read_parquet(root / "labels_stated.parquet")


def _phenotypes(truth: pd.DataFrame) -> dict[str, pd.Series]:
    groups = {"normal": truth[list(LABELS)].sum(axis=1) == 0}
    groups.update({lab: truth[lab] == 1 for lab in LABELS})
    return {k: v for k, v in groups.items() if v.sum() >= 5}


def _enough(share_ok: float, n: int) -> bool:
    """>= 90 % within tolerance; with fewer than 10 records, all but one."""
    return bool(share_ok * n >= n - max(1, math.floor(0.1 * n)) - 1e-9)


@pytest.fixture(scope="module")
def enriched(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(measured manifest, truth with true intervals) of a cohort rich in the rhythms that are hard to
    count: flutter, complete and second-degree block, VT runs, bigeminy (``--ratios``), no label noise."""
    from ecgkit.synth.phenotypes import parse_ratios

    root = tmp_path_factory.mktemp("enriched")
    truth = synth_cohort(60, root, fmt="wfdb", seed=22, label_noise=0.0,
                         ratios=parse_ratios("AFL=6,3AVB=8,2AVB=8,VT=8,VBIG=6,IVCD=8,APC=6"))
    manifest = label_manifest(scan([root], ScanConfig(workers=1)))
    measured = measure(manifest, MeasureConfig(delineate=True, workers=1))
    return measured, truth.merge(pd.read_parquet(root / "truth_intervals.parquet"), on="record_id")


def test_measured_hr_pr_qrs_agree_with_truth_per_phenotype(synthetic: tuple) -> None:
    measured, truth, _ = synthetic
    checked = _check_per_phenotype(measured, truth)
    assert {"normal", "LVH", "AFIB"} <= set(checked)
    # in AF and flutter no PR is invented for most beats: the P-wave share is what the audit reads
    m = measured.drop(columns=list(LABELS)).merge(truth, on="record_id", suffixes=("", "_true"))
    afib = m[m["AFIB"] == 1]
    assert len(afib) == 0 or (afib["rr_cv"] > 0.1).mean() >= 0.9


def test_rhythms_hard_to_count_agree_with_truth_per_phenotype(enriched: tuple) -> None:
    # complete block (P waves taken for beats), VT runs and bigeminy (beats the lead does not show),
    # flutter, Mobitz I (the PR against its range). Known gap, stated in BENCHMARKS.md (session 27):
    # bigeminy with one fixed coupling whose premature beats no detector finds in any lead (a vertical
    # axis: large in II only, and slower there than the sinus QRS) is counted at half its rate; one
    # patient's 3 records here, so HR on VBIG and VPC is held at 75 % on this cohort, not 90 %
    measured, truth = enriched
    # QRS: the global (8-lead) QRS; lead II's delineated QRS reads bigeminy's wide beats at times
    checked = _check_per_phenotype(measured, truth, hr_share={"VBIG": 0.75, "VPC": 0.75}, lead_qrs=False)
    assert {"3AVB", "VT", "VBIG", "AFL", "2AVB"} <= set(checked), checked


def _check_per_phenotype(measured: pd.DataFrame, truth: pd.DataFrame,
                         hr_share: dict[str, float] | None = None, lead_qrs: bool = True) -> list[str]:
    # phenotypes are the true labels (the manifest's label columns hold the noisy statements)
    m = measured.drop(columns=list(LABELS)).merge(truth, on="record_id", suffixes=("", "_true"))
    assert len(m) == len(truth) and m["measure_reason"].isna().mean() >= 0.9
    checked = []
    for name, sel in _phenotypes(m).items():
        s = m[sel.to_numpy()]
        hr_ok = ((s["hr_bpm"] - s["hr_bpm_true"]).abs() <= HR_TOL_BPM).mean()
        if hr_share and name in hr_share:
            assert hr_ok >= hr_share[name], f"{name}: HR within {HR_TOL_BPM} bpm on {hr_ok:.0%} of {len(s)}"
        else:
            assert _enough(hr_ok, len(s)), f"{name}: HR within {HR_TOL_BPM} bpm on {hr_ok:.0%} of {len(s)}"
        # records that also carry a phenotype excluded from a check are left out of that check
        pr_set = s[s["pr_ms_true"].notna() & (s[sorted(_PR_UNDEFINED)].sum(axis=1) == 0)]
        if len(pr_set) >= 5:
            # against the record's range of PRs (Mobitz I lengthens it beat by beat; else one value)
            pr_err = pr_error_ms(pr_set["pr_ms"], pr_set["pr_min_ms"], pr_set["pr_max_ms"])
            pr_ok = (np.abs(pr_err) <= PR_TOL_MS).mean()
            assert _enough(pr_ok, len(pr_set)), f"{name}: PR within {PR_TOL_MS} ms on {pr_ok:.0%}"
        qrs_set = s[s[sorted(_QRS_UNRELIABLE)].sum(axis=1) == 0]
        if lead_qrs and len(qrs_set) >= 5:
            qrs_ok = ((qrs_set["qrs_ms"] - qrs_set["qrs_ms_true"]).abs() <= QRS_TOL_MS).mean()
            assert _enough(qrs_ok, len(qrs_set)), f"{name}: QRS within {QRS_TOL_MS} ms on {qrs_ok:.0%}"
        # the global QRS of the 8 independent leads: every phenotype, bundle branch blocks included
        g_ok = ((s["qrs_global_ms"] - s["qrs_ms_true"]).abs() <= QRS_TOL_MS).mean()
        assert _enough(g_ok, len(s)), f"{name}: global QRS within {QRS_TOL_MS} ms on {g_ok:.0%} of {len(s)}"
        checked.append(name)
    return checked


def test_audit_flags_flipped_labels(synthetic: tuple) -> None:
    measured, truth, stated = synthetic
    result = audit(measured)
    scores = flag_scores(result, truth, stated)
    # measured on this cohort (seed 21, 50 patients, noise 0.05): precision 0.9+, recall ~0.6; the
    # rules cover only labels whose contradiction the measurements can show, and mostly the
    # direction "stated but absent"
    assert scores["flipped"] >= 20 and scores["flags"] >= 10
    assert scores["precision"] >= 0.8, scores
    assert scores["recall"] >= 0.45, scores
    flags = result.flags
    assert list(flags.columns) == ["record_id", "label", "rule", "stated", "values", "hr_bpm", "rr_cv",
                                   "pr_ms", "qrs_ms", "quality"]
    per_record = result.manifest.set_index("record_id")["audit_flags"]
    for rid, lab in zip(flags["record_id"], flags["label"]):
        if not str(lab).startswith("statement:"):
            assert lab in per_record[rid]


def test_manifest_round_trip_keeps_measure_columns(synthetic: tuple, tmp_path: Path) -> None:
    measured, _, _ = synthetic
    write_manifest(measured, tmp_path)
    back = read_manifest(tmp_path)
    expected = {c.name for c in MEASURE_COLUMNS} - {"bsqi_by_lead"}
    assert expected <= set(back.columns)
    assert set(back.columns) - set(measured.columns) == set()
    np.testing.assert_allclose(back["hr_bpm"].to_numpy(), measured["hr_bpm"].to_numpy())
    assert back["measure_lead"].tolist() == measured["measure_lead"].tolist()


def test_bsqi_matches_beats_within_tolerance() -> None:
    a = np.array([100, 600, 1100, 1600])
    b = np.array([110, 640, 1530, 1700, 2500])  # 150 ms at 500 Hz = 75 samples
    assert ms.match_beats(a, b, 75) == 3  # 100-110, 600-640, 1600-1530; 1100 and 1700, 2500 unmatched
    assert ms.bsqi(a, b, 500.0) == pytest.approx(2 * 3 / 9)
    assert ms.bsqi(a, a, 500.0) == 1.0 and math.isnan(ms.bsqi(a[:0], a[:0], 500.0))


def test_rr_features_by_hand() -> None:
    peaks = np.array([0, 500, 1000, 1400, 2000])  # RR 1000, 1000, 800, 1200 ms at 500 Hz
    f = ms.rr_features(peaks, 500.0)
    assert f["hr_bpm"] == pytest.approx(60.0) and f["rr_min_ms"] == 800.0
    assert f["rr_cv"] == pytest.approx(np.std([1000, 1000, 800, 1200]) / 1000)
    assert f["rr_pnn50"] == pytest.approx(2 / 3) and f["n_beats"] == 5


def test_detect_neurokit_gives_ecg_peaks_r_peaks(shared_data: Path) -> None:
    import neurokit2 as nk

    for path in ("cinc2021/E07500.hea", "cinc2021/HR06000.hea", "cinc2021/JS20004.hea",
                 "muse/MUSE_20200923_093504_79000_example.xml"):
        rec = read_record(shared_data / path)
        for lead in (1, 7):  # II, V2
            clean = ms.clean_lead(rec.signal[lead], rec.fs)
            _, info = nk.ecg_peaks(clean, sampling_rate=int(round(rec.fs)), method="neurokit")
            got = ms.detect_neurokit(clean, rec.fs)
            assert np.array_equal(got, np.asarray(info["ECG_R_Peaks"], dtype=np.int64))
            assert got.size > 3 or lead != 1  # lead II of each record has beats (a V2 may be flat)


def test_template_quality_agrees_with_neurokit(shared_data: Path) -> None:
    import neurokit2 as nk

    for name in ("E07500", "HR06000", "JS20004"):
        rec = read_record(shared_data / "cinc2021" / f"{name}.hea")
        clean = ms.clean_lead(rec.signal[1], rec.fs)
        peaks = ms.detect_neurokit(clean, rec.fs)
        ref = nk.ecg_quality(clean, rpeaks=peaks, sampling_rate=500, method="templatematch")
        # neurokit's per-sample series holds each beat's correlation until the next beat
        ref_beats = ref[peaks[1:-1]]
        assert ms.template_quality(clean, peaks, rec.fs) == pytest.approx(float(np.mean(ref_beats)), abs=0.05)


def test_unusable_signals_get_nan_and_a_reason() -> None:
    flat = np.zeros((12, 5000), dtype=np.float32)
    row = measure_signal(flat, 500.0, MeasureConfig(delineate=True))
    assert row["flat_share"] == 1.0 and row["flat_leads"] == list(LEADS)
    assert math.isnan(row["hr_bpm"]) and math.isnan(row["pr_ms"]) and "R peaks" in row["measure_reason"]
    noisy = np.random.default_rng(0).normal(0, 1.0, (12, 5000)).astype(np.float32)
    row = measure_signal(noisy, 500.0)
    assert row["noise_share"] == 1.0 and row["noisy_leads"] == list(LEADS)
    nan_sig = np.full((12, 5000), np.nan, dtype=np.float32)
    assert "non-finite" in measure_signal(nan_sig, 500.0)["measure_reason"]


def test_lead_ii_flat_falls_back_to_best_lead(shared_data: Path) -> None:
    rec = read_record(shared_data / "cinc2021" / "HR06000.hea")
    sig = rec.signal.copy()
    sig[1] = 0.0  # lead II off
    row = measure_signal(sig, rec.fs)
    ref = measure_signal(rec.signal, rec.fs)
    assert row["measure_lead"] != "II" and row["flat_leads"] == ["II"]
    assert row["hr_bpm"] == pytest.approx(ref["hr_bpm"], abs=3.0)


def test_every_real_fixture_is_measured_or_has_a_reason(shared_data: Path) -> None:
    import ecgkit

    manifest = scan([shared_data], ScanConfig(workers=1, max_quarantine_rate=1.0))
    # the stage as ``ecgkit.measure(...)``, after its module ``ecgkit.measuring`` was imported
    out = ecgkit.measure(manifest, MeasureConfig(workers=1))
    assert len(out) == len(manifest) and (out["record_id"] == manifest["record_id"]).all()
    ok = out["status"] == "ok"
    assert ok.sum() >= 55
    measured = out["hr_bpm"].notna() & out["bsqi"].notna() & out["quality"].notna()
    assert (measured | out["measure_reason"].notna()).all()
    assert out.loc[~ok, "measure_reason"].str.startswith("not measured").all()
    assert measured[ok].mean() >= 0.95
    assert out.loc[ok & measured, "hr_bpm"].between(30, 200).all()


def test_muse_example_against_values_read_off_its_plot(shared_data: Path) -> None:
    """Read off the ECG-paper plot (``plot_ecg``, rhythm strip II, 25 mm/s, zoomed to the first 2 s):
    first R peak at 3.85 large squares = 0.77 s, second at 8.5 = 1.70 s (RR 0.93 s); P onset 0.35 s
    (1.75 large squares) before the QRS onset, so PR about 340 ms (GE's own 12SL measurement in the
    file says PR 330 ms: first-degree AV block). Reading precision on paper is about one small square
    (40 ms)."""
    rec = read_record(shared_data / "muse" / "MUSE_20200923_093504_79000_example.xml")
    row = measure_signal(rec.signal, rec.fs, MeasureConfig(delineate=True))
    assert row["pr_ms"] == pytest.approx(340, abs=40)
    peaks = ms.detect_neurokit(ms.clean_lead(rec.signal[1], rec.fs), rec.fs)
    assert peaks[0] / rec.fs == pytest.approx(0.77, abs=0.04)
    assert (peaks[1] - peaks[0]) / rec.fs == pytest.approx(0.93, abs=0.04)


def test_bsqi_by_lead(shared_data: Path) -> None:
    rec = read_record(shared_data / "cinc2021" / "HR06001.hea")
    sig = rec.signal.copy()
    sig[7] = np.random.default_rng(1).normal(0, 0.5, sig.shape[1])  # V2 replaced by noise
    row = measure_signal(sig, rec.fs, MeasureConfig(bsqi_by_lead=True))
    by_lead = row["bsqi_by_lead"]
    assert len(by_lead) == 12 and by_lead[LEADS.index("II")] == row["bsqi"]
    assert by_lead[LEADS.index("V2")] < 0.8 < min(v for i, v in enumerate(by_lead) if LEADS[i] != "V2")
    assert row["noisy_leads"] == ["V2"]


@pytest.mark.parametrize("path, device_qrs_ms, device", [
    ("muse/MUSE_20200923_093504_79000_example.xml", 94, "GE MUSE QRSDuration"),
    ("ge-cardiosoft/example-XML1.xml", 92, "GE CardioSoft QRSDuration"),
])
def test_global_qrs_against_the_devices_own_measurement(shared_data: Path, path: str, device_qrs_ms: int,
                                                        device: str) -> None:
    """The files carry their electrocardiograph's global QRS duration (read with grep from the XML);
    ecgkit's spatial-velocity QRS is within 15 ms of it (measured: 86 ms for both, 6-8 ms shorter)."""
    rec = read_record(shared_data / path)
    row = measure_signal(rec.signal, rec.fs, MeasureConfig(delineate=True))
    assert row["qrs_global_ms"] == pytest.approx(device_qrs_ms, abs=15), device


def test_unreadable_record_gets_a_read_reason_and_the_stage_goes_on(shared_data: Path,
                                                                    tmp_path: Path) -> None:
    for name in ("E07500", "E07501"):
        for ext in (".hea", ".mat"):
            (tmp_path / f"{name}{ext}").write_bytes((shared_data / "cinc2021" / f"{name}{ext}").read_bytes())
    manifest = scan([tmp_path], ScanConfig(workers=1))
    assert (manifest["status"] == "ok").all()
    mat = tmp_path / "E07501.mat"
    mat.write_bytes(mat.read_bytes()[:5000])  # truncated after the scan
    out = measure(manifest, MeasureConfig(workers=1)).set_index("record_id")
    assert out.loc["E07500", "measure_reason"] is pd.NA or pd.isna(out.loc["E07500", "measure_reason"])
    assert out.loc["E07500", "hr_bpm"] > 0
    reason = out.loc["E07501", "measure_reason"]
    assert reason.startswith("read:") and "E07501" in reason and math.isnan(out.loc["E07501", "hr_bpm"])
    assert (out["status"] == "ok").all()  # measuring changes no status: the shard stage quarantines


def test_a_library_failure_is_recorded_not_raised(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**_: object) -> None:
        raise RuntimeError("segmenter exploded")

    monkeypatch.setattr(ms, "_biosppy_detector", lambda name: broken)
    rec = read_record(shared_data / "cinc2021" / "E07500.hea")
    row = measure_signal(rec.signal, rec.fs)
    assert math.isnan(row["bsqi"]) and row["hr_bpm"] > 0
    assert row["measure_reason"] == "biosppy.hamilton_segmenter: RuntimeError: segmenter exploded"


def test_dask_engine_measures_the_same_as_the_local_engine(tmp_path: Path) -> None:
    """``--engine dask`` (a local cluster of one worker process, small chunks so there are several
    tasks): the same values as the local engine, and every record in comes out measured or with a
    reason (one record truncated after the scan, one not ok)."""
    synth_cohort(3, tmp_path, fmt="wfdb", seed=5)
    manifest = scan([tmp_path], ScanConfig(workers=1))
    ok = manifest.index[manifest["status"] == "ok"]
    assert len(ok) >= 4
    first = Path(str(manifest.loc[ok[0], "source_path"]))
    dat = first.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:1000])  # unreadable now: a "read:" reason
    manifest.loc[ok[1], "status"] = "quarantined"  # not measured: a "not measured" reason
    cfg = MeasureConfig(workers=1, chunk_records=2, delineate=True)
    local = measure(manifest, cfg)
    dask = measure(manifest, MeasureConfig(workers=1, chunk_records=2, delineate=True, engine="dask"))
    assert len(dask) == len(manifest) and list(dask["record_id"]) == list(manifest["record_id"])
    pd.testing.assert_frame_equal(dask, local)
    measured = dask["hr_bpm"].notna()
    reasons = dask["measure_reason"].notna()
    assert (measured | reasons).all()
    assert int((measured & ~reasons).sum() + reasons.sum()) == len(manifest)
    assert str(dask.loc[ok[0], "measure_reason"]).startswith("read:")
    assert str(dask.loc[ok[1], "measure_reason"]).startswith("not measured")


def test_p_onset_is_read_against_the_floor_just_before_the_p_wave() -> None:
    # a spatial-velocity segment (mV/s, 500 Hz): the slow tail of a large T wave (a plateau at 2.5)
    # runs into a P wave whose velocity rises from 2 to 10 at sample 300; a threshold a tenth of the
    # way up from the segment's floor (0.5) joins the plateau to the P wave, the local floor does not
    from ecgkit import _measure_global as mg

    seg = np.full(500, 0.5)
    seg[100:290] = 2.5
    seg[290:300] = 2.0  # the T-P floor just before the P wave
    seg[300:360] = np.linspace(2.0, 10.0, 60)
    seg[360:420] = np.linspace(10.0, 1.0, 60)
    onset = mg._p_onset_from_floor(seg, 100, 419, 500.0)
    assert 300 <= onset <= 320  # where the P wave's own rise passes a fifth of its height


def _hump(v: np.ndarray, start: int, width: int, height: float) -> None:
    v[start: start + width] += height * np.sin(np.pi * np.arange(width) / width) ** 2


def test_p_wave_on_the_previous_t_wave_is_read_from_the_valley_between_them() -> None:
    # a spatial-velocity trace (mV/s, 500 Hz) of a first-degree block at 94/min: RR 320 samples, the T
    # wave's two slopes end 260 ms after the R peak and the P wave (90 ms, two humps with a dip at its
    # apex) starts 254 ms after it, on the T wave's tail; the next QRS starts 40 ms before its R: PR
    # = (320 - 20 - 127) samples = 346 ms. A delineator that puts the T end at the P's apex dip
    # (304 ms) made the P search start inside the P wave (NaN before); from the T-P valley it reads
    # the PR, and a right T end gives the same
    from ecgkit import _measure_global as mg

    fs, rr = 500.0, 320
    peaks = np.arange(200, 200 + 15 * rr, rr)
    v = np.full(int(peaks[-1] + 400), 0.5)
    for r in peaks:
        _hump(v, r - 20, 40, 100.0)    # QRS: onset 40 ms before R
        _hump(v, r + 55, 33, 10.0)     # T upslope
        _hump(v, r + 88, 42, 15.0)     # T downslope, ends at r + 130 (260 ms)
        _hump(v, r + 127, 23, 7.0)     # P wave's first half ...
        _hump(v, r + 150, 22, 7.7)     # ... and second, ends at r + 172
    sig = np.zeros((12, v.size))
    for t_end_ms in (304.0, 260.0):
        pr = mg.global_pr(sig, fs, peaks, 40.0, t_end_ms, velocity=v)
        assert abs(pr - 346.0) <= 12.0, (t_end_ms, pr)


def test_p_onset_on_t_needs_a_valley() -> None:
    # P and T merged (no dip below P_VALLEY_SHARE of the P's peak between them): no onset, not a guess
    from ecgkit import _measure_global as mg

    med = np.full(400, 4.0)
    _hump(med, 150, 90, 4.0)
    assert mg._p_onset_on_t(med, 240, 0, 500.0) is None
    med[180] = 0.5  # a valley 120 ms before the P end: the onset is the rise from it
    at = mg._p_onset_on_t(med, 240, 0, 500.0)
    assert at == 181


def test_cached_zero_phase_filters_equal_scipys() -> None:
    # the measure stage's filtfilt/sosfiltfilt keep the filters' initial states; same arithmetic
    from scipy.signal import butter, filtfilt, sosfiltfilt

    from ecgkit import _measure_global as mg

    x = np.random.default_rng(0).normal(size=(8, 5000)).cumsum(axis=1)
    for sos in (butter(5, 0.5, btype="highpass", output="sos", fs=500),
                butter(2, [1.0, 40.0], btype="bandpass", output="sos", fs=500)):
        assert np.array_equal(mg.sosfiltfilt_rows(sos, x), sosfiltfilt(sos, x, axis=1))
        assert np.array_equal(mg.sosfiltfilt_rows(sos, x[:, :20]), sosfiltfilt(sos, x[:, :20], axis=1))
    b, a = np.ones(10), np.array([10.0])
    assert np.array_equal(mg.filtfilt_rows(b, a, x), filtfilt(b, a, x, axis=1, method="pad"))
