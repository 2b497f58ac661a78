"""The learned energy as an anomaly detector: score inputs with a trained run, flag what is above a threshold.

An EBGAN discriminator is an energy function, low on the data it was trained on and high elsewhere, so
``D(x)`` is an anomaly score (higher = more anomalous); for images, the energy per unit of the input's ink
(``anomaly_score="energy/ink"``, :func:`ebgan.energy.anomaly_scores`) ranks better. Train on normal data
(``classes`` keeps the normal labels of a labelled data set, ``holdout`` keeps a share of it aside for
calibration), optionally with known anomalies pushed above a margin (``known_anomalies``, "unlearning"), then:

* ``ebgan score RUN_DIR INPUT -o scores.csv`` (:func:`score_run`, :func:`write_scores_csv`): one row per input;
* :class:`EnergyDetector`: the same as an estimator with PyOD's conventions (``fit``, ``decision_function``,
  ``threshold_``, ``predict``), training a run or wrapping an existing one (:meth:`EnergyDetector.from_run`).

Thresholds: the run's own (``threshold.json``, written at the end of training at ``threshold_fpr`` on the
held-out normal data), a value, or a contamination share (the highest-scoring share of the scored inputs).
This module drives the trainer and the energy functions; nothing below it imports it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ._fileio import atomic_write_text
from .data import Dataset, check_like, list_images, load_image_folder, read_npy
from .energy import SCORES, anomaly_scores, energies, threshold_at_fpr
from .errors import EbganError
from .nets import ae_energy

MAX_CONTAMINATION = 0.5  # PyOD's bound: more than half the data anomalous makes "anomaly" meaningless


def check_contamination(c: float) -> float:
    if not 0 < c <= MAX_CONTAMINATION:
        raise EbganError(f"contamination must be in (0, {MAX_CONTAMINATION}], got {c}")
    return float(c)


def _like(meta: dict) -> Dataset:
    """An empty data set shaped like a run's samples, to check inputs against (``data.json``'s description)."""
    shape = tuple(meta["sample_shape"])
    dtype = torch.uint8 if meta["kind"] == "image" else torch.float32
    return Dataset(meta.get("name", "run"), meta["kind"], torch.zeros((0, *shape), dtype=dtype))


def load_inputs(path: str | os.PathLike, meta: dict) -> tuple[Tensor, list[str]]:
    """What to score, shaped like the run's samples: ``(x, names)``.

    ``path`` is an ``.npy`` array (uint8 images ``[N, C, H, W]`` or float points ``[N, d]``; names are the row
    indices) or a folder of images (converted to the run's channels and size like training folders; names are
    the file paths relative to the folder, in sorted order).
    """
    p = Path(path)
    like = _like(meta)
    if p.is_dir():
        if like.kind != "image":
            raise EbganError(f"{p} is a folder of images but the run was trained on {like.kind}")
        shape = like.sample_shape
        x = load_image_folder(p, shape[1], shape[0])
        return x, [f.relative_to(p).as_posix() for f in list_images(p)]
    x = check_like(torch.from_numpy(np.ascontiguousarray(read_npy(p, "INPUT"))), like, f"INPUT {p}")
    return x, [str(i) for i in range(len(x))]


def read_threshold(run_dir: str | os.PathLike) -> dict | None:
    """The run's calibrated threshold (``threshold.json``), or None when it has none (trained without holdout)."""
    path = Path(run_dir) / "threshold.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise EbganError(f"{path} is unreadable: {e}") from None


