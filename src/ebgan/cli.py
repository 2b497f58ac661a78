"""Command line: parses, validates and calls; the work happens in the library.

    ebgan train [--preset NAME] [--data NAME|PATH] [--data-root DIR] [--out DIR] [--steps N] [--seed N]
                [--loss NAME] [--resume] [--set KEY=VALUE ...] [--dry-run]
    ebgan sample RUN_DIR -n N -o FILE.npy [--seed S] [--png FILE] [--checkpoint latest|best]
    ebgan eval SAMPLES.npy|RUN_DIR --against mnist|ring|grid|stacked-mnist [--data-root DIR] [-n N]
    ebgan train-classifier [--data-root DIR] [--out PATH] [--seed N] [--epochs N]
    ebgan download mnist [--data-root DIR]
    ebgan list

A mistake of the user's (unknown preset or key, invalid value, missing or corrupt data, a folder that is not
a run) prints one line ``ebgan: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .errors import EbganError


def default_data_root() -> str:
    return os.environ.get("EBGAN_DATA_ROOT", "data")


def build_config(args: argparse.Namespace):
    """The resolved Config from ``--preset``, the shorthand flags and ``--set`` (in that order)."""
    from .config import apply_overrides, from_preset, resolve
    from .train import saved_config

    given = any(v is not None for v in (args.preset, args.data, args.loss, args.seed)) or bool(args.set)
    if args.resume and not given:
        if args.out is None:
            raise EbganError("--resume needs --out RUN_DIR")
        cfg = saved_config(Path(args.out)) if (Path(args.out) / "config.json").is_file() else None
        if cfg is None:
            raise EbganError(f"{args.out} is not a run folder (no config.json)")
    else:
        cfg = from_preset(args.preset)
    flags = {k: v for k, v in (("data", args.data), ("loss", args.loss), ("seed", args.seed)) if v is not None}
    cfg = apply_overrides(cfg, flags, args.set)
    if args.steps is not None:
        cfg = apply_overrides(cfg, {"steps": args.steps})
    return resolve(cfg)


def cmd_train(args: argparse.Namespace) -> int:
    from .config import to_dict

    cfg = build_config(args)
    if args.out is None:
        args.out = str(Path("runs") / f"{args.preset or cfg.data}-{cfg.loss}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.dry_run:
        print(json.dumps(to_dict(cfg), indent=2, sort_keys=True))
        print(f"would train in {args.out}", file=sys.stderr)
        return 0
    from .train import train

    summary = train(cfg, args.out, data_root=args.data_root, resume=args.resume, progress=not args.no_progress)
    final = summary.get("final", {})
    shown = ", ".join(f"{k}={v:.4g}" for k, v in final.items() if k not in ("step", "time"))
    print(f"trained {summary['steps']} steps in {summary['seconds']:.1f} s; {shown}")
    print(f"run folder: {summary['run_dir']} (samples.png, energy.png, metrics.jsonl, checkpoints/)")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from .sampling import sample_from_run

    out = Path(args.output)
    if out.suffix != ".npy":
        raise EbganError(f"-o must name a .npy file, got {out}")
    x = sample_from_run(args.run_dir, args.n, seed=args.seed, checkpoint=args.checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, x)
    os.replace(tmp, out)
    if args.png:
        if x.ndim == 4:
            from .images import save_grid

            save_grid(x[: min(len(x), 256)], args.png)
        else:
            import torch

            from .plots import scatter_points

            scatter_points(torch.from_numpy(x[:0]), torch.from_numpy(x[:2500]), Path(args.png))
    print(f"wrote {out}: {x.dtype} {list(x.shape)}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .data import download_mnist

    path = download_mnist(args.data_root)
    print(f"MNIST is in {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .config import PRESETS
    from .data import DATASETS
    from .losses import LOSSES

    print("presets:  " + ", ".join(PRESETS))
    print("losses:   " + ", ".join(LOSSES))
    print("data:     " + ", ".join(DATASETS) + ", or a folder of images")
    try:
        from .metrics import list_metrics

        print("metrics:  " + ", ".join(list_metrics()))
    except ImportError:
        pass
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebgan", description="Energy-based GANs and the GAN family on one trainer.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train (or resume) a run")
    p.add_argument("--preset", help="named configuration: ring, grid, mnist, mnist-conv (see `ebgan list`)")
    p.add_argument("--data", help="data set name or a folder of images")
    p.add_argument("--data-root", default=default_data_root(),
                   help="folder holding MNIST/raw/ (default: $EBGAN_DATA_ROOT or ./data)")
    p.add_argument("--out", help="run folder (default: runs/<preset>-<loss>-<time>)")
    p.add_argument("--steps", type=int, help="adversarial training steps")
    p.add_argument("--seed", type=int)
    p.add_argument("--loss", help="ebgan, gan, nsgan, wgan, wgan-gp, lsgan, loss-sensitive, began, hinge")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run into a .npy file")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, required=True, help="number of samples")
    p.add_argument("-o", "--output", required=True, help="FILE.npy: uint8 [N,C,H,W] images or float32 [N,2] points")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--png", help="also save a picture of the samples")
    p.add_argument("--checkpoint", default="latest", choices=["latest", "best"],
                   help="which checkpoint to sample from (best: kept by best_metric during training)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("download", help="download a data set (with checksum verification)")
    p.add_argument("name", choices=["mnist"])
    p.add_argument("--data-root", default=default_data_root())
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("list", help="list presets, losses, data sets and metrics")
    p.set_defaults(func=cmd_list)

    try:  # evaluation commands live with the metrics
        from .evaluate import add_eval_parser, add_train_classifier_parser

        add_eval_parser(sub)
        add_train_classifier_parser(sub)
    except ImportError:
        pass
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EbganError as e:
        print(f"ebgan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ebgan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
