"""Benchmark: 10 million weighted draws over 300,000 records, ecgkit vs the usual alternatives.

Same input, one run, one thread each:

* ecgkit ``TaskAwareSampler`` iterated as a batch sampler (batch 256): the full task-aware logic
  (pick a task per batch, class alias, record gather, Python ``yield`` of each batch);
* ecgkit ``TaskAwareSampler.draw`` (the same kernel for all batches in one call, no per-batch Python);
* ``torch.utils.data.WeightedRandomSampler`` with the equivalent per-record weights of one task
  (3AVB, ``sampler.record_weights(12)``), iterated as a DataLoader would;
* ``numpy.random.Generator.choice(N, size, p=weights)`` with the same weights;
* ``torch.multinomial`` alone (WeightedRandomSampler's kernel without its Python iteration), for context.

Run: ``python benchmarks/bench_sampler.py [--draws 10000000] [--records 300000]``.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from ecgkit.sampler import TaskAwareSampler  # noqa: E402

P18_RATIOS = [6.7, 100, 12, 60, 100, 30, 25, 50, 40, 500, 20, 700, 2321, 150, 300, 1000, 15, 12]


def p18_labels(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = np.stack([(rng.random(n) < 1.0 / (1.0 + r)).astype(np.int8) for r in P18_RATIOS], axis=1)
    lab[rng.random(lab.shape) < 0.01] = -1
    return lab


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=10_000_000)
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch
    from torch.utils.data import WeightedRandomSampler

    torch.set_num_threads(1)
    draws, bs = args.draws, args.batch_size
    n_batches = math.ceil(draws / bs)
    lab = p18_labels(args.records)

    t0 = time.perf_counter()
    sampler = TaskAwareSampler(lab, bs, seed=0, batches_per_epoch=n_batches)
    build_s = time.perf_counter() - t0
    sampler.draw(0, [0])  # numba: load the cached kernel (or compile it) outside the timing

    def ecgkit_iter() -> None:
        n = 0
        for _task, idx in sampler:
            n += idx.shape[0]
        assert n == n_batches * bs

    def ecgkit_bulk() -> None:
        sampler.draw(0, np.arange(n_batches))

    weights = sampler.record_weights(12)  # 3AVB: 1:2321, the most imbalanced task
    wrs = WeightedRandomSampler(torch.from_numpy(weights), num_samples=n_batches * bs, replacement=True,
                                generator=torch.Generator().manual_seed(0))

    def torch_wrs() -> None:
        n = 0
        for _ in wrs:
            n += 1

    w_t = torch.from_numpy(weights)
    gen = torch.Generator().manual_seed(0)

    def torch_multinomial() -> None:
        torch.multinomial(w_t, n_batches * bs, replacement=True, generator=gen)

    rng = np.random.default_rng(0)

    def numpy_choice() -> None:
        rng.choice(args.records, size=n_batches * bs, p=weights)

    total = n_batches * bs
    print(f"ecgkit sampler benchmark: {total:,} draws over {args.records:,} records x 18 tasks, batch {bs}, "
          f"median of {args.repeats}; python {platform.python_version()}, numpy {np.__version__}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} thread), cpus {os.cpu_count()}")
    print(f"  TaskAwareSampler build (tables for 18 tasks): {build_s * 1e3:.0f} ms")
    rates = {}
    for name, fn in [("ecgkit TaskAwareSampler (iterated, task-aware)", ecgkit_iter),
                     ("ecgkit TaskAwareSampler.draw (one kernel call)", ecgkit_bulk),
                     ("torch WeightedRandomSampler (iterated)", torch_wrs),
                     ("numpy Generator.choice(p=)", numpy_choice),
                     ("torch.multinomial (kernel only)", torch_multinomial)]:
        sec = timed(fn, args.repeats)
        rates[name] = total / sec
        print(f"  {name:<48s} {total / sec / 1e6:8.2f} M draws/s  ({sec:.3f} s)")
    ours = rates["ecgkit TaskAwareSampler (iterated, task-aware)"]
    for ref in ("torch WeightedRandomSampler (iterated)", "numpy Generator.choice(p=)",
                "torch.multinomial (kernel only)"):
        print(f"  ratio ecgkit iterated / {ref}: {ours / rates[ref]:.1f}x")
    print(f"  targets: >= 10x WeightedRandomSampler: {'MET' if ours >= 10 * rates['torch WeightedRandomSampler (iterated)'] else 'NOT MET'}; "
          f">= 20 M draws/s on one core: {'MET' if ours >= 20e6 else 'NOT MET'}")


if __name__ == "__main__":
    main()
