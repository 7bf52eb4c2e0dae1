"""Accuracy of ecgkit's text labels against PTB-XL's cardiologist-validated ``scp_codes``.

Labels the free-text ``report`` of every row of ``ptbxl_database.csv`` with
:func:`ecgkit.labels.label_texts` and compares with the ``scp_codes`` mapped to ECG-P18 through the
shipped table ``data/scp_to_ecg_p18.csv`` (CRBBB->RBBB, CLBBB->LBBB, IVCD->NIVCD, AFLT->AFL,
BIGU->VBIG, PVC->VPC, PAC->APC, and LVH, RVH, AFIB, IRBBB, ILBBB, 1AVB, 2AVB, 3AVB as they are; a
likelihood of 0 means "not given" and still counts as present).

Usage::

    python benchmarks/eval_labels_ptbxl.py [--csv ../shared/data/ptbxl/ptbxl_database.csv]
        [--uncertain positive|negative|mask] [--disagreements] [--append-footer " 4.46   unbestätigter bericht"]

Prints per-label precision, recall, F1 and support for all reports, then separately for confirmed
and unconfirmed reports (``report_status`` from the report's own footer, e.g. "unbestätigter bericht";
else PTB-XL's ``validated_by_human``: False is an automatic, unconfirmed report), then (with
``--disagreements``) each record where text and codes disagree, with the provenance of the text labels.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgkit.labels import label_texts, load_vocabulary, report_status  # noqa: E402
from ecgkit.labels.cohort import label_codes  # noqa: E402
from ecgkit.labels.core import explain_many  # noqa: E402

DEFAULT_CSV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ptbxl" / "ptbxl_database.csv"


def _table(pred: np.ndarray, truth: np.ndarray, labels: tuple[str, ...], title: str) -> None:
    print(f"\n{title}: {len(pred)} records")
    print(f"{'label':6s} {'prec':>6s} {'recall':>6s} {'F1':>6s} {'support':>7s} {'pred':>5s} {'TP':>4s} "
          f"{'FP':>4s} {'FN':>4s}")
    for j, lab in enumerate(labels):
        tp = int((pred[:, j] & truth[:, j]).sum())
        fp = int((pred[:, j] & ~truth[:, j]).sum())
        fn = int((~pred[:, j] & truth[:, j]).sum())
        prec = tp / (tp + fp) if tp + fp else float("nan")
        rec = tp / (tp + fn) if tp + fn else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        print(f"{lab:6s} {prec:6.3f} {rec:6.3f} {f1:6.3f} {tp + fn:7d} {tp + fp:5d} {tp:4d} {fp:4d} {fn:4d}")
    if len(pred):
        agree = (pred == truth).all(axis=1)
        print(f"records where all {len(labels)} labels agree: {agree.sum()}/{len(pred)} ({agree.mean():.1%})")


def _status(db: pd.DataFrame, from_text: list[str]) -> list[str]:
    """A report's own footer first; else PTB-XL's ``validated_by_human`` (False: an automatic report)."""
    out = []
    for i, s in enumerate(from_text):
        if s == "unknown" and "validated_by_human" in db.columns and not pd.isna(db["validated_by_human"].iloc[i]):
            s = "confirmed" if bool(db["validated_by_human"].iloc[i]) else "unconfirmed"
        out.append(s)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--uncertain", default="positive", choices=["positive", "negative", "mask"])
    ap.add_argument("--disagreements", action="store_true", help="list every disagreeing record")
    ap.add_argument("--append-footer", metavar="TEXT", default=None,
                    help="append TEXT to every other report, as PTB-XL's automatic reports end (e.g. "
                         "' 4.46      unbestätigter bericht'): the labels must not change, and those "
                         "reports count as unconfirmed")
    args = ap.parse_args(argv)

    db = pd.read_csv(args.csv)
    vocab = load_vocabulary("ecg-p18")
    reports = [r if isinstance(r, str) else "" for r in db["report"]]
    if args.append_footer:
        reports = [r + args.append_footer if i % 2 else r for i, r in enumerate(reports)]
    text = label_texts(reports, uncertain=args.uncertain)
    # mask -> count only definite labels as positive
    pred = (text.to_numpy() == 1)
    codes = pd.Series([json.dumps({"scp": ast.literal_eval(s)}) for s in db["scp_codes"]])
    truth, _ = label_codes(codes, vocab.labels)
    truth = truth == 1
    status = np.array(_status(db, report_status(reports, vocab)))

    print(f"PTB-XL reports: {len(db)} (ecg_id {db.ecg_id.min()}-{db.ecg_id.max()}), "
          f"vocabulary {vocab.name} {vocab.version}, uncertain={args.uncertain}; report_status: "
          + ", ".join(f"{s} {int((status == s).sum())}" for s in ("confirmed", "unconfirmed", "unknown")))
    _table(pred, truth, vocab.labels, "all reports")
    for s in ("confirmed", "unconfirmed"):
        keep = status == s
        _table(pred[keep], truth[keep], vocab.labels, f"report_status={s}")
    agree = (pred == truth).all(axis=1)

    if args.disagreements:
        _, prov, _ = explain_many(reports, vocab, 1)
        for i in np.flatnonzero(~agree):
            fp = [lab for j, lab in enumerate(vocab.labels) if pred[i, j] and not truth[i, j]]
            fn = [lab for j, lab in enumerate(vocab.labels) if truth[i, j] and not pred[i, j]]
            print(f"\necg_id {db.ecg_id[i]} ({status[i]}): text-only {fp} codes-only {fn}\n"
                  f"  report: {db.report[i]!r}\n  scp_codes: {db.scp_codes[i]}\n  provenance: {prov[i]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
