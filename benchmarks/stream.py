"""Streamed data throughput: images decoded per second by ``stream=true``'s reader (a folder of JPEGs, Pillow
decode, resize, centre crop) with 0, 1 and 2 worker processes, against the images per second the ``celeba-64``
training step consumes on this machine (BENCHMARKS.md, "image-presets"), so it is plain whether the data can
keep a training run fed.

    python benchmarks/stream.py [--images 1000] [--size 178x218] [--batches 12]

The images are random-noise JPEGs of CelebA's aligned size (178 x 218, quality 90: noise is the worst case
for a JPEG decoder), written once to a temporary folder; each setting reads the same ``--batches`` batches of
64 in the trainer's order; the median of 3 passes.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _report import BENCHMARKS, header, write_record, write_section  # noqa: E402
from PIL import Image  # noqa: E402

from ebgan.stream import BatchStream, StreamedImages  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--size", default="178x218")
    ap.add_argument("--batches", type=int, default=12)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for i in range(args.images):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                Path(tmp) / f"{i:06d}.jpg", quality=90
            )
        ds = StreamedImages(tmp, 64, 3)
        perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
        batches = [perm[i * 64 : (i + 1) * 64] for i in range(args.batches)]
        rows = []
        for workers in (0, 1, 2):
            rates = []
            for _ in range(3):
                t = time.perf_counter()
                stream = BatchStream(ds, batches, workers)
                for _ in batches:
                    stream.next()
                rates.append(64 * len(batches) / (time.perf_counter() - t))
                del stream
            rows.append((workers, statistics.median(rates)))
    text = BENCHMARKS.read_text()
    m = re.search(r"\| celeba-64 \| [^|]+\| \d+ \|[^|]+\|[^|]+\|[^|]+\|[^|]+\| ([\d.]+) \|", text)
    train_rate = float(m.group(1)) if m else None
    lines = [
        header().rstrip(),
        f"- {args.images} random JPEGs of {w} x {h}, decoded to 64 x 64 RGB, "
        f"{args.batches} batches of 64, median of 3 passes (worker start included)",
        "",
        "| data_workers | images/s decoded |" + (" / celeba-64 training images/s |" if train_rate else ""),
        "|---|---|" + ("---|" if train_rate else ""),
    ]
    for workers, rate in rows:
        ratio = f" {rate / train_rate:.1f}x |" if train_rate else ""
        lines.append(f"| {workers} | {rate:.0f} |{ratio}")
    if train_rate:
        lines += [
            "",
            f'celeba-64 trains at {train_rate} images/s on this CPU ("image-presets"); a GPU step is '
            "much faster, so there the workers (and their count) decide whether training waits for data.",
        ]
    write_record(
        "stream",
        {"images_per_s_by_workers": dict(rows), "celeba64_train_images_per_s": train_rate},
        images=args.images,
        size=args.size,
        batches=args.batches,
    )
    write_section("stream", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
