"""Scan engines on one synthetic archive: in-process rows vs manifest parts on a local pool and on Dask.

Writes a synthetic WFDB archive (``ecgkit synth``) once, then scans it three ways, each in a fresh
subprocess so that its peak RSS is the parent's alone (``ru_maxrss`` of that process; pool and Dask
workers are other processes):

- ``inline``: :func:`ecgkit.ingest.scan` with a process pool, rows gathered in the parent;
- ``parts-local``: :func:`ecgkit.scan_parts.scan_to_dir` on the local process pool;
- ``parts-dask``: the same on a local ``dask.distributed`` cluster (worker processes).

Prints records/s and the parent's peak RSS for each. Usage:
``python benchmarks/bench_scan_engines.py --patients 1000 --workers 2 [--raw DIR]``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from ecgkit.ingest import ScanConfig, scan
from ecgkit.manifest import write_manifest
from ecgkit.scan_parts import scan_to_dir
mode, raw, out, workers, chunk = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cfg = ScanConfig(workers=workers, chunk_size=chunk, max_quarantine_rate=1.0)
t0 = time.perf_counter()
if mode == "inline":
    df = scan([raw], cfg)
    write_manifest(df, out)
    n = len(df)
elif mode == "parts-local":
    n = scan_to_dir([raw], out, cfg)["records"]
else:
    n = scan_to_dir([raw], out, cfg, engine="dask")["records"]
dt = time.perf_counter() - t0
print(json.dumps({{"records": n, "seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=256, help="records per task")
    parser.add_argument("--raw", type=Path, default=None, help="an existing archive (skips synth)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.raw
        if raw is None:
            raw = Path(tmp) / "raw"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ecgkit", "synth", "--patients", str(args.patients), "--out",
                            str(raw), "--workers", str(args.workers)], check=True, capture_output=True)
            print(f"synth: {args.patients} patients in {time.perf_counter() - t0:.1f} s")
        child = _CHILD.format(repo=str(REPO))
        print(f"{'mode':14s} {'records':>8s} {'seconds':>8s} {'records/s':>10s} {'parent peak RSS MB':>19s}")
        for mode in ("inline", "parts-local", "parts-dask"):
            out = Path(tmp) / mode
            res = subprocess.run([sys.executable, "-c", child, mode, str(raw), str(out), str(args.workers),
                                  str(args.chunk)], check=True, capture_output=True, text=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{mode:14s} {r['records']:8d} {r['seconds']:8.2f} {r['records'] / r['seconds']:10.0f} "
                  f"{r['peak_rss_mb']:19.0f}")


if __name__ == "__main__":
    main()
