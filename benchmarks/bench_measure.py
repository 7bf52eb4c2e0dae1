"""Measure stage throughput vs neurokit2's ``ecg_process`` called per record in a loop, in one run.

On the same in-memory records (synthetic 12-lead, 10 s, 500 Hz, all phenotypes; or real PTB-XL
records with ``--ptbxl DIR``), one process, one core:

- ecgkit fast path: :func:`ecgkit.measuring.measure_signal` without delineation (flat/noise shares of
  12 leads, ``nk.ecg_clean`` + ``nk.ecg_peaks`` on lead II, biosppy Hamilton, bSQI, RR features,
  template quality);
- ecgkit with ``delineate=True`` (adds ``nk.ecg_delineate(method="prominence")``);
- baseline: ``nk.ecg_process(lead II, sampling_rate=500)`` per record (clean, peaks with artifact
  correction, rate, averageQRS quality, DWT delineation, cardiac phase): what a user of neurokit2
  writes to measure a cohort.

Prints records/s of each and the ratios. Usage:
``python benchmarks/bench_measure.py [--records N] [--repeat R] [--ptbxl DIR]``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ecgkit.io import read_record  # noqa: E402
from ecgkit.measuring import MeasureConfig, measure_signal  # noqa: E402


def _records(n: int, ptbxl: str | None) -> list[np.ndarray]:
    if ptbxl:
        heads = sorted(Path(ptbxl).rglob("*_hr.hea"))[:n]
        return [read_record(h).signal for h in heads]
    from ecgkit.synth import synth_cohort

    with tempfile.TemporaryDirectory() as tmp:
        truth = synth_cohort(max(1, n // 2 + 1), tmp, fmt="wfdb", seed=0)
        return [read_record(Path(tmp) / f"{rid}.hea").signal for rid in truth["record_id"][:n]]


def _rate(fn: Callable[[np.ndarray], object], sigs: list[np.ndarray], repeat: int) -> tuple[float, float]:
    """(records per wall-clock second, records per CPU second of this process = per core)."""
    fn(sigs[0])  # warm imports and caches
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        for s in sigs:
            fn(s)
        wall.append(len(sigs) / (time.perf_counter() - start))
        cpu.append(len(sigs) / (time.process_time() - start_cpu))
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ptbxl", default=None, help="folder with PTB-XL records500 (default: synthetic)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # neurokit2 warns per record it cannot delineate fully
    import neurokit2 as nk

    sigs = _records(args.records, args.ptbxl)
    fast, full = MeasureConfig(), MeasureConfig(delineate=True)
    r_fast = _rate(lambda s: measure_signal(s, 500.0, fast), sigs, args.repeat)
    r_full = _rate(lambda s: measure_signal(s, 500.0, full), sigs, args.repeat)
    r_nk = _rate(lambda s: nk.ecg_process(s[1].astype(np.float64), sampling_rate=500), sigs, args.repeat)
    src = f"PTB-XL {args.ptbxl}" if args.ptbxl else "synthetic"
    print(f"{len(sigs)} records ({src}, 12 x 5000 at 500 Hz), median of {args.repeat} runs, one process "
          "(records/s wall-clock | records per CPU-second = per core):")
    for name, (w, c) in (("ecgkit measure_signal, R peaks + quality + RR features", r_fast),
                         ("ecgkit measure_signal, + delineation (prominence)     ", r_full),
                         ("neurokit2 ecg_process per record (lead II)            ", r_nk)):
        print(f"  {name}: {w:8.1f} | {c:8.1f}")
    print(f"  ratio (per core) fast / ecg_process: {r_fast[1] / r_nk[1]:.1f}x; "
          f"with delineation / ecg_process: {r_full[1] / r_nk[1]:.1f}x")


if __name__ == "__main__":
    main()
