"""Train the arms of an experiment on the same shards, several seeds each, and compare them with paired statistics.

Usage: ``python pipelines/run_experiment.py pipelines/experiment_cotask.yaml SHARDS_DIR --out EXP_DIR
[--device cuda] [--epochs N] [--tasks LVH,AFIB] [--seeds 0,1,2] [--arms multi_task,cotask] [--train-only]
[--only-tasks LVH] [--accept-interrupted]`` (one process per arm/seed/single-task model with ``--train-only``,
then one tabulating call; ``--accept-interrupted`` takes runs killed at a deadline as they stood)

Spec (YAML): ``common`` (TrainConfig keys for every arm), ``arms`` (name -> TrainConfig overrides;
``per_task: true`` trains one single-task model per task, ``groups: [[A, B], ...]`` one model per
group, e.g. Hughes' two-head models) and ``evaluate``:

``split`` (test), ``threshold_rule`` (max_f1), ``n_bootstrap`` (1000), ``min_positives`` (10: tasks
with fewer evaluated positives get no interval), ``seeds`` (list, default ``[0, 1, 2]``),
``reference`` (the arm every other arm is compared with; default ``multi_task`` when present, else
the first arm), ``budget`` (see below) and ``rare_ratio`` (300: a task is rare when its training
prevalence is at most 1 / (1 + rare_ratio); rare-task F1 is reported as in Hughes et al.) and
``headline_metric`` (macro_auroc; or macro_f1 for Hughes' Table 1: the table's first row, over the
``major_tasks`` of ``common`` when set, e.g. CO-TASK Table 8's major task).

``--folds K``: SHARDS_DIR holds ``fold-0 .. fold-(K-1)`` shard folders (one k-fold assignment, fold k as
test); every arm runs on each, and ``EXP_DIR/folds.md`` gives mean ± SD over folds.

Budget
------
``budget: samples`` (default): every model gets ``epochs`` epochs of ``ceil(n_train / batch_size)``
batches, i.e. the same number of training records seen and of optimiser steps; a single-task model
gets the same for its one task. ``budget: head_updates``: a task-aware arm, whose batch trains one of
its H heads, gets H times as many batches per epoch, so that each head is updated as often as every
head of a joint arm. ``budget: spec``: use the spec's own ``batches_per_epoch``. Early stopping on the
validation split (``patience``) applies within the budget, so runs stop at convergence; the steps
each run took are tabulated.

Layout
------
``EXP_DIR/<arm>/seed-<s>/`` run directories (single-task: ``EXP_DIR/single_task/seed-<s>/<task>/``),
each arm's pooled report ``EXP_DIR/<arm>/eval-<split>/`` (metrics averaged over the seeds, patient
bootstrap CIs) and ``EXP_DIR/comparison.md`` + ``comparison.json``: per arm the mean and SD over
seeds of macro AUROC, the multi-label metrics (CO-TASK Table 7) and rare-task F1, Δm over the
single-task arm, and per arm against the reference the paired patient-level bootstrap CI and p-value
of each difference (same test records, same resamples) and a per-task DeLong test on the seed-mean
scores. Finished runs are reused; a finished run whose settings differ from the spec is an error.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgkit import metrics as M  # noqa: E402
from ecgkit.bootstrap import bootstrap_ci, delong_test, paired_bootstrap  # noqa: E402
from ecgkit.config import config_to_dict, make_config  # noqa: E402
from ecgkit.errors import ConfigError  # noqa: E402
from ecgkit.report import build_report, patient_groups, write_report  # noqa: E402
from ecgkit.trainer import BEST_CKPT, LAST_CKPT, METRICS_FILE, TrainConfig, predict_run, train  # noqa: E402

log = logging.getLogger("run_experiment")

# TrainConfig keys that do not change what a run learns: a finished run is reused across them.
_RUNTIME_KEYS = {"device", "num_workers", "prefetch_factor", "progress", "log_interval", "tensorboard",
                 "checkpoint_interval", "eval_batch_size", "compile"}
_EVAL_KEYS = {"split", "threshold_rule", "n_bootstrap", "min_positives", "seeds", "reference", "budget",
              "rare_ratio", "headline_metric"}
BUDGETS = ("samples", "head_updates", "spec")
SUMMARY_KEYS = ("macro_auroc", "recall_multi", "jaccard", "exact_match", "rare_f1")
M_PER_TASK = ("auroc", "ap", "f1")


def _train_arm(values: dict[str, Any], run_dir: Path, accept_interrupted: bool = False) -> dict[str, Any]:
    """Train one run (a finished one, ``done.json``, is reused; an interrupted one resumed); its done record.

    ``accept_interrupted``: a run that was killed after at least one epoch (``best.pt`` and
    ``metrics.csv`` exist, no ``done.json``) is taken as it stands, marked ``interrupted`` in its done
    record (e.g. runs killed at a device-time deadline), instead of being resumed.
    """
    cfg = make_config(TrainConfig, values)
    want = {k: v for k, v in config_to_dict(cfg).items() if k not in _RUNTIME_KEYS}
    done = run_dir / "done.json"
    if done.exists():
        rec = json.loads(done.read_text())
        have = rec.get("config")
        if have != want:
            diff = sorted(k for k in set(want) | set(have or {}) if (have or {}).get(k) != want.get(k))
            raise ConfigError(f"{run_dir} holds a finished run with other settings ({diff}); "
                              "remove it or use another --out")
        log.info("reusing finished run %s", run_dir)
        return dict(rec)
    if accept_interrupted:
        if not ((run_dir / BEST_CKPT).exists() and (run_dir / METRICS_FILE).exists()):
            raise ConfigError(f"{run_dir}: no finished epoch to take (--accept-interrupted trains nothing)")
        rec = interrupted_record(run_dir / METRICS_FILE, want)
        done.write_text(json.dumps(rec))
        log.warning("taking interrupted run %s as it stands: %d epoch(s), %d steps", run_dir, rec["epoch"],
                    rec["step"])
        return rec
    resume = (run_dir / LAST_CKPT).exists()  # a rerun continues each arm; one killed before its first
    res = train(cfg, run_dir, resume=resume, overwrite=not resume)  # checkpoint starts over
    rec = {"step": res.step, "epoch": res.epoch, "config": want, "best_val_macro_auroc": res.best_val_macro_auroc,
           "stopped_early": res.stopped_early}
    done.write_text(json.dumps(rec))
    return rec


def interrupted_record(metrics_csv: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The done record of a run killed between epochs, from its ``metrics.csv`` (one row per finished epoch)."""
    import csv

    with open(metrics_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ConfigError(f"{metrics_csv} has no finished epoch")
    val = [float(r["val_macro_auroc"]) for r in rows if r.get("val_macro_auroc") not in (None, "")]
    val = [v for v in val if np.isfinite(v)]
    return {"step": int(rows[-1]["step"]), "epoch": len(rows), "config": config,
            "best_val_macro_auroc": max(val) if val else float("nan"), "stopped_early": False, "interrupted": True}


def _train_labels(shards_dir: str, tasks: list[str] | None) -> tuple[list[str], np.ndarray]:
    from ecgkit.data import ShardDataset

    ds = ShardDataset(shards_dir, "train", tasks=tasks)
    return list(ds.label_names), np.asarray(ds.labels)


def trainable_tasks(names: list[str], labels: np.ndarray) -> tuple[list[str], list[str]]:
    """(tasks with a known positive and a known negative training record, the other tasks)."""
    ok = (labels == 1).any(axis=0) & (labels == 0).any(axis=0)
    return [n for n, k in zip(names, ok) if k], [n for n, k in zip(names, ok) if not k]


def batches_per_epoch(budget: str, n_train: int, cfg: TrainConfig, n_tasks: int) -> int | None:
    """Batches per epoch of one run under ``budget`` (see the module docstring); None keeps the spec's."""
    if budget not in BUDGETS:
        raise ConfigError(f"budget must be one of {list(BUDGETS)}, got {budget!r}")
    if budget == "spec":
        return cfg.batches_per_epoch
    per_pass = max(1, math.ceil(n_train / cfg.batch_size))
    if budget == "head_updates" and cfg.sampler == "task_aware":
        return per_pass * (n_tasks + cfg.aux_tasks)  # one head per batch: H times the batches
    return per_pass


def seed_summary(values: list[float]) -> dict[str, float]:
    """Mean, sample SD (ddof 1; 0 for one seed), min, max and count of finite per-seed values."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not len(v):
        return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "min": float(v.min()),
            "max": float(v.max()), "n": int(len(v))}


def rare_tasks(names: list[str], train_labels: np.ndarray, rare_ratio: float) -> list[str]:
    """Tasks whose training prevalence (known entries) is at most 1 / (1 + rare_ratio)."""
    known = (train_labels >= 0).sum(axis=0)
    prev = (train_labels == 1).sum(axis=0) / np.maximum(known, 1)
    return [n for n, p in zip(names, prev) if p <= 1.0 / (1.0 + rare_ratio)]


def _rare_f1(rep: dict[str, Any], rare: list[str]) -> float:
    vals = [rep["per_task"][t]["f1"] for t in rare if t in rep["per_task"]]
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


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
    arm_tasks = values.get("tasks")
    known = arm_tasks.split(",") if isinstance(arm_tasks, str) else arm_tasks
    if groups is None:
        if not per_task:
            return None
        unknown = [t for t in known or [] if t not in trainable]
        if unknown:
            raise ConfigError(f"arm {arm!r}: tasks {unknown} are not trainable tasks of the shards ({trainable})")
        return [[t] for t in trainable if not known or t in known]  # the arm's `tasks` restrict the models
    if not isinstance(groups, list) or not all(isinstance(g, list) and g for g in groups):
        raise ConfigError(f"arm {arm!r}: groups must be a list of non-empty task lists, got {groups!r}")
    flat = [t for g in groups for t in g]
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


def _fmt(v: Any, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if v is not None and np.isfinite(v) else "n/a"


def _fmt_ms(s: dict[str, float]) -> str:
    return "n/a" if not s["n"] else f"{s['mean']:.3f} ± {s['sd']:.3f}"


def _fmt_diff(est: float, lo: float, hi: float, p: float) -> str:
    if not np.isfinite(est):
        return "n/a"
    ci = f" [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) and np.isfinite(hi) else " [no CI]"
    return f"{est:+.3f}{ci} p={_fmt(p)}"


def _arm_runs(arm: str, values: dict[str, Any], groups: list[list[str]] | None, seeds: list[int], out: Path,
              trainable: list[str], budget: str, n_train: int, n_tasks: int, device: str, split: str,
              mode: dict[str, Any]) -> dict[str, Any]:
    """Train every seed of one arm; return labels/scores per seed and the steps each run took.

    ``groups`` (from :func:`_arm_groups`): one model per task group (``per_task``: one per task), else one model.
    ``mode``: ``train_only`` (train, predict nothing), ``only_tasks`` (train only the group models
    holding one of these tasks), ``accept_interrupted`` (see :func:`_train_arm`).
    """
    train_only, only, accept = mode.get("train_only", False), mode.get("only_tasks"), mode.get("accept_interrupted",
                                                                                              False)
    if groups is not None and only:
        groups = [g for g in groups if set(g) & set(only)]
    val_y, val_s, ev_y, ev_s, steps, interrupted = [], [], [], [], [], []
    names = [t for g in groups for t in g] if groups is not None else trainable
    for seed in seeds:
        v = {**values, "seed": seed}
        if groups is not None:
            parts = []
            for group in groups:
                vt = _group_values(v, group)
                vt["batches_per_epoch"] = batches_per_epoch(budget, n_train, make_config(TrainConfig, vt), len(group))
                run = out / arm / f"seed-{seed}" / "+".join(group)
                rec = _train_arm(vt, run, accept)
                interrupted.append(bool(rec.get("interrupted")))
                if not train_only:
                    parts.append((predict_run(run, "val", device=device), predict_run(run, split, device=device),
                                  rec))
            if train_only:
                continue
            val_y.append(np.hstack([p[0][0] for p in parts]))
            val_s.append(np.hstack([p[0][1] for p in parts]))
            ev_y.append(np.hstack([p[1][0] for p in parts]))
            ev_s.append(np.hstack([p[1][1] for p in parts]))
            steps.append(int(sum(p[2]["step"] for p in parts)))
        else:
            v["batches_per_epoch"] = batches_per_epoch(budget, n_train, make_config(TrainConfig, v), n_tasks)
            run = out / arm / f"seed-{seed}"
            rec = _train_arm(v, run, accept)
            interrupted.append(bool(rec.get("interrupted")))
            if train_only:
                continue
            (yv, sv, nm), (ye, se, _) = predict_run(run, "val", device=device), predict_run(run, split, device=device)
            val_y.append(yv)
            val_s.append(sv)
            ev_y.append(ye)
            ev_s.append(se)
            steps.append(int(rec["step"]))
            names = list(nm)
    if train_only:
        return {"names": names, "interrupted": interrupted}
    return {"names": names, "val_y": val_y, "val_s": val_s, "y": ev_y[0], "s": np.stack(ev_s), "steps": steps,
            "rule": None, "interrupted": interrupted}


def _align(runs: dict[str, Any], names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An arm's evaluated labels (N, K), seed scores (S, N, K) and validation thresholds (S, K) on ``names``.

    Every name must be one of the arm's tasks.
    """
    idx = [runs["names"].index(n) for n in names]
    thr = np.stack([M.choose_thresholds(yv[:, idx], sv[:, idx], runs["rule"])
                    for yv, sv in zip(runs["val_y"], runs["val_s"])])
    return runs["y"][:, idx], runs["s"][:, :, idx], thr


def _compare(ref: dict[str, Any], other: dict[str, Any], names: list[str], groups: np.ndarray | None, n_boot: int,
             min_pos: int) -> dict[str, Any]:
    """Paired bootstrap (patients) and DeLong of ``other - ref`` on the tasks both arms have."""
    common = [n for n in names if n in ref["names"] and n in other["names"]]
    y, sa, ta = _align(ref, common)
    _, sb, tb = _align(other, common)
    pb = paired_bootstrap(y, sa, sb, ta, tb, groups=groups, n_resamples=n_boot, min_positives=min_pos)
    dl = delong_test(y, sa.mean(axis=0), sb.mean(axis=0))
    out: dict[str, Any] = {"tasks": common, "unit": pb.unit, "n_units": pb.n_units, "n_resamples": pb.n_resamples,
                           "macro_tasks": [common[i] for i in pb.macro_tasks], "flagged": [common[i] for i in
                                                                                          np.flatnonzero(pb.flagged)]}
    for k in ("macro_auroc", "recall_multi", "jaccard", "exact_match"):
        out[k] = {"diff": pb.estimate[k], "low": pb.low[k], "high": pb.high[k], "p": pb.p_value[k],
                  "n_usable": pb.n_usable[k]}
    out["per_task"] = {t: {"auroc_diff": float(pb.estimate["auroc"][i]), "low": float(pb.low["auroc"][i]),
                           "high": float(pb.high["auroc"][i]), "p_bootstrap": float(pb.p_value["auroc"][i]),
                           "n_usable": int(pb.n_usable["auroc"][i]), "delong_diff": float(dl.diff[i]),
                           "delong_p": float(dl.p_value[i]), "f1_diff": float(pb.estimate["f1"][i])}
                       for i, t in enumerate(common)}
    return out


def run_experiment(spec: dict[str, Any], shards_dir: str | Path, out: Path, *, device: str = "auto",
                   epochs: int | None = None, tasks: list[str] | None = None,
                   seeds: list[int] | None = None, arms: list[str] | None = None, train_only: bool = False,
                   only_tasks: list[str] | None = None, accept_interrupted: bool = False) -> dict[str, Any]:
    """Train and evaluate every arm of ``spec`` (several seeds) on one shard folder; write and return the comparison.

    ``arms`` restricts the run to some of the spec's arms (e.g. one process per arm and seed on a
    shared GPU, then one call over all arms, which reuses the finished runs, for the comparison).
    ``train_only`` trains and returns ``{"arms", "trained", "markdown"}`` without predicting or
    writing a comparison; ``only_tasks`` trains only the per-task/group models holding one of these
    tasks (so that single-task models can train in parallel processes); ``accept_interrupted`` takes
    runs killed between epochs as they stand (listed in ``interrupted`` of the comparison).

    Returns
    -------
    dict
        The ``comparison.json`` content: ``arms``, ``split``, ``seeds``, ``budget``, ``reference``,
        ``per_task_auroc`` (task -> seed-mean per arm), ``per_task_f1``, ``summary`` (metric -> arm ->
        mean/sd/min/max/n over seeds), ``steps`` (arm -> steps per seed), ``delta_m`` (arm -> Δm of the
        seed-mean AUROC/AP/F1 over ``single_task``), ``comparisons`` (arm -> paired statistics against
        the reference), ``rare_tasks``, ``single_task_skipped``; plus ``markdown``.
    """
    unknown = set(spec) - {"common", "evaluate", "arms"}
    if unknown:
        raise ConfigError(f"unknown top-level experiment keys {sorted(unknown)}")
    ev = dict(spec.get("evaluate") or {})
    if set(ev) - _EVAL_KEYS:
        raise ConfigError(f"unknown evaluate keys {sorted(set(ev) - _EVAL_KEYS)}; known: {sorted(_EVAL_KEYS)}")
    shards_dir = str(shards_dir)
    common = dict(spec.get("common") or {}, shards_dir=shards_dir, device=device)
    if epochs:
        common["epochs"] = epochs
    if tasks:
        common["tasks"] = list(tasks)
    split = ev.get("split", "test")
    rule = ev.get("threshold_rule", "max_f1")
    n_boot = int(ev.get("n_bootstrap", 1000))
    min_pos = int(ev.get("min_positives", 10))
    seed_list = [int(s) for s in (seeds or ev.get("seeds") or [0, 1, 2])]
    budget = str(ev.get("budget", "samples"))
    headline = str(ev.get("headline_metric", "macro_auroc"))  # over major_tasks when set; Hughes: macro_f1
    arms_spec = dict(spec.get("arms") or {})
    if not arms_spec:
        raise ConfigError("the experiment spec has no arms")
    if arms:
        missing = [a for a in arms if a not in arms_spec]
        if missing:
            raise ConfigError(f"arm(s) {missing} are not in the spec; it has {list(arms_spec)}")
        arms_spec = {a: arms_spec[a] for a in arms}
    reference = ev.get("reference") or ("multi_task" if "multi_task" in arms_spec else next(iter(arms_spec)))
    if reference not in arms_spec:
        if not arms:
            raise ConfigError(f"reference arm {reference!r} is not among the arms {list(arms_spec)}")
        reference = next(iter(arms_spec))  # a subset run: compare within the subset

    all_names, train_labels = _train_labels(shards_dir, common.get("tasks"))
    trainable, skipped = trainable_tasks(all_names, train_labels)
    if not trainable:
        raise ConfigError(f"no task has both classes in the training split of {shards_dir}")
    n_train = len(train_labels)
    n_tasks = len(all_names)
    for arm, overrides in arms_spec.items():  # check every arm before training anything
        cfg = make_config(TrainConfig, {**common, **{k: v for k, v in (overrides or {}).items()
                                                     if k not in ("per_task", "groups")}})
        if cfg.aux_tasks > n_tasks * (n_tasks - 1) // 2:
            raise ConfigError(f"arm {arm!r}: aux_tasks={cfg.aux_tasks} exceeds the {n_tasks * (n_tasks - 1) // 2} "
                              f"distinct pairs of its {n_tasks} tasks")
        batches_per_epoch(budget, n_train, cfg, n_tasks)
    if skipped:
        log.warning("no single-task model for %s (no positive or no negative training record)", skipped)
    rare = rare_tasks(all_names, train_labels, float(ev.get("rare_ratio", 300)))
    groups = patient_groups(shards_dir, split)

    runs: dict[str, dict[str, Any]] = {}
    reports: dict[str, list[dict[str, Any]]] = {}
    for arm, overrides in arms_spec.items():
        overrides = dict(overrides or {})
        task_groups = _arm_groups(arm, overrides, {**common, **overrides}, trainable)  # pops per_task, groups
        values = {**common, **overrides}
        major = list(values.get("major_tasks") or [])
        r = _arm_runs(arm, values, task_groups, seed_list, out, trainable, budget, n_train, n_tasks, device, split,
                      {"train_only": train_only, "only_tasks": only_tasks, "accept_interrupted": accept_interrupted})
        if train_only:
            runs[arm] = r
            continue
        r["rule"] = rule
        runs[arm] = r
        head_major = [t for t in major if t in r["names"]] or None
        reps = [build_report(yv, sv, r["y"], s, r["names"], split=split, threshold_rule=rule, n_bootstrap=0,
                             major_tasks=head_major, headline_metric=headline)
                for yv, sv, s in zip(r["val_y"], r["val_s"], r["s"])]
        reports[arm] = reps
        pooled = build_report(r["val_y"][0], r["val_s"][0], r["y"], r["s"][0], r["names"], split=split,
                              threshold_rule=rule, n_bootstrap=0, major_tasks=head_major, headline_metric=headline)
        thr = np.stack([M.choose_thresholds(yv, sv, rule) for yv, sv in zip(r["val_y"], r["val_s"])])
        ci = bootstrap_ci(r["y"], r["s"], thr, groups=groups, n_resamples=max(n_boot, 1), min_positives=min_pos)
        pooled["seed_mean"] = {"per_task": {n: {k: float(np.asarray(ci.estimate[k])[i]) for k in M_PER_TASK}
                                            for i, n in enumerate(r["names"])},
                               "summary": {k: float(ci.estimate[k]) for k in ("macro_auroc", "recall_multi",
                                                                                "jaccard", "exact_match")},
                               "ci": {k: [float(ci.low[k]), float(ci.high[k])] for k in
                                      ("macro_auroc", "macro_auroc_common", "recall_multi", "jaccard",
                                       "exact_match")},
                               "ci_per_task_auroc": {n: [float(ci.low["auroc"][i]), float(ci.high["auroc"][i])]
                                                     for i, n in enumerate(r["names"])},
                               "flagged": [r["names"][i] for i in np.flatnonzero(ci.flagged)],
                               "macro_tasks": [r["names"][i] for i in ci.macro_tasks], "unit": ci.unit,
                               "n_units": ci.n_units, "seeds": seed_list}
        write_report(pooled, out / arm / f"eval-{split}", title=f"{arm} on {split} (seed {seed_list[0]}; "
                                                               f"seed means in report.json)")
        log.info("%s: macro AUROC %s over seeds %s", arm, [round(x["summary"]["macro_auroc"], 4) for x in reps],
                 seed_list)
    if train_only:
        return {"arms": list(runs), "trained": {a: r["names"] for a, r in runs.items()},
                "markdown": f"trained {', '.join(runs)} (seeds {seed_list}); no comparison (--train-only)"}
    table = _tabulate(runs, reports, out, shards_dir, split, seed_list, budget, reference, rare, skipped, groups,
                      n_boot, min_pos)
    return _add_headline(table, reports, headline, common.get("major_tasks"), out)


def _add_headline(table: dict[str, Any], reports: dict[str, list[dict[str, Any]]], metric: str,
                  major: list[str] | None, out: Path) -> dict[str, Any]:
    """The headline row (``metric`` over the major tasks, mean ± SD over seeds) on top of the table."""
    arms = table["arms"]
    values = {a: seed_summary([r["headline"]["value"] for r in reports[a]]) for a in arms}
    table["headline"] = {"metric": metric, "tasks": {a: reports[a][0]["headline"]["tasks"] for a in arms},
                         "values": values}
    scope = ", ".join(major) if major else "all tasks"
    tasks = table["headline"]["tasks"]
    widest = max(len(tasks[a]) for a in arms)

    def cell(a: str) -> str:  # an arm whose own major tasks narrow its headline says so in its cell
        own = tasks[a]
        return _fmt_ms(values[a]) + (f" ({', '.join(own)})" if not major and len(own) < widest else "")
    row = f"| **headline: {metric} ({scope})** | " + " | ".join(cell(a) for a in arms) + " |"
    lines = table["markdown"].split("\n")
    at = next(i for i, ln in enumerate(lines) if ln.startswith("|---|")) + 1  # first row of the summary table
    table["markdown"] = "\n".join(lines[:at] + [row] + lines[at:])
    (out / "comparison.md").write_text(table["markdown"])
    (out / "comparison.json").write_text(json.dumps({k: v for k, v in table.items() if k != "markdown"}, indent=1,
                                                    default=float))
    return table


def _tabulate(runs: dict[str, Any], reports: dict[str, list[dict[str, Any]]], out: Path, shards_dir: str, split: str,
              seeds: list[int], budget: str, reference: str, rare: list[str], skipped: list[str],
              groups: np.ndarray | None, n_boot: int, min_pos: int) -> dict[str, Any]:
    arms = list(runs)
    names: list[str] = []
    for a in arms:
        names += [n for n in runs[a]["names"] if n not in names]
    table: dict[str, Any] = {"arms": arms, "split": split, "seeds": seeds, "budget": budget, "reference": reference,
                             "rare_tasks": rare, "single_task_skipped": skipped, "per_task_auroc": {},
                             "per_task_f1": {}, "summary": {}, "steps": {a: runs[a]["steps"] for a in arms},
                             "delta_m": {}, "comparisons": {}, "ci_unit": "patient" if groups is not None else "record",
                             "min_positives": min_pos,
                             "interrupted": {a: runs[a]["interrupted"] for a in arms if any(runs[a]["interrupted"])}}
    for n in names:
        for key, dest in (("auroc", "per_task_auroc"), ("f1", "per_task_f1")):
            table[dest][n] = [seed_summary([r["per_task"][n][key] for r in reports[a]])["mean"]
                              if n in reports[a][0]["per_task"] else float("nan") for a in arms]
    for key in SUMMARY_KEYS:
        table["summary"][key] = {a: seed_summary([_rare_f1(r, rare) if key == "rare_f1" else r["summary"][key]
                                                  for r in reports[a]]) for a in arms}
    base = reports.get("single_task")
    if base is not None:
        for a in arms:
            m, b = [], []
            for key in M_PER_TASK:
                for t in names:
                    if t in reports[a][0]["per_task"] and t in base[0]["per_task"]:
                        m.append(seed_summary([r["per_task"][t][key] for r in reports[a]])["mean"])
                        b.append(seed_summary([r["per_task"][t][key] for r in base])["mean"])
            table["delta_m"][a] = M.delta_m(np.array(m), np.array(b)) if m else float("nan")
    for a in arms:
        if a != reference:
            table["comparisons"][a] = _compare(runs[reference], runs[a], names, groups, n_boot, min_pos)
    md = _markdown(table, shards_dir, names)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(md)
    (out / "comparison.json").write_text(json.dumps(table, indent=1, default=float))
    table["markdown"] = md
    return table


def _markdown(t: dict[str, Any], shards_dir: str, names: list[str]) -> str:
    arms = t["arms"]
    lines = [f"# Experiment on `{shards_dir}` ({t['split']})", "",
             f"Seeds {t['seeds']}; budget `{t['budget']}`; mean ± SD over seeds. Paired differences are against "
             f"`{t['reference']}`: patient-level bootstrap ({t['ci_unit']} resamples) 95 % CI and p, same test "
             "records and resamples for both arms; DeLong on the seed-mean scores.", "",
             "| metric | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for key in SUMMARY_KEYS:
        lines.append(f"| **{key}** | " + " | ".join(_fmt_ms(t["summary"][key][a]) for a in arms) + " |")
    if t["delta_m"]:
        lines.append("| **Δm vs single-task (%)** | " + " | ".join(
            f"{t['delta_m'][a]:+.2f}" if np.isfinite(t["delta_m"][a]) else "n/a" for a in arms) + " |")
    lines.append("| steps per seed | " + " | ".join(",".join(str(s) for s in t["steps"][a]) for a in arms) + " |")
    if t.get("interrupted"):
        lines += ["", "Runs interrupted between epochs and taken as they stood (per seed, per model): "
                  + "; ".join(f"{a} {v}" for a, v in t["interrupted"].items()) + "."]
    lines += ["", "| task | " + " | ".join(f"{a} AUROC" for a in arms) + " |", "|---|" + "---|" * len(arms)]
    for n in names:
        rare = " (rare)" if n in t["rare_tasks"] else ""
        lines.append(f"| {n}{rare} | " + " | ".join(_fmt(v) for v in t["per_task_auroc"][n]) + " |")
    for a, c in t["comparisons"].items():
        lines += ["", f"## {a} − {t['reference']}", "",
                  "| metric | difference [95 % CI] p |", "|---|---|"]
        for k in ("macro_auroc", "recall_multi", "jaccard", "exact_match"):
            d = c[k]
            lines.append(f"| {k} | {_fmt_diff(d['diff'], d['low'], d['high'], d['p'])} |")
        lines += ["", f"Macro AUROC difference over the {len(c['macro_tasks'])} tasks present in every resample. "
                  f"No interval for tasks with < {t.get('min_positives', 10)} test positives: "
                  f"{', '.join(c['flagged']) or 'none'}.", "",
                  "| task | ΔAUROC [95 % CI] p (bootstrap) | DeLong p | ΔF1 |", "|---|---|---|---|"]
        for n, d in c["per_task"].items():
            lines.append(f"| {n} | {_fmt_diff(d['auroc_diff'], d['low'], d['high'], d['p_bootstrap'])} | "
                         f"{_fmt(d['delong_p'])} | {_fmt(d['f1_diff'])} |")
    if t["single_task_skipped"]:
        lines += ["", f"No single-task model for {', '.join(t['single_task_skipped'])}: no positive or no negative "
                  "training record."]
    return "\n".join(lines) + "\n"


def run_folds(spec: dict[str, Any], shards_root: str | Path, out: Path, *, folds: int, **kwargs: Any
              ) -> dict[str, Any]:
    """Patient-level k-fold: :func:`run_experiment` on ``SHARDS_ROOT/fold-k`` for k < ``folds``; mean and SD.

    Each fold's value is the arm's seed mean; the table gives mean ± SD over the folds.

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
    rows = [("headline", [[t["headline"]["values"][a]["mean"] for a in arms] for t in tables])]
    rows += [(k, [[t["summary"][k][a]["mean"] for a in arms] for t in tables])
             for k in ("macro_auroc", "recall_multi", "jaccard", "rare_f1")]
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
    p.add_argument("--seeds", help="comma-separated seeds (default: the spec's evaluate.seeds, else 0,1,2)")
    p.add_argument("--arms", help="comma-separated subset of the spec's arms (default: all)")
    p.add_argument("--folds", type=int, help="k-fold: SHARDS_DIR holds fold-0 .. fold-(K-1) shard folders")
    p.add_argument("--train-only", action="store_true", help="train the selected arms and seeds; no comparison")
    p.add_argument("--only-tasks", help="comma-separated: train only the per-task/group models holding these tasks")
    p.add_argument("--accept-interrupted", action="store_true",
                   help="take runs killed between epochs as they stand instead of resuming them")
    args = p.parse_args()
    if args.folds and (args.train_only or args.only_tasks):
        p.error("--folds takes neither --train-only nor --only-tasks")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = yaml.safe_load(args.config.read_text()) or {}
    try:
        kw = dict(device=args.device, epochs=args.epochs, tasks=args.tasks.split(",") if args.tasks else None,
                  seeds=[int(s) for s in args.seeds.split(",")] if args.seeds else None,
                  arms=args.arms.split(",") if args.arms else None, train_only=args.train_only,
                  only_tasks=args.only_tasks.split(",") if args.only_tasks else None,
                  accept_interrupted=args.accept_interrupted)
        table = (run_folds(spec, args.shards_dir, args.out, folds=args.folds, **kw) if args.folds
                 else run_experiment(spec, args.shards_dir, args.out, **kw))
    except ConfigError as exc:
        sys.exit(f"run_experiment: {args.config}: {exc}")
    print(table["markdown"])


if __name__ == "__main__":
    main()
