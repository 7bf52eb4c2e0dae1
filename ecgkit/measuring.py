"""Measure stage: beats, intervals and signal quality of every record, by neurokit2 and biosppy.

The module is called ``measuring`` (not ``measure``) so that ``ecgkit.measure`` stays the
function, as ``ecgkit.ingest`` holds ``ecgkit.scan``.

Entry points: :func:`measure` (manifest in, manifest with the measurement columns out) and
:func:`measure_signal` (one (12, n) array in, one dict out). The columns are defined in
:data:`ecgkit.manifest.MEASURE_COLUMNS`; in short:

=====================  ======================================================================
column                 meaning
=====================  ======================================================================
measure_lead           lead measured: ``lead`` of the config (II) unless it is flat or noisy in
                       more than half its 1 s windows, else the lead of best template quality
n_beats                R peaks found by neurokit2 (``ecg_clean`` + ``ecg_peaks``) on that lead, plus
                       the biosppy beats it missed (``fuse_beats``, default), less P and T waves a
                       detector took for beats, plus beats the lead does not show, from the other
                       leads and their spatial velocity (:mod:`ecgkit._measure_beats`)
n_beats_biosppy        R peaks found by the biosppy detector (Hamilton by default)
bsqi                   agreement F1 of the two beat lists within 150 ms (Li et al. 2008)
hr_bpm                 60 / mean RR (the beats of ``n_beats``)
rr_mean_ms             mean RR interval
rr_min_ms              shortest RR interval
rr_cv                  RR standard deviation / mean (irregularity; AF is typically > 0.1)
rr_pnn50               share of successive RR differences > 50 ms
quality                mean beat-to-template correlation (neurokit2's "templatematch" method)
flat_share             share of 1 s lead windows (12 leads) with peak-to-peak < 0.01 mV
noise_share            share of 1 s lead windows with > 0.05 mV RMS above 40 Hz
flat_leads             leads flat in more than half their windows
noisy_leads            leads noisy in more than half their windows
pr_ms .. n_delineated  ``--delineate`` only (NaN otherwise): PR (global P onset to global QRS
                       onset, :func:`ecgkit._measure_global.global_pr`; where not measurable the
                       median over beats of the measured lead's P onset to the global QRS onset),
                       medians over beats of QRS, QT,
                       QTc (Bazett, Fridericia), PR interquartile range, P-wave presence share,
                       beats with a delineated QRS, from ``nk.ecg_delineate`` (method "prominence")
qrs_global_ms          ``--delineate`` only: global QRS of the 8 independent leads (spatial velocity
                       of the median beat, :func:`ecgkit._measure_global.global_qrs`)
bsqi_by_lead           ``bsqi_by_lead=True`` only: bSQI of each of the 12 leads
measure_reason         why a value is NaN (the library and its error); null when none is missing
=====================  ======================================================================

Records are read once each, by the scan's readers (:func:`ecgkit.io.read_record`, resampled to
``fs``), or from HDF5 shards when ``shards_dir`` is given and the manifest has ``shard``/``row``.
Failures of a library on one record are recorded on its row (NaN plus ``measure_reason``); a
record that cannot be read at all gets ``measure_reason`` "read: ..." and keeps its status (it is
the shard stage's business to quarantine unreadable records; measuring changes no data).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ecgkit import _measure_global as mg
from ecgkit import _measure_beats as mb
from ecgkit import _measure_signal as ms
from ecgkit.engines import map_tasks
from ecgkit.errors import ConfigError, RecordError, SchemaError
from ecgkit.manifest import MEASURE_COLUMNS, STATUS_OK
from ecgkit.record import LEADS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeasureConfig:
    """Configuration of :func:`measure` (load with :func:`ecgkit.config.load_config`)."""

    #: Preferred lead: II shows P waves and QRS well in most people (the rhythm strip lead).
    lead: str = "II"
    #: biosppy detector for the second beat list: Hamilton (Hamilton 2002, Computers in Cardiology)
    #: is fast (~2.5 ms per 10 s at 500 Hz); engzee is ~5x slower.
    detector: Literal["hamilton", "engzee", "christov"] = "hamilton"
    #: Beats of the two detectors within this many ms are the same beat (bSQI, Li et al. 2008).
    bsqi_tolerance_ms: float = 150.0
    #: Beats for rate, RR and delineation: neurokit2's plus biosppy's beats that neurokit2 missed
    #: (none of its beats within 200 ms). On the synthetic cohorts neurokit2 alone missed premature
    #: ventricular beats that are small in lead II (heart rate within 5 bpm on 50 % of VPC records;
    #: fused: see BENCHMARKS.md). False: neurokit2's beats only.
    fuse_beats: bool = True
    #: Also compute bSQI on each of the 12 leads (12x the detection cost).
    bsqi_by_lead: bool = False
    #: Run nk.ecg_delineate for PR/QRS/QT (about 60 ms per record, 10x the rest).
    delineate: bool = False
    #: nk.ecg_delineate method: "prominence" (Emrich et al. 2023) was within 15 ms of the synthetic
    #: truth on 90% of normal records for PR, QRS and QT at ~15 ms per record; "dwt" (Martinez et
    #: al. 2004) was 4-6x slower and off by 90-120 ms on 10% of them (notes in BENCHMARKS.md).
    delineate_method: Literal["prominence", "dwt", "peak", "cwt"] = "prominence"
    #: Sampling frequency the signal is read at, Hz (neurokit2's defaults are tuned at 250-1000 Hz).
    fs: float = 500.0
    #: Records per task handed to a worker: large enough to amortise the task, small enough to
    #: balance and to show progress.
    chunk_records: int = 128
    #: Worker processes; 0: one per core, 1: in this process.
    workers: int = 1
    #: "local" process pool or "dask" (dask.distributed; same per-chunk function).
    engine: Literal["local", "dask"] = "local"
    #: Dask scheduler address; None starts a local cluster.
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.lead not in LEADS:
            raise ConfigError(f"measure lead must be one of {', '.join(LEADS)}, got {self.lead!r}")
        if self.detector not in ("hamilton", "engzee", "christov"):
            raise ConfigError(f"measure detector must be hamilton, engzee or christov, got {self.detector!r}")
        if self.delineate_method not in ("prominence", "dwt", "peak", "cwt"):
            raise ConfigError("delineate_method must be prominence, dwt, peak or cwt, "
                              f"got {self.delineate_method!r}")
        if self.fs <= 0 or self.bsqi_tolerance_ms <= 0 or self.chunk_records < 1:
            raise ConfigError("measure fs, bsqi_tolerance_ms and chunk_records must be positive")


def _empty_row(config: MeasureConfig) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: (None if c.arrow == "string" else [] if c.arrow == "list" else math.nan)
                           for c in MEASURE_COLUMNS}
    if not config.bsqi_by_lead:
        row.pop("bsqi_by_lead")
    else:
        row["bsqi_by_lead"] = [math.nan] * len(LEADS)
    return row


def _failed(step: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{step}: {type(exc).__name__}" + (f": {text}" if text else "")


def _lead_pipeline(x: NDArray[np.floating], fs: float, config: MeasureConfig,
                   reasons: list[str]) -> tuple[NDArray[np.float64] | None, NDArray[np.int64]]:
    """Clean one lead and find its neurokit2 R peaks; failures go to ``reasons``."""
    try:
        clean = ms.clean_lead(x, fs)
    except Exception as exc:  # a library failing on one record is recorded, never a crash
        reasons.append(_failed("neurokit2.ecg_clean", exc))
        return None, np.zeros(0, np.int64)
    try:
        peaks = ms.detect_neurokit(clean, fs)
    except Exception as exc:
        reasons.append(_failed("neurokit2.ecg_peaks", exc))
        peaks = np.zeros(0, np.int64)
    return clean, peaks


def _choose_lead(signal: NDArray[np.floating], fs: float, config: MeasureConfig, bad: NDArray[np.bool_],
                 reasons: list[str]) -> tuple[int, NDArray[np.float64] | None, NDArray[np.int64]]:
    """The preferred lead when usable, else the usable lead with the best template quality."""
    first = LEADS.index(config.lead)
    if not bad[first]:
        clean, peaks = _lead_pipeline(signal[first], fs, config, reasons)
        return first, clean, peaks
    best: tuple[float, int, NDArray[np.float64] | None, NDArray[np.int64]] | None = None
    for i in np.flatnonzero(~bad):
        scratch: list[str] = []
        clean, peaks = _lead_pipeline(signal[i], fs, config, scratch)
        q = ms.template_quality(clean, peaks, fs) if clean is not None else math.nan
        score = q if math.isfinite(q) else -2.0
        if best is None or score > best[0]:
            best = (score, int(i), clean, peaks)
    if best is None:  # every lead flat or noisy: measure the preferred one anyway, flags tell why
        clean, peaks = _lead_pipeline(signal[first], fs, config, reasons)
        return first, clean, peaks
    return best[1], best[2], best[3]


def measure_signal(signal: NDArray[np.floating], fs: float, config: MeasureConfig = MeasureConfig()
                   ) -> dict[str, Any]:
    """Measure one 12-lead record.

    Parameters
    ----------
    signal : NDArray[np.floating], shape (12, n_samples)
        Millivolts in :data:`ecgkit.record.LEADS` order.
    fs : float
        Sampling frequency, Hz.
    config : MeasureConfig
        Lead, detector, delineation.

    Returns
    -------
    dict
        One value per column of :data:`ecgkit.manifest.MEASURE_COLUMNS` (``bsqi_by_lead`` only
        with ``config.bsqi_by_lead``); NaN where a value could not be measured, with the reason in
        ``measure_reason``.

    Examples
    --------
    >>> row = measure_signal(record.signal, record.fs)  # doctest: +SKIP
    >>> row["hr_bpm"], row["bsqi"], row["measure_lead"]  # doctest: +SKIP
    (71.8, 1.0, 'II')
    """
    row = _empty_row(config)
    reasons: list[str] = []
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 2 or sig.shape[0] != len(LEADS):
        raise ValueError(f"measure_signal needs a (12, n_samples) array, got shape {sig.shape}")
    finite = np.isfinite(sig)
    if not finite.all():
        reasons.append(f"signal: {int((~finite).sum())} non-finite samples set to 0 for measuring")
        sig = np.where(finite, sig, 0.0)
    flat, noisy = ms.lead_shares(sig, fs)
    row.update(ms.shares_columns(flat, noisy))
    bad = (flat > ms.BAD_LEAD_SHARE) | (noisy > ms.BAD_LEAD_SHARE)
    lead, clean, peaks = _choose_lead(sig, fs, config, bad, reasons)
    row["measure_lead"] = LEADS[lead]
    if clean is None:
        row["measure_reason"] = "; ".join(reasons)
        return row
    vel = mb.BeatVelocity(sig, fs)  # the spatial velocity, computed once if any step needs it
    bio = None
    try:
        bio = ms.detect_biosppy(clean, fs, config.detector)
    except Exception as exc:  # the library failing on this record: recorded, never a crash
        reasons.append(_failed(f"biosppy.{config.detector}_segmenter", exc))
    if bio is not None:
        row["n_beats_biosppy"] = float(bio.size)
        row["bsqi"] = ms.bsqi(peaks, bio, fs, config.bsqi_tolerance_ms)
        if config.fuse_beats:
            # P waves that one detector took for beats (complete heart block; the slurred QRS of LBBB)
            peaks, bio_fused = mb.drop_p_waves(sig, fs, peaks, bio, velocity=vel)
            peaks = mb.fuse_beats(peaks, bio_fused, fs, n_samples=sig.shape[1])
            # a tall T wave that one detector took for a QRS (its spatial velocity is a T wave's)
            peaks = mb.drop_t_waves(sig, fs, peaks, bio_fused, velocity=vel)
    if config.fuse_beats:
        # in a pause or under 60/min two detectors run in the other leads: the "neurokit" method misses
        # wide, early premature beats that a wavelet detector finds; a beat counts where two leads show it
        peaks = mb.fill_pauses(sig, fs, peaks, lead, ~bad, lambda x: ms.detect_neurokit(x, fs),
                               detect_second=lambda x: ms.detect_neurokit(x, fs, mb.SECOND_DETECTOR),
                               velocity=vel)
    row.update(ms.rr_features(peaks, fs))
    row["quality"] = ms.template_quality(clean, peaks, fs)
    if len(peaks) < 3:
        reasons.append(f"{len(peaks)} R peaks on lead {LEADS[lead]}: rate, irregularity and quality need 3")
    if config.bsqi_by_lead:
        row["bsqi_by_lead"] = _bsqi_by_lead(sig, fs, config, lead, peaks, row.get("bsqi", math.nan))
    if config.delineate:
        if len(peaks) < 3:
            reasons.append("delineation skipped: fewer than 3 R peaks")
        else:
            # beats within 300 ms of an edge lack their P wave or T wave in the record, and the
            # delineator's per-beat windows start from the neighbouring beats
            edge = int(0.3 * fs)
            inner = peaks[(peaks >= edge) & (peaks < len(clean) - edge)]
            beats = inner if len(inner) >= 3 else peaks
            waves = None
            try:
                waves = ms.delineate(clean, beats, fs, config.delineate_method)
            except Exception as exc:  # the library failing on this record: recorded, never a crash
                reasons.append(_failed("neurokit2.ecg_delineate", exc))
            velocity = vel.values
            # without ectopic beats (bigeminy's PVCs) and, by shape, a VT run that fills the record
            dominant = mb.dominant_beats(peaks, vel.amplitudes_at(peaks))
            row["qrs_global_ms"], onset_before_r = mg.global_qrs(sig, fs, dominant, velocity)
            if waves is not None:
                row.update(ms.intervals(waves, fs, row["rr_mean_ms"]))
                pr, pr_iqr = mg.pr_to_global_onset(waves, beats, fs, onset_before_r)
                if math.isfinite(pr):  # else the lead's own QRS onset stays the PR end
                    row["pr_ms"], row["pr_iqr_ms"] = pr, pr_iqr
                t_end = (waves["T_Offsets"] - beats) * (1000.0 / fs)
                t_end = t_end[np.isfinite(t_end) & (t_end > 0)]
                pr = mg.global_pr(sig, fs, dominant, onset_before_r,
                                  float(np.median(t_end)) if t_end.size else math.nan)
                if math.isfinite(pr):
                    # the PR interval runs from the earliest P onset in any lead to the earliest QRS
                    # onset in any lead (Surawicz et al. 2009): the multi-lead reading is the PR, the
                    # measured lead's P onset the fallback. neurokit2's delineator looks for an upright
                    # P in one lead: it misses a P inverted there (an ectopic atrial focus), takes the
                    # slurred start of a bundle-branch-block QRS for a P onset, and a P flat in the
                    # lead for none. On 3 synthetic cohorts (521 enriched noisy, 1,900 realistic,
                    # 1,900 easy records) the global PR was within 25 ms of the truth where the
                    # lead's was not in 37 records, and the reverse in 6. The lead's IQR over beats
                    # stays: the median beat has no beat-to-beat spread.
                    row["pr_ms"] = pr
                elif row["pr_ms"] < mg.PR_MIN_MS:
                    # a "P onset" at the QRS onset is the QRS's own first deflection (the slurred
                    # start of a left bundle branch block), and no global P onset was found
                    row["pr_ms"] = row["pr_iqr_ms"] = math.nan
                    reasons.append(f"PR under {mg.PR_MIN_MS:g} ms on lead {LEADS[lead]} and no global "
                                   "P onset: no P onset found")
            missing = [k for k in ("pr_ms", "qrs_ms", "qt_ms") if not math.isfinite(row[k])]
            if missing and not any(r.startswith("neurokit2.ecg_delineate") for r in reasons):
                reasons.append(f"ecg_delineate found no {', '.join(m[:-3].upper() for m in missing)} "
                               f"on lead {LEADS[lead]}")
    row["measure_reason"] = "; ".join(reasons) or None
    return row


def _bsqi_by_lead(sig: NDArray[np.float64], fs: float, config: MeasureConfig, done: int,
                  done_peaks: NDArray[np.int64], done_bsqi: float) -> list[float]:
    out = []
    for i in range(len(LEADS)):
        if i == done:
            out.append(float(done_bsqi))
            continue
        scratch: list[str] = []
        clean, peaks = _lead_pipeline(sig[i], fs, config, scratch)
        try:
            bio = ms.detect_biosppy(clean, fs, config.detector) if clean is not None else None
        except Exception:  # recorded as NaN for this lead; the record's reason covers the chosen lead
            bio = None
        out.append(math.nan if bio is None else ms.bsqi(peaks, bio, fs, config.bsqi_tolerance_ms))
    return out


@dataclass(frozen=True)
class _Task:
    record_ids: tuple[str, ...]
    source_paths: tuple[str, ...]
    shard_rows: tuple[tuple[str, int], ...] | None  # (shard, row) per record when read from shards
    shards_dir: str | None
    config: MeasureConfig


def _read_signals(task: _Task) -> list[tuple[NDArray[np.float32] | None, float, str | None]]:
    """(signal, fs, error) per record of a task: from the shards, or through the readers."""
    out: list[tuple[NDArray[np.float32] | None, float, str | None]] = []
    if task.shard_rows is not None and task.shards_dir is not None:
        import h5py

        handles: dict[str, Any] = {}
        try:
            for rid, (shard, row) in zip(task.record_ids, task.shard_rows):
                f = handles.get(shard)
                if f is None:
                    f = handles[shard] = h5py.File(Path(task.shards_dir) / f"{shard}.h5", "r")
                raw = f["signal"][row]
                scale = float(f.attrs.get("scale_mv", 1.0))
                sig = np.asarray(raw, dtype=np.float32) * np.float32(scale)
                out.append((sig, float(f.attrs["fs"]), None))
        finally:
            for f in handles.values():
                f.close()
        return out
    from ecgkit.io import read_record

    for rid, src in zip(task.record_ids, task.source_paths):
        try:
            rec = read_record(src, fs=task.config.fs, record_id=rid)
        except RecordError as exc:
            out.append((None, task.config.fs, f"read: {exc}"))
            continue
        out.append((rec.signal, float(rec.fs), None))
    return out


def _measure_task(task: _Task) -> list[dict[str, Any]]:
    """Measure one chunk of records (runs in a worker; only the small row dicts go back)."""
    rows = []
    for rid, (sig, fs, error) in zip(task.record_ids, _read_signals(task)):
        if sig is None:
            row = _empty_row(task.config)
            row["measure_reason"] = error
        else:
            row = measure_signal(sig, fs, task.config)
        row["record_id"] = rid
        rows.append(row)
    return rows


def measure(manifest: pd.DataFrame, config: MeasureConfig = MeasureConfig(), *,
            shards_dir: str | Path | None = None,
            progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Measure every ok record of a manifest; return the manifest with the measurement columns.

    Parameters
    ----------
    manifest : DataFrame
        A cohort manifest (:func:`ecgkit.manifest.read_manifest`).
    config : MeasureConfig
        Lead, detector, delineation, workers.
    shards_dir : str, Path or None
        Read signals from these HDF5 shards (the manifest must then be the shard stage's, with
        ``shard`` and ``row``); records not in a shard are read from their source files.
    progress : callable or None
        Called with the number of records of each finished chunk.

    Returns
    -------
    DataFrame
        ``manifest`` plus the columns of :data:`ecgkit.manifest.MEASURE_COLUMNS` (replacing earlier
        measurements). Records that are not ok get NaN and ``measure_reason`` "not measured: ...".
        Row order, status and reason are unchanged.

    Raises
    ------
    SchemaError
        If ``shards_dir`` is given but the manifest has no ``shard``/``row`` columns.
    """
    ok = (manifest["status"] == STATUS_OK).to_numpy()
    use = manifest.loc[ok]
    from_shards = shards_dir is not None
    if from_shards and not {"shard", "row"} <= set(manifest.columns):
        raise SchemaError(f"manifest has no shard/row columns: read the manifest in {shards_dir}, "
                          "written by `ecgkit shard`")
    tasks = []
    in_shard = (use["shard"].notna().to_numpy() if from_shards else np.zeros(len(use), dtype=bool))
    for flag in (True, False):
        part = use.loc[in_shard == flag] if from_shards else (use if not flag else use.iloc[:0])
        for a in range(0, len(part), config.chunk_records):
            chunk = part.iloc[a: a + config.chunk_records]
            shard_rows = (tuple(zip(chunk["shard"].astype(str), chunk["row"].astype(int))) if flag else None)
            tasks.append(_Task(tuple(chunk["record_id"].astype(str)), tuple(chunk["source_path"].astype(str)),
                               shard_rows, None if shards_dir is None else str(shards_dir), config))
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for part_rows in map_tasks(_measure_task, tasks, workers=config.workers, engine=config.engine,
                               scheduler=config.scheduler):
        rows.extend(part_rows)
        if progress is not None:
            progress(len(part_rows))
    log.info("measured %d records in %.1f s", len(rows), time.perf_counter() - start)
    return _attach(manifest, rows, config)


