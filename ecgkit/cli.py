"""The ``ecgkit`` command: one thin command per stage.

Only this module and ``pipelines/`` wire stages together, set up logging, and own progress bars.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

import click

from ecgkit import __version__
from ecgkit._cli_support import (DeviceType, EcgkitGroup, ThresholdType, _paper_options, about, check_device,
                                 check_quarantine_rate, load_command_config)

C = TypeVar("C")


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
                        force=True)


def _config(cls: type[C], config_file: Path | None, command: str, overrides: dict[str, Any]) -> C:
    """``command``'s config: its section of a pipeline YAML (or the file's top level) plus the options."""
    return load_command_config(cls, config_file, command, sorted(main.commands), overrides)


@click.group(cls=EcgkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecgkit")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug and tracebacks).")
def main(verbose: int) -> None:
    """ecgkit: ECG archives to phenotype models (scan, label, split, shard, train, evaluate).

    Errors are one 'Error:' line; exit status 2 = usage (option, value, config file), 3 = quarantine
    rate over its limit, 4 = bad or missing data, 1 = internal error (-vv shows the traceback).
    """
    _setup_logging(verbose)


# Stage commands follow, one per stage; each parses options, calls the stage's Python entry point,
# and prints a one-line summary. Option values are checked by click (types, ranges, choices) before
# the stage runs, so a bad value leaves no output behind.

_POSITIVE = click.FloatRange(min=0, min_open=True)
_RATE = click.FloatRange(0.0, 1.0)


@main.command("scan")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Cohort directory to write.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes (default: 1).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="YAML file with ScanConfig keys (a 'scan' section or top level).")
@click.option("--pseudonymize/--no-pseudonymize", default=False,
              help="Replace patient IDs by a keyed hash; the key is read from $ECGKIT_PSEUDONYM_KEY, never stored.")
@click.option("--max-quarantine-rate", type=_RATE, default=None,
              help="Exit with status 3 when more than this fraction of records is quarantined (default 0.05).")
@click.option("--strict-integrity", is_flag=True, default=None,
              help="Quarantine records whose source checksums (WFDB, MUSE CRC32) fail (default: a QC flag).")
@click.option("--follow-external-symlinks", is_flag=True, default=None,
              help="Read symlinks that point outside the scanned folders (default: skipped).")
@click.option("--engine", type=click.Choice(["inline", "local", "dask"]), default="inline", show_default=True,
              help="inline: rows gathered in this process; local/dask: each task writes a manifest part "
                   "(local process pool or dask.distributed), the parent concatenates them.")
@click.option("--scheduler", default=None, help="Dask scheduler address (default: a local Dask cluster).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def scan_cmd(sources: tuple[Path, ...], out_dir: Path, workers: int | None, config_file: Path | None,
             pseudonymize: bool, max_quarantine_rate: float | None, strict_integrity: bool | None = None,
             follow_external_symlinks: bool | None = None, engine: str = "inline",
             scheduler: str | None = None, no_progress: bool = False) -> None:
    """Walk SOURCES (files and folders), read every record, write OUT/manifest.parquet."""
    import json

    from tqdm import tqdm

    from ecgkit._lock import output_lock
    from ecgkit.errors import DataError
    from ecgkit.ingest import SUMMARY_FILE, ScanConfig, scan

    key = None
    if pseudonymize:
        key = os.environ.get("ECGKIT_PSEUDONYM_KEY")
        if not key:
            raise click.UsageError("--pseudonymize needs the key in the ECGKIT_PSEUDONYM_KEY environment variable")
    config = _config(ScanConfig, config_file, "scan", {"workers": workers, "pseudonymize_key": key,
                                                        "max_quarantine_rate": max_quarantine_rate,
                                                        "strict_integrity": strict_integrity or None,
                                                        "follow_external_symlinks": follow_external_symlinks or None})
    if engine != "inline":
        with output_lock(out_dir, "scan"):
            _scan_parts_cmd(list(sources), out_dir, config, engine, scheduler)
        return
    counts = {"ok": 0, "quarantined": 0}
    created = not out_dir.exists()
    try:
        with output_lock(out_dir, "scan"), tqdm(desc="scan", unit="rec", dynamic_ncols=True,
                                                disable=no_progress) as bar:
            def total(n: int) -> None:  # known after the walk, before any record is read: gives the ETA
                bar.reset(total=n)

            def progress(n_ok: int, n_q: int) -> None:
                counts["ok"] += n_ok
                counts["quarantined"] += n_q
                bar.update(n_ok + n_q)
                bar.set_postfix(ok=counts["ok"], quarantined=counts["quarantined"], refresh=False)

            scan(list(sources), config, progress=progress, total=total, out_dir=out_dir)
    except DataError:  # nothing to scan: leave no empty cohort folder behind (the lock made it)
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    summary = json.loads((out_dir / SUMMARY_FILE).read_text())
    click.echo(f"scan: {summary['records']} records, {summary['ok']} ok, {summary['quarantined']} quarantined "
               f"({summary['quarantine_rate']:.1%}), {summary['records_per_s']} records/s -> "
               f"{(out_dir / 'manifest.parquet').resolve()}")
    if summary["skipped_files"]:
        # files that are not records (sidecars, tables, docs) are neither ok nor quarantined
        kinds = "; ".join(f"{n} {why}" for why, n in summary["skipped_by_reason"].items())
        click.echo(f"scan: {summary['skipped_files']} files are not records and were skipped ({kinds}); "
                   f"see {out_dir / 'skipped_files.csv'}")
    if summary["quarantined"]:
        click.echo(f"scan: quarantined records and reasons in {out_dir / 'quarantine.parquet'}")
    check_quarantine_rate("scan", summary["quarantine_rate"], config.max_quarantine_rate, out_dir)


def _scan_parts_cmd(sources: list[Path], out_dir: Path, config: Any, engine: str, scheduler: str | None) -> None:
    """``scan --engine local|dask``: manifest parts per task, concatenated by the parent."""
    import json

    from ecgkit.scan_parts import scan_to_dir

    from ecgkit._lock import atomic_write_text

    summary = scan_to_dir(sources, out_dir, config, engine=engine, scheduler=scheduler)  # type: ignore[arg-type]
    atomic_write_text(out_dir / "scan_summary.json", json.dumps(summary, indent=2))
    click.echo(f"scan ({engine}, {summary['parts']} parts): {summary['records']} records, {summary['ok']} ok, "
               f"{summary['quarantined']} quarantined ({summary['quarantine_rate']:.1%}), "
               f"{summary['records_per_s']} records/s -> {out_dir / 'manifest.parquet'}")
    check_quarantine_rate("scan", summary["quarantine_rate"], config.max_quarantine_rate, out_dir)


@main.command("label")
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--vocabulary", default="ecg-p18", show_default=True,
              help="Shipped vocabulary name (ecg-p18) or path to a vocabulary YAML file.")
@click.option("--uncertain", type=click.Choice(["positive", "negative", "mask"]), default="positive",
              show_default=True, help="Value of hedged mentions ('possible RVH'): 1, 0 or -1.")
@click.option("--source", type=click.Choice(["text", "codes", "both"]), default="text", show_default=True,
              help="Label from statements, from structured codes (SCP/SNOMED), or either.")
@click.option("--unconfirmed", type=click.Choice(["keep", "mask", "drop"]), default="keep", show_default=True,
              help="Records whose report is unconfirmed: keep their labels, mask them (-1), or quarantine them.")
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="Processes (0: one per core).")
def label_cmd(cohort_dir: str, vocabulary: str, uncertain: str, source: str, unconfirmed: str,
              workers: int) -> None:
    """Add label columns, label_provenance and report_status to COHORT_DIR/manifest.parquet."""
    from ecgkit._lock import output_lock
    from ecgkit.cohort import label_cohort

    with about(cohort_dir), output_lock(cohort_dir, "label"):
        res = label_cohort(cohort_dir, vocabulary=vocabulary, uncertain=uncertain, source=source,
                           unconfirmed=unconfirmed, workers=workers)
    if res.removed:
        click.echo(f"label: removed the earlier vocabulary's label column(s) {', '.join(res.removed)}")
    counts = ", ".join(f"{lab} {n}" for lab, n in res.positives.items())
    click.echo(f"labelled {len(res.manifest)} records with {res.vocabulary} (source={source}, "
               f"uncertain={uncertain}); positives: {counts}" + (f"; masked: {res.masked}" if res.masked else ""))
    click.echo("report_status: " + ", ".join(f"{s} {n}" for s, n in res.report_status.items())
               + f" (--unconfirmed {unconfirmed})")
    if unconfirmed == "drop":
        click.echo(f"label: {res.dropped} unconfirmed records quarantined; see "
                   f"{Path(cohort_dir).resolve() / 'quarantine.parquet'}")


def _parse_ratios(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in value.replace(",", ":").split(":"))
    except ValueError as exc:
        raise click.BadParameter(f"expected three numbers like 7:1:2, got {value!r}") from exc
    if len(parts) != 3 or min(parts) < 0 or sum(parts) <= 0:
        raise click.BadParameter(f"expected three non-negative numbers like 7:1:2, got {value!r}")
    return parts


@main.command("split")
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--ratios", default="7:1:2", show_default=True, callback=_parse_ratios,
              help="train:val:test record ratios.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the stratified split.")
@click.option("--method", type=click.Choice(["stratified", "hash", "kfold"]), default="stratified", show_default=True,
              help="stratified: iterative stratification over label columns; hash: keyed hash of patient id; "
                   "kfold: patients in --folds stratified folds.")
@click.option("--key", default=None, help="HMAC key of --method hash (default: ecgkit's public key).")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True, help="Folds of --method kfold.")
@click.option("--fold", "test_fold", type=click.IntRange(min=0), default=0, show_default=True,
              help="--method kfold: the fold written as test (the next one is val).")
def split_command(cohort_dir: str, ratios: tuple[float, float, float], seed: int, method: str,
                  key: str | None, folds: int, test_fold: int) -> None:
    """Add a patient-level train/val/test split (or k folds) to COHORT_DIR/manifest.parquet."""
    from ecgkit._lock import output_lock
    from ecgkit.cohort import split_cohort

    if method == "kfold":
        from ecgkit.manifest import read_manifest, write_manifest
        from ecgkit.split import audit, audit_folds, split_kfold

        if test_fold >= folds:
            raise click.BadParameter(f"must be below --folds {folds}, got {test_fold}", param_hint="'--fold'")
        # deterministic for the seed: rerunning with another --fold moves only the test/val folds
        with about(cohort_dir), output_lock(cohort_dir, "split"):
            out = split_kfold(read_manifest(cohort_dir), folds=folds, seed=seed, test_fold=test_fold)
            fold_report = audit_folds(out)
            audit(out, ratios=None)
            write_manifest(out, cohort_dir)
        click.echo(fold_report.summary())
        click.echo(f"kfold: {sum(fold_report.counts.values())} records in {folds} folds (seed {seed}), no patient "
                   f"in two folds; fold {test_fold} = test, fold {(test_fold + 1) % folds} = val")
        return

    with about(cohort_dir), output_lock(cohort_dir, "split"):
        report = split_cohort(cohort_dir, ratios=ratios, seed=seed, method=method, key=key)  # type: ignore[arg-type]
    click.echo(report.summary())
    click.echo(f"split: {sum(report.counts.values())} records ({method}, seed {seed}) -> "
               + ", ".join(f"{s} {n}" for s, n in report.counts.items())
               + f"; {report.n_without_patient_id} without patient id"
               + ("" if report.ratios_ok else f"; ratio drift {report.max_ratio_drift:.3f}"))


@main.command("shard")
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False), required=False)
@click.option("--cohort", "cohorts", multiple=True, metavar="NAME=DIR",
              help="A labelled cohort folder (repeat for several cohorts with different label sets).")
@click.option("--label-map", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="With --cohort: YAML/CSV mapping names that mean the same finding to one name.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="SHARDS_DIR.")
@click.option("--config", "config_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file with ShardConfig keys (a 'shard' section or top level).")
@click.option("--fs", type=_POSITIVE, default=None, help="Sampling frequency, Hz [500].")
@click.option("--seconds", type=_POSITIVE, default=None, help="Record length, s [10].")
@click.option("--records-per-shard", type=click.IntRange(min=1), default=None, help="Records per shard file [1024].")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Worker processes, 0 = one per core [0].")
@click.option("--dtype", type=click.Choice(["int16", "float16"]), default=None, help="Storage dtype [int16].")
@click.option("--compression", type=click.Choice(["lzf"]), default=None, help="Compression [none].")
@click.option("--short", type=click.Choice(["pad", "reject"]), default=None, help="Short records [pad].")
@click.option("--engine", type=click.Choice(["local", "dask"]), default=None, help="Engine [local].")
@click.option("--scheduler", default=None, help="Dask scheduler address (with --engine dask).")
@click.option("--max-quarantine-rate", type=_RATE, default=None,
              help="Exit with status 3 when more than this fraction of records is quarantined here [0.05].")
@click.option("--audit", type=click.Choice(["keep", "mask", "drop"]), default=None,
              help="Labels `ecgkit audit` flagged: keep, mask to -1, or drop the record [keep].")
@click.option("--min-quality", type=float, default=None,
              help="Quarantine records whose measured quality is below this (needs `ecgkit measure`).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def shard_command(cohort_dir: str | None, cohorts: tuple[str, ...], label_map: Path | None, out_dir: str,
                  config_file: Path | None, no_progress: bool, **overrides: object) -> None:
    """Read every split record of COHORT_DIR (or of each --cohort) once and write HDF5 shards to --out.

    With several --cohort NAME=DIR, the labels are the union of the cohorts' (after --label-map); a
    label a cohort does not define is -1 for its records, and the index records each record's cohort
    and defined-labels mask.

    The patient key in the shards is an HMAC of the patient id; the key is read from
    $ECGKIT_PSEUDONYM_KEY when set (never stored), else ecgkit's public default key is used.
    Rerunning into the same folder resumes: complete shards that match the plan are kept.
    """
    import json

    from tqdm import tqdm

    from ecgkit.shards import SUMMARY_FILE, ShardConfig, plan_shards, write_shards

    overrides["patient_key"] = os.environ.get("ECGKIT_PSEUDONYM_KEY") or None
    config = _config(ShardConfig, config_file, "shard", overrides)
    manifest, sources, cohort_labels = _shard_inputs(cohort_dir, cohorts, label_map)
    n_planned = len(plan_shards(manifest, config))
    with tqdm(total=n_planned, unit="rec", desc="shard", dynamic_ncols=True, disable=no_progress) as bar:
        write_shards(manifest, out_dir, config, progress=bar.update, sources=sources, cohort_labels=cohort_labels)
    out = Path(out_dir).resolve()
    summary = json.loads((out / SUMMARY_FILE).read_text())
    if summary["changed_settings"]:
        what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in summary["changed_settings"].items())
        click.echo(f"shard: settings changed since the last run into {out} ({what}): "
                   f"rewrote {summary['shards_written']} shard(s)")
    elif summary["shards_kept"]:
        click.echo(f"shard: resumed: {summary['records_kept']} records ({summary['shards_kept']} shards) already "
                   f"done, {summary['records_written']} records ({summary['shards_written']} shards) written")
    click.echo(f"shard: {summary['records']} records in {summary['shards']} shards, {summary['quarantined']} "
               f"quarantined ({summary['quarantine_rate']:.1%}, see {out / 'quarantine.parquet'}) "
               f"-> {out / 'index.parquet'}")
    check_quarantine_rate("shard", summary["quarantine_rate"], config.max_quarantine_rate, out)


def _shard_inputs(cohort_dir: str | None, cohorts: tuple[str, ...], label_map: Path | None
                  ) -> tuple[Any, dict[str, str] | None, dict[str, tuple[str, ...]] | None]:
    """The manifest to shard, its source map and (several cohorts) each cohort's defined labels."""
    from ecgkit.manifest import read_manifest
    from ecgkit.multicohort import merge_cohorts, read_label_mapping
    from ecgkit.shards import read_source_map, require_split

    if bool(cohort_dir) == bool(cohorts):
        raise click.UsageError("give either COHORT_DIR or one or more --cohort NAME=DIR")
    if cohort_dir:
        if label_map is not None:
            raise click.UsageError("--label-map goes with --cohort NAME=DIR")
        with about(cohort_dir):
            manifest = read_manifest(cohort_dir)
            require_split(manifest)
            return manifest, read_source_map(cohort_dir), None
    dirs: dict[str, str] = {}
    for item in cohorts:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"{item!r}: expected NAME=DIR", param_hint="--cohort")
        if name in dirs:
            raise click.BadParameter(f"cohort {name!r} given twice", param_hint="--cohort")
        if not Path(path).is_dir():
            raise click.BadParameter(f"{path!r} is not a folder", param_hint="--cohort")
        dirs[name] = path
    manifests, maps = {}, {}
    for name, path in dirs.items():
        with about(path):
            manifests[name] = read_manifest(path)
            require_split(manifests[name])
            maps[name] = read_source_map(path)
    sources: dict[str, str] = {}
    if any(m is not None for m in maps.values()):  # a pseudonymised cohort: every record's file by id
        for name, man in manifests.items():
            own = maps[name] or dict(zip(man["record_id"].astype(str), man["source_path"].astype(str)))
            sources.update({f"{name}/{rid}": path for rid, path in own.items()})  # merge_cohorts' ids
    merged, cohort_labels = merge_cohorts(manifests, read_label_mapping(label_map) if label_map else None)
    return merged, sources or None, cohort_labels


