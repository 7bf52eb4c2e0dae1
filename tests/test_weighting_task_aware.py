"""Loss weighting under the task-aware sampler: weights away from 1 must reach the gradient and change the run.

Under the task-aware sampler a batch trains one head, so the weighted loss is ``w_k * L_k``: the
backbone gradient is exactly ``w_k`` times the equal-weighting gradient (checked before clipping), and
although gradient clipping and AdamW's normalisation damp a per-step scale, a run with weights away
from 1 ends elsewhere than the equal-weighting run (checked with clipping on, as the trainer runs).
A run with DWA weights of exactly 1 is the control: identical to equal weighting.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import ecgkit.trainer as T
from _fakes import FakeShardDataset
from ecgkit.losses import DWAWeighting, EqualWeighting, LossWeighting, UncertaintyWeighting
from ecgkit.trainer.step import _build, _optimizer, train_step

N_TASKS = 3
FORCED = [2.5, 0.3, 0.2]


def _weighting(kind: str) -> LossWeighting:
    if kind == "equal":
        return EqualWeighting(N_TASKS)
    if kind == "dwa_ones":
        return DWAWeighting(N_TASKS)  # weights 1 until two epochs are seen
    if kind == "dwa":
        w = DWAWeighting(N_TASKS)
        w.load_extra_state({"sum": [0.0] * N_TASKS, "count": [0.0] * N_TASKS, "history": [], "w": FORCED})
        return w
    u = UncertaintyWeighting(N_TASKS)
    with torch.no_grad():
        u.log_var.copy_(-torch.log(torch.tensor(FORCED)))  # exp(-s) = the forced weights
    return u


def _steps(kind: str, *, lr: float, clip: float, steps: int, ds: FakeShardDataset) -> tuple[torch.Tensor, list]:
    cfg = T.TrainConfig(blocks=1, seed=0, warmup_steps=0, lr=lr, grad_clip=clip, device="cpu")
    model, _ = _build(cfg, 12, N_TASKS)
    weighting = _weighting(kind)
    opt, sched = _optimizer(cfg, model, weighting, 100)
    rng = np.random.default_rng(0)
    for k in range(steps):
        x, y = ds.get_batch(np.sort(rng.choice(len(ds), 16, replace=False)))
        y = np.where(y < 0, 0, y).astype(np.int8)
        train_step(model, weighting, opt, sched, torch.from_numpy(x), torch.from_numpy(y), k % N_TASKS, amp=False,
                   grad_clip=clip)
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    return torch.cat([p.detach().flatten() for p in model.parameters()]), grads


@pytest.mark.parametrize("kind", ["dwa", "uncertainty"])
def test_forced_weights_scale_the_task_aware_gradient(kind: str) -> None:
    ds = FakeShardDataset(64, n_tasks=N_TASKS, length=64)
    for task in range(N_TASKS):  # one step on head `task`, no update (lr 0), no clipping
        _, g_eq = _steps("equal", lr=0.0, clip=0.0, steps=task + 1, ds=ds)
        _, g_w = _steps(kind, lr=0.0, clip=0.0, steps=task + 1, ds=ds)
        backbone = [(a, b) for a, b in zip(g_eq, g_w) if a.abs().sum() > 0]
        assert len(backbone) > 4
        for a, b in backbone:
            torch.testing.assert_close(b, FORCED[task] * a, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("kind", ["dwa", "uncertainty"])
def test_forced_weights_change_the_task_aware_run_despite_clipping(kind: str) -> None:
    ds = FakeShardDataset(64, n_tasks=N_TASKS, length=64)
    equal, _ = _steps("equal", lr=3e-3, clip=1.0, steps=9, ds=ds)
    control, _ = _steps("dwa_ones", lr=3e-3, clip=1.0, steps=9, ds=ds)
    forced, _ = _steps(kind, lr=3e-3, clip=1.0, steps=9, ds=ds)
    torch.testing.assert_close(control, equal)  # weights of 1: the same run
    rel = float((forced - equal).norm() / equal.norm())
    assert rel > 5e-3, rel  # measured 2-3 % after 9 steps


def test_dwa_weights_move_and_are_logged_in_a_task_aware_run(tmp_path: Path) -> None:
    fakes = {"train": FakeShardDataset(128, length=64, seed=0), "val": FakeShardDataset(64, length=64, seed=1)}
    base = dict(blocks=1, batch_size=16, epochs=3, batches_per_epoch=6, warmup_steps=2, lr=3e-3, tensorboard=False,
                device="cpu", sampler="task_aware", patience=10)
    T.train(T.TrainConfig(**base, weighting="equal"), tmp_path / "eq", datasets=fakes)  # type: ignore[arg-type]
    T.train(T.TrainConfig(**base, weighting="dwa"), tmp_path / "dwa", datasets=fakes)  # type: ignore[arg-type]
    with open(tmp_path / "dwa" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    weights = np.array([[float(r[f"weight_T{k}"]) for k in range(3)] for r in rows])
    assert np.allclose(weights[0], 1.0)  # DWA needs two epochs of losses first
    assert math.isclose(weights[-1].sum(), 3.0, rel_tol=1e-5)  # T * softmax sums to T
    assert np.abs(weights[-1] - 1.0).max() > 1e-3  # the weights moved
    a = torch.load(tmp_path / "eq" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "dwa" / "last.pt", weights_only=False)["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a)  # and the runs differ once they did
