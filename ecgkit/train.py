"""Training stage: HDF5 shards -> a multi-head 1D ResNet run directory.

``train(config, out_dir)`` reads ``ShardDataset`` splits, builds the Hannun ResNet with one head per
task (major tasks first, then CO-TASK auxiliary tasks), and trains it with either

- ``sampler="task_aware"`` (the CO-TASK procedure): each batch comes from ``TaskAwareSampler`` with
  its task; the loss is that task's head only. Auxiliary tasks are sampled like major tasks: the
  sampler runs over the (N, T + M) label matrix of major and auxiliary labels, so an auxiliary task
  gets its own batches drawn from its 1/n subset (its labels are -1 elsewhere, never drawn). By
  default every head is picked uniformly; ``aux_task_fraction`` sets the share of auxiliary batches.
- ``sampler="joint"``: shuffled batches with all labels and a masked BCE (unknown labels ignored).

The per-task losses are combined by ``weighting`` (equal, DWA, uncertainty; see ``ecgkit.losses``).

Run directory
-------------
``config.yaml`` (resolved config + ecgkit version), ``aux_tasks.json`` (CO-TASK definitions),
``last.pt`` and ``best.pt`` (checkpoints), ``metrics.csv`` (one row per epoch), ``tb/`` (TensorBoard).

Data path on CUDA
-----------------
The sampler runs in the main process and hands index batches to DataLoader workers, which call
``get_batch`` and return pinned tensors; the step copies them with ``non_blocking=True`` and
converts to float on the GPU. When the dataset offers ``get_batch(indices, raw=True)`` (storage
dtype, e.g. int16) and a ``scale`` attribute (mV per unit), workers ship int16, which halves the
bytes through shared memory, pinning and PCIe (15,000 records/s of 12 x 5000 int16 is 1.8 GB/s).

Multi-GPU: launch with ``torchrun --nproc_per_node G -m ecgkit train ...``; RANK/WORLD_SIZE/
LOCAL_RANK select the GPU, the sampler draws a disjoint stream per rank, and ``batch_size`` is per
GPU. One GPU needs no torchrun.
"""
from __future__ import annotations

import csv
import dataclasses
import inspect
import logging
import math
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, cast

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from numpy.typing import NDArray
from torch import nn

from ecgkit import __version__
from ecgkit.config import config_to_dict, make_config
from ecgkit.errors import ConfigError
from ecgkit.losses import LossWeighting, make_weighting, masked_bce
from ecgkit.metrics import macro_auroc
from ecgkit.models.resnet1d import ResNet1d, ResNet1dConfig

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "train", "export", "load_checkpoint", "load_exported", "predict",
           "predict_run", "JointBatchSampler"]

CONFIG_FILE = "config.yaml"
AUX_FILE = "aux_tasks.json"
LAST_CKPT = "last.pt"
BEST_CKPT = "best.pt"
METRICS_FILE = "metrics.csv"


