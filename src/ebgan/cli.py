"""Command line: parses, validates and calls; the work happens in the library.

    ebgan train [--preset NAME] [--data NAME|PATH] [--data-root DIR] [--out DIR] [--steps N] [--seed N]
                [--loss NAME] [--resume] [--set KEY=VALUE ...] [--dry-run] [--no-progress]
    ebgan sample RUN_DIR -n N -o FILE.npy [--seed S] [--png FILE] [--checkpoint latest|best] [--energy-keep Q]
    ebgan eval SAMPLES.npy|RUN_DIR [--against mnist|ring|grid|stacked-mnist] [--data-root DIR] [-n N]
               [--energy-keep Q]
    ebgan score RUN_DIR INPUT -o SCORES.csv [--checkpoint latest|best] [--threshold auto|VALUE]
                [--contamination C] [--score energy|energy/ink] [--batch-size N]
    ebgan train-classifier [--data-root DIR] [--out PATH] [--seed N] [--epochs N]
    ebgan sweep GRID --out DIR [--methods M,...] [--sample K] [--steps N] [--workers W] ...
    ebgan semisup --labels N [--model ladder|ebgan-ln] [--variant bottom|full] --out DIR [--resume] ...
    ebgan eval SAMPLES.npy|RUN_DIR --inception [--reference FOLDER|IMAGES.npy] [--inception-weights FILE]
    ebgan download mnist|inception [--data-root DIR] [--mirror URL ...] [--out FILE]
    ebgan seq parse|train|score|update ...   (event sequences: log anomaly detection; `ebgan seq --help`)
    ebgan list [--config]

Exit statuses:

- 0: done.
- 2: a mistake of the user's (unknown preset or key, invalid value, missing or corrupt data, a folder that is
  not a run): one line ``ebgan: error: ...``.
- 3: a file could not be written (no space left on device, an I/O error, a read-only file system, a folder
  deleted under the command, permission denied): one line naming the file and the cause, e.g. ``ebgan: error:
  no space left on device writing RUN/checkpoints/step-00000030/state.pt: the last complete checkpoint is step
  20; free space and run again with --resume (...)``. A training run keeps its previous complete checkpoint,
  and ``--resume`` then reaches exactly the result of an uninterrupted run; a sweep continues when its
  command runs again.
- 4: a sweep could not run every setting because a worker could not be started or fed (the message names the
  settings not run and the cause); running the command again continues it.
- 130 / 143: stopped by Ctrl-C / SIGTERM (a training run writes a checkpoint first); 141: the reader of the
  output went away (``ebgan ... | head``).
- 1 (with a traceback): a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path

from . import __version__
from .data import default_data_root
from .errors import EbganError

DATA_ROOT_HELP = "folder holding MNIST/raw/ (default: $EBGAN_DATA_ROOT, else ./data)"
ENERGY_KEEP_HELP = (
    "rejection by the learned energy (runs with an auto-encoder discriminator): draw N / Q "
    "candidates and keep the N of lowest energy, per class for a conditional run; a different "
    "sampler from G alone (default 1: no rejection)"
)


# ----------------------------------------------------------------------------------------------------- train


def build_config(args: argparse.Namespace):
    """The resolved Config from ``--preset``, the shorthand flags and ``--set`` (in that order).

    ``--resume`` on a folder that holds a run starts from the run's own ``config.json`` (the flags and
    ``--set`` then change it, and only fields that may change mid-run are accepted: see
    :func:`ebgan.rundir.check_resume_config`); with ``--preset`` as well, the preset is the starting point and
    must describe the same run.
    """
    from .config import IMAGE_PRESET_DATA, apply_overrides, check_preset_needs, from_preset, resolve
    from .folders import expect_kind
    from .rundir import saved_config

    given = any(v is not None for v in (args.preset, args.data, args.loss, args.seed)) or bool(args.set)
    saved = args.resume and args.out is not None and (Path(args.out) / "config.json").is_file()
    if args.resume:
        if args.out is None:
            raise EbganError("--resume needs --out RUN_DIR")
        expect_kind(args.out, "train", "ebgan train --resume")
    if args.resume and not given and not saved:
        raise EbganError(
            f"nothing to resume in {args.out} (no config.json); start a run there with --preset "
            f"or --set (with or without --resume)"
        )
    cfg = saved_config(Path(args.out)) if saved and args.preset is None else from_preset(args.preset)
    flags = {k: v for k, v in (("data", args.data), ("loss", args.loss), ("seed", args.seed)) if v is not None}
    cfg = apply_overrides(cfg, flags, args.set)
    if args.steps is not None:
        cfg = apply_overrides(cfg, {"steps": args.steps})
    check_preset_needs(args.preset, cfg)
    if args.dry_run and cfg.data == IMAGE_PRESET_DATA:  # the cost does not depend on which folder it will be
        return dataclasses.replace(resolve(dataclasses.replace(cfg, data="FOLDER")), data=IMAGE_PRESET_DATA)
    return resolve(cfg)


@contextlib.contextmanager
def _resume_hint_on_abort(out: str, command: str):
    """A second Ctrl-C stops a run at once, without a checkpoint of the current step: say how to continue
    from the last one (the run's own configuration and data root are in its folder). A failed write (full disk,
    I/O error) once the run folder holds its configuration says the same: the same command again would be
    refused (the folder holds a run), ``--resume`` continues from the newest complete checkpoint."""
    from .errors import WriteFailed

    try:
        yield
    except KeyboardInterrupt:
        if (Path(out) / "config.json").is_file():
            print(
                f"\nebgan: stopped at once, without a checkpoint of this step; continue from the last one with: "
                f"{command} --out {shlex.quote(str(out))} --resume",
                file=sys.stderr,
            )
        raise
    except WriteFailed as e:
        if not out or not (Path(out) / "config.json").is_file() or e.hint.endswith("--resume)"):
            raise
        again = "run the command again"
        resume = f"run again with --resume ({command} --out {shlex.quote(str(out))} --resume)"
        hint = e.hint[: -len(again)] + resume if e.hint.endswith(again) else f"{e.hint}, then {resume}"
        raise e.with_hint(hint) from e.__cause__


def cmd_train(args: argparse.Namespace) -> int:
    from .config import to_dict

    cfg = build_config(args)
    resuming_saved = args.resume and args.out and (Path(args.out) / "config.json").is_file()
    if args.preset is None and args.data is None and not resuming_saved:
        print(
            "ebgan: no --preset given: using the Config defaults (the paper's MNIST EBGAN-PT values, "
            f"{cfg.steps} steps, constant learning rate); `--preset mnist` is the tuned version (see `ebgan "
            "list`)",
            file=sys.stderr,
        )
    if args.out is None:
        args.out = str(Path("runs") / f"{args.preset or cfg.data}-{cfg.loss}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.dry_run:
        from .data import expected_sample_shape
        from .nets import describe_networks
        from .objectives import make_objective

        print(json.dumps(to_dict(cfg), indent=2, sort_keys=True))
        shape = expected_sample_shape(cfg.data, cfg.image_size, cfg.channels)
        if cfg.crop_size is not None and len(shape) == 3:
            shape = (shape[0], cfg.crop_size, cfg.crop_size)
        # The class inputs of a conditional run depend on the data's labels: describe the nets without them.
        d = describe_networks(dataclasses.replace(cfg, conditional=False), shape, make_objective(cfg).head)
        print(
            f"networks for samples of shape {list(shape)}: G {d['params_g'] / 1e6:.2f} M parameters, D "
            f"{d['params_d'] / 1e6:.2f} M; {d['flops_per_step'] / 1e9:.1f} GFLOP per training step at batch "
            f"{cfg.batch_size} (forward and backward{', without the class inputs' if cfg.conditional else ''})",
            file=sys.stderr,
        )
        from .config import IMAGE_PRESET_DATA

        print(
            f"would train in {args.out}"
            + (" (pass --data FOLDER, a folder of images, to train)" if cfg.data == IMAGE_PRESET_DATA else ""),
            file=sys.stderr,
        )
        return 0
    from .train import train

    with _resume_hint_on_abort(args.out, "ebgan train"):
        summary = train(
            cfg,
            args.out,
            data_root=args.data_root,
            resume=args.resume,
            progress=not args.no_progress,
            restart=args.restart,
        )
    final = summary.get("final", {})
    shown = ", ".join(f"{k}={v:.4g}" for k, v in final.items() if k not in ("step", "time"))
    threads = summary["threads"]
    print(
        f"trained {summary['steps']} steps in {summary['seconds']:.1f} s on {threads} "
        f"thread{'s' if threads != 1 else ''} ({summary['threads_reason']}); {shown}"
    )
    out = Path(summary["run_dir"])
    files = ["config.json", "data.json", "metrics.jsonl", "samples.png", "samples/", "energy.png"]
    files += [f for f in ("landscape.png", "eval.png", "best.json", "threshold.json") if (out / f).exists()]
    print(f"run folder: {out} ({', '.join(files)}, checkpoints/)")
    return 0


# ---------------------------------------------------------------------------------------------------- sample


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from .folders import expect_kind
    from .sampling import sample_from_run

    expect_kind(args.run_dir, "train", "ebgan sample")
    out = Path(args.output)
    if out.suffix != ".npy":
        raise EbganError(f"-o must name a .npy file, got {out}")
    if args.png and Path(args.png).suffix.lower() != ".png":
        raise EbganError(f"--png must name a .png file, got {args.png}")
    x = sample_from_run(
        args.run_dir,
        args.n,
        seed=args.seed,
        checkpoint=args.checkpoint,
        weights=args.weights,
        label=args.label,
        energy_keep=args.energy_keep,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, x)
    os.replace(tmp, out)
    print(f"wrote {out}: {x.dtype} {list(x.shape)}")
    if args.png:
        if x.ndim == 4:
            from .images import save_grid

            shown = min(len(x), 256)
            save_grid(x[:shown], args.png)
            what = f"a grid of the first {shown} images"
        else:
            import torch

            from .plots import scatter_points

            shown = min(len(x), 2500)
            scatter_points(torch.from_numpy(x[:0]), torch.from_numpy(x[:shown]), Path(args.png))
            what = f"a scatter plot of the first {shown} points"
        print(f"wrote {args.png}: {what}")
    return 0


# ------------------------------------------------------------------------------------------------------ eval


def _energy_keep_note(args: argparse.Namespace, result: dict) -> str:
    """With ``--energy-keep`` below 1: record it in the result and describe the sampler; else ''."""
    if args.energy_keep == 1.0:
        return ""
    result["energy_keep"] = args.energy_keep
    return f"energy rejection, the lowest-energy {args.energy_keep:g} of the candidates"


def cmd_eval(args: argparse.Namespace) -> int:
    """Print the summary, then the result as one JSON object on the last line of standard output."""
    from .evaluate import (
        DEFAULT_N,
        evaluate,
        load_samples,
        normalize_dataset_name,
        summary_lines,
    )

    if args.list_metrics:
        from .metrics.scores import METRICS, list_metrics

        for name in list_metrics():
            print(f"{name:14s} {METRICS[name].description}")
        return 0
    if not args.samples:
        raise EbganError("give SAMPLES.npy or a RUN_DIR to evaluate (or --list-metrics)")
    src = Path(args.samples)
    if src.is_dir():
        from .folders import expect_kind

        expect_kind(src, "train", "ebgan eval")
    if args.energy_keep != 1.0 and not src.is_dir():
        raise EbganError("--energy-keep filters a run's samples by its energy: give a RUN_DIR, not a sample file")
    if args.inception:
        return _eval_inception(args, src)
    if args.reference is not None:
        raise EbganError("--reference is the real images of --inception scoring; add --inception")
    against = normalize_dataset_name(args.against) if args.against else None
    if args.per_class:
        return _eval_per_class(args, src)
    if src.is_dir():
        from .sampling import run_dataset_name, sample_from_run

        run_against = normalize_dataset_name(run_dataset_name(src))
        if against is not None and against != run_against:
            raise EbganError(f"run {src} was trained on {run_against}, not {against}")
        against = run_against
        n = args.n if args.n is not None else DEFAULT_N[against]
        if n < 1:
            raise EbganError(f"-n must be >= 1, got {n}")
        samples = sample_from_run(src, n, seed=args.seed, weights=args.weights, energy_keep=args.energy_keep)
        n = None  # all the samples just drawn
    else:
        samples = load_samples(src)
        if against is None:
            raise EbganError("--against is required for a sample file: mnist, ring, grid or stacked-mnist")
        n = args.n

    clf = None
    if against in ("mnist", "stacked-mnist"):
        from .metrics.classifier import load_classifier

        clf = load_classifier(args.classifier)
    result = evaluate(
        samples,
        against,
        data_root=args.data_root,
        n=n,
        batch_size=args.batch_size,
        progress=sys.stderr.isatty(),
        classifier=clf,
        fid_split=args.fid_split,
    )
    sampler = _energy_keep_note(args, result)
    for line in summary_lines(result, str(src), clf.info if clf else None, str(clf.path) if clf else None):
        print(line)
    if sampler:
        print(f"  sampler              {sampler}")
    print(json.dumps(result), flush=True)
    return 0


def _eval_inception(args: argparse.Namespace, src: Path) -> int:
    """IS and FID on the FID Inception network (natural images): samples from a .npy or drawn from a run,
    against --reference (default for a run trained on a folder of images: that folder)."""
    from .evaluate import load_samples
    from .metrics.inception import inception_scores, load_inception

    if args.against or args.per_class:
        raise EbganError("--inception scores against --reference images; it takes no --against or --per-class")
    reference = args.reference
    if src.is_dir():
        from .sampling import run_dataset_name, sample_from_run

        if reference is None:
            data = run_dataset_name(src)
            if not Path(data).is_dir():
                raise EbganError(f"run {src} was trained on {data}, not a folder of images: pass --reference")
            reference = data
        samples = sample_from_run(
            src,
            args.n if args.n is not None else 10_000,
            seed=args.seed,
            weights=args.weights,
            energy_keep=args.energy_keep,
        )
    else:
        samples = load_samples(src)
        if reference is None:
            raise EbganError("--inception needs --reference FOLDER|IMAGES.npy (the real images) for a sample file")
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"  # 5.7 GFLOP an image: a GPU when there is one
    inc = load_inception(args.inception_weights, verify=not args.allow_other_weights, device=device)
    res = inception_scores(samples, reference, inc, n=args.n, batch_size=args.batch_size, progress=sys.stderr.isatty())
    print(
        f"{src}: {res['n']} samples against {res['n_reference']} images of {reference} "
        f"(FID Inception, weights {inc.path})"
    )
    if sampler := _energy_keep_note(args, res):
        print(f"sampler: {sampler}")
    print(f"IS  {res['is']:.3f} +- {res['is_std']:.3f} (10 splits)")
    print(f"FID {res['fid']:.3f}")
    print(json.dumps(res), flush=True)
    return 0


def _eval_per_class(args: argparse.Namespace, src: Path) -> int:
    """A conditional MNIST run, class by class: the classifier's accuracy on the class asked for, and FID
    against that digit's real images."""
    from .evaluate import class_scores
    from .metrics.classifier import load_classifier
    from .sampling import run_dataset_name, sample_from_run

    if not src.is_dir():
        raise EbganError("--per-class needs a RUN_DIR of a conditional MNIST run")
    if run_dataset_name(src) != "mnist":
        raise EbganError(f"--per-class scores MNIST runs; {src} was trained on {run_dataset_name(src)}")
    n = args.n if args.n is not None else 1000
    if n < 1:
        raise EbganError(f"-n must be >= 1, got {n}")
    samples = {
        k: sample_from_run(src, n, seed=args.seed + k, weights=args.weights, label=k, energy_keep=args.energy_keep)
        for k in range(10)
    }
    res = class_scores(samples, args.data_root, classifier=load_classifier(args.classifier), batch_size=args.batch_size)
    print(f"{src}: {n} samples per class")
    print("class  accuracy  FID vs that digit's training images")
    for k, v in res["per_class"].items():
        print(f"{k:5d}  {100 * v['accuracy']:7.2f}%  {v['fid']:.3f}")
    print(f"mean   {100 * res['accuracy']:7.2f}%  {res['fid_mean']:.3f}")
    if sampler := _energy_keep_note(args, res):
        print(f"sampler: {sampler} of each class")
    print(json.dumps(res), flush=True)
    return 0


