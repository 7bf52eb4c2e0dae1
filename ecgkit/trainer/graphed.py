"""The whole training step as one CUDA graph: forward, loss, backward, clipping and AdamW.

On the GPU the 8-block ResNet's step is short (about 10-15 ms at batch 256) and made of a few
hundred kernels (cuDNN convolutions, Inductor's fused batch-norm/ReLU kernels, AdamW), so part of
it is the CPU launching them, not the GPU running them (BENCHMARKS.md "GPU convolution path").
:class:`GraphedStep` records :func:`ecgkit.trainer.train_step`'s work once into a
``torch.cuda.CUDAGraph`` and replays it, so one launch runs the whole step.

It computes the same step as ``train_step`` (same loss, same gradients, same clipping and AdamW
update; tests compare them on the GPU in the benchmark and on the CPU for the graph-ready loss):

- the batch's task is a device tensor (``gather`` picks its head) instead of a Python int, so one
  graph serves every task;
- the learning rate is a device tensor that is set from the scheduler's value before each replay
  (the scheduler and the checkpoints keep plain floats);
- AdamW runs with ``capturable=True`` (its step counters on the GPU) while graphed;
  :func:`portable_optimizer_state` writes checkpoints in the usual form, so they load into the
  eager path and into CPU runs.

Used when the run is on one CUDA GPU with task-aware batches (``TrainConfig.cuda_graph``); joint
multi-label batches, several GPUs and CPU runs use ``train_step``.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgkit.losses import LossWeighting

__all__ = ["GraphedStep", "graph_loss", "portable_optimizer_state"]

# eager steps before the capture (cuDNN autotuning, Inductor compilation, optimizer state)
WARMUP_STEPS = 3


def graph_loss(logits: Tensor, y: Tensor, task: Tensor, weighting: LossWeighting,
               weights: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """The task-aware loss with the task as a 0-d int64 tensor (no host value read).

    Same numbers as ``train_step``'s ``logits[:, task]`` branch. ``weights`` (on the device) replace
    ``weighting.weights()`` for weightings that use the base class's weighted sum.
    Returns (loss, task_losses (H,), present (H,) bool).
    """
    n_heads = y.shape[1]
    idx = task.view(1, 1).expand(y.shape[0], 1)
    head_loss = F.binary_cross_entropy_with_logits(logits.gather(1, idx).squeeze(1).float(),
                                                   y.gather(1, idx).squeeze(1).float())
    present = torch.arange(n_heads, device=y.device) == task
    task_losses = head_loss * present
    if weights is not None:
        loss = (weights * task_losses * present).sum()
    else:
        loss = weighting(task_losses, present)
    return loss, task_losses, present


def _uses_base_sum(weighting: LossWeighting) -> bool:
    return type(weighting).forward is LossWeighting.forward


def portable_optimizer_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """``opt.state_dict()`` as the eager path writes it (``capturable`` off, step counters on the CPU)."""
    sd = opt.state_dict()
    groups = copy.deepcopy(sd["param_groups"])
    for g in groups:
        if "capturable" in g:
            g["capturable"] = False
    state = {k: {n: (v.detach().to("cpu", torch.float32) if n == "step" and isinstance(v, Tensor) else v)
                 for n, v in s.items()} for k, s in sd["state"].items()}
    return {"state": state, "param_groups": groups}


class GraphedStep:
    """``train_step`` replayed from one CUDA graph (see the module docstring).

    Parameters
    ----------
    model : the (compiled) model; weighting : the loss weighting; opt, sched : AdamW and its schedule
    amp : bf16 autocast; grad_clip : max gradient norm (0: none)

    Call it as ``step(x, y, task)``, like ``train_step``; returns (task_losses, present) copies.
    """

    def __init__(self, model: nn.Module, weighting: LossWeighting, opt: torch.optim.Optimizer, sched: Any, *,
                 amp: bool, grad_clip: float = 0.0):
        self.model, self.weighting, self.opt, self.sched = model, weighting, opt, sched
        self.amp, self.grad_clip = amp, grad_clip
        self.params = [p for g in opt.param_groups for p in g["params"]]
        self.graph: torch.cuda.CUDAGraph | None = None
        self.steps = 0
        self._shape: tuple[Any, ...] | None = None
        self._cpu_w: Tensor | None = None

    # ------------------------------------------------------------------ pieces
    def _body(self, x: Tensor, y: Tensor, task: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp, cache_enabled=False):
            logits = self.model(x)
        weights = self._w if _uses_base_sum(self.weighting) else None
        loss, task_losses, present = graph_loss(logits, y, task, self.weighting, weights)
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip, foreach=True)
        self.opt.step()
        return task_losses.detach(), present

    def _refresh_weights(self) -> None:
        if not _uses_base_sum(self.weighting):
            return
        w = self.weighting.weights().detach().float().cpu()
        if self._cpu_w is None or not torch.equal(w, self._cpu_w):  # DWA changes them once an epoch
            self._cpu_w = w.clone()
            self._w.copy_(w.to(self._w.device))

    def _set_lr(self) -> None:
        for g, t in zip(self.opt.param_groups, self._lr):
            t.fill_(float(g["lr"]))

    def _prepare(self, x: Tensor, y: Tensor) -> None:
        dev = x.device
        self._x, self._y = x.clone(), y.clone()
        self._task = torch.zeros((), dtype=torch.int64, device=dev)
        self._w = torch.ones(y.shape[1], device=dev)
        self._cpu_w = None
        self._lr = [torch.tensor(float(g["lr"]), dtype=torch.float32, device=dev) for g in self.opt.param_groups]
        for g in self.opt.param_groups:
            g["capturable"] = True
            for p in g["params"]:
                st = self.opt.state.get(p)
                if st and isinstance(st.get("step"), Tensor):
                    st["step"] = st["step"].to(dev, torch.float32)

    def _capture(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        floats = [g["lr"] for g in self.opt.param_groups]
        for g, t in zip(self.opt.param_groups, self._lr):
            g["lr"] = t  # the graph reads the rate from this tensor
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._out = self._body(self._x, self._y, self._task)
        finally:
            for g, f in zip(self.opt.param_groups, floats):
                g["lr"] = f
        self.graph = graph

    # ------------------------------------------------------------------ the step
    def __call__(self, x: Tensor, y: Tensor, task: int) -> tuple[Tensor, Tensor]:
        if task < 0:
            raise ValueError("GraphedStep needs task-aware batches (task >= 0); use train_step for joint batches")
        shape = (tuple(x.shape), x.dtype, tuple(y.shape), y.dtype)
        if self._shape != shape:  # first call (or a new batch shape): eager warm-up, then capture again
            self._prepare(x, y)
            self._shape, self.graph, self.steps = shape, None, 0
        self._x.copy_(x)
        self._y.copy_(y)
        self._task.fill_(task)
        self._refresh_weights()
        self._set_lr()
        if self.graph is None and self.steps >= WARMUP_STEPS:
            torch.cuda.synchronize()
            self._capture()
            # the capture recorded the step without running it
        if self.graph is None:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            floats = [g["lr"] for g in self.opt.param_groups]
            for g, t in zip(self.opt.param_groups, self._lr):
                g["lr"] = t
            try:
                with torch.cuda.stream(side):
                    self.opt.zero_grad(set_to_none=True)
                    out = self._body(self._x, self._y, self._task)
            finally:
                for g, f in zip(self.opt.param_groups, floats):
                    g["lr"] = f
            torch.cuda.current_stream().wait_stream(side)
        else:
            self.graph.replay()
            out = self._out
        self.steps += 1
        if self.sched is not None:
            self.sched.step()
        return out[0].clone(), out[1].clone()
