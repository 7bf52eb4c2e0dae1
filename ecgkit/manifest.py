"""The manifest: one row per source record, the contract between stages.

Columns are defined once, here, as data (:data:`COLUMNS`), in the spirit of wfdb's ``RECORD_SPECS``.
Each stage adds its own columns; :func:`validate` checks a table against the codebook, so later
stages can trust it.

Column codebook
---------------
========================  ===========  ========  ===========================================================
column                    dtype        stage     meaning
========================  ===========  ========  ===========================================================
record_id                 string       scan      unique id within the cohort (source path relative to the
                                                 scanned root, without suffix)
patient_id                string       scan      patient id as the source gives it (or its keyed hash when
                                                 pseudonymised); null when the source has none
source_path               string       scan      file read (WFDB: the ``.hea`` header); names that are not
                                                 UTF-8 escaped (``\\xe9``, :mod:`ecgkit._names`); a
                                                 placeholder when pseudonymised (paths in
                                                 ``IDENTIFIABLE_source_paths.parquet``)
source_format             string       scan      reader: wfdb, muse, cardiosoft, dicom, aecg, philips, scp, edf,
                                                 ishne, mfer
fs                        float64      scan      native sampling frequency, Hz
n_samples                 Int64        scan      native samples per lead
duration_s                float64      scan      native duration, seconds
leads                     list<str>    scan      canonical lead names of the signal rows (``ecgkit.record.LEADS``)
native_leads              list<str>    scan      the source's own channel names, source order
statements                list<str>    scan      diagnostic statements, source order
codes                     string       scan      JSON of structured diagnosis codes (``{"snomed": [...]}``,
                                                 ``{"scp": {...}}``) and a format's report status
                                                 (``"report_status"``: MUSE Status, PTB-XL validated_by_human)
acquired_at               timestamp    scan      acquisition date-time, naive local time; null if unknown
age                       float64      scan      age in years at acquisition; null if unknown
sex                       string       scan      "M", "F" or null
qc_flags                  list<str>    scan      signal QC findings (``"flat:V3"``, ``"clipped:II"``, ...);
                                                 QC never changes data
status                    string       all       "ok" or "quarantined"
reason                    string       all       why a record was quarantined (names record and problem)
========================  ===========  ========  ===========================================================

Later stages add: one int8 column per label plus ``label_provenance`` and ``report_status`` (label),
``split`` (split), ``shard`` and ``row`` (shard), the signal measurements of :data:`MEASURE_COLUMNS`
(measure) and ``audit_flags`` (audit: list of the record's labels that its own ECG contradicts, see
:mod:`ecgkit.auditing`). See :data:`STAGE_COLUMNS`.

Measurement columns (``ecgkit measure``; float64 with NaN where not measured, units in the names)
-------------------------------------------------------------------------------------------------
========================  ===========  ===================================================="""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgkit.errors import SchemaError

STATUS_OK = "ok"
STATUS_QUARANTINED = "quarantined"


@dataclass(frozen=True)
class Column:
    """One manifest column: name, pyarrow type, pandas dtype, whether nulls are allowed, meaning."""

    name: str
    arrow_type: pa.DataType
    pandas_dtype: str
    nullable: bool
    doc: str


COLUMNS: tuple[Column, ...] = (
    Column("record_id", pa.string(), "string", False, "unique id within the cohort"),
    Column("patient_id", pa.string(), "string", True, "patient id as given by the source, or its keyed hash"),
    Column("source_path", pa.string(), "string", False, "file read (WFDB: the header)"),
    Column("source_format", pa.string(), "string", True, "reader that read it"),
    Column("fs", pa.float64(), "float64", True, "native sampling frequency, Hz"),
    Column("n_samples", pa.int64(), "Int64", True, "native samples per lead"),
    Column("duration_s", pa.float64(), "float64", True, "native duration, seconds"),
    Column("leads", pa.list_(pa.string()), "object", True, "canonical lead names of the signal rows"),
    Column("native_leads", pa.list_(pa.string()), "object", True, "the source's channel names, source order"),
    Column("statements", pa.list_(pa.string()), "object", True, "diagnostic statements in source order"),
    Column("codes", pa.string(), "string", True, "JSON of structured diagnosis codes"),
    Column("acquired_at", pa.timestamp("us"), "datetime64[us]", True, "acquisition date-time"),
    Column("age", pa.float64(), "float64", True, "age in years at acquisition"),
    Column("sex", pa.string(), "string", True, "M, F or null"),
    Column("qc_flags", pa.list_(pa.string()), "object", True, "signal QC findings"),
    Column("status", pa.string(), "string", False, "ok or quarantined"),
    Column("reason", pa.string(), "string", True, "why the record was quarantined"),
)