@dataclass(frozen=True)
class TrainConfig:
    """Training configuration (``ecgkit train --config FILE`` plus CLI overrides)."""

    # shards folder (SHARDS_DIR); saved with the run so `ecgkit evaluate RUN_DIR` can find it
    shards_dir: str | None = None
    # label names to train on (None: all of the shards' labels, in their order)
    tasks: tuple[str, ...] | None = None
    # "task_aware" = the CO-TASK procedure; "joint" = multi-label batches with a masked BCE
    sampler: Literal["task_aware", "joint"] = "task_aware"
    # class weight w(n_c) of the task-aware sampler; CO-TASK's default log(x)/x
    weight_fn: str = "log"
    # CO-TASK auxiliary tasks (0 = none); the paper's gains came with a handful to dozens
    aux_tasks: int = 0
    # share of task-aware batches given to auxiliary tasks; None = every head picked uniformly
    aux_task_fraction: float | None = None
    # joint sampler only: UCSF-style per-class oversampling, duplicating minority-class records until
    # each (task, class) has this many (None = off); the baseline to compare the task-aware sampler with
    oversample_k: int | None = None
    # how per-task losses add up: equal, dwa (Liu et al.) or uncertainty (Kendall et al.)
    weighting: Literal["equal", "dwa", "uncertainty"] = "equal"
    # DWA temperature; Liu et al. used 2
    dwa_temperature: float = 2.0
    # residual blocks: 8 = CO-TASK backbone, 16 = Hannun's 34-layer network
    blocks: int = 8
    # Hannun's dropout between the two convolutions of a block
    dropout: float = 0.2
    # maximum epochs; early stopping usually ends sooner
    epochs: int = 30
    # batches per epoch (None: the sampler's default, about one pass over the training records)
    batches_per_epoch: int | None = None
    # stop after this many optimiser steps in total (None: no limit); a checkpoint is written there
    max_steps: int | None = None
    # records per batch per GPU; 256 keeps an H100 busy with the 8-block model (1024 is no faster)
    batch_size: int = 256
    # AdamW peak learning rate; Hannun used Adam 1e-3
    lr: float = 1e-3
    # AdamW weight decay (not applied to BN, biases or uncertainty weights)
    weight_decay: float = 1e-2
    # linear warm-up steps before the cosine decay (stabilises BN statistics with large batches)
    warmup_steps: int = 100
    # gradient-norm clip (0 = off); guards rare spikes from the rarest tasks' batches
    grad_clip: float = 1.0
    # seed of model init, sampler, auxiliary tasks and dropout
    seed: int = 0
    # "auto" = cuda when available, else cpu
    device: str = "auto"
    # bf16 autocast on CUDA (no loss scaling needed, unlike fp16)
    amp: bool = True
    # torch.compile on CUDA: ~2.5x on this launch-bound model (MEASUREMENTS.md)
    compile: bool = True
    # loader workers per process: each reads ~20,000 records/s from shards, so a few suffice
    num_workers: int = 6
    # how shard batches reach the GPU. "threads": reader threads fill a ring of reused pinned
    # buffers with stored int16 (no process hop, no per-batch shared-memory pages to fault in, no
    # pinning copy; measured on an H200: DataLoader processes held end to end at 62-81 % of the
    # compute ceiling). "processes": a torch DataLoader with worker processes (any dataset).
    loader: Literal["threads", "processes"] = "threads"
    # batches each worker keeps ready
    prefetch_factor: int = 4
    # optimiser steps between log lines
    log_interval: int = 50
    # steps between mid-epoch checkpoints (0: only at the end of each epoch)
    checkpoint_interval: int = 0
    # split used for early stopping and the best checkpoint (None: no validation)
    val_split: str | None = "val"
    # epochs without a better validation macro AUROC before stopping
    patience: int = 5
    # records per inference batch
    eval_batch_size: int = 512
    # write TensorBoard event files under RUN_DIR/tb
    tensorboard: bool = True
    # tqdm progress bar per epoch (the CLI turns it on; library default off)
    progress: bool = False

    def __post_init__(self) -> None:
        if self.blocks < 1 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError("blocks, batch_size and epochs must be >= 1")
        if self.aux_tasks < 0:
            raise ValueError(f"aux_tasks must be >= 0, got {self.aux_tasks}")
        if self.aux_task_fraction is not None and not 0.0 <= self.aux_task_fraction < 1.0:
            raise ValueError(f"aux_task_fraction must lie in [0, 1), got {self.aux_task_fraction}")
        if self.sampler not in ("task_aware", "joint"):
            raise ValueError(f"sampler must be 'task_aware' or 'joint', got {self.sampler!r}")
        if self.weighting not in ("equal", "dwa", "uncertainty"):
            raise ValueError(f"weighting must be equal, dwa or uncertainty, got {self.weighting!r}")
        if self.oversample_k is not None and (self.oversample_k < 1 or self.sampler != "joint"):
            raise ValueError(f"oversample_k must be a positive integer and needs sampler='joint' (the "
                             f"task-aware sampler rebalances by itself), got {self.oversample_k} with "
                             f"{self.sampler!r}")


@dataclass(frozen=True)
class TrainResult:
    """What one call of :func:`train` did.

    Attributes
    ----------
    run_dir : Path
    step : int
        Optimiser steps done in total (including before a resume).
    epoch : int
        Epochs completed.
    best_val_macro_auroc : float
        NaN when there was no validation.
    history : list of dict
        One row per completed epoch (the rows of ``metrics.csv``).
    interval_losses : list of (step, loss)
        Mean training loss of each log interval run in this call.
    interval_samples_per_s : list of (step, samples/s)
        Throughput of each log interval (all processes together), for steady-state measurements.
    stopped_early : bool
    samples_per_s : float
        Training throughput of this call (all processes together).
    """

    run_dir: Path
    step: int
    epoch: int
    best_val_macro_auroc: float
    history: list[dict[str, Any]]
    interval_losses: list[tuple[int, float]] = field(default_factory=list)
    interval_samples_per_s: list[tuple[int, float]] = field(default_factory=list)
    stopped_early: bool = False
    samples_per_s: float = float("nan")


# --------------------------------------------------------------------------- integration points
# Stage boundaries: the shard reader, the sampler and CO-TASK live in their own modules; they are
# imported here, inside functions, so that `ecgkit.train` imports fast and tests can pass fakes.

def _open_dataset(shards_dir: str, split: str, tasks: tuple[str, ...] | None) -> Any:
    from ecgkit.data import ShardDataset
    return ShardDataset(shards_dir, split=split, tasks=list(tasks) if tasks else None)


