"""The semi-supervised recipe: its configuration, the labelled subset, the batch streams and one training step.

Two models share it:

* ``ladder``: the Ladder Network alone, with the reference recipe of Rasmus et al. (2015): Adam lr 0.002,
  batches of 100 labelled + 100 unlabelled images, 150 epochs of 600 steps (90,000 steps), the learning rate
  decayed linearly to 0 over the last third; the unlabelled set is all 60,000 training images.
* ``ebgan-ln``: the Ladder as the discriminator of an EBGAN (Zhao et al. 2017, Table 2). Its energy of an image
  is the weighted bottom-layer denoising cost ``E(x) = lambda_0 * sum_pixels (x^ - x)^2 / 784``, the same
  term the Ladder minimises on real images, so real images are pushed down by the Ladder's own cost. A batch
  of generated images ``G(z)`` is pushed up to a margin: the discriminator minimises
  ``C_ladder + mean max(0, m_t - E(G(z)))`` and the generator ``mean E(G(z))``. The margin decays linearly
  from ``margin`` (by default in proportion to the bottom weight) to 0 at the end of training ("crucial" per
  the paper: at ``m = 0`` the model is a plain Ladder). The paper's appendix details not known here are
  choices, all configurable: Adam with beta1 0.5 for both networks (the appendix as recalled), 120,000 steps
  with the learning rate decayed linearly to 0 from 2/3 of the run (step 80,000), a batch of 100 generated
  images per step through the Ladder in its own batch-norm segment, and the fully connected generator of
  :class:`MLPGenerator`.

Every random choice is a function of the seed and the step (batches) or of a generator saved in checkpoints
(noise), so a resumed run reaches exactly the state of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import filled
from ..errors import EbganError
from .ladder import LAYERS, Ladder, MLPGenerator

MODELS = ("ladder", "ebgan-ln")
VARIANTS = ("bottom", "full")
MNIST_TRAIN = 60000

# Denoising cost weights per layer (784, 1000, 500, 250, 250, 250, 10) of the reference code, for 100 and for
# 1000 labels; fewer than 1000 labels use the first, 1000 or more the second.
WEIGHTS: dict[tuple[str, int], tuple[float, ...]] = {
    ("full", 100): (1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1),
    ("full", 1000): (2000.0, 20.0, 0.1, 0.1, 0.1, 0.1, 0.1),
    ("bottom", 100): (5000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ("bottom", 1000): (2000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
}
# EBGAN-LN's default margin, per unit of the bottom-layer weight and by label count as WEIGHTS (fewer than 1000
# labels, 1000 or more). The energy is the weighted bottom cost, so the real images' energy scales with the
# weight (about 24 at 5000, 10 at 2000) and the margin with it.
# - Below 1000 labels (weight 5000): 10, chosen on VALIDATION data (benchmarks/semisup.py --select-margin: 100
#   labels, seed 0, 10,000 training images held out and the test images never scored, margins 10, 20, 30 and
#   60 over 20,000 steps, the lowest mean validation error over the last three evaluations; BENCHMARKS.md,
#   "semisup-select"). It replaced 30, which came from short probes scored on test images ("semisup-probe").
# - 1000 labels or more (weight 2000): 12, from runs scored on test images, not re-chosen on validation: a fixed
#   margin of 30 there put generated images at 3-5 times the real energy instead of 1.5-2 times, and the test
#   error of that run stalled near 2 % (BENCHMARKS.md, "semisup-search").
MARGIN_PER_WEIGHT = {100: 10.0 / 5000.0, 1000: 12.0 / 2000.0}
DEFAULT_STEPS = {"ladder": 90000, "ebgan-ln": 120000}
DEFAULT_BETA1 = {"ladder": 0.9, "ebgan-ln": 0.5}

# Fields that may change when a run is resumed: cadences and threads do not change the result; ``steps``
# extends (or shortens) the run, as for ``ebgan train``: the learning-rate decay and the margin then follow the
# new length from the step the run resumes at.
RESUMABLE = {"steps", "eval_every", "log_every", "ckpt_every", "num_threads"}


@dataclass
class SemisupConfig:
    """Everything a semi-supervised run depends on (saved as ``config.json`` in its folder).

    ``None`` fields take the model's default when resolved (:func:`resolve_semisup`).
    """

    labels: int = 100
    model: str = "ladder"
    variant: str = "bottom"
    seed: int = 0
    steps: int | None = None  # 90,000 (ladder) or 120,000 (ebgan-ln)
    batch: int = 100  # labelled images per step; as many unlabelled (and generated, ebgan-ln)
    lr: float = 0.002  # Adam, both networks
    beta1: float | None = None  # 0.9 (ladder) or 0.5 (ebgan-ln)
    decay_from: float = 2 / 3  # share of the run after which the learning rate decays linearly to 0
    noise_std: float = 0.3
    weights: list[float] | None = None  # per layer, bottom first; None: WEIGHTS by variant and labels
    margin: float | None = None  # ebgan-ln: the margin at step 0, in units of E (decays linearly to 0); None:
    # MARGIN_PER_WEIGHT times the bottom weight (10 below 1000 labels, 12 at 1000); see README
    z_dim: int = 100  # ebgan-ln: generator noise size
    layers: list[int] = field(default_factory=lambda: list(LAYERS))
    eval_every: int = 5000  # test error logged every N steps (and at the end)
    log_every: int = 100
    ckpt_every: int = 1000
    num_threads: int = 0  # 0: the cores not busy with other processes (ebgan.threads)
    compile: bool = False  # run the Ladder's passes through torch.compile (see SemisupTrainer)
    validation: int = 0  # training images held out for model selection (0: none); see load_semisup_data
    score_test: bool = True  # False (needs validation > 0): end without scoring the test images (selection runs)


def to_semisup_dict(cfg: SemisupConfig) -> dict:
    return asdict(cfg)


def semisup_from_dict(d: dict) -> SemisupConfig:
    known = {f.name for f in fields(SemisupConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise EbganError(f"unknown semi-supervised setting(s): {', '.join(unknown)}")
    return SemisupConfig(**d)


def resolve_semisup(cfg: SemisupConfig) -> SemisupConfig:
    """Check every field and fill in the model's defaults; raises EbganError naming the bad value."""
    if cfg.model not in MODELS:
        raise EbganError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}")
    if cfg.variant not in VARIANTS:
        raise EbganError(
            f"unknown variant {cfg.variant!r}; choose one of {', '.join(VARIANTS)} (bottom: the "
            f"denoising cost on the pixels only, the paper's choice; full: on every layer)"
        )
    layers = [int(n) for n in cfg.layers]
    if len(layers) < 2 or layers[0] != 784 or min(layers) < 1:
        raise EbganError(f"layers must start at 784 (MNIST pixels) and have at least 2 sizes, got {layers}")
    n_classes = layers[-1]
    labels = cfg.labels
    if not isinstance(labels, int) or labels < n_classes or labels % n_classes:
        raise EbganError(
            f"--labels must be a positive multiple of {n_classes} (a class-balanced subset holds "
            f"the same number of each digit), got {labels}"
        )
    if labels > MNIST_TRAIN:
        raise EbganError(f"--labels {labels} is more than the {MNIST_TRAIN} MNIST training images")
    if not isinstance(cfg.validation, int) or cfg.validation < 0 or cfg.validation + labels > MNIST_TRAIN:
        raise EbganError(
            f"--validation must be a whole number of training images from 0 to "
            f"{MNIST_TRAIN - labels} (what --labels leaves), got {cfg.validation!r}"
        )
    if not cfg.score_test and not cfg.validation:
        raise EbganError("--no-test needs --validation N: a run must end with an error on some held-out images")
    steps = DEFAULT_STEPS[cfg.model] if cfg.steps is None else cfg.steps
    if not isinstance(steps, int) or steps < 1:
        raise EbganError(f"--steps must be a positive integer, got {steps}")
    beta1 = DEFAULT_BETA1[cfg.model] if cfg.beta1 is None else float(cfg.beta1)
    weights = cfg.weights
    if weights is None:
        base = WEIGHTS[(cfg.variant, 1000 if labels >= 1000 else 100)]
        if len(layers) != len(LAYERS):  # another depth: the bottom weight, then the variant's pattern
            base = (base[0],) + tuple(base[min(i, len(base) - 1)] for i in range(1, len(layers)))
        weights = list(base)
    weights = [float(w) for w in weights]
    if len(weights) != len(layers) or min(weights) < 0:
        raise EbganError(
            f"weights needs {len(layers)} non-negative values (one per layer, pixels first), got {weights}"
        )
    if cfg.model == "ebgan-ln" and weights[0] == 0:
        raise EbganError("ebgan-ln's energy is the bottom-layer cost: its weight (the first) must be > 0")
    for name in ("batch", "eval_every", "log_every", "ckpt_every", "z_dim"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise EbganError(f"{name} must be a positive integer, got {v!r}")
    if not isinstance(cfg.compile, bool):
        raise EbganError(f"compile must be true or false, got {cfg.compile!r}")
    if not isinstance(cfg.num_threads, int) or cfg.num_threads < 0:
        raise EbganError(f"num_threads must be 0 (auto) or a positive integer, got {cfg.num_threads!r}")
    if not 0 < cfg.lr < 1 or not 0 <= beta1 < 1 or not 0 <= cfg.decay_from <= 1:
        raise EbganError("lr must be in (0, 1), beta1 in [0, 1) and decay_from in [0, 1]")
    per_weight = MARGIN_PER_WEIGHT[1000 if labels >= 1000 else 100]
    margin = per_weight * weights[0] if cfg.margin is None else float(cfg.margin)
    if cfg.noise_std < 0 or margin < 0:
        raise EbganError("noise_std and margin must be >= 0")
    return SemisupConfig(
        **{**asdict(cfg), "steps": steps, "beta1": beta1, "weights": weights, "layers": layers, "margin": margin}
    )


# ----------------------------------------------------------------------------------------------------- data


def _seed_of(*parts: object) -> int:
    """A 63-bit seed derived from any values (stable across runs, platforms and Python versions)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") & (2**63 - 1)


def labelled_subset(labels: Tensor, n: int, seed: int) -> Tensor:
    """Indices of a class-balanced labelled subset: ``n / n_classes`` images of each class, chosen by a
    permutation seeded by ``seed`` (the same seed gives the same subset), sorted."""
    n_classes = int(labels.max()) + 1
    per = n // n_classes
    gen = torch.Generator().manual_seed(_seed_of("labelled", seed))
    chosen = []
    for c in range(n_classes):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < per:
            raise EbganError(f"class {c} has {len(idx)} images, fewer than the {per} a balanced subset needs")
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:per]])
    return torch.sort(torch.cat(chosen)).values


class BatchStream:
    """Batches of indices into ``n`` items: consecutive slices of an endless sequence of permutations (a new
    one per epoch), a pure function of ``(seed, name, step)`` so a resumed run needs no saved cursor."""

    def __init__(self, n: int, batch: int, seed: int, name: str) -> None:
        self.n, self.batch, self.seed, self.name = n, batch, seed, name
        self._epoch = -1
        self._perm: Tensor | None = None

    def _permutation(self, epoch: int) -> Tensor:
        perm = self._perm
        if epoch != self._epoch or perm is None:  # (perm is None only before the first call, at epoch -1)
            gen = torch.Generator().manual_seed(_seed_of(self.name, self.seed, epoch))
            perm = torch.randperm(self.n, generator=gen)
            self._epoch, self._perm = epoch, perm
        return perm

    def at(self, step: int) -> Tensor:
        """The indices of the batch of ``step`` (0-based)."""
        out, pos, need = [], step * self.batch, self.batch
        while need:
            epoch, off = divmod(pos, self.n)
            take = min(need, self.n - off)
            out.append(self._permutation(epoch)[off : off + take])
            pos, need = pos + take, need - take
        return torch.cat(out)


@dataclass
class SemisupData:
    """Flattened MNIST pixels in [0, 1] (float32 ``[N, 784]``) with labels, and the labelled subset."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    labelled: Tensor  # indices into the training set
    x_val: Tensor | None = None  # images held out of training for model selection (``--validation``)
    y_val: Tensor | None = None
    val_index: Tensor | None = None  # their indices among the 60,000 MNIST training images


def validation_split(n: int, size: int) -> tuple[Tensor, Tensor]:
    """``(kept, held)``: sorted indices of ``n`` training images, ``size`` of them held out for validation.

    The split is one fixed seeded permutation, the same for every run seed and label count, so that settings
    compared on validation error are compared on the same images; the labelled subset of a run is then drawn
    from the images kept for training. The Ladder's reference code holds out 10,000 images the same way."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(_seed_of("validation", n)))
    return torch.sort(perm[size:]).values, torch.sort(perm[:size]).values


def load_semisup_data(data_root, labels: int, seed: int, validation: int = 0) -> SemisupData:
    """MNIST as the Ladder expects it: pixels as floats in [0, 1] (uint8 input is a known pitfall: 16.7 %
    error in a public report), flattened, and the seeded class-balanced labelled subset; with ``validation``
    > 0, that many training images held out (:func:`validation_split`) and never trained on."""
    from ..data import load_mnist, resolve_data_root

    root = resolve_data_root(data_root)
    xs, ys = load_mnist(root, "train")
    xt, yt = load_mnist(root, "test")
    flat = lambda x: x.reshape(len(x), -1).float().div_(255.0)  # noqa: E731
    xs = flat(xs)
    if not validation:
        return SemisupData(xs, ys, flat(xt), yt, labelled_subset(ys, labels, seed))
    kept, held = validation_split(len(ys), validation)
    return SemisupData(
        xs[kept],
        ys[kept],
        flat(xt),
        yt,
        labelled_subset(ys[kept], labels, seed),
        x_val=xs[held],
        y_val=ys[held],
        val_index=held,
    )


# ---------------------------------------------------------------------------------------------------- costs


def corrupted_costs(
    ladder: Ladder,
    x_lab: Tensor,
    y_lab: Tensor,
    x_unl: Tensor,
    weights: list[float],
    noises: list[Tensor] | None,
    x_fake: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """:func:`ladder_costs` with the corruption noise given (:meth:`Ladder.draw_noise` for all the rows): a
    pure function of its tensors, the part of a step that ``torch.compile`` traces."""
    parts = [x_lab, x_unl] + ([x_fake] if x_fake is not None else [])
    sizes = [len(p) for p in parts]
    corrupted = ladder.encode(torch.cat(parts), sizes, noises)
    ce = F.cross_entropy(corrupted.logits[: sizes[0]], y_lab)
    clean = ladder.encode(x_unl, [len(x_unl)]) if any(w > 0 for w in weights[1:]) else None
    costs = ladder.decode(corrupted, 1, sizes, weights, clean)
    # (a tensor even when every weight is 0: the Ladder then trains on the cross-entropy alone)
    denoise = sum((w * c.mean() for w, c in zip(weights, costs) if c is not None), ce.new_zeros(()))
    fake_cost = None
    if x_fake is not None:
        bottom = [weights[0]] + [0.0] * ladder.depth
        fake_cost = ladder.decode(corrupted, 2, sizes, bottom)[0]
    return ce, denoise, costs[0], fake_cost


def ladder_costs(
    ladder: Ladder,
    x_lab: Tensor,
    y_lab: Tensor,
    x_unl: Tensor,
    weights: list[float],
    noise: float,
    generator: torch.Generator | None,
    x_fake: Tensor | None = None,
    fn=corrupted_costs,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """One corrupted pass over ``[labelled, unlabelled(, generated)]`` (each its own batch-norm segment), the
    clean pass over the unlabelled images where a layer above the pixels is weighted, and the decoder.

    Returns ``(cross-entropy, weighted denoising cost, per-sample bottom cost of the unlabelled images,
    per-sample bottom cost of the generated images or None)``; bottom costs are unweighted, and None where the
    bottom weight is 0. ``fn`` computes them from the noise drawn here (:func:`corrupted_costs`, or a compiled
    copy of it).
    """
    rows = len(x_lab) + len(x_unl) + (len(x_fake) if x_fake is not None else 0)
    return fn(ladder, x_lab, y_lab, x_unl, weights, ladder.draw_noise(rows, noise, generator), x_fake)


def energy_from_noise(ladder: Ladder, x: Tensor, weight: float, noises: list[Tensor] | None) -> Tensor:
    """:func:`energy` with the corruption noise given (the compilable part)."""
    corrupted = ladder.encode(x, [len(x)], noises)
    cost = ladder.decode(corrupted, 0, [len(x)], [weight] + [0.0] * ladder.depth)[0]
    assert cost is not None  # weight > 0 (resolve_semisup requires it of ebgan-ln)
    return weight * cost


def energy(
    ladder: Ladder, x: Tensor, weight: float, noise: float, generator: torch.Generator | None, fn=energy_from_noise
) -> Tensor:
    """EBGAN-LN's per-sample energy of a batch (one batch-norm segment): ``weight`` times the bottom-layer
    denoising cost of the corrupted pass."""
    return fn(ladder, x, weight, ladder.draw_noise(len(x), noise, generator))


def lr_at(cfg: SemisupConfig, step: int) -> float:
    """The learning rate of ``step`` (0-based): constant, then linear decay to 0 over the last
    ``1 - decay_from`` of the run (the reference: the last 50 of 150 epochs)."""
    steps = filled(cfg.steps, "steps")
    start = cfg.decay_from * steps
    if step < start or steps <= start:
        return cfg.lr
    return cfg.lr * max(0.0, (steps - step) / (steps - start))


def margin_at(cfg: SemisupConfig, step: int) -> float:
    """EBGAN-LN's margin at ``step``: ``margin`` decayed linearly to 0 at the end of the run."""
    return filled(cfg.margin, "margin") * max(0.0, 1.0 - step / filled(cfg.steps, "steps"))


def build_models(cfg: SemisupConfig) -> tuple[Ladder, MLPGenerator | None]:
    torch.manual_seed(_seed_of("init", cfg.seed))
    ladder = Ladder(tuple(cfg.layers), cfg.noise_std)
    gen = MLPGenerator(cfg.z_dim, out=cfg.layers[0]) if cfg.model == "ebgan-ln" else None
    return ladder, gen


@torch.no_grad()
def test_error(ladder: Ladder, data: SemisupData, split: str = "test") -> float:
    """Percent error on the test images (``split="val"``: the validation images): the clean path with
    population statistics of the training images."""
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_val, data.y_val)
    if x is None or y is None:
        raise EbganError("this run holds out no validation images (--validation 0)")
    ladder.set_population_stats(data.x_train)
    wrong = (ladder.predict(x) != y).sum().item()
    return 100.0 * wrong / len(y)
