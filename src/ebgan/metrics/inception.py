"""FID and inception score on Inception-v3 features: the field's numbers for natural images (CelebA, LSUN,
ImageNet runs). Optional extra: ``pip install 'ebgan[inception]'`` (torch-fidelity).

The network is torch-fidelity's ``FeatureExtractorInceptionV3``: the TensorFlow Inception graph of 2015-12-05
that the original FID code (Heusel et al. 2017, TTUR) and the inception score (Salimans et al. 2016) use,
converted to PyTorch, with TensorFlow's bilinear resize to 299 x 299. So a score here is comparable with
published FID and IS figures, which a torchvision Inception is not (other weights, other resize).

* FID: Frechet distance between Gaussians fitted to the 2048-d pool features of the samples and of the real
  images, :func:`ebgan.metrics.scores.frechet_distance`.
* IS: ``exp E KL(p(y|x) || p(y))`` over 10 splits on the softmax of the 1008 logits without the final bias
  (``logits_unbiased``, as in the reference code), :func:`ebgan.metrics.scores.inception_score`.

Weights: ``weights=PATH`` (or ``$EBGAN_INCEPTION_WEIGHTS``), else the copy in ``<cache>/inception/`` that
:func:`download_inception_weights` (``ebgan download inception``) fetched and checked against its SHA-256.
Any other file is refused unless ``verify=False``: FID on other weights is a different metric.

torch-fidelity's package imports torchvision when it starts; where torchvision cannot be installed (a CPU
build of torch without a matching torchvision wheel), the extractor's own module, which needs only torch, is
loaded without the package's ``__init__``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import EbganError
from .classifier import file_sha256
from .scores import GaussianStats, frechet_distance, inception_score

WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FEATURES = 2048
CLASSES = 1008  # the 2015 graph's output: 1000 ImageNet classes and 8 unused ones
INSTALL_HINT = "pip install 'ebgan[inception]' (torch-fidelity)"


def _extractor_class():
    """torch-fidelity's ``FeatureExtractorInceptionV3``, importing only what it needs where torchvision is
    missing. Raises EbganError with the install command when torch-fidelity is absent."""
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        raise EbganError(f"Inception FID/IS need torch-fidelity: {INSTALL_HINT}")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import (
            FeatureExtractorInceptionV3,
        )

        return FeatureExtractorInceptionV3
    except ImportError:  # the package's __init__ needs torchvision (its data sets and other extractors)
        pass
    # Register the package as an empty module over its folder, so that importing the extractor runs only its
    # own module and the helpers it imports, which need nothing but torch.
    for name in [m for m in sys.modules if m == "torch_fidelity" or m.startswith("torch_fidelity.")]:
        del sys.modules[name]  # a half-imported package from the failed attempt
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    sys.modules["torch_fidelity"] = pkg
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    return FeatureExtractorInceptionV3


def weights_cache_path() -> Path:
    from .reference import cache_dir

    return cache_dir() / "inception" / WEIGHTS_FILE


def download_inception_weights(
    dest: str | os.PathLike | None = None, url: str | None = None, progress: bool = True, timeout: float = 60.0
) -> Path:
    """Fetch the FID Inception weights (91 MB) to ``dest`` (default :func:`weights_cache_path`), checking
    their SHA-256; a file already there with the right checksum is kept. Returns the path."""
    from ..data import fetch_verified

    url = url or WEIGHTS_URL
    path = Path(dest) if dest is not None else weights_cache_path()
    if path.is_file() and file_sha256(path) == WEIGHTS_SHA256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)

    def check(p: Path) -> str | None:
        got = file_sha256(p)
        return None if got == WEIGHTS_SHA256 else f"SHA-256 is {got}, expected {WEIGHTS_SHA256}"

    try:
        fetch_verified(url, path, check, progress, timeout)
    except EbganError:
        raise
    except Exception as e:  # data._FetchError: one line saying which URL failed and why
        raise EbganError(
            f"could not download the Inception weights from {url}: {e}; copy {WEIGHTS_FILE} to "
            f"{path} by hand or pass --inception-weights FILE"
        ) from None
    return path


@dataclass
class Inception:
    """The loaded network, the weights file it came from and that file's SHA-256 (recorded with scores)."""

    model: torch.nn.Module
    path: Path
    sha256: str


