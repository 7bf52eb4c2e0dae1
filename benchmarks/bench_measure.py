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

Prints records/s of each and the ratios. With ``--workers N`` (N > 1) each path also runs in N
forked processes, each measuring its share of the records, and the aggregate records/s (wall) and
records per CPU-second (summed over the workers: per core) are printed for that run too. Usage:
``python benchmarks/bench_measure.py [--records N] [--repeat R] [--ptbxl DIR] [--workers N]``.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
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


_SIGS: list[np.ndarray] = []  # the records, inherited by forked workers (not pickled)


def _fast(s: np.ndarray) -> object:
    return measure_signal(s, 500.0, MeasureConfig())


def _full(s: np.ndarray) -> object:
    return measure_signal(s, 500.0, MeasureConfig(delineate=True))


def _nk(s: np.ndarray) -> object:
    import neurokit2 as nk

    return nk.ecg_process(s[1].astype(np.float64), sampling_rate=500)


_PATHS = {"fast": _fast, "full": _full, "nk": _nk}


def _worker(args: tuple[str, int, int, int]) -> tuple[int, float]:
    """Measure records ``k::n`` ``repeat`` times; (records done, CPU seconds of this process)."""
    name, k, n, repeat = args
    warnings.simplefilter("ignore")
    fn = _PATHS[name]
    mine = _SIGS[k::n]
    fn(mine[0])  # warm
    start = time.process_time()
    for _ in range(repeat):
        for s in mine:
            fn(s)
    return len(mine) * repeat, time.process_time() - start


def _rate_parallel(name: str, workers: int, repeat: int) -> tuple[float, float]:
    """(records/s wall of all workers, records per CPU-second summed over workers) for one path."""
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        pool.map(_worker, [(name, k, workers, 0) for k in range(workers)])  # start and warm the pool
        start = time.perf_counter()
        out = pool.map(_worker, [(name, k, workers, repeat) for k in range(workers)])
        wall = time.perf_counter() - start
    done = sum(n for n, _ in out)
    return done / wall, done / sum(c for _, c in out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ptbxl", default=None, help="folder with PTB-XL records500 (default: synthetic)")
    ap.add_argument("--workers", type=int, default=1,
                    help="also run each path in this many forked processes (default 1: one process only)")
    args = ap.parse_args()
    if args.records < 1 or args.repeat < 1 or args.workers < 1:
        ap.error("--records, --repeat and --workers must be >= 1")
    if args.workers > 1 and "fork" not in mp.get_all_start_methods():
        ap.error("--workers > 1 needs the fork start method (Linux or macOS)")
    warnings.simplefilter("ignore")  # neurokit2 warns per record it cannot delineate fully
    import neurokit2 as nk

    sigs = _records(args.records, args.ptbxl)
    _SIGS[:] = sigs
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
    if args.workers > 1:
        if len(sigs) < args.workers:
            print(f"  (--workers {args.workers} skipped: only {len(sigs)} records)")
            return
        par = {name: _rate_parallel(name, args.workers, args.repeat) for name in ("fast", "full", "nk")}
        print(f"{args.workers} forked worker processes ({os.cpu_count()} CPUs seen), each its share of the "
              f"records {args.repeat} times (records/s wall, all workers | records per CPU-second = per core):")
        for name, label in (("fast", "R peaks + quality + RR features"), ("full", "+ delineation"),
                            ("nk", "neurokit2 ecg_process (lead II)")):
            w, c = par[name]
            print(f"  {label:32s}: {w:8.1f} | {c:8.1f}")
        print(f"  ratio (per core) fast / ecg_process: {par['fast'][1] / par['nk'][1]:.1f}x; "
              f"with delineation / ecg_process: {par['full'][1] / par['nk'][1]:.1f}x")


if __name__ == "__main__":
    main()
