"""Prediction on new ECGs: raw files and folders, a cohort (its manifest) or a shard folder.

Raw records go through the readers and format detection of ``scan`` (:mod:`ecgkit.io`, the walk
of :func:`ecgkit.ingest.find_records`) and the one preprocessing function of the shard stage
(:func:`ecgkit.preprocess.prepare_record`) with the model's input contract, so a record is
transformed exactly as at training. Records that do not meet the contract are adapted when the
contract allows it, and the adaptation is recorded (resampled from another fs, limb leads derived,
cropped, padded); otherwise they are quarantined with the reason (missing leads, too short under
``short="reject"``, unreadable, non-finite, flat). Records in = predicted + quarantined.

Overlapping sources (a folder and a file inside it, a cohort and its raw folder, one folder given
twice) predict each file once: with several sources, files are compared by resolved path, raw files
and folders first (in the order given), then cohorts and shard folders (in the order given); the
first occurrence keeps its row and the repeats are counted in
:attr:`PredictResult.n_repeats_dropped` and the summary line. Different files that yield the same
``record_id`` (a shard folder beside the raw files it was made from) keep one row each, told apart
by ``source_path``; they are counted in :attr:`PredictResult.n_shared_ids` and logged as a warning.

Output columns (:attr:`PredictResult.predictions`, one row per record, written to Parquet by the CLI)
--------------------------------------------------------------------------------------------------
==================  ==========  ==================================================================
column              dtype       meaning
==================  ==========  ==================================================================
record_id           string      as ``scan`` names it (path relative to the source folder, no suffix)
patient_id          string      the source's patient id (placeholders -> null), its keyed hash with
                                a pseudonymisation key, the manifest's, or a shard's ``patient_key``
source_path         string      file read (WFDB: the header; shards: ``SHARD.h5#row``)
source_format       string      reader (wfdb, muse, ...) or ``shard``
status              string      ``ok`` (predicted) or ``quarantined``
reason              string      why it was quarantined (names the record, the file and the problem)
adaptations         list<str>   every change made to meet the contract ("resampled 250->500 Hz",
                                "derived III,aVR,aVL,aVF from I,II", "padded 4000->5000 samples")
qc_flags            list<str>   QC findings on the native signal (``flat:V3``, ``clipped:II``, ...)
prob_<label>        float32     probability (NaN when quarantined)
pred_<label>        Int8        1 when prob >= the label's threshold, else 0 (null when quarantined
                                or without a threshold)
==================  ==========  ==================================================================
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

from ecgkit.errors import ConfigError, RecordError, SchemaError
from ecgkit.manifest import STATUS_OK, STATUS_QUARANTINED
from ecgkit.preprocess import prepare_record

if TYPE_CHECKING:
    from ecgkit.model_file import EcgModel

logger = logging.getLogger(__name__)

__all__ = ["PredictConfig", "PredictResult", "predict_sources", "predict_inputs", "OUTPUT_COLUMNS"]

OUTPUT_COLUMNS = ("record_id", "patient_id", "source_path", "source_format", "status", "reason", "adaptations",
                  "qc_flags")


@dataclass(frozen=True)
class PredictConfig:
    """Configuration of :func:`predict_sources`."""

    #: records per forward pass: 256 fills a CPU's cores; on a GPU 1024-2048 amortise launches
    batch_size: int = 256
    #: processes reading raw files (0: one per core); 1 reads in this process (CPU-bound box: the
    #: network is the bottleneck there)
    workers: int = 1
    #: "auto" = CUDA when available
    device: str = "auto"
    #: bf16 autocast on CUDA (what training and predict_run use)
    amp: bool = True
    #: torch.compile the network on CUDA (static batch; the last batch is padded)
    compile: bool = False
    #: a rule stored in the model ("max_f1", "0.95", ...) or "p=0.5"; None: the model's default
    threshold: str | None = None
    #: raw records handed to a reader process at a time
    chunk_size: int = 64
    #: reader threads for shard folders (positional reads outside h5py, which release the GIL)
    shard_threads: int = 8
    #: HMAC key: patient ids read from raw files are replaced by their keyed hash (as `scan` does)
    pseudonymize_key: str | None = field(default=None, repr=False)


@dataclass
class PredictResult:
    """Predictions and accounting of one :func:`predict_sources` call."""

    predictions: pd.DataFrame
    seconds: float
    rule: str | None
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: records met again through another source (the same file, cohort entry or shard folder), not
    #: predicted twice
    n_repeats_dropped: int = 0
    #: rows whose record_id another row also has (different files): kept, told apart by source_path
    n_shared_ids: int = 0

    @property
    def n_records(self) -> int:
        return len(self.predictions)

    @property
    def n_quarantined(self) -> int:
        return int((self.predictions["status"] == STATUS_QUARANTINED).sum())

    @property
    def n_predicted(self) -> int:
        return self.n_records - self.n_quarantined

    @property
    def records_per_s(self) -> float:
        return self.n_records / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        """One line: records in, predicted, quarantined, adapted, rate."""
        adapted = int(sum(bool(a) for a in self.predictions["adaptations"]))
        extra = (f"; {self.n_repeats_dropped} repeats of a file already read dropped" if self.n_repeats_dropped
                 else "") + (f"; {self.n_shared_ids} rows share a record_id (see source_path)" if self.n_shared_ids
                             else "")
        return (f"predict: {self.n_records} records, {self.n_predicted} predicted ({adapted} adapted to the "
                f"contract), {self.n_quarantined} quarantined, {self.records_per_s:.0f} records/s; "
                f"decisions at {self.rule or 'no thresholds'}{extra}")


# --------------------------------------------------------------------------- scoring

class _Scorer:
    """Runs the network on stored batches and keeps probabilities by output row."""

    def __init__(self, model: "EcgModel", batch_size: int):
        self.model, self.batch_size = model, batch_size
        self.parts: list[tuple[NDArray[np.int64], torch.Tensor]] = []

    def score(self, stored: torch.Tensor, positions: NDArray[np.int64]) -> Any:
        """Queue the batches; return the CUDA event after the last host->device copy (None on the CPU)."""
        for s in range(0, len(positions), self.batch_size):
            probs = self.model._forward_stored(stored[s:s + self.batch_size])
            self.parts.append((positions[s:s + self.batch_size], probs))
        return self.model.copy_event

    def collect(self, n: int, n_labels: int) -> NDArray[np.float32]:
        out = np.full((n, n_labels), np.nan, dtype=np.float32)
        for pos, probs in self.parts:
            out[pos] = probs.cpu().numpy()
        return out


class _Pending:
    """Stored records gathered into full batches, in two alternating (pinned, on CUDA) buffers.

    Records are copied once, from a reader's chunk into the batch buffer; a buffer is written again
    only after the device copy that read it has finished (an event per buffer).
    """

    def __init__(self, batch_size: int, shape: tuple[int, int], dtype: np.dtype[Any], device: torch.device):
        tdtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        self.pin = device.type == "cuda"
        self.buffers = [torch.empty((batch_size, *shape), dtype=tdtype, pin_memory=self.pin) for _ in range(2)]
        self.events: list[Any] = [None, None]
        self.cur, self.n, self.batch_size = 0, 0, batch_size
        self.positions: list[NDArray[np.int64]] = []

    def add(self, stored: NDArray[Any], positions: NDArray[np.int64], scorer: "_Scorer") -> None:
        """Copy records in; score each batch as it fills."""
        done = 0
        while done < len(positions):
            if self.n == 0 and self.events[self.cur] is not None:
                self.events[self.cur].synchronize()  # its previous batch has left for the device
            k = min(self.batch_size - self.n, len(positions) - done)
            self.buffers[self.cur].numpy()[self.n:self.n + k] = stored[done:done + k]
            self.positions.append(positions[done:done + k])
            self.n += k
            done += k
            if self.n == self.batch_size:
                self.flush(scorer)

    def flush(self, scorer: "_Scorer") -> None:
        if self.n == 0:
            return
        self.events[self.cur] = scorer.score(self.buffers[self.cur][: self.n], np.concatenate(self.positions))
        self.cur, self.n, self.positions = 1 - self.cur, 0, []


# --------------------------------------------------------------------------- raw files

@dataclass(frozen=True)
class _Item:
    record_id: str
    path: str
    patient_id: str | None = None  # from a cohort manifest (already pseudonymised there)


def _fill(items: list[_Item], buf: NDArray[Any], c: dict[str, Any], key: str | None,
          from_manifest: bool) -> tuple[int, list[dict[str, Any]]]:
    """Read and preprocess records into ``buf`` rows 0..k-1 (stored dtype); one output row per item."""
    from ecgkit.ingest import is_placeholder_id, pseudonymize

    rows: list[dict[str, Any]] = []
    k = 0
    for it in items:
        row: dict[str, Any] = {"record_id": it.record_id, "source_path": it.path, "patient_id": it.patient_id}
        try:
            rec = prepare_record(it.path, buf[k], fs=c["fs"], seconds=c["seconds"], short=c["short"],
                                 dtype=c["storage_dtype"], scale_mv=c["scale_mv"], record_id=it.record_id)
        except RecordError as exc:
            reason = str(exc) if exc.record_id is not None else f"record {it.record_id} {exc}"  # name it
            row.update(status=STATUS_QUARANTINED, reason=reason, adaptations=[], qc_flags=[])
            rows.append(row)
            continue
        if not from_manifest:
            pid = None if is_placeholder_id(rec.patient_id) else rec.patient_id
            row["patient_id"] = pseudonymize(pid, key) if (key and pid is not None) else pid
        row.update(source_format=rec.source_format, status=STATUS_OK, reason=None, adaptations=list(rec.repairs),
                   qc_flags=list(rec.qc_flags or ()))
        rows.append(row)
        k += 1
    return k, rows


def _chunk_shape(c: dict[str, Any], chunk: int) -> tuple[tuple[int, int, int], np.dtype[Any]]:
    return (chunk, len(c["leads"]), int(c["n_samples"])), np.dtype(c["storage_dtype"])


# Reader processes write records into slots of one shared-memory block and send back only the small
# row dicts: pickling arrays back through the pool's pipe made the parent the bottleneck
# (MEASUREMENTS.md: workers writing into shared memory gain 1.5-2x).
_SHM: dict[str, Any] = {}


def _init_reader(name: str, slot_shape: tuple[int, int, int], dtype: str) -> None:
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(name=name)
    _SHM.update(shm=shm, shape=slot_shape, dtype=np.dtype(dtype))


def _slot(buf: Any, shape: tuple[int, int, int], dtype: np.dtype[Any], slot: int) -> NDArray[Any]:
    size = int(np.prod(shape)) * dtype.itemsize
    return np.ndarray(shape, dtype=dtype, buffer=buf, offset=slot * size)


def _read_into_slot(task: tuple[int, list[_Item], dict[str, Any], str | None, bool]) -> tuple[int, int, list[dict[str, Any]]]:
    slot, items, c, key, from_manifest = task
    buf = _slot(_SHM["shm"].buf, _SHM["shape"], _SHM["dtype"], slot)
    k, rows = _fill(items, buf, c, key, from_manifest)
    return slot, k, rows


def _warm_readers(chunks: list[list[_Item]], c: dict[str, Any], key: str | None) -> None:
    """Read one record of each file suffix here before forking, so that every reader process inherits
    the imported reader modules and loaded numba kernels (~0.5 s per process otherwise)."""
    first: dict[str, _Item] = {}
    for chunk_items in chunks:
        for it in chunk_items:
            first.setdefault(os.path.splitext(it.path)[1].lower(), it)
        if len(first) >= 8:
            break
    shape, dtype = _chunk_shape(c, 1)
    for it in first.values():
        _fill([it], np.empty(shape, dtype=dtype), c, key, True)


def _chunk_results(chunks: list[list[_Item]], c: dict[str, Any], key: str | None, from_manifest: bool,
                   workers: int, chunk: int) -> Iterator[tuple[NDArray[Any], list[dict[str, Any]]]]:
    """(stored records, rows) per chunk, in order. With several workers the stored array is a view
    of a shared-memory slot, valid until the next item is requested."""
    shape, dtype = _chunk_shape(c, chunk)
    if workers <= 1 or len(chunks) <= 1:
        buf = np.empty(shape, dtype=dtype)
        for chunk_items in chunks:
            k, rows = _fill(chunk_items, buf, c, key, from_manifest)
            yield buf[:k], rows
        return
    from multiprocessing import shared_memory

    if "fork" in multiprocessing.get_all_start_methods():
        _warm_readers(chunks, c, key)
    n_slots = 3 * workers
    shm = shared_memory.SharedMemory(create=True, size=n_slots * int(np.prod(shape)) * dtype.itemsize)
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_reader,
                                 initargs=(shm.name, shape, dtype.str)) as pool:
            free = deque(range(n_slots))
            pending: deque[Future[Any]] = deque()
            it = iter(chunks)
            last: int | None = None
            while True:
                if last is not None:
                    free.append(last)  # the consumer is done with the previous slot
                while free:
                    nxt: list[_Item] | None = next(it, None)
                    if nxt is None:
                        break
                    pending.append(pool.submit(_read_into_slot, (free.popleft(), nxt, c, key, from_manifest)))
                if not pending:
                    return
                slot, k, rows = pending.popleft().result()
                last = slot
                yield _slot(shm.buf, shape, dtype, slot)[:k], rows
    finally:
        shm.close()
        shm.unlink()


def _predict_items(items: list[_Item], model: "EcgModel", cfg: PredictConfig, rows: list[dict[str, Any]],
                   scorer: _Scorer, *, from_manifest: bool, progress: Callable[[int], None] | None) -> None:
    contract = model.contract.to_dict()
    chunks = [items[i:i + cfg.chunk_size] for i in range(0, len(items), cfg.chunk_size)]
    workers = cfg.workers if cfg.workers > 0 else (os.cpu_count() or 1)
    c = model.contract
    pending = _Pending(cfg.batch_size, (len(c.leads), c.n_samples), np.dtype(c.storage_dtype), model.device)
    for stored, chunk_rows in _chunk_results(chunks, contract, cfg.pseudonymize_key, from_manifest, workers,
                                             cfg.chunk_size):
        base = len(rows)
        pos = np.array([base + i for i, r in enumerate(chunk_rows) if r["status"] == STATUS_OK], dtype=np.int64)
        rows.extend(chunk_rows)
        pending.add(stored, pos, scorer)  # copies the records out of the reader's slot
        if progress is not None:
            progress(len(chunk_rows))
    pending.flush(scorer)


# --------------------------------------------------------------------------- shard folders

def _predict_shards(shards_dir: Path, model: "EcgModel", cfg: PredictConfig, rows: list[dict[str, Any]],
                    scorer: _Scorer, progress: Callable[[int], None] | None) -> None:
    """Every split of a shard folder, in one pipeline of reader threads (:mod:`ecgkit._predict_shards`)."""
    from ecgkit._predict_shards import ShardFolder

    with ShardFolder(shards_dir, model.contract) as folder:
        adapt = [folder.adaptation] if folder.adaptation else []
        base = len(rows)
        for rid, pkey, src in zip(folder.record_ids, folder.patient_keys, folder.sources):
            rows.append({"record_id": rid, "patient_id": pkey, "source_path": src, "source_format": "shard",
                         "status": STATUS_OK, "reason": None, "adaptations": list(adapt), "qc_flags": []})
        for stored, idx, release in folder.batches(cfg.batch_size, cfg.shard_threads, model.device):
            ev = scorer.score(stored, base + idx)
            if ev is not None:
                release.append(ev)
            if progress is not None:
                progress(len(idx))


# --------------------------------------------------------------------------- entry points

class _Seen:
    """Files (resolved paths) already taken, so that overlapping sources predict each record once.

    Only active with several sources (a single folder lists each file once; resolving 100,000 paths
    would cost a second).
    """

    def __init__(self, active: bool):
        self.active, self.keys, self.dropped = active, set[str](), 0

    def first(self, path: str, n: int = 1) -> bool:
        """True the first time ``path`` is met; else count its ``n`` records as dropped."""
        if not self.active:
            return True
        key = os.path.realpath(path)
        if key in self.keys:
            self.dropped += n
            return False
        self.keys.add(key)
        return True


def _classify(src: Path) -> str:
    if src.is_dir() and (src / "index.parquet").exists():
        return "shards"
    if src.is_dir() and (src / "manifest.parquet").exists():
        return "cohort"
    return "raw"


def _finish(model: "EcgModel", rows: list[dict[str, Any]], probs: NDArray[np.float32], rule: str | None,
            thresholds: NDArray[np.float64]) -> pd.DataFrame:
    frame = pd.DataFrame({c: [r.get(c) for r in rows] for c in OUTPUT_COLUMNS})
    for c in ("record_id", "patient_id", "source_path", "source_format", "status", "reason"):
        frame[c] = frame[c].astype("string")
    ok = (frame["status"] == STATUS_OK).to_numpy()
    for j, name in enumerate(model.label_names):
        frame[f"prob_{name}"] = probs[:, j]
    for j, name in enumerate(model.label_names):
        thr = float(thresholds[j])  # +inf: never positive in validation, never called; NaN: no thresholds
        dec = pd.array(np.where(probs[:, j] >= thr, 1, 0).astype(np.int8), dtype="Int8")
        dec[~ok | bool(np.isnan(thr))] = pd.NA
        frame[f"pred_{name}"] = dec
    frame.attrs.update(threshold_rule=rule, label_names=list(model.label_names))
    return frame


def predict_sources(model: "EcgModel", sources: str | Path | Sequence[str | Path], config: PredictConfig = PredictConfig(),
                    *, progress: Callable[[int], None] | None = None) -> PredictResult:
    """Predict every record of the sources with an exported model.

    Parameters
    ----------
    model : EcgModel
        From :func:`ecgkit.load_model`.
    sources : path or sequence of paths
        Files and folders of any format ``scan`` reads; a cohort folder (``manifest.parquet``: its
        usable records are read from their source paths, its quarantined ones reported as such); a
        shard folder (``index.parquet``: every split, read from the shards).
    config : PredictConfig
    progress : callable(int), optional
        Called with the number of records done after each chunk or batch.

    Returns
    -------
    PredictResult
        ``predictions`` (columns in the module docstring), ``summary()``, counts.

    Raises
    ------
    SchemaError
        If a shard folder does not meet the contract, or the accounting fails (records in !=
        predicted + quarantined).
    """
    from ecgkit.ingest import find_records
    from ecgkit.manifest import read_manifest
    from ecgkit.shards import read_index

    start = time.perf_counter()
    model.to(config.device, amp=config.amp, compile=config.compile, batch_size=config.batch_size)
    thresholds = model.decision_thresholds(config.threshold)
    srcs = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(s) for s in sources]
    rows: list[dict[str, Any]] = []
    scorer = _Scorer(model, config.batch_size)
    seen = _Seen(len(srcs) > 1)
    raw = [s for s in srcs if _classify(s) == "raw"]
    skipped: list[dict[str, str]] = []
    if raw:
        cands, skipped = find_records(raw)
        _predict_items([_Item(c.record_id, c.path) for c in cands if seen.first(c.path)], model, config, rows,
                       scorer, from_manifest=False, progress=progress)
    for src in srcs:
        kind = _classify(src)
        if kind == "shards" and seen.first(str(src), len(read_index(src)) if seen.active else 1):
            _predict_shards(src, model, config, rows, scorer, progress)
        elif kind == "cohort":
            m = read_manifest(src)
            m = m[[seen.first(str(p)) for p in m["source_path"]]] if seen.active else m
            ok = m["status"] == STATUS_OK
            for r in m.loc[~ok].itertuples():
                rows.append({"record_id": r.record_id, "patient_id": r.patient_id, "source_path": r.source_path,
                             "source_format": r.source_format, "status": STATUS_QUARANTINED,
                             "reason": r.reason, "adaptations": [], "qc_flags": list(r.qc_flags or [])})
            items = [_Item(str(r.record_id), str(r.source_path), None if pd.isna(r.patient_id) else str(r.patient_id))
                     for r in m.loc[ok].itertuples()]
            _predict_items(items, model, config, rows, scorer, from_manifest=True, progress=progress)
    probs = scorer.collect(len(rows), len(model.label_names))
    frame = _finish(model, rows, probs, config.threshold or model.default_rule, thresholds)
    n_ok = int((frame["status"] == STATUS_OK).sum())
    if n_ok + int((frame["status"] == STATUS_QUARANTINED).sum()) != len(frame) or \
            np.isnan(probs[(frame["status"] == STATUS_OK).to_numpy()]).any():
        raise SchemaError(f"prediction accounting failed: {len(frame)} records, {n_ok} ok, some without scores")
    dup_ids = int(frame["record_id"].duplicated(keep=False).sum())
    if dup_ids:
        logger.warning("%d rows share a record_id with another row (the same id from different files, e.g. a "
                       "shard folder and the raw files it was made from); source_path tells them apart: %s",
                       dup_ids, ", ".join(frame.loc[frame["record_id"].duplicated(), "record_id"].astype(str)[:3]))
    res = PredictResult(frame, time.perf_counter() - start, config.threshold or model.default_rule, skipped,
                        n_repeats_dropped=seen.dropped, n_shared_ids=dup_ids)
    logger.info(res.summary())
    return res


def predict_inputs(model: "EcgModel", inputs: Any, config: PredictConfig = PredictConfig(), *,
                   fs: float | None = None) -> PredictResult:
    """:func:`predict_sources` for Python objects: paths, :class:`~ecgkit.record.Record`, arrays in mV.

    Records and arrays are conformed by the same :func:`~ecgkit.preprocess.prepare_record`; arrays
    (``(12, n)`` or ``(N, 12, n)``, :data:`ecgkit.record.LEADS` order) are taken at ``fs`` (default
    the contract's) and named ``array-0``, ``array-1``, ...
    """
    from ecgkit.record import Record

    if isinstance(inputs, (str, Path)):
        return predict_sources(model, inputs, config)
    if isinstance(inputs, np.ndarray):
        inputs = [inputs] if inputs.ndim == 2 else list(inputs)
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if items and all(isinstance(x, (str, Path)) for x in items):
        return predict_sources(model, items, config)
    start = time.perf_counter()
    model.to(config.device, amp=config.amp, compile=False, batch_size=config.batch_size)
    c = model.contract
    recs = []
    for i, x in enumerate(items):
        if isinstance(x, Record):
            recs.append(x)
        elif isinstance(x, np.ndarray):
            recs.append(Record(record_id=f"array-{i}", patient_id=None, signal=np.asarray(x, dtype=np.float32),
                               fs=float(fs or c.fs), source_format="array", source_path=f"<array {i}>"))
        else:
            raise ConfigError(f"cannot predict on {type(x).__name__}: pass paths, Records or (12, n) arrays")
    buf = np.empty((len(recs), len(c.leads), c.n_samples), dtype=c.storage_dtype)
    rows: list[dict[str, Any]] = []
    keep: list[int] = []
    for rec in recs:
        row: dict[str, Any] = {"record_id": rec.record_id, "patient_id": rec.patient_id,
                               "source_path": rec.source_path, "source_format": rec.source_format}
        try:
            conformed = prepare_record(rec, buf[len(keep)], fs=c.fs, seconds=c.seconds, short=c.short,
                                       dtype=c.storage_dtype, scale_mv=c.scale_mv)
        except RecordError as exc:
            row.update(status=STATUS_QUARANTINED, reason=str(exc), adaptations=[], qc_flags=[])
        else:
            row.update(status=STATUS_OK, reason=None, adaptations=list(conformed.repairs),
                       qc_flags=list(rec.qc_flags or ()))
            keep.append(len(rows))
        rows.append(row)
    scorer = _Scorer(model, config.batch_size)
    if keep:
        scorer.score(torch.from_numpy(buf[: len(keep)]), np.asarray(keep, dtype=np.int64))
    probs = scorer.collect(len(rows), len(model.label_names))
    rule = config.threshold or model.default_rule
    frame = _finish(model, rows, probs, rule, model.decision_thresholds(config.threshold))
    return PredictResult(frame, time.perf_counter() - start, rule)
