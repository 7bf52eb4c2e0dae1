"""Cohort-level labelling: add label columns and their provenance to a manifest.

Text labels come from the manifest's ``statements``; code labels from its ``codes`` JSON, mapped
through shipped tables: ``data/scp_to_ecg_p18.csv`` (PTB-XL ``scp_codes``; any likelihood, including 0
which PTB-XL uses for "not given", counts as present) and ``data/snomed_to_ecg_p18.csv`` (PhysioNet
Challenge ``# Dx:`` SNOMED-CT codes).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ecgkit._resources import data_path
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.labels.core import _as_text, _check_policy, _POLICY_VALUE, explain_many
from ecgkit.labels.vocab import Vocabulary, load_vocabulary

logger = logging.getLogger(__name__)

Source = Literal["text", "codes", "both"]
#: code system in the manifest's ``codes`` JSON -> shipped mapping table
CODE_TABLES = {"scp": "scp_to_ecg_p18.csv", "snomed": "snomed_to_ecg_p18.csv"}


@dataclass(frozen=True)
class LabelConfig:
    """Label stage settings."""

    # the shipped ECG-P18 vocabulary; a path selects a user vocabulary file of the same format
    vocabulary: str = "ecg-p18"
    # hedged mentions count as positive: most archives' "possible X" reads were confirmed statements
    uncertain: str = "positive"
    # free text is what every archive has; codes exist only for curated sets (PTB-XL, Challenge)
    source: str = "text"
    # labels of unconfirmed (device-only) reports are kept: most machine reads stand after overread
    unconfirmed: str = "keep"


#: what ``unconfirmed=`` does to a record whose report_status is "unconfirmed"
UNCONFIRMED_POLICIES = ("keep", "mask", "drop")
#: values of the ``report_status`` column
REPORT_STATUSES = ("confirmed", "unconfirmed", "unknown")
_FIELD_STATUS = {"confirmed": "confirmed", "overread": "confirmed", "edited": "confirmed", "final": "confirmed",
                 "signed": "confirmed", "unconfirmed": "unconfirmed", "preliminary": "unconfirmed",
                 "pending": "unconfirmed", "unread": "unconfirmed"}


def _field_status(raw: Any) -> str | None:
    """The report status a format's own field states, from the ``codes`` JSON key ``report_status``."""
    if not isinstance(raw, str) or "report_status" not in raw:
        return None
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    value = obj.get("report_status") if isinstance(obj, dict) else None
    return _FIELD_STATUS.get(str(value).strip().lower()) if value is not None else None


@lru_cache(maxsize=4)
def _code_table(system: str) -> dict[str, tuple[str, ...]]:
    table = pd.read_csv(data_path(CODE_TABLES[system]), dtype=str)
    out: dict[str, list[str]] = {}
    for code, label in zip(table.iloc[:, 0], table["label"]):
        out.setdefault(code.strip(), []).append(label.strip())
    return {k: tuple(v) for k, v in out.items()}


def _codes_of(raw: Any) -> dict[str, list[str]]:
    """Parse one ``codes`` JSON cell into {system: [code, ...]}; unreadable cells give {}."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or raw is pd.NA or raw == "":
        return {}
    try:
        obj = json.loads(raw) if isinstance(raw, str) else raw
    except (TypeError, ValueError):
        return {}
    if not isinstance(obj, dict):
        return {}
    out: dict[str, list[str]] = {}
    for system, codes in obj.items():
        if isinstance(codes, dict):
            out[str(system).lower()] = [str(c) for c in codes]
        elif isinstance(codes, (list, tuple)):
            out[str(system).lower()] = [str(c) for c in codes]
        elif isinstance(codes, (str, int)):
            out[str(system).lower()] = [str(codes)]
    return out


def label_codes(codes: pd.Series, labels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Map structured diagnosis codes to labels.

    Parameters
    ----------
    codes : pandas.Series of str
        JSON per record: ``{"snomed": ["164889003"]}`` or ``{"scp": {"NORM": 100.0}}``; null allowed.
    labels : tuple of str
        Output columns (codes mapping to other labels are ignored).

    Returns
    -------
    values : numpy.ndarray of int8, shape (n_records, n_labels)
        1 where a code maps to the label, else 0.
    provenance : list of str
        Per record, ``"AFIB<-snomed:164889003"`` parts joined by ``"; "``.
    """
    col = {lab: j for j, lab in enumerate(labels)}
    values = np.zeros((len(codes), len(labels)), dtype=np.int8)
    prov: list[str] = []
    for i, raw in enumerate(codes.tolist()):
        parts = []
        for system, items in _codes_of(raw).items():
            if system not in CODE_TABLES:
                continue
            table = _code_table(system)
            for code in items:
                for lab in table.get(code.strip(), ()):
                    if lab in col:
                        values[i, col[lab]] = 1
                        parts.append(f"{lab}<-{system}:{code}")
        prov.append("; ".join(parts))
    return values, prov


