"""The settings of a sequence run (``config.json`` of ``ebgan seq train``, with ``"kind": "seq"``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import EbganError
from .model import ENERGIES, GRADED

WEIGHTINGS = ("count", "distinct")

# The default margin, in thresholds: known anomalies are pushed to MARGIN_SCALE x the calibrated threshold of the
# energy the hinge pushes (chosen on HDFS validation data, benchmarks/seq_hdfs.py, among 1, 2 and 4). The runs
# that chose it calibrated at false-positive rate 0.001 x 1; the default rule (0.01 x 1.3) gives nearly the same
# threshold on HDFS (seed 0: 1.606 against 1.580 nats), so the scale carries over.
MARGIN_SCALE = 2.0

# What `ebgan seq train --resume` may change: the length, the cadences and the threads.
RESUMABLE = {"epochs", "log_every", "ckpt_every", "num_threads"}


@dataclass
class SeqConfig:
    """A next-key predictor trained on normal sessions: DeepLog's LSTM (2 layers of 64 units) with the settings
    chosen on HDFS validation data as defaults (``benchmarks/seq_hdfs.py``, BENCHMARKS.md "Log anomaly detection
    on HDFS"): window 20, each distinct pair once, 50 epochs, the ``mean`` energy and the threshold 1.3 x the
    held-out energy at false-positive rate 0.01. DeepLog's own settings are ``window=10, weighting="count",
    energy="topg"`` (``eos=False`` for its model exactly); on HDFS they detect fewer anomalies (BENCHMARKS.md).

    ``eos``: the model also predicts the end of each session (a session cut short is then surprising; DeepLog
    does not). ``weighting``: ``count`` trains on every (history, next key) pair as often as it occurs in the
    training sessions (DeepLog's objective), ``distinct`` on each distinct pair once. An epoch is one pass over
    the distinct pairs in batches of ``batch`` (each pair weighted by its count with ``count``).

    ``energy`` is the session energy the run scores with (:data:`ebgan.seq.model.ENERGIES`); ``g`` DeepLog's
    top-g. ``holdout``: the share of the normal sessions held out to calibrate the threshold, ``threshold_scale``
    times the energy that leaves a share ``fpr`` of them above it (a scale above 1 with a larger ``fpr`` rests
    the threshold on more held-out sessions than the few largest: on HDFS, 437 held-out sessions at ``fpr``
    0.001 make the threshold their single largest energy). Known anomalous sessions enter the loss with weight
    ``anomaly_weight`` through the margin hinge ``max(0, m - E(a))`` (``ebgan.losses.unlearning_loss``),
    ``anomaly_batch`` of them per step.

    **The margin** ``m`` is on the energy's own scale: by default (``margin`` None) it is ``margin_scale`` times the
    threshold the run would calibrate at that moment (from the held-out normal sessions' energies as above,
    recomputed at the start of every epoch and never raised: the smaller of it and the margin so far; from the
    normal training sessions' when nothing is held out), for the energy the hinge pushes (:func:`hinge_energy`). A
    number in ``margin`` fixes it in nats instead. A fixed margin far above the normal sessions' energies distorts
    the model: on HDFS with the ``mean`` energy (threshold about 2 nats) a margin of 20 nats made the normal loss
    rise from 0.7 to 3.1 and the detection of never-seen anomalies fall from 0.86 to 0.005 (BENCHMARKS.md,
    seq_hdfs).
    ``log_every`` and ``ckpt_every`` count epochs; ``num_threads`` 0 chooses by the machine's load.
    """

    data: str | None = None
    anomalies: str | None = None
    column: str = "session"
    label_column: str | None = None
    window: int = 20
    hidden: int = 64
    layers: int = 2
    eos: bool = True
    weighting: str = "distinct"
    energy: str = "mean"
    g: int = 9
    epochs: int = 50
    batch: int = 256
    lr: float = 0.001
    seed: int = 0
    holdout: float = 0.1
    fpr: float = 0.01
    threshold_scale: float = 1.3
    margin: float | None = None
    margin_scale: float = MARGIN_SCALE
    anomaly_weight: float = 1.0
    anomaly_batch: int = 64
    log_every: int = 1
    ckpt_every: int = 1
    num_threads: int = 0


def check_config(cfg: SeqConfig) -> SeqConfig:
    """Validate ``cfg`` (one EbganError naming the field) and return it."""
    if cfg.energy not in ENERGIES:
        raise EbganError(f"unknown energy {cfg.energy!r}; choose one of {', '.join(ENERGIES)}")
    if cfg.weighting not in WEIGHTINGS:
        raise EbganError(f"unknown weighting {cfg.weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    for name in ("window", "hidden", "layers", "g", "batch", "anomaly_batch", "log_every", "ckpt_every"):
        if int(getattr(cfg, name)) < 1:
            raise EbganError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.epochs < 0 or cfg.num_threads < 0:
        raise EbganError("epochs and threads must be >= 0")
    if not 0 <= cfg.holdout < 1:
        raise EbganError(f"holdout must be in [0, 1), got {cfg.holdout}")
    if not 0 < cfg.fpr < 1:
        raise EbganError(f"the false-positive rate must be in (0, 1), got {cfg.fpr}")
    if not cfg.threshold_scale > 0:
        raise EbganError(f"threshold_scale must be > 0, got {cfg.threshold_scale}")
    if (
        not cfg.lr > 0
        or (cfg.margin is not None and not cfg.margin > 0)
        or not cfg.margin_scale > 0
        or cfg.anomaly_weight < 0
    ):
        raise EbganError("lr, margin and margin_scale must be > 0 and anomaly_weight >= 0")
    return cfg


def hinge_energy(cfg: SeqConfig) -> str:
    """The graded energy the margin hinge pushes up: the run's own, or ``max`` for a ``topg`` run (a count of
    misses has no gradient)."""
    return cfg.energy if cfg.energy in GRADED else "max"


def to_seq_dict(cfg: SeqConfig) -> dict[str, Any]:
    return {"kind": "seq", **dataclasses.asdict(cfg)}


def seq_from_dict(d: dict[str, Any]) -> SeqConfig:
    fields = {f.name for f in dataclasses.fields(SeqConfig)}
    unknown = sorted(set(d) - fields - {"kind"})
    if unknown:
        raise EbganError(f"unknown sequence-run settings: {', '.join(unknown)}")
    return SeqConfig(**{k: v for k, v in d.items() if k in fields})
