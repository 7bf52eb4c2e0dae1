"""Tests of the shard stage on real PTB-XL records.

Golden values: signals are compared with ``wfdb.rdsamp`` on the same files (PTB-XL stores 1 uV
steps, so int16 at ``scale_mv = 0.001`` must reproduce them to float32 rounding); labels and patient
ids come from ``ptbxl_database.csv`` via ``tests/ptbxl_cohort.py``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgkit import __version__
from ecgkit.config import make_config
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.manifest import conform, manifest_hash, read_manifest, write_manifest
from ecgkit.record import LEADS
from ecgkit.shards import ShardConfig, plan_shards, read_index, verify_shards, write_shards
from ecgkit.split import ECG_P18, patient_keys, split_by_patient
from ptbxl_cohort import ptbxl_manifest

REPO = Path(__file__).resolve().parent.parent
SHARD_COLUMNS = ["shard", "row"]


@pytest.fixture(scope="module")
def cohort(ptbxl_dir):
    """120 PTB-XL records with a stratified split."""
    return split_by_patient(ptbxl_manifest(ptbxl_dir, 120), seed=0)


@pytest.fixture(scope="module")
def written(cohort, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("shards")
    cfg = ShardConfig(records_per_shard=25, workers=2)
    return out_dir, write_shards(cohort, out_dir, cfg), cfg


def _rdsamp_mv(source_path: str) -> np.ndarray:
    sig, fields = wfdb.rdsamp(source_path.removesuffix(".hea"))
    order = [fields["sig_name"].index(lead) for lead in ("I", "II", "III", "AVR", "AVL", "AVF",
                                                          "V1", "V2", "V3", "V4", "V5", "V6")]
    return sig[:, order].T  # (12, 5000) float64 mV


def test_shards_round_trip_signals_within_int16_quantisation(written, cohort):
    out_dir, out, cfg = written
    index = read_index(out_dir)
    checked = 0
    for shard, rows in index.groupby("shard"):
        with h5py.File(out_dir / f"{shard}.h5", "r") as f:
            sig = f["signal"]
            assert sig.dtype == np.int16 and sig.chunks == (1, 12, 5000) and sig.compression is None
            scale = f.attrs["scale_mv"]
            ids = f["record_id"].asstr()[...]
            assert list(ids) == rows.sort_values("row")["record_id"].tolist()
            for j in (0, len(ids) - 1):
                src = cohort.loc[cohort["record_id"] == ids[j], "source_path"].item()
                ref = _rdsamp_mv(src)
                got = sig[j].astype(np.float64) * scale
                # int16 quantisation at 1 uV: half a step, plus float32 rounding of the reader
                assert np.abs(got - ref).max() <= 0.5e-3 + 1e-6
                checked += 1
    assert checked == 2 * index["shard"].nunique()


def test_shard_attributes_labels_and_patient_keys(written, cohort):
    out_dir, out, cfg = written
    with h5py.File(out_dir / "train-00000.h5", "r") as f:
        assert set(f.keys()) == {"signal", "labels", "record_id", "patient_key"}
        assert f.attrs["fs"] == 500.0 and f.attrs["n_samples"] == 5000 and f.attrs["seconds"] == 10.0
        assert list(f.attrs["leads"]) == list(LEADS)
        assert list(f.attrs["label_names"]) == list(ECG_P18)
        assert f.attrs["dtype"] == "int16" and f.attrs["scale_mv"] == 0.001 and f.attrs["units"] == "mV"
        assert f.attrs["ecgkit_version"] == __version__
        assert f.attrs["manifest_hash"] == manifest_hash(cohort)
        config = json.loads(f.attrs["config"])
        assert config["records_per_shard"] == 25 and config["dtype"] == "int16" and "workers" not in config
        labels = f["labels"][...]
        ids = f["record_id"].asstr()[...]
        keys = f["patient_key"].asstr()[...]
    assert labels.dtype == np.int8 and labels.shape == (25, 18)
    rows = cohort.set_index("record_id").loc[ids]
    for j, name in enumerate(ECG_P18):
        if name in cohort.columns:
            assert (labels[:, j] == rows[name].to_numpy()).all(), name
        else:  # no such column in the manifest (e.g. NIVCD, EAR, VT): unknown
            assert (labels[:, j] == -1).all(), name
    expected_keys = dict(zip(cohort["record_id"], patient_keys(cohort)))
    assert list(keys) == [expected_keys[r] for r in ids]
    assert not set(keys) & set(cohort["patient_id"])


def test_index_and_manifest_are_consistent(written, cohort):
    out_dir, out, cfg = written
    index = read_index(out_dir)
    assert list(index.columns) == ["record_id", "split", "shard", "row", "shard_sha256", "shard_bytes",
                                   "repairs"]
    assert len(index) == 120 and index["record_id"].is_unique
    assert list(out.columns) == [*cohort.columns, *SHARD_COLUMNS]
    merged = index.merge(out, on="record_id", suffixes=("", "_m"))
    assert (merged["split"] == merged["split_m"]).all()
    assert (merged["shard"] == merged["shard_m"]).all() and (merged["row"] == merged["row_m"]).all()
    assert (merged["shard"].str.split("-").str[0] == merged["split"]).all()
    # 120 records: train 84 -> shards of 25, 25, 25, 9
    assert index.groupby("shard").size().to_dict() == {
        **{f"train-0000{k}": n for k, n in enumerate([25, 25, 25, 9])},
        "val-00000": (out["split"] == "val").sum(), "test-00000": (out["split"] == "test").sum()}
    on_disk = read_manifest(out_dir)
    for col in ("record_id", "split", "shard", "row"):
        assert on_disk[col].tolist() == out[col].tolist(), col
    assert len(pd.read_parquet(out_dir / "quarantine.parquet")) == 0
    for shard, sha in index.groupby("shard")["shard_sha256"].first().items():
        import hashlib
        assert hashlib.sha256((out_dir / f"{shard}.h5").read_bytes()).hexdigest() == sha
    assert verify_shards(out_dir) == []


def test_rerun_keeps_complete_shards_and_rewrites_a_damaged_one(cohort, tmp_path):
    cfg = ShardConfig(records_per_shard=40, workers=1)
    first = write_shards(cohort, tmp_path, cfg)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.h5")}
    victim = tmp_path / "train-00001.h5"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the signal
    victim.write_bytes(bytes(data))
    assert verify_shards(tmp_path) == ["train-00001"]
    victim_stamp = victim.stat().st_mtime_ns
    again = write_shards(cohort, tmp_path, cfg)
    assert verify_shards(tmp_path) == []
    assert victim.stat().st_mtime_ns != victim_stamp
    for name, stamp in stamps.items():
        if name != victim.name:
            assert (tmp_path / name).stat().st_mtime_ns == stamp, name
    assert again[["record_id", "shard", "row"]].equals(first[["record_id", "shard", "row"]])


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import ecgkit.shards as shards
    from ecgkit.manifest import read_manifest
    real = shards.prepare_record
    def slow(*args, **kwargs):  # slow reads down so the kill lands mid-job
        time.sleep(0.01)
        return real(*args, **kwargs)
    shards.prepare_record = slow
    shards.write_shards(read_manifest(sys.argv[1]), sys.argv[2],
                        shards.ShardConfig(records_per_shard=6, workers=1))
""")


