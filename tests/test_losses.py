"""Masked BCE and the three loss weightings."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ecgkit.losses import DWAWeighting, UncertaintyWeighting, make_weighting, masked_bce


def test_masked_bce_ignores_unknown_labels() -> None:
    logits = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7], [-2.0, 0.0, 0.1]])
    labels = torch.tensor([[1, -1, 0], [0, -1, 1], [-1, -1, 1]], dtype=torch.int8)
    loss, present = masked_bce(logits, labels)
    assert present.tolist() == [True, False, True]
    exp0 = F.binary_cross_entropy_with_logits(logits[:2, 0], torch.tensor([1.0, 0.0]))
    exp2 = F.binary_cross_entropy_with_logits(logits[:, 2], torch.tensor([0.0, 1.0, 1.0]))
    torch.testing.assert_close(loss, torch.stack([exp0, torch.tensor(0.0), exp2]))


def test_equal_weighting_sums_present_tasks() -> None:
    w = make_weighting("equal", 3)
    out = w(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([True, False, True]))
    assert out.item() == pytest.approx(5.0)


def test_dwa_weights_follow_loss_ratios() -> None:
    w = DWAWeighting(2, temperature=2.0)
    for epoch_losses in ([1.0, 1.0], [0.5, 1.0]):
        w.observe(torch.tensor(epoch_losses), torch.tensor([True, True]))
        w.end_epoch()
    # r = (0.5, 1.0): w_k = 2 exp(r_k / 2) / Σ exp(r_j / 2)
    e = [math.exp(0.25), math.exp(0.5)]
    torch.testing.assert_close(w.weights(), torch.tensor([2 * e[0] / sum(e), 2 * e[1] / sum(e)]))
    restored = DWAWeighting(2)
    restored.load_extra_state(w.extra_state())
    torch.testing.assert_close(restored.weights(), w.weights())


def test_uncertainty_weighting_is_kendall_form_and_learnable() -> None:
    w = UncertaintyWeighting(2)
    with torch.no_grad():
        w.log_var.copy_(torch.tensor([math.log(4.0), 0.0]))
    out = w(torch.tensor([2.0, 3.0]), torch.tensor([True, False]))
    assert out.item() == pytest.approx(2.0 / 4.0 + 0.5 * math.log(4.0))
    out.backward()
    assert w.log_var.grad is not None and w.log_var.grad[1].item() == 0.0


def test_unknown_weighting_name_raises() -> None:
    with pytest.raises(ValueError, match="gradnorm"):
        make_weighting("gradnorm", 3)  # type: ignore[arg-type]
