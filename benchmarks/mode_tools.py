"""Mode-coverage tools side by side on one trainer: EBGAN without a tool, EBGAN-PT (the pulling-away term, the
presets' choice), EBGAN with minibatch discrimination (Salimans et al. 2016), EBGAN with PacGAN packing (m = 2, 3,
4) and the non-saturating GAN with packing (the PacGAN baseline), on the same networks and budget.

    python benchmarks/mode_tools.py [--data grid,ring,stacked-mnist] [--tools ebgan,ebgan-pt,...]
        [--seeds-2d 10-19] [--seeds-stacked 0,1,2] [--pack-batch samples|packs] [--cost-only] [--report-only]

Data, protocol and scoring are those of `quality_2d.py` (2-D grid and ring: the preset's budget, 2,500 samples,
modes, high-quality share, reverse KL; PacGAN's protocol) and `stacked_mnist.py` (the `stacked-mnist` preset,
4,000 steps, 26,000 samples, modes of 1,000 and KL; VEEGAN / PacGAN protocol), whose functions train and score
each run here. The 2-D runs use seeds 10-19: the `ring` and `grid` presets were chosen on seeds 0-4, so none of
these seeds chose a setting. Stacked MNIST uses seeds 0-2 as `stacked_mnist.py` does (its preset's margin was
checked on seed 0).

Every tool replaces the pulling-away term (``pt_weight=0``) but EBGAN-PT, which is the preset itself. Settings
not tuned: minibatch discrimination with ``mbd_dim=5`` (Salimans et al.'s code) and ``mbd_kernels`` 100 on Stacked
MNIST (their code's count) but 8 on the 2-D data, whose batch of 256 makes the pairwise features cost about five
times a plain step already at 8 kernels; packing with the per-sample margin scaled automatically (sqrt(m) for
the l2 energy); the PacGAN baseline with the m of PacGAN's best published row (2 on Stacked MNIST and ring, 4 on
grid) on the preset's optimiser settings. ``--pack-batch samples`` (default) keeps the preset's samples per step
(the batch rounded down to a multiple of m: 255 and 63 for m = 3), so D sees batch/m packs; ``packs`` is PacGAN's
own convention (as many packs as the preset's batch, m times the samples per step).

Cost: before the runs, the median wall time of a training step of every tool on each data set, the tools
interleaved in rounds within this one process (one thread), as a ratio against plain EBGAN measured alongside.

Each finished run writes benchmarks/results/mode-tools/DATA-TOOL-sSEED.json and is skipped when the command is
repeated (Stacked MNIST runs also keep their run folders in benchmarks/results/stacked-mnist/, resumable from
their checkpoints). After every run the section `mode_tools` of BENCHMARKS.md and
benchmarks/results/mode-tools/summary.json are rewritten, marked PARTIAL until every run is in.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import quality_2d  # noqa: E402
import stacked_mnist  # noqa: E402
import torch  # noqa: E402
from _report import ROOT, header, write_record, write_section  # noqa: E402

from ebgan.config import PRESETS, apply_overrides, from_preset, resolve  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "mode-tools"
DATA_ROOT = str(ROOT.parent / "shared" / "data")
TOOLS = ("ebgan", "ebgan-pt", "mbd", "pack2", "pack3", "pack4", "pacgan")
DATASETS = ("grid", "ring", "stacked-mnist")
SEEDS_2D = "10-19"  # the default seeds: 2-D seeds none of the presets was chosen on
SEEDS_STACKED = "0,1,2"
MBD_KERNELS = {"grid": 8, "ring": 8, "stacked-mnist": 100}
PACGAN_M = {"grid": 4, "ring": 2, "stacked-mnist": 2}
TOOL_TEXT = {
    "ebgan": "EBGAN, no tool (pt_weight=0)",
    "ebgan-pt": "EBGAN-PT (the preset)",
    "mbd": "EBGAN + minibatch discrimination",
    "pack2": "EBGAN + packing, m = 2",
    "pack3": "EBGAN + packing, m = 3",
    "pack4": "EBGAN + packing, m = 4",
    "pacgan": "non-saturating GAN + packing (PacGAN)",
}
# PacGAN (Lin et al. 2018), Tables 1 and 3, as the project's reference (shared/PAPER.md, s.3) gives them.
PUBLISHED = {
    "grid": "PacGAN4 24.8 modes of 25, 93.6 % high quality (the best row); GAN 17.3 modes",
    "ring": "PacGAN2 7.9 modes of 8 (the best row); GAN 6.3 modes",
    "stacked-mnist": "PacDCGAN2 1000 modes, KL 0.06; DCGAN 99 / 3.40; VEEGAN 150 / 2.95",
}
GOALS = {
    "grid": "25/25 modes with >= 95 % high quality on every seed",
    "stacked-mnist": "1000 modes and KL <= 0.05 on every seed",
}


def tool_sets(tool: str, data: str, pack_batch: str) -> tuple[str, list[str]]:
    """``(loss, --set assignments)`` of ``tool`` on ``data``."""
    preset = PRESETS[data]
    if tool == "ebgan-pt":
        # The preset's own pulling-away term, spelt out: its run folders are this benchmark's own (a Stacked
        # MNIST run of the bare preset is stacked_mnist.py's).
        return "ebgan", [f"pt_weight={preset['pt_weight']}"]
    if tool == "ebgan":
        return "ebgan", ["pt_weight=0"]
    if tool == "mbd":
        return "ebgan", ["pt_weight=0", f"mbd_kernels={MBD_KERNELS[data]}"]
    if tool.startswith("pack") or tool == "pacgan":
        m = PACGAN_M[data] if tool == "pacgan" else int(tool[4:])
        batch = preset["batch_size"]
        batch = m * batch if pack_batch == "packs" else batch - batch % m
        sets = [f"pack={m}"] + ([f"batch_size={batch}"] if batch != preset["batch_size"] else [])
        return ("nsgan", sets) if tool == "pacgan" else ("ebgan", ["pt_weight=0"] + sets)
    raise SystemExit(f"unknown tool {tool!r}; tools: {', '.join(TOOLS)}")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def result_path(data: str, tool: str, seed: int, pack_batch: str) -> Path:
    suffix = "-packs" if pack_batch == "packs" and (tool.startswith("pack") or tool == "pacgan") else ""
    return OUT / f"{data}-{tool}{suffix}-s{seed}.json"


def run_one(data: str, tool: str, seed: int, pack_batch: str, threads: int) -> dict:
    """Train and score one run (or read its result); returns the record."""
    path = result_path(data, tool, seed, pack_batch)
    if path.is_file():
        return json.loads(path.read_text())
    loss, sets = tool_sets(tool, data, pack_batch)
    t0 = time.perf_counter()
    if data == "stacked-mnist":
        r = stacked_mnist.one(loss, seed, PRESETS[data]["steps"], threads, sets, DATA_ROOT)
        rec = {
            "modes": r["modes"],
            "kl": r["kl"],
            "train_minutes": r["minutes"],
            "steps": r["steps"],
            "run": _rel(Path(r["run"])),
            "n_modes": 1000,
        }
    else:
        r = quality_2d.run(data, seed, "cpu", [f"loss={loss}", f"num_threads={threads}", *sets])
        rec = {k: r[k] for k in ("modes", "hq_pct", "reverse_kl", "counts", "steps", "n_modes")}
        rec["train_minutes"] = r["seconds"] / 60
    rec = {
        "data": data,
        "tool": tool,
        "seed": seed,
        "loss": loss,
        "sets": sets,
        "pack_batch": pack_batch,
        **rec,
        "wall_minutes": (time.perf_counter() - t0) / 60,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(rec, indent=1) + "\n")
    tmp.replace(path)
    return rec


def measure_cost(data: str, tools: list[str], pack_batch: str, threads: int, rounds: int, per_round: int) -> dict:
    """Median seconds per training step of every tool on ``data``, interleaved in ``rounds`` rounds of
    ``per_round`` steps each (after 3 warm-up steps), in this process; saved in cost-DATA.json."""
    from ebgan.data import load_dataset
    from ebgan.train import Trainer

    path = OUT / (f"cost-{data}" + ("-packs" if pack_batch == "packs" else "") + ".json")
    if path.is_file():
        cost = json.loads(path.read_text())
        if set(tools) <= set(cost["ms_per_step"]):
            return cost
    dataset, trainers = None, {}
    for tool in tools:
        loss, sets = tool_sets(tool, data, pack_batch)
        cfg = resolve(
            apply_overrides(from_preset(data), {"loss": loss, "device": "cpu", "num_threads": threads, "seed": 0}, sets)
        )
        if dataset is None:
            dataset = load_dataset(cfg.data, DATA_ROOT, seed=0)
        trainers[tool] = Trainer(cfg, dataset)
        for _ in range(3):
            trainers[tool].train_step()
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    for _ in range(rounds):
        for tool, t in trainers.items():
            for _ in range(per_round):
                a = time.perf_counter()
                t.train_step()
                times[tool].append(time.perf_counter() - a)
    ms = {tool: 1000 * statistics.median(v) for tool, v in times.items()}
    cost = {
        "data": data,
        "ms_per_step": ms,
        "steps_timed": rounds * per_round,
        "threads": threads,
        "ratio": {tool: ms[tool] / ms["ebgan"] for tool in ms} if "ebgan" in ms else {},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cost, indent=1) + "\n")
    return cost


def _med(xs):
    return statistics.median(xs) if xs else None


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def report(plan: list[tuple[str, str, int]], done: dict, costs: dict, args) -> None:
    n_done = sum(key in done for key in plan)
    partial = n_done < len(plan)
    title = (
        "## Mode-coverage tools side by side: pulling-away term, minibatch discrimination, packing "
        "(`benchmarks/mode_tools.py`)" + (f" -- PARTIAL, {n_done} of {len(plan)} runs" if partial else "")
    )
    lines = [
        '<a id="mode-tools"></a>',
        "",
        title,
        "",
        # the command that runs (or resumes) the whole comparison, whichever subset last wrote the section
        header(
            "python benchmarks/mode_tools.py"
            + (f" --seeds-2d {args.seeds_2d}" if args.seeds_2d != SEEDS_2D else "")
            + (f" --seeds-stacked {args.seeds_stacked}" if args.seeds_stacked != SEEDS_STACKED else "")
            + (" --pack-batch packs" if args.pack_batch == "packs" else "")
        ).rstrip(),
        f"- runs: {n_done} of {len(plan)} done; 2-D seeds {args.seeds_2d} (none used to choose settings: the "
        f"presets were chosen on 0-4), Stacked MNIST seeds {args.seeds_stacked}; one thread; packs formed "
        + (
            "from the preset's samples per step (batch rounded down to a multiple of m)"
            if args.pack_batch == "samples"
            else "PacGAN's way (as many packs as the preset's batch: m times the samples)"
        ),
        "- tools: every one without the pulling-away term except EBGAN-PT (the preset); minibatch "
        f"discrimination with {MBD_KERNELS['grid']} kernels of 5 on the 2-D data and {MBD_KERNELS['stacked-mnist']} "
        "on Stacked MNIST; packing with the margin scaled by sqrt(m) (l2 energy); PacGAN = the non-saturating "
        f"GAN with m = {PACGAN_M['stacked-mnist']} (Stacked MNIST, ring) or {PACGAN_M['grid']} (grid), on the "
        "preset's networks and optimiser settings",
        "- cost: median wall time of a training step, the tools interleaved in one process, and its ratio to "
        "plain EBGAN measured alongside; figures: median over the seeds done (min-max)",
        "",
    ]
    summary = {}
    for data in [d for d in DATASETS if d in args.data]:
        tools = [t for t in args.tools]
        two_d = data != "stacked-mnist"
        lines += [f"### Mode-coverage tools on {data}", "", f"- published: {PUBLISHED[data]}"]
        if data in GOALS:
            lines.append(f"- goal: {GOALS[data]}")
        lines.append("")
        if two_d:
            lines += [
                "| tool | seeds | modes | high quality % | reverse KL | goal seeds | ms/step | cost | train min |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
        else:
            lines += [
                "| tool | seeds | modes (of 1000) | KL | goal seeds | ms/step | cost | train min |",
                "|---|---|---|---|---|---|---|---|",
            ]
        cost = costs.get(data, {})
        for tool in tools:
            recs = [done[k] for k in plan if k[0] == data and k[1] == tool and k in done]
            n_plan = sum(1 for k in plan if k[0] == data and k[1] == tool)
            modes = [r["modes"] for r in recs]
            ms = cost.get("ms_per_step", {}).get(tool)
            ratio = cost.get("ratio", {}).get(tool)
            mins = _med([r["train_minutes"] for r in recs])
            rng = f" ({min(modes)}-{max(modes)})" if len(modes) > 1 else ""
            row = {"seeds": [r["seed"] for r in recs], "modes": modes, "ms_per_step": ms, "cost_ratio": ratio}
            if two_d:
                hq = [r["hq_pct"] for r in recs]
                kls = [r["reverse_kl"] for r in recs if r["reverse_kl"] is not None]
                goal = sum(r["modes"] == r["n_modes"] and r["hq_pct"] >= 95.0 for r in recs)
                hq_rng = f" ({min(hq):.1f}-{max(hq):.1f})" if len(hq) > 1 else ""
                lines.append(
                    f"| {TOOL_TEXT[tool]} | {len(recs)}/{n_plan} | {_fmt(_med(modes), 'g')}{rng} | "
                    f"{_fmt(_med(hq), '.1f')}{hq_rng} | {_fmt(_med(kls), '.3f')} | {goal}/{len(recs)} | "
                    f"{_fmt(ms, '.1f')} | {_fmt(ratio, '.2f')}{'x' if ratio else ''} | {_fmt(mins, '.1f')} |"
                )
                row.update(hq_pct=hq, reverse_kl=[r["reverse_kl"] for r in recs], goal_seeds=goal)
            else:
                kl = [r["kl"] for r in recs]
                goal = sum(r["modes"] == 1000 and r["kl"] <= 0.05 for r in recs)
                kl_rng = f" ({min(kl):.3f}-{max(kl):.3f})" if len(kl) > 1 else ""
                lines.append(
                    f"| {TOOL_TEXT[tool]} | {len(recs)}/{n_plan} | {_fmt(_med(modes), 'g')}{rng} | "
                    f"{_fmt(_med(kl), '.3f')}{kl_rng} | {goal}/{len(recs)} | {_fmt(ms, '.0f')} | "
                    f"{_fmt(ratio, '.2f')}{'x' if ratio else ''} | {_fmt(mins, '.1f')} |"
                )
                row.update(kl=kl, goal_seeds=goal)
            summary.setdefault(data, {})[tool] = row
        against = _against_preset(data, tools, plan, done)
        lines += ["", *against, ""] if against else [""]
    body = "\n".join(lines).rstrip() + "\n"
    write_section("mode_tools", body)
    write_record(
        "mode-tools/summary",
        summary,
        partial=partial,
        runs_done=n_done,
        runs_planned=len(plan),
        seeds_2d=args.seeds_2d,
        seeds_stacked=args.seeds_stacked,
        pack_batch=args.pack_batch,
        costs=costs,
    )


def _against_preset(data: str, tools: list[str], plan, done) -> list[str]:
    """Each tool against EBGAN-PT (the preset's choice) on the seeds both have done: how many seeds it is
    ahead, level or behind on every measure (modes, then high quality and reverse KL, or KL)."""
    if "ebgan-pt" not in tools:
        return []
    ref = {k[2]: done[k] for k in plan if k[0] == data and k[1] == "ebgan-pt" and k in done}
    out = []
    for tool in tools:
        if tool == "ebgan-pt":
            continue
        pairs = [(done[k], ref[k[2]]) for k in plan if k[0] == data and k[1] == tool and k in done and k[2] in ref]
        if not pairs:
            continue
        better = worse = 0
        for r, p in pairs:
            if data == "stacked-mnist":
                ahead = (r["modes"] >= p["modes"], r["kl"] <= p["kl"])
                behind = (r["modes"] <= p["modes"], r["kl"] >= p["kl"])
            else:
                rk, pk = (x if x is not None else float("inf") for x in (r["reverse_kl"], p["reverse_kl"]))
                ahead = (r["modes"] >= p["modes"], r["hq_pct"] >= p["hq_pct"], rk <= pk)
                behind = (r["modes"] <= p["modes"], r["hq_pct"] <= p["hq_pct"], rk >= pk)
            better += all(ahead) and not all(behind)
            worse += all(behind) and not all(ahead)
        out.append(
            f"- {TOOL_TEXT[tool]} against EBGAN-PT, seed by seed: ahead on {better} of {len(pairs)} seeds "
            f"(better on a measure, worse on none), behind on {worse}, mixed or level on "
            f"{len(pairs) - better - worse}"
        )
    return out


def make_plan(
    datas: list[str], tools: list[str], seeds_2d: list[int], seeds_st: list[int]
) -> list[tuple[str, str, int]]:
    """Rounds of seeds, so that a partial result holds every tool on the first seeds: round r trains the 2-D
    data at the r-th 2-D seed, then Stacked MNIST at the r-th Stacked MNIST seed (while there is one)."""
    plan = []
    for r in range(max(len(seeds_2d), len(seeds_st))):
        for data in datas:
            seeds = seeds_st if data == "stacked-mnist" else seeds_2d
            if r < len(seeds):
                plan += [(data, tool, seeds[r]) for tool in tools]
    return plan


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=",".join(DATASETS))
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--seeds-2d", default=SEEDS_2D)
    ap.add_argument("--seeds-stacked", default=SEEDS_STACKED)
    ap.add_argument("--pack-batch", choices=("samples", "packs"), default="samples")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cost-rounds", type=int, default=4)
    ap.add_argument("--cost-only", action="store_true", help="measure the cost of each tool, train nothing")
    ap.add_argument("--report-only", action="store_true", help="train nothing: report what is done")
    args = ap.parse_args()
    args.data = args.data.split(",")
    args.tools = args.tools.split(",")
    torch.set_num_threads(args.threads)
    seeds_2d, seeds_st = _seeds(args.seeds_2d), _seeds(args.seeds_stacked)
    plan = make_plan(args.data, args.tools, seeds_2d, seeds_st)
    # The section always reports the whole comparison (every data set and tool on the default seeds, and any
    # seeds this invocation adds), so that running a subset (e.g. --data grid --tools ebgan-pt) does not shrink it.
    view = argparse.Namespace(**vars(args))
    view.data, view.tools = list(DATASETS), list(TOOLS)
    if set(seeds_2d) <= set(_seeds(SEEDS_2D)):
        view.seeds_2d = SEEDS_2D
    if set(seeds_st) <= set(_seeds(SEEDS_STACKED)):
        view.seeds_stacked = SEEDS_STACKED
    view_plan = make_plan(view.data, view.tools, _seeds(view.seeds_2d), _seeds(view.seeds_stacked))
    view_plan += [k for k in plan if k not in view_plan]
    costs = {}
    for data in DATASETS:
        path = OUT / (f"cost-{data}" + ("-packs" if args.pack_batch == "packs" else "") + ".json")
        if args.report_only or data not in args.data:
            if path.is_file():
                costs[data] = json.loads(path.read_text())
            continue
        steps = 5 if data == "stacked-mnist" else 20
        print(f"cost: {data}, {len(args.tools)} tools x {args.cost_rounds} rounds x {steps} steps", flush=True)
        costs[data] = measure_cost(data, args.tools, args.pack_batch, args.threads, args.cost_rounds, steps)
        print("cost: " + ", ".join(f"{t} {v:.1f} ms" for t, v in costs[data]["ms_per_step"].items()), flush=True)
    done = {}
    for key in view_plan:
        if result_path(key[0], key[1], key[2], args.pack_batch).is_file():
            done[key] = run_one(*key, args.pack_batch, args.threads)
    report(view_plan, done, costs, view)
    if args.cost_only or args.report_only:
        return
    for i, key in enumerate(plan):
        if key in done:
            continue
        data, tool, seed = key
        print(f"[{i + 1}/{len(plan)}] {data} {tool} seed {seed} ...", flush=True)
        t0 = time.perf_counter()
        rec = run_one(data, tool, seed, args.pack_batch, args.threads)
        done[key] = rec
        figures = f"{rec['modes']}/{rec['n_modes']} modes, " + (
            f"{rec['hq_pct']:.1f} % hq, reverse KL {_fmt(rec['reverse_kl'], '.3f')}"
            if data != "stacked-mnist"
            else f"KL {rec['kl']:.3f}"
        )
        print(
            f"[{i + 1}/{len(plan)}] {data} {tool} seed {seed}: {figures} ({(time.perf_counter() - t0) / 60:.1f} min)",
            flush=True,
        )
        report(view_plan, done, costs, view)
    print("all runs done", flush=True)


if __name__ == "__main__":
    main()
