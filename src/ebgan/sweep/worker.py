"""One setting of a sweep, trained and scored: the unit of work every backend runs.

``run_setting(task)`` trains (or resumes) the run folder with the ordinary trainer, samples the generator,
scores the samples with ``ebgan eval``'s metrics and writes ``result.json`` into the run folder before
returning the row. A run whose loss becomes NaN is recorded as ``diverged``; any other error as ``failed``
with its message: neither stops the sweep. A file that cannot be written (:class:`~ebgan.errors.WriteFailed`:
a full or failing disk) is not the setting's fault: it stops the sweep, and the run resumes from its last
checkpoint when the sweep runs again. ``python -m ebgan.sweep.child --serve N`` is the local backend's
worker process: it runs up to N tasks named on its standard input, one after the other.
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
SCORE_KEYS = ("is", "is_std", "paper_score", "fid", "classifier_accuracy", "modes", "hq_pct", "reverse_kl", "kl")


def run_setting(task: dict[str, Any]) -> dict[str, Any]:
    """Train and score one setting; returns (and writes to ``result.json``) its results row."""
    from .._fileio import atomic_write_text
    from ..config import from_dict
    from ..errors import WriteFailed
    from ..evaluate import evaluate
    from ..sampling import run_dataset_name, sample_from_run
    from ..train import Interrupted, TrainingDiverged, train

    run_dir = Path(task["run_dir"])
    row: dict[str, Any] = {"method": task["method"], "setting_id": task["setting_id"], **task["values"]}
    t0 = time.perf_counter()
    try:
        cfg = from_dict(task["config"])
        dataset = _dataset(cfg, task.get("data_root"))
        summary = train(cfg, run_dir, data_root=task.get("data_root"), resume=True, progress=False, dataset=dataset)
        row["steps"] = summary["steps"]
        row["train_seconds"] = summary["seconds"]
        n = int(task.get("eval_samples") or 0) or None
        against = run_dataset_name(run_dir)
        samples = sample_from_run(
            run_dir, n or (10000 if against in ("mnist", "stacked-mnist") else 2500), seed=cfg.seed + 1, device="cpu"
        )
        scores = evaluate(samples, against, data_root=task.get("data_root"))
        row.update({k: scores[k] for k in SCORE_KEYS if k in scores})
        row["status"] = "ok"
    except (Interrupted, WriteFailed):
        raise  # a stop request, or a full or failing disk: the sweep stops, and its next run resumes this one
    except TrainingDiverged as e:
        row.update(status="diverged", error=str(e))
    except Exception as e:  # recorded (EbganError or any other), never fatal to the sweep
        tb = traceback.format_exc(limit=-3).strip().splitlines()
        row.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=tb[-6:])
    row["seconds"] = round(time.perf_counter() - t0, 2)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RESULT, json.dumps(row) + "\n")
    if task.get("prune") and row["status"] != "failed":
        # Scored: the weights are no longer needed for the sweep (result.json, metrics and samples stay).
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return row


_DATASETS: dict[tuple, Any] = {}


def _dataset(cfg, data_root: str | None):
    """The run's data set, kept in memory for the next run of the same worker process (a long-lived local
    worker or a Ray worker runs many settings on one data set; the trainer never modifies it)."""
    from ..data import load_dataset

    key = (cfg.data, data_root, cfg.image_size, cfg.channels, cfg.seed)
    if key not in _DATASETS:
        _DATASETS.clear()  # one at a time: a sweep rarely mixes data sets
        _DATASETS[key] = load_dataset(
            cfg.data, data_root, image_size=cfg.image_size, channels=cfg.channels, seed=cfg.seed, download=False
        )
    return _DATASETS[key]


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


DONE = "ebgan-sweep-done"
# The answer of a worker whose run could not write a file: ``WRITE_FAILED {"path": ..., "errno": ...}``. The
# driver stops the sweep with that error (exit status 3); the run resumes from its checkpoint next time.
WRITE_FAILED = "ebgan-sweep-write-failed"


def serve(max_tasks: int) -> int:
    """Run tasks named one per line on standard input (paths of task JSON files), answering each with a
    ``DONE`` line on standard output, until the input ends or ``max_tasks`` are done. Everything else the
    runs print goes to standard error, so that standard output carries only the answers."""
    import contextlib

    from ..errors import WriteFailed
    from ..train import Interrupted

    _die_with_parent()
    answers = sys.stdout
    for i, line in enumerate(sys.stdin):
        path = line.strip()
        if not path:
            continue
        task = json.loads(Path(path).read_text())
        try:
            with contextlib.redirect_stdout(sys.stderr):
                row = run_setting(task)
        except Interrupted as e:
            return 128 + e.signum
        except WriteFailed as e:
            answers.write(f"{WRITE_FAILED} {json.dumps({'path': e.path, 'errno': e.errno})}\n")
            answers.flush()
            return e.exit_status
        answers.write(f"{DONE} {row['method']} {row['setting_id']} {row['status']}\n")
        answers.flush()
        if i + 1 >= max_tasks:
            break
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--serve" or not argv[1].isdigit():
        print(
            "usage: python -m ebgan.sweep.child --serve MAX_TASKS  (task JSON paths on standard input)", file=sys.stderr
        )
        return 2
    return serve(int(argv[1]))
