"""A semi-supervised run in a folder: lock, resume, signals, progress, logging, checkpoints, result.

Folder layout (shared with ``ebgan train`` where it can be)::

    DIR/config.json        the resolved SemisupConfig
    DIR/labelled.json      the labelled subset (training-set indices, count per class)
    DIR/metrics.jsonl      training rows every log_every steps, test-error rows every eval_every steps
    DIR/checkpoints/       weights.safetensors (L.* Ladder, G.* generator) + state.pt, atomic (ebgan.checkpoint)
    DIR/samples.png        ebgan-ln: the generator's images from fixed noise, rewritten at every evaluation
    DIR/result.json        at the end: test_error (percent, 10,000 test images; with --validation N also
                           val_error, and the test images are scored only here; with --no-test never, and
                           test_error is null), labels, model, variant, seed,
                           steps, seconds, images_per_s
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .. import _faults
from .._fileio import AppendLog, atomic_write_text
from ..checkpoint import (
    find_checkpoint,
    load_state,
    load_weights,
    recover_checkpoints,
    save_checkpoint,
)
from ..config import filled
from ..errors import EbganError
from ..folders import expect_kind
from ..progress import Progress
from ..rundir import (
    RunLock,
    check_fresh_start,
    check_new_run_dir,
    clear_for_restart,
    refuse_changes,
    remove_stale_temp_files,
    truncate_metrics,
)
from ..stopping import Interrupted, StopSignals
from ..threads import choose_threads
from .recipe import (
    RESUMABLE,
    BatchStream,
    SemisupConfig,
    SemisupData,
    build_models,
    corrupted_costs,
    energy,
    energy_from_noise,
    ladder_costs,
    load_semisup_data,
    lr_at,
    margin_at,
    resolve_semisup,
    semisup_from_dict,
    test_error,
    to_semisup_dict,
)


class SemisupDiverged(EbganError):
    """A cost became NaN or infinite."""


class SemisupTrainer:
    """The models, optimisers, noise generator and step counter of one run; ``train_step`` advances it."""

    def __init__(self, cfg: SemisupConfig, data: SemisupData) -> None:
        self.cfg, self.data = cfg, data
        self.threads, self.threads_reason = choose_threads(cfg.num_threads)
        self.ladder, self.G = build_models(cfg)
        betas = (filled(cfg.beta1, "beta1"), 0.999)
        # The fused Adam kernel: one pass over each parameter instead of a dozen (Ladder steps measured 10 %
        # faster on one busy CPU thread, where Adam was a fifth of the step; no difference on two idle ones).
        self.opt = torch.optim.Adam(self.ladder.parameters(), lr=cfg.lr, betas=betas, fused=True)
        self.opt_g = (
            torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas, fused=True) if self.G is not None else None
        )
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)  # corruption and generator noise
        n_lab = len(data.labelled)
        self.lab_stream = BatchStream(n_lab, cfg.batch, cfg.seed, "labelled")
        self.unl_stream = BatchStream(len(data.x_train), cfg.batch, cfg.seed, "unlabelled")
        self.x_lab = data.x_train[data.labelled]
        self.y_lab = data.y_train[data.labelled]
        self.step = 0
        self.elapsed = 0.0
        # The Ladder's passes (forward and, through AOTAutograd, backward) as pure functions of tensors; with
        # compile, torch.compile fuses their many small element-wise steps (combinator, batch norm, noise,
        # ReLU) into a few loops. The matrix products are unchanged, so the speed-up is the element-wise share
        # of a step (BENCHMARKS.md, section "semisup"). The first steps wait for the compilation (about a
        # minute on a CPU at full size); the sums are reordered, so a compiled run matches an eager one to
        # float32 rounding, not bit for bit, and resumes exactly only compiled (the setting is not resumable).
        self._costs, self._energy = corrupted_costs, energy_from_noise
        if cfg.compile:
            if not any(shutil.which(c) for c in ("g++", "clang++", "c++")):
                raise EbganError(
                    "--compile needs a C++ compiler for torch.compile's CPU code (g++ or clang++ "
                    "on the PATH); install one or train without --compile"
                )
            self._costs = torch.compile(corrupted_costs, fullgraph=True, dynamic=False)
            self._energy = torch.compile(energy_from_noise, fullgraph=True, dynamic=False)

    def nets(self) -> dict[str, torch.nn.Module]:
        return {"L": self.ladder, **({"G": self.G} if self.G is not None else {})}

    def train_step(self) -> dict[str, float]:
        cfg, step = self.cfg, self.step
        weights = filled(cfg.weights, "weights")
        lr = lr_at(cfg, step)
        for opt in (self.opt, self.opt_g):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr
        li, ui = self.lab_stream.at(step), self.unl_stream.at(step)
        x_lab, y_lab, x_unl = self.x_lab[li], self.y_lab[li], self.data.x_train[ui]
        self.ladder.train()
        stats: dict[str, float] = {"lr": lr}
        if self.G is None:
            ce, denoise, real, _ = ladder_costs(
                self.ladder, x_lab, y_lab, x_unl, weights, cfg.noise_std, self.gen, fn=self._costs
            )
            loss = ce + denoise
        else:
            z = torch.randn(cfg.batch, cfg.z_dim, generator=self.gen)
            self.G.train()
            fake = self.G(z)
            ce, denoise, real, fake_cost = ladder_costs(
                self.ladder, x_lab, y_lab, x_unl, weights, cfg.noise_std, self.gen, fake.detach(), fn=self._costs
            )
            m = margin_at(cfg, step)
            assert fake_cost is not None  # ebgan-ln: the bottom weight is > 0
            e_fake = weights[0] * fake_cost
            hinge = torch.relu(m - e_fake).mean()
            loss = ce + denoise + hinge
            stats.update({"margin": m, "loss/hinge": hinge.item(), "energy/fake": e_fake.mean().item()})
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        stats.update(
            {
                "loss/ce": ce.item(),
                "loss/denoise": denoise.item(),
                "energy/real": weights[0] * real.mean().item() if real is not None else 0.0,
            }
        )
        if self.G is not None:
            # The generator's step: a fresh corrupted pass of its images through the updated Ladder.
            e_g = energy(self.ladder, fake, weights[0], cfg.noise_std, self.gen, fn=self._energy).mean()
            opt_g = self.opt_g
            assert opt_g is not None  # made with G
            opt_g.zero_grad(set_to_none=True)
            e_g.backward(inputs=list(self.G.parameters()))
            opt_g.step()
            stats["loss/g"] = e_g.item()
        self.step += 1
        return stats

    @torch.no_grad()
    def save_samples(self, path: Path, n: int = 100) -> None:
        """EBGAN-LN: a grid of ``n`` generated images from fixed noise (the same at every call)."""
        if self.G is None:
            return
        from ..images import save_grid

        z = torch.randn(n, self.cfg.z_dim, generator=torch.Generator().manual_seed(self.cfg.seed + 12345))
        self.G.eval()
        x = self.G(z).reshape(n, 1, 28, 28)
        self.G.train()
        save_grid((x * 255).round().clamp(0, 255).to(torch.uint8), path)

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "opt": self.opt.state_dict(),
            "opt_g": self.opt_g.state_dict() if self.opt_g is not None else {},
            "gen": self.gen.get_state(),
            "threads": self.threads,
        }

    def load(self, ckpt: Path) -> dict[str, Any]:
        load_weights(ckpt, self.nets())
        state = load_state(ckpt)
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.opt.load_state_dict(state["opt"])
        if self.opt_g is not None:
            self.opt_g.load_state_dict(state["opt_g"])
        self.gen.set_state(state["gen"])
        if not self.cfg.num_threads and int(state.get("threads", self.threads)) != self.threads:
            # Auto threads: keep the run's first count (it changes the order of floating-point sums).
            self.threads, self.threads_reason = int(state["threads"]), "auto, kept from the run's start"
            torch.set_num_threads(self.threads)
        return state.get("loop", {})

    def save(self, out: Path, loop: dict[str, Any]) -> Path:
        return save_checkpoint(
            out, self.step, self.nets(), {**self.state_dict(), "loop": loop}, to_semisup_dict(self.cfg)
        )


def saved_semisup_config(out: str | Path) -> SemisupConfig:
    path = Path(out) / "config.json"
    expect_kind(out, "semisup", "ebgan semisup")
    try:
        return semisup_from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as e:
        raise EbganError(f"{path} is not a semi-supervised run's configuration: {e}") from None


def _saved_data_root(out: Path) -> str | None:
    try:
        root = json.loads((out / "data.json").read_text()).get("data_root")
    except (OSError, ValueError, AttributeError) as e:
        raise EbganError(f"{out / 'data.json'} is unreadable: {e}; pass --data-root") from None
    return str(root) if root else None


def _check_resume(saved: SemisupConfig, cfg: SemisupConfig) -> None:
    refuse_changes(to_semisup_dict(saved), to_semisup_dict(cfg), RESUMABLE, "settings")


def semisup(
    cfg: SemisupConfig,
    out_dir: str | Path,
    data_root: str | None = None,
    resume: bool = False,
    progress: bool = True,
    data: SemisupData | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Train (or resume) a semi-supervised run in ``out_dir``; returns the result (also ``result.json``).

    ``resume=True`` continues from the newest checkpoint (a folder without one starts from step 0);
    SIGINT/SIGTERM checkpoint the finished step and raise :class:`ebgan.stopping.Interrupted`. ``data``
    passes the data in memory (tests); otherwise MNIST is read from ``data_root`` (on resume: the run's own, by
    default). ``restart=True`` starts a folder without a complete checkpoint again from step 0 under ``cfg``.
    """
    cfg = resolve_semisup(cfg)
    out = Path(out_dir)
    lock = RunLock(out)
    ok = False
    try:
        if resume and restart:
            raise EbganError("--restart starts a run again from step 0 and --resume continues it: give one")
        if restart:
            lock.acquire()  # nothing may be running in the folder while it is cleared
            if clear_for_restart(out) and progress:
                _stderr(f"ebgan: --restart: cleared {out} (it held no checkpoint)")
        if not resume:
            check_new_run_dir(out)
        if not restart:
            lock.acquire()
        ckpt = None
        if resume and (out / "config.json").is_file():
            _check_resume(saved_semisup_config(out), cfg)
            recover_checkpoints(out)
            remove_stale_temp_files(out)
            ckpt = find_checkpoint(out)
        elif resume:
            check_fresh_start(out)
        if data is not None and cfg.validation and data.x_val is None:
            raise EbganError("validation > 0 needs data with x_val/y_val (load_semisup_data(..., validation=N))")
        if data is None:
            if data_root is None and resume and (out / "data.json").is_file():
                data_root = _saved_data_root(out)  # where the run started, as `ebgan train --resume` does
            data = load_semisup_data(data_root, cfg.labels, cfg.seed, cfg.validation)
            from ..data import resolve_data_root

            root = str(resolve_data_root(data_root).resolve())
        else:
            root = None
        try:
            result = _run(cfg, out, data, ckpt, progress, root)
        except Interrupted:
            ok = True
            raise
        ok = True
        return result
    finally:
        lock.release(cleanup=not ok)


