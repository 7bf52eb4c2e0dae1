"""The scan stage on an engine (local pool or Dask): each task writes its manifest part, the parent concatenates.

:func:`ecgkit.ingest.scan` gathers every row in the parent, which is right for a laptop but makes the
parent's memory grow with the archive. :func:`scan_to_dir` hands chunks of record candidates to
:func:`ecgkit.engines.map_tasks` (``engine="dask"`` runs them on a ``dask.distributed`` cluster, the
same engine ``shard`` uses); each task reads its records, joins PTB-XL metadata and pseudonymises
its own rows, and writes ``OUT/parts/part-NNNNN.parquet``. The parent keeps only per-task counts
and the quarantined rows, then streams the parts into ``OUT/manifest.parquet`` one at a time.

With Dask on several machines, the sources and ``OUT`` must be visible to every worker at the same
paths (a shared file system).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgkit.engines import Engine, map_tasks
from ecgkit._deid import PSEUDONYMIZED_PATH, SKIPPED_MAP_FILE, SOURCE_MAP_FILE
from ecgkit._lock import atomic_write_text
from ecgkit._ptbxl_db import _join_ptbxl, _ptbxl_databases
from ecgkit.ingest import ScanConfig, _Candidate, _pseudonymize, _read_chunk, _walk, _warm_readers, skipped_by_reason
from ecgkit.manifest import COLUMNS, MANIFEST_FILE, STATUS_QUARANTINED, conform, write_manifest, write_quarantine

logger = logging.getLogger(__name__)

PARTS_DIR = "parts"


@dataclass(frozen=True)
class _PartTask:
    index: int
    candidates: tuple[_Candidate, ...]
    out: str
    databases: tuple[str, ...]
    key: str | None
    strict_integrity: bool = False


def _scan_part(task: _PartTask) -> dict[str, Any]:
    """Read one chunk of records and write its manifest part; return counts and quarantined rows."""
    rows = _read_chunk(list(task.candidates), task.strict_integrity, task.key)
    identifiers = [r.pop("_identifiers", []) for r in rows]  # for scrubbing only, never stored
    df = conform(rows)
    if task.databases:
        df = _join_ptbxl(df, [Path(d) for d in task.databases])
    if task.key:
        df = _pseudonymize(df, identifiers, task.key)
        # the paths go to this part's identifiable mapping only
        pq.write_table(pa.table({"record_id": df["record_id"].astype(str).tolist(),
                                 "source_path": df["source_path"].astype(str).tolist()}),
                       task.out.replace(".parquet", ".map.parquet"))
        df["source_path"] = PSEUDONYMIZED_PATH
    write_manifest(df, task.out)
    bad = df.loc[df["status"] == STATUS_QUARANTINED, ["record_id", "source_path", "status", "reason"]]
    return {"part": task.out, "records": len(df), "quarantined": bad.to_dict("records")}


def _concat_parts(parts: Sequence[str], path: Path) -> int:
    """Stream the parts into one Parquet file (one part in memory at a time); return the row count."""
    schema = pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in COLUMNS])
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for part in parts:
            table = pq.read_table(part).select([c.name for c in COLUMNS]).cast(schema)
            writer.write_table(table)
            n += table.num_rows
    os.replace(tmp, path)
    return n


def scan_to_dir(
    paths: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    config: ScanConfig | None = None,
    *,
    engine: Engine = "local",
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Scan sources into ``OUT/manifest.parquet`` (+ ``quarantine.parquet``, ``skipped_files.csv``) by parts.

    Parameters
    ----------
    paths : path or sequence of paths
        Files and folders to scan.
    out_dir : path
        Cohort directory; ``parts/`` is written inside and removed once concatenated.
    config : ScanConfig
        ``workers`` (local processes or local Dask workers), ``chunk_size`` (records per task),
        pseudonymisation key, PTB-XL join.
    engine : {"local", "dask"}
        Where the tasks run (see :func:`ecgkit.engines.map_tasks`).
    scheduler : str or None
        Dask scheduler address; ``None`` starts a local Dask cluster.
    progress : callable(ok, quarantined) or None
        Called after each task with its counts.

    Returns
    -------
    dict
        ``records``, ``ok``, ``quarantined``, ``quarantine_rate``, ``skipped_files``,
        ``skipped_by_reason``, ``parts``, ``seconds``, ``records_per_s``, ``engine``.
    """
    config = config or ScanConfig()
    start = time.perf_counter()
    out = Path(out_dir)
    parts_dir = out / PARTS_DIR
    if parts_dir.is_dir():  # parts of a killed earlier run (the CLI holds the folder's lock): start afresh
        for stale in parts_dir.iterdir():
            stale.unlink()
    parts_dir.mkdir(parents=True, exist_ok=True)
    sources = [paths] if isinstance(paths, (str, Path)) else list(paths)
    candidates, skipped = _walk(sources, follow_external=config.follow_external_symlinks)
    databases = tuple(str(p) for p in _ptbxl_databases((c.root for c in candidates), skipped)) \
        if config.join_ptbxl else ()
    size = max(1, config.chunk_size)
    tasks = [_PartTask(i, tuple(candidates[k:k + size]), str(parts_dir / f"part-{i:05d}.parquet"), databases,
                       config.pseudonymize_key, config.strict_integrity)
             for i, k in enumerate(range(0, len(candidates), size))]
    if engine == "local" and config.workers != 1:
        _warm_readers(candidates)  # forked workers inherit the imports and the loaded decode kernels
    quarantined: list[dict[str, Any]] = []
    done: list[tuple[int, str]] = []
    n_records = 0
    for result in map_tasks(_scan_part, tasks, workers=config.workers, engine=engine, scheduler=scheduler):
        n_records += result["records"]
        quarantined.extend(result["quarantined"])
        done.append((int(Path(result["part"]).stem.split("-")[1]), result["part"]))
        if progress is not None:
            progress(result["records"] - len(result["quarantined"]), len(result["quarantined"]))
    ordered = [p for _, p in sorted(done)]  # path order, whatever order the tasks finished in
    manifest = out / MANIFEST_FILE
    if ordered:
        _concat_parts(ordered, manifest)
    else:
        write_manifest(conform(pd.DataFrame(columns=["record_id"])), manifest)
    skipped_csv = pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(index=False)
    if config.pseudonymize_key:
        maps = [p.replace(".parquet", ".map.parquet") for p in ordered]
        mapping = pa.concat_tables([pq.read_table(m) for m in maps]) if maps else \
            pa.table({"record_id": pa.array([], pa.string()), "source_path": pa.array([], pa.string())})
        pq.write_table(mapping, out / SOURCE_MAP_FILE)
        for m in maps:
            os.remove(m)
        atomic_write_text(out / SKIPPED_MAP_FILE, skipped_csv)
        skipped_csv = pd.DataFrame({"reason": [s["reason"] for s in skipped]}).to_csv(index=False)
    for p in ordered:
        os.remove(p)
    parts_dir.rmdir()
    write_quarantine(pd.DataFrame(quarantined, columns=["record_id", "source_path", "status", "reason"]), out, "scan")
    atomic_write_text(out / "skipped_files.csv", skipped_csv)
    seconds = time.perf_counter() - start
    n_q = len(quarantined)
    return {
        "records": n_records, "ok": n_records - n_q, "quarantined": n_q,
        "quarantine_rate": n_q / n_records if n_records else 0.0,
        "skipped_files": len(skipped), "skipped_by_reason": skipped_by_reason(skipped),
        "parts": len(ordered), "seconds": round(seconds, 3),
        "records_per_s": round(n_records / seconds, 1) if seconds > 0 else None, "engine": engine,
    }


__all__ = ["scan_to_dir"]
