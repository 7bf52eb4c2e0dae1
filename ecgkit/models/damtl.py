"""DAMTL (Feng & Chen, "Learning Multi-Tasks with Inconsistent Labels by using Auxiliary Big Task").

Tasks whose label sets only partly overlap (one per cohort: ECG-P18 from a MUSE archive, SCP codes
from PTB-XL, ...) share an *auxiliary big task*: a network trained on the union of all labels, each
record with the labels its source defines. Each task ``j`` then gets a network of the same
architecture whose convolution weights are ``S^l = Psi^l * W_aux^l`` (element-wise), with a
non-negative soft mask ``Psi^l`` per layer (randomly initialised; ``W_aux`` the auxiliary network's
weights, shared by every task), its own batch-norm affine parameters ("biases") and its own logistic
head. Per task the loss is (the paper's Eq. 3)::

    L_j = CE_j + lambda_1 * sum_l ||Psi_j^l||_1 + lambda_2 * sum_h D(T_aux, T_j)

where ``D`` is the conditional maximum mean discrepancy between the auxiliary network's and task
``j``'s FC-layer inputs (the pooled or flattened features), computed per class: for each label of
task ``j``, between the two networks' features of the records positive for it. The total loss is
``sum_j alpha_j L_j``, trained jointly, end to end (Algorithm 1: pre-train the auxiliary network,
build the masked task networks, train them together).

Readings ecgkit takes where the paper leaves room (stated so they can be changed):

- ``W_aux`` stays fixed by default (``train_shared=False``): the task networks prune the learnt
  auxiliary network, the paper's "adaptively prune the hidden layer neurons of the auxiliary
  network"; ``train_shared=True`` fine-tunes the shared weights through every task's loss.
- The auxiliary network's features are the CMMD's target and are detached (the auxiliary network
  is not pulled toward the task networks).
- ``D`` uses a sum of Gaussian kernels (bandwidths ``sigmas``) and the biased MMD^2 estimate; a
  class with no positive record in the batch contributes 0.
- Non-negativity of ``Psi`` is kept by projection (:meth:`DAMTLNet.project_masks_`, after each
  optimiser step), so the L1 term is ``sum(Psi)``.
- CE is the binary cross-entropy of each of task ``j``'s labels on the records whose source defines
  it (-1 elsewhere), the multi-label form of the paper's cross-entropy.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Sequence, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgkit.losses import masked_bce
from ecgkit.models.resnet1d import ResNet1d, ResNet1dConfig, _same_pad, _SameConv1d

__all__ = ["MaskedConv1d", "DAMTLNet", "DAMTLConfig", "DAMTLPredictor", "cmmd", "mask_l1", "damtl_loss"]


class MaskedConv1d(nn.Module):
    """A 'same'-padded Conv1d whose weight is ``psi * shared`` (``shared`` tied to another conv).

    Parameters
    ----------
    base : _SameConv1d
        The auxiliary network's convolution: its weight Parameter is shared (not copied).
    psi_init : (low, high)
        The mask starts uniform in [low, high) (the paper: randomly initialised, non-negative).
    generator : torch.Generator, optional
        Random stream of the mask initialisation.
    """

    def __init__(self, base: _SameConv1d, psi_init: tuple[float, float] = (0.5, 1.0),
                 generator: torch.Generator | None = None):
        super().__init__()
        if not 0.0 <= psi_init[0] <= psi_init[1]:
            raise ValueError(f"psi_init must be 0 <= low <= high, got {psi_init}")
        self.shared = base.weight  # (C_out, C_in, k), the same Parameter object as the base conv's
        low, high = psi_init
        psi = torch.rand(base.weight.shape, generator=generator, dtype=base.weight.dtype) * (high - low) + low
        self.psi = nn.Parameter(psi.to(base.weight.device))
        self.stride = base.stride[0]
        self.kernel = base.kernel_size[0]

    def masked_weight(self) -> Tensor:
        """``S = psi * W_aux``: (C_out, C_in, k)."""
        return self.psi * self.shared

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, [1,] T) -> (B, C_out, [1,] ceil(T / stride))
        left, right = _same_pad(x.shape[-1], self.kernel, self.stride)
        x = F.pad(x, (left, right))
        w = self.masked_weight()
        if x.dim() == 4:  # the ResNet's channels-last path
            return F.conv2d(x, w.unsqueeze(2).contiguous(memory_format=torch.channels_last), None, (1, self.stride))
        return F.conv1d(x, w, None, self.stride)


def _masked_copy(aux: ResNet1d, n_heads: int, head_rows: Sequence[int] | None,
                 psi_init: tuple[float, float], generator: torch.Generator | None) -> ResNet1d:
    """A copy of ``aux`` (own BN and head) whose convolutions are MaskedConv1d tied to ``aux``'s."""
    net = copy.deepcopy(aux)
    aux_convs = {name: m for name, m in aux.named_modules() if isinstance(m, _SameConv1d)}
    for name in list(aux_convs):
        parent_name, _, attr = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, attr, MaskedConv1d(aux_convs[name], psi_init, generator))
    head = nn.Linear(aux.n_features, n_heads)
    if head_rows is not None:  # start from the auxiliary network's heads of the same labels
        with torch.no_grad():
            head.weight.copy_(aux.heads.weight[list(head_rows)])
            head.bias.copy_(aux.heads.bias[list(head_rows)])
    net.heads = head.to(aux.heads.weight.device)
    return net


