"""Train single-task, multi-task and CO-TASK models on the same shards and tabulate them side by side.

Usage: ``python pipelines/run_experiment.py pipelines/experiment_cotask.yaml SHARDS_DIR --out EXP_DIR
[--device cuda] [--epochs N] [--tasks LVH,AFIB]``

Writes ``EXP_DIR/<arm>/`` run directories (single-task: ``EXP_DIR/single_task/<task>/``), each arm's
report (``report.json``/``report.md``/plots) and ``EXP_DIR/comparison.md`` + ``comparison.json``:
per-task AUROC per arm, macro AUROC, multi-label recall/Jaccard/exact match and Δm over the
single-task baseline, like the CO-TASK paper's tables. Thresholds are chosen on the validation
split of each model. Finished runs are reused (rerun resumes where it stopped); a finished run whose
settings differ from the spec is an error, not silently reused. A task with no positive or no negative
training record cannot have a single-task model: it is skipped there (logged, ``n/a`` in the table)
and the multi-task arms' sampler never draws it.
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

from ecgkit.config import config_to_dict, make_config  # noqa: E402
from ecgkit.errors import ConfigError  # noqa: E402
from ecgkit.report import build_report, delta_m_vs, write_report  # noqa: E402
from ecgkit.trainer import LAST_CKPT, TrainConfig, predict_run, train  # noqa: E402

log = logging.getLogger("run_experiment")


# TrainConfig keys that do not change what a run learns: a finished run is reused across them.
_RUNTIME_KEYS = {"device", "num_workers", "prefetch_factor", "progress", "log_interval", "tensorboard",
                 "checkpoint_interval", "eval_batch_size", "compile"}


def _train_arm(values: dict[str, Any], run_dir: Path) -> None:
    """Train one run; a finished run (``done.json``) is reused, an interrupted one resumed."""
    cfg = make_config(TrainConfig, values)
    want = {k: v for k, v in config_to_dict(cfg).items() if k not in _RUNTIME_KEYS}
    done = run_dir / "done.json"
    if done.exists():
        have = json.loads(done.read_text()).get("config")
        if have != want:
            diff = sorted(k for k in set(want) | set(have or {}) if (have or {}).get(k) != want.get(k))
            raise ConfigError(f"{run_dir} holds a finished run with other settings ({diff}); "
                              "remove it or use another --out")
        log.info("reusing finished run %s", run_dir)
        return
    res = train(cfg, run_dir, resume=(run_dir / LAST_CKPT).exists())
    done.write_text(json.dumps({"step": res.step, "epoch": res.epoch, "config": want,
                                "best_val_macro_auroc": res.best_val_macro_auroc}))


def _trainable_tasks(shards_dir: str, tasks: list[str] | None) -> tuple[list[str], list[str]]:
    """(tasks with a known positive and a known negative training record, the other tasks)."""
    from ecgkit.data import ShardDataset

    ds = ShardDataset(shards_dir, "train", tasks=tasks)
    lab = np.asarray(ds.labels)
    ok = (lab == 1).any(axis=0) & (lab == 0).any(axis=0)
    names = list(ds.label_names)
    return [n for n, k in zip(names, ok) if k], [n for n, k in zip(names, ok) if not k]


def _arm_groups(arm: str, overrides: dict[str, Any], values: dict[str, Any],
                trainable: list[str]) -> list[list[str]] | None:
    """Task groups an arm trains one model each for (None: one model on every task).

    ``per_task: true`` = one single-head model per trainable task; ``groups: [[A, B], [C]]`` = one
    model per group (e.g. Hughes' two-head models), evaluated on its group's tasks. Tasks without
    both classes in training are dropped from the groups (a group left empty is skipped).
    """
    per_task, groups = overrides.pop("per_task", False), overrides.pop("groups", None)
    if per_task and groups is not None:
        raise ConfigError(f"arm {arm!r}: give per_task or groups, not both")
    if groups is None:
        return [[t] for t in trainable] if per_task else None
    if not isinstance(groups, list) or not all(isinstance(g, list) and g for g in groups):
        raise ConfigError(f"arm {arm!r}: groups must be a list of non-empty task lists, got {groups!r}")
    flat = [t for g in groups for t in g]
    arm_tasks = values.get("tasks")
    known = arm_tasks.split(",") if isinstance(arm_tasks, str) else arm_tasks
    unknown = [t for t in flat if known and t not in known]
    if unknown or len(set(flat)) != len(flat):
        raise ConfigError(f"arm {arm!r}: groups name unknown tasks {unknown} or a task twice ({flat})")
    return [kept for g in groups if (kept := [t for t in g if t in trainable])]


def _group_values(values: dict[str, Any], group: list[str]) -> dict[str, Any]:
    """One group model's TrainConfig keys: its tasks, no auxiliary tasks, the major tasks it holds."""
    major = [t for t in (values.get("major_tasks") or []) if t in group]
    out = {**values, "tasks": list(group), "aux_tasks": 0, "major_tasks": major or None}
    if out.get("sampler") == "major_task" and not major:
        out["sampler"] = "task_aware"  # a group without a major task balances its own tasks
    return out


def _fmt(v: float) -> str:
    return f"{v:.3f}" if v is not None and np.isfinite(v) else "n/a"


def run_experiment(spec: dict[str, Any], shards_dir: str | Path, out: Path, *, device: str = "auto",
                   epochs: int | None = None, tasks: list[str] | None = None) -> dict[str, Any]:
    """Train and evaluate every arm of ``spec`` on one shard folder; write and return the comparison.

    Parameters
    ----------
    spec : dict
        ``common`` (TrainConfig keys for every arm), ``evaluate`` (``split``, ``threshold_rule``,
        ``n_bootstrap``, ``headline_metric``: ``macro_auroc`` or e.g. ``macro_f1``, over the
        ``major_tasks`` when set) and ``arms`` (name -> TrainConfig overrides; ``per_task: true``
        trains one model per task, ``groups: [[A, B], ...]`` one model per group). Unknown top-level
        keys are an error.
    shards_dir, out : paths
        Shards to train on; experiment folder to write.
    device, epochs, tasks : optional overrides of ``common``.

    Returns
    -------
    dict
        The ``comparison.json`` content: arms, split, per-task AUROC per arm, summary metrics per
        arm, Δm of each arm over ``single_task`` and the tasks skipped by the single-task arm.
    """
    unknown = set(spec) - {"common", "evaluate", "arms"}
    if unknown:
        raise ConfigError(f"unknown top-level experiment keys {sorted(unknown)}")
    shards_dir = str(shards_dir)
    common = dict(spec.get("common") or {}, shards_dir=shards_dir, device=device)
    if epochs:
        common["epochs"] = epochs
    if tasks:
        common["tasks"] = list(tasks)
    ev = dict(spec.get("evaluate") or {})
    headline = str(ev.get("headline_metric", "macro_auroc"))  # Hughes: macro_f1
    split = ev.get("split", "test")
    rule = ev.get("threshold_rule", "max_f1")
    n_boot = int(ev.get("n_bootstrap", 1000))

    # check every arm's settings before training anything (a bad last arm must not cost hours)
    from ecgkit.data import ShardDataset

    n_tasks = len(ShardDataset(shards_dir, "val", tasks=common.get("tasks")).label_names)
    for arm, overrides in (spec.get("arms") or {}).items():
        values = {**common, **{k: v for k, v in (overrides or {}).items() if k not in ("per_task", "groups")}}
        cfg = make_config(TrainConfig, values)
        if cfg.aux_tasks > n_tasks * (n_tasks - 1) // 2:
            n_pairs = n_tasks * (n_tasks - 1) // 2
            raise ConfigError(f"arm {arm!r}: aux_tasks={cfg.aux_tasks} exceeds the {n_pairs} distinct pairs "
                              f"of its {n_tasks} tasks")

    reports: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for arm, overrides in (spec.get("arms") or {}).items():
        overrides = dict(overrides or {})
        per_model = "per_task" in overrides or "groups" in overrides
        values = {**common, **{k: v for k, v in overrides.items() if k not in ("per_task", "groups")}}
        if per_model:
            arm_tasks = values.get("tasks")
            arm_tasks = arm_tasks.split(",") if isinstance(arm_tasks, str) else arm_tasks
            trainable, skipped = _trainable_tasks(shards_dir, list(arm_tasks) if arm_tasks else None)
            if skipped:
                log.warning("%s: no single-task model for %s (no positive or no negative training record)",
                            arm, skipped)
            if not trainable:
                raise ConfigError(f"{arm}: no task has both classes in the training split of {shards_dir}")
            groups = _arm_groups(arm, overrides, values, trainable) or []
            parts = []
            for group in groups:
                run = out / arm / "+".join(group)
                _train_arm(_group_values(values, group), run)
                parts.append((predict_run(run, "val", device=device), predict_run(run, split, device=device)))
            y_val = np.hstack([v[0] for v, _ in parts])
            s_val = np.hstack([v[1] for v, _ in parts])
            y = np.hstack([t[0] for _, t in parts])
            s = np.hstack([t[1] for _, t in parts])
            names = [t for g in groups for t in g]
        else:
            run = out / arm
            _train_arm(values, run)
            y_val, s_val, names = predict_run(run, "val", device=device)
            y, s, _ = predict_run(run, split, device=device)
        major = [t for t in (values.get("major_tasks") or []) if t in names]
        rep = build_report(y_val, s_val, y, s, names, split=split, threshold_rule=rule, n_bootstrap=n_boot,
                           major_tasks=major or None, headline_metric=headline)
        write_report(rep, out / arm / f"eval-{split}", title=f"{arm} on {split}")
        reports[arm] = rep
        log.info("%s: macro AUROC %.4f", arm, rep["summary"]["macro_auroc"])
    if not reports:
        raise ConfigError("the experiment spec has no arms")

    base = reports.get("single_task")
    arms = list(reports)
    names = []  # every task of any arm, in the order the arms list them
    for a in arms:
        names += [n for n in reports[a]["label_names"] if n not in names]
    table: dict[str, Any] = {"arms": arms, "split": split, "per_task_auroc": {}, "summary": {}, "delta_m": {},
                             "single_task_skipped": skipped}
    lines = [f"# CO-TASK experiment on `{shards_dir}` ({split})", "",
             "| task | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for n in names:
        vals = [reports[a]["per_task"].get(n, {}).get("auroc", float("nan")) for a in arms]
        table["per_task_auroc"][n] = vals
        lines.append(f"| {n} | " + " | ".join(_fmt(v) for v in vals) + " |")
    heads = [reports[a]["headline"]["value"] for a in arms]
    table["headline"] = {"metric": headline, "values": heads,
                         "tasks": {a: reports[a]["headline"]["tasks"] for a in arms}}
    scope = ", ".join(common["major_tasks"]) if common.get("major_tasks") else "all tasks"
    lines.append(f"| **headline: {headline} ({scope})** | " + " | ".join(_fmt(v) for v in heads) + " |")
    for key in ("macro_auroc", "recall_multi", "jaccard", "exact_match"):
        vals = [reports[a]["summary"][key] for a in arms]
        table["summary"][key] = vals
        lines.append(f"| **{key}** | " + " | ".join(_fmt(v) for v in vals) + " |")
    if base is not None:
        dms = [delta_m_vs(reports[a], base)["all"] for a in arms]
        table["delta_m"] = dict(zip(arms, dms))
        lines.append("| **Δm vs single-task (%)** | " + " | ".join(
            f"{v:+.2f}" if np.isfinite(v) else "n/a" for v in dms) + " |")
    if skipped:
        lines += ["", f"No single-task model for {', '.join(skipped)}: no positive or no negative "
                  "training record."]
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
    (out / "comparison.json").write_text(json.dumps(table, indent=1, default=float))
    table["markdown"] = "\n".join(lines)
    return table


def run_folds(spec: dict[str, Any], shards_root: str | Path, out: Path, *, folds: int, **kwargs: Any
              ) -> dict[str, Any]:
    """Patient-level k-fold: :func:`run_experiment` on ``SHARDS_ROOT/fold-k`` for k < ``folds``; mean and SD.

    ``SHARDS_ROOT/fold-k`` are shard folders written from ``ecgkit.split.select_fold(manifest, k)``
    of one ``split_kfold`` assignment (fold k = test, fold k+1 = val, the rest train), e.g. by
    ``ecgkit split COHORT --method kfold --folds K --fold k`` then ``ecgkit shard`` per k.
    Writes ``OUT/fold-k/`` per fold and ``OUT/folds.md`` + ``folds.json``.
    """
    root = Path(shards_root)
    missing = [k for k in range(folds) if not (root / f"fold-{k}").is_dir()]
    if folds < 3 or missing:
        raise ConfigError(f"--folds {folds} needs {root}/fold-0 .. fold-{folds - 1} (missing: {missing})")
    tables = [run_experiment(spec, root / f"fold-{k}", out / f"fold-{k}", **kwargs) for k in range(folds)]
    arms = tables[0]["arms"]
    summary: dict[str, Any] = {"folds": folds, "arms": arms, "metrics": {}}
    rows = [("headline", [t["headline"]["values"] for t in tables])]
    rows += [(k, [t["summary"][k] for t in tables]) for k in ("macro_auroc", "recall_multi", "jaccard")]
    rows += [(f"auroc {n}", [t["per_task_auroc"].get(n, [np.nan] * len(arms)) for t in tables])
             for n in tables[0]["per_task_auroc"]]
    lines = [f"# {folds}-fold patient-level cross-validation (mean ± SD over folds)", "",
             "| metric | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for name, per_fold in rows:
        v = np.array(per_fold, dtype=float)  # (folds, arms)
        mean, sd = np.nanmean(v, axis=0), np.nanstd(v, axis=0, ddof=1)
        summary["metrics"][name] = {"mean": mean.tolist(), "sd": sd.tolist(), "per_fold": v.tolist()}
        lines.append(f"| {name} | " + " | ".join(f"{m:.3f} ± {d:.3f}" if np.isfinite(m) else "n/a"
                                                   for m, d in zip(mean, sd)) + " |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds.md").write_text("\n".join(lines) + "\n")
    (out / "folds.json").write_text(json.dumps(summary, indent=1, default=float))
    summary["markdown"] = "\n".join(lines)
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", type=Path)
    p.add_argument("shards_dir")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int)
    p.add_argument("--tasks", help="comma-separated subset of tasks (default: all labels of the shards)")
    p.add_argument("--folds", type=int, help="k-fold: SHARDS_DIR holds fold-0 .. fold-(K-1) shard folders")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = yaml.safe_load(args.config.read_text()) or {}
    try:
        kw = dict(device=args.device, epochs=args.epochs, tasks=args.tasks.split(",") if args.tasks else None)
        table = (run_folds(spec, args.shards_dir, args.out, folds=args.folds, **kw) if args.folds
                 else run_experiment(spec, args.shards_dir, args.out, **kw))
    except ConfigError as exc:
        sys.exit(f"run_experiment: {args.config}: {exc}")
    print(table["markdown"])


if __name__ == "__main__":
    main()
