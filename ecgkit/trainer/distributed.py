"""Devices and processes: the device choice, torchrun ranks, gathers and per-rank random streams.

Multi-GPU: launch with ``torchrun --nproc_per_node G -m ecgkit train ...``; RANK/WORLD_SIZE/
LOCAL_RANK select the GPU, the sampler draws a disjoint stream per rank, and ``batch_size`` is per
GPU. One GPU needs no torchrun.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from numpy.typing import NDArray

from ecgkit.errors import ConfigError
from ecgkit.trainer.config import TrainConfig

__all__: list[str] = []


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup(cfg: TrainConfig) -> tuple[torch.device, _Dist]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dist_info = _Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    want = cfg.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device")
    if want.startswith("cuda"):
        device = torch.device("cuda", dist_info.local_rank if world > 1 else torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device(want)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, dist_info


def _all_gather_rows(x: NDArray, dist_info: _Dist) -> list[NDArray]:
    return _all_gather_objects(x, dist_info)


def _all_gather_objects(x: Any, dist_info: _Dist) -> list[Any]:
    """``x`` of every rank, in rank order (``[x]`` without torchrun); every rank must call it."""
    if dist_info.world_size == 1:
        return [x]
    out: list[Any] = [None] * dist_info.world_size
    torch.distributed.all_gather_object(out, x)
    return out


def _rng_state(device: torch.device) -> dict[str, Any]:
    """This process's dropout streams: the CPU generator and, on CUDA, its device's generator."""
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _restore_rng(saved: Mapping[str, Any], rank: int, device: torch.device) -> None:
    """Restore this rank's generators from a checkpoint's ``rng`` entry (one state per rank)."""
    per_rank = saved.get("per_rank")
    if per_rank is not None:
        if len(per_rank) <= rank:
            raise ConfigError(f"the checkpoint holds random states of {len(per_rank)} rank(s); cannot resume "
                              f"rank {rank}: resume with the world size it was written with")
        mine = per_rank[rank]
        torch.set_rng_state(mine["torch"])
        if device.type == "cuda" and mine.get("cuda") is not None:
            torch.cuda.set_rng_state(mine["cuda"], device)
        return
    # checkpoints of earlier versions: rank 0's CPU state and rank 0's view of every device
    torch.set_rng_state(saved["torch"])
    cuda = saved.get("cuda")
    if device.type == "cuda" and cuda is not None:
        torch.cuda.set_rng_state(cuda[min(device.index or 0, len(cuda) - 1)], device)

