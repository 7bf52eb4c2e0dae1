"""Archive-scale run: synth -> scan -> label -> split -> shard on N synthetic patients, timed per stage.

Run on a many-core machine, e.g. 150,000 patients (about 300,000 records)::

    python benchmarks/scale_run.py --patients 150000 --workers 30 --out /tmp/scale

Prints one line per stage (seconds, records/s, peak resident memory of this process and of the
largest worker) and a final JSON line. Peak memory is ``getrusage`` ``ru_maxrss``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgkit.ingest import ScanConfig, scan  # noqa: E402
from ecgkit.labels import label_manifest  # noqa: E402
from ecgkit.manifest import write_manifest, write_quarantine  # noqa: E402
from ecgkit.shards import ShardConfig, write_shards  # noqa: E402
from ecgkit.split import audit, split_by_patient  # noqa: E402
from ecgkit.synth import synth_cohort  # noqa: E402


def _peak_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(own, 1), round(child, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=150_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ecgkit-scale"))
    ap.add_argument("--fmt", default="wfdb")
    ap.add_argument("--raw-dir", type=Path, default=None,
                    help="where the synthetic archive goes (default OUT/raw); e.g. a tmpfs when the disk "
                         "cannot hold both the raw files and the shards")
    ap.add_argument("--fs", type=float, default=500.0,
                    help="shard sampling frequency (250 halves the shards' disk space: 300,000 records at "
                         "500 Hz need 36 GB of raw files plus 36 GB of shards)")
    ap.add_argument("--keep", action="store_true", help="keep the raw files and shards")
    ap.add_argument("--difficulty", default="easy", choices=["easy", "realistic", "hard"],
                    help="synthetic cohort difficulty (ecgkit.synth.difficulty)")
    ap.add_argument("--synth-fs", type=float, default=500.0,
                    help="sampling frequency the generator writes (set it to --fs to skip resampling)")
    ap.add_argument("--reuse-raw", action="store_true",
                    help="keep an archive an earlier run synthesised (its truth.parquet) and start at scan")
    args = ap.parse_args()
    raw = args.raw_dir or args.out / "raw"
    if args.reuse_raw and raw.is_relative_to(args.out):
        ap.error("--reuse-raw needs --raw-dir outside --out (OUT is cleared at the start)")
    for d in (args.out, raw):
        if d.exists() and not (args.reuse_raw and d == raw):
            shutil.rmtree(d)
    results: dict[str, dict[str, float]] = {}

    def report(stage: str, t0: float, n: int) -> None:
        dt = time.perf_counter() - t0
        own, child = _peak_mib()
        results[stage] = {"seconds": round(dt, 1), "records": n, "records_per_s": round(n / dt, 1),
                          "peak_rss_mib_main": own, "peak_rss_mib_largest_worker": child}
        print(f"{stage:6s} {dt:8.1f} s  {n / dt:10.0f} records/s  peak RSS main {own:8.0f} MiB, "
              f"largest worker {child:6.0f} MiB", flush=True)

    t = time.perf_counter()
    if args.reuse_raw:
        truth = pd.read_parquet(raw / "truth.parquet")
    else:
        truth = synth_cohort(args.patients, raw, fmt=args.fmt, seed=0, workers=args.workers,
                             difficulty=args.difficulty, fs=args.synth_fs)
        report("synth", t, len(truth))

    t = time.perf_counter()
    manifest = scan([raw], ScanConfig(workers=args.workers, chunk_size=256))
    write_manifest(manifest, args.out / "cohort")
    write_quarantine(manifest, args.out / "cohort", "scan")
    report("scan", t, len(manifest))

    t = time.perf_counter()
    manifest = label_manifest(manifest)
    write_manifest(manifest, args.out / "cohort")
    report("label", t, len(manifest))

    t = time.perf_counter()
    manifest = split_by_patient(manifest, seed=0)
    audit(manifest)
    write_manifest(manifest, args.out / "cohort")
    report("split", t, len(manifest))

    t = time.perf_counter()
    manifest = write_shards(manifest, args.out / "shards", ShardConfig(workers=args.workers, fs=args.fs))
    write_manifest(manifest, args.out / "cohort")
    report("shard", t, len(manifest))

    n_ok = int((manifest["status"] == "ok").sum())
    total = sum(r["seconds"] for r in results.values())
    print(json.dumps({"patients": args.patients, "shard_fs": args.fs, "difficulty": args.difficulty, "records": len(truth), "records_ok": n_ok,
                      "records_quarantined": len(manifest) - n_ok, "workers": args.workers,
                      "cpu_count": os.cpu_count(), "total_seconds": round(total, 1), "stages": results}))
    if not args.keep:
        shutil.rmtree(args.out)
        shutil.rmtree(raw, ignore_errors=True)


if __name__ == "__main__":
    main()
