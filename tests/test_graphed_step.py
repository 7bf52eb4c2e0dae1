"""The graph-ready pieces of ecgkit.trainer.graphed on the CPU (the capture itself needs CUDA)."""
from __future__ import annotations

import torch

from ecgkit.losses import make_weighting
from ecgkit.models import make_model
from ecgkit.trainer import TrainConfig, train_step
from ecgkit.trainer.graphed import graph_loss, portable_optimizer_state
from ecgkit.trainer.step import _optimizer


def test_graph_loss_matches_train_step_loss_and_gradients():
    torch.manual_seed(0)
    model = make_model(5, n_blocks=2, dropout=0.0).double()
    x = torch.randn(6, 12, 200, dtype=torch.float64)
    y = torch.randint(-1, 2, (6, 5), dtype=torch.int8)
    for name in ("equal", "dwa", "uncertainty"):
        w = make_weighting(name, 5).double()
        for task in (0, 3):
            model.zero_grad()
            logits = model(x)
            loss, tl, present = graph_loss(logits, y, torch.tensor(task), w,
                                           w.weights() if name != "uncertainty" else None)
            loss.backward()
            g_graph = [p.grad.clone() for p in model.parameters()]
            model.zero_grad()
            logits = model(x)
            head = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, task].float(), y[:, task].float())
            ref_present = torch.arange(5) == task
            ref = w(head * ref_present, ref_present)
            ref.backward()
            assert torch.equal(present, ref_present)
            assert torch.allclose(loss, ref, atol=1e-12)
            assert all(torch.allclose(a, p.grad, atol=1e-12) for a, p in zip(g_graph, model.parameters()))


def test_portable_optimizer_state_loads_into_an_eager_optimizer():
    model = make_model(3, n_blocks=2)
    w = make_weighting("equal", 3)
    opt, sched = _optimizer(TrainConfig(), model, w, 10)
    x, y = torch.randn(4, 12, 100), torch.randint(0, 2, (4, 3), dtype=torch.int8)
    train_step(model, w, opt, sched, x, y, 1, amp=False, grad_clip=1.0)
    for g in opt.param_groups:  # what GraphedStep leaves on the optimizer
        g["capturable"] = True
    sd = portable_optimizer_state(opt)
    assert all(not g["capturable"] for g in sd["param_groups"])
    assert all(s["step"].device.type == "cpu" for s in sd["state"].values())
    other, _ = _optimizer(TrainConfig(), make_model(3, n_blocks=2), w, 10)
    other.load_state_dict(sd)
    assert all(g["capturable"] for g in opt.param_groups)  # the live optimizer is untouched
    assert float(next(iter(other.state.values()))["step"]) == 1.0
