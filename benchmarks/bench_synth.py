"""Synthetic cohort generation speed: ecgkit.synth vs the usual alternative, in one run.

ours:     ``synth_cohort`` (signal model + statements + our numpy WFDB / MUSE writers), 1 process
baseline: ``neurokit2.ecg_simulate(method="multileads")`` for the 12 leads + ``wfdb.wrsamp``
          (unlabelled, no statements: a lower bound on what the alternative would cost)

Usage: python benchmarks/bench_synth.py [--patients 150] [--baseline-records 30] [--workers 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _ours(n_patients: int, fmt: str, workers: int) -> float:
    from ecgkit.synth import synth_cohort

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        truth = synth_cohort(n_patients, tmp, fmt=fmt, seed=0, workers=workers)
        dt = time.perf_counter() - t
    n_records = len(truth) // (2 if fmt == "both" else 1)
    return n_records / dt


def _signal_only(n: int) -> float:
    from ecgkit.synth.beats import make_morphology
    from ecgkit.synth.phenotypes import sample_patient_findings, sample_record_findings
    from ecgkit.synth.render import simulate_record

    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(n):
        found = sample_record_findings(sample_patient_findings(rng), rng)
        simulate_record(found, make_morphology(found, rng), rng)
    return n / (time.perf_counter() - t)


def _baseline(n: int) -> float:
    import neurokit2 as nk
    import wfdb

    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        for i in range(n):
            df = nk.ecg_simulate(duration=10, sampling_rate=500, method="multileads", random_state=i)
            sig = df.to_numpy()[:5000]
            wfdb.wrsamp(f"r{i:06d}", fs=500, units=["mV"] * 12, sig_name=leads, p_signal=sig, fmt=["16"] * 12,
                        adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=tmp)
        return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=150)
    ap.add_argument("--baseline-records", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    sig = _signal_only(300)
    print(f"ecgkit signal model only (12 x 5000, no I/O):   {sig:8.1f} records/s")
    rates = {}
    for fmt in ("wfdb", "muse", "both"):
        rates[fmt] = _ours(args.patients, fmt, 1)
        print(f"ecgkit synth_cohort fmt={fmt:5s} 1 process:      {rates[fmt]:8.1f} records/s")
    par = _ours(args.patients * 2, "wfdb", args.workers)
    print(f"ecgkit synth_cohort fmt=wfdb  {args.workers} processes:     {par:8.1f} records/s")
    base = _baseline(args.baseline_records)
    print(f"neurokit2 ecg_simulate(multileads) + wfdb.wrsamp: {base:8.1f} records/s")
    print(f"ratio ecgkit wfdb (1 process) / baseline: {rates['wfdb'] / base:.1f}x")
    print(f"projected 300,000 records, fmt=wfdb, 16 processes at the 1-process rate: "
          f"{300000 / (rates['wfdb'] * 16):.0f} s")


if __name__ == "__main__":
    main()