def _epoch_line(row: Any) -> str:
    """One line per epoch: loss, val macro AUROC, samples/s, time left."""
    left = float(row["eta_s"])
    eta = f"{left / 60:.1f} min" if left >= 60 else f"{left:.0f} s"
    return (f"epoch {row['epoch']}/{row['epochs']}: train loss {row['train_loss']:.4f}, val macro AUROC "
            f"{row['val_macro_auroc']:.4f}, {row['samples_per_s']:.0f} samples/s, {row['epoch_s']:.0f} s"
            + (f", about {eta} left" if row["epoch"] < row["epochs"] else ""))


@main.command("train")
@click.argument("shards_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML with TrainConfig keys (a 'train' section or top level).")
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs [30].")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimiser steps.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Records per batch per GPU [256].")
@click.option("--lr", type=_POSITIVE, help="Peak learning rate of AdamW [1e-3].")
@click.option("--device", type=DeviceType(), help="auto (cuda when available), cpu, cuda or cuda:N [auto].")
@click.option("--blocks", type=click.IntRange(min=1),
              help="Residual blocks, any N >= 1 (8: CO-TASK backbone, 16: Hannun's 34-layer network) [8].")
@click.option("--aux-tasks", type=click.IntRange(min=0), help="Number of CO-TASK auxiliary tasks [0].")
@click.option("--weighting", type=click.Choice(["equal", "dwa", "uncertainty"]), help="Task-loss weighting.")
@click.option("--sampler", type=click.Choice(["task_aware", "joint", "major_task"]), help="Batch construction.")
@_paper_options
@click.option("--tensorboard/--no-tensorboard", default=None,
              help="TensorBoard event files under RUN/tb (needs the tensorboard package) [on when installed].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--overwrite", is_flag=True, help="Replace a run already in --out.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train_command(shards_dir: str, out_dir: str, config_file: Path | None, resume: bool, overwrite: bool,
                  no_progress: bool, **options: Any) -> None:
    """Train a multi-head 1D ResNet on SHARDS_DIR (multi-GPU: torchrun --nproc_per_node G -m ecgkit train)."""
    from ecgkit.trainer import TrainConfig, train

    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    check_device(options["device"])
    cfg = _config(TrainConfig, config_file, "train",
                  {"shards_dir": shards_dir, "progress": not no_progress, **options})
    main_rank = int(os.environ.get("RANK", "0")) == 0  # one line each, not one per torchrun process
    res = train(cfg, out_dir, resume=resume, overwrite=overwrite,
                on_epoch=lambda row: click.echo(f"train | {_epoch_line(row)}"))
    if not main_rank:
        return
    if res.resumed_from_step is not None:
        click.echo(f"train: resumed: {res.resumed_from_step} steps already done, "
                   f"{res.step - res.resumed_from_step} written")
    click.echo(f"trained {res.step} steps, {res.epoch} epochs, best val macro AUROC "
               f"{res.best_val_macro_auroc:.4f}, {res.samples_per_s:.0f} samples/s -> {res.run_dir}")


