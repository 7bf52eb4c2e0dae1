"""Accuracy of ``ecgkit measure`` against the synthetic generator's truth, and the audit's recall and
precision on labels flipped by ``synth --label-noise``, per phenotype. Prints markdown tables.

Usage: ``python benchmarks/eval_measure_synth.py [--patients N] [--noise P] [--seed S] [--workers W]
[--difficulty D] [--ratios 'EAR=4,LBBB=6']``.
A record counts for a phenotype when the labels its signal shows include it (``labels_signal.parquet``
where synth writes it, else the true labels; "normal": no label).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ecgkit.auditing import audit, flag_scores  # noqa: E402
from ecgkit.ingest import ScanConfig, scan  # noqa: E402
from ecgkit.labels import label_manifest  # noqa: E402
from ecgkit.measuring import MeasureConfig, measure  # noqa: E402
from ecgkit.synth import LABELS, pr_error_ms, synth_cohort  # noqa: E402
from ecgkit.synth.phenotypes import parse_ratios  # noqa: E402

TOL = {"hr_bpm": 5.0, "pr_ms": 25.0, "qrs_ms": 30.0, "qrs_global_ms": 30.0, "qt_ms": 40.0}
TRUE = {"qrs_global_ms": "qrs_ms_true"}  # both QRS measurements against the one true QRS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=150)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--difficulty", default="easy", help="synth difficulty: easy, realistic or hard")
    ap.add_argument("--ratios", default=None,
                    help="imbalance ratios to override, e.g. 'EAR=4,LBBB=6' (more records of rare phenotypes)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        truth = synth_cohort(args.patients, tmp, seed=args.seed, label_noise=args.noise, workers=args.workers,
                             difficulty=args.difficulty, ratios=parse_ratios(args.ratios))
        intervals = pd.read_parquet(Path(tmp) / "truth_intervals.parquet")
        shown = Path(tmp) / "labels_signal.parquet"  # what the signal shows (differs at harder levels)
        shown_exists = shown.exists()
        phen = pd.read_parquet(shown) if shown_exists else truth
        stated = pd.read_parquet(Path(tmp) / "labels_stated.parquet")
        manifest = label_manifest(scan([tmp], ScanConfig(workers=args.workers)))
        measured = measure(manifest, MeasureConfig(delineate=True, workers=args.workers))
    m = measured.drop(columns=list(LABELS)).merge(phen.merge(intervals, on="record_id"), on="record_id",
                                                  suffixes=("", "_true"))
    print(f"{len(m)} records, {args.patients} patients, seed {args.seed}, {args.difficulty}; share within tolerance "
          f"({', '.join(f'{k} +-{v:g}' for k, v in TOL.items())}), median error (measured - true)\n")
    print("| phenotype | n | " + " | ".join(f"{k} ok | {k} bias" for k in TOL) + " |")
    print("|---|---:|" + "---:|---:|" * len(TOL))
    groups = {"normal": m[list(LABELS)].sum(axis=1) == 0, **{lab: m[lab] == 1 for lab in LABELS}}
    for name, sel in groups.items():
        s = m[sel.to_numpy()]
        if not len(s):
            continue
        cells = []
        for k, tol in TOL.items():
            true = TRUE.get(k, f"{k}_true")
            ok = s[true].notna()
            if k == "pr_ms":  # against the record's range of PRs (Mobitz I lengthens it beat by beat)
                err = pr_error_ms(s.loc[ok, k], s.loc[ok, "pr_min_ms"], s.loc[ok, "pr_max_ms"])
            else:
                err = (s.loc[ok, k] - s.loc[ok, true]).to_numpy(dtype=np.float64)
            if not ok.any():
                cells += ["n/a", "n/a"]
                continue
            bias = f"{np.nanmedian(err):+.0f}" if np.isfinite(err).any() else "NaN"
            cells += [f"{np.mean(np.abs(err) <= tol):.0%}", bias]
        print(f"| {name} | {len(s)} | " + " | ".join(cells) + " |")
    res = audit(measured)
    sc = flag_scores(res, truth, stated, shown=phen if shown_exists else None)
    n_labels = len({r.label for r in res.rules.rules if r.enabled and r.label})
    print(f"\naudit at label noise {args.noise}: {int(sc['flags'])} label flags, {int(sc['flipped'])} "
          f"flipped labels in the {n_labels} labels with rules; precision {sc['precision']:.2f}, "
          f"recall {sc['recall']:.2f}")
    if shown_exists:  # every statement its signal contradicts: noise flips and silent/mimic findings
        print(f"against what the signal shows: {int(sc['contradictions'])} stated labels contradict their signal; "
              f"precision {sc['precision_signal']:.2f}, recall {sc['recall_signal']:.2f}")
    print()
    print(res.summary.to_string(index=False))


if __name__ == "__main__":
    main()
