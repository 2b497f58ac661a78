"""Scoring samples against a data set (what ``ebgan eval`` runs; its command line lives in ``cli.py``).

``evaluate`` checks its input and dispatches on the data set:

* ``mnist``: inception score (mean, std over 10 splits), the EBGAN paper's modified score ``I'`` and FID on
  the project's classifier (features of the real training or test set, cached), with the classifier's test
  accuracy;
* ``ring`` / ``grid``: modes covered, % high-quality samples and reverse KL (PacGAN protocol, 2,500 samples);
* ``stacked-mnist``: modes covered of 1000 and KL to uniform, each channel labelled by the classifier (26,000
  samples).

Samples are ``uint8 [N, C, 28, 28]`` images or ``float [N, 2]`` points; they are scored in batches, so 50,000
MNIST samples need well under 2 GiB.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from .data import default_data_root, read_npy
from .errors import EbganError

DATASETS = ("mnist", "ring", "grid", "stacked-mnist")
# Protocol sample counts: PacGAN 2-D mixtures 2,500; VEEGAN/PacGAN Stacked MNIST 26,000; MNIST: the test set
# size, so that a model's FID is comparable with the real test-vs-train reference.
DEFAULT_N = {"mnist": 10_000, "ring": 2_500, "grid": 2_500, "stacked-mnist": 26_000}


def normalize_dataset_name(name: str) -> str:
    """``"stacked_mnist"`` / ``"Stacked-MNIST"`` -> ``"stacked-mnist"``; an unknown name raises EbganError."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise EbganError(f"cannot evaluate against {name!r}; valid choices: {', '.join(DATASETS)}")
    return key


def _check_images(x: np.ndarray, channels: int, against: str) -> None:
    if x.dtype != np.uint8:
        hint = " (convert generator output in [-1, 1] with ebgan.data.to_uint8)" if x.dtype.kind == "f" else ""
        raise EbganError(f"{against} samples must be uint8 images [N, {channels}, 28, 28], got dtype {x.dtype}{hint}")
    if x.ndim != 4 or x.shape[1:] != (channels, 28, 28):
        hint = ""
        if x.ndim == 4 and x.shape[2:] == (28, 28) and x.shape[1] in (1, 3) and x.shape[1] != channels:
            hint = (
                f" (for {x.shape[1]}-channel samples use --against {'mnist' if x.shape[1] == 1 else 'stacked-mnist'})"
            )
        raise EbganError(f"{against} samples must be uint8 [N, {channels}, 28, 28], got shape {list(x.shape)}{hint}")


def to_classifier_size(x: np.ndarray) -> np.ndarray:
    """Square ``uint8`` images of another size (a 64-pixel model of MNIST) resized to the classifier's 28 x 28
    (bilinear, antialiased: :func:`ebgan.data.resize_images`); anything else is returned as it is."""
    if x.dtype == np.uint8 and x.ndim == 4 and x.shape[2] == x.shape[3] and x.shape[2] != 28:
        from .data import resize_images

        return resize_images(torch.from_numpy(np.ascontiguousarray(x)), 28).numpy()
    return x


