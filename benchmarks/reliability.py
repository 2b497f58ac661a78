"""Reliability under the faults real machines have: every write point x every kind of write failure, the sweep
under faults, ``ebgan score``, real faults (a full tmpfs, a read-only one, a deleted folder), and the readers
fuzzed with Hypothesis's long profile. Writes the ``reliability`` section of BENCHMARKS.md and
``benchmarks/results/reliability.json``.

    python benchmarks/reliability.py                 # everything (about half an hour on 2 busy cores)
    python benchmarks/reliability.py --skip-sweep --fuzz-profile ci    # the quick part

A training case passes when the faulty run ends with exit status 3 and one line naming the file (matching the
write point) and the cause, the checkpoint ``latest`` names is complete and untouched, and the command the line
names (``--resume``, or the same command before the run wrote anything) then reaches exactly the
uninterrupted result: final weights, every metrics row (times aside), the best checkpoint, the threshold and
the final sample grid. A sweep case passes when the sweep ends with status 3 and one line, and running the
same command again records exactly the rows of an uninterrupted sweep (wall-clock fields aside).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fnmatch
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # bit-exact comparisons need one thread count

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, header, write_section

sys.path.insert(0, str(ROOT / "src"))
from ebgan._faults import CAUSES as CAUSE
from ebgan._faults import PROBE_RUN as RUN
from ebgan._faults import PROBE_SWEEP as SWEEP
from ebgan._faults import SWEEP_WRITE_POINTS as SWEEP_POINTS
from ebgan._faults import TRAIN_WRITE_POINTS as TRAIN_POINTS

KINDS = {"ENOSPC": "disk full", "EIO": "I/O error", "EROFS": "read-only", "ENOENT": "folder deleted"}


def ebgan(argv, fault: str | None = None) -> tuple[int, list[str]]:
    """``ebgan ARGV`` in this process: exit status and stderr lines (``fault``: EBGAN_FAULT_OSERROR)."""
    from ebgan import _faults
    from ebgan.cli import main

    _faults.reset()
    err, out = io.StringIO(), io.StringIO()
    if fault:
        os.environ["EBGAN_FAULT_OSERROR"] = fault
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main([str(a) for a in argv])
    finally:
        os.environ.pop("EBGAN_FAULT_OSERROR", None)
    return code, err.getvalue().strip().splitlines()


def weights(ckpt: Path) -> dict[str, bytes]:
    from safetensors.torch import load_file

    return {k: v.numpy().tobytes() for k, v in load_file(str(ckpt / "weights.safetensors")).items()}


def result(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("time", None)
    final = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    return {
        "rows": rows,
        "final": final.name,
        "weights": weights(final),
        "best": json.loads((run / "best.json").read_text()),
        "best_weights": weights(run / "checkpoints" / "best"),
        "threshold": json.loads((run / "threshold.json").read_text()),
        "samples": (run / "samples.png").read_bytes(),
    }


def checkpoint_state(run: Path):
    pointer = run / "checkpoints" / "latest"
    if not pointer.is_file():
        return None, None
    ckpt = run / "checkpoints" / pointer.read_text().strip()
    h = hashlib.sha256()
    for name in ("weights.safetensors", "state.pt", "config.json"):
        h.update((ckpt / name).read_bytes())
    return ckpt.name, h.hexdigest()


def judge_line(err: list[str], code: int, glob: str) -> str | None:
    """Why the error output is not one clear line naming a file that matches ``glob`` and the cause (None: it is)."""
    if len(err) != 1:
        return f"{len(err)} lines"
    line = err[0]
    if not line.startswith(f"ebgan: error: {CAUSE[code]}") or " writing " not in line:
        return f"unexpected line: {line[:120]}"
    path = line.split(" writing ", 1)[1].split(": ", 1)[0]
    if not fnmatch.fnmatch(path, glob):
        return f"names {path}"
    return None


def training_case(tmp: Path, name: str, glob: str, k: int, kind: str, reference: dict) -> dict:
    from ebgan.checkpoint import load_state

    run = tmp / "run"
    shutil.rmtree(run, ignore_errors=True)
    glob = glob.format(run=run)
    code = getattr(errno, kind)
    t0 = time.perf_counter()
    row = {"point": name, "kind": kind, "glob": glob.replace(str(run), "RUN"), "k": k}
    # A run that fails at the k-th reach of the point: the first k - 1 are let through by counting.
    status, err = ebgan([*RUN, "--out", run], f"{glob}:{kind}:{k}")
    row["status"] = status
    row["line"] = err[0].replace(str(run), "RUN") if len(err) == 1 else err
    row["clear_error"] = status == 3 and judge_line(err, code, glob) is None
    name_, _ = checkpoint_state(run)
    intact = True
    if name_ is not None:
        try:
            load_state(run / "checkpoints" / name_)
            intact = f"the last complete checkpoint is step {int(name_.split('-')[1])};" in err[0]
        except Exception:  # noqa: BLE001 - recorded
            intact = False
    row["checkpoint_intact"] = intact
    resume = (
        ["train", "--out", run, "--resume", "--no-progress"] if (run / "config.json").exists() else [*RUN, "--out", run]
    )
    status2, _ = ebgan(resume)
    row["resume_status"] = status2
    row["exact"] = status2 == 0 and result(run) == reference
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["ok"] = bool(row["clear_error"] and row["checkpoint_intact"] and row["exact"])
    return row


def timeless(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("seconds", "train_seconds")}


def sweep_rows(out: Path) -> dict:
    from ebgan.sweep.store import read_rows

    return {(r["method"], r["setting_id"]): timeless(r) for r in read_rows(out)}


def sweep_case(tmp: Path, grid: Path, name: str, glob: str, k: int, kind: str, reference: dict) -> dict:
    out = tmp / "sweep"
    shutil.rmtree(out, ignore_errors=True)
    glob = glob.format(out=out)
    argv = ["sweep", grid, "--out", out, "--workers", "1", "--no-progress"]
    t0 = time.perf_counter()
    status, err = ebgan(argv, f"{glob}:{kind}:{k}")
    row = {
        "point": name,
        "kind": kind,
        "glob": glob.replace(str(out), "OUT"),
        "k": k,
        "status": status,
        "line": err[0].replace(str(out), "OUT") if len(err) == 1 else err,
    }
    row["clear_error"] = status == 3 and judge_line(err, getattr(errno, kind), glob) is None
    try:
        sweep_rows(out)  # whole rows only
        row["rows_whole"] = True
    except Exception:  # noqa: BLE001 - recorded
        row["rows_whole"] = False
    status2, _ = ebgan(argv)
    row["rerun_status"] = status2
    row["exact"] = status2 == 0 and sweep_rows(out) == reference
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["ok"] = bool(row["clear_error"] and row["rows_whole"] and row["exact"])
    return row


def score_cases(tmp: Path, run: Path) -> list[dict]:
    import numpy as np

    x = tmp / "points.npy"
    np.save(x, np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32))
    csv = tmp / "scores" / "scores.csv"
    status, err = ebgan(["score", run, x, "-o", csv])
    assert status == 0, err
    good = csv.read_bytes()
    rows = []
    for kind in KINDS:
        csv.unlink()
        status, err = ebgan(["score", run, x, "-o", csv], f"*scores.csv:{kind}")
        clear = status == 3 and judge_line(err, getattr(errno, kind), str(csv)) is None
        left = sorted(p.name for p in csv.parent.iterdir())
        status2, _ = ebgan(["score", run, x, "-o", csv])
        rows.append(
            {
                "point": "`ebgan score -o SCORES.csv`",
                "kind": kind,
                "status": status,
                "clear_error": clear,
                "no_partial_file": left == [],
                "exact": status2 == 0 and csv.read_bytes() == good,
                "ok": clear and left == [] and status2 == 0 and csv.read_bytes() == good,
            }
        )
    return rows


def real_faults(tmp: Path, reference: dict) -> list[dict]:
    """A tmpfs that fills up, one mounted read-only, and a samples folder deleted under the run."""
    from ebgan import _faults

    rows = []
    mnt = tmp / "fs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if p.returncode != 0:
        rows.append({"fault": "tmpfs", "ok": None, "note": f"cannot mount a tmpfs: {p.stderr.strip()}"})
    else:
        try:
            st = os.statvfs(mnt)
            filler = mnt / "filler"
            filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 1_200_000))
            run = mnt / "run"
            status, err = ebgan([*RUN, "--out", run])
            line = err[0].replace(str(run), "RUN") if len(err) == 1 else err
            clear = status == 3 and len(err) == 1 and "no space left on device writing" in err[0]
            filler.unlink()
            status2, _ = ebgan(["train", "--out", run, "--resume", "--no-progress"])
            rows.append(
                {
                    "fault": "a real full disk (tmpfs of 8 MiB, 1.2 MB left)",
                    "line": line,
                    "clear_error": clear,
                    "exact": status2 == 0 and result(run) == reference,
                    "ok": clear and status2 == 0 and result(run) == reference,
                }
            )
            shutil.rmtree(run)
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            try:
                status, err = ebgan([*RUN, "--out", mnt / "ro"])
            finally:
                subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
            clear = status == 3 and len(err) == 1 and "read-only file system writing" in err[0]
            status2, _ = ebgan([*RUN, "--out", mnt / "ro"])
            rows.append(
                {
                    "fault": "a real read-only file system (tmpfs remounted ro)",
                    "line": err[0].replace(str(mnt), "FS") if err else "",
                    "clear_error": clear,
                    "exact": status2 == 0 and result(mnt / "ro") == reference,
                    "ok": clear and status2 == 0 and result(mnt / "ro") == reference,
                }
            )
        finally:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    run = tmp / "deleted"
    real = _faults.io_point

    def delete_samples(path):
        if fnmatch.fnmatch(str(path), f"{run}/samples/step-*.png"):
            shutil.rmtree(run / "samples")
        real(path)

    _faults.io_point = delete_samples
    try:
        status, err = ebgan([*RUN, "--out", run])
    finally:
        _faults.io_point = real
    clear = status == 3 and len(err) == 1 and "its folder was deleted or moved) writing" in err[0]
    status2, _ = ebgan(["train", "--out", run, "--resume", "--no-progress"])
    rows.append(
        {
            "fault": "a real deletion: `samples/` removed under the run",
            "clear_error": clear,
            "line": err[0].replace(str(run), "RUN") if err else "",
            "exact": status2 == 0 and result(run) == reference,
            "ok": clear and status2 == 0,
        }
    )
    return rows


def sweep_kill(tmp: Path, grid_spec: dict, reference_of) -> dict:
    """SIGKILL to a running worker once its run has a checkpoint: retried in a new process from there."""
    import threading

    from ebgan.sweep import run_sweep

    spec = {
        **grid_spec,
        "steps": 300,
        "base": {"log_every": 50, "ckpt_every": 50, "n_grid": 16},
        "grid": {"g_size": [16]},
    }
    out = tmp / "killed"
    killed = {}

    def children(pid):
        kids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d.name))
                except (OSError, ValueError, IndexError):
                    pass
        return kids

    def watch():
        deadline = time.time() + 600
        while time.time() < deadline and not killed:
            if list(out.glob("runs/ebgan/*/checkpoints/latest")):
                for pid in children(os.getpid()):
                    if b"ebgan.sweep.child" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.kill(pid, 9)
                        killed["pid"] = pid
                        return
            time.sleep(0.01)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    with contextlib.redirect_stderr(io.StringIO()):
        (row,) = run_sweep(spec, out, workers=1, progress=False)
    th.join()
    log = (out / "logs" / "worker-0.log").read_text()
    exact = {(row["method"], row["setting_id"]): timeless(row)} == reference_of(spec, tmp / "kill-ref")
    return {
        "fault": "SIGKILL to a sweep worker mid-run (after its first checkpoint)",
        "killed": bool(killed),
        "retried": "retry 1 of 2 from the run's last checkpoint" in log,
        "exact": exact,
        "ok": bool(killed) and row["status"] == "ok" and exact,
    }


def uninterrupted_sweep(spec: dict, root: Path) -> dict:
    from ebgan.config import to_dict
    from ebgan.data import resolve_data_root
    from ebgan.sweep.grid import config_for
    from ebgan.sweep.run import interleave, plan
    from ebgan.sweep.worker import run_setting

    _, grid, _, chosen = plan(spec)
    rows = {}
    for s in interleave(chosen):
        cfg = {**to_dict(config_for(grid, s, grid["steps"], 0)), "num_threads": 1}
        task = {
            "method": s.method,
            "setting_id": s.setting_id,
            "values": s.values,
            "config": cfg,
            "run_dir": str(root / s.method / s.setting_id),
            "data_root": str(resolve_data_root(None).resolve()),
            "eval_samples": 0,
            "prune": False,
        }
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            rows[(s.method, s.setting_id)] = timeless(run_setting(task))
    return rows


def fsync_cost(tmp: Path, reps: int = 5) -> dict:
    """A checkpoint write of the `mnist` preset's networks (and optimiser state) with and without the fsyncs."""
    import torch

    from ebgan.checkpoint import save_checkpoint
    from ebgan.config import from_preset, resolve
    from ebgan.nets import build_networks
    from ebgan.objectives import make_objective

    cfg = resolve(from_preset("mnist"))
    obj = make_objective(cfg)
    G, D = build_networks(cfg, (1, 28, 28), obj.head, energy=obj.energy)
    opt = torch.optim.Adam(list(G.parameters()) + list(D.parameters()))
    for p in list(G.parameters()) + list(D.parameters()):
        p.grad = torch.zeros_like(p)
    opt.step()
    state = {"opt": opt.state_dict(), "perm": torch.randperm(60000)}
    real = os.fsync
    times = {"fsync": [], "no_fsync": []}
    for i in range(reps):
        for mode in ("fsync", "no_fsync"):
            os.fsync = real if mode == "fsync" else (lambda fd: None)
            try:
                t = time.perf_counter()
                path = save_checkpoint(tmp / f"ck-{mode}", i + 1, {"G": G, "D": D}, state, {"a": 1}, keep=1)
                times[mode].append(time.perf_counter() - t)
            finally:
                os.fsync = real
    size = sum(f.stat().st_size for f in path.iterdir())
    on = statistics.median(times["fsync"])
    off = statistics.median(times["no_fsync"])
    return {
        "checkpoint_bytes": size,
        "median_s_fsync": on,
        "median_s_no_fsync": off,
        "reps": reps,
        "ckpt_every": cfg.ckpt_every,
        "extra_s": on - off,
        "fs": subprocess.run(["stat", "-f", "-c", "%T", str(tmp)], capture_output=True, text=True).stdout.strip(),
    }