def _task_aware_sampler(labels: NDArray, batch_size: int, *, task_weights: NDArray | None, weight_fn: str,
                        seed: int, batches_per_epoch: int | None, rank: int, world_size: int) -> Any:
    from ecgkit.sampler import TaskAwareSampler
    return TaskAwareSampler(labels, batch_size, task_weights=task_weights, weight_fn=weight_fn, seed=seed,
                            batches_per_epoch=batches_per_epoch, rank=rank, world_size=world_size)


def _make_aux(labels: NDArray, n_aux: int, seed: int,
              task_names: list[str] | None = None) -> tuple[list[dict], NDArray]:
    from ecgkit.cotask import aux_labels, make_aux_tasks
    defs = make_aux_tasks(labels, n_aux, seed=seed, task_names=task_names)
    return defs, np.asarray(aux_labels(defs, labels), dtype=np.int8)


def _save_aux(defs: list[dict], path: Path) -> None:
    """Write the definitions in the ``ecgkit.cotask`` file format (readable by ``load_aux_tasks``)."""
    from ecgkit.cotask import save_aux_tasks
    save_aux_tasks(defs, path)


def _oversample(labels: NDArray, k: int, seed: int) -> NDArray[np.int64]:
    from ecgkit.sampler import oversample_indices
    return oversample_indices(labels, k, seed=seed)


def _apply_aux(defs: list[dict], labels: NDArray) -> NDArray:
    from ecgkit.cotask import aux_labels
    return np.asarray(aux_labels(defs, labels), dtype=np.int8)


class JointBatchSampler:
    """Shuffled multi-label batches: a seeded permutation per epoch, strided over ranks.

    Same protocol as ``TaskAwareSampler``: iterating yields ``(-1, indices int64 (batch_size,))``
    (task -1 = all tasks); ``set_epoch``, ``state_dict``/``load_state_dict``, ``len``. The last
    partial batch is dropped so every batch has the same shape (no recompiles).

    ``pool`` (optional, int64 record indices with repeats, e.g. from
    :func:`ecgkit.sampler.oversample_indices`) is shuffled instead of ``range(n_records)``: an epoch
    is then a pass over the oversampled pool.
    """

    def __init__(self, n_records: int, batch_size: int, *, seed: int = 0, batches_per_epoch: int | None = None,
                 rank: int = 0, world_size: int = 1, pool: NDArray[np.int64] | None = None):
        self.pool = None if pool is None else np.asarray(pool, dtype=np.int64)
        if self.pool is not None:
            if self.pool.size and (self.pool.min() < 0 or self.pool.max() >= n_records):
                raise ValueError(f"pool indices must lie in [0, {n_records})")
            n_records = len(self.pool)
        if n_records < batch_size * world_size:
            raise ValueError(f"{n_records} records cannot fill one batch of {batch_size} on {world_size} rank(s)")
        self.n_records, self.batch_size, self.seed = n_records, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = batches_per_epoch or n_records // (batch_size * world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[tuple[int, NDArray[np.int64]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n_per_pass = self.n_records // (self.batch_size * self.world_size)
        for b in range(self.batches_per_epoch):
            if b % n_per_pass == 0:
                perm = rng.permutation(self.n_records)[self.rank::self.world_size]
            j = b % n_per_pass
            idx = perm[j * self.batch_size:(j + 1) * self.batch_size].astype(np.int64)
            yield -1, (idx if self.pool is None else self.pool[idx])

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])


class _EpochBatches:
    """The sampler's epoch as DataLoader items ``(task, indices, k)``, skipping k < ``skip`` (resume)."""

    def __init__(self, sampler: Any, skip: int):
        self.sampler, self.skip = sampler, skip

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)

    def __iter__(self) -> Iterator[tuple[int, NDArray[np.int64], int]]:
        for k, (task, idx) in enumerate(self.sampler):
            if k >= self.skip:
                yield int(task), np.asarray(idx, dtype=np.int64), k


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


# --------------------------------------------------------------------------- devices and processes