@dataclass(frozen=True)
class StageColumn:
    """A column a later stage adds: name, kind (``"float"``, ``"string"`` or ``"list"``), meaning."""

    name: str
    arrow: str
    doc: str


#: The measure stage's columns (:mod:`ecgkit.measuring`), documented in the module docstring above.
MEASURE_COLUMNS: tuple[StageColumn, ...] = tuple(StageColumn(n, k, d) for n, k, d in (
    ("measure_lead", "string", "lead measured"),
    ("n_beats", "float", "beats: neurokit2's and biosppy's R peaks fused, repaired from all leads"),
    ("n_beats_biosppy", "float", "R peaks by biosppy"),
    ("bsqi", "float", "beat agreement F1 of the two detectors within 150 ms"),
    ("hr_bpm", "float", "heart rate, beats per minute"),
    ("rr_mean_ms", "float", "mean RR interval, ms"),
    ("rr_min_ms", "float", "shortest RR interval, ms"),
    ("rr_cv", "float", "RR coefficient of variation"),
    ("rr_pnn50", "float", "share of successive RR differences > 50 ms"),
    ("quality", "float", "mean beat-to-template correlation"),
    ("flat_share", "float", "share of flat 1 s lead windows"),
    ("noise_share", "float", "share of noisy 1 s lead windows"),
    ("flat_leads", "list", "leads flat in more than half their windows"),
    ("noisy_leads", "list", "leads noisy in more than half their windows"),
    ("pr_ms", "float", "median PR interval, ms"),
    ("pr_iqr_ms", "float", "PR interquartile range, ms"),
    ("qrs_ms", "float", "median QRS duration, ms"),
    ("qrs_global_ms", "float", "global QRS of the 8 independent leads, ms"),
    ("qt_ms", "float", "median QT interval, ms"),
    ("qtc_bazett_ms", "float", "QTc Bazett, ms"),
    ("qtc_fridericia_ms", "float", "QTc Fridericia, ms"),
    ("p_share", "float", "share of beats with a P wave"),
    ("n_delineated", "float", "beats with a delineated QRS"),
    ("bsqi_by_lead", "list", "bSQI per lead, LEADS order (optional)"),
    ("measure_reason", "string", "why values are NaN"),
))

#: Columns each stage adds beyond :data:`COLUMNS` (label columns are named after the vocabulary).
STAGE_COLUMNS: dict[str, tuple[str, ...]] = {
    "label": ("label_provenance", "report_status"),
    "split": ("split", "fold"),  # fold: patient-level k-fold (``ecgkit split --method kfold``) only
    "shard": ("shard", "row"),
    "measure": tuple(c.name for c in MEASURE_COLUMNS if c.name != "bsqi_by_lead"),
    "audit": ("audit_flags",),
}

SCAN_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS)
_BY_NAME = {c.name: c for c in COLUMNS}

QUARANTINE_COLUMNS: tuple[str, ...] = ("record_id", "source_path", "stage", "reason")

MANIFEST_FILE = "manifest.parquet"
QUARANTINE_FILE = "quarantine.parquet"


def empty_manifest() -> pd.DataFrame:
    """Return a manifest with the scan columns and no rows."""
    return pd.DataFrame({c.name: pd.Series(dtype=c.pandas_dtype) for c in COLUMNS})


def conform(rows: Iterable[dict] | pd.DataFrame) -> pd.DataFrame:
    """Build a manifest with exactly the codebook dtypes from row dicts (or a frame).

    Columns the codebook does not know (later stages' columns) are kept as they are, after the
    codebook columns.
    """
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    out = {}
    for c in COLUMNS:
        if c.name in df.columns:
            col = df[c.name]
        else:
            col = pd.Series([None] * len(df), index=df.index)
        if c.pandas_dtype == "object":
            out[c.name] = col.astype(object)
        elif c.pandas_dtype.startswith("datetime64"):
            out[c.name] = pd.to_datetime(col).astype(c.pandas_dtype)
        else:
            out[c.name] = col.astype(c.pandas_dtype)
    extra = [name for name in df.columns if name not in _BY_NAME]
    result = pd.DataFrame(out, index=df.index)
    for name in extra:
        result[name] = df[name]
    return result.reset_index(drop=True)


