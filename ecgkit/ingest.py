"""The ingest stage (``ecgkit scan``): walk sources, read every record once, write the cohort manifest.

``scan`` reads each record's metadata, statements and signal (to validate it and compute QC
flags), and returns one manifest row per record with ``status`` and ``reason``. Records that fail to
read are quarantined with the reason, never dropped; files that are not records (sidecars, metadata
tables, documentation) are listed in ``skipped`` with what they are.

A PTB-XL tree as PhysioNet ships it (``ptbxl_database.csv`` beside ``records500/``, anywhere under
a scanned folder or just above it) is joined with its CSV: ``patient_id``, the free-text ``report``
as a statement, ``scp_codes``, age, sex and recording date; ``validated_by_human`` gives the record's
``report_status`` (confirmed / unconfirmed), which ``ecgkit label`` reports and ``--unconfirmed`` acts on
(the join: :mod:`ecgkit._ptbxl_db`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import stat
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ecgkit._deid import (PSEUDONYMIZED_PATH, SKIPPED_MAP_FILE, SOURCE_MAP_FILE, content_record_id, scrub_reason,
                          scrub_statements)
from ecgkit._names import escape_name
from ecgkit._ptbxl_db import PTBXL_DATABASE, _join_ptbxl, _ptbxl_databases
from ecgkit._procs import worker_init
from ecgkit.errors import ConfigError, DataError, RecordError
from ecgkit.io import read_native
from ecgkit.io._limits import excerpt
from ecgkit.io.detect import ANNOTATION_SUFFIXES, WFDB_SIGNAL_SUFFIXES, detect_format, skip_reason
from ecgkit.manifest import STATUS_OK, STATUS_QUARANTINED, conform

logger = logging.getLogger(__name__)

#: files ``scan(..., out_dir=)`` writes beside the manifest
SKIPPED_FILE = "skipped_files.csv"
SUMMARY_FILE = "scan_summary.json"

# The skip rules (which files are not records) live in one place: ecgkit.io.detect.
_WFDB_SIGNAL = WFDB_SIGNAL_SUFFIXES
_MAX_HEADER_SCAN = 1 << 20  # bytes of a header read to list the files it names
#: longest reason kept in the manifest (the message names the record, the file and the problem)
MAX_REASON_CHARS = 600


@dataclass(frozen=True)
class ScanConfig:
    """Configuration of the scan stage."""

    #: worker processes; 1 reads in this process (deterministic, easiest to debug)
    workers: int = 1
    #: keyed-hash pseudonymisation of patient_id; the key itself is never stored anywhere
    pseudonymize_key: str | None = field(default=None, repr=False)
    #: join PTB-XL's ptbxl_database.csv when it sits at a scanned root
    join_ptbxl: bool = True
    #: fail the batch job (non-zero exit) above this quarantined fraction; hospital exports
    #: usually have well under 1% bad files, so 5% means something systematic is wrong
    max_quarantine_rate: float = 0.05
    #: records handed to a worker at a time; large enough to amortise process overhead
    chunk_size: int = 64
    #: read symlinks whose target lies outside the scanned folder; off: a link planted in an
    #: archive must not make ecgkit read (and copy into shards) files from elsewhere
    follow_external_symlinks: bool = False
    #: quarantine records whose source checksums (WFDB header checksums, MUSE LeadDataCRC32)
    #: do not match; off: a mismatch is only a ``integrity:...`` QC flag, because exports edited
    #: by tools that do not update checksums are common and their signals are usually fine
    strict_integrity: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if not 0 <= self.max_quarantine_rate <= 1:
            raise ConfigError(f"max_quarantine_rate must be in [0, 1], got {self.max_quarantine_rate}")


@dataclass(frozen=True)
class _Candidate:
    path: str
    record_id: str
    root: str


# De-identification placeholders that exports write instead of a real patient id ("removed",
# "xxxxxx", "anonymous", ...). Taken as ids they would join unrelated patients into one, so a
# patient-level split would group them; they become null (each record its own patient).
_PLACEHOLDER_ID = re.compile(r"^\s*(?:|[x*?#0-]+|removed|anonym(?:ous|ized|ised)?|unknown|n/?a|none|null|"
                             r"deidentified|de-identified|redacted)\s*$", re.IGNORECASE)


def is_placeholder_id(patient_id: str | None) -> bool:
    """Whether a patient id is a de-identification placeholder rather than an id."""
    return patient_id is None or bool(_PLACEHOLDER_ID.match(patient_id))


def pseudonymize(patient_id: str, key: str) -> str:
    """Keyed hash (HMAC-SHA256, 20 hex characters) of a patient id; stable for a key, not reversible."""
    return hmac.new(key.encode(), patient_id.encode(), hashlib.sha256).hexdigest()[:20]


def _wfdb_referenced_files(headers: list[str]) -> tuple[set[str], set[str]]:
    """Files named by WFDB headers, from their signal lines only.

    Returns the headers and the signal files they name, and separately the segment headers
    named by multi-segment records (read through their master header, not as records).
    """
    out: set[str] = set()
    segments: set[str] = set()
    for hea in headers:
        out.add(hea)
        folder = os.path.dirname(hea)
        try:
            with open(hea, "rb") as fh:  # the walker passed regular files only; the reader bounds the rest
                text = fh.read(_MAX_HEADER_SCAN).decode("utf-8", errors="replace")
        except OSError:
            continue
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        multi = bool(lines) and "/" in lines[0].split()[0]
        for ln in lines[1:]:
            name = ln.split()[0]
            if multi:
                if name != "~":  # "~" is a gap segment
                    segments.add(os.path.join(folder, name + ".hea"))
            else:
                out.add(os.path.join(folder, name))
    return out, segments


def _wfdb_sidecars(files: list[str]) -> tuple[set[str], set[str]]:
    """Headers and the files they name, and multi-segment segment headers, folder by folder.

    A folder where every header has a signal file of the same stem (PTB-XL, the Challenge sets,
    most PhysioNet databases) needs no header read: its signal files are those same-stem files.
    Other folders (a multi-segment master has no signal file of its own; a header may name a
    signal file of another name) have their headers read. This keeps the serial part of a scan
    from opening every header twice.
    """
    by_folder: dict[str, list[str]] = {}
    for p in files:
        by_folder.setdefault(os.path.dirname(p), []).append(p)
    referenced: set[str] = set()
    segments: set[str] = set()
    for folder_files in by_folder.values():
        headers = [p for p in folder_files if p.lower().endswith(".hea")]
        if not headers:
            continue
        signal_stems = {os.path.splitext(p)[0] for p in folder_files
                        if os.path.splitext(p)[1].lower() in _WFDB_SIGNAL}
        if all(os.path.splitext(h)[0] in signal_stems for h in headers):
            header_stems = {os.path.splitext(h)[0] for h in headers}
            referenced.update(headers)
            referenced.update(p for p in folder_files if os.path.splitext(p)[1].lower() in _WFDB_SIGNAL
                              and os.path.splitext(p)[0] in header_stems)
        else:
            ref, seg = _wfdb_referenced_files(headers)
            referenced |= ref
            segments |= seg
    return referenced, segments


def _list_files(folder: str, skipped: list[dict[str, str]], *, follow_external: bool = False) -> list[str]:
    """Every regular file under ``folder``, in path order; everything else goes to ``skipped``.

    Only regular files are record candidates: FIFOs, sockets and devices would block or never end
    a read, so they are skipped and counted without being opened. Symlinks to folders are not
    followed (a loop could never end); symlinks to files are kept when their target is a regular
    file inside the scanned folder (or anywhere, with ``follow_external``). ``os.scandir`` gives
    the entry type without a ``stat`` call for plain files, so the filter costs nothing on them.
    """
    out: list[str] = []
    real_root = os.path.realpath(folder)
    stack = [folder]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError as exc:
            skipped.append({"path": d, "reason": f"folder cannot be listed: {exc.strerror}"})
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    out.append(e.path)
                elif e.is_symlink():
                    reason = _symlink_problem(e.path, real_root, follow_external)
                    if reason is None:
                        out.append(e.path)
                    else:
                        skipped.append({"path": e.path, "reason": reason})
                else:
                    skipped.append({"path": e.path, "reason": "not a regular file (FIFO, socket or device): "
                                                               "never opened"})
            except OSError as exc:
                skipped.append({"path": e.path, "reason": f"cannot be examined: {exc.strerror}"})
    out.sort(key=lambda s: s.split(os.sep))
    return out


def _symlink_problem(path: str, real_root: str, follow_external: bool) -> str | None:
    """Why a symlink is not a record candidate, or ``None`` when it may be read."""
    try:
        st = os.stat(path)
    except OSError:
        return "broken symlink or symlink loop"
    if stat.S_ISDIR(st.st_mode):
        return "symlink to a folder: not followed"
    if not stat.S_ISREG(st.st_mode):
        return "symlink to a FIFO, socket or device: never opened"
    target = os.path.realpath(path)
    if not follow_external and not _inside(target, real_root):
        return "symlink to a file outside the scanned folder: not read (allow with follow_external_symlinks)"
    return None


def _inside(path: str, folder: str) -> bool:
    """Whether the resolved ``path`` lies in the resolved ``folder`` (a prefix check on whole components)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _classify(p: str, referenced: set[str], segments: set[str], stems: set[str]) -> str | None:
    """Why a file is not a record candidate, or ``None`` if it is one (see :func:`ecgkit.io.detect.skip_reason`)."""
    return skip_reason(p, referenced, segments, stems, database_tables=frozenset({PTBXL_DATABASE}))


