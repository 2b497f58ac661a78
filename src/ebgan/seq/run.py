"""Sequence runs in a folder: train (lock, resume, signals, progress, metrics, checkpoints, calibration),
score, and feedback updates that are kept, resumable and auditable.

Folder layout::

    RUN/config.json          the SeqConfig, with "kind": "seq" (and the data files' absolute paths)
    RUN/data.json            the data files' SHA-256 (a resumed run refuses changed data)
    RUN/vocab.json           the keys seen in training (the model's indices 0..n-1)
    RUN/holdout.txt          the held-out normal sessions (session file) the threshold is calibrated on
    RUN/normal_pairs.pt      the distinct (history, next key) pairs of the training sessions, int64 [M, window+1]
    RUN/metrics.jsonl        one row per log_every epochs: step, epoch, time, loss, hinge, energy of the anomalies
    RUN/checkpoints/         M.* weights + state.pt (optimiser, step, elapsed), atomic (ebgan.checkpoint)
    RUN/threshold.json       at the end: the threshold of every energy at the run's false-positive rate
    RUN/result.json          at the end: steps, seconds, pairs per second, holdout energies
    RUN/updates/NNN/         one folder per feedback update (see :func:`update_run`)

The model a run scores with is the newest finished update's, or the training's last checkpoint when there is
none. Thresholds stay those of the training's calibration: an update changes the model, not the operator's
threshold (``update.json`` says what the update did to the held-out normal sessions).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._fileio import AppendLog, atomic_write_bytes, atomic_write_text
from ..checkpoint import (
    find_checkpoint,
    load_state,
    load_weights,
    recover_checkpoints,
    save_checkpoint,
)
from ..energy import threshold_at_fpr
from ..errors import EbganError
from ..folders import expect_kind
from ..losses import unlearning_loss
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
from .config import (
    RESUMABLE,
    SeqConfig,
    check_config,
    hinge_energy,
    seq_from_dict,
    to_seq_dict,
)
from .data import (
    Session,
    Vocab,
    distinct,
    distinct_windows,
    read_sessions,
    windows,
    write_session_file,
)
from .model import ENERGIES, GRADED, NextKeyLSTM, energies, pool, surprise

SEQ_FILES = ("vocab.json", "holdout.txt", "normal_pairs.pt", "threshold.json", "updates")


# ------------------------------------------------------------------------------------------------------ data


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_training_sessions(cfg: SeqConfig) -> tuple[list[Session], list[Session]]:
    """The normal and the known anomalous sessions of ``cfg.data`` (rows labelled 1 in a CSV's label column are
    anomalies) and ``cfg.anomalies``."""
    if cfg.data is None:
        raise EbganError("no training data: pass --data FILE (a session file or a CSV)")
    s = read_sessions(cfg.data, cfg.column, cfg.label_column)
    if s.labels is not None:
        normal = [k for k, y in zip(s.keys, s.labels) if y == 0]
        anomalies = [k for k, y in zip(s.keys, s.labels) if y == 1]
    else:
        normal, anomalies = list(s.keys), []
    if cfg.anomalies is not None:
        a_col = cfg.column if Path(cfg.anomalies).suffix.lower() == ".csv" else "session"
        anomalies += read_sessions(cfg.anomalies, a_col).keys
    if not normal:
        raise EbganError(f"{cfg.data} holds no normal session to train on")
    return normal, anomalies


def split_holdout(sessions: list[Session], holdout: float, seed: int) -> tuple[list[Session], list[Session]]:
    """(training, held-out) sessions: a seeded share ``holdout`` of them held out (at least one when
    ``holdout > 0``, and at least one left to train on), each part in file order."""
    n = len(sessions)
    k = min(n - 1, max(1, round(holdout * n))) if holdout > 0 and n > 1 else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    held = set(perm[:k])
    return [s for i, s in enumerate(sessions) if i not in held], [s for i, s in enumerate(sessions) if i in held]


# ----------------------------------------------------------------------------------------------------- model


def build_model(cfg: SeqConfig, n_keys: int) -> NextKeyLSTM:
    """The predictor with weights drawn from ``cfg.seed`` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return NextKeyLSTM(n_keys, cfg.hidden, cfg.layers, cfg.eos)


def novel_mask(h: torch.Tensor, t: torch.Tensor, normal: set[tuple[int, ...]]) -> torch.Tensor:
    """True for the positions whose (history, next key) pair is not in ``normal`` (pairs as tuples
    ``history + (target,)``)."""
    rows = torch.cat([h, t[:, None]], 1).tolist()
    return torch.tensor([tuple(r) not in normal for r in rows], dtype=torch.bool)


def pair_set(h: torch.Tensor, t: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(r) for r in torch.cat([h, t[:, None]], 1).tolist()}


