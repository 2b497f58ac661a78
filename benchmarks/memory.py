"""Peak resident memory of the `mnist` preset, and whether it stays flat over the run.

Runs `ebgan train --preset mnist` in a child process and reads its VmRSS from /proc every 0.25 s.
Goal (issue 2): peak under 1.5 GiB, flat over the run (no growth after warm-up).

    python benchmarks/memory.py [--steps 2000] [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import ROOT, header, write_record, write_section


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "ebgan.cli",
            "train",
            "--preset",
            "mnist",
            "--data-root",
            args.data_root,
            "--steps",
            str(args.steps),
            "--out",
            f"{tmp}/run",
            "--no-progress",
            "--set",
            f"ckpt_every={max(args.steps // 4, 1)}",
            "--set",
            f"sample_every={max(args.steps // 4, 1)}",
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        trace: list[tuple[float, float]] = []
        while proc.poll() is None:
            r = rss_mib(proc.pid)
            if r is not None:
                trace.append((time.perf_counter() - t0, r))
            time.sleep(0.25)
        if proc.returncode != 0:
            sys.exit(f"training failed: {proc.stderr.read()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    total = trace[-1][0]

    def at(frac: float) -> float:
        return next(r for t, r in trace if t >= frac * total)

    quarters = [at(f) for f in (0.25, 0.5, 0.75, 0.99)]
    body = (
        "## Memory: `mnist` preset\n\n"
        + header()
        + f"- {args.steps} steps with checkpoints and sample grids every {max(args.steps // 4, 1)} steps, "
        f"{len(trace)} RSS readings over {total:.0f} s\n\n"
        "| peak RSS | RSS at 25% | 50% | 75% | 99% of the run | goal |\n|---|---|---|---|---|---|\n"
        f"| {peak:.0f} MiB | {quarters[0]:.0f} MiB | {quarters[1]:.0f} MiB | {quarters[2]:.0f} MiB | "
        f"{quarters[3]:.0f} MiB | < 1536 MiB, flat |\n"
    )
    print(body)
    if not args.no_write:
        write_record(
            "memory",
            {
                "peak_rss_mib": peak,
                "rss_mib_at": dict(zip(("25%", "50%", "75%", "99%"), quarters)),
                "readings": len(trace),
                "seconds": total,
            },
            steps=args.steps,
        )
        write_section("memory", body)


if __name__ == "__main__":
    main()