@dataclass
class ScoreResult:
    """Energies and anomaly scores of the scored inputs and, when a threshold was chosen, the 0/1 labels
    (1 = anomalous: score above the threshold). ``score`` equals ``energy`` when ``score_name`` is "energy"."""

    names: list[str]
    energy: np.ndarray  # float64 [N]
    score: np.ndarray  # float64 [N]
    score_name: str = "energy"
    threshold: float | None = None
    threshold_source: str = "none"
    labels: np.ndarray | None = None  # int64 [N], energy > threshold
    step: int = 0
    notes: list[str] = field(default_factory=list)

    def summary_lines(self, what: str) -> list[str]:
        e = self.score
        lines = [
            f"scored {len(e)} inputs of {what} at step {self.step}: {self.score_name} min {e.min():.4g}, "
            f"median {np.median(e):.4g}, max {e.max():.4g} (higher = more anomalous)"
        ]
        if self.labels is not None:
            k = int(self.labels.sum())
            lines.append(
                f"threshold {self.threshold:.6g} ({self.threshold_source}): {k} of {len(e)} flagged "
                f"anomalous ({100 * k / len(e):.2f} %)"
            )
        return lines + self.notes


def score_run(
    run_dir: str | os.PathLike,
    inputs: str | os.PathLike | Tensor | np.ndarray,
    checkpoint: str = "latest",
    threshold: str | float | None = None,
    contamination: float | None = None,
    batch_size: int = 1000,
    device: str = "cpu",
    score: str | None = None,
) -> ScoreResult:
    """Score ``inputs`` (a path for :func:`load_inputs`, or an array shaped like the run's samples) with the
    energy of the run's discriminator at ``checkpoint``, and the anomaly score ``score`` (default: the run's
    ``anomaly_score``; see :func:`ebgan.energy.anomaly_scores`) computed from it.

    ``threshold``: ``"auto"`` (the run's ``threshold.json``; an error if it has none or it belongs to another
    checkpoint), a number, or None (the run's threshold when it matches the checkpoint, else no labels).
    ``contamination`` ``C`` in ``(0, 0.5]`` instead flags the share ``C`` of the inputs with the highest energies.
    """
    from .sampling import load_networks

    if threshold is not None and contamination is not None:
        raise EbganError("give --threshold or --contamination, not both")
    if contamination is not None:
        check_contamination(contamination)
    _, D, cfg, meta, step = load_networks(run_dir, device, checkpoint)
    if getattr(D, "head", None) != "ae":
        raise EbganError(
            f"{run_dir} was trained with loss={cfg.loss}, whose discriminator has no energy; "
            f"anomaly scores need loss=ebgan (or began)"
        )
    if isinstance(inputs, (str, os.PathLike)):
        x, names = load_inputs(inputs, meta)
    else:
        t = inputs if isinstance(inputs, Tensor) else torch.from_numpy(np.ascontiguousarray(inputs))
        x = check_like(t, _like(meta), "inputs")
        names = [str(i) for i in range(len(x))]
    score = score or cfg.anomaly_score
    if score not in SCORES:
        raise EbganError(f"--score must be one of {', '.join(SCORES)}, got {score!r}")
    if score != "energy" and meta["kind"] != "image":
        raise EbganError(f"--score {score} needs images; the run was trained on {meta['kind']}")
    e = energies(D, x, batch_size=batch_size, device=device)
    s = anomaly_scores(e, x, score, ae_energy(D)).numpy()
    res = ScoreResult(names, e.double().numpy(), s, score_name=score, step=step)
    calib = read_threshold(run_dir)
    if calib is not None and calib.get("score", "energy") != score:
        if threshold == "auto":
            raise EbganError(
                f"{run_dir}'s threshold.json is for the score {calib.get('score', 'energy')}, not "
                f"{score}; pass --threshold VALUE or --contamination C"
            )
        calib = None
    if contamination is not None:
        res.threshold = threshold_at_fpr(s, contamination)  # thresholds apply to the anomaly score
        res.threshold_source = f"contamination {contamination}: the top share of these inputs"
    elif threshold == "auto" or threshold is None:
        if calib is not None and int(calib.get("step", -1)) == step:
            res.threshold = float(calib["threshold"])
            res.threshold_source = (
                f"the run's threshold.json: false-positive rate {calib['fpr']} on "
                f"{calib['n_holdout']} held-out normal samples"
            )
        elif threshold == "auto":
            if calib is None:
                raise EbganError(
                    f"{run_dir} has no threshold.json; train with --set holdout=0.1 (a share kept aside "
                    f"for calibration) or pass --threshold VALUE or --contamination C"
                )
            raise EbganError(
                f"{run_dir}'s threshold.json was calibrated at step {calib.get('step')}, not at this "
                f"checkpoint's step {step}; pass --threshold VALUE or --contamination C"
            )
        elif calib is not None:
            res.notes.append(f"note: threshold.json belongs to step {calib.get('step')}, not {step}: no labels")
    else:
        try:
            res.threshold = float(threshold)
        except (TypeError, ValueError):
            raise EbganError(f"--threshold must be auto or a number, got {threshold!r}") from None
        res.threshold_source = "given"
    if res.threshold is not None:
        res.labels = (s > res.threshold).astype(np.int64)
    return res


