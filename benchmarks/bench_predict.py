"""Prediction throughput: ``ecgkit predict`` vs a plain per-record loop, in one run.

1. Build a synthetic cohort of ``--patients`` (WFDB files, 500 Hz, 10 s), scan, label, split and
   shard it at ``--fs``, train the ``--blocks``-block ResNet for one step (the weights do not change
   the speed) and export it (``ecgkit export``).
2. Plain loop (the usual alternative): for each file ``wfdb.rdsamp``, resample to the model's fs
   with ``scipy.signal.resample_poly`` when needed, and call the model on that one record
   (``torch.no_grad``, the same device). Timed on ``--baseline-records`` files.
3. ``ecgkit predict`` from the shard folder (2 passes, 3 with ``--compile``: the first compiles;
   the last is reported), then from the raw WFDB files (every record; readers in ``--workers``
   processes), end to end: walk, read, preprocess, predict, assemble the table. Also each run's
   steady rate (after its first batch or chunk) and the walk alone.
4. The network alone on device-resident batches of ``--batch-size`` (eager, and compiled with
   ``--compile``): the ceiling for the shard path.

Prints one JSON line: records/s of each, and the ratio raw-files / plain loop.

CPU box: ``python benchmarks/bench_predict.py --patients 100 --workers 1``.
GPU box: ``python benchmarks/bench_predict.py --patients 15000 --device cuda --workers 14 --batch-size 1024 --compile``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from ecgkit import __version__  # noqa: E402


def _build(root: Path, args: argparse.Namespace) -> tuple[Path, Path, Path]:
    from ecgkit.ingest import ScanConfig, scan
    from ecgkit.labels import label_manifest
    from ecgkit.shards import ShardConfig, write_shards
    from ecgkit.split import split_by_patient
    from ecgkit.synth import synth_cohort
    from ecgkit.trainer import TrainConfig, export, train

    w = max(1, args.workers)
    t = time.perf_counter()
    synth_cohort(args.patients, root / "raw", fmt="wfdb", seed=0, workers=w)
    manifest = label_manifest(scan([root / "raw"], ScanConfig(workers=w)))
    manifest = split_by_patient(manifest, ratios=(0.8, 0.1, 0.1), seed=0)
    write_shards(manifest, root / "shards", ShardConfig(fs=args.fs, workers=w, records_per_shard=1024))
    cfg = TrainConfig(shards_dir=str(root / "shards"), blocks=args.blocks, batch_size=8, epochs=1, max_steps=1,
                      sampler="joint", device=args.device, amp=False, compile=False, num_workers=0, val_split=None,
                      tensorboard=False, warmup_steps=1)
    train(cfg, root / "run")
    model = export(root / "run", root / "model.pt", threshold_rules=("max_f1",), device=args.device)
    print(f"# built {len(manifest)} records in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return root / "raw", root / "shards", model


def _plain_loop(files: list[Path], model_path: Path, fs: float, device: str) -> float:
    import wfdb
    from scipy.signal import resample_poly

    from ecgkit.trainer import load_exported

    net, _ = load_exported(model_path)
    net = net.to(device).eval()
    with torch.no_grad():  # warm-up on the first file (imports, first kernel launches), untimed
        sig, _ = wfdb.rdsamp(str(files[0].with_suffix("")))
        net(torch.from_numpy(np.ascontiguousarray(sig.T, dtype=np.float32))[None].to(device))
    start = time.perf_counter()
    with torch.no_grad():
        for f in files:
            sig, fields = wfdb.rdsamp(str(f.with_suffix("")))  # (n, 12) mV, leads as stored
            x = sig.T.astype(np.float32)
            if fields["fs"] != fs:
                x = resample_poly(x, int(fs), int(fields["fs"]), axis=1).astype(np.float32)
            torch.sigmoid(net(torch.from_numpy(np.ascontiguousarray(x))[None].to(device))).cpu()
    return len(files) / (time.perf_counter() - start)


def _ecgkit(model: object, source: Path, args: argparse.Namespace, passes: int) -> tuple[float, int, float]:
    """End-to-end records/s of the last pass, records, and its steady rate (records after the first
    batch or chunk over the time after it: the pipeline without its start-up)."""
    from ecgkit.predict import PredictConfig, predict_sources

    cfg = PredictConfig(batch_size=args.batch_size, workers=args.workers, device=args.device, compile=args.compile)
    rates = []
    for _ in range(passes):
        marks: list[tuple[float, int]] = []
        res = predict_sources(model, source, cfg,  # type: ignore[arg-type]
                              progress=lambda k: marks.append((time.perf_counter(), k)))
        if args.device == "cuda":
            torch.cuda.synchronize()
        end = time.perf_counter()
        rates.append(res.records_per_s)
        steady = sum(k for _, k in marks[1:]) / (end - marks[0][0]) if len(marks) > 1 else float("nan")
        print(f"# {source.name}: {res.n_records} records, {res.records_per_s:.0f} records/s end to end, "
              f"{steady:.0f} records/s after the first batch", file=sys.stderr)
    return rates[-1], res.n_records, steady


def _model_only(model: object, args: argparse.Namespace, iters: int = 20) -> dict[str, float]:
    """The network alone on device-resident float32 batches (no reading, no copies): the ceiling."""
    m: Any = model
    c = m.contract
    x = torch.randn(args.batch_size, len(c.leads), c.n_samples, device=m.device)
    out = {}
    nets = [("eager", m.net)] + ([("compiled", m._compiled)] if m._compiled is not None else [])
    for name, net in nets:
        with torch.inference_mode(), torch.autocast(m.device.type, dtype=torch.bfloat16, enabled=m.amp):
            for _ in range(3):
                net(x)
            if m.device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(iters):
                net(x)
            if m.device.type == "cuda":
                torch.cuda.synchronize()
        out[f"model_only_{name}_records_per_s"] = round(iters * args.batch_size / (time.perf_counter() - t), 1)
        print(f"# model only ({name}, batch {args.batch_size}): {out[f'model_only_{name}_records_per_s']:.0f} "
              "records/s", file=sys.stderr)
    return out


def _return_arrays(task: tuple) -> tuple:
    """The alternative reader: a pool task that returns the chunk's array through the pipe."""
    from ecgkit.predict import _chunk_shape, _fill

    items, c = task
    shape, dtype = _chunk_shape(c, len(items))
    buf = np.empty(shape, dtype=dtype)
    k, rows = _fill(items, buf, c, None, False)
    return buf[:k], rows


