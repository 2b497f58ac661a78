"""Log anomaly detection on DeepLog's HDFS split (``ebgan seq``): the energy of event sequences, unlearning at
training time, feedback updates, speed. Results in benchmarks/results/seq-hdfs/*.json and the ``seq_hdfs``
section of BENCHMARKS.md.

Protocol (issue 29, item 5):

* validation: a seeded 10% of ``hdfs_train`` (split seed 0) is never trained on, and a seeded 10% of
  ``hdfs_test_abnormal`` is set aside; the test figures exclude both. The hyper-parameters (pair weighting,
  end-of-session prediction, graded energy, false-positive rate of the calibration) are chosen on them only,
  at seed 0, by F1 at DeepLog's ratio;
* test, 3 seeds: false-positive rate on ``hdfs_test_normal_sample``, detection rate on the abnormal sessions,
  AUROC, and F1 at DeepLog's ratio, ``precision = TP / (TP + FPR x 553,366)`` with ``TP = recall x 16,838``
  (the data README), for DeepLog's top-g rule (g = 9) and for the chosen graded energy at the threshold the run
  calibrated on its own held-out normal sessions;
* unlearning at training time: a seeded 1% of the distinct abnormal patterns (of the test part) known;
  detection on the abnormal sessions whose pattern is not among them, with and without;
* feedback: the test stream (normal and abnormal test sessions) in a seeded order, in 10 chunks; after each
  chunk its false positives and negatives are fed back (``update_run``); each later chunk's counts against the
  model that never updates, and the false-positive rate on all normal test sessions before and after;
* speed: training time, sessions scored per second.

    python benchmarks/seq_hdfs.py [--epochs 50] [--seeds 0 1 2] [--grid eos|full] [--work runs/seq-hdfs]
                                   [--report-only]

Resumable: a configuration whose result file exists is skipped; runs go to --work (not committed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import header, write_section  # noqa: E402

from ebgan.energy import threshold_at_fpr  # noqa: E402
from ebgan.seq.config import SeqConfig  # noqa: E402
from ebgan.seq.data import distinct, read_sessions  # noqa: E402
from ebgan.seq.model import auroc  # noqa: E402
from ebgan.seq.run import UpdateSettings, load_run, train_seq, update_run  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hdfs"
RESULTS = Path(__file__).resolve().parent / "results" / "seq-hdfs"
DEEPLOG = {"precision": 0.95, "recall": 0.96, "f1": 0.96}
N_NORMAL_DEEPLOG, N_ABNORMAL = 553_366, 16_838
# (pair weighting, end-of-session prediction); --grid full adds DeepLog's model without the end of session
GRIDS = {"eos": [("count", True), ("distinct", True)],
         "full": [("count", True), ("distinct", True), ("count", False), ("distinct", False)]}
FPRS = (0.001, 0.005, 0.01)


def f1_deeplog(fpr: float, recall: float) -> tuple[float, float]:
    tp = recall * N_ABNORMAL
    p = tp / (tp + fpr * N_NORMAL_DEEPLOG) if tp > 0 else 0.0
    return p, (2 * p * recall / (p + recall) if p + recall > 0 else 0.0)


def seeded_split(n: int, share: float, seed: int) -> tuple[list[int], list[int]]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    k = round(share * n)
    return sorted(perm[k:]), sorted(perm[:k])


def load():
    train = read_sessions(DATA / "hdfs_train").keys
    abnormal = read_sessions(DATA / "hdfs_test_abnormal").keys
    normal_test = read_sessions(DATA / "hdfs_test_normal_sample").keys
    tr_i, va_i = seeded_split(len(train), 0.1, 0)
    ab_te, ab_va = seeded_split(len(abnormal), 0.1, 0)
    return {"train": [train[i] for i in tr_i], "val_normal": [train[i] for i in va_i],
            "val_abnormal": [abnormal[i] for i in ab_va], "test_abnormal": [abnormal[i] for i in ab_te],
            "test_normal": normal_test}


def figures(en: np.ndarray, ea: np.ndarray, thr: float) -> dict:
    fpr, rec = float((en > thr).mean()), float((ea > thr).mean())
    p, f1 = f1_deeplog(fpr, rec)
    return {"threshold": thr, "fpr": fpr, "recall": rec, "precision_deeplog": p, "f1_deeplog": f1,
            "auroc": auroc(en, ea), "false_positives": int((en > thr).sum()), "n_normal": int(en.size),
            "n_abnormal": int(ea.size)}


def cfg_for(weighting: str, eos: bool, seed: int, epochs: int, energy: str = "max") -> SeqConfig:
    return SeqConfig(weighting=weighting, eos=eos, seed=seed, epochs=epochs, energy=energy, num_threads=1)


def train(name: str, cfg: SeqConfig, sessions, work: Path, anomalies=None) -> tuple[Path, dict]:
    run = work / name
    if (run / "result.json").is_file():
        return run, json.loads((run / "result.json").read_text())
    if run.exists():
        shutil.rmtree(run)
    print(f"[seq-hdfs] training {name} ({cfg.epochs} epochs)", flush=True)
    return run, train_seq(cfg, run, progress=False, sessions=sessions, anomalies=anomalies)


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------- validation


def validation(d, args, work: Path) -> dict:
    path = RESULTS / "validation.json"
    if path.is_file():
        return json.loads(path.read_text())
    rows = []
    for weighting, eos in GRIDS[args.grid]:
        name = f"val-{weighting}-eos{int(eos)}"
        run, res = train(name, cfg_for(weighting, eos, 0, args.epochs), d["train"], work)
        m = load_run(run)
        for energy in ("max", "mean", "topg"):
            en, ea = m.energies(d["val_normal"], energy), m.energies(d["val_abnormal"], energy)
            hold = m.holdout_energies(energy)
            for fpr in (FPRS if energy != "topg" else (None,)):
                thr = threshold_at_fpr(hold, fpr) if fpr is not None else 0.0
                rows.append({"weighting": weighting, "eos": eos, "energy": energy, "fpr_target": fpr,
                             **figures(en, ea, thr), "train_seconds": res["seconds"]})
                print(f"[seq-hdfs] val {name} {energy} fpr={fpr}: F1 {rows[-1]['f1_deeplog']:.4f} "
                      f"AUROC {rows[-1]['auroc']:.5f}", flush=True)
    graded = [r for r in rows if r["energy"] != "topg"]
    best = max(graded, key=lambda r: (round(r["f1_deeplog"], 6), r["auroc"]))
    best_topg = max((r for r in rows if r["energy"] == "topg"), key=lambda r: (round(r["f1_deeplog"], 6), r["auroc"]))
    out = {"rows": rows, "chosen": {k: best[k] for k in ("weighting", "eos", "energy", "fpr_target")},
           "chosen_topg": {k: best_topg[k] for k in ("weighting", "eos")}, "epochs": args.epochs}
    write_json(path, out)
    return out


# ------------------------------------------------------------------------------------------------------- test


def test_seed(d, args, work: Path, chosen: dict, seed: int) -> dict:
    path = RESULTS / f"test-s{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    out = {"seed": seed}
    for label, c in (("graded", chosen["graded"]), ("topg", chosen["topg"])):
        energy = c.get("energy", "topg")
        run, res = train(f"test-{c['weighting']}-eos{int(c['eos'])}-s{seed}",
                         cfg_for(c["weighting"], c["eos"], seed, args.epochs, energy if energy != "topg" else "max"),
                         d["train"], work)
        m = load_run(run)
        t0 = time.perf_counter()
        en = m.energies(d["test_normal"], energy)
        ea = m.energies(d["test_abnormal"], energy)
        score_s = time.perf_counter() - t0
        thr = threshold_at_fpr(m.holdout_energies(energy), c["fpr_target"]) if energy != "topg" else 0.0
        out[label] = {"energy": energy, "weighting": c["weighting"], "eos": c["eos"], **figures(en, ea, thr),
                      "train_seconds": res["seconds"], "epochs": args.epochs,
                      "sessions_per_s": (len(en) + len(ea)) / score_s, "run": run.name}
        print(f"[seq-hdfs] test seed {seed} {label}: {json.dumps({k: out[label][k] for k in ('fpr', 'recall', 'f1_deeplog', 'auroc')})}",
              flush=True)
    write_json(path, out)
    return out


# ------------------------------------------------------------------------------------------------- unlearning


def unlearning_seed(d, args, work: Path, chosen: dict, seed: int) -> dict:
    path = RESULTS / f"unlearning-s{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    c = chosen["graded"]
    patterns = distinct(d["test_abnormal"])[0]
    k = max(1, round(0.01 * len(patterns)))
    perm = torch.randperm(len(patterns), generator=torch.Generator().manual_seed(100 + seed)).tolist()
    known = [patterns[i] for i in perm[:k]]
    known_set = set(known)
    unseen = [s for s in d["test_abnormal"] if s not in known_set]
    out = {"seed": seed, "known_patterns": k, "distinct_patterns": len(patterns), "unseen_sessions": len(unseen)}
    base_run = work / f"test-{c['weighting']}-eos{int(c['eos'])}-s{seed}"
    cfg = cfg_for(c["weighting"], c["eos"], seed, args.epochs, c["energy"])
    with_run, res = train(f"unlearn-{c['weighting']}-eos{int(c['eos'])}-s{seed}", cfg, d["train"], work, known)
    for label, run in (("without", base_run), ("with", with_run)):
        m = load_run(run)
        en, ea = m.energies(d["test_normal"], c["energy"]), m.energies(unseen, c["energy"])
        thr = threshold_at_fpr(m.holdout_energies(c["energy"]), c["fpr_target"])
        out[label] = figures(en, ea, thr)
    out["with"]["known_used"] = res.get("known_anomalies_used")
    print(f"[seq-hdfs] unlearning seed {seed}: recall on unseen patterns {out['without']['recall']:.4f} -> "
          f"{out['with']['recall']:.4f}", flush=True)
    write_json(path, out)
    return out


# --------------------------------------------------------------------------------------------------- feedback


def feedback_seed(d, args, work: Path, chosen: dict, seed: int) -> dict:
    path = RESULTS / f"feedback-s{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    c = chosen["graded"]
    base_run = work / f"test-{c['weighting']}-eos{int(c['eos'])}-s{seed}"
    run = work / f"feedback-s{seed}"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(base_run, run)
    stream = [(s, 0) for s in d["test_normal"]] + [(s, 1) for s in d["test_abnormal"]]
    order = torch.randperm(len(stream), generator=torch.Generator().manual_seed(200 + seed)).tolist()
    chunks = [[stream[i] for i in order[j::10]] for j in range(10)]
    base = load_run(base_run)
    thr = threshold_at_fpr(base.holdout_energies(c["energy"]), c["fpr_target"])
    rows, t_upd = [], 0.0
    for j, chunk in enumerate(chunks):
        s = [x for x, _ in chunk]
        y = np.array([v for _, v in chunk])
        m = load_run(run)
        e_upd, e_base = m.energies(s, c["energy"]), base.energies(s, c["energy"])
        row = {"chunk": j, "n": len(s)}
        for label, e in (("updated", e_upd), ("never", e_base)):
            flag = e > thr
            row[label] = {"fp": int((flag & (y == 0)).sum()), "fn": int((~flag & (y == 1)).sum())}
        fps = [x for x, f, v in zip(s, e_upd > thr, y) if f and v == 0]
        fns = [x for x, f, v in zip(s, e_upd > thr, y) if not f and v == 1]
        if fps or fns:
            t0 = time.perf_counter()
            update_run(run, distinct(fps)[0], distinct(fns)[0],
                       UpdateSettings(steps=args.update_steps, lr=args.update_lr, l2=1.0, margin=max(20.0, 2 * thr)),
                       progress=False)
            t_upd += time.perf_counter() - t0
        row["fed"] = {"fp": len(fps), "fn": len(fns)}
        rows.append(row)
        print(f"[seq-hdfs] feedback seed {seed} chunk {j}: {json.dumps(row)}", flush=True)
    m = load_run(run)
    after = {"fpr": float((m.energies(d["test_normal"], c["energy"]) > thr).mean()),
             "recall": float((m.energies(d["test_abnormal"], c["energy"]) > thr).mean())}
    before = {"fpr": float((base.energies(d["test_normal"], c["energy"]) > thr).mean()),
              "recall": float((base.energies(d["test_abnormal"], c["energy"]) > thr).mean())}
    later = rows[1:]
    out = {"seed": seed, "threshold": thr, "chunks": rows, "update_seconds": t_upd,
           "later": {k: {"fp": sum(r[k]["fp"] for r in later), "fn": sum(r[k]["fn"] for r in later)}
                     for k in ("updated", "never")},
           "before": before, "after": after, "update_steps": args.update_steps, "update_lr": args.update_lr}
    write_json(path, out)
    return out


# ----------------------------------------------------------------------------------------------------- report


def ms(xs, fmt="{:.4f}") -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(statistics.mean(xs))} +- {fmt.format(statistics.stdev(xs))}"


def report(args) -> None:
    val = json.loads((RESULTS / "validation.json").read_text()) if (RESULTS / "validation.json").is_file() else None
    tests = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("test-s*.json"))]
    unl = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("unlearning-s*.json"))]
    fb = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("feedback-s*.json"))]
    n = 3  # the protocol's seeds, whatever one invocation ran
    partial = val is None or len(tests) < n or len(unl) < n or len(fb) < n
    lines = ["## Log anomaly detection on HDFS (`ebgan seq`)" + (" — PARTIAL" if partial else ""), "",
             header(), ""]
    if partial:
        lines += [f"**PARTIAL**: {len(tests)}/{n} test seeds, {len(unl)}/{n} unlearning seeds, {len(fb)}/{n} "
                  f"feedback seeds finished; the rest was not run in the time available.", ""]
    lines += ["DeepLog's HDFS split (`../shared/data/hdfs/`): 4,855 normal training sessions (a seeded 10% kept for "
              "validation, never trained on), 16,838 abnormal (a seeded 10% kept for validation, excluded below), "
              "6,000 normal test sessions standing in for DeepLog's 553,366. F1 at DeepLog's ratio: precision = TP / "
              "(TP + FPR x 553,366), TP = recall x 16,838. Model: DeepLog's (window 10, 2 LSTM layers of 64), "
              f"{args.epochs} epochs over the distinct next-key pairs, batch 256, Adam 0.001, one CPU thread; the "
              "threshold is calibrated on the run's own held-out normal sessions (10% of its training sessions) at "
              "the chosen false-positive rate; top-g is DeepLog's rule (g = 9, any miss flags).", ""]
    if val is not None:
        ch = val["chosen"]
        lines += [f"Chosen on validation (seed 0): graded energy `{ch['energy']}`, pair weighting `{ch['weighting']}`, "
                  f"end-of-session prediction {'on' if ch['eos'] else 'off'}, calibration false-positive rate "
                  f"{ch['fpr_target']}; top-g: weighting `{val['chosen_topg']['weighting']}`, end of session "
                  f"{'on' if val['chosen_topg']['eos'] else 'off'}.", "",
                  "| validation | energy | calib. FPR | val FPR | val recall | F1 (DeepLog ratio) | AUROC |",
                  "|---|---|---|---|---|---|---|"]
        for r in val["rows"]:
            lines.append(f"| {r['weighting']}, eos {'on' if r['eos'] else 'off'} | {r['energy']} | "
                         f"{r['fpr_target'] if r['fpr_target'] is not None else 'rule'} | {r['fpr']:.4f} | "
                         f"{r['recall']:.4f} | {r['f1_deeplog']:.4f} | {r['auroc']:.5f} |")
        lines.append("")
    if tests:
        lines += [f"Test ({len(tests)} seed{'s' if len(tests) != 1 else ''}: {', '.join(str(t['seed']) for t in tests)}; "
                  "mean +- std):", "",
                  "| energy | FPR (normal test) | detection rate | AUROC | precision (DeepLog ratio) | F1 (DeepLog ratio) |",
                  "|---|---|---|---|---|---|",
                  f"| DeepLog (published, top-g) | 833 / 553,366 = 0.0015 | {DEEPLOG['recall']} | - | {DEEPLOG['precision']} | "
                  f"{DEEPLOG['f1']} |"]
        for label in ("topg", "graded"):
            rs = [t[label] for t in tests]
            lines.append(f"| {rs[0]['energy']} ({label}) | {ms([r['fpr'] for r in rs], '{:.5f}')} | "
                         f"{ms([r['recall'] for r in rs])} | {ms([r['auroc'] for r in rs], '{:.5f}')} | "
                         f"{ms([r['precision_deeplog'] for r in rs])} | {ms([r['f1_deeplog'] for r in rs])} |")
        g = [t["graded"] for t in tests]
        lines += ["", f"Goals: F1 >= 0.97 with the graded energy: {ms([r['f1_deeplog'] for r in g])} "
                  f"({'met' if min(r['f1_deeplog'] for r in g) >= 0.97 else 'not met'} on every seed); AUROC >= 0.995: "
                  f"{ms([r['auroc'] for r in g], '{:.5f}')} "
                  f"({'met' if min(r['auroc'] for r in g) >= 0.995 else 'not met'}).", "",
                  f"Speed (one busy CPU thread): training {ms([r['train_seconds'] for r in g], '{:.1f}')} s for "
                  f"{args.epochs} epochs; scoring {ms([r['sessions_per_s'] for r in g], '{:.0f}')} sessions/s "
                  "(repeated sessions and next-key pairs are computed once).", ""]
    if unl:
        lines += [f"Unlearning at training time ({len(unl)} seed{'s' if len(unl) != 1 else ''}): "
                  f"{unl[0]['known_patterns']} of {unl[0]['distinct_patterns']} distinct abnormal patterns known "
                  "(seeded 1%), pushed to the margin (20 nats) on their novel positions; figures on the "
                  f"{unl[0]['unseen_sessions']:,} abnormal sessions whose pattern was not known:", "",
                  "| | FPR (normal test) | detection rate (unseen patterns) | AUROC | F1 (DeepLog ratio) |",
                  "|---|---|---|---|---|"]
        for label in ("without", "with"):
            rs = [u[label] for u in unl]
            lines.append(f"| {label} | {ms([r['fpr'] for r in rs], '{:.5f}')} | {ms([r['recall'] for r in rs])} | "
                         f"{ms([r['auroc'] for r in rs], '{:.5f}')} | {ms([r['f1_deeplog'] for r in rs])} |")
        thr0 = statistics.mean(u["without"]["threshold"] for u in unl)
        lines += ["", f"Finding: the margin (20 nats) is {20 / thr0:.0f} times the `{val['chosen']['energy'] if val else ''}` "
                  f"energy's calibrated threshold ({thr0:.2f}); pushing 38 patterns' mean surprise that far distorted "
                  "the model (normal loss 0.7 -> 3.1) and lifted the held-out calibration sessions, so the threshold "
                  "rose and detection fell. A margin at the energy's scale (a few times the threshold) is untested.", ""]
    if fb:
        lines += [f"Feedback ({len(fb)} seed{'s' if len(fb) != 1 else ''}): the test stream in a seeded order in 10 "
                  f"chunks; after each chunk its false positives and negatives are fed back (`update`, "
                  f"{fb[0]['update_steps']} steps, lr {fb[0]['update_lr']}, L2 guard 1). Later chunks (2-10):", "",
                  "| | false positives | false negatives |", "|---|---|---|"]
        for label in ("never", "updated"):
            lines.append(f"| {'never updated' if label == 'never' else 'updated after each chunk'} | "
                         f"{ms([f['later'][label]['fp'] for f in fb], '{:.1f}')} | "
                         f"{ms([f['later'][label]['fn'] for f in fb], '{:.1f}')} |")
        removed = [1 - f["later"]["updated"]["fp"] / f["later"]["never"]["fp"] if f["later"]["never"]["fp"] else None
                   for f in fb]
        lines += ["", f"Share of the later chunks' false positives removed: {ms(removed, '{:.2f}')}; FPR on all normal "
                  f"test sessions before -> after: {ms([f['before']['fpr'] for f in fb], '{:.5f}')} -> "
                  f"{ms([f['after']['fpr'] for f in fb], '{:.5f}')}; detection rate on all abnormal test sessions "
                  f"{ms([f['before']['recall'] for f in fb])} -> {ms([f['after']['recall'] for f in fb])}; "
                  f"update time {ms([f['update_seconds'] for f in fb], '{:.1f}')} s in all.", "",
                  "Finding: the updates oscillate. The false negatives' hinge pushes the mean surprise to 20 nats "
                  "(ten times the threshold), which flags most normal sessions in the next chunk; feeding those "
                  "back lowers everything again. The never-updated model had no false positive to remove at this "
                  "threshold, so the goal (half of the later false positives removed) is not met; a margin near the "
                  "threshold and fewer steps are the next thing to measure.", ""]
    write_section("seq_hdfs", "\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--work", default="runs/seq-hdfs", help="run folders (default runs/seq-hdfs, not committed)")
    ap.add_argument("--update-steps", type=int, default=30)
    ap.add_argument("--update-lr", type=float, default=0.003)
    ap.add_argument("--grid", choices=sorted(GRIDS), default="eos", help="validation grid (default eos: both "
                    "weightings with the end of session predicted; full: also without, DeepLog's model)")
    ap.add_argument("--only", choices=["validation", "test", "unlearning", "feedback"], default=None)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.report_only:
        report(args)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    d = load()
    val = validation(d, args, work)
    chosen = {"graded": val["chosen"], "topg": {**val["chosen_topg"], "energy": "topg", "fpr_target": None}}
    stages = [("test", test_seed), ("unlearning", unlearning_seed), ("feedback", feedback_seed)]
    for name, fn in stages:
        if args.only not in (None, name):
            continue
        for seed in args.seeds:
            fn(d, args, work, chosen, seed)
            report(args)
    report(args)


if __name__ == "__main__":
    main()
