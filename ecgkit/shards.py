"""Shard stage: the one pass over signals, into crash-safe HDF5 shards for training.

Layout of ``SHARDS_DIR``
------------------------
``{train,val,test}-NNNNN.h5``
    One shard of up to ``records_per_shard`` records of one split. Datasets:

    ==============  ===================  ==========================================================
    dataset         shape, dtype         meaning
    ==============  ===================  ==========================================================
    ``signal``      (N, 12, L) int16     ``value * scale_mv`` millivolts (attribute ``scale_mv``), or
                                         float16 millivolts; leads in :data:`ecgkit.record.LEADS`
                                         order; chunked (1, 12, L), uncompressed by default
    ``labels``      (N, T) int8          1 present, 0 absent, -1 unknown (label not in the source)
    ``record_id``   (N,) str             manifest record id
    ``patient_key`` (N,) str             keyed hash of the patient id (:func:`ecgkit.split.patient_keys`);
                                         never the raw id
    ==============  ===================  ==========================================================

    File attributes: ``fs``, ``seconds``, ``n_samples``, ``leads``, ``label_names``, ``dtype``,
    ``scale_mv``, ``units``, ``split``, ``shard``, ``ecgkit_version``, ``config`` (resolved
    :class:`ShardConfig` as JSON, secret key redacted), ``manifest_hash``, ``plan_hash``; with several
    cohorts (:mod:`ecgkit.multicohort`) also ``cohorts``: JSON ``{cohort: [labels it defines]}``.
``{shard}.h5.json``
    Sidecar written after the shard is complete: SHA-256 and size of the shard file, the plan hash,
    the record ids written, records quarantined with reasons, repairs per record.
``index.parquet``
    One row per record in a shard: ``record_id``, ``split``, ``shard``, ``row``, ``shard_sha256``,
    ``shard_bytes``, ``repairs``; with several cohorts also ``cohort`` and ``defined`` (per record, one
    bool per label in ``label_names`` order: its source defines the label; -1 labels where it does not).
``shard_summary.json``
    Counts of the last run: records, quarantined, shards kept from an earlier run and written, settings
    that changed since the run before.
``manifest.parquet``, ``quarantine.parquet``
    The input manifest with ``shard``/``row`` filled and this stage's quarantines; this stage's
    quarantine rows.

Layout choices (measured, see ``benchmarks/RESULTS_shards.md``): one record per chunk without
compression, because training reads random single records and HDF5 decompresses or caches whole
chunks (64-record chunks or lzf cut random reads 10-1000x). Readers open files with a small chunk
cache (:mod:`ecgkit.data`).

Crash safety: each shard is written as ``NAME.h5.tmp``, fsynced, renamed, then its sidecar is
written the same way. The plan (which record goes to which shard and row) is a pure function of
the manifest and config, so a rerun skips every shard whose sidecar matches the plan and whose
checksum verifies, and rewrites the rest: no duplicates, no lost records, damaged shards rewritten.

Quarantine rules at this stage (a record is never silently dropped): a :class:`~ecgkit.errors.RecordError`
from the reader (unreadable, truncated, missing leads, too short with ``short="reject"``); any
non-finite sample (filling it would be a silent repair); all 12 leads flat (no signal at all);
with int16 storage, a sample beyond the int16 range at ``scale_mv`` (it would clip).
Flat or clipped single leads are kept: they are scan's ``qc_flags``, and labels remain valid.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import dataclasses
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ecgkit import __version__
from ecgkit._deid import PSEUDONYMIZED_PATH, SOURCE_MAP_FILE, scrub_reason
from ecgkit._lock import atomic_write_bytes, atomic_write_text, disk_error, is_disk_error, output_lock
from ecgkit._names import escape_name, unescape_name
from ecgkit.engines import map_tasks
from ecgkit.errors import RecordError, SchemaError
from ecgkit.manifest import (STATUS_OK, STATUS_QUARANTINED, label_names, manifest_hash, write_manifest,
                             write_quarantine)
from ecgkit.preprocess import prepare_record
from ecgkit.record import LEADS
from ecgkit.shard_config import ShardConfig
from ecgkit.split import ECG_P18, SPLITS, audit, patient_keys

log = logging.getLogger(__name__)

INDEX_FILE = "index.parquet"
SIDECAR_SUFFIX = ".json"
SUMMARY_FILE = "shard_summary.json"
_HASH_BLOCK = 1 << 22


@dataclass(frozen=True)
class _ShardTask:
    path: str
    shard: str
    split: str
    record_ids: tuple[str, ...]
    source_paths: tuple[str, ...]
    labels: NDArray[np.int8]
    patient_keys: tuple[str, ...]
    plan_hash: str
    config: ShardConfig
    attrs: dict[str, Any]
    #: pseudonymised cohort: reasons must not name the file (its path is in the mapping file only)
    private: bool = False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_HASH_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(str(path) + SIDECAR_SUFFIX).read_text())
    except (OSError, ValueError):
        return None


def _shard_is_complete(path: Path, plan_hash: str) -> dict[str, Any] | None:
    """The sidecar of a complete shard that matches the plan and its checksum, else None."""
    side = _read_sidecar(path)
    if side is None or side.get("plan_hash") != plan_hash or not path.exists():
        return None
    if path.stat().st_size != side.get("bytes") or _sha256(path) != side.get("sha256"):
        log.warning("shard %s fails its checksum: rewriting it", path)
        return None
    return side


def _write_shard(task: _ShardTask) -> dict[str, Any]:
    """Read a shard's records, quarantine failures, write the shard atomically; return its sidecar.

    Runs in a worker: only the small sidecar dict goes back to the parent.
    """
    path = Path(task.path)
    existing = _shard_is_complete(path, task.plan_hash)
    if existing is not None:
        existing["skipped"] = True
        return existing
    cfg = task.config
    n, length = len(task.record_ids), cfg.n_samples
    buf = np.empty((n, len(LEADS), length), dtype=cfg.dtype)
    kept: list[int] = []
    quarantined: dict[str, str] = {}
    repairs: list[str] = []

    def _reason(text: str, src: str) -> str:
        return escape_name(scrub_reason(text, unescape_name(src)) if task.private else text)

    for i, (rid, src) in enumerate(zip(task.record_ids, task.source_paths)):
        try:  # the one preprocessing path, shared with `ecgkit predict` (ecgkit.preprocess)
            rec = prepare_record(unescape_name(src), buf[len(kept)], fs=cfg.fs, seconds=cfg.seconds,
                                 short=cfg.short, dtype=cfg.dtype, scale_mv=cfg.scale_mv, record_id=rid)
        except RecordError as exc:
            quarantined[rid] = _reason(f"shard: {exc}", src)
            continue
        except Exception as exc:  # noqa: BLE001 - one bad record never ends the stage
            quarantined[rid] = _reason(f"shard: record {rid} ({src}): reader failed with "
                                       f"{type(exc).__name__}: {str(exc)[:200]}", src)
            continue
        kept.append(i)
        repairs.append("; ".join(rec.repairs))
    rows = np.asarray(kept, dtype=np.int64)
    tmp = path.with_name(path.name + ".tmp")
    Path(str(path) + SIDECAR_SUFFIX).unlink(missing_ok=True)
    # Check the space first: HDF5 failing a flush on a full disk can crash the process outright
    # (measured: a segfault in h5py) instead of raising, so never let it get there.
    need = int(buf[: len(kept)].nbytes) + (1 << 20) + 64 * n
    free = shutil.disk_usage(path.parent).free
    if free < need:
        raise disk_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), tmp, need)
    try:
        _write_h5(tmp, task, buf, kept, rows, length)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_error(exc):
            raise disk_error(exc, tmp, need) from exc
        raise
    sidecar = {
        "shard": task.shard, "split": task.split, "sha256": _sha256(tmp), "bytes": tmp.stat().st_size,
        "plan_hash": task.plan_hash, "n_rows": len(kept), "n_planned": n,
        "record_ids": [task.record_ids[i] for i in kept], "repairs": repairs, "quarantined": quarantined,
    }
    os.replace(tmp, path)
    try:
        atomic_write_text(Path(str(path) + SIDECAR_SUFFIX), json.dumps(sidecar))
    except BaseException:
        path.unlink(missing_ok=True)  # a shard without its sidecar would be rewritten anyway
        raise
    _fsync_path(path.parent)
    sidecar["skipped"] = False
    return sidecar


def _write_h5(tmp: Path, task: _ShardTask, buf: NDArray[Any], kept: list[int], rows: NDArray[np.int64],
              length: int) -> None:
    cfg = task.config
    with h5py.File(tmp, "w") as f:
        f.create_dataset("signal", data=buf[: len(kept)], chunks=(1, len(LEADS), length) if kept else None,
                         compression=cfg.compression)
        f.create_dataset("labels", data=task.labels[rows].reshape(len(kept), task.labels.shape[1]))
        str_dt = h5py.string_dtype("utf-8")
        f.create_dataset("record_id", data=np.array([task.record_ids[i] for i in kept], dtype=object),
                         dtype=str_dt)
        f.create_dataset("patient_key", data=np.array([task.patient_keys[i] for i in kept], dtype=object),
                         dtype=str_dt)
        for key, value in task.attrs.items():
            f.attrs[key] = value
        f.attrs["split"] = task.split
        f.attrs["shard"] = task.shard
        f.attrs["plan_hash"] = task.plan_hash
    _fsync_path(tmp)


def _label_matrix(frame: pd.DataFrame, names: Sequence[str]) -> NDArray[np.int8]:
    """(n, T) int8 labels; columns missing from the manifest and nulls become -1 (unknown)."""
    out = np.full((len(frame), len(names)), -1, dtype=np.int8)
    for j, name in enumerate(names):
        if name in frame.columns:
            v = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            out[:, j] = np.where(np.isfinite(v), v, -1).astype(np.int8)
    return out


def require_split(manifest: pd.DataFrame) -> None:
    """Raise SchemaError unless the manifest has a ``split`` column (``ecgkit split`` writes it)."""
    if "split" not in manifest.columns:
        raise SchemaError("manifest has no 'split' column; run `ecgkit split` first")


def plan_shards(manifest: pd.DataFrame, config: ShardConfig) -> pd.DataFrame:
    """The deterministic shard plan: which record goes to which shard.

    Records with ``status == "ok"`` and a split are ordered by split (train, val, test) then
    ``record_id`` and cut into shards of ``records_per_shard``; the plan depends only on the set of
    records, not on the manifest's row order.

    Returns
    -------
    DataFrame
        Columns ``record_id``, ``source_path``, ``split``, ``shard`` (``"train-00000"``), with the
        manifest's index (so rows can be written back).

    Raises
    ------
    SchemaError
        If the manifest has no ``split`` column.
    """
    require_split(manifest)
    use = manifest.loc[(manifest["status"] == STATUS_OK) & manifest["split"].notna(),
                       ["record_id", "source_path", "split"]].copy()
    order = use["split"].map({s: i for i, s in enumerate(SPLITS)})
    use = use.assign(_o=order).sort_values(["_o", "record_id"], kind="stable").drop(columns="_o")
    pos = use.groupby("split", sort=False).cumcount().to_numpy()
    use["shard"] = [f"{s}-{p // config.records_per_shard:05d}" for s, p in zip(use["split"], pos)]
    return use


def _plan_hash(ids: Sequence[str], paths: Sequence[str], labels: NDArray[np.int8], keys: Sequence[str],
               config_json: str, mhash: str) -> str:
    h = hashlib.sha256()
    for part in ("\x1f".join(ids), "\x1f".join(paths), "\x1f".join(keys), config_json, mhash):
        h.update(part.encode("utf-8"))
        h.update(b"\x1e")
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()


def write_shards(
    manifest: pd.DataFrame,
    out_dir: str | Path,
    config: ShardConfig = ShardConfig(),
    *,
    progress: Callable[[int], None] | None = None,
    sources: Mapping[str, str] | None = None,
    cohort_labels: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Read every split record once and write HDF5 shards, the index and the updated manifest.

    Parameters
    ----------
    manifest : DataFrame
        Manifest with a ``split`` column (see :func:`ecgkit.split.split_by_patient`) and optional
        int8 label columns.
    out_dir : str or Path
        ``SHARDS_DIR``; created if needed. Rerunning into the same folder resumes: complete shards
        that match the plan and their checksums are kept.
    config : ShardConfig
        See :class:`ShardConfig`.
    progress : callable or None
        Called with the number of planned records of each finished shard (the CLI's progress bar).
    sources : mapping record_id -> source path, or None
        The files to read for a pseudonymised manifest, whose ``source_path`` is a placeholder
        (``IDENTIFIABLE_source_paths.parquet``, see :func:`read_source_map`). The outputs keep the
        placeholder, and quarantine reasons name no file.
    cohort_labels : mapping cohort -> labels it defines, or None
        For a manifest of several cohorts (:func:`ecgkit.multicohort.merge_cohorts`, with its
        ``cohort`` column): written to each shard's ``cohorts`` attribute (JSON) and, per record, to
        the index's ``cohort`` and ``defined`` (bool per label: does the record's source define it;
        -1 in ``labels`` where it does not).

    Returns
    -------
    DataFrame
        The manifest with columns ``shard`` (string, e.g. ``"train-00003"``; null when not in a shard)
        and ``row`` (Int64, row within the shard), and ``status``/``reason`` set for records
        quarantined here (they keep their ``split``).

    Raises
    ------
    SchemaError
        Before any work, if the manifest has no split, a patient is in two splits, or a status-ok
        record has no split (:func:`ecgkit.split.audit`); at the end, if records in != records in
        shards + records quarantined.
    """
    audit(manifest, ratios=None)  # fail fast on leakage or usable records without a split
    config = _resolve_labels(manifest, config)
    manifest, pre_quarantined = _apply_label_audit(manifest, config)
    out_dir = Path(out_dir)
    with output_lock(out_dir, "shard"):  # a second job on the same folder refuses (LockedError)
        return _write_shards_locked(manifest, out_dir, config, progress, sources, pre_quarantined,
                                    _check_cohorts(manifest, config, cohort_labels))


