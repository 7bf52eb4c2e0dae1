"""Ingest benchmark: ecgkit's read path vs a plain ``wfdb.rdsamp`` loop, and the MUSE reader vs DOM parsers.

Run from the repo root::

    python benchmarks/bench_ingest.py [--shared ../shared/data] [--repeats 3]

Measures, in one run on the same files:
1. the 500 PTB-XL records: ``wfdb.rdsamp`` loop (what the public PTB-XL benchmark code does) vs
   ``ecgkit.io.read_record`` + QC flags (header, decode to mV, canonical leads, QC), one core;
2. the GE MUSE example: ecgkit's reader vs xml.etree and lxml parses that decode the same 8 leads;
3. ``ecgkit.scan`` of the PTB-XL tree with 1 and 2 workers.
Prints records/s for each and the ratios.
"""
from __future__ import annotations

import argparse
import base64
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


def _best(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` runs (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


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
        t_et = _best(lambda: [_muse_etree(muse) for _ in range(k)], args.repeats) / k
        t_lx = _best(lambda: [_muse_lxml(muse) for _ in range(k)], args.repeats) / k
        t_ek = _best(lambda: [read_muse(muse) for _ in range(k)], args.repeats) / k
        print("GE MUSE example (decode Rhythm leads; ecgkit also derives 4 leads, statements, demographics):")
        print(f"  xml.etree                  {t_et * 1e3:8.2f} ms/file")
        print(f"  lxml                       {t_lx * 1e3:8.2f} ms/file")
        print(f"  ecgkit read_muse           {t_ek * 1e3:8.2f} ms/file   {t_et / t_ek:4.1f}x etree, "
              f"{t_lx / t_ek:4.1f}x lxml")

        t1 = _best(lambda: scan([root], ScanConfig(workers=1)), 1)
        t2 = _best(lambda: scan([root], ScanConfig(workers=2)), 1)
        print(f"ecgkit.scan of the PTB-XL tree (read + QC + CSV join): 1 worker {n / t1:.0f} records/s, "
              f"2 workers {n / t2:.0f} records/s ({t1 / t2:.2f}x)")


if __name__ == "__main__":
    main()