def run_fuzz(profile: str) -> dict:
    report = Path(tempfile.mkdtemp()) / "fuzz.json"
    env = {**os.environ, "EBGAN_FUZZ_REPORT": str(report), "PYTHONPATH": str(ROOT / "src")}
    t = time.perf_counter()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_fuzz.py",
            "-p",
            "no:cacheprovider",
            f"--hypothesis-profile={profile}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    log = report.parent / "pytest.log"
    log.write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        print(f"the fuzz run failed (exit status {p.returncode}); its output: {log}", flush=True)
    summary = [line for line in p.stdout.splitlines() if " passed" in line or " failed" in line]
    tail = summary[-1].strip("= ") if summary else (p.stdout.strip().splitlines() or [p.stderr[-300:]])[-1]
    counts = json.loads(report.read_text()) if report.exists() else {}
    return {
        "profile": profile,
        "exit_status": p.returncode,
        "summary": tail,
        "seconds": round(time.perf_counter() - t),
        "readers": counts,
    }


def tick(ok) -> str:
    return "yes" if ok else ("n/a" if ok is None else "**NO**")


def render(rec: dict) -> str:
    head = header(rec.get("command")).rstrip("\n")
    if rec.get("date"):  # re-rendered from the record (--report-only): the provenance of the measurement
        head = (
            f"- date: {rec['date']}, commit {rec.get('commit', '?')}\n- machine: {rec.get('machine', '?')}\n"
            f"- command: `{rec.get('command', '?')}`"
        )
    lines = [
        "## Reliability: write failures, killed workers, corrupt and hostile inputs (`benchmarks/reliability.py`)",
        "",
        head,
        "",
    ]
    tr = rec.get("training", [])
    if tr:
        kinds = list(KINDS)
        ok = sum(r["ok"] for r in tr)
        lines += [
            f"**Training run** (`ring`, 24 steps, every writer on; one fresh run per cell): {ok} of {len(tr)} "
            f"faults injected as `OSError` (`EBGAN_FAULT_OSERROR`) ended with exit status 3 and one line naming "
            f"the file and the cause, left the last complete checkpoint intact, and the command that line "
            f"names then reached exactly the uninterrupted result (weights, every metrics row, best "
            f"checkpoint, threshold, sample grid).",
            "",
            "| write point | " + " | ".join(f"{k} ({KINDS[k]})" for k in kinds) + " |",
            "|---|" + "---|" * len(kinds),
        ]
        for name, _, _ in TRAIN_POINTS:
            cells = []
            for k in kinds:
                r = next((r for r in tr if r["point"] == name and r["kind"] == k), None)
                cells.append("-" if r is None else tick(r["ok"]))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        example = next((r["line"] for r in tr if r["point"] == "checkpoint `state.pt`" and r["kind"] == "ENOSPC"), None)
        if example:
            lines += ["", f"The line for a full disk at the checkpoint: `{example}`"]
    sw = rec.get("sweep", [])
    if sw:
        ok = sum(r["ok"] for r in sw)
        kinds = sorted({r["kind"] for r in sw}, key=list(KINDS).index)
        lines += [
            "",
            f"**Sweep** (2 settings, 1 worker): {ok} of {len(sw)} faults ended the sweep with status 3 and "
            f"one line, left whole rows in `results.jsonl`, and the same command then recorded exactly the rows "
            f"of an uninterrupted sweep.",
            "",
            "| write point | " + " | ".join(kinds) + " |",
            "|---|" + "---|" * len(kinds),
        ]
        for name, _, _ in SWEEP_POINTS:
            cells = [tick(next((r["ok"] for r in sw if r["point"] == name and r["kind"] == k), None)) for k in kinds]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    sc = rec.get("score", [])
    if sc:
        lines += [
            "",
            f"**`ebgan score`**: {sum(r['ok'] for r in sc)} of {len(sc)} ({', '.join(r['kind'] for r in sc)}) "
            f"ended with status 3 and one line, left no partial CSV, and the next run wrote the same file.",
        ]
    real = rec.get("real", [])
    if real:
        lines += [
            "",
            "| real fault | the clear error (status 3), or the retry | then the uninterrupted result |",
            "|---|---|---|",
        ]
        for r in real:
            first = (
                tick(r.get("clear_error"))
                if "clear_error" in r
                else f"killed: {tick(r.get('killed'))}, retried from its checkpoint: {tick(r.get('retried'))}"
            )
            lines.append(f"| {r['fault']} | {first} | {tick(r.get('exact', r.get('ok')))} |")
    fz = rec.get("fuzz")
    if fz:
        readers = fz["readers"]
        total = sum(v.get("inputs", 0) for v in readers.values())
        when = f", {fz['date']}, commit {fz['commit']}" if fz.get("commit") else ""
        lines += [
            "",
            f"**Fuzzing** (Hypothesis, profile `{fz['profile']}`: `python -m pytest tests/test_fuzz.py "
            f"--hypothesis-profile={fz['profile']}`; {fz['seconds']} s{when}): {total:,} inputs, valid and mutated "
            f"(truncated, bit-flipped, wrong sizes and types, huge headers, NaN/inf, decompression bombs, "
            f"symlink loops). Each input gave a valid result or one `EbganError` line; an unexpected exception, "
            f"an input taking over 30 s or peak memory growing by 512 MiB would fail the run ({fz['summary']}).",
            "",
            "| reader | inputs | valid | refused (one EbganError line) | unexpected exceptions |",
            "|---|---|---|---|---|",
        ]
        for name, c in readers.items():
            unexpected = c.get("inputs", 0) - c.get("valid", 0) - c.get("refused", 0)
            lines.append(
                f"| {name} | {c.get('inputs', 0):,} | {c.get('valid', 0):,} | {c.get('refused', 0):,} | {unexpected} |"
            )
        if fz["exit_status"] != 0:
            lines += [
                "",
                f"The fuzz run did not pass: {fz['summary']}; the failing reader is the row with unexpected "
                f"exceptions (an input that hung or broke the memory bound counts as one).",
            ]
    fs = rec.get("fsync")
    if fs:
        lines += [
            "",
            f"**Cost of durability**: a checkpoint of the `mnist` preset's networks and Adam state "
            f"({fs['checkpoint_bytes'] / 1e6:.1f} MB) is written in {fs['median_s_fsync'] * 1000:.0f} ms with the "
            f"fsyncs (each file before the rename, the folder after) against {fs['median_s_no_fsync'] * 1000:.0f} "
            f"ms without (median of {fs['reps']}, on {fs['fs'] or '?'}): "
            f"{fs['extra_s'] * 1000:+.0f} ms per checkpoint, which the preset writes every {fs['ckpt_every']:,} "
            f"steps.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default=",".join(KINDS), help="errnos injected in training runs")
    ap.add_argument("--sweep-kinds", default="ENOSPC,EIO")
    ap.add_argument(
        "--points", type=int, default=None, help="only the first N write points of each table (a quick try)"
    )
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-fuzz", action="store_true")
    ap.add_argument("--fuzz-profile", default="long")
    ap.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="write the section again from benchmarks/results/reliability.json, measuring nothing",
    )
    ap.add_argument(
        "--fuzz-only",
        action="store_true",
        help="run the fuzz part again and replace it in benchmarks/results/reliability.json",
    )
    args = ap.parse_args()
    out = ROOT / "benchmarks" / "results" / "reliability.json"
    if args.report_only or args.fuzz_only:
        rec = json.loads(out.read_text())
        if args.fuzz_only:
            import _report

            rec["fuzz"] = {**run_fuzz(args.fuzz_profile), **_report.provenance()}
            out.write_text(json.dumps(rec, indent=1, default=str) + "\n")
        write_section("reliability", render(rec))
        print("wrote the reliability section of BENCHMARKS.md from", out)
        return 0

    import torch

    torch.set_num_threads(1)
    rec: dict = {"benchmark": "reliability"}
    tmp = Path(tempfile.mkdtemp(prefix="ebgan-reliability-"))
    try:
        ref_run = tmp / "reference"
        status, err = ebgan([*RUN, "--out", ref_run])
        assert status == 0, err
        reference = result(ref_run)
        if not args.skip_training:
            rec["training"] = []
            for name, glob, k in TRAIN_POINTS[: args.points]:
                for kind in args.kinds.split(","):
                    r = training_case(tmp, name, glob, k, kind, reference)
                    rec["training"].append(r)
                    print(
                        f"training {name} {kind}: {'ok' if r['ok'] else 'FAILED ' + json.dumps(r)[:300]} "
                        f"({r['seconds']} s)",
                        flush=True,
                    )
        rec["score"] = score_cases(tmp, ref_run)
        print("score:", [r["ok"] for r in rec["score"]], flush=True)
        if not args.skip_real:
            rec["real"] = real_faults(tmp, reference)
            print("real:", [(r["fault"], r["ok"]) for r in rec["real"]], flush=True)
        if not args.skip_sweep:
            grid = tmp / "grid.json"
            grid.write_text(json.dumps(SWEEP))
            sweep_ref = uninterrupted_sweep(SWEEP, tmp / "sweep-ref")
            rec["sweep"] = []
            for name, glob, k in SWEEP_POINTS[: args.points]:
                for kind in args.sweep_kinds.split(","):
                    r = sweep_case(tmp, grid, name, glob, k, kind, sweep_ref)
                    rec["sweep"].append(r)
                    print(
                        f"sweep {name} {kind}: {'ok' if r['ok'] else 'FAILED ' + json.dumps(r)[:300]} "
                        f"({r['seconds']} s)",
                        flush=True,
                    )
            rec.setdefault("real", []).append(sweep_kill(tmp, SWEEP, uninterrupted_sweep))
            print("sweep kill:", rec["real"][-1], flush=True)
        rec["fsync"] = fsync_cost(tmp)
        print("fsync:", rec["fsync"], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.skip_fuzz:
        rec["fuzz"] = run_fuzz(args.fuzz_profile)
        print("fuzz:", rec["fuzz"]["summary"], flush=True)
    body = render(rec)
    if args.no_write:
        print(body)
        return 0
    import _report

    prov = _report.provenance() if hasattr(_report, "provenance") else {}
    out.write_text(json.dumps({**rec, **prov}, indent=1, default=str) + "\n")
    write_section("reliability", body)
    print(f"wrote {out} and the reliability section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