def _walk(sources: Sequence[str | Path], *, follow_external: bool = False
          ) -> tuple[list[_Candidate], list[dict[str, str]]]:
    """Find record candidates under each source; return them and the skipped files with reasons."""
    candidates: list[_Candidate] = []
    skipped: list[dict[str, str]] = []
    for src in sources:
        # absolute: the manifest's source_path must work from any working directory
        src = os.path.abspath(str(src))
        if os.path.isdir(src):
            files, root, is_dir = _list_files(src, skipped, follow_external=follow_external), src, True
        elif os.path.exists(src):
            st = os.stat(src)
            if not stat.S_ISREG(st.st_mode):
                skipped.append({"path": src, "reason": "not a regular file (FIFO, socket or device): never opened"})
                continue
            files, root, is_dir = [src], os.path.dirname(src), False
        else:
            skipped.append({"path": src, "reason": "does not exist"})
            continue
        referenced, segments = _wfdb_sidecars(files)
        stems = {os.path.splitext(p)[0] for p in files if os.path.splitext(p)[1].lower() not in ANNOTATION_SUFFIXES}
        for p in files:
            reason = _classify(p, referenced, segments, stems)
            if reason is not None:
                skipped.append({"path": p, "reason": reason})
                continue
            if is_dir:
                rel = os.path.splitext(os.path.relpath(p, root))[0].replace(os.sep, "/")
            else:
                rel = os.path.splitext(os.path.basename(p))[0]
            candidates.append(_Candidate(p, escape_name(rel), root))
    # Record ids must be unique across sources. The first source (in the order given) keeps its
    # plain ids; a later source's id that collides gets its root folder's name as a prefix. So
    # scanning another source beside (after) an archive never changes the archive's ids, which a
    # hash split or a resumed shard stage rely on.
    taken: set[str] = set()
    out = []
    for c in candidates:
        rid = c.record_id
        if rid in taken:
            rid = f"{escape_name(Path(c.root).name)}/{c.record_id}"
            n = 1
            while rid in taken:
                n += 1
                rid = f"{escape_name(Path(c.root).name)}/{c.record_id}#{n}"
        taken.add(rid)
        out.append(_Candidate(c.path, rid, c.root))
    return out, skipped