def _readers(raw: Path, model_path: Path, workers: int, chunk: int = 64) -> dict[str, float]:
    """Reading + preprocessing alone (no network): shared-memory slots vs arrays returned by pickle."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from ecgkit.ingest import find_records
    from ecgkit.model_file import load_model
    from ecgkit.predict import _chunk_results, _Item

    c = load_model(model_path).contract.to_dict()
    cands, _ = find_records([raw])
    items = [_Item(x.record_id, x.path) for x in cands]
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    t = time.perf_counter()
    n = sum(len(s) for s, _ in _chunk_results(chunks, c, None, False, workers, chunk))
    shm_rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        n = sum(len(s) for s, _ in pool.map(_return_arrays, [(ch, c) for ch in chunks]))
    pickle_rate = n / (time.perf_counter() - t)
    return {"readers_shm_records_per_s": round(shm_rate, 1), "readers_pickle_records_per_s": round(pickle_rate, 1)}


def _r(x: float) -> float | None:
    return round(x, 1) if np.isfinite(x) else None  # JSON has no NaN


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patients", type=int, default=100)
    p.add_argument("--fs", type=float, default=500.0)
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--baseline-records", type=int, default=200)
    p.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    p.add_argument("--json", default=None, help="also write the result here")
    p.add_argument("--readers", action="store_true",
                   help="also time reading alone: shared-memory slots vs arrays pickled back (workers >= 2)")
    args = p.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench-predict-"))
    raw, shards, model = _build(root, args)
    files = sorted(raw.rglob("*.hea"))
    plain = _plain_loop(files[: args.baseline_records], model, args.fs, args.device)
    print(f"# plain loop: {plain:.1f} records/s", file=sys.stderr)
    from ecgkit.ingest import find_records
    from ecgkit.model_file import load_model
    from ecgkit.predict import PredictConfig

    loaded = load_model(model)  # one model object: compiled once, by the first (warm-up) pass
    shard_rate, n_shards, shard_steady = _ecgkit(loaded, shards, args, 3 if args.compile else 2)
    t = time.perf_counter()
    find_records([raw])
    walk_s = time.perf_counter() - t
    raw_rate, n_raw, raw_steady = _ecgkit(loaded, raw, args, 1)
    ceiling = _model_only(loaded, args)
    out = {
        "ecgkit": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
        "cpus": os.cpu_count(), "blocks": args.blocks, "fs": args.fs, "batch_size": args.batch_size,
        "workers": args.workers, "compile": args.compile, "records_raw": n_raw, "records_shards": n_shards,
        "plain_loop_records": min(len(files), args.baseline_records),
        "plain_loop_records_per_s": round(plain, 1), "ecgkit_raw_records_per_s": round(raw_rate, 1),
        "ecgkit_shards_records_per_s": round(shard_rate, 1), "ratio_raw_over_plain": round(raw_rate / plain, 2),
        "ecgkit_raw_steady_records_per_s": _r(raw_steady),
        "ecgkit_shards_steady_records_per_s": _r(shard_steady), "walk_s": round(walk_s, 3),
        "shard_threads": PredictConfig().shard_threads, **ceiling,
    }
    if args.readers and args.workers >= 2:
        out.update(_readers(raw, model, args.workers))
    line = json.dumps(out)
    print(line)
    if args.json:
        Path(args.json).write_text(line + "\n")


if __name__ == "__main__":
    main()
