"""GPU training throughput: ecgkit's end-to-end loop (shards -> sampler -> loader -> GPU) vs the ceiling.

In one run, on the same model, batch size, precision and compile setting:

1. ceiling: ``ecgkit.trainer.train_step`` on a batch that already lives on the GPU (no data path);
2. loader: the DataLoader alone (shards -> pinned int16/float32 batches), no GPU work;
3. end to end: ``ecgkit.trainer.train`` from the shards with the task-aware sampler.

It prints one JSON line with the samples/s of each, the ratio end-to-end / ceiling, and the
versions, GPU and settings.

Shards: ``--shards DIR`` reuses a shard folder (``ecgkit shard`` output or one this script built);
otherwise synthetic shards of ``--records`` training records (500 Hz, 10 s, 12 leads, int16, the
18 ECG-P18 tasks at their imbalance ratios) are written with h5py in the exact layout of
``ecgkit.shards`` (datasets, attributes, ``index.parquet``). To write 12 GB fast, each shard cycles
through a pool of ``--unique-records`` generated records (random noise plus a per-task sinusoid in
one lead for positive labels, so the model can learn and validation AUROC is meaningful), and
shards are written by parallel processes. The files are then in the page cache (the usual state
after the first epoch on a machine with enough RAM).

Multi-GPU: build shards once (``--build-only --shards DIR``), then
``torchrun --nproc_per_node 2 benchmarks/bench_train_gpu.py --shards DIR --skip-ceiling``.

CPU smoke test: ``python benchmarks/bench_train_gpu.py --device cpu --records 2000 --steps 5``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from ecgkit import __version__  # noqa: E402

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
TASKS = ("LVH", "RVH", "AFIB", "AFL", "IVCD", "NIVCD", "RBBB", "LBBB", "IRBBB", "ILBBB", "1AVB", "2AVB", "3AVB",
         "EAR", "VBIG", "VT", "VPC", "APC")
# 1:k imbalance per task, LVH 1:7 ... 3AVB 1:2300 (the brief's range; values between are plausible)
RATIOS = (7, 300, 25, 150, 60, 80, 40, 90, 50, 900, 30, 1200, 2300, 400, 120, 1500, 35, 30)
FS, SECONDS = 500.0, 10.0
SCALE_MV = 0.001


def _pool(n: int, seed: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """n synthetic int16 records (n, 12, L) and labels (n, 18); positives add a sinusoid."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(TASKS))) < 1.0 / (1.0 + np.asarray(RATIOS))).astype(np.int8)
    # guarantee a few positives of every task in the pool so every task is usable
    for t in range(len(TASKS)):
        labels[rng.choice(n, size=max(2, n // 200), replace=False), t] = 1
    t_s = np.arange(length) / FS
    sig = rng.normal(0, 150, size=(n, 12, length)).astype(np.float32)
    for t in range(len(TASKS)):
        wave = (400 * np.sin(2 * np.pi * (1.5 + 0.9 * t) * t_s)).astype(np.float32)
        sig[labels[:, t] == 1, t % 12] += wave
    return np.clip(np.rint(sig), -32768, 32767).astype(np.int16), labels


_POOLS: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # set before the writer processes fork; never pickled


def _write_one(args: tuple) -> dict:
    path, split, shard, start, count = args
    pool_sig, pool_lab = _POOLS[split]
    n_pool = len(pool_sig)
    rows = (start + np.arange(count)) % n_pool
    ids = [f"{split}-{start + i:07d}" for i in range(count)]
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        ds = f.create_dataset("signal", shape=(count, 12, pool_sig.shape[2]), dtype=np.int16,
                              chunks=(1, 12, pool_sig.shape[2]))
        for a in range(0, count, 256):
            b = min(a + 256, count)
            ds[a:b] = pool_sig[rows[a:b]]
        f.create_dataset("labels", data=pool_lab[rows])
        str_dt = h5py.string_dtype("utf-8")
        f.create_dataset("record_id", data=np.array(ids, dtype=object), dtype=str_dt)
        f.create_dataset("patient_key", data=np.array(ids, dtype=object), dtype=str_dt)
        attrs = {"fs": FS, "seconds": SECONDS, "n_samples": pool_sig.shape[2], "leads": list(LEADS),
                 "label_names": list(TASKS), "dtype": "int16", "scale_mv": SCALE_MV, "units": "mV",
                 "ecgkit_version": __version__, "config": json.dumps({"synthetic": True}), "manifest_hash": "",
                 "split": split, "shard": shard, "plan_hash": ""}
        for k, v in attrs.items():
            f.attrs[k] = v
    os.replace(tmp, path)
    return {"split": split, "shard": shard, "ids": ids, "bytes": os.path.getsize(path)}


def build_shards(out: Path, n_train: int, n_val: int, unique: int, per_shard: int, workers: int,
                 length: int) -> float:
    """Write synthetic train/val shards + index.parquet in the ecgkit.shards layout; return seconds."""
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _POOLS["train"] = _pool(min(unique, n_train), 1, length)
    _POOLS["val"] = _pool(min(unique, n_val), 2, length)
    jobs = []
    for split, n in (("train", n_train), ("val", n_val)):
        for k, start in enumerate(range(0, n, per_shard)):
            shard = f"{split}-{k:05d}"
            jobs.append((str(out / f"{shard}.h5"), split, shard, start, min(per_shard, n - start)))
    ctx = mp.get_context("fork")  # the pools are inherited, not pickled
    with ctx.Pool(max(1, workers)) as pool:
        done = pool.map(_write_one, jobs, chunksize=1)
    index = pd.DataFrame({
        "record_id": [i for d in done for i in d["ids"]],
        "split": [d["split"] for d in done for _ in d["ids"]],
        "shard": [d["shard"] for d in done for _ in d["ids"]],
        "row": np.concatenate([np.arange(len(d["ids"]), dtype=np.int64) for d in done]),
        "shard_sha256": ["" for d in done for _ in d["ids"]],  # not computed: synthetic benchmark shards
        "shard_bytes": np.array([d["bytes"] for d in done for _ in d["ids"]], dtype=np.int64),
        "repairs": ["" for d in done for _ in d["ids"]],
    })
    index.to_parquet(out / "index.parquet", index=False)
    return time.perf_counter() - t0


def ceiling(args: argparse.Namespace, device: torch.device) -> float:
    """Samples/s of train_step with the batch already on the device (same model, loss, optimiser)."""
    from ecgkit.losses import make_weighting
    from ecgkit.models import make_model
    from ecgkit.trainer import TrainConfig, train_step
    from ecgkit.trainer.step import _optimizer

    from ecgkit.trainer.step import _conv_path

    cfg = TrainConfig(blocks=args.blocks, batch_size=args.batch_size)
    model = make_model(len(TASKS), n_blocks=args.blocks, base_filters=args.base_filters)
    model.set_conv_path(_conv_path(args.conv_path, device)).to(device)
    weighting = make_weighting("equal", len(TASKS)).to(device)
    opt, sched = _optimizer(cfg, model, weighting, args.steps + args.warmup)
    run = torch.compile(model) if (args.compile and device.type == "cuda") else model
    x = torch.randn(args.batch_size, 12, args.length, device=device)
    y = torch.randint(0, 2, (args.batch_size, len(TASKS)), device=device, dtype=torch.int8)
    amp = args.amp and device.type == "cuda"

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    if args.cuda_graph and device.type == "cuda":  # the step the trainer runs (TrainConfig.cuda_graph)
        from ecgkit.trainer.graphed import GraphedStep
        graphed = GraphedStep(run, weighting, opt, sched, amp=amp, grad_clip=cfg.grad_clip)

        def step(i: int) -> None:
            graphed(x, y, i % len(TASKS))
    else:
        def step(i: int) -> None:
            train_step(run, weighting, opt, sched, x, y, i % len(TASKS), amp=amp, grad_clip=cfg.grad_clip)

    for i in range(args.warmup):
        step(i)
    sync()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    sync()
    return args.steps * args.batch_size / (time.perf_counter() - t0)


def loader_rate(args: argparse.Namespace, shards: Path, device: torch.device) -> tuple[float, bool]:
    """Samples/s of the training DataLoader alone (sampler -> workers -> pinned batches)."""
    from ecgkit.trainer import TrainConfig
    from ecgkit.trainer.batches import _EpochBatches, _open_dataset, _task_aware_sampler
    from ecgkit.trainer.loader import _BatchSource, _loader, _ship_mode

    cfg = TrainConfig(batch_size=args.batch_size, num_workers=args.workers)
    ds = _open_dataset(str(shards), "train", None)
    n = args.warmup + args.steps
    sampler = _task_aware_sampler(np.asarray(ds.labels), args.batch_size, task_weights=None, weight_fn="log",
                                  seed=0, batches_per_epoch=n, rank=0, world_size=1)
    mode, _ = _ship_mode(ds, args.amp and device.type == "cuda")
    loader = _loader(_BatchSource(ds, np.asarray(ds.labels), mode), _EpochBatches(sampler, 0), cfg, device)
    t0, seen = None, 0
    for i, (_, sig, _, _) in enumerate(loader):
        if i == args.warmup:
            t0 = time.perf_counter()
        elif i > args.warmup:
            seen += len(sig)
    return seen / (time.perf_counter() - t0), mode  # type: ignore[operator]


def _hughes(args: argparse.Namespace) -> dict:
    return {"filter_growth": "linear", "head": "flatten"} if args.hughes else {}


def end_to_end(args: argparse.Namespace, shards: Path, device: torch.device) -> dict:
    from ecgkit.trainer import TrainConfig, train

    interval = max(1, args.steps // 10)
    total = args.warmup + args.steps
    total = int(np.ceil(total / interval) * interval)
    cfg = TrainConfig(shards_dir=str(shards), blocks=args.blocks, batch_size=args.batch_size, epochs=1,
                      batches_per_epoch=total, log_interval=interval, val_split="val" if args.eval else None,
                      tensorboard=False, compile=args.compile, amp=args.amp, device=device.type,
                      num_workers=args.workers, warmup_steps=min(100, total // 4), lr=args.lr,
                      conv_path=args.conv_path, seed=args.seed, cuda_graph=args.cuda_graph,
                      base_filters=args.base_filters, **_hughes(args))
    out = Path(tempfile.mkdtemp(prefix="ecgkit-bench-run-"))
    try:
        res = train(cfg, out)
    finally:
        if int(os.environ.get("RANK", "0")) == 0:
            shutil.rmtree(out, ignore_errors=True)
    rates = [r for s, r in res.interval_samples_per_s if s > args.warmup]
    return {"end_to_end_samples_per_s": statistics.median(rates) if rates else res.samples_per_s,
            "end_to_end_interval_rates": [round(r) for _, r in res.interval_samples_per_s],
            "val_macro_auroc": res.history[-1].get("val_macro_auroc") if res.history else None,
            "final_loss": res.interval_losses[-1][1] if res.interval_losses else None,
            "end_to_end_steps_total": res.step}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", type=Path, help="existing shard folder (built here when missing)")
    p.add_argument("--records", type=int, default=100_000, help="training records to write")
    p.add_argument("--val-records", type=int, default=4096)
    p.add_argument("--unique-records", type=int, default=2048, help="distinct records each shard cycles through")
    p.add_argument("--records-per-shard", type=int, default=1024)
    p.add_argument("--build-only", action="store_true", help="write the shards and exit")
    p.add_argument("--keep", action="store_true", help="keep shards this script built in a temporary folder")
    p.add_argument("--device", default="cuda")
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=300, help="timed steps")
    p.add_argument("--warmup", type=int, default=60, help="untimed steps first (compile, cuDNN autotune)")
    p.add_argument("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 2)))
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--no-amp", dest="amp", action="store_false")
    p.add_argument("--skip-ceiling", action="store_true")
    p.add_argument("--skip-loader", action="store_true")
    p.add_argument("--eval", action="store_true", help="validate at the end (val macro AUROC in the JSON)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--length", type=int, default=int(FS * SECONDS))
    p.add_argument("--conv-path", default="auto", choices=["auto", "conv1d", "channels_last"],
                   help="how the convolutions run (auto: channels_last on CUDA)")
    p.add_argument("--base-filters", type=int, default=32, help="ceiling only: filters of the first block")
    p.add_argument("--seed", type=int, default=0, help="end to end: the training seed")
    p.add_argument("--cuda-graph", default="off", choices=["on", "off"],
                   help="end to end: the whole step as one CUDA graph (TrainConfig.cuda_graph)")
    p.add_argument("--hughes", action="store_true",
                   help="end to end: Hughes et al.'s linear filter growth and flattened head")
    args = p.parse_args()
    args.cuda_graph = args.cuda_graph == "on"

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available() and not args.build_only:
        sys.exit("no CUDA device visible; use --device cpu for a smoke test")
    result: dict = {"ecgkit": __version__, "torch": torch.__version__, "python": platform.python_version(),
                    "device": (torch.cuda.get_device_name() if device.type == "cuda" and torch.cuda.is_available()
                               else platform.processor() or "cpu"),
                    "cpus": os.cpu_count(), "world_size": world, "blocks": args.blocks,
                    "batch_size_per_gpu": args.batch_size, "compile": args.compile, "amp_bf16": args.amp,
                    "workers": args.workers, "steps": args.steps,
                    "conv_path": args.conv_path, "cuda_graph": args.cuda_graph, "hughes": args.hughes, "base_filters": args.base_filters, "length": args.length}
    built_tmp = None
    shards = args.shards
    if shards is None or not (shards / "index.parquet").exists():
        if world > 1:
            sys.exit("under torchrun, build the shards first: --build-only --shards DIR")
        if shards is None:
            shards = built_tmp = Path(tempfile.mkdtemp(prefix="ecgkit-bench-shards-"))
        result["shard_build_s"] = round(build_shards(shards, args.records, args.val_records, args.unique_records,
                                                     args.records_per_shard, os.cpu_count() or 2, args.length), 2)
        result["shard_gb"] = round(sum(f.stat().st_size for f in shards.glob("*.h5")) / 1e9, 2)
    if args.build_only:
        print(json.dumps({**result, "shards": str(shards)}))
        return
    result["records"] = int((pd.read_parquet(shards / "index.parquet")["split"] == "train").sum())
    try:
        if world == 1 and not args.skip_ceiling:
            result["ceiling_samples_per_s"] = round(ceiling(args, device))
        if world == 1 and not args.skip_loader:
            rate, raw = loader_rate(args, shards, device)
            result["loader_samples_per_s"] = round(rate)
            result["loader_ships"] = raw
        result.update(end_to_end(args, shards, device))
        result["end_to_end_samples_per_s"] = round(result["end_to_end_samples_per_s"])
        if "ceiling_samples_per_s" in result:
            result["end_to_end_over_ceiling"] = round(result["end_to_end_samples_per_s"]
                                                      / result["ceiling_samples_per_s"], 3)
    finally:
        if built_tmp is not None and not args.keep:
            shutil.rmtree(built_tmp, ignore_errors=True)
    if rank == 0:
        print(json.dumps(result))
    if world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
