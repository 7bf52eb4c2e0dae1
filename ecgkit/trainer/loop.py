"""The training loop: shards -> a multi-head 1D ResNet run directory.

``train(config, out_dir)`` reads ``ShardDataset`` splits, builds the Hannun ResNet with one head per
task (major tasks first, then CO-TASK auxiliary tasks), and trains it with either

- ``sampler="task_aware"`` (the CO-TASK procedure): each batch comes from ``TaskAwareSampler`` with
  its task; the loss is that task's head only. Auxiliary tasks are sampled like major tasks: the
  sampler runs over the (N, T + M) label matrix of major and auxiliary labels, so an auxiliary task
  gets its own batches drawn from its 1/n subset (its labels are -1 elsewhere, never drawn). By
  default every head is picked uniformly; ``aux_task_fraction`` sets the share of auxiliary batches.
- ``sampler="joint"``: shuffled batches with all labels and a masked BCE (unknown labels ignored),
  optionally over a rebalanced training set (``oversample``: Hughes' UCSF subset or duplicates).
- ``sampler="major_task"``: batches drawn class-balanced for the major tasks only (the task-aware
  draw restricted to ``major_tasks``), every head trained on them with the masked BCE.

``major_tasks`` (default: every label) also sets the task-aware sampler's task weights
(``major_weight`` : 1), the CO-TASK auxiliary pairs' weights, and the tasks early stopping scores
(``ecgkit.trainer.validation``). What the run decided from the data is written to ``run_info.json``.

The per-task losses are combined by ``weighting`` (equal, DWA, uncertainty; see ``ecgkit.losses``).
Read :func:`train` top to bottom: set up, build, then epochs of steps, each epoch ending with the
loss weights' update, validation, early stopping and checkpoints.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, cast

import numpy as np
import torch
import yaml
from torch import nn

from ecgkit import __version__
from ecgkit.config import config_to_dict
from ecgkit.errors import ConfigError, DataError
from ecgkit.trainer import batches
from ecgkit.trainer.checkpoint import _atomic_save, _write_csv, load_checkpoint
from ecgkit.trainer.config import (AUX_FILE, BEST_CKPT, CONFIG_FILE, LAST_CKPT, METRICS_FILE, RUN_INFO_FILE,
                                   TrainConfig, TrainResult)
from ecgkit.trainer.distributed import _all_gather_objects, _all_gather_rows, _Dist, _restore_rng, _rng_state, _setup
from ecgkit.trainer.loader import _BatchSource, _loader, _ship_mode, _to_device
from ecgkit.trainer.predict import predict
from ecgkit.trainer.rundir import check_shards, has_run, prepare_run_dir, run_lock
from ecgkit.trainer.graphed import GraphedStep, portable_optimizer_state
from ecgkit.trainer.heads import _Heads, _make_heads, _make_sampler, _stitch_columns
from ecgkit.trainer.log import _Log
from ecgkit.trainer.step import _build, _conv_path, _optimizer, train_step
from ecgkit.trainer.validation import check_scored_tasks, val_scores

logger = logging.getLogger("ecgkit.train")

__all__ = ["train"]


@dataclass
class _State:
    """Where the run stands; what a checkpoint saves beside the model and optimiser."""

    step: int = 0
    epoch: int = 0
    skip: int = 0  # batches of `epoch` already done (resume mid-epoch)
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = -math.inf
    best_step: int = -1  # step of the model in best.pt (-1: none yet)
    bad_epochs: int = 0
    ep_sum: torch.Tensor | None = None  # (H,) float64 loss sums of the current epoch, per head
    ep_cnt: torch.Tensor | None = None  # (H,) float64 batch counts of the current epoch, per head


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          datasets: Mapping[str, Any] | None = None,
          on_epoch: Callable[[Mapping[str, Any]], None] | None = None) -> TrainResult:
    """Train a multi-head ResNet on shards and write a run directory.

    Parameters
    ----------
    config : TrainConfig
        ``config.shards_dir`` names the shards unless ``datasets`` is given.
    out_dir : path
        Run directory (created).
    resume : bool
        Continue from ``out_dir/last.pt`` exactly where it stopped (same batches, same dropout
        masks, same optimiser and scheduler state).
    overwrite : bool
        Replace a run already in ``out_dir`` (its checkpoints, logs and reports are removed first).
        Without ``resume`` or ``overwrite``, a folder holding a run is refused.
    datasets : mapping, optional
        ``{"train": ..., "val": ...}`` ShardDataset-like objects to use instead of opening
        ``config.shards_dir`` (in-memory data, tests).
    on_epoch : callable(row) or None
        Called on the main process after each epoch with its ``metrics.csv`` row plus ``epochs``
        (the maximum), ``samples_per_s`` and ``eta_s`` (time left at this pace); the CLI prints one
        line per epoch from it.

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        No shards given, or a device that is unknown or not available.
    DataError
        Before anything is written: the shards folder is missing, empty or not a shards folder;
        ``out_dir`` holds a run and neither ``resume`` nor ``overwrite`` is given, or ``resume``
        has no checkpoint; another process is training into ``out_dir``.
    """
    if config.method == "damtl":  # Algorithm 1 of DAMTL: its own loop (ecgkit.trainer.damtl)
        from ecgkit.trainer.damtl import train_damtl
        return train_damtl(config, out_dir, datasets=datasets, resume=resume)
    device, dist_info = _setup(config)
    if datasets is None:
        if not config.shards_dir:
            raise ConfigError("TrainConfig.shards_dir is not set and no datasets were given")
        # absolute, so that `ecgkit evaluate RUN` finds the shards from any working directory
        config = dataclasses.replace(config, shards_dir=str(check_shards(config.shards_dir)))
    splits = _open_splits(config, datasets)  # before any output: bad shards leave no half-made run
    if dist_info.main:
        out = prepare_run_dir(out_dir, resume=resume, overwrite=overwrite)
    else:
        out = Path(out_dir).expanduser().resolve()
    fresh = dist_info.main and not out.exists()
    try:
        with run_lock(out, enabled=dist_info.main):
            return _train(config, out, device, dist_info, splits, resume=resume, on_epoch=on_epoch)
    except BaseException:
        if fresh and not has_run(out):  # failed before its first checkpoint: leave no half-made run folder
            shutil.rmtree(out, ignore_errors=True)
        raise


def _train(config: TrainConfig, out: Path, device: torch.device, dist_info: _Dist, splits: tuple[Any, Any], *,
           resume: bool, on_epoch: Callable[[Mapping[str, Any]], None] | None) -> TrainResult:
    ckpt = _resume_checkpoint(out) if resume else None
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        meta = {"ecgkit_version": __version__, **config_to_dict(config)}
        (out / CONFIG_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    train_ds, val_ds = splits
    heads = _make_heads(config, train_ds, ckpt)
    scored, no_score = None, None
    if val_ds is not None:
        scored, no_score = check_scored_tasks(np.asarray(val_ds.labels)[:, :heads.n_major], heads.major,
                                              heads.names, config.early_stopping, config.early_stopping_min_positives)
        if no_score:
            logger.warning("%s: training without early stopping (every epoch is kept as best.pt)", no_score)
            scored = None
    if dist_info.main:
        batches._save_aux(heads.aux_defs, out / AUX_FILE)
    sampler, sampling = _make_sampler(config, heads, dist_info)
    if dist_info.main:
        _write_run_info(out / RUN_INFO_FILE, config, heads, sampling, scored, no_score)

    sample_signal, _ = train_ds.get_batch(np.zeros(1, dtype=np.int64))
    raw_model, weighting = _build(config, sample_signal.shape[1], len(heads.names), sample_signal.shape[2],
                                  columns=_stitch_columns(heads, config, train_ds)
                                  if config.sharing == "cross_stitch" else None)
    if dist_info.main:
        _add_model_info(out / RUN_INFO_FILE, raw_model, config)
    raw_model.set_conv_path(_conv_path(config.conv_path, device)).to(device)
    weighting.to(device)
    # the schedule spans the planned epochs, also under max_steps: a run stopped there and resumed
    # continues exactly as one that never stopped
    opt, sched = _optimizer(config, raw_model, weighting, config.epochs * len(sampler), len(sampler))
    state = _State(ep_sum=torch.zeros(len(heads.names), dtype=torch.float64, device=device),
                   ep_cnt=torch.zeros(len(heads.names), dtype=torch.float64, device=device))
    if ckpt is not None:
        _restore(ckpt, state, raw_model, weighting, opt, sched, sampler, dist_info, device)
        logger.info("resumed %s at epoch %d, batch %d, step %d", out, state.epoch + 1, state.skip, state.step)
    else:
        torch.manual_seed(config.seed + 1000 * dist_info.rank)  # per-rank dropout stream

    model = _wrap(raw_model, config, device, dist_info)
    graphed = (GraphedStep(model, weighting, opt, sched, amp=config.amp and device.type == "cuda",
                           grad_clip=config.grad_clip)
               if config.cuda_graph and device.type == "cuda" and dist_info.world_size == 1 else None)
    use_amp = config.amp and device.type == "cuda"
    ship, scale = _ship_mode(train_ds, use_amp)
    source = _BatchSource(train_ds, heads.labels, ship)
    logger.info("data path: %s batches from %d worker(s) to %s", ship,
                config.num_workers if device.type == "cuda" else 0, device)
    log = _Log(config, out, heads.names, dist_info, device, resumed_at=state.step if ckpt is not None else None,
               on_epoch=on_epoch)

    def save(path: Path, sampler_state: Any, batch_in_epoch: int) -> None:
        _save_checkpoint(path, state, batch_in_epoch, sampler_state, raw_model, weighting, opt, sched, config,
                         heads, train_ds, dist_info, device)

    stopped_early = False
    raw_model.train()
    for epoch in range(state.epoch, config.epochs):
        state.epoch = epoch
        sampler.set_epoch(epoch)
        sampler_state = sampler.state_dict() if state.skip == 0 else ckpt["sampler"]  # type: ignore[index]
        loader = _loader(source, batches._EpochBatches(sampler, state.skip), config, device)
        for task, signals, labels, k in log.progress(loader, epoch):
            x, y = _to_device(signals, labels, device, scale)
            if graphed is not None and task >= 0:
                task_losses, present = graphed(x, y, task)
            else:
                task_losses, present = train_step(model, weighting, opt, sched, x, y, task, amp=use_amp,
                                                  grad_clip=config.grad_clip, distributed=dist_info.world_size > 1)
            state.step += 1
            log.step(state, task_losses, present, len(signals), float(sched.get_last_lr()[0]))
            if config.max_steps is not None and state.step >= config.max_steps:
                save(out / LAST_CKPT, sampler_state, k + 1)
                logger.info("reached max_steps=%d in epoch %d at batch %d", state.step, epoch + 1, k + 1)
                return log.finish(state, stopped_early=False)
            if config.checkpoint_interval and state.step % config.checkpoint_interval == 0:
                save(out / LAST_CKPT, sampler_state, k + 1)
        state.skip = 0

        row = _end_epoch(state, weighting, heads, float(sched.get_last_lr()[0]), dist_info)
        val = _validate(raw_model, val_ds, heads, scored, config, device, dist_info)
        row.update(val)
        row["elapsed_s"] = log.elapsed()
        state.history.append(row)
        score = val["val_score"]
        improved = scored is None or (np.isfinite(score) and score > state.best)
        if improved:
            state.best = score if scored is not None else state.best
            state.best_step, state.bad_epochs = state.step, 0
        else:
            state.bad_epochs += 1
        log.epoch(epoch, row, state)
        state.epoch = epoch + 1
        # best.pt before last.pt: a kill between the two leaves last.pt one epoch behind, and resume
        # repeats that epoch (deterministically) instead of keeping a best.pt older than its metric
        if improved:
            save(out / BEST_CKPT, sampler.state_dict(), 0)
        save(out / LAST_CKPT, sampler.state_dict(), 0)
        if dist_info.main:
            _write_csv(state.history, out / METRICS_FILE)
        if scored is not None and state.bad_epochs >= config.patience:
            logger.info("early stop after epoch %d: no gain in %d epochs", epoch + 1, config.patience)
            stopped_early = True
            break
    return log.finish(state, stopped_early=stopped_early)


# --------------------------------------------------------------------------- set-up steps

def _resume_checkpoint(out: Path) -> dict[str, Any]:
    """``last.pt`` of a run to resume; repairs ``best.pt`` when a kill left it behind ``last.pt``."""
    if not (out / LAST_CKPT).exists():
        raise DataError(f"--resume given but {out / LAST_CKPT} does not exist")
    ckpt = load_checkpoint(out / LAST_CKPT)
    best_step = ckpt.get("best_step", -1)
    if best_step >= 0 and best_step == ckpt["step"]:
        best_path = out / BEST_CKPT
        have = load_checkpoint(best_path).get("step") if best_path.exists() else None
        if have != best_step:  # written by a version that saved last.pt first, killed in between
            logger.warning("best.pt (step %s) is behind last.pt's best model (step %d): restored from last.pt",
                           have, best_step)
            shutil.copyfile(out / LAST_CKPT, best_path)
    return ckpt


def _open_splits(config: TrainConfig, datasets: Mapping[str, Any] | None) -> tuple[Any, Any]:
    def open_split(split: str) -> Any:
        if datasets is not None:
            return datasets[split]
        return batches._open_dataset(str(config.shards_dir), split, config.tasks)

    return open_split("train"), (open_split(config.val_split) if config.val_split else None)


def _add_model_info(path: Path, model: nn.Module, config: TrainConfig) -> None:
    """``run_info.json`` += the model's parameter count and sharing (compare hard and cross-stitch)."""
    import json
    info = json.loads(path.read_text())
    info["model"] = {"sharing": config.sharing, "n_parameters": int(sum(p.numel() for p in model.parameters())),
                     "columns": [list(c) for c in getattr(getattr(model, "config", None), "columns", ())] or None}
    path.write_text(json.dumps(info, indent=1))


