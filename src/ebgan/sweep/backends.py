"""Where a sweep's runs execute: a local process pool, or Ray.

Both take the same tasks (dicts for :func:`ebgan.sweep.worker.run_setting`) and hand each finished row to
the driver, which alone writes ``results.jsonl``; the sweep folder is the same whichever backend ran it.

- ``LocalPool``: ``workers`` worker processes (``python -m ebgan.sweep.child``) with ``threads`` torch
  threads each, each running one setting after another and keeping the data set in memory between them
  (a fresh process per run cost 1.5 s of imports and loading each time). Processes, not threads, isolate
  the runs: a worker killed from outside (SIGKILL, as the out-of-memory killer does) is replaced and its run
  resumed from its last checkpoint, up to ``RETRIES`` times, then recorded as ``failed`` with the cause; a
  crash is recorded as ``failed`` at once; a worker is replaced after ``MAX_TASKS`` runs. A file that cannot
  be written (full disk) stops the sweep; a failure in the driver's handling of a worker never skips a
  setting silently (:class:`PoolIncomplete` names what was not run).
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

from .._fileio import atomic_write_text, writing
from ..errors import EbganError, WriteFailed
from .worker import DONE, WRITE_FAILED, read_result

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
    return {
        "method": task["method"],
        "setting_id": task["setting_id"],
        **task["values"],
        "status": "failed",
        "error": error,
    }


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


class LocalPool:
    # A worker process is replaced after this many runs, which bounds what a slow leak could accumulate.
    MAX_TASKS = 25
    # A run whose worker process is killed from outside (SIGKILL from the out-of-memory killer) is retried this
    # many times from its last checkpoint, each time in a new process, before it is recorded as failed.
    RETRIES = 2

    def __init__(self, workers: int, threads: int, out: Path) -> None:
        self.workers, self.threads, self.out = workers, threads, out
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def describe(self) -> str:
        return (
            f"local pool of {self.workers} process{'es' if self.workers != 1 else ''} x {self.threads} "
            f"thread{'s' if self.threads != 1 else ''}"
        )

    def _signal_all(self, signum: int) -> None:
        with self._lock:
            for p in self._procs:
                if p.poll() is None:
                    try:
                        p.send_signal(signum)
                    except OSError:
                        pass

    def _start(self, log_path: Path, stop: Stop) -> subprocess.Popen[str] | None:
        env = {
            **os.environ,
            "EBGAN_SWEEP_PARENT": str(os.getpid()),
            "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads),
        }
        with self._lock:
            if stop:
                return None
            with open(log_path, "ab") as log:
                # Its own session: a Ctrl-C in the terminal reaches the driver alone, which then asks each
                # worker once (SIGTERM) to checkpoint its run and stop.
                proc = subprocess.Popen(
                    [sys.executable, "-m", "ebgan.sweep.child", "--serve", str(self.MAX_TASKS)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=env,
                    text=True,
                    bufsize=1,
                    start_new_session=True,
                )
            self._procs.add(proc)
        return proc

    def _retire(self, proc: subprocess.Popen[str]) -> int:
        try:
            if proc.stdin is not None:  # (always: the worker's stdin is a pipe)
                proc.stdin.close()
        except OSError:
            pass
        code = proc.wait()
        with self._lock:
            self._procs.discard(proc)
        return code

    def _worker(self, index: int, tasks: queue.Queue, results: queue.Queue, stop: Stop) -> None:
        """One worker thread: takes tasks until none is left, feeding them to its worker process one at a time.

        What it puts on ``results``: ``("row", row)`` per finished setting, ``("error", task, exc)`` when
        something failed in this thread itself (``task``: the one it held, not run; a WriteFailed from the
        worker's run or from writing its task file is one too), and ``None`` when it ends."""
        proc, used, task = None, 0, None
        log_path = self.out / "logs" / f"worker-{index}.log"
        try:
            with writing(log_path):
                log_path.parent.mkdir(parents=True, exist_ok=True)
            while not stop:
                try:
                    task = tasks.get_nowait()
                except queue.Empty:
                    task = None
                    return
                attempts = 0
                task_path = self.out / "tasks" / f"{task['method']}-{task['setting_id']}.json"
                atomic_write_text(task_path, json.dumps(task))
                while True:  # the task, retried after a worker killed from outside
                    if proc is None or used >= self.MAX_TASKS:
                        if proc is not None:
                            self._retire(proc)
                        proc, used = self._start(log_path, stop), 0
                        if proc is None:
                            return  # stopped: the task is resumed by the next run of the sweep
                    attempts += 1
                    answer = ""
                    stdin, stdout = proc.stdin, proc.stdout
                    assert stdin is not None and stdout is not None  # pipes (_start)
                    try:
                        stdin.write(f"{task_path}\n")
                        stdin.flush()
                        for line in stdout:
                            if line.startswith((DONE, WRITE_FAILED)):
                                answer = line
                                break
                    except (BrokenPipeError, OSError):
                        pass
                    used += 1
                    if stop:
                        return  # stopped by the driver's request: resumed by the next run of the sweep
                    if answer.startswith(WRITE_FAILED):  # the run could not write a file: the sweep stops
                        info = json.loads(answer[len(WRITE_FAILED) :])
                        raise WriteFailed(info.get("path", "?"), info.get("errno"))
                    row = read_result(Path(task["run_dir"])) if answer else None
                    if row is not None:
                        break
                    # The worker died (a crash, an out-of-memory kill): a new process takes over.
                    code = self._retire(proc)
                    proc = None
                    if code < 0 and attempts <= self.RETRIES:
                        # Killed by a signal from outside (the OOM killer sends SIGKILL): the run resumes from
                        # its last checkpoint in a new worker process.
                        self._note(
                            log_path,
                            f"ebgan sweep: {task['method']} {task['setting_id']}: worker process "
                            f"killed by {_signame(code)}; retry {attempts} of {self.RETRIES} from the "
                            f"run's last checkpoint",
                        )
                        continue
                    if code < 0:
                        why = (
                            f"worker process killed by {_signame(code)} in each of {attempts} attempts (the "
                            f"out-of-memory killer sends SIGKILL; give the runs more memory or fewer --workers)"
                        )
                    else:
                        why = f"worker process exited with code {code}"
                    row = _failed(task, f"{why}: {_tail(log_path)}")
                    break
                task_path.unlink(missing_ok=True)
                results.put(("row", row))
                task = None
        except BaseException as e:  # noqa: BLE001 - reported to the driver, which names the task not run
            results.put(("error", task, e))
        finally:
            if proc is not None:
                self._retire(proc)
            results.put(None)  # this worker is done

    @staticmethod
    def _note(log_path: Path, message: str) -> None:
        try:
            with open(log_path, "a") as f:
                f.write(message + "\n")
        except OSError:
            pass

    def run(self, tasks: Iterable[dict[str, Any]], on_result: OnResult, stop: Stop) -> None:
        """Run ``tasks``; ``on_result`` gets each finished row (in the calling thread).

        A failed write (a run's, a task file's, or ``on_result``'s own append to ``results.jsonl``) stops every
        worker (each running run checkpoints) and is raised once they have ended. An exception in a worker
        thread is not a silent skip either: the other workers go on, and at the end :class:`PoolIncomplete`
        names the task that thread held and every task nobody took."""
        todo: queue.Queue = queue.Queue()
        for t in tasks:
            todo.put(t)
        results: queue.Queue = queue.Queue()
        n = min(self.workers, todo.qsize())
        stop.hooks.append(self._signal_all)
        threads = [threading.Thread(target=self._worker, args=(i, todo, results, stop), daemon=True) for i in range(n)]
        errors: list[tuple[dict[str, Any] | None, BaseException]] = []
        fatal: BaseException | None = None
        try:
            for th in threads:
                th.start()
            running = n
            while running:
                item = results.get()
                if item is None:
                    running -= 1
                    continue
                if item[0] == "error":
                    _, task, exc = item
                    if isinstance(exc, WriteFailed) or not isinstance(exc, Exception):
                        fatal = fatal or exc  # the disk or a Ctrl-C: everything stops
                        stop.request(signal.SIGTERM)
                    else:
                        errors.append((task, exc))
                    continue
                if stop or fatal is not None:
                    continue  # stopping: the row is in its run folder, recorded by the next run of the sweep
                try:
                    on_result(item[1])
                except BaseException as exc:  # noqa: BLE001 - results.jsonl could not be written: stop
                    fatal = exc
                    stop.request(signal.SIGTERM)
        finally:
            stop.hooks.remove(self._signal_all)
        if fatal is not None:
            raise fatal
        if errors:
            left = []
            while True:
                try:
                    left.append(todo.get_nowait())
                except queue.Empty:
                    break
            not_run = [t for t, _ in errors if t is not None] + left
            raise PoolIncomplete(not_run, errors[0][1])


class PoolIncomplete(Exception):
    """Worker threads failed (a process that could not start, an error feeding it): ``not_run`` are the tasks
    that never ran, ``cause`` the first failure."""

    def __init__(self, not_run: list[dict[str, Any]], cause: BaseException) -> None:
        super().__init__(f"{len(not_run)} task(s) not run: {type(cause).__name__}: {cause}")
        self.not_run, self.cause = not_run, cause


def _signame(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


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
        where = (
            f"the Ray cluster at {self.address}"
            if self.address
            else f"a local Ray instance of {cpus} CPU{'s' if cpus != 1 else ''}"
        )
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
                ray.init(
                    num_cpus=self.workers * self.threads,
                    include_dashboard=False,
                    log_to_driver=False,
                    object_store_memory=80 * 1024 * 1024,
                    runtime_env={"env_vars": {"OMP_NUM_THREADS": str(self.threads)}},
                )
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
                        cause = getattr(e, "cause", None)
                        if isinstance(cause, WriteFailed):  # a full or failing disk: the sweep stops
                            for other in pending:
                                ray.cancel(other)
                            raise WriteFailed(cause.path, cause.errno) from e
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
