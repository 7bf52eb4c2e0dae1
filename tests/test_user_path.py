"""The README as a new user meets it: its commands and snippets, run as written.

- every stage run as a subprocess from a different working directory with relative arguments, on
  the README's custom vocabulary: labels flow through split, shard, train and evaluate; reruns say
  what they resume; an existing run is refused without --resume/--overwrite;
- the README's Python snippet, executed as written in an empty folder;
- the per-command YAML sections of ``pipelines/cpu_run.yaml``, the warm-up cap, report.md details
  and ``ecgkit info``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def _block(lang: str, after: str) -> str:
    """The first ```lang block of the README after the heading/text ``after``."""
    return re.search(rf"```{lang}\n(.*?)\n```", README.split(after, 1)[1], re.S).group(1)  # type: ignore[union-attr]


def ecgkit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "ecgkit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_every_stage_from_another_folder_with_the_readmes_custom_vocabulary(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a, b, c = (tmp_path / "elsewhere" / n for n in "abc")
    for d in (data, a, b, c):
        d.mkdir(parents=True)
    vocab_text = _block("yaml", "### Your own labels")
    (tmp_path / "my_vocab.yaml").write_text(vocab_text)
    labels = yaml.safe_load(vocab_text)["labels"]
    assert labels == ["AF", "BBB", "AVB"]

    ok(ecgkit("synth", "--patients", "40", "--out", "../../data/raw", cwd=a))
    ok(ecgkit("scan", "../../data/raw", "--out", "../../data/cohort", "--no-progress", cwd=b))
    manifest = pd.read_parquet(data / "cohort" / "manifest.parquet")
    assert all(Path(p).is_absolute() and Path(p).exists() for p in manifest["source_path"])
    ok(ecgkit("label", "../../data/cohort", cwd=c))  # ECG-P18 first, then relabel with the custom one
    out = ok(ecgkit("label", "../../data/cohort", "--vocabulary", "../../my_vocab.yaml", cwd=a))
    assert "removed the earlier vocabulary's label column(s) LVH, RVH" in out
    manifest = pd.read_parquet(data / "cohort" / "manifest.parquet")
    assert [col for col in manifest.columns if str(manifest[col].dtype) == "int8"] == labels
    out = ok(ecgkit("split", "../../data/cohort", cwd=b))
    assert all(f"\n{lab} " in out for lab in labels)  # the audit stratified on (and shows) the custom labels
    ok(ecgkit("shard", "../../data/cohort", "--out", "../../data/shards", "--fs", "100", "--workers", "1",
              "--no-progress", cwd=c))
    index = pd.read_parquet(data / "shards" / "index.parquet")
    import h5py
    with h5py.File(data / "shards" / f"{index['shard'].iloc[0]}.h5") as f:
        assert list(f.attrs["label_names"]) == labels and f["labels"].shape[1] == 3
    out = ok(ecgkit("shard", "../../data/cohort", "--out", "../../data/shards", "--fs", "100", "--workers", "1",
                    "--no-progress", cwd=a))
    assert f"shard: resumed: {len(index)} records ({index['shard'].nunique()} shards) already done, 0 records" in out
    out = ok(ecgkit("shard", "../../data/cohort", "--out", "../../data/shards", "--fs", "50", "--workers", "1",
                    "--no-progress", cwd=a))
    assert "settings changed since the last run" in out and "fs 100.0 -> 50.0" in out

    train = ["--device", "cpu", "--blocks", "1", "--batch-size", "16", "--no-progress", "--no-tensorboard"]
    out = ok(ecgkit("train", "../../data/shards", "--out", "../../data/run", "--epochs", "1", *train, cwd=b))
    assert re.search(r"train \| epoch 1/1: train loss [0-9.]+, val macro AUROC [0-9.na]+, \d+ samples/s", out)
    saved = yaml.safe_load((data / "run" / "config.yaml").read_text())
    assert saved["shards_dir"] == str(data / "shards")  # absolute: evaluate works from anywhere
    proc = ecgkit("train", "../../data/shards", "--out", "../../data/run", *train, cwd=b)
    assert proc.returncode == 4 and "already holds a run" in proc.stderr and "--resume" in proc.stderr
    steps = int(pd.read_csv(data / "run" / "metrics.csv")["step"].iloc[-1])
    out = ok(ecgkit("train", "../../data/shards", "--out", "../../data/run", "--epochs", "2", "--resume", *train,
                    cwd=c))
    assert f"train: resumed: {steps} steps already done, {steps} written" in out
    assert list(pd.read_csv(data / "run" / "metrics.csv")["epoch"]) == [1, 2]
    out = ok(ecgkit("evaluate", "../../data/run", "--bootstrap", "20", cwd=a))
    report = json.loads((data / "run" / "eval-test" / "report.json").read_text())
    assert report["label_names"] == labels
    info = json.loads(ok(ecgkit("info", str(data / "run"), "--json", cwd=tmp_path)))
    assert info["status"] == "finished" and info["epochs_done"] == 2 and info["evaluations"]["test"] is not None
    out = ok(ecgkit("train", "../../data/shards", "--out", "../../data/run", "--epochs", "1", "--overwrite", *train,
                    cwd=a))
    assert len(pd.read_csv(data / "run" / "metrics.csv")) == 1 and not (data / "run" / "eval-test").exists()


@pytest.mark.slow
def test_the_readmes_python_snippet_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _block("python", "Python: each stage's entry point")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["rec"].signal.shape == (12, 5000)
    assert (tmp_path / "cohort" / "skipped_files.csv").exists() and (tmp_path / "cohort" / "scan_summary.json").exists()
    assert set(scope["manifest"]["status"]) == {"ok"}
    assert 0.0 <= scope["report"]["summary"]["macro_auroc"] <= 1.0
    assert (tmp_path / "run" / "eval-test" / "report.md").exists()


def test_pipeline_yaml_gives_each_command_its_section() -> None:
    from ecgkit._cli_support import load_command_config
    from ecgkit.cli import main
    from ecgkit.ingest import ScanConfig
    from ecgkit.pipeline import DemoConfig
    from ecgkit.shards import ShardConfig
    from ecgkit.trainer import TrainConfig

    commands = sorted(main.commands)
    path = REPO / "pipelines" / "cpu_run.yaml"
    assert load_command_config(ScanConfig, path, "scan", commands, {}).workers == 2
    assert load_command_config(ShardConfig, path, "shard", commands, {"workers": 1}) == ShardConfig(fs=100.0,
                                                                                                     workers=1)
    train = load_command_config(TrainConfig, path, "train", commands, {"epochs": 2})
    assert (train.blocks, train.batch_size, train.epochs, train.device, train.sampler) == (4, 64, 2, "cpu", "joint")
    # a file of one command's keys at the top level still works
    assert load_command_config(DemoConfig, REPO / "pipelines" / "demo.yaml", "demo", commands, {}) == DemoConfig()


def test_warmup_never_exceeds_a_tenth_of_the_run() -> None:
    import torch

    from ecgkit.trainer import TrainConfig
    from ecgkit.trainer.step import _optimizer

    model = torch.nn.Linear(2, 1)
    for total, expect_warm in ((50, 5), (10_000, 100), (5, 0)):
        opt, sched = _optimizer(TrainConfig(warmup_steps=100, lr=1.0), model, torch.nn.Module(), total)
        lrs = []
        for _ in range(min(total, 200)):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        peak = int(np.argmax(lrs))
        assert peak == max(expect_warm - 1, 0), (total, peak)


def test_report_md_embeds_plots_flags_few_positives_and_keeps_na_apart(tmp_path: Path) -> None:
    from ecgkit.report import build_report, write_report

    rng = np.random.default_rng(0)
    y = np.zeros((60, 3), dtype=np.int8)
    y[:30, 0] = 1  # A: 30 positives, perfectly separated (AUROC 1.0)
    y[:3, 1] = 1  # B: 3 positives (< 5)
    # C: no positive at all -> AUROC undefined (n/a), not 0
    s = np.where(y == 1, 0.9, 0.1) + rng.normal(0, 0.01, y.shape)
    s[:, 1] = rng.random(60)
    rep = build_report(y, s, y, s, ["A", "B", "C"], n_bootstrap=50)
    assert rep["n_positives"] == {"A": 30, "B": 3, "C": 0} and rep["per_task"]["A"]["auroc"] == 1.0
    files = write_report(rep, tmp_path)
    md = files["md"].read_text()
    for png, key in (("roc.png", "roc"), ("metrics_bar.png", "bars")):
        assert f"]({png})" in md and files[key].stat().st_size > 5_000
    rows = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln}
    # too few positives for an interval: flagged in the table, explained below it
    assert "no CI" in rows["B"] and "no CI" in rows["C"] and "no CI" not in rows["A"]
    assert "would not be trustworthy" in md
    c_auroc = rows["C"].split("|")[5].strip()
    assert c_auroc.startswith("n/a") and "n/a: the metric is undefined" in md


def test_info_on_a_cohort_and_a_shards_folder(tmp_path: Path) -> None:
    from ecgkit.cohort import label_cohort, split_cohort
    from ecgkit.info import format_info, info
    from ecgkit.ingest import scan
    from ecgkit.manifest import read_manifest
    from ecgkit.shards import ShardConfig, write_shards
    from ecgkit.synth import synth_cohort

    truth = synth_cohort(12, tmp_path / "raw", fmt="wfdb", seed=1)
    scan([tmp_path / "raw"], out_dir=tmp_path / "cohort")
    label_cohort(tmp_path / "cohort")
    split_cohort(tmp_path / "cohort", ratios=(6, 2, 2), seed=0)
    manifest = read_manifest(tmp_path / "cohort")
    write_shards(manifest, tmp_path / "shards", ShardConfig(fs=50, workers=1))
    cohort = info(tmp_path / "cohort")
    assert cohort["kind"] == "cohort" and cohort["records"] == len(truth) and cohort["ok"] == len(truth)
    assert cohort["patients"] == 12 and sum(cohort["split"].values()) == len(truth)
    n_lvh = int((manifest["LVH"] == 1).sum())
    assert cohort["prevalence"]["LVH"]["all_positives"] == n_lvh
    assert cohort["prevalence"]["LVH"]["all"] == pytest.approx(n_lvh / len(truth), abs=1e-4)
    shards = info(tmp_path / "shards")
    assert shards["kind"] == "shards" and shards["records"] == len(truth) and shards["fs"] == 50.0
    assert shards["n_samples"] == 500 and shards["labels"][:2] == ["LVH", "RVH"]
    assert shards["prevalence"]["LVH"]["all_positives"] == n_lvh
    text = format_info(shards)
    assert text.startswith(f"shards: {tmp_path / 'shards'}") and "50 Hz x 10 s" in text


def test_a_second_training_job_into_the_same_run_folder_is_refused(tmp_path: Path) -> None:
    from ecgkit.errors import DataError
    from ecgkit.trainer.rundir import LOCK_FILE, prepare_run_dir, run_lock

    run = tmp_path / "run"
    with run_lock(run):
        assert (run / LOCK_FILE).read_text() == str(os.getpid())
        (run / LOCK_FILE).write_text(str(os.getppid()))  # as if the parent process (alive) held it
        with pytest.raises(DataError, match=f"being trained by another process \\(pid {os.getppid()}"):
            with run_lock(run):
                pass
        (run / LOCK_FILE).write_text(str(os.getpid()))
    assert not (run / LOCK_FILE).exists()
    (run / LOCK_FILE).write_text("999999999")  # left by a process that died: taken over
    with run_lock(run):
        assert (run / LOCK_FILE).read_text() == str(os.getpid())
    (run / "last.pt").write_bytes(b"x")
    with pytest.raises(DataError, match="already holds a run"):
        prepare_run_dir(run, resume=False, overwrite=False)
    (tmp_path / "cohort").mkdir()
    (tmp_path / "cohort" / "manifest.parquet").write_bytes(b"x")
    with pytest.raises(DataError, match="is a cohort folder"):
        prepare_run_dir(tmp_path / "cohort", resume=False, overwrite=True)
    prepare_run_dir(run, resume=False, overwrite=True)
    assert not (run / "last.pt").exists()


def test_exit_codes_and_error_lines() -> None:
    import click

    from ecgkit._cli_support import QuarantineLimitError, error_line, exit_code_of
    from ecgkit.errors import ConfigError, DataError, RecordError, SchemaError

    assert exit_code_of(click.UsageError("x")) == exit_code_of(ConfigError("x")) == 2
    assert exit_code_of(QuarantineLimitError("x")) == 3
    assert exit_code_of(SchemaError("x")) == exit_code_of(DataError("x")) == exit_code_of(RecordError("x")) == 4
    assert exit_code_of(FileNotFoundError(2, "No such file", "/a/b")) == 4
    assert error_line(FileNotFoundError(2, "No such file or directory", "/a/b")) == "/a/b: No such file or directory"
    assert exit_code_of(KeyError("bug")) == 1
    assert "internal error KeyError" in error_line(KeyError("bug")) and "-vv" in error_line(KeyError("bug"))
    assert error_line(RecordError("lead V3 has 0 samples", path="/x.hea", record_id="r1")) == \
        "record r1 (/x.hea): lead V3 has 0 samples"


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path: Path) -> None:
    from _fakes import FakeShardDataset
    from ecgkit.errors import ConfigError
    from ecgkit.trainer import TrainConfig, train

    data = {"train": FakeShardDataset(64, seed=0, unknown=1.0), "val": FakeShardDataset(32, seed=1)}
    with pytest.raises(ConfigError):  # every training label unknown: no task can be sampled
        train(TrainConfig(blocks=1, batch_size=8, epochs=1, device="cpu", tensorboard=False), tmp_path / "run",
              datasets=data)
    assert not (tmp_path / "run").exists()
