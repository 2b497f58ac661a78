"""Checkpoints that resume exactly, written atomically.

Layout of a run folder::

    run/
      config.json                  the resolved configuration
      metrics.jsonl                one JSON object per logged step
      checkpoints/latest           name of the newest complete checkpoint (written last, atomically)
      checkpoints/best/            (with best_metric) the checkpoint that scored best so far
      checkpoints/step-00001000/
          weights.safetensors      G.* and D.* parameters and buffers (safe to load from any source)
          state.pt                 optimisers, step, RNG states, data cursor, loss state (tensors and
                                   plain Python only; loaded with weights_only=True, never unpickled code)
          config.json

A checkpoint folder is filled under a temporary name and renamed into place, and ``latest`` is replaced
only after that, so a kill at any moment leaves the previous checkpoint intact and pointed to. Re-saving a
folder that exists (a new best, or the same step again) moves the old one to ``NAME.old.tmp`` first; a kill
between the two renames is repaired by :func:`recover_checkpoints`, which a resumed run calls first.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from . import _faults
from ._fileio import atomic_write_text, fsync_dir, writing
from .errors import EbganError

FORMAT_VERSION = 1


def _flat_weights(nets: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    out = {}
    for prefix, net in nets.items():
        for k, v in net.state_dict().items():
            out[f"{prefix}.{k}"] = v.detach().cpu().contiguous().clone()
    return out


class _Recording:
    """A file object for ``torch.save`` that keeps the ``OSError`` of a failed write: torch's serializer turns
    it into ``RuntimeError: ... unexpected pos`` and drops the errno (a full disk would read as a bug)."""

    def __init__(self, f) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def _write_file(path: Path, hook: Path, fill) -> None:
    """Create ``path``, write ``fill`` (bytes, or a function that writes to the file object it is given) and
    fsync it; ``hook`` is the path that fault injection and messages use (the final name, not the temporary
    folder's)."""
    with open(path, "xb") as f:
        rec = _Recording(f)
        try:
            if isinstance(fill, bytes):
                rec.write(fill)
            else:
                fill(rec)
        except RuntimeError:
            if rec.error is not None:
                raise rec.error from None
            raise
        _faults.io_point(hook)
        f.flush()
        os.fsync(f.fileno())


def write_checkpoint_dir(
    final: Path, step: int, nets: dict[str, torch.nn.Module], state: dict[str, Any], config: dict[str, Any]
) -> Path:
    """Fill a temporary folder beside ``final`` and rename it into place (replacing an older one).

    Every file is fsynced before the rename and the folder after it, so that ``latest`` (written next) never
    points at a checkpoint that a power cut could leave half on disk. A failed write (full disk, I/O error)
    raises :class:`WriteFailed` naming the file, deletes the temporary folder and leaves the previous
    checkpoint (and a re-saved one's old copy) in place."""
    with writing(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=final.name + ".", suffix=".tmp"))
    old = final.with_name(final.name + ".old.tmp")
    try:
        # Serialized in memory first: safetensors' own file writer reports a full disk as a SafetensorError
        # without the errno. The bytes cost one more copy of the weights for the moment of the write.
        blob = save(_flat_weights(nets), metadata={"format_version": str(FORMAT_VERSION), "step": str(step)})
        with writing(final / "weights.safetensors"):
            _write_file(tmp / "weights.safetensors", final / "weights.safetensors", blob)
        del blob
        _faults.point("checkpoint-write")
        with writing(final / "state.pt"):
            _write_file(
                tmp / "state.pt",
                final / "state.pt",
                lambda f: torch.save({"format_version": FORMAT_VERSION, "step": step, **state}, f),
            )
        text = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
        with writing(final / "config.json"):
            _write_file(tmp / "config.json", final / "config.json", text)
            fsync_dir(tmp)
        with writing(final):
            if final.exists():  # a re-save of the same step, or a new best
                os.replace(final, old)
                _faults.point("checkpoint-replace")
                os.replace(tmp, final)
                fsync_dir(final.parent)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
                fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():  # the replacement never arrived: put the old one back
            try:
                os.replace(old, final)
            except OSError:
                pass  # recover_checkpoints does it on --resume
        raise
    return final


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    nets: dict[str, torch.nn.Module],
    state: dict[str, Any],
    config: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``checkpoints/step-XXXXXXXX`` atomically, point ``latest`` at it, and prune to ``keep``."""
    root = Path(run_dir) / "checkpoints"
    name = f"step-{step:08d}"
    final = write_checkpoint_dir(root / name, step, nets, state, config)
    _faults.point("checkpoint-pointer")
    atomic_write_text(root / "latest", name + "\n")
    ckpts = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
    for old in ckpts[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob("*.tmp"):  # leftovers of a killed save
        shutil.rmtree(stale, ignore_errors=True)
    return final


def recover_checkpoints(run_dir: str | os.PathLike) -> None:
    """Repair what a kill during a checkpoint write can leave: put back a ``NAME.old.tmp`` whose replacement
    never arrived, and delete the other temporary folders (half-written checkpoints)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return
    for old in root.glob("*.old.tmp"):
        final = root / old.name[: -len(".old.tmp")]
        if not final.exists():
            with writing(final):
                os.replace(old, final)
    for stale in root.glob("*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def find_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of a run folder, or None when it has none yet (a run killed before its
    first checkpoint)."""
    pointer = Path(run_dir) / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    return latest_checkpoint(run_dir)


def latest_checkpoint(run_dir: str | os.PathLike, which: str = "latest") -> Path:
    """The newest complete checkpoint folder of a run (``which="best"``: the best by the run's
    ``best_metric``), or an EbganError saying why there is none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EbganError(f"{run_dir} is not a folder")
    pointer = run_dir / "checkpoints" / "latest"
    if not (run_dir / "config.json").is_file():
        raise EbganError(f"{run_dir} is not a run folder (no config.json)")
    if not pointer.is_file():
        every = ""
        try:
            every = f" (every {int(json.loads((run_dir / 'config.json').read_text())['ckpt_every'])} steps)"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        raise EbganError(
            f"{run_dir} has no checkpoint yet: the run is still before its first checkpoint{every}, "
            f"or it stopped there; wait for one, or resume the run to write one"
        )
    if which == "best":
        ckpt = run_dir / "checkpoints" / "best"
        if not ckpt.is_dir():
            raise EbganError(f"{run_dir} has no best checkpoint (train with eval_every and best_metric set)")
    elif which == "latest":
        ckpt = run_dir / "checkpoints" / pointer.read_text().strip()
    else:
        raise EbganError(f"checkpoint must be 'latest' or 'best', got {which!r}")
    if not (ckpt / "weights.safetensors").is_file() or not (ckpt / "state.pt").is_file():
        raise EbganError(f"{run_dir}: checkpoint {ckpt.name} is incomplete")
    return ckpt


