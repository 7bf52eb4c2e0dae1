"""Reports: values equal the metrics module's, thresholds come from validation, files are written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ecgkit.trainer as T
from _fakes import FakeShardDataset, FakeTaskAwareSampler
from ecgkit import metrics as M
from ecgkit.report import build_report, evaluate, write_report


def _data(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < [0.3, 0.2, 0.1]).astype(np.int8)
    s = rng.normal(size=(n, 3)) + 1.5 * y
    return y, s


def test_report_values_and_validation_thresholds(tmp_path: Path) -> None:
    y_val, s_val = _data(0)
    y, s = _data(1)
    rep = build_report(y_val, s_val, y, s, ["A", "B", "C"], n_bootstrap=100, reference_specificity=0.9)
    thr = M.choose_thresholds(y_val, s_val)
    assert [rep["thresholds"][n] for n in "ABC"] == pytest.approx(thr)
    # the evaluated split never enters the threshold choice: other eval data, same thresholds
    y_other, s_other = _data(2)
    other = build_report(y_val, s_val, y_other, s_other, ["A", "B", "C"], n_bootstrap=0)
    assert other["thresholds"] == rep["thresholds"]
    assert list(rep["thresholds"].values()) != pytest.approx(M.choose_thresholds(y, s))
    per = M.per_task_metrics(y, s, thr)
    assert rep["per_task"]["B"]["f1"] == pytest.approx(per["f1"][1])
    assert rep["summary"]["jaccard"] == pytest.approx(M.jaccard(y, s >= thr))
    assert rep["per_task"]["C"]["sensitivity_at_reference_specificity"] == pytest.approx(
        M.sensitivity_at_specificity(y[:, 2], s[:, 2], 0.9))
    lo, hi = rep["summary_ci"]["macro_auroc"]
    assert lo < rep["summary"]["macro_auroc"] < hi
    # a baseline identical to the model gives Δm = 0
    rep2 = build_report(y_val, s_val, y, s, ["A", "B", "C"], n_bootstrap=0, baseline=rep)
    assert rep2["delta_m"]["all"] == pytest.approx(0.0)
    paths = write_report(rep2, tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert set(saved) >= {"per_task", "summary", "thresholds", "delta_m", "prevalence"}
    assert "_curves" not in saved
    assert "| B |" in paths["md"].read_text()
    for key in ("roc", "bars"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_evaluate_run_end_to_end(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(T.batches, "_task_aware_sampler", FakeTaskAwareSampler)
    data = {"train": FakeShardDataset(256, seed=0), "val": FakeShardDataset(128, seed=1),
            "test": FakeShardDataset(128, seed=2)}
    cfg = T.TrainConfig(blocks=2, batch_size=32, epochs=2, batches_per_epoch=8, tensorboard=False, device="cpu",
                        warmup_steps=2, lr=3e-3)
    T.train(cfg, tmp_path / "run", datasets=data)
    T.train(cfg, tmp_path / "base", datasets=data)
    rep = evaluate(tmp_path / "run", "test", baseline=tmp_path / "base", n_bootstrap=50, datasets=data,
                   device="cpu")
    y, s, _ = T.predict_run(tmp_path / "run", "test", dataset=data["test"], device="cpu")
    assert rep["summary"]["macro_auroc"] == pytest.approx(M.macro_auroc(y, s))
    y_val, s_val, names = T.predict_run(tmp_path / "run", "val", dataset=data["val"], device="cpu")
    assert [rep["thresholds"][n] for n in names] == pytest.approx(M.choose_thresholds(y_val, s_val))
    assert rep["delta_m"]["all"] == pytest.approx(0.0)  # same seed, same data: identical runs
    files = rep["files"]
    assert Path(files["curves"]).exists() and Path(files["json"]).parent == tmp_path / "run" / "eval-test"