def test_kill_mid_job_then_rerun_has_every_record_exactly_once(cohort, tmp_path):
    manifest_path = write_manifest(cohort, tmp_path / "cohort")
    out_dir = tmp_path / "shards"
    script = tmp_path / "job.py"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    proc = subprocess.Popen([sys.executable, str(script), str(manifest_path), str(out_dir)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out_dir.glob("*.h5.json"))) < 3:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.name.removesuffix(".json"): p.stat().st_mtime_ns
                   for p in out_dir.glob("*.h5.json")}
    assert 3 <= len(done_before) < 20  # 120 records / 6 per shard = 20 shards: killed mid-way
    assert not (out_dir / "index.parquet").exists()
    stamps = {name: (out_dir / name).stat().st_mtime_ns for name in done_before}

    out = write_shards(read_manifest(manifest_path), out_dir, ShardConfig(records_per_shard=6, workers=1))
    index = read_index(out_dir)
    assert sorted(index["record_id"]) == sorted(cohort["record_id"])  # each exactly once
    assert index["record_id"].is_unique and out["shard"].notna().all()
    assert len(list(out_dir.glob("*.h5"))) == 20 and not list(out_dir.glob("*.tmp"))
    for name, stamp in stamps.items():  # shards complete before the kill were kept, not rewritten
        assert (out_dir / name).stat().st_mtime_ns == stamp, name
    assert verify_shards(out_dir) == []


