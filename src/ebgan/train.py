"""The training loop: the one place where data, steps, checkpoints and logging meet.

``Trainer`` holds the networks, optimisers, random generators and data cursor, and advances one iteration at
a time (``train_step``); ``train`` runs it with progress, logging, sample grids, plots and checkpoints, and
resumes a killed run to exactly the state it would have reached (bit for bit on CPU with the same seed).

All randomness is explicit: batch order from ``gen_data`` (the same on every rank, each rank reading its own
slice of the global batch), noise from ``gen_noise`` (seeded per rank), dropout from the global RNG (seeded
per rank), and the fixed sample grid from its own generator. All of them are saved in checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from . import _faults, dist, lapgan
from ._fileio import AppendLog, writing
from .checkpoint import (
    atomic_write_text,
    find_checkpoint,
    load_state,
    load_weights,
    recover_checkpoints,
    save_checkpoint,
    write_checkpoint_dir,
)
from .config import BEST_METRICS, Config, filled, lr_scale_at, margin_at, to_dict
from .data import Dataset, TrainingData, resolve_data_root, to_uint8, training_data
from .energy import anomaly_scores, calibration, energies
from .errors import EbganError, WriteFailed
from .nets import Packed, PackOfCopies, ae_energy, build_networks, seeded_noise, set_labels
from .objectives import make_objective, pretrain_loss
from .progress import Progress
from .rundir import (
    RunLock,
    check_fresh_start,
    check_new_run_dir,
    check_resume_config,
    clear_for_restart,
    remove_stale_temp_files,
    saved_config,
    truncate_metrics,
)
from .stopping import Interrupted, StopSignals
from .threads import choose_threads

if TYPE_CHECKING:
    from .stream import BatchStream


class TrainingDiverged(EbganError):
    """A loss became NaN or infinite."""


def resolve_device(name: str, info: dist.DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise EbganError(f"device={name} but CUDA is not available on this machine")
        if name == "cuda":
            name = f"cuda:{info.local_rank}"
    elif name != "cpu":
        raise EbganError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` does bf16 matrix work natively (CUDA with bf16, or a CPU with AVX512-BF16 or AMX).

    CPUs without it emulate bf16 and can be slower than fp32, so ``amp=auto`` stays in fp32 there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_amp(amp: str, device: torch.device) -> str:
    if amp == "auto":
        return "bf16" if native_bf16(device) else "none"
    return amp


def make_optimizer(kind: str, params, lr: float, beta1: float, beta2: float, device: torch.device):
    """Adam (fused kernel where available: the per-parameter update is a third of an MLP step otherwise),
    SGD or RMSProp."""
    params = list(params)
    if kind == "adam":
        try:
            return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), fused=True)
        except (RuntimeError, TypeError):  # fused Adam unavailable for this device or build
            return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise EbganError(f"unknown optimiser {kind!r}")


class Trainer:
    """Networks, optimisers and all state of a run; ``train_step`` advances one iteration.

    Iterations ``0 .. pretrain_steps-1`` pre-train the auto-encoder on real data; the adversarial game runs
    after them for ``cfg.steps`` iterations, its step counter (for the margin schedule) starting at 0.
    """

    def __init__(
        self, cfg: Config, dataset: Dataset, info: dist.DistInfo | None = None, anomalies: Tensor | None = None
    ) -> None:
        self.cfg, self.dataset = cfg, dataset
        self.info = info or dist.DistInfo()
        self.device = resolve_device(cfg.device, self.info)
        # CPU threads: the configured count, or (num_threads=0) the cores not busy with other processes right
        # now (ebgan.threads): on a busy machine, threads that share a core stall every parallel region.
        self.threads, self.threads_reason = choose_threads(cfg.num_threads)
        self.objective = make_objective(cfg)
        if cfg.pretrain_steps and self.objective.head != "ae":
            raise EbganError(f"pretrain_steps needs an auto-encoder discriminator; loss {cfg.loss} has none")
        self.n_classes = 0
        if cfg.conditional:
            if dataset.labels is None:
                raise EbganError(f"conditional=true needs a labelled data set; {dataset.name} has no labels")
            self.n_classes = int(dataset.labels.max()) + 1
        # What the nets see: the data's samples, or (crop_size) random crops of them drawn in next_batch.
        self.sample_shape = tuple(dataset.sample_shape)
        if cfg.crop_size is not None:
            if dataset.kind != "image":
                raise EbganError(f"crop_size needs images; {dataset.name} holds {dataset.kind}")
            c, h, w = self.sample_shape
            if cfg.crop_size > min(h, w):
                raise EbganError(f"crop_size {cfg.crop_size} is larger than the {h}x{w} images")
            self.sample_shape = (c, cfg.crop_size, cfg.crop_size)
        if cfg.flip and dataset.kind != "image":
            raise EbganError(f"flip needs images; {dataset.name} holds {dataset.kind}")
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.G, self.D = build_networks(
            cfg, self.sample_shape, self.objective.head, energy=self.objective.energy, n_classes=self.n_classes
        )
        if cfg.sync_bn and self.info.enabled:
            self.G = dist.sync_batch_norm(self.G, self.device.type)
            self.D = dist.sync_batch_norm(self.D, self.device.type)
        self.G.to(self.device)
        self.D.to(self.device)
        dist.broadcast_module(self.G, self.info)
        dist.broadcast_module(self.D, self.info)
        torch.manual_seed(cfg.seed + 7919 * self.info.rank)  # dropout masks differ per rank
        beta1, beta2 = filled(cfg.beta1, "beta1"), filled(cfg.beta2, "beta2")
        lr_g, lr_d = filled(cfg.lr_g, "lr_g"), filled(cfg.lr_d, "lr_d")
        self.opt_g = make_optimizer(
            filled(cfg.optim_g, "optim_g"), self.G.parameters(), lr_g, beta1, beta2, self.device
        )
        self.opt_d = make_optimizer(
            filled(cfg.optim_d, "optim_d"), self.D.parameters(), lr_d, beta1, beta2, self.device
        )
        self.g_params: list[Tensor] = list(self.G.parameters())
        self.d_params: list[Tensor] = list(self.D.parameters())
        # torchrun: each network's gradients averaged over ranks, by bucketed all-reduces started during the
        # backward pass (grad_overlap, as DDP does) or by one flat all-reduce after it. "auto" overlaps on CUDA
        # (NCCL runs beside the kernels); on CPU processes the overlap measured no faster than the flat
        # all-reduce, whose copies compete with the backward pass for the same cores (BENCHMARKS.md, dist_speed).
        self.grad_sync = {}
        overlap = cfg.grad_overlap == "on" or (cfg.grad_overlap == "auto" and self.device.type == "cuda")
        if self.info.enabled and overlap:
            self.grad_sync = {
                id(self.g_params): dist.OverlappedAverage(self.g_params, self.info),
                id(self.d_params): dist.OverlappedAverage(self.d_params, self.info),
            }
        # GPU-oriented execution options (they also run on a CPU): channels_last keeps conv feature maps
        # NHWC, which tensor cores (and oneDNN) prefer; compile traces G and D with torch.compile. Training
        # runs G_run/D_run; checkpoints, EMA and sampling use G and D themselves (same parameters).
        self.channels_last = cfg.channels_last and cfg.arch == "conv"
        if self.channels_last:  # (Module.to takes memory_format; its stubs omit it)
            self.G.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.D.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.G_run, self.D_run = self.G, self.D
        if cfg.compile:  # a compiled module is an nn.Module (OptimizedModule); the stubs say a callable
            self.G_run, self.D_run = cast(nn.Module, torch.compile(self.G)), cast(nn.Module, torch.compile(self.D))
        if self.device.type == "cuda" and cfg.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        # A moving average of G's weights (g_ema > 0): what sample grids, evaluation, `ebgan sample` and
        # `ebgan eval` use unless told otherwise. Updated after every G update; see update_ema.
        self.G_ema: nn.Module | None = None
        if cfg.g_ema > 0:
            self.G_ema = copy.deepcopy(self.G).eval()
            self.G_ema.requires_grad_(False)
        self.ema_updates = 0
        self.amp = resolve_amp(cfg.amp, self.device)  # "auto" becomes bf16 or none for this device
        if self.amp == "fp16" and self.device.type != "cuda":
            raise EbganError("amp=fp16 needs a CUDA device; use amp=bf16 on a CPU")
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.gen_data = torch.Generator().manual_seed(cfg.seed)
        self.gen_noise = torch.Generator(device=self.device).manual_seed(cfg.seed + 100_003 * (self.info.rank + 1))
        # stream=true: the images are read from disk batch by batch (ebgan.stream); otherwise one tensor.
        self.streamed = not hasattr(dataset, "data")
        self.data = None if self.streamed else dataset.data.to(self.device)
        self._stream: BatchStream | None = None  # the running reader of this epoch's batches (streamed data)
        # (conditional: the labels were checked above)
        self.labels = dataset.labels.to(self.device) if cfg.conditional and dataset.labels is not None else None
        self.perm = torch.randperm(len(dataset), generator=self.gen_data).to(self.device)
        self.pos = 0
        # Known anomalies (unlearning): a batch drawn with replacement from its own generator every D step.
        self.anomalies = anomalies.to(self.device) if anomalies is not None and len(anomalies) else None
        if self.anomalies is not None and self.objective.head != "ae":
            raise EbganError(f"known anomalies need an energy: loss {cfg.loss} has none (use loss=ebgan)")
        self.gen_anom = torch.Generator().manual_seed(cfg.seed + 300_007 + 7919 * self.info.rank)
        self.step = 0  # iterations done, pre-training included
        self.elapsed = 0.0  # training seconds over all sessions of this run
        self.total_steps = cfg.pretrain_steps + cfg.steps

    # -- data and noise --------------------------------------------------------------------------------------
    def close_stream(self) -> None:
        """Stop the reader of streamed batches, if any (its worker processes end now)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def next_batch(self) -> Tensor:
        """This rank's slice of the next global batch, as float32 (images in [-1, 1])."""
        b, world = self.cfg.batch_size, self.info.world_size
        if self.pos + b * world > len(self.perm):  # new epoch: drop the remainder, reshuffle
            self.perm = torch.randperm(len(self.dataset), generator=self.gen_data).to(self.device)
            self.pos = 0
            self.close_stream()
        start = self.pos + b * self.info.rank
        idx = self.perm[start : start + b]
        if self.streamed:
            if self._stream is None:  # the rest of this epoch's batches for this rank, read ahead in order
                from .stream import BatchStream, StreamedImages

                starts = range(
                    self.pos + b * self.info.rank, len(self.perm) - b * world + 1 + b * self.info.rank, b * world
                )
                streamed = cast(StreamedImages, self.dataset)  # the one data set without a data tensor (_run)
                self._stream = BatchStream(
                    streamed, [self.perm[s : s + b].cpu() for s in starts], self.cfg.data_workers
                )
            x = self._stream.next().to(self.device)
        self.pos += b * world
        if self.labels is not None:  # conditional: G and D see this batch's labels until the next batch
            set_labels(self.G, self.labels[idx])
            set_labels(self.D, self.labels[idx])
        if self.data is not None:  # not streamed
            x = self.data[idx]
        if self.cfg.crop_size is not None or self.cfg.flip:
            x = self.augment(x)
        if self.dataset.kind != "image":
            return x
        x = x.float().div_(127.5).sub_(1.0)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def augment(self, x: Tensor) -> Tensor:
        """Random crops (crop_size) and left-right flips (flip) of this rank's images. The draws come from
        ``gen_data`` for the whole global batch, so every rank consumes the same numbers (the generator stays
        the same on every rank) and takes its own slice."""
        b, world, rank = x.shape[0], self.info.world_size, self.info.rank
        n = b * world
        mine = slice(rank * b, rank * b + b)
        if self.cfg.crop_size is not None:
            c = self.cfg.crop_size
            _, ch, h, w = x.shape
            top = torch.randint(h - c + 1, (n,), generator=self.gen_data)[mine].to(x.device)
            left = torch.randint(w - c + 1, (n,), generator=self.gen_data)[mine].to(x.device)
            ar = torch.arange(c, device=x.device)
            rows = (top[:, None] + ar)[:, None, :, None]  # [b, 1, c, 1]
            cols = (left[:, None] + ar)[:, None, None, :]  # [b, 1, 1, c]
            x = x[
                torch.arange(b, device=x.device)[:, None, None, None],
                torch.arange(ch, device=x.device)[None, :, None, None],
                rows,
                cols,
            ]
        if self.cfg.flip:
            flip = (torch.rand(n, generator=self.gen_data) < 0.5)[mine].to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x

    def next_anomalies(self) -> Tensor:
        """A batch of ``batch_size`` known anomalies, drawn uniformly with replacement (their set is often
        smaller than a batch: Deep SAD's 1% of a digit's 6,000 images is 60)."""
        anomalies = self.anomalies
        assert anomalies is not None  # called by unlearn when there are known anomalies
        idx = torch.randint(len(anomalies), (self.cfg.batch_size,), generator=self.gen_anom)
        x = anomalies[idx.to(self.device)]
        return x.float().div_(127.5).sub_(1.0) if self.dataset.kind == "image" else x

    def unlearn(self, loss: Tensor, stats: dict[str, Tensor], game_step: int) -> Tensor:
        """``loss`` plus ``anomaly_weight`` times the unlearning hinge on a batch of known anomalies (if any)."""
        if self.anomalies is None:
            return loss
        with self.autocast():
            loss_a, a_stats = self.objective.anomaly_loss(self.D, self.next_anomalies(), game_step)
        stats.update(a_stats)
        stats["unlearn"] = loss_a.detach()
        return loss + self.cfg.anomaly_weight * loss_a

    def noise(self, n: int) -> Tensor:
        return torch.randn(n, self.cfg.z_dim, generator=self.gen_noise, device=self.device)

    def autocast(self):
        if self.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _update(self, loss: Tensor, params: list[Tensor], opt, scaler) -> None:
        opt.zero_grad(set_to_none=True)
        sync = self.grad_sync.get(id(params))
        if sync is not None:
            sync.start()
            scaler.scale(loss).backward()
            sync.finish()
        else:
            scaler.scale(loss).backward()
            dist.average_gradients(params, self.info)
        scaler.step(opt)
        scaler.update()

    # -- one iteration ---------------------------------------------------------------------------------------
    def train_step(self) -> dict[str, Tensor]:
        """One iteration: ``d_steps`` D updates, then one G update. Returns detached scalar statistics."""
        cfg = self.cfg
        self.G.train()
        self.D.train()
        if self.step < cfg.pretrain_steps:
            with self.autocast():
                loss = pretrain_loss(self.D, self.next_batch())
            stats = {"pretrain/energy_real": loss.detach()}
            # Known anomalies are pushed above their margin from the start of pre-training on.
            a_stats: dict[str, Tensor] = {}
            total = self.unlearn(loss, a_stats, 0)
            self._update(total, self.d_params, self.opt_d, self.scaler_d)
            self.step += 1
            return {**stats, **{f"pretrain/{k}": v for k, v in a_stats.items()}}

        game_step = self.step - cfg.pretrain_steps
        if cfg.lr_schedule != "constant":
            self.set_lr_scale(lr_scale_at(cfg, game_step))
        if cfg.arch == "lapgan":  # a GAN per pyramid level (ebgan.lapgan)
            fake, loss_d, stats = lapgan.d_phase(self, game_step)
            loss_g, g_stats = lapgan.g_phase(self, fake, game_step)
        else:
            fake, loss_d, stats = self.d_phase(game_step)
            loss_g, g_stats = self.g_phase(fake, game_step)
        if self.G_ema is not None:
            self.update_ema()
        self.step += 1
        out = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **stats, **g_stats}
        if cfg.loss == "ebgan":
            out["margin"] = torch.tensor(margin_at(cfg, game_step))
        if cfg.lr_schedule != "constant":
            out["lr_scale"] = torch.tensor(lr_scale_at(cfg, game_step))
        return out

    @torch.no_grad()
    def update_ema(self) -> None:
        """``ema <- d * ema + (1 - d) * G`` for every weight, with ``d = min(g_ema, (1 + t) / (10 + t))`` at the
        t-th update (the warm-up of TensorFlow's ExponentialMovingAverage: early on, when G changes fastest, the
        average forgets its random start quickly). Buffers (batch-norm statistics) are copied from G."""
        G_ema = self.G_ema
        assert G_ema is not None  # called when g_ema > 0
        self.ema_updates += 1
        t = self.ema_updates
        decay = min(self.cfg.g_ema, (1 + t) / (10 + t))
        for pe, p in zip(G_ema.parameters(), self.G.parameters()):
            pe.lerp_(p.detach(), 1.0 - decay)
        for be, b in zip(G_ema.buffers(), self.G.buffers()):
            be.copy_(b)

    def set_lr_scale(self, scale: float) -> None:
        """Set the optimisers' learning rates to ``scale`` times ``lr_g`` and ``lr_d`` (the lr schedule)."""
        for opt, lr in ((self.opt_g, filled(self.cfg.lr_g, "lr_g")), (self.opt_d, filled(self.cfg.lr_d, "lr_d"))):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    def d_phase(self, game_step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """``d_steps`` discriminator updates; returns the last fake batch (with G's graph), loss and stats."""
        G, D, obj = self.G_run, self.D_run, self.objective
        d_steps = filled(self.cfg.d_steps, "d_steps")
        for k in range(d_steps):
            real = self.next_batch()
            last = k == d_steps - 1
            # The last D step's fake keeps its graph: the G step reuses it instead of running G again.
            with torch.set_grad_enabled(last), self.autocast():
                fake = G(self.noise(real.shape[0]))
            with self.autocast():
                loss_d, stats = obj.d_loss(D, real, fake.detach(), game_step)
            loss_d = self.unlearn(loss_d, stats, game_step)
            self._update(loss_d, self.d_params, self.opt_d, self.scaler_d)
            obj.after_d_step(D)
        obj.after_d_loss(stats)
        return fake, loss_d, stats

    def g_phase(self, fake: Tensor, game_step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """One generator update through the (updated, frozen) discriminator."""
        D = self.D_run
        self.D.requires_grad_(False)  # no weight gradients for D in the G step: less work, D untouched
        try:
            with self.autocast():
                loss_g, g_stats = self.objective.g_loss(D, fake, game_step)
            self._update(loss_g, self.g_params, self.opt_g, self.scaler_g)
        finally:
            self.D.requires_grad_(True)
        return loss_g, g_stats

    # -- sampling --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, seed: int, batch: int = 1000, labels: Tensor | None = None) -> Tensor:
        """``n`` samples from G (its moving average when g_ema > 0) in eval mode with noise from its own
        generator: float ``[n, ...]`` on the CPU. A conditional G draws ``labels`` (default: the classes in
        turn, 0, 1, ..., so that every class has its share)."""
        G = self.G_ema if self.G_ema is not None else self.G
        if self.n_classes and labels is None:
            labels = torch.arange(n) % self.n_classes
        gen = torch.Generator(device=self.device).manual_seed(seed)
        was_training = G.training
        G.eval()
        out = []
        with torch.no_grad(), seeded_noise(G, seed, self.device):
            for i in range(0, n, batch):
                z = torch.randn(min(batch, n - i), self.cfg.z_dim, generator=gen, device=self.device)
                if labels is not None:
                    set_labels(G, labels[i : i + len(z)].to(self.device))
                out.append(G(z).float().cpu())
        G.train(was_training)
        return torch.cat(out)

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step,
            "elapsed": self.elapsed,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "gen_data": self.gen_data.get_state(),
            "gen_noise": self.gen_noise.get_state(),
            "gen_anom": self.gen_anom.get_state(),
            "torch_rng": torch.get_rng_state(),
            "perm": self.perm.cpu(),
            "pos": self.pos,
            "objective": self.objective.state_dict(),
            "threads": self.threads,
            "ema_updates": self.ema_updates,
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.elapsed = float(state["elapsed"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.gen_data.set_state(state["gen_data"])
        self.gen_noise.set_state(state["gen_noise"])
        if "gen_anom" in state:
            self.gen_anom.set_state(state["gen_anom"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.perm = state["perm"].to(self.device)
        self.pos = int(state["pos"])
        self.close_stream()  # streamed data: read on from the restored position
        self.ema_updates = int(state.get("ema_updates", 0))
        self.objective.load_state_dict(state["objective"])
        if not self.cfg.num_threads and "threads" in state and int(state["threads"]) != self.threads:
            # Auto threads: keep the count the run started with (it changes floating-point reduction order,
            # so a resumed run must use it to reach the uninterrupted result); num_threads=N overrides.
            self.threads, self.threads_reason = int(state["threads"]), "auto, kept from the run's start"
            torch.set_num_threads(self.threads)

    def save(self, run_dir: Path, extra: dict[str, Any] | None = None) -> Path:
        """Checkpoint the run (``extra``: the training loop's own state, stored beside the trainer's)."""
        state = self.state_dict()
        if extra:
            state["loop"] = extra
        return save_checkpoint(
            run_dir, self.step, self.nets(), state, to_dict(self.cfg), keep=self.cfg.keep_checkpoints
        )

    def nets(self) -> dict[str, torch.nn.Module]:
        """The networks a checkpoint holds, by the prefix of their weights."""
        nets = {"G": self.G, "D": self.D}
        if self.G_ema is not None:
            nets["G_ema"] = self.G_ema
        return nets

    def load(self, ckpt: Path) -> dict[str, Any]:
        """Restore a checkpoint; returns the training loop's state saved with it (``{}`` if none). A state that
        does not fit this run (damaged, or from another program) is one EbganError naming the checkpoint."""
        load_weights(ckpt, self.nets())
        state = load_state(ckpt)
        try:
            self.load_state_dict(state)
            loop = state.get("loop", {})
            if (
                not isinstance(loop, dict)
                or not isinstance(loop.get("sums", {}), dict)
                or not all(isinstance(v, Tensor) for v in loop.get("sums", {}).values())
            ):
                raise TypeError("the training loop's sums are not a mapping of tensors")
            int(loop.get("count", 0))
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError, OverflowError) as e:
            raise EbganError(
                f"{ckpt}: the checkpoint's state does not fit this run ({type(e).__name__}: "
                f"{' '.join(str(e).split())[:200]}); it is damaged or from another run"
            ) from None
        return loop


# --------------------------------------------------------------------------------------------------------------
# The run: folder checks, lock, resume, signals, progress, logging, samples, plots.


def save_samples(trainer: Trainer, path: Path) -> None:
    """The fixed-noise sample grid (images) or scatter plot (2-D points) as a PNG."""
    from . import plots

    x = trainer.sample(trainer.cfg.n_grid, seed=trainer.cfg.seed + 12345)
    title = f"{trainer.cfg.loss} on {trainer.dataset.name}, step {trainer.step}"
    if trainer.dataset.kind == "image":
        from .images import save_grid

        save_grid(to_uint8(x), path, title=title)
    else:
        plots.scatter_points(trainer.dataset.data[:2500].cpu(), x, path, title=title)


def evaluate_now(trainer: Trainer, data_root: str | None) -> dict[str, float]:
    """Score ``eval_samples`` fresh samples of G with ``ebgan eval``'s metrics (fixed noise seed)."""
    from .evaluate import evaluate

    cfg = trainer.cfg
    points = trainer.dataset.kind == "points"
    n = cfg.eval_samples or (2500 if points else 10000)
    x = trainer.sample(n, seed=cfg.seed + 777)
    arr = x.numpy() if points else to_uint8(x).numpy()
    result = evaluate(arr, cfg.eval_against or cfg.data, data_root, n=n)
    _faults.point("eval")
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and k != "n"}


def _maybe_keep_best(trainer: Trainer, out: Path, scores: dict[str, float], best: dict | None) -> dict | None:
    cfg = trainer.cfg
    if cfg.best_metric is None or cfg.best_metric not in scores:
        return best
    value = scores[cfg.best_metric]
    higher = BEST_METRICS[cfg.best_metric]
    if best is not None and not (value > best["value"] if higher else value < best["value"]):
        return best
    write_checkpoint_dir(out / "checkpoints" / "best", trainer.step, trainer.nets(), trainer.state_dict(), to_dict(cfg))
    best = {"metric": cfg.best_metric, "value": value, "step": trainer.step}
    atomic_write_text(out / "best.json", json.dumps(best) + "\n")
    return best


def _rewind_best(out: Path, step: int) -> dict | None:
    """The best-so-far record as it stood at ``step``: a record from later (the killed run got further) is
    dropped with its checkpoint, so the resumed run re-decides it exactly as the uninterrupted run did."""
    path = out / "best.json"
    if not path.is_file():
        return None
    best = json.loads(path.read_text())
    if best.get("step", 0) <= step:
        return best
    with writing(path):
        path.unlink()
    shutil.rmtree(out / "checkpoints" / "best", ignore_errors=True)
    return None


def _log_value(v: float) -> float:
    """Logged floats keep 6 significant digits: float32 noise such as 0.3000001311 for a margin of 0.3 is
    not information."""
    return float(f"{v:.6g}")


def train(
    cfg: Config,
    out_dir: str | Path,
    data_root: str | None = None,
    resume: bool = False,
    progress: bool = True,
    dataset: Dataset | None = None,
    anomalies: Tensor | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Train (or resume) a run in ``out_dir``; returns a summary. Rank 0 alone writes files and prints.

    ``data_root`` (None: the folder the run started with when resuming, else ``$EBGAN_DATA_ROOT`` or ./data)
    holds ``MNIST/raw/``. ``resume=True`` continues from the newest checkpoint; a folder without one (a run stopped
    before its first checkpoint) or without anything starts from step 0. SIGINT or SIGTERM checkpoints the current step
    and raises :class:`Interrupted`. One process at a time may train in a folder (:class:`RunLock`).
    ``restart=True`` starts a folder that holds no complete checkpoint (a run that failed before its first
    one) again from step 0 under ``cfg``, deleting what that run wrote; a folder with a checkpoint is refused.

    ``dataset`` (instead of ``cfg.data``) and ``anomalies`` (instead of ``cfg.known_anomalies``) pass data in
    memory (the Python API); ``cfg.classes`` and ``cfg.holdout`` apply to it as to a loaded data set. With a
    held-out share, the run ends by writing ``threshold.json`` (see :func:`ebgan.energy.calibration`).
    """
    info = dist.setup(resolve_device(cfg.device, dist.DistInfo()).type)  # NCCL for CUDA, gloo for CPU
    out = Path(out_dir)
    existed = out.is_dir()
    lock = RunLock(out) if info.is_main else None
    ok = False  # finished, or stopped by a signal at a step every rank agreed on
    try:
        if resume and restart:
            raise EbganError("--restart starts a run again from step 0 and --resume continues it: give one")
        if restart and lock is not None:
            lock.acquire()  # nothing may be running in the folder while it is cleared
            if clear_for_restart(out) and progress:
                _stderr(f"ebgan: --restart: cleared {out} (it held no checkpoint)")
        if not resume:
            check_new_run_dir(out)
        if lock is not None and not restart:
            lock.acquire()
        ckpt = None
        if resume and (out / "config.json").is_file():
            check_resume_config(saved_config(out), cfg)
            if info.is_main:
                recover_checkpoints(out)
                remove_stale_temp_files(out)
            dist.barrier(info)
            ckpt = find_checkpoint(out)
        elif resume:
            check_fresh_start(out, clean=info.is_main)  # nothing to resume: a fresh start
        if data_root is None and resume and (out / "data.json").is_file():
            data_root = json.loads((out / "data.json").read_text()).get("data_root")  # where the run started
        try:
            summary = _run(cfg, out, info, data_root, ckpt, progress, dataset, anomalies)
        except Interrupted:
            ok = True
            raise
        ok = True
        return summary
    except WriteFailed as e:
        raise e.with_hint(write_failed_hint(out, e.errno, existed or (lock is not None and lock.held))) from e
    finally:
        if lock is not None:
            lock.release(cleanup=not ok)
        dist.cleanup(wait=ok)


def _run(
    cfg: Config,
    out: Path,
    info: dist.DistInfo,
    data_root: str | None,
    ckpt: Path | None,
    progress: bool,
    dataset: Dataset | None,
    anomalies: Tensor | None,
) -> dict[str, Any]:
    """A run in its phases: the data, the trainer (from ``ckpt`` when resuming), the run folder, the loop with
    its logging and checkpoints, and the end-of-run artefacts."""
    data = _load_data(cfg, data_root, dataset, anomalies)
    trainer = Trainer(cfg, data.train, info, data.anomalies)
    loop: dict[str, Any] = {}
    if ckpt is not None:
        loop = trainer.load(ckpt)
        if trainer.step > trainer.total_steps:
            raise EbganError(f"{out} is at step {trainer.step}, beyond the requested {trainer.total_steps}")
    best = None
    bar = None
    if info.is_main:
        best = _open_run_folder(cfg, out, trainer, data, data_root)
        if progress:
            _announce(cfg, out, trainer, data, ckpt)
            bar = Progress(trainer.total_steps, trainer.step, desc=f"{cfg.loss} {cfg.data}")
    log = _LoopLog(trainer, out, info, data_root, loop, bar, best)
    try:
        _loop(trainer, log, ckpt, out, info)
    finally:
        log.close(failing=sys.exc_info()[1] is not None)
    summary: dict[str, Any] = {
        "run_dir": str(out),
        "steps": trainer.step,
        "seconds": round(trainer.elapsed, 2),
        "threads": trainer.threads,
        "threads_reason": trainer.threads_reason,
    }
    if info.is_main:
        summary.update(_finish(trainer, out, data, log.best))
    return summary


def _load_data(cfg: Config, data_root: str | None, dataset: Dataset | None, anomalies: Tensor | None) -> TrainingData:
    """The run's data: ``dataset`` (the Python API), a streamed image folder, or ``cfg.data`` loaded; then the
    classes kept, the held-out share and the known anomalies (:func:`ebgan.data.training_data`)."""
    if dataset is None and cfg.stream:
        from .data import FOLDER_CHANNELS, FOLDER_IMAGE_SIZE
        from .stream import StreamedImages

        # A Dataset read from disk batch by batch: the same interface where training_data and the Trainer need it
        # (name, kind, labels, len, sample_shape), no data tensor (the configuration refuses what would need one).
        dataset = cast(
            Dataset, StreamedImages(cfg.data, cfg.image_size or FOLDER_IMAGE_SIZE, cfg.channels or FOLDER_CHANNELS)
        )
    elif dataset is None:
        from .data import load_dataset

        dataset = load_dataset(
            cfg.data, data_root, image_size=cfg.image_size, channels=cfg.channels, seed=cfg.seed, download=False
        )
    data = training_data(cfg, dataset, anomalies)  # classes kept, held-out share, known anomalies
    if cfg.anomaly_score == "energy/ink" and data.train.kind != "image":
        raise EbganError(f"anomaly_score=energy/ink needs images; {cfg.data} holds {data.train.kind}")
    return data


def _open_run_folder(
    cfg: Config, out: Path, trainer: Trainer, data: TrainingData, data_root: str | None
) -> dict | None:
    """The run folder as a (re)started run needs it (main rank): ``config.json``, ``samples/``, ``data.json``,
    the metrics log cut back to the step the trainer starts from, and the best-so-far record as it stood then
    (returned)."""
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    # config.json first: a run that could not write it leaves an empty folder, which the same command reuses.
    atomic_write_text(out / "config.json", json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")
    with writing(out / "samples"):
        (out / "samples").mkdir(exist_ok=True)
    # What sampling needs to rebuild the nets without loading the data set, and where the data came from.
    meta = {
        "kind": data.train.kind,
        "name": data.train.name,
        "sample_shape": list(trainer.sample_shape),
        "amp": trainer.amp,
        "data_root": str(resolve_data_root(data_root).resolve()),
        "classes": cfg.classes,
        "n_classes": trainer.n_classes,
        **data.describe(),
    }
    atomic_write_text(out / "data.json", json.dumps(meta) + "\n")
    # Everything logged after the checkpoint we start from is redone (all of it, without a checkpoint).
    truncate_metrics(out / "metrics.jsonl", trainer.step)
    return _rewind_best(out, trainer.step)


def _announce(cfg: Config, out: Path, trainer: Trainer, data: TrainingData, ckpt: Path | None) -> None:
    """The run's first line: what trains on what, where, from which step to which, on how many threads."""
    where = f"from step {trainer.step} ({ckpt.name})" if ckpt is not None else "from step 0"
    amp = f", {trainer.amp} autocast" if trainer.amp != "none" else ""
    d = data.describe()
    subset = f" classes {cfg.classes}," if cfg.classes is not None else ""
    if cfg.classes is not None or d["n_holdout"] or d["n_anomalies"]:
        subset = (
            f" ({subset} {d['n_train']} training samples, {d['n_holdout']} held out, "
            f"{d['n_anomalies']} known anomalies)"
        ).replace("( ", "(")
    total = (
        f"{trainer.total_steps} ({cfg.pretrain_steps} pre-training + {cfg.steps} adversarial)"
        if cfg.pretrain_steps
        else f"{trainer.total_steps}"
    )
    _stderr(
        f"ebgan: training {cfg.loss} on {cfg.data}{subset} in {out} {where} to step {total}; "
        f"{trainer.device.type}, {trainer.threads} thread{'s' if trainer.threads != 1 else ''} "
        f"({trainer.threads_reason}){amp}"
    )


class _LoopLog:
    """What the loop records besides training: the running sums of the logged values since the last row (part
    of the loop's state, so that a run checkpointed between two rows, e.g. by Ctrl-C, logs the same averages
    after --resume), ``metrics.jsonl`` rows and TensorBoard scalars (main rank), evaluation with the best
    checkpoint, sample grids, checkpoints, the progress bar, and the training time between them."""

    def __init__(
        self,
        trainer: Trainer,
        out: Path,
        info: dist.DistInfo,
        data_root: str | None,
        loop: dict[str, Any],
        bar: Progress | None,
        best: dict | None,
    ) -> None:
        self.trainer, self.cfg, self.out, self.info, self.data_root = trainer, trainer.cfg, out, info, data_root
        self.bar, self.best = bar, best
        self.sums: dict[str, Tensor] = dict(loop.get("sums", {}))
        self.count = int(loop.get("count", 0))
        self.t_last = time.perf_counter()
        # whole lines; a failed write raises WriteFailed
        self.log = AppendLog(out / "metrics.jsonl") if info.is_main else None
        self.tb = None
        if info.is_main and self.cfg.tensorboard:
            from .tblog import TensorBoardLog

            self.tb = TensorBoardLog(out, trainer.step)

    def _clock(self) -> None:
        now = time.perf_counter()
        self.trainer.elapsed += now - self.t_last
        self.t_last = now

    def add(self, stats: dict[str, Tensor]) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.float()
        self.count += 1

    def row(self, step: int) -> None:
        """The mean of each logged value since the last row (averaged over ranks) as a ``metrics.jsonl`` row."""
        self._clock()
        row = {"step": step, "time": round(self.trainer.elapsed, 3)}
        for k, v in self.sums.items():
            row[k] = _log_value(float(dist.all_reduce_mean(v / self.count, self.info)))
        self.sums, self.count = {}, 0
        if self.log is not None:  # the main rank
            self.log.write(json.dumps(row) + "\n")
            self.log.flush()
            if self.tb is not None:
                self.tb.scalars(row)
            _faults.point("log-row")
            if self.bar is not None:
                self.bar.values = {k.split("/")[-1]: v for k, v in row.items() if k not in ("step", "time")}

    def evaluate(self, step: int) -> None:
        if self.log is not None:  # G is identical on every rank: rank 0 (the main) scores, the others wait
            scores = evaluate_now(self.trainer, self.data_root)
            eval_row = {"step": step, **{f"eval/{k}": _log_value(v) for k, v in scores.items()}}
            self.log.write(json.dumps(eval_row) + "\n")
            self.log.flush()
            if self.tb is not None:
                self.tb.scalars(eval_row)
            self.best = _maybe_keep_best(self.trainer, self.out, scores, self.best)
        dist.barrier(self.info)

    def samples(self, step: int) -> None:
        path = self.out / "samples" / f"step-{step:08d}.png"
        save_samples(self.trainer, path)
        if self.tb is not None:
            self.tb.image(path, step)

    def checkpoint(self) -> Path | None:
        """A checkpoint of the trainer and of the sums since the last row (main rank; every rank waits)."""
        self._clock()
        path = self.trainer.save(self.out, {"sums": self.sums, "count": self.count}) if self.info.is_main else None
        dist.barrier(self.info)
        return path

    def close(self, failing: bool) -> None:
        """Close the stream, the bar, the log and TensorBoard; while failing (``failing``), a second failure in
        closing must not hide the first."""
        self.trainer.close_stream()
        if self.bar is not None:
            self.bar.close()
        if self.log is not None:
            self.log.close()
        if self.tb is not None:
            with contextlib.suppress(Exception) if failing else contextlib.nullcontext():
                self.tb.close()


def _loop(trainer: Trainer, log: _LoopLog, ckpt: Path | None, out: Path, info: dist.DistInfo) -> None:
    """Train to ``trainer.total_steps``, logging, evaluating, sampling and checkpointing as the config says;
    a loss that is not finite stops the run (:class:`TrainingDiverged`), a signal at a step every rank agrees
    on checkpoints it and raises :class:`Interrupted`."""
    cfg = trainer.cfg
    last_good = ckpt
    stop = torch.zeros(1)
    with StopSignals(quiet=not info.is_main) as signals:
        while trainer.step < trainer.total_steps:
            stats = trainer.train_step()
            _check_finite(stats, trainer.step, last_good)
            log.add(stats)
            step = trainer.step
            last = step == trainer.total_steps
            if step % cfg.log_every == 0 or last:
                log.row(step)
            if cfg.eval_every and (step % cfg.eval_every == 0 or last):
                log.evaluate(step)
            if info.is_main and (step % cfg.sample_every == 0 or last):
                log.samples(step)
            saved = False
            if step % cfg.ckpt_every == 0 or last:
                last_good = log.checkpoint()
                saved = True
            if log.bar is not None:
                log.bar.update(step)
            # Every rank must stop at the same step: agree on whether any of them was signalled.
            stop[0] = float(signals.signum is not None)
            if info.enabled:
                torch.distributed.all_reduce(stop, op=torch.distributed.ReduceOp.MAX)
            if stop[0] > 0 and not last:
                if not saved:
                    last_good = log.checkpoint()
                signum = signals.signum or signal.SIGTERM
                raise Interrupted(
                    f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint "
                    f"{last_good or out / 'checkpoints'}; continue with: ebgan train --out "
                    f"{shlex.quote(str(out))} --resume",
                    signum,
                )


def _check_finite(stats: dict[str, Tensor], step: int, last_good: Path | None) -> None:
    """Stop a run whose loss became NaN or infinite, naming where to go on from."""
    losses_now = torch.stack([v for k, v in stats.items() if k.startswith(("loss", "pretrain"))])
    if bool(torch.isfinite(losses_now).all()):
        return
    if last_good:
        what = (
            f"the last good checkpoint is {last_good}; try a lower learning rate (--set lr=...) "
            f"or amp=none in a new --out"
        )
    else:
        what = (
            "no checkpoint was written: run the same command again with --restart and a lower "
            "learning rate (--set lr=...) or amp=none"
        )
    raise TrainingDiverged(
        f"a loss became NaN or infinite at step {step} "
        f"({', '.join(f'{k}={float(v):.4g}' for k, v in stats.items())}); {what}"
    )


def _finish(trainer: Trainer, out: Path, data: TrainingData, best: dict | None) -> dict[str, Any]:
    """The end-of-run artefacts (main rank): the final sample grid, the training and evaluation curves, the
    energy landscape of 2-D data and the anomaly threshold; returns what the summary adds from them."""
    from . import plots

    cfg, dataset = trainer.cfg, data.train
    summary: dict[str, Any] = {}
    save_samples(trainer, out / "samples.png")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train_rows = [r for r in rows if not any(k.startswith("eval/") for k in r)]
    eval_rows = [r for r in rows if any(k.startswith("eval/") for k in r)]
    plots.training_curves(train_rows, cfg, out / "energy.png")
    if eval_rows:
        plots.eval_curves(eval_rows, out / "eval.png", best)
        summary["eval"] = eval_rows[-1]
    # The energy landscape of 2-D data: D over the plane, point by point. A conditional D has an energy per
    # class, and one with minibatch discrimination none per point (its value depends on the whole batch):
    # no landscape for either. A packed D (pack = m) is drawn on packs of m copies of each point.
    if dataset.kind == "points" and not trainer.n_classes and not cfg.mbd_kernels:
        fake = trainer.sample(2500, seed=cfg.seed + 12345)
        D_plane, what = trainer.D, "D over the plane"
        if isinstance(trainer.D, Packed):  # cfg.pack > 1
            D_plane, what = PackOfCopies(trainer.D), f"D over the plane, packs of {cfg.pack} copies of a point"
        plots.energy_landscape(
            D_plane,
            dataset.data[:2500].cpu(),
            fake,
            out / "landscape.png",
            title=f"{cfg.loss} on {cfg.data}: {what}",
            device=trainer.device,
        )
    if train_rows:
        summary["final"] = train_rows[-1]
    if data.holdout is not None and trainer.objective.head == "ae":
        # The anomaly threshold: held-out normal data never trained on, at the stated false-positive rate.
        held_energy = energies(trainer.D, data.holdout)
        held = anomaly_scores(held_energy, data.holdout, cfg.anomaly_score, ae_energy(trainer.D))
        calib = calibration(held, cfg.threshold_fpr, trainer.step, cfg.anomaly_score)
        atomic_write_text(out / "threshold.json", json.dumps(calib, indent=2) + "\n")
        summary["threshold"] = calib
    return summary


def write_failed_hint(out: Path, errno: int | None, existed: bool = True) -> str:
    """What a training run that could not write a file says to do: where ``--resume`` starts from (the
    newest complete checkpoint, which a failed write never touches) and what to fix first. ``existed``: whether
    the run folder was there when the command started."""
    import errno as en

    if not out.is_dir() and existed:
        return (
            f"the run folder {out} is gone (deleted or moved while the run wrote to it): nothing is left to "
            f"resume; start the run again"
        )
    fixes: dict[int | None, str] = {
        en.ENOSPC: "free space",
        en.EDQUOT: "free space (or raise the quota)",
        en.EIO: "check the disk (`dmesg`; copy the run folder to a sound one if it is failing)",
        en.EROFS: "remount the file system read-write (or copy the run folder elsewhere)",
        en.ENOENT: "recreate the deleted folder",
    }
    fix = fixes.get(errno, "fix the cause")
    if not out.is_dir() or not (out / "config.json").is_file():
        return f"the run had not started writing; {fix} and run the same command again"
    try:
        ckpt = find_checkpoint(out)
    except EbganError:
        ckpt = None
    if ckpt is not None:
        step = int(ckpt.name.split("-")[-1]) if ckpt.name.startswith("step-") else None
        where = (
            f"the last complete checkpoint is step {step}"
            if step is not None
            else f"the last complete checkpoint is {ckpt}"
        )
    else:
        where = "no checkpoint was written yet (--resume starts again from step 0)"
    return f"{where}; {fix} and run again with --resume (ebgan train --out {shlex.quote(str(out))} --resume)"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