def validate(df: pd.DataFrame, *, require: Iterable[str] = ()) -> None:
    """Check a manifest against the codebook.

    Raises
    ------
    SchemaError
        If a codebook column or a required stage column is missing, a non-nullable column holds
        nulls, ``record_id`` is not unique, or ``status`` holds an unknown value.
    """
    missing = [c.name for c in COLUMNS if c.name not in df.columns]
    missing += [name for name in require if name not in df.columns]
    if missing:
        raise SchemaError(f"manifest lacks column(s) {', '.join(missing)}")
    for c in COLUMNS:
        if not c.nullable and df[c.name].isna().any():
            bad = df.loc[df[c.name].isna(), "record_id"].head(3).tolist()
            raise SchemaError(f"manifest column {c.name} has nulls (e.g. records {bad})")
    dup = df["record_id"][df["record_id"].duplicated()]
    if len(dup):
        raise SchemaError(f"manifest record_id is not unique: {dup.head(5).tolist()}")
    bad_status = set(df["status"].unique()) - {STATUS_OK, STATUS_QUARANTINED}
    if bad_status:
        raise SchemaError(f"manifest status has unknown value(s) {sorted(bad_status)}")


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    # serialised in memory first: the size needed is known, and a full disk leaves no partial file
    from ecgkit._lock import atomic_write_bytes

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate and write a manifest to Parquet atomically (temp file, then rename).

    ``path`` may be a cohort directory (``manifest.parquet`` is written inside) or a file path.
    """
    path = Path(path)
    if path.suffix != ".parquet":
        path.mkdir(parents=True, exist_ok=True)
        path = path / MANIFEST_FILE
    validate(df)
    df = conform(df)
    schema_fields = [pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in COLUMNS]
    table = pa.Table.from_pandas(df[[c.name for c in COLUMNS]], schema=pa.schema(schema_fields),
                                 preserve_index=False)
    extra = [name for name in df.columns if name not in _BY_NAME]
    for name in extra:
        table = table.append_column(name, pa.array(df[name].tolist() if df[name].dtype == object
                                                   else df[name].to_numpy(), from_pandas=True))
    _atomic_write_table(table, path)
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest (a cohort directory or a ``.parquet`` file) and validate it."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    if not path.exists():
        where = path.parent.resolve() if path.name == MANIFEST_FILE else path.resolve()
        raise SchemaError(f"no manifest at {path.resolve()}: {where} is not a cohort folder; write one with "
                          f"`ecgkit scan SOURCES --out {where}`")
    df = pq.read_table(path).to_pandas()
    for name in ("leads", "native_leads", "statements", "qc_flags", "flat_leads", "noisy_leads",
                 "audit_flags", "audit_masked", "bsqi_by_lead"):
        if name in df:  # manifests written before native_leads existed lack it (conform adds it empty)
            df[name] = [None if v is None else list(v) for v in df[name]]
    df = conform(df)
    validate(df)
    return df


def write_quarantine(df: pd.DataFrame, cohort_dir: str | Path, stage: str) -> Path:
    """Append this stage's quarantined rows to ``COHORT_DIR/quarantine.parquet``.

    Rows the same stage wrote before for the same records are replaced, so a rerun never
    duplicates them.
    """
    path = Path(cohort_dir) / QUARANTINE_FILE
    q = df.loc[df["status"] == STATUS_QUARANTINED, ["record_id", "source_path", "reason"]].copy()
    q.insert(2, "stage", stage)
    if path.exists():
        old = pq.read_table(path).to_pandas()
        old = old[~((old["stage"] == stage) & old["record_id"].isin(q["record_id"]))]
        old = old[old["stage"] != stage] if stage == "scan" else old
        q = pd.concat([old, q], ignore_index=True)
    q = q.astype({"record_id": "string", "source_path": "string", "stage": "string", "reason": "string"})
    _atomic_write_table(pa.Table.from_pandas(q[list(QUARANTINE_COLUMNS)], preserve_index=False), path)
    return path


def manifest_hash(df: pd.DataFrame) -> str:
    """A stable SHA-256 of the manifest's content (column names and values), for provenance."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def label_names(df: pd.DataFrame) -> tuple[str, ...]:
    """The manifest's label columns, in column order: the int8 columns that are neither codebook nor
    stage columns (``ecgkit label`` writes one per vocabulary label, 1 / 0 / -1 unknown).

    This is how a custom vocabulary's labels reach ``split`` and ``shard`` without being named again.
    """
    stage = {name for names in STAGE_COLUMNS.values() for name in names}
    out = []
    for c in df.columns:
        if c in _BY_NAME or c in stage or not pd.api.types.is_integer_dtype(df[c].dtype):
            continue
        # int8 is what `label` writes; other integer columns count when they hold only 1, 0, -1
        if str(df[c].dtype) == "int8" or set(pd.unique(df[c].dropna())) <= {-1, 0, 1}:
            out.append(str(c))
    return tuple(out)
