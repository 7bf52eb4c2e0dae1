"""What a training run reports while it runs: interval losses and throughput in the log, TensorBoard
events when tensorboard is installed, the progress bar, the per-epoch callback and the result."""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import torch

from ecgkit.trainer.config import TrainConfig, TrainResult
from ecgkit.trainer.distributed import _Dist

if TYPE_CHECKING:
    from ecgkit.trainer.loop import _State

logger = logging.getLogger("ecgkit.train")


class _Log:
    """Interval losses and throughput, TensorBoard (when installed), the progress bar and the result."""

    def __init__(self, config: TrainConfig, out: Path, head_names: list[str], dist_info: _Dist,
                 device: torch.device, resumed_at: int | None,
                 on_epoch: Callable[[Mapping[str, Any]], None] | None = None):
        self.config, self.out, self.head_names, self.dist = config, out, head_names, dist_info
        self.resumed_at, self.on_epoch = resumed_at, on_epoch
        self.ep_t0, self.ep_samples = time.perf_counter(), 0
        n = len(head_names)
        self.iv_sum = torch.zeros(n, dtype=torch.float64, device=device)
        self.iv_cnt = torch.zeros(n, dtype=torch.float64, device=device)
        self.iv_t0, self.iv_samples = time.perf_counter(), 0
        self.t0, self.samples = time.perf_counter(), 0
        self.losses: list[tuple[int, float]] = []
        self.rates: list[tuple[int, float]] = []
        self.writer = _tensorboard(out, resumed_at) if config.tensorboard and dist_info.main else None

    def progress(self, loader: Any, epoch: int) -> Any:
        if self.config.progress and self.dist.main:
            from tqdm import tqdm
            return tqdm(loader, desc=f"epoch {epoch + 1}/{self.config.epochs}", total=len(loader), leave=False)
        return loader

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def step(self, state: _State, task_losses: torch.Tensor, present: torch.Tensor, n: int, lr: float) -> None:
        tl = task_losses.detach().double()
        self.iv_sum += tl
        self.iv_cnt += present
        state.ep_sum += tl  # type: ignore[operator]
        state.ep_cnt += present  # type: ignore[operator]
        self.iv_samples += n
        self.samples += n
        self.ep_samples += n
        if state.step % self.config.log_interval:
            return
        per_head, seen = (self.iv_sum / self.iv_cnt.clamp(min=1)).tolist(), self.iv_cnt.tolist()
        mean_loss = float(self.iv_sum.sum() / self.iv_cnt.sum().clamp(min=1))
        rate = self.iv_samples * self.dist.world_size / max(time.perf_counter() - self.iv_t0, 1e-9)
        self.losses.append((state.step, mean_loss))
        self.rates.append((state.step, rate))
        if self.dist.main:
            heads = " ".join(f"{h}={v:.4f}" for h, v, c in zip(self.head_names, per_head, seen) if c)
            logger.info("step %d epoch %d loss %.4f lr %.3e samples/s %.0f | %s", state.step, state.epoch, mean_loss,
                        lr, rate, heads)
            if self.writer is not None:
                self.writer.add_scalar("train/loss", mean_loss, state.step)
                self.writer.add_scalar("train/lr", lr, state.step)
                self.writer.add_scalar("train/samples_per_s", rate, state.step)
        self.iv_sum.zero_()
        self.iv_cnt.zero_()
        self.iv_t0, self.iv_samples = time.perf_counter(), 0

    def epoch(self, epoch: int, row: Mapping[str, Any], state: _State) -> None:
        seconds = time.perf_counter() - self.ep_t0
        rate = self.ep_samples * self.dist.world_size / max(seconds, 1e-9)
        left = self.config.epochs - (epoch + 1)
        if self.config.max_steps is not None and state.step:
            left = min(left, math.ceil(max(self.config.max_steps - state.step, 0) / max(state.step / (epoch + 1), 1)))
        logger.info("epoch %d/%d done: train loss %.4f, val macro AUROC %.4f, val loss %.4f, %s score %.4f "
                    "(best %.4f, %d epoch(s) without gain)", epoch + 1, self.config.epochs, row["train_loss"],
                    row["val_macro_auroc"], row["val_loss"], self.config.early_stopping, row["val_score"], state.best,
                    state.bad_epochs)
        if self.writer is not None:
            self.writer.add_scalar("val/macro_auroc", row["val_macro_auroc"], state.step)
            self.writer.add_scalar("val/loss", row["val_loss"], state.step)
            self.writer.add_scalar("train/epoch_loss", row["train_loss"], state.step)
        if self.on_epoch is not None and self.dist.main:
            self.on_epoch({**row, "epochs": self.config.epochs, "samples_per_s": rate, "epoch_s": seconds,
                           "eta_s": seconds * left, "best": state.best, "bad_epochs": state.bad_epochs})
        self.ep_t0, self.ep_samples = time.perf_counter(), 0

    def finish(self, state: _State, *, stopped_early: bool) -> TrainResult:
        if self.writer is not None:
            self.writer.close()
        if self.dist.world_size > 1:  # no rank returns before rank 0 has written the run's files
            torch.distributed.barrier()
        rate = self.samples * self.dist.world_size / max(time.perf_counter() - self.t0, 1e-9)
        best = state.best if np.isfinite(state.best) else float("nan")
        best_rows = [r for r in state.history if r["step"] == state.best_step]
        best_auc = float(best_rows[-1]["val_macro_auroc"]) if best_rows and np.isfinite(best) else float("nan")
        return TrainResult(self.out, state.step, len(state.history), best_auc, state.history, self.losses, self.rates,
                           stopped_early, rate, best, resumed_from_step=self.resumed_at)


def _tensorboard(out: Path, resumed_at: int | None) -> Any:
    """A SummaryWriter under RUN_DIR/tb, or None (one notice) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch imports tensorboard lazily; it is optional
        logger.warning("tensorboard is not installed: no TensorBoard events (metrics.csv is written as usual; "
                       "pip install tensorboard to get them)")
        return None
    return SummaryWriter(str(out / "tb"), purge_step=resumed_at)