def _check_cohorts(manifest: pd.DataFrame, config: ShardConfig,
                   cohort_labels: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]] | None:
    """``cohort_labels`` checked against the manifest's ``cohort`` column and the shard labels."""
    if cohort_labels is None:
        return None
    from ecgkit.multicohort import COHORT_COLUMN

    out = {str(c): tuple(str(x) for x in labs) for c, labs in cohort_labels.items()}
    if COHORT_COLUMN not in manifest:
        raise SchemaError("cohort_labels given but the manifest has no 'cohort' column (use merge_cohorts)")
    missing = sorted(set(manifest[COHORT_COLUMN].dropna().astype(str)) - set(out))
    extra = sorted({x for labs in out.values() for x in labs} - set(config.label_names))
    if missing or extra:
        raise SchemaError(f"cohort_labels lacks cohort(s) {missing} or names labels {extra} the shards lack")
    return out


def read_source_map(cohort_dir: str | Path) -> dict[str, str] | None:
    """The record_id -> source path mapping of a pseudonymised cohort, or None when it is not one.

    Raises
    ------
    SchemaError
        If the manifest is pseudonymised but its mapping file is not in ``cohort_dir``.
    """
    path = Path(cohort_dir) / SOURCE_MAP_FILE
    if not path.exists():
        return None
    table = pq.read_table(path).to_pandas()
    return dict(zip(table["record_id"].astype(str), table["source_path"].astype(str)))


