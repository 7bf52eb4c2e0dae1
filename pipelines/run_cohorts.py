"""Issue 17's experiment: two cohorts with partly overlapping label sets, four ways to train on them.

Usage: ``python pipelines/run_cohorts.py pipelines/experiment_cohorts.yaml --out EXP_DIR [--device cuda]
[--jobs N] [--patients-scale F] [--epochs N]``: one command, from synthetic archives to the table.

1. Cohorts (spec ``cohorts``): each is ``ecgkit synth`` (``difficulty``, ``patients``, ``seed``), scanned,
   labelled with ECG-P18, cut to the cohort's own label set and renamed into its own vocabulary
   (``labels: {ecg-p18 name: cohort name}``), split by patient: ``EXP/cohorts/NAME``.
2. Shards: the cohorts together (:func:`ecgkit.multicohort.merge_cohorts` with the spec's ``mapping``),
   ``EXP/shards``, and each cohort alone (same canonical names and record ids), ``EXP/shards-NAME``.
3. Arms (``common`` TrainConfig keys for all), seeds ``evaluate.seeds``, run as up to ``--jobs``
   concurrent processes (they can share one GPU):
   ``separate`` one model per cohort on its own shards; ``shared`` one hard-sharing model on the union
   with undefined labels masked; ``damtl`` DAMTL, one task per cohort, the ``shared`` run of the same
   seed as its auxiliary network (Algorithm 1, step 1); ``cross_stitch`` one column per cohort.
4. Evaluation on the union test split, each label over the records whose source defines it: macro
   AUROC per arm (mean ± SD over seeds) and, against ``separate``, the paired patient-level bootstrap
   (:func:`ecgkit.bootstrap.paired_bootstrap`, seed-averaged) of the macro AUROC difference.
   ``EXP/comparison.json`` and ``comparison.md``; parameter count and samples/s per arm.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ecgkit.bootstrap import paired_bootstrap  # noqa: E402
from ecgkit.config import make_config  # noqa: E402
from ecgkit.data import ShardDataset  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from ecgkit.trainer import BEST_CKPT, LAST_CKPT, METRICS_FILE, TrainConfig, predict_run, train  # noqa: E402
from run_experiment import interrupted_record  # noqa: E402

ARMS = ("separate", "shared", "damtl", "cross_stitch")


def make_cohorts(spec: dict[str, Any], out: Path, scale: float, workers: int) -> None:
    """Step 1 and 2: synthetic cohorts and the shard folders (skipped when ``EXP/shards`` exists)."""
    from ecgkit.ingest import ScanConfig, scan
    from ecgkit.labels import label_manifest
    from ecgkit.manifest import label_names, write_manifest
    from ecgkit.multicohort import mapping_from_dict, merge_cohorts
    from ecgkit.shards import ShardConfig, write_shards
    from ecgkit.split import split_by_patient
    from ecgkit.synth import synth_cohort

    if (out / "shards" / "index.parquet").exists():
        return
    manifests = {}
    for name, c in spec["cohorts"].items():
        raw = out / "raw" / name
        synth_cohort(max(4, int(c["patients"] * scale)), raw, seed=int(c["seed"]), workers=workers,
                     difficulty=c.get("difficulty", "realistic"), fs=float(spec.get("fs", 250)))
        man = label_manifest(scan([raw], ScanConfig(workers=workers)))
        keep = dict(c["labels"])
        man = man.drop(columns=[x for x in label_names(man) if x not in keep]).rename(columns=keep)
        man = split_by_patient(man, seed=0)
        write_manifest(man, out / "cohorts" / name)
        manifests[name] = man
    mapping = mapping_from_dict(spec.get("mapping") or {}, "spec mapping")
    shard_cfg = ShardConfig(workers=workers, fs=float(spec.get("fs", 250)))
    for name, man in manifests.items():  # each alone, in canonical names and merged record ids
        alone, labs = merge_cohorts({name: man}, mapping)
        write_shards(alone, out / f"shards-{name}", shard_cfg, cohort_labels=labs)
    merged, labs = merge_cohorts(manifests, mapping)
    write_shards(merged, out / "shards", shard_cfg, cohort_labels=labs)


def plan_runs(spec: dict[str, Any], out: Path, device: str, epochs: int | None) -> list[dict[str, Any]]:
    """One entry per training run: arm, seed, run dir, TrainConfig values, dependencies."""
    common = {**spec.get("common", {}), "device": device, **({"epochs": epochs} if epochs else {})}
    arms = spec.get("arms", {a: {} for a in ARMS})
    runs = []
    labs = ShardDataset(out / "shards", "train").cohort_labels or {}
    for seed in spec.get("evaluate", {}).get("seeds", [0, 1, 2]):
        shared = out / "shared" / f"seed-{seed}"
        for arm, over in arms.items():
            base = {**common, **(over or {}), "seed": int(seed)}
            if arm == "separate":
                for name, names in labs.items():
                    runs.append({"arm": arm, "seed": seed, "group": name, "dir": str(out / arm / f"seed-{seed}" / name),
                                 "values": {**base, "shards_dir": str(out / f"shards-{name}"), "tasks": list(names)},
                                 "after": None})
                continue
            values = {**base, "shards_dir": str(out / "shards")}
            after = None
            if arm == "damtl":
                values.update(method="damtl", damtl_aux_run=str(shared))
                after = str(shared)
            elif arm == "cross_stitch":
                values.update(sharing="cross_stitch", cross_stitch_columns="cohort")
            runs.append({"arm": arm, "seed": seed, "group": None, "dir": str(out / arm / f"seed-{seed}"),
                         "values": values, "after": after})
    return runs


def _done(run: dict[str, Any]) -> bool:
    return (Path(run["dir"]) / "done.json").exists()


def _n_parameters(ckpt: Path) -> int:
    """Every parameter of a saved model (DAMTL: the auxiliary network, masks, BN and heads of every task)."""
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=False)["model"]
    return int(sum(v.numel() for k, v in state.items() if torch.is_floating_point(v) and "running_" not in k))


def run_one(run: dict[str, Any]) -> None:
    """Worker: train one run and mark it done (with its samples/s and parameter count)."""
    cfg = make_config(TrainConfig, {**run["values"], "progress": False})
    d = Path(run["dir"])
    start = time.perf_counter()
    res = train(cfg, d, resume=(d / LAST_CKPT).exists(), overwrite=False)
    wall = time.perf_counter() - start
    (d / "done.json").write_text(json.dumps({
        "steps": res.step, "epochs": res.epoch, "n_parameters": _n_parameters(d / LAST_CKPT), "train_wall_s": wall,
        "samples_per_s": res.step * cfg.batch_size / wall}))  # wall clock, validation included, every arm alike


def take_interrupted(run: dict[str, Any], wall: float) -> None:
    """Mark a run stopped at ``--run-limit`` done as it stood: its best epoch so far (``best.pt``) is scored."""
    d = Path(run["dir"])
    if not ((d / BEST_CKPT).exists() and (d / METRICS_FILE).exists()):
        raise SystemExit(f"run {d} reached --run-limit before its first epoch ended; raise the limit")
    rec = interrupted_record(d / METRICS_FILE, {})
    bs = int(make_config(TrainConfig, run["values"]).batch_size)
    (d / "done.json").write_text(json.dumps({
        "steps": rec["step"], "epochs": rec["epoch"], "n_parameters": _n_parameters(d / BEST_CKPT),
        "train_wall_s": wall, "samples_per_s": rec["step"] * bs / wall, "interrupted": True}))


def run_all(runs: list[dict[str, Any]], jobs: int, log_dir: Path, run_limit: float | None = None) -> None:
    """Run the pending runs as up to ``jobs`` processes; a run waits for the run it needs (``after``).

    Runs that others wait for start first. ``run_limit`` (seconds): a run still training then is stopped
    and taken as it stood after its last finished epoch (``interrupted`` in its ``done.json``).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    needed = {r["after"] for r in runs if r["after"]}
    pending = sorted((r for r in runs if not _done(r)), key=lambda r: r["dir"] not in needed)
    active: list[tuple[dict[str, Any], subprocess.Popen[bytes], float]] = []
    while pending or active:
        for r, p, t in list(active):
            rc = p.poll()
            if rc is None and run_limit is not None and time.perf_counter() - t > run_limit:
                p.terminate()
                p.wait()
                take_interrupted(r, time.perf_counter() - t)
            elif rc is None:
                continue
            elif rc != 0:
                raise SystemExit(f"run {r['dir']} failed (exit {rc}); see {log_dir}")
            active.remove((r, p, t))
        ready = [r for r in pending if r["after"] is None or (Path(r["after"]) / "done.json").exists()]
        while ready and len(active) < jobs:
            r = ready.pop(0)
            pending.remove(r)
            name = Path(r["dir"]).relative_to(Path(r["dir"]).parents[2 if r["group"] else 1]).as_posix().replace("/", "_")
            log = open(log_dir / f"{r['arm']}_{name}.log", "wb")
            active.append((r, subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(r)],
                                               stdout=log, stderr=subprocess.STDOUT), time.perf_counter()))
        if pending and not active and not ready:
            raise SystemExit(f"runs wait for runs that are not planned: {[r['after'] for r in pending]}")
        time.sleep(0.5)


