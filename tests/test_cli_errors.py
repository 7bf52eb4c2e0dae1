"""A user's mistakes, through the real ``ecgkit`` command run as a subprocess.

Each case asserts the exit status (2 usage, 3 quarantine limit, 4 bad data), that stderr holds one
``Error:`` line naming the file/option and the problem, that no traceback is printed, and, where the
mistake is caught before any work, that nothing was written.

One tiny cohort (24 synthetic patients, labelled, split, sharded at 100 Hz) is built once for the
module through the Python entry points.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ecgkit.cohort import label_cohort, split_cohort
from ecgkit.ingest import scan
from ecgkit.manifest import read_manifest
from ecgkit.shards import ShardConfig, write_shards
from ecgkit.synth import synth_cohort

USAGE, QUARANTINE, DATA = 2, 3, 4


def ecgkit(*args: str, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra_env}
    return subprocess.run([sys.executable, "-m", "ecgkit", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def assert_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """Exit status ``code``, exactly one ``Error:`` line containing every needle, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert "Traceback" not in proc.stderr + proc.stdout
    return errors[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    synth_cohort(24, root / "raw", fmt="wfdb", seed=0)
    scan([root / "raw"], out_dir=root / "cohort")
    label_cohort(root / "cohort")
    # an unsplit copy: shard before split
    scan([root / "raw"], out_dir=root / "unsplit")
    split_cohort(root / "cohort", ratios=(6, 2, 2), seed=0)
    write_shards(read_manifest(root / "cohort"), root / "shards", ShardConfig(fs=100, workers=1))
    (root / "empty").mkdir()
    return {"root": root, "cohort": root / "cohort", "shards": root / "shards", "empty": root / "empty",
            "unsplit": root / "unsplit", "raw": root / "raw"}


def test_label_split_shard_on_a_folder_without_manifest(tiny: dict[str, Path]) -> None:
    empty = tiny["empty"]
    for args in (["label", "empty"], ["split", "empty"], ["shard", "empty", "--out", "s"]):
        proc = ecgkit(*args, cwd=tiny["root"])
        assert_error(proc, DATA, f"no manifest at {empty / 'manifest.parquet'}", "ecgkit scan")
    assert not (tiny["root"] / "s").exists()


def test_shard_before_split(tiny: dict[str, Path]) -> None:
    proc = ecgkit("shard", "unsplit", "--out", "s", cwd=tiny["root"])
    assert_error(proc, DATA, str(tiny["unsplit"]), "no 'split' column", "ecgkit split")
    assert not (tiny["root"] / "s").exists()


def test_train_on_a_missing_an_empty_and_a_cohort_folder(tiny: dict[str, Path]) -> None:
    root = tiny["root"]
    assert_error(ecgkit("train", "nope", "--out", "run", cwd=root), USAGE, "SHARDS_DIR", "'nope' does not exist")
    assert_error(ecgkit("train", "empty", "--out", "run", cwd=root), DATA, str(tiny["empty"]), "is empty",
                 "ecgkit shard")
    assert_error(ecgkit("train", "cohort", "--out", "run", cwd=root), DATA, "is a cohort folder",
                 "not a shards folder")
    assert not (root / "run").exists()  # nothing made


def test_evaluate_a_run_without_checkpoint(tiny: dict[str, Path]) -> None:
    proc = ecgkit("evaluate", "empty", cwd=tiny["root"])
    assert_error(proc, DATA, str(tiny["empty"]), "no checkpoint")
    assert list(tiny["empty"].iterdir()) == []  # no eval-test folder


@pytest.mark.parametrize("args, needles", [
    (["evaluate", "empty", "--split", "dev"], ["'--split'", "'dev' is not one of"]),
    (["evaluate", "empty", "--threshold", "1.5"], ["'--threshold'", "strictly between 0 and 1"]),
    (["evaluate", "empty", "--threshold", "best"], ["'--threshold'", "'max_f1' or a specificity"]),
    (["shard", "cohort", "--out", "s", "--fs", "0"], ["'--fs'", "x>0"]),
    (["shard", "cohort", "--out", "s", "--seconds", "-10"], ["'--seconds'", "x>0"]),
    (["shard", "cohort", "--out", "s", "--workers", "-1"], ["'--workers'", "x>=0"]),
    (["scan", "raw", "--out", "s", "--workers", "0"], ["'--workers'", "x>=1"]),
    (["train", "shards", "--out", "s", "--aux-tasks", "-3"], ["'--aux-tasks'", "x>=0"]),
    (["train", "shards", "--out", "s", "--blocks", "0"], ["'--blocks'", "x>=1"]),
    (["train", "shards", "--out", "s", "--lr", "0"], ["'--lr'", "x>0"]),
    (["synth", "--patients", "0", "--out", "s"], ["'--patients'", "x>=1"]),
    (["demo", "--patients", "3", "--out", "s"], ["'--patients'", "x>=20"]),
    (["train", "shards", "--out", "s", "--device", "gpu"], ["'--device'", "'gpu' is not one of"]),
    (["demo", "--out", "s", "--device", "tpu"], ["'--device'", "'tpu' is not one of"]),
])
def test_bad_option_values_are_usage_errors_before_any_output(tiny: dict[str, Path], args: list[str],
                                                              needles: list[str]) -> None:
    proc = ecgkit(*args, cwd=tiny["root"])
    assert_error(proc, USAGE, "Invalid value", *needles)
    assert not (tiny["root"] / "s").exists()
    assert proc.stdout == ""


def test_device_cuda_without_cuda(tiny: dict[str, Path]) -> None:
    # CUDA hidden from the child, so the test runs (never skips) on a GPU machine too
    proc = ecgkit("train", "shards", "--out", "s", "--device", "cuda", cwd=tiny["root"], CUDA_VISIBLE_DEVICES="")
    assert_error(proc, USAGE, "'--device'", "sees no CUDA device")
    assert not (tiny["root"] / "s").exists()


def test_config_file_with_an_unknown_key_or_a_wrong_type(tiny: dict[str, Path], tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump({"train": {"epochz": 3}, "shard": {"fs": 100}}))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({"epochs": "many"}))
    proc = ecgkit("train", "shards", "--out", "s", "--config", str(unknown), cwd=tiny["root"])
    assert_error(proc, USAGE, f"config file {unknown}", "unknown TrainConfig key(s) ['epochz']")
    proc = ecgkit("train", "shards", "--out", "s", "--config", str(wrong), cwd=tiny["root"])
    assert_error(proc, USAGE, f"config file {wrong}", "'epochs' expects int, got 'many'")
    wrong_shard = tmp_path / "wrong_shard.yaml"
    wrong_shard.write_text("shard:\n  fs: fast\n")
    proc = ecgkit("shard", "cohort", "--out", "s", "--config", str(wrong_shard), cwd=tiny["root"])
    assert_error(proc, USAGE, f"config file {wrong_shard}", "'fs' expects float")
    assert not (tiny["root"] / "s").exists()