def _write_run_info(path: Path, config: TrainConfig, heads: _Heads, sampling: dict[str, Any],
                    scored: list[int] | None, no_score: str | None) -> None:
    import json
    info = {"major_tasks": [heads.names[j] for j in heads.major],
            "minor_tasks": [n for j, n in enumerate(heads.names[:heads.n_major]) if j not in heads.major],
            "aux_heads": heads.names[heads.n_major:], **sampling,
            "label_noise": {"rate": config.label_noise, "train_labels_changed": heads.noise_changed},
            "early_stopping": {"criterion": config.early_stopping if scored is not None else None,
                               "min_val_positives": config.early_stopping_min_positives,
                               "scored_tasks": None if scored is None else [heads.names[j] for j in scored],
                               "patience": config.patience, "not_used_because": no_score}}
    path.write_text(json.dumps(info, indent=1))


def _restore(ckpt: Mapping[str, Any], state: _State, model: nn.Module, weighting: Any, opt: Any, sched: Any,
             sampler: Any, dist_info: _Dist, device: torch.device) -> None:
    model.load_state_dict(ckpt["model"])
    weighting.load_state_dict(ckpt["weighting"])
    weighting.load_extra_state(ckpt["weighting_extra"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    # every rank is at the same position of its own stream; rank 0 saved its state
    sampler.load_state_dict({**ckpt["sampler"], "rank": dist_info.rank} if "rank" in ckpt["sampler"]
                            else ckpt["sampler"])
    state.step, state.epoch, state.skip = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
    state.history, state.best, state.bad_epochs = ckpt["history"], ckpt["best"], ckpt["bad_epochs"]
    state.best_step = ckpt.get("best_step", -1)
    _restore_rng(ckpt["rng"], dist_info.rank, device)  # raises when the world size changed
    per_rank = ckpt["rng"].get("per_rank")
    losses = per_rank[dist_info.rank] if per_rank is not None else ckpt  # this rank's partial epoch
    state.ep_sum = torch.tensor(losses["epoch_loss_sum"], dtype=torch.float64, device=device)
    state.ep_cnt = torch.tensor(losses["epoch_loss_count"], dtype=torch.float64, device=device)


def _wrap(raw_model: nn.Module, config: TrainConfig, device: torch.device, dist_info: _Dist) -> nn.Module:
    model: nn.Module = raw_model
    if dist_info.world_size > 1:
        model = nn.parallel.DistributedDataParallel(
            raw_model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile and device.type == "cuda":
        model = cast(nn.Module, torch.compile(model))
    return model


# --------------------------------------------------------------------------- end of an epoch

def _end_epoch(state: _State, weighting: Any, heads: _Heads, lr: float, dist_info: _Dist) -> dict[str, Any]:
    """Update the loss weights from the epoch's per-head losses; the epoch's row of ``metrics.csv``."""
    ep_sum, ep_cnt = cast(torch.Tensor, state.ep_sum), cast(torch.Tensor, state.ep_cnt)
    if dist_info.world_size > 1:  # epoch losses over all ranks: the same DWA weights everywhere
        torch.distributed.all_reduce(ep_sum)
        torch.distributed.all_reduce(ep_cnt)
    ep_mean = (ep_sum / ep_cnt.clamp(min=1)).float().cpu()
    weighting.observe(ep_mean, (ep_cnt > 0).cpu())
    weighting.end_epoch()
    # epochs count from 1 everywhere a person reads them: logs, metrics.csv, plots
    row: dict[str, Any] = {"epoch": state.epoch + 1, "step": state.step,
                           "train_loss": float(ep_sum.sum() / ep_cnt.sum().clamp(min=1)), "lr": lr}
    row.update({f"loss_{h}": float(v) if c else float("nan")
                for h, v, c in zip(heads.names, ep_mean.tolist(), ep_cnt.tolist())})
    # the weights the next epoch's losses get (DWA, uncertainty): without them a run cannot show
    # whether its weighting did anything
    row.update({f"weight_{h}": float(w) for h, w in zip(heads.names, weighting.weights().tolist())})
    ep_sum.zero_()
    ep_cnt.zero_()
    return row


def _validate(model: nn.Module, val_ds: Any, heads: _Heads, scored: list[int] | None, config: TrainConfig,
              device: torch.device, dist_info: _Dist) -> dict[str, float]:
    if val_ds is None or scored is None:
        return {"val_macro_auroc": float("nan"), "val_loss": float("nan"), "val_score": float("nan")}
    scores = predict(model, val_ds, n_tasks=heads.n_major, device=device, batch_size=config.eval_batch_size,
                     amp=config.amp, num_workers=config.num_workers if device.type == "cuda" else 0,
                     rank=dist_info.rank, world_size=dist_info.world_size)
    parts = _all_gather_rows(scores, dist_info)
    scores = np.fmax.reduce(parts) if len(parts) > 1 else parts[0]  # each row is set by one rank
    labels = np.asarray(val_ds.labels, dtype=np.int8)[:, :heads.n_major]
    return val_scores(labels, scores, major=heads.major, scored=scored, criterion=config.early_stopping)


def _save_checkpoint(path: Path, state: _State, batch_in_epoch: int, sampler_state: Any, model: Any,
                     weighting: Any, opt: Any, sched: Any, config: TrainConfig, heads: _Heads, train_ds: Any,
                     dist_info: _Dist, device: torch.device) -> None:
    # Every rank calls this at the same step: each rank's dropout streams and partial epoch losses
    # are gathered so that a resumed multi-GPU run continues exactly too.
    ep_sum, ep_cnt = cast(torch.Tensor, state.ep_sum), cast(torch.Tensor, state.ep_cnt)
    mine = {**_rng_state(device), "epoch_loss_sum": ep_sum.tolist(), "epoch_loss_count": ep_cnt.tolist()}
    per_rank = _all_gather_objects(mine, dist_info)
    if not dist_info.main:
        return
    _atomic_save({
        "model": model.state_dict(), "model_config": dataclasses.asdict(model.config),
        "weighting": weighting.state_dict(), "weighting_extra": weighting.extra_state(),
        "optimizer": portable_optimizer_state(opt), "scheduler": sched.state_dict(), "sampler": sampler_state,
        "epoch": state.epoch, "batch_in_epoch": batch_in_epoch, "step": state.step, "history": state.history,
        "best": state.best, "best_step": state.best_step, "bad_epochs": state.bad_epochs,
        "epoch_loss_sum": ep_sum.tolist(), "epoch_loss_count": ep_cnt.tolist(),
        "rng": {"torch": torch.get_rng_state(), "per_rank": per_rank},
        "config": config_to_dict(config), "label_names": heads.names[:heads.n_major], "head_names": heads.names,
        "n_major": heads.n_major, "aux_tasks": heads.aux_defs, "fs": getattr(train_ds, "fs", None),
        "ecgkit_version": __version__}, path)