# ----------------------------------------------------------------------------------------------------- score


def _threshold_arg(text: str) -> str | float:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number, got {text!r}") from None


def cmd_score(args: argparse.Namespace) -> int:
    """Score inputs with a run's energy; write the CSV and say what it holds."""
    from .anomaly import score_run, write_scores_csv
    from .folders import expect_kind

    expect_kind(args.run_dir, "train", "ebgan score")
    out = Path(args.output)
    if out.suffix.lower() != ".csv":
        raise EbganError(f"-o must name a .csv file, got {out}")
    if not Path(args.input).exists():
        raise EbganError(f"INPUT {args.input} does not exist (an .npy array or a folder of images)")
    res = score_run(
        args.run_dir,
        args.input,
        checkpoint=args.checkpoint,
        threshold=args.threshold,
        contamination=args.contamination,
        batch_size=args.batch_size,
        score=args.score,
    )
    write_scores_csv(out, res)
    for line in res.summary_lines(str(args.input)):
        print(line)
    cols = "name, energy" + (f", score ({res.score_name})" if res.score_name != "energy" else "")
    cols += ", anomaly (1 = score above the threshold)" if res.labels is not None else ""
    print(f"wrote {out}: {len(res.energy)} rows in input order ({cols})")
    return 0


def cmd_train_classifier(args: argparse.Namespace) -> int:
    """Train the MNIST classifier and say where its weights went and their test accuracy."""
    from .metrics.reference import cache_dir
    from .metrics.training import train_classifier

    stem = "mnist_classifier" if args.arch == "conv" else f"mnist_{args.arch}"
    out = Path(args.out) if args.out else cache_dir() / "classifier" / f"{stem}-seed{args.seed}.safetensors"
    info = train_classifier(args.data_root, out, seed=args.seed, epochs=args.epochs, progress=True, arch=args.arch)
    ref = info["reference"]
    print(
        f"wrote {out} and {out.with_suffix('.json')}: test accuracy {100 * info['test_accuracy']:.2f} %, "
        f"real test IS {ref['is']:.4f}, FID test vs train {ref['fid_test_vs_train']:.4f}"
    )
    print(f"use it with: ebgan eval SAMPLES.npy --against mnist --classifier {out}")
    print(json.dumps(info), flush=True)
    return 0


