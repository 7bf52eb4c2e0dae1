"""Losses for multi-task ECG training: masked BCE and task-loss weighting.

- :func:`masked_bce`: binary cross-entropy per task over the known labels only (-1 = unknown).
- Task weighting, one class per method behind :func:`make_weighting`:
  ``equal`` (sum of the present tasks' losses), ``dwa`` (dynamic weight average, Liu et al.
  CVPR 2019) and ``uncertainty`` (homoscedastic uncertainty, Kendall et al. CVPR 2018).

A weighting combines a vector of per-task losses (T,) and a mask of the tasks present in the batch
(T,) into one scalar. In task-aware training only the batch's task is present, so its loss is
scaled by that task's weight; in joint training all tasks with known labels are present.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["masked_bce", "LossWeighting", "EqualWeighting", "DWAWeighting", "UncertaintyWeighting",
           "make_weighting", "WEIGHTINGS"]

WEIGHTINGS = ("equal", "dwa", "uncertainty")


def masked_bce(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-task binary cross-entropy over known labels.

    Parameters
    ----------
    logits : float tensor (B, T)
    labels : integer or float tensor (B, T)
        1 / 0, and -1 (or any negative value) for unknown, which is ignored.

    Returns
    -------
    loss : float32 tensor (T,)
        Mean BCE per task over its known entries (0 for a task with none).
    present : bool tensor (T,)
        Whether each task had at least one known label in the batch.
    """
    known = labels >= 0  # (B, T)
    target = labels.clamp(min=0).to(torch.float32)
    raw = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")  # (B, T)
    count = known.sum(dim=0)  # (T,)
    loss = (raw * known).sum(dim=0) / count.clamp(min=1)
    return loss, count > 0


class LossWeighting(nn.Module):
    """Base class: ``forward(task_losses (T,), present (T,)) -> scalar``; epoch hooks for DWA."""

    def __init__(self, n_tasks: int):
        super().__init__()
        self.n_tasks = n_tasks

    def weights(self) -> Tensor:
        """Current per-task weights (T,), for logging."""
        return torch.ones(self.n_tasks)

    def observe(self, task_losses: Tensor, present: Tensor) -> None:
        """Record a batch's detached per-task losses (DWA averages them per epoch)."""

    def end_epoch(self) -> None:
        """Called once at the end of every training epoch."""

    def extra_state(self) -> dict[str, Any]:
        """Non-parameter state to checkpoint (for exact resume)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""

    def forward(self, task_losses: Tensor, present: Tensor) -> Tensor:
        w = self._weights_on(task_losses.device)
        return (w * task_losses * present).sum()

    def _weights_on(self, device: torch.device) -> Tensor:
        """``weights()`` on ``device``, copied there only when they changed (a host-to-GPU copy waits
        for the GPU, which would stall every step; DWA's weights change once an epoch)."""
        w = self.weights()
        if w.device == device:
            return w
        cached = self.__dict__.get("_w_on_device")
        if cached is None or cached[1].device != device or not torch.equal(cached[0], w):
            cached = (w.detach().clone(), w.detach().to(device))
            self.__dict__["_w_on_device"] = cached
        return cached[1]


class EqualWeighting(LossWeighting):
    """Every present task counts with weight 1."""


class DWAWeighting(LossWeighting):
    """Dynamic weight average (Liu et al. 2019): w_k = T softmax_k(r_k / τ), r_k = L_k(e-1) / L_k(e-2).

    L_k(e) is task k's mean training loss over epoch e (mean over the batches where task k was
    present). The first two epochs use weight 1; a task with no loss recorded in either of the last
    two epochs gets r_k = 1.

    Parameters
    ----------
    n_tasks : int
    temperature : float
        τ; Liu et al. used 2.
    """

    def __init__(self, n_tasks: int, temperature: float = 2.0):
        super().__init__(n_tasks)
        self.temperature = temperature
        self._sum = torch.zeros(n_tasks, dtype=torch.float64)
        self._count = torch.zeros(n_tasks, dtype=torch.float64)
        self._history: list[list[float]] = []  # mean loss per task of past epochs (NaN: not seen)
        self._w = torch.ones(n_tasks)

    def weights(self) -> Tensor:
        return self._w

    def observe(self, task_losses: Tensor, present: Tensor) -> None:
        p = present.detach().cpu().to(torch.float64)
        self._sum += task_losses.detach().cpu().to(torch.float64) * p
        self._count += p

    def end_epoch(self) -> None:
        mean = torch.where(self._count > 0, self._sum / self._count.clamp(min=1), torch.full_like(self._sum, math.nan))
        self._history.append(mean.tolist())
        self._sum.zero_()
        self._count.zero_()
        if len(self._history) >= 2:
            prev, prev2 = torch.tensor(self._history[-1]), torch.tensor(self._history[-2])
            r = prev / prev2
            r = torch.where(torch.isfinite(r), r, torch.ones_like(r))
            self._w = (self.n_tasks * torch.softmax(r / self.temperature, dim=0)).float()

    def extra_state(self) -> dict[str, Any]:
        return {"sum": self._sum.tolist(), "count": self._count.tolist(), "history": self._history,
                "w": self._w.tolist()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._sum = torch.tensor(state["sum"], dtype=torch.float64)
        self._count = torch.tensor(state["count"], dtype=torch.float64)
        self._history = [list(h) for h in state["history"]]
        self._w = torch.tensor(state["w"], dtype=torch.float32)


class UncertaintyWeighting(LossWeighting):
    """Homoscedastic uncertainty weighting (Kendall et al. 2018) for classification heads.

    ``L = Σ_k present_k (exp(-s_k) L_k + s_k / 2)`` with learnable s_k = log σ_k² (initialised 0),
    Kendall's classification form (1/σ² L + log σ). The s_k are trained with the model (they must
    be in the optimiser, without weight decay).
    """

    def __init__(self, n_tasks: int):
        super().__init__(n_tasks)
        self.log_var = nn.Parameter(torch.zeros(n_tasks))

    def weights(self) -> Tensor:
        return torch.exp(-self.log_var.detach())

    def forward(self, task_losses: Tensor, present: Tensor) -> Tensor:
        s = self.log_var.to(task_losses.device)
        return ((torch.exp(-s) * task_losses + 0.5 * s) * present).sum()


def make_weighting(name: Literal["equal", "dwa", "uncertainty"], n_tasks: int, **kwargs: Any) -> LossWeighting:
    """Build a task weighting by name (``equal``, ``dwa``, ``uncertainty``)."""
    if name == "equal":
        return EqualWeighting(n_tasks)
    if name == "dwa":
        return DWAWeighting(n_tasks, **kwargs)
    if name == "uncertainty":
        return UncertaintyWeighting(n_tasks)
    raise ValueError(f"unknown loss weighting {name!r}; choose one of {WEIGHTINGS}")
