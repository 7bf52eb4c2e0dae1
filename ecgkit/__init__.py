"""ecgkit: a data-pipeline-first toolkit for ECG phenotyping.

The stage entry points are re-exported here by name. They are resolved on first use so that
``import ecgkit`` stays fast and never imports torch or h5py for users who only scan and label.

=====================  ==========================================================
name                   stage
=====================  ==========================================================
read_record            ``ecgkit.io``: one file of any supported format -> Record
scan                   ``ecgkit.ingest``: sources -> manifest (the module is not called
                       ``scan`` so that ``ecgkit.scan`` stays the function)
label_texts            ``ecgkit.labels``: statements -> ECG-P18 label table
label_manifest         ``ecgkit.labels``: manifest -> manifest + label columns
split_by_patient       ``ecgkit.split``: manifest -> manifest + split column
split_kfold            ``ecgkit.split``: manifest -> manifest + patient-level fold column
write_shards           ``ecgkit.shards``: manifest -> HDF5 shards + index
ShardDataset           ``ecgkit.data``: shards -> torch dataset
TaskAwareSampler       ``ecgkit.sampler``: labels -> (task, indices) batches
ucsf_subset            ``ecgkit.oversample``: labels -> Hughes et al.'s rebalanced training subset
make_aux_tasks         ``ecgkit.cotask``: labels -> CO-TASK auxiliary task definitions
measure                ``ecgkit.measuring``: manifest -> manifest + beats, intervals, quality
                       (``measure_signal``: one (12, n) array -> one row)
audit                  ``ecgkit.auditing``: labels vs measurements -> flags (``write_audit`` reports)
train                  ``ecgkit.trainer``: shards -> a trained run directory (the package is
                       not called ``train`` so that ``ecgkit.train`` stays the function)
evaluate               ``ecgkit.report``: run -> report.json, report.md and plots
label_cohort           ``ecgkit.cohort``: what ``ecgkit label`` does to a cohort folder
split_cohort           ``ecgkit.cohort``: what ``ecgkit split`` does to a cohort folder
info                   ``ecgkit.info``: what a cohort, shards or run folder holds
export                 ``ecgkit.trainer``: a run -> one self-describing model file (or
                       TorchScript / ONNX)
load_model             ``ecgkit.model_file``: a model file -> ``EcgModel`` (``.predict``,
                       ``.contract``, ``.saliency``)
predict_sources        ``ecgkit.predict``: raw files, cohorts or shards -> predictions
=====================  ==========================================================
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Record": "ecgkit.record",
    "LEADS": "ecgkit.record",
    "read_record": "ecgkit.io",
    "scan": "ecgkit.ingest",
    "label_texts": "ecgkit.labels",
    "label_manifest": "ecgkit.labels",
    "explain": "ecgkit.labels",
    "split_by_patient": "ecgkit.split",
    "write_shards": "ecgkit.shards",
    "ShardDataset": "ecgkit.data",
    "TaskAwareSampler": "ecgkit.sampler",
    "make_aux_tasks": "ecgkit.cotask",
    "aux_labels": "ecgkit.cotask",
    "train": "ecgkit.trainer",
    "TrainConfig": "ecgkit.trainer",
    "predict_run": "ecgkit.trainer",
    "evaluate": "ecgkit.report",
    "label_cohort": "ecgkit.cohort",
    "split_cohort": "ecgkit.cohort",
    "info": "ecgkit.info",
    "measure": "ecgkit.measuring",
    "measure_signal": "ecgkit.measuring",
    "audit": "ecgkit.auditing",
    "export": "ecgkit.trainer",
    "load_model": "ecgkit.model_file",
    "EcgModel": "ecgkit.model_file",
    "InputContract": "ecgkit.contract",
    "predict_sources": "ecgkit.predict",
    "split_kfold": "ecgkit.split",
    "ucsf_subset": "ecgkit.oversample",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ecgkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
