"""The in-memory form every source is loaded into: :class:`Dataset` (``uint8`` images or ``float32`` points)
and :func:`to_uint8`, which maps float images in ``[-1, 1]`` back to its ``uint8`` pixels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Dataset:
    """An in-memory data set.

    Attributes:
        name: registry name or folder path.
        kind: ``"image"`` or ``"points"``.
        data: ``uint8 [N, C, H, W]`` for images, ``float32 [N, 2]`` for points.
        labels: ``int64 [N]`` where known, else ``None``.
    """

    name: str
    kind: str
    data: Tensor
    labels: Tensor | None = None

    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(C, H, W)`` or ``(2,)``."""
        return tuple(self.data.shape[1:])

    def get(self, idx: Tensor) -> Tensor:
        """The float32 batch at ``idx``; images mapped from ``[0, 255]`` to ``[-1, 1]``."""
        x = self.data[idx]
        if self.kind == "image":
            return x.float().div_(127.5).sub_(1.0)
        return x


def to_uint8(x: Tensor) -> Tensor:
    """Map float images in ``[-1, 1]`` back to ``uint8 [0, 255]`` (rounded, clamped)."""
    return ((x.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
