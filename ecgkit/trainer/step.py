"""One optimiser step and what it needs: the model and loss weighting, AdamW and its schedule.

``train_step`` is also what the GPU benchmark times as the compute ceiling (no data path).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ecgkit.losses import LossWeighting, make_weighting, masked_bce
from ecgkit.models.resnet1d import ResNet1d, ResNet1dConfig
from ecgkit.trainer.config import TrainConfig

__all__ = ["train_step"]


def _build(cfg: TrainConfig, n_leads: int, n_heads: int, n_samples: int | None = None,
           columns: list[list[int]] | None = None) -> tuple[Any, LossWeighting]:
    """The model (its config saved as ``model_config`` in checkpoints) and the loss weighting.

    ``n_samples`` (the records' length) is stored only for ``head="flatten"``, which needs it;
    ``columns`` (head indices per column) is used with ``sharing="cross_stitch"`` (default one per head).
    """
    torch.manual_seed(cfg.seed)
    model_cfg = ResNet1dConfig(
        n_tasks=n_heads, n_leads=n_leads, n_blocks=cfg.blocks, dropout=cfg.dropout, base_filters=cfg.base_filters,
        filter_growth=cfg.filter_growth, increase_every=cfg.increase_every, head=cfg.head,
        kernel_size=cfg.kernel_size,
        n_samples=n_samples if cfg.head == "flatten" else None)
    model: Any = ResNet1d(model_cfg)
    if cfg.sharing == "cross_stitch":
        from dataclasses import asdict

        from ecgkit.models.cross_stitch import CrossStitchConfig, CrossStitchNet
        after = cfg.cross_stitch_after if cfg.cross_stitch_after is not None else tuple(range(1, cfg.blocks, 2))
        cols = columns if columns is not None else [[h] for h in range(n_heads)]
        model = CrossStitchNet(CrossStitchConfig(base=asdict(model_cfg), columns=tuple(tuple(c) for c in cols),
                                                 stitch_after=tuple(after), init_self=cfg.cross_stitch_init))
    kwargs = {"temperature": cfg.dwa_temperature} if cfg.weighting == "dwa" else {}
    return model, make_weighting(cfg.weighting, n_heads, **kwargs)


def _optimizer(cfg: TrainConfig, model: nn.Module, weighting: nn.Module, total_steps: int,
               steps_per_epoch: int | None = None) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1] + list(weighting.parameters())
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    warm = min(max(cfg.warmup_steps, 0), total_steps // 10)  # never more than 10 % of the run
    per_epoch = max(1, steps_per_epoch or total_steps // max(cfg.epochs, 1))  # default: the run's epochs even
    bounds = [int(m) * per_epoch for m in (cfg.lr_milestones or [])]  # the steps where milestone epochs begin

    def lr_lambda(step: int) -> float:  # linear warm-up, then cosine to 10 % of the peak, or MultiStepLR
        if step < warm:
            return (step + 1) / warm
        if cfg.lr_schedule == "multistep":  # MultiStepLR: the epoch of `step` past each milestone
            return float(cfg.lr_gamma ** sum(step >= b for b in bounds))
        frac = min((step - warm) / max(total_steps - warm, 1), 1.0)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)



def _conv_path(cfg_path: str, device: torch.device) -> str:
    """The convolution path a run uses on ``device`` (``auto``: channels-last on CUDA only)."""
    if cfg_path == "auto":
        return "channels_last" if device.type == "cuda" else "conv1d"
    return cfg_path


def train_step(model: nn.Module, weighting: LossWeighting, opt: torch.optim.Optimizer, sched: Any, x: torch.Tensor,
               y: torch.Tensor, task: int, *, amp: bool, grad_clip: float = 0.0,
               distributed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch already on the device (also used by the GPU benchmark's ceiling).

    Parameters
    ----------
    x : float tensor (B, leads, L); y : int8 tensor (B, H) with -1 unknown
    task : int
        The batch's task (task-aware: loss on that head only), or -1 for a joint multi-label batch.

    Returns
    -------
    task_losses : (H,) detached per-head losses; present : (H,) bool, heads that had a loss
    """
    n_heads = y.shape[1]
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(x)  # (B, H)
    if task >= 0:  # task-aware: this batch trains its task's head only
        # compared on the device: building it from a host tensor would copy and wait for the GPU
        present = torch.arange(n_heads, device=x.device) == task
        head_loss = F.binary_cross_entropy_with_logits(logits[:, task].float(), y[:, task].float())
        task_losses = head_loss * present
    else:
        task_losses, present = masked_bce(logits, y)
    loss = weighting(task_losses, present)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if distributed:
        for p in weighting.parameters():  # not inside DDP: average by hand
            torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.AVG)
    if grad_clip > 0:
        params = [p for g in opt.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    if sched is not None:
        sched.step()
    return task_losses.detach(), present