def _write_shards_locked(manifest: pd.DataFrame, out_dir: Path, config: ShardConfig,
                         progress: Callable[[int], None] | None,
                         sources: Mapping[str, str] | None,
                         pre_quarantined: NDArray[np.bool_] | None = None,
                         cohort_labels: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    names = config.label_names
    mhash = manifest_hash(manifest)
    plan = plan_shards(manifest, config)
    labels = _label_matrix(manifest.loc[plan.index], names)
    keys = patient_keys(manifest.loc[plan.index], config.patient_key)
    cfg_json = json.dumps(config.public_dict(), sort_keys=True)
    # in the plan hash: another cohort label set rewrites the shards
    plan_key = mhash if cohort_labels is None else mhash + json.dumps(cohort_labels, sort_keys=True)
    attrs = {
        "fs": float(config.fs), "seconds": float(config.seconds), "n_samples": config.n_samples,
        "leads": list(LEADS), "label_names": list(names), "dtype": config.dtype,
        "scale_mv": float(config.scale_mv) if config.dtype == "int16" else 1.0, "units": "mV",
        "ecgkit_version": __version__, "config": cfg_json, "manifest_hash": mhash,
        "label_audit": config.audit,
        **({} if cohort_labels is None else {"cohorts": json.dumps(cohort_labels)}),
        "min_quality": float("nan") if config.min_quality is None else float(config.min_quality),
    }
    tasks = []
    shard_codes, shard_names = pd.factorize(plan["shard"], sort=False)
    for k, shard in enumerate(shard_names):
        sel = np.flatnonzero(shard_codes == k)
        ids = tuple(plan["record_id"].iloc[sel])
        paths = tuple(plan["source_path"].iloc[sel])
        private = sources is not None or any(p == PSEUDONYMIZED_PATH for p in paths)
        if private:
            if sources is None or any(r not in sources for r in ids):
                raise SchemaError(f"the manifest is pseudonymised: its source paths are in {SOURCE_MAP_FILE}, "
                                  "which is missing or lacks records; copy it back into the cohort folder")
            read_paths = tuple(sources[r] for r in ids)
        else:
            read_paths = paths
        pkeys = tuple(keys[sel])
        lab = labels[sel]
        tasks.append(_ShardTask(
            path=str(out_dir / f"{shard}.h5"), shard=shard, split=str(plan["split"].iloc[sel[0]]),
            record_ids=ids, source_paths=read_paths, labels=lab, patient_keys=pkeys,
            plan_hash=_plan_hash(ids, paths, lab, pkeys, cfg_json, plan_key), config=config, attrs=attrs,
            private=private,
        ))
    previous = _read_summary(out_dir)
    _remove_stale(out_dir, {t.shard for t in tasks})
    start = time.perf_counter()
    sidecars: list[dict[str, Any]] = []
    for side in map_tasks(_write_shard, tasks, workers=config.workers, engine=config.engine,
                          scheduler=config.scheduler):
        sidecars.append(side)
        log.info("shard %s: %d rows, %d quarantined%s", side["shard"], side["n_rows"],
                 len(side["quarantined"]),
                 " (kept, checksum ok)" if side["skipped"] else "")
        if progress is not None:
            progress(int(side["n_planned"]))
    out = _finish(manifest, plan, sidecars, out_dir, pre_quarantined, cohort_labels, names)
    _write_summary(out_dir, out, plan, sidecars, config, previous, time.perf_counter() - start)
    return out


def _read_summary(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_summary(out_dir: Path, out: pd.DataFrame, plan: pd.DataFrame, sidecars: list[dict[str, Any]],
                   config: ShardConfig, previous: dict[str, Any] | None, seconds: float) -> None:
    """``SHARDS_DIR/shard_summary.json``: counts, what a resumed run kept and wrote, what changed."""
    kept = [s for s in sidecars if s["skipped"]]
    new_cfg = config.public_dict()
    changed = {}
    if previous is not None:
        old_cfg = previous.get("config", {})
        changed = {k: [old_cfg.get(k), v] for k, v in new_cfg.items() if k in old_cfg and old_cfg[k] != v}
    n_q = sum(len(s["quarantined"]) for s in sidecars)
    summary = {
        "ecgkit_version": __version__, "config": new_cfg, "records_planned": len(plan),
        "records": len(plan) - n_q, "quarantined": n_q,
        "quarantine_rate": n_q / len(plan) if len(plan) else 0.0,
        "shards": len(sidecars), "shards_kept": len(kept), "shards_written": len(sidecars) - len(kept),
        "records_kept": sum(int(s["n_planned"]) for s in kept),
        "records_written": sum(int(s["n_planned"]) for s in sidecars if not s["skipped"]),
        "resumed": previous is not None or bool(kept), "changed_settings": changed,
        "by_split": {str(k): int(v) for k, v in out["split"].where(out["shard"].notna()).value_counts().items()},
        "seconds": round(seconds, 3),
    }
    tmp = out_dir / (SUMMARY_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    os.replace(tmp, out_dir / SUMMARY_FILE)


def _resolve_labels(manifest: pd.DataFrame, config: ShardConfig) -> ShardConfig:
    """``config`` with its label names set: as given, else the manifest's label columns (the
    vocabulary it was labelled with), else, for an unlabelled cohort, ECG-P18 all unknown (-1)."""
    if config.labels is not None:
        return config
    names = label_names(manifest)
    if not names:
        log.warning("the manifest has no label columns (run `ecgkit label` first): the shards get the "
                    "18 ECG-P18 labels, all unknown (-1)")
        names = ECG_P18
    return dataclasses.replace(config, labels=tuple(names))


def _apply_label_audit(manifest: pd.DataFrame,
                       config: ShardConfig) -> tuple[pd.DataFrame, NDArray[np.bool_]]:
    """Apply ``config.audit`` and ``config.min_quality`` before planning.

    Returns the manifest (masked labels set to -1 and listed in ``audit_masked``; dropped and
    low-quality records quarantined with the reason) and the mask of records quarantined here.
    """
    pre = np.zeros(len(manifest), dtype=bool)
    if config.audit == "keep" and config.min_quality is None:
        return manifest, pre
    out = manifest.copy()
    ok = (out["status"] == STATUS_OK).to_numpy()
    reasons = pd.Series(pd.NA, index=out.index, dtype="string")
    if config.audit != "keep":
        if "audit_flags" not in out.columns:
            raise SchemaError("shard --audit mask|drop needs the manifest's audit_flags; "
                              "run `ecgkit audit` first")
        flagged = [list(v) if v is not None and len(v) else [] for v in out["audit_flags"]]
        if config.audit == "mask":
            masked: list[list[str]] = []
            for i, labs in enumerate(flagged):
                labs = [lab for lab in labs if lab in out.columns]
                for lab in labs:
                    out.iloc[i, out.columns.get_loc(lab)] = -1
                masked.append(labs)
            out["audit_masked"] = pd.Series(masked, index=out.index, dtype=object)
        else:
            for i, labs in enumerate(flagged):
                if labs and ok[i]:
                    reasons.iloc[i] = (f"shard: record {out['record_id'].iloc[i]}: audit contradicts "
                                       f"label(s) {', '.join(labs)} (--audit drop)")
    if config.min_quality is not None:
        if "quality" not in out.columns:
            raise SchemaError("shard --min-quality needs the manifest's quality; run `ecgkit measure` first")
        q = pd.to_numeric(out["quality"], errors="coerce").to_numpy(dtype=np.float64)
        low = ok & ~(q >= config.min_quality) & reasons.isna().to_numpy()
        for j in np.flatnonzero(low):
            i = int(j)
            why = "not measured" if not np.isfinite(q[i]) else f"{q[i]:.3f}"
            reasons.iloc[i] = (f"shard: record {out['record_id'].iloc[i]}: quality {why} below "
                               f"--min-quality {config.min_quality}")
    pre = ok & reasons.notna().to_numpy()
    out.loc[pre, "status"] = STATUS_QUARANTINED
    out.loc[pre, "reason"] = reasons[pre]
    return out, pre


def _remove_stale(out_dir: Path, planned: set[str]) -> None:
    """Delete temporary files and shards of earlier plans that this plan does not have."""
    for p in out_dir.glob("*.tmp"):
        p.unlink()
    for split in SPLITS:
        for p in out_dir.glob(f"{split}-*.h5"):
            if p.stem not in planned:
                log.info("removing shard %s of an earlier plan", p.name)
                p.unlink()
                Path(str(p) + SIDECAR_SUFFIX).unlink(missing_ok=True)


def _finish(manifest: pd.DataFrame, plan: pd.DataFrame, sidecars: list[dict[str, Any]],
            out_dir: Path, pre_quarantined: NDArray[np.bool_] | None = None,
            cohort_labels: dict[str, tuple[str, ...]] | None = None,
            names: Sequence[str] = ()) -> pd.DataFrame:
    """Build the index from the sidecars, check the accounting, write index, manifest, quarantine."""
    sidecars = sorted(sidecars, key=lambda s: s["shard"])
    index = pd.DataFrame({
        "record_id": [r for s in sidecars for r in s["record_ids"]],
        "split": [s["split"] for s in sidecars for _ in s["record_ids"]],
        "shard": [s["shard"] for s in sidecars for _ in s["record_ids"]],
        "row": np.concatenate([np.arange(s["n_rows"], dtype=np.int64) for s in sidecars]
                              or [np.zeros(0, np.int64)]),
        "shard_sha256": [s["sha256"] for s in sidecars for _ in s["record_ids"]],
        "shard_bytes": np.array([s["bytes"] for s in sidecars for _ in s["record_ids"]], dtype=np.int64),
        "repairs": [r for s in sidecars for r in s["repairs"]],
    })
    if cohort_labels is not None:
        from ecgkit.multicohort import COHORT_COLUMN, defined_mask

        by_id = pd.Series(manifest[COHORT_COLUMN].astype(str).to_numpy(),
                          index=manifest["record_id"].astype(str).to_numpy())
        cohort = by_id.loc[index["record_id"].astype(str).to_numpy()].to_numpy()
        index[COHORT_COLUMN] = cohort
        index["defined"] = list(defined_mask(cohort, cohort_labels, list(names)))
    quarantined = {rid: reason for s in sidecars for rid, reason in s["quarantined"].items()}
    n_in = len(plan)
    dup = index["record_id"][index["record_id"].duplicated()]
    in_both = set(quarantined) & set(index["record_id"])
    if len(dup) or in_both or n_in != len(index) + len(quarantined) \
            or set(plan["record_id"]) != set(index["record_id"]) | set(quarantined):
        raise SchemaError(
            f"shard accounting failed in {out_dir}: {n_in} records planned, {len(index)} in shards, "
            f"{len(quarantined)} quarantined, duplicates {dup.head(5).tolist()}, "
            f"in both {sorted(in_both)[:5]}")
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(index, preserve_index=False), sink)
    atomic_write_bytes(out_dir / INDEX_FILE, sink.getvalue().to_pybytes())

    out = manifest.copy()
    pos = pd.Series(np.arange(len(out)), index=out["record_id"].to_numpy())
    shard_col = pd.Series(pd.NA, index=out.index, dtype="string")
    row_col = pd.Series(pd.NA, index=out.index, dtype="Int64")
    at = pos.loc[index["record_id"].to_numpy()].to_numpy()
    shard_col.iloc[at] = index["shard"].to_numpy()
    row_col.iloc[at] = index["row"].to_numpy()
    out["shard"] = shard_col
    out["row"] = row_col
    newly = pd.Series(False if pre_quarantined is None else pre_quarantined, index=out.index)
    if quarantined:
        qat = pos.loc[list(quarantined)].to_numpy()
        out.loc[out.index[qat], "status"] = STATUS_QUARANTINED
        out.loc[out.index[qat], "reason"] = list(quarantined.values())
        newly.iloc[qat] = True
    write_manifest(out, out_dir)
    write_quarantine(out.loc[newly], out_dir, "shard")
    audit(out, ratios=None)
    n_skipped = sum(bool(s["skipped"]) for s in sidecars)
    log.info("shards: %d records in %d shards (%d kept from an earlier run), %d quarantined, in %s",
             len(index), len(sidecars), n_skipped, len(quarantined), out_dir)
    return out


def read_index(shards_dir: str | Path) -> pd.DataFrame:
    """Read ``SHARDS_DIR/index.parquet``.

    Raises
    ------
    SchemaError
        If there is no index (the shard stage has not completed there).
    """
    path = Path(shards_dir) / INDEX_FILE
    if not path.exists():
        raise SchemaError(f"no shard index at {path}; run `ecgkit shard` first")
    return pq.read_table(path).to_pandas()


def verify_shards(shards_dir: str | Path) -> list[str]:
    """Check every shard listed in the index against its SHA-256; return the damaged or missing ones."""
    shards_dir = Path(shards_dir)
    index = read_index(shards_dir)
    expected = index.groupby("shard")["shard_sha256"].first()
    bad = []
    for shard, sha in expected.items():
        path = shards_dir / f"{shard}.h5"
        if not path.exists() or _sha256(path) != sha:
            bad.append(str(shard))
    return bad


__all__ = ["ShardConfig", "write_shards", "plan_shards", "read_index", "verify_shards", "read_source_map"]
