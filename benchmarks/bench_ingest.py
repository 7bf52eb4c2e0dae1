"""Ingest benchmark: ecgkit's read path vs a plain ``wfdb.rdsamp`` loop, and the MUSE reader vs DOM parsers.

Run from the repo root::

    python benchmarks/bench_ingest.py [--shared ../shared/data] [--repeats 3]

Measures, in one run on the same files:
1. the 500 PTB-XL records: ``wfdb.rdsamp`` loop (what the public PTB-XL benchmark code does) vs
   ``ecgkit.io.read_record`` + QC flags (header, decode to mV, canonical leads, QC), one core;
2. the GE MUSE example: ecgkit's reader vs xml.etree and lxml parses that decode the same 8 leads;
3. ``ecgkit.scan`` of the PTB-XL tree with 1 and 2 workers, with the CPU time of the parent and
   of the workers, so that "uses both cores" can be read even on a loaded machine: cores used =
   (parent + workers CPU seconds) / wall seconds.
Prints records/s for each and the ratios; MUSE also as CPU ms/file (``time.process_time``), which
other processes on a shared machine disturb far less than wall time.
"""
from __future__ import annotations

import argparse
import base64
import os
import resource
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgkit.io import read_record  # noqa: E402
from ecgkit.io.muse import read_muse  # noqa: E402
from ecgkit.ingest import ScanConfig, scan  # noqa: E402


def _best(fn, repeats: int, clock=time.perf_counter) -> float:
    """Best time of ``repeats`` runs (the least disturbed by other processes) on ``clock``."""
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


def _cpu(who: int) -> float:
    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


def _scan_cores(sources: list[Path], workers: int) -> tuple[float, float, float]:
    """Wall seconds, parent CPU seconds and worker CPU seconds of one scan."""
    c0, s0, t0 = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF), time.perf_counter()
    scan(sources, ScanConfig(workers=workers))
    wall = time.perf_counter() - t0
    return wall, _cpu(resource.RUSAGE_SELF) - s0, _cpu(resource.RUSAGE_CHILDREN) - c0


def _muse_etree(path: Path) -> np.ndarray:
    root = ET.parse(path).getroot()
    for wf in root.iter("Waveform"):
        if wf.findtext("WaveformType") == "Rhythm":
            return np.stack([np.frombuffer(base64.b64decode(ld.findtext("WaveFormData")), "<i2")
                             * float(ld.findtext("LeadAmplitudeUnitsPerBit")) for ld in wf.iter("LeadData")])
    raise ValueError("no rhythm")


def _muse_lxml(path: Path) -> np.ndarray:
    from lxml import etree

    root = etree.parse(str(path)).getroot()
    for wf in root.iter("Waveform"):
        if wf.findtext("WaveformType") == "Rhythm":
            return np.stack([np.frombuffer(base64.b64decode(ld.findtext("WaveFormData")), "<i2")
                             * float(ld.findtext("LeadAmplitudeUnitsPerBit")) for ld in wf.iter("LeadData")])
    raise ValueError("no rhythm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scan-copies", type=int, default=4,
                    help="scan the PTB-XL tree this many times over (as separate sources), so that the "
                         "workers' start-up is amortised as in a real archive")
    args = ap.parse_args()
    import wfdb

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with tarfile.open(args.shared / "ptbxl" / "records500.tar.xz") as tar:
            tar.extractall(root, filter="data")
        (root / "ptbxl_database.csv").write_bytes((args.shared / "ptbxl" / "ptbxl_database.csv").read_bytes())
        headers = sorted((root / "records500").rglob("*.hea"))
        n = len(headers)

        def wfdb_loop() -> None:
            for h in headers:
                wfdb.rdsamp(str(h.with_suffix("")))

        def ecgkit_loop() -> None:
            for h in headers:
                read_record(h)  # header, decode to mV, canonical leads, QC flags (rec.qc_flags)

        wfdb_loop(), ecgkit_loop()  # warm the page cache and imports
        t_wfdb = _best(wfdb_loop, args.repeats)
        t_ecg = _best(ecgkit_loop, args.repeats)
        print(f"PTB-XL {n} records, one core:")
        print(f"  wfdb.rdsamp loop           {n / t_wfdb:10.0f} records/s")
        print(f"  ecgkit read_record + QC    {n / t_ecg:10.0f} records/s   ratio {t_wfdb / t_ecg:5.1f}x")

        muse = args.shared / "muse" / "MUSE_20200923_093504_79000_example.xml"
        k = 200
        rows = []
        for label, fn in [("xml.etree", _muse_etree), ("lxml", _muse_lxml), ("ecgkit read_muse", read_muse)]:
            fn(muse)
            wall = _best(lambda: [fn(muse) for _ in range(k)], args.repeats) / k
            cpu = _best(lambda: [fn(muse) for _ in range(k)], args.repeats, time.process_time) / k
            rows.append((label, wall, cpu))
        print("GE MUSE example (decode Rhythm leads; ecgkit also derives 4 leads, statements, demographics):")
        for label, wall, cpu in rows:
            print(f"  {label:26s} {wall * 1e3:8.2f} ms/file wall  {cpu * 1e3:8.2f} ms/file CPU   "
                  f"{rows[0][2] / cpu:5.1f}x etree (CPU)")

        sources = [root] * args.scan_copies
        n_scan = n * args.scan_copies
        print(f"ecgkit.scan of {n_scan} records ({args.scan_copies} x the PTB-XL tree; read + QC + CSV join), "
              f"{os.cpu_count()} CPUs:")
        _scan_cores(sources, 1), _scan_cores(sources, 2)  # warm-up
        results = {w: min((_scan_cores(sources, w) for _ in range(args.repeats)), key=lambda r: r[0])
                   for w in (1, 2)}
        for w, (wall, parent, children) in results.items():
            print(f"  {w} worker(s): {n_scan / wall:6.0f} records/s, wall {wall:5.2f} s, CPU parent {parent:5.2f} s + "
                  f"workers {children:5.2f} s = {(parent + children) / wall:4.2f} cores used")
        print(f"  2 workers vs 1: {results[1][0] / results[2][0]:.2f}x")


if __name__ == "__main__":
    main()