class DAMTLNet(nn.Module):
    """The auxiliary big-task network plus one masked network per task.

    Parameters
    ----------
    aux : ResNet1d
        The pre-trained auxiliary network, heads = the union of all tasks' labels.
    task_labels : list of lists of int
        For task ``j``, the columns of the union label matrix it predicts (its heads, in order).
    train_shared : bool
        Fine-tune ``W_aux`` too (default: fixed; see the module docstring).
    psi_init : (low, high)
        Initial mask range.
    seed : int
        Seed of the masks' initialisation.
    """

    def __init__(self, aux: ResNet1d, task_labels: Sequence[Sequence[int]], *, train_shared: bool = False,
                 psi_init: tuple[float, float] = (0.5, 1.0), seed: int = 0):
        super().__init__()
        if not task_labels or any(len(t) == 0 for t in task_labels):
            raise ValueError("DAMTL needs at least one task, each with at least one label")
        n_union = aux.config.n_tasks
        bad = [c for t in task_labels for c in t if not 0 <= c < n_union]
        if bad:
            raise ValueError(f"task label columns {bad} outside the auxiliary network's {n_union} heads")
        self.aux = aux
        self.task_labels = [list(map(int, t)) for t in task_labels]
        g = torch.Generator().manual_seed(int(seed))
        # copies first (their BN and heads stay trainable), then freeze the auxiliary network
        self.tasks = nn.ModuleList(_masked_copy(aux, len(t), t, psi_init, g) for t in self.task_labels)
        for p in self.aux.parameters():
            p.requires_grad_(False)
        if train_shared:
            for m in self.aux.modules():
                if isinstance(m, _SameConv1d):
                    m.weight.requires_grad_(True)

    def masks(self, task: int) -> list[nn.Parameter]:
        """Task ``task``'s soft masks Psi^l, in layer order."""
        return [m.psi for m in self.tasks[task].modules() if isinstance(m, MaskedConv1d)]

    @torch.no_grad()
    def project_masks_(self) -> None:
        """Keep every Psi non-negative (call after each optimiser step)."""
        for net in self.tasks:
            for m in net.modules():
                if isinstance(m, MaskedConv1d):
                    m.psi.clamp_(min=0.0)

    @torch.no_grad()
    def mask_sparsity(self, tol: float = 1e-3) -> list[list[float]]:
        """Per task, per layer: the share of mask entries below ``tol`` (pruned weights)."""
        return [[float((psi.abs() < tol).float().mean()) for psi in self.masks(j)] for j in range(len(self.tasks))]

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """(B, leads, T) -> auxiliary features (B, F) (detached), per-task logits and features.

        Returns
        -------
        aux_features : (B, F); task_logits : list of (B, n_j); task_features : list of (B, F)
        """
        aux_features = self.aux.features(x).detach()
        nets = [cast(ResNet1d, net) for net in self.tasks]
        feats = [net.features(x) for net in nets]
        logits = [net.heads(f) for net, f in zip(nets, feats)]
        return aux_features, logits, feats


def _rbf_mean(a: Tensor, b: Tensor, sigmas: Sequence[float]) -> Tensor:
    """Mean over all pairs of sum_s exp(-||a_i - b_j||^2 / (2 s^2))."""
    d2 = torch.cdist(a, b).pow(2)  # (m, n)
    k = torch.zeros_like(d2)
    for s in sigmas:
        k = k + torch.exp(-d2 / (2.0 * s * s))
    return k.mean()


def cmmd(aux_features: Tensor, task_features: Tensor, labels: Tensor,
         sigmas: Sequence[float] = (1.0, 2.0, 4.0, 8.0)) -> Tensor:
    """Conditional MMD^2 between two feature sets, summed over classes (biased estimate).

    Parameters
    ----------
    aux_features, task_features : (B, F) float
        The two networks' FC-layer inputs for the same records.
    labels : (B, C) int, 1/0/-1
        Task ``j``'s labels; class ``c`` is the set of records with ``labels[:, c] == 1``.
    sigmas : Gaussian kernel bandwidths (their kernels are summed)

    Returns
    -------
    scalar tensor
        ``sum_c [mean k(a, a') + mean k(t, t') - 2 mean k(a, t)]`` over the class's records
        (classes without a positive record in the batch add 0).
    """
    total = task_features.new_zeros(())
    for c in range(labels.shape[1]):
        sel = labels[:, c] == 1
        if not bool(sel.any()):
            continue
        a, t = aux_features[sel].float(), task_features[sel].float()
        total = total + _rbf_mean(a, a, sigmas) + _rbf_mean(t, t, sigmas) - 2.0 * _rbf_mean(a, t, sigmas)
    return total