def load_weights(ckpt: Path, nets: dict[str, torch.nn.Module]) -> None:
    """Load ``G.*``/``D.*`` tensors from ``weights.safetensors`` into ``nets`` (strict).

    A file that is damaged (a header that does not parse or points outside the file), holds tensors of other
    shapes or types than the networks, or non-finite weights, is one EbganError naming it."""
    path = ckpt / "weights.safetensors"
    try:
        flat = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError, KeyError, OverflowError) as e:
        raise EbganError(
            f"cannot read {path}: {str(e)[:200] or type(e).__name__} (the checkpoint is damaged)"
        ) from None
    for k, v in flat.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise EbganError(f"{path}: {k} holds NaN or infinite values (the checkpoint is damaged)")
    for prefix, net in nets.items():
        sub = {k[len(prefix) + 1 :]: v for k, v in flat.items() if k.startswith(prefix + ".")}
        try:
            missing, unexpected = net.load_state_dict(sub, strict=False)
        except RuntimeError as e:  # shapes that do not fit the network
            raise EbganError(
                f"{ckpt}: weights do not match the network {prefix} ({' '.join(str(e).split())[:300]})"
            ) from None
        if missing or unexpected:
            raise EbganError(
                f"{ckpt}: weights do not match the network {prefix} "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )


def _check_pt_archive(path: Path) -> None:
    """A ``state.pt`` as ``torch.save`` writes it: a zip whose records are stored uncompressed, so that what
    ``torch.load`` allocates is bounded by the file's size (a crafted record that inflates to gigabytes, or
    declares more bytes than the file holds, is refused before torch reads it)."""
    import zipfile

    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        ValueError,
        NotImplementedError,
        UnicodeDecodeError,
    ) as e:
        raise EbganError(f"cannot read {path}: not a checkpoint archive ({str(e)[:200] or type(e).__name__})") from None
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size or info.file_size > size:
            raise EbganError(
                f"cannot read {path}: its record {info.filename[:80]!r} is compressed or larger than the "
                f"file (the checkpoint is damaged, or not written by ebgan)"
            )


def load_state(ckpt: Path) -> dict[str, Any]:
    """The resume state; ``weights_only=True`` so a crafted file cannot run code."""
    path = ckpt / "state.pt"
    try:
        _check_pt_archive(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except EbganError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise EbganError(f"cannot read {path}: {' '.join(str(e).split())[:300] or type(e).__name__}") from None
    if not isinstance(state, dict):
        raise EbganError(f"{path} is not a checkpoint's state (it holds {type(state).__name__})")
    version = state.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # noqa: E721 - a tensor or bool is not a version
        shown = repr(version) if isinstance(version, (int, str, type(None))) else type(version).__name__
        raise EbganError(f"{ckpt}: checkpoint format {shown[:40]} is not {FORMAT_VERSION}")
    return state
