"""Accuracy of ecgkit's text labels against PTB-XL's cardiologist-validated ``scp_codes``.

Labels the free-text ``report`` of every row of ``ptbxl_database.csv`` with
:func:`ecgkit.labels.label_texts` and compares with the ``scp_codes`` mapped to ECG-P18 through the
shipped table ``data/scp_to_ecg_p18.csv`` (CRBBB->RBBB, CLBBB->LBBB, IVCD->NIVCD, AFLT->AFL,
BIGU->VBIG, PVC->VPC, PAC->APC, and LVH, RVH, AFIB, IRBBB, ILBBB, 1AVB, 2AVB, 3AVB as they are; a
likelihood of 0 means "not given" and still counts as present).

Usage::

    python benchmarks/eval_labels_ptbxl.py [--csv ../shared/data/ptbxl/ptbxl_database.csv]
        [--uncertain positive|negative|mask] [--disagreements] [--append-footer " 4.46   unbestätigter bericht"]

Labels run as ``ecgkit label`` runs them on a PTB-XL scan (:func:`ecgkit.labels.label_manifest` on the
report and the ``codes`` the scan writes). Prints per-label precision, recall, F1 and support for all
reports, then separately for confirmed and unconfirmed reports twice: by ``report_status`` as the label
stage sets it (PTB-XL's ``validated_by_human``: True confirmed, False unconfirmed; the report's footer
only where that column is empty), and by the report's own footer alone ("unbestätigter bericht":
the device's automatic report). With ``--disagreements``, each record where text and codes disagree,
with the provenance of the text labels. ``--csv`` takes the CSV or the folder that holds it.
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

from ecgkit._ptbxl_db import _ptbxl_validation  # noqa: E402
from ecgkit.labels import label_manifest, load_vocabulary, report_status  # noqa: E402
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


def _field_codes(db: pd.DataFrame) -> pd.Series:
    """The ``codes`` column a PTB-XL scan gives each row: ``scp`` plus validated_by_human's report_status."""
    return pd.Series([json.dumps({"scp": ast.literal_eval(s), **_ptbxl_validation(rec)})
                      for s, rec in zip(db["scp_codes"], db.to_dict("records"))])


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

    csv = args.csv / "ptbxl_database.csv" if args.csv.is_dir() else args.csv
    if not csv.is_file():
        print(f"error: no PTB-XL database at {csv}", file=sys.stderr)
        return 2
    db = pd.read_csv(csv)
    vocab = load_vocabulary("ecg-p18")
    reports = [r if isinstance(r, str) else "" for r in db["report"]]
    if args.append_footer:
        reports = [r + args.append_footer if i % 2 else r for i, r in enumerate(reports)]
    codes = _field_codes(db)
    # the label stage exactly as `ecgkit label` runs it on a PTB-XL scan: statements + codes
    manifest = pd.DataFrame({"record_id": [f"ptbxl/{i}" for i in db["ecg_id"]],
                             "statements": [[r] if r else [] for r in reports], "codes": codes})
    labelled = label_manifest(manifest, vocabulary=vocab, uncertain=args.uncertain)
    # mask -> count only definite labels as positive
    pred = labelled[list(vocab.labels)].to_numpy() == 1
    truth, _ = label_codes(codes, vocab.labels)
    truth = truth == 1
    status = labelled["report_status"].to_numpy(dtype=object)
    footer = np.array(report_status(reports, vocab), dtype=object)

    def counts(st: np.ndarray) -> str:
        return ", ".join(f"{s} {int((st == s).sum())}" for s in ("confirmed", "unconfirmed", "unknown"))

    print(f"PTB-XL reports: {len(db)} (ecg_id {db.ecg_id.min()}-{db.ecg_id.max()}), "
          f"vocabulary {vocab.name} {vocab.version}, uncertain={args.uncertain}\n"
          f"report_status as `ecgkit label` gives it (validated_by_human, else the report's footer): "
          f"{counts(status)}\nthe report's own footer alone: {counts(footer)}")
    _table(pred, truth, vocab.labels, "all reports")
    for s in ("confirmed", "unconfirmed"):
        keep = status == s
        _table(pred[keep], truth[keep], vocab.labels, f"report_status={s} (validated_by_human)")
    for s in ("confirmed", "unconfirmed"):
        keep = footer == s
        _table(pred[keep], truth[keep], vocab.labels, f"report footer says {s}")
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