def write_scores_csv(path: str | os.PathLike, res: ScoreResult) -> None:
    """One row per input, in input order: ``name,energy[,score][,anomaly]`` (``score`` when the anomaly score is
    not the energy itself; ``anomaly`` 1 when the score is above the threshold)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    extra = res.score_name != "energy"
    w.writerow(["name", "energy"] + (["score"] if extra else []) + (["anomaly"] if res.labels is not None else []))
    for i, name in enumerate(res.names):
        w.writerow(
            [name, repr(float(res.energy[i]))]
            + ([repr(float(res.score[i]))] if extra else [])
            + ([int(res.labels[i])] if res.labels is not None else [])
        )
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, buf.getvalue())


# Model selection on validation data carved from the training split


def run_holdout(run_dir: str | os.PathLike, data_root: str | None = None) -> Tensor:
    """The normal samples a run held out of training (its ``holdout`` share of ``classes``), rebuilt from the
    run's configuration and data root: validation normals it never trained on."""
    from .data import load_dataset, training_data
    from .rundir import saved_config

    cfg = saved_config(run_dir)
    if cfg.holdout <= 0:
        raise EbganError(
            f"{run_dir} held nothing out (holdout=0): train with --set holdout=0.1 to have validation normals"
        )
    meta_path = Path(run_dir) / "data.json"
    root = data_root or (json.loads(meta_path.read_text()).get("data_root") if meta_path.is_file() else None)
    ds = load_dataset(cfg.data, root, image_size=cfg.image_size, channels=cfg.channels, seed=cfg.seed, download=False)
    held = training_data(dataclasses.replace(cfg, known_anomalies=None), ds).holdout
    assert held is not None  # holdout > 0: split_holdout holds samples out or raises
    return held


def validation_auroc(
    run_dir: str | os.PathLike, anomalies, data_root: str | None = None, checkpoint: str = "latest"
) -> dict[str, float]:
    """AUROC (%) of a run's scores on validation data from the training split: its held-out normal samples
    (:func:`run_holdout`) against ``anomalies``, labelled anomalies the user takes from their training data
    (never from the data the final figures are measured on). Returns ``auroc`` for the run's own
    ``anomaly_score``, ``auroc_energy`` and, for images, ``auroc_ink`` from the same weights, and the counts.

    This is how to choose a run's settings (score, budget, bottleneck, unlearning margin) without looking at
    test data: train each candidate with the same ``holdout``, compare ``validation_auroc``, then measure the
    chosen one once on the test data."""
    from .metrics.scores import auroc

    held = run_holdout(run_dir, data_root)
    res_n = score_run(run_dir, held, checkpoint=checkpoint)
    res_a = score_run(run_dir, anomalies, checkpoint=checkpoint)
    x = torch.cat([held, torch.as_tensor(np.asarray(anomalies)) if not isinstance(anomalies, Tensor) else anomalies])
    e = torch.from_numpy(np.concatenate([res_n.energy, res_a.energy]))
    y = torch.cat([torch.zeros(len(held)), torch.ones(len(res_a.energy))]).long()
    out = {
        "auroc": 100 * auroc(torch.from_numpy(np.concatenate([res_n.score, res_a.score])), y),
        "auroc_energy": 100 * auroc(e, y),
        "n_normal": len(held),
        "n_anomalies": len(res_a.energy),
    }
    if x.dim() == 4:
        cfg_energy = json.loads((Path(run_dir) / "config.json").read_text()).get("energy", "l2")
        out["auroc_ink"] = 100 * auroc(anomaly_scores(e, x, "energy/ink", cfg_energy), y)
    return out


