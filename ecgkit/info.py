"""``ecgkit info PATH``: what a cohort, shards or run folder holds, from its files alone.

:func:`info` returns a JSON-ready dict and :func:`format_info` the text the command prints. Nothing
is computed from signals and no checkpoint is loaded (no torch import), so it answers in about a
second even for a large cohort.

=========  ==============================  ===============================================================
kind       recognised by                   summary
=========  ==============================  ===============================================================
cohort     ``manifest.parquet``            records, patients, ok / quarantined with reasons, formats,
                                           labels and their prevalence per split, split sizes
shards     ``index.parquet``               records and shards per split, size on disk, fs, length,
                                           dtype, labels and their prevalence per split
run        ``config.yaml`` / ``last.pt``   status (finished, stopped early, incomplete, training), epochs,
                                           best validation macro AUROC and its epoch, evaluations
=========  ==============================  ===============================================================
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgkit.errors import DataError

__all__ = ["info", "format_info"]

_SPLITS = ("train", "val", "test")


def _prevalence(labels: np.ndarray, names: list[str], splits: np.ndarray | None) -> dict[str, dict[str, Any]]:
    """label -> {split: fraction positive among known (None when none known), "all": ...}."""
    out: dict[str, dict[str, Any]] = {}
    groups = {"all": np.ones(len(labels), dtype=bool)}
    if splits is not None:
        groups.update({s: splits == s for s in _SPLITS if (splits == s).any()})
    for j, name in enumerate(names):
        row: dict[str, Any] = {}
        for g, sel in groups.items():
            col = labels[sel, j]
            known = col[col >= 0]
            row[g] = round(float((known == 1).mean()), 4) if len(known) else None
            row[f"{g}_positives"] = int((known == 1).sum())
        out[name] = row
    return out


def _cohort(path: Path) -> dict[str, Any]:
    from ecgkit.manifest import STATUS_OK, label_names, read_manifest

    df = read_manifest(path)
    ok = df["status"] == STATUS_OK
    names = list(label_names(df))
    splits = df["split"].astype(object).where(df["split"].notna(), None).to_numpy() if "split" in df else None
    reasons = Counter(_reason_kind(r) for r in df.loc[~ok, "reason"].dropna())
    out: dict[str, Any] = {
        "kind": "cohort", "path": str(path), "records": len(df),
        "patients": int(df["patient_id"].nunique()), "records_without_patient_id": int(df["patient_id"].isna().sum()),
        "ok": int(ok.sum()), "quarantined": int((~ok).sum()), "quarantine_reasons": dict(reasons.most_common(10)),
        "formats": {str(k): int(v) for k, v in df["source_format"].value_counts().items()},
        "labels": names, "split": None, "prevalence": {},
    }
    if splits is not None:
        out["split"] = {s: int((splits == s).sum()) for s in _SPLITS}
    if names:
        lab = df.loc[ok, names].to_numpy(dtype=np.int64)
        out["prevalence"] = _prevalence(lab, names, None if splits is None else splits[ok.to_numpy()])
    summary = path / "scan_summary.json"
    if summary.exists():
        out["skipped_files"] = json.loads(summary.read_text()).get("skipped_files")
    return out


def _reason_kind(reason: str) -> str:
    """A quarantine reason without the record's own name, so that reasons can be counted."""
    text = str(reason)
    return text.split(": ", 1)[1] if ": " in text and text.startswith("record ") else text


def _shards(path: Path) -> dict[str, Any]:
    import h5py

    from ecgkit.shards import read_index

    index = read_index(path)
    files = sorted(index["shard"].unique())
    attrs: dict[str, Any] = {}
    labels, splits = [], []
    for name in files:
        with h5py.File(path / f"{name}.h5", "r") as f:
            if not attrs:
                attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in f.attrs.items()}
            labels.append(f["labels"][...])
            splits.append(np.full(len(f["labels"]), str(f.attrs.get("split", name.split("-")[0])), dtype=object))
    names = [str(n) for n in attrs.get("label_names", [])]
    lab = np.concatenate(labels) if labels else np.zeros((0, len(names)), np.int8)
    spl = np.concatenate(splits) if splits else np.zeros(0, object)
    per_file = index.drop_duplicates("shard")
    quarantined = 0
    if (path / "quarantine.parquet").exists():
        quarantined = len(pd.read_parquet(path / "quarantine.parquet"))
    return {
        "kind": "shards", "path": str(path), "records": len(index), "quarantined": quarantined,
        "shards": len(files), "bytes": int(per_file["shard_bytes"].sum()),
        "split": {s: int((index["split"] == s).sum()) for s in _SPLITS},
        "shards_per_split": {s: int((per_file["split"] == s).sum()) for s in _SPLITS},
        "fs": attrs.get("fs"), "seconds": attrs.get("seconds"), "n_samples": attrs.get("n_samples"),
        "dtype": attrs.get("dtype"), "labels": names, "prevalence": _prevalence(lab, names, spl),
    }