def mask_l1(masks: Sequence[Tensor]) -> Tensor:
    """``sum_l ||Psi^l||_1`` of one task's masks."""
    total = masks[0].new_zeros(())
    for m in masks:
        total = total + m.abs().sum()
    return total


def damtl_loss(model: DAMTLNet, x: Tensor, y: Tensor, *, lambda_l1: float, lambda_cmmd: float,
               alphas: Sequence[float] | None = None, sigmas: Sequence[float] = (1.0, 2.0, 4.0, 8.0)
               ) -> tuple[Tensor, dict[str, list[float]]]:
    """``sum_j alpha_j L_j`` on one batch (Eq. 3), and its parts per task.

    Parameters
    ----------
    x : (B, leads, T); y : (B, U) int8 union labels, -1 where the record's source does not define one
    lambda_l1, lambda_cmmd : the weights of the mask L1 and CMMD terms
    alphas : per-task weights (default 1)

    Returns
    -------
    loss : scalar tensor; parts : ``{"ce": [...], "l1": [...], "cmmd": [...]}`` per task (floats)
    """
    aux_f, logits, feats = model(x)
    alphas = [1.0] * len(model.tasks) if alphas is None else list(alphas)
    total = x.new_zeros(())
    parts: dict[str, list[float]] = {"ce": [], "l1": [], "cmmd": []}
    for j, cols in enumerate(model.task_labels):
        yj = y[:, cols]
        losses, present = masked_bce(logits[j].float(), yj)
        ce = losses[present].mean() if bool(present.any()) else losses.sum() * 0.0
        l1 = mask_l1(model.masks(j))
        d = cmmd(aux_f, feats[j], yj, sigmas)
        total = total + alphas[j] * (ce + lambda_l1 * l1 + lambda_cmmd * d)
        parts["ce"].append(float(ce.detach()))
        parts["l1"].append(float(l1.detach()))
        parts["cmmd"].append(float(d.detach()))
    return total, parts


@dataclass(frozen=True)
class DAMTLConfig:
    """What rebuilds a trained :class:`DAMTLPredictor` (saved as a checkpoint's ``model_config``)."""

    aux: dict  # the auxiliary network's ResNet1dConfig
    task_labels: tuple[tuple[int, ...], ...]  # union columns per task
    keep: tuple[int, ...] | None = None  # union columns the predictor outputs (None: all)
    kind: str = "damtl"


class DAMTLPredictor(nn.Module):
    """A trained DAMTL model as one (B, leads, T) -> (B, U) logit function over the union labels.

    A label's logit is the mean of the logits of the task networks that predict it; a label no task
    predicts takes the auxiliary network's logit. Same protocol as :class:`ResNet1d` for prediction
    and export (``config``, ``set_conv_path``, ``keep_heads``).
    """

    def __init__(self, config: DAMTLConfig, net: DAMTLNet | None = None):
        super().__init__()
        self.config = config
        if net is None:
            aux = ResNet1d(ResNet1dConfig(**config.aux))
            net = DAMTLNet(aux, [list(t) for t in config.task_labels], psi_init=(1.0, 1.0))
        self.net = net
        n_union = net.aux.config.n_tasks
        owners = torch.zeros(len(net.task_labels), n_union)
        for j, cols in enumerate(net.task_labels):
            owners[j, cols] = 1.0
        self.register_buffer("_owners", owners, persistent=False)  # (J, U)

    def set_conv_path(self, path: str) -> "DAMTLPredictor":
        for m in self.net.modules():
            if isinstance(m, ResNet1d):
                m.set_conv_path(path)
        return self

    def keep_heads(self, tasks: Sequence[int]) -> "DAMTLPredictor":
        """The same model outputting only union columns ``tasks`` (in that order)."""
        out = DAMTLPredictor(DAMTLConfig(**{**asdict(self.config), "keep": tuple(int(t) for t in tasks)}))
        out.load_state_dict(self.state_dict())
        return out

    def forward(self, x: Tensor) -> Tensor:
        owners = cast(Tensor, self._owners)
        total = self.net.aux(x).float() * (owners.sum(dim=0) == 0)  # (B, U), aux only where no task
        for j, net in enumerate(self.net.tasks):
            full = x.new_zeros(x.shape[0], owners.shape[1], dtype=torch.float32)
            full[:, self.net.task_labels[j]] = cast(ResNet1d, net)(x).float()
            total = total + full
        logits = total / owners.sum(dim=0).clamp(min=1)
        return logits if self.config.keep is None else logits[:, list(self.config.keep)]
