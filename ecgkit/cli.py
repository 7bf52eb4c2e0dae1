"""The ``ecgkit`` command: one thin command per stage.

Only this module and ``pipelines/`` wire stages together, set up logging, and own progress bars.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ecgkit import __version__


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _section(config_file: Path | None, name: str) -> str | None:
    """Use the stage's section of a pipeline YAML when the file has one, else its top level."""
    if config_file is None:
        return None
    import yaml

    loaded = yaml.safe_load(config_file.read_text()) or {}
    return name if isinstance(loaded, dict) and isinstance(loaded.get(name), dict) else None


@click.group()
@click.version_option(__version__, prog_name="ecgkit")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """ecgkit: ECG archives to phenotype models (scan, label, split, shard, train, evaluate)."""
    _setup_logging(verbose)


# Stage commands follow, one per stage; each parses options, calls the stage's Python entry point,
# and prints a one-line summary.


@main.command("scan")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Cohort directory to write.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: 1).")
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path), default=None,
              help="YAML file with ScanConfig keys (a 'scan' section or top level).")
@click.option("--pseudonymize/--no-pseudonymize", default=False,
              help="Replace patient IDs by a keyed hash; the key is read from $ECGKIT_PSEUDONYM_KEY, never stored.")
@click.option("--max-quarantine-rate", type=float, default=None,
              help="Exit non-zero when more than this fraction of records is quarantined (default 0.05).")
def scan_cmd(sources: tuple[Path, ...], out_dir: Path, workers: int | None, config_file: Path | None,
             pseudonymize: bool, max_quarantine_rate: float | None) -> None:
    """Walk SOURCES (files and folders), read every record, write OUT/manifest.parquet."""
    import json
    import os
    import time

    from tqdm import tqdm

    from ecgkit.config import load_config
    from ecgkit.manifest import write_manifest, write_quarantine
    from ecgkit.scan import ScanConfig, scan, scan_summary

    key = None
    if pseudonymize:
        key = os.environ.get("ECGKIT_PSEUDONYM_KEY")
        if not key:
            raise click.UsageError("--pseudonymize needs the key in the ECGKIT_PSEUDONYM_KEY environment variable")
    config = load_config(ScanConfig, config_file, {"workers": workers, "pseudonymize_key": key,
                                                   "max_quarantine_rate": max_quarantine_rate},
                         section=_section(config_file, "scan"))
    counts = {"ok": 0, "quarantined": 0}
    start = time.perf_counter()
    with tqdm(desc="scan", unit="rec", dynamic_ncols=True) as bar:
        def progress(n_ok: int, n_q: int) -> None:
            counts["ok"] += n_ok
            counts["quarantined"] += n_q
            bar.update(n_ok + n_q)
            bar.set_postfix(ok=counts["ok"], quarantined=counts["quarantined"], refresh=False)

        df = scan(list(sources), config, progress=progress)
    seconds = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(df, out_dir)
    write_quarantine(df, out_dir, "scan")
    skipped = df.attrs.get("skipped", [])
    import pandas as pd

    pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(out_dir / "skipped_files.csv", index=False)
    summary = scan_summary(df, config, seconds=seconds)
    (out_dir / "scan_summary.json").write_text(json.dumps(summary, indent=2))
    click.echo(f"scan: {summary['records']} records, {summary['ok']} ok, {summary['quarantined']} quarantined "
               f"({summary['quarantine_rate']:.1%}), {summary['skipped_files']} files skipped (see "
               f"{out_dir / 'skipped_files.csv'}), {summary['records_per_s']} records/s -> {out_dir / 'manifest.parquet'}")
    if summary["quarantine_rate"] > config.max_quarantine_rate:
        click.echo(f"scan: quarantine rate {summary['quarantine_rate']:.1%} exceeds the limit "
                   f"{config.max_quarantine_rate:.1%}; see {out_dir / 'quarantine.parquet'}", err=True)
        sys.exit(3)


def _parse_ratios(value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in value.replace(",", ":").split(":"))
    except ValueError as exc:
        raise click.BadParameter(f"expected three numbers like 7:1:2, got {value!r}") from exc
    if len(parts) != 3 or min(parts) < 0 or sum(parts) <= 0:
        raise click.BadParameter(f"expected three non-negative numbers like 7:1:2, got {value!r}")
    return parts