def load_inception(
    weights: str | os.PathLike | None = None, verify: bool = True, device: str | torch.device = "cpu"
) -> Inception:
    """The FID Inception network from ``weights``, ``$EBGAN_INCEPTION_WEIGHTS`` or the cached download.

    Raises EbganError when torch-fidelity is not installed, no weights file is found (with the command that
    fetches it), or (``verify=True``) the file is not the published weights.
    """
    cls = _extractor_class()
    if weights is None:
        weights = os.environ.get("EBGAN_INCEPTION_WEIGHTS") or None
    path = Path(weights) if weights is not None else weights_cache_path()
    if not path.is_file():
        if weights is not None:
            raise EbganError(f"Inception weights file {path} does not exist")
        raise EbganError(
            f"no Inception weights at {path}: run `ebgan download inception` (with internet), or "
            f"pass --inception-weights FILE ({WEIGHTS_FILE}, from {WEIGHTS_URL})"
        )
    sha = file_sha256(path)
    if verify and sha != WEIGHTS_SHA256:
        raise EbganError(
            f"{path} is not the FID Inception weights (SHA-256 {sha[:16]}..., expected "
            f"{WEIGHTS_SHA256[:16]}...): FID and IS on other weights are not comparable with "
            "published figures"
        )
    try:
        model = cls("inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path))
    except Exception as e:  # not a checkpoint (UnpicklingError), other keys or shapes (RuntimeError), I/O
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EbganError(f"cannot load Inception weights from {path}: {first}") from None
    return Inception(model.to(device).eval(), path, sha)


def to_inception_input(images: Tensor) -> Tensor:
    """``uint8 [N, C, H, W]`` with C = 1 or 3 -> ``uint8 [N, 3, H, W]`` (a grey image repeated in R, G and B,
    as the FID code does for grey data sets). The network itself resizes to 299 and scales to [-1, 1]."""
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        raise EbganError(f"Inception scoring needs uint8 images [N, C, H, W], got {got}")
    c = images.shape[1]
    if c == 1:
        return images.expand(-1, 3, -1, -1)
    if c != 3:
        raise EbganError(f"Inception scoring needs 1- or 3-channel images, got {c} channels")
    return images


def inception_outputs(
    inc: Inception, images: Tensor, batch_size: int = 50, progress: bool = False, desc: str = "inception"
) -> tuple[Tensor, Tensor, Tensor]:
    """Softmax of the unbiased logits and FID statistics of ``uint8 [N, C, H, W]`` images, in batches.

    Returns ``(probs float64 [N, 1008], mu float64 [2048], sigma float64 [2048, 2048])``; memory is one batch
    of activations at 299 x 299 plus the probabilities.
    """
    from .reference import _progress

    images = to_inception_input(images)
    if batch_size < 1:
        raise EbganError(f"batch_size must be >= 1, got {batch_size}")
    n = images.shape[0]
    device = next(inc.model.parameters()).device
    probs = torch.empty(n, CLASSES, dtype=torch.float64)
    stats = GaussianStats(FEATURES)
    starts = range(0, n, batch_size)
    with torch.inference_mode():
        for i in _progress(starts, len(starts), desc, progress):
            pool, logits = inc.model(images[i : i + batch_size].to(device))
            probs[i : i + pool.shape[0]] = torch.softmax(logits.double(), dim=1).cpu()
            stats.update(pool.cpu())
    mu, sigma = stats.result()
    return probs, mu, sigma


def load_reference(ref: str | os.PathLike, image_size: int, channels: int) -> Tensor:
    """The real images to compare with: a folder of images (centre-cropped and resized to the samples' size,
    as the training data was) or a ``.npy`` of ``uint8 [N, C, H, W]``."""
    from ..data import load_image_folder, read_npy, resize_images

    p = Path(ref)
    if p.is_dir():
        return load_image_folder(p, image_size, channels)
    if not p.exists():
        raise EbganError(f"reference {p} does not exist (a folder of images or an .npy of uint8 images)")
    x = torch.from_numpy(np.ascontiguousarray(read_npy(p, "reference")))
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise EbganError(f"reference {p} must hold uint8 images [N, C, H, W], got {x.dtype} {tuple(x.shape)}")
    if x.shape[2:] != (image_size, image_size):
        x = resize_images(x, image_size)
    return x


def inception_scores(
    samples: np.ndarray | Tensor,
    reference: str | os.PathLike | Tensor,
    inc: Inception,
    n: int | None = None,
    batch_size: int = 50,
    progress: bool = False,
) -> dict:
    """IS of ``samples`` and their FID against ``reference`` (a folder, an ``.npy`` or a uint8 tensor), both on
    the FID Inception network. Returns ``is``, ``is_std``, ``fid``, ``n``, ``n_reference``,
    ``inception_sha256``."""
    x = torch.as_tensor(np.ascontiguousarray(samples)) if isinstance(samples, np.ndarray) else samples
    to_inception_input(x)  # the shape and dtype checks, before any real image is read
    total = x.shape[0]
    n = total if n is None else n
    if not 10 <= n <= total:
        raise EbganError(
            f"the inception score uses 10 splits: -n must be between 10 and the number of samples ({total}), got {n}"
        )
    x = x[:n]
    real = reference if isinstance(reference, Tensor) else load_reference(reference, x.shape[-1], x.shape[1])
    if real.shape[0] < 2:
        raise EbganError(f"FID needs at least 2 reference images, got {real.shape[0]}")
    _, mu_r, sigma_r = inception_outputs(inc, real, batch_size, progress, desc="reference")
    probs, mu, sigma = inception_outputs(inc, x, batch_size, progress, desc="samples")
    is_mean, is_std = inception_score(probs, splits=10)
    return {
        "is": is_mean,
        "is_std": is_std,
        "fid": frechet_distance(mu, sigma, mu_r, sigma_r),
        "n": int(n),
        "n_reference": int(real.shape[0]),
        "inception_sha256": inc.sha256,
    }