@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup(cfg: TrainConfig) -> tuple[torch.device, _Dist]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dist_info = _Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    want = cfg.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device")
    if want.startswith("cuda"):
        device = torch.device("cuda", dist_info.local_rank if world > 1 else torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device(want)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, dist_info


def _all_gather_rows(x: NDArray, dist_info: _Dist) -> list[NDArray]:
    return _all_gather_objects(x, dist_info)


def _all_gather_objects(x: Any, dist_info: _Dist) -> list[Any]:
    """``x`` of every rank, in rank order (``[x]`` without torchrun); every rank must call it."""
    if dist_info.world_size == 1:
        return [x]
    out: list[Any] = [None] * dist_info.world_size
    torch.distributed.all_gather_object(out, x)
    return out


def _rng_state(device: torch.device) -> dict[str, Any]:
    """This process's dropout streams: the CPU generator and, on CUDA, its device's generator."""
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _restore_rng(saved: Mapping[str, Any], rank: int, device: torch.device) -> None:
    """Restore this rank's generators from a checkpoint's ``rng`` entry (one state per rank)."""
    per_rank = saved.get("per_rank")
    if per_rank is not None:
        if len(per_rank) <= rank:
            raise ConfigError(f"the checkpoint holds random states of {len(per_rank)} rank(s); cannot resume "
                              f"rank {rank}: resume with the world size it was written with")
        mine = per_rank[rank]
        torch.set_rng_state(mine["torch"])
        if device.type == "cuda" and mine.get("cuda") is not None:
            torch.cuda.set_rng_state(mine["cuda"], device)
        return
    # checkpoints of earlier versions: rank 0's CPU state and rank 0's view of every device
    torch.set_rng_state(saved["torch"])
    cuda = saved.get("cuda")
    if device.type == "cuda" and cuda is not None:
        torch.cuda.set_rng_state(cuda[min(device.index or 0, len(cuda) - 1)], device)


# --------------------------------------------------------------------------- model and optimiser

def _build(cfg: TrainConfig, n_leads: int, n_heads: int) -> tuple[ResNet1d, LossWeighting]:
    torch.manual_seed(cfg.seed)
    model = ResNet1d(ResNet1dConfig(n_tasks=n_heads, n_leads=n_leads, n_blocks=cfg.blocks, dropout=cfg.dropout))
    kwargs = {"temperature": cfg.dwa_temperature} if cfg.weighting == "dwa" else {}
    return model, make_weighting(cfg.weighting, n_heads, **kwargs)


def _optimizer(cfg: TrainConfig, model: nn.Module, weighting: nn.Module, total_steps: int) -> tuple[
        torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1] + list(weighting.parameters())
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    warm = max(cfg.warmup_steps, 0)

    def lr_lambda(step: int) -> float:  # linear warm-up, then cosine to 10 % of the peak
        if step < warm:
            return (step + 1) / warm
        frac = min((step - warm) / max(total_steps - warm, 1), 1.0)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)