@main.command("split")
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--ratios", default="7:1:2", show_default=True, help="train:val:test record ratios.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the stratified split.")
@click.option("--method", type=click.Choice(["stratified", "hash"]), default="stratified", show_default=True,
              help="stratified: iterative stratification over label columns; hash: keyed hash of patient id.")
@click.option("--key", default=None, help="HMAC key of --method hash (default: ecgkit's public key).")
def split_command(cohort_dir: str, ratios: str, seed: int, method: str, key: str | None) -> None:
    """Add a patient-level train/val/test split to COHORT_DIR/manifest.parquet."""
    from ecgkit.manifest import read_manifest, write_manifest
    from ecgkit.split import audit, split_by_patient

    r = _parse_ratios(ratios)
    out = split_by_patient(read_manifest(cohort_dir), ratios=r, seed=seed,
                           method=method, key=key)  # type: ignore[arg-type]
    report = audit(out, ratios=r)
    write_manifest(out, cohort_dir)
    click.echo(report.summary())
    click.echo(f"split: {sum(report.counts.values())} records ({method}, seed {seed}) -> "
               + ", ".join(f"{s} {n}" for s, n in report.counts.items())
               + f"; {report.n_without_patient_id} without patient id"
               + ("" if report.ratios_ok else f"; ratio drift {report.max_ratio_drift:.3f}"))


@main.command("shard")
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="SHARDS_DIR.")
@click.option("--config", "config_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file with ShardConfig keys (a 'shard' section or top level).")
@click.option("--fs", type=float, default=None, help="Sampling frequency, Hz [500].")
@click.option("--seconds", type=float, default=None, help="Record length, s [10].")
@click.option("--records-per-shard", type=int, default=None, help="Records per shard file [1024].")
@click.option("--workers", type=int, default=None, help="Worker processes, 0 = one per core [0].")
@click.option("--dtype", type=click.Choice(["int16", "float16"]), default=None, help="Storage dtype [int16].")
@click.option("--compression", type=click.Choice(["lzf"]), default=None, help="Compression [none].")
@click.option("--short", type=click.Choice(["pad", "reject"]), default=None, help="Short records [pad].")
@click.option("--engine", type=click.Choice(["local", "dask"]), default=None, help="Engine [local].")
@click.option("--scheduler", default=None, help="Dask scheduler address (with --engine dask).")
@click.option("--max-quarantine-rate", type=float, default=None,
              help="Exit non-zero when more than this fraction of records is quarantined here [0.05].")
def shard_command(cohort_dir: str, out_dir: str, config_file: Path | None, **overrides: object) -> None:
    """Read every split record of COHORT_DIR once and write HDF5 shards to --out.

    The patient key in the shards is an HMAC of the patient id; the key is read from
    $ECGKIT_PSEUDONYM_KEY when set (never stored), else ecgkit's public default key is used.
    """
    import os

    from tqdm import tqdm

    from ecgkit.config import load_config
    from ecgkit.manifest import STATUS_OK, read_manifest
    from ecgkit.shards import ShardConfig, plan_shards, write_shards

    overrides["patient_key"] = os.environ.get("ECGKIT_PSEUDONYM_KEY") or None
    config = load_config(ShardConfig, config_file, overrides, section=_section(config_file, "shard"))
    manifest = read_manifest(cohort_dir)
    n_planned = len(plan_shards(manifest, config))
    with tqdm(total=n_planned, unit="rec", desc="shard", dynamic_ncols=True) as bar:
        out = write_shards(manifest, out_dir, config, progress=bar.update)
    newly = int(((manifest["status"] == STATUS_OK) & (out["status"] != STATUS_OK)).sum())
    rate = newly / n_planned if n_planned else 0.0
    click.echo(f"shard: {n_planned - newly} records in {out['shard'].nunique()} shards, {newly} quarantined "
               f"({rate:.1%}, see {Path(out_dir) / 'quarantine.parquet'}) "
               f"-> {Path(out_dir) / 'index.parquet'}")
    if rate > config.max_quarantine_rate:
        click.echo(f"shard: quarantine rate {rate:.1%} exceeds the limit "
                   f"{config.max_quarantine_rate:.1%}", err=True)
        sys.exit(3)
