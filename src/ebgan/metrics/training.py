"""Training the project's MNIST classifier (``ebgan train-classifier``) and recording its real-data reference
scores beside its weights. Apart from :mod:`.classifier` (the network, loading) so that :mod:`.reference`,
which scores with a loaded classifier, and the training, which needs those scores, import in one direction.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._fileio import atomic_write_bytes
from ..errors import EbganError
from .classifier import (
    ARCH_NAMES,
    FORMAT_VERSION,
    LoadedClassifier,
    accuracy,
    build_classifier,
    machine_description,
    sidecar_path,
    stats_path,
)
from .reference import real_data_reference

# Training defaults of the shipped weights: about 3 minutes on 2 CPU cores.
DEFAULT_EPOCHS = 6
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 3e-3


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


def train_classifier(
    data_root: str | os.PathLike,
    out_path: str | os.PathLike,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    max_shift: int = 2,
    progress: bool = True,
    arch: str = "conv",
) -> dict:
    """Train a classifier (``arch``: ``conv``, :class:`MnistClassifier`, or ``mlp``, :class:`MnistMLP`, the
    second evaluator) on the MNIST training set and save it with its sidecar.

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
    model = build_classifier(arch)
    arch_name = ARCH_NAMES.get(arch, arch)
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
    blob = save(state, metadata={"arch": arch_name, "seed": str(seed), "epochs": str(epochs)})
    info: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "arch": arch_name,
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
    # Progress bars only on a terminal: in a log file they are thousands of carriage returns.
    info["reference"], stats = real_data_reference(loaded, data_root, progress=progress and sys.stderr.isatty())
    tensors = {f"{split}_{k}": v for split, (mu, sigma) in stats.items() for k, v in (("mu", mu), ("sigma", sigma))}
    atomic_write_bytes(stats_path(out), save(tensors, metadata={"classifier_sha256": info["sha256"]}))
    atomic_write_bytes(sidecar_path(out), (json.dumps(info, indent=2) + "\n").encode())
    return info
