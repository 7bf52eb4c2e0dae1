"""How shard batches reach the model: batch sources, the thread loader and the device copy.

Data path on CUDA
-----------------
``loader="threads"`` (default): reader threads call ``get_batch(indices, out=..., raw=True)`` straight
into a ring of reused pinned int16 buffers; the step copies a slot with ``non_blocking=True`` and
scales to mV on the GPU, and a slot is refilled only after the CUDA event recorded behind its copy
(measured on an H200: 95.5 % of the compute ceiling end to end, where DataLoader worker processes
held 62-81 %). ``loader="processes"``: a torch DataLoader whose worker processes return whole batches
(any dataset with ``get_batch``). On the CPU (tests, CI) batches are read in the training process.
When the dataset offers raw batches (storage dtype, e.g. int16, plus ``scale_mv``) only int16
crosses to the device, which halves the bytes (15,000 records/s of 12 x 5000 int16 is 1.8 GB/s).
"""
from __future__ import annotations

import inspect
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator

import numpy as np
import torch
from numpy.typing import NDArray

from ecgkit.trainer.batches import _EpochBatches
from ecgkit.trainer.config import TrainConfig

__all__: list[str] = []


def _raw_scale(dataset: Any) -> float | None:
    """mV per stored unit when the dataset can hand out raw (int16) batches, else None."""
    try:
        params = inspect.signature(dataset.get_batch).parameters
    except (TypeError, ValueError):
        return None
    scale = getattr(dataset, "scale_mv", None)
    if "raw" in params and isinstance(scale, (int, float, np.floating)):
        return float(scale)
    return None


