"""Shared helpers for benchmark scripts: machine description, replacing a section of BENCHMARKS.md, and the
machine-readable record (``benchmarks/results/NAME.json``) a script writes beside its section.

Importable without torch (``check_claims.py`` and the claims test use it): torch is imported where it is used."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    n = torch.get_num_threads()
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({n} thread{'s' if n != 1 else ''}), "
        f"Python {platform.python_version()}"
    )


def provenance(command: str | None = None) -> dict:
    """Date, commit, machine and command of this invocation (``command``: default, this script's own)."""
    if command is None:
        script = Path(sys.argv[0]).resolve()
        script_s = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0]
        command = " ".join(["python", script_s] + sys.argv[1:])
    cmd = command
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        rev = "?"
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return {"date": date, "commit": rev, "machine": machine(), "command": cmd}


def header(command: str | None = None) -> str:
    p = provenance(command)
    return f"- date: {p['date']}, commit {p['commit']}\n- machine: {p['machine']}\n- command: `{p['command']}`\n"


def write_json(path: Path, obj) -> None:
    """``obj`` as one line of JSON at ``path``, atomically (a finished run's result: never half written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj) + "\n")
    os.replace(tmp, path)


def write_record(name: str, figures, command: str | None = None, **fields) -> Path:
    """Write ``benchmarks/results/NAME.json``, the machine-readable record of what a script just measured: its
    provenance (date, commit, machine, command), ``fields`` (seeds, settings) and ``figures`` (the raw values its
    section of BENCHMARKS.md prints, unrounded). Replaced whole, atomically, by the next measurement."""
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        json.dumps({"benchmark": name, **provenance(command), **fields, "figures": figures}, indent=1, default=_plain)
        + "\n"
    )
    os.replace(tmp, path)
    return path


def _plain(value):
    """numpy and torch values as JSON: arrays and tensors as lists, scalars as floats."""
    return value.tolist() if hasattr(value, "tolist") else float(value)


HISTORY = "## History: superseded results"


def write_section(name: str, body: str) -> None:
    """Replace the block between ``<!-- name:start -->`` and ``<!-- name:end -->``; a new block goes before the
    history section (which stays last), or at the end when there is none."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = (
        BENCHMARKS.read_text()
        if BENCHMARKS.exists()
        else "# Benchmarks\n\nEvery figure in the README comes from here.\n"
    )
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    elif HISTORY in text:
        at = text.index(HISTORY)
        text = text[:at] + block + "\n\n" + text[at:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = BENCHMARKS.with_name(f".{BENCHMARKS.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, BENCHMARKS)


def matmul_peak(n: int = 2048, reps: int = 10, stat=statistics.median) -> float:
    """float32 GFLOP/s of ``n x n`` matrix products at the current thread count (``stat`` of ``reps`` timings)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / stat(times) / 1e9


def median(xs):
    return statistics.median(xs)


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def launch_worker(script: str, spec: dict) -> dict:
    """Run ``script --worker SPEC_JSON`` in a fresh single-threaded Python process with ``src/`` importable; its
    JSON result is the last stdout line starting with ``{``. A crash becomes ``{"status": "failed", ...}``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(Path(script).resolve()), "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    return {"status": "failed", "error": f"worker exited with status {proc.returncode}: {tail[:300]}"}


def metrics_rows(run: Path) -> list[dict]:
    """The rows of a run folder's ``metrics.jsonl`` (none when the run has not logged yet)."""
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def finished(run: Path, steps: int) -> bool:
    """Whether the training run in ``run`` logged its step ``steps`` and kept its checkpoints."""
    return any(r.get("step") == steps for r in metrics_rows(run)) and (run / "checkpoints").exists()


def run_ebgan(*argv: str) -> str:
    """``python -m ebgan.cli ARGV`` from the repository root; its standard output, or exit naming the failure."""
    proc = subprocess.run([sys.executable, "-m", "ebgan.cli", *argv], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"ebgan {' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout
