"""Training stage: HDF5 shards -> a trained multi-head 1D ResNet run directory, and its use.

One file per responsibility, read in this order:

==================  ===================================================================
module              what it holds
==================  ===================================================================
``config``          ``TrainConfig`` (every option, with why) and ``TrainResult``
``batches``         which records a step sees: sampler glue, ``JointBatchSampler``
``loader``          how batches reach the device: thread ring buffer, DataLoader
``distributed``     device choice, torchrun ranks, per-rank random streams
``step``            model + loss weighting, AdamW schedule, ``train_step``
``graphed``         the whole step replayed from one CUDA graph (``cuda_graph: on``)
``heads``           the run's heads (labels, CO-TASK auxiliary tasks) and its batch sampler
``checkpoint``      checkpoints and ``metrics.csv``
``validation``      the early-stopping score (macro AUROC or loss over the major tasks)
``rundir``          the run folder: refusing a run in place, the lock, shards checks
``log``             interval losses, throughput, TensorBoard, the per-epoch callback
``loop``            ``train``: the training loop itself
``damtl``           DAMTL's algorithm (big auxiliary network, then soft masks per task)
``predict``         ``predict``, ``predict_run``
``export``          ``export`` (model file, TorchScript, ONNX), ``load_exported``
==================  ===================================================================

The package is called ``trainer`` (not ``train``) so that ``ecgkit.train`` stays the function, as
``ecgkit.ingest`` holds ``ecgkit.scan``.
"""
from __future__ import annotations

from ecgkit.trainer.batches import JointBatchSampler, MultiLabelBatches
from ecgkit.trainer.checkpoint import load_checkpoint
from ecgkit.trainer.config import (AUX_FILE, BEST_CKPT, CONFIG_FILE, LAST_CKPT, METRICS_FILE, RUN_INFO_FILE,
                                   TrainConfig, TrainResult)
from ecgkit.trainer.loop import train
from ecgkit.trainer.export import export, load_exported
from ecgkit.trainer.predict import predict, predict_run
from ecgkit.trainer.step import train_step

__all__ = ["TrainConfig", "TrainResult", "train", "export", "load_checkpoint", "load_exported", "predict",
           "predict_run", "train_step", "JointBatchSampler", "CONFIG_FILE", "AUX_FILE", "LAST_CKPT", "BEST_CKPT",
           "METRICS_FILE", "RUN_INFO_FILE", "MultiLabelBatches"]
