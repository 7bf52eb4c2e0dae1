"""Several labelled cohorts in one shard folder: label mapping, merged manifest, defined-labels masks.

Cohorts (a MUSE archive labelled with ECG-P18, PTB-XL labelled from ``scp_codes``, a local
vocabulary) name findings differently. A *mapping file* says which names mean the same finding:

- YAML: ``{alias: canonical}`` or ``{canonical: [alias, ...]}`` (either may be under a top-level
  ``mapping`` key); names not listed keep their own name;
- CSV: columns ``name,canonical`` (one row per alias).

:func:`merge_cohorts` renames each cohort's label columns to canonical names, takes the union in
first-seen order, and sets every label a cohort does not define to -1 for its records. The label a
source does not define is *unknown* (-1), distinct from a stated negative (0); which labels each
record's source defines is kept explicitly: ``cohort_labels`` (cohort -> its canonical labels) goes to
:func:`ecgkit.shards.write_shards`, which writes it to every shard's ``cohorts`` attribute and, per
record, the index columns ``cohort`` and ``defined`` (one bool per shard label, in label order).

Record and patient ids are namespaced by cohort (``COHORT/ID``): two archives' "P001" are not one
patient, record ids (relative paths) of two folders may coincide, and each cohort keeps its own
patient-level split.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from ecgkit.errors import ConfigError, SchemaError
from ecgkit.manifest import label_names

__all__ = ["read_label_mapping", "mapping_from_dict", "merge_cohorts", "defined_mask", "COHORT_COLUMN"]

COHORT_COLUMN = "cohort"


def read_label_mapping(path: str | Path) -> dict[str, str]:
    """``alias -> canonical`` from a YAML or CSV mapping file (see the module docstring).

    Raises
    ------
    ConfigError
        Unreadable file, wrong shape, or one alias mapped to two canonical names.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the label mapping {p}: {exc}") from None
    pairs: list[tuple[str, str]] = []
    if p.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or not {"name", "canonical"} <= set(rows[0]):
            raise ConfigError(f"label mapping {p}: a CSV needs the columns name,canonical")
        pairs = [(r["name"].strip(), r["canonical"].strip()) for r in rows if (r["name"] or "").strip()]
    else:
        try:
            data: Any = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"label mapping {p} is not valid YAML: {exc}") from None
        return mapping_from_dict(data, str(p))
    return _pairs_to_mapping(pairs, str(p))


def mapping_from_dict(data: Any, where: str = "the label mapping") -> dict[str, str]:
    """``alias -> canonical`` from ``{alias: canonical}`` / ``{canonical: [aliases]}`` (optionally under ``mapping``)."""
    if isinstance(data, dict) and set(data) == {"mapping"}:
        data = data["mapping"]
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected {{alias: canonical}} or {{canonical: [aliases]}}")
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, list):
            pairs += [(str(a), str(key)) for a in value]
        elif isinstance(value, (str, int)):
            pairs.append((str(key), str(value)))
        else:
            raise ConfigError(f"{where}: {key!r} maps to {value!r} (a name or a list of names)")
    return _pairs_to_mapping(pairs, where)


def _pairs_to_mapping(pairs: list[tuple[str, str]], p: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for alias, canon in pairs:
        if not alias or not canon:
            raise ConfigError(f"label mapping {p}: empty name in {alias!r} -> {canon!r}")
        if out.get(alias, canon) != canon:
            raise ConfigError(f"label mapping {p}: {alias!r} maps to both {out[alias]!r} and {canon!r}")
        out[alias] = canon
    return out


def merge_cohorts(manifests: Mapping[str, pd.DataFrame], mapping: Mapping[str, str] | None = None
                  ) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]]]:
    """One manifest of several labelled cohorts, and each cohort's defined (canonical) labels.

    Parameters
    ----------
    manifests : cohort name -> its manifest (label columns as ``ecgkit label`` writes them, a split)
    mapping : alias -> canonical label name (:func:`read_label_mapping`)

    Returns
    -------
    merged : DataFrame
        The rows of every cohort, with a ``cohort`` column, record and patient ids ``COHORT/ID``, the union of the
        canonical label columns (int8; -1 where the cohort does not define the label).
    cohort_labels : cohort -> the canonical labels it defines, in the cohort's own order

    Raises
    ------
    ConfigError
        Fewer than one cohort, a bad cohort name, two labels of one cohort mapped to one name.
    SchemaError
        A cohort without label columns, a record id in two cohorts.
    """
    if not manifests:
        raise ConfigError("merge_cohorts needs at least one cohort")
    mapping = dict(mapping or {})
    frames: list[pd.DataFrame] = []
    cohort_labels: dict[str, tuple[str, ...]] = {}
    union: list[str] = []
    for name, man in manifests.items():
        if not name or "/" in name or name != name.strip():
            raise ConfigError(f"cohort name {name!r}: use a non-empty name without '/' or edge spaces")
        labs = label_names(man)
        if not labs:
            raise SchemaError(f"cohort {name!r} has no label columns (run `ecgkit label` on it first)")
        canon = [mapping.get(lab, lab) for lab in labs]
        dup = sorted({c for c in canon if canon.count(c) > 1})
        if dup:
            raise ConfigError(f"cohort {name!r}: several of its labels map to {dup} (one label per finding)")
        frame = man.rename(columns=dict(zip(labs, canon))).copy()
        frame[COHORT_COLUMN] = pd.Series(name, index=frame.index, dtype="string")
        frame["record_id"] = name + "/" + frame["record_id"].astype(str)
        if "patient_id" in frame:
            pid = frame["patient_id"]
            frame["patient_id"] = (name + "/" + pid.astype("string")).where(pid.notna(), pid)
        cohort_labels[name] = tuple(canon)
        union += [c for c in canon if c not in union]
        frames.append(frame)
    for frame, defined in zip(frames, cohort_labels.values()):
        for lab in union:
            if lab not in defined:
                frame[lab] = np.int8(-1)
    merged = pd.concat(frames, ignore_index=True)
    for lab in union:
        merged[lab] = merged[lab].astype(np.int8)
    ids = merged["record_id"].astype(str)
    if ids.duplicated().any():
        raise SchemaError(f"duplicate record ids: {ids[ids.duplicated()].head(5).tolist()}")
    order = [c for c in merged.columns if c not in union] + union  # labels last, in union order
    return merged[order], cohort_labels


def defined_mask(cohorts: pd.Series | np.ndarray, cohort_labels: Mapping[str, tuple[str, ...]],
                 names: tuple[str, ...] | list[str]) -> np.ndarray:
    """(n, len(names)) bool: True where the record's cohort defines the label.

    Raises
    ------
    SchemaError
        A record of a cohort that ``cohort_labels`` does not list.
    """
    rows = {c: np.array([n in set(labs) for n in names], dtype=bool) for c, labs in cohort_labels.items()}
    vals = np.asarray(cohorts, dtype=object)
    unknown = sorted({str(v) for v in vals} - set(rows))
    if unknown:
        raise SchemaError(f"records of cohort(s) {unknown} that the cohort label sets do not list")
    return np.stack([rows[str(v)] for v in vals]) if len(vals) else np.zeros((0, len(names)), bool)
