"""Part-wise scan (``ecgkit scan --engine``): the same manifest as the in-process scan, from parts.

Checked on real files (the Challenge records, the SCP-ECG and MUSE examples, MIT-BIH record 100
which is quarantined) on the local pool and on a local Dask cluster.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ecgkit.ingest import ScanConfig, scan
from ecgkit.manifest import read_manifest, write_manifest
from ecgkit.scan_parts import scan_to_dir


@pytest.fixture(scope="module")
def archive(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    shutil.copytree(shared_data / "cinc2021", root / "cinc2021")
    shutil.copytree(shared_data / "scp-ecg", root / "scp-ecg", copy_function=shutil.copyfile)
    shutil.copytree(shared_data / "physionet-samples", root / "physionet", copy_function=shutil.copyfile)
    return root


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("record_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def expected(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    df = scan([archive], ScanConfig(workers=1))
    out = tmp_path_factory.mktemp("expected")
    write_manifest(df, out)  # through Parquet, as the parts go
    back = read_manifest(out)
    back.attrs = df.attrs
    return back


def _check(out: Path, summary: dict, expected: pd.DataFrame) -> None:
    got = read_manifest(out)
    pd.testing.assert_frame_equal(_sorted(got), _sorted(expected))
    assert summary["records"] == len(expected) == summary["ok"] + summary["quarantined"]
    assert summary["ok"] == int((expected["status"] == "ok").sum())
    assert summary["parts"] == -(-len(expected) // 16) and not (out / "parts").exists()
    assert summary["skipped_by_reason"] == expected.attrs["skipped_by_reason"]
    q = pq.read_table(out / "quarantine.parquet").to_pandas()
    assert q["record_id"].tolist() == ["physionet/100"] and q["stage"].tolist() == ["scan"]
    assert len(pd.read_csv(out / "skipped_files.csv")) == summary["skipped_files"]


def test_local_pool_parts(archive: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    summary = scan_to_dir([archive], tmp_path, ScanConfig(workers=2, chunk_size=16))
    assert summary["engine"] == "local"
    _check(tmp_path, summary, expected)


def test_dask_parts(archive: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    from dask.distributed import LocalCluster

    # an in-process cluster: a process cluster starts in ~20 s on a loaded 2-core box
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None) as cluster:
        summary = scan_to_dir([archive], tmp_path, ScanConfig(chunk_size=16), engine="dask",
                              scheduler=cluster.scheduler_address)
    assert summary["engine"] == "dask"
    _check(tmp_path, summary, expected)


def test_cli_scan_engine_local(archive: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from ecgkit.cli import main

    result = CliRunner().invoke(main, ["scan", str(archive), "--out", str(tmp_path), "--engine", "local",
                                       "--workers", "2", "--max-quarantine-rate", "0.5"])
    assert result.exit_code == 0, result.output
    assert "parts):" in result.output and f"{len(expected)} records" in result.output
    summary = json.loads((tmp_path / "scan_summary.json").read_text())
    assert summary["records"] == len(expected) and summary["engine"] == "local"
    pd.testing.assert_frame_equal(_sorted(read_manifest(tmp_path)), _sorted(expected))
