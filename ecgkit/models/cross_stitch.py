"""Soft parameter sharing with cross-stitch units (Misra et al., CVPR 2016; the MTL survey of Singh et al.).

One Hannun ResNet column per task group (per task, or per cohort), each with its own weights. After
chosen residual blocks a cross-stitch unit mixes the columns' activations with a learned matrix::

    h_i' = sum_j alpha[i, j] * h_j        (i, j = columns; per channel with ``per_channel=True``)

``alpha`` starts near the identity (``init_self`` on the diagonal, the rest of each row spread
evenly, rows summing to 1), so training starts close to independent columns and learns how much to
share. Hard sharing (one trunk, ``ecgkit.models.resnet1d``) is the other end: every column equal.

Shapes: the input is (B, leads, T); each column's trunk maps it to (B, C, T') like
:class:`ResNet1d`; the output is (B, n_tasks) logits in task order, each task's logit from its column
(the mean over its columns where columns overlap, e.g. one column per cohort whose label sets share
findings).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence, cast

import torch
from torch import Tensor, nn

from ecgkit.models.resnet1d import ResNet1d, ResNet1dConfig

__all__ = ["CrossStitchUnit", "CrossStitchConfig", "CrossStitchNet"]


class CrossStitchUnit(nn.Module):
    """Learned linear combination of K columns' activations (B, C, ...) -> K tensors of the same shape.

    Parameters
    ----------
    n_columns : int
    channels : int
        Channels of the mixed activations (used with ``per_channel``).
    init_self : float
        Initial weight of a column on itself (1.0 = exactly independent columns).
    per_channel : bool
        One K x K matrix per channel instead of one for all channels.
    """

    def __init__(self, n_columns: int, channels: int, init_self: float = 0.9, per_channel: bool = False):
        super().__init__()
        if n_columns < 1 or not 0.0 <= init_self <= 1.0:
            raise ValueError(f"need n_columns >= 1 and 0 <= init_self <= 1, got {n_columns}, {init_self}")
        off = (1.0 - init_self) / (n_columns - 1) if n_columns > 1 else 0.0
        a = torch.full((n_columns, n_columns), off)
        a.fill_diagonal_(init_self if n_columns > 1 else 1.0)
        if per_channel:
            a = a.unsqueeze(-1).repeat(1, 1, channels)  # (K, K, C)
        self.alpha = nn.Parameter(a)
        self.per_channel = per_channel

    def forward(self, columns: Sequence[Tensor]) -> list[Tensor]:
        h = torch.stack(list(columns), dim=0)  # (K, B, C, ...)
        if self.per_channel:
            extra = h.dim() - 3  # trailing axes after C
            a = self.alpha.reshape(*self.alpha.shape, *([1] * extra))  # (K, K, C, 1...)
            mixed = torch.einsum("ijc...,jbc...->ibc...", a, h)
        else:
            mixed = torch.einsum("ij,jb...->ib...", self.alpha, h)
        return list(mixed.unbind(0))


@dataclass(frozen=True)
class CrossStitchConfig:
    """Hyper-parameters of :class:`CrossStitchNet` (saved in checkpoints to rebuild it)."""

    # each column's ResNet (n_tasks is ignored: a column's heads are its tasks)
    base: dict[str, Any]
    # task indices per column, covering range(n_tasks): e.g. [[0], [1], [2]] = one column per task; columns
    # may overlap (one per cohort, whose label sets share findings): a task's logit is the mean of its columns'
    columns: tuple[tuple[int, ...], ...]
    # residual blocks (0-based) after which a cross-stitch unit mixes the columns
    stitch_after: tuple[int, ...] = field(default_factory=tuple)
    init_self: float = 0.9
    per_channel: bool = False
    kind: str = "cross_stitch"


class CrossStitchNet(nn.Module):
    """K Hannun ResNet columns with cross-stitch units after chosen blocks: (B, leads, T) -> (B, n_tasks)."""

    def __init__(self, config: CrossStitchConfig):
        super().__init__()
        flat = sorted({t for col in config.columns for t in col})
        if not config.columns or flat != list(range(len(flat))) or any(
                not col or len(set(col)) != len(col) for col in config.columns):
            raise ValueError(f"columns must cover the tasks 0..n-1, each without repeats, got {config.columns}")
        base = ResNet1dConfig(**{**config.base, "n_tasks": 1})
        bad = [b for b in config.stitch_after if not 0 <= b < base.n_blocks]
        if bad:
            raise ValueError(f"stitch_after blocks {bad} outside 0..{base.n_blocks - 1}")
        self.config = config
        self.n_tasks = len(flat)
        self.columns = nn.ModuleList(
            ResNet1d(ResNet1dConfig(**{**asdict(base), "n_tasks": len(col)})) for col in config.columns)
        first = cast(ResNet1d, self.columns[0])
        self.units = nn.ModuleDict({
            str(b): CrossStitchUnit(len(config.columns), cast(Any, first.blocks[b]).conv2.out_channels,
                                    config.init_self, config.per_channel) for b in config.stitch_after})
        order = torch.tensor([t for col in config.columns for t in col])  # column-major head order -> task
        self.register_buffer("_order", order, persistent=False)
        self.register_buffer("_owners", torch.bincount(order, minlength=self.n_tasks).float(), persistent=False)

    def set_conv_path(self, path: str) -> "CrossStitchNet":
        """Run every column's convolutions on ``path`` (see :meth:`ResNet1d.set_conv_path`)."""
        for c in self.columns:
            cast(ResNet1d, c).set_conv_path(path)
        return self

    def keep_heads(self, tasks: Sequence[int]) -> "CrossStitchNet":
        """A copy with only the given task heads (renumbered in that order); trunks and units unchanged.

        Every column must keep at least one head: dropping a whole column would change what the
        cross-stitch units feed the others.
        """
        tasks = [int(t) for t in tasks]
        new_index = {t: i for i, t in enumerate(tasks)}
        cols = [tuple(new_index[t] for t in col if t in new_index) for col in self.config.columns]
        if any(not c for c in cols) or len(new_index) != len(tasks):
            raise ValueError(f"keep_heads({tasks}) would leave a column without heads: {self.config.columns}")
        cfg = CrossStitchConfig(**{**asdict(self.config), "columns": tuple(cols)})
        out = CrossStitchNet(cfg)
        state = self.state_dict()
        for k, col in enumerate(self.config.columns):
            rows = [i for i, t in enumerate(col) if t in new_index]
            for part in ("weight", "bias"):
                state[f"columns.{k}.heads.{part}"] = state[f"columns.{k}.heads.{part}"][rows].clone()
        out.load_state_dict(state)
        return out

    def forward(self, x: Tensor) -> Tensor:
        cols = [cast(ResNet1d, c) for c in self.columns]
        h = [c.stem(x) for c in cols]  # K x (B, base_filters, T)
        for b in range(len(cols[0].blocks)):
            h = [c.blocks[b](hc) for c, hc in zip(cols, h)]  # K x (B, C, T_b)
            if str(b) in self.units:
                h = self.units[str(b)](h)
        logits = []
        for c, hc in zip(cols, h):
            f = c.post(hc)  # (B, C, T')
            f = f.flatten(1) if c.config.head == "flatten" else f.mean(dim=-1)
            logits.append(c.heads(f))  # (B, n_tasks of the column)
        heads = torch.cat(logits, dim=1)  # (B, sum of column sizes), column-major
        out = heads.new_zeros(heads.shape[0], self.n_tasks).index_add_(1, cast(Tensor, self._order), heads)
        return out / cast(Tensor, self._owners).to(out.dtype)  # (B, n_tasks): mean over the task's columns
