"""The Hannun et al. (2019) 1D ResNet with a shared bottom and one logistic head per task.

Architecture (Hannun et al., Nat Med 2019, and the authors' ``awni/ecg`` code):

- stem: conv (kernel 16, 32 filters) -> BN -> ReLU;
- ``n_blocks`` residual blocks; block i has ``32 * 2**(i // 4)`` filters and subsamples by 2 when
  i is odd (every other block). Each block is pre-activation: [BN -> ReLU ->] conv -> BN -> ReLU ->
  dropout -> conv, where the leading BN-ReLU is skipped in block 0 (the stem already applied it);
  the shortcut is a max-pool of the same stride, zero-padded along channels when they double;
- head: BN -> ReLU -> then either ``head="mean"`` (global average pool over time, Hannun) or
  ``head="flatten"`` (the (C, T') map flattened to C * T' features, Hughes et al. 2021) -> one
  logistic output per task.

"Same" padding as in Keras (kernel 16 is even: 7 samples left, 8 right at stride 1), so a block
maps T samples to ceil(T / stride). 8 blocks (the CO-TASK backbone, 0.63 M parameters) or 16
blocks (Hannun's 34-layer network, 10.5 M parameters).

Hughes et al. (JAMA Cardiol 2021) used Hannun's network at 250 Hz (10 s = 2,500 samples) with 64
filters at the start and the final 256 x 10 map flattened into independent logistic regressions.
The paper is ambiguous about the width schedule: "64 filters" doubled every 4 blocks would end at
512 channels, not the 256 of its final map. ecgkit reads it as the Rajpurkar/Hannun arXiv wording
"64k filters, k = 1, 2, ... incremented every 4th block" (``filter_growth="linear"``: 64, 128, 192,
256), which is the only schedule from 64 that ends at 256. Hughes' model is therefore
``make_model(T, n_blocks=16, base_filters=64, filter_growth="linear", head="flatten",
n_samples=2500)``: 33 convolutions + 1 linear layer = 34 layers, 2,560 flattened features.

The heads are one ``Linear(C, n_tasks)``: row k of its weight and bias is task k's logistic head,
which is exactly T independent heads on the shared features, computed in one matmul.
:meth:`ResNet1d.keep_heads` cuts it to a subset (used by ``ecgkit.trainer.export`` to drop the CO-TASK
auxiliary heads).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResNet1dConfig", "ResNet1d", "make_model"]


@dataclass(frozen=True)
class ResNet1dConfig:
    """Hyper-parameters of :class:`ResNet1d` (saved in every checkpoint to rebuild the model)."""

    n_tasks: int
    # 12 standard leads in the canonical order (ecgkit.record.LEADS)
    n_leads: int = 12
    # 8 = CO-TASK backbone; 16 = Hannun's 34-layer network
    n_blocks: int = 8
    # Hannun: 32 filters at the start, doubled every 4 blocks
    base_filters: int = 32
    increase_every: int = 4
    # Hannun: kernel 16 at every layer
    kernel_size: int = 16
    # Hannun used 0.2 between the two convolutions of a block
    dropout: float = 0.2
    # "double": block i has base_filters * 2**(i // increase_every) filters (Hannun's code);
    # "linear": base_filters * (1 + i // increase_every) (the "64k filters" wording Hughes follows)
    filter_growth: Literal["double", "linear"] = "double"
    # "mean": average the final map over time (Hannun, any input length); "flatten": flatten the
    # (C, T') map into C * T' features (Hughes; needs n_samples, fixed input length)
    head: Literal["mean", "flatten"] = "mean"
    # input length in samples; required by head="flatten" (2,500 = 10 s at 250 Hz for Hughes)
    n_samples: int | None = None


def _same_pad(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras 'same' padding (left, right) so that output length = ceil(length / stride)."""
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


class _SameConv1d(nn.Conv1d):
    """Conv1d with Keras 'same' padding at any stride (kernel 16 needs asymmetric padding).

    Also takes the fast path's (B, C_in, 1, T) channels-last input: the same weights, viewed as
    (C_out, C_in, 1, k), run as a conv2d with a (1, k) kernel, which is the same sum over the same
    products (cuDNN's NHWC kernels handle few channels and a long time axis far better than its
    NCW ones).
    """

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, [1,] T) -> (B, C_out, [1,] ceil(T / stride))
        left, right = _same_pad(x.shape[-1], self.kernel_size[0], self.stride[0])
        x = F.pad(x, (left, right))
        if x.dim() == 4:
            w = self.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            return F.conv2d(x, w, self.bias, (1, self.stride[0]))
        return super().forward(x)


class _BatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that also normalises the fast path's (B, C, 1, T) tensors (same statistics per C)."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2D, 3D or 4D input (got {input.dim()}D input)")


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, dropout: float, first: bool):
        super().__init__()
        self.pre = nn.Identity() if first else nn.Sequential(_BatchNorm(c_in), nn.ReLU(inplace=True))
        self.conv1 = _SameConv1d(c_in, c_out, kernel, stride=stride, bias=False)
        self.bn2 = _BatchNorm(c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = _SameConv1d(c_out, c_out, kernel, bias=False)
        self.stride = stride
        self.pad_channels = c_out - c_in
        if self.pad_channels < 0:
            raise ValueError(f"channels may only grow along the network, got {c_in} -> {c_out}")

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, T) -> (B, C_out, ceil(T / stride))
        shortcut = x
        if self.stride > 1:
            if x.dim() == 4:  # fast path (B, C_in, 1, T)
                shortcut = F.max_pool2d(shortcut, (1, self.stride), ceil_mode=True)
            else:
                shortcut = F.max_pool1d(shortcut, self.stride, ceil_mode=True)  # (B, C_in, T')
        if self.pad_channels:  # zeros for new channels
            pad = (0, 0, 0, 0, 0, self.pad_channels) if x.dim() == 4 else (0, 0, 0, self.pad_channels)
            shortcut = F.pad(shortcut, pad)
        out = self.conv1(self.pre(x))  # (B, C_out, T')
        out = self.conv2(self.drop(F.relu(self.bn2(out))))  # (B, C_out, T')
        return out + shortcut