class _BatchSource(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches: ``(task, indices, k) -> tensors``.

    Runs in DataLoader workers: one ``get_batch`` call per batch (the shard reader makes it a few
    fast contiguous reads), labels from the in-memory (N, H) matrix of major + auxiliary labels.
    ``mode`` sets what crosses to the main process and the GPU: ``"raw"`` (stored int16, scaled on
    the GPU), ``"bfloat16"`` (under bf16 autocast the first convolution rounds its input to bf16
    anyway, so shipping bf16 is numerically identical and halves the bytes) or ``"float32"``.
    """

    def __init__(self, dataset: Any, labels: NDArray[np.int8], mode: str):
        self.dataset, self.labels, self.mode = dataset, labels, mode

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item: tuple[int, NDArray[np.int64], int]) -> tuple[int, torch.Tensor, torch.Tensor, int]:
        task, idx, k = item
        if self.mode == "raw" and hasattr(self.dataset, "stored_dtype"):  # ShardDataset
            shape = (len(idx), len(self.dataset.leads), int(self.dataset.n_samples))
            x = torch.from_numpy(np.empty(0, dtype=self.dataset.stored_dtype)).new_empty(shape)
            if torch.utils.data.get_worker_info() is not None:
                # Fill the batch straight into shared memory: the DataLoader then passes it to the
                # main process as a file descriptor instead of copying 30 MB per batch of 256.
                x.share_memory_()
            self.dataset.get_batch(idx, out=x.numpy(), raw=True)
        elif self.mode == "raw":
            signals, _ = self.dataset.get_batch(idx, raw=True)
            x = torch.from_numpy(np.ascontiguousarray(signals))
        else:
            signals, _ = self.dataset.get_batch(idx)
            x = torch.from_numpy(np.ascontiguousarray(signals, dtype=np.float32))
            if self.mode == "bfloat16":
                x = x.to(torch.bfloat16)
        return task, x, torch.from_numpy(self.labels[idx]), k


def _ship_mode(dataset: Any, amp_on_cuda: bool) -> tuple[str, float | None]:
    scale = _raw_scale(dataset)
    if scale is not None:
        return "raw", scale
    return ("bfloat16" if amp_on_cuda else "float32"), None


class _ThreadLoader:
    """Ordered batches ``(task, signals, labels, k)`` read by a thread pool into a ring of reused buffers.

    ``pread`` and numpy release the GIL, so reader threads run in parallel with the training loop
    in one process. Each batch's stored values (int16) go straight from the page cache into a
    pinned slot that the GPU copies from; a slot is refilled only after the copy that read it has
    finished (a CUDA event per slot), so nothing is allocated, faulted in or copied twice per batch.
    The consumer must finish using a yielded batch (copy it to the device) before asking for the next.
    """

    def __init__(self, source: _BatchSource, items: Any, n_threads: int, depth: int, device: torch.device):
        ds = source.dataset
        self.source, self.items, self.device = source, items, device
        self.n_threads, self.depth = max(1, n_threads), max(2, depth)
        shape = (int(items.sampler.batch_size), len(ds.leads), int(ds.n_samples))
        dtype = torch.from_numpy(np.empty(0, dtype=ds.stored_dtype)).dtype
        pin = device.type == "cuda"
        self.slots = [torch.empty(shape, dtype=dtype, pin_memory=pin) for _ in range(self.depth)]
        self.events: list[Any] = [None] * self.depth

    def __len__(self) -> int:
        return len(self.items)

    def _fill(self, slot: int, task: int, idx: NDArray[np.int64], k: int) -> tuple[int, torch.Tensor, torch.Tensor, int]:
        if self.events[slot] is not None:
            self.events[slot].synchronize()  # the GPU copy of this slot's previous batch is done
        buf = self.slots[slot][: len(idx)]
        self.source.dataset.get_batch(idx, out=buf.numpy(), raw=True)
        return task, buf, torch.from_numpy(self.source.labels[idx]), k

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, int]]:
        pending: deque[tuple[int, Future[Any]]] = deque()
        it = iter(self.items)
        slot = 0
        with ThreadPoolExecutor(self.n_threads, thread_name_prefix="ecgkit-reader") as pool:
            try:
                while True:
                    while len(pending) < self.depth - 1:  # one slot stays with the consumer
                        nxt = next(it, None)
                        if nxt is None:
                            break
                        task, idx, k = nxt
                        pending.append((slot, pool.submit(self._fill, slot, int(task), idx, int(k))))
                        slot = (slot + 1) % self.depth
                    if not pending:
                        return
                    used, fut = pending.popleft()
                    yield fut.result()
                    if self.device.type == "cuda":  # the consumer has queued the copy of slot `used`
                        ev = torch.cuda.Event()
                        ev.record()
                        self.events[used] = ev
            finally:
                for _, fut in pending:
                    fut.cancel()


def _loader(source: _BatchSource, items: Any, cfg: TrainConfig, device: torch.device) -> Any:
    if (cfg.loader == "threads" and device.type == "cuda" and source.mode == "raw"
            and hasattr(source.dataset, "stored_dtype") and isinstance(items, _EpochBatches)):
        return _ThreadLoader(source, items, cfg.num_workers, cfg.num_workers * cfg.prefetch_factor + 2, device)
    workers = cfg.num_workers if device.type == "cuda" else 0  # CPU runs are tests/CI: keep one process
    return torch.utils.data.DataLoader(
        source, batch_size=None, sampler=items, num_workers=workers, pin_memory=device.type == "cuda",
        prefetch_factor=cfg.prefetch_factor if workers else None, persistent_workers=False,
        # a private generator: creating the iterator must not consume the global RNG (dropout), so a
        # resumed run draws the same dropout masks as an uninterrupted one
        generator=torch.Generator().manual_seed(cfg.seed))




def _to_device(signals: torch.Tensor, labels: torch.Tensor, device: torch.device,
               scale: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    x = signals.to(device, non_blocking=True)
    if scale is not None:
        x = x.float() * scale  # int16 -> mV on the device
    elif x.dtype != torch.bfloat16:
        x = x.float()
    return x, labels.to(device, non_blocking=True)

