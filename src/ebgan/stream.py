"""Image folders and zip files streamed from disk (``stream=true``), for data sets too large to hold in memory.

:class:`StreamedImages` lists the image files once (a folder recursively, or the members of a ``.zip``) and
decodes an image when asked, with Pillow, exactly as the in-memory loader does (resize of the short side,
centre crop, 1 or 3 channels). :class:`BatchStream` feeds the trainer: it is handed the trainer's own batch
order (the epoch permutation and position that checkpoints already hold) and reads those batches ahead in
``data_workers`` ``DataLoader`` worker processes. The order never depends on the workers, so a streamed run
gives the same batches as an in-memory run of the same files and seed, and resumes mid-epoch exactly.

A file Pillow cannot read stops the run with one error line naming it (as the in-memory loader does): a
training set should not silently shrink.
"""

from __future__ import annotations

import io
import os
import signal
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from .data import (
    IMAGE_EXTENSIONS,
    _check_channels,
    _check_image_size,
    _load_image,
    list_images,
)
from .errors import EbganError

# The largest zip member read as one image: an image file larger than this is not a training image, and a
# member declaring more is refused before it is inflated (with MAX_IMAGE_PIXELS the decoded image is bounded too).
MAX_MEMBER_BYTES = 256 << 20


class StreamedImages(torch.utils.data.Dataset):
    """The images of a folder or a ``.zip`` as ``uint8 [C, S, S]`` tensors decoded on demand.

    Same interface as :class:`ebgan.data.Dataset` where the trainer needs it (``name``, ``kind``, ``labels``,
    ``len``, ``sample_shape``); it has no ``data`` tensor.
    """

    kind = "image"
    labels = None

    def __init__(self, path: str | os.PathLike, image_size: int, channels: int) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.image_size = _check_image_size(image_size)
        self.channels = _check_channels(channels)
        self.mode = "L" if self.channels == 1 else "RGB"
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        if self.path.is_dir():
            self.files: list[str] = [str(p) for p in list_images(self.path)]
            self.is_zip = False
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            try:
                with zipfile.ZipFile(self.path) as zf:
                    names = [i.filename for i in zf.infolist() if not i.is_dir()]
            except (
                zipfile.BadZipFile,
                zipfile.LargeZipFile,
                OSError,
                EOFError,
                ValueError,
                NotImplementedError,
                UnicodeDecodeError,
            ) as e:
                raise EbganError(f"cannot read the zip file {self.path}: {e} (it is damaged; make it again)") from None
            self.files = sorted(
                n
                for n in names
                if Path(n).suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith((".", "__MACOSX")) for part in Path(n).parts)
            )
            self.is_zip = True
        else:
            raise EbganError(f"{self.path} is neither a folder nor a zip file of images")
        if not self.files:
            raise EbganError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found in {self.path}")

    def __len__(self) -> int:
        return len(self.files)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.channels, self.image_size, self.image_size)

    def _open(self, i: int):
        if not self.is_zip:
            return Path(self.files[i])
        name = self.files[i]
        try:
            if self._zip is None or self._zip_pid != os.getpid():  # one handle per worker process
                self._zip, self._zip_pid = zipfile.ZipFile(self.path), os.getpid()
            info = self._zip.getinfo(name)
            if info.file_size > MAX_MEMBER_BYTES:  # a zip "bomb": refused from its directory, before inflating
                raise EbganError(
                    f"cannot read image {self.path}:{name}: it inflates to {info.file_size:,} bytes, more "
                    f"than the limit of {MAX_MEMBER_BYTES:,} for one image (fix or remove the file)"
                )
            # zipfile stops at the declared size and checks the CRC: memory stays within the limit above.
            return io.BytesIO(self._zip.read(info))
        except EbganError:
            raise
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            EOFError,
            ValueError,
            NotImplementedError,
            RuntimeError,
            zlib.error,
            KeyError,
            UnicodeDecodeError,
        ) as e:
            raise EbganError(
                f"cannot read image {self.path}:{name}: {str(e)[:200] or type(e).__name__} (the zip "
                f"member is damaged; fix or remove it)"
            ) from None

    def __getitem__(self, i: int) -> Tensor:
        try:
            arr = _load_image(self._open(int(i)), self.image_size, self.mode, "center", None)
        except EbganError as err:
            if not self.is_zip or str(err).startswith(f"cannot read image {self.path}:"):
                raise  # the message names the file
            why = err.__context__ if err.__context__ is not None else str(err).split(": ", 1)[-1]
            raise EbganError(f"cannot read image {self.path}:{self.files[i]}: {why} (fix or remove the file)") from None
        t = torch.from_numpy(arr.copy())
        return t.unsqueeze(0) if self.channels == 1 else t.permute(2, 0, 1)

    def __getstate__(self) -> dict:  # worker processes open their own zip handle
        state = dict(self.__dict__)
        state["_zip"] = state["_zip_pid"] = None
        return state


def _quiet_worker(_worker_id: int) -> None:
    """Workers leave Ctrl-C and SIGTERM to the training process: it checkpoints and stops, and the workers
    end with it (they inherited its stop handler, which would print its message once per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class BatchStream:
    """Reads the given batches of indices ahead, in order, with ``workers`` processes (0: in this process)."""

    def __init__(self, dataset: StreamedImages, batches: list[Tensor], workers: int) -> None:
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=[b.tolist() for b in batches],
            num_workers=workers,
            prefetch_factor=4 if workers else None,
            worker_init_fn=_quiet_worker if workers else None,
        )
        self._it: Iterator[Tensor] | None = iter(loader)

    def next(self) -> Tensor:
        if self._it is None:
            raise ValueError("the batch stream is closed")
        try:
            return next(self._it)
        except EbganError as e:
            self.close()
            # A worker's error comes back as an EbganError whose message is the worker's whole traceback: keep
            # its last line, the message itself, so the user sees one line.
            lines = str(e).strip().splitlines()
            if len(lines) > 1 and "EbganError: " in lines[-1]:
                raise EbganError(lines[-1].split("EbganError: ", 1)[1]) from None
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the worker processes now. They ignore SIGTERM (see ``_quiet_worker``), so they must not be left
        to the interpreter's exit, which terminates leftover children with SIGTERM and waits for them: an
        iterator kept alive by an exception's traceback would hang the process at exit."""
        it, self._it = self._it, None
        shutdown = getattr(it, "_shutdown_workers", None)  # the multi-process iterator's own clean stop
        if shutdown is not None:
            shutdown()
        for w in getattr(it, "_workers", ()):  # a worker its SIGTERM did not end (it ignores it): SIGKILL
            if w.is_alive():
                w.kill()
                w.join()
