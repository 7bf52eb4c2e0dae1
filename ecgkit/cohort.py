"""Cohort-folder entry points: one call does what ``ecgkit label`` / ``ecgkit split`` do.

``scan(..., out_dir=)``, :func:`ecgkit.shards.write_shards`, :func:`ecgkit.trainer.train` and
:func:`ecgkit.report.evaluate` write their folders themselves; the two text-only stages work on a
manifest DataFrame, and these wrap them so that a Python user gets, from one call, the files the
command writes (the updated ``COHORT_DIR/manifest.parquet``) and the same checks:

>>> import ecgkit
>>> ecgkit.label_cohort("cohort", vocabulary="my_vocab.yaml")  # doctest: +SKIP
>>> ecgkit.split_cohort("cohort", ratios=(7, 1, 2), seed=0)     # doctest: +SKIP
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import pandas as pd

from ecgkit.errors import DataError
from ecgkit.manifest import STATUS_OK, label_names, read_manifest, write_manifest, write_quarantine

logger = logging.getLogger(__name__)

__all__ = ["LabelResult", "label_cohort", "split_cohort"]


@dataclass(frozen=True)
class LabelResult:
    """What :func:`label_cohort` did."""

    manifest: pd.DataFrame
    vocabulary: str  # name and version
    labels: tuple[str, ...]
    removed: tuple[str, ...]  # label columns of an earlier vocabulary that were dropped
    positives: dict[str, int]
    masked: int
    report_status: dict[str, int]  # confirmed / unconfirmed / unknown reports
    dropped: int  # records quarantined as unconfirmed (unconfirmed="drop")


def label_cohort(cohort_dir: str | Path, *, vocabulary: str | Path = "ecg-p18", uncertain: str = "positive",
                 source: str = "text", unconfirmed: str = "keep", workers: int = 1) -> LabelResult:
    """Label ``COHORT_DIR/manifest.parquet`` in place (see :func:`ecgkit.labels.label_manifest`).

    With ``unconfirmed="drop"`` the records quarantined as unconfirmed are also appended to
    ``COHORT_DIR/quarantine.parquet``. ``workers=0``: one process per core.

    Relabelling with another vocabulary removes the earlier vocabulary's label columns (named in
    ``LabelResult.removed`` and logged), so that ``split``, ``shard`` and ``train`` see only the new
    labels.

    Raises
    ------
    SchemaError
        No manifest in ``cohort_dir``.
    ConfigError
        Unknown vocabulary, ``uncertain`` or ``source``.
    """
    from ecgkit.engines import resolve_workers
    from ecgkit.labels import label_manifest, load_vocabulary

    vocab = load_vocabulary(vocabulary)
    manifest = read_manifest(cohort_dir)
    removed = tuple(c for c in label_names(manifest) if c not in vocab.labels)
    if removed:
        logger.info("%s: relabelling with %s removes the earlier label column(s) %s", cohort_dir, vocab.name,
                       ", ".join(removed))
        manifest = manifest.drop(columns=list(removed))
    labelled = label_manifest(manifest, vocabulary=vocab, uncertain=uncertain, source=source,
                              unconfirmed=unconfirmed, workers=resolve_workers(workers))
    write_manifest(labelled, cohort_dir)
    dropped = 0
    if unconfirmed == "drop":
        hit = (labelled["reason"] == "label: unconfirmed report (--unconfirmed drop)").fillna(False).to_numpy(bool)
        dropped = int(hit.sum())
        write_quarantine(labelled[hit], cohort_dir, "label")
    table = labelled[list(vocab.labels)]
    by_status = labelled["report_status"].value_counts() if "report_status" in labelled else pd.Series(dtype=int)
    return LabelResult(labelled, f"{vocab.name} {vocab.version}", tuple(vocab.labels), removed,
                       {lab: int((labelled[lab] == 1).sum()) for lab in vocab.labels},
                       int((table == -1).to_numpy().sum()),
                       {s: int(by_status.get(s, 0)) for s in ("confirmed", "unconfirmed", "unknown")}, dropped)


def split_cohort(cohort_dir: str | Path, *, ratios: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0,
                 method: Literal["stratified", "hash"] = "stratified", key: bytes | str | None = None) -> Any:
    """Split ``COHORT_DIR/manifest.parquet`` by patient in place; return the :class:`~ecgkit.split.SplitAudit`.

    Stratifies on the manifest's label columns (any vocabulary).

    Raises
    ------
    SchemaError
        No manifest in ``cohort_dir``.
    DataError
        No usable record, or a split that leaves train or val empty (too few patients for the
        ratios); nothing is written then.
    """
    from ecgkit.split import SPLITS, audit, split_by_patient

    manifest = read_manifest(cohort_dir)
    n_ok = int((manifest["status"] == STATUS_OK).sum())
    where = Path(cohort_dir).resolve()
    if n_ok == 0:
        raise DataError(f"{where}: no usable record to split ({len(manifest)} record(s), all quarantined; "
                        f"see {where / 'quarantine.parquet'})")
    out = split_by_patient(manifest, ratios=ratios, seed=seed, method=method, key=key)
    report = audit(out, ratios=ratios)
    # a split asked for (ratio > 0) must get records; train always (nothing to learn from otherwise)
    empty = [s for s, r in zip(SPLITS, ratios) if report.counts[s] == 0 and (s == "train" or float(r) > 0)]
    if empty:
        n_pat = sum(report.patients.values())
        raise DataError(f"{where}: the split leaves {' and '.join(empty)} empty ({n_ok} usable record(s) of "
                        f"{n_pat} patient(s), ratios {':'.join(f'{float(r):g}' for r in ratios)}); every "
                        f"split with a ratio above 0 needs at least one patient: add records or change --ratios")
    write_manifest(out, cohort_dir)
    return report
