"""Where a sweep's runs execute: a local process pool, or Ray.

Both take the same tasks (dicts for :func:`ebgan.sweep.worker.run_setting`) and hand each finished row to
the driver, which alone writes ``results.jsonl``; the sweep folder is the same whichever backend ran it.

- ``LocalPool``: ``workers`` worker processes (``python -m ebgan.sweep.child``) with ``threads`` torch
  threads each, each running one setting after another and keeping the data set in memory between them
  (a fresh process per run cost 1.5 s of imports and loading each time). Processes, not threads, isolate
  the runs: a crash or an out-of-memory kill ends one run, recorded as ``failed``, and a new worker process
  takes the next; a worker is replaced after ``MAX_TASKS`` runs.
- ``RayBackend``: the same runs as Ray *tasks* (``num_cpus=threads`` each) on ``ray.init()`` or a cluster's
  address. Tasks rather than Ray Tune trials: the grid, the resume logic and the results file are the
  sweep's own (so that both backends leave the same folder), and Tune's trial bookkeeping, search algorithms
  and schedulers would duplicate them or go unused. On a cluster the sweep folder must be on a file system
  every node sees at the same path, and ebgan must be installed on every node.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import EbganError
from .worker import DONE, read_result

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
    # A worker process is replaced after this many runs, which bounds what a slow leak could accumulate.
    MAX_TASKS = 25

    def __init__(self, workers: int, threads: int, out: Path) -> None:
        self.workers, self.threads, self.out = workers, threads, out
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def describe(self) -> str:
        return (f"local pool of {self.workers} process{'es' if self.workers != 1 else ''} x {self.threads} "
                f"thread{'s' if self.threads != 1 else ''}")

    def _signal_all(self, signum: int) -> None:
        with self._lock:
            for p in self._procs:
                if p.poll() is None:
                    try:
                        p.send_signal(signum)
                    except OSError:
                        pass

    def _start(self, log_path: Path, stop: Stop) -> subprocess.Popen | None:
        env = {**os.environ, "EBGAN_SWEEP_PARENT": str(os.getpid()), "OMP_NUM_THREADS": str(self.threads),
               "MKL_NUM_THREADS": str(self.threads)}
        with self._lock:
            if stop:
                return None
            with open(log_path, "ab") as log:
                # Its own session: a Ctrl-C in the terminal reaches the driver alone, which then asks each
                # worker once (SIGTERM) to checkpoint its run and stop.
                proc = subprocess.Popen([sys.executable, "-m", "ebgan.sweep.child", "--serve", str(self.MAX_TASKS)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                        text=True, bufsize=1, start_new_session=True)
            self._procs.add(proc)
        return proc

    def _retire(self, proc: subprocess.Popen) -> int:
        try:
            proc.stdin.close()
        except OSError:
            pass
        code = proc.wait()
        with self._lock:
            self._procs.discard(proc)
        return code

    def _worker(self, index: int, tasks: queue.Queue, results: queue.Queue, stop: Stop) -> None:
        log_path = self.out / "logs" / f"worker-{index}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        proc, used = None, 0
        try:
            while not stop:
                try:
                    task = tasks.get_nowait()
                except queue.Empty:
                    return
                if proc is None or used >= self.MAX_TASKS:
                    if proc is not None:
                        self._retire(proc)
                    proc, used = self._start(log_path, stop), 0
                    if proc is None:
                        return
                task_path = self.out / "tasks" / f"{task['method']}-{task['setting_id']}.json"
                task_path.parent.mkdir(parents=True, exist_ok=True)
                task_path.write_text(json.dumps(task))
                answer = ""
                try:
                    proc.stdin.write(f"{task_path}\n")
                    proc.stdin.flush()
                    for line in proc.stdout:
                        if line.startswith(DONE):
                            answer = line
                            break
                except (BrokenPipeError, OSError):
                    pass
                used += 1
                if stop:
                    return  # stopped by the driver's request: resumed by the next run of the sweep
                row = read_result(Path(task["run_dir"])) if answer else None
                if row is None:  # the worker died (a crash, an out-of-memory kill): record it, start another
                    code = self._retire(proc)
                    proc = None
                    row = _failed(task, f"worker process exited with code {code}: {_tail(log_path)}")
                task_path.unlink(missing_ok=True)
                results.put(row)
        finally:
            if proc is not None:
                self._retire(proc)
            results.put(None)  # this worker is done

    def run(self, tasks: Iterable[dict[str, Any]], on_result: OnResult, stop: Stop) -> None:
        todo: queue.Queue = queue.Queue()
        for t in tasks:
            todo.put(t)
        results: queue.Queue = queue.Queue()
        n = min(self.workers, todo.qsize())
        stop.hooks.append(self._signal_all)
        threads = [threading.Thread(target=self._worker, args=(i, todo, results, stop), daemon=True)
                   for i in range(n)]
        try:
            for th in threads:
                th.start()
            running = n
            while running:
                row = results.get()
                if row is None:
                    running -= 1
                elif not stop:
                    on_result(row)
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
        cpus = self.workers * self.threads
        where = f"the Ray cluster at {self.address}" if self.address else \
            f"a local Ray instance of {cpus} CPU{'s' if cpus != 1 else ''}"
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
                        why = (str(e).strip().splitlines() or [type(e).__name__])[-1]
                        row = read_result(Path(task["run_dir"])) or _failed(task, f"Ray task failed: {why}")
                    on_result(row)
            if stop:
                for ref in pending:
                    # A KeyboardInterrupt in the task: it stops at once, and its run resumes from its last
                    # checkpoint (every 250 steps) when the sweep runs again.
                    ray.cancel(ref)
                ray.wait(list(pending), num_returns=len(pending), timeout=60)
        finally:
            if started:
                ray.shutdown()