def test_bad_records_are_quarantined_with_reason_and_counts_add_up(ptbxl_dir, tmp_path):
    base = ptbxl_manifest(ptbxl_dir, 12)
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    bad = {}
    for k, how in ((0, "truncated"), (1, "flat")):
        hea = Path(base.loc[k, "source_path"])
        for suffix in (".hea", ".dat"):
            shutil.copy(hea.with_suffix(suffix), src_dir / hea.with_suffix(suffix).name)
        dat = src_dir / hea.with_suffix(".dat").name
        raw = dat.read_bytes()
        # truncated: half the .dat is gone; flat: every sample 0 (valid file, no signal on any lead)
        dat.write_bytes(raw[: len(raw) // 2] if how == "truncated" else bytes(len(raw)))
        base.loc[k, "source_path"] = str(src_dir / hea.name)
        bad[base.loc[k, "record_id"]] = how
    cohort = split_by_patient(base, seed=0)
    out_dir = tmp_path / "shards"
    out = write_shards(cohort, out_dir, ShardConfig(records_per_shard=4, workers=1))
    assert list(out.columns) == [*cohort.columns, *SHARD_COLUMNS]
    q = out[out["status"] == "quarantined"]
    assert sorted(q["record_id"]) == sorted(bad)
    for rid, how in bad.items():
        reason = q.loc[q["record_id"] == rid, "reason"].item()
        assert rid in reason and reason.startswith("shard:")
        if how == "flat":
            assert "all 12 leads flat" in reason
    assert q["shard"].isna().all() and q["row"].isna().all() and q["split"].notna().all()
    qt = pd.read_parquet(out_dir / "quarantine.parquet")
    assert sorted(qt["record_id"]) == sorted(bad) and set(qt["stage"]) == {"shard"}
    assert list(qt.columns) == ["record_id", "source_path", "stage", "reason"]
    index = read_index(out_dir)
    assert len(index) + len(q) == 12 == len(cohort)
    assert set(index["record_id"]).isdisjoint(bad)
    # the quarantine is in the manifest copy on disk too
    on_disk = read_manifest(out_dir)
    assert (on_disk.set_index("record_id").loc[list(bad), "status"] == "quarantined").all()


def test_short_records_padded_or_quarantined(ptbxl_dir, tmp_path):
    cohort = split_by_patient(ptbxl_manifest(ptbxl_dir, 4), seed=0)
    out = write_shards(cohort, tmp_path / "pad", ShardConfig(seconds=12, workers=1))
    index = read_index(tmp_path / "pad")
    assert (index["repairs"].str.contains("padded 5000->6000")).all()
    with h5py.File(tmp_path / "pad" / f"{index['shard'][0]}.h5", "r") as f:
        assert f["signal"].shape[2] == 6000
        assert (f["signal"][0, :, 5000:] == 0).all()
    out = write_shards(cohort, tmp_path / "rej", ShardConfig(seconds=12, short="reject", workers=1))
    assert (out["status"] == "quarantined").all()
    assert out["reason"].str.contains("shorter than the required 12 s").all()


def test_shard_without_split_column_raises(ptbxl_dir, tmp_path):
    with pytest.raises(SchemaError, match="split"):
        write_shards(ptbxl_manifest(ptbxl_dir, 3), tmp_path, ShardConfig(workers=1))


def test_shard_refuses_a_leaky_split_before_reading_anything(cohort, tmp_path):
    bad = cohort.copy()
    pid = bad["patient_id"].value_counts().index[0]
    rows = bad.index[bad["patient_id"] == pid]
    bad.loc[rows[0], "split"], bad.loc[rows[1], "split"] = "train", "test"
    with pytest.raises(SchemaError, match=str(pid)):
        write_shards(bad, tmp_path / "leaky", ShardConfig(workers=1))
    assert not (tmp_path / "leaky").exists()


def test_shard_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="dtype"):
        make_config(ShardConfig, {"dtype": "int8"})
    with pytest.raises(ConfigError, match="records_per_shard"):
        ShardConfig(records_per_shard=0)
    with pytest.raises(ConfigError, match="unknown"):
        make_config(ShardConfig, {"chunk": 4})
    assert make_config(ShardConfig, {"compression": "lzf", "records_per_shard": "8"}).records_per_shard == 8


def test_plan_is_independent_of_row_order(cohort):
    cfg = ShardConfig(records_per_shard=25)
    a = plan_shards(cohort, cfg)
    b = plan_shards(cohort.sample(frac=1.0, random_state=0), cfg)
    cols = ["record_id", "shard"]
    assert a[cols].reset_index(drop=True).equals(b[cols].reset_index(drop=True))


def test_dask_engine_writes_the_same_shards(cohort, written, tmp_path):
    from dask.distributed import LocalCluster

    out_dir, out_local, cfg = written
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None) as cluster:
        dcfg = ShardConfig(records_per_shard=25, engine="dask", scheduler=cluster.scheduler_address)
        out_dask = write_shards(cohort, tmp_path, dcfg)
    assert out_dask[["record_id", "shard", "row"]].equals(out_local[["record_id", "shard", "row"]])
    for name in ("train-00000", "test-00000"):
        with h5py.File(out_dir / f"{name}.h5", "r") as a, h5py.File(tmp_path / f"{name}.h5", "r") as b:
            assert np.array_equal(a["signal"][...], b["signal"][...])
            assert np.array_equal(a["labels"][...], b["labels"][...])


