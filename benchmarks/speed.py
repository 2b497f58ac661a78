"""Speed of the `mnist` preset's training step against a plain reference loop, timed in the same run.

The reference is how the same model is usually trained: a ``DataLoader`` (shuffle, batch 64, per-item
conversion of the uint8 image to a [-1, 1] float tensor), separate D passes over the real and the fake batch,
a fresh G forward pass for the G step, D's weight gradients computed in the G step, and PyTorch's default Adam.
Both train the same networks (the paper's best MNIST EBGAN-PT MLP) with the same losses and batch size.

Blocks of steps alternate between the two loops and the medians of their images per second are compared, so
load on the shared machine affects both alike. Achieved GFLOP/s come from ``torch.utils.flop_counter`` on
one step, against this machine's fp32 matmul peak measured in the same run.

    python benchmarks/speed.py [--data-root ../shared/data] [--blocks 7] [--steps-per-block 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from _report import ROOT, header, matmul_peak, median, write_record, write_section
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from ebgan import losses
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import Dataset, load_mnist
from ebgan.nets import build_networks
from ebgan.train import Trainer


class PerItemMNIST(torch.utils.data.Dataset):
    """The usual map-style data set: one image at a time, converted to float in [-1, 1]."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i].float() / 127.5 - 1.0


class ReferenceLoop:
    def __init__(self, cfg, images):
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.G, self.D = build_networks(cfg, (1, 28, 28), "ae")
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
        self.loader = DataLoader(PerItemMNIST(images), batch_size=cfg.batch_size, shuffle=True, drop_last=True)
        self.it = iter(self.loader)

    def step(self):
        cfg, G, D = self.cfg, self.G, self.D
        try:
            real = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            real = next(self.it)
        z = torch.randn(real.shape[0], cfg.z_dim)
        fake = G(z)
        e_real, _ = D(real)
        e_fake, _ = D(fake.detach())
        loss_d = losses.ebgan_d_loss(e_real, e_fake, cfg.margin)
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        fake = G(torch.randn(real.shape[0], cfg.z_dim))
        e_fake, code = D(fake)
        loss_g = losses.ebgan_g_loss(e_fake) + cfg.pt_weight * losses.pulling_away_term(code)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()


def step_flops(step_fn) -> int:
    with FlopCounterMode(display=False) as fc:
        step_fn()
    return fc.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--steps-per-block", type=int, default=40)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for both loops (1 by default: on a shared 2-core machine two threads "
        "stall on OpenMP barriers whenever another process holds a core)",
    )
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    images, labels = load_mnist(args.data_root, "train")
    variants = {"ebgan, amp=none (fp32)": {"amp": "none"}, "ebgan, preset as shipped (amp=auto)": {}}
    cfg = resolve(from_preset("mnist"))
    ref = ReferenceLoop(cfg, images)
    ours = {
        name: Trainer(resolve(apply_overrides(cfg, o)), Dataset("mnist", "image", images, labels))
        for name, o in variants.items()
    }
    b = cfg.batch_size
    variants_amp = {k: t.amp for k, t in ours.items()}
    for _ in range(5):  # warm-up
        ref.step()
        for t in ours.values():
            t.train_step()
    rates = {"reference": [], **{k: [] for k in ours}}
    for _ in range(args.blocks):
        for name, fn in [("reference", ref.step)] + [(k, t.train_step) for k, t in ours.items()]:
            t0 = time.perf_counter()
            for _ in range(args.steps_per_block):
                fn()
            rates[name].append(args.steps_per_block * b / (time.perf_counter() - t0))
    peak = matmul_peak(stat=min)
    flops_ref = step_flops(ref.step)
    flops_ours = {k: step_flops(t.train_step) for k, t in ours.items()}
    base = median(rates["reference"])
    rows = [
        "| loop | images/s (median of blocks) | speed-up vs reference | GFLOP per step | achieved GFLOP/s |",
        "|---|---|---|---|---|",
    ]
    for name in rates:
        r = median(rates[name])
        fl = flops_ref if name == "reference" else flops_ours[name]
        rows.append(f"| {name} | {r:.0f} | {r / base:.2f}x | {fl / 1e9:.3f} | {fl * r / b / 1e9:.1f} |")
    body = (
        "## Training speed: `mnist` preset vs a plain reference loop\n\n"
        + header()
        + f"- amp=auto resolved to {variants_amp['ebgan, preset as shipped (amp=auto)']} on this machine\n"
        f"- {args.threads} thread(s), batch {b}, {args.blocks} alternating blocks of {args.steps_per_block} steps "
        "per loop; "
        f"fp32 matmul peak measured in this run: {peak:.0f} GFLOP/s (2048x2048)\n\n" + "\n".join(rows) + "\n\n"
        "The reference: DataLoader with per-item conversion, separate real/fake D passes, a second G forward "
        "for the G step, D weight gradients in the G step, default (foreach) Adam. Ours: one uint8 tensor "
        "indexed per batch, one D pass over real+fake, the D step's fake reused by the G step, D frozen in the "
        "G step, fused Adam.\n"
    )
    print(body)
    if not args.no_write:
        write_record(
            "speed",
            {
                "images_per_s": {k: median(v) for k, v in rates.items()},
                "speedup_vs_reference": {k: median(v) / base for k, v in rates.items()},
                "gflop_per_step": {"reference": flops_ref / 1e9, **{k: f / 1e9 for k, f in flops_ours.items()}},
                "matmul_peak_gflops": peak,
            },
            threads=args.threads,
            batch=b,
            blocks=args.blocks,
            steps_per_block=args.steps_per_block,
            amp={k: str(v) for k, v in variants_amp.items()},
        )
        write_section("speed", body)


if __name__ == "__main__":
    main()