def _run(path: Path) -> dict[str, Any]:
    import yaml

    from ecgkit.trainer.config import BEST_CKPT, CONFIG_FILE, LAST_CKPT, METRICS_FILE

    cfg = yaml.safe_load((path / CONFIG_FILE).read_text()) if (path / CONFIG_FILE).exists() else {}
    rows: list[dict[str, str]] = []
    if (path / METRICS_FILE).exists():
        with open(path / METRICS_FILE, newline="") as fh:
            rows = list(csv.DictReader(fh))
    aucs = [float(r.get("val_macro_auroc") or "nan") for r in rows]
    finite = [(a, int(r["epoch"])) for a, r in zip(aucs, rows) if math.isfinite(a)]
    best = max(finite) if finite else None
    epochs = int(cfg.get("epochs", 0) or 0)
    patience = int(cfg.get("patience", 0) or 0)
    last_step = int(rows[-1]["step"]) if rows else 0
    lock = path / ".lock"
    status = "not started" if not (path / LAST_CKPT).exists() else "incomplete (continue with --resume)"
    if lock.exists() and _pid_alive(lock):
        status = "training"
    elif rows and len(rows) >= epochs:
        status = "finished"
    elif best is not None and patience and int(rows[-1]["epoch"]) - best[1] >= patience:
        status = "stopped early"
    elif cfg.get("max_steps") and last_step >= int(cfg["max_steps"]):
        status = "stopped at max_steps"
    evaluations = {}
    for rep in sorted(path.glob("eval-*/report.json")):
        data = json.loads(rep.read_text())
        evaluations[rep.parent.name.removeprefix("eval-")] = data.get("summary", {}).get("macro_auroc")
    return {
        "kind": "run", "path": str(path), "status": status, "epochs_done": len(rows), "epochs": epochs,
        "steps": last_step, "best_val_macro_auroc": None if best is None else round(best[0], 4),
        "best_epoch": None if best is None else best[1], "shards_dir": cfg.get("shards_dir"),
        "blocks": cfg.get("blocks"), "sampler": cfg.get("sampler"), "aux_tasks": cfg.get("aux_tasks"),
        "checkpoints": [n for n in (BEST_CKPT, LAST_CKPT) if (path / n).exists()], "evaluations": evaluations,
    }


def _pid_alive(lock: Path) -> bool:
    try:
        os.kill(int(lock.read_text().strip()), 0)
    except (ValueError, OSError):
        return False
    return True


def info(path: str | Path) -> dict[str, Any]:
    """Summarise a cohort folder, a shards folder or a run folder (see the module docstring).

    Raises
    ------
    DataError
        ``path`` is none of the three.
    """
    p = Path(path).expanduser().resolve()
    if p.is_file() and p.name == "manifest.parquet":
        p = p.parent
    if (p / "index.parquet").exists():
        return _shards(p)
    if (p / "manifest.parquet").exists():
        return _cohort(p)
    if (p / "config.yaml").exists() or (p / "last.pt").exists():
        return _run(p)
    raise DataError(f"{p} is not a cohort (manifest.parquet), shards (index.parquet) or run (config.yaml) folder")


def _prevalence_lines(summary: dict[str, Any]) -> list[str]:
    prev = summary.get("prevalence") or {}
    if not prev:
        return []
    groups = [g for g in ("all", *_SPLITS) if any(g in row for row in prev.values())]
    lines = ["label         " + "".join(f"{g:>14}" for g in groups)]
    for name, row in prev.items():
        cells = []
        for g in groups:
            v = row.get(g)
            cells.append(f"{'n/a':>14}" if v is None else f"{v:>8.1%} ({row.get(f'{g}_positives', 0):>3})")
        lines.append(f"{name:<14}" + "".join(cells))
    return lines


def format_info(summary: dict[str, Any]) -> str:
    """The text ``ecgkit info`` prints for a summary from :func:`info`."""
    kind, lines = summary["kind"], [f"{summary['kind']}: {summary['path']}"]
    if kind == "cohort":
        lines.append(f"records {summary['records']} ({summary['ok']} ok, {summary['quarantined']} quarantined), "
                     f"patients {summary['patients']}, formats "
                     + ", ".join(f"{k} {v}" for k, v in summary["formats"].items()))
        for reason, n in summary["quarantine_reasons"].items():
            lines.append(f"  quarantined {n}: {reason}")
        if summary["split"]:
            lines.append("split " + ", ".join(f"{s} {n}" for s, n in summary["split"].items()))
        else:
            lines.append("split: none yet (ecgkit split)")
        if not summary["labels"]:
            lines.append("labels: none yet (ecgkit label)")
    elif kind == "shards":
        lines.append(f"records {summary['records']} in {summary['shards']} shards ({summary['bytes'] / 1e6:.1f} MB), "
                     f"{summary['quarantined']} quarantined at shard; {summary['fs']:g} Hz x {summary['seconds']:g} s "
                     f"({summary['n_samples']} samples), {summary['dtype']}")
        lines.append("split " + ", ".join(f"{s} {n} ({summary['shards_per_split'][s]} shards)"
                                          for s, n in summary["split"].items()))
    else:
        best = summary["best_val_macro_auroc"]
        lines.append(f"status {summary['status']}: {summary['epochs_done']}/{summary['epochs']} epochs, "
                     f"{summary['steps']} steps; best val macro AUROC "
                     + ("n/a" if best is None else f"{best:.4f} (epoch {summary['best_epoch']})"))
        lines.append(f"model {summary['blocks']} blocks, sampler {summary['sampler']}, aux tasks "
                     f"{summary['aux_tasks']}; shards {summary['shards_dir']}; checkpoints "
                     + (", ".join(summary["checkpoints"]) or "none"))
        for split, auc in summary["evaluations"].items():
            lines.append(f"evaluated on {split}: macro AUROC " + ("n/a" if auc is None else f"{auc:.4f}"))
    if summary.get("labels"):
        lines.append(f"labels ({len(summary['labels'])}), prevalence among known (positives):")
        lines += ["  " + ln for ln in _prevalence_lines(summary)]
    return "\n".join(lines)
