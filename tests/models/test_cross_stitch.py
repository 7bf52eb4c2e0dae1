"""Cross-stitch units: identity equals independent columns; mixing is the stated linear combination."""
from __future__ import annotations

import pytest
import torch

from ecgkit.models.cross_stitch import CrossStitchConfig, CrossStitchNet, CrossStitchUnit
from ecgkit.models.resnet1d import ResNet1d, ResNet1dConfig

BASE = dict(n_tasks=1, n_blocks=4, base_filters=8, dropout=0.0)


def test_cross_stitch_at_identity_equals_independent_columns() -> None:
    torch.manual_seed(0)
    cfg = CrossStitchConfig(base=BASE, columns=((0, 2), (1,), (3,)), stitch_after=(0, 1, 3), init_self=1.0)
    net = CrossStitchNet(cfg).double().eval()
    x = torch.randn(3, 12, 160, dtype=torch.float64)
    out = net(x)
    assert out.shape == (3, 4)
    # each column alone, as a plain ResNet with the same weights, gives its tasks' logits
    for col, tasks in zip(net.columns, cfg.columns):
        alone = ResNet1d(ResNet1dConfig(**{**BASE, "n_tasks": len(tasks)})).double().eval()
        alone.load_state_dict(col.state_dict())
        torch.testing.assert_close(out[:, list(tasks)], alone(x), rtol=0, atol=1e-12)
    # mixing couples the columns: changing column 1's weights now moves column 0's output
    with torch.no_grad():
        net.units["0"].alpha.copy_(torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]))
        before = net(x)[:, 0].clone()
        net.columns[1].stem[0].weight.mul_(2.0)
        assert not torch.allclose(net(x)[:, 0], before)


def test_unit_is_the_stated_linear_combination_and_starts_near_identity() -> None:
    unit = CrossStitchUnit(3, channels=2, init_self=0.9)
    assert torch.allclose(unit.alpha.sum(dim=1), torch.ones(3)) and float(unit.alpha.detach()[0, 0]) == pytest.approx(0.9)
    h = [torch.randn(2, 2, 5) for _ in range(3)]
    with torch.no_grad():
        unit.alpha.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [0.5, 0.5, 0.5]]))
    out = unit(h)
    torch.testing.assert_close(out[0], h[0] + 2 * h[1])
    torch.testing.assert_close(out[1], h[1] - h[2])
    torch.testing.assert_close(out[2], 0.5 * (h[0] + h[1] + h[2]))
    pc = CrossStitchUnit(2, channels=2, per_channel=True, init_self=1.0)
    with torch.no_grad():
        pc.alpha[:, :, 1] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # channel 1 swaps the columns
    a, b = torch.randn(4, 2, 7), torch.randn(4, 2, 7)
    oa, ob = pc([a, b])
    torch.testing.assert_close(oa[:, 0], a[:, 0])
    torch.testing.assert_close(oa[:, 1], b[:, 1])
    torch.testing.assert_close(ob[:, 1], a[:, 1])


def test_config_errors_and_parameter_count() -> None:
    with pytest.raises(ValueError, match="cover"):
        CrossStitchNet(CrossStitchConfig(base=BASE, columns=((0,), (2,))))
    with pytest.raises(ValueError, match="cover"):
        CrossStitchNet(CrossStitchConfig(base=BASE, columns=((0, 0), (1,))))
    with pytest.raises(ValueError, match="stitch_after"):
        CrossStitchNet(CrossStitchConfig(base=BASE, columns=((0,), (1,)), stitch_after=(4,)))
    net = CrossStitchNet(CrossStitchConfig(base=BASE, columns=((0,), (1,)), stitch_after=(1, 3)))
    one = ResNet1d(ResNet1dConfig(**BASE))
    n_one = sum(p.numel() for p in one.parameters())
    assert sum(p.numel() for p in net.parameters()) == 2 * n_one + 2 * 4  # two columns + two 2x2 units


def test_overlapping_columns_average_a_shared_task() -> None:
    """One column per cohort: task 1 is in both cohorts' label sets, its logit the mean of both columns'."""
    torch.manual_seed(0)
    net = CrossStitchNet(CrossStitchConfig(base=BASE, columns=((0, 1), (1, 2)), stitch_after=(1,))).eval()
    x = torch.randn(3, BASE.get("n_leads", 12), 256)
    with torch.no_grad():
        out = net(x)
        h = [c.stem(x) for c in net.columns]
        for b in range(len(net.columns[0].blocks)):
            h = [c.blocks[b](hc) for c, hc in zip(net.columns, h)]
            if str(b) in net.units:
                h = net.units[str(b)](h)
        col = [c.heads(c.post(hc).mean(dim=-1)) for c, hc in zip(net.columns, h)]
    assert out.shape == (3, 3)
    torch.testing.assert_close(out[:, 0], col[0][:, 0])
    torch.testing.assert_close(out[:, 1], (col[0][:, 1] + col[1][:, 0]) / 2)
    torch.testing.assert_close(out[:, 2], col[1][:, 1])
    kept = net.keep_heads([2, 1]).eval()
    with torch.no_grad():
        torch.testing.assert_close(kept(x), out[:, [2, 1]])
