"""The thin layer over ``torch.distributed``: rank, world size, gradient averaging, gathering.

Launch with ``torchrun --nproc_per_node K -m ebgan.cli train ...`` (or ``--nnodes`` for several machines):
each process trains on its own shard of every batch, gradients are averaged across processes before each
optimiser step, and only rank 0 writes files or prints. The backend is NCCL on CUDA and gloo on CPU.

Gradients are averaged by hand rather than through ``DistributedDataParallel``: a GAN step runs G and D
forward in patterns (G's output reused by the G step, D frozen in the G step) that DDP's reducer cannot
follow without ``find_unused_parameters`` and buffer tricks, while one flat all-reduce per optimiser step is
simple and exact. Every rank starts from the same seed, so initial weights agree; they are broadcast from
rank 0 anyway to be safe against nondeterministic initialisation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as td
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_kind: str) -> DistInfo:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not td.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        td.init_process_group(backend=backend)
    return DistInfo(td.get_rank(), td.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def cleanup(wait: bool = True) -> None:
    """Tear the process group down, with ``wait`` once every rank is here: a rank that exits while a peer
    still holds its gloo connection can make the peer abort ("terminate called without an active
    exception"). After an error on one rank the others may never arrive, so the caller passes ``wait=False``."""
    if td.is_available() and td.is_initialized():
        try:
            if wait:
                td.barrier()
        finally:
            td.destroy_process_group()


def broadcast_module(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not info.enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        td.broadcast(t.data, src=0)


def sync_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with every batch-norm layer replaced by ``torch.nn.SyncBatchNorm``, which normalises with the
    statistics of the global batch (all processes) instead of this process's slice. The state-dict keys stay
    the same, so checkpoints load either way. PyTorch implements it for CUDA devices only."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def average_gradients(params: list[torch.Tensor], info: DistInfo) -> None:
    """Average ``.grad`` over ranks with one flat all-reduce (parameters without a gradient are skipped)."""
    if not info.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads)
    td.all_reduce(flat)
    flat /= info.world_size
    for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        g.copy_(synced)


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.enabled:
        return t
    t = t.clone()
    td.all_reduce(t)
    return t / info.world_size


def all_gather_cat(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Concatenate a tensor of the same shape from every rank along dim 0 (for metrics)."""
    if not info.enabled:
        return t
    parts = [torch.empty_like(t) for _ in range(info.world_size)]
    td.all_gather(parts, t.contiguous())
    return torch.cat(parts, 0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        td.barrier()
