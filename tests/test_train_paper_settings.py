"""The papers' settings in the trainer: Hughes' network and UCSF subset, major tasks, early stopping.

Runs the real trainer on the in-memory fakes of ``tests/_fakes.py`` (3 tasks, 256 samples per lead);
each run is a few CPU steps of a 2-block network.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ecgkit.trainer as T
from _fakes import FakeShardDataset
from ecgkit.cotask import load_aux_tasks, make_aux_tasks
from ecgkit.errors import ConfigError, DataError
from ecgkit.metrics import auroc
from ecgkit.oversample import subset_class_counts, ucsf_subset
from ecgkit.report import build_report
from ecgkit.trainer.checkpoint import _model_from_ckpt
from ecgkit.trainer.validation import scored_tasks, val_scores


@pytest.fixture()
def fakes() -> dict[str, FakeShardDataset]:
    return {"train": FakeShardDataset(384, seed=0), "val": FakeShardDataset(192, seed=1)}


def _cfg(**kw: object) -> T.TrainConfig:
    base = dict(blocks=2, batch_size=32, epochs=1, batches_per_epoch=4, log_interval=2, warmup_steps=2, lr=3e-3,
                tensorboard=False, device="cpu", base_filters=8)
    base.update(kw)
    return T.TrainConfig(**base)  # type: ignore[arg-type]


def _info(run: Path) -> dict:
    return json.loads((run / T.RUN_INFO_FILE).read_text())


def test_flatten_head_and_width_are_saved_and_rebuilt(fakes: dict, tmp_path: Path) -> None:
    run = tmp_path / "run"
    T.train(_cfg(head="flatten", filter_growth="linear", base_filters=8), run, datasets=fakes)
    ckpt = T.load_checkpoint(run / "best.pt")
    mc = ckpt["model_config"]
    assert (mc["head"], mc["filter_growth"], mc["base_filters"], mc["n_samples"]) == ("flatten", "linear", 8, 256)
    model = _model_from_ckpt(ckpt).eval()
    assert model.n_features == 8 * 128  # 2 blocks of 8 filters (width grows every 4), 256 samples halved once
    x = torch.from_numpy(fakes["val"].get_batch(np.arange(4))[0])
    with torch.no_grad():
        assert model(x).shape == (4, 3)


def test_kernel_size_reaches_every_convolution_and_the_checkpoint(fakes: dict, tmp_path: Path) -> None:
    run = tmp_path / "run"
    T.train(_cfg(kernel_size=25), run, datasets=fakes)  # the CO-TASK authors' kernel
    ckpt = T.load_checkpoint(run / "best.pt")
    assert ckpt["model_config"]["kernel_size"] == 25
    model = _model_from_ckpt(ckpt).eval()
    kernels = {m.weight.shape[-1] for m in model.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))
               and m.weight.shape[-1] > 1}
    assert kernels == {25}
    x = torch.from_numpy(fakes["val"].get_batch(np.arange(4))[0])
    with torch.no_grad():
        assert model(x).shape == (4, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        _cfg(kernel_size=0)


def test_ucsf_option_trains_on_the_subset_and_records_its_size(fakes: dict, tmp_path: Path) -> None:
    run = tmp_path / "run"
    k = 40
    T.train(_cfg(sampler="joint", oversample="ucsf", oversample_k=k, oversample_negatives=20, batches_per_epoch=None),
            run, datasets=fakes)
    info = _info(run)["oversample"]
    want = ucsf_subset(fakes["train"].labels, k, seed=0, n_negative=20)
    assert info["mode"] == "ucsf" and info["k"] == k
    assert info["n_records"] == info["n_distinct_records"] == len(want)  # no duplicates
    assert info["positives"] == dict(zip(["T0", "T1", "T2"], subset_class_counts(fakes["train"].labels, want).tolist()))
    assert max(info["positives"].values()) <= k
    res_rows = T.load_checkpoint(run / "last.pt")["step"]
    assert res_rows == len(want) // 32  # an epoch is one pass over the subset
    dup = tmp_path / "dup"
    T.train(_cfg(sampler="joint", oversample="duplicate", oversample_k=150), dup, datasets=fakes)
    d = _info(dup)["oversample"]
    assert d["mode"] == "duplicate" and d["n_records"] > d["n_distinct_records"] == 384
    assert min(d["positives"].values()) >= 150


def test_major_tasks_set_the_sampler_weights_and_the_aux_pairs(fakes: dict, tmp_path: Path) -> None:
    run = tmp_path / "major"
    T.train(_cfg(major_tasks=("T1",), major_weight=4.0, aux_tasks=2), run, datasets=fakes)
    info = _info(run)
    assert info["major_tasks"] == ["T1"] and info["minor_tasks"] == ["T0", "T2"]
    w = info["task_weights"]
    heads = list(w)
    assert heads[:3] == ["T0", "T1", "T2"] and len(heads) == 5
    # major 4, minor 1, each auxiliary head 1 (minor): 4/8 and 1/8
    assert w["T1"] == pytest.approx(0.5) and all(w[h] == pytest.approx(0.125) for h in heads if h != "T1")
    # the auxiliary pairs are make_aux_tasks(major_tasks=[1]) of the training labels
    defs = load_aux_tasks(run / T.AUX_FILE)
    want = make_aux_tasks(fakes["train"].labels, 2, seed=0, task_names=["T0", "T1", "T2"], major_tasks=[1],
                          major_weight=4.0)
    assert [d["pair"] for d in defs] == [d["pair"] for d in want]
    # ... which differ from the unweighted choice for some seed (the weighting reaches the generator)
    differs = any([d["pair"] for d in make_aux_tasks(fakes["train"].labels, 1, seed=s, major_tasks=[1],
                                                     major_weight=50.0)]
                  != [d["pair"] for d in make_aux_tasks(fakes["train"].labels, 1, seed=s)] for s in range(20))
    assert differs
    # aux_task_fraction still splits label heads from auxiliary heads; majors keep their 4:1 inside
    run2 = tmp_path / "frac"
    T.train(_cfg(major_tasks=("T1",), aux_tasks=2, aux_task_fraction=0.2), run2, datasets=fakes)
    w2 = _info(run2)["task_weights"]
    assert w2["T1"] == pytest.approx(0.8 * 4 / 6) and w2["T0"] == pytest.approx(0.8 / 6)
    assert sum(v for h, v in w2.items() if h.startswith("aux")) == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="T9"):
        T.train(_cfg(major_tasks=("T9",)), tmp_path / "bad", datasets=fakes)


def test_major_task_sampler_balances_the_major_task_and_trains_every_head(fakes: dict, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = T.train(_cfg(sampler="major_task", major_tasks=("T2",), batches_per_epoch=6), run, datasets=fakes)
    info = _info(run)
    assert info["sampler"] == "major_task" and info["task_weights"] == {"T0": 0.0, "T1": 0.0, "T2": 1.0}
    row = res.history[-1]
    assert all(np.isfinite(row[f"loss_T{k}"]) for k in range(3))  # multi-label batches: every head learns
    # the records drawn are class-balanced for T2 (log weights) as TaskAwareSampler's draw for T2 alone
    from ecgkit.sampler import TaskAwareSampler
    lab = fakes["train"].labels
    sampler = T.MultiLabelBatches(TaskAwareSampler(lab, 256, task_weights=[0, 0, 1], seed=0, batches_per_epoch=8))
    tasks, idx = zip(*sampler)
    drawn = np.concatenate(idx)
    assert set(tasks) == {-1} and (lab[drawn, 2] >= 0).all()
    share = (lab[drawn, 2] == 1).mean()
    n1, n0 = (lab[:, 2] == 1).sum(), (lab[:, 2] == 0).sum()
    expect = n1 * np.log(n1) / n1 / (np.log(n1) + np.log(n0))  # n_c w(n_c), w = log(n)/n
    assert share == pytest.approx(expect, abs=0.03) and share > 0.4  # vs prevalence ~0.15
    with pytest.raises(ValueError, match="major_tasks"):
        _cfg(sampler="major_task")


def test_early_stopping_and_the_val_row_follow_the_major_task(fakes: dict, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = T.train(_cfg(major_tasks=("T2",), epochs=2), run, datasets=fakes)
    last = T.load_checkpoint(run / "last.pt")
    model = _model_from_ckpt(last)
    probs = T.predict(model, fakes["val"], n_tasks=3, amp=False)
    y = fakes["val"].labels
    row = res.history[-1]
    assert row["val_macro_auroc"] == pytest.approx(float(auroc(y, probs)[2]), abs=1e-6)  # T2 only
    assert row["val_score"] == row["val_macro_auroc"]
    assert _info(run)["early_stopping"]["scored_tasks"] == ["T2"]
    assert res.best_val_score == max(r["val_score"] for r in res.history)
    # the report of the run leads with the major task
    from ecgkit.report import evaluate, run_major_tasks
    assert run_major_tasks(run) == ["T2"]
    rep = evaluate(run, "test", n_bootstrap=0, device="cpu", datasets={"val": fakes["val"], "test": fakes["val"]},
                   out_dir=tmp_path / "eval")
    assert rep["headline"]["tasks"] == ["T2"] and rep["headline"]["value"] == rep["per_task"]["T2"]["auroc"]
    assert "**macro_auroc (major tasks T2)**" in (tmp_path / "eval" / "report.md").read_text()


def test_val_loss_criterion_and_min_positives(fakes: dict, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = T.train(_cfg(early_stopping="val_loss", epochs=2), run, datasets=fakes)
    info = _info(run)["early_stopping"]
    assert info["criterion"] == "val_loss" and info["scored_tasks"] == ["T0", "T1", "T2"]
    assert all(r["val_score"] == pytest.approx(-r["val_loss"]) for r in res.history)
    best = T.load_checkpoint(run / "best.pt")
    assert best["best"] == pytest.approx(max(r["val_score"] for r in res.history))
    # a task with fewer validation positives than asked for is left out of the score; none left: error
    val = FakeShardDataset(192, seed=1)
    val.labels[:, 0] = np.where(val.labels[:, 0] == 1, 0, val.labels[:, 0])
    val.labels[:2, 0] = 1  # two validation positives for T0
    assert scored_tasks(val.labels, [0, 1, 2], 3) == [1, 2]
    # no task to score: the run trains without early stopping (best.pt = last.pt) and says why
    res = T.train(_cfg(major_tasks=("T0",), early_stopping_min_positives=3, epochs=2, patience=1, lr=0.0),
                  tmp_path / "none", datasets={"train": fakes["train"], "val": val})
    info = _info(tmp_path / "none")["early_stopping"]
    assert info["criterion"] is None and info["scored_tasks"] is None
    why = info["not_used_because"]
    assert "no major task has >= 3 validation positive(s)" in why and "T0 2/" in why
    assert res.epoch == 2 and not res.stopped_early and np.isnan(res.history[-1]["val_score"])
    assert T.load_checkpoint(tmp_path / "none" / "best.pt")["step"] == res.step


def test_val_scores_hand_computation() -> None:
    y = np.array([[1, 0, -1], [0, 1, 1], [1, 0, 0], [0, -1, 1]], dtype=np.int8)
    p = np.array([[0.9, 0.2, 0.5], [0.4, 0.6, 0.7], [0.6, 0.3, 0.2], [0.1, 0.9, 0.8]], dtype=np.float32)
    out = val_scores(y, p, major=[0, 2], scored=[0, 2], criterion="val_loss")
    bce0 = -np.mean([np.log(0.9), np.log(0.6), np.log(0.6), np.log(0.9)])
    bce2 = -np.mean([np.log(0.7), np.log(0.8), np.log(0.8)])
    assert out["val_loss"] == pytest.approx((bce0 + bce2) / 2, rel=1e-6)
    assert out["val_score"] == pytest.approx(-out["val_loss"])
    assert out["val_macro_auroc"] == pytest.approx(1.0)  # both major tasks perfectly ranked
    auc = val_scores(y, p, major=[0, 1, 2], scored=[1], criterion="macro_auroc")
    assert auc["val_score"] == pytest.approx(1.0) and auc["val_macro_auroc"] == pytest.approx(1.0)


def test_report_headline_follows_major_tasks_and_metric() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((400, 3)) < 0.3).astype(np.int8)
    s = np.clip(y * 0.3 + rng.random((400, 3)) * np.array([1.0, 0.4, 2.0]), 0, None)
    rep = build_report(y, s, y, s, ["A", "B", "C"], n_bootstrap=0, major_tasks=["B"])
    assert rep["headline"] == {"metric": "macro_auroc", "tasks": ["B"], "value": rep["per_task"]["B"]["auroc"],
                               "n_tasks_with_value": 1}
    f1 = build_report(y, s, y, s, ["A", "B", "C"], n_bootstrap=0, headline_metric="macro_f1")
    assert f1["headline"]["tasks"] == ["A", "B", "C"]
    assert f1["headline"]["value"] == pytest.approx(np.mean([f1["per_task"][n]["f1"] for n in "ABC"]))
    assert rep["headline"]["value"] != pytest.approx(rep["summary"]["macro_auroc"])
    with pytest.raises(ValueError, match="headline_metric"):
        build_report(y, s, y, s, ["A", "B", "C"], n_bootstrap=0, headline_metric="accuracy")


def test_cli_options_reach_the_train_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import ecgkit.trainer
    from ecgkit.cli import main

    seen: dict = {}

    def fake_train(cfg: T.TrainConfig, out_dir: str, resume: bool = False, **kw: object) -> T.TrainResult:
        seen["cfg"] = cfg
        return T.TrainResult(Path(out_dir), 0, 0, float("nan"), [])

    monkeypatch.setattr(ecgkit.trainer, "train", fake_train)
    args = ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--blocks", "16", "--base-filters", "64",
            "--filter-growth", "linear", "--head", "flatten", "--kernel-size", "25", "--sampler", "joint", "--oversample", "ucsf",
            "--oversample-k", "4000", "--major-tasks", "LVH,AFIB", "--early-stopping", "val_loss",
            "--early-stopping-min-positives", "5", "--sharing", "cross-stitch", "--method", "damtl",
            "--damtl-tasks", "LVH+AFIB,LVH+VT", "--lambda-l1", "1e-5", "--lambda-cmmd", "0.5", "--no-progress",
            "--increase-every", "2", "--weight-fn", "inverse_log", "--lr-schedule", "multistep",
            "--lr-milestones", "7,14,21", "--lr-gamma", "0.5"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.blocks, cfg.base_filters, cfg.filter_growth, cfg.head) == (16, 64, "linear", "flatten")
    assert cfg.kernel_size == 25
    assert (cfg.sampler, cfg.oversample, cfg.oversample_k) == ("joint", "ucsf", 4000)
    assert cfg.major_tasks == ("LVH", "AFIB")
    assert (cfg.early_stopping, cfg.early_stopping_min_positives) == ("val_loss", 5)
    assert (cfg.sharing, cfg.method, cfg.damtl_tasks) == ("cross_stitch", "damtl", ("LVH+AFIB", "LVH+VT"))
    assert (cfg.lambda_l1, cfg.lambda_cmmd) == (1e-5, 0.5)
    assert (cfg.increase_every, cfg.weight_fn, cfg.lr_schedule, cfg.lr_milestones, cfg.lr_gamma) == (
        2, "inverse_log", "multistep", (7, 14, 21), 0.5)
    bad = CliRunner().invoke(main, ["train", str(tmp_path), "--out", str(tmp_path / "r"), "--head", "max"])
    assert bad.exit_code == 2 and "--head" in bad.output


def test_cross_stitch_sharing_trains_rebuilds_and_exports(fakes: dict, tmp_path: Path) -> None:
    from ecgkit.models.cross_stitch import CrossStitchNet

    run = tmp_path / "run"
    res = T.train(_cfg(sharing="cross_stitch", aux_tasks=1, blocks=2, cross_stitch_init=0.8), run, datasets=fakes)
    assert np.isfinite(res.history[-1]["train_loss"])
    ckpt = T.load_checkpoint(run / "best.pt")
    mc = ckpt["model_config"]
    aux_pair = load_aux_tasks(run / T.AUX_FILE)[0]["pair"]
    want_cols = [[0], [1], [2]]
    want_cols[aux_pair[0]].append(3)  # the auxiliary head joins its first task's column
    assert mc["kind"] == "cross_stitch" and [list(c) for c in mc["columns"]] == want_cols
    assert tuple(mc["stitch_after"]) == (1,)  # the subsampling block of a 2-block network
    model = _model_from_ckpt(ckpt).eval()
    assert isinstance(model, CrossStitchNet) and len(model.columns) == 3
    torch.testing.assert_close(model.units["1"].alpha.detach().diagonal().sum(), torch.tensor(3 * 0.8), atol=0.05,
                               rtol=0)  # near its initial mix after a few steps
    x = torch.from_numpy(fakes["val"].get_batch(np.arange(5))[0])
    from ecgkit.contract import InputContract
    contract = InputContract(fs=100.0, seconds=2.56, n_samples=256)  # the fakes' records
    path = T.export(run, tmp_path / "model.pt", contract=contract)
    exported, names = T.load_exported(path)
    assert names == ["T0", "T1", "T2"]
    with torch.no_grad():
        torch.testing.assert_close(exported(x), model(x)[:, :3])  # aux head dropped, the rest unchanged


def test_cross_stitch_one_column_per_cohort_reports_parameters(tmp_path: Path) -> None:
    train, val = FakeShardDataset(128, seed=0), FakeShardDataset(64, seed=1)
    for ds in (train, val):  # cohort A defines T0, T1; cohort B defines T1, T2
        ds.cohort_labels = {"A": ("T0", "T1"), "B": ("T1", "T2")}
    data = {"train": train, "val": val}
    run = tmp_path / "cs"
    res = T.train(_cfg(sharing="cross_stitch", cross_stitch_columns="cohort", blocks=2, epochs=1), run, datasets=data)
    assert np.isfinite(res.samples_per_s) and res.samples_per_s > 0
    info = json.loads((run / T.RUN_INFO_FILE).read_text())["model"]
    assert info["sharing"] == "cross_stitch" and info["columns"] == [[0, 1], [1, 2]]
    model = _model_from_ckpt(T.load_checkpoint(run / "last.pt"))
    assert info["n_parameters"] == sum(p.numel() for p in model.parameters())
    T.train(_cfg(blocks=2, epochs=1), tmp_path / "hard", datasets=data)
    hard = json.loads((tmp_path / "hard" / T.RUN_INFO_FILE).read_text())["model"]
    assert hard["sharing"] == "hard" and hard["columns"] is None and hard["n_parameters"] < info["n_parameters"]
    with pytest.raises(ConfigError, match="several cohorts"):
        T.train(_cfg(sharing="cross_stitch", cross_stitch_columns="cohort", blocks=2, epochs=1), tmp_path / "no",
                datasets=fakes_plain())


def fakes_plain() -> dict[str, FakeShardDataset]:
    return {"train": FakeShardDataset(64, seed=0), "val": FakeShardDataset(32, seed=1)}


def test_damtl_resume_continues_to_the_identical_next_step(tmp_path: Path) -> None:
    train, val = FakeShardDataset(192, seed=0), FakeShardDataset(96, seed=1)
    for ds in (train, val):
        ds.labels[: len(ds) // 2, 2] = -1
    kw = dict(method="damtl", damtl_tasks=("T0+T1", "T1+T2"), lambda_l1=1e-5, lambda_cmmd=0.1, epochs=2,
              batches_per_epoch=3, eval_batch_size=96, patience=5)
    data = {"train": train, "val": val}
    T.train(_cfg(**kw), tmp_path / "straight", datasets=data)
    aux = str(tmp_path / "straight" / "aux")
    with pytest.raises(DataError, match="resume"):
        T.train(_cfg(**kw, damtl_aux_run=aux), tmp_path / "none", resume=True, datasets=data)
    for stop in (4, 3):  # inside the second epoch, and at the epoch boundary
        run = tmp_path / f"stopped{stop}"
        first = T.train(_cfg(**kw, damtl_aux_run=aux, max_steps=stop), run, datasets=data)
        assert first.step == stop
        res = T.train(_cfg(**kw, damtl_aux_run=aux), run, resume=True, datasets=data)
        assert res.step == 6 and [r["epoch"] for r in res.history] == [0, 1]
        a = T.load_checkpoint(tmp_path / "straight" / "last.pt")
        b = T.load_checkpoint(run / "last.pt")
        for k, v in a["model"].items():
            torch.testing.assert_close(b["model"][k], v, rtol=0, atol=0, msg=k)
        assert [r["ce"] for r in res.history] == pytest.approx([r["ce"] for r in a["history"]], rel=1e-6)


def test_damtl_method_runs_algorithm_1_on_two_cohorts(fakes: dict, tmp_path: Path) -> None:
    from ecgkit.models.damtl import DAMTLPredictor

    train, val = FakeShardDataset(192, seed=0), FakeShardDataset(96, seed=1)
    for ds in (train, val):  # cohort A defines T0, T1; cohort B defines T1, T2
        half = len(ds) // 2
        ds.labels[:half, 2] = -1
        ds.labels[half:, 0] = -1
    run = tmp_path / "run"
    cfg = _cfg(method="damtl", damtl_tasks=("T0+T1", "T1+T2"), lambda_l1=1e-5, lambda_cmmd=0.1, epochs=2,
               batches_per_epoch=2, eval_batch_size=96)
    res = T.train(cfg, run, datasets={"train": train, "val": val})
    assert (run / "aux" / "best.pt").exists()  # step 1: the auxiliary network on the union labels
    assert res.epoch == 2 and all(np.isfinite(r["ce"]) and r["mask_l1"] > 0 for r in res.history)
    info = json.loads((run / "damtl.json").read_text())
    assert info["tasks"] == [["T0", "T1"], ["T1", "T2"]]
    assert [len(s) for s in info["mask_sparsity"]] == [5, 5]  # stem + 2 blocks x 2 convolutions, per task
    model = _model_from_ckpt(T.load_checkpoint(run / "best.pt")).eval()
    assert isinstance(model, DAMTLPredictor)
    x = torch.from_numpy(val.get_batch(np.arange(6))[0])
    with torch.no_grad():
        out = model(x)
        t0, t1 = (net(x) for net in model.net.tasks)
    torch.testing.assert_close(out[:, 0], t0[:, 0])
    torch.testing.assert_close(out[:, 1], (t0[:, 1] + t1[:, 0]) / 2)  # a shared label: mean of its tasks
    torch.testing.assert_close(out[:, 2], t1[:, 1])
    assert all(float(m.detach().min()) >= 0 for j in range(2) for m in model.net.masks(j))
    y, s, names = T.predict_run(run, "val", device="cpu", dataset=val)
    assert names == ["T0", "T1", "T2"] and s.shape == (96, 3) and np.isfinite(s).all()
    from ecgkit.contract import InputContract
    contract = InputContract(fs=100.0, seconds=2.56, n_samples=256)
    exported, _ = T.load_exported(T.export(run, tmp_path / "damtl.pt", contract=contract))
    with torch.no_grad():
        torch.testing.assert_close(exported(x), out)
    with pytest.raises(ValueError, match="damtl_tasks"):
        _cfg(method="damtl", damtl_tasks=())
    with pytest.raises(ConfigError, match="several cohorts"):  # no damtl_tasks and single-cohort data
        T.train(_cfg(method="damtl", damtl_aux_run=str(run / "aux")), tmp_path / "nocohorts",
                datasets={"train": train, "val": val})
    with pytest.raises(ConfigError, match="T7"):
        T.train(_cfg(method="damtl", damtl_tasks=("T0+T7",), damtl_aux_run=str(run / "aux")), tmp_path / "bad",
                datasets={"train": train, "val": val})


def test_cotask_authors_width_schedule_doubles_every_two_blocks(fakes: dict, tmp_path: Path) -> None:
    # their code: 64, 64, 128, 128, 256, 256, 512, 512 over 8 residual blocks, kernel 25
    run = tmp_path / "run"
    T.train(_cfg(blocks=8, base_filters=64, increase_every=2, kernel_size=25, batches_per_epoch=1), run, datasets=fakes)
    ckpt = T.load_checkpoint(run / "best.pt")
    assert ckpt["model_config"]["increase_every"] == 2
    model = _model_from_ckpt(ckpt)
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv1d) and m.kernel_size[0] == 25]
    blocks = widths[1::2]  # after the stem: two convolutions per block, the second gives the block's width
    assert widths[0] == 64 and blocks == [64, 64, 128, 128, 256, 256, 512, 512]
    with pytest.raises(ValueError, match="increase_every"):
        _cfg(increase_every=0)


def test_multistep_schedule_equals_torch_multisteplr() -> None:
    from ecgkit.trainer.step import _optimizer

    cfg = _cfg(lr=1e-4, lr_schedule="multistep", lr_milestones=(2, 4), lr_gamma=0.5, warmup_steps=0, epochs=6)
    model = torch.nn.Linear(3, 2)
    opt, sched = _optimizer(cfg, model, torch.nn.Module(), total_steps=6 * 10, steps_per_epoch=10)
    ref_opt = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-4)
    ref = torch.optim.lr_scheduler.MultiStepLR(ref_opt, milestones=[2, 4], gamma=0.5)  # stepped per epoch
    for epoch in range(6):
        for _ in range(10):
            assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        ref_opt.step()
        ref.step()
    # by hand: 1e-4 for epochs 0-1, 5e-5 for 2-3, 2.5e-5 for 4-5
    assert opt.param_groups[0]["lr"] == pytest.approx(2.5e-5)
    for bad in (dict(lr_milestones=None), dict(lr_milestones=(4, 2)), dict(lr_milestones=(2,), lr_gamma=0.0)):
        with pytest.raises(ValueError, match="multistep"):
            _cfg(lr_schedule="multistep", **bad)


def test_inverse_log_class_weight_is_one_over_log_n() -> None:
    from ecgkit.sampler import class_weights

    w = class_weights(np.array([1, 2, 10, 1000]), "inverse_log")
    assert w == pytest.approx([1 / np.log(2), 1 / np.log(2), 1 / np.log(10), 1 / np.log(1000)])


def test_batches_per_epoch_scale_multiplies_the_task_aware_epoch(fakes: dict, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = T.train(_cfg(batches_per_epoch=None, batch_size=32, batches_per_epoch_scale=3.0), run, datasets=fakes)
    assert _info(run)["batches_per_epoch"] == 3 * 384 // 32 == res.step  # 3 passes' worth of batches, 1 epoch
    with pytest.raises(ValueError, match="batches_per_epoch_scale"):
        _cfg(sampler="joint", batches_per_epoch_scale=3.0)
