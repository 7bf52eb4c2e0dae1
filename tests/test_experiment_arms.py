"""The experiment specs of CO-TASK Table 8 and Hughes Table 1 resolve to the papers' arms.

Only the planning is run (``_arm_groups`` and ``_group_values`` of ``pipelines/run_experiment.py``,
then each model's ``TrainConfig``); the training path itself is exercised on real shards by
``tests/test_run_experiment.py``.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ecgkit.config import make_config
from ecgkit.errors import ConfigError
from ecgkit.trainer import TrainConfig

from _pipelines import load_pipeline

REPO = Path(__file__).resolve().parent.parent
P18 = ["LVH", "RVH", "AFIB", "AFL", "IVCD", "NIVCD", "RBBB", "LBBB", "IRBBB", "ILBBB", "1AVB", "2AVB", "3AVB",
       "EAR", "VBIG", "VT", "VPC", "APC"]




def _plan(name: str, trainable: list[str]) -> dict[str, list[TrainConfig]]:
    """arm -> the TrainConfig of each model it trains, as run_experiment builds them."""
    pipe = load_pipeline()
    spec = yaml.safe_load((REPO / "pipelines" / name).read_text())
    common = dict(spec["common"], shards_dir="SHARDS")
    out = {}
    for arm, overrides in spec["arms"].items():
        overrides = dict(overrides or {})
        values = {**common, **{k: v for k, v in overrides.items() if k not in ("per_task", "groups")}}
        tasks = values.get("tasks") or trainable
        groups = pipe._arm_groups(arm, overrides, values, [t for t in trainable if t in tasks])
        runs = [values] if groups is None else [pipe._group_values(values, g) for g in groups]
        out[arm] = [make_config(TrainConfig, r) for r in runs]
    assert spec["evaluate"]["headline_metric"] in ("macro_auroc", "macro_f1")
    assert spec["evaluate"]["reference"] in spec["arms"]
    assert set(spec["evaluate"]) <= pipe._EVAL_KEYS
    return out


def test_cotask_table8_arms() -> None:
    plan = _plan("experiment_cotask_table8.yaml", P18)
    assert list(plan) == ["single_task_major", "mtl_no_sampler", "mtl_major_task_sampler",
                          "mtl_task_aware_sampler", "dwa", "cotask"]
    (stl,) = plan["single_task_major"]
    assert stl.tasks == ("LVH",) and stl.major_tasks == ("LVH",) and stl.aux_tasks == 0
    multi = {a: c for a, (c,) in plan.items() if a != "single_task_major"}
    assert all(c.tasks == ("LVH", "AFIB", "RBBB", "1AVB", "RVH") and c.major_tasks == ("LVH",)
               for c in multi.values())
    # the CO-TASK authors' code settings (github.com/Microsheep/COTASK) on every arm
    assert all((c.major_weight, c.kernel_size, c.base_filters, c.lr) == (5.0, 25, 64, 1e-4)
               for cs in plan.values() for c in cs)
    assert all((c.increase_every, c.weight_decay, c.warmup_steps, c.lr_schedule, c.lr_milestones, c.lr_gamma,
                c.batch_size, c.epochs, c.dropout) == (2, 0.0, 0, "multistep", (7, 14, 21, 28, 35, 42), 0.5, 64, 50, 0.2)
               for cs in plan.values() for c in cs)
    # their num_batch_scaler 3 applies to their task-aware sampler: the task-aware and major-task arms
    assert {a: c.batches_per_epoch_scale for a, c in multi.items()} == {
        "mtl_no_sampler": 1.0, "mtl_major_task_sampler": 3.0, "mtl_task_aware_sampler": 3.0, "dwa": 1.0, "cotask": 3.0}
    assert multi["cotask"].aux_major_pairs == 4
    assert {a: (c.sampler, c.weighting, c.aux_tasks) for a, c in multi.items()} == {
        "mtl_no_sampler": ("joint", "equal", 0), "mtl_major_task_sampler": ("major_task", "equal", 0),
        "mtl_task_aware_sampler": ("task_aware", "equal", 0), "dwa": ("joint", "dwa", 0),
        "cotask": ("task_aware", "equal", 8)}


def test_hughes_table1_arms() -> None:
    plan = _plan("experiment_hughes_table1.yaml", P18)
    assert list(plan) == ["single_head", "two_head", "all_head"]
    every = [c for cs in plan.values() for c in cs]
    assert all((c.blocks, c.base_filters, c.filter_growth, c.head, c.sampler, c.oversample, c.oversample_k)
               == (16, 64, "linear", "flatten", "joint", "ucsf", 4000) for c in every)
    assert [c.tasks for c in plan["single_head"]] == [(t,) for t in P18]
    pairs = [c.tasks for c in plan["two_head"]]
    assert all(len(p) == 2 for p in pairs) and sorted(t for p in pairs for t in p) == sorted(P18)
    (all_head,) = plan["all_head"]
    assert all_head.tasks is None  # every label of the shards
    # a task without both classes in training leaves its pair as a one-task model, not a crash
    rare_gone = _plan("experiment_hughes_table1.yaml", [t for t in P18 if t != "3AVB"])
    assert ("VT",) in [c.tasks for c in rare_gone["two_head"]]


def test_groups_are_checked() -> None:
    pipe = load_pipeline()
    with pytest.raises(ConfigError, match="per_task or groups"):
        pipe._arm_groups("a", {"per_task": True, "groups": [["A"]]}, {}, ["A"])
    with pytest.raises(ConfigError, match="twice"):
        pipe._arm_groups("a", {"groups": [["A", "B"], ["B"]]}, {"tasks": ["A", "B"]}, ["A", "B"])
    with pytest.raises(ConfigError, match=r"unknown tasks \['C'\]"):
        pipe._arm_groups("a", {"groups": [["C"]]}, {"tasks": ["A", "B"]}, ["A", "B"])
    # a group without the major task has no major task and cannot use the major-task sampler
    v = pipe._group_values({"major_tasks": ["A"], "sampler": "major_task", "aux_tasks": 4}, ["B"])
    assert v["major_tasks"] is None and v["sampler"] == "task_aware" and v["aux_tasks"] == 0


def test_run_folds_runs_each_fold_and_reports_mean_and_sd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    pipe = load_pipeline()
    for k in range(3):
        (tmp_path / "shards" / f"fold-{k}").mkdir(parents=True)
    seen = []

    def fake_run(spec, shards_dir, out, **kw):  # per-fold tables (seed summaries) with known numbers
        k = int(Path(shards_dir).name.split("-")[1])
        seen.append((Path(shards_dir).name, Path(out).name, kw["device"]))

        def ms(a: float, b: float) -> dict:
            return {"a": {"mean": a}, "b": {"mean": b}}

        return {"arms": ["a", "b"], "headline": {"values": ms(0.7 + 0.1 * k, 0.5)},
                "summary": {"macro_auroc": ms(0.8, 0.6 + 0.1 * k), "recall_multi": ms(0.5, 0.5),
                            "jaccard": ms(0.4, 0.4), "rare_f1": ms(0.1, 0.2)},
                "per_task_auroc": {"LVH": [0.9, np.nan if k == 1 else 0.7]}}

    monkeypatch.setattr(pipe, "run_experiment", fake_run)
    res = pipe.run_folds({}, tmp_path / "shards", tmp_path / "exp", folds=3, device="cpu")
    assert seen == [("fold-0", "fold-0", "cpu"), ("fold-1", "fold-1", "cpu"), ("fold-2", "fold-2", "cpu")]
    m = res["metrics"]
    assert m["headline"]["mean"] == pytest.approx([0.8, 0.5]) and m["headline"]["sd"][0] == pytest.approx(0.1)
    assert m["macro_auroc"]["mean"][1] == pytest.approx(0.7)
    assert m["auroc LVH"]["mean"][1] == pytest.approx(0.7)  # the fold without a value is left out
    assert "| headline | 0.800 ± 0.100 | 0.500 ± 0.000 |" in (tmp_path / "exp" / "folds.md").read_text()
    with pytest.raises(ConfigError, match="missing: \\[3\\]"):
        pipe.run_folds({}, tmp_path / "shards", tmp_path / "exp", folds=4)