@main.command("evaluate")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True,
              help="Split to evaluate.")
@click.option("--baseline", type=click.Path(exists=True, file_okay=False), help="Baseline run for delta-m.")
@click.option("--threshold", "threshold_rule", type=ThresholdType(), default="max_f1", show_default=True,
              help="max_f1, or a target specificity such as 0.95 (chosen on the validation split).")
@click.option("--bootstrap", "n_bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap resamples for CIs (0: none).")
@click.option("--reference-specificity", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Report sensitivity at this specificity.")
@click.option("--device", type=DeviceType(), default="auto", show_default=True)
@click.option("--headline", "headline_metric", default="macro_auroc", show_default=True,
              help="Headline over the run's major tasks: macro_auroc, or macro_f1 (Hughes), macro_ap, ...")
@click.option("--saliency", "n_saliency", type=click.IntRange(min=0), default=0, show_default=True,
              help="Integrated-gradients ECG plots for the N top-scored positives of each label.")
def evaluate_command(run_dir: str, split: str, baseline: str | None, threshold_rule: str | float, n_bootstrap: int,
                     reference_specificity: float | None, device: str, headline_metric: str,
                     n_saliency: int) -> None:
    """Evaluate RUN_DIR on a split: report.json, report.md and plots in RUN_DIR/eval-SPLIT."""
    from ecgkit.report import evaluate

    check_device(device)
    rep = evaluate(run_dir, split, baseline=baseline, threshold_rule=threshold_rule, n_bootstrap=n_bootstrap,
                   reference_specificity=reference_specificity, device=device, headline_metric=headline_metric,
                   saliency=n_saliency)
    s = rep["summary"]
    extra = f", delta-m {rep['delta_m']['all']:+.2f}%" if "delta_m" in rep else ""
    h = rep["headline"]
    click.echo(f"{split}: {h['metric']} over {', '.join(h['tasks'])}: {h['value']:.4f}; "
               f"macro AUROC {s['macro_auroc']:.4f}, recall {s['recall_multi']:.4f}, jaccard "
               f"{s['jaccard']:.4f}, exact {s['exact_match']:.4f}{extra} -> {rep['files']['md']}")


@main.command("synth")
@click.option("--patients", "n_patients", type=click.IntRange(min=1), required=True,
              help="Number of patients (1-8 ECGs each).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--format", "fmt", type=click.Choice(["wfdb", "muse", "both"]), default="wfdb", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--label-noise", type=_RATE, default=0.0, show_default=True,
              help="Probability of flipping each label in the statements (truth.parquet keeps the truth).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes.")
@click.option("--difficulty", type=click.Choice(["easy", "realistic", "hard"]), default="easy", show_default=True,
              help="easy: the quick-demo generator; realistic (for experiments): noise, artefacts, patient "
                   "variation, borderline phenotypes; hard: more of all.")
@click.option("--fs", type=_POSITIVE, default=500.0, show_default=True, help="Sampling frequency, Hz.")
@click.option("--ratios", "ratios_text", default=None,
              help="Imbalance ratios overriding CO-TASK Table 1, e.g. 'VT=500,3AVB=1000' (1 positive : r negatives).")
def synth_cmd(n_patients: int, out_dir: str, fmt: str, seed: int, label_noise: float, workers: int,
              difficulty: str, fs: float, ratios_text: str | None) -> None:
    """Write a synthetic phenotyped cohort (WFDB and/or GE MUSE XML) with truth.parquet."""
    import time

    from ecgkit.synth import synth_cohort
    from ecgkit.synth.phenotypes import parse_ratios

    start = time.perf_counter()
    truth = synth_cohort(n_patients, out_dir, fmt=fmt, seed=seed, label_noise=label_noise, workers=workers,
                         difficulty=difficulty, fs=fs, ratios=parse_ratios(ratios_text))  # ConfigError: exit 2
    elapsed = time.perf_counter() - start
    click.echo(f"synth: {n_patients} patients, {len(truth)} files ({fmt}) in {out_dir} "
               f"in {elapsed:.1f} s ({len(truth) / max(elapsed, 1e-9):.0f} files/s); truth: {out_dir}/truth.parquet")


@main.command("demo")
@click.option("--patients", type=click.IntRange(min=20), default=None,
              help="Synthetic patients (default 600, ~2 records each; at least 20).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("ecgkit-demo"),
              show_default=True, help="Folder for the cohort, shards, run and report (replaced if it holds a demo).")
@click.option("--device", type=DeviceType(), default=None,
              help="Training device (default auto: cuda when available).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Maximum training epochs (default 4).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes for synth, scan and shard (default 2).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="YAML with DemoConfig keys (a 'demo' section or top level; see pipelines/demo.yaml).")
def demo_cmd(patients: int | None, out_dir: Path, device: str | None, epochs: int | None, workers: int | None,
             config_file: Path | None) -> None:
    """Run the whole pipeline on a synthetic cohort: synth, scan, label, split, shard, train, evaluate."""
    import time

    from ecgkit.pipeline import DemoConfig, run_demo

    check_device(device)
    config = _config(DemoConfig, config_file, "demo", {"patients": patients, "device": device, "epochs": epochs,
                                                        "workers": workers})
    start = time.perf_counter()
    result = run_demo(out_dir, config, progress=lambda line: click.echo(f"demo | {line}"),
                      on_epoch=lambda row: click.echo(f"demo |   {_epoch_line(row)}"))
    click.echo(f"demo | report: {result.report_md}")
    for plot in result.plots:
        click.echo(f"demo | plot:   {plot}")
    click.echo(f"demo | done in {time.perf_counter() - start:.0f} s: test macro AUROC {result.macro_auroc:.3f}, "
               f"labeler macro F1 vs ground truth {result.labeler_macro_f1:.3f}")


@main.command("info")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info_cmd(path: Path, as_json: bool) -> None:
    """Summarise a cohort folder, a shards folder or a run folder."""
    import json

    from ecgkit.info import format_info, info

    summary = info(path)
    click.echo(json.dumps(summary, indent=2, default=str) if as_json else format_info(summary))


@main.command("measure")
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Worker processes, 0 = one per core [1].")
@click.option("--delineate", is_flag=True, default=None,
              help="Also PR, QRS, QT, QTc (nk.ecg_delineate; slower).")
@click.option("--bsqi-by-lead", is_flag=True, default=None, help="Also bSQI of every lead (12x detection).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default=None, help="Engine [local].")
@click.option("--scheduler", default=None, help="Dask scheduler address (with --engine dask).")
@click.option("--shards", "shards_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Read signals from these shards (their manifest.parquet is measured and rewritten).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="YAML file with MeasureConfig keys (a 'measure' section or top level).")
def measure_command(cohort_dir: str, shards_dir: str | None, config_file: Path | None,
                    **overrides: object) -> None:
    """Measure beats, intervals and quality of every ok record; add the columns to the manifest."""
    from tqdm import tqdm

    from ecgkit.manifest import read_manifest, write_manifest
    from ecgkit.measuring import MeasureConfig, measure, measure_summary

    config = _config(MeasureConfig, config_file, "measure", overrides)
    where = shards_dir or cohort_dir
    with about(where):
        manifest = read_manifest(where)
    n_ok = int((manifest["status"] == "ok").sum())
    with tqdm(total=n_ok, unit="rec", desc="measure", dynamic_ncols=True) as bar:
        out = measure(manifest, config, shards_dir=shards_dir, progress=bar.update)
    write_manifest(out, where)
    s = measure_summary(out)
    click.echo(f"measure: {s['measured']} of {s['records']} records measured, {s['with_reason']} with a "
               f"measure_reason ({s['unreadable']} unreadable); median HR {s['hr_bpm_median']} bpm, "
               f"bSQI {s['bsqi_median']}, quality {s['quality_median']}"
               + (f", PR {s['pr_ms_median']} ms, QRS {s['qrs_ms_median']} ms, QT {s['qt_ms_median']} ms"
                  if config.delineate else "") + f" -> {Path(where) / 'manifest.parquet'}")


@main.command("audit")
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Audit rules YAML (default: the shipped data/audit_rules.yaml).")
@click.option("--plots", "n_plots", type=click.IntRange(min=0), default=6, show_default=True, help="Flagged records plotted.")
def audit_command(cohort_dir: str, rules_file: str | None, n_plots: int) -> None:
    """Set labels against measurements: audit.parquet, audit.md and audit_flags in the manifest."""
    from ecgkit.auditing import audit, load_rules, write_audit
    from ecgkit.manifest import read_manifest, write_manifest

    with about(cohort_dir):
        result = audit(read_manifest(cohort_dir), load_rules(rules_file))
    files = write_audit(result, cohort_dir, n_plots=n_plots)
    write_manifest(result.manifest, cohort_dir)
    click.echo(result.summary[["rule", "label", "stated", "candidates", "audited", "unmeasured", "flagged"]]
               .to_string(index=False))
    click.echo(f"audit: {len(result.flags)} flags on {result.flags['record_id'].nunique()} records -> "
               f"{files['parquet']}, {files['md']}")




@main.command("export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Model file to write.")
@click.option("--format", "fmt", type=click.Choice(["ecgkit", "torchscript", "onnx"]), default="ecgkit",
              show_default=True, help="ecgkit model file, or TorchScript / ONNX for serving.")
@click.option("--checkpoint", default="best.pt", show_default=True, help="best.pt or last.pt.")
@click.option("--shards", "shards_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Training shards (default: the run's); the contract and thresholds come from them.")
@click.option("--threshold", "rules", multiple=True,
              help="Threshold rule to store (repeatable; default max_f1, 0.9, 0.95, 0.99 specificity).")
def export_cmd(run_dir: str, out_path: Path, fmt: str, checkpoint: str, shards_dir: str | None,
               rules: tuple[str, ...]) -> None:
    """Write RUN_DIR as one self-describing model file (weights, labels, thresholds, input contract)."""
    from ecgkit.model_file import load_model
    from ecgkit.trainer.export import DEFAULT_RULES, export

    path = export(run_dir, out_path, checkpoint=checkpoint, format=fmt,  # type: ignore[arg-type]
                  shards_dir=shards_dir, threshold_rules=rules or DEFAULT_RULES)
    model = load_model(path)
    click.echo(f"export: {len(model.label_names)} labels ({fmt}), thresholds {sorted(model.thresholds) or 'none'} "
               f"-> {path}")
    click.echo(model.contract.describe())


@main.command("predict")
@click.argument("model_path", type=click.Path(exists=True))
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Predictions Parquet file.")
@click.option("--threshold", default=None, help="Stored rule (max_f1, 0.95, ...) or p=PROBABILITY.")
@click.option("--device", type=DeviceType(), default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Reader processes (0: one per core).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the network (CUDA).")
@click.option("--pseudonymize/--no-pseudonymize", default=False,
              help="Replace patient IDs by a keyed hash; the key is read from $ECGKIT_PSEUDONYM_KEY.")
def predict_cmd(model_path: str, sources: tuple[Path, ...], out_path: Path, threshold: str | None, device: str,
                batch_size: int, workers: int, compile_: bool, pseudonymize: bool) -> None:
    """Score SOURCES (raw files or folders, a cohort folder, a shard folder) with an exported model."""
    from tqdm import tqdm

    from ecgkit.model_file import load_model
    from ecgkit.predict import PredictConfig, predict_sources

    key = os.environ.get("ECGKIT_PSEUDONYM_KEY") if pseudonymize else None
    if pseudonymize and not key:
        raise click.UsageError("--pseudonymize needs the key in the ECGKIT_PSEUDONYM_KEY environment variable")
    if Path(model_path).is_dir():
        hint = (f"it is a training run: export it first, `ecgkit export {model_path} --out model.pt`"
                if (Path(model_path) / "config.yaml").is_file() else "give the model file `ecgkit export` wrote")
        raise click.BadParameter(f"{model_path!r} is a folder, not a model file; {hint}", param_hint="'MODEL_PATH'")
    model = load_model(model_path)
    cfg = PredictConfig(batch_size=batch_size, workers=workers, device=device, compile=compile_,
                        threshold=threshold, pseudonymize_key=key)
    try:
        model.decision_thresholds(threshold)
    except ValueError as exc:  # ConfigError: an unknown rule
        raise click.UsageError(str(exc)) from exc
    with tqdm(desc="predict", unit="rec", dynamic_ncols=True) as bar:
        res = predict_sources(model, list(sources), cfg, progress=bar.update)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    res.predictions.to_parquet(out_path, index=False)
    click.echo(f"{res.summary()} -> {out_path}")
