"""The whole pipeline as one short list of stage calls (the ``ecgkit demo`` job).

Like NeuroKit's ``ecg_process``, this module only composes the stages; each stage still reads and
writes its own files, so any step can be rerun alone with its own command::

    synth -> scan -> label -> split -> shard -> train -> evaluate
    RAW/     COHORT/manifest.parquet   SHARDS/    RUN/          RUN/eval-test/report.{json,md}, *.png

``RUN/eval-test/example_ecg.png`` shows the test record with the most labels on ECG paper, with its
labels and the labels the model calls (score at or above the validation-chosen threshold).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd

from ecgkit.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Configuration of :func:`run_demo`; the defaults finish in a few minutes on 2 CPU cores."""

    #: synthetic patients (about 2 records each); 600 gives every common phenotype enough positives
    patients: int = 600
    #: file formats written by the generator: both exercises the WFDB and the GE MUSE reader
    fmt: str = "both"
    #: seed of the cohort, the split and the model
    seed: int = 0
    #: worker processes for synth, scan and shard (the demo machine has 2 cores)
    workers: int = 2
    #: shard sampling frequency on CPU: 100 Hz keeps QRS widths (>= 10 ms steps), RR irregularity
    #: and voltages while making a CPU epoch 5x cheaper than 500 Hz; on a GPU the native 500 Hz
    fs_cpu: float = 100.0
    fs_gpu: float = 500.0
    #: residual blocks of the ResNet on CPU / GPU: on 2 CPU cores 4 blocks cost a third of the 8-block
    #: CO-TASK backbone per step, and on this cohort reached a higher validation AUROC after the first
    #: epoch (0.76 vs 0.66) and 0.835 after 4 (benchmarks/RESULTS_demo.md)
    blocks_cpu: int = 4
    blocks_gpu: int = 8
    #: training epochs (early stopping on validation macro AUROC may end sooner); 4 keeps the CPU
    #: demo within a few minutes on 2 cores (about 95 CPU-seconds per epoch with 4 blocks at 100 Hz)
    epochs: int = 4
    #: records per batch on CPU / GPU
    batch_size_cpu: int = 64
    batch_size_gpu: int = 256
    #: "task_aware" (CO-TASK sampler) or "joint"; joint trains all 18 heads on every batch, which
    #: is what a few CPU minutes can afford
    sampler: Literal["task_aware", "joint"] = "joint"
    #: CO-TASK auxiliary tasks
    aux_tasks: int = 0
    #: "auto", "cpu" or "cuda"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.patients < 20:
            raise ConfigError(f"the demo needs at least 20 patients to split 7:1:2, got {self.patients}")


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs, and its headline numbers."""

    out_dir: Path
    report_md: Path
    report_json: Path
    plots: tuple[Path, ...]
    macro_auroc: float
    labeler_macro_f1: float
    seconds: dict[str, float]


def _labeler_f1(manifest: pd.DataFrame, truth: pd.DataFrame, labels: tuple[str, ...]) -> float:
    """Macro F1 of the text labels against the generator's ground truth (labels with positives)."""
    merged = manifest.merge(truth, on="record_id", suffixes=("", "_true"))
    f1s = []
    for lab in labels:
        y, p = merged[f"{lab}_true"].to_numpy() == 1, merged[lab].to_numpy() == 1
        if y.sum() == 0:
            continue
        tp = float(np.sum(y & p))
        f1s.append(2 * tp / (y.sum() + p.sum()))
    return float(np.mean(f1s)) if f1s else float("nan")


def _plot_example(run_dir: Path, shards_dir: Path, manifest: pd.DataFrame, report: dict[str, Any], path: Path,
                  device: str) -> Path:
    """Plot the test record with the most labels as a 12-lead ECG, titled with its labels and the
    model's calls (score at or above the label's validation threshold from the report)."""
    from ecgkit.data import ShardDataset
    from ecgkit.io import read_record
    from ecgkit.plot import plot_ecg
    from ecgkit.trainer import predict_run

    y_true, y_score, names = predict_run(run_dir, "test", device=device)
    record_ids = ShardDataset(shards_dir, "test").record_ids  # the order of predict_run's rows
    k = int(np.argmax((y_true == 1).sum(axis=1)))
    source = manifest.set_index("record_id").loc[record_ids[k], "source_path"]
    record = read_record(source)
    thresholds = report.get("thresholds", {})
    true = [n for n, v in zip(names, y_true[k]) if v == 1] or ["none"]
    called = [f"{n} {s:.2f}" for n, s in zip(names, y_score[k].tolist())
              if thresholds.get(n) is not None and s >= thresholds[n]] or ["none"]
    title = f"{record_ids[k]} (test)   labels: {', '.join(true)}   model calls: {', '.join(called)}"
    fig = plot_ecg(record.signal, record.fs, title=title)
    fig.savefig(path, dpi=110)
    return path


