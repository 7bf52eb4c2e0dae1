"""The demo job end to end on a tiny synthetic cohort (CI runs this smaller demo)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from ecgkit.cli import main
from ecgkit.config import load_config
from ecgkit.manifest import read_manifest
from ecgkit.pipeline import DemoConfig
from ecgkit.shards import read_index


def test_demo_runs_every_stage_and_accounts_for_every_record(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--patients", "40", "--out", str(out), "--device", "cpu",
                                       "--epochs", "1", "--workers", "1"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("demo | ")]
    stages = [ln.split()[2].rstrip(":") for ln in lines if not ln.startswith("demo |   ")]
    assert stages[:6] == ["synth", "scan", "label", "split", "shard", "train"]
    # one line per epoch (loss, val AUROC, samples/s, time), then the report, and the AUROC line last
    epochs = [ln for ln in lines if ln.startswith("demo |   epoch ")]
    assert len(epochs) == 1 and "train loss" in epochs[0] and "val macro AUROC" in epochs[0] \
        and "samples/s" in epochs[0]
    assert lines[-1].startswith("demo | done in ") and "test macro AUROC" in lines[-1]
    truth = pd.read_parquet(out / "raw" / "truth.parquet")
    manifest = read_manifest(out / "cohort")
    index = read_index(out / "shards")
    # records in = records in shards + records quarantined, and ids match the generator's
    assert set(manifest["record_id"]) == set(truth["record_id"])
    n_quarantined = int((manifest["status"] == "quarantined").sum())
    assert len(index) + n_quarantined == len(truth)
    assert set(index["split"]) == {"train", "val", "test"}
    # the synthetic statements are written to be recoverable: the labeler must get them all right
    labels = [c for c in truth.columns if c not in ("record_id", "patient_id")]
    merged = manifest.merge(truth, on="record_id", suffixes=("", "_true"))
    for lab in labels:
        assert (merged[lab] == merged[f"{lab}_true"]).all(), lab
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["labeler_macro_f1"] == 1.0
    assert 0.0 <= summary["macro_auroc"] <= 1.0
    report = json.loads((out / "run" / "eval-test" / "report.json").read_text())
    assert report["summary"]["macro_auroc"] == summary["macro_auroc"]
    for png in ("roc.png", "metrics_bar.png", "training_curves.png", "example_ecg.png"):
        assert (out / "run" / "eval-test" / png).stat().st_size > 10_000
        assert f"plot:   {out / 'run' / 'eval-test' / png}" in result.output
    assert f"test macro AUROC {summary['macro_auroc']:.3f}" in result.output


def test_pipelines_demo_yaml_lists_every_demo_setting_at_its_default() -> None:
    # pipelines/demo.yaml documents the demo's settings; it must not drift from DemoConfig
    path = Path(__file__).resolve().parent.parent / "pipelines" / "demo.yaml"
    assert load_config(DemoConfig, path, section="demo") == DemoConfig()
    assert set(yaml.safe_load(path.read_text())["demo"]) == set(DemoConfig.__dataclass_fields__)


def test_a_second_demo_into_the_same_folder_replaces_the_first(tmp_path: Path) -> None:
    from ecgkit.errors import DataError
    from ecgkit.pipeline import _fresh_demo_dir

    out = tmp_path / "demo"
    (out / "raw").mkdir(parents=True)
    (out / "raw" / "truth.parquet").write_bytes(b"x")
    (out / "run").mkdir()
    (out / "run" / "last.pt").write_bytes(b"x")
    _fresh_demo_dir(out)  # an earlier demo: its parts are removed, so no stale record is scanned again
    assert out.is_dir() and list(out.iterdir()) == []
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(DataError, match="not empty and holds no earlier demo"):
        _fresh_demo_dir(other)
    assert (other / "thesis.tex").read_text() == "keep me"