def sanitize_reason(text: str) -> str:
    """A quarantine reason safe to store and print: escaped names, no control characters, bounded."""
    text = escape_name(text)
    if len(text) > MAX_REASON_CHARS:
        text = text[:MAX_REASON_CHARS] + "..."
    return text


def _read_row(cand: _Candidate, strict_integrity: bool = False, key: str | None = None) -> dict[str, Any]:
    """Read one candidate into a manifest row; any failure of this one record becomes a quarantined row.

    Every exception raised while reading the record is caught, not only :class:`RecordError`: one
    bad file must never end a scan of a million (a reader bug or a library's ``MemoryError`` on a
    hostile length field is reported with its type and message, and the scan goes on).

    With a pseudonymisation ``key`` the record id is derived from the file's content
    (:func:`ecgkit._deid.content_record_id`), reasons carry no path or file name, and the names the
    file holds travel in the private ``_identifiers`` entry (popped by :func:`scan`, never stored).
    """
    rid = cand.record_id if key is None else content_record_id(cand.path, key)
    row: dict[str, Any] = {"record_id": rid, "source_path": escape_name(cand.path)}

    def _reason(text: str) -> str:
        return sanitize_reason(text if key is None else scrub_reason(text, cand.path))

    try:
        fmt = detect_format(cand.path)
    except RecordError as exc:
        # a file that is no known format: its content is nobody's business, quote at most a little
        row.update(status=STATUS_QUARANTINED,
                   reason=_reason(f"record {rid} ({cand.path}): {excerpt(exc.problem, 200)}"))
        return row
    except Exception as exc:  # noqa: BLE001 - see the docstring
        row.update(status=STATUS_QUARANTINED,
                   reason=_reason(f"record {rid} ({cand.path}): format detection failed with {type(exc).__name__}"))
        return row
    row["source_format"] = fmt
    try:
        rec = read_native(cand.path, record_id=rid, fmt=fmt)
    except RecordError as exc:
        row.update(status=STATUS_QUARANTINED, reason=_reason(str(exc)))
        return row
    except Exception as exc:  # noqa: BLE001 - see the docstring: quarantine, report, go on
        logger.debug("reading %s failed", escape_name(cand.path), exc_info=True)
        row.update(status=STATUS_QUARANTINED,
                   reason=_reason(f"record {rid} ({cand.path}): reader failed with "
                                  f"{type(exc).__name__}: {excerpt(str(exc), 200)}"))
        return row
    integrity = [f for f in (rec.qc_flags or ()) if f.startswith("integrity:")]
    if strict_integrity and integrity:
        row.update(status=STATUS_QUARANTINED,
                   reason=_reason(f"record {rid} ({cand.path}): source integrity check "
                                  f"failed ({', '.join(integrity)}) and strict_integrity is on"))
        return row
    if key is not None:
        row["_identifiers"] = [rec.patient_id]  # names never leave the reader (it removed them itself)
    row.update(
        patient_id=None if is_placeholder_id(rec.patient_id) else rec.patient_id,
        fs=float(rec.fs),
        n_samples=rec.n_samples,
        duration_s=rec.duration_s,
        leads=list(rec.leads),
        native_leads=list(rec.native_leads),
        statements=list(rec.statements),
        codes=json.dumps(dict(rec.codes), sort_keys=True) if rec.codes else None,
        acquired_at=rec.acquired_at,
        age=rec.age,
        sex=rec.sex,
        qc_flags=list(rec.qc_flags or ()) + [f"repair:{r}" for r in rec.repairs],
        status=STATUS_OK,
        reason=None,
    )
    return row


