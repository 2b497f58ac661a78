"""Real-data reference values of every metric, written to BENCHMARKS.md (section ``eval_reference``).

* MNIST: the classifier's test accuracy; inception score, the paper's score I' and FID of the full test set
  against the training set; the same as 0/25/50/75/100 % of the test images are replaced by uniform noise.
* 2-D mixtures: exact ring and grid samples (2,500, five seeds) and a collapsed set.
* Stacked MNIST: 26,000 real triplets (training and test digits) and triplets whose first digit is only 0-4.
* Cost: wall time and peak memory of scoring 50,000 MNIST images in a fresh process.

    PYTHONPATH=src python benchmarks/eval_reference.py [--data-root ../shared/data]

It re-runs cleanly: only the block between ``<!-- eval_reference:start -->`` and ``<!-- eval_reference:end -->``
is replaced.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _report import ROOT, header, write_record, write_section

from ebgan.data import MIXTURES, load_mnist, sample_mixture
from ebgan.evaluate import evaluate
from ebgan.metrics.classifier import load_classifier
from ebgan.metrics.reference import stacked_mnist_triplets

SECTION = "eval_reference"


def noise_mix(x: torch.Tensor, frac: float, seed: int = 0) -> np.ndarray:
    """A random ``frac`` of the images replaced by uniform uint8 noise (seeded).

    Random positions, not the first ones: the inception score's 10 splits are consecutive, and a block of
    noise would make some splits all noise and inflate the standard deviation.
    """
    g = torch.Generator().manual_seed(seed)
    x = x.clone()
    k = int(round(frac * x.shape[0]))
    idx = torch.randperm(x.shape[0], generator=g)[:k]
    x[idx] = torch.randint(0, 256, (k, *x.shape[1:]), generator=g, dtype=torch.uint8)
    return x.numpy()


MEMORY_PROBE = """
import json, resource, sys, time
import numpy as np
from ebgan.evaluate import evaluate
x = np.load(sys.argv[1], mmap_mode=None)
t = time.perf_counter()
r = evaluate(x, "mnist", data_root=sys.argv[2])
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "is": r["is"], "fid": r["fid"]}))
"""


def memory_probe(images: torch.Tensor, data_root: str) -> dict:
    """Score ``images`` in a fresh process and report its wall time and peak resident memory."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "samples.npy"
        np.save(f, images.numpy())
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(f), data_root], env=env, capture_output=True, text=True, check=True
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=os.environ.get("EBGAN_DATA_ROOT") or str(ROOT / ".." / "shared" / "data"))
    args = ap.parse_args()
    t_start = time.perf_counter()
    clf = load_classifier()
    x_test, y_test = load_mnist(args.data_root, "test")
    x_train, y_train = load_mnist(args.data_root, "train")
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    # MNIST: real test set against the training set, then progressively replaced by noise.
    t = time.perf_counter()
    real = evaluate(x_test.numpy(), "mnist", data_root=args.data_root, classifier=clf)
    t_real = time.perf_counter() - t
    log("real test:", real)
    sweep = []
    for pct in (0, 25, 50, 75, 100):
        r = evaluate(noise_mix(x_test, pct / 100), "mnist", data_root=args.data_root, classifier=clf)
        sweep.append((pct, r))
        log(f"noise {pct}%:", r)
    train_half = evaluate(x_train[:10_000].numpy(), "mnist", data_root=args.data_root, classifier=clf, fid_split="test")

    # 2-D mixtures: exact samples (five seeds) and a collapsed set.
    mix_rows = []
    for name in ("ring", "grid"):
        k = len(MIXTURES[name][0]())
        rs = [evaluate(sample_mixture(name, 2500, torch.Generator().manual_seed(s))[0].numpy(), name) for s in range(5)]
        mix_rows.append((f"exact {name} samples (2,500; seeds 0-4)", k, rs))
        centre = MIXTURES[name][0]()[0]
        sigma = MIXTURES[name][1]
        g = torch.Generator().manual_seed(0)
        collapsed = (centre + sigma * torch.randn(2500, 2, generator=g)).numpy()  # all mass on mode 0
        mix_rows.append((f"collapsed {name}: every sample from mode 0", k, [evaluate(collapsed, name)]))
    log("mixtures done")

    # Stacked MNIST: 26,000 real triplets; first digit only 0-4 hits half the modes.
    stacked = []
    for label, imgs, labs, first in (
        ("real triplets, training digits (seed 0)", x_train, y_train, None),
        ("real triplets, test digits (seed 0)", x_test, y_test, None),
        ("first digit only 0-4, training digits (seed 0)", x_train, y_train, (0, 1, 2, 3, 4)),
    ):
        trip, true_modes = stacked_mnist_triplets(imgs, labs, 26_000, seed=0, first_digits=first)
        r = evaluate(trip.numpy(), "stacked-mnist", classifier=clf)
        from ebgan.metrics import stacked_mnist_modes

        truth = stacked_mnist_modes(true_modes)
        stacked.append((label, r, truth))
        log(label, r, truth)

    probe = memory_probe(x_train[:50_000], args.data_root)
    log("memory probe:", probe)
    total = time.perf_counter() - t_start

    ref = clf.info.get("reference", {})
    lines = [
        "## Metric reference values (`benchmarks/eval_reference.py`)",
        "",
        header("python benchmarks/eval_reference.py --data-root ../shared/data").rstrip(),
        f"- classifier: `src/ebgan/weights/mnist_classifier.safetensors` (sha256 {clf.sha256[:12]}), "
        f"{clf.info.get('arch')}, seed {clf.info.get('seed')}, {clf.info.get('epochs')} epochs, "
        f"**test accuracy {100 * clf.test_accuracy:.2f} %**",
        f"- total time {total:.0f} s (the machine is shared: timings are indicative)",
        "",
        "### MNIST (classifier probabilities and 128-d penultimate features)",
        "",
        "IS: mean +- std over 10 splits; I': the EBGAN paper's `E_x KL(p(y) || p(y|x))`, `p(y|x)` clamped at 1e-12; "
        "FID against the 60,000 training images unless stated.",
        "",
        "| samples | n | IS | I' | FID |",
        "|---|---|---|---|---|",
        f"| MNIST test set | 10,000 | {real['is']:.3f} +- {real['is_std']:.3f} | {real['paper_score']:.3f} | "
        f"{real['fid']:.3f} |",
        f"| MNIST training images 0-9,999, FID against the test set | 10,000 | {train_half['is']:.3f} +- "
        f"{train_half['is_std']:.3f} | {train_half['paper_score']:.3f} | {train_half['fid']:.3f} |",
        "",
        "Test images progressively replaced by uniform noise (`U{0..255}` per pixel, seed 0):",
        "",
        "| % noise | IS | I' | FID |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {pct} | {r['is']:.3f} +- {r['is_std']:.3f} | {r['paper_score']:.3f} | {r['fid']:.2f} |" for pct, r in sweep
    ]
    mono_is = all(a[1]["is"] > b[1]["is"] for a, b in zip(sweep, sweep[1:]))
    mono_fid = all(a[1]["fid"] < b[1]["fid"] for a, b in zip(sweep, sweep[1:]))
    lines += [
        "",
        f"IS falls monotonically: {'yes' if mono_is else 'NO'}; FID rises monotonically: "
        f"{'yes' if mono_fid else 'NO'}. The paper's I' is not a monotone quality measure: this classifier "
        "reads uniform noise as an 8 with probability > 0.9999, and the swapped KL `KL(p(y) || p(y|x))` "
        "rewards such confident predictions while `p(y)` stays spread out, so a little noise can raise I'; "
        "all-noise gives `p(y|x) = p(y)` and I' = 0.",
        "",
        "### 2-D mixtures (PacGAN protocol: 2,500 samples, high quality within 3 sigma, reverse KL over the "
        "high-quality samples' modes)",
        "",
        "| samples | modes | % high quality | reverse KL |",
        "|---|---|---|---|",
    ]
    for label, k, rs in mix_rows:
        modes = [r["modes"] for r in rs]
        hq = [r["hq_pct"] for r in rs]
        kl = [r["reverse_kl"] for r in rs]
        if len(rs) > 1:
            lines.append(
                f"| {label} | {min(modes)}-{max(modes)} / {k} | {min(hq):.2f}-{max(hq):.2f} | "
                f"{min(kl):.4f}-{max(kl):.4f} |"
            )
        else:
            lines.append(f"| {label} | {modes[0]} / {k} | {hq[0]:.2f} | {kl[0]:.4f} (log {k} = {math.log(k):.4f}) |")
    lines += [
        "",
        "### Stacked MNIST (26,000 samples, each channel labelled by the classifier; VEEGAN/PacGAN protocol)",
        "",
        "| samples | modes (classifier) | KL (classifier) | modes (true labels) | KL (true labels) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {label} | {r['modes']} / 1000 | {r['kl']:.4f} | {t['modes']} | {t['kl']:.4f} |" for label, r, t in stacked
    ]
    lines += [
        "",
        f"log 2 = {math.log(2):.4f}. With 26,000 samples over 1000 equally likely modes the KL of the empirical "
        f"frequencies alone is about 999 / (2 x 26,000) = {999 / 52000:.4f}.",
        "",
        "### Cost",
        "",
        f"- scoring the real test set (10,000 images; real statistics shipped with the classifier): {t_real:.1f} s",
        f"- scoring 50,000 MNIST images in a fresh process (`evaluate(..., 'mnist')`): {probe['seconds']:.1f} s, "
        f"peak resident memory {probe['max_rss_mib']:.0f} MiB (limit 2 GiB)",
    ]
    if clf.info.get("train_seconds") is not None:
        lines.append(
            f"- training the classifier (`ebgan train-classifier`, {clf.info.get('epochs')} epochs, from its "
            f"sidecar): {clf.info['train_seconds']:.0f} s on {clf.info.get('machine', '?')}"
        )
    if ref:
        lines += [
            "",
            f"Sidecar reference values (`mnist_classifier.json`, written by `ebgan train-classifier`): IS "
            f"{ref['is']:.3f} +- {ref['is_std']:.3f}, I' {ref['paper_score']:.3f}, FID test vs train "
            f"{ref['fid_test_vs_train']:.3f}, Stacked MNIST {ref['stacked_modes']} modes / KL {ref['stacked_kl']:.4f}.",
        ]
    write_record(
        SECTION,
        {
            "mnist_test": real,
            "mnist_train_0_9999_against_test": train_half,
            "noise_pct": {str(pct): r for pct, r in sweep},
            "mixtures": {label: rs for label, _, rs in mix_rows},
            "stacked_mnist": {label: {"classifier": r, "true_labels": t} for label, r, t in stacked},
            "seconds": {"score_test_set": t_real, "total": total},
            "memory_probe": probe,
        },
        command="python benchmarks/eval_reference.py --data-root ../shared/data",
        classifier_sha256=clf.sha256,
        classifier_test_accuracy=clf.test_accuracy,
    )
    write_section(SECTION, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
