"""Training configuration and result: what ``ecgkit train --config FILE`` and the CLI options set.

Run directory layout (written by :func:`ecgkit.trainer.loop.train`): ``config.yaml`` (resolved config +
ecgkit version), ``aux_tasks.json`` (CO-TASK definitions), ``last.pt`` and ``best.pt`` (checkpoints),
``metrics.csv`` (one row per epoch), ``run_info.json`` (major tasks, training subset size, early-stopping
score), ``tb/`` (TensorBoard, when installed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["TrainConfig", "TrainResult", "CONFIG_FILE", "AUX_FILE", "LAST_CKPT", "BEST_CKPT", "METRICS_FILE",
           "RUN_INFO_FILE"]

CONFIG_FILE = "config.yaml"
AUX_FILE = "aux_tasks.json"
LAST_CKPT = "last.pt"
BEST_CKPT = "best.pt"
METRICS_FILE = "metrics.csv"
# what the run decided from the data: major tasks, the training subset's size, the early-stopping
# score and the tasks it covers (written by train, read by evaluate and run_experiment)
RUN_INFO_FILE = "run_info.json"


@dataclass(frozen=True)
class TrainConfig:
    """Training configuration (``ecgkit train --config FILE`` plus CLI overrides)."""

    # shards folder (SHARDS_DIR); saved with the run so `ecgkit evaluate RUN_DIR` can find it
    shards_dir: str | None = None
    # label names to train on (None: all of the shards' labels, in their order)
    tasks: tuple[str, ...] | None = None
    # "task_aware" = the CO-TASK procedure; "joint" = multi-label batches with a masked BCE;
    # "major_task" = CO-TASK Table 8's baseline: batches class-balanced for the major task(s) only
    # (task-aware draws over major_tasks), every head trained on them with the masked BCE
    sampler: Literal["task_aware", "joint", "major_task"] = "task_aware"
    # class weight w(n_c) of the task-aware sampler; CO-TASK's default log(x)/x
    weight_fn: str = "log"
    # CO-TASK auxiliary tasks (0 = none); the paper's gains came with a handful to dozens
    aux_tasks: int = 0
    # share of task-aware batches given to auxiliary tasks; None = every head picked uniformly
    aux_task_fraction: float | None = None
    # joint sampler only, rebalancing the training split: "ucsf" = Hughes et al.'s subset (distinct
    # records added rarest class first until each positive class has oversample_k or is depleted, at
    # most oversample_k per class); "duplicate" = copy positive records until each class has
    # oversample_k (duplicating 11 VT positives ~64x cost VT AUROC 0.909 -> 0.633 in one run)
    oversample: Literal["none", "ucsf", "duplicate"] = "none"
    # per-class target of `oversample` (None: Hughes' 4000)
    oversample_k: int | None = None
    # ucsf only: records with no positive label put in the subset (None: oversample_k)
    oversample_negatives: int | None = None
    # label names of the major tasks (None: every task is major). The task-aware sampler weights them
    # major_weight:1, CO-TASK auxiliary pairs favour them, and early stopping and the report's
    # headline use them only (CO-TASK Table 8: LVH major, four minor tasks)
    major_tasks: tuple[str, ...] | None = None
    # task-sampling and pair weight of a major task relative to a minor one (the CO-TASK authors'
    # ECG-EchoLVH runs used 5 as the task-sampling weight, their `major_task_scaler`)
    major_weight: float = 4.0
    # number of the aux_tasks pairs that include a major task, drawn uniformly, the rest among minor
    # tasks only (the authors' `mi_aux_task_count`: 4 of 8); None: pairs weighted by major_weight
    aux_major_pairs: int | None = None
    # how per-task losses add up: equal, dwa (Liu et al.) or uncertainty (Kendall et al.)
    weighting: Literal["equal", "dwa", "uncertainty"] = "equal"
    # DWA temperature; Liu et al. used 2
    dwa_temperature: float = 2.0
    # label noise in the TRAINING labels only (validation and test keep the shards' labels): each known
    # training label is, with this probability, replaced by a fair coin, so it is flipped with
    # probability label_noise / 2 (the usual "symmetric noise rate"; 0.5 flips a quarter). The draw
    # depends on `seed` only, so arms of the same seed see the same noisy labels
    label_noise: float = 0.0
    # residual blocks: 8 = CO-TASK backbone, 16 = Hannun's 34-layer network
    blocks: int = 8
    # Hannun's dropout between the two convolutions of a block
    dropout: float = 0.2
    # "standard": this trainer; "damtl": DAMTL's Algorithm 1 (ecgkit.trainer.damtl): an auxiliary network
    # on the union labels, then one soft-masked network per damtl_tasks entry, trained jointly
    method: Literal["standard", "damtl"] = "standard"
    # damtl: one label set per task, labels joined by "+" (e.g. ["LVH+AFIB+RBBB", "LVH+IRBBB+VT"]);
    # None: one task per cohort of multi-cohort shards (its defined labels, ecgkit.multicohort)
    damtl_tasks: tuple[str, ...] | None = None
    # damtl: a finished run on the union labels to use as the auxiliary network (None: train it in RUN/aux)
    damtl_aux_run: str | None = None
    # damtl: weight of sum_l ||Psi_l||_1 (a sum over every mask entry: keep it small)
    lambda_l1: float = 1e-6
    # damtl: weight of the conditional MMD between auxiliary and task features
    lambda_cmmd: float = 0.1
    # "hard": one shared trunk with a head per task (the default); "cross_stitch": one ResNet column
    # per task (auxiliary heads join their first task's column) mixed by cross-stitch units (Misra et
    # al.) after the blocks in cross_stitch_after; costs one trunk per task in compute and memory
    sharing: Literal["hard", "cross_stitch"] = "hard"
    # blocks (0-based) followed by a cross-stitch unit (None: every subsampling block, 1, 3, 5, ...)
    cross_stitch_after: tuple[int, ...] | None = None
    # cross_stitch columns: "task" (one per label head) or "cohort" (one per cohort of multi-cohort shards,
    # with heads for the labels its source defines; a label of several cohorts averages their columns)
    cross_stitch_columns: Literal["task", "cohort"] = "task"
    # initial weight of a column on itself in each unit (1.0 = independent columns at the start)
    cross_stitch_init: float = 0.9
    # filters of the first block: Hannun 32; Hughes et al. 64
    base_filters: int = 32
    # width schedule every 4 blocks: "double" (Hannun's code: 32, 64, 128, 256) or "linear" (the
    # "64k filters" wording: 64, 128, 192, 256); Hughes = base_filters 64 + linear (see models.resnet1d)
    filter_growth: Literal["double", "linear"] = "double"
    # blocks per width step: Hannun 4; the CO-TASK authors' code 2 (64, 64, 128, 128, 256, 256, 512, 512)
    increase_every: int = 4
    # "mean" pools the final map over time (Hannun, CO-TASK); "flatten" feeds the whole (C, T') map
    # to each task's logistic regression (Hughes: 256 x 10 at 2,500 samples); needs fixed-length records
    head: Literal["mean", "flatten"] = "mean"
    # convolution kernel of every layer: Hannun 16; the CO-TASK authors' code uses 25 (odd: symmetric padding)
    kernel_size: int = 16
    # maximum epochs; early stopping usually ends sooner
    epochs: int = 30
    # batches per epoch (None: the sampler's default, about one pass over the training records)
    batches_per_epoch: int | None = None
    # task-aware and major-task samplers: batches per epoch times this when batches_per_epoch is None
    # (the CO-TASK authors' num_batch_scaler: 3 for their five-task runs)
    batches_per_epoch_scale: float = 1.0
    # stop after this many optimiser steps in total (None: no limit); a checkpoint is written there.
    # The learning-rate schedule still spans `epochs`, so a run stopped here resumes exactly
    max_steps: int | None = None
    # records per batch per GPU; 256 keeps an H100 busy with the 8-block model (1024 is no faster)
    batch_size: int = 256
    # AdamW peak learning rate; Hannun used Adam 1e-3
    lr: float = 1e-3
    # AdamW weight decay (not applied to BN, biases or uncertainty weights); 0 is Adam without weight
    # decay (the same update), as Hannun and the CO-TASK authors' code train
    weight_decay: float = 1e-2
    # "cosine": linear warm-up, then cosine decay to 10 % of lr over the run (ecgkit's default);
    # "multistep": lr times lr_gamma at each epoch in lr_milestones (torch MultiStepLR; the CO-TASK
    # authors' code: milestones 7, 14, ..., 42, gamma 0.5, no warm-up), after warmup_steps if any
    lr_schedule: Literal["cosine", "multistep"] = "cosine"
    lr_milestones: tuple[int, ...] | None = None
    lr_gamma: float = 0.1
    # linear warm-up steps before the cosine decay (stabilises BN statistics with large batches);
    # capped at 10 % of the run's steps, so a short run is not spent warming up
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
    # run the whole training step (forward, loss, backward, clipping, AdamW) as one CUDA graph on a
    # single CUDA GPU with task-aware batches (ecgkit.trainer.graphed; the same step, fewer launches;
    # not measured on a GPU yet, so off by default); ignored on the CPU, under several GPUs and for
    # joint multi-label batches
    cuda_graph: bool = False
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
    # epochs without a better validation score before stopping
    patience: int = 5
    # validation score for early stopping and best.pt: "macro_auroc" over the (major) tasks with at
    # least early_stopping_min_positives validation positives, or "val_loss" (mean per-task BCE over
    # the same tasks; steadier when rare tasks have 1-2 validation positives, whose AUROC jumps)
    early_stopping: Literal["macro_auroc", "val_loss"] = "macro_auroc"
    # tasks with fewer validation positives are left out of the early-stopping score (1 = all)
    early_stopping_min_positives: int = 1
    # records per inference batch
    eval_batch_size: int = 512
    # write TensorBoard event files under RUN_DIR/tb
    tensorboard: bool = True
    # tqdm progress bar per epoch (the CLI turns it on; library default off)
    progress: bool = False

    def __post_init__(self) -> None:
        if self.blocks < 1 or self.batch_size < 1 or self.epochs < 1 or self.base_filters < 1:
            raise ValueError(f"blocks, base_filters, batch_size and epochs must be >= 1, got blocks={self.blocks}, "
                             f"base_filters={self.base_filters}, batch_size={self.batch_size}, epochs={self.epochs}")
        if not self.lr >= 0 or self.warmup_steps < 0:
            raise ValueError(f"lr and warmup_steps must be >= 0, got lr={self.lr}, "
                             f"warmup_steps={self.warmup_steps}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 (or None), got {self.max_steps}")
        if self.device not in ("auto", "cpu", "cuda") and not (self.device.startswith("cuda:")
                                                                and self.device[5:].isdigit()):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.head not in ("mean", "flatten") or self.filter_growth not in ("double", "linear"):
            raise ValueError(f"head must be mean or flatten and filter_growth double or linear, got "
                             f"{self.head!r}, {self.filter_growth!r}")
        if not self.batches_per_epoch_scale > 0 or (self.batches_per_epoch_scale != 1.0 and self.sampler == "joint"):
            raise ValueError(f"batches_per_epoch_scale must be > 0 and applies to the task-aware and major-task "
                             f"samplers only, got {self.batches_per_epoch_scale!r} with sampler {self.sampler!r}")
        if self.increase_every < 1:
            raise ValueError(f"increase_every must be >= 1, got {self.increase_every}")
        if self.lr_schedule not in ("cosine", "multistep"):
            raise ValueError(f"lr_schedule must be cosine or multistep, got {self.lr_schedule!r}")
        if self.lr_schedule == "multistep" and (not self.lr_milestones or any(
                int(m) != m or m < 1 for m in self.lr_milestones) or list(self.lr_milestones) != sorted(
                set(self.lr_milestones)) or not 0.0 < self.lr_gamma <= 1.0):
            raise ValueError(f"lr_schedule multistep needs lr_milestones, increasing epochs >= 1, and lr_gamma in "
                             f"(0, 1], got {self.lr_milestones!r}, {self.lr_gamma!r}")
        if int(self.kernel_size) != self.kernel_size or not 1 <= self.kernel_size <= 255:
            raise ValueError(f"kernel_size must be an integer in [1, 255], got {self.kernel_size!r}")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ValueError(f"label_noise must lie in [0, 1], got {self.label_noise}")
        if self.aux_tasks < 0:
            raise ValueError(f"aux_tasks must be >= 0, got {self.aux_tasks}")
        if self.aux_task_fraction is not None and not 0.0 <= self.aux_task_fraction < 1.0:
            raise ValueError(f"aux_task_fraction must lie in [0, 1), got {self.aux_task_fraction}")
        if self.sampler not in ("task_aware", "joint", "major_task"):
            raise ValueError(f"sampler must be 'task_aware', 'joint' or 'major_task', got {self.sampler!r}")
        if self.sampler == "major_task" and not self.major_tasks:
            raise ValueError("sampler='major_task' needs major_tasks (the label names to balance batches for)")
        if self.major_tasks is not None and len(set(self.major_tasks)) != len(self.major_tasks):
            raise ValueError(f"major_tasks lists a task twice: {list(self.major_tasks)}")
        if self.aux_major_pairs is not None and not (self.major_tasks and 0 <= self.aux_major_pairs <= self.aux_tasks):
            raise ValueError(f"aux_major_pairs needs major_tasks and must lie in [0, aux_tasks={self.aux_tasks}], "
                             f"got {self.aux_major_pairs}")
        if not self.major_weight > 0:
            raise ValueError(f"major_weight must be positive, got {self.major_weight}")
        if self.early_stopping not in ("macro_auroc", "val_loss") or self.early_stopping_min_positives < 1:
            raise ValueError(f"early_stopping must be macro_auroc or val_loss with early_stopping_min_positives "
                             f">= 1, got {self.early_stopping!r}, {self.early_stopping_min_positives}")
        if self.weighting not in ("equal", "dwa", "uncertainty"):
            raise ValueError(f"weighting must be equal, dwa or uncertainty, got {self.weighting!r}")
        if self.method == "damtl" and (self.damtl_tasks == () or self.lambda_l1 < 0 or self.lambda_cmmd < 0):
            raise ValueError("method='damtl' needs non-empty damtl_tasks (or None: one task per cohort of the "
                             "shards) and non-negative lambda_l1, lambda_cmmd")
        if self.cross_stitch_columns not in ("task", "cohort"):
            raise ValueError(f"cross_stitch_columns must be task or cohort, got {self.cross_stitch_columns!r}")
        if self.oversample not in ("none", "ucsf", "duplicate"):
            raise ValueError(f"oversample must be none, ucsf or duplicate, got {self.oversample!r}")
        if self.oversample == "none" and (self.oversample_k is not None or self.oversample_negatives is not None):
            raise ValueError(f"oversample_k={self.oversample_k} is set but oversample='none': choose "
                             "oversample='ucsf' (Hughes' subset, no duplicates) or 'duplicate'")
        if self.oversample != "none" and ((self.oversample_k is not None and self.oversample_k < 1)
                                          or self.sampler != "joint"):
            raise ValueError(f"oversample={self.oversample!r} needs sampler='joint' and oversample_k >= 1 (the "
                             f"task-aware sampler rebalances by itself), got oversample_k={self.oversample_k} "
                             f"with {self.sampler!r}")
        if self.oversample_negatives is not None and (self.oversample != "ucsf" or self.oversample_negatives < 0):
            raise ValueError("oversample_negatives needs oversample='ucsf' and must be >= 0")


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
        Validation macro AUROC (over the major tasks) of the best epoch; NaN when there was no validation.
    history : list of dict
        One row per completed epoch (the rows of ``metrics.csv``).
    interval_losses : list of (step, loss)
        Mean training loss of each log interval run in this call.
    interval_samples_per_s : list of (step, samples/s)
        Throughput of each log interval (all processes together), for steady-state measurements.
    stopped_early : bool
    samples_per_s : float
        Training throughput of this call (all processes together).
    best_val_score : float
        The early-stopping score of the best epoch (``val_loss`` criterion: minus the loss).
    resumed_from_step : int or None
        Steps already done before this call (``resume=True``); ``step - resumed_from_step`` were
        done by this call.
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
    best_val_score: float = float("nan")
    #: steps already done when this call resumed the run (None: a fresh run)
    resumed_from_step: int | None = None