def _warm_readers(candidates: list[_Candidate]) -> None:
    """Import the readers and load the compiled decode kernel before the pool starts.

    Forked workers inherit them; otherwise each worker spends ~0.5 s importing wfdb/numba and
    loading the kernel, which is most of a small scan's time and hides the second core.
    """
    if any(c.path.lower().endswith(".hea") for c in candidates):
        from ecgkit.io._decode import decode_int16
        from ecgkit.io.wfdb import read_wfdb  # noqa: F401

        one = np.zeros((1, 1), dtype=np.int16)
        decode_int16(one, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.float32),
                     np.ones(1, dtype=np.float32), np.zeros(1, dtype=np.int64))
    if any(c.path.lower().endswith(".xml") for c in candidates):
        from ecgkit.io.muse import read_muse  # noqa: F401
    if any(c.path.lower().endswith(".scp") for c in candidates):
        from ecgkit.io._scp_huffman import decode_huffman, default_tables

        decode_huffman(b"\x00", 1, default_tables())  # loads the cached Huffman kernel


def _read_chunk(cands: list[_Candidate], strict_integrity: bool = False,
                key: str | None = None) -> list[dict[str, Any]]:
    return [_read_row(c, strict_integrity, key) for c in cands]


def scan(
    paths: str | Path | Sequence[str | Path],
    config: ScanConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    skipped: list[dict[str, str]] | None = None,
    out_dir: str | Path | None = None,
    total: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Scan files and folders of ECG records into a manifest.

    Parameters
    ----------
    paths : path or sequence of paths
        Files and folders; folders are walked recursively.
    config : ScanConfig
        Workers, pseudonymisation key, PTB-XL join.
    progress : callable(ok, quarantined) or None
        Called after each chunk with the counts of that chunk (the CLI drives its progress bar
        with it).
    skipped : list, optional
        Receives one ``{"path", "reason"}`` dict per file that is not a record (signal sidecars,
        tables, documentation, archives). Kept out of the DataFrame: pandas deep-copies ``attrs`` on
        nearly every operation, and a 300,000-record WFDB archive has 300,000 sidecars (measured:
        a manifest carrying that list took minutes per column access at that size).
    out_dir : path, optional
        Cohort folder to write what ``ecgkit scan --out`` writes: ``manifest.parquet``,
        ``quarantine.parquet``, ``skipped_files.csv`` (path, reason) and ``scan_summary.json``
        (:func:`scan_summary`). Nothing is written when no record is found.
    total : callable(int) or None
        Called once, before any record is read, with the number of record candidates (the CLI's
        progress bar total).

    Returns
    -------
    pandas.DataFrame
        One row per record candidate with the columns of :data:`ecgkit.manifest.COLUMNS`:
        ``status`` is ``"ok"`` or ``"quarantined"`` (then ``reason`` names the record, the file and
        the problem). ``df.attrs["skipped_by_reason"]`` counts the files that are not records, by what
        they are (the list itself goes to ``skipped``). Records in = ok + quarantined.

    Raises
    ------
    DataError
        When the sources hold no ECG record at all (every file is skipped, or there is none).

    Examples
    --------
    >>> df = scan(["../shared/data/muse"])  # doctest: +SKIP
    >>> df.loc[0, ["record_id", "patient_id", "status"]].tolist()
    ['MUSE_20200923_093504_79000_example', '201700237', 'ok']
    """
    config = config or ScanConfig()
    sources = [paths] if isinstance(paths, (str, Path)) else list(paths)
    start = time.perf_counter()
    candidates, not_records = _walk(sources, follow_external=config.follow_external_symlinks)
    if not candidates:
        where = ", ".join(os.path.abspath(str(p)) for p in sources)
        kinds = "; ".join(f"{n} {why}" for why, n in skipped_by_reason(not_records).items())
        raise DataError(f"no ECG record found in {where}" + (f" ({len(not_records)} file(s) looked at, none is "
                                                             f"a record: {kinds})" if not_records else
                                                             " (no files)"))
    if total is not None:
        total(len(candidates))
    chunks = [candidates[i:i + config.chunk_size] for i in range(0, len(candidates), config.chunk_size)]
    rows: list[dict[str, Any]] = []
    identifiers: list[list[str | None]] = []  # names found in each file: for scrubbing only, never stored

    def _collect(chunk_rows: list[dict[str, Any]]) -> None:
        for r in chunk_rows:
            identifiers.append(r.pop("_identifiers", []))
        rows.extend(chunk_rows)
        if progress is not None:
            n_ok = sum(r["status"] == STATUS_OK for r in chunk_rows)
            progress(n_ok, len(chunk_rows) - n_ok)

    strict = [config.strict_integrity] * len(chunks)
    keys = [config.pseudonymize_key] * len(chunks)
    if config.workers == 1 or len(chunks) <= 1:
        for chunk in chunks:
            _collect(_read_chunk(chunk, config.strict_integrity, config.pseudonymize_key))
    else:
        _warm_readers(candidates)
        # workers return small metadata dicts only; signals never cross the process boundary;
        # worker_init makes them die with this process (a SIGKILLed scan leaves no orphans)
        with ProcessPoolExecutor(max_workers=config.workers, initializer=worker_init,
                                 initargs=(os.getpid(),)) as pool:
            for chunk_rows in pool.map(_read_chunk, chunks, strict, keys):
                _collect(chunk_rows)
    df = conform(rows) if rows else conform(pd.DataFrame(columns=["record_id"]))
    if config.join_ptbxl and len(df):
        df = _join_ptbxl(df, _ptbxl_databases((c.root for c in candidates), not_records))
    if config.pseudonymize_key:
        df = _pseudonymize(df, identifiers, config.pseudonymize_key)
    df.attrs["skipped_by_reason"] = skipped_by_reason(not_records)  # small: counts only
    if skipped is not None:
        skipped.extend({"path": escape_name(s["path"]), "reason": s["reason"]} for s in not_records)
    n_q = int((df["status"] == STATUS_QUARANTINED).sum())
    logger.info("scanned %d records: %d ok, %d quarantined; %d files skipped", len(df), len(df) - n_q, n_q,
                len(not_records))
    if out_dir is not None:
        _write_outputs(df, Path(out_dir), config, not_records, time.perf_counter() - start)
    return df


def _write_outputs(df: pd.DataFrame, out: Path, config: ScanConfig, not_records: list[dict[str, str]],
                   seconds: float) -> None:
    """What ``ecgkit scan --out`` writes into the cohort folder (:func:`write_scan`)."""
    write_scan(out, df, not_records, scan_summary(df, config, seconds=seconds),
               pseudonymized=config.pseudonymize_key is not None)


def _pseudonymize(df: pd.DataFrame, identifiers: list[list[str | None]], key: str) -> pd.DataFrame:
    """Scrub statements (counted), make record ids unique, hash patient ids (see :mod:`ecgkit._deid`)."""
    statements, flags, total = [], [], 0
    for stmts, pid, names, qc in zip(df["statements"], df["patient_id"], identifiers, df["qc_flags"]):
        qc = list(qc) if isinstance(qc, (list, tuple, np.ndarray)) else qc
        if isinstance(stmts, (list, tuple, np.ndarray)) and len(stmts):
            clean, n = scrub_statements(list(stmts), [None if pd.isna(pid) else str(pid), *names])
            total += n
            stmts = clean
            if n and qc is not None:
                qc = qc + [f"repair:scrubbed {n} identifier-like token(s) from statements"]
        statements.append(stmts)
        flags.append(qc)
    out = df.copy()
    out["statements"] = pd.Series(statements, index=df.index, dtype=object)
    out["qc_flags"] = pd.Series(flags, index=df.index, dtype=object)
    seen: dict[str, int] = {}
    ids = []
    for rid in out["record_id"]:  # identical files give one content id: number the copies
        n = seen.get(rid, 0)
        seen[rid] = n + 1
        ids.append(f"{rid}#{n + 1}" if n else rid)
    out["record_id"] = ids
    # normalised first: the split groups spellings of one id (00123, 123), which it cannot do on hashes
    from ecgkit.split import normalize_patient_id

    out["patient_id"] = out["patient_id"].map(
        lambda p: None if pd.isna(p) else pseudonymize(normalize_patient_id(str(p)), key))
    out = conform(out)
    out.attrs["scrubbed_tokens"] = total
    return out


def skipped_by_reason(skipped: Sequence[dict[str, str]]) -> dict[str, int]:
    """Count skipped files by reason (``{"WFDB signal file, read through its .hea header": 553, ...}``).

    Skipped files are not records (signal sidecars, metadata tables, documentation, archives): they
    are neither ok nor quarantined, so records seen = ok + quarantined.
    """
    counts: dict[str, int] = {}
    for item in skipped:
        counts[item["reason"]] = counts.get(item["reason"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def scan_summary(df: pd.DataFrame, config: ScanConfig, *, seconds: float) -> dict[str, Any]:
    """Counts, rates and provenance of a scan, as written to ``COHORT_DIR/scan_summary.json``."""
    from ecgkit import __version__
    from ecgkit.config import config_to_dict

    n = len(df)
    n_q = int((df["status"] == STATUS_QUARANTINED).sum())
    cfg = config_to_dict(config)
    cfg["pseudonymize_key"] = "<set>" if config.pseudonymize_key else None  # never store the key
    return {
        "ecgkit_version": __version__,
        "created": datetime.now().isoformat(timespec="seconds"),
        "config": cfg,
        "records": n,
        "ok": n - n_q,
        "quarantined": n_q,
        "quarantine_rate": n_q / n if n else 0.0,
        "skipped_files": sum(df.attrs.get("skipped_by_reason", {}).values()),
        "skipped_by_reason": dict(df.attrs.get("skipped_by_reason", {})),
        "by_format": {str(k): int(v) for k, v in df["source_format"].value_counts(dropna=False).items()},
        "pseudonymized": bool(config.pseudonymize_key),
        "scrubbed_tokens": int(df.attrs.get("scrubbed_tokens", 0)),
        "seconds": round(seconds, 3),
        "records_per_s": round(n / seconds, 1) if seconds > 0 else None,
        "cpu_count": os.cpu_count(),
    }


def write_scan(out_dir: str | Path, df: pd.DataFrame, skipped: Sequence[dict[str, str]],
               summary: dict[str, Any], *, pseudonymized: bool = False) -> dict[str, Path]:
    """Write a scan's outputs into ``out_dir``, each through a temporary file and a rename.

    ``manifest.parquet``, ``quarantine.parquet``, ``skipped_files.csv`` and ``scan_summary.json``:
    a kill or a full disk leaves each one either as it was or complete, never half-written.

    With ``pseudonymized``, ``source_path`` in the manifest and quarantine is the placeholder
    :data:`ecgkit._deid.PSEUDONYMIZED_PATH`; the real paths go to ``IDENTIFIABLE_source_paths.parquet``
    (record_id, source_path) and the skipped list to ``IDENTIFIABLE_skipped_files.csv``, files the
    user keeps off the training machine (``ecgkit shard`` needs the first one to read the signals).

    Raises
    ------
    ecgkit._lock.OutputError
        On a full disk or an I/O error (temporary files removed; the message names the file, the
        bytes needed and the bytes free).
    """
    from ecgkit._lock import atomic_write_text
    from ecgkit.manifest import write_manifest, write_quarantine

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from ecgkit._names import escape_name

    # a skipped file's name may not be UTF-8 (surrogate-escaped): stored escaped, like the manifest's
    skipped = [{"path": escape_name(str(s["path"])), "reason": escape_name(str(s["reason"]))} for s in skipped]
    skipped_csv = pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(index=False)
    paths: dict[str, Path] = {}
    if pseudonymized:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ecgkit._lock import atomic_write_bytes

        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({"record_id": df["record_id"].astype(str).tolist(),
                                 "source_path": df["source_path"].astype(str).tolist()}), sink)
        paths["source_map"] = atomic_write_bytes(out / SOURCE_MAP_FILE, sink.getvalue().to_pybytes())
        paths["skipped_map"] = atomic_write_text(out / SKIPPED_MAP_FILE, skipped_csv)
        df = df.copy()
        df["source_path"] = PSEUDONYMIZED_PATH
        skipped_csv = pd.DataFrame({"reason": [s["reason"] for s in skipped]}).to_csv(index=False)
    paths.update(manifest=write_manifest(df, out), quarantine=write_quarantine(df, out, "scan"))
    paths["skipped"] = atomic_write_text(out / "skipped_files.csv", skipped_csv)
    paths["summary"] = atomic_write_text(out / "scan_summary.json", json.dumps(summary, indent=2))
    return paths


def find_records(sources: Sequence[str | Path]) -> tuple[list[Any], list[dict[str, str]]]:
    """The record candidates under files and folders, named as :func:`scan` names them, and the skipped files.

    Each candidate has ``path``, ``record_id`` and ``root``; ``ecgkit predict`` walks raw sources with
    this, so that it reads the same files under the same ids as ``scan``.
    """
    return _walk(list(sources))
