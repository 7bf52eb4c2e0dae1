"""Jobs under crashes, concurrency and full disks: SIGKILL then rerun, two jobs on one folder, ENOSPC.

The disk-full test mounts a small tmpfs (the test machine runs as root); where mounting is not
permitted it fails loudly in CI rather than pretending.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from click.testing import CliRunner
from ptbxl_cohort import ptbxl_manifest

from ecgkit._lock import LOCK_FILE, LockedError, atomic_write_text, output_lock
from ecgkit.cli import main
from ecgkit.manifest import write_manifest
from ecgkit.shards import ShardConfig, read_index, verify_shards, write_shards
from ecgkit.split import split_by_patient

REPO = Path(__file__).resolve().parent.parent


def test_lock_refuses_a_second_holder_and_takes_over_a_stale_one(tmp_path: Path) -> None:
    with output_lock(tmp_path / "out", "scan") as lock:
        info = json.loads(lock.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["stage"] == "scan"
        with pytest.raises(LockedError, match=rf"in use by ecgkit scan \(pid {os.getpid()} on host"):
            with output_lock(tmp_path / "out", "shard"):
                pass
    assert not (tmp_path / "out" / LOCK_FILE).exists()
    # a lock left by a dead process on this host is stale: taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "out" / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                                          "stage": "shard", "started_at": 0}))
    with output_lock(tmp_path / "out", "scan"):
        assert json.loads((tmp_path / "out" / LOCK_FILE).read_text())["pid"] == os.getpid()
    # another host's lock cannot be checked from here: refused
    (tmp_path / "out" / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere", "stage": "train"}))
    with pytest.raises(LockedError, match="pid 1 on host elsewhere"):
        with output_lock(tmp_path / "out", "scan"):
            pass


def test_second_scan_on_one_folder_refuses(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    with output_lock(out, "scan"):
        result = CliRunner().invoke(main, ["scan", str(shared_data / "muse"), "--out", str(out)])
    assert result.exit_code == 5
    assert "is in use by ecgkit scan" in result.output
    assert not (out / "manifest.parquet").exists()
    ok = CliRunner().invoke(main, ["scan", str(shared_data / "muse"), "--out", str(out)])
    assert ok.exit_code == 0 and (out / "manifest.parquet").exists()


@pytest.fixture(scope="module")
def cohort(ptbxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 PTB-XL records with a split, written as a cohort folder."""
    df = split_by_patient(ptbxl_manifest(ptbxl_dir, n=60), seed=0)
    out = tmp_path_factory.mktemp("cohort")
    write_manifest(df, out)
    return out