@pytest.mark.parametrize("fault", ["lost", "duplicated", "both"])
def test_accounting_check_refuses_lost_or_duplicated_records(ptbxl_dir, tmp_path, monkeypatch, fault):
    """records in == records in shards + records quarantined is checked at the end, not assumed."""
    import ecgkit.shards as shards_mod

    cohort = split_by_patient(ptbxl_manifest(ptbxl_dir, 12), seed=0)
    real = shards_mod._write_shard
    victim = plan_shards(cohort, ShardConfig(records_per_shard=4))["record_id"].iloc[0]

    def faulty(task):
        side = real(task)
        if victim in side["record_ids"]:
            if fault == "lost":  # a worker that forgets a record it was given
                side["record_ids"].remove(victim)
                side["repairs"].pop()
                side["n_rows"] -= 1
            elif fault == "duplicated":
                side["record_ids"].append(victim)
                side["repairs"].append("")
                side["n_rows"] += 1
            else:  # written and quarantined
                side["quarantined"][victim] = "shard: injected"
        return side

    monkeypatch.setattr(shards_mod, "_write_shard", faulty)
    with pytest.raises(SchemaError, match="shard accounting failed"):
        write_shards(cohort, tmp_path, ShardConfig(records_per_shard=4, workers=1))
    assert not (tmp_path / "index.parquet").exists()
