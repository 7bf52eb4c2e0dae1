"""Issue 16's tables: label noise in the training labels only, restricted single-task arms with Δm,
train-only / parallel single-task processes, and runs taken as they stood after a deadline kill."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecgkit import metrics as M
from ecgkit.config import make_config
from ecgkit.data import ShardDataset
from ecgkit.errors import ConfigError
from ecgkit.shards import ShardConfig, write_shards
from ecgkit.split import split_by_patient
from ecgkit.trainer import TrainConfig, predict_run, train
from ecgkit.trainer import batches
from _pipelines import load_pipeline
from ptbxl_cohort import ptbxl_manifest

REPO = Path(__file__).resolve().parent.parent
TASKS = ("LVH", "IRBBB", "1AVB")




@pytest.fixture(scope="module")
def shards(ptbxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cohort = split_by_patient(ptbxl_manifest(ptbxl_dir, 150), labels=list(TASKS), seed=0)
    out = tmp_path_factory.mktemp("tables-shards")
    write_shards(cohort, out, ShardConfig(fs=100.0, labels=TASKS, workers=1, records_per_shard=64))
    return out


def test_noisy_labels_flip_rate_unknowns_and_determinism() -> None:
    y = np.zeros((4000, 5), dtype=np.int8)
    y[::3] = 1
    y[:, 4] = -1  # an unknown column stays unknown
    assert np.array_equal(batches.noisy_labels(y, 0.0, 1), y)
    for rate in (0.1, 0.3, 0.5, 1.0):
        noisy = batches.noisy_labels(y, rate, 7)
        assert (noisy[:, 4] == -1).all() and set(np.unique(noisy[:, :4])) <= {0, 1}
        flipped = float((noisy[:, :4] != y[:, :4]).mean())
        sd = np.sqrt(rate / 2 * (1 - rate / 2) / 16000)  # 16,000 known entries, each flipped w.p. rate/2
        assert abs(flipped - rate / 2) < 4 * sd, (rate, flipped)
        # symmetric: positives and negatives are flipped at the same rate
        pos, neg = y[:, :4] == 1, y[:, :4] == 0
        assert abs((noisy[:, :4][pos] == 0).mean() - (noisy[:, :4][neg] == 1).mean()) < 8 * sd
    assert np.array_equal(batches.noisy_labels(y, 0.3, 7), batches.noisy_labels(y, 0.3, 7))
    assert not np.array_equal(batches.noisy_labels(y, 0.3, 7), batches.noisy_labels(y, 0.3, 8))
    with pytest.raises(ValueError, match="label_noise"):
        TrainConfig(label_noise=1.5)


def test_label_noise_reaches_training_only_and_test_is_scored_on_clean_labels(
        shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[np.ndarray] = []
    real = batches._task_aware_sampler

    def spy(labels, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(np.array(labels))
        return real(labels, *args, **kwargs)

    monkeypatch.setattr(batches, "_task_aware_sampler", spy)
    cfg = TrainConfig(shards_dir=str(shards), blocks=1, epochs=1, batch_size=8, batches_per_epoch=2, warmup_steps=1,
                      tensorboard=False, device="cpu", label_noise=0.5, seed=3, num_workers=0)
    run = tmp_path / "noisy"
    train(cfg, run)
    clean = np.asarray(ShardDataset(str(shards), "train").labels, dtype=np.int8)
    want = batches.noisy_labels(clean, 0.5, 3)
    assert not np.array_equal(want, clean)
    assert np.array_equal(seen[0], want)  # the sampler (and so every batch's targets) used the noisy labels
    info = json.loads((run / "run_info.json").read_text())
    assert info["label_noise"] == {"rate": 0.5, "train_labels_changed": int((want != clean).sum())}
    # validation and test come from the shards unchanged: the clean labels
    for split in ("val", "test"):
        y, _, names = predict_run(run, split, device="cpu")
        assert names == list(TASKS)
        assert np.array_equal(y, np.asarray(ShardDataset(str(shards), split).labels))


def test_interrupted_record_from_metrics_csv(tmp_path: Path) -> None:
    pipe = load_pipeline()
    path = tmp_path / "metrics.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "step", "train_loss", "val_macro_auroc"])
        w.writerows([[0, 109, 0.3, 0.71], [1, 218, 0.1, 0.83], [2, 327, 0.09, 0.80]])
    rec = pipe.interrupted_record(path, {"seed": 0})
    assert rec == {"step": 327, "epoch": 3, "config": {"seed": 0}, "best_val_macro_auroc": 0.83,
                   "stopped_early": False, "interrupted": True}


SPEC = {
    "common": {"blocks": 1, "epochs": 2, "batch_size": 8, "warmup_steps": 1, "tensorboard": False,
               "eval_batch_size": 64, "num_workers": 0, "patience": 5},
    "evaluate": {"split": "test", "n_bootstrap": 10, "seeds": [0], "budget": "samples"},
    "arms": {"single_task": {"per_task": True, "tasks": ["LVH", "1AVB"]}, "multi_task": {"sampler": "joint"},
             "multi_task_noise30": {"sampler": "joint", "label_noise": 0.3}},
}


@pytest.mark.slow
def test_restricted_single_task_parallel_training_delta_m_and_interrupted_runs(shards: Path, tmp_path: Path) -> None:
    pipe = load_pipeline()
    out = tmp_path / "exp"
    # the single-task models of one arm trained by two processes, one task each, nothing evaluated
    for task in ("LVH", "1AVB"):
        t = pipe.run_experiment(SPEC, shards, out, device="cpu", arms=["single_task"], train_only=True,
                                only_tasks=[task])
        assert t["arms"] == ["single_task"] and "no comparison" in t["markdown"]
    assert sorted(p.name for p in (out / "single_task" / "seed-0").iterdir()) == ["1AVB", "LVH"]
    assert not (out / "comparison.json").exists()
    # a run killed after its first epoch: best.pt and metrics.csv but no done.json
    pipe.run_experiment(SPEC, shards, out, device="cpu", arms=["multi_task"], train_only=True)
    (out / "multi_task" / "seed-0" / "done.json").unlink()
    with pytest.raises(ConfigError, match="no finished epoch"):
        pipe.run_experiment(SPEC, shards, out, device="cpu", arms=["multi_task_noise30"], accept_interrupted=True)
    table = pipe.run_experiment(SPEC, shards, out, device="cpu", arms=["single_task", "multi_task"],
                                accept_interrupted=True)
    assert table["interrupted"] == {"multi_task": [True]}
    assert json.loads((out / "multi_task" / "seed-0" / "done.json").read_text())["interrupted"] is True
    assert "taken as they stood" in table["markdown"]
    # Δm of the multi-task arm over the two single-task models, by hand from the runs' own predictions
    y, s, names = predict_run(out / "multi_task" / "seed-0", "test", device="cpu")
    yv, sv, _ = predict_run(out / "multi_task" / "seed-0", "val", device="cpu")
    m, b = [], []
    rule = "max_f1"
    for key in ("auroc", "ap", "f1"):
        for task in ("LVH", "1AVB"):
            j = names.index(task)
            ys, ss, _ = predict_run(out / "single_task" / "seed-0" / task, "test", device="cpu")
            yvs, svs, _ = predict_run(out / "single_task" / "seed-0" / task, "val", device="cpu")
            for dest, (yy, sc, yval, sval) in ((m, (y[:, j], s[:, j], yv[:, j], sv[:, j])),
                                               (b, (ys[:, 0], ss[:, 0], yvs[:, 0], svs[:, 0]))):
                if key == "auroc":
                    dest.append(M.auroc(yy[:, None], sc[:, None])[0])
                elif key == "ap":
                    dest.append(M.average_precision(yy[:, None], sc[:, None])[0])
                else:
                    thr = M.choose_thresholds(yval[:, None], sval[:, None], rule)
                    dest.append(M.confusion_metrics(yy[:, None], sc[:, None] >= thr[None, :])["f1"][0])
    assert table["delta_m"]["multi_task"] == pytest.approx(M.delta_m(np.array(m), np.array(b)), nan_ok=True)
    assert table["delta_m"]["single_task"] == pytest.approx(0.0)
    assert set(table["comparisons"]["single_task"]["tasks"]) == {"LVH", "1AVB"}


def test_tables_spec_resolves_to_the_issue_arms() -> None:
    pipe = load_pipeline()
    spec = yaml.safe_load((REPO / "pipelines" / "experiment_tables.yaml").read_text())
    assert set(spec["evaluate"]) <= pipe._EVAL_KEYS
    p18 = ["LVH", "RVH", "AFIB", "AFL", "IVCD", "NIVCD", "RBBB", "LBBB", "IRBBB", "ILBBB", "1AVB", "2AVB", "3AVB",
           "EAR", "VBIG", "VT", "VPC", "APC"]
    common = dict(spec["common"], shards_dir="SHARDS")
    cfgs = {}
    for arm, ov in spec["arms"].items():
        ov = dict(ov)
        values = {**common, **{k: v for k, v in ov.items() if k not in ("per_task", "groups")}}
        groups = pipe._arm_groups(arm, ov, values, p18)
        runs = [values] if groups is None else [pipe._group_values(values, g) for g in groups]
        cfgs[arm] = [make_config(TrainConfig, r) for r in runs]
    assert [c.tasks for c in cfgs["single_task"]] == [("LVH",), ("1AVB",), ("APC",)]
    assert {a: c[0].label_noise for a, c in cfgs.items() if "noise" in a} == {
        "multi_task_noise10": 0.1, "multi_task_noise30": 0.3, "multi_task_noise50": 0.5,
        "cotask_noise10": 0.1, "cotask_noise30": 0.3, "cotask_noise50": 0.5}
    assert {a: c[0].aux_tasks for a, c in cfgs.items() if a.startswith("cotask_aux")} == {
        "cotask_aux4": 4, "cotask_aux8": 8, "cotask_aux32": 32}
    assert cfgs["cotask_dwa"][0].weighting == "dwa" and cfgs["cotask_uncertainty"][0].weighting == "uncertainty"
    # table 2: the samplers
    assert {a: (c[0].sampler, c[0].weight_fn, c[0].oversample, c[0].major_tasks) for a, c in cfgs.items()
            if a.startswith("sampler_")} == {
        "sampler_major_task": ("major_task", "log", "none", ("LVH",)),
        "sampler_inverse": ("task_aware", "inverse", "none", None),
        "sampler_inverse_log": ("task_aware", "inverse_log", "none", None),
        "sampler_sqrt": ("task_aware", "sqrt", "none", None),
        "sampler_no_class_weight": ("task_aware", "none", "none", None),
        "sampler_ucsf": ("joint", "log", "ucsf", None)}
    assert cfgs["sampler_ucsf"][0].oversample_k == 4000
    assert all(c[0].label_noise == 0 for a, c in cfgs.items() if "noise" not in a)
    with pytest.raises(ConfigError, match="not trainable"):
        pipe._arm_groups("st", {"per_task": True}, {"tasks": ["VT"]}, ["LVH"])
