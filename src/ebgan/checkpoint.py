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
from safetensors.torch import load_file, save_file

from . import _faults
from ._fileio import atomic_write_text
from .errors import EbganError

FORMAT_VERSION = 1


def _flat_weights(nets: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    out = {}
    for prefix, net in nets.items():
        for k, v in net.state_dict().items():
            out[f"{prefix}.{k}"] = v.detach().cpu().contiguous().clone()
    return out


def write_checkpoint_dir(final: Path, step: int, nets: dict[str, torch.nn.Module], state: dict[str, Any],
                         config: dict[str, Any]) -> Path:
    """Fill a temporary folder beside ``final`` and rename it into place (replacing an older one)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=final.name + ".", suffix=".tmp"))
    try:
        save_file(_flat_weights(nets), str(tmp / "weights.safetensors"),
                  metadata={"format_version": str(FORMAT_VERSION), "step": str(step)})
        _faults.point("checkpoint-write")
        torch.save({"format_version": FORMAT_VERSION, "step": step, **state}, tmp / "state.pt")
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if final.exists():  # a re-save of the same step, or a new best
            old = final.with_name(final.name + ".old.tmp")
            os.replace(final, old)
            _faults.point("checkpoint-replace")
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def save_checkpoint(run_dir: str | os.PathLike, step: int, nets: dict[str, torch.nn.Module],
                    state: dict[str, Any], config: dict[str, Any], keep: int = 2) -> Path:
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
        raise EbganError(f"{run_dir} has no checkpoint yet: the run is still before its first checkpoint{every}, "
                         f"or it stopped there; wait for one, or resume the run to write one")
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
    """Load ``G.*``/``D.*`` tensors from ``weights.safetensors`` into ``nets`` (strict)."""
    try:
        flat = load_file(str(ckpt / "weights.safetensors"))
    except (SafetensorError, OSError) as e:
        raise EbganError(f"cannot read {ckpt / 'weights.safetensors'}: {e}") from None
    for prefix, net in nets.items():
        sub = {k[len(prefix) + 1:]: v for k, v in flat.items() if k.startswith(prefix + ".")}
        missing, unexpected = net.load_state_dict(sub, strict=False)
        if missing or unexpected:
            raise EbganError(f"{ckpt}: weights do not match the network {prefix} "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def load_state(ckpt: Path) -> dict[str, Any]:
    """The resume state; ``weights_only=True`` so a crafted file cannot run code."""
    try:
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise EbganError(f"cannot read {ckpt / 'state.pt'}: {e}") from None
    if state.get("format_version") != FORMAT_VERSION:
        raise EbganError(f"{ckpt}: checkpoint format {state.get('format_version')} is not {FORMAT_VERSION}")
    return state
