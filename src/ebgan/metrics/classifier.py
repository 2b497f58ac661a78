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
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._fileio import atomic_write_bytes
from ..errors import EbganError

# Pixel mean and standard deviation of the MNIST training set in [0, 1] (the values every MNIST tutorial uses).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

ARCH = "MnistClassifier-v1"
FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "mnist_classifier.safetensors"

# Training defaults of the shipped weights: about 3 minutes on 2 CPU cores.
DEFAULT_EPOCHS = 6
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 3e-3


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    # No conv bias: the BatchNorm that follows has its own shift.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


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

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_block(1, 32), nn.MaxPool2d(2),  # [N, 32, 14, 14]
            _conv_block(32, 64), nn.MaxPool2d(2),  # [N, 64, 7, 7]
            _conv_block(64, 128), nn.MaxPool2d(2),  # [N, 128, 3, 3]
            nn.Flatten(),  # [N, 1152]
            nn.Linear(128 * 3 * 3, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True),  # [N, 128]
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

    def __init__(self, model: MnistClassifier, path: Path, sha256: str, info: dict):
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
        raise EbganError(f"cannot read classifier weights {path}: {e}")
    model = MnistClassifier()
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise EbganError(f"{path} does not hold {ARCH} weights: {first}")
    model.eval()
    model.to(memory_format=torch.channels_last)
    side = sidecar_path(path)
    info: dict = {}
    if side.is_file():
        try:
            info = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise EbganError(f"cannot read classifier sidecar {side}: {e}")
    return LoadedClassifier(model, path, file_sha256(path), info)


def _shift_batch(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image of ``uint8 [B, 1, 28, 28]`` by its own random integer offset in ``[-s, s]^2``.

    Zero padding then an indexed crop: cheap, and drawn from ``generator`` so training is reproducible.
    """
    b, _, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s))  # [B, 1, H+2s, W+2s]
    dy = torch.randint(0, 2 * s + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * s + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # [B, H, 1]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # [B, 1, W]
    return padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)


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


def train_classifier(
    data_root: str | os.PathLike,
    out_path: str | os.PathLike,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    max_shift: int = 2,
    progress: bool = True,
) -> dict:
    """Train :class:`MnistClassifier` on the MNIST training set and save it with its sidecar.

    Recipe: Adam, one-cycle learning-rate schedule peaking at ``lr``, cross-entropy, random translations of up
    to ``max_shift`` pixels, ``epochs`` passes over the 60,000 training images in an order drawn from
    ``seed``. ``torch.manual_seed(seed)`` fixes the initial weights and dropout, a ``torch.Generator`` seeded
    with ``seed`` fixes the data order and the shifts, so the same seed on the same machine, torch version and
    thread count gives the same weights bit for bit (float reductions may differ across CPUs).

    After training it records in ``<out>.json``: test accuracy, seed, epochs, the recipe, and the real-data
    reference scores of this classifier (inception score and modified score of the test set, FID of the test
    set against the training set, Stacked MNIST modes/KL of 26,000 real triplets). The FID statistics of the
    real training and test sets go beside the weights in ``<out>.fid_stats.safetensors`` (260 kB), so that FID
    needs no MNIST files at evaluation time. All files are written atomically (temporary file, then
    ``os.replace``).

    Args:
        data_root: folder holding ``MNIST/raw/`` (read with :func:`ebgan.data.load_mnist`).
        out_path: where to write the ``.safetensors`` file (the sidecar goes beside it as ``.json``).
        seed, epochs, batch_size, lr, max_shift: the recipe above.
        progress: print one line per epoch.

    Returns:
        The sidecar dictionary.
    """
    from safetensors.torch import save

    from ..data import load_mnist

    if epochs < 1:
        raise EbganError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 2:
        raise EbganError(f"batch_size must be >= 2, got {batch_size}")
    out = Path(out_path)
    if out.suffix != ".safetensors":
        raise EbganError(f"classifier weights must be a .safetensors file, got {out}")
    x_train, y_train = load_mnist(data_root, "train")
    x_test, y_test = load_mnist(data_root, "test")

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MnistClassifier().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = x_train.shape[0]
    steps_per_epoch = n // batch_size  # drop the last partial batch: BatchNorm dislikes tiny batches
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total_loss = 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * batch_size : (step + 1) * batch_size]
            xb = x_train[idx]
            if max_shift > 0:
                xb = _shift_batch(xb, max_shift, gen)
            loss = F.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item()
        if progress:
            acc = accuracy(model, x_test, y_test)
            print(
                f"epoch {epoch + 1}/{epochs}: train loss {total_loss / steps_per_epoch:.4f}, "
                f"test accuracy {acc:.4f} ({time.time() - t0:.0f}s)",
                flush=True,
            )
    train_seconds = time.time() - t0
    model.eval()
    test_acc = accuracy(model, x_test, y_test)

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    blob = save(state, metadata={"arch": ARCH, "seed": str(seed), "epochs": str(epochs)})
    info = {
        "format": FORMAT_VERSION,
        "arch": ARCH,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "test_accuracy": test_acc,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "schedule": "one-cycle",
        "optimizer": "Adam",
        "augment": f"random shifts up to {max_shift} px",
        "train_seconds": round(train_seconds, 1),
        "torch": torch.__version__,
        "machine": machine_description(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # The reference scores need the saved file (the real-statistics cache is keyed by its hash).
    atomic_write_bytes(out, blob)
    loaded = LoadedClassifier(model, out, info["sha256"], info)
    from .reference import real_data_reference

    # Progress bars only on a terminal: in a log file they are thousands of carriage returns.
    info["reference"], stats = real_data_reference(loaded, data_root, progress=progress and sys.stderr.isatty())
    tensors = {f"{split}_{k}": v for split, (mu, sigma) in stats.items() for k, v in (("mu", mu), ("sigma", sigma))}
    atomic_write_bytes(stats_path(out), save(tensors, metadata={"classifier_sha256": info["sha256"]}))
    atomic_write_bytes(sidecar_path(out), (json.dumps(info, indent=2) + "\n").encode())
    return info
