"""The ``ecgkit`` command: one thin command per stage.

Only this module and ``pipelines/`` wire stages together, set up logging, and own progress bars.
"""
from __future__ import annotations

import logging
import sys

import click

from ecgkit import __version__


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@click.group()
@click.version_option(__version__, prog_name="ecgkit")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """ecgkit: ECG archives to phenotype models (scan, label, split, shard, train, evaluate)."""
    _setup_logging(verbose)


# Stage commands follow, one per stage; each parses options, calls the stage's Python entry point,
# and prints a one-line summary.


@main.command("label")
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--vocabulary", default="ecg-p18", show_default=True,
              help="Shipped vocabulary name (ecg-p18) or path to a vocabulary YAML file.")
@click.option("--uncertain", type=click.Choice(["positive", "negative", "mask"]), default="positive",
              show_default=True, help="Value of hedged mentions ('possible RVH'): 1, 0 or -1.")
@click.option("--source", type=click.Choice(["text", "codes", "both"]), default="text", show_default=True,
              help="Label from statements, from structured codes (SCP/SNOMED), or either.")
def label_cmd(cohort_dir: str, vocabulary: str, uncertain: str, source: str) -> None:
    """Add label columns and label_provenance to COHORT_DIR/manifest.parquet."""
    from ecgkit.labels import label_manifest, load_vocabulary
    from ecgkit.manifest import read_manifest, write_manifest

    vocab = load_vocabulary(vocabulary)
    manifest = read_manifest(cohort_dir)
    labelled = label_manifest(manifest, vocabulary=vocab, uncertain=uncertain, source=source)
    write_manifest(labelled, cohort_dir)
    counts = ", ".join(f"{lab} {int((labelled[lab] == 1).sum())}" for lab in vocab.labels)
    masked = int((labelled[list(vocab.labels)] == -1).to_numpy().sum())
    click.echo(f"labelled {len(labelled)} records with {vocab.name} {vocab.version} (source={source}, "
               f"uncertain={uncertain}); positives: {counts}" + (f"; masked: {masked}" if masked else ""))
