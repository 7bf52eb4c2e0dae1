"""The trainer's threaded shard loader yields exactly the batches the sampler asks for.

Golden values: ``ShardDataset.get_batch(raw=True)`` of the same indices (itself checked against
``wfdb.rdsamp`` in ``tests/test_data.py``), on shards of real PTB-XL records.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgkit.config import make_config
from ecgkit.data import ShardDataset
from ecgkit.errors import ConfigError
from ecgkit.shards import ShardConfig, write_shards
from ecgkit.split import split_by_patient
from ecgkit.trainer import TrainConfig
from ecgkit.trainer.batches import MultiLabelBatches, _EpochBatches, _task_aware_sampler
from ecgkit.trainer.loader import _BatchSource, _loader, _ship_mode, _ThreadLoader
from ptbxl_cohort import ptbxl_manifest


@pytest.fixture(scope="module")
def dataset(ptbxl_dir, tmp_path_factory):
    cohort = split_by_patient(ptbxl_manifest(ptbxl_dir, 60), seed=0)
    out = tmp_path_factory.mktemp("shards")
    write_shards(cohort, out, ShardConfig(records_per_shard=8, workers=1))  # several shards per batch
    return ShardDataset(out, split="train")


def _epoch(ds: ShardDataset, skip: int = 0) -> _EpochBatches:
    sampler = _task_aware_sampler(np.asarray(ds.labels), 6, task_weights=None, weight_fn="log", seed=3,
                                  batches_per_epoch=25, rank=0, world_size=1)
    return _EpochBatches(sampler, skip)


@pytest.mark.parametrize("threads,depth", [(1, 2), (3, 4), (4, 9)])
def test_thread_loader_yields_the_sampled_batches_in_order(dataset, threads, depth):
    mode, scale = _ship_mode(dataset, amp_on_cuda=True)
    assert mode == "raw" and scale == pytest.approx(dataset.scale_mv)
    expected = [(t, idx, k) for t, idx, k in _epoch(dataset, skip=2)]
    loader = _ThreadLoader(_BatchSource(dataset, dataset.labels, mode), _epoch(dataset, skip=2), threads, depth,
                           torch.device("cpu"))
    assert len(loader) == len(expected) == 23
    got = 0
    for (task, x, y, k), (et, eidx, ek) in zip(loader, expected):
        ref_x, ref_y = dataset.get_batch(eidx, raw=True)
        assert (task, k) == (et, ek)
        assert x.dtype == torch.int16 and tuple(x.shape) == (6, 12, 5000)
        assert np.array_equal(x.numpy(), ref_x) and np.array_equal(y.numpy(), ref_y)
        got += 1
    assert got == 23
    # the ring reuses its buffers: no more than `depth` distinct arrays were ever handed out
    assert len({s.data_ptr() for s in loader.slots}) == depth


def test_thread_loader_takes_the_major_task_samplers_multi_label_batches(dataset):
    # sampler="major_task" wraps the task-aware sampler; the GPU loader sizes its buffers by batch_size
    # (an H200 run of table 2 crashed on it: 'MultiLabelBatches' object has no attribute 'batch_size')
    plain = _epoch(dataset).sampler
    wrapped = MultiLabelBatches(_task_aware_sampler(np.asarray(dataset.labels), 6, task_weights=None, weight_fn="log",
                                                    seed=3, batches_per_epoch=25, rank=0, world_size=1))
    assert wrapped.batch_size == 6
    loader = _ThreadLoader(_BatchSource(dataset, dataset.labels, "raw"), _EpochBatches(wrapped, 0), 2, 3,
                           torch.device("cpu"))
    got = [(task, x.shape[0], y.numpy().copy()) for task, x, y, _ in loader]
    expected = [idx for _, idx in plain]
    assert len(got) == len(expected) == 25
    for (task, n, y), idx in zip(got, expected):  # the same records, trained as multi-label batches
        assert task == -1 and n == 6 and np.array_equal(y, dataset.labels[idx])


def test_loader_choice_follows_the_config(dataset):
    source = _BatchSource(dataset, dataset.labels, "raw")
    cpu = _loader(source, _epoch(dataset), TrainConfig(), torch.device("cpu"))
    assert isinstance(cpu, torch.utils.data.DataLoader)  # CPU runs (tests, CI) keep one process
    assert make_config(TrainConfig, {"loader": "processes"}).loader == "processes"
    with pytest.raises(ConfigError, match="loader"):
        make_config(TrainConfig, {"loader": "fibers"})