def test_second_shard_job_on_one_folder_refuses(cohort: Path, tmp_path: Path) -> None:
    manifest = pd.read_parquet(cohort / "manifest.parquet")
    with output_lock(tmp_path / "shards", "shard"):
        with pytest.raises(LockedError, match="in use by ecgkit shard"):
            write_shards(manifest, tmp_path / "shards", ShardConfig(workers=1))
    assert not list((tmp_path / "shards").glob("*.h5"))


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_sigkill_mid_shard_leaves_no_workers_and_rerun_writes_each_record_once(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    code = (f"from ecgkit.manifest import read_manifest; from ecgkit.shards import ShardConfig, write_shards; "
            f"write_shards(read_manifest({str(cohort)!r}), {str(out)!r}, ShardConfig(workers=2, records_per_shard=4))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.time() + 60
    workers: list[psutil.Process] = []
    while time.time() < deadline and not list(out.glob("*.h5")):
        workers = _children(proc.pid) or workers
        time.sleep(0.02)
    assert list(out.glob("*.h5")), "no shard written within 60 s"
    workers = _children(proc.pid) or workers
    assert workers, "the shard job had no worker processes"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == [], f"workers survived their parent: {[p.pid for p in alive]}"
    n_after_kill = len(list(out.glob("*.h5")))
    time.sleep(1.5)
    assert len(list(out.glob("*.h5"))) == n_after_kill  # nobody writes after the parent died
    manifest = pd.read_parquet(cohort / "manifest.parquet")
    result = write_shards(manifest, out, ShardConfig(workers=1, records_per_shard=4))
    index = read_index(out)
    assert index["record_id"].is_unique and len(index) == 60
    assert set(index["record_id"]) == set(manifest["record_id"])
    assert verify_shards(out) == []
    assert (result["status"] == "ok").all()
    assert not list(out.glob("*.tmp")) and not (out / LOCK_FILE).exists()


def test_sigkill_mid_scan_leaves_no_workers(ptbxl_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for hea in sorted((ptbxl_dir / "records500" / "00000").glob("*.hea"))[:160]:  # hard links: same files
        for p in (hea, hea.with_suffix(".dat")):
            os.link(p, src / p.name)
    proc = subprocess.Popen([sys.executable, "-m", "ecgkit", "scan", str(src), "--out", str(tmp_path / "c"),
                             "--workers", "2"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    workers: list[psutil.Process] = []
    while time.time() < deadline and len(workers) < 2 and proc.poll() is None:
        workers = [p for p in _children(proc.pid) if p.is_running()]
        time.sleep(0.01)
    assert workers, "the scan had no worker processes"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == [], f"workers survived their parent: {[p.pid for p in alive]}"
    rerun = CliRunner().invoke(main, ["scan", str(src), "--out", str(tmp_path / "c")])
    assert rerun.exit_code == 0, rerun.output
    assert len(pd.read_parquet(tmp_path / "c" / "manifest.parquet")) == 160


@pytest.fixture()
def small_tmpfs(tmp_path: Path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_disk_full_shard_exits_cleanly_and_rerun_completes(cohort: Path, small_tmpfs: Path, workers: str) -> None:
    out = small_tmpfs / "shards"
    args = ["shard", str(cohort), "--out", str(out), "--workers", workers, "--records-per-shard", "10"]
    full = CliRunner().invoke(main, args)
    assert full.exit_code == 4, full.output
    line = [ln for ln in full.output.splitlines() if ln.startswith("ecgkit shard:")]
    assert len(line) == 1 and "No space left on device" in line[0] and "needed" in line[0]
    assert str(small_tmpfs) in line[0]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not (out / LOCK_FILE).exists()
    subprocess.run(["mount", "-o", "remount,size=40m", str(small_tmpfs)], check=True)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert len(read_index(out)) == 60 and verify_shards(out) == []


def test_reading_a_fifo_directly_refuses_instead_of_blocking(tmp_path: Path) -> None:
    from ecgkit.errors import FormatError
    from ecgkit.io import read_record

    os.mkfifo(tmp_path / "x.hea")
    with pytest.raises(FormatError, match="not a regular file"):
        read_record(tmp_path / "x.hea")


def test_atomic_write_leaves_the_old_file_on_a_full_disk(small_tmpfs: Path) -> None:
    target = small_tmpfs / "summary.json"
    atomic_write_text(target, "old")
    with pytest.raises(OSError, match="needed 5000000 bytes"):
        atomic_write_text(target, "x" * 5_000_000)
    assert target.read_text() == "old"
    assert [p.name for p in small_tmpfs.iterdir()] == ["summary.json"]


def test_disk_full_scan_exits_cleanly_and_rerun_completes(shared_data: Path, small_tmpfs: Path) -> None:
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * (3 * 1024 * 1024 - 8 * 1024))  # leave 8 kB: less than the outputs need
    out = small_tmpfs / "cohort"
    args = ["scan", str(shared_data / "cinc2021"), "--out", str(out)]
    full = CliRunner().invoke(main, args)
    assert full.exit_code == 4, full.output
    line = [ln for ln in full.output.splitlines() if ln.startswith("ecgkit scan:")]
    assert len(line) == 1 and "No space left on device" in line[0] and "needed" in line[0]
    assert sorted(p.name for p in out.iterdir()) in ([], ["manifest.parquet"], ["manifest.parquet",
                                                                                 "quarantine.parquet"])
    filler.unlink()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert len(pd.read_parquet(out / "manifest.parquet")) == 50
    assert json.loads((out / "scan_summary.json").read_text())["records"] == 50
