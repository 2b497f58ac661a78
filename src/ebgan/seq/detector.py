"""``SequenceDetector``: log anomaly detection with the PyOD-style interface of
:class:`ebgan.anomaly.EnergyDetector`."""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EbganError
from .config import SeqConfig
from .data import Session
from .run import SeqModel, UpdateSettings, load_run, train_seq, update_run


def _sessions(X, name: str = "sessions") -> list[Session]:
    try:
        out = [tuple(int(k) for k in s) for s in X]
    except (TypeError, ValueError):
        raise EbganError(f"{name} must be a sequence of sessions, each a sequence of integer log keys") from None
    if any(k < 0 for s in out for k in s):
        raise EbganError(f"{name}: log keys are non-negative integers")
    return out


class SequenceDetector:
    """Anomaly detection on event sequences (sessions of log keys) with a next-key predictor's energy.

    ``fit(sessions, y=None)`` trains a run on the sessions with ``y == 0`` (all when ``y`` is None); sessions
    with ``y == 1`` are known anomalies, pushed above the margin (unlearning). ``decision_function(sessions)``
    is the energy (higher = more anomalous), ``predict`` is 1 above ``threshold_`` (calibrated on the held-out
    share ``holdout`` of the normal sessions at the false-positive rate ``fpr``; DeepLog's rule for
    ``energy="topg"``). After ``fit``: ``decision_scores_`` (the training sessions' energies), ``threshold_``,
    ``labels_`` and ``run_dir_``. ``update(false_positives, false_negatives)`` feeds corrections back.

    Keyword arguments are :class:`ebgan.seq.config.SeqConfig` fields (``energy``, ``epochs``, ``window``, ...).
    ``run_dir`` keeps the run; by default it goes to a temporary folder deleted with the detector.
    """

    def __init__(self, *, run_dir: str | os.PathLike | None = None, progress: bool = False, **config: Any) -> None:
        self.config = dict(config)
        self.cfg = SeqConfig(**{**{"num_threads": 1}, **self.config})
        self.run_dir, self.progress = run_dir, progress
        self.model_: SeqModel | None = None
        self.threshold_: float | None = None

    def fit(self, X, y=None) -> SequenceDetector:
        sessions = _sessions(X)
        anomalies: list[Session] = []
        if y is not None:
            yy = np.asarray(y).reshape(-1)
            if yy.shape[0] != len(sessions) or not np.isin(yy, (0, 1)).all():
                raise EbganError(f"y must be 0/1 labels for each of the {len(sessions)} sessions (1 = known anomaly)")
            anomalies = [s for s, v in zip(sessions, yy) if v == 1]
            sessions = [s for s, v in zip(sessions, yy) if v == 0]
        if self.run_dir is not None:
            out = Path(self.run_dir)
        else:
            out = Path(tempfile.mkdtemp(prefix="ebgan-seq-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(out), ignore_errors=True)
        train_seq(
            replace(self.cfg, data=None, anomalies=None),
            out,
            progress=self.progress,
            sessions=sessions,
            anomalies=anomalies,
        )
        self._load(out)
        self.decision_scores_ = self.decision_function(sessions)
        self.labels_ = (
            (self.decision_scores_ > self.threshold_).astype(np.int64) if self.threshold_ is not None else None
        )
        return self

    def _load(self, run_dir: Path, threshold: float | None = None) -> None:
        self.run_dir_ = Path(run_dir)
        self.model_ = load_run(run_dir)
        self.cfg = self.model_.cfg
        self.threshold_ = float(threshold) if threshold is not None else self.model_.threshold()

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, threshold: float | None = None) -> SequenceDetector:
        """Wrap a run folder of ``ebgan seq train`` (with its newest update); ``threshold_`` is ``threshold`` or
        the run's calibrated one."""
        det = cls.__new__(cls)
        det.config, det.run_dir, det.progress = {}, run_dir, False
        det._load(Path(run_dir), threshold)
        return det

    def _check_fitted(self) -> SeqModel:
        if self.model_ is None:
            raise EbganError(
                "this SequenceDetector is not fitted; call fit(sessions) or SequenceDetector.from_run(RUN)"
            )
        return self.model_

    def decision_function(self, X) -> np.ndarray:
        """The energy of each session (float64 ``[N]``; higher = more anomalous)."""
        return self._check_fitted().energies(_sessions(X))

    def predict(self, X) -> np.ndarray:
        """0 for normal sessions, 1 for anomalous ones (energy above ``threshold_``)."""
        self._check_fitted()
        if self.threshold_ is None:
            raise EbganError("no threshold: fit with holdout > 0, or pass threshold= to from_run")
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def update(self, false_positives=(), false_negatives=(), **settings: Any) -> dict[str, Any]:
        """Feed corrections back (:func:`ebgan.seq.run.update_run`; ``settings``: ``UpdateSettings`` fields);
        returns the update's record and scores with the updated model from then on."""
        m = self._check_fitted()
        rec = update_run(
            m.run_dir,
            _sessions(false_positives, "false_positives"),
            _sessions(false_negatives, "false_negatives"),
            UpdateSettings(**settings),
            progress=self.progress,
        )
        self._load(m.run_dir, self.threshold_)
        return rec