# ----------------------------------------------------------------------------------------------------- sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run (or continue) a sweep, or only rewrite its report; print where the results are."""
    from .sweep import GRIDS, describe_grid, run_sweep
    from .sweep.report import write_report

    if args.list:
        for name in GRIDS:
            print(describe_grid(name))
            print(f"  ({GRIDS[name]['description']})")
        return 0
    if not args.out:
        raise EbganError("--out is required: the sweep folder")
    if args.report_only:
        print(f"wrote {write_report(args.out)}")
        return 0
    if args.grid is None:
        raise EbganError(
            f"GRID is required: a name ({', '.join(GRIDS)}) or a .json/.yaml file of lists per config field"
        )
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods is not None else None
    if methods is not None and not methods:
        raise EbganError("--methods is empty")
    rows = run_sweep(
        args.grid,
        args.out,
        methods=methods,
        sample=args.sample,
        steps=args.steps,
        workers=args.workers,
        threads=args.threads,
        backend=args.backend,
        address=args.address,
        seed=args.seed,
        data_root=args.data_root,
        eval_samples=args.eval_samples,
        retry_failed=args.retry_failed,
        prune=args.prune,
        progress=not args.no_progress,
    )
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        c = counts.setdefault(r["method"], {"ok": 0, "diverged": 0, "failed": 0})
        c[r.get("status", "failed")] = c.get(r.get("status", "failed"), 0) + 1
    for m, c in counts.items():
        print(f"{m}: {sum(c.values())} runs ({c['ok']} ok, {c['diverged']} diverged, {c['failed']} failed)")
    out = Path(args.out)
    print(f"results in {out / 'results.jsonl'}, report in {out / 'report.md'}")
    return 0