def _to_device(signals: torch.Tensor, labels: torch.Tensor, device: torch.device,
               scale: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    x = signals.to(device, non_blocking=True)
    if scale is not None:
        x = x.float() * scale  # int16 -> mV on the device
    elif x.dtype != torch.bfloat16:
        x = x.float()
    return x, labels.to(device, non_blocking=True)


@torch.no_grad()
def predict(model: nn.Module, dataset: Any, *, n_tasks: int | None = None, device: torch.device | str = "cpu",
            batch_size: int = 512, amp: bool = True, num_workers: int = 0, rank: int = 0,
            world_size: int = 1) -> NDArray[np.float32]:
    """Probabilities of the first ``n_tasks`` heads for every record of a dataset.

    Parameters
    ----------
    model : nn.Module
        (B, leads, L) -> logits (B, H).
    dataset : ShardDataset-like
        Anything with ``len`` and ``get_batch(indices)``.
    n_tasks : int, optional
        Keep the first n heads (the major tasks); default all.
    rank, world_size : int
        This process computes batches j with j % world_size == rank (rows of other ranks are NaN).

    Returns
    -------
    float32 array (N, n_tasks)
        Sigmoid probabilities, in dataset order.
    """
    device = torch.device(device)
    n = len(dataset)
    mode, scale = _ship_mode(dataset, amp and device.type == "cuda")
    labels = np.zeros((n, 1), dtype=np.int8)
    chunks = [np.arange(s, min(s + batch_size, n), dtype=np.int64) for s in range(0, n, batch_size)]
    items = [(-1, c, j) for j, c in enumerate(chunks) if j % world_size == rank]
    cfg = TrainConfig(num_workers=num_workers)
    loader = _loader(_BatchSource(dataset, labels, mode), items, cfg, device)
    was_training = model.training
    model.eval()
    out: NDArray[np.float32] | None = None
    for _, signals, _, j in loader:
        x, _ = _to_device(signals, torch.zeros(1), device, scale)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            logits = model(x)  # (B, H)
        p = torch.sigmoid(logits.float())
        p = p[:, :n_tasks] if n_tasks is not None else p
        if out is None:
            out = np.full((n, p.shape[1]), np.nan, dtype=np.float32)
        out[chunks[j]] = p.cpu().numpy()
    model.train(was_training)
    if out is None:
        out = np.zeros((n, n_tasks or 0), dtype=np.float32)
    return out


def train_step(model: nn.Module, weighting: LossWeighting, opt: torch.optim.Optimizer, sched: Any, x: torch.Tensor,
               y: torch.Tensor, task: int, *, amp: bool, grad_clip: float = 0.0,
               distributed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch already on the device (also used by the GPU benchmark's ceiling).

    Parameters
    ----------
    x : float tensor (B, leads, L); y : int8 tensor (B, H) with -1 unknown
    task : int
        The batch's task (task-aware: loss on that head only), or -1 for a joint multi-label batch.

    Returns
    -------
    task_losses : (H,) detached per-head losses; present : (H,) bool, heads that had a loss
    """
    n_heads = y.shape[1]
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(x)  # (B, H)
    if task >= 0:  # task-aware: this batch trains its task's head only
        present = F.one_hot(torch.tensor(task, device=x.device), n_heads).bool()
        head_loss = F.binary_cross_entropy_with_logits(logits[:, task].float(), y[:, task].float())
        task_losses = head_loss * present
    else:
        task_losses, present = masked_bce(logits, y)
    loss = weighting(task_losses, present)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if distributed:
        for p in weighting.parameters():  # not inside DDP: average by hand
            torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.AVG)
    if grad_clip > 0:
        params = [p for g in opt.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    if sched is not None:
        sched.step()
    return task_losses.detach(), present


# --------------------------------------------------------------------------- checkpoints

def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`train` (``RUN_DIR/last.pt`` or ``best.pt``).

    Raises
    ------
    FileNotFoundError
        Naming the path when it does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=False)


def _model_from_ckpt(ckpt: Mapping[str, Any]) -> ResNet1d:
    model = ResNet1d(ResNet1dConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model


def _write_csv(history: list[dict[str, Any]], path: Path) -> None:
    if not history:
        return
    keys = list(history[0].keys())
    for row in history[1:]:
        keys += [k for k in row if k not in keys]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- training

def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          datasets: Mapping[str, Any] | None = None) -> TrainResult:
    """Train a multi-head ResNet on shards and write a run directory.

    Parameters
    ----------
    config : TrainConfig
        ``config.shards_dir`` names the shards unless ``datasets`` is given.
    out_dir : path
        Run directory (created).
    resume : bool
        Continue from ``out_dir/last.pt`` exactly where it stopped (same batches, same dropout
        masks, same optimiser and scheduler state).
    datasets : mapping, optional
        ``{"train": ..., "val": ...}`` ShardDataset-like objects to use instead of opening
        ``config.shards_dir`` (in-memory data, tests).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        No shards given, unknown device, or ``resume`` without a checkpoint.
    """
    out = Path(out_dir)
    device, dist_info = _setup(config)
    if datasets is None and not config.shards_dir:
        raise ConfigError("TrainConfig.shards_dir is not set and no datasets were given")
    ckpt: dict[str, Any] | None = None
    if resume:
        if not (out / LAST_CKPT).exists():
            raise ConfigError(f"--resume given but {out / LAST_CKPT} does not exist")
        ckpt = load_checkpoint(out / LAST_CKPT)
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        meta = {"ecgkit_version": __version__, **config_to_dict(config)}
        (out / CONFIG_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))

    def open_split(split: str) -> Any:
        if datasets is not None:
            return datasets[split]
        return _open_dataset(str(config.shards_dir), split, config.tasks)

    train_ds = open_split("train")
    val_ds = open_split(config.val_split) if config.val_split else None
    label_names = list(train_ds.label_names)
    major = np.asarray(train_ds.labels, dtype=np.int8)
    n_major = major.shape[1]

    # CO-TASK auxiliary tasks: generated once from the training labels and saved with the run
    aux_defs: list[dict] = []
    labels_all = major
    if ckpt is not None:
        aux_defs = ckpt["aux_tasks"]
        if aux_defs:
            labels_all = np.concatenate([major, _apply_aux(aux_defs, major)], axis=1)
    elif config.aux_tasks:
        aux_defs, aux = _make_aux(major, config.aux_tasks, config.seed, label_names)
        labels_all = np.concatenate([major, aux], axis=1)
    if dist_info.main:
        _save_aux(aux_defs, out / AUX_FILE)
    n_heads = labels_all.shape[1]
    head_names = label_names + [str(d.get("name", f"aux{i}")) for i, d in enumerate(aux_defs)]

    if config.sampler == "task_aware":
        weights = None
        if config.aux_task_fraction is not None and n_heads > n_major:
            f = config.aux_task_fraction
            weights = np.r_[np.full(n_major, (1 - f) / n_major), np.full(n_heads - n_major, f / (n_heads - n_major))]
        sampler = _task_aware_sampler(labels_all, config.batch_size, task_weights=weights, weight_fn=config.weight_fn,
                                      seed=config.seed, batches_per_epoch=config.batches_per_epoch,
                                      rank=dist_info.rank, world_size=dist_info.world_size)
    else:
        # UCSF-style per-class oversampling (a dataset-level alternative to the task-aware sampler):
        # the shuffled pool repeats minority-class records until each class has oversample_k
        pool = _oversample(major, config.oversample_k, config.seed) if config.oversample_k else None
        if pool is not None:
            logger.info("oversampled the training split to %d records (k=%d per class)", len(pool),
                        config.oversample_k)
        sampler = JointBatchSampler(len(labels_all), config.batch_size, seed=config.seed,
                                    batches_per_epoch=config.batches_per_epoch, rank=dist_info.rank,
                                    world_size=dist_info.world_size, pool=pool)
    steps_per_epoch = len(sampler)

    sample_signal, _ = train_ds.get_batch(np.zeros(1, dtype=np.int64))
    raw_model, weighting = _build(config, sample_signal.shape[1], n_heads)
    raw_model.to(device)
    weighting.to(device)
    opt, sched = _optimizer(config, raw_model, weighting, config.epochs * steps_per_epoch)

    step, start_epoch, skip = 0, 0, 0
    history: list[dict[str, Any]] = []
    best, bad_epochs = -math.inf, 0
    ep_sum = torch.zeros(n_heads, dtype=torch.float64, device=device)
    ep_cnt = torch.zeros(n_heads, dtype=torch.float64, device=device)
    if ckpt is not None:
        raw_model.load_state_dict(ckpt["model"])
        weighting.load_state_dict(ckpt["weighting"])
        weighting.load_extra_state(ckpt["weighting_extra"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        # every rank is at the same position of its own stream; rank 0 saved its state
        sampler.load_state_dict({**ckpt["sampler"], "rank": dist_info.rank} if "rank" in ckpt["sampler"]
                                else ckpt["sampler"])
        step, start_epoch, skip = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        history, best, bad_epochs = ckpt["history"], ckpt["best"], ckpt["bad_epochs"]
        _restore_rng(ckpt["rng"], dist_info.rank, device)  # raises when the world size changed
        per_rank = ckpt["rng"].get("per_rank")
        losses = per_rank[dist_info.rank] if per_rank is not None else ckpt  # this rank's partial epoch
        ep_sum = torch.tensor(losses["epoch_loss_sum"], dtype=torch.float64, device=device)
        ep_cnt = torch.tensor(losses["epoch_loss_count"], dtype=torch.float64, device=device)
        logger.info("resumed %s at epoch %d, batch %d, step %d", out, start_epoch, skip, step)
    else:
        torch.manual_seed(config.seed + 1000 * dist_info.rank)  # per-rank dropout stream

    model: nn.Module = raw_model
    if dist_info.world_size > 1:
        model = nn.parallel.DistributedDataParallel(
            raw_model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile and device.type == "cuda":
        model = cast(nn.Module, torch.compile(model))
    use_amp = config.amp and device.type == "cuda"
    ship, scale = _ship_mode(train_ds, use_amp)
    source = _BatchSource(train_ds, labels_all, ship)
    logger.info("data path: %s batches from %d worker(s) to %s", ship, config.num_workers if device.type == "cuda"
                else 0, device)

    writer = None
    if config.tensorboard and dist_info.main:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out / "tb"), purge_step=step if ckpt is not None else None)

    def checkpoint(epoch: int, batch_in_epoch: int, sampler_state: Any, path: Path) -> None:
        # Every rank calls this at the same step: each rank's dropout streams and partial epoch losses
        # are gathered so that a resumed multi-GPU run continues exactly too.
        mine = {**_rng_state(device), "epoch_loss_sum": ep_sum.tolist(), "epoch_loss_count": ep_cnt.tolist()}
        per_rank = _all_gather_objects(mine, dist_info)
        if not dist_info.main:
            return
        _atomic_save({
            "model": raw_model.state_dict(), "model_config": dataclasses.asdict(raw_model.config),
            "weighting": weighting.state_dict(), "weighting_extra": weighting.extra_state(),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "sampler": sampler_state,
            "epoch": epoch, "batch_in_epoch": batch_in_epoch, "step": step, "history": history, "best": best,
            "bad_epochs": bad_epochs, "epoch_loss_sum": ep_sum.tolist(), "epoch_loss_count": ep_cnt.tolist(),
            "rng": {"torch": torch.get_rng_state(), "per_rank": per_rank},
            "config": config_to_dict(config), "label_names": label_names, "head_names": head_names,
            "n_major": n_major, "aux_tasks": aux_defs, "fs": getattr(train_ds, "fs", None),
            "ecgkit_version": __version__}, path)

    interval_losses: list[tuple[int, float]] = []
    interval_rates: list[tuple[int, float]] = []
    iv_sum = torch.zeros(n_heads, dtype=torch.float64, device=device)
    iv_cnt = torch.zeros(n_heads, dtype=torch.float64, device=device)
    iv_t0, iv_samples = time.perf_counter(), 0
    run_t0, run_samples = time.perf_counter(), 0
    stopped_early = False
    epoch = start_epoch
    raw_model.train()
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        sampler_state = sampler.state_dict() if skip == 0 else ckpt["sampler"]  # type: ignore[index]
        loader = _loader(source, _EpochBatches(sampler, skip), config, device)
        batches: Any = loader
        if config.progress and dist_info.main:
            from tqdm import tqdm
            batches = tqdm(loader, desc=f"epoch {epoch}", total=len(loader), leave=False)
        for task, signals, labels, k in batches:
            x, y = _to_device(signals, labels, device, scale)
            task_losses, present = train_step(model, weighting, opt, sched, x, y, task, amp=use_amp,
                                              grad_clip=config.grad_clip, distributed=dist_info.world_size > 1)
            step += 1
            tl = task_losses.detach().double()
            iv_sum += tl
            iv_cnt += present
            ep_sum += tl
            ep_cnt += present
            iv_samples += len(signals)
            run_samples += len(signals)
            if step % config.log_interval == 0:
                per_head = (iv_sum / iv_cnt.clamp(min=1)).tolist()
                seen = iv_cnt.tolist()
                mean_loss = float(iv_sum.sum() / iv_cnt.sum().clamp(min=1))
                rate = iv_samples * dist_info.world_size / max(time.perf_counter() - iv_t0, 1e-9)
                interval_losses.append((step, mean_loss))
                interval_rates.append((step, rate))
                if dist_info.main:
                    heads = " ".join(f"{h}={v:.4f}" for h, v, c in zip(head_names, per_head, seen) if c)
                    logger.info("step %d epoch %d loss %.4f lr %.3e samples/s %.0f | %s", step, epoch, mean_loss,
                                sched.get_last_lr()[0], rate, heads)
                    if writer is not None:
                        writer.add_scalar("train/loss", mean_loss, step)
                        writer.add_scalar("train/lr", sched.get_last_lr()[0], step)
                        writer.add_scalar("train/samples_per_s", rate, step)
                iv_sum.zero_()
                iv_cnt.zero_()
                iv_t0, iv_samples = time.perf_counter(), 0
            if config.max_steps is not None and step >= config.max_steps:
                checkpoint(epoch, k + 1, sampler_state, out / LAST_CKPT)
                logger.info("reached max_steps=%d at epoch %d batch %d", step, epoch, k + 1)
                return _finish(out, step, epoch, best, history, (interval_losses, interval_rates), False, run_samples,
                               run_t0, dist_info, writer)
            if config.checkpoint_interval and step % config.checkpoint_interval == 0:
                checkpoint(epoch, k + 1, sampler_state, out / LAST_CKPT)
        skip = 0

        # ---- end of epoch: loss weights, validation, early stopping, checkpoints, CSV
        if dist_info.world_size > 1:  # epoch losses over all ranks: the same DWA weights everywhere
            torch.distributed.all_reduce(ep_sum)
            torch.distributed.all_reduce(ep_cnt)
        ep_mean = (ep_sum / ep_cnt.clamp(min=1)).float().cpu()
        weighting.observe(ep_mean, (ep_cnt > 0).cpu())
        weighting.end_epoch()
        row: dict[str, Any] = {"epoch": epoch, "step": step,
                               "train_loss": float(ep_sum.sum() / ep_cnt.sum().clamp(min=1)),
                               "lr": sched.get_last_lr()[0]}
        row.update({f"loss_{h}": float(v) if c else float("nan")
                    for h, v, c in zip(head_names, ep_mean.tolist(), ep_cnt.tolist())})
        ep_sum.zero_()
        ep_cnt.zero_()
        val_auc = float("nan")
        if val_ds is not None:
            scores = predict(raw_model, val_ds, n_tasks=n_major, device=device, batch_size=config.eval_batch_size,
                             amp=config.amp, num_workers=config.num_workers if device.type == "cuda" else 0,
                             rank=dist_info.rank, world_size=dist_info.world_size)
            parts = _all_gather_rows(scores, dist_info)
            scores = np.fmax.reduce(parts) if len(parts) > 1 else parts[0]  # each row is set by one rank
            val_auc = macro_auroc(np.asarray(val_ds.labels, dtype=np.int8)[:, :n_major], scores)
        row["val_macro_auroc"] = val_auc
        row["elapsed_s"] = time.perf_counter() - run_t0
        history.append(row)
        improved = val_ds is None or (np.isfinite(val_auc) and val_auc > best)
        if improved:
            best = val_auc if val_ds is not None else best
            bad_epochs = 0
        else:
            bad_epochs += 1
        logger.info("epoch %d done: train loss %.4f, val macro AUROC %.4f (best %.4f, %d epoch(s) without gain)",
                    epoch, row["train_loss"], val_auc, best, bad_epochs)
        if writer is not None:
            writer.add_scalar("val/macro_auroc", val_auc, step)
            writer.add_scalar("train/epoch_loss", row["train_loss"], step)
        stop = val_ds is not None and bad_epochs >= config.patience
        checkpoint(epoch + 1, 0, sampler.state_dict(), out / LAST_CKPT)
        if improved:
            checkpoint(epoch + 1, 0, sampler.state_dict(), out / BEST_CKPT)
        if dist_info.main:
            _write_csv(history, out / METRICS_FILE)
        if stop:
            logger.info("early stop after epoch %d: no gain in %d epochs", epoch, config.patience)
            stopped_early = True
            break
    return _finish(out, step, epoch + 1 if history else epoch, best, history, (interval_losses, interval_rates), stopped_early,
                   run_samples, run_t0, dist_info, writer)


def _finish(out: Path, step: int, epoch: int, best: float, history: list[dict[str, Any]],
            intervals: tuple[list[tuple[int, float]], list[tuple[int, float]]], stopped_early: bool, samples: int,
            t0: float,
            dist_info: _Dist, writer: Any) -> TrainResult:
    if writer is not None:
        writer.close()
    if dist_info.world_size > 1:  # no rank returns before rank 0 has written the run's files
        torch.distributed.barrier()
    rate = samples * dist_info.world_size / max(time.perf_counter() - t0, 1e-9)
    return TrainResult(out, step, len(history), best if np.isfinite(best) else float("nan"), history,
                       intervals[0], intervals[1], stopped_early, rate)


# --------------------------------------------------------------------------- runs after training

def predict_run(run_dir: str | Path, split: str = "test", *, checkpoint: str = BEST_CKPT,
                device: str = "auto", dataset: Any = None, num_workers: int = 0) -> tuple[
                    NDArray[np.int8], NDArray[np.float32], list[str]]:
    """Major-task labels and probabilities of a trained run on one split.

    Parameters
    ----------
    run_dir : path
        A run written by :func:`train`; its checkpoint names the shards and tasks.
    split : str
    checkpoint : str
        ``best.pt`` (default; falls back to ``last.pt`` when there is no best) or ``last.pt``.
    dataset : ShardDataset-like, optional
        Use this instead of opening the run's shards.

    Returns
    -------
    y_true : int8 (N, T), y_score : float32 (N, T), label_names : list of str
    """
    run = Path(run_dir)
    path = run / checkpoint
    if not path.exists() and checkpoint == BEST_CKPT:
        path = run / LAST_CKPT
    ckpt = load_checkpoint(path)
    cfg = make_config(TrainConfig, {k: v for k, v in ckpt["config"].items()})
    if dataset is None:
        if not cfg.shards_dir:
            raise ConfigError(f"run {run} has no shards_dir in its config; pass a dataset")
        dataset = _open_dataset(cfg.shards_dir, split, cfg.tasks)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    model = _model_from_ckpt(ckpt).to(dev)
    n_major = int(ckpt["n_major"])
    scores = predict(model, dataset, n_tasks=n_major, device=dev, batch_size=cfg.eval_batch_size, amp=cfg.amp,
                     num_workers=num_workers)
    names = list(ckpt["label_names"])
    labels = np.asarray(dataset.labels, dtype=np.int8)
    have = list(getattr(dataset, "label_names", names[:labels.shape[1]]))
    missing = [n for n in names if n not in have]
    if missing:
        raise ConfigError(f"run {run} was trained on task(s) {missing} that the {split!r} dataset lacks "
                          f"(it has {have})")
    # the dataset may hold more or other-ordered tasks than the run (e.g. a single-task baseline)
    y = labels[:, [have.index(n) for n in names]]
    return y, scores, names


def export(run_dir: str | Path, out_path: str | Path, *, checkpoint: str = BEST_CKPT) -> Path:
    """Write a deployable model with exactly the major-task heads (auxiliary heads dropped).

    The file holds ``model`` (state dict), ``model_config``, ``label_names``, ``fs``, ``config`` and
    ``ecgkit_version``; :func:`load_exported` rebuilds the model.
    """
    run = Path(run_dir)
    path = run / checkpoint
    if not path.exists() and checkpoint == BEST_CKPT:
        path = run / LAST_CKPT
    ckpt = load_checkpoint(path)
    model = _model_from_ckpt(ckpt).keep_heads(range(int(ckpt["n_major"])))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save({"model": model.state_dict(), "model_config": dataclasses.asdict(model.config),
                  "label_names": list(ckpt["label_names"]), "fs": ckpt.get("fs"), "config": ckpt["config"],
                  "ecgkit_version": __version__}, out)
    return out


def load_exported(path: str | Path) -> tuple[ResNet1d, list[str]]:
    """Rebuild an exported model (eval mode) and its label names."""
    ckpt = load_checkpoint(path)
    model = _model_from_ckpt(ckpt).eval()
    return model, list(ckpt["label_names"])
