"""``run_sweep``: expand a grid, run what is not finished yet on a backend, record one row per setting."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import to_dict
from ..data import resolve_data_root
from ..errors import EbganError, WriteFailed
from ..progress import Progress, format_duration
from . import store
from .backends import LocalPool, PoolIncomplete, RayBackend, Stop
from .grid import Setting, config_for, expand, load_grid, sample
from .worker import read_result


class SweepFailed(EbganError):
    """Every run of a sweep failed (a wrong data root, a grid no run can train): nothing to report."""


class SweepIncomplete(EbganError):
    """The driver could not run every setting (a worker process that could not be started or fed): the message
    names the settings not run and the cause; the command's exit status is 4."""

    exit_status = 4


def retry_command(out: Path, data_root: str | None = None) -> str:
    """The command that runs a sweep's failed settings again (its options are read from ``sweep.json``)."""
    import shlex

    try:
        meta = store.read_meta(out)
    except EbganError:
        meta = {}
    grid = meta.get("grid")
    if not isinstance(grid, str) or grid == "custom":  # a grid given as a dict: the Python API
        return f"run_sweep(<the same grid>, {str(out)!r}, retry_failed=True)"
    parts = ["ebgan", "sweep", grid, "--out", str(out)]
    if meta.get("sample"):
        parts += ["--sample", str(meta["sample"])]
    if meta.get("steps") and meta.get("spec", {}).get("steps") != meta["steps"]:
        parts += ["--steps", str(meta["steps"])]
    if meta.get("seed"):
        parts += ["--seed", str(meta["seed"])]
    if meta.get("methods") and meta.get("spec", {}).get("default_methods") != meta["methods"]:
        parts += ["--methods", ",".join(meta["methods"])]
    if data_root is not None:
        parts += ["--data-root", str(data_root)]
    return " ".join(shlex.quote(p) for p in parts) + " --retry-failed"


