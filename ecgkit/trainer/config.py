"""Training configuration and result: what ``ecgkit train --config FILE`` and the CLI options set.

Run directory layout (written by :func:`ecgkit.trainer.loop.train`): ``config.yaml`` (resolved config +
ecgkit version), ``aux_tasks.json`` (CO-TASK definitions), ``last.pt`` and ``best.pt`` (checkpoints),
``metrics.csv`` (one row per epoch), ``tb/`` (TensorBoard, when installed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["TrainConfig", "TrainResult", "CONFIG_FILE", "AUX_FILE", "LAST_CKPT", "BEST_CKPT", "METRICS_FILE"]

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
    # how the convolutions run: "channels_last" ((B, C, 1, T) conv2d in NHWC memory: the same
    # function and weights, faster cuDNN kernels on GPUs; BENCHMARKS.md), "conv1d", or "auto"
    # (channels_last on CUDA, conv1d on the CPU). Checkpoints load into either path.
    conv_path: Literal["auto", "conv1d", "channels_last"] = "auto"
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

