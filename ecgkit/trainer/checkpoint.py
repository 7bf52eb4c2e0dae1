"""Checkpoints and the per-epoch CSV of a run directory.

A checkpoint holds everything an exact resume needs (model, loss weighting, optimiser, scheduler,
sampler position, every rank's random streams and partial epoch losses) plus what evaluation and
export need (config, label and head names, CO-TASK definitions, fs). Files are written to a
temporary name and renamed, so a kill leaves the previous file intact.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ecgkit.models.resnet1d import ResNet1d, ResNet1dConfig

__all__ = ["load_checkpoint"]


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`train` (``RUN_DIR/last.pt`` or ``best.pt``).

    Raises
    ------
    FileNotFoundError
        Naming the path when it does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=False)


def _model_from_ckpt(ckpt: Mapping[str, Any]) -> ResNet1d:
    mc = dict(ckpt["model_config"])
    if mc.get("kind") == "damtl":  # TrainConfig.method="damtl"
        from ecgkit.models.damtl import DAMTLConfig, DAMTLPredictor
        pred = DAMTLPredictor(DAMTLConfig(**mc))
        pred.load_state_dict(ckpt["model"])
        return pred  # type: ignore[return-value]
    if mc.get("kind") == "cross_stitch":  # TrainConfig.sharing="cross_stitch"
        from ecgkit.models.cross_stitch import CrossStitchConfig, CrossStitchNet
        net = CrossStitchNet(CrossStitchConfig(**mc))
        net.load_state_dict(ckpt["model"])
        return net  # type: ignore[return-value]  # same protocol: forward, keep_heads, set_conv_path
    model = ResNet1d(ResNet1dConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model


def _write_csv(history: list[dict[str, Any]], path: Path) -> None:
    if not history:
        return
    keys = list(history[0].keys())
    for row in history[1:]:
        keys += [k for k in row if k not in keys]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