def _block_filters(cfg: ResNet1dConfig, i: int) -> int:
    step = i // cfg.increase_every
    if cfg.filter_growth == "double":
        return cfg.base_filters * 2 ** step
    return cfg.base_filters * (1 + step)


def _feature_length(cfg: ResNet1dConfig) -> int:
    """Time steps of the final map: every odd block halves the length ('same' padding, ceil)."""
    t = int(cfg.n_samples or 0)
    for i in range(cfg.n_blocks):
        if i % 2 == 1:
            t = math.ceil(t / 2)
    return t


class ResNet1d(nn.Module):
    """Hannun 1D ResNet: (B, leads, T) float -> (B, n_tasks) logits.

    Parameters
    ----------
    config : ResNet1dConfig
    """

    def __init__(self, config: ResNet1dConfig):
        super().__init__()
        if config.n_tasks < 1 or config.n_blocks < 1 or config.base_filters < 1:
            raise ValueError(f"need n_tasks, n_blocks and base_filters >= 1, got {config}")
        if config.filter_growth not in ("double", "linear"):
            raise ValueError(f"filter_growth must be 'double' or 'linear', got {config.filter_growth!r}")
        if config.head not in ("mean", "flatten"):
            raise ValueError(f"head must be 'mean' or 'flatten', got {config.head!r}")
        if config.head == "flatten" and (config.n_samples is None or config.n_samples < 1):
            raise ValueError("head='flatten' needs n_samples (the fixed input length), got "
                             f"{config.n_samples!r}")
        self.config = config
        c = config.base_filters
        self.stem = nn.Sequential(
            _SameConv1d(config.n_leads, c, config.kernel_size, bias=False), _BatchNorm(c), nn.ReLU(inplace=True))
        blocks = []
        for i in range(config.n_blocks):
            c_out = _block_filters(config, i)
            stride = 2 if i % 2 == 1 else 1
            blocks.append(_ResBlock(c, c_out, config.kernel_size, stride, config.dropout, first=(i == 0)))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.post = nn.Sequential(_BatchNorm(c), nn.ReLU(inplace=True))
        self.n_channels = c
        self.feature_length = _feature_length(config) if config.head == "flatten" else 1
        self.n_features = c * self.feature_length
        # one logistic head per task: row k of the weight is task k's head (with head="flatten",
        # an independent logistic regression on the flattened map)
        self.heads = nn.Linear(self.n_features, config.n_tasks)
        # how convolutions run (not part of the config: both paths share every weight, so checkpoints
        # load into either); see set_conv_path
        self.conv_path = "conv1d"

    def set_conv_path(self, path: str) -> "ResNet1d":
        """Choose how the convolutions run: ``"conv1d"`` (eager default, best on CPU) or
        ``"channels_last"`` ((B, C, 1, T) conv2d in channels-last memory; faster on CUDA GPUs).

        Both compute the same function with the same parameters (tests compare outputs and
        gradients); only the kernels differ. Returns the model.
        """
        if path not in ("conv1d", "channels_last"):
            raise ValueError(f"conv path must be 'conv1d' or 'channels_last', got {path!r}")
        self.conv_path = path
        return self

    def features(self, x: Tensor) -> Tensor:
        """Shared bottom: (B, leads, T) -> features (B, n_features): pooled (B, C) or flattened (B, C * T')."""
        if self.config.head == "flatten" and x.shape[-1] != self.config.n_samples:
            raise ValueError(f"this model flattens its final map and takes exactly {self.config.n_samples} "
                             f"samples per lead, got {x.shape[-1]} (crop or resample the input)")
        if self.conv_path == "channels_last":
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, leads, 1, T)
        h = self.stem(x)  # (B, base_filters, [1,] T)
        h = self.blocks(h)  # (B, C, [1,] T / 2**(n_blocks // 2))
        h = self.post(h)  # (B, C, [1,] T')
        if self.config.head == "flatten":
            return h.flatten(1)  # (B, C * T'), channel-major on either path (the 1 axis adds nothing)
        h = h.mean(dim=-1)  # (B, C[, 1])
        return h.flatten(1)  # (B, C)

    def forward(self, x: Tensor) -> Tensor:
        """(B, leads, T) -> logits (B, n_tasks); apply ``torch.sigmoid`` for probabilities."""
        return self.heads(self.features(x))

    def keep_heads(self, tasks: Sequence[int]) -> "ResNet1d":
        """A copy of this model with only the given heads (in that order); the bottom is shared-copied."""
        tasks = list(tasks)
        cfg = ResNet1dConfig(**{**asdict(self.config), "n_tasks": len(tasks)})
        out = ResNet1d(cfg)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("heads.")}
        state["heads.weight"] = self.heads.weight.detach()[tasks].clone()
        state["heads.bias"] = self.heads.bias.detach()[tasks].clone()
        out.load_state_dict(state)
        return out


def make_model(n_tasks: int, **kwargs: Any) -> ResNet1d:
    """Build a :class:`ResNet1d`, e.g. ``make_model(18, n_blocks=16)``."""
    return ResNet1d(ResNet1dConfig(n_tasks=n_tasks, **kwargs))
