"""DAMTL: the masked convolution, the L1 and CMMD terms against hand computations, joint training."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ecgkit.models import make_model
from ecgkit.models.damtl import DAMTLNet, MaskedConv1d, cmmd, damtl_loss, mask_l1
from ecgkit.models.resnet1d import _SameConv1d


def test_masked_conv_equals_a_plain_conv_with_psi_times_w() -> None:
    torch.manual_seed(0)
    base = _SameConv1d(5, 7, 16, stride=2, bias=False).double()
    masked = MaskedConv1d(base, psi_init=(0.0, 2.0), generator=torch.Generator().manual_seed(1))
    masked.psi.data = masked.psi.data.double()
    assert masked.shared is base.weight  # tied, not copied
    plain = _SameConv1d(5, 7, 16, stride=2, bias=False).double()
    with torch.no_grad():
        plain.weight.copy_(masked.psi * base.weight)
    x = torch.randn(3, 5, 101, dtype=torch.float64, requires_grad=True)
    out = masked(x)
    assert out.shape == (3, 7, 51)
    torch.testing.assert_close(out, plain(x), rtol=0, atol=1e-12)
    # the channels-last (B, C, 1, T) path gives the same numbers
    torch.testing.assert_close(masked(x.detach().unsqueeze(2)).squeeze(2), out.detach(), rtol=0, atol=1e-12)
    # d out / d psi = W * d out / d S
    g = torch.randn_like(out)
    (out * g).sum().backward()
    (plain(x) * g).sum().backward()
    torch.testing.assert_close(masked.psi.grad, base.weight.detach() * plain.weight.grad, rtol=0, atol=1e-10)
    assert 0.0 <= float(masked.psi.detach().min()) and float(masked.psi.detach().max()) < 2.0


def test_task_network_with_unit_masks_is_the_auxiliary_network() -> None:
    torch.manual_seed(0)
    aux = make_model(6, n_blocks=3, base_filters=8, dropout=0.0).double().eval()
    net = DAMTLNet(aux, [[0, 2, 4], [1, 2, 5]], psi_init=(1.0, 1.0)).double().eval()
    x = torch.randn(4, 12, 200, dtype=torch.float64)
    aux_f, logits, feats = net(x)
    torch.testing.assert_close(feats[0], aux.features(x))
    torch.testing.assert_close(logits[1], aux(x)[:, [1, 2, 5]])  # heads start from the aux rows
    convs = [m for m in net.tasks[0].modules() if isinstance(m, MaskedConv1d)]
    assert len(convs) == 1 + 2 * 3 and len(net.masks(1)) == 7
    # shared weights are the aux network's (frozen by default); masks, BN and heads are per task
    assert all(m.shared is a.weight for m, a in zip(convs, [c for c in aux.modules() if isinstance(c, _SameConv1d)]))
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("tasks.") for n in trainable)
    assert not any(p.requires_grad for p in aux.parameters())
    assert net.tasks[0].stem[1].weight is not net.tasks[1].stem[1].weight


def test_l1_term_equals_the_hand_sum() -> None:
    masks = [torch.tensor([[0.5, -0.25], [0.0, 2.0]]), torch.tensor([1.5, 0.125])]
    assert float(mask_l1(masks)) == pytest.approx(0.5 + 0.25 + 0.0 + 2.0 + 1.5 + 0.125)


def _k(u: np.ndarray, v: np.ndarray, sigmas) -> float:
    d2 = float(((u - v) ** 2).sum())
    return sum(math.exp(-d2 / (2 * s * s)) for s in sigmas)


def test_cmmd_equals_a_hand_computation() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 3))
    t = rng.normal(size=(6, 3)) + 0.5
    y = np.array([[1, 0], [1, -1], [0, 1], [1, 1], [-1, 0], [0, 0]])
    sigmas = (1.0, 3.0)
    want = 0.0
    for c in range(2):
        idx = np.flatnonzero(y[:, c] == 1)
        m = len(idx)
        kaa = sum(_k(a[i], a[j], sigmas) for i, j in itertools.product(idx, idx)) / m ** 2
        ktt = sum(_k(t[i], t[j], sigmas) for i, j in itertools.product(idx, idx)) / m ** 2
        kat = sum(_k(a[i], t[j], sigmas) for i, j in itertools.product(idx, idx)) / m ** 2
        want += kaa + ktt - 2 * kat
    got = cmmd(torch.tensor(a), torch.tensor(t), torch.tensor(y), sigmas)
    assert float(got) == pytest.approx(want, rel=1e-6)
    assert float(cmmd(torch.tensor(a), torch.tensor(a), torch.tensor(y), sigmas)) == pytest.approx(0.0, abs=1e-7)
    # a class with no positive in the batch adds nothing
    assert float(cmmd(torch.tensor(a), torch.tensor(t), torch.zeros((6, 2), dtype=torch.int64))) == 0.0


def test_damtl_loss_is_eq3_and_joint_training_learns_with_nonnegative_masks() -> None:
    torch.manual_seed(0)
    n, length = 64, 96
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(n, 4, generator=g) < 0.4).to(torch.int8)
    x = torch.randn(n, 12, length, generator=g) * 0.3
    t = torch.arange(length) / 100.0
    for k in range(4):  # label k adds a sinusoid on lead k
        x[y[:, k] == 1, k] += torch.sin(2 * math.pi * (3 + 4 * k) * t)
    y[:32, 3] = -1  # cohort A (records 0-31) does not define label 3; cohort B (32-63) not label 0
    y[32:, 0] = -1
    aux = make_model(4, n_blocks=2, base_filters=8, dropout=0.0)
    net = DAMTLNet(aux, [[0, 1, 2], [1, 2, 3]], seed=0)
    lam1, lam2 = 1e-4, 0.1
    loss, parts = damtl_loss(net, x, y, lambda_l1=lam1, lambda_cmmd=lam2, alphas=[1.0, 0.5])
    want = sum(a * (ce + lam1 * l1 + lam2 * d) for a, ce, l1, d in
               zip([1.0, 0.5], parts["ce"], parts["l1"], parts["cmmd"]))
    assert float(loss.detach()) == pytest.approx(want, rel=1e-5)
    assert parts["l1"][0] == pytest.approx(float(sum(m.detach().sum() for m in net.masks(0))), rel=1e-6)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    first = None
    for _ in range(8):
        loss, parts = damtl_loss(net, x, y, lambda_l1=1e-3, lambda_cmmd=0.1)
        first = first if first is not None else sum(parts["ce"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.project_masks_()
    assert sum(parts["ce"]) < first
    assert all(float(m.detach().min()) >= 0.0 for j in range(2) for m in net.masks(j))
    sparsity = net.mask_sparsity(tol=1e-3)
    assert len(sparsity) == 2 and len(sparsity[0]) == 5 and all(0.0 <= s <= 1.0 for s in sparsity[0])
    with pytest.raises(ValueError, match="outside"):
        DAMTLNet(aux, [[0, 7]])
