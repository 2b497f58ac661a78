"""The energy of a session: a next-key predictor (DeepLog's LSTM) and the session energies built on its surprise.

The predictor reads the ``window`` keys before a position (one-hot, with an index for unknown keys and one for
padding before the start) through an LSTM and gives a probability to every known key and, with ``eos``, to the
end of the session. The **surprise** of a position is ``-log p(actual next key)`` in nats, capped at
:data:`MAX_SURPRISE`; a key never seen in training gets the cap: it is the most surprising event there can be,
and stays finite so that energies can be ranked, averaged and thresholded.

Session energies (higher = more anomalous), :data:`ENERGIES`:

* ``max``: the largest surprise over the session's positions (graded; the default);
* ``sum``: the summed surprise, ``-log p(session)`` under the model's factorisation (graded);
* ``mean``: the mean surprise per position (graded);
* ``topg``: DeepLog's rule as a count: the positions whose actual key is not among the ``g`` most probable
  ones (a key is among them when fewer than ``g`` keys get a strictly higher score). DeepLog calls a session
  abnormal when the count is above 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import EbganError
from .data import Session, Vocab, distinct, windows

MAX_SURPRISE = 100.0  # nats: p = e^-100; an unknown key's surprise, and the cap of every other
GRADED = ("max", "sum", "mean")
ENERGIES = GRADED + ("topg",)


def check_energy(kind: str) -> str:
    if kind not in ENERGIES:
        raise EbganError(f"unknown energy {kind!r}; choose one of {', '.join(ENERGIES)}")
    return kind


class NextKeyLSTM(nn.Module):
    """DeepLog's next-key predictor: ``layers`` LSTM layers of ``hidden`` units over a window of one-hot keys,
    then a linear layer to one logit per known key (and one for the end of the session with ``eos``)."""

    def __init__(self, n_keys: int, hidden: int = 64, layers: int = 2, eos: bool = True) -> None:
        super().__init__()
        self.n_keys, self.eos = n_keys, eos
        self.n_in = n_keys + 2  # known keys, unknown, padding
        self.n_out = n_keys + (1 if eos else 0)
        self.lstm = nn.LSTM(self.n_in, hidden, layers, batch_first=True)
        self.fc = nn.Linear(hidden, self.n_out)

    def forward(self, history: Tensor) -> Tensor:
        """``history [N, W]`` input indices to logits ``[N, n_out]``."""
        x = F.one_hot(history, self.n_in).float()
        h, _ = self.lstm(x)
        return self.fc(h[:, -1])


def surprise(logits: Tensor, target: Tensor) -> Tensor:
    """``-log p(target)`` per row, capped at :data:`MAX_SURPRISE`; a target of ``-1`` (unknown key) gets the cap."""
    logp = F.log_softmax(logits, dim=1)
    known = target >= 0
    s = -logp.gather(1, target.clamp_min(0)[:, None])[:, 0]
    return torch.where(known, s.clamp(max=MAX_SURPRISE), torch.full_like(s, MAX_SURPRISE))


def topg_miss(logits: Tensor, target: Tensor, g: int) -> Tensor:
    """1 where the target is not among the ``g`` most probable keys (``g`` or more logits strictly higher than
    the target's), or is unknown (``-1``); else 0. ``[N]`` int64."""
    known = target >= 0
    mine = logits.gather(1, target.clamp_min(0)[:, None])
    higher = (logits > mine).sum(1)
    return ((higher >= g) | ~known).long()


def pool(values: Tensor, session: Tensor, n_sessions: int, kind: str) -> Tensor:
    """Per-position values to per-session energies: ``max``, ``sum`` or ``mean`` over each session's positions
    (``topg``: the sum of misses). A session without positions gets 0. Differentiable (``max`` reaches the
    largest position only)."""
    out = values.new_zeros(n_sessions)
    if kind == "max":
        return out.scatter_reduce(0, session, values, reduce="amax", include_self=False)
    out = out.index_add(0, session, values)
    if kind == "mean":
        count = torch.bincount(session, minlength=n_sessions).clamp_min(1).to(values.dtype)
        out = out / count
    return out


def session_energy(
    model: NextKeyLSTM, history: Tensor, target: Tensor, session: Tensor, n_sessions: int, kind: str, g: int = 9
) -> Tensor:
    """The energy of each session from its positions (as :func:`ebgan.seq.data.windows` gives them), with
    gradients: float ``[n_sessions]``."""
    logits = model(history)
    if kind == "topg":
        return pool(topg_miss(logits, target, g).to(logits.dtype), session, n_sessions, "sum")
    return pool(surprise(logits, target), session, n_sessions, kind)


@torch.no_grad()
def energies(
    model: NextKeyLSTM,
    vocab: Vocab,
    sessions: Sequence[Session],
    window: int,
    kinds: Sequence[str] = ("max",),
    g: int = 9,
    batch: int = 8192,
) -> dict[str, np.ndarray]:
    """Every session's energy of each kind in ``kinds``: ``{kind: float64 [len(sessions)]}``, in input order.

    Sessions that repeat, and positions that repeat across sessions, are computed once (most logs repeat a
    few patterns: HDFS's 16,838 abnormal sessions hold 4,123 distinct ones), so the cost follows the distinct
    (history, target) pairs. The model runs in eval mode and is left as it was.
    """
    for k in kinds:
        check_energy(k)
    uniq, inverse = distinct(list(sessions))
    h, t, sid = windows(uniq, vocab, window, model.eos)
    was = model.training
    model.eval()
    try:
        rows, inv = (
            torch.unique(torch.cat([h, t[:, None]], 1), dim=0, return_inverse=True)
            if len(t)
            else (torch.zeros(0, window + 1, dtype=torch.long), torch.zeros(0, dtype=torch.long))
        )
        s_parts, m_parts = [], []
        for i in range(0, len(rows), batch):
            r = rows[i : i + batch]
            logits = model(r[:, :-1])
            s_parts.append(surprise(logits, r[:, -1]).double())
            m_parts.append(topg_miss(logits, r[:, -1], g).double())
        s = torch.cat(s_parts)[inv] if s_parts else torch.zeros(0, dtype=torch.float64)
        m = torch.cat(m_parts)[inv] if m_parts else torch.zeros(0, dtype=torch.float64)
    finally:
        model.train(was)
    idx = torch.as_tensor(inverse, dtype=torch.long)
    out = {}
    for k in kinds:
        per = pool(m, sid, len(uniq), "sum") if k == "topg" else pool(s, sid, len(uniq), k)
        out[k] = per[idx].numpy()
    return out


def auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """AUROC of energies (higher = anomalous) of normal and anomalous sessions (:func:`ebgan.metrics.scores.auroc`,
    ties counting one half)."""
    from ..metrics.scores import auroc as _auroc

    a, b = np.asarray(normal, dtype=np.float64), np.asarray(anomalous, dtype=np.float64)
    return _auroc(np.concatenate([a, b]), np.concatenate([np.zeros(a.size, np.int64), np.ones(b.size, np.int64)]))
