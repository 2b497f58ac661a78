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
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import dist
from .checkpoint import (
    atomic_write_text,
    latest_checkpoint,
    load_state,
    load_weights,
    save_checkpoint,
    write_checkpoint_dir,
)
from .config import BEST_METRICS, Config, from_dict, lr_scale_at, margin_at, to_dict
from .data import Dataset, to_uint8
from .errors import EbganError
from .nets import build_networks
from .objectives import make_objective, pretrain_loss


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

    def __init__(self, cfg: Config, dataset: Dataset, info: dist.DistInfo | None = None) -> None:
        self.cfg, self.dataset = cfg, dataset
        self.info = info or dist.DistInfo()
        self.device = resolve_device(cfg.device, self.info)
        if cfg.num_threads:
            # Small nets on a busy machine: fewer threads than free cores avoid OpenMP barrier stalls.
            torch.set_num_threads(cfg.num_threads)
        self.objective = make_objective(cfg)
        if cfg.pretrain_steps and self.objective.head != "ae":
            raise EbganError(f"pretrain_steps needs an auto-encoder discriminator; loss {cfg.loss} has none")
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.G, self.D = build_networks(cfg, dataset.sample_shape, self.objective.head,
                                       energy=self.objective.energy)
        self.G.to(self.device)
        self.D.to(self.device)
        dist.broadcast_module(self.G, self.info)
        dist.broadcast_module(self.D, self.info)
        torch.manual_seed(cfg.seed + 7919 * self.info.rank)  # dropout masks differ per rank
        self.opt_g = make_optimizer(cfg.optim_g, self.G.parameters(), cfg.lr_g, cfg.beta1, cfg.beta2, self.device)
        self.opt_d = make_optimizer(cfg.optim_d, self.D.parameters(), cfg.lr_d, cfg.beta1, cfg.beta2, self.device)
        self.g_params = list(self.G.parameters())
        self.d_params = list(self.D.parameters())
        self.amp = resolve_amp(cfg.amp, self.device)  # "auto" becomes bf16 or none for this device
        if self.amp == "fp16" and self.device.type != "cuda":
            raise EbganError("amp=fp16 needs a CUDA device; use amp=bf16 on a CPU")
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.gen_data = torch.Generator().manual_seed(cfg.seed)
        self.gen_noise = torch.Generator(device=self.device).manual_seed(cfg.seed + 100_003 * (self.info.rank + 1))
        self.data = dataset.data.to(self.device)
        self.perm = torch.randperm(len(dataset), generator=self.gen_data).to(self.device)
        self.pos = 0
        self.step = 0  # iterations done, pre-training included
        self.elapsed = 0.0  # training seconds over all sessions of this run
        self.total_steps = cfg.pretrain_steps + cfg.steps

    # -- data and noise --------------------------------------------------------------------------------------
    def next_batch(self) -> Tensor:
        """This rank's slice of the next global batch, as float32 (images in [-1, 1])."""
        b, world = self.cfg.batch_size, self.info.world_size
        if self.pos + b * world > len(self.perm):  # new epoch: drop the remainder, reshuffle
            self.perm = torch.randperm(len(self.dataset), generator=self.gen_data).to(self.device)
            self.pos = 0
        start = self.pos + b * self.info.rank
        idx = self.perm[start:start + b]
        self.pos += b * world
        x = self.data[idx]
        return x.float().div_(127.5).sub_(1.0) if self.dataset.kind == "image" else x

    def noise(self, n: int) -> Tensor:
        return torch.randn(n, self.cfg.z_dim, generator=self.gen_noise, device=self.device)

    def autocast(self):
        if self.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _update(self, loss: Tensor, params: list[Tensor], opt, scaler) -> None:
        opt.zero_grad(set_to_none=True)
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
            self._update(loss, self.d_params, self.opt_d, self.scaler_d)
            self.step += 1
            return {"pretrain/energy_real": loss.detach()}

        game_step = self.step - cfg.pretrain_steps
        if cfg.lr_schedule != "constant":
            self.set_lr_scale(lr_scale_at(cfg, game_step))
        fake, loss_d, stats = self.d_phase(game_step)
        loss_g, g_stats = self.g_phase(fake, game_step)
        self.step += 1
        out = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **stats, **g_stats}
        if cfg.loss == "ebgan":
            out["margin"] = torch.tensor(margin_at(cfg, game_step))
        if cfg.lr_schedule != "constant":
            out["lr_scale"] = torch.tensor(lr_scale_at(cfg, game_step))
        return out

    def set_lr_scale(self, scale: float) -> None:
        """Set the optimisers' learning rates to ``scale`` times ``lr_g`` and ``lr_d`` (the lr schedule)."""
        for opt, lr in ((self.opt_g, self.cfg.lr_g), (self.opt_d, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    def d_phase(self, game_step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """``d_steps`` discriminator updates; returns the last fake batch (with G's graph), loss and stats."""
        cfg, G, D, obj = self.cfg, self.G, self.D, self.objective
        for k in range(cfg.d_steps):
            real = self.next_batch()
            last = k == cfg.d_steps - 1
            # The last D step's fake keeps its graph: the G step reuses it instead of running G again.
            with torch.set_grad_enabled(last), self.autocast():
                fake = G(self.noise(real.shape[0]))
            with self.autocast():
                loss_d, stats = obj.d_loss(D, real, fake.detach(), game_step)
            self._update(loss_d, self.d_params, self.opt_d, self.scaler_d)
            obj.after_d_step(D)
        obj.after_d_loss(stats)
        return fake, loss_d, stats

    def g_phase(self, fake: Tensor, game_step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """One generator update through the (updated, frozen) discriminator."""
        D = self.D
        D.requires_grad_(False)  # no weight gradients for D in the G step: less work, D untouched
        try:
            with self.autocast():
                loss_g, g_stats = self.objective.g_loss(D, fake, game_step)
            self._update(loss_g, self.g_params, self.opt_g, self.scaler_g)
        finally:
            D.requires_grad_(True)
        return loss_g, g_stats

    # -- sampling --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, seed: int, batch: int = 1000) -> Tensor:
        """``n`` samples from G in eval mode with noise from its own generator: float ``[n, ...]`` on the CPU."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        was_training = self.G.training
        self.G.eval()
        out = []
        for i in range(0, n, batch):
            z = torch.randn(min(batch, n - i), self.cfg.z_dim, generator=gen, device=self.device)
            out.append(self.G(z).float().cpu())
        self.G.train(was_training)
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
            "torch_rng": torch.get_rng_state(),
            "perm": self.perm.cpu(),
            "pos": self.pos,
            "objective": self.objective.state_dict(),
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
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.perm = state["perm"].to(self.device)
        self.pos = int(state["pos"])
        self.objective.load_state_dict(state["objective"])

    def save(self, run_dir: Path) -> Path:
        return save_checkpoint(run_dir, self.step, {"G": self.G, "D": self.D}, self.state_dict(),
                               to_dict(self.cfg), keep=self.cfg.keep_checkpoints)

    def load(self, ckpt: Path) -> None:
        load_weights(ckpt, {"G": self.G, "D": self.D})
        self.load_state_dict(load_state(ckpt))


# --------------------------------------------------------------------------------------------------------------
# The run: folder checks, resume, progress, logging, samples, plots.

RESUMABLE_CHANGES = {"steps", "log_every", "sample_every", "ckpt_every", "keep_checkpoints", "device",
                     "num_threads"}


def _check_new_run_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise EbganError(f"--out {out} exists and is not a folder")
    if (out / "config.json").exists() or (out / "checkpoints").exists():
        raise EbganError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if out.exists() and any(out.iterdir()):
        raise EbganError(f"--out {out} exists and is not empty; choose another folder")


def saved_config(run_dir: Path) -> Config:
    try:
        return from_dict(json.loads((run_dir / "config.json").read_text()))
    except (OSError, json.JSONDecodeError) as e:
        raise EbganError(f"{run_dir / 'config.json'} is unreadable: {e}") from None


def check_resume_config(saved: Config, cfg: Config) -> None:
    """Refuse to resume under different hyper-parameters (only the run length and cadences may change)."""
    a, b = to_dict(saved), to_dict(cfg)
    diff = [k for k in a if a[k] != b[k] and k not in RESUMABLE_CHANGES]
    if diff:
        detail = ", ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in diff[:5])
        raise EbganError(f"refusing to resume under different hyper-parameters ({detail})")


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (the killed run got further)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            break  # a line cut by the kill ends the readable log
    atomic_write_text(path, "".join(k + "\n" for k in keep))


def save_samples(trainer: Trainer, path: Path) -> None:
    """The fixed-noise sample grid (images) or scatter plot (2-D points) as a PNG."""
    from . import plots

    x = trainer.sample(trainer.cfg.n_grid, seed=trainer.cfg.seed + 12345)
    if trainer.dataset.kind == "image":
        from .images import save_grid

        save_grid(to_uint8(x), path)
    else:
        plots.scatter_points(trainer.dataset.data[:2500].cpu(), x, path)


def evaluate_now(trainer: Trainer, data_root: str | None) -> dict[str, float]:
    """Score ``eval_samples`` fresh samples of G with ``ebgan eval``'s metrics (fixed noise seed)."""
    from .evaluate import evaluate

    cfg = trainer.cfg
    points = trainer.dataset.kind == "points"
    n = cfg.eval_samples or (2500 if points else 10000)
    x = trainer.sample(n, seed=cfg.seed + 777)
    arr = x.numpy() if points else to_uint8(x).numpy()
    result = evaluate(arr, cfg.eval_against or cfg.data, data_root, n=n)
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and k != "n"}


def _maybe_keep_best(trainer: Trainer, out: Path, scores: dict[str, float], best: dict | None) -> dict | None:
    cfg = trainer.cfg
    if cfg.best_metric is None or cfg.best_metric not in scores:
        return best
    value = scores[cfg.best_metric]
    higher = BEST_METRICS[cfg.best_metric]
    if best is not None and not (value > best["value"] if higher else value < best["value"]):
        return best
    write_checkpoint_dir(out / "checkpoints" / "best", trainer.step, {"G": trainer.G, "D": trainer.D},
                         trainer.state_dict(), to_dict(cfg))
    best = {"metric": cfg.best_metric, "value": value, "step": trainer.step}
    atomic_write_text(out / "best.json", json.dumps(best) + "\n")
    return best


def train(cfg: Config, out_dir: str | Path, data_root: str | None = None, resume: bool = False,
          progress: bool = True, dataset: Dataset | None = None) -> dict[str, Any]:
    """Train (or resume) a run in ``out_dir``; returns a summary. Rank 0 alone writes files and prints."""
    from . import plots

    info = dist.setup(resolve_device(cfg.device, dist.DistInfo()).type)  # NCCL for CUDA, gloo for CPU
    out = Path(out_dir)
    ckpt = None
    if resume:
        ckpt = latest_checkpoint(out)
        check_resume_config(saved_config(out), cfg)
    else:
        _check_new_run_dir(out)
    if dataset is None:
        from .data import load_dataset

        dataset = load_dataset(cfg.data, data_root, image_size=cfg.image_size, channels=cfg.channels,
                               seed=cfg.seed, download=False)
    trainer = Trainer(cfg, dataset, info)
    metrics_path = out / "metrics.jsonl"
    if ckpt is not None:
        trainer.load(ckpt)
        if trainer.step > trainer.total_steps:
            raise EbganError(f"{out} is at step {trainer.step}, beyond the requested {trainer.total_steps}")
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")
        # What sampling needs to rebuild the nets without loading the data set.
        atomic_write_text(out / "data.json", json.dumps({"kind": dataset.kind, "name": dataset.name,
                                                          "sample_shape": list(dataset.sample_shape),
                                                          "amp": trainer.amp}) + "\n")
        if ckpt is not None:
            _truncate_metrics(metrics_path, trainer.step)
    bar = None
    if progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=trainer.total_steps, initial=trainer.step, desc=f"{cfg.loss} {cfg.data}",
                   unit="it", dynamic_ncols=True, mininterval=0.5)
    sums: dict[str, Tensor] = {}
    count = 0
    t_last = time.perf_counter()
    log = metrics_path.open("a") if info.is_main else None
    last_good = ckpt
    best = json.loads((out / "best.json").read_text()) if (out / "best.json").is_file() else None
    try:
        while trainer.step < trainer.total_steps:
            stats = trainer.train_step()
            losses_now = torch.stack([v for k, v in stats.items() if k.startswith(("loss", "pretrain"))])
            if not bool(torch.isfinite(losses_now).all()):
                where = f"; the last good checkpoint is {last_good}" if last_good else ""
                raise TrainingDiverged(
                    f"a loss became NaN or infinite at step {trainer.step} "
                    f"({', '.join(f'{k}={float(v):.4g}' for k, v in stats.items())}){where}; "
                    f"try a lower learning rate (lr_d, lr_g) or amp=none")
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v.float()
            count += 1
            step = trainer.step
            if step % cfg.log_every == 0 or step == trainer.total_steps:
                now = time.perf_counter()
                trainer.elapsed += now - t_last
                t_last = now
                row = {"step": step, "time": round(trainer.elapsed, 3)}
                for k, v in sums.items():
                    row[k] = float(dist.all_reduce_mean(v / count, info))
                sums, count = {}, 0
                if info.is_main:
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    if bar is not None:
                        bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in row.items()
                                         if k not in ("step", "time")}, refresh=False)
            if cfg.eval_every and (step % cfg.eval_every == 0 or step == trainer.total_steps):
                if info.is_main:  # G is identical on every rank: rank 0 scores, the others wait
                    scores = evaluate_now(trainer, data_root)
                    log.write(json.dumps({"step": step, **{f"eval/{k}": v for k, v in scores.items()}}) + "\n")
                    log.flush()
                    best = _maybe_keep_best(trainer, out, scores, best)
                dist.barrier(info)
            if info.is_main and (step % cfg.sample_every == 0 or step == trainer.total_steps):
                save_samples(trainer, out / "samples" / f"step-{step:08d}.png")
            if step % cfg.ckpt_every == 0 or step == trainer.total_steps:
                trainer.elapsed += time.perf_counter() - t_last
                t_last = time.perf_counter()
                if info.is_main:
                    last_good = trainer.save(out)
                dist.barrier(info)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
    summary: dict[str, Any] = {"run_dir": str(out), "steps": trainer.step, "seconds": round(trainer.elapsed, 2)}
    if info.is_main:
        save_samples(trainer, out / "samples.png")
        rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
        train_rows = [r for r in rows if not any(k.startswith("eval/") for k in r)]
        eval_rows = [r for r in rows if any(k.startswith("eval/") for k in r)]
        plots.training_curves(train_rows, cfg, out / "energy.png")
        if eval_rows:
            plots.eval_curves(eval_rows, out / "eval.png", best)
            summary["eval"] = eval_rows[-1]
        rows = train_rows
        if dataset.kind == "points":
            fake = trainer.sample(2500, seed=cfg.seed + 12345)
            plots.energy_landscape(trainer.D, dataset.data[:2500].cpu(), fake, out / "landscape.png",
                                   title=f"{cfg.loss} on {cfg.data}: D over the plane", device=trainer.device)
        if rows:
            summary["final"] = rows[-1]
    dist.cleanup()
    return summary