def run_demo(out_dir: str | Path, config: DemoConfig | None = None, *,
             progress: Callable[[str], None] | None = None) -> DemoResult:
    """Run synth -> scan -> label -> split -> shard -> train -> evaluate into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Created; holds ``raw/`` (synthetic WFDB and MUSE files, ``truth.parquet``), ``cohort/``
        (manifest), ``shards/``, ``run/`` (checkpoints, logs) and ``run/eval-test/`` (report).
    config : DemoConfig
    progress : callable(str) or None
        Called with one line as each stage finishes.

    Returns
    -------
    DemoResult
    """
    import torch

    from ecgkit.ingest import ScanConfig, scan
    from ecgkit.labels import label_manifest
    from ecgkit.manifest import write_manifest, write_quarantine
    from ecgkit.report import evaluate
    from ecgkit.shards import ShardConfig, write_shards
    from ecgkit.split import audit, split_by_patient
    from ecgkit.synth import synth_cohort
    from ecgkit.trainer import TrainConfig, train

    cfg = config or DemoConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda line: logger.info(line))
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    seconds: dict[str, float] = {}
    t = time.perf_counter()

    def lap(stage: str) -> float:
        nonlocal t
        now = time.perf_counter()
        seconds[stage] = round(now - t, 2)
        t = now
        return seconds[stage]

    truth = synth_cohort(cfg.patients, out / "raw", fmt=cfg.fmt, seed=cfg.seed, workers=cfg.workers)
    say(f"synth: {len(truth)} records of {truth['patient_id'].nunique()} patients ({lap('synth')} s)")

    cohort = out / "cohort"
    manifest = scan([out / "raw"], ScanConfig(workers=cfg.workers))
    write_manifest(manifest, cohort)
    write_quarantine(manifest, cohort, "scan")
    n_q = int((manifest["status"] != "ok").sum())
    say(f"scan: {len(manifest)} records, {len(manifest) - n_q} ok, {n_q} quarantined ({lap('scan')} s)")

    manifest = label_manifest(manifest)
    labels = tuple(c for c in truth.columns if c not in ("record_id", "patient_id"))
    f1 = _labeler_f1(manifest, truth, labels)
    write_manifest(manifest, cohort)
    say(f"label: labeler macro F1 vs ground truth {f1:.3f} ({lap('label')} s)")

    manifest = split_by_patient(manifest, ratios=(0.7, 0.1, 0.2), seed=cfg.seed)
    audit(manifest)
    write_manifest(manifest, cohort)
    say(f"split: {manifest['split'].value_counts().to_dict()} ({lap('split')} s)")

    fs = cfg.fs_gpu if cuda else cfg.fs_cpu
    manifest = write_shards(manifest, out / "shards", ShardConfig(fs=fs, seconds=10.0, workers=cfg.workers,
                                                                 records_per_shard=256))
    write_manifest(manifest, cohort)
    say(f"shard: {fs:g} Hz shards in {out / 'shards'} ({lap('shard')} s)")

    # absolute, so that `ecgkit evaluate RUN` finds the shards from any working directory
    tcfg = TrainConfig(shards_dir=str((out / "shards").resolve()), sampler=cfg.sampler, aux_tasks=cfg.aux_tasks,
                       epochs=cfg.epochs, batch_size=cfg.batch_size_gpu if cuda else cfg.batch_size_cpu,
                       blocks=cfg.blocks_gpu if cuda else cfg.blocks_cpu,
                       seed=cfg.seed, device="cuda" if cuda else "cpu", compile=cuda, num_workers=4 if cuda else 0,
                       warmup_steps=20, patience=3, tensorboard=True, log_interval=20)
    if not cuda:
        tcfg = replace(tcfg, amp=False)
    run_dir = out / "run"
    train(tcfg, run_dir)
    say(f"train: {run_dir} ({lap('train')} s)")

    report = evaluate(run_dir, "test", device="cuda" if cuda else "cpu")
    eval_dir = run_dir / "eval-test"
    _plot_example(run_dir, out / "shards", manifest, report, eval_dir / "example_ecg.png",
                  "cuda" if cuda else "cpu")
    lap("evaluate")
    macro = float(report["summary"]["macro_auroc"])
    (out / "demo_summary.json").write_text(json.dumps({"config": cfg.__dict__, "seconds": seconds,
                                                       "macro_auroc": macro, "labeler_macro_f1": f1}, indent=2))
    return DemoResult(out_dir=out, report_md=eval_dir / "report.md", report_json=eval_dir / "report.json",
                      plots=tuple(sorted(eval_dir.glob("*.png"))), macro_auroc=macro, labeler_macro_f1=f1,
                      seconds=seconds)
