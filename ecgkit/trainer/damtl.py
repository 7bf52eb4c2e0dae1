"""``TrainConfig.method="damtl"``: DAMTL's Algorithm 1 on shards whose records define different labels.

1. Pre-train the auxiliary big network: :func:`ecgkit.trainer.loop.train` on the union of the labels
   (every record with the labels its source defines; -1 elsewhere is masked out), into
   ``RUN/aux`` (or reuse ``damtl_aux_run``).
2. Build one masked network per task (``damtl_tasks``: label sets, e.g. ``["LVH+AFIB+RBBB",
   "LVH+IRBBB+VT"]``; by default one per cohort of multi-cohort shards): convolution weights ``Psi * W_aux``, own BN and heads.
3. Train the task networks jointly, end to end, on shuffled batches with
   ``sum_j L_j = CE_j + lambda_l1 ||Psi_j||_1 + lambda_cmmd CMMD_j`` (:func:`ecgkit.models.damtl.damtl_loss`),
   masks projected to >= 0 after each step; validation, early stopping and ``best.pt`` as the
   standard trainer (over the union labels, or ``major_tasks``).

The run directory has the standard trainer's files (``best.pt``/``last.pt`` rebuild a
:class:`~ecgkit.models.damtl.DAMTLPredictor`, so ``predict_run``, ``evaluate`` and ``export`` work),
plus ``damtl.json``: each task's labels and each layer's mask sparsity per task.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import yaml

from ecgkit import __version__
from ecgkit.config import config_to_dict
from ecgkit.errors import ConfigError, DataError
from ecgkit.models.damtl import DAMTLConfig, DAMTLNet, DAMTLPredictor, damtl_loss
from ecgkit.models.resnet1d import ResNet1d
from ecgkit.trainer import batches
from ecgkit.trainer.checkpoint import _atomic_save, _model_from_ckpt, _write_csv, load_checkpoint
from ecgkit.trainer.config import BEST_CKPT, CONFIG_FILE, LAST_CKPT, METRICS_FILE, TrainConfig, TrainResult
from ecgkit.trainer.predict import predict
from ecgkit.trainer.validation import check_scored_tasks, val_scores

logger = logging.getLogger("ecgkit.train")

__all__ = ["train_damtl", "DAMTL_FILE"]

DAMTL_FILE = "damtl.json"


def task_specs(config: TrainConfig, train_ds: Any) -> tuple[str, ...]:
    """The DAMTL tasks: ``damtl_tasks``, else one per cohort of the shards (the labels its source defines)."""
    if config.damtl_tasks:
        return tuple(config.damtl_tasks)
    cohorts = getattr(train_ds, "cohort_labels", None)
    if not cohorts:
        raise ConfigError("method='damtl' needs damtl_tasks (one label set per task, e.g. ['LVH+AFIB', 'LVH+VT']) "
                          "or shards of several cohorts (`ecgkit shard --cohort NAME=DIR ...`)")
    return tuple("+".join(labs) for labs in cohorts.values() if labs)


def _task_columns(config: TrainConfig, names: list[str], train_ds: Any = None) -> list[list[int]]:
    cols = []
    for spec in task_specs(config, train_ds):
        labels = [s for s in spec.split("+") if s]
        missing = [s for s in labels if s not in names]
        if missing or not labels:
            raise ConfigError(f"damtl task {spec!r} names labels {missing} that the shards lack ({names})")
        cols.append([names.index(s) for s in labels])
    return cols


def _aux_model(config: TrainConfig, out: Path, datasets: Mapping[str, Any] | None, names: list[str]) -> ResNet1d:
    """Algorithm 1, step 1: the auxiliary network on the union labels (trained here or reused)."""
    from ecgkit.trainer.loop import train

    run = Path(config.damtl_aux_run) if config.damtl_aux_run else out / "aux"
    if not config.damtl_aux_run:
        aux_cfg = dataclasses.replace(config, method="standard", damtl_tasks=None, aux_tasks=0, sharing="hard")
        train(aux_cfg, run, resume=(run / LAST_CKPT).exists(), datasets=datasets)
    path = run / BEST_CKPT if (run / BEST_CKPT).exists() else run / LAST_CKPT
    ckpt = load_checkpoint(path)
    if list(ckpt["label_names"]) != names or ckpt["model_config"].get("kind") is not None:
        raise ConfigError(f"auxiliary run {run} was trained on {ckpt['label_names']} (need a hard-sharing ResNet "
                          f"on the union labels {names})")
    model = _model_from_ckpt(ckpt)
    return model.keep_heads(range(len(names)))  # drop any CO-TASK heads


def train_damtl(config: TrainConfig, out_dir: str | Path, *, datasets: Mapping[str, Any] | None = None,
                resume: bool = False) -> TrainResult:
    """Train DAMTL (see the module docstring) and write a run directory.

    ``resume`` continues from ``RUN/last.pt`` (model, masks, optimiser, RNG, the position in the
    epoch) to the identical next step: a run stopped (``max_steps``, a kill between checkpoints
    repeats the lost steps) and resumed ends with the weights of one that never stopped.

    Raises
    ------
    ConfigError
        Missing or unknown ``damtl_tasks``, an auxiliary run on other labels.
    DataError
        ``resume`` without ``RUN/last.pt``.
    """
    out = Path(out_dir)
    ckpt = None
    if resume:
        if not (out / LAST_CKPT).exists():
            raise DataError(f"--resume given but {out / LAST_CKPT} does not exist")
        ckpt = load_checkpoint(out / LAST_CKPT)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(yaml.safe_dump({"ecgkit_version": __version__, **config_to_dict(config)},
                                                  sort_keys=False))
    if datasets is None and not config.shards_dir:
        raise ConfigError("TrainConfig.shards_dir is not set and no datasets were given")

    def open_split(split: str) -> Any:
        return datasets[split] if datasets is not None else batches._open_dataset(str(config.shards_dir), split,
                                                                                   config.tasks)

    train_ds = open_split("train")
    val_ds = open_split(config.val_split) if config.val_split else None
    names = list(train_ds.label_names)
    cols = _task_columns(config, names, train_ds)
    device = torch.device("cuda" if config.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if config.device == "auto" else config.device))
    aux = _aux_model(config, out, datasets, names)
    net = DAMTLNet(aux, cols, seed=config.seed).to(device)
    model = DAMTLPredictor(DAMTLConfig(aux=dataclasses.asdict(aux.config), task_labels=tuple(map(tuple, cols))),
                           net).to(device)
    labels = np.asarray(train_ds.labels, dtype=np.int8)
    major = list(range(len(names))) if not config.major_tasks else [names.index(t) for t in config.major_tasks]
    scored = None
    if val_ds is not None:
        scored, why = check_scored_tasks(np.asarray(val_ds.labels), major, names, config.early_stopping,
                                         config.early_stopping_min_positives)
        scored = scored or None
        if why:
            logger.warning("%s: training without early stopping", why)
    sampler = batches.JointBatchSampler(len(labels), config.batch_size, seed=config.seed,
                                        batches_per_epoch=config.batches_per_epoch)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)  # no decay: the L1 term regularises masks
    history: list[dict[str, Any]] = []
    best, best_step, bad, step, start_epoch, skip = -np.inf, -1, 0, 0, 0, 0
    sums = np.zeros(3)
    if ckpt is None:
        torch.manual_seed(config.seed + 1)
    else:
        if list(ckpt["label_names"]) != names or [list(t) for t in ckpt["model_config"]["task_labels"]] != cols:
            raise ConfigError(f"{out / LAST_CKPT} was trained on other labels or tasks; rerun without --resume")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        r = ckpt["resume"]
        history, best, best_step, bad = list(r["history"]), float(r["best"]), int(r["best_step"]), int(r["bad"])
        step, start_epoch, skip, sums = int(ckpt["step"]), int(r["epoch"]), int(r["skip"]), np.asarray(r["sums"])
        torch.set_rng_state(r["rng_cpu"])
        if device.type == "cuda" and r.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(r["rng_cuda"], device)
        logger.info("damtl: resumed %s at epoch %d, batch %d, step %d", out, start_epoch + 1, skip, step)
    stopped = False
    loss = torch.zeros(())
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        net.train()
        n_batches = skip
        if not skip:
            sums = np.zeros(3)
        before = {"history": list(history), "best": best, "best_step": best_step, "bad": bad}
        for b, (_, idx) in enumerate(sampler):
            if b < skip:
                continue  # done before the resume
            sig, _ = train_ds.get_batch(np.sort(idx))
            x = torch.as_tensor(np.asarray(sig, dtype=np.float32), device=device)
            y = torch.as_tensor(labels[np.sort(idx)], device=device)
            loss, parts = damtl_loss(net, x, y, lambda_l1=config.lambda_l1, lambda_cmmd=config.lambda_cmmd)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            net.project_masks_()
            step += 1
            n_batches += 1
            sums += [sum(parts["ce"]), sum(parts["l1"]), sum(parts["cmmd"])]
            if config.max_steps is not None and step >= config.max_steps:
                break
        skip = 0
        partial = n_batches < len(sampler)  # stopped by max_steps inside the epoch
        row: dict[str, Any] = {"epoch": epoch, "step": step, "train_loss": float(loss.detach()),
                               "ce": sums[0] / max(n_batches, 1), "mask_l1": sums[1] / max(n_batches, 1),
                               "cmmd": sums[2] / max(n_batches, 1)}
        if scored is not None and val_ds is not None:
            probs = predict(model, val_ds, n_tasks=len(names), device=device, batch_size=config.eval_batch_size,
                            amp=False)
            row.update(val_scores(np.asarray(val_ds.labels), probs, major=major, scored=scored,
                                  criterion=config.early_stopping))
        history.append(row)
        improved = scored is None or row["val_score"] > best
        if improved:
            best = row["val_score"] if scored is not None else best
            best_step, bad = step, 0
        else:
            bad += 1
        # a resume continues a partial epoch from its next batch, with the bookkeeping from before it
        resume_state = ({**before, "epoch": epoch, "skip": n_batches, "sums": sums.tolist()} if partial else
                        {"history": list(history), "best": best, "best_step": best_step, "bad": bad,
                         "epoch": epoch + 1, "skip": 0, "sums": [0.0, 0.0, 0.0]})
        resume_state.update(rng_cpu=torch.get_rng_state(),
                            rng_cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None)
        state = {"model": model.state_dict(), "model_config": dataclasses.asdict(model.config),
                 "config": config_to_dict(config), "label_names": names, "head_names": names,
                 "n_major": len(names), "aux_tasks": [], "fs": getattr(train_ds, "fs", None), "step": step,
                 "epoch": epoch + 1, "history": history, "best": best, "best_step": best_step,
                 "ecgkit_version": __version__, "optimizer": opt.state_dict(), "resume": resume_state}
        if improved:
            _atomic_save(state, out / BEST_CKPT)
        _atomic_save(state, out / LAST_CKPT)
        _write_csv(history, out / METRICS_FILE)
        logger.info("damtl epoch %d: ce %.4f, mask L1 %.1f, cmmd %.4f, val score %s", epoch, row["ce"],
                    row["mask_l1"], row["cmmd"], row.get("val_score"))
        if (config.max_steps is not None and step >= config.max_steps) or (
                scored is not None and bad >= config.patience):
            stopped = scored is not None and bad >= config.patience
            break
    (out / DAMTL_FILE).write_text(json.dumps({
        "tasks": [[names[c] for c in t] for t in cols], "lambda_l1": config.lambda_l1,
        "lambda_cmmd": config.lambda_cmmd,
        "mask_sparsity": net.mask_sparsity(), "mask_sparsity_tol": 1e-3}, indent=1))
    best_rows = [r for r in history if r["step"] == best_step]
    best_auc = float(best_rows[-1].get("val_macro_auroc", np.nan)) if best_rows else float("nan")
    return TrainResult(out, step, len(history), best_auc, history, stopped_early=stopped,
                       best_val_score=float(best) if np.isfinite(best) else float("nan"))