def _run(
    cfg: SemisupConfig, out: Path, data: SemisupData, ckpt: Path | None, progress: bool, data_root: str | None
) -> dict[str, Any]:
    trainer = SemisupTrainer(cfg, data)
    steps = filled(cfg.steps, "steps")
    loop: dict[str, Any] = {}
    if ckpt is not None:
        loop = trainer.load(ckpt)
        if trainer.step > steps:
            raise EbganError(f"{out} is at step {trainer.step}, beyond the requested {steps}")
    atomic_write_text(out / "config.json", json.dumps(to_semisup_dict(cfg), indent=2, sort_keys=True) + "\n")
    if data_root is not None:  # where MNIST was read: --resume reads it there again
        atomic_write_text(out / "data.json", json.dumps({"data": "mnist", "data_root": data_root}) + "\n")
    counts = torch.bincount(data.y_train[data.labelled], minlength=cfg.layers[-1]).tolist()
    lab = {"seed": cfg.seed, "per_class": counts, "indices": data.labelled.tolist()}
    if data.val_index is not None:  # the labelled indices then count the training images kept, in order
        lab["validation_indices"] = data.val_index.tolist()
    atomic_write_text(out / "labelled.json", json.dumps(lab) + "\n")
    metrics_path = out / "metrics.jsonl"
    truncate_metrics(metrics_path, trainer.step)
    say = _stderr
    bar = None
    if progress:
        where = f"from step {trainer.step}" if ckpt is not None else "from step 0"
        say(
            f"ebgan: semi-supervised {cfg.model} ({cfg.variant} cost) with {cfg.labels} labels, seed {cfg.seed}, "
            f"in {out} {where} to step {steps}; {trainer.threads} thread{'s' if trainer.threads != 1 else ''} "
            f"({trainer.threads_reason})"
        )
        if not cfg.compile and steps - trainer.step >= 10000:
            say(
                "ebgan: hint: a fresh run with --compile trains faster after about a minute of compilation "
                "(README, 'Semi-supervised MNIST')"
            )
        bar = Progress(steps, trainer.step, desc=f"{cfg.model} {cfg.labels} labels")
        say = bar.write
    sums: dict[str, float] = dict(loop.get("sums", {}))
    count = int(loop.get("count", 0))
    last_error = loop.get("last_error")
    split = "val" if cfg.validation else "test"
    t_last = time.perf_counter()

    def checkpoint() -> Path:
        nonlocal t_last
        trainer.elapsed += time.perf_counter() - t_last
        t_last = time.perf_counter()
        return trainer.save(out, {"sums": sums, "count": count, "last_error": last_error})

    log = AppendLog(metrics_path)  # whole lines; a failed write raises WriteFailed (one line, exit 3)
    try:
        with StopSignals() as signals:
            while trainer.step < steps:
                stats = trainer.train_step()
                if not all(v == v and abs(v) != float("inf") for v in stats.values()):
                    kept = (out / "checkpoints" / "latest").is_file()
                    hint = (
                        "try a lower --lr in a new --out"
                        if kept
                        else "no checkpoint was written: run the same command again with --restart and a lower --lr"
                    )
                    raise SemisupDiverged(
                        f"a cost became NaN or infinite at step {trainer.step} "
                        f"({', '.join(f'{k}={v:.4g}' for k, v in stats.items())}); {hint}"
                    )
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                step = trainer.step
                if step % cfg.log_every == 0 or step == steps:
                    now = time.perf_counter()
                    trainer.elapsed += now - t_last
                    t_last = now
                    row = {
                        "step": step,
                        "time": round(trainer.elapsed, 3),
                        **{k: float(f"{v / count:.6g}") for k, v in sums.items()},
                    }
                    sums, count = {}, 0
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    _faults.point("log-row")
                    if bar is not None:
                        bar.values = {k.split("/")[-1]: v for k, v in row.items() if k in ("loss/ce", "loss/denoise")}
                        if last_error is not None:
                            bar.values[f"{split}_err%"] = last_error
                if step % cfg.eval_every == 0 or step == steps:
                    # With a validation split the run watches the validation error only: the test images are
                    # scored once, at the end (result.json), so nothing is chosen by looking at them.
                    last_error = test_error(trainer.ladder, data, split)
                    trainer.save_samples(out / "samples.png")
                    log.write(json.dumps({"step": step, f"eval/{split}_error": round(last_error, 4)}) + "\n")
                    log.flush()
                    if bar is not None:
                        bar.values[f"{split}_err%"] = last_error
                saved = False
                if step % cfg.ckpt_every == 0 or step == steps:
                    checkpoint()
                    saved = True
                if bar is not None:
                    bar.update(step)
                if signals.signum is not None and step < steps:
                    path = checkpoint() if not saved else out / "checkpoints"
                    raise Interrupted(
                        f"stopped by {signal.Signals(signals.signum).name} at step {step}; "
                        f"checkpoint in {path}; continue with: ebgan semisup --out {shlex.quote(str(out))} --resume",
                        signals.signum,
                    )
    finally:
        if bar is not None:
            bar.close()
        log.close()
    if last_error is None:  # resumed from the final checkpoint of a finished run
        last_error = test_error(trainer.ladder, data, split)
    extra = {}
    if cfg.validation:
        extra = {"val_error": round(last_error, 4), "validation": cfg.validation}
        # The test images' one look, at the end; none at all for a run that only chooses settings.
        last_error = test_error(trainer.ladder, data) if cfg.score_test else None
    result = {
        "test_error": None if last_error is None else round(last_error, 4),
        **extra,
        "labels": cfg.labels,
        "model": cfg.model,
        "variant": cfg.variant,
        "seed": cfg.seed,
        "steps": trainer.step,
        "seconds": round(trainer.elapsed, 2),
        "threads": trainer.threads,
        "images_per_s": round(
            trainer.step * cfg.batch * (2 if trainer.G is None else 3) / max(trainer.elapsed, 1e-9), 1
        ),
    }
    atomic_write_text(out / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
