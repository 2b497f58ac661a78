"""The MNIST classifier that every image metric of this project is computed with.

Inception score, the paper's modified score, FID ("FID-LeNet") and Stacked MNIST mode counts all depend on the
classifier ("Scores depend on the classifier: always print the classifier's test accuracy
and the real-data score beside a model's score"). The project therefore trains its own small ConvNet, ships the
weights as safetensors with a JSON sidecar (test accuracy, seed, epochs, real-data scores), and rebuilds it
bit-for-bit from a seed with ``ebgan train-classifier``.

Input normalisation (done inside the network, so callers pass samples as they have them):

* ``uint8`` images in ``[0, 255]`` are mapped to ``x / 255``;
* floating images are taken to be in ``[-1, 1]`` (the generators' ``tanh`` range) and mapped to ``(x + 1) / 2``;
* then both are standardised with the MNIST training-set mean and standard deviation,
  ``(x - 0.1307) / 0.3081``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import TypeAlias

import torch
from torch import Tensor, nn

from ..errors import EbganError

# Pixel mean and standard deviation of the MNIST training set in [0, 1] (the values every MNIST tutorial uses).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

ARCH = "MnistClassifier-v1"
MLP_ARCH = "MnistMLP-v1"
FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "mnist_classifier.safetensors"
# The second evaluator: another architecture (a fully connected net, no convolutions) trained with another
# seed, so that a quality claim that holds on one feature space can be checked on a second, independent one.
SECOND_WEIGHTS = WEIGHTS_DIR / "mnist_mlp.safetensors"


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    # No conv bias: the BatchNorm that follows has its own shift.
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class MnistClassifier(nn.Module):
    """A small ConvNet for 28x28 MNIST digits (about 242k parameters, 1 MB of float32 weights).

    ``(32)3c-pool-(64)3c-pool-(128)3c-pool-fc128-fc10``: three 3x3 convolutions with BatchNorm and ReLU, each
    followed by 2x2 max pooling (28 -> 14 -> 7 -> 3), a 128-unit hidden layer (BatchNorm, ReLU, dropout 0.3 in
    training) and a 10-way linear output.

    * :meth:`forward` returns the ``[N, 10]`` logits;
    * :meth:`features` returns the ``[N, 128]`` penultimate-layer activations (after the ReLU, before dropout and
      the output layer) that FID is computed on.

    Inputs are ``[N, 1, 28, 28]``, either ``uint8`` in ``[0, 255]`` or floating in ``[-1, 1]``; see the module
    docstring for the normalisation.
    """

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_block(1, 32),
            nn.MaxPool2d(2),  # [N, 32, 14, 14]
            _conv_block(32, 64),
            nn.MaxPool2d(2),  # [N, 64, 7, 7]
            _conv_block(64, 128),
            nn.MaxPool2d(2),  # [N, 128, 3, 3]
            nn.Flatten(),  # [N, 1152]
            nn.Linear(128 * 3 * 3, 128, bias=False),
            nn.BatchNorm1d(128),
            nn.ReLU(inplace=True),  # [N, 128]
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(128, 10)

    @staticmethod
    def preprocess(x: Tensor) -> Tensor:
        """``[N, 1, 28, 28]`` uint8 ``[0, 255]`` or float ``[-1, 1]`` -> standardised float32, channels-last.

        ``uint8: x / 255``; ``float: (x + 1) / 2``; then ``(x - 0.1307) / 0.3081``.
        """
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise EbganError(f"the MNIST classifier takes [N, 1, 28, 28] images, got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        elif x.is_floating_point():
            x = (x.float() + 1.0) * 0.5
        else:
            raise EbganError(f"the MNIST classifier takes uint8 or floating images, got {x.dtype}")
        # channels_last: about 1.8x faster convolutions on these CPUs (measured, batch 500).
        return ((x - MNIST_MEAN) / MNIST_STD).contiguous(memory_format=torch.channels_last)

    def features(self, x: Tensor) -> Tensor:
        """``[N, 1, 28, 28]`` -> ``[N, 128]`` penultimate activations (the FID feature space)."""
        return self.body(self.preprocess(x))

    def forward(self, x: Tensor) -> Tensor:
        """``[N, 1, 28, 28]`` -> ``[N, 10]`` logits."""
        return self.head(self.dropout(self.features(x)))


class MnistMLP(nn.Module):
    """The second evaluator: a fully connected net ``784-512-256-10`` (BatchNorm and ReLU on both hidden
    layers, dropout 0.3 before the output; about 535k parameters).

    It sees pixels without any notion of locality, so its features differ from the ConvNet's by construction:
    FID on its ``[N, 256]`` second hidden layer is a second opinion on a sample set, not a rescaled copy of the
    first. Same inputs and normalisation as :class:`MnistClassifier`.
    """

    feature_dim = 256

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 512, bias=False),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Linear(512, 256, bias=False),
            nn.BatchNorm1d(256),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(256, 10)

    @staticmethod
    def preprocess(x: Tensor) -> Tensor:
        return MnistClassifier.preprocess(x).contiguous()

    def features(self, x: Tensor) -> Tensor:
        """``[N, 1, 28, 28]`` -> ``[N, 256]`` second-hidden-layer activations (its FID feature space)."""
        return self.body(self.preprocess(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.features(x)))


# A classifier of either architecture: ``features`` (the FID feature space), ``head`` (features to logits) and
# ``feature_dim``.
Classifier: TypeAlias = MnistClassifier | MnistMLP
# Architecture name (as recorded in the weights' metadata and sidecar) -> network.
ARCHS: dict[str, type[Classifier]] = {ARCH: MnistClassifier, MLP_ARCH: MnistMLP}
# The short names `ebgan train-classifier --arch` takes.
ARCH_NAMES = {"conv": ARCH, "mlp": MLP_ARCH}


def build_classifier(arch: str = ARCH) -> Classifier:
    """An untrained classifier of architecture ``arch`` (a key of :data:`ARCHS` or of :data:`ARCH_NAMES`)."""
    arch = ARCH_NAMES.get(arch, arch)
    if arch not in ARCHS:
        raise EbganError(f"unknown classifier architecture {arch!r}; choose one of {', '.join(ARCH_NAMES)}")
    model = ARCHS[arch]()
    if arch == ARCH:
        # about 1.8x faster convolutions on these CPUs (Module.to takes memory_format; its stubs omit it)
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file (the classifier's identity in cache keys and sidecars)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(weights_path: str | os.PathLike) -> Path:
    """``mnist_classifier.safetensors`` -> ``mnist_classifier.json``."""
    return Path(weights_path).with_suffix(".json")


def stats_path(weights_path: str | os.PathLike) -> Path:
    """``mnist_classifier.safetensors`` -> ``mnist_classifier.fid_stats.safetensors`` (real FID statistics)."""
    p = Path(weights_path)
    return p.with_name(p.name.removesuffix(".safetensors") + ".fid_stats.safetensors")


def machine_description() -> str:
    """``"AMD EPYC, 2 threads, Linux x86_64"``: where a timing or a bitwise-reproducible run was made."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, {platform.system()} {platform.machine()}"


