"""Data-parallel training under torchrun: process group set-up and batch sharding.

Every process draws the same global batch (the batch order depends only on the seed and
the epoch) and takes its contiguous shard of ``batch_size / world_size`` examples;
``DistributedDataParallel`` averages the gradients, so with a per-example-independent
model (no BatchNorm) an update equals the single-process update on the global batch:

    grad = (1/W) sum_r (1/b) sum_{i in shard r} grad l_i = (1/B) sum_{i in batch} grad l_i
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    active: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, idx: Tensor) -> Tensor:
        """This rank's contiguous share of the global batch indices ``idx`` (B,)."""
        if not self.active:
            return idx
        b = idx.shape[0] // self.world_size
        return idx[self.rank * b:(self.rank + 1) * b]

    def all_sum(self, t: Tensor) -> Tensor:
        """Sum of ``t`` over all processes (``t`` itself when not distributed)."""
        if self.active:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK; 0 without torchrun).

    Examples:
        >>> local_rank() if "LOCAL_RANK" not in os.environ else 0
        0
    """
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(backend: str = "gloo") -> Dist:
    """Join the process group torchrun describes in the environment (``backend``: gloo
    for CPU tensors, nccl for CUDA tensors; see ``signalprop.train.device.backend_for``).

    Raises:
        ValueError: not launched by torchrun (names the missing variables and shows how).
    """
    missing = [v for v in _TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise ValueError(
            f"--ddp needs the environment torchrun sets up (missing {', '.join(missing)}); "
            "launch with: torchrun --standalone --nproc-per-node 2 -m signalprop train --ddp ...")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(dist.get_rank(), dist.get_world_size(), True)


def gather_objects(d: Dist, obj: object) -> list[object]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` alone)."""
    if not d.active:
        return [obj]
    out: list[object] = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def shutdown(d: Dist) -> None:
    """Leave the process group (no-op when not distributed)."""
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, d: Dist, device: torch.device | None = None
               ) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` when distributed (on ``device``'s GPU when it is
    one), ``model`` itself otherwise."""
    if not d.active:
        return model
    if device is not None and device.type == "cuda":
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    return torch.nn.parallel.DistributedDataParallel(model)
