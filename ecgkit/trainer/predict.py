"""Using a trained run: probabilities for a dataset and for a run's split.

Exporting a run (the model file, TorchScript, ONNX) lives in :mod:`ecgkit.trainer.export`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ecgkit.config import make_config
from ecgkit.errors import ConfigError
from ecgkit.trainer.batches import _open_dataset
from ecgkit.trainer.checkpoint import _model_from_ckpt, load_checkpoint
from ecgkit.trainer.config import BEST_CKPT, LAST_CKPT, TrainConfig
from ecgkit.trainer.loader import _BatchSource, _loader, _ship_mode, _to_device
from ecgkit.trainer.step import _conv_path

__all__ = ["predict", "predict_run"]


@torch.no_grad()
def predict(model: nn.Module, dataset: Any, *, n_tasks: int | None = None, device: torch.device | str = "cpu",
            batch_size: int = 512, amp: bool = True, num_workers: int = 0, rank: int = 0,
            world_size: int = 1) -> NDArray[np.float32]:
    """Probabilities of the first ``n_tasks`` heads for every record of a dataset.

    Parameters
    ----------
    model : nn.Module
        (B, leads, L) -> logits (B, H).
    dataset : ShardDataset-like
        Anything with ``len`` and ``get_batch(indices)``.
    n_tasks : int, optional
        Keep the first n heads (the major tasks); default all.
    rank, world_size : int
        This process computes batches j with j % world_size == rank (rows of other ranks are NaN).

    Returns
    -------
    float32 array (N, n_tasks)
        Sigmoid probabilities, in dataset order.
    """
    device = torch.device(device)
    n = len(dataset)
    mode, scale = _ship_mode(dataset, amp and device.type == "cuda")
    labels = np.zeros((n, 1), dtype=np.int8)
    chunks = [np.arange(s, min(s + batch_size, n), dtype=np.int64) for s in range(0, n, batch_size)]
    items = [(-1, c, j) for j, c in enumerate(chunks) if j % world_size == rank]
    cfg = TrainConfig(num_workers=num_workers)
    loader = _loader(_BatchSource(dataset, labels, mode), items, cfg, device)
    was_training = model.training
    model.eval()
    out: NDArray[np.float32] | None = None
    for _, signals, _, j in loader:
        x, _ = _to_device(signals, torch.zeros(1), device, scale)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            logits = model(x)  # (B, H)
        p = torch.sigmoid(logits.float())
        p = p[:, :n_tasks] if n_tasks is not None else p
        if out is None:
            out = np.full((n, p.shape[1]), np.nan, dtype=np.float32)
        out[chunks[j]] = p.cpu().numpy()
    model.train(was_training)
    if out is None:
        out = np.zeros((n, n_tasks or 0), dtype=np.float32)
    return out


def predict_run(run_dir: str | Path, split: str = "test", *, checkpoint: str = BEST_CKPT,
                device: str = "auto", dataset: Any = None, num_workers: int = 0) -> tuple[
                    NDArray[np.int8], NDArray[np.float32], list[str]]:
    """Major-task labels and probabilities of a trained run on one split.

    Parameters
    ----------
    run_dir : path
        A run written by :func:`train`; its checkpoint names the shards and tasks.
    split : str
    checkpoint : str
        ``best.pt`` (default; falls back to ``last.pt`` when there is no best) or ``last.pt``.
    dataset : ShardDataset-like, optional
        Use this instead of opening the run's shards.

    Returns
    -------
    y_true : int8 (N, T), y_score : float32 (N, T), label_names : list of str
    """
    run = Path(run_dir)
    path = run / checkpoint
    if not path.exists() and checkpoint == BEST_CKPT:
        path = run / LAST_CKPT
    ckpt = load_checkpoint(path)
    cfg = make_config(TrainConfig, {k: v for k, v in ckpt["config"].items()})
    if dataset is None:
        if not cfg.shards_dir:
            raise ConfigError(f"run {run} has no shards_dir in its config; pass a dataset")
        dataset = _open_dataset(cfg.shards_dir, split, cfg.tasks)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    model = _model_from_ckpt(ckpt).set_conv_path(_conv_path(cfg.conv_path, dev)).to(dev)
    n_major = int(ckpt["n_major"])
    scores = predict(model, dataset, n_tasks=n_major, device=dev, batch_size=cfg.eval_batch_size, amp=cfg.amp,
                     num_workers=num_workers)
    names = list(ckpt["label_names"])
    labels = np.asarray(dataset.labels, dtype=np.int8)
    have = list(getattr(dataset, "label_names", names[:labels.shape[1]]))
    missing = [n for n in names if n not in have]
    if missing:
        raise ConfigError(f"run {run} was trained on task(s) {missing} that the {split!r} dataset lacks "
                          f"(it has {have})")
    # the dataset may hold more or other-ordered tasks than the run (e.g. a single-task baseline)
    y = labels[:, [have.index(n) for n in names]]
    return y, scores, names


# `export` and `load_exported` lived here before ecgkit.trainer.export; kept importable from here
from ecgkit.trainer.export import export, load_exported  # noqa: E402,F401