# --------------------------------------------------------------------------------------------------- semisup


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EbganError(f"--weights must be comma-separated numbers, got {text!r}") from None


def cmd_semisup(args: argparse.Namespace) -> int:
    """Train (or resume) a Ladder Network or EBGAN-LN on semi-supervised MNIST; print the test error."""
    from dataclasses import replace

    from .semisup import SemisupConfig, semisup
    from .semisup.run import saved_semisup_config

    if not args.out:
        raise EbganError("--out is required: the run folder")
    given = {
        "labels": args.labels,
        "model": args.model,
        "variant": args.variant,
        "seed": args.seed,
        "steps": args.steps,
        "lr": args.lr,
        "margin": args.margin,
        "eval_every": args.eval_every,
        "num_threads": args.threads,
        "batch": args.batch,
        "ckpt_every": args.ckpt_every,
        "beta1": args.beta1,
        "weights": _float_list(args.weights) if args.weights is not None else None,
        "compile": True if args.compile else None,
        "validation": args.validation,
        "score_test": False if args.no_test else None,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if args.resume and (Path(args.out) / "config.json").is_file():
        base = saved_semisup_config(args.out)  # the run's own settings; flags may change the cadences
    else:
        base = SemisupConfig()
    with _resume_hint_on_abort(args.out, "ebgan semisup"):
        result = semisup(
            replace(base, **given),
            args.out,
            data_root=args.data_root,
            resume=args.resume,
            progress=not args.no_progress,
            restart=args.restart,
        )
    error = (
        f"test error {result['test_error']:.2f}%"
        if result["test_error"] is not None
        else f"validation error {result['val_error']:.2f}% (test images not scored: --no-test)"
    )
    print(
        f"{error} ({result['model']}, {result['labels']} labels, seed "
        f"{result['seed']}, {result['steps']} steps); {Path(args.out) / 'result.json'}"
    )
    return 0


def cmd_seq(args: argparse.Namespace) -> int:
    """Event sequences (log anomaly detection): the handlers live in ``ebgan.seq.commands``."""
    from .seq.commands import main as seq_main

    with _resume_hint_on_abort(getattr(args, "out", None) or "", "ebgan seq train"):
        return seq_main(args)


# ------------------------------------------------------------------------------------------- download, list


def cmd_download(args: argparse.Namespace) -> int:
    from .data import download_mnist

    if args.name == "inception":
        from .metrics.inception import download_inception_weights

        path = download_inception_weights(args.out, url=args.mirror[-1] if args.mirror else None)
        print(f"the FID Inception weights are in {path} (SHA-256 checked)")
        return 0
    path = download_mnist(args.data_root, mirrors=args.mirror or None)
    print(f"MNIST is in {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .config import PRESETS, config_reference
    from .data import DATASETS
    from .losses import LOSSES
    from .metrics.scores import list_metrics

    if args.config:
        print(config_reference(), end="")
        return 0
    print("presets:  " + ", ".join(PRESETS))
    print("losses:   " + ", ".join(LOSSES))
    print("data:     " + ", ".join(DATASETS) + ", or a folder of images")
    print("metrics:  " + ", ".join(list_metrics()))
    print("config:   `ebgan list --config` lists every field for --set KEY=VALUE")
    return 0


# ---------------------------------------------------------------------------------------------------- parser


def make_parser() -> argparse.ArgumentParser:
    from .config import PRESETS
    from .metrics.training import DEFAULT_EPOCHS

    parser = argparse.ArgumentParser(
        prog="ebgan",
        description="Energy-based GANs (Zhao, Mathieu, LeCun 2017) and the GAN family on one "
        "trainer. `ebgan COMMAND --help` describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"ebgan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train (or resume) a run",
        description="Train a run into a folder: samples, plots, metrics.jsonl and checkpoints. "
        "Ctrl-C or SIGTERM writes a checkpoint of the current step before stopping.",
    )
    p.add_argument(
        "--preset",
        help=f"named configuration: {', '.join(PRESETS)} (see `ebgan list`; default: none, the Config defaults)",
    )
    p.add_argument(
        "--data", help="data set name (ring, grid, mnist, stacked-mnist) or a folder of images (default: the preset's)"
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="folder holding MNIST/raw/ (default: with --resume the run's own, else $EBGAN_DATA_ROOT, else ./data)",
    )
    p.add_argument("--out", help="run folder (default: runs/<preset>-<loss>-<date-time>)")
    p.add_argument(
        "--steps",
        type=int,
        help="adversarial training steps (default: the preset's); a preset with "
        "pre-training (pretrain_steps, e.g. mnist-oneclass: 1,000) runs those first, on top",
    )
    p.add_argument("--seed", type=int, help="seed of weights, batch order and noise (default: the preset's, 0)")
    p.add_argument(
        "--loss",
        help="ebgan, gan, nsgan, wgan, wgan-gp, lsgan, loss-sensitive, began, hinge (default: the preset's, ebgan)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint (from step 0 if it has none) under "
        "its own configuration; flags and --set may then change only its length and cadences",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="start the run in --out again from step 0 with these settings, when the folder holds no "
        "checkpoint (a run that failed before its first one); a folder with checkpoints is refused",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, repeatable (every field: `ebgan list --config`)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved configuration, the networks' parameter counts and FLOPs per step, and exit",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run into a .npy file")
    p.add_argument("run_dir", help="a run folder written by `ebgan train`")
    p.add_argument("-n", type=int, required=True, help="number of samples")
    p.add_argument("-o", "--output", required=True, help="FILE.npy: uint8 [N,C,H,W] images or float32 [N,2] points")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0; the same seed gives the same samples)")
    p.add_argument(
        "--png",
        help="also save a picture of the samples (a grid of up to 256 images, or a scatter plot of up to 2,500 points)",
    )
    p.add_argument(
        "--checkpoint",
        default="latest",
        choices=["latest", "best"],
        help="which checkpoint to sample from (default latest; best: kept by best_metric in training)",
    )
    p.add_argument(
        "--weights",
        default="auto",
        choices=["auto", "ema", "raw"],
        help="the generator's weights: auto (their moving average when the run kept one, g_ema > 0, "
        "else the raw weights), ema or raw (default auto)",
    )
    p.add_argument(
        "--class",
        dest="label",
        type=int,
        default=None,
        metavar="K",
        help="a conditional run (conditional=true): draw class K only (default: every class in turn)",
    )
    p.add_argument("--energy-keep", type=float, default=1.0, metavar="Q", help=ENERGY_KEEP_HELP)
    p.set_defaults(func=cmd_sample)

    from .evaluate import DATASETS

    p = sub.add_parser(
        "eval",
        help="score samples (.npy) or a run's checkpoint against mnist, ring, grid or stacked-mnist",
        description="Score samples against a data set. The last line of standard output is one JSON object.",
    )
    p.add_argument("samples", nargs="?", help="SAMPLES.npy (uint8 [N,C,28,28] or float32 [N,2]) or a RUN_DIR")
    p.add_argument(
        "--against", help=f"data set to score against: {', '.join(DATASETS)} (default for a RUN_DIR: its data set)"
    )
    p.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    p.add_argument(
        "-n",
        type=int,
        default=None,
        help="number of samples to score (default: the protocol's: "
        "mnist 10,000, ring/grid 2,500, stacked-mnist 26,000)",
    )
    p.add_argument("--batch-size", type=int, default=500, help="images per classifier pass (default 500)")
    p.add_argument("--classifier", default=None, help="classifier .safetensors (default: the packaged one)")
    p.add_argument("--fid-split", default="train", help="real MNIST split for FID: train (default) or test")
    p.add_argument("--seed", type=int, default=0, help="sampling seed for a RUN_DIR (default 0)")
    p.add_argument(
        "--weights",
        default="auto",
        choices=["auto", "ema", "raw"],
        help="for a RUN_DIR, the generator's weights: auto (their moving average when the run kept "
        "one, g_ema > 0, else the raw weights), ema or raw (default auto)",
    )
    p.add_argument("--energy-keep", type=float, default=1.0, metavar="Q", help="for a RUN_DIR: " + ENERGY_KEEP_HELP)
    p.add_argument(
        "--per-class",
        action="store_true",
        help="a conditional MNIST RUN_DIR: for each digit, draw -n "
        "samples of it (default 1000) and report the classifier's accuracy on that digit and the FID "
        "against its real training images",
    )
    p.add_argument(
        "--inception",
        action="store_true",
        help="natural images: IS and FID on the FID Inception "
        "network (the published metrics' network; optional extra ebgan[inception]) against --reference",
    )
    p.add_argument(
        "--reference",
        default=None,
        metavar="FOLDER|IMAGES.npy",
        help="with --inception: the real images (default for a RUN_DIR trained on a folder: that folder)",
    )
    p.add_argument(
        "--inception-weights",
        default=None,
        metavar="FILE",
        help="with --inception: the weights file (default $EBGAN_INCEPTION_WEIGHTS, else the copy "
        "`ebgan download inception` keeps in the cache)",
    )
    p.add_argument(
        "--allow-other-weights",
        action="store_true",
        help="with --inception: accept a weights file whose SHA-256 is not the published one's (its "
        "scores are then not comparable with published FID and IS)",
    )
    p.add_argument("--list-metrics", action="store_true", help="list the registered metrics and exit")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "score",
        help="anomaly scores: a run's energy for each input, flagged above a threshold",
        description="Score inputs with the energy of a run's discriminator, or the energy per unit of the "
        "input's ink (higher = more anomalous), and write one CSV row per input, in input order. The run must have "
        "an energy (loss=ebgan).",
    )
    p.add_argument("run_dir", help="a run folder written by `ebgan train`")
    p.add_argument(
        "input",
        help="INPUT: an .npy array shaped like the run's samples (uint8 [N,C,H,W] images "
        "or float [N,2] points) or a folder of images (converted to the run's size and channels)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="SCORES.csv: name (row index or file), energy and, with a threshold, anomaly 0/1",
    )
    p.add_argument(
        "--checkpoint",
        default="latest",
        choices=["latest", "best"],
        help="which checkpoint's discriminator scores (default latest)",
    )
    p.add_argument(
        "--threshold",
        type=_threshold_arg,
        default=None,
        metavar="auto|VALUE",
        help="auto: the run's threshold.json (calibrated on held-out normal data, train with holdout "
        "> 0); or a number (default: the run's threshold when it has one, else no anomaly column)",
    )
    p.add_argument(
        "--contamination",
        type=float,
        default=None,
        metavar="C",
        help="flag the share C in (0, 0.5] of the inputs with the highest scores (default: off)",
    )
    p.add_argument(
        "--score",
        choices=["energy", "energy/ink"],
        default=None,
        help="the anomaly score: the energy, or the energy per unit of the input's ink (images; see "
        "the README) (default: the run's anomaly_score)",
    )
    p.add_argument("--batch-size", type=int, default=1000, help="inputs per discriminator pass (default 1000)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "train-classifier",
        help="train the MNIST classifier the image metrics use (reproducible from --seed)",
        description="Train the MNIST ConvNet and write weights (.safetensors) plus a .json with its test "
        "accuracy and real-data scores.",
    )
    p.add_argument("--data-root", default=default_data_root(), help=DATA_ROOT_HELP)
    p.add_argument(
        "--out", default=None, help="weights path (default: <cache>/classifier/mnist_classifier-seed<N>.safetensors)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for weights, data order and augmentation (default 0)")
    p.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS, help=f"passes over the training set (default {DEFAULT_EPOCHS})"
    )
    p.add_argument(
        "--arch",
        choices=["conv", "mlp"],
        default="conv",
        help="conv: the ConvNet every metric uses (default); mlp: the fully connected second evaluator "
        "(the packaged one: --arch mlp --seed 1)",
    )
    p.set_defaults(func=cmd_train_classifier)

    p = sub.add_parser(
        "sweep",
        help="train and score every setting of a grid (the paper's robustness experiment); resumable",
        description="Train and score each setting of a grid as an ordinary run folder (DIR/runs/METHOD/ID/), "
        "one row per setting in DIR/results.jsonl, and write DIR/report.md with the paper's histograms. "
        "Re-running the same command continues: finished settings are skipped, interrupted runs resume from "
        "their checkpoints. Ctrl-C checkpoints the running runs and stops.",
    )
    p.add_argument(
        "grid",
        nargs="?",
        help="paper-mnist (the paper's Table 1: EBGAN 512, GAN 6144 settings), "
        "paper-margin (Fig. 9), or a .json/.yaml file of lists per config field (see the README)",
    )
    p.add_argument("--out", help="the sweep folder (new, or one this sweep started)")
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated methods: gan (non-saturating), gan-minimax, "
        "ebgan, ebgan-pt, or any loss of `ebgan list` (default: the grid's)",
    )
    p.add_argument(
        "--sample",
        type=int,
        default=None,
        metavar="K",
        help="a seeded random subset of K settings per method (nested: a larger K extends a sweep) "
        "(default: every setting)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per run (default: the grid's; paper-mnist: 938, one epoch at batch 64)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="runs at a time (default: one per core not busy with other processes)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per run (default: the free cores divided among the workers, 1 with the default --workers)",
    )
    p.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local: a process pool on this machine; ray: Ray tasks (pip install 'ebgan[ray]') (default local)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="with --backend ray: a Ray cluster's address (default: a "
        "local Ray instance); the sweep folder must be visible at the same path on every node",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled subset and of every run (default 0)")
    p.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    p.add_argument(
        "--eval-samples", type=int, default=0, help="samples scored per run (default: the protocol's, 10,000 for MNIST)"
    )
    p.add_argument("--retry-failed", action="store_true", help="run the settings recorded as failed again")
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete each run's checkpoints once it is scored (keeps config, metrics, samples and result.json)",
    )
    p.add_argument("--report-only", action="store_true", help="only rewrite DIR/report.md from results.jsonl")
    p.add_argument("--list", action="store_true", help="list the named grids with their settings per method")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "semisup",
        help="semi-supervised MNIST: a Ladder Network or EBGAN-LN (the paper's Table 2); resumable",
        description="Train a Ladder Network (Rasmus et al. 2015), or EBGAN-LN (the Ladder as an EBGAN "
        "discriminator), on permutation-invariant MNIST with a class-balanced labelled subset chosen by --seed, "
        "log the test error every --eval-every steps, and write DIR/result.json (test_error in percent on the "
        "10,000 test images). Ctrl-C checkpoints; --resume continues exactly.",
    )
    p.add_argument(
        "--labels",
        type=int,
        default=None,
        help="labelled training images, a multiple of 10 (the paper: 100, 200, 1000) (default 100)",
    )
    p.add_argument("--model", default=None, help="ladder or ebgan-ln (default ladder)")
    p.add_argument(
        "--variant",
        default=None,
        help="bottom: denoising cost on the pixels only (the paper's EBGAN-LN); full: on every layer (default bottom)",
    )
    p.add_argument("--out", help="the run folder (new, or one to --resume)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint "
        "under its own settings and data root; flags may change --steps, cadences and --threads",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="start the run in --out again from step 0 with these "
        "settings, when the folder holds no checkpoint; a folder with checkpoints is refused",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the labelled subset, initial weights and noise (default 0)"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps (default: 90,000 for ladder, "
        "120,000 for ebgan-ln; the learning rate decays to 0 over the last third)",
    )
    p.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate of both networks (default 0.002)")
    p.add_argument(
        "--beta1",
        type=float,
        default=None,
        help="Adam's beta1 for both networks (default 0.9 for ladder, 0.5 for ebgan-ln)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="labelled images per step, and as many unlabelled (and generated) ones (default 100)",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="denoising cost weights per layer, pixels first, "
        "comma-separated (default: the reference code's for the variant and label count)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=None,
        help="ebgan-ln: the margin at step 0, decayed "
        "linearly to 0, in units of the weighted bottom cost (default in proportion to the bottom weight: "
        "10 below 1000 labels, chosen on validation data; 12 at 1000)",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="log the test error (with --validation: the validation error) every N steps (default 5000)",
    )
    p.add_argument(
        "--validation",
        type=int,
        default=None,
        metavar="N",
        help="hold out N training images (a fixed seeded split, the same for every seed) and log "
        "their error instead of the test error; the test images are then scored once, at the end "
        "(default 0; the Ladder's reference holds out 10,000)",
    )
    p.add_argument(
        "--no-test",
        action="store_true",
        help="with --validation: end without scoring the test images (runs that only choose settings, so that "
        "the test set is scored by the final runs alone)",
    )
    p.add_argument("--ckpt-every", type=int, default=None, help="checkpoint every N steps (default 1000)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: the cores not busy with other processes)"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="run the Ladder through torch.compile: about a "
        "minute of compilation, then faster steps (a C++ compiler is needed on a CPU); a run keeps "
        "the setting it started with",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_semisup)

    p = sub.add_parser(
        "seq",
        help="event sequences: log anomaly detection with a next-key predictor's energy (DeepLog)",
        description="Log anomaly detection on sessions of log keys: parse raw logs into sessions, train a next-key "
        "LSTM on normal sessions (known anomalies pushed above a margin), score sessions by their energy, and feed "
        "an operator's corrections back. See the README, 'Log anomaly detection'.",
    )
    p.set_defaults(func=cmd_seq, seq_command=None)
    seq = p.add_subparsers(dest="seq_command", metavar="SEQ_COMMAND")
    q = seq.add_parser("parse", help="raw log lines to key sessions with the template miner drain3 (ebgan[seq])")
    q.add_argument("logfile", help="a raw log file, one event per line")
    q.add_argument(
        "--session",
        required=True,
        metavar="REGEX",
        help="finds each line's session identifier(s) "
        "(first group, else the whole match), e.g. 'blk_-?\\d+' for HDFS; a line joins every one it finds",
    )
    q.add_argument(
        "--content",
        default=None,
        metavar="REGEX",
        help="picks the message out of a line (group "
        "'content', else the first group) before mining (default: the whole line)",
    )
    q.add_argument("--drain-config", default=None, metavar="FILE.ini", help="drain3 settings (default: drain3's)")
    q.add_argument("-o", "--output", required=True, help="SESSIONS.csv (id, session); the templates go beside it")
    q = seq.add_parser("train", help="train (or resume) a next-key predictor on normal sessions")
    q.add_argument(
        "--data",
        help="normal sessions: a session file (one per line, keys separated by spaces) or a "
        "CSV (rows labelled 1 in --label-column are known anomalies)",
    )
    q.add_argument("--anomalies", help="known anomalous sessions, pushed above --margin (unlearning)")
    q.add_argument("--out", help="the run folder (new, or one to --resume)")
    q.add_argument("--column", default=None, help="the CSV column holding the sessions (default session)")
    q.add_argument("--label-column", default=None, help="a CSV column of 0 (normal) / 1 (known anomaly)")
    q.add_argument(
        "--energy",
        default=None,
        help="mean (mean surprise per key, default), max (largest), sum, or topg (DeepLog's rule: keys outside "
        "the top g)",
    )
    q.add_argument("--epochs", type=int, default=None, help="passes over the distinct next-key pairs (default 50)")
    q.add_argument("--window", type=int, default=None, help="keys of history (default 20; DeepLog: 10)")
    q.add_argument("--hidden", type=int, default=None, help="LSTM units per layer (default 64)")
    q.add_argument("--layers", type=int, default=None, help="LSTM layers (default 2)")
    q.add_argument("--eos", choices=["on", "off"], default=None, help="also predict each session's end (default on)")
    q.add_argument(
        "--weighting",
        default=None,
        help="count (every pair as often as it occurs, DeepLog) or distinct (each distinct pair once, the default)",
    )
    q.add_argument("-g", type=int, default=None, help="DeepLog's top g (default 9)")
    q.add_argument("--batch", type=int, default=None, help="pairs per step (default 256)")
    q.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 0.001)")
    q.add_argument("--seed", type=int, default=None, help="seed of weights, holdout and batch order (default 0)")
    q.add_argument(
        "--holdout",
        type=float,
        default=None,
        help="share of the normal sessions held out to calibrate the threshold (default 0.1)",
    )
    q.add_argument(
        "--fpr",
        type=float,
        default=None,
        help="false-positive rate on the held-out sessions at which the threshold is calibrated, before "
        "--threshold-scale (default 0.01; --threshold-scale 1 for a threshold at exactly this rate)",
    )
    q.add_argument(
        "--threshold-scale",
        type=float,
        default=None,
        help="the threshold is this times the held-out energy at --fpr (default 1.3)",
    )
    q.add_argument(
        "--margin",
        type=float,
        default=None,
        help="energy in nats the known anomalies are pushed to (default: --margin-scale x the threshold)",
    )
    q.add_argument(
        "--margin-scale",
        type=float,
        default=None,
        help="without --margin, known anomalies are pushed to this times the threshold the held-out sessions "
        "give, recomputed each epoch (default 2)",
    )
    q.add_argument("--anomaly-weight", type=float, default=None, help="weight of the margin hinge (default 1)")
    q.add_argument("--ckpt-every", type=int, default=None, help="checkpoint every N epochs (default 1)")
    q.add_argument("--threads", type=int, default=None, help="torch threads (default: by the machine's load)")
    q.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out under its own settings and "
        "data; flags may change --epochs, --ckpt-every and --threads",
    )
    q.add_argument("--restart", action="store_true", help="start the run in --out again when it holds no checkpoint")
    q.add_argument("--no-progress", action="store_true", help="no progress display")
    q = seq.add_parser("score", help="the energy of each session, flagged above the run's threshold")
    q.add_argument("run_dir", help="a run folder of `ebgan seq train` (scored with its newest update)")
    q.add_argument("sessions", help="a session file or a CSV")
    q.add_argument("-o", "--output", required=True, help="SCORES.csv: index, energy, score, anomaly")
    q.add_argument("--column", default="session", help="the CSV column holding the sessions (default session)")
    q.add_argument("--energy", default=None, help="max, sum, mean or topg (default: the run's)")
    q.add_argument(
        "--threshold",
        default=None,
        metavar="auto|VALUE",
        help="auto: calibrated on the run's "
        "held-out normal sessions at its --fpr (topg: DeepLog's rule, 0); or a number (default auto)",
    )
    q = seq.add_parser(
        "update", help="feed false positives and false negatives back into a run (kept in RUN/updates/NNN/)"
    )
    q.add_argument("run_dir", help="a run folder of `ebgan seq train`")
    q.add_argument("--false-positives", default=None, metavar="FILE", help="normal sessions the run flagged")
    q.add_argument("--false-negatives", default=None, metavar="FILE", help="anomalous sessions the run missed")
    q.add_argument("--column", default="session", help="the CSV column holding the sessions (default session)")
    q.add_argument("--steps", type=int, default=None, help="full-batch steps (default 30)")
    q.add_argument("--lr", type=float, default=None, help="learning rate (default 0.003)")
    q.add_argument(
        "--optimizer",
        choices=["adam", "sgd"],
        default=None,
        help="adam (default: chosen on HDFS validation data) or sgd (moves the weights in proportion to the "
        "corrections' gradient)",
    )
    q.add_argument(
        "--floor-scale",
        type=float,
        default=None,
        metavar="S",
        help="lower each false positive's session energy to S x the run's threshold and no further (e.g. 0.9), "
        "instead of minimising its next-key loss (the default)",
    )
    q.add_argument(
        "--keep",
        type=float,
        default=None,
        help="weight of the KL divergence from the previous model's next-key distributions on the training's "
        "normal histories, a guard against forgetting (default 0)",
    )
    q.add_argument(
        "--keep-batch",
        type=int,
        default=None,
        help="normal histories drawn afresh each step for --keep (0: all of them; default 1024)",
    )
    q.add_argument(
        "--l2",
        type=float,
        default=None,
        help="weight of the squared distance to the previous weights, the guard against forgetting (default 1)",
    )
    q.add_argument(
        "--margin",
        type=float,
        default=None,
        help="energy in nats the false negatives are pushed to (default: --margin-scale x the run's threshold)",
    )
    q.add_argument(
        "--margin-scale",
        type=float,
        default=None,
        help="without --margin, false negatives are pushed to this times the run's calibrated threshold "
        "(default: the run's own --margin-scale)",
    )
    q.add_argument(
        "--holdout-guard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="halve the update's weight change (up to 8 times, then drop it) until the run's held-out normal "
        "sessions have no more false positives at its threshold than before the update (default on; "
        "--no-holdout-guard: off)",
    )
    q.add_argument("--resume", action="store_true", help="finish an update that was stopped")
    q.add_argument("--no-progress", action="store_true", help="no progress display")

    p = sub.add_parser("download", help="download a data set or the FID Inception weights (checksums verified)")
    p.add_argument(
        "name",
        choices=["mnist", "inception"],
        help="mnist (the data set) or inception (the FID Inception weights, for `ebgan eval --inception`)",
    )
    p.add_argument(
        "--data-root",
        default=default_data_root(),
        help="folder to put MNIST/raw/ in (default: $EBGAN_DATA_ROOT, else ./data)",
    )
    p.add_argument(
        "--mirror",
        action="append",
        metavar="URL",
        help="base URL serving the four MNIST .gz files, tried instead of the built-in mirrors; "
        "repeatable (default: the built-in list); for inception, the weights file's full URL",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="inception: where to put the weights (default: the cache, where `ebgan eval --inception` finds them)",
    )
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("list", help="list presets, losses, data sets and metrics")
    p.add_argument(
        "--config", action="store_true", help="list every config field with its type, default and meaning (Markdown)"
    )
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `ebgan`: a usage error, as for any missing argument
        parser.print_help(sys.stderr)
        return 2
    from .sweep import SweepInterrupted
    from .train import Interrupted

    try:
        return int(args.func(args) or 0)
    except EbganError as e:  # 2 for a mistake, 3 for a failed write (WriteFailed), 4 for an incomplete sweep
        print(f"ebgan: error: {e}", file=sys.stderr)
        return e.exit_status
    except (Interrupted, SweepInterrupted) as e:
        print(f"ebgan: {e}", file=sys.stderr)
        return 128 + int(e.signum)
    except KeyboardInterrupt:
        print("ebgan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ebgan ... | head -1`: the reader left; say nothing more and stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's own flush at exit does not fail again
        return 141  # 128 + SIGPIPE, the shell's status for a process ended by a closed pipe
    except OSError as e:  # a write the command did not wrap itself: these errnos come from writes only
        import errno

        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
            raise
        from .errors import WriteFailed

        failed = WriteFailed.from_oserror(e, e.filename or "a file")
        print(f"ebgan: error: {failed}", file=sys.stderr)
        return failed.exit_status


if __name__ == "__main__":
    sys.exit(main())