class _AnomalyWindows:
    """The positions of the distinct known anomalous sessions, which of them are **novel** (see
    :func:`anomaly_hinge`), and the seeded cycle the sessions are drawn in. Sessions without a novel position
    cannot be told from normal ones by the model's windows and are left out (``skipped``)."""

    def __init__(
        self, sessions: list[Session], vocab: Vocab, cfg: SeqConfig, seed: int, normal: set[tuple[int, ...]]
    ) -> None:
        uniq = distinct(sessions)[0]
        h, t, sid = windows(uniq, vocab, cfg.window, cfg.eos)
        novel = novel_mask(h, t, normal) if len(t) else torch.zeros(0, dtype=torch.bool)
        used = torch.unique(sid[novel])
        self.skipped = len(uniq) - len(used)
        self.sessions = [uniq[i] for i in used.tolist()]
        keep = torch.isin(sid, used)
        self.h, self.t, self.novel = h[keep], t[keep], novel[keep]
        self.sid = torch.searchsorted(used, sid[keep])
        self.n = len(self.sessions)
        self.perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))

    def batch(self, step: int, size: int) -> torch.Tensor:
        pos = (step * size + torch.arange(min(size, self.n))) % self.n
        return torch.unique(self.perm[pos])

    def select(self, sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = torch.isin(self.sid, sel)
        return self.h[mask], self.t[mask], torch.searchsorted(sel, self.sid[mask]), self.novel[mask]


def anomaly_hinge(
    model: NextKeyLSTM,
    h: torch.Tensor,
    t: torch.Tensor,
    sid: torch.Tensor,
    n: int,
    kind: str,
    margin: float,
    novel: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unlearning on known anomalous sessions: ``ebgan.losses.unlearning_loss`` (``mean max(0, m - E(a))``)
    on the session energies ``E(a)`` of kind ``kind`` pooled over the session's **novel** positions only
    (``novel``, default all): those whose (history, next key) pair never occurs in the normal sessions.

    Why novel positions: an anomalous session shares most of its windows with normal ones (an HDFS block that
    fails still opens, allocates and writes like the others). A hinge on every window would push up the
    surprise of those normal transitions against the normal loss (how the unbounded unlearning loss
    "explodes", Du et al. 2019), and a hinge on the whole session's largest surprise is met most cheaply the
    same way: by making a position every session shares (the first key) surprising, which flags every normal
    session (measured on a tiny model: the normal session's energy went from 0.5 to 6.3 nats). Why pooled over
    them only: with ``mean``, a whole-session mean moved through its few novel positions asks each of them for
    many times the margin (measured on HDFS: one missed session fed back pushed ~50 normal sessions of the next
    chunk over the threshold); over the novel positions, each is asked for about the margin. Only those
    positions go through the model (an HDFS session has a few among dozens). Returns (hinge, E)."""
    if novel is not None:
        h, t, sid = h[novel], t[novel], sid[novel]
    e = pool(surprise(model(h), t), sid, n, kind)
    return unlearning_loss(e, margin), e


def threshold_of(values: np.ndarray, fpr: float, scale: float = 1.0) -> float:
    """The threshold of a graded energy from held-out normal energies ``values``: ``scale`` times the energy
    that leaves a share ``fpr`` of them above it (:func:`ebgan.energy.threshold_at_fpr`). What
    ``threshold.json`` holds and what the default margin is a multiple of."""
    return float(scale * threshold_at_fpr(values, fpr))


class SeqTrainer:
    """The model, optimiser and step counter of one run; ``train_step`` advances it. Batch ``i`` of epoch
    ``e`` is a function of the seed, ``e`` and ``i`` only, so a run resumed at any step repeats the
    uninterrupted one bit for bit."""

    def __init__(
        self,
        cfg: SeqConfig,
        vocab: Vocab,
        train: list[Session],
        anomalies: list[Session],
        reference: list[Session] | None = None,
    ) -> None:
        self.cfg, self.vocab = cfg, vocab
        # the normal sessions whose energy sets the default margin: the held-out ones, else the training ones
        self.reference = distinct(reference or train)[0]
        self.margin: float | None = None
        self.threads, self.threads_reason = choose_threads(cfg.num_threads)
        self.model = build_model(cfg, vocab.n)
        self.h, self.t, self.count = distinct_windows(train, vocab, cfg.window, cfg.eos)
        self.w = self.count.float() if cfg.weighting == "count" else torch.ones(len(self.t))
        self.anom = (
            _AnomalyWindows(anomalies, vocab, cfg, cfg.seed + 2, pair_set(self.h, self.t)) if anomalies else None
        )
        if self.anom is not None and self.anom.n == 0:
            self.anom = None
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.steps_per_epoch = max(1, math.ceil(len(self.t) / cfg.batch))
        self.total = cfg.epochs * self.steps_per_epoch
        self.step, self.elapsed = 0, 0.0
        self._perm: tuple[int, torch.Tensor] | None = None

    def batch_at(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.steps_per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
            self._perm = (epoch, torch.randperm(len(self.t), generator=g))
        return self._perm[1][i * self.cfg.batch : (i + 1) * self.cfg.batch]

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        idx = self.batch_at(self.step)
        self.model.train()
        ce = F.cross_entropy(self.model(self.h[idx]), self.t[idx], reduction="none")
        w = self.w[idx]
        loss = (w * ce).sum() / w.sum()
        stats = {"loss": loss.item()}
        if self.anom is not None and cfg.anomaly_weight > 0:
            if self.margin is None or self.step % self.steps_per_epoch == 0:
                now = self.current_margin()
                # never raised (cfg.margin None): see current_margin
                self.margin = now if self.margin is None or cfg.margin is not None else min(self.margin, now)
            sel = self.anom.batch(self.step, cfg.anomaly_batch)
            h, t, sid, novel = self.anom.select(sel)
            hinge, e = anomaly_hinge(self.model, h, t, sid, len(sel), hinge_energy(cfg), self.margin, novel)
            loss = loss + cfg.anomaly_weight * hinge
            stats.update({"hinge": hinge.item(), "energy/anomaly": e.mean().item(), "margin": self.margin})
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return stats

    def current_margin(self) -> float:
        """The margin of the hinge now: ``cfg.margin`` when set, else ``cfg.margin_scale`` times the threshold
        the reference normal sessions' energies (hinge kind, current weights) give at ``cfg.fpr``. The trainer
        recomputes it at the start of every epoch and keeps the smaller of it and the margin so far (it follows
        the threshold down as the model learns the normal sessions, never up), and keeps it in the checkpoint (a
        resumed run uses the same). A margin that also followed the threshold up ran away on HDFS: the hinge
        raised the held-out normal sessions' energies too, hence the threshold, hence the margin (2.7 -> 70 nats
        in 28 epochs at 1 x the threshold, the normal loss 2.4 -> 12)."""
        cfg = self.cfg
        if cfg.margin is not None:
            return float(cfg.margin)
        kind = hinge_energy(cfg)
        e = energies(self.model, self.vocab, self.reference, cfg.window, (kind,), cfg.g)[kind]
        return float(cfg.margin_scale * threshold_of(e, cfg.fpr, cfg.threshold_scale))

    def load(self, ckpt: Path) -> None:
        load_weights(ckpt, {"M": self.model})
        state = load_state(ckpt)
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.margin = float(state["margin"]) if state.get("margin") is not None else None
        self.opt.load_state_dict(state["opt"])
        if not self.cfg.num_threads and int(state.get("threads", self.threads)) != self.threads:
            self.threads, self.threads_reason = int(state["threads"]), "auto, kept from the run's start"
            torch.set_num_threads(self.threads)

    def save(self, out: Path) -> Path:
        state = {
            "step": self.step,
            "elapsed": self.elapsed,
            "opt": self.opt.state_dict(),
            "threads": self.threads,
            "margin": self.margin,
        }
        return save_checkpoint(out, self.step, {"M": self.model}, state, to_seq_dict(self.cfg))


# ----------------------------------------------------------------------------------------------------- train


def saved_seq_config(out: str | Path) -> SeqConfig:
    """The configuration a sequence run was started with."""
    path = Path(out) / "config.json"
    expect_kind(out, "seq", "ebgan seq")
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise EbganError(f"{path} is not readable: {e}") from None
    if not isinstance(d, dict) or d.get("kind") != "seq":
        raise EbganError(f'{out} is not a sequence run of `ebgan seq train` (its config.json has no "kind": "seq")')
    try:
        return seq_from_dict(d)
    except TypeError as e:
        raise EbganError(f"{path} is not a sequence run's configuration: {e}") from None


def _absolute(cfg: SeqConfig) -> SeqConfig:
    return replace(
        cfg,
        data=str(Path(cfg.data).resolve()) if cfg.data else None,
        anomalies=str(Path(cfg.anomalies).resolve()) if cfg.anomalies else None,
    )


def train_seq(
    cfg: SeqConfig,
    out_dir: str | Path,
    resume: bool = False,
    restart: bool = False,
    progress: bool = True,
    sessions: list[Session] | None = None,
    anomalies: list[Session] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a sequence run in ``out_dir``; returns the result (also ``result.json``).

    The data are ``cfg.data`` (and ``cfg.anomalies``), or ``sessions`` (and ``anomalies``) passed in memory,
    which a resumed run must be given again. ``resume=True`` continues from the newest checkpoint under the
    saved configuration: only ``epochs``, ``log_every``, ``ckpt_every`` and ``num_threads`` may differ.
    SIGINT/SIGTERM checkpoint the finished step and raise :class:`ebgan.stopping.Interrupted`.
    ``restart=True`` starts a folder that holds no checkpoint again.
    """
    cfg = check_config(_absolute(cfg))
    out = Path(out_dir)
    lock = RunLock(out)
    ok = False
    try:
        if resume and restart:
            raise EbganError("--restart starts a run again from step 0 and --resume continues it: give one")
        if restart:
            lock.acquire()
            removed = clear_for_restart(out)
            for name in SEQ_FILES:
                p = out / name
                if p.is_file():
                    p.unlink()
                    removed.append(name)
            if removed and progress:
                _stderr(f"ebgan: --restart: cleared {out} (it held no checkpoint)")
        if not resume:
            check_new_run_dir(out)
        if not restart:
            lock.acquire()
        ckpt = None
        if resume and (out / "config.json").is_file():
            refuse_changes(to_seq_dict(saved_seq_config(out)), to_seq_dict(cfg), RESUMABLE, "settings")
            recover_checkpoints(out)
            remove_stale_temp_files(out)
            ckpt = find_checkpoint(out)
        elif resume:
            check_fresh_start(out)
        if sessions is None:
            normal, anom = load_training_sessions(cfg)
            files = {"data": cfg.data, "anomalies": cfg.anomalies}
            sums = {k: _sha256(v) for k, v in files.items() if v}
            if ckpt is not None and (out / "data.json").is_file():
                old = json.loads((out / "data.json").read_text()).get("sha256", {})
                changed = [files[k] for k in sums if old.get(k) not in (None, sums[k])]
                if changed:
                    raise EbganError(
                        f"{changed[0]} changed since the run started (its SHA-256 differs); a resumed "
                        f"run trains on the data it started with"
                    )
        else:
            normal, anom, sums = list(sessions), list(anomalies or []), {}
            if not normal:
                raise EbganError("no normal session to train on")
        try:
            result = _run(cfg, out, normal, anom, ckpt, progress, sums)
        except Interrupted:
            ok = True
            raise
        ok = True
        return result
    finally:
        lock.release(cleanup=not ok)


def _run(
    cfg: SeqConfig,
    out: Path,
    normal: list[Session],
    anom: list[Session],
    ckpt: Path | None,
    progress: bool,
    sums: dict[str, str],
) -> dict[str, Any]:
    train, held = split_holdout(normal, cfg.holdout, cfg.seed)
    vocab = Vocab.from_sessions(train)
    trainer = SeqTrainer(cfg, vocab, train, anom, held)
    if ckpt is not None:
        trainer.load(ckpt)
        if trainer.step > trainer.total:
            raise EbganError(
                f"{out} is at step {trainer.step}, beyond the requested {cfg.epochs} epochs ({trainer.total} steps)"
            )
    atomic_write_text(out / "config.json", json.dumps(to_seq_dict(cfg), indent=2, sort_keys=True) + "\n")
    atomic_write_text(
        out / "data.json",
        json.dumps(
            {"sha256": sums, "normal": len(normal), "anomalies": len(anom), "train": len(train), "holdout": len(held)},
            indent=2,
        )
        + "\n",
    )
    atomic_write_text(out / "vocab.json", json.dumps({"keys": vocab.keys}) + "\n")
    write_session_file(out / "holdout.txt", held)
    buf = io.BytesIO()
    torch.save(torch.cat([trainer.h, trainer.t[:, None]], 1), buf)
    atomic_write_bytes(out / "normal_pairs.pt", buf.getvalue())  # what a feedback update keeps normal
    metrics_path = out / "metrics.jsonl"
    truncate_metrics(metrics_path, trainer.step)
    say, bar = _stderr, None
    spe = trainer.steps_per_epoch
    if progress:
        where = f"from step {trainer.step}" if ckpt is not None else "from step 0"
        say(
            f"ebgan: sequence run in {out} {where}: {len(train)} normal sessions ({len(trainer.t)} distinct "
            f"next-key pairs, {vocab.n} keys), {len(held)} held out, {len(anom)} known anomalous; {cfg.epochs} "
            f"epochs of {spe} steps; {trainer.threads} thread{'s' if trainer.threads != 1 else ''} "
            f"({trainer.threads_reason})"
        )
        bar = Progress(trainer.total, trainer.step, desc="seq")
        say = bar.write
    sums_log: dict[str, float] = {}
    count = 0
    t_last = time.perf_counter()

    def checkpoint() -> Path:
        nonlocal t_last
        trainer.elapsed += time.perf_counter() - t_last
        t_last = time.perf_counter()
        return trainer.save(out)

    log = AppendLog(metrics_path)  # whole lines; a failed write raises WriteFailed (one line, exit 3)
    try:
        with StopSignals() as signals:
            while trainer.step < trainer.total:
                stats = trainer.train_step()
                if not all(math.isfinite(v) for v in stats.values()):
                    raise EbganError(
                        f"the loss became NaN or infinite at step {trainer.step}; try a lower --lr in a new --out"
                    )
                for k, v in stats.items():
                    sums_log[k] = sums_log.get(k, 0.0) + v
                count += 1
                step = trainer.step
                epoch_end = step % spe == 0
                saved = False
                if epoch_end and ((step // spe) % cfg.log_every == 0 or step == trainer.total):
                    now = time.perf_counter()
                    trainer.elapsed += now - t_last
                    t_last = now
                    row = {
                        "step": step,
                        "epoch": step // spe,
                        "time": round(trainer.elapsed, 3),
                        **{k: float(f"{v / count:.6g}") for k, v in sums_log.items()},
                    }
                    sums_log, count = {}, 0
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    if bar is not None:
                        bar.values = {"loss": row["loss"]}
                if epoch_end and ((step // spe) % cfg.ckpt_every == 0 or step == trainer.total):
                    checkpoint()
                    saved = True
                if bar is not None:
                    bar.update(step)
                if signals.signum is not None and step < trainer.total:
                    path = checkpoint() if not saved else out / "checkpoints"
                    raise Interrupted(
                        f"stopped by {signal.Signals(signals.signum).name} at step {step}; checkpoint "
                        f"in {path}; continue with: ebgan seq train --out {shlex.quote(str(out))} "
                        f"--resume",
                        signals.signum,
                    )
    finally:
        if bar is not None:
            bar.close()
        log.close()
    if trainer.step == 0 or find_checkpoint(out) is None:  # zero epochs: keep the initial weights
        checkpoint()
    result = {
        "steps": trainer.step,
        "epochs": cfg.epochs,
        "seconds": round(trainer.elapsed, 2),
        "threads": trainer.threads,
        "pairs": int(trainer.count.sum()),
        "distinct_pairs": len(trainer.t),
        "pairs_per_s": round(trainer.step * min(cfg.batch, len(trainer.t)) / max(trainer.elapsed, 1e-9), 1),
        "train_sessions": len(train),
        "holdout_sessions": len(held),
        "known_anomalies": len(anom),
        "known_anomalies_used": trainer.anom.n if trainer.anom is not None else 0,
        "keys": vocab.n,
        "margin": trainer.margin,
    }
    if held:
        e = energies(trainer.model, vocab, held, cfg.window, ENERGIES, cfg.g)
        calib = calibrate(e, cfg.fpr, trainer.step, cfg.energy, cfg.threshold_scale)
        atomic_write_text(out / "threshold.json", json.dumps(calib, indent=2) + "\n")
        result["threshold"] = calib["thresholds"][cfg.energy]
        result["holdout_fpr"] = calib["holdout_fpr"][cfg.energy]
    atomic_write_text(out / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def calibrate(e: dict[str, np.ndarray], fpr: float, step: int, energy: str, scale: float = 1.0) -> dict[str, Any]:
    """``threshold.json``: for each graded energy ``scale`` times the energy leaving a share ``fpr`` of the
    held-out normal sessions above it (:func:`threshold_of`); for ``topg`` DeepLog's rule, 0 (a session with any
    key outside the top g is anomalous)."""
    thr = {k: (threshold_of(v, fpr, scale) if k in GRADED else 0.0) for k, v in e.items()}
    return {
        "energy": energy,
        "fpr": fpr,
        "threshold_scale": scale,
        "step": int(step),
        "n_holdout": int(len(next(iter(e.values())))),
        "thresholds": thr,
        "holdout_fpr": {k: float((e[k] > thr[k]).mean()) for k in e},
        "rule": "anomalous when energy > threshold (topg: DeepLog's rule, any key outside the top g)",
    }


# ------------------------------------------------------------------------------------------------ load, score


@dataclass
class SeqModel:
    """A trained sequence run, ready to score: its configuration, vocabulary, model (the newest finished
    update's weights, else the training's) and calibration."""

    run_dir: Path
    cfg: SeqConfig
    vocab: Vocab
    model: NextKeyLSTM
    checkpoint: Path
    update: int
    calibration: dict[str, Any] | None
    _holdout: dict[str, np.ndarray] = field(default_factory=dict)

    def energies(self, sessions: list[Session], kind: str | None = None) -> np.ndarray:
        kind = kind or self.cfg.energy
        return energies(self.model, self.vocab, sessions, self.cfg.window, (kind,), self.cfg.g)[kind]

    def threshold(self, kind: str | None = None) -> float | None:
        kind = kind or self.cfg.energy
        if self.calibration is None:
            return 0.0 if kind == "topg" else None
        return float(self.calibration["thresholds"][kind])

    def holdout_sessions(self) -> list[Session]:
        p = self.run_dir / "holdout.txt"
        if not p.is_file() or not p.read_text().strip():
            return []
        return read_sessions(p).keys

    def holdout_energies(self, kind: str | None = None) -> np.ndarray:
        kind = kind or self.cfg.energy
        if kind not in self._holdout:
            held = self.holdout_sessions()
            self._holdout[kind] = self.energies(held, kind) if held else np.zeros(0)
        return self._holdout[kind]


def finished_updates(run_dir: Path) -> list[Path]:
    root = run_dir / "updates"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit() and (p / "update.json").is_file())


def current_checkpoint(run_dir: Path) -> tuple[Path, int]:
    """The checkpoint a run scores with, and the number of its update (0: the training's)."""
    done = finished_updates(run_dir)
    if done:
        ck = find_checkpoint(done[-1])
        if ck is not None:
            return ck, int(done[-1].name)
    ck = find_checkpoint(run_dir)
    if ck is None:
        raise EbganError(
            f"{run_dir} has no checkpoint yet: the run stopped before its first; resume it with "
            f"`ebgan seq train --out {run_dir} --resume`"
        )
    return ck, 0


def recalibrate(run_dir: str | Path, fpr: float, threshold_scale: float = 1.0) -> dict[str, Any]:
    """Move a run's operating point: rewrite ``threshold.json`` at another false-positive rate (and scale) on
    the held-out normal sessions, scored by the training's model (the one it was calibrated with). Scoring and
    feedback updates use the new thresholds from then on."""
    run = Path(run_dir)
    cfg = saved_seq_config(run)
    check_config(replace(cfg, fpr=fpr, threshold_scale=threshold_scale))
    held_path = run / "holdout.txt"
    if not held_path.is_file() or not held_path.read_text().strip():
        raise EbganError(f"{run} holds no held-out sessions to calibrate on (trained with holdout 0)")
    vocab = Vocab(json.loads((run / "vocab.json").read_text())["keys"])
    model = build_model(cfg, vocab.n)
    ck = find_checkpoint(run)
    if ck is None:
        raise EbganError(f"{run} has no checkpoint")
    load_weights(ck, {"M": model})
    e = energies(model, vocab, read_sessions(held_path).keys, cfg.window, ENERGIES, cfg.g)
    calib = calibrate(e, fpr, int(load_state(ck)["step"]), cfg.energy, threshold_scale)
    atomic_write_text(run / "threshold.json", json.dumps(calib, indent=2) + "\n")
    return calib


def load_run(run_dir: str | Path) -> SeqModel:
    """Load a sequence run (``ebgan seq train``'s folder) for scoring."""
    run = Path(run_dir)
    if not run.is_dir():
        raise EbganError(f"{run} is not a folder")
    if not (run / "config.json").is_file():
        raise EbganError(f"{run} is not a run folder (no config.json)")
    cfg = saved_seq_config(run)
    try:
        vocab = Vocab(json.loads((run / "vocab.json").read_text())["keys"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EbganError(f"{run / 'vocab.json'} is unreadable: {e}") from None
    ckpt, upd = current_checkpoint(run)
    model = build_model(cfg, vocab.n)
    load_weights(ckpt, {"M": model})
    model.eval()
    calib = None
    if (run / "threshold.json").is_file():
        try:
            calib = json.loads((run / "threshold.json").read_text())
        except (OSError, ValueError) as e:
            raise EbganError(f"{run / 'threshold.json'} is unreadable: {e}") from None
    return SeqModel(run, cfg, vocab, model, ckpt, upd, calib)


@dataclass
class ScoreResult:
    energy: np.ndarray
    score: np.ndarray | None  # the share of held-out normal sessions below each energy (ties count one half)
    anomaly: np.ndarray | None
    threshold: float | None
    kind: str


def score_sessions(
    m: SeqModel, sessions: list[Session], energy: str | None = None, threshold: str | float | None = None
) -> ScoreResult:
    """Score sessions with a loaded run. ``threshold``: ``"auto"`` (the run's calibrated threshold for this
    energy; an error when it has none), a number, or None (the calibrated one when the run has it, else no
    anomaly column)."""
    kind = energy or m.cfg.energy
    if kind not in ENERGIES:
        raise EbganError(f"unknown energy {kind!r}; choose one of {', '.join(ENERGIES)}")
    e = m.energies(sessions, kind)
    if threshold == "auto" or threshold is None:
        thr = m.threshold(kind)
        if thr is None and threshold == "auto":
            raise EbganError(
                f"{m.run_dir} has no calibrated threshold (trained with holdout 0); pass --threshold VALUE"
            )
    else:
        thr = float(threshold)
    held = m.holdout_energies(kind)
    score = None
    if held.size:
        hs = np.sort(held)
        below = np.searchsorted(hs, e, side="left")
        upto = np.searchsorted(hs, e, side="right")
        score = (below + 0.5 * (upto - below)) / hs.size
    anomaly = (e > thr).astype(np.int64) if thr is not None else None
    return ScoreResult(e, score, anomaly, thr, kind)


def write_scores_csv(path: str | Path, res: ScoreResult) -> None:
    """``index,energy,score,anomaly``: one row per session in input order (``score``: the share of held-out
    normal sessions with a lower energy; ``anomaly``: 1 above the threshold; empty when there is none)."""
    lines = ["index,energy,score,anomaly"]
    for i, e in enumerate(res.energy):
        s = "" if res.score is None else f"{res.score[i]:.6g}"
        a = "" if res.anomaly is None else str(int(res.anomaly[i]))
        lines.append(f"{i},{e:.6g},{s},{a}")
    atomic_write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------------- update


@dataclass
class UpdateSettings:
    """A feedback update: ``steps`` full-batch steps of ``optimizer`` (``adam`` or ``sgd``) at ``lr`` on

    * the false positives: their next-key loss (``floor_scale`` None), or, bounded, ``max(0, E - floor)`` on
      each one's session energy with ``floor = floor_scale x`` the run's threshold (lowered below the
      threshold and no further);
    * the false negatives: ``max(0, margin - E)`` on their session energy;
    * the guards against forgetting: ``l2 / 2 * ||theta - theta_prev||^2`` and ``keep`` times the mean KL
      divergence from the previous model's next-key distribution to the new one's on the histories of the
      training's normal windows (``RUN/normal_pairs.pt``), ``keep_batch`` of them drawn afresh each step (0:
      all of them every step).

    ``margin`` None (the default) puts the margin on the energy's own scale: ``margin_scale`` (None: the run's
    ``margin_scale``) times the run's calibrated threshold of the energy the hinge pushes; a number fixes it.
    Adam moves every weight by about ``lr`` a step whatever the size of its gradient, so that a correction of
    one session shifts every other session's energy too; plain SGD moves the weights in proportion to the
    corrections' gradient (measured on HDFS validation data: BENCHMARKS.md, seq_hdfs).

    ``holdout_guard``: after the steps, the update's weight change is halved (up to 8 times, then dropped) until
    the run's held-out normal sessions have no more false positives at its threshold than before the update:
    an update may then fix fewer of the sessions fed back, never flag more normal ones (measured on HDFS: one
    update without it flagged up to all of the held-out sessions). The scale kept is ``guard_scale`` in
    ``update.json``.

    The defaults are the update chosen on HDFS validation data among every setting tried (BENCHMARKS.md,
    seq_hdfs: ``FEEDBACK_GRID`` and ``FEEDBACK_GUARD_GRID`` of ``benchmarks/seq_hdfs.py``): Adam at lr 0.003 on the
    false positives' next-key loss, the L2 guard and the held-out guard. The SGD update with the floor and the KL
    guard (``optimizer="sgd", lr=0.01, floor_scale=0.9, keep=1.0``) moves the other sessions less per update but
    oscillated from chunk to chunk on one test stream."""

    steps: int = 30
    lr: float = 0.003
    l2: float = 1.0
    keep: float = 0.0
    keep_batch: int = 1024
    floor_scale: float | None = None
    optimizer: str = "adam"
    margin: float | None = None
    margin_scale: float | None = None
    ckpt_every: int = 10
    holdout_guard: bool = True


GUARD_HALVINGS = 8


def _holdout_guard(model: NextKeyLSTM, prev: list[torch.Tensor], score: Any, thr: float, limit: int) -> float:
    """Scale ``model``'s change from ``prev`` by 1, 1/2, ... 1/2**GUARD_HALVINGS, the first at which ``score()``
    (the held-out normal energies) has at most ``limit`` values above ``thr``, else 0 (the update dropped).
    Leaves ``model`` at that scale and returns it."""
    new = _params(model)
    scale = 1.0
    for _ in range(GUARD_HALVINGS + 1):
        if int((score() > thr).sum()) <= limit:
            return scale
        scale /= 2
        with torch.no_grad():
            for p, a, b in zip(model.parameters(), prev, new):
                p.copy_(a + scale * (b - a))
    with torch.no_grad():
        for p, a in zip(model.parameters(), prev):
            p.copy_(a)
    return 0.0


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def update_run(
    run_dir: str | Path,
    false_positives: list[Session] | None = None,
    false_negatives: list[Session] | None = None,
    settings: UpdateSettings | None = None,
    resume: bool = False,
    progress: bool = True,
    sources: dict[str, dict[str, str]] | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """Feed an operator's corrections back into a trained run, as a new update ``RUN/updates/NNN/``.

    * **false positives** (normal sessions the run flagged): their next-key cross-entropy, the training loss,
      is minimised, which lowers their surprise (hence every energy); with ``floor_scale`` their session
      energy is lowered to ``floor_scale x`` the threshold and no further (sessions with a key never seen in
      training are left out: such a position stays maximally surprising);
    * **false negatives** (anomalous sessions it missed): ``ebgan.losses.unlearning_loss`` on their session
      energy (the run's, ``max`` for a ``topg`` run) pushes it up to the margin and no further (bounded, unlike
      a raw negative likelihood);
    * **forgetting guards**: ``l2 / 2 * ||theta - theta_prev||^2``, the distance to the weights before this
      update (the EWC penalty with the Fisher information replaced by 1, as in the public ports of Du et al.),
      and optionally (``keep``) the KL divergence to the previous model's predictions on the normal windows.

    ``RUN/updates/NNN/`` keeps everything: ``false_positives.txt`` and ``false_negatives.txt`` (the sessions
    fed back), ``config.json`` (settings, the checkpoint it started from, the sources' SHA-256),
    ``metrics.jsonl`` (every step's losses), ``checkpoints/`` (atomic; the last is the new model) and, when
    done, ``update.json``: every fed session's energy before and after and what the update did to the held-out
    normal sessions. An update stopped by a signal (or a kill) resumes with ``resume=True`` under its own
    request (``steps`` may then set another length; ``settings`` are not used).
    """
    settings = settings or UpdateSettings()
    run = Path(run_dir)
    if not (run / "config.json").is_file():
        raise EbganError(f"{run} is not a run folder (no config.json)")
    saved_seq_config(run)
    if not (run / "result.json").is_file():
        raise EbganError(
            f"{run} has not finished training; finish it with `ebgan seq train --out {run} --resume` "
            f"before feeding corrections back"
        )
    lock = RunLock(run)
    lock.acquire()
    try:
        root = run / "updates"
        existing = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()) if root.is_dir() else []
        unfinished = [p for p in existing if not (p / "update.json").is_file()]
        if resume:
            if not unfinished:
                raise EbganError(f"{run} has no unfinished update to resume (the last one finished)")
            if false_positives or false_negatives:
                raise EbganError(
                    "--resume finishes the unfinished update with the sessions it was given; give "
                    "new false positives or negatives in a new update, without --resume"
                )
            folder = unfinished[-1]
            try:
                request = json.loads((folder / "config.json").read_text())
            except (OSError, ValueError) as e:
                raise EbganError(
                    f"{folder / 'config.json'} is unreadable: {e}; delete {folder} and feed the sessions again"
                ) from None
            if steps is not None:
                if steps < 1:
                    raise EbganError(f"--steps must be >= 1, got {steps}")
                request["steps"] = int(steps)
                atomic_write_text(folder / "config.json", json.dumps(request, indent=2) + "\n")
            fps = read_sessions(folder / "false_positives.txt").keys if request["n_false_positives"] else []
            fns = read_sessions(folder / "false_negatives.txt").keys if request["n_false_negatives"] else []
        else:
            if unfinished:
                raise EbganError(
                    f"{unfinished[-1]} is an unfinished update: finish it with `ebgan seq update {run} "
                    f"--resume` (or delete that folder) before feeding more"
                )
            fps, fns = list(false_positives or []), list(false_negatives or [])
            if not fps and not fns:
                raise EbganError("nothing to feed back: give false positives, false negatives or both")
            m = load_run(run)
            margin, thr = settings.margin, m.threshold(hinge_energy(m.cfg))
            scale = settings.margin_scale if settings.margin_scale is not None else m.cfg.margin_scale
            if margin is not None:
                margin_rule = "given"
            elif thr is not None and thr > 0:
                margin, margin_rule = scale * thr, f"{scale:g} x the run's threshold {thr:.6g}"
            elif m.cfg.margin is not None:
                margin, margin_rule = m.cfg.margin, "the run's fixed margin (it has no threshold)"
            else:
                raise EbganError(
                    f"{run} has no calibrated threshold to set the margin by (trained with holdout 0); "
                    f"pass --margin VALUE"
                )
            if steps is not None:
                settings = replace(settings, steps=steps)
            if settings.optimizer not in ("adam", "sgd"):
                raise EbganError(f"unknown optimizer {settings.optimizer!r} for an update; choose adam or sgd")
            if (
                settings.steps < 1
                or settings.lr <= 0
                or settings.l2 < 0
                or settings.keep < 0
                or settings.keep_batch < 0
                or not margin > 0
                or not scale > 0
                or (settings.floor_scale is not None and not settings.floor_scale > 0)
            ):
                raise EbganError(
                    "an update needs steps >= 1, lr > 0, l2 >= 0, keep >= 0, keep_batch >= 0, "
                    "margin > 0, margin_scale > 0 and floor_scale > 0"
                )
            number = int(existing[-1].name) + 1 if existing else 1
            folder = root / f"{number:03d}"
            folder.mkdir(parents=True)
            write_session_file(folder / "false_positives.txt", fps)
            write_session_file(folder / "false_negatives.txt", fns)
            request = {
                "update": number,
                "base": str(m.checkpoint.relative_to(run)),
                "base_update": m.update,
                "steps": settings.steps,
                "lr": settings.lr,
                "optimizer": settings.optimizer,
                "l2": settings.l2,
                "keep": settings.keep,
                "keep_batch": settings.keep_batch,
                "margin": float(margin),
                "floor": (
                    float(settings.floor_scale * thr) if settings.floor_scale is not None and thr is not None else None
                ),
                "margin_rule": margin_rule,
                "ckpt_every": settings.ckpt_every,
                "holdout_guard": bool(settings.holdout_guard),
                "energy": hinge_energy(m.cfg),
                "n_false_positives": len(fps),
                "n_false_negatives": len(fns),
                "sources": sources or {},
            }
            atomic_write_text(folder / "config.json", json.dumps(request, indent=2) + "\n")
        return _update(run, folder, request, fps, fns, progress)
    finally:
        lock.release()


def _normal_pairs(run: Path) -> torch.Tensor:
    try:
        return torch.load(run / "normal_pairs.pt", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unreadable or missing: the same user-facing problem
        raise EbganError(f"cannot read {run / 'normal_pairs.pt'} (written at the end of training): {e}") from None


def _update(
    run: Path, folder: Path, request: dict[str, Any], fps: list[Session], fns: list[Session], progress: bool
) -> dict[str, Any]:
    m = load_run(run)  # the newest finished update: this one's base
    cfg, vocab, model = m.cfg, m.vocab, m.model
    base = run / request["base"]
    load_weights(base, {"M": model})  # (the same weights; explicit, in case of a finished newer update)
    prev = _params(model)
    kind, margin, l2 = request["energy"], float(request["margin"]), float(request["l2"])
    keep_w = float(request.get("keep", 0.0))  # (updates written before the setting existed had none)
    kh = None
    if keep_w > 0:  # the previous model's next-key distributions on the training's normal histories
        kh = torch.unique(_normal_pairs(run)[:, :-1], dim=0)
        model.eval()
        with torch.no_grad():
            k_logp = F.log_softmax(model(kh), dim=1)
        k_p = k_logp.exp()
    before = {
        "false_positives": m.energies(fps, kind).tolist() if fps else [],
        "false_negatives": m.energies(fns, kind).tolist() if fns else [],
    }
    held = m.holdout_sessions()
    held_before = m.energies(held, kind) if held else np.zeros(0)
    opt_name = request.get("optimizer", "adam")  # (updates written before the setting existed used Adam)
    opt = (
        torch.optim.SGD(model.parameters(), lr=float(request["lr"]))
        if opt_name == "sgd"
        else torch.optim.Adam(model.parameters(), lr=float(request["lr"]))
    )
    step, elapsed = 0, 0.0
    guard_scale = None  # set once the held-out guard has run (a resumed update does not run it twice)
    recover_checkpoints(folder)
    remove_stale_temp_files(folder)
    ck = find_checkpoint(folder)
    if ck is not None:
        load_weights(ck, {"M": model})
        state = load_state(ck)
        step, elapsed = int(state["step"]), float(state["elapsed"])
        opt.load_state_dict(state["opt"])
        guard_scale = state.get("guard_scale")
    total = int(request["steps"])
    if step > total:
        raise EbganError(f"{folder} is at step {step}, beyond the requested {total}")
    fp_pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    if fps:
        fh, ft, fc = distinct_windows(fps, vocab, cfg.window, cfg.eos)
        keep = ft >= 0  # a key never seen in training cannot be learnt: its position stays maximally surprising
        if bool(keep.any()):
            fp_pairs = (fh[keep], ft[keep], fc[keep].float())
    floor = request.get("floor")
    fp_win: tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, float] | None = None
    if floor is not None and fps:  # bounded: each false positive's energy lowered to the floor, no further
        fp_keys = [x for x in distinct(fps)[0] if all(k in vocab.index for k in x)]  # an unseen key stays
        if fp_keys:
            fp_win = (*windows(fp_keys, vocab, cfg.window, cfg.eos), len(fp_keys), float(floor))
        fp_pairs = None
    nh = None
    if fns:  # the hinge reaches the positions no normal session has: not in training, the holdout, the fed FPs
        normal = {tuple(r) for r in _normal_pairs(run).tolist()}
        for extra in (m.holdout_sessions(), fps):
            if extra:
                normal |= pair_set(*windows(extra, vocab, cfg.window, cfg.eos)[:2])
        aw = _AnomalyWindows(fns, vocab, cfg, 0, normal)
        if aw.n:
            nh, nt, ns, nn, n_fn = aw.h, aw.t, aw.sid, aw.novel, aw.n
        request["false_negatives_without_novel_position"] = aw.skipped
    truncate_metrics(folder / "metrics.jsonl", step)
    bar = Progress(total, step, desc=f"update {folder.name}") if progress else None
    t_last = time.perf_counter()

    def checkpoint() -> Path:
        nonlocal elapsed, t_last
        elapsed += time.perf_counter() - t_last
        t_last = time.perf_counter()
        return save_checkpoint(
            folder, step, {"M": model}, {"step": step, "elapsed": elapsed, "opt": opt.state_dict()}, request
        )

    log = AppendLog(folder / "metrics.jsonl")  # as training's
    try:
        with StopSignals() as signals:
            while step < total:
                model.train()
                loss = torch.zeros(())
                row: dict[str, Any] = {"step": step + 1}
                if fp_pairs is not None:
                    fh, ft, fc = fp_pairs
                    ce = F.cross_entropy(model(fh), ft, reduction="none")
                    lower = (fc * ce).sum() / fc.sum()
                    loss = loss + lower
                    row["lower"] = float(f"{lower.item():.6g}")
                if fp_win is not None:
                    ph, pt, ps, n_fp, fp_floor = fp_win
                    e_fp = pool(surprise(model(ph), pt), ps, n_fp, kind)
                    lower = torch.clamp(e_fp - fp_floor, min=0).mean()
                    loss = loss + lower
                    row["lower"] = float(f"{lower.item():.6g}")
                if nh is not None:
                    hinge, _ = anomaly_hinge(model, nh, nt, ns, n_fn, kind, margin, nn)
                    loss = loss + hinge
                    row["hinge"] = float(f"{hinge.item():.6g}")
                if kh is not None:
                    kb = int(request.get("keep_batch", 0))
                    sel = (
                        torch.randperm(
                            len(kh), generator=torch.Generator().manual_seed(int(request["update"]) * 1_000_003 + step)
                        )[:kb]
                        if 0 < kb < len(kh)
                        else torch.arange(len(kh))
                    )  # a function of the update and the step: resumable
                    kl = (k_p[sel] * (k_logp[sel] - F.log_softmax(model(kh[sel]), dim=1))).sum(1).mean()
                    loss = loss + keep_w * kl
                    row["keep_kl"] = float(f"{kl.item():.6g}")
                if l2 > 0:
                    dist = sum((((p - q) ** 2).sum() for p, q in zip(model.parameters(), prev)), torch.zeros(()))
                    loss = loss + 0.5 * l2 * dist
                    row["distance2"] = float(f"{dist.item():.6g}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                log.write(json.dumps(row) + "\n")
                log.flush()
                saved = False
                if step % int(request["ckpt_every"]) == 0 or step == total:
                    checkpoint()
                    saved = True
                if bar is not None:
                    bar.update(step)
                if signals.signum is not None and step < total:
                    if not saved:
                        checkpoint()
                    raise Interrupted(
                        f"stopped by {signal.Signals(signals.signum).name} at update step {step}; "
                        f"continue with: ebgan seq update {shlex.quote(str(run))} --resume",
                        signals.signum,
                    )
    finally:
        if bar is not None:
            bar.close()
        log.close()
    model.eval()
    thr = m.threshold(kind)
    if request.get("holdout_guard") and held and thr is not None:
        if guard_scale is None:
            guard_scale = _holdout_guard(
                model,
                prev,
                lambda: energies(model, vocab, held, cfg.window, (kind,), cfg.g)[kind],
                thr,
                int((held_before > thr).sum()),
            )
            state = {"step": step, "elapsed": elapsed, "opt": opt.state_dict(), "guard_scale": guard_scale}
            save_checkpoint(folder, step, {"M": model}, state, request)  # the guarded weights replace the last
        request["guard_scale"] = float(guard_scale)
    last = find_checkpoint(folder)
    if last is None:  # (saved at the last step above)
        raise EbganError(f"{folder} holds no checkpoint after the update")
    after_m = SeqModel(run, cfg, vocab, model, last, int(folder.name), m.calibration)
    after = {
        "false_positives": after_m.energies(fps, kind).tolist() if fps else [],
        "false_negatives": after_m.energies(fns, kind).tolist() if fns else [],
    }
    held_after = after_m.energies(held, kind) if held else np.zeros(0)
    record = {
        **request,
        "status": "done",
        "seconds": round(elapsed, 3),
        "threshold": thr,
        "energy_before": before,
        "energy_after": after,
    }
    if thr is not None:
        record["fixed"] = {
            "false_positives": int(
                sum(b > thr >= a for b, a in zip(before["false_positives"], after["false_positives"]))
            ),
            "false_negatives": int(
                sum(b <= thr < a for b, a in zip(before["false_negatives"], after["false_negatives"]))
            ),
        }
    if held:
        record["holdout"] = {
            "n": len(held),
            "mean_abs_change": float(np.abs(held_after - held_before).mean()),
            "max_abs_change": float(np.abs(held_after - held_before).max()),
        }
        if thr is not None:
            record["holdout"].update(
                {"fpr_before": float((held_before > thr).mean()), "fpr_after": float((held_after > thr).mean())}
            )
    atomic_write_text(folder / "update.json", json.dumps(record, indent=2) + "\n")
    return record


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
