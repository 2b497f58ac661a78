"""TensorBoard logging beside ``metrics.jsonl`` (``--set tensorboard=true``; ``pip install 'ebgan[tensorboard]'``).

Every row of ``metrics.jsonl`` (training averages and ``eval/*`` scores) becomes scalars at its step, and every
sample grid written during training an image, in ``RUN_DIR/tensorboard/``. A resumed run purges the events
logged after the checkpoint it starts from (TensorBoard's ``purge_step``), as ``metrics.jsonl`` drops its rows,
so the curves show each step once.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from . import _faults
from ._fileio import writing
from .errors import EbganError


class TensorBoardLog:
    def __init__(self, run_dir: Path, start_step: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise EbganError("tensorboard=true needs TensorBoard: pip install 'ebgan[tensorboard]'") from None
        # Rows up to the checkpoint's step are kept (as in metrics.jsonl); later ones are logged again.
        # Events are written by TensorBoard's own thread; a failed write (full disk) comes back at the next
        # call, raised here as WriteFailed naming the folder.
        self.dir = Path(run_dir) / "tensorboard"
        with writing(self.dir):
            self.writer = SummaryWriter(str(self.dir), purge_step=start_step + 1 if start_step else None)
        # The event file (named by TensorBoard: time and host), for messages; the folder if it cannot be found.
        self.path = Path(getattr(getattr(self.writer._get_file_writer(), "event_writer", None), "_file_name", self.dir))

    def scalars(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        with writing(self.path):
            _faults.io_point(self.path)
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self.writer.add_scalar(k, v, step)
            self.writer.flush()

    def image(self, png: Path, step: int, tag: str = "samples") -> None:
        from PIL import Image

        with Image.open(png) as im:
            arr = np.asarray(im.convert("RGB"))
        with writing(self.path):
            _faults.io_point(self.path)
            self.writer.add_image(tag, arr, step, dataformats="HWC")
            self.writer.flush()

    def close(self) -> None:
        with writing(self.path):
            self.writer.flush()
            self.writer.close()
