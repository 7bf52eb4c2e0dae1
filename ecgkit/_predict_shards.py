"""Reading a shard folder for ``ecgkit predict``: every split in one pipeline of positional reads.

The shard writer stores ``signal`` uncompressed in (1, 12, L) chunks, so each record is
``record_bytes`` contiguous bytes at a chunk offset that h5py reports once per file
(``chunk_iter``). Reader threads then copy records with ``os.preadv`` straight into pinned batch
buffers: no h5py call (h5py serialises every call behind one global lock, so threads calling it do
not read in parallel), and one system call per run of records that lie back to back in the file.
Compressed or otherwise unusual shards fall back to h5py hyperslab reads (serial, correct).

Values stay in the stored dtype on the host (int16: half the bytes of float32); the model scales
them on the device. A shard folder stored at another dtype or scale than the model's contract is
converted on the host (decode to mV, re-encode) and the adaptation is recorded on each row.
"""
from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch
from numpy.typing import NDArray

from ecgkit.errors import SchemaError

if TYPE_CHECKING:
    from ecgkit.contract import InputContract

__all__ = ["ShardFolder"]


class ShardFolder:
    """The records of a shard folder (all splits, split order, then shard and row) for prediction.

    Parameters
    ----------
    shards_dir : path
        Output of :func:`ecgkit.shards.write_shards`.
    contract : InputContract
        The model's: fs, samples and leads must match (else :class:`SchemaError`); another storage
        dtype or scale is converted.

    Attributes
    ----------
    record_ids, patient_keys, sources : list of str
        Per record, in reading order (``sources``: ``SHARD.h5#row``).
    adaptation : str or None
        The storage conversion applied to every record, if any.
    """

    def __init__(self, shards_dir: str | Path, contract: "InputContract") -> None:
        import h5py

        from ecgkit.shards import read_index
        from ecgkit.split import SPLITS

        self.dir = Path(shards_dir)
        index = read_index(self.dir)
        rank = {s: i for i, s in enumerate(SPLITS)}
        index = index.assign(_rank=index["split"].map(rank).fillna(len(SPLITS)))
        index = index.sort_values(["_rank", "shard", "row"], kind="stable")
        names = list(dict.fromkeys(index["shard"].tolist()))
        code = {n: k for k, n in enumerate(names)}
        self.file_of = index["shard"].map(code).to_numpy(dtype=np.int64)
        self.row_of = index["row"].to_numpy(dtype=np.int64)
        self.record_ids: list[str] = index["record_id"].astype(str).tolist()
        self.sources = [f"{s}.h5#{r}" for s, r in zip(index["shard"], self.row_of.tolist())]
        self.leads, self.n_samples = tuple(contract.leads), int(contract.n_samples)
        self.dtype = np.dtype(contract.storage_dtype)
        self.scale_mv = float(contract.scale_mv)
        self.adaptation: str | None = None
        self._files: list[Any] = []
        self._offsets: list[NDArray[np.int64] | None] = []
        self._fds: list[int] = []
        self._h5_lock = threading.Lock()
        self.stored_dtype, self.stored_scale = self.dtype, self.scale_mv
        keys: dict[str, str] = {}
        first: tuple[Any, ...] | None = None
        try:
            for k, name in enumerate(names):
                path = self.dir / f"{name}.h5"
                f = h5py.File(path, "r", rdcc_nbytes=0)
                self._files.append(f)
                a = f.attrs
                attrs = (float(a["fs"]), int(a["n_samples"]), tuple(str(v) for v in a["leads"]), str(a["dtype"]),
                         float(a["scale_mv"]))
                if first is None:
                    first = attrs
                    if attrs[:3] != (float(contract.fs), self.n_samples, self.leads):
                        raise SchemaError(
                            f"shards in {self.dir} hold {attrs[0]:g} Hz x {attrs[1]} samples; the model's "
                            f"contract is {contract.fs:g} Hz x {contract.n_samples}: predict from the raw files "
                            f"instead (ecgkit predict MODEL RAW_DIR) so that they are resampled")
                elif attrs != first:
                    raise SchemaError(f"shard {path} was written with other settings than {names[0]}.h5")
                ids = f["record_id"].asstr()[...]
                rows = self.row_of[self.file_of == k]
                want = np.asarray(self.record_ids, dtype=object)[self.file_of == k].astype(str)
                if len(ids) <= rows.max(initial=-1) or not np.array_equal(ids[rows], want):
                    raise SchemaError(f"shard {path} does not hold the records the index lists for it; "
                                      "rerun `ecgkit shard`")
                keys.update(zip(ids, f["patient_key"].asstr()[...]))
                self._offsets.append(self._chunk_offsets(f["signal"]))
                self._fds.append(os.open(path, os.O_RDONLY) if self._offsets[-1] is not None else -1)
        except BaseException:
            self.close()
            raise
        self.patient_keys = [keys.get(r) for r in self.record_ids]
        if first is not None:
            self.stored_dtype, self.stored_scale = np.dtype(first[3]), first[4]
            if (self.stored_dtype, self.stored_scale) != (self.dtype, self.scale_mv):
                self.adaptation = (f"stored as {self.stored_dtype} at {self.stored_scale:g} mV (contract: "
                                   f"{self.dtype} at {self.scale_mv:g})")
        self.record_bytes = len(self.leads) * self.n_samples * self.stored_dtype.itemsize

    def __len__(self) -> int:
        return len(self.record_ids)

    @staticmethod
    def _chunk_offsets(ds: Any) -> NDArray[np.int64] | None:
        """Byte offset of each record's chunk when the dataset can be read with plain preads."""
        import h5py

        plist = ds.id.get_create_plist()
        if not (plist.get_nfilters() == 0 and ds.dtype.isnative and ds.shape[0] > 0):
            return None
        if plist.get_layout() == h5py.h5d.CONTIGUOUS:
            base = ds.id.get_offset()
            if base is None:  # not allocated
                return None
            rec = int(np.prod(ds.shape[1:])) * ds.dtype.itemsize
            return base + rec * np.arange(ds.shape[0], dtype=np.int64)
        if plist.get_layout() != h5py.h5d.CHUNKED or ds.chunks != (1, *ds.shape[1:]):
            return None
        offsets = np.full(ds.shape[0], -1, dtype=np.int64)

        def visit(info: Any) -> None:
            offsets[info.chunk_offset[0]] = info.byte_offset

        ds.id.chunk_iter(visit)
        return offsets if (offsets >= 0).all() else None

    def close(self) -> None:
        for fd in self._fds:
            if fd >= 0:
                os.close(fd)
        for f in self._files:
            f.close()
        self._fds, self._files = [], []

    def __enter__(self) -> "ShardFolder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------------
    def read(self, start: int, out: NDArray[Any]) -> None:
        """Records ``start .. start + len(out) - 1`` (reading order) into ``out`` in the contract's storage."""
        n = len(out)
        files, rows = self.file_of[start:start + n], self.row_of[start:start + n]
        if self.adaptation is None:
            self._read_stored(files, rows, out)
            return
        from ecgkit.preprocess import decode_stored, encode_stored

        tmp = np.empty(out.shape, dtype=self.stored_dtype)
        self._read_stored(files, rows, tmp)
        encode_stored(decode_stored(tmp, self.stored_scale), self.dtype, self.scale_mv, out)

    def _read_stored(self, files: NDArray[np.int64], rows: NDArray[np.int64], out: NDArray[Any]) -> None:
        # runs of records of one file; within a pread-able file, runs whose bytes lie back to back
        brk = np.flatnonzero(np.diff(files) != 0) + 1
        for a, b in zip([0, *brk.tolist()], [*brk.tolist(), len(files)]):
            k = int(files[a])
            offsets = self._offsets[k]
            if offsets is None:
                self._read_h5(k, rows[a:b], out[a:b])
                continue
            off = offsets[rows[a:b]]
            cut = np.flatnonzero(np.diff(off) != self.record_bytes) + 1
            for c, d in zip([0, *cut.tolist()], [*cut.tolist(), b - a]):
                dest = memoryview(out[a + c:a + d]).cast("B")  # type: ignore[arg-type]
                want, done = dest.nbytes, 0
                while done < want:  # preads may return short; a 0 means the file ends early
                    got = os.preadv(self._fds[k], [dest[done:]], int(off[c]) + done)
                    if got <= 0:
                        raise SchemaError(f"shard {self._files[k].filename} is truncated at row "
                                          f"{int(rows[a + c])}")
                    done += got

    def _read_h5(self, k: int, rows: NDArray[np.int64], out: NDArray[Any]) -> None:
        ds = self._files[k]["signal"]
        with self._h5_lock:  # h5py serialises anyway; the lock keeps one dataset's state consistent
            if len(rows) and (np.diff(rows) == 1).all():
                ds.read_direct(out, np.s_[int(rows[0]):int(rows[-1]) + 1])
            else:
                for j, r in enumerate(rows.tolist()):
                    ds.read_direct(out[j], np.s_[r])

    def batches(self, batch_size: int, threads: int, device: torch.device
                ) -> Iterator[tuple[torch.Tensor, NDArray[np.int64], list[Any]]]:
        """(stored batch, reading positions, release) in order, read ahead by ``threads`` threads.

        Batches are views of a ring of reused (pinned on CUDA) buffers. The consumer appends to
        ``release`` a CUDA event recorded after the device copy of the batch was queued; the slot is
        refilled only once that event has completed (on the CPU the consumer is done on return).
        """
        n = len(self)
        starts = list(range(0, n, batch_size))
        if not starts:
            return
        pin = device.type == "cuda"
        tdtype = torch.from_numpy(np.empty(0, dtype=self.dtype)).dtype
        n_slots = min(max(2, threads + 2), len(starts))
        slots = [torch.empty((batch_size, len(self.leads), self.n_samples), dtype=tdtype, pin_memory=pin)
                 for _ in range(n_slots)]
        released: list[list[Any]] = [[] for _ in range(n_slots)]

        def fill(k: int, s: int) -> tuple[torch.Tensor, NDArray[np.int64]]:
            for ev in released[k]:
                ev.synchronize()
            released[k] = []
            m = min(batch_size, n - s)
            buf = slots[k][:m]
            self.read(s, buf.numpy())
            return buf, np.arange(s, s + m, dtype=np.int64)

        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="ecgkit-predict") as pool:
            pending: deque[tuple[int, Future[Any]]] = deque()
            it = iter(starts)
            slot = 0
            while True:
                while len(pending) < n_slots - 1 or not pending:
                    s = next(it, None)
                    if s is None:
                        break
                    pending.append((slot, pool.submit(fill, slot, s)))
                    slot = (slot + 1) % n_slots
                if not pending:
                    return
                used, fut = pending.popleft()
                buf, idx = fut.result()
                yield buf, idx, released[used]
