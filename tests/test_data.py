"""Tests of :class:`ecgkit.data.ShardDataset` on shards of real PTB-XL records.

Golden values: signals from ``wfdb.rdsamp`` of the same files (PTB-XL stores 1 uV steps, so the
int16 shards reproduce them to float32 rounding); labels from ``ptbxl_database.csv`` via
``tests/ptbxl_cohort.py``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import wfdb

from ecgkit.data import ShardDataset
from ecgkit.errors import SchemaError
from ecgkit.shards import ShardConfig, read_index, write_shards
from ecgkit.split import ECG_P18, split_by_patient
from ptbxl_cohort import ptbxl_manifest

_WFDB_ORDER = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


@pytest.fixture(scope="module")
def cohort(ptbxl_dir):
    return split_by_patient(ptbxl_manifest(ptbxl_dir, 60), seed=0)


@pytest.fixture(scope="module")
def shards(cohort, tmp_path_factory):
    """The same 60 records as int16, lzf-compressed int16 and float16 shards, with the 18 ECG-P18
    labels asked for by name (the stand-in manifest has 15 of them: the other three are unknown)."""
    dirs = {}
    for name, kw in {"int16": {}, "lzf": {"compression": "lzf"}, "float16": {"dtype": "float16"}}.items():
        dirs[name] = tmp_path_factory.mktemp(name)
        write_shards(cohort, dirs[name], ShardConfig(records_per_shard=16, workers=1, labels=ECG_P18, **kw))
    return dirs


def _reference(cohort, record_ids) -> np.ndarray:
    out = []
    for rid in record_ids:
        src = cohort.loc[cohort["record_id"] == rid, "source_path"].item()
        sig, fields = wfdb.rdsamp(src.removesuffix(".hea"))
        out.append(sig[:, [fields["sig_name"].index(n) for n in _WFDB_ORDER]].T)
    return np.stack(out)  # (B, 12, 5000) float64 mV


def test_len_labels_and_metadata_match_index_and_manifest(shards, cohort):
    ds = ShardDataset(shards["int16"], split="train")
    index = read_index(shards["int16"])
    train = index[index["split"] == "train"].sort_values(["shard", "row"])
    assert len(ds) == len(train) == (cohort["split"] == "train").sum()
    assert list(ds.record_ids) == train["record_id"].tolist()
    assert ds.fs == 500.0 and ds.n_samples == 5000 and ds.label_names == ECG_P18
    assert ds.labels.dtype == np.int8 and ds.labels.shape == (len(ds), 18)
    rows = cohort.set_index("record_id").loc[list(ds.record_ids)]
    assert (ds.labels[:, ECG_P18.index("LVH")] == rows["LVH"].to_numpy()).all()
    assert (ds.labels[:, ECG_P18.index("EAR")] == -1).all()  # no EAR column in the manifest


def test_get_batch_matches_wfdb_in_requested_order(shards, cohort):
    ds = ShardDataset(shards["int16"], split="train", tasks=["AFIB", "LVH"])
    idx = np.array([5, 0, 31, 5, len(ds) - 1, 17, 18, 19])  # unsorted, a repeat, a consecutive run
    x, y = ds.get_batch(idx)
    assert x.dtype == np.float32 and x.shape == (8, 12, 5000)
    assert y.dtype == np.int8 and y.shape == (8, 2) and ds.label_names == ("AFIB", "LVH")
    ref = _reference(cohort, ds.record_ids[idx])
    assert np.abs(x - ref).max() <= 0.5e-3 + 1e-6
    rows = cohort.set_index("record_id").loc[list(ds.record_ids[idx])]
    assert (y == rows[["AFIB", "LVH"]].to_numpy()).all()
    one_x, one_y = ds[31]
    assert np.array_equal(one_x, x[2]) and np.array_equal(one_y, y[2])
    neg_x, _ = ds.get_batch([-1])
    assert np.array_equal(neg_x[0], x[4])


def test_get_batch_fills_out_and_cache_gives_the_same_values(shards):
    ds = ShardDataset(shards["int16"], split="test")
    cached = ShardDataset(shards["int16"], split="test", cache=True)
    idx = np.random.default_rng(0).integers(0, len(ds), 12)
    buf = np.full((12, 12, 5000), np.nan, dtype=np.float32)
    x, y = ds.get_batch(idx, out=buf)
    assert x is buf and np.isfinite(buf).all()
    cx, cy = cached.get_batch(idx)
    assert np.array_equal(cx, x) and np.array_equal(cy, y)
    with pytest.raises(ValueError, match="out must be"):
        ds.get_batch(idx, out=np.empty((3, 12, 5000), np.float32))


def test_lzf_and_float16_shards_read_back(shards, cohort):
    base = ShardDataset(shards["int16"], split="train")
    idx = np.array([3, 4, 5, 20, 1])
    x, _ = base.get_batch(idx)
    lzf = ShardDataset(shards["lzf"], split="train")  # compressed: HDF5 read path
    assert lzf._handle(0).offsets is None and base._handle(0).offsets is not None
    assert np.array_equal(lzf.get_batch(idx)[0], x)
    f16 = ShardDataset(shards["float16"], split="train")
    y = f16.get_batch(idx)[0]
    # float16 rounding: relative 2**-11 of the value (plus a tiny absolute floor near zero)
    assert np.all(np.abs(y - x) <= np.abs(x) * 2.0 ** -11 + 1e-6)


def test_dataloader_workers_read_through_their_own_handles(shards):
    ds = ShardDataset(shards["int16"], split="train")
    ds.get_batch([0, 1])  # parent opened handles before the fork
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    xs, ys = zip(*loader)
    x = torch.cat(xs).numpy()
    ref, ref_y = ds.get_batch(np.arange(len(ds)))
    assert x.shape == ref.shape and np.array_equal(x, ref)
    assert np.array_equal(torch.cat(ys).numpy(), ref_y)


def test_errors_name_the_problem(shards):
    ds = ShardDataset(shards["int16"], split="val")
    with pytest.raises(IndexError, match="val"):
        ds.get_batch([len(ds)])
    with pytest.raises(SchemaError, match="NOPE"):
        ShardDataset(shards["int16"], split="train", tasks=["AFIB", "NOPE"])
    with pytest.raises(SchemaError, match="split must be"):
        ShardDataset(shards["int16"], split="holdout")
    with pytest.raises(SchemaError, match="no shard index"):
        ShardDataset(shards["int16"] / "missing")


def test_returned_batches_are_never_overwritten_while_referenced(shards):
    ds = ShardDataset(shards["int16"], split="train")
    first, _ = ds.get_batch([0, 1, 2])
    expected = first.copy()
    tensor = torch.from_numpy(ds.get_batch([3, 4, 5])[0])  # only the tensor holds this one
    expected_t = tensor.numpy().copy()
    view = ds.get_batch([6, 7, 8])[0][1]  # only a view holds this one
    expected_v = view.copy()
    addresses = set()
    for start in range(10, 40, 3):  # more batches of the same shape than buffers kept for reuse
        x, _ = ds.get_batch([start, start + 1, start + 2])
        addresses.add(x.ctypes.data)
    assert np.array_equal(first, expected)
    assert np.array_equal(tensor.numpy(), expected_t)
    assert np.array_equal(view, expected_v)
    # dropped batches are recycled: the loop above needed only a couple of output buffers
    assert len(addresses) <= 2


@pytest.mark.parametrize("kind, cache", [("int16", False), ("int16", True), ("lzf", False),
                                         ("float16", False)])
def test_raw_batches_are_the_stored_values(shards, kind, cache):
    import h5py

    ds = ShardDataset(shards[kind], split="train", cache=cache)
    idx = np.array([7, 0, 1, 2, 7, len(ds) - 1])
    raw, y = ds.get_batch(idx, raw=True)
    stored = "float16" if kind == "float16" else "int16"
    assert raw.dtype == ds.stored_dtype == np.dtype(stored) and raw.shape == (6, 12, 5000)
    # the exact bytes of the shard file
    index = read_index(shards[kind]).set_index("record_id")
    for j, i in enumerate(idx):
        shard, row = index.loc[ds.record_ids[i], ["shard", "row"]]
        with h5py.File(shards[kind] / f"{shard}.h5", "r") as f:
            assert np.array_equal(raw[j], f["signal"][int(row)])
    x, y2 = ds.get_batch(idx)
    assert np.array_equal(y, y2)
    assert np.array_equal(raw.astype(np.float32) * np.float32(ds.scale_mv), x)
    assert ds.scale_mv == (0.001 if kind != "float16" else 1.0)
    with pytest.raises(ValueError, match=stored):
        ds.get_batch(idx, out=np.empty((6, 12, 5000), np.float32), raw=True)
