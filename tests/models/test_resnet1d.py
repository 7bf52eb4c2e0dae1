"""The Hannun 1D ResNet: shapes, parameter counts, padding, head surgery."""
from __future__ import annotations

import math

import pytest
import torch

from ecgkit.models import ResNet1d, ResNet1dConfig, make_model


def _expected_params(n_blocks: int, n_tasks: int, leads: int = 12, k: int = 16) -> int:
    """Parameter count from the architecture's definition (convs have no bias; BN has 2 per channel)."""
    total = leads * 32 * k + 2 * 32  # stem conv + BN
    c = 32
    for i in range(n_blocks):
        c_out = 32 * 2 ** (i // 4)
        total += (0 if i == 0 else 2 * c) + c * c_out * k + 2 * c_out + c_out * c_out * k
        c = c_out
    return total + 2 * c + c * n_tasks + n_tasks  # post BN + heads


@pytest.mark.parametrize("n_blocks, golden", [(8, 631_506), (16, 10_471_506)])
def test_parameter_count_matches_the_definition(n_blocks: int, golden: int) -> None:
    # golden: the 0.63 M / 10.5 M of MEASUREMENTS.md, exact value from _expected_params
    model = make_model(18, n_blocks=n_blocks)
    assert sum(p.numel() for p in model.parameters()) == _expected_params(n_blocks, 18) == golden


@pytest.mark.parametrize("length", [5000, 2500, 1001])
def test_shapes_and_subsampling(length: int) -> None:
    model = make_model(5, n_blocks=8).eval()
    x = torch.randn(3, 12, length)
    h = model.blocks(model.stem(x))
    # every other block subsamples by 2 with 'same' padding: ceil four times
    expected_t = length
    for _ in range(4):
        expected_t = math.ceil(expected_t / 2)
    assert h.shape == (3, 64, expected_t)
    logits = model(x)
    assert logits.shape == (3, 5) and logits.dtype == torch.float32


def test_filters_double_every_four_blocks_with_zero_padded_shortcut() -> None:
    model = make_model(2, n_blocks=16, dropout=0.0)
    widths = [b.conv2.out_channels for b in model.blocks]
    assert widths == [32] * 4 + [64] * 4 + [128] * 4 + [256] * 4
    strides = [b.conv1.stride[0] for b in model.blocks]
    assert strides == [1, 2] * 8
    block = model.blocks[4].eval()  # 32 -> 64 channels, stride 1
    with torch.no_grad():
        block.conv2.weight.zero_()  # residual branch = 0: output is the shortcut alone
        x = torch.randn(2, 32, 50)
        y = block(x)
    assert torch.equal(y[:, :32], x) and torch.count_nonzero(y[:, 32:]) == 0


def test_max_pooled_shortcut() -> None:
    model = make_model(2, n_blocks=8)
    block = model.blocks[1].eval()  # stride 2
    with torch.no_grad():
        block.conv2.weight.zero_()
        x = torch.arange(2 * 32 * 7, dtype=torch.float32).reshape(2, 32, 7)
        y = block(x)
    assert y.shape == (2, 32, 4)
    assert torch.equal(y[..., :3], x[..., 1:7:2]) and torch.equal(y[..., 3], x[..., 6])


def test_keep_heads_drops_auxiliary_heads_exactly() -> None:
    torch.manual_seed(0)
    model = make_model(7, n_blocks=8).eval()
    x = torch.randn(4, 12, 800)
    small = model.keep_heads(range(3)).eval()
    assert small.config.n_tasks == 3 and small.heads.out_features == 3
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x)[:, :3], rtol=0, atol=1e-6)


def test_invalid_config_raises() -> None:
    with pytest.raises(ValueError, match="n_tasks"):
        ResNet1d(ResNet1dConfig(n_tasks=0))


