"""Sweep overhead: runs per hour of the local pool and of the Ray backend against the ideal, one run's time
(measured alone, in this process, with no sweep around it) times the number of workers.

    python benchmarks/sweep_overhead.py [--workers 2] [--reps 3]

The grid: 8 small MNIST runs (EBGAN and EBGAN-PT, 2 learning rates x 2 dropout rates; nLayerG 3, sizeG 400,
nLayerD 2, sizeD 256; 1000 steps; scored on 10,000 samples), each with one thread. The reference is the
median of ``--reps`` runs of one setting through ``ebgan.sweep.worker.run_setting`` in this process. The
pool's time includes everything a user waits for: the process per run, loading MNIST in it, the results
file, the report. For Ray, the start of the local Ray instance is timed apart (a cluster is started once
for many sweeps). Writes the section "sweep_overhead" of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from _report import ROOT, header, median, write_record, write_section  # noqa: E402

from ebgan.config import to_dict  # noqa: E402
from ebgan.sweep import run_sweep  # noqa: E402
from ebgan.sweep.grid import config_for, expand, load_grid  # noqa: E402
from ebgan.sweep.store import read_rows  # noqa: E402
from ebgan.sweep.worker import run_setting  # noqa: E402

GRID = {
    "preset": "mnist",
    "steps": 1000,
    "base": {"g_layers": 3, "g_size": 400, "d_layers": 2, "d_size": 256, "amp": "none"},
    "grid": {"lr": [1e-3, 5e-4], "d_dropout": [0.0, 0.5]},
    "methods": {"ebgan": {}, "ebgan-pt": {}},
}


def single_run(tmp: Path, data_root: str, rep: int) -> float:
    _, spec = load_grid(GRID)
    s = expand(spec, "ebgan")[0]
    cfg = config_for(spec, s, 1000, 0)
    task = {
        "method": s.method,
        "setting_id": s.setting_id,
        "values": s.values,
        "config": {**to_dict(cfg), "num_threads": 1},
        "run_dir": str(tmp / f"single-{rep}"),
        "data_root": data_root,
        "eval_samples": 0,
    }
    t = time.perf_counter()
    row = run_setting(task)
    dt = time.perf_counter() - t
    assert row["status"] == "ok", row
    return dt


def pool_run(tmp: Path, name: str, backend: str, workers: int, data_root: str) -> tuple[float, list[dict]]:
    out = tmp / name
    t = time.perf_counter()
    rows = run_sweep(GRID, out, workers=workers, threads=1, backend=backend, data_root=data_root, progress=False)
    dt = time.perf_counter() - t
    assert all(r["status"] == "ok" for r in rows), rows
    return dt, read_rows(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="sweep-overhead-"))
    try:
        singles = [single_run(tmp, args.data_root, i) for i in range(args.reps)]
        t1 = median(singles)
        ideal = args.workers * 3600 / t1
        results = {}
        t_local, rows = pool_run(tmp, "local", "local", args.workers, args.data_root)
        results["local pool"] = (t_local, rows, None)
        if not args.no_ray:
            import ray

            t = time.perf_counter()
            ray.init(
                num_cpus=args.workers,
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=80 * 1024 * 1024,
                runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
            )
            t_start = time.perf_counter() - t
            try:
                t_ray, rows = pool_run(tmp, "ray", "ray", args.workers, args.data_root)
            finally:
                ray.shutdown()
            results["Ray tasks"] = (t_ray, rows, t_start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(rows)
    lines = [
        header().rstrip(),
        f"- grid: {n} runs (EBGAN and EBGAN-PT, nLayerG 3 x 400, nLayerD 2 x 256, 1000 steps, fp32, scored on "
        f"10,000 samples), {args.workers} workers x 1 thread",
        f"- one run alone, in this process: median {t1:.1f} s of {args.reps} "
        f"({', '.join(f'{x:.1f}' for x in singles)}); ideal for {args.workers} workers: {ideal:.0f} runs/hour",
        "",
        "| backend | wall s | runs/hour | of ideal | median run s inside the pool | wall beyond the runs | "
        "start-up s (apart) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (t, rs, start) in results.items():
        rate = n * 3600 / t
        inner = median([r["seconds"] for r in rs])
        # What the sweep adds around its runs: wall time beyond the runs' own time spread over the workers.
        beyond = t - sum(r["seconds"] for r in rs) / args.workers
        lines.append(
            f"| {name} | {t:.1f} | {rate:.0f} | {100 * rate / ideal:.1f} % | {inner:.1f} | "
            f"{beyond:.1f} s ({100 * beyond / t:.1f} %) | {'-' if start is None else f'{start:.1f}'} |"
        )
    body = "\n".join(lines) + "\n"
    print(body)
    print(json.dumps({k: v[0] for k, v in results.items()} | {"single": t1}))
    write_record(
        "sweep_overhead",
        {
            "single_run_s": singles,
            "ideal_runs_per_hour": ideal,
            "backends": {
                name: {"wall_s": t, "runs": n, "run_s": [r["seconds"] for r in rs], "startup_s": start}
                for name, (t, rs, start) in results.items()
            },
        },
        workers=args.workers,
        reps=args.reps,
    )
    write_section("sweep_overhead", body)


if __name__ == "__main__":
    main()
