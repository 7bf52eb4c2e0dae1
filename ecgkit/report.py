"""Evaluation reports: metrics with CIs at validation-chosen thresholds, as JSON, Markdown and plots.

``build_report`` works on arrays (labels and scores of the validation and evaluation splits) so
any model's outputs can be reported; ``evaluate`` wires it to a run directory written by
``ecgkit.trainer``. Plots use matplotlib's Agg backend (no display needed).

Files written by :func:`write_report` into ``out_dir``: ``report.json``, ``report.md``,
``roc.png`` (ROC curve per task), ``metrics_bar.png`` (per-task AUROC/AP/F1 bars) and, when a
``metrics.csv`` training history is given, ``training_curves.png``.
"""
from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from ecgkit import metrics as M
from ecgkit.bootstrap import bootstrap_ci

logger = logging.getLogger(__name__)

__all__ = ["build_report", "write_report", "evaluate", "patient_groups", "PER_TASK_KEYS", "MULTI_KEYS"]

PER_TASK_KEYS = ("auroc", "ap", "f1", "precision", "sensitivity", "specificity")
MULTI_KEYS = ("macro_auroc", "recall_multi", "jaccard", "exact_match")


def _clean(x: Any) -> Any:
    """JSON-ready: arrays to lists, NaN/inf to None."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def build_report(y_val: NDArray, s_val: NDArray, y_eval: NDArray, s_eval: NDArray, label_names: Sequence[str], *,
                 split: str = "test", threshold_rule: str | float = "max_f1", n_bootstrap: int = 1000,
                 seed: int = 0, baseline: dict[str, Any] | None = None,
                 reference_specificity: float | None = None, groups: NDArray | None = None,
                 min_positives: int = 10, major_tasks: Sequence[str] | None = None,
                 headline_metric: str = "macro_auroc") -> dict[str, Any]:
    """All evaluation numbers of one model on one split, thresholds chosen on validation only.

    Parameters
    ----------
    y_val, s_val : (N_val, T) labels (1/0/-1) and scores of the validation split
        Used only to choose the thresholds.
    y_eval, s_eval : (N, T) labels and scores of the evaluated split
    label_names : T names
    threshold_rule : "max_f1" or a target specificity
    n_bootstrap : int
        Bootstrap resamples for the 95 % CIs (0: no CIs).
    baseline : dict, optional
        Another report (e.g. a single-task run's); adds ``delta_m`` (percent) on per-task AUROC,
        AP and F1 and on all three together.
    reference_specificity : float, optional
        Adds ``sensitivity_at_reference_specificity`` per task (e.g. a cardiologist's specificity).
    groups : (N,) array, optional
        Patient id of each evaluated record: the bootstrap resamples patients (see
        :mod:`ecgkit.bootstrap`); None resamples records.
    min_positives : int
        Tasks with fewer evaluated positives are flagged (``ci_flagged``) and get no interval.
    major_tasks : names, optional
        The run's major tasks (CO-TASK Table 8): the headline is computed over them only.
    headline_metric : str
        ``macro_auroc`` (CO-TASK) or the mean of a per-task metric over the major tasks:
        ``macro_f1`` (Hughes et al.'s headline), ``macro_ap``, ``macro_sensitivity``, ...

    Returns
    -------
    dict
        ``split``, ``n_records``, ``label_names``, ``threshold_rule``, ``thresholds``, ``per_task``
        (name -> metric -> value), ``per_task_ci`` (name -> metric -> [low, high]), ``summary``
        (macro AUROC and the multi-label metrics), ``summary_ci``, ``prevalence``, ``ci_unit``
        (patient or record), ``ci_n_usable`` (usable resamples per task for AUROC), ``ci_flagged``
        (tasks without an interval), ``ci_macro_tasks`` and ``macro_auroc_common`` (the macro
        interval's tasks and its point estimate), ``n_positives``, ``headline`` (``metric``,
        ``tasks``, ``value``), optional ``delta_m``; and ``_curves`` (ROC points for plotting, not
        written to JSON).
    """
    names = list(label_names)
    y_eval = np.asarray(y_eval)
    s_eval = np.asarray(s_eval, dtype=np.float64)
    thr = M.choose_thresholds(np.asarray(y_val), np.asarray(s_val, dtype=np.float64), threshold_rule,
                              names=list(label_names))
    per = M.per_task_metrics(y_eval, s_eval, thr)
    pred = s_eval >= thr[None, :]
    summary = {"macro_auroc": M.macro_auroc(y_eval, s_eval), "recall_multi": M.recall_multi(y_eval, pred),
               "jaccard": M.jaccard(y_eval, pred), "exact_match": M.exact_match(y_eval, pred)}
    report: dict[str, Any] = {
        "split": split, "n_records": int(len(y_eval)), "label_names": names, "threshold_rule": threshold_rule,
        "thresholds": {n: float(t) for n, t in zip(names, thr)},
        "per_task": {n: {k: float(per[k][i]) for k in PER_TASK_KEYS} for i, n in enumerate(names)},
        "summary": summary,
        "prevalence": {n: float((y_eval[:, i] == 1).sum() / max((y_eval[:, i] >= 0).sum(), 1))
                       for i, n in enumerate(names)},
    }
    report["headline"] = _headline(report, major_tasks, headline_metric)
    if reference_specificity is not None:
        sens = M.sensitivity_at_specificity(y_eval, s_eval, reference_specificity)
        for i, n in enumerate(names):
            report["per_task"][n]["sensitivity_at_reference_specificity"] = float(np.atleast_1d(np.asarray(sens))[i])
        report["reference_specificity"] = reference_specificity
    if n_bootstrap > 0:
        ci = bootstrap_ci(y_eval, s_eval, thr, n_resamples=n_bootstrap, seed=seed, groups=groups,
                            min_positives=min_positives)
        low = {k: np.asarray(ci.low[k]) for k in PER_TASK_KEYS}
        high = {k: np.asarray(ci.high[k]) for k in PER_TASK_KEYS}
        report["per_task_ci"] = {n: {k: [float(low[k][i]), float(high[k][i])] for k in PER_TASK_KEYS}
                                 for i, n in enumerate(names)}
        report["summary_ci"] = {k: [float(ci.low[k]), float(ci.high[k])]
                                for k in MULTI_KEYS + ("macro_auroc_common",)}
        report["macro_auroc_common"] = float(ci.estimate["macro_auroc_common"])
        report["ci_macro_tasks"] = [names[i] for i in ci.macro_tasks]
        report["ci_level"] = ci.level
        report["n_bootstrap"] = n_bootstrap
        report["ci_unit"] = ci.unit
        report["ci_n_units"] = ci.n_units
        report["ci_min_positives"] = ci.min_positives
        report["ci_n_usable"] = {n: int(ci.n_usable["auroc"][i]) for i, n in enumerate(names)}
        report["ci_flagged"] = [n for i, n in enumerate(names) if ci.flagged[i]]
    report["n_positives"] = {n: int((y_eval[:, i] == 1).sum()) for i, n in enumerate(names)}
    if baseline is not None:
        report["delta_m"] = delta_m_vs(report, baseline)
    curves = {}
    for i, n in enumerate(names):
        known = y_eval[:, i] >= 0
        y, s = y_eval[known, i], s_eval[known, i]
        if (y == 1).any() and (y == 0).any():
            thr_i, sens, spec = M._roc_points(y, s)
            curves[n] = (1.0 - spec, sens)
    report["_curves"] = curves
    return report


def _headline(report: dict[str, Any], major_tasks: Sequence[str] | None, metric: str) -> dict[str, Any]:
    """The one number a table leads with: ``metric`` over the major tasks (all tasks when unset)."""
    names = list(report["label_names"])
    tasks = list(major_tasks) if major_tasks else names
    missing = [t for t in tasks if t not in names]
    if missing:
        raise ValueError(f"major_tasks {missing} are not among the report's tasks {names}")
    key = metric[len("macro_"):] if metric.startswith("macro_") else metric
    if key not in PER_TASK_KEYS:
        raise ValueError(f"headline_metric must be macro_<one of {list(PER_TASK_KEYS)}>, got {metric!r}")
    vals = np.array([report["per_task"][t][key] for t in tasks], dtype=float)
    ok = np.isfinite(vals)
    return {"metric": metric, "tasks": tasks, "value": float(vals[ok].mean()) if ok.any() else float("nan"),
            "n_tasks_with_value": int(ok.sum())}


def delta_m_vs(report: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Δm (percent) of ``report`` over ``baseline`` on the tasks both have, per metric and overall."""
    tasks = [n for n in report["label_names"] if n in baseline.get("per_task", {})]
    out: dict[str, Any] = {"tasks": tasks}
    allm, allb = [], []
    for key in ("auroc", "ap", "f1"):
        m = np.array([report["per_task"][t][key] for t in tasks], dtype=float)
        b = np.array([np.nan if baseline["per_task"][t][key] is None else baseline["per_task"][t][key]
                      for t in tasks], dtype=float)
        out[key] = M.delta_m(m, b)
        allm.append(m)
        allb.append(b)
    out["all"] = M.delta_m(np.concatenate(allm), np.concatenate(allb)) if tasks else float("nan")
    return out


def _fmt(v: Any, ci: Sequence[Any] | None = None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    s = f"{v:.3f}"
    if ci is not None and ci[0] is not None and ci[1] is not None and all(math.isfinite(c) for c in ci):
        s += f" ({ci[0]:.3f}-{ci[1]:.3f})"
    return s


def _markdown(report: dict[str, Any], title: str) -> str:
    ci = report.get("per_task_ci", {})
    lines = [f"# {title}", "",
             f"Split `{report['split']}`, {report['n_records']} records. Thresholds chosen on the validation split "
             f"by `{report['threshold_rule']}`."
             + (f" Brackets: {int(100 * report['ci_level'])} % bootstrap CIs ({report['n_bootstrap']} resamples "
                f"of {report.get('ci_n_units', '?')} {report.get('ci_unit', 'record')}s)."
                if "ci_level" in report else ""), "",
             "| metric | value |", "|---|---|"]
    if "headline" in report:
        h = report["headline"]
        scope = "all tasks" if h["tasks"] == report["label_names"] else "major tasks " + ", ".join(h["tasks"])
        lines.append(f"| **{h['metric']} ({scope})** | **{_fmt(h['value'])}** |")
    for k in MULTI_KEYS:
        lines.append(f"| {k} | {_fmt(report['summary'][k], report.get('summary_ci', {}).get(k))} |")
    if "ci_macro_tasks" in report:
        n_common = len(report["ci_macro_tasks"])
        lines.append(f"| macro AUROC over the {n_common} tasks present in every resample | "
                     f"{_fmt(report['macro_auroc_common'], report['summary_ci']['macro_auroc_common'])} |")
    if "delta_m" in report:
        d = report["delta_m"]
        lines.append(f"| Δm vs baseline (AUROC, AP, F1; %) | {_fmt(d['all'])} |")
    lines += ["", "| task | prevalence | positives | threshold | " + " | ".join(PER_TASK_KEYS) + " |",
              "|---|---|---|---|" + "---|" * len(PER_TASK_KEYS)]
    flagged = set(report.get("ci_flagged", []))
    for n in report["label_names"]:
        pos = str(report.get("n_positives", {}).get(n, "?"))
        if n in flagged:
            pos += f" (< {report['ci_min_positives']}: no CI)"
        elif "ci_n_usable" in report and report["ci_n_usable"][n] < report["n_bootstrap"]:
            pos += f" (CI from {report['ci_n_usable'][n]}/{report['n_bootstrap']} resamples)"
        row = [n, f"{report['prevalence'][n]:.4f}", pos, _fmt(report["thresholds"][n])]
        row += [_fmt(report["per_task"][n][k], ci.get(n, {}).get(k)) for k in PER_TASK_KEYS]
        lines.append("| " + " | ".join(row) + " |")
    if report.get("saliency"):
        sal = report["saliency"]
        lines += ["", f"Saliency ({sal['method']}, baseline {sal['baseline']}, {sal['steps']} steps; "
                      f"the {sal['per_label']} highest-scored positives per label):", ""]
        lines += [f"- {r['label']}: `{r['record_id']}` score {r['score']:.3f} -> `{Path(r['file']).name}`"
                  for r in sal["plots"]]
    lines.append("")
    lines.append("n/a: the metric is undefined on this split (no positive, or no negative, among the records "
                 "where the label is known); it is not 0.")
    if report.get("ci_flagged"):
        lines.append(f"(< {report['ci_min_positives']}: no CI): fewer positives than that in `{report['split']}`; "
                     f"an interval resting on so few cases would not be trustworthy, so none is given.")
    lines += ["", "![ROC curves per label](roc.png)", "", "![AUROC, AP and F1 per label](metrics_bar.png)"]
    if report.get("_has_history"):
        lines += ["", "![Training loss and validation macro AUROC per epoch](training_curves.png)"]
    return "\n".join(lines) + "\n"


def _plot_roc(report: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = report["label_names"]
    cols = min(6, max(len(names), 1))
    rows = math.ceil(len(names) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for ax, n in zip(axes.ravel(), names):
        if n in report["_curves"]:
            fpr, tpr = report["_curves"][n]
            # clip_on=False and a small margin: a perfect curve (AUROC 1.0) runs along the axes' edges,
            # where a clipped line of the frame's width would vanish
            ax.plot(fpr, tpr, lw=1.6, clip_on=False, zorder=3)
        else:
            ax.text(0.5, 0.5, "n/a\n(no positive or\nno negative)", ha="center", va="center", fontsize=7,
                    color="grey", transform=ax.transAxes)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls="--")
        ax.set_title(f"{n} AUROC {_fmt(report['per_task'][n]['auroc'])}", fontsize=8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.supxlabel("1 - specificity")
    fig.supylabel("sensitivity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_bars(report: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = report["label_names"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 3.5))
    for j, key in enumerate(("auroc", "ap", "f1")):
        vals = np.array([np.nan if report["per_task"][n][key] is None else report["per_task"][n][key]
                         for n in names], dtype=np.float64)
        bars = ax.bar(x + (j - 1) * 0.27, np.nan_to_num(vals, nan=0.0), width=0.27, label=key.upper())
        for bar, v in zip(bars, vals):
            if not np.isfinite(v):  # undefined, not zero: say so where the bar would be
                ax.text(bar.get_x() + bar.get_width() / 2, 0.02, "n/a", rotation=90, ha="center", va="bottom",
                        fontsize=6, color="grey")
            elif v == 0:  # a real zero: a visible stub, unlike n/a
                ax.plot([bar.get_x(), bar.get_x() + bar.get_width()], [0.004, 0.004], color=bar.get_facecolor(),
                        lw=2)
    ax.set_xticks(x, names, rotation=60, fontsize=7)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(f"per-task metrics ({report['split']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_history(history: list[dict[str, str]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [int(r["epoch"]) for r in history]  # metrics.csv counts from 1, as the logs do
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ax[0].plot(epochs, [float(r["train_loss"]) for r in history], marker="o")
    ax[0].set_title("training loss", fontsize=9)
    ax[1].plot(epochs, [float(r.get("val_macro_auroc") or "nan") for r in history], marker="o")
    ax[1].set_title("validation macro AUROC", fontsize=9)
    for a in ax:
        a.set_xlabel("epoch")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 0.5" ticks
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: dict[str, Any], out_dir: str | Path, *, history_csv: str | Path | None = None,
                 title: str = "ecgkit evaluation") -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots; return their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "roc": out / "roc.png",
             "bars": out / "metrics_bar.png"}
    history = None
    if history_csv is not None and Path(history_csv).exists():
        with open(history_csv, newline="") as fh:
            history = list(csv.DictReader(fh))
    report = {**report, "_has_history": bool(history)}
    paths["json"].write_text(json.dumps(_clean({k: v for k, v in report.items() if not k.startswith("_")}),
                                        indent=1))
    paths["md"].write_text(_markdown(report, title))
    _plot_roc(report, paths["roc"])
    _plot_bars(report, paths["bars"])
    if history:
        paths["curves"] = out / "training_curves.png"
        _plot_history(history, paths["curves"])
    return paths


def evaluate(run_dir: str | Path, split: str = "test", *, baseline: str | Path | None = None,
             threshold_rule: str | float = "max_f1", n_bootstrap: int = 1000, seed: int = 0,
             reference_specificity: float | None = None, device: str = "auto", datasets: dict[str, Any] | None = None,
             out_dir: str | Path | None = None, headline_metric: str = "macro_auroc", saliency: int = 0
             ) -> dict[str, Any]:
    """Evaluate a trained run on a split and write its report (default into ``RUN_DIR/eval-<split>``).

    Thresholds are chosen on the run's validation split, then applied to ``split``.

    Parameters
    ----------
    run_dir : path
        Written by :func:`ecgkit.trainer.train`; its config names the shards.
    baseline : path, optional
        Another run directory evaluated the same way (e.g. single-task); adds Δm.
    datasets : dict, optional
        ``{"val": ..., split: ...}`` ShardDataset-like objects instead of the run's shards.
    headline_metric : str
        See :func:`build_report`; computed over the run's ``major_tasks`` (its ``config.yaml``).
    saliency : int
        For the N highest-scored positives of each label, a 12-lead plot with the per-lead,
        per-time integrated-gradients attribution (:func:`ecgkit.saliency.write_saliency`) in
        ``OUT/saliency/``; listed under ``saliency`` in the report.

    Returns
    -------
    dict
        The report (see :func:`build_report`), plus ``files``.
    """
    from ecgkit.trainer import METRICS_FILE, predict_run  # torch lives on the training side

    run = Path(run_dir)
    datasets = datasets or {}
    y_val, s_val, names = predict_run(run, "val", device=device, dataset=datasets.get("val"))
    y, s, _ = predict_run(run, split, device=device, dataset=datasets.get(split))
    base_report = None
    if baseline is not None:
        base_dir = Path(baseline)
        existing = base_dir / f"eval-{split}" / "report.json"
        if existing.exists():
            base_report = json.loads(existing.read_text())
        else:
            base_report = evaluate(base_dir, split, threshold_rule=threshold_rule, n_bootstrap=0, seed=seed,
                                   device=device, datasets=datasets)
    groups = None
    ds = datasets.get(split)
    shards_dir = _run_shards_dir(run)
    if shards_dir is not None and (ds is None or hasattr(ds, "record_ids")):
        groups = patient_groups(shards_dir, split, None if ds is None else ds.record_ids)
    report = build_report(y_val, s_val, y, s, names, split=split, threshold_rule=threshold_rule,
                          n_bootstrap=n_bootstrap, seed=seed, baseline=base_report,
                          reference_specificity=reference_specificity, groups=groups,
                          major_tasks=run_major_tasks(run), headline_metric=headline_metric)
    out = Path(out_dir) if out_dir is not None else run / f"eval-{split}"
    if saliency > 0:
        from ecgkit.saliency import write_saliency

        dev = "cuda" if device == "auto" and _cuda() else ("cpu" if device == "auto" else device)
        report["saliency"] = write_saliency(run, split, saliency, out, y_true=y, y_score=s, label_names=names,
                                            dataset=datasets.get(split), device=dev)
    files = write_report(report, out, history_csv=run / METRICS_FILE, title=f"ecgkit evaluation of {run.name}")
    report["files"] = {k: str(v) for k, v in files.items()}
    logger.info("evaluated %s on %s: macro AUROC %.4f", run, split, report["summary"]["macro_auroc"])
    return report


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _run_shards_dir(run: Path) -> str | None:
    import yaml

    path = run / "config.yaml"
    if not path.exists():
        return None
    return (yaml.safe_load(path.read_text()) or {}).get("shards_dir")


def patient_groups(shards_dir: str | Path, split: str, record_ids: Sequence[str] | None = None) -> NDArray | None:
    """Patient id of each record of a shard split, in :class:`ecgkit.data.ShardDataset` order.

    Read from ``SHARDS_DIR/manifest.parquet`` (the manifest the shard stage wrote). ``record_ids``
    gives another order (e.g. a dataset's ``record_ids``). Returns None, with a warning in the log,
    when the manifest or its ``patient_id`` column is missing or a record has no patient id: the
    bootstrap then resamples records.
    """
    import pandas as pd

    from ecgkit.shards import read_index

    path = Path(shards_dir) / "manifest.parquet"
    if not path.exists():
        logger.warning("%s has no manifest.parquet: bootstrap CIs resample records, not patients", shards_dir)
        return None
    man = pd.read_parquet(path, columns=None)
    if "patient_id" not in man.columns:
        logger.warning("%s: manifest has no patient_id: bootstrap CIs resample records", shards_dir)
        return None
    if record_ids is None:
        index = read_index(shards_dir)
        index = index[index["split"] == split].sort_values(["shard", "row"], kind="stable")
        record_ids = index["record_id"].tolist()
    lookup = pd.Series(man["patient_id"].astype("string").to_numpy(), index=man["record_id"].astype(str).to_numpy())
    lookup = lookup[~lookup.index.duplicated()]
    got = lookup.reindex([str(r) for r in record_ids])
    if got.isna().any():
        logger.warning("%s: %d %s records have no patient id: bootstrap CIs resample records", shards_dir,
                       int(got.isna().sum()), split)
        return None
    return got.to_numpy(dtype=object)


def run_major_tasks(run_dir: str | Path) -> list[str] | None:
    """The ``major_tasks`` a run was trained with (its ``config.yaml``), or None (every task is major)."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        return None
    major = (yaml.safe_load(path.read_text()) or {}).get("major_tasks")
    return list(major) if major else None
