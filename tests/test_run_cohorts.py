"""Issue 17's experiment pipeline end to end at a tiny size: two cohorts, four arms, two seeds."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import yaml

from tests._pipelines import PIPELINES

SPEC = {
    "fs": 50,
    "cohorts": {
        "a": {"patients": 80, "seed": 11, "difficulty": "easy",
              "labels": {"LVH": "LVH", "AFIB": "AFIB", "RBBB": "RBBB", "1AVB": "1AVB", "VPC": "VPC"}},
        "b": {"patients": 80, "seed": 12, "difficulty": "easy",
              "labels": {"LVH": "lvh", "AFIB": "af", "1AVB": "AVB1", "APC": "APC"}},
    },
    "mapping": {"LVH": ["lvh"], "AFIB": ["af"], "1AVB": ["AVB1"]},
    "common": {"blocks": 1, "epochs": 1, "patience": 2, "batch_size": 32, "sampler": "joint", "compile": False,
               "num_workers": 0, "tensorboard": False, "log_interval": 100, "lambda_l1": 1e-6, "lambda_cmmd": 0.1},
    "arms": {"separate": {}, "shared": {}, "damtl": {}, "cross_stitch": {}},
    "evaluate": {"seeds": [0, 1], "n_bootstrap": 40, "min_positives": 3},
}


def test_cohorts_pipeline_table_differences_read_off_the_same_basis(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    out = tmp_path / "exp"
    proc = subprocess.run([sys.executable, str(PIPELINES / "run_cohorts.py"), str(spec), "--out", str(out),
                           "--device", "cpu", "--jobs", "2", "--workers", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads((out / "comparison.json").read_text())
    assert set(table["arms"]) == {"separate", "shared", "damtl", "cross_stitch"}
    assert table["cohort_labels"] == {"a": ["LVH", "AFIB", "RBBB", "1AVB", "VPC"], "b": ["LVH", "AFIB", "1AVB", "APC"]}
    # every planned run finished; separate trains one model per cohort and seed
    assert len(list(out.rglob("done.json"))) == 2 * (2 + 1 + 1 + 1)
    for arm, row in table["arms"].items():
        assert len(row["macro_auroc_seeds"]) == 2 and all(0.0 <= v <= 1.0 for v in row["macro_auroc_seeds"])
        assert row["n_parameters"] > 0
        if arm == "separate":
            assert "vs_separate" not in row
            continue
        d = row["vs_separate"]
        assert d["macro_labels"] and set(d["macro_labels"]) <= set(table["labels"])
        # the interval's point estimate is the difference of the two numbers shown beside it
        assert math.isclose(d["diff"], d["arm_macro"] - d["reference_macro"], abs_tol=1e-9)
    md = (out / "comparison.md").read_text()
    assert "the interval's labels" in md and ", ".join(table["arms"]["shared"]["vs_separate"]["macro_labels"]) in md

    # --run-limit: the shared runs, resumed with far more epochs and no early stop, are stopped and scored
    # at their best epoch
    for d in (out / "shared").glob("seed-*/done.json"):
        d.unlink()
    spec.write_text(yaml.safe_dump({**SPEC, "common": {**SPEC["common"], "patience": 10_000}}))
    proc = subprocess.run([sys.executable, str(PIPELINES / "run_cohorts.py"), str(spec), "--out", str(out),
                           "--device", "cpu", "--jobs", "2", "--workers", "1", "--epochs", "500", "--run-limit", "12"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shared = json.loads((out / "comparison.json").read_text())["arms"]["shared"]
    assert shared["runs_interrupted"] == 2 and shared["runs"] == 2
    assert all(1 < e < 500 for e in shared["epochs"])  # resumed past epoch 1, stopped long before 500
    for d in (out / "shared").glob("seed-*/done.json"):
        rec = json.loads(d.read_text())
        assert rec["interrupted"] and rec["n_parameters"] > 0 and rec["train_wall_s"] >= 12
    assert "runs stopped at --run-limit" in (out / "comparison.md").read_text()
