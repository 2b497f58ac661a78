"""Event sequences: log anomaly detection with a next-key predictor as the energy, and unlearning.

The EBGAN view carried past images (seed 000's last section): a next-event predictor trained on normal
sessions is an energy function (low surprise on normal sessions, high on anomalous ones); known anomalies are
pushed up to a margin with the same hinge as EBGAN's generated samples (``ebgan.losses.unlearning_loss``), at
training time or later from an operator's corrections (feedback updates, Du et al. 2019).

    from ebgan.seq import SequenceDetector
    det = SequenceDetector(epochs=50).fit(normal_sessions)       # sessions: sequences of integer log keys
    det.predict(new_sessions)                                    # 1 = anomalous at the calibrated threshold

The CLI is ``ebgan seq parse|train|score|update``. Layers: ``data`` (files, vocabulary, windows, drain3
parsing) < ``model`` (predictor, energies) < ``config`` < ``run`` (run folders) < ``detector``, ``commands``.
Nothing outside this package imports it except ``ebgan.cli``.
"""

from .config import SeqConfig
from .data import Sessions, Vocab, parse_log, read_sessions, windows
from .detector import SequenceDetector
from .model import ENERGIES, MAX_SURPRISE, NextKeyLSTM, energies, surprise, topg_miss
from .run import UpdateSettings, load_run, score_sessions, train_seq, update_run

__all__ = [
    "SeqConfig",
    "Sessions",
    "Vocab",
    "parse_log",
    "read_sessions",
    "windows",
    "SequenceDetector",
    "ENERGIES",
    "MAX_SURPRISE",
    "NextKeyLSTM",
    "energies",
    "surprise",
    "topg_miss",
    "UpdateSettings",
    "load_run",
    "score_sessions",
    "train_seq",
    "update_run",
]