def _check_points(x: np.ndarray, against: str) -> None:
    if x.dtype.kind != "f":
        raise EbganError(f"{against} samples must be float32 points [N, 2], got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != 2:
        raise EbganError(f"{against} samples must be float32 points [N, 2], got shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise EbganError(f"{against} samples contain NaN or infinite values")


def evaluate(
    samples: np.ndarray | torch.Tensor,
    against: str,
    data_root: str | os.PathLike | None = None,
    n: int | None = None,
    batch_size: int = 500,
    progress: bool = False,
    classifier=None,
    fid_split: str = "train",
    second_classifier="auto",
) -> dict:
    """Score ``samples`` against a data set.

    Args:
        samples: ``uint8 [N, 1, 28, 28]`` (mnist), ``uint8 [N, 3, 28, 28]`` (stacked-mnist) or
            ``float32 [N, 2]`` (ring, grid); square images of another size (a model trained at 64 pixels) are
            resized to 28 first (:func:`to_classifier_size`).
        against: ``"mnist"``, ``"ring"``, ``"grid"`` or ``"stacked-mnist"``.
        data_root: folder holding ``MNIST/raw/``; read only to compute the real FID statistics once (they are
            then cached). Default ``$EBGAN_DATA_ROOT`` or ``./data``.
        n: score the first ``n`` samples. Default: all for mnist; for ring/grid and stacked-mnist the protocol's
            2,500 and 26,000 (or all, if fewer are given).
        batch_size: images per classifier pass (memory is one batch of activations).
        progress: show progress bars on standard error.
        classifier: a :class:`~ebgan.metrics.classifier.LoadedClassifier`, a weights path, or ``None`` for the
            packaged classifier.
        fid_split: the real MNIST split FID is measured against, ``"train"`` or ``"test"``.
        second_classifier: the second evaluator for mnist (``"auto"``: the packaged fully connected
            :class:`~ebgan.metrics.classifier.MnistMLP` when present; a LoadedClassifier or a path; None: off).
            Its scores are reported beside the first as ``is_mlp``, ``fid_mlp``, ``class_shares_mlp`` and
            ``mlp_accuracy``: a claim that holds on one feature space only shows up as a disagreement.

    Returns:
        mnist: ``is``, ``is_std``, ``paper_score``, ``fid``, ``classifier_accuracy``, ``class_shares`` (% of
        samples the classifier puts in each digit, 0-9); ring/grid: ``modes``,
        ``hq_pct``, ``reverse_kl``; stacked-mnist: ``modes``, ``kl``, ``classifier_accuracy``; always
        ``against`` and ``n`` (the number of samples scored).
    """
    from .metrics import scores

    against = normalize_dataset_name(against)
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    if not isinstance(samples, np.ndarray):
        raise EbganError(f"samples must be a numpy array, got {type(samples).__name__}")
    if samples.ndim == 0 or samples.shape[0] == 0:
        raise EbganError(f"no samples to evaluate (array of shape {list(samples.shape)})")
    if batch_size < 1:
        raise EbganError(f"batch_size must be >= 1, got {batch_size}")
    if against in ("ring", "grid"):
        _check_points(samples, against)
    else:
        samples = to_classifier_size(samples)
        _check_images(samples, 3 if against == "stacked-mnist" else 1, against)
    total = samples.shape[0]
    if n is None:
        n = total if against == "mnist" else min(total, DEFAULT_N[against])
    if not 1 <= n <= total:
        raise EbganError(f"-n must be between 1 and the number of samples ({total}), got {n}")
    samples = samples[:n]
    result: dict = {"against": against, "n": int(n)}

    if against in ("ring", "grid"):
        from .data import MIXTURES

        centers_fn, mode_sigma = MIXTURES[against]
        m = scores.count_modes_2d(samples, centers_fn(), mode_sigma)
        result.update(modes=m["modes"], hq_pct=m["hq_pct"], reverse_kl=m["reverse_kl"])
        return result

    from .metrics.classifier import LoadedClassifier, load_classifier
    from .metrics.reference import classify_channels, image_outputs, real_feature_stats

    clf = classifier if isinstance(classifier, LoadedClassifier) else load_classifier(classifier)
    images = torch.from_numpy(np.ascontiguousarray(samples))  # no copy: batches are converted one at a time
    if against == "stacked-mnist":
        digits = classify_channels(clf, images, batch_size, progress)  # [N, 3]
        m = scores.stacked_mnist_modes(digits)
        result.update(modes=m["modes"], kl=m["kl"], classifier_accuracy=clf.test_accuracy)
        return result

    if n < 10:
        raise EbganError(f"the inception score uses 10 splits and needs at least 10 samples, got {n}")
    if fid_split not in ("train", "test"):
        raise EbganError(f"--fid-split must be 'train' or 'test', got {fid_split!r}")
    # Real statistics first: a missing data set fails before minutes of scoring, not after.
    root = data_root if data_root is not None else default_data_root()
    mu_real, sigma_real = real_feature_stats(clf, root, fid_split, batch_size, progress)
    probs, mu, sigma = image_outputs(clf, images, batch_size, progress, desc="samples")
    is_mean, is_std = scores.inception_score(probs, splits=10)
    result.update(
        **{"is": is_mean},
        is_std=is_std,
        paper_score=scores.paper_inception_score(probs),
        fid=scores.frechet_distance(mu, sigma, mu_real, sigma_real),
        fid_split=fid_split,
        classifier_accuracy=clf.test_accuracy,
        # The share of samples the classifier assigns to each digit: a missing or rare digit is the first
        # sign of mode collapse, before IS or FID move much.
        class_shares=[
            round(100.0 * float(c) / n, 2) for c in torch.bincount(probs.argmax(dim=1), minlength=10).tolist()
        ],
    )
    from .metrics.classifier import load_second_classifier

    clf2 = (
        load_second_classifier()
        if second_classifier == "auto"
        else second_classifier
        if isinstance(second_classifier, LoadedClassifier) or second_classifier is None
        else load_second_classifier(second_classifier)
    )
    if clf2 is not None:
        mu_real2, sigma_real2 = real_feature_stats(clf2, root, fid_split, batch_size, progress)
        probs2, mu2, sigma2 = image_outputs(clf2, images, batch_size, progress, desc="samples (second evaluator)")
        is2, is2_std = scores.inception_score(probs2, splits=10)
        result.update(
            is_mlp=is2,
            is_mlp_std=is2_std,
            fid_mlp=scores.frechet_distance(mu2, sigma2, mu_real2, sigma_real2),
            mlp_accuracy=clf2.test_accuracy,
            class_shares_mlp=[
                round(100.0 * float(c) / n, 2) for c in torch.bincount(probs2.argmax(dim=1), minlength=10).tolist()
            ],
        )
    return result


# --------------------------------------------------------------------------------------------------- CLI


def load_samples(path: str | os.PathLike) -> np.ndarray:
    """Read a ``.npy`` sample file without unpickling; any problem is one EbganError line."""
    p = Path(path)
    if not p.exists():
        raise EbganError(f"no such file or run folder: {p}")
    if p.suffix != ".npy":
        raise EbganError(f"sample files must be .npy arrays, got {p.name}")
    return read_npy(p, "sample file")


def _fmt(v, spec: str = ".4f") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return format(v, spec)


def _exact_mixture_reference(against: str) -> dict:
    # Exact samples of the mixture itself (2,500, seed 0): what a perfect generator would score.
    from .data import MIXTURES, sample_mixture
    from .metrics.scores import count_modes_2d

    pts, _ = sample_mixture(against, DEFAULT_N[against], torch.Generator().manual_seed(0))
    centers_fn, sigma = MIXTURES[against]
    return count_modes_2d(pts, centers_fn(), sigma)


def summary_lines(result: dict, source: str, clf_info: dict | None = None, clf_path: str | None = None) -> list[str]:
    """Human-readable lines for a result of :func:`evaluate`, with the real-data reference values."""
    against = result["against"]
    lines = [f"ebgan eval: {result['n']} samples from {source} against {against}"]
    if against in ("ring", "grid"):
        k = 8 if against == "ring" else 25
        ref = _exact_mixture_reference(against)
        lines += [
            f"  modes covered        {result['modes']} / {k}",
            f"  high-quality samples {_fmt(result['hq_pct'], '.2f')} %  (within 3 sigma of the nearest mode)",
            f"  reverse KL           {_fmt(result['reverse_kl'])}  (mode frequencies vs uniform; 0 is perfect)",
            f"  reference: exact {against} samples (2500, seed 0) give {ref['modes']}/{k} modes, "
            f"{ref['hq_pct']:.2f} % high quality, reverse KL {ref['reverse_kl']:.4f}",
        ]
        if result["n"] < DEFAULT_N[against]:
            lines.append(f"  note: the PacGAN protocol uses {DEFAULT_N[against]} samples; scored {result['n']}")
        return lines

    info = clf_info or {}
    ref = info.get("reference", {})
    acc = result.get("classifier_accuracy")
    sha = info.get("sha256", "")[:12]
    lines.append(
        f"  classifier: {clf_path or 'packaged'} (sha256 {sha or '?'}, test accuracy "
        f"{_fmt(100 * acc if acc is not None else None, '.2f')} %)"
    )
    if against == "stacked-mnist":
        lines += [
            f"  modes covered        {result['modes']} / 1000",
            f"  KL to uniform        {_fmt(result['kl'])}  (0 is perfect; log 1000 = 6.91 for one mode)",
        ]
        if "stacked_modes" in ref:
            lines.append(
                f"  reference: {ref.get('stacked_samples', 26000)} real triplets give {ref['stacked_modes']} modes, "
                f"KL {ref['stacked_kl']:.4f}"
            )
        if result["n"] < DEFAULT_N[against]:
            lines.append(f"  note: the VEEGAN/PacGAN protocol uses {DEFAULT_N[against]} samples; scored {result['n']}")
        return lines

    lines += [
        f"  inception score      {_fmt(result['is'])} +- {_fmt(result['is_std'])}"
        + (f"   (real test set: {ref['is']:.4f} +- {ref['is_std']:.4f})" if "is" in ref else ""),
        f"  paper score I'       {_fmt(result['paper_score'])}"
        + (f"   (real test set: {ref['paper_score']:.4f})" if "paper_score" in ref else ""),
        f"  FID vs real {result.get('fid_split', 'train'):5s}    {_fmt(result['fid'])}"
        + (f"   (real test set vs train: {ref['fid_test_vs_train']:.4f})" if "fid_test_vs_train" in ref else ""),
    ]
    shares = result.get("class_shares")
    if shares:
        lines.append(
            "  digits (% of samples) "
            + "  ".join(f"{d}:{s:.1f}" for d, s in enumerate(shares))
            + "   (real data: about 10 each)"
        )
    if "fid_mlp" in result:
        from .metrics.classifier import SECOND_WEIGHTS, sidecar_path

        ref2 = {}
        if sidecar_path(SECOND_WEIGHTS).is_file():
            ref2 = json.loads(sidecar_path(SECOND_WEIGHTS).read_text()).get("reference", {})
        acc2 = result.get("mlp_accuracy")
        lines += [
            f"  second evaluator: fully connected MnistMLP (test accuracy "
            f"{_fmt(100 * acc2 if acc2 is not None else None, '.2f')} %), its own features:",
            f"  inception score      {_fmt(result['is_mlp'])} +- {_fmt(result['is_mlp_std'])}"
            + (f"   (real test set: {ref2['is']:.4f})" if "is" in ref2 else ""),
            f"  FID vs real {result.get('fid_split', 'train'):5s}    {_fmt(result['fid_mlp'])}"
            + (f"   (real test set vs train: {ref2['fid_test_vs_train']:.4f})" if "fid_test_vs_train" in ref2 else ""),
        ]
        shares2 = result.get("class_shares_mlp")
        if shares2:
            lines.append("  digits (% of samples) " + "  ".join(f"{d}:{s:.1f}" for d, s in enumerate(shares2)))
    return lines


def class_scores(
    samples: dict[int, np.ndarray], data_root: str | os.PathLike | None = None, classifier=None, batch_size: int = 500
) -> dict:
    """Scores of a class-conditional MNIST generator, one class at a time.

    ``samples`` maps a digit ``k`` to ``uint8 [N, 1, 28, 28]`` images drawn for class ``k``. For each class:
    ``accuracy``, the share the classifier puts in class ``k``, and ``fid``, the FID of the samples against
    the real training images of digit ``k`` (about 6,000; their statistics are computed here, from
    ``data_root``). Returns ``{"per_class": {k: {"accuracy", "fid", "n"}}, "accuracy": mean, "fid_mean":
    mean}``.
    """
    from .data import load_mnist
    from .metrics.classifier import LoadedClassifier, load_classifier
    from .metrics.reference import image_outputs
    from .metrics.scores import frechet_distance

    clf = classifier if isinstance(classifier, LoadedClassifier) else load_classifier(classifier)
    images, labels = load_mnist(default_data_root() if data_root is None else data_root, "train")
    per_class = {}
    for k, x in sorted(samples.items()):
        if not 0 <= k <= 9:
            raise EbganError(f"MNIST classes are 0-9, got {k}")
        _check_images(x, 1, "mnist")
        probs, mu, sigma = image_outputs(clf, torch.from_numpy(x), batch_size)
        _, mu_r, sigma_r = image_outputs(clf, images[labels == k], batch_size)
        per_class[k] = {
            "accuracy": float((probs.argmax(1) == k).double().mean()),
            "fid": frechet_distance(mu, sigma, mu_r, sigma_r),
            "n": int(len(x)),
        }
    return {
        "per_class": per_class,
        "accuracy": float(np.mean([v["accuracy"] for v in per_class.values()])),
        "fid_mean": float(np.mean([v["fid"] for v in per_class.values()])),
    }
