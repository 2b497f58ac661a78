"""Arrays from ``.npy`` files, read without unpickling (:func:`read_npy`), and the check that an array is shaped
and typed like a data set's samples (:func:`check_like`)."""

from __future__ import annotations

import importlib
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import EbganError
from .base import Dataset


def check_like(x: Tensor, like: Dataset, what: str) -> Tensor:
    """``x`` if it is shaped and typed like the samples of ``like`` (uint8 images or float points), else a clear
    error; float points are returned as float32."""
    shape = like.sample_shape
    if like.kind == "image":
        if x.dtype != torch.uint8:
            hint = " (map floats in [-1, 1] with ebgan.data.to_uint8)" if x.dtype.is_floating_point else ""
            raise EbganError(f"{what} must be uint8 images [N, {', '.join(map(str, shape))}], got {x.dtype}{hint}")
        if tuple(x.shape[1:]) != shape or x.dim() != 4:
            raise EbganError(
                f"{what} must be uint8 images [N, {', '.join(map(str, shape))}], got shape {list(x.shape)}"
            )
    else:
        if not x.dtype.is_floating_point:
            raise EbganError(f"{what} must be float points [N, {shape[0]}], got {x.dtype}")
        if x.dim() != 2 or tuple(x.shape[1:]) != shape:
            raise EbganError(f"{what} must be float points [N, {shape[0]}], got shape {list(x.shape)}")
        x = x.float()
        if not torch.isfinite(x).all():
            raise EbganError(f"{what} holds NaN or infinite values")
    if len(x) == 0:
        raise EbganError(f"{what} holds no samples")
    return x


def _read_npy_header(f, version):
    """numpy's own header parser for every .npy version (1.0, 2.0 and 3.0: its private helper)."""
    try:
        fmt = importlib.import_module("numpy.lib._format_impl")  # numpy >= 2
    except ImportError:  # numpy 1.x
        fmt = importlib.import_module("numpy.lib.format")
    return fmt._read_array_header(f, version)  # private: not in numpy's type stubs, hence the module lookup


def read_npy(path: str | os.PathLike, what: str = "input") -> np.ndarray:
    """Read a ``.npy`` array without unpickling; any problem (missing, empty, not .npy, Python objects, a header
    that does not match the file's size) is one EbganError line.

    The header is checked before the data is read: an array of numbers (bool, integer, float or complex) whose
    shape and type add up to no more bytes than the file holds. Memory is therefore bounded by the file's size,
    whatever its header claims."""
    p = Path(path)
    if not p.exists():
        raise EbganError(f"{what}: no such file: {p}")
    if p.suffix != ".npy":
        raise EbganError(f"{what} must be a .npy array file, got {p.name}")
    if not p.is_file():
        raise EbganError(f"{what} {p} is not a file")
    size = p.stat().st_size
    if size == 0:
        raise EbganError(f"{p} is empty")
    try:
        with open(p, "rb") as f:
            if f.read(6) != b"\x93NUMPY":  # numpy would call any other file "pickled data", which misleads
                raise EbganError(
                    f"{p} is not a .npy array file (it does not start with the .npy header); write "
                    f"arrays with numpy.save"
                )
            f.seek(0)
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = _read_npy_header(f, version)
            offset = f.tell()
    except EbganError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy parses the header as a Python literal: any error means damaged
        raise EbganError(
            f"cannot read {p} as a .npy array: its header is damaged "
            f"({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})"
        ) from None
    if dtype.hasobject:  # never unpickled: a file from elsewhere could run code
        raise EbganError(f"{p} holds Python objects (dtype object), not numbers")
    if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
        raise EbganError(f"{p} holds {dtype}, not numbers")
    need = math.prod(shape) * dtype.itemsize
    if need > size - offset:
        raise EbganError(
            f"{p} is truncated or corrupt: its header promises {need:,} bytes of data "
            f"({' x '.join(map(str, shape)) or 'scalar'} {dtype}), the file holds {size - offset:,}"
        )
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise EbganError(
            f"cannot read {p} as a .npy array: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    if not isinstance(x, np.ndarray):
        raise EbganError(f"{p} does not hold a single array")
    if not x.dtype.isnative:  # a big-endian file: torch takes native byte order only
        x = x.astype(x.dtype.newbyteorder("="))
    return x