def _scores(runs: list[dict[str, Any]], arm: str, seed: int, test: ShardDataset) -> np.ndarray:
    """(N, U) test probabilities of one arm and seed in the union test split's order (NaN: not predicted)."""
    names = list(test.label_names)
    pos = {rid: i for i, rid in enumerate(test.record_ids)}
    out = np.full((len(test), len(names)), np.nan, dtype=np.float64)
    for r in (r for r in runs if r["arm"] == arm and r["seed"] == seed):
        ds = ShardDataset(r["values"]["shards_dir"], "test", r["values"].get("tasks"))
        _, probs, got = predict_run(r["dir"], "test", dataset=ds, device=r["values"]["device"])
        rows = np.array([pos[rid] for rid in ds.record_ids])
        for j, n in enumerate(got):
            out[rows, names.index(n)] = probs[:, j]
    return out


def _macro(y: np.ndarray, s: np.ndarray) -> float:
    vals = []
    for t in range(y.shape[1]):
        m = y[:, t] >= 0
        if m.any() and 0 < y[m, t].sum() < m.sum():
            vals.append(float(roc_auc_score(y[m, t], s[m, t])))
    return float(np.mean(vals))


def compare(spec: dict[str, Any], runs: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Step 4: the table (see the module docstring)."""
    ev = spec.get("evaluate", {})
    seeds = list(ev.get("seeds", [0, 1, 2]))
    test = ShardDataset(out / "shards", "test")
    y = np.asarray(test.labels)
    man = pd.read_parquet(out / "shards" / "manifest.parquet").set_index("record_id")
    groups = man.loc[list(test.record_ids), "patient_id"].astype(str).to_numpy()
    arms = [a for a in (spec.get("arms") or {a: {} for a in ARMS})]
    scores = {a: np.stack([_scores(runs, a, s, test) for s in seeds]) for a in arms}
    y_eval = np.where(np.isnan(scores[arms[0]][0]), -1, y).astype(np.int8)  # what every arm predicts
    table: dict[str, Any] = {"labels": list(test.label_names), "cohort_labels": test.cohort_labels,
                             "n_test": int(len(test)), "seeds": seeds, "arms": {}}
    ref = "separate" if "separate" in arms else arms[0]
    for a in arms:
        per_seed = [_macro(y_eval, np.nan_to_num(scores[a][k])) for k in range(len(seeds))]
        dones = [json.loads((Path(r["dir"]) / "done.json").read_text()) for r in runs if r["arm"] == a]
        row = {"macro_auroc_seeds": per_seed, "mean": float(np.mean(per_seed)), "sd": float(np.std(per_seed, ddof=1))
               if len(per_seed) > 1 else 0.0,
               "n_parameters": int(sum(d["n_parameters"] or 0 for d in dones) / len(seeds)),
               "samples_per_s": float(np.mean([d["samples_per_s"] for d in dones])),
               "runs_interrupted": int(sum(bool(d.get("interrupted")) for d in dones)), "runs": len(dones),
               "epochs": [int(d["epochs"]) for d in dones]}
        if a != ref:
            pb = paired_bootstrap(y_eval, np.nan_to_num(scores[ref]), np.nan_to_num(scores[a]),
                                  np.full((len(seeds), y.shape[1]), 0.5), np.full((len(seeds), y.shape[1]), 0.5),
                                  groups=groups, n_resamples=int(ev.get("n_bootstrap", 1000)),
                                  min_positives=int(ev.get("min_positives", 10)))
            row[f"vs_{ref}"] = {k: float(pb.__getattribute__(f)["macro_auroc"]) for k, f in
                                (("diff", "estimate"), ("low", "low"), ("high", "high"), ("p", "p_value"))}
            row[f"vs_{ref}"]["macro_labels"] = [table["labels"][t] for t in pb.macro_tasks]
            # both arms on the interval's own basis (labels defined in every resample), so that the
            # difference can be read off two numbers of the table, not against means over other labels
            idx = list(pb.macro_tasks)
            for who, arm in (("arm", a), ("reference", ref)):
                row[f"vs_{ref}"][f"{who}_macro"] = float(np.mean(
                    [_macro(y_eval[:, idx], np.nan_to_num(scores[arm][k])[:, idx]) for k in range(len(seeds))])) \
                    if idx else float("nan")
        table["arms"][a] = row
    (out / "comparison.json").write_text(json.dumps(table, indent=1))
    lines = [f"| arm | macro AUROC, all labels (seeds {seeds}) | macro AUROC, the interval's labels: arm vs {ref} "
             f"| diff [95% CI], p | parameters | samples/s | runs stopped at --run-limit |", "|---|---|---|---|---|---|---|"]
    basis = ""
    for a, row in table["arms"].items():
        d = row.get(f"vs_{ref}")
        if d is None:
            same, cmp = "", "reference"
        else:
            same = f"{d['arm_macro']:.4f} vs {d['reference_macro']:.4f}"
            cmp = f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}], p {d['p']:.3f}"
            basis = ", ".join(d["macro_labels"])
        lines.append(f"| {a} | {row['mean']:.4f} ± {row['sd']:.4f} | {same} | {cmp} | {row['n_parameters']:,} | "
                     f"{row['samples_per_s']:.0f} | {row['runs_interrupted']} of {row['runs']} |")
    lines += ["", "The first column averages each seed's macro AUROC over every label with test positives. The "
              "difference (patient-level paired bootstrap, each resample averaging the arms' seeds) is over the "
              f"labels defined in every resample only ({basis or 'none'}); the column before it gives both arms "
              "on that basis, so its sign can be checked there."]
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec", nargs="?")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="Processes for synth, scan and shard.")
    ap.add_argument("--patients-scale", type=float, default=1.0, help="Multiply every cohort's patients.")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None, help="Override common.batch_size (tiny test runs).")
    ap.add_argument("--run-limit", type=float, default=None,
                    help="Seconds per training run; a run still going is stopped and scored at its best epoch so far.")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        run_one(json.loads(args.worker))
        return
    if not args.spec or args.out is None:
        ap.error("give SPEC and --out EXP_DIR")
    spec = yaml.safe_load(Path(args.spec).read_text())
    t0 = time.perf_counter()
    make_cohorts(spec, args.out, args.patients_scale, args.workers)
    t1 = time.perf_counter()
    if args.batch_size:
        spec.setdefault("common", {})["batch_size"] = args.batch_size
    runs = plan_runs(spec, args.out, args.device, args.epochs)
    run_all(runs, max(1, args.jobs), args.out / "logs", args.run_limit)
    t2 = time.perf_counter()
    table = compare(spec, runs, args.out)
    table["seconds"] = {"cohorts_and_shards": round(t1 - t0, 1), "training": round(t2 - t1, 1),
                        "compare": round(time.perf_counter() - t2, 1)}
    (args.out / "comparison.json").write_text(json.dumps(table, indent=1))
    print((args.out / "comparison.md").read_text())
    print("seconds", json.dumps(table["seconds"]))


if __name__ == "__main__":
    main()
