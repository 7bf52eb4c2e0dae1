"""Split stage: patient-level train/val/test splits and a leakage audit.

Two methods, both grouped by patient (every record of a patient lands in one split; a record
without a ``patient_id`` counts as its own patient):

- ``"stratified"`` (default): multi-label iterative stratification (Sechidis, Tsoumakas & Vlahavas,
  "On the stratification of multi-label data", ECML PKDD 2011) run over *patients*, weighting each
  patient by its number of records, so that each split's prevalence of each label is close to the
  cohort's. Deterministic for a seed and independent of the manifest's row order.
- ``"hash"``: a keyed hash (HMAC-SHA256) of the patient id mapped to [0, 1) and cut at the cumulative
  ratios. A patient's split depends only on its id and the key, so growing a cohort (monthly
  re-exports) never moves an existing patient to another split.

Patient-level k-fold cross-validation (:func:`split_kfold`) stratifies patients into K folds the
same way; :func:`select_fold` turns fold k into a train/val/test split and :func:`audit_folds`
checks that no patient is in two folds.

This module works on tables only: it imports neither torch nor h5py.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import unicodedata
import dataclasses
from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ecgkit.errors import ConfigError, SchemaError
from ecgkit.manifest import STATUS_OK

log = logging.getLogger(__name__)

#: The ECG-P18 label names in task order (the label stage adds one int8 column per name).
ECG_P18: tuple[str, ...] = ("LVH", "RVH", "AFIB", "AFL", "IVCD", "NIVCD", "RBBB", "LBBB", "IRBBB", "ILBBB",
                            "1AVB", "2AVB", "3AVB", "EAR", "VBIG", "VT", "VPC", "APC")

#: Split names, in the order of ``ratios``.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Default HMAC key of the hash split. It is public, so the split is reproducible by anyone with the
#: manifest; pass your own ``key`` to make the assignment unpredictable from patient ids alone.
DEFAULT_SPLIT_KEY = b"ecgkit-split-v1"
#: Default HMAC key of :func:`patient_keys` (the pseudonymous patient key written into shards). Set a
#: secret key for real pseudonymisation: with a public key, anyone holding a candidate patient id can
#: recompute its key.
DEFAULT_PATIENT_KEY = b"ecgkit-patient-key-v1"


def label_columns(manifest: pd.DataFrame, labels: Sequence[str] | None = None) -> tuple[str, ...]:
    """Return the label columns to use: ``labels`` if given, else the manifest's label columns
    (:func:`ecgkit.manifest.label_names`: those of the vocabulary it was labelled with).

    Raises
    ------
    SchemaError
        If an explicitly requested label column is missing from the manifest.
    """
    if labels is None:
        from ecgkit.manifest import label_names

        return label_names(manifest)
    missing = [name for name in labels if name not in manifest.columns]
    if missing:
        raise SchemaError(f"manifest lacks label column(s) {missing}; it has {list(manifest.columns)}")
    return tuple(labels)


_ID_SEPARATORS = re.compile(r"[\s\-_./:,;|#]+")


def normalize_patient_id(patient_id: str) -> str:
    """The form of a patient id used for grouping: NFKC, case-folded, without separators or leading zeros.

    Exports of one hospital spell one id several ways (``"00123456"``, ``"123456"``, ``"123 456"``,
    ``"１２３４５６"`` in full-width digits, ``"ab-123"`` / ``"AB123"``); grouping on the raw text
    would put one patient in two splits. The raw id stays in the manifest for display.

    Examples
    --------
    >>> normalize_patient_id(" 00１２3-456 "), normalize_patient_id("Ab_12")
    ('123456', 'ab12')
    """
    key = _ID_SEPARATORS.sub("", unicodedata.normalize("NFKC", patient_id).casefold())
    if key.isdigit():
        key = key.lstrip("0") or "0"
    return key


def _normalized(pid: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(pid)  # normalise each distinct id once
    norm = np.array([normalize_patient_id(str(u)) for u in uniques], dtype=object)
    out = pd.Series(np.where(codes >= 0, norm[np.maximum(codes, 0)] if len(norm) else None, None),
                    index=pid.index, dtype="string")
    return out



def _refuse_leaks(groups: pd.Series, part: pd.Series, what: str) -> None:
    """Raise SchemaError naming up to 5 patients whose records lie in more than one ``what`` (split or fold)."""
    per_group = pd.DataFrame({"g": groups.to_numpy(), "p": part.to_numpy()}).groupby("g")["p"].nunique()
    leaked = [str(g).removeprefix("patient:") for g in per_group.index[per_group > 1]]
    if leaked:
        raise SchemaError(f"{len(leaked)} patient(s) appear in more than one {what}, e.g. {leaked[:5]}")

def _group_keys(manifest: pd.DataFrame) -> pd.Series:
    """One grouping key per row: the normalised patient id, or ``record:<record_id>`` when it is missing.

    Fallback for records without a patient id: each record is its own patient (``record:<id>``).
    That can leak a patient across splits when the source simply omitted the id, so the split logs
    a warning with the count (:attr:`SplitAudit.n_without_patient_id` reports it too).
    """
    pid = _normalized(manifest["patient_id"].astype("string"))
    # The prefixes keep a patient id that happens to equal some record id from merging with it.
    return ("patient:" + pid).fillna("record:" + manifest["record_id"].astype("string"))


def _group_keys_hash(manifest: pd.DataFrame) -> pd.Series:
    """Grouping keys of the hash split: as :func:`_group_keys`, but a record without a patient id is
    keyed by its source file (``source:<path>``), so its split does not depend on its record id
    (which another source scanned beside could change) -- unless the cohort is pseudonymised, where
    the path is hidden and the record id is content-derived, hence stable already."""
    pid = _normalized(manifest["patient_id"].astype("string"))
    src = manifest["source_path"].astype("string")
    hidden = src.str.startswith("<pseudonymized").fillna(True)
    fallback = ("source:" + src).where(~hidden, "record:" + manifest["record_id"].astype("string"))
    return ("patient:" + pid).fillna(fallback)


def id_collisions(manifest: pd.DataFrame) -> dict[str, list[str]]:
    """Patient ids that differ as written but are one id after :func:`normalize_patient_id`.

    Returns
    -------
    dict
        Normalised id -> the distinct raw spellings (2 or more), for the audit to report.
    """
    raw = manifest["patient_id"].dropna().astype(str).drop_duplicates()
    norm = raw.map(normalize_patient_id)
    groups = pd.DataFrame({"raw": raw.to_numpy(), "norm": norm.to_numpy()}).groupby("norm")["raw"]
    return {str(k): sorted(v) for k, v in groups if len(v) > 1}


def _hmac_unit(keys: Sequence[str], key: bytes) -> NDArray[np.float64]:
    """Map each string to a uniform number in [0, 1) with HMAC-SHA256 (first 8 bytes / 2**64)."""
    digests = b"".join(hmac.new(key, k.encode("utf-8"), hashlib.sha256).digest()[:8] for k in keys)
    return np.frombuffer(digests, dtype=">u8").astype(np.float64) / 2.0 ** 64


def patient_keys(manifest: pd.DataFrame, key: bytes | str | None = None) -> NDArray[np.object_]:
    """Pseudonymous per-row patient keys: hex HMAC-SHA256 (first 16 bytes) of the grouping key.

    Records without a patient id get a key of their own (from their record id). These keys, not the
    raw ids, go into shards, so patient identities stay in the manifest.

    Returns
    -------
    NDArray[object], shape (n_rows,)
        32-character lowercase hex strings.
    """
    k = DEFAULT_PATIENT_KEY if key is None else (key.encode() if isinstance(key, str) else key)
    groups = _group_keys(manifest).tolist()
    return np.array([hmac.new(k, g.encode("utf-8"), hashlib.sha256).hexdigest()[:32] for g in groups],
                    dtype=object)


def _check_ratios(ratios: Sequence[float]) -> NDArray[np.float64]:
    r = np.asarray(ratios, dtype=np.float64)
    if r.shape != (len(SPLITS),) or (r < 0).any() or not np.isfinite(r).all() or r.sum() <= 0:
        raise ConfigError(f"ratios must be three non-negative numbers (train, val, test), got {ratios!r}")
    return r / r.sum()


def _positive_matrix(frame: pd.DataFrame, labels: Sequence[str]) -> NDArray[np.int8]:
    """(n_rows, n_labels) int8, 1 where the label is positive; unknown (-1) and missing count as 0."""
    if not labels:
        return np.zeros((len(frame), 0), dtype=np.int8)
    values = frame[list(labels)].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy()
    return (values == 1).astype(np.int8)


def _iterative_stratification(
    weight: NDArray[np.int64], pos: NDArray[np.int64], ratios: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.int8]:
    """Assign groups to splits by iterative stratification (Sechidis et al. 2011, Algorithm 1).

    Parameters
    ----------
    weight : NDArray[int64], shape (G,)
        Records per group (patient).
    pos : NDArray[int64], shape (G, T)
        Positive records per group and label.
    ratios : NDArray[float64], shape (S,)
        Target fraction per split, summing to 1.

    Returns
    -------
    NDArray[int8], shape (G,)
        Split index per group.

    Notes
    -----
    The algorithm repeatedly takes the label with the fewest positive records among unassigned
    groups (the rarest labels are placed first, when there is still room to balance them) and gives
    each group carrying it to the split that most lacks that label, breaking ties by the split that
    most lacks records, then at random. Groups without any positive label are placed last, filling
    each split's remaining record deficit in a random order (vectorised). Demands are counted in
    records, so the record ratios hold even when patients have many records.
    """
    n_groups, n_labels = pos.shape
    split_of = np.full(n_groups, -1, dtype=np.int8)
    need = ratios * weight.sum()                       # (S,) records each split still lacks
    need_label = ratios[:, None] * pos.sum(axis=0)     # (S, T) positive records each split still lacks
    has = pos > 0
    remaining = has.sum(axis=0).astype(np.int64)       # (T,) unassigned groups carrying each label
    while n_labels and remaining.max(initial=0) > 0:
        candidates = np.flatnonzero(remaining > 0)
        label = int(candidates[np.argmin(remaining[candidates])])
        members = np.flatnonzero(has[:, label] & (split_of < 0))
        for g in rng.permutation(members):
            col = need_label[:, label]
            best = np.flatnonzero(col == col.max())
            if len(best) > 1:
                sub = need[best]
                best = best[sub == sub.max()]
            s = int(best[0] if len(best) == 1 else rng.choice(best))
            split_of[g] = s
            need[s] -= weight[g]
            need_label[s] -= pos[g]
            remaining -= has[g]
    rest = rng.permutation(np.flatnonzero(split_of < 0))
    if len(rest):
        # Fill the remaining record deficits in split order along one shuffled cumulative sum.
        deficit = np.clip(need, 0, None)
        total = weight[rest].sum()
        share = deficit / deficit.sum() if deficit.sum() > 0 else ratios
        bounds = np.cumsum(share * total)
        midpoints = np.cumsum(weight[rest]) - weight[rest] / 2.0
        split_of[rest] = np.minimum(np.searchsorted(bounds, midpoints, side="right"), len(ratios) - 1)
    return split_of


def split_by_patient(
    manifest: pd.DataFrame,
    *,
    ratios: Sequence[float] = (0.7, 0.1, 0.2),
    seed: int = 0,
    method: Literal["stratified", "hash"] = "stratified",
    labels: Sequence[str] | None = None,
    key: bytes | str | None = None,
) -> pd.DataFrame:
    """Assign every usable record to train/val/test, grouped by patient.

    Parameters
    ----------
    manifest : DataFrame
        A manifest (see :mod:`ecgkit.manifest`), optionally with int8 label columns (1, 0, -1 unknown).
    ratios : sequence of 3 floats
        Target record fractions of train, val and test (normalised to sum 1; ``(7, 1, 2)`` works).
    seed : int
        Seed of the stratified method (the hash method ignores it).
    method : {"stratified", "hash"}
        See the module docstring.
    labels : sequence of str or None
        Label columns to stratify on; default: the manifest's label columns (any vocabulary). With no
        label column, the stratified method is a grouped random split (logged).
    key : bytes or str or None
        HMAC key of the hash method; default :data:`DEFAULT_SPLIT_KEY`.

    Returns
    -------
    DataFrame
        A copy of the manifest with column ``split`` (string): ``"train"``, ``"val"`` or ``"test"``
        for rows with ``status == "ok"``, null for quarantined rows. An existing ``split`` column is
        replaced.

    Raises
    ------
    ConfigError
        On invalid ratios or method.
    SchemaError
        If an explicitly requested label column is missing.

    Examples
    --------
    >>> df = split_by_patient(manifest, ratios=(7, 1, 2), seed=0)  # doctest: +SKIP
    >>> df["split"].value_counts(normalize=True).round(2).to_dict()  # doctest: +SKIP
    {'train': 0.7, 'test': 0.2, 'val': 0.1}
    """
    r = _check_ratios(ratios)
    if method not in ("stratified", "hash"):
        raise ConfigError(f"split method must be 'stratified' or 'hash', got {method!r}")
    out = manifest.copy()
    ok = (out["status"] == STATUS_OK).to_numpy()
    frame = out.loc[ok]
    groups = _group_keys_hash(frame) if method == "hash" else _group_keys(frame)
    # sort=True: group numbering (and hence the seeded assignment) does not depend on row order.
    codes, uniques = pd.factorize(groups, sort=True)
    split_idx: NDArray[np.int8]
    if method == "hash":
        k = DEFAULT_SPLIT_KEY if key is None else (key.encode() if isinstance(key, str) else key)
        u = _hmac_unit([str(g) for g in uniques], k)
        group_split = np.minimum(np.searchsorted(np.cumsum(r), u, side="right"), len(SPLITS) - 1)
        split_idx = group_split.astype(np.int8)[codes]
    else:
        cols = label_columns(out, labels)
        if not cols:
            log.info("no label columns in the manifest: the stratified split is a grouped random split")
        weight = np.bincount(codes, minlength=len(uniques)).astype(np.int64)
        pos_rows = _positive_matrix(frame, cols)
        pos = np.zeros((len(uniques), len(cols)), dtype=np.int64)
        np.add.at(pos, codes, pos_rows)
        group_split = _iterative_stratification(weight, pos, r, np.random.default_rng(seed))
        split_idx = group_split[codes]
    split = pd.Series(pd.NA, index=out.index, dtype="string")
    split.loc[ok] = np.asarray(SPLITS, dtype=object)[split_idx]
    out["split"] = split
    n_no_pid = int(frame["patient_id"].isna().sum())
    if n_no_pid:
        log.warning("%d of %d records have no patient id: each is grouped as its own patient (records of one "
                    "patient without ids may land in different splits)", n_no_pid, len(frame))
    collisions = id_collisions(frame)
    if collisions:
        log.warning("%d patient id(s) are spelled several ways and grouped as one after normalisation, e.g. %s",
                    len(collisions), list(collisions.values())[:3])
    log.info("split %d records of %d patients (%s, ratios %s); %d records without patient id",
             len(frame), len(uniques), method, np.round(r, 3).tolist(), n_no_pid)
    return out


@dataclass(frozen=True)
class SplitAudit:
    """Result of :func:`audit`.

    Attributes
    ----------
    counts : dict split -> int
        Records per split (status ok).
    patients : dict split -> int
        Distinct patients per split (records without patient id count as their own patient).
    ratios : dict split -> float
        Record fraction per split.
    target : dict split -> float
        Target ratios (normalised).
    max_ratio_drift : float
        Largest ``|ratio - target|`` over splits.
    ratios_ok : bool
        ``max_ratio_drift <= tolerance``.
    prevalence : dict label -> dict split -> float
        Fraction of records with the label positive among those where it is known (not -1), per split
        and ``"all"``; NaN where no record has it known.
    leaked_patients : tuple of str
        Patients found in more than one split (raw ids; empty after a successful audit).
    n_without_patient_id : int
        Status-ok records without a patient id.
    n_quarantined : int
        Records with status quarantined (they carry no split).
    id_collisions : dict normalised id -> raw spellings
        Patient ids that are one id only after :func:`normalize_patient_id` (grouped as one).
    """

    counts: Mapping[str, int]
    patients: Mapping[str, int]
    ratios: Mapping[str, float]
    target: Mapping[str, float]
    max_ratio_drift: float
    ratios_ok: bool
    prevalence: Mapping[str, Mapping[str, float]]
    leaked_patients: tuple[str, ...]
    n_without_patient_id: int
    n_quarantined: int
    id_collisions: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        """A short multi-line text summary (counts, ratios, prevalence per split)."""
        lines = ["split   records  patients  ratio  target"]
        for s in SPLITS:
            lines.append(f"{s:<6} {self.counts[s]:>8} {self.patients[s]:>9}  "
                         f"{self.ratios[s]:.3f}  {self.target[s]:.3f}")
        lines.append(f"records without patient id: {self.n_without_patient_id} (each its own patient); "
                     f"quarantined: {self.n_quarantined}")
        if self.id_collisions:
            lines.append(f"patient ids grouped after normalisation: {len(self.id_collisions)} (e.g. "
                         + "; ".join(" = ".join(v) for v in list(self.id_collisions.values())[:3]) + ")")
        if self.prevalence:
            lines.append("prevalence %   " + "  ".join(f"{s:>6}" for s in (*SPLITS, "all")))
            for name, per in self.prevalence.items():
                lines.append(f"{name:<14} " + "  ".join(f"{100 * per[s]:6.2f}" for s in (*SPLITS, "all")))
        return "\n".join(lines)


def audit(
    manifest: pd.DataFrame,
    *,
    ratios: Sequence[float] | None = (0.7, 0.1, 0.2),
    tolerance: float = 0.02,
    labels: Sequence[str] | None = None,
) -> SplitAudit:
    """Check a split: no patient in two splits, every usable record split, ratios near the target.

    ``ratios=None`` skips the ratio check (the shard stage audits splits made with ratios it does
    not know). Only status-ok records are audited (a record quarantined by the shard stage keeps
    the split it was planned in, for the record, but is in no shard). Leakage and missing splits
    are errors. Ratio drift beyond ``tolerance`` is only logged as a warning (and reported in
    ``ratios_ok``): a tiny cohort, a cohort dominated by a few patients with many records, or a
    hash split of a small cohort cannot hit the ratios exactly, and that is not a correctness
    problem.

    Raises
    ------
    SchemaError
        If the manifest has no ``split`` column, a status-ok record has no (or an unknown) split, or
        a patient appears in more than one split (the message
        names up to 5 of them).
    """
    if "split" not in manifest.columns:
        raise SchemaError("manifest has no 'split' column; run `ecgkit split` first")
    ok = manifest["status"] == STATUS_OK
    frame = manifest.loc[ok]
    split = frame["split"].astype("string")
    bad = frame.loc[split.isna() | ~split.isin(SPLITS), "record_id"]
    if len(bad):
        raise SchemaError(f"{len(bad)} status-ok record(s) have no valid split, e.g. {bad.head(5).tolist()}")
    groups = _group_keys(frame)
    _refuse_leaks(groups, split, "split")
    n = max(len(frame), 1)
    counts = {s: int((split == s).sum()) for s in SPLITS}
    pats = {s: int(groups[(split == s).to_numpy()].nunique()) for s in SPLITS}
    got = {s: counts[s] / n for s in SPLITS}
    target = got if ratios is None else {s: float(t) for s, t in zip(SPLITS, _check_ratios(ratios))}
    drift = float(max(abs(got[s] - target[s]) for s in SPLITS)) if len(frame) else 0.0
    prevalence: dict[str, dict[str, float]] = {}
    for name in label_columns(manifest, labels):
        v = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        known = np.isfinite(v) & (v != -1)
        per: dict[str, float] = {}
        for s in (*SPLITS, "all"):
            m = known & ((split == s).to_numpy() if s != "all" else True)
            per[s] = float((v[m] == 1).mean()) if m.any() else float("nan")
        prevalence[name] = per
    result = SplitAudit(
        counts=counts, patients=pats, ratios=got, target=target, max_ratio_drift=drift,
        ratios_ok=drift <= tolerance, prevalence=prevalence, leaked_patients=(),
        n_without_patient_id=int(frame["patient_id"].isna().sum()), n_quarantined=int((~ok).sum()),
        id_collisions=id_collisions(frame),
    )
    if not result.ratios_ok:
        log.warning("split ratios %s drift %.3f from target %s (tolerance %.3f) over %d records",
                    {s: round(v, 3) for s, v in got.items()}, drift, target, tolerance, len(frame))
    return result


# --------------------------------------------------------------------------- patient-level k-fold

def split_kfold(
    manifest: pd.DataFrame,
    *,
    folds: int = 5,
    seed: int = 0,
    labels: Sequence[str] | None = None,
    test_fold: int = 0,
) -> pd.DataFrame:
    """Assign every usable record's patient to one of ``folds`` folds, stratified by labels.

    The same iterative stratification over patients as :func:`split_by_patient` (K equal shares
    instead of train/val/test), so each fold's prevalence of each label is close to the cohort's and
    no patient is in two folds. The ``split`` column is then set for ``test_fold`` by
    :func:`select_fold`: that fold is ``test``, the next one (cyclically) ``val``, the rest ``train``.

    Parameters
    ----------
    manifest : DataFrame
        A manifest, optionally with int8 label columns (1, 0, -1).
    folds : int
        K >= 3 (a train, a val and a test fold).
    seed : int
        Seed of the stratification.
    labels : sequence of str or None
        Label columns to stratify on (default: the ECG-P18 names present).
    test_fold : int
        Fold whose split columns are written (train every fold with :func:`select_fold`).

    Returns
    -------
    DataFrame
        A copy with ``fold`` (Int8, 0..K-1; null for quarantined rows) and ``split``.

    Raises
    ------
    ConfigError
        ``folds`` < 3 or ``test_fold`` out of range.
    """
    if int(folds) != folds or folds < 3:
        raise ConfigError(f"folds must be an integer >= 3 (train, val and test folds), got {folds!r}")
    out = manifest.copy()
    ok = (out["status"] == STATUS_OK).to_numpy()
    frame = out.loc[ok]
    codes, uniques = pd.factorize(_group_keys(frame), sort=True)  # row-order independent
    cols = label_columns(out, labels)
    weight = np.bincount(codes, minlength=len(uniques)).astype(np.int64)
    pos = np.zeros((len(uniques), len(cols)), dtype=np.int64)
    np.add.at(pos, codes, _positive_matrix(frame, cols))
    ratios = np.full(int(folds), 1.0 / folds)
    group_fold = _iterative_stratification(weight, pos, ratios, np.random.default_rng(seed))
    fold = pd.Series(pd.NA, index=out.index, dtype="Int8")
    fold.loc[ok] = group_fold[codes]
    out["fold"] = fold
    log.info("k-fold: %d records of %d patients in %d folds (seed %d)", len(frame), len(uniques), folds, seed)
    return select_fold(out, test_fold, folds=int(folds))


def select_fold(manifest: pd.DataFrame, test_fold: int, *, folds: int | None = None) -> pd.DataFrame:
    """Set ``split`` from ``fold``: ``test_fold`` -> test, the next fold -> val, the others -> train.

    Raises
    ------
    SchemaError
        No ``fold`` column (run :func:`split_kfold` first).
    ConfigError
        ``test_fold`` outside 0..K-1.
    """
    if "fold" not in manifest.columns:
        raise SchemaError("manifest has no 'fold' column; run `ecgkit split --method kfold` first")
    k = int(manifest["fold"].max()) + 1 if folds is None else int(folds)
    if int(test_fold) != test_fold or not 0 <= test_fold < k:
        raise ConfigError(f"test_fold must be in 0..{k - 1}, got {test_fold!r}")
    out = manifest.copy()
    fold = out["fold"].astype("Int8")
    split = pd.Series("train", index=out.index, dtype="string")
    split[fold == test_fold] = "test"
    split[fold == (test_fold + 1) % k] = "val"
    split[fold.isna()] = pd.NA
    out["split"] = split
    return out


@dataclass(frozen=True)
class FoldAudit:
    """Result of :func:`audit_folds`: records, patients and label prevalence per fold.

    ``leaked_patients`` is empty after a successful audit (a leak raises).
    """

    counts: Mapping[int, int]
    patients: Mapping[int, int]
    prevalence: Mapping[str, Mapping[int, float]]
    leaked_patients: tuple[str, ...]

    def summary(self) -> str:
        lines = ["fold  records  patients"]
        lines += [f"{f:>4} {self.counts[f]:>8} {self.patients[f]:>9}" for f in self.counts]
        for name, per in self.prevalence.items():
            lines.append(f"{name:<8} prevalence % " + " ".join(f"{100 * v:6.2f}" for v in per.values()))
        return "\n".join(lines)


def audit_folds(manifest: pd.DataFrame, *, labels: Sequence[str] | None = None) -> FoldAudit:
    """Check a k-fold assignment: every usable record in a fold, no patient in two folds.

    Raises
    ------
    SchemaError
        No ``fold`` column, a status-ok record without a fold, or patients in several folds (up to 5
        named).
    """
    if "fold" not in manifest.columns:
        raise SchemaError("manifest has no 'fold' column; run `ecgkit split --method kfold` first")
    frame = manifest.loc[manifest["status"] == STATUS_OK]
    fold = frame["fold"].astype("Int8")
    bad = frame.loc[fold.isna().to_numpy(), "record_id"]
    if len(bad):
        raise SchemaError(f"{len(bad)} status-ok record(s) have no fold, e.g. {bad.head(5).tolist()}")
    groups = _group_keys(frame)
    _refuse_leaks(groups, fold, "fold")
    ids = sorted(int(f) for f in fold.unique())
    f_arr = fold.to_numpy(dtype=np.int64)
    counts = {f: int((f_arr == f).sum()) for f in ids}
    pats = {f: int(groups[f_arr == f].nunique()) for f in ids}
    prevalence: dict[str, dict[int, float]] = {}
    for name in label_columns(manifest, labels):
        v = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        known = np.isfinite(v) & (v != -1)
        prevalence[name] = {f: float((v[known & (f_arr == f)] == 1).mean()) if (known & (f_arr == f)).any()
                            else float("nan") for f in ids}
    return FoldAudit(counts, pats, prevalence, ())  # a leak raised above
