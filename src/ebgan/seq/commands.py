"""``ebgan seq parse|train|score|update``: the command handlers (``ebgan.cli`` parses the arguments)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..errors import EbganError


def main(args: argparse.Namespace) -> int:
    handlers = {"parse": _parse, "train": _train, "score": _score, "update": _update}
    if args.seq_command not in handlers:
        raise EbganError("give a seq command: parse, train, score or update (`ebgan seq --help`)")
    return handlers[args.seq_command](args)


def _parse(args: argparse.Namespace) -> int:
    from .data import parse_log, write_parse_result

    out = Path(args.output)
    if out.suffix.lower() != ".csv":
        raise EbganError(f"-o must name a .csv file, got {out}")
    res = parse_log(args.logfile, args.session, args.content, args.drain_config)
    tpath = write_parse_result(res, out)
    print(
        f"{res.lines} lines, {res.matched} in a session: {len(res.sessions)} sessions over {len(res.templates)} "
        f"keys (templates)"
    )
    print(f"wrote {out} (id, session: keys separated by spaces) and {tpath} (key, count, template)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config import SeqConfig
    from .run import saved_seq_config, train_seq

    if not args.out:
        raise EbganError("--out is required: the run folder")
    given = {
        "data": args.data,
        "anomalies": args.anomalies,
        "column": args.column,
        "label_column": args.label_column,
        "energy": args.energy,
        "epochs": args.epochs,
        "window": args.window,
        "hidden": args.hidden,
        "layers": args.layers,
        "g": args.g,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "holdout": args.holdout,
        "fpr": args.fpr,
        "margin": args.margin,
        "weighting": args.weighting,
        "anomaly_weight": args.anomaly_weight,
        "num_threads": args.threads,
        "ckpt_every": args.ckpt_every,
        "eos": {"on": True, "off": False}.get(args.eos),
        "margin_scale": args.margin_scale,
        "threshold_scale": args.threshold_scale,
    }
    given = {k: v for k, v in given.items() if v is not None}
    for k in ("data", "anomalies"):
        if k in given:
            given[k] = str(Path(given[k]).resolve())
    if args.resume and (Path(args.out) / "config.json").is_file():
        base = saved_seq_config(args.out)  # the run's own settings and data paths; flags may change the length
    else:
        if "data" not in given and not args.resume:
            raise EbganError("--data FILE is required: the normal training sessions (a session file or a CSV)")
        base = SeqConfig()
    cfg = dataclasses.replace(base, **given)
    result = train_seq(cfg, args.out, resume=args.resume, restart=args.restart, progress=not args.no_progress)
    epochs = f"{result['epochs']} epoch{'s' if result['epochs'] != 1 else ''}"
    line = (
        f"trained {result['steps']} steps ({epochs}) in {result['seconds']:.1f} s on "
        f"{result['train_sessions']} sessions ({result['distinct_pairs']} distinct next-key pairs, "
        f"{result['keys']} keys)"
    )
    if "threshold" in result:
        line += (
            f"; threshold {result['threshold']:.4g} ({cfg.energy} energy): "
            + (f"{cfg.threshold_scale:g} x " if cfg.threshold_scale != 1 else "")
            + f"the energy at false-positive rate {cfg.fpr} on {result['holdout_sessions']} held-out normal sessions"
        )
    print(line)
    print(
        f"run folder: {args.out} (config.json, vocab.json, holdout.txt, metrics.jsonl, threshold.json, "
        f"result.json, checkpoints/)"
    )
    return 0


def _threshold(text: str | None) -> str | float | None:
    if text is None or text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise EbganError(f"--threshold must be auto or a number, got {text!r}") from None


def _score(args: argparse.Namespace) -> int:
    from .data import read_sessions
    from .run import load_run, score_sessions, write_scores_csv

    out = Path(args.output)
    if out.suffix.lower() != ".csv":
        raise EbganError(f"-o must name a .csv file, got {out}")
    m = load_run(args.run_dir)
    sessions = read_sessions(args.sessions, args.column, None).keys
    res = score_sessions(m, sessions, args.energy, _threshold(args.threshold))
    write_scores_csv(out, res)
    model = f"update {m.update}" if m.update else "the training's model"
    print(f"{len(sessions)} sessions scored with {model} ({res.kind} energy)", end="")
    if res.anomaly is not None:
        print(
            f": {int(res.anomaly.sum())} anomalous ({100 * res.anomaly.mean():.2f}%) above the threshold "
            f"{res.threshold:.4g}"
        )
    else:
        print(" (no threshold: no anomaly column)")
    print(
        f"wrote {out}: {len(sessions)} rows in input order (index, energy, score: the share of held-out normal "
        f"sessions with a lower energy, anomaly 0/1)"
    )
    return 0


def _update(args: argparse.Namespace) -> int:
    from .data import Session, read_sessions
    from .run import UpdateSettings, _sha256, update_run

    run = Path(args.run_dir)
    fps: list[Session] = []
    fns: list[Session] = []
    sources: dict[str, dict[str, str]] = {}
    for name, path in (("false_positives", args.false_positives), ("false_negatives", args.false_negatives)):
        if path is None:
            continue
        if args.resume:
            raise EbganError(
                "--resume finishes the unfinished update with its own sessions; give no "
                "--false-positives or --false-negatives with it"
            )
        s = read_sessions(path, args.column, None).keys
        (fps if name == "false_positives" else fns).extend(s)
        sources[name] = {"path": str(Path(path).resolve()), "sha256": _sha256(path)}
    if args.resume:
        tuned = (args.lr, args.l2, args.margin, args.margin_scale, args.optimizer, args.floor_scale, args.keep)
        if any(v is not None for v in (*tuned, args.keep_batch, args.holdout_guard)):
            raise EbganError("--resume finishes the unfinished update under its own settings; only --steps may change")
        rec = update_run(run, resume=True, progress=not args.no_progress, steps=args.steps)
    else:
        if not fps and not fns:
            raise EbganError("give --false-positives FILE, --false-negatives FILE or both (session files or CSVs)")
        given = {
            "steps": args.steps,
            "lr": args.lr,
            "l2": args.l2,
            "margin": args.margin,
            "margin_scale": args.margin_scale,
            "optimizer": args.optimizer,
            "floor_scale": args.floor_scale,
            "keep": args.keep,
            "keep_batch": args.keep_batch,
            "holdout_guard": args.holdout_guard,
        }
        settings = dataclasses.replace(UpdateSettings(), **{k: v for k, v in given.items() if v is not None})
        rec = update_run(run, fps, fns, settings, progress=not args.no_progress, sources=sources)
    folder = run / "updates" / f"{rec['update']:03d}"
    fixed = rec.get("fixed")
    line = (
        f"update {rec['update']:03d}: {rec['n_false_positives']} false positives, {rec['n_false_negatives']} "
        f"false negatives, {rec['steps']} steps"
    )
    if fixed is not None:
        line += (
            f"; now below the threshold: {fixed['false_positives']} of the false positives; above it: "
            f"{fixed['false_negatives']} of the false negatives"
        )
    held = rec.get("holdout")
    if held and "fpr_after" in held:
        line += f"; held-out normal false-positive rate {held['fpr_before']:.4f} -> {held['fpr_after']:.4f}"
    print(line)
    print(
        f"kept in {folder} (the sessions fed back, config.json, metrics.jsonl, checkpoints/, update.json); "
        f"`ebgan seq score {run} ...` now uses it",
        file=sys.stdout,
    )
    return 0
