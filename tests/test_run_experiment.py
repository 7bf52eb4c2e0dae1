"""The CO-TASK comparison job (``pipelines/run_experiment.py``) on a tiny real-data cohort, on CPU.

150 PTB-XL records with stand-in labels from their SCP codes (``tests/ptbxl_cohort.py``), sharded at
100 Hz to keep the CPU cost low. 3AVB has no positive among them, so the single-task arm must skip it
rather than crash, and every table value must equal the arm's own report.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ecgkit import metrics as M
from ecgkit.errors import ConfigError
from ecgkit.shards import ShardConfig, write_shards
from ecgkit.split import split_by_patient
from ecgkit.trainer import predict_run
from ptbxl_cohort import ptbxl_manifest

REPO = Path(__file__).resolve().parent.parent
TASKS = ("LVH", "IRBBB", "3AVB")


def _load_pipeline():
    spec = importlib.util.spec_from_file_location("run_experiment", REPO / "pipelines" / "run_experiment.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def shards(ptbxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cohort = split_by_patient(ptbxl_manifest(ptbxl_dir, 150), labels=list(TASKS), seed=0)
    assert (cohort["3AVB"] == 0).all() and (cohort.loc[cohort["split"] == "train", "LVH"] == 1).any()
    out = tmp_path_factory.mktemp("exp-shards")
    write_shards(cohort, out, ShardConfig(fs=100.0, labels=TASKS, workers=1, records_per_shard=64))
    return out


SPEC = {
    "common": {"blocks": 1, "epochs": 1, "batch_size": 8, "batches_per_epoch": 2, "warmup_steps": 1,
               "tensorboard": False, "eval_batch_size": 64},
    "evaluate": {"split": "test", "n_bootstrap": 20},
    "arms": {"single_task": {"per_task": True}, "multi_task": {"aux_tasks": 0},
             "cotask": {"aux_tasks": 3}},
}


@pytest.mark.slow
def test_experiment_trains_every_arm_on_the_same_shards_and_tabulates_them(shards: Path,
                                                                           tmp_path: Path) -> None:
    pipe = _load_pipeline()
    out = tmp_path / "exp"
    table = pipe.run_experiment(SPEC, shards, out, device="cpu")
    assert table["arms"] == ["single_task", "multi_task", "cotask"]
    assert table["single_task_skipped"] == ["3AVB"]
    assert sorted(p.name for p in (out / "single_task").iterdir()) == ["IRBBB", "LVH", "eval-test"]
    np.testing.assert_equal(json.loads((out / "comparison.json").read_text())["per_task_auroc"],
                            table["per_task_auroc"])  # NaN (3AVB) compares equal here
    assert "| **Δm vs single-task (%)** | +0.00 |" in (out / "comparison.md").read_text()
    # every cell is the arm's own report value; the multi-task arm's from its run's predictions
    for j, arm in enumerate(table["arms"]):
        rep = json.loads((out / arm / "eval-test" / "report.json").read_text())
        for task, vals in table["per_task_auroc"].items():
            got = rep["per_task"].get(task, {}).get("auroc")
            assert (np.isnan(vals[j]) and got is None) or vals[j] == pytest.approx(got), (arm, task)
        assert table["summary"]["macro_auroc"][j] == pytest.approx(rep["summary"]["macro_auroc"])
    y, s, names = predict_run(out / "multi_task", "test", device="cpu")
    assert names == list(TASKS)
    assert table["per_task_auroc"]["LVH"][1] == pytest.approx(M.auroc(y, s)[0])
    cotask_defs = json.loads((out / "cotask" / "aux_tasks.json").read_text())["aux_tasks"]
    assert len(cotask_defs) == 3
    assert table["delta_m"]["single_task"] == pytest.approx(0.0)

    # a rerun reuses the finished runs; a changed spec is refused instead of silently reused
    stamp = (out / "multi_task" / "best.pt").stat().st_mtime_ns
    again = pipe.run_experiment(SPEC, shards, out, device="cpu")
    np.testing.assert_equal(again["per_task_auroc"], table["per_task_auroc"])
    assert (out / "multi_task" / "best.pt").stat().st_mtime_ns == stamp
    changed = {**SPEC, "common": {**SPEC["common"], "blocks": 2}}
    with pytest.raises(ConfigError, match="blocks"):
        pipe.run_experiment(changed, shards, out, device="cpu")
    too_many = {**SPEC, "arms": {"cotask": {"aux_tasks": 4}}}  # 3 tasks have 3 pairs
    with pytest.raises(ConfigError, match="3 distinct pairs"):
        pipe.run_experiment(too_many, shards, tmp_path / "other", device="cpu")