def test_blocks_are_pre_activation_bn_relu_dropout_conv() -> None:
    """Block i > 0 computes conv2(dropout(relu(bn2(conv1(relu(bn1(x))))))) + maxpool(x) (Hannun/awni)."""
    torch.manual_seed(1)
    model = make_model(2, n_blocks=8, dropout=0.5)
    block = model.blocks[3]  # stride 2, 32 -> 32 channels
    bn1, bn2 = block.pre[0], block.bn2
    for bn in (bn1, bn2):  # non-trivial statistics so that the order of BN and ReLU matters
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(2, 32, 40)

    def manual(x: torch.Tensor, train: bool) -> torch.Tensor:
        def bn(m: torch.nn.BatchNorm1d, h: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.batch_norm(h, m.running_mean, m.running_var, m.weight, m.bias,
                                                  False, 0.0, m.eps)
        h = torch.relu(bn(bn1, x))
        h = block.conv1(h)
        h = torch.nn.functional.dropout(torch.relu(bn(bn2, h)), 0.5, training=train)
        return block.conv2(h) + torch.nn.functional.max_pool1d(x, 2, ceil_mode=True)

    block.eval()
    with torch.no_grad():
        torch.testing.assert_close(block(x), manual(x, False), rtol=0, atol=1e-5)
        # dropout sits between the two convolutions: same mask stream, same output in training mode
        # (BN in eval so only dropout is stochastic)
        block.drop.train()
        torch.manual_seed(7)
        got = block(x)
        torch.manual_seed(7)
        torch.testing.assert_close(got, manual(x, True), rtol=0, atol=1e-5)
    assert block.conv1.kernel_size == (16,) and block.conv2.kernel_size == (16,)
    assert model.blocks[0].pre.__class__.__name__ == "Identity"  # the stem already applied BN-ReLU


@pytest.mark.parametrize("n_blocks, length", [(8, 600), (16, 300), (3, 777)])
def test_channels_last_path_computes_the_same_function_and_gradients(n_blocks: int, length: int) -> None:
    """The fast (B, C, 1, T) conv2d path equals the Conv1d path in outputs and in every gradient
    (float64, dropout off so both draw nothing), in train mode (batch statistics) and eval mode
    (running statistics), and one state dict serves both."""
    torch.manual_seed(0)
    model = make_model(4, n_blocks=n_blocks, dropout=0.0).double()
    x = torch.randn(3, 12, length, dtype=torch.float64)
    for mode in ("train", "eval"):
        outs, grads = [], []
        for path in ("conv1d", "channels_last"):
            model.train(mode == "train").set_conv_path(path).zero_grad()
            out = model(x)
            (out * torch.arange(1, 5)).sum().backward()
            outs.append(out.detach())
            grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        assert torch.allclose(outs[0], outs[1], atol=1e-12), mode
        for name in grads[0]:
            assert torch.allclose(grads[0][name], grads[1][name], atol=1e-10), (mode, name)
    other = make_model(4, n_blocks=n_blocks, dropout=0.0).double().set_conv_path("channels_last").eval()
    other.load_state_dict(model.state_dict())
    assert torch.allclose(other(x), model.set_conv_path("conv1d").eval()(x), atol=1e-12)
    with pytest.raises(ValueError, match="conv path"):
        model.set_conv_path("nhwc")


# --- Hughes et al. (2021): 64 filters, linear width schedule, flattened 256 x 10 map ---------------

def _hughes(n_tasks: int = 38) -> ResNet1d:
    return make_model(n_tasks, n_blocks=16, base_filters=64, filter_growth="linear", head="flatten",
                      n_samples=2500)


def test_hughes_configuration_has_34_layers_and_a_2560_feature_flatten_head() -> None:
    model = _hughes()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) + len(linears) == 34  # stem + 16 blocks x 2 convolutions + the logistic layer
    assert [b.conv2.out_channels for b in model.blocks] == [64] * 4 + [128] * 4 + [192] * 4 + [256] * 4
    assert model.feature_length == 10  # 2,500 samples halved 8 times with 'same' padding: ceil -> 10
    assert model.n_features == 2560 and model.heads.in_features == 2560 and model.heads.out_features == 38
    model.eval()
    x = torch.randn(2, 12, 2500)
    with torch.no_grad():
        feats = model.features(x)
        h = model.post(model.blocks(model.stem(x)))  # (B, 256, 10)
        logits = model(x)
    assert h.shape == (2, 256, 10)
    torch.testing.assert_close(feats, h.reshape(2, -1))  # channel-major flatten, no pooling
    # each head is an independent logistic regression on the 2,560 features
    torch.testing.assert_close(logits[:, 5], feats @ model.heads.weight[5] + model.heads.bias[5])


def test_flatten_head_rejects_another_length_and_needs_n_samples() -> None:
    model = make_model(3, n_blocks=4, base_filters=8, head="flatten", n_samples=500).eval()
    with pytest.raises(ValueError, match="exactly 500 samples"):
        model(torch.randn(1, 12, 1000))
    with pytest.raises(ValueError, match="n_samples"):
        make_model(3, head="flatten")
    with pytest.raises(ValueError, match="filter_growth"):
        make_model(3, filter_growth="triple")  # type: ignore[arg-type]
    # doubling from 64 (the other reading of the paper) would end at 512 x 10 = 5,120 features
    wide = make_model(2, n_blocks=16, base_filters=64, head="flatten", n_samples=2500)
    assert wide.n_features == 5120


def test_keep_heads_keeps_the_flatten_head() -> None:
    model = make_model(4, n_blocks=4, base_filters=8, head="flatten", n_samples=300).eval()
    cut = model.keep_heads([2, 0]).eval()
    x = torch.randn(3, 12, 300)
    with torch.no_grad():
        torch.testing.assert_close(cut(x), model(x)[:, [2, 0]])


def test_flatten_head_on_the_channels_last_path() -> None:
    torch.manual_seed(0)
    model = make_model(3, n_blocks=4, base_filters=8, head="flatten", n_samples=300, dropout=0.0).double().eval()
    x = torch.randn(2, 12, 300, dtype=torch.float64)
    a = model.set_conv_path("conv1d")(x)
    b = model.set_conv_path("channels_last")(x)
    assert torch.allclose(a, b, atol=1e-12)
