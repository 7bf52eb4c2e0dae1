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


@main.command("synth")
@click.option("--patients", "n_patients", type=int, required=True, help="Number of patients (1-8 ECGs each).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--format", "fmt", type=click.Choice(["wfdb", "muse", "both"]), default="wfdb", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--label-noise", type=float, default=0.0, show_default=True,
              help="Probability of flipping each label in the statements (truth.parquet keeps the truth).")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes.")
def synth_cmd(n_patients: int, out_dir: str, fmt: str, seed: int, label_noise: float, workers: int) -> None:
    """Write a synthetic phenotyped cohort (WFDB and/or GE MUSE XML) with truth.parquet."""
    import time

    from ecgkit.synth import synth_cohort

    start = time.perf_counter()
    truth = synth_cohort(n_patients, out_dir, fmt=fmt, seed=seed, label_noise=label_noise, workers=workers)
    elapsed = time.perf_counter() - start
    click.echo(f"synth: {n_patients} patients, {len(truth)} files ({fmt}) in {out_dir} "
               f"in {elapsed:.1f} s ({len(truth) / max(elapsed, 1e-9):.0f} files/s); truth: {out_dir}/truth.parquet")