class SweepInterrupted(Exception):
    """The sweep was stopped by SIGINT/SIGTERM; its runs checkpointed and re-running it continues."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


def plan(
    grid: str | dict[str, Any], methods: list[str] | None = None, sample_k: int | None = None, seed: int = 0
) -> tuple[str, dict[str, Any], list[str], dict[str, list[Setting]]]:
    """The grid's name, its specification, the methods and each method's (sampled) settings."""
    name, spec = load_grid(grid)
    methods = list(methods) if methods else list(spec["default_methods"])
    if not methods:
        raise EbganError("--methods is empty")
    chosen = {m: sample(expand(spec, m), sample_k, seed) for m in methods}
    return name, spec, methods, chosen


def interleave(chosen: dict[str, list[Setting]]) -> list[Setting]:
    """Settings in the order they run: the methods take turns, so a stopped sweep has balanced rows."""
    out = []
    for i in range(max((len(v) for v in chosen.values()), default=0)):
        out += [v[i] for v in chosen.values() if i < len(v)]
    return out


def free_cores() -> int:
    """The cores not busy with other processes (at least 1)."""
    from ..threads import auto_threads

    return max(1, auto_threads()[0])


def run_sweep(
    grid: str | dict[str, Any],
    out: str | Path,
    methods: list[str] | None = None,
    sample: int | None = None,
    steps: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    backend: str = "local",
    address: str | None = None,
    seed: int = 0,
    data_root: str | None = None,
    eval_samples: int = 0,
    retry_failed: bool = False,
    prune: bool = False,
    progress: bool = True,
    report: bool = True,
) -> list[dict[str, Any]]:
    """Run a sweep (or continue it) in ``out``; returns every row of ``out/results.jsonl``.

    ``grid``: a name (``paper-mnist``, ``paper-margin``), a JSON/YAML file, or a dict (see
    :func:`ebgan.sweep.grid.load_grid`). ``sample``: a seeded subset of that many settings per method.
    ``steps``: the budget per run (default: the grid's). ``workers`` / ``threads``: processes at a time and
    torch threads each (default: one single-threaded process per free core; with ``workers`` given, the free
    cores shared among them). ``backend``: ``local`` or ``ray`` (``address``: a Ray cluster; default a local
    instance). Settings already in ``results.jsonl`` are skipped; interrupted runs resume from their
    checkpoints; with ``retry_failed`` the failed ones run again; with ``prune`` each run's checkpoints are
    deleted once it is scored. SIGINT/SIGTERM stop the sweep after every running run has checkpointed
    (:class:`SweepInterrupted`).
    """
    out = Path(out)
    if backend not in ("local", "ray"):
        raise EbganError(f"--backend must be local or ray, got {backend!r}")
    if steps is not None and steps < 1:
        raise EbganError(f"--steps must be at least 1, got {steps}")
    name, spec, methods, chosen = plan(grid, methods, sample, seed)
    budget = steps or spec["steps"]
    if budget is None:
        raise EbganError(f"grid {name} gives no steps per run: pass --steps")
    if workers is not None and workers < 1:
        raise EbganError(f"--workers must be at least 1, got {workers}")
    # Default: one single-threaded process per free core (the paper's MLPs scale better as processes than as
    # threads); with fewer workers than cores, each gets an equal share of the cores.
    free = free_cores() if workers is None or threads is None else 0
    workers = workers or free
    threads = threads or max(1, free // workers)
    settings = interleave(chosen)
    # Every setting's config is built (and validated) before anything runs: a bad grid fails at once.
    configs = {(s.method, s.setting_id): config_for(spec, s, budget, seed) for s in settings}
    root = str(resolve_data_root(data_root).resolve())
    meta = {
        "grid": name,
        "spec": spec,
        "steps": budget,
        "seed": seed,
        "methods": methods,
        "sample": sample,
        "version": __version__,
    }
    store.check_out_dir(out, meta)
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    with store.lock(out):
        store.write_meta(out, meta)
        results = store.Results(out)
        if retry_failed:
            failed = [r for r in results.rows if r.get("status") == "failed"]
            for r in failed:
                (store.run_dir(out, r["method"], r["setting_id"]) / "result.json").unlink(missing_ok=True)
            if results.drop("failed"):
                say(f"ebgan sweep: {len(failed)} failed run(s) will run again")
        todo = []
        skipped_failed = 0
        for s in settings:
            key = (s.method, s.setting_id)
            if key in results:
                skipped_failed += results.status(key) == "failed"
                continue
            rd = store.run_dir(out, s.method, s.setting_id)
            row = read_result(rd)
            if row is not None:  # finished before the sweep was stopped, its row not yet written
                results.append(row)
                continue
            cfg = configs[key]
            cfg_d = {**to_dict(cfg), "num_threads": threads}
            todo.append(
                {
                    "method": s.method,
                    "setting_id": s.setting_id,
                    "values": s.values,
                    "config": cfg_d,
                    "run_dir": str(rd.resolve()),
                    "data_root": root,
                    "eval_samples": eval_samples,
                    "prune": prune,
                }
            )
        total = len(settings)
        done = total - len(todo)
        runner = LocalPool(workers, threads, out) if backend == "local" else RayBackend(workers, threads, address)
        if skipped_failed:
            say(
                f"ebgan sweep: {skipped_failed} setting(s) recorded as failed are skipped; to run them again: "
                f"{retry_command(out, data_root)}"
            )
        if todo:
            say(
                f"ebgan sweep: {name}, {', '.join(f'{m} {len(chosen[m])}' for m in methods)} settings, "
                f"{budget} steps each; {done} done, {len(todo)} to run on {runner.describe()}; results in "
                f"{out / store.RESULTS}"
            )
        bar = Progress(total, done, desc="sweep") if progress and todo else None
        counts = {"failed": 0, "diverged": 0}
        for r in results.rows:
            if r.get("status") in counts and (r["method"], r["setting_id"]) in configs:
                counts[r["status"]] += 1

        def on_result(row: dict[str, Any]) -> None:
            nonlocal done
            if not results.append(row):
                return
            done += 1
            status = row.get("status")
            if status in counts:
                counts[status] += 1
            if bar is not None:
                score = f"IS {row['is']:.2f}" if "is" in row else f"modes {row['modes']}" if "modes" in row else ""
                bar.write(
                    f"[{done}/{total}] {row['method']} {row['setting_id']} {status} {score} "
                    f"({format_duration(row.get('seconds', 0))})".replace("  ", " ")
                )
                if row.get("error"):  # in full: the cause is often at the end of the message
                    bar.write(f"    {row['error']}")
                bar.update(done, {k: float(v) for k, v in counts.items()})

        stop = Stop()
        with _stop_on_signals(stop):
            try:
                if todo:
                    runner.run(todo, on_result, stop)
            except WriteFailed as e:
                raise e.with_hint(
                    f"the sweep stopped, {done} of {total} runs recorded, the running ones "
                    f"checkpointed; {_fix(e)} and run the same command again to continue"
                ) from e
            except PoolIncomplete as e:
                names = ", ".join(f"{t['method']} {t['setting_id']}" for t in e.not_run[:5])
                more = f" and {len(e.not_run) - 5} more" if len(e.not_run) > 5 else ""
                raise SweepIncomplete(
                    f"the sweep could not run {len(e.not_run)} setting(s) ({names}{more}): a worker failed with "
                    f"{type(e.cause).__name__}: {e.cause}; {done} of {total} runs recorded; fix the cause and run "
                    f"the same command again to run them"
                ) from e
            finally:
                if bar is not None:
                    bar.close()
        if stop:
            signum = stop.signum
            assert signum is not None  # set before the stop event
            raise SweepInterrupted(
                f"sweep stopped by {signal.Signals(signum).name}: {done} of {total} runs "
                f"recorded, running ones checkpointed; re-run the same command to continue",
                signum,
            )
        rows = results.rows
        ours = [r for r in rows if (r["method"], r["setting_id"]) in configs]
        failed = [r for r in ours if r.get("status") == "failed"]
        if ours and len(failed) == len(ours):
            raise SweepFailed(
                f"every run of the sweep failed ({len(failed)} of {len(ours)}); the first error: "
                f"{failed[0].get('error', '?')}; fix the cause, then run them again: "
                f"{retry_command(out, data_root)}"
            )
        if report:
            from .report import write_report

            path = write_report(out)
            say(
                f"ebgan sweep: {len(rows)} rows ({counts['failed']} failed, {counts['diverged']} diverged); "
                f"report {path}"
            )
    return rows


def _fix(e: WriteFailed) -> str:
    import errno

    fixes: dict[int | None, str] = {
        errno.ENOSPC: "free space",
        errno.EDQUOT: "free space",
        errno.EIO: "check the disk (`dmesg`)",
        errno.EROFS: "remount the file system read-write",
        errno.ENOENT: "restore the deleted folder (or start the sweep again)",
    }
    return fixes.get(e.errno, "fix the cause")


@contextlib.contextmanager
def _stop_on_signals(stop: Stop):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {}

    def handle(signum, frame):
        if not stop:
            print(
                f"\nebgan sweep: {signal.Signals(signum).name} received: each running run checkpoints and "
                f"stops (send it again to kill them at once)",
                file=sys.stderr,
                flush=True,
            )
        stop.request(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def load_results(out: str | Path, frame: bool | None = None):
    """The rows of a sweep's ``results.jsonl``: a pandas DataFrame if pandas is installed (or ``frame=True``),
    else a list of dicts (``frame=False`` forces the list)."""
    out = Path(out)
    store.read_meta(out)
    rows = store.read_rows(out)
    if frame is False:
        return rows
    try:
        import pandas as pd
    except ImportError:
        if frame:
            raise EbganError("load_results(frame=True) needs pandas: pip install pandas") from None
        return rows
    return pd.DataFrame(rows)


def describe_grid(grid: str) -> str:
    """Settings per method of a grid (``ebgan sweep GRID --list``)."""
    name, spec = load_grid(grid)
    lines = [f"{name}: preset {spec['preset']}, {spec['steps'] or '?'} steps per run"]
    for m in spec["methods"]:
        lines.append(f"  {m}: {len(expand(spec, m))} settings")
    return "\n".join(lines)