def test_scan_of_a_folder_without_records(tiny: dict[str, Path], tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "README.txt").write_text("not an ECG")
    proc = ecgkit("scan", str(docs), "--out", str(tmp_path / "c"), "--no-progress", cwd=tmp_path)
    assert_error(proc, DATA, f"no ECG record found in {docs}", "1 file(s) looked at")
    assert not (tmp_path / "c").exists()


def test_split_that_leaves_val_empty(tiny: dict[str, Path], tmp_path: Path) -> None:
    one = tmp_path / "one"
    synth_cohort(1, tmp_path / "raw1", fmt="wfdb", seed=3)
    scan([tmp_path / "raw1"], out_dir=one)
    before = (one / "manifest.parquet").read_bytes()
    proc = ecgkit("split", "one", cwd=tmp_path)
    assert_error(proc, DATA, str(one), "leaves", "empty", "1 patient(s)")
    assert (one / "manifest.parquet").read_bytes() == before  # not written


def test_quarantine_rate_over_the_limit_exits_3(tiny: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    hea = sorted(tiny["raw"].rglob("*.hea"))[:2]
    for h in hea:  # one complete record, one header whose signal file is missing
        (src / h.name).write_bytes(h.read_bytes())
    dat = hea[0].with_suffix(".dat")
    (src / dat.name).write_bytes(dat.read_bytes())
    proc = ecgkit("scan", "src", "--out", "c", "--max-quarantine-rate", "0.1", "--no-progress", cwd=tmp_path)
    assert_error(proc, QUARANTINE, "quarantine rate 50.0% exceeds the limit 10.0%", str(tmp_path / "c"))
    assert (tmp_path / "c" / "quarantine.parquet").exists()  # the outputs are written, then the job fails


def test_traceback_only_with_vv(tiny: dict[str, Path]) -> None:
    quiet = ecgkit("label", "empty", cwd=tiny["root"])
    loud = ecgkit("-vv", "label", "empty", cwd=tiny["root"])
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and loud.returncode == DATA
    assert loud.stderr.rstrip().splitlines()[-1] == quiet.stderr.rstrip().splitlines()[-1]


def test_predict_given_a_run_or_cohort_folder_instead_of_a_model_file(tiny: dict[str, Path]) -> None:
    run = tiny["root"] / "fake_run"
    run.mkdir(exist_ok=True)
    (run / "config.yaml").write_text("blocks: 1\n")
    proc = ecgkit("predict", "fake_run", "raw", "--out", "p.parquet", cwd=tiny["root"])
    assert_error(proc, USAGE, "'fake_run' is a folder", "ecgkit export fake_run --out model.pt")
    proc = ecgkit("predict", "cohort", "raw", "--out", "p.parquet", cwd=tiny["root"])
    assert_error(proc, USAGE, "'cohort' is a folder", "the model file")
    assert not (tiny["root"] / "p.parquet").exists()
