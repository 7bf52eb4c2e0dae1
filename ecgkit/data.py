"""Reading shards for training: :class:`ShardDataset`, a torch dataset with fast batched reads.

Reads follow the measurements in ``benchmarks/RESULTS_shards.md``: one low-level HDF5 read per record
(or per run of consecutive rows) into a preallocated array, never h5py fancy indexing (``ds[idx]``
with an index array runs at a few hundred records/s, CPU-bound inside HDF5), and files opened with
no chunk cache (a chunk is one record, so caching only adds a copy).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np
import torch.utils.data
from numpy.typing import ArrayLike, NDArray

from ecgkit.errors import SchemaError
from ecgkit.shards import read_index
from ecgkit.split import SPLITS

log = logging.getLogger(__name__)

#: Output arrays kept for reuse by :meth:`ShardDataset.get_batch` (a loop holding the previous batch
#: while asking for the next needs 2; one more covers a one-batch prefetch).
_RECYCLE = 3


class _Handle:
    """Read access to one shard's ``signal``: HDF5 ids, plus raw chunk offsets when uncompressed."""

    def __init__(self, ds: h5py.Dataset, path: Path) -> None:
        self.dsid = ds.id
        self.fspace = ds.id.get_space()
        self.path = path
        self.record_bytes = int(np.prod(ds.shape[1:])) * ds.dtype.itemsize
        self.offsets: NDArray[np.int64] | None = None
        self.fd = -1
        plist = ds.id.get_create_plist()
        if (plist.get_nfilters() == 0 and plist.get_layout() == h5py.h5d.CHUNKED and ds.dtype.isnative
                and ds.chunks == (1, *ds.shape[1:]) and ds.shape[0] > 0):
            offsets = np.full(ds.shape[0], -1, dtype=np.int64)

            def visit(info: Any) -> None:
                offsets[info.chunk_offset[0]] = info.byte_offset

            ds.id.chunk_iter(visit)
            if (offsets >= 0).all():
                self.offsets = offsets
                self.fd = os.open(path, os.O_RDONLY)

    def pread(self, row: int, dest: NDArray[Any]) -> None:
        """Copy record ``row``'s bytes into ``dest`` (a C-contiguous (12, L) view)."""
        view = memoryview(dest).cast("B")  # type: ignore[arg-type]
        got = os.preadv(self.fd, [view], int(self.offsets[row]))  # type: ignore[index]
        if got != self.record_bytes:
            raise SchemaError(f"shard {self.path} is truncated: row {row} gave {got} of "
                              f"{self.record_bytes} bytes")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ShardDataset(torch.utils.data.Dataset):
    """Records of one split of a shard folder, as float32 millivolts with int8 labels.

    Parameters
    ----------
    shards_dir : str or Path
        Output folder of :func:`ecgkit.shards.write_shards` (``index.parquet`` and ``*.h5``).
    split : {"train", "val", "test"}
        Which split to read.
    tasks : sequence of str or None
        Label names to return, in this order; default all label names of the shards.
    cache : bool
        Load the whole split into memory (int16 or float16, as stored) at construction, for splits
        that fit in RAM. Construct the dataset before DataLoader workers fork, so they share the
        pages instead of each loading a copy.
    chunk_cache_bytes : int
        HDF5 chunk cache per file (``rdcc_nbytes``). 0 (default): chunks are single records read
        once per batch, so a cache only costs a copy; large caches with multi-record chunks were
        measured 20x slower (``MEASUREMENTS.md``).

    Notes
    -----
    Item ``i`` is the ``i``-th record of the split in index order (by shard, then row). File
    handles are opened lazily, one per shard file and process, and reopened after a fork (the
    process id is tracked), so the dataset is safe with DataLoader workers.

    Examples
    --------
    >>> ds = ShardDataset("shards", split="train", tasks=["AFIB", "LVH"])  # doctest: +SKIP
    >>> x, y = ds.get_batch([3, 17, 4])  # doctest: +SKIP
    >>> x.shape, x.dtype, y.shape, y.dtype  # doctest: +SKIP
    ((3, 12, 5000), dtype('float32'), (3, 2), dtype('int8'))
    """

    def __init__(self, shards_dir: str | Path, split: str = "train", tasks: Sequence[str] | None = None, *,
                 cache: bool = False, chunk_cache_bytes: int = 0) -> None:
        if split not in SPLITS:
            raise SchemaError(f"split must be one of {SPLITS}, got {split!r}")
        self.shards_dir = Path(shards_dir)
        self.split = split
        self._rdcc = int(chunk_cache_bytes)
        index = read_index(self.shards_dir)
        index = index[index["split"] == split].sort_values(["shard", "row"], kind="stable")
        if not len(index):
            raise SchemaError(f"split {split!r} has no records in {self.shards_dir}")
        shard_names, shard_codes = np.unique(index["shard"].to_numpy(dtype=str), return_inverse=True)
        self._paths = [self.shards_dir / f"{name}.h5" for name in shard_names]
        self._shard = shard_codes.astype(np.int64)
        self._row = index["row"].to_numpy(dtype=np.int64)
        self._record_ids = index["record_id"].to_numpy(dtype=object)
        self._cohorts = index["cohort"].to_numpy(dtype=object) if "cohort" in index else None
        labels, attrs = self._read_meta()
        all_names = tuple(attrs["label_names"])
        names = all_names if tasks is None else tuple(tasks)
        unknown = [t for t in names if t not in all_names]
        if unknown:
            raise SchemaError(f"task(s) {unknown} not in the shards of {self.shards_dir}; "
                              f"they have {list(all_names)}")
        cols = [all_names.index(t) for t in names]
        self._labels = np.ascontiguousarray(labels[:, cols])
        self._label_names = names
        self._cohort_labels: dict[str, tuple[str, ...]] | None = None
        if "cohorts" in attrs:  # several cohorts (ecgkit.multicohort): labels each one's source defines
            self._cohort_labels = {c: tuple(x for x in labs if x in names)
                                   for c, labs in json.loads(attrs["cohorts"]).items()}
        self._fs = float(attrs["fs"])
        self._n_samples = int(attrs["n_samples"])
        self._leads = tuple(attrs["leads"])
        self._stored_dtype = np.dtype(attrs["dtype"])
        self._scale_mv = float(attrs["scale_mv"])
        self._scale = np.float32(self._scale_mv)
        self.config: dict[str, Any] = json.loads(attrs["config"])
        self._files: dict[int, h5py.File] = {}
        self._handles: dict[int, _Handle] = {}
        self._pid = os.getpid()
        # the trainer's reader threads share one dataset: opening a shard is the only shared write
        # (reads of an open shard are positional preads, safe from any thread)
        self._open_lock = threading.Lock()
        self._mspace: dict[int, Any] = {}
        self._scratch: NDArray[Any] | None = None
        self._recycle: list[NDArray[Any]] = []
        self._cache: NDArray[Any] | None = self._load_all() if cache else None

    def _read_meta(self) -> tuple[NDArray[np.int8], dict[str, Any]]:
        """Labels of the split in index order and the shared attributes; checks shards against the index."""
        parts = []
        first: dict[str, Any] | None = None
        for k, path in enumerate(self._paths):
            rows = self._row[self._shard == k]
            with h5py.File(path, "r") as f:
                attrs = {key: f.attrs[key] for key in ("fs", "n_samples", "leads", "label_names", "dtype",
                                                       "scale_mv", "config")}
                attrs["leads"] = [str(v) for v in attrs["leads"]]
                attrs["label_names"] = [str(v) for v in attrs["label_names"]]
                if "cohorts" in f.attrs:
                    attrs["cohorts"] = str(f.attrs["cohorts"])
                if first is None:
                    first = attrs
                elif any(np.any(np.asarray(first[key]) != np.asarray(attrs[key]))
                         for key in ("fs", "n_samples", "leads", "label_names", "dtype", "scale_mv")):
                    raise SchemaError(f"shard {path} was written with other settings than {self._paths[0]}")
                ids = f["record_id"].asstr()[...]
                if len(ids) <= rows.max(initial=-1) or not np.array_equal(
                        ids[rows], self._record_ids[self._shard == k].astype(str)):
                    raise SchemaError(f"shard {path} does not hold the records the index lists for it; "
                                      "rerun `ecgkit shard`")
                parts.append(f["labels"][...][rows])
        return np.concatenate(parts).astype(np.int8, copy=False), first  # type: ignore[return-value]

    def _load_all(self) -> NDArray[Any]:
        out = np.empty((len(self), len(self._leads), self._n_samples), dtype=self._stored_dtype)
        for k, path in enumerate(self._paths):
            sel = np.flatnonzero(self._shard == k)
            with h5py.File(path, "r") as f:
                out[sel] = f["signal"][...][self._row[sel]]
        log.info("cached split %s: %d records, %.1f MB", self.split, len(self), out.nbytes / 1e6)
        return out

    # -- handles ---------------------------------------------------------------------------------
    def _handle(self, k: int) -> _Handle:
        """Open shard ``k`` once per process (reopened after a fork: the process id is tracked)."""
        pid = os.getpid()
        if pid != self._pid:
            # Forked: handles inherited from the parent are not safe to share; open our own.
            self._files, self._handles, self._mspace, self._pid = {}, {}, {}, pid
        h = self._handles.get(k)
        if h is None:
            with self._open_lock:
                h = self._handles.get(k)
                if h is None:
                    f = h5py.File(self._paths[k], "r", rdcc_nbytes=self._rdcc)
                    self._files[k] = f
                    h = _Handle(f["signal"], self._paths[k])
                    self._handles[k] = h
        return h

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"], state["_handles"], state["_mspace"], state["_scratch"] = {}, {}, {}, None
        state["_recycle"] = []
        del state["_open_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open_lock = threading.Lock()

    def close(self) -> None:
        """Close the open shard files (they reopen on the next read)."""
        for h in self._handles.values():
            h.close()
        for f in self._files.values():
            f.close()
        self._files, self._handles, self._mspace = {}, {}, {}

    def __del__(self) -> None:
        try:
            if getattr(self, "_pid", None) == os.getpid():
                for h in getattr(self, "_handles", {}).values():
                    h.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown; nothing useful to do
            pass

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(len(self._row))

    def __getitem__(self, i: int) -> tuple[NDArray[np.float32], NDArray[np.int8]]:
        """Record ``i``: signal float32 (12, L) millivolts and labels int8 (T,) (1, 0, -1 unknown)."""
        x, y = self.get_batch([i])
        return x[0], y[0]

    def get_batch(self, indices: ArrayLike, *, out: NDArray[Any] | None = None, raw: bool = False
                  ) -> tuple[NDArray[Any], NDArray[np.int8]]:
        """Read a batch of records.

        Parameters
        ----------
        indices : array-like of int, shape (B,)
            Positions in the split (negative positions count from the end); repeats allowed.
        out : NDArray[float32] (or the stored dtype with ``raw``), shape (B, 12, L), optional
            Array to fill (for example a reused, pinned buffer). Reusing one saves the page faults
            of a fresh 61 MB allocation per batch of 256, about a third of the batch's time.
        raw : bool
            Return the stored values (int16 or float16, see :attr:`stored_dtype`) without converting
            them; millivolts are ``raw * scale_mv``. Half the bytes of float32 and no conversion pass:
            the trainer ships raw batches to the GPU and scales them there.

        Returns
        -------
        signals : NDArray[float32] (stored dtype with ``raw``), shape (B, 12, L)
            Millivolts, leads in :data:`ecgkit.record.LEADS` order (``out`` when given).
        labels : NDArray[int8], shape (B, T)
            1 present, 0 absent, -1 unknown, columns in :attr:`label_names` order.

        Raises
        ------
        IndexError
            If an index is out of range.
        ValueError
            If ``out`` has the wrong shape or dtype.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"index out of range for split {self.split!r} with {n} records")
        idx = np.where(idx < 0, idx + n, idx)
        shape = (len(idx), len(self._leads), self._n_samples)
        dtype = self._stored_dtype if raw else np.dtype(np.float32)
        if out is None:
            out = self._fresh_out(shape, dtype)
        elif out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous {dtype} array of shape {shape}, got "
                             f"{out.dtype} {out.shape}")
        if self._cache is not None:
            for j, i in enumerate(idx.tolist()):
                if raw:
                    out[j] = self._cache[i]
                else:
                    self._convert(self._cache[i], out[j])
        else:
            self._read_rows(idx, out, raw=raw)
        return out, self._labels[idx]

    def _fresh_out(self, shape: tuple[int, int, int],
                   dtype: np.dtype[Any] = np.dtype(np.float32)) -> NDArray[Any]:
        """An output array that no one else references.

        A fresh 61 MB array per batch of 256 costs ~15-25 ms of page faults here (measured: half of
        the batch's time), so the last few returned arrays are kept and one is handed out again once
        its reference count shows that the caller has dropped it and every view of it (a view or a
        ``torch.from_numpy`` tensor holds a reference). Callers cannot observe the reuse.
        """
        for prev in self._recycle:
            # 3 references: the list, the loop variable, getrefcount's argument (no enumerate():
            # its cached result tuple would hold one more).
            if prev.shape == shape and prev.dtype == dtype and sys.getrefcount(prev) <= 3:
                return prev
        out = np.empty(shape, dtype=dtype)
        self._recycle = [out, *self._recycle[: _RECYCLE - 1]]
        return out

    def _convert(self, src: NDArray[Any], dest: NDArray[np.float32]) -> None:
        """Stored values -> float32 millivolts, in place in ``dest``.

        Done record by record while the stored bytes are still in the CPU cache: cast, then scale
        in place (measured ~1.5x faster than converting a whole batch after reading it, and ~2x
        faster than ``np.multiply(int16, float32, out=)``).
        """
        dest[...] = src
        if self._stored_dtype == np.int16:
            dest *= self._scale

    def _scratch_for(self, shape: tuple[int, ...]) -> NDArray[Any]:
        """A reused buffer of the stored dtype (fresh allocations page-fault on every call)."""
        size = int(np.prod(shape))
        if self._scratch is None or self._scratch.size < size:
            self._scratch = np.empty(size, dtype=self._stored_dtype)
        return self._scratch[:size].reshape(shape)

    def _read_rows(self, idx: NDArray[np.int64], out: NDArray[Any], raw: bool = False) -> None:
        """Fill ``out[j]`` with record ``idx[j]`` in float32 millivolts (stored values with ``raw``).

        Uncompressed shards: one ``pread`` per record at the chunk's byte offset in the file (a
        (1, 12, L) chunk is the record's bytes in C order), which skips HDF5's per-read overhead
        (~1.5x faster than a low-level H5Dread). Compressed shards: one low-level HDF5 read per run of
        consecutive rows. Positions are visited sorted by (shard, row) for locality.
        """
        shard, row = self._shard[idx], self._row[idx]
        order = np.lexsort((row, shard))
        s, r = shard[order], row[order]
        brk = np.flatnonzero((np.diff(s) != 0) | (np.diff(r) != 1) | (np.diff(order) != 1)) + 1
        starts = np.concatenate(([0], brk)).tolist()
        ends = np.concatenate((brk, [len(order)])).tolist()
        rec_shape = out.shape[1:]
        for a, b in zip(starts, ends):
            h = self._handle(int(s[a]))
            pos, count = int(order[a]), b - a
            if h.offsets is not None:
                if raw:  # the record's bytes go straight into the output row
                    for j in range(count):
                        h.pread(int(r[a + j]), out[pos + j])
                    continue
                one = self._scratch_for(rec_shape)
                for j in range(count):
                    h.pread(int(r[a + j]), one)
                    self._convert(one, out[pos + j])
                continue
            buf = self._scratch_for((count, *rec_shape))
            mspace = self._mspace.get(count)
            if mspace is None:
                mspace = h5py.h5s.create_simple((count, *rec_shape))
                self._mspace[count] = mspace
            h.fspace.select_hyperslab((int(r[a]), 0, 0), (count, *rec_shape))
            # Low-level read into a reused buffer: ~3x faster than Dataset.read_direct.
            h.dsid.read(mspace, h.fspace, buf)
            if raw:
                out[pos:pos + count] = buf
            else:
                self._convert(buf, out[pos:pos + count])

    # -- metadata --------------------------------------------------------------------------------
    @property
    def labels(self) -> NDArray[np.int8]:
        """All labels of the split, (N, T) int8 (for samplers); do not modify."""
        return self._labels

    @property
    def label_names(self) -> tuple[str, ...]:
        """Task names of the label columns."""
        return self._label_names

    @property
    def stored_dtype(self) -> np.dtype[Any]:
        """dtype of the shards' ``signal`` (what ``get_batch(raw=True)`` returns)."""
        return self._stored_dtype

    @property
    def scale_mv(self) -> float:
        """Millivolts per stored unit (``get_batch(raw=True)`` values times this are mV)."""
        return self._scale_mv

    @property
    def fs(self) -> float:
        """Sampling frequency, Hz."""
        return self._fs

    @property
    def n_samples(self) -> int:
        """Samples per lead (L)."""
        return self._n_samples

    @property
    def leads(self) -> tuple[str, ...]:
        """Lead order of the signal rows."""
        return self._leads

    @property
    def record_ids(self) -> NDArray[np.object_]:
        """Record id of each item, (N,) object array of str."""
        return self._record_ids

    @property
    def cohorts(self) -> NDArray[np.object_] | None:
        """Cohort of each item, (N,) object array of str; None for single-cohort shards."""
        return self._cohorts

    @property
    def cohort_labels(self) -> dict[str, tuple[str, ...]] | None:
        """Cohort -> the labels (of :attr:`label_names`) its source defines; None for single-cohort shards."""
        return None if self._cohort_labels is None else dict(self._cohort_labels)

    @property
    def defined(self) -> NDArray[np.bool_]:
        """(N, T) bool: the item's source defines the label (all True for single-cohort shards)."""
        if self._cohorts is None or self._cohort_labels is None:
            return np.ones(self._labels.shape, dtype=bool)
        from ecgkit.multicohort import defined_mask

        return defined_mask(self._cohorts, self._cohort_labels, list(self._label_names))


__all__ = ["ShardDataset"]
