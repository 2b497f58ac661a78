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


class _SumOverRanks(torch.autograd.Function):
    """``all_reduce(SUM)`` that autograd can go through: every rank's output is the sum of the inputs, so the
    gradient of an input is the sum of every rank's output gradient, itself an all-reduce."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        td.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        td.all_reduce(grad)
        return grad


def sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    return _SumOverRanks.apply(t)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm with the statistics of the global batch (every process's slice), for any backend: the
    ``sync_bn`` layer of CPU (gloo) processes, where ``torch.nn.SyncBatchNorm`` refuses to run.

    In training mode, with a process group of more than one process, the per-channel mean and then the
    centred sum of squares are summed over processes with :func:`sum_over_ranks`, whose backward is itself an
    all-reduce, so gradients are those of batch norm on the concatenated batch.
    The running statistics take the global mean and the unbiased global variance. In eval mode, or in a
    single process, it is ordinary batch norm. Every rank must run the same forward calls in the same order
    (the trainer does: evaluation and sampling run in eval mode).
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected an input of at least 2 dimensions, got {x.dim()}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and td.is_available() and td.is_initialized() and td.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = sum_over_ranks(x.new_tensor([float(x.numel() // x.shape[1])]))
        mean = sum_over_ranks(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = sum_over_ranks((centred * centred).sum(dims)) / count  # biased: what normalises the batch
        # With track_running_stats the three buffers exist together (None otherwise).
        running_mean, running_var, tracked = self.running_mean, self.running_var, self.num_batches_tracked
        if self.track_running_stats and running_mean is not None and running_var is not None and tracked is not None:
            tracked.add_(1)
            f = self.momentum if self.momentum is not None else 1.0 / float(tracked)
            with torch.no_grad():
                n = count.item()
                running_mean.lerp_(mean.detach(), f)
                running_var.lerp_(var.detach() * (n / max(n - 1.0, 1.0)), f)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def _to_global_batch_norm(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _to_global_batch_norm(child))
    return module


def sync_batch_norm(module: nn.Module, device_type: str = "cuda") -> nn.Module:
    """``module`` with every batch-norm layer normalising with the statistics of the global batch (all
    processes) instead of this process's slice: ``torch.nn.SyncBatchNorm`` on CUDA, :class:`GlobalBatchNorm`
    on other devices (PyTorch's layer runs on GPUs only). State-dict keys stay the same, so checkpoints load
    either way."""
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_batch_norm(module)


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


class OverlappedAverage:
    """Gradient averaging overlapped with the backward pass, as ``DistributedDataParallel`` does it.

    The parameters are split into buckets of about ``bucket_mb`` MiB in reverse order (the backward pass
    produces the last layers' gradients first). A hook after each gradient's accumulation counts the bucket's
    ready gradients; a full bucket is flattened and its all-reduce started asynchronously while the backward
    pass goes on. Buckets are started strictly in index order, so every rank issues the same collectives in the
    same order. :meth:`finish` starts any bucket still waiting (parameters that got no gradient in this
    backward), waits for every all-reduce and writes the averages back. The result is the mean gradient,
    exactly what :func:`average_gradients` computes (the same sums, taken per bucket instead of once).

    Use: ``start()``, then ``loss.backward()``, then ``finish()``; hooks outside that window do nothing (the
    same parameters may be used in other backward passes, e.g. D's in the generator step).
    """

    def __init__(self, params: list[torch.Tensor], info: DistInfo, bucket_mb: float = 25.0) -> None:
        self.info = info
        self.buckets: list[list[torch.Tensor]] = []
        cur: list[torch.Tensor] = []
        size = 0
        for p in reversed([p for p in params if p.requires_grad]):
            cur.append(p)
            size += p.numel() * p.element_size()
            if size >= bucket_mb * 2**20:
                self.buckets.append(cur)
                cur, size = [], 0
        if cur:
            self.buckets.append(cur)
        self.bucket_of = {id(p): i for i, b in enumerate(self.buckets) for p in b}
        self.active = False
        self.ready = [0] * len(self.buckets)
        self.next = 0  # the next bucket to start
        self.works: list = []
        self.handles = [p.register_post_accumulate_grad_hook(self._hook) for b in self.buckets for p in b]

    def start(self) -> None:
        self.active, self.ready, self.next, self.works = True, [0] * len(self.buckets), 0, []

    def _hook(self, p: torch.Tensor) -> None:
        if not self.active:
            return
        self.ready[self.bucket_of[id(p)]] += 1
        while self.next < len(self.buckets) and self.ready[self.next] == len(self.buckets[self.next]):
            self._launch(self.next)

    def _launch(self, i: int) -> None:
        grads = [p.grad for p in self.buckets[i] if p.grad is not None]
        self.next = i + 1
        if not grads:
            return
        flat = _flatten_dense_tensors(grads)
        self.works.append((td.all_reduce(flat, async_op=True), flat, grads))

    def finish(self) -> None:
        while self.next < len(self.buckets):
            self._launch(self.next)
        for work, flat, grads in self.works:
            work.wait()
            flat /= self.info.world_size
            for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
                g.copy_(synced)
        self.active, self.works = False, []

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


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
