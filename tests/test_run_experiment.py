"""The CO-TASK comparison job (``pipelines/run_experiment.py``) on a tiny real-data cohort, on CPU.

150 PTB-XL records with stand-in labels from their SCP codes (``tests/ptbxl_cohort.py``), sharded at
100 Hz to keep the CPU cost low. 3AVB has no positive among them, so the single-task arm must skip it
rather than crash, and every table value must equal the arm's own report.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecgkit import metrics as M
from ecgkit.errors import ConfigError
from ecgkit.shards import ShardConfig, write_shards
from ecgkit.split import split_by_patient
from ecgkit.bootstrap import delong_test
from ecgkit.report import patient_groups
from ecgkit.trainer import predict_run
from _pipelines import load_pipeline
from ptbxl_cohort import ptbxl_manifest

REPO = Path(__file__).resolve().parent.parent
TASKS = ("LVH", "IRBBB", "3AVB")




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
    "evaluate": {"split": "test", "n_bootstrap": 20, "seeds": [0, 1], "budget": "spec"},
    "arms": {"single_task": {"per_task": True}, "multi_task": {"aux_tasks": 0},
             "cotask": {"aux_tasks": 3}},
}


@pytest.mark.slow
def test_experiment_trains_every_arm_and_seed_on_the_same_shards_and_compares_them(shards: Path,
                                                                                 tmp_path: Path) -> None:
    pipe = load_pipeline()
    out = tmp_path / "exp"
    table = pipe.run_experiment(SPEC, shards, out, device="cpu")
    assert table["arms"] == ["single_task", "multi_task", "cotask"]
    assert table["seeds"] == [0, 1] and table["reference"] == "multi_task"
    assert table["single_task_skipped"] == ["3AVB"]
    assert sorted(p.name for p in (out / "single_task").iterdir()) == ["eval-test", "seed-0", "seed-1"]
    assert sorted(p.name for p in (out / "single_task" / "seed-1").iterdir()) == ["IRBBB", "LVH"]
    assert table["steps"] == {"single_task": [4, 4], "multi_task": [2, 2], "cotask": [2, 2]}
    np.testing.assert_equal(json.loads((out / "comparison.json").read_text())["per_task_auroc"],
                            table["per_task_auroc"])  # NaN (3AVB) compares equal here
    assert table["delta_m"]["single_task"] == pytest.approx(0.0)
    assert table["ci_unit"] == "patient"
    # seed mean and SD of the multi-task arm, by hand from each seed's own predictions
    groups = patient_groups(shards, "test")
    per_seed = []
    for seed in (0, 1):
        y, s, names = predict_run(out / "multi_task" / f"seed-{seed}", "test", device="cpu")
        assert names == list(TASKS)
        per_seed.append(M.macro_auroc(y, s))
    summary = table["summary"]["macro_auroc"]["multi_task"]
    assert summary["mean"] == pytest.approx(np.mean(per_seed))
    assert summary["sd"] == pytest.approx(np.std(per_seed, ddof=1))
    # the paired comparison: same records, same patient resamples, both arms' seeds averaged
    cmp = table["comparisons"]["cotask"]
    assert cmp["unit"] == "patient" and cmp["n_units"] == len(set(groups))
    n_pos = (predict_run(out / "multi_task" / "seed-0", "test", device="cpu")[0] == 1).sum(axis=0)
    assert cmp["flagged"] == [t for t, n in zip(TASKS, n_pos) if n < 10]  # too few positives: no interval
    ys, ss = [], []
    for arm in ("multi_task", "cotask"):
        arm_scores = []
        for seed in (0, 1):
            y, s, _ = predict_run(out / arm / f"seed-{seed}", "test", device="cpu")
            arm_scores.append(s)
        ys.append(y)
        ss.append(np.stack(arm_scores))
    hand = np.mean([M.auroc(ys[1], x) for x in ss[1]], axis=0) - np.mean([M.auroc(ys[0], x) for x in ss[0]], axis=0)
    assert cmp["per_task"]["LVH"]["auroc_diff"] == pytest.approx(hand[0])
    assert cmp["per_task"]["IRBBB"]["auroc_diff"] == pytest.approx(hand[1])
    idx = [list(TASKS).index(t) for t in cmp["macro_tasks"]]
    if idx:  # the macro difference averages only the tasks present in every resample
        assert cmp["macro_auroc"]["diff"] == pytest.approx(hand[idx].mean())
    else:  # 22 test records: some resample lacks every task's positives, so no macro is comparable
        assert np.isnan(cmp["macro_auroc"]["diff"])
    dl = delong_test(ys[0], ss[0].mean(axis=0), ss[1].mean(axis=0))
    assert cmp["per_task"]["LVH"]["delong_p"] == pytest.approx(dl.p_value[0])
    assert "## cotask − multi_task" in (out / "comparison.md").read_text()
    cotask_defs = json.loads((out / "cotask" / "seed-0" / "aux_tasks.json").read_text())["aux_tasks"]
    assert len(cotask_defs) == 3

    # a rerun reuses the finished runs; a changed spec is refused instead of silently reused
    stamp = (out / "multi_task" / "seed-0" / "best.pt").stat().st_mtime_ns
    again = pipe.run_experiment(SPEC, shards, out, device="cpu")
    np.testing.assert_equal(again["per_task_auroc"], table["per_task_auroc"])
    assert (out / "multi_task" / "seed-0" / "best.pt").stat().st_mtime_ns == stamp
    changed = {**SPEC, "common": {**SPEC["common"], "blocks": 2}}
    with pytest.raises(ConfigError, match="blocks"):
        pipe.run_experiment(changed, shards, out, device="cpu")
    too_many = {**SPEC, "arms": {"cotask": {"aux_tasks": 4}}}  # 3 tasks have 3 pairs
    with pytest.raises(ConfigError, match="3 distinct pairs"):
        pipe.run_experiment(too_many, shards, tmp_path / "other", device="cpu")
    with pytest.raises(ConfigError, match="budget"):
        pipe.run_experiment({**SPEC, "evaluate": {"budget": "forever"}}, shards, tmp_path / "other", device="cpu")


def test_budget_seed_summary_and_rare_tasks_by_hand() -> None:
    pipe = load_pipeline()
    from ecgkit.trainer import TrainConfig
    joint = TrainConfig(sampler="joint", batch_size=256)
    aware = TrainConfig(sampler="task_aware", batch_size=256, aux_tasks=4)
    # 10,000 training records: ceil(10000 / 256) = 40 batches = one pass over the data
    assert pipe.batches_per_epoch("samples", 10_000, joint, 18) == 40
    assert pipe.batches_per_epoch("samples", 10_000, aware, 18) == 40
    # one head per task-aware batch: 18 major + 4 auxiliary heads need 22 x 40 batches for 40 updates each
    assert pipe.batches_per_epoch("head_updates", 10_000, aware, 18) == 880
    assert pipe.batches_per_epoch("head_updates", 10_000, joint, 18) == 40
    assert pipe.batches_per_epoch("spec", 10_000, TrainConfig(batches_per_epoch=7), 18) == 7
    # mean 0.8, deviations -0.1, 0, +0.1: sample SD sqrt(0.02 / 2) = 0.1; NaN seeds left out
    s = pipe.seed_summary([0.7, 0.8, 0.9, float("nan")])
    assert s == pytest.approx({"mean": 0.8, "sd": 0.1, "min": 0.7, "max": 0.9, "n": 3})
    assert pipe.seed_summary([0.5])["sd"] == 0.0
    labels = np.zeros((1000, 3), dtype=np.int8)
    labels[:3, 0] = 1  # 3 / 1000 = 1:332 -> rare at 1:300
    labels[:4, 1] = 1  # 4 / 1000 = 1:249 -> not rare
    labels[:2, 2] = 1
    labels[500:, 2] = -1  # 2 of 500 known = 1:249 -> not rare
    assert pipe.rare_tasks(["A", "B", "C"], labels, 300) == ["A"]
    assert pipe.trainable_tasks(["A", "B"], np.array([[1, 0], [0, 0]])) == (["A"], ["B"])


@pytest.mark.slow
def test_group_arms_major_task_headline_and_major_task_sampler(shards: Path, tmp_path: Path) -> None:
    """Hughes-style group models and CO-TASK Table 8's major task on real shards: the headline row is
    the major task's F1 mean over seeds, and a two-head group model predicts exactly its tasks."""
    pipe = load_pipeline()
    spec = {"common": {**SPEC["common"], "major_tasks": ["LVH"]},
            "evaluate": {"split": "test", "n_bootstrap": 10, "seeds": [0], "budget": "spec",
                         "headline_metric": "macro_f1", "reference": "all_head"},
            "arms": {"two_head": {"groups": [["LVH", "IRBBB"], ["3AVB"]]}, "all_head": {"sampler": "major_task"}}}
    out = tmp_path / "exp"
    table = pipe.run_experiment(spec, shards, out, device="cpu")
    # 3AVB has no training positive: its group is dropped, the pair is one model
    assert sorted(p.name for p in (out / "two_head" / "seed-0").iterdir()) == ["LVH+IRBBB"]
    _, _, names = predict_run(out / "two_head" / "seed-0" / "LVH+IRBBB", "test", device="cpu")
    assert names == ["LVH", "IRBBB"]
    head = table["headline"]
    assert head["metric"] == "macro_f1" and head["tasks"] == {"two_head": ["LVH"], "all_head": ["LVH"]}
    for arm in ("two_head", "all_head"):
        rep = json.loads((out / arm / "eval-test" / "report.json").read_text())
        assert rep["headline"]["tasks"] == ["LVH"]
    info = json.loads((out / "all_head" / "seed-0" / "run_info.json").read_text())
    assert info["sampler"] == "major_task" and info["major_tasks"] == ["LVH"]
    assert "| **headline: macro_f1 (LVH)** |" in (out / "comparison.md").read_text()


def test_headline_cell_names_an_arms_own_major_tasks(tmp_path: Path) -> None:
    """An arm whose own spec sets major_tasks (CO-TASK Table 8's major-task sampler) has a headline over
    those tasks only: its cell says so, while the row's scope stays 'all tasks' for the other arms."""
    pipe = load_pipeline()
    md = "| metric | a | b |\n|---|---|---|\n| **macro_auroc** | 0.8 | 0.7 |"
    table = {"arms": ["a", "b"], "markdown": md}
    reports = {"a": [{"headline": {"value": 0.80, "tasks": ["LVH", "AFIB"]}}],
               "b": [{"headline": {"value": 0.90, "tasks": ["LVH"]}}]}
    out = pipe._add_headline(table, reports, "macro_auroc", None, tmp_path)
    row = out["markdown"].split("\n")[2]
    assert row.startswith("| **headline: macro_auroc (all tasks)** | 0.800 ")
    assert row.endswith(" (LVH) |") and "0.800 ± 0.000 |" in row
    assert (tmp_path / "comparison.md").read_text() == out["markdown"]