def _attach(manifest: pd.DataFrame, rows: list[dict[str, Any]], config: MeasureConfig) -> pd.DataFrame:
    """Join the measured rows onto the manifest by record id (one vectorised reindex)."""
    names = [c.name for c in MEASURE_COLUMNS if config.bsqi_by_lead or c.name != "bsqi_by_lead"]
    kinds = {c.name: c.arrow for c in MEASURE_COLUMNS}
    out = manifest.drop(columns=[c.name for c in MEASURE_COLUMNS if c.name in manifest.columns])
    table = pd.DataFrame.from_records(rows, columns=["record_id", *names]).set_index("record_id")
    table = table.reindex(out["record_id"].astype(str).to_numpy())
    missing = ~out["record_id"].astype(str).isin(table.index[table["measure_lead"].notna()
                                                             | table["measure_reason"].notna()]).to_numpy()
    for name in names:
        col = table[name]
        if kinds[name] == "float":
            out[name] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        elif kinds[name] == "string":
            vals = col.astype(object).where(col.notna(), None).to_numpy()
            if name == "measure_reason":
                vals = np.where(missing, "not measured: status " + out["status"].astype(str).to_numpy(), vals)
            out[name] = pd.array(list(vals), dtype="string")
        else:
            lists = [v if isinstance(v, list) else [] for v in col]
            out[name] = pd.Series(lists, index=out.index, dtype=object)
    return out


def measure_summary(df: pd.DataFrame) -> dict[str, Any]:
    """Counts for the CLI: records measured, with a reason, NaN per column."""
    measured = df["measure_reason"].isna() | ~df["measure_reason"].astype(str).str.startswith(
        ("not measured", "read:"))
    summary: dict[str, Any] = {
        "records": int(len(df)), "measured": int(measured.sum()),
        "with_reason": int(df["measure_reason"].notna().sum()),
        "unreadable": int(df["measure_reason"].astype(str).str.startswith("read:").sum()),
    }
    for name in ("hr_bpm", "bsqi", "quality", "pr_ms", "qrs_ms", "qt_ms"):
        col = df.loc[measured, name]
        summary[f"{name}_nan"] = int(col.isna().sum())
        summary[f"{name}_median"] = None if col.notna().sum() == 0 else round(float(col.median()), 3)
    return summary

