"""Where a sweep's runs execute: a local process pool, or Ray.

Both take the same tasks (dicts for :func:`ebgan.sweep.worker.run_setting`) and hand each finished row to
the driver, which alone writes ``results.jsonl``; the sweep folder is the same whichever backend ran it.

- ``LocalPool``: ``workers`` runs at a time, each in a fresh ``python -m ebgan.sweep.child`` process with
  ``threads`` torch threads. A process per run costs about two seconds of start-up (a run here takes a
  minute or more) and buys isolation: a crash, an out-of-memory kill or a leak ends one run, recorded as
  ``failed``, not the sweep.
- ``RayBackend``: the same runs as Ray *tasks* (``num_cpus=threads`` each) on ``ray.init()`` or a cluster's
  address. Tasks rather than Ray Tune trials: the grid, the resume logic and the results file are the
  sweep's own (so that both backends leave the same folder), and Tune's trial bookkeeping, search algorithms
  and schedulers would duplicate them or go unused. On a cluster the sweep folder must be on a file system
  every node sees at the same path, and ebgan must be installed on every node.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import EbganError
from .worker import read_result

OnResult = Callable[[dict[str, Any]], None]


class Stop:
    """The driver's stop request (SIGINT/SIGTERM): no new run starts, running ones checkpoint and end."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.hooks: list[Callable[[int], None]] = []

    def request(self, signum: int) -> None:
        first = not self.event.is_set()
        self.signum = self.signum or signum
        self.event.set()
        for hook in list(self.hooks):
            hook(signum if first else signal.SIGKILL)

    def __bool__(self) -> bool:
        return self.event.is_set()


def _failed(task: dict[str, Any], error: str) -> dict[str, Any]:
    return {"method": task["method"], "setting_id": task["setting_id"], **task["values"], "status": "failed",
            "error": error}


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


class LocalPool:
    def __init__(self, workers: int, threads: int, out: Path) -> None:
        self.workers, self.threads, self.out = workers, threads, out
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"local pool of {self.workers} process{'es' if self.workers != 1 else ''} x {self.threads} thread{'s' if self.threads != 1 else ''}"

    def _signal_all(self, signum: int) -> None:
        with self._lock:
            for p in self._procs:
                if p.poll() is None:
                    try:
                        p.send_signal(signum)
                    except OSError:
                        pass

    def _run_one(self, task: dict[str, Any], stop: Stop) -> dict[str, Any] | None:
        if stop:
            return None
        name = f"{task['method']}-{task['setting_id']}"
        task_path = self.out / "tasks" / f"{name}.json"
        log_path = self.out / "logs" / f"{name}.log"
        task_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        task_path.write_text(json.dumps(task))
        env = {**os.environ, "EBGAN_SWEEP_PARENT": str(os.getpid()), "OMP_NUM_THREADS": str(self.threads),
               "MKL_NUM_THREADS": str(self.threads)}
        with open(log_path, "ab") as log:
            with self._lock:
                if stop:
                    return None
                # Its own session: a Ctrl-C in the terminal reaches the driver alone, which then asks each run
                # once (SIGTERM) to checkpoint and stop.
                proc = subprocess.Popen([sys.executable, "-m", "ebgan.sweep.child", str(task_path)],
                                        stdout=log, stderr=log, env=env, start_new_session=True)
                self._procs.add(proc)
            try:
                code = proc.wait()
            finally:
                with self._lock:
                    self._procs.discard(proc)
        if stop:
            return None  # stopped (or killed) by the driver's stop request: resumed by the next run of the sweep
        row = read_result(Path(task["run_dir"]))
        if code != 0 or row is None:
            return _failed(task, f"worker process exited with code {code}: {_tail(log_path)}")
        task_path.unlink(missing_ok=True)
        return row

    def run(self, tasks: Iterable[dict[str, Any]], on_result: OnResult, stop: Stop) -> None:
        stop.hooks.append(self._signal_all)
        try:
            with cf.ThreadPoolExecutor(self.workers) as pool:
                futures = [pool.submit(self._run_one, t, stop) for t in tasks]
                try:
                    for fut in cf.as_completed(futures):
                        row = fut.result()
                        if row is not None:
                            on_result(row)
                finally:
                    for f in futures:
                        f.cancel()
        finally:
            stop.hooks.remove(self._signal_all)


def _ray_task(task: dict[str, Any]) -> dict[str, Any]:
    from .worker import run_setting

    return run_setting(task)


class RayBackend:
    def __init__(self, workers: int, threads: int, address: str | None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise EbganError("--backend ray needs Ray: pip install 'ebgan[ray]'") from None
        self.workers, self.threads, self.address = workers, threads, address

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else \
            f"a local Ray instance of {self.workers * self.threads} CPU{'s' if self.workers * self.threads != 1 else ''}"
        return f"Ray tasks of {self.threads} CPU{'s' if self.threads != 1 else ''} each on {where}"

    def run(self, tasks: Iterable[dict[str, Any]], on_result: OnResult, stop: Stop) -> None:
        import ray
        from ray.exceptions import RayError

        started = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                # Exactly workers x threads CPUs: Ray then runs `workers` tasks at a time, as the local pool
                # does. A small object store: tasks pass a few kilobytes each.
                ray.init(num_cpus=self.workers * self.threads, include_dashboard=False, log_to_driver=False,
                         object_store_memory=80 * 1024 * 1024,
                         runtime_env={"env_vars": {"OMP_NUM_THREADS": str(self.threads)}})
            started = True
        remote = ray.remote(num_cpus=self.threads, max_retries=0)(_ray_task)
        pending: dict[Any, dict[str, Any]] = {}
        try:
            for t in tasks:
                pending[remote.remote(t)] = t
            while pending and not stop:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    task = pending.pop(ref)
                    try:
                        row = ray.get(ref)
                    except RayError as e:
                        if stop:
                            continue
                        # A task that raised or whose worker died: the run folder may hold its result anyway.
                        row = read_result(Path(task["run_dir"])) or _failed(task, f"Ray task failed: {str(e).strip().splitlines()[-1]}")
                    on_result(row)
            if stop:
                for ref in pending:
                    ray.cancel(ref)  # a KeyboardInterrupt in the task: the trainer checkpoints on it
                ray.wait(list(pending), num_returns=len(pending), timeout=60)
        finally:
            if started:
                ray.shutdown()
