"""Why do task-aware arms trail the joint arm? Measure the suspects on finished runs of an experiment.

Usage: ``python benchmarks/diagnose_task_aware.py EXP_DIR SHARDS_DIR --arms multi_task,task_aware,cotask
[--device cuda] [--out diag.json]``

For every ``EXP_DIR/<arm>/seed-<s>/`` run it reports, on the validation-chosen (max F1) thresholds:

- **head updates**: optimiser steps, heads, the updates each major head got (every step for a
  joint batch; the head's share of task-aware batches otherwise) and the positive examples each
  head saw per update (measured by replaying the run's sampler for one epoch);
- **batch-norm statistics**: test macro AUROC, Jaccard and exact match with the checkpoint's
  running statistics and after re-estimating them on natural (shuffled, not rebalanced) training
  batches (``--bn-batches``, cumulative average, no weight changes);
- **head calibration**: mean predicted probability over prevalence per task, and the predicted
  positive rate at the chosen threshold over prevalence (how many false positives the
  multi-label metrics pay for);
- **schedule**: epochs run, the epoch of the best validation score, the last learning rate;
- **auxiliary share**: the share of task-aware batches that went to auxiliary heads.

Prints one JSON document (also written to ``--out``).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgkit import metrics as M  # noqa: E402
from ecgkit.data import ShardDataset  # noqa: E402
from ecgkit.trainer import predict  # noqa: E402
from ecgkit.trainer.checkpoint import _model_from_ckpt, load_checkpoint  # noqa: E402


def _multi(y: np.ndarray, s: np.ndarray, thr: np.ndarray) -> dict[str, float]:
    pred = s >= thr[None, :]
    return {"macro_auroc": M.macro_auroc(y, s), "jaccard": M.jaccard(y, pred), "exact_match": M.exact_match(y, pred),
            "recall_multi": M.recall_multi(y, pred)}


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, ds: ShardDataset, n_batches: int, batch_size: int, device: torch.device,
                   seed: int = 0) -> None:
    """Re-estimate every BatchNorm's running mean/var on natural training batches (cumulative average)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches below
    model.eval()
    for m in bns:
        m.train()  # only BN in train mode: dropout stays off
    rng = np.random.default_rng(seed)
    for _ in range(n_batches):
        idx = np.sort(rng.choice(len(ds), size=min(batch_size, len(ds)), replace=False))
        x, _ = ds.get_batch(idx)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            model(torch.from_numpy(x).to(device))
    model.eval()


def _sampler_positive_share(labels: np.ndarray, batch_size: int, seed: int, n_heads: int) -> list[float]:
    """Mean share of positives per task-aware batch, per major head, over one replayed epoch."""
    from ecgkit.sampler import TaskAwareSampler

    sampler = TaskAwareSampler(labels, batch_size, seed=seed)
    pos = np.zeros(labels.shape[1])
    cnt = np.zeros(labels.shape[1])
    for task, idx in sampler:
        if task < labels.shape[1]:
            pos[task] += float((labels[idx, task] == 1).mean())
            cnt[task] += 1
    return [float(p / c) if c else float("nan") for p, c in zip(pos, cnt)]


def diagnose_run(run: Path, shards: str, device: torch.device, bn_batches: int) -> dict[str, Any]:
    ckpt = load_checkpoint(run / "best.pt" if (run / "best.pt").exists() else run / "last.pt")
    cfg = ckpt["config"]
    n_major = int(ckpt["n_major"])
    names = list(ckpt["label_names"])
    n_heads = len(ckpt["head_names"])
    tasks = cfg.get("tasks")
    val, test, train = (ShardDataset(shards, s, tasks=tasks) for s in ("val", "test", "train"))
    model = _model_from_ckpt(ckpt).to(device)
    bs = int(cfg.get("eval_batch_size", 512))

    def scores(ds: ShardDataset) -> np.ndarray:
        return predict(model, ds, n_tasks=n_major, device=device, batch_size=bs, amp=True)

    yv, yt = np.asarray(val.labels), np.asarray(test.labels)
    sv, st = scores(val), scores(test)
    thr = M.choose_thresholds(yv, sv)
    prev = (yt == 1).sum(axis=0) / np.maximum((yt >= 0).sum(axis=0), 1)
    pred_rate = (st >= thr[None, :]).mean(axis=0)
    out: dict[str, Any] = {"running_bn": _multi(yt, st, thr),
                           "calibration_mean_p_over_prevalence": dict(zip(names, (st.mean(axis=0) /
                                                                                 np.maximum(prev, 1e-9)).tolist())),
                           "predicted_positive_rate_over_prevalence": dict(zip(names, (pred_rate /
                                                                                      np.maximum(prev, 1e-9)).tolist())),
                           "per_task_auroc": dict(zip(names, M.auroc(yt, st).tolist()))}
    recalibrate_bn(model, train, bn_batches, 256, device)
    sv2, st2 = scores(val), scores(test)
    out["recalibrated_bn"] = _multi(yt, st2, M.choose_thresholds(yv, sv2))
    out["per_task_auroc_recalibrated_bn"] = dict(zip(names, M.auroc(yt, st2).tolist()))
    done = json.loads((run / "done.json").read_text())
    steps = int(done["step"])
    joint = cfg.get("sampler") == "joint"
    with open(run / "metrics.csv", newline="") as fh:
        hist = list(csv.DictReader(fh))
    vals = [float(r.get("val_macro_auroc") or "nan") for r in hist]
    out["schedule"] = {"epochs_run": len(hist), "best_epoch": int(np.nanargmax(vals)) if hist else None,
                       "last_lr": float(hist[-1]["lr"]) if hist else None, "val_macro_auroc": vals}
    out["head_updates"] = {"steps": steps, "heads": n_heads, "major_heads": n_major,
                           "updates_per_major_head": steps if joint else steps / n_heads,
                           "aux_share_of_batches": 0.0 if joint else (n_heads - n_major) / n_heads}
    lab = np.asarray(train.labels)
    if joint:
        out["head_updates"]["positives_per_update"] = dict(zip(names, ((lab == 1).mean(axis=0) * cfg["batch_size"])
                                                              .tolist()))
    else:
        share = _sampler_positive_share(lab, int(cfg["batch_size"]), int(cfg.get("seed", 0)), n_heads)
        out["head_updates"]["positives_per_update"] = dict(zip(names, [s * cfg["batch_size"] for s in share]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("exp_dir", type=Path)
    ap.add_argument("shards_dir")
    ap.add_argument("--arms", default="multi_task,task_aware,cotask")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--bn-batches", type=int, default=100)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    device = torch.device(args.device)
    result: dict[str, Any] = {}
    for arm in args.arms.split(","):
        for run in sorted((args.exp_dir / arm).glob("seed-*")):
            if (run / "done.json").exists():
                result[f"{arm}/{run.name}"] = diagnose_run(run, args.shards_dir, device, args.bn_batches)
                print(arm, run.name, json.dumps({k: result[f"{arm}/{run.name}"][k]
                                                 for k in ("running_bn", "recalibrated_bn")}), flush=True)
    text = json.dumps(result, indent=1, default=float)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
