"""The ``ecgkit`` command: one thin command per stage.

Only this module and ``pipelines/`` wire stages together, set up logging, and own progress bars.
"""
from __future__ import annotations

import logging
import os
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


@main.command("train")
@click.argument("shards_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="YAML TrainConfig.")
@click.option("--epochs", type=int, help="Maximum epochs.")
@click.option("--device", help="cuda, cpu or auto.")
@click.option("--blocks", type=click.Choice(["8", "16"]), help="Residual blocks (8: CO-TASK, 16: Hannun 34-layer).")
@click.option("--aux-tasks", type=int, help="Number of CO-TASK auxiliary tasks.")
@click.option("--weighting", type=click.Choice(["equal", "dwa", "uncertainty"]), help="Task-loss weighting.")
@click.option("--sampler", type=click.Choice(["task_aware", "joint"]), help="Batch construction.")
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/last.pt.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train_command(shards_dir: str, out_dir: str, config_file: str | None, epochs: int | None, device: str | None,
                  blocks: str | None, aux_tasks: int | None, weighting: str | None, sampler: str | None,
                  resume: bool, no_progress: bool) -> None:
    """Train a multi-head 1D ResNet on SHARDS_DIR (multi-GPU: torchrun --nproc_per_node G -m ecgkit train)."""
    from ecgkit.config import load_config
    from ecgkit.train import TrainConfig, train

    overrides = {"shards_dir": shards_dir, "epochs": epochs, "device": device, "aux_tasks": aux_tasks,
                 "weighting": weighting, "sampler": sampler, "blocks": None if blocks is None else int(blocks),
                 "progress": not no_progress}
    cfg = load_config(TrainConfig, config_file, overrides)
    res = train(cfg, out_dir, resume=resume)
    if int(os.environ.get("RANK", "0")) == 0:  # one summary line, not one per torchrun process
        click.echo(f"trained {res.step} steps, {res.epoch} epochs, best val macro AUROC "
                   f"{res.best_val_macro_auroc:.4f}, {res.samples_per_s:.0f} samples/s -> {res.run_dir}")


@main.command("evaluate")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="test", show_default=True, help="Split to evaluate.")
@click.option("--baseline", type=click.Path(exists=True, file_okay=False), help="Baseline run for delta-m.")
@click.option("--threshold", "threshold_rule", default="max_f1", show_default=True,
              help="max_f1, or a target specificity such as 0.95 (chosen on the validation split).")
@click.option("--bootstrap", "n_bootstrap", default=1000, show_default=True, help="Bootstrap resamples for CIs.")
@click.option("--reference-specificity", type=float, help="Report sensitivity at this specificity.")
@click.option("--device", default="auto", show_default=True)
def evaluate_command(run_dir: str, split: str, baseline: str | None, threshold_rule: str, n_bootstrap: int,
                     reference_specificity: float | None, device: str) -> None:
    """Evaluate RUN_DIR on a split: report.json, report.md and plots in RUN_DIR/eval-SPLIT."""
    from ecgkit.report import evaluate

    rep = evaluate(run_dir, split, baseline=baseline, threshold_rule=threshold_rule, n_bootstrap=n_bootstrap,
                   reference_specificity=reference_specificity, device=device)
    s = rep["summary"]
    extra = f", delta-m {rep['delta_m']['all']:+.2f}%" if "delta_m" in rep else ""
    click.echo(f"{split}: macro AUROC {s['macro_auroc']:.4f}, recall {s['recall_multi']:.4f}, jaccard "
               f"{s['jaccard']:.4f}, exact {s['exact_match']:.4f}{extra} -> {rep['files']['md']}")