# ---------------------------------------------------------------------------------------------------------
# A PyOD-style estimator


class EnergyDetector:
    """Anomaly detection with an EBGAN's energy, following PyOD's conventions.

    ``fit(X, y=None)`` trains a run of ``preset`` (with ``overrides``) on the rows of ``X`` with ``y == 0``
    (all of them when ``y`` is None); rows with ``y == 1`` are known anomalies, pushed above the margin
    ("unlearning"). ``decision_function(X)`` is the energy (higher = more anomalous); ``predict(X)`` is 1 above
    ``threshold_``, 0 below. After ``fit``: ``decision_scores_`` (the energies of the training rows),
    ``threshold_`` (the threshold leaving a share ``contamination`` of the held-out normal rows above it, or of
    the training rows when the preset holds none out), ``labels_`` and ``run_dir_``.

    ``X``: ``uint8 [N, C, H, W]`` images or float ``[N, d]`` points. ``run_dir`` receives the run, which
    ``EnergyDetector.from_run`` can later wrap again; by default the run goes to a temporary folder (about
    30 MB for ``mnist-oneclass``: checkpoints and sample grids) that is deleted when the detector is garbage
    collected or the interpreter exits. Pass ``run_dir`` to keep it.
    """

    def __init__(
        self,
        preset: str = "mnist-oneclass",
        contamination: float = 0.05,
        *,
        steps: int | None = None,
        seed: int = 0,
        overrides: dict[str, Any] | None = None,
        run_dir: str | os.PathLike | None = None,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        # preset and contamination are None for a detector wrapped by from_run (never fitted here)
        self.preset: str | None = preset
        self.contamination: float | None = check_contamination(contamination)
        self.steps, self.seed, self.overrides = steps, seed, dict(overrides or {})
        self.run_dir, self.device, self.progress = run_dir, device, progress
        self.D_: nn.Module | None = None
        self.threshold_: float | None = None

    def fit(self, X, y=None) -> EnergyDetector:
        from .config import apply_overrides, from_preset, resolve
        from .sampling import load_networks
        from .train import train

        contamination = self.contamination
        if self.preset is None or contamination is None:
            raise EbganError(
                "a detector made by EnergyDetector.from_run has no preset to train: fit a new EnergyDetector"
            )
        x = torch.from_numpy(np.ascontiguousarray(X)) if not isinstance(X, Tensor) else X
        kind = "image" if x.dim() == 4 else "points"
        if kind == "points":
            x = x.float() if x.dtype.is_floating_point else x
        like = Dataset("X", kind, x[:0])
        x = check_like(x, like, "X")
        anomalies = None
        if y is not None:
            yt = torch.as_tensor(np.asarray(y)).reshape(-1)
            if yt.shape[0] != len(x) or not torch.isin(yt, torch.tensor([0, 1])).all():
                raise EbganError(f"y must be 0/1 labels for each of the {len(x)} rows of X (1 = known anomaly)")
            anomalies = x[yt == 1] if bool((yt == 1).any()) else None
            x = x[yt == 0]
        over = {**self.overrides, "seed": self.seed, "classes": None, "known_anomalies": None, "device": self.device}
        if self.steps is not None:
            over["steps"] = self.steps
        cfg = from_preset(self.preset)
        cfg = resolve(apply_overrides(cfg, {**over, "data": "X" if cfg.data not in ("ring", "grid") else cfg.data}))
        if self.run_dir is not None:
            out = Path(self.run_dir)
        else:  # a temporary run folder lives as long as the detector that uses it
            out = Path(tempfile.mkdtemp(prefix="ebgan-detector-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(out), ignore_errors=True)
        summary = train(cfg, out, progress=self.progress, dataset=Dataset("X", kind, x), anomalies=anomalies)
        self.run_dir_ = out
        _, self.D_, self.cfg_, self.meta_, self.step_ = load_networks(out, self.device)
        self.decision_scores_ = self.decision_function(x)
        calib = summary.get("threshold")
        if calib is not None:  # held-out rows exist: calibrate on them, never on rows the model trained on
            from .data import split_holdout

            _, held = split_holdout(Dataset("X", kind, x), cfg.holdout, cfg.seed)
            self.threshold_ = threshold_at_fpr(self.decision_function(held), contamination)
        else:
            self.threshold_ = threshold_at_fpr(self.decision_scores_, contamination)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        return self

    @classmethod
    def from_run(
        cls, run_dir: str | os.PathLike, checkpoint: str = "latest", threshold: float | None = None, device: str = "cpu"
    ) -> EnergyDetector:
        """Wrap a trained run folder; ``threshold_`` is ``threshold`` or the run's ``threshold.json`` (None if
        neither: ``predict`` then needs :meth:`set_threshold`)."""
        from .sampling import load_networks

        det = cls.__new__(cls)
        det.preset, det.contamination, det.device, det.run_dir = None, None, device, run_dir
        det.run_dir_ = Path(run_dir)
        _, det.D_, det.cfg_, det.meta_, det.step_ = load_networks(run_dir, device, checkpoint)
        if getattr(det.D_, "head", None) != "ae":
            raise EbganError(f"{run_dir} was trained with loss={det.cfg_.loss}, whose discriminator has no energy")
        calib = read_threshold(run_dir)
        if threshold is not None:
            det.threshold_ = float(threshold)
        elif calib is not None and int(calib.get("step", -1)) == det.step_:
            det.threshold_ = float(calib["threshold"])
        else:
            det.threshold_ = None
        return det

    def set_threshold(self, scores_or_value, contamination: float | None = None) -> EnergyDetector:
        """Set ``threshold_`` to a value, or (with ``contamination``) to the quantile of given normal scores."""
        if contamination is None:
            self.threshold_ = float(scores_or_value)
        else:
            self.threshold_ = threshold_at_fpr(np.asarray(scores_or_value), check_contamination(contamination))
        return self

    def _check_fitted(self) -> nn.Module:
        """The fitted discriminator ``D_``."""
        if self.D_ is None:
            raise EbganError("this EnergyDetector is not fitted; call fit(X) or EnergyDetector.from_run(RUN_DIR)")
        return self.D_

    def decision_function(self, X) -> np.ndarray:
        """The anomaly score of each row of ``X``: the energy, or the run's ``anomaly_score`` computed from it
        (float64 ``[N]``; higher = more anomalous)."""
        D = self._check_fitted()
        x = X if isinstance(X, Tensor) else torch.from_numpy(np.ascontiguousarray(X))
        x = check_like(x, _like(self.meta_), "X")
        e = energies(D, x, device=self.device)
        return anomaly_scores(e, x, self.cfg_.anomaly_score, ae_energy(D)).numpy()

    def predict(self, X) -> np.ndarray:
        """0 for inliers, 1 for outliers (energy above ``threshold_``)."""
        self._check_fitted()
        if self.threshold_ is None:
            raise EbganError("no threshold: fit with held-out data, pass threshold= to from_run, or set_threshold")
        return (self.decision_function(X) > self.threshold_).astype(np.int64)
