"""Thread count on an idle machine and on one with a core kept busy: the default (auto) against 1 and 2 threads.

For each preset (mnist, ring), condition (idle; one core kept busy by a spinning process) and setting (the
default num_threads=0, i.e. auto, and fixed 1 and 2 threads), a fresh process builds the preset's Trainer
(where auto picks its count under that condition), runs warm-up steps, then times --steps training steps.
Settings alternate within each repetition so that drifting load affects all alike; medians over repetitions.
The ratio is the setting's median step time over the best setting's in the same condition (1.00 = best).

    python benchmarks/threads.py [--reps 3] [--steps 150]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _report import ROOT, header, median, write_record, write_section

CHILD = r"""
import json, sys, time, torch
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import load_dataset
from ebgan.train import Trainer
preset, threads, steps, root = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = resolve(apply_overrides(from_preset(preset), {"num_threads": threads}))
t = Trainer(cfg, load_dataset(cfg.data, root, seed=0, download=False))
for _ in range(10):
    t.train_step()
a = time.perf_counter()
for _ in range(steps):
    t.train_step()
print(json.dumps({"ms": 1000 * (time.perf_counter() - a) / steps, "threads": t.threads}))
"""


def measure(preset: str, threads: int, steps: int, root: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, preset, str(threads), str(steps), root],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=1200,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    settings = [("default (auto)", 0), ("1 thread", 1), ("2 threads", 2)]
    rows, record = [], {}
    for condition in ("idle", "one core busy"):
        busy = None
        if condition != "idle":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            for preset in ("mnist", "ring"):
                res = {name: [] for name, _ in settings}
                chosen = []
                for _ in range(args.reps):
                    for name, n in settings:
                        r = measure(preset, n, args.steps, args.data_root)
                        res[name].append(r["ms"])
                        if n == 0:
                            chosen.append(r["threads"])
                        print(condition, preset, name, f"{r['ms']:.2f} ms", r["threads"], flush=True)
                med = {name: median(v) for name, v in res.items()}
                record[f"{preset}, {condition}"] = {"ms_per_step": res, "median_ms": med, "auto_chose": chosen}
                best = min(med.values())
                for name, _ in settings:
                    extra = f" (chose {'/'.join(map(str, chosen))})" if name.startswith("default") else ""
                    rows.append(
                        f"| {preset} | {condition} | {name}{extra} | {med[name]:.2f} | {med[name] / best:.2f} |"
                    )
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    body = (
        f"## Threads: the default against 1 and 2 threads, idle and with one core busy\n\n{header()}"
        f"- {args.reps} repetitions of {args.steps} timed steps (after 10 warm-up steps) per setting, each in "
        f"a fresh process; the busy core is a separate `python -c 'while True: pass'` process\n\n"
        "| preset | condition | setting | median ms/step | vs best |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    write_record("threads", record, reps=args.reps, steps=args.steps)
    write_section("threads", body)
    print(body)


if __name__ == "__main__":
    main()