class LoadedClassifier:
    """A classifier in eval mode with its provenance: ``model``, ``path``, ``sha256`` and ``info`` (the sidecar)."""

    def __init__(self, model: Classifier, path: Path, sha256: str, info: dict):
        self.model = model
        self.path = path
        self.sha256 = sha256
        self.info = info

    @property
    def test_accuracy(self) -> float | None:
        return self.info.get("test_accuracy")


def load_classifier(path: str | os.PathLike | None = None) -> LoadedClassifier:
    """Load classifier weights (safetensors, never pickle) and their JSON sidecar; eval mode, CPU.

    Args:
        path: a ``.safetensors`` file written by :func:`train_classifier`; ``None`` loads the packaged weights
            ``ebgan/weights/mnist_classifier.safetensors``.
    """
    from safetensors.torch import load_file

    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        hint = " (train one with `ebgan train-classifier`)" if path == DEFAULT_WEIGHTS else ""
        raise EbganError(f"classifier weights not found: {path}{hint}")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise EbganError(f"cannot read classifier weights {path}: {e}") from e
    side = sidecar_path(path)
    info: dict = {}
    if side.is_file():
        try:
            info = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise EbganError(f"cannot read classifier sidecar {side}: {e}") from e
    arch = info.get("arch") or _metadata_arch(path) or ARCH
    if arch not in ARCHS:
        raise EbganError(f"{path}: unknown classifier architecture {arch!r} (known: {', '.join(ARCHS)})")
    model = build_classifier(arch)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise EbganError(f"{path} does not hold {arch} weights: {first}") from e
    model.eval()
    return LoadedClassifier(model, path, file_sha256(path), info)


def _metadata_arch(path: Path) -> str | None:
    """The architecture recorded in a safetensors file's metadata (``train_classifier`` writes it)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("arch")
    except Exception:  # noqa: BLE001 - unreadable metadata: the caller falls back to the default
        return None


def load_second_classifier(path: str | os.PathLike | None = None) -> LoadedClassifier | None:
    """The second evaluator (:class:`MnistMLP`, packaged as ``weights/mnist_mlp.safetensors``), or None when
    neither ``path`` nor the packaged file exists."""
    p = Path(path) if path is not None else SECOND_WEIGHTS
    return load_classifier(p) if (path is not None or p.is_file()) else None


@torch.inference_mode()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``images`` whose arg-max logit equals ``labels``."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, images.shape[0], batch_size):
        correct += (model(images[i : i + batch_size]).argmax(1) == labels[i : i + batch_size]).sum().item()
    model.train(was_training)
    return correct / images.shape[0]