def label_manifest(manifest: pd.DataFrame, *, vocabulary: str | Path | Vocabulary = "ecg-p18",
                   uncertain: str = "positive", source: str = "text", unconfirmed: str = "keep",
                   workers: int = 1) -> pd.DataFrame:
    """Add one int8 column per label and a ``label_provenance`` column to a manifest.

    Parameters
    ----------
    manifest : pandas.DataFrame
        A manifest (see :mod:`ecgkit.manifest`) with ``statements`` (list of str or None per record)
        and, for ``source="codes"``/``"both"``, ``codes`` (JSON string or None).
    vocabulary : str, Path or Vocabulary
        ``"ecg-p18"`` or a path to a vocabulary file.
    uncertain : {"positive", "negative", "mask"}
        Value of hedged text mentions (mask = -1).
    source : {"text", "codes", "both"}
        Labels from the statements, from the structured codes, or 1 where either says 1 (a code
        overrides a hedged or missing text mention).
    unconfirmed : {"keep", "mask", "drop"}
        What to do with records whose ``report_status`` is ``"unconfirmed"``: keep their labels,
        set all their labels to -1 (masked in training), or quarantine them (``status``
        "quarantined", ``reason`` "label: unconfirmed report"; records in = records out).
    workers : int
        Processes that label the distinct reports (1: this process); the result does not depend on it.

    Returns
    -------
    pandas.DataFrame
        A copy of the manifest with, added or replaced:

        ==================  ======  ============================================================
        ``<label>``         int8    one column per vocabulary label (``LVH`` ... ``APC``): 1 asserted,
                                    0 not, -1 only hedged under ``uncertain="mask"``
        ``label_provenance`` string  per record, which phrase in which statement (or which code)
                                    set or rejected each label, e.g. ``AFIB<-'atrial fibrillation'
                                    (stmt 1); RVH?<-'right ventricular hypertrophy' (stmt 2,
                                    uncertain: 'possible')``
        ``report_status``   string  ``confirmed`` / ``unconfirmed`` / ``unknown``: the format's own
                                    field (``codes`` key ``report_status``, e.g. MUSE
                                    ``TestDemographics/Status``) if it has one, else the report's
                                    last footer ("Confirmed by ...", "unbestätigter Bericht")
        ==================  ======  ============================================================

    Notes
    -----
    Quarantined records (``status != "ok"``) are labelled like the others: labels come from text
    and codes, not from signals, so a record quarantined for a signal problem still has a valid
    label, and a later stage that un-quarantines it needs no relabelling. Records without
    statements get zeros and an empty provenance.

    Raises
    ------
    SchemaError
        If a needed column is missing.
    ConfigError
        If ``source`` or ``uncertain`` is unknown.
    """
    if source not in ("text", "codes", "both"):
        raise ConfigError(f"label source must be text, codes or both, got {source!r}")
    if uncertain not in _POLICY_VALUE:
        raise ConfigError(f"uncertain must be one of {list(_POLICY_VALUE)}, got {uncertain!r}")
    if unconfirmed not in UNCONFIRMED_POLICIES:
        raise ConfigError(f"unconfirmed must be one of {list(UNCONFIRMED_POLICIES)}, got {unconfirmed!r}")
    need = ["statements"] if source == "text" else ["codes"] if source == "codes" else ["statements", "codes"]
    missing = [c for c in need if c not in manifest.columns]
    if missing:
        raise SchemaError(f"manifest lacks column(s) {missing} needed to label from {source}")
    vocab = load_vocabulary(vocabulary)
    n, labels = len(manifest), vocab.labels
    values = np.zeros((n, len(labels)), dtype=np.int8)
    prov_text = [""] * n
    text_status: list[str | None] = [None] * n
    if "statements" in manifest.columns:
        ids = manifest["record_id"].tolist() if "record_id" in manifest.columns else list(range(n))
        texts = [_as_text(v, rid) for v, rid in zip(manifest["statements"].tolist(), ids)]
        text_values, text_prov, text_status = explain_many(texts, vocab, _check_policy(uncertain),
                                                              workers=workers)
        if source in ("text", "both"):
            values, prov_text = text_values, text_prov
    fields = manifest["codes"].tolist() if "codes" in manifest.columns else [None] * n
    status = [_field_status(f) or t or "unknown" for f, t in zip(fields, text_status)]
    prov_codes = [""] * n
    if source in ("codes", "both"):
        code_values, prov_codes = label_codes(manifest["codes"], labels)
        values = code_values if source == "codes" else np.where(code_values == 1, 1, values).astype(np.int8)
    out = manifest.copy()
    for j, lab in enumerate(labels):
        out[lab] = values[:, j]
    out["label_provenance"] = pd.Series(
        ["; ".join(p for p in pair if p) for pair in zip(prov_text, prov_codes)], index=out.index,
        dtype="string")
    out["report_status"] = pd.Series(status, index=out.index, dtype="string")
    is_unconfirmed = (out["report_status"] == "unconfirmed").to_numpy()
    if unconfirmed == "mask" and is_unconfirmed.any():
        for lab in labels:
            out.loc[is_unconfirmed, lab] = np.int8(-1)
    elif unconfirmed == "drop" and is_unconfirmed.any():
        hit = is_unconfirmed & (out["status"] == "ok").to_numpy() if "status" in out.columns else is_unconfirmed
        out.loc[hit, "status"] = "quarantined"
        if "reason" in out.columns:
            out["reason"] = out["reason"].astype("string")
        out.loc[hit, "reason"] = "label: unconfirmed report (--unconfirmed drop)"
    logger.info("labelled %d records with %s %s (source=%s, uncertain=%s, unconfirmed=%s; %d unconfirmed)",
                n, vocab.name, vocab.version, source, uncertain, unconfirmed, int(is_unconfirmed.sum()))
    return out
