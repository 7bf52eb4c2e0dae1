"""Shared fixtures: the real data in ``../shared/data``, read in place, never copied into the repo.

When the data is missing the tests that need it fail (never skip: a skip would hide missing real
data in CI), naming where they looked.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared_data_dir() -> Path:
    env = os.environ.get("ECGKIT_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real fixtures (``../shared/data``)."""
    path = _shared_data_dir()
    if not (path / "README.md").exists():
        pytest.fail(f"real ECG fixtures not found at {path} (set ECGKIT_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def ptbxl_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PTB-XL as PhysioNet ships it: ``records500/`` unpacked with ``ptbxl_database.csv`` beside it.

    Unpacked once per test session into a temporary folder.
    """
    root = tmp_path_factory.mktemp("ptbxl")
    with tarfile.open(shared_data / "ptbxl" / "records500.tar.xz") as tar:
        tar.extractall(root, filter="data")
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        (root / name).write_bytes((shared_data / "ptbxl" / name).read_bytes())
    return root


@pytest.fixture(scope="session")
def ptbxl_record1(ptbxl_dir: Path) -> Path:
    """Header path of PTB-XL record 1 (``records500/00000/00001_hr.hea``)."""
    return ptbxl_dir / "records500" / "00000" / "00001_hr.hea"
