"""Train single-task, multi-task and CO-TASK models on the same shards and tabulate them side by side.

Usage: ``python pipelines/run_experiment.py pipelines/experiment_cotask.yaml SHARDS_DIR --out EXP_DIR
[--device cuda] [--epochs N] [--tasks LVH,AFIB]``

Writes ``EXP_DIR/<arm>/`` run directories (single-task: ``EXP_DIR/single_task/<task>/``), each arm's
report (``report.json``/``report.md``/plots) and ``EXP_DIR/comparison.md`` + ``comparison.json``:
per-task AUROC per arm, macro AUROC, multi-label recall/Jaccard/exact match and Δm over the
single-task baseline, like the CO-TASK paper's tables. Thresholds are chosen on the validation
split of each model. Finished runs are reused (rerun resumes where it stopped).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgkit.config import make_config  # noqa: E402
from ecgkit.report import build_report, delta_m_vs, write_report  # noqa: E402
from ecgkit.train import LAST_CKPT, TrainConfig, predict_run, train  # noqa: E402

log = logging.getLogger("run_experiment")


def _train_arm(values: dict[str, Any], run_dir: Path) -> None:
    """Train one run; a finished run (``done.json``) is reused, an interrupted one resumed."""
    if (run_dir / "done.json").exists():
        log.info("reusing finished run %s", run_dir)
        return
    res = train(make_config(TrainConfig, values), run_dir, resume=(run_dir / LAST_CKPT).exists())
    (run_dir / "done.json").write_text(json.dumps({"step": res.step, "epoch": res.epoch,
                                                   "best_val_macro_auroc": res.best_val_macro_auroc}))


def _predict(run_dir: Path, split: str, device: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    return predict_run(run_dir, split, device=device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", type=Path)
    p.add_argument("shards_dir")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int)
    p.add_argument("--tasks", help="comma-separated subset of tasks (default: all labels of the shards)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = yaml.safe_load(args.config.read_text())
    unknown = set(spec) - {"common", "evaluate", "arms"}
    if unknown:
        sys.exit(f"unknown top-level keys in {args.config}: {sorted(unknown)}")
    common = dict(spec.get("common") or {}, shards_dir=args.shards_dir, device=args.device)
    if args.epochs:
        common["epochs"] = args.epochs
    if args.tasks:
        common["tasks"] = args.tasks
    ev = dict(spec.get("evaluate") or {})
    split = ev.get("split", "test")
    rule = ev.get("threshold_rule", "max_f1")
    n_boot = int(ev.get("n_bootstrap", 1000))

    reports: dict[str, dict[str, Any]] = {}
    for arm, overrides in (spec.get("arms") or {}).items():
        overrides = dict(overrides or {})
        per_task = overrides.pop("per_task", False)
        values = {**common, **overrides}
        if per_task:
            from ecgkit.data import ShardDataset
            tasks = list(values.get("tasks") or ShardDataset(args.shards_dir, "val").label_names)
            if isinstance(values.get("tasks"), str):
                tasks = values["tasks"].split(",")
            parts = []
            for task in tasks:
                run = args.out / arm / task
                _train_arm({**values, "tasks": [task], "aux_tasks": 0}, run)
                parts.append((_predict(run, "val", args.device), _predict(run, split, args.device)))
            y_val = np.hstack([v[0] for v, _ in parts])
            s_val = np.hstack([v[1] for v, _ in parts])
            y = np.hstack([t[0] for _, t in parts])
            s = np.hstack([t[1] for _, t in parts])
            names = tasks
        else:
            run = args.out / arm
            _train_arm(values, run)
            y_val, s_val, names = _predict(run, "val", args.device)
            y, s, _ = _predict(run, split, args.device)
        rep = build_report(y_val, s_val, y, s, names, split=split, threshold_rule=rule, n_bootstrap=n_boot)
        write_report(rep, args.out / arm / f"eval-{split}", title=f"{arm} on {split}")
        reports[arm] = rep
        log.info("%s: macro AUROC %.4f", arm, rep["summary"]["macro_auroc"])

    base = reports.get("single_task")
    arms = list(reports)
    names = reports[arms[0]]["label_names"]
    table = {"arms": arms, "split": split, "per_task_auroc": {}, "summary": {}, "delta_m": {}}
    lines = [f"# CO-TASK experiment on `{args.shards_dir}` ({split})", "",
             "| task | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for n in names:
        vals = [reports[a]["per_task"].get(n, {}).get("auroc", float("nan")) for a in arms]
        table["per_task_auroc"][n] = vals
        lines.append(f"| {n} | " + " | ".join(f"{v:.3f}" if np.isfinite(v) else "n/a" for v in vals) + " |")
    for key in ("macro_auroc", "recall_multi", "jaccard", "exact_match"):
        vals = [reports[a]["summary"][key] for a in arms]
        table["summary"][key] = vals
        lines.append(f"| **{key}** | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    if base is not None:
        dms = [delta_m_vs(reports[a], base)["all"] for a in arms]
        table["delta_m"] = dict(zip(arms, dms))
        lines.append("| **Δm vs single-task (%)** | " + " | ".join(f"{v:+.2f}" for v in dms) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.md").write_text("\n".join(lines) + "\n")
    (args.out / "comparison.json").write_text(json.dumps(table, indent=1, default=float))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
