"""One setting of a sweep, trained and scored: the unit of work every backend runs.

``run_setting(task)`` trains (or resumes) the run folder with the ordinary trainer, samples the generator,
scores the samples with ``ebgan eval``'s metrics and writes ``result.json`` into the run folder before
returning the row. A run whose loss becomes NaN is recorded as ``diverged``; any other error as ``failed``
with its message: neither stops the sweep. ``python -m ebgan.sweep.child TASK.json`` runs one task in its
own process (the local backend), so that a crash or a leak in one run cannot take the others with it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

RESULT = "result.json"
TASK = "task.json"
SCORE_KEYS = ("is", "is_std", "paper_score", "fid", "classifier_accuracy", "modes", "hq_pct", "reverse_kl", "kl")


def run_setting(task: dict[str, Any]) -> dict[str, Any]:
    """Train and score one setting; returns (and writes to ``result.json``) its results row."""
    from .._fileio import atomic_write_text
    from ..config import from_dict
    from ..errors import EbganError
    from ..evaluate import evaluate
    from ..sampling import run_dataset_name, sample_from_run
    from ..train import Interrupted, TrainingDiverged, train

    run_dir = Path(task["run_dir"])
    row: dict[str, Any] = {"method": task["method"], "setting_id": task["setting_id"], **task["values"]}
    t0 = time.perf_counter()
    try:
        cfg = from_dict(task["config"])
        summary = train(cfg, run_dir, data_root=task.get("data_root"), resume=True, progress=False)
        row["steps"] = summary["steps"]
        row["train_seconds"] = summary["seconds"]
        n = int(task.get("eval_samples") or 0) or None
        against = run_dataset_name(run_dir)
        samples = sample_from_run(run_dir, n or (10000 if against in ("mnist", "stacked-mnist") else 2500),
                                  seed=cfg.seed + 1, device="cpu")
        scores = evaluate(samples, against, data_root=task.get("data_root"))
        row.update({k: scores[k] for k in SCORE_KEYS if k in scores})
        row["status"] = "ok"
    except Interrupted:
        raise
    except TrainingDiverged as e:
        row.update(status="diverged", error=str(e))
    except (EbganError, Exception) as e:  # recorded, never fatal to the sweep
        tb = traceback.format_exc(limit=-3).strip().splitlines()
        row.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=tb[-6:])
    row["seconds"] = round(time.perf_counter() - t0, 2)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RESULT, json.dumps(row) + "\n")
    if task.get("prune") and row["status"] != "failed":
        # Scored: the weights are no longer needed for the sweep (result.json, metrics and samples stay).
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return row


def read_result(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(run_dir) / RESULT
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this process when the sweep that started it dies (even by SIGKILL),
    so that a killed sweep leaves no orphan holding a run folder's lock."""
    parent = int(os.environ.get("EBGAN_SWEEP_PARENT", "0") or 0)
    if not sys.platform.startswith("linux") or not parent:
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(137)


def main(argv: list[str] | None = None) -> int:
    from ..train import Interrupted

    _die_with_parent()
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m ebgan.sweep.child TASK.json", file=sys.stderr)
        return 2
    task = json.loads(Path(argv[0]).read_text())
    try:
        row = run_setting(task)
    except Interrupted as e:
        return 128 + e.signum
    print(json.dumps({k: row.get(k) for k in ("method", "setting_id", "status")}))
    return 0

