"""Generators and discriminators.

Every discriminator returns the same pair, so one trainer serves every loss:

* ``AEDiscriminator`` (EBGAN, BEGAN): ``x -> (energy [N], code [N, d])``, the energy being the reconstruction
  error ``||Dec(Enc(x)) - x||`` under the chosen reduction and ``code`` the encoder output (what the
  pulling-away term repels).
* ``LogitDiscriminator`` (GAN, WGAN, LSGAN, hinge, loss-sensitive): ``x -> (score [N], features [N, d])`` on
  the same backbone sizes, with one linear output unit in place of the decoder.

Two families: the paper's fully connected nets, parameterised exactly like its MNIST grid (nLayerG, sizeG,
nLayerD = encoder layers + one decoder layer, sizeD, dropoutD), and convolutional nets for 28 to 256 pixels
with 1 or 3 channels (DCGAN-style up to 64, the paper's 64x64 auto-encoder and 128/256 generators,
docs/paper.md s.1).
"""

from __future__ import annotations

import contextlib
import math
from typing import cast

import torch
from torch import Tensor, nn

from .config import CONV_SIZES, Config
from .errors import EbganError


def reconstruction_energy(recon: Tensor, x: Tensor, kind: str = "l2") -> Tensor:
    """Per-sample reconstruction error ``[N, ...] x2 -> [N]``.

    * ``l2``  ``||r - x||_2`` per sample, the paper's ``D(x) = ||Dec(Enc(x)) - x||`` (margins 10-80 fit it)
    * ``sse`` ``||r - x||_2^2``
    * ``mse`` ``||r - x||_2^2 / P`` over the ``P`` values of a sample (bounded by 4 for data in [-1, 1])
    * ``l1``  ``||r - x||_1 / P``, BEGAN's ``L(v) = |v - D(v)|`` with eta = 1
    """
    diff = (recon - x).flatten(1)  # [N, P]
    if kind == "l2":
        # sqrt of a clamped sum keeps the gradient finite for an exact reconstruction.
        return diff.pow(2).sum(1).clamp_min(1e-12).sqrt()
    if kind == "sse":
        return diff.pow(2).sum(1)
    if kind == "mse":
        return diff.pow(2).mean(1)
    if kind == "l1":
        return diff.abs().mean(1)
    raise ValueError(f"unknown energy {kind!r}")


# ----------------------------------------------------------------------------------------------------------
# Class conditioning (cfg.conditional): the label as a one-hot vector concatenated to G's noise and to D's
# input (as constant planes for conv nets), so every loss gets a conditional G and D, and the auto-encoder's
# energy becomes D(x | y) = ||Dec(Enc(x, y)) - x||. The labels of the current batch are set on the nets
# (set_labels) rather than passed through every call, so the objectives stay unchanged; an input holding k
# stacked batches (real and fake at once) repeats them k times.


class Conditioned(nn.Module):
    """Concatenates the one-hot labels set by :func:`set_labels` to its input, then applies ``inner``."""

    def __init__(self, inner: nn.Module, n_classes: int, planes: bool = False) -> None:
        super().__init__()
        self.inner, self.n_classes, self.planes = inner, n_classes, planes
        self.labels: Tensor | None = None

    def onehot(self, n: int, like: Tensor) -> Tensor:
        y = self.labels
        if y is None:
            raise EbganError("a conditional net needs labels: set_labels(net, y) before calling it")
        if n != len(y):
            if n % len(y):
                raise EbganError(f"{n} inputs for {len(y)} labels")
            y = y.repeat(n // len(y))
        return nn.functional.one_hot(y.to(like.device), self.n_classes).to(like.dtype)

    def forward(self, x: Tensor) -> Tensor:
        h = self.onehot(x.shape[0], x)
        if self.planes:  # images: one constant plane per class
            h = h[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            return self.inner(torch.cat([x, h], dim=1))
        return self.inner(torch.cat([x.flatten(1), h], dim=1))


def set_labels(net: nn.Module, labels: Tensor | None) -> None:
    """Set the class labels (int64 ``[B]``) the conditional parts of ``net`` use from now on."""
    for m in net.modules():
        if isinstance(m, Conditioned):
            m.labels = labels


def is_conditional(net: nn.Module) -> bool:
    return any(isinstance(m, Conditioned) for m in net.modules())


# ----------------------------------------------------------------------------------------------------------
# Batch-norm running statistics from real data only. In training mode a batch-norm layer normalises every
# batch with that batch's own statistics and, as a side effect, folds them into its running mean and variance;
# eval mode then normalises with those running statistics (ebgan.energy.energies, `ebgan score`, thresholds,
# the energy landscape, energy rejection). The discriminator also runs on generated samples (the D step's fake
# pass, the G step) and on known anomalies (unlearning), which without care make about two thirds of those
# updates. ``frozen_bn_stats`` wraps such passes so that they leave the running statistics exactly as they
# were: the discriminator's eval-mode function is then calibrated on the real (normal) training data alone.


def _bn_stat_buffers(module: nn.Module) -> list[Tensor]:
    """The running statistics a training-mode forward of ``module`` would update: running mean, running
    variance and the batch counter of every batch-norm layer in training mode that tracks them."""
    if getattr(module, "_ebgan_no_batch_norm", False):  # the common case of the 2-D presets, remembered
        return []
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        # a net's layers never change after it is built (nn.Module's __setattr__ is typed for tensors and modules)
        module._ebgan_no_batch_norm = True  # type: ignore[assignment]
    out: list[Tensor] = []
    for m in layers:
        if m.training and m.track_running_stats:
            out += [t for t in (m.running_mean, m.running_var, m.num_batches_tracked) if t is not None]
    return out


class frozen_bn_stats:
    """A context in which forward passes of ``module`` leave its batch-norm running statistics unchanged.

    The passes themselves are untouched: every batch-norm layer still runs its ordinary training-mode kernel
    (the batch normalised with its own statistics, through the same code path, eager or ``torch.compile``d,
    ``SyncBatchNorm`` or :class:`ebgan.dist.GlobalBatchNorm`, under any autocast), so outputs, losses and
    gradients are bit for bit what they were; only the running mean, running variance and
    ``num_batches_tracked`` of every layer are put back on exit to the values they had on entry. Saving and
    restoring the buffers (rather than ``momentum=0``) also covers ``momentum=None`` (a cumulative average
    driven by ``num_batches_tracked``) and the counter itself.

    The buffers are restored in place (the same tensor objects: compiled graphs, the optimiser and the
    checkpoint see the same buffers) through ``.data``, i.e. without bumping autograd's version counter. That
    is what the batch-norm kernel does when it updates them, and it is safe for the same reason: autograd may
    keep a reference to them, but a training-mode backward never reads them (it uses the batch's saved mean
    and inverse standard deviation); bumping the counter would make that backward refuse to run.

    A no-op (nothing cloned) for a module without batch norm or in eval mode. Nothing outlives the context,
    so checkpoints need nothing new for exact resume.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.saved: list[tuple[Tensor, Tensor]] = []

    def __enter__(self) -> frozen_bn_stats:
        buffers = _bn_stat_buffers(self.module)
        if buffers:
            with torch.no_grad():
                self.saved = [(t, t.detach().clone()) for t in buffers]
        return self

    def __exit__(self, *exc) -> None:
        if self.saved:
            with torch.no_grad():
                for t, old in self.saved:
                    t.data.copy_(old)
            self.saved = []


# ----------------------------------------------------------------------------------------------------------
# Mode-coverage tools that let D see more than one sample at a time (the pulling-away term, the third, acts on
# G's loss: ebgan.losses.pulling_away_term).
#
# * Minibatch discrimination (Salimans et al. 2016, "Improved techniques for training GANs", s.3.2): features
#   that say how close each sample is to the others of its batch, appended to D's features before its output
#   layer (the auto-encoder: to its code before decoding). A collapsed batch, all alike, is then recognisably
#   fake. ``minibatch_features`` is the formula; ``MinibatchDiscrimination`` holds the learned tensor T.
# * Packing (PacGAN, Lin et al. 2018): D judges m samples at once, concatenated (channels for images, features
#   for vectors). ``Packed`` wraps any discriminator: it forms packs of m consecutive samples of whatever batch
#   it is given, so every objective calls it unchanged and gets one value per pack.
#
# Both make D's value a function of more than one sample: per-sample energies (`ebgan score`, thresholds,
# energy rejection, the energy landscape) are not defined. Every such consumer runs D in eval mode, and both
# refuse eval mode with an error that says so (config.validate refuses the anomaly-scoring options with them).


def minibatch_features(
    f: Tensor, T: Tensor, include_self: bool = False, mean: bool = True, twice_differentiable: bool = False
) -> Tensor:
    """Minibatch-discrimination features (Salimans et al. 2016, s.3.2): ``[n, A], [A, B, C] -> [n, B]``.

    ``M_i = f(x_i) T`` in ``R^{B x C}`` (one row ``M_{i,b}`` per kernel ``b``),
    ``c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_L1)``, and the paper's ``o(x_i)_b = sum_{j=1..n} c_b(x_i, x_j)``.

    ``include_self=True, mean=False`` is the paper's sum exactly; its ``j = i`` term is ``exp(0) = 1`` for every
    sample. The defaults (what :class:`MinibatchDiscrimination` computes) leave that term out, as Salimans et
    al.'s code does (it adds ``1e6`` to the diagonal of the distances), and divide by the ``n - 1`` other
    samples: ``o(x_i)_b = 1/(n-1) sum_{j != i} c_b(x_i, x_j)``, in ``[0, 1]`` whatever the batch size (1: every
    other sample identical in kernel ``b``; 0: all far apart). Both are affine maps of the paper's ``o`` with
    constants fixed by the batch size, which the next layer's weights and bias absorb; the mean keeps the
    decoder's or output layer's inputs of order 1 for batches of 64 to 256 (the paper's code reaches the same
    end with a data-dependent initialisation and a learned bias). A batch of one sample gives 0.

    The L1 distances come from ``torch.cdist``, which has no second derivative; ``twice_differentiable=True``
    computes them by broadcasting instead (slower, same values up to rounding), for the gradient penalties that
    backpropagate through a gradient (WGAN-GP, the loss-sensitive GAN's regulariser).

    Worked value: rows ``f = [[1, 0], [0, 1], [1, 1]]``, ``T[:, 0, :] = [[1, 0], [0, 1]]`` (kernel 0: ``M = f``),
    ``T[:, 1, :] = [[1, 1], [0, 0]]`` (kernel 1: ``M = [f_0, f_0]``). Kernel 0's L1 distances are 2 (rows 1, 2),
    1 (1, 3), 1 (2, 3); kernel 1's are 2, 0, 2. So ``o(x_1) = [(e^-2 + e^-1)/2, (e^-2 + 1)/2] =
    [0.251607, 0.567668]``, ``o(x_2) = [(e^-2 + e^-1)/2, e^-2] = [0.251607, 0.135335]``, ``o(x_3) = [e^-1,
    (1 + e^-2)/2] = [0.367879, 0.567668]``; the paper's sum gives ``1 + 2 o`` (``[1.503215, 2.135335]`` for
    ``x_1``).
    """
    if f.dim() != 2 or T.dim() != 3 or f.shape[1] != T.shape[0]:
        raise ValueError(f"features [n, A] and T [A, B, C] expected, got {tuple(f.shape)} and {tuple(T.shape)}")
    n, (a, b, c) = f.shape[0], T.shape
    M = (f @ T.reshape(a, b * c)).view(n, b, c).transpose(0, 1)  # [B, n, C]: kernel b's rows M_{i,b}
    if twice_differentiable:
        # [B, n, n]; c >= 1, so the sum is a tensor
        dist = cast(Tensor, sum((M[:, :, None, k] - M[:, None, :, k]).abs() for k in range(c)))
    else:
        dist = torch.cdist(M, M, p=1)  # [B, n, n]: ||M_{i,b} - M_{j,b}||_L1
    close = torch.exp(-dist)  # c_b(x_i, x_j)
    if not include_self:
        close = close.masked_fill(torch.eye(n, dtype=torch.bool, device=f.device), 0.0)
    o = close.sum(2).t()  # [n, B]
    if mean:
        o = o / max(n - (0 if include_self else 1), 1)
    return o


class MinibatchDiscrimination(nn.Module):
    """``f [n, A] -> o [n, B]``, :func:`minibatch_features` with a learned ``T`` ``[A, B, C]`` (the parameter
    ``T``, saved with D's weights).

    ``T`` starts ``N(0, 1/A)``, so that ``M_{i,b,c}`` is of the order of the features' root-mean-square and the
    kernels start in the range where ``exp(-L1)`` has a gradient (Salimans et al. start from ``N(0, 0.05^2)``
    with weight normalisation and rescale on the first batch; here D learns T's scale from there). Computed in
    float32 whatever the autocast. In eval mode it refuses to run: its output depends on the batch, so a
    per-sample energy or score is not defined. ``twice_differentiable``: see :func:`minibatch_features` (set
    by ``build_networks`` for the losses with a gradient penalty)."""

    def __init__(self, in_features: int, kernels: int, dim: int, twice_differentiable: bool = False) -> None:
        super().__init__()
        self.in_features, self.kernels, self.dim = in_features, kernels, dim
        self.twice_differentiable = twice_differentiable
        self.T = nn.Parameter(torch.randn(in_features, kernels, dim) / math.sqrt(in_features))

    def forward(self, f: Tensor) -> Tensor:
        if not self.training:
            raise EbganError(
                "this discriminator uses minibatch discrimination (mbd_kernels > 0): its output for a "
                "sample depends on the rest of its batch, so per-sample energies and scores (ebgan "
                "score, thresholds, energy rejection, the energy landscape) are not defined for it"
            )
        dev = f.device.type  # float32 under autocast (a meta tensor, describe_networks, has no autocast)
        with torch.autocast(dev, enabled=False) if dev in ("cpu", "cuda") else contextlib.nullcontext():
            return minibatch_features(f.float(), self.T.float(), twice_differentiable=self.twice_differentiable)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, kernels={self.kernels}, dim={self.dim}"


def has_minibatch_features(D: nn.Module) -> bool:
    """Whether ``D`` computes minibatch-discrimination features (cached: a net's layers never change)."""
    cached = getattr(D, "_ebgan_has_mbd", None)
    if cached is None:
        cached = any(isinstance(m, MinibatchDiscrimination) for m in D.modules())
        D._ebgan_has_mbd = cached  # type: ignore[assignment]  # a plain attribute (typed for tensors, modules)
    return cached


def ae_energy(D: nn.Module) -> str:
    """The energy (``"l2"``, ``"l1"``, ...) of an auto-encoder discriminator, packed (:class:`Packed`) or not."""
    energy = getattr(D, "energy", None)
    if not isinstance(energy, str):
        raise EbganError(f"this discriminator ({type(D).__name__}) is no auto-encoder: it has no energy")
    return energy


def pack_samples(x: Tensor, m: int) -> Tensor:
    """PacGAN packs: ``[N, C, H, W] -> [N/m, m*C, H, W]`` (images) or ``[N, P] -> [N/m, m*P]`` (vectors).

    Pack ``k`` holds samples ``k*m .. k*m + m - 1`` of the batch, in order: member ``j`` of a pack is its
    channels ``j*C .. j*C + C - 1`` (features ``j*P .. j*P + P - 1``). E.g. points ``[[0, 1], [2, 3], [4, 5],
    [6, 7]]`` with ``m = 2`` give ``[[0, 1, 2, 3], [4, 5, 6, 7]]``. A reshape: no copy for a contiguous batch,
    and gradients flow back to every member."""
    if m == 1:
        return x
    if x.dim() < 2 or x.shape[0] % m:
        raise EbganError(f"packs of {m} need a batch whose size is a multiple of {m}, got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])


def unpack_samples(x: Tensor, m: int) -> Tensor:
    """The inverse of :func:`pack_samples`: ``[N/m, m*C, ...] -> [N, C, ...]``."""
    if m == 1:
        return x
    return x.reshape(x.shape[0] * m, x.shape[1] // m, *x.shape[2:])


class Packed(nn.Module):
    """PacGAN's packed discriminator (Lin et al. 2018): ``x [N, ...] -> (value [N/m], code [N/m, d])``.

    ``inner`` is an ordinary discriminator built for packed samples (``m*C`` channels or ``m*P`` features: the
    first layer, and the auto-encoder's last, are m times wider); this wrapper forms the packs of ``m``
    consecutive samples (:func:`pack_samples`) of whatever batch it is given and scores each pack. PacGAN
    concatenates m independently drawn samples; consecutive samples of a shuffled batch (and of a batch of
    generated samples) are exactly that. For the auto-encoder the value is the reconstruction error of the packed
    input (the EBGAN objective scales the margin: :func:`ebgan.losses.pack_margin_scale`) and ``code`` is the
    pack's code (what the pulling-away term repels). Refuses eval mode (no per-sample energy);
    :meth:`copies` scores a pack of ``m`` copies of each sample instead (the 2-D energy landscape)."""

    def __init__(self, inner: nn.Module, m: int) -> None:
        super().__init__()
        self.inner, self.m = inner, m

    @property
    def head(self) -> str | None:
        return getattr(self.inner, "head", None)

    @property
    def energy(self) -> str | None:
        return getattr(self.inner, "energy", None)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.training:
            raise EbganError(
                f"this discriminator scores packs of {self.m} samples (pack={self.m}): per-sample "
                "energies and scores (ebgan score, thresholds, energy rejection) are not defined for it"
            )
        return self.inner(pack_samples(x, self.m))

    def copies(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """D's value on a pack of ``m`` copies of each sample, ``[N, ...] -> [N]`` (any mode)."""
        return self.inner(pack_samples(x.repeat_interleave(self.m, dim=0), self.m))


class PackOfCopies(nn.Module):
    """``x -> packed.copies(x)``: a packed D as a function of one sample (for plots of D over the plane)."""

    def __init__(self, packed: Packed) -> None:
        super().__init__()
        self.packed = packed

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.packed.copies(x)


def _maybe_sn(layer: nn.Module, spectral_norm: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer


# ----------------------------------------------------------------------------------------------------------
# Fully connected nets (docs/paper.md s.1, MNIST grid): ReLU, batch norm after every weight layer except the
# generator's output and the discriminator's input and output.


class MLPGenerator(nn.Module):
    """``z [N, z_dim] -> x [N, *sample_shape]`` with ``n_layers`` weight layers of width ``size``."""

    def __init__(
        self, z_dim: int, sample_shape: tuple[int, ...], n_layers: int, size: int, batch_norm: bool, out_act: str
    ) -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        layers: list[nn.Module] = []
        d = z_dim
        for _ in range(n_layers - 1):
            layers += [nn.Linear(d, size)]
            if batch_norm:
                layers += [nn.BatchNorm1d(size)]
            layers += [nn.ReLU(inplace=True)]
            d = size
        layers += [nn.Linear(d, math.prod(self.sample_shape))]
        if out_act == "tanh":  # images live in [-1, 1]
            layers += [nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.sample_shape)


def _mlp_encoder(
    in_dim: int, n_layers: int, size: int, batch_norm: bool, dropout: float, spectral_norm: bool
) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = in_dim
    for i in range(n_layers):
        layers += [_maybe_sn(nn.Linear(d, size), spectral_norm)]
        if batch_norm and i > 0:  # no batch norm on the discriminator's input layer
            layers += [nn.BatchNorm1d(size)]
        layers += [nn.ReLU(inplace=True)]
        if dropout > 0:
            layers += [nn.Dropout(dropout)]
        d = size
    return nn.Sequential(*layers)


class AEDiscriminator(nn.Module):
    """Auto-encoder discriminator: ``x -> (energy [N], code [N, d])`` (EBGAN s.2.3).

    With ``mbd`` (minibatch discrimination), the batch's features ``o = mbd(code) [N, B]`` are appended to the
    code before decoding: as ``B`` more inputs of the decoder's first linear layer when the code is a vector,
    as ``B`` constant planes beside the code's feature maps (the decoder's first transposed convolution takes
    ``code_ch + B`` channels) when it is a map. Appending them to the code is the auto-encoder's counterpart of
    "before the output layer": the energy is the reconstruction error, so ``o`` must reach the decoder to change
    it, and the decoder can then learn to reconstruct a batch whose samples are all alike badly, which is the
    high energy the margin loss asks for a collapsed generator's batch. Planes carry a per-sample vector into a
    convolutional decoder the way class labels enter the conv encoder (:class:`Conditioned`): every position
    sees it. ``code`` (what the pulling-away term repels) stays the encoder's output alone.
    """

    head = "ae"

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, energy: str, mbd: MinibatchDiscrimination | None = None
    ) -> None:
        super().__init__()
        self.encoder, self.decoder, self.energy = encoder, decoder, energy
        self.mbd = mbd

    def _decoder_input(self, code: Tensor) -> Tensor:
        if self.mbd is None:
            return code
        o = self.mbd(code.flatten(1)).to(code.dtype)  # [N, B]
        if code.dim() == 4:  # feature maps: one constant plane per kernel
            o = o[:, :, None, None].expand(-1, -1, code.shape[2], code.shape[3])
        return torch.cat([code, o], dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        code = self.encoder(x)
        recon = self.decoder(self._decoder_input(code)).view_as(x)
        return reconstruction_energy(recon, x, self.energy), code.flatten(1)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self._decoder_input(self.encoder(x))).view_as(x)


class LogitDiscriminator(nn.Module):
    """Scalar-output discriminator or critic: ``x -> (score [N], features [N, d])``.

    With ``mbd`` (minibatch discrimination), the output layer reads ``[features, o]`` with ``o = mbd(features)
    [N, B]`` (Salimans et al. 2016, s.3.2: "concatenate o(x_i) with f(x_i) and feed into the next layer");
    the features returned stay the encoder's own."""

    head = "logit"

    def __init__(
        self, encoder: nn.Module, feature_dim: int, spectral_norm: bool, mbd: MinibatchDiscrimination | None = None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.mbd = mbd
        extra = mbd.kernels if mbd is not None else 0
        self.out = _maybe_sn(nn.Linear(feature_dim + extra, 1), spectral_norm)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.encoder(x).flatten(1)
        if self.mbd is None:
            return self.out(feats).squeeze(1), feats
        o = self.mbd(feats).to(feats.dtype)
        return self.out(torch.cat([feats, o], dim=1)).squeeze(1), feats


# ----------------------------------------------------------------------------------------------------------
# Convolutional nets, one family for 28 to 256 pixels. 28 px starts from 7x7, the others from 4x4. Up to 64 px
# the generator is DCGAN's (its last 4x4 stride-2 transposed convolution makes the image); from 128 px it is
# the paper's ImageNet generator, (1024)4c-(512)4c2s-(256)4c2s-(128)4c2s-(64)4c2s-(64)4c2s-(3)3c at 128 and
# one (64)4c2s layer more at 256: every upsampling is a hidden layer, feature maps are capped at
# ``G_MAX_CHANNELS`` and floored at ``g_channels``, and a 3x3 convolution makes the image. ``g_noise_planes``
# concatenates that many planes of Gaussian noise to the input of every layer after the first (the paper's
# "noise planes injected at every layer"). The auto-encoder D is the paper's 64-px one extended by the same
# rule: strided 4x4 convolutions doubling the maps (capped at D_MAX_CHANNELS) down to 8x8 (7x7 at 28 px),
# and transposed ones back up.

G_MAX_CHANNELS = 1024
D_MAX_CHANNELS = 512


def _conv_plan(size: int) -> tuple[int, int]:
    """``(base, n_up)``: the generator's starting resolution and number of 2x upsamplings."""
    if size == 28:
        return 7, 2
    if size in CONV_SIZES:
        return 4, int(math.log2(size // 4))
    raise EbganError(f"conv nets support {', '.join(map(str, CONV_SIZES))} pixels, got {size}")


class NoisePlanes(nn.Module):
    """Concatenates ``k`` planes of standard Gaussian noise to a feature map ``[N, C, H, W] -> [N, C+k, H, W]``.

    The noise comes from the global RNG (saved in checkpoints, so training resumes exactly); sampling with a
    seed wraps G in :func:`seeded_noise` so that the same seed gives the same images."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, h: Tensor) -> Tensor:
        n, _, height, width = h.shape
        return torch.cat([h, torch.randn(n, self.k, height, width, device=h.device, dtype=h.dtype)], dim=1)


def has_noise_planes(net: nn.Module) -> bool:
    return any(isinstance(m, NoisePlanes) for m in net.modules())


def seeded_noise(net: nn.Module, seed: int, device: torch.device | str = "cpu"):
    """A context in which ``net``'s noise planes draw from the global RNG seeded with ``seed``; the global
    RNG state is restored afterwards (a no-op context for a net without noise planes)."""
    import contextlib

    if not has_noise_planes(net):
        return contextlib.nullcontext()
    device = torch.device(device)

    @contextlib.contextmanager
    def ctx():
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            yield

    return ctx()


def generator_channels(size: int, width: int) -> list[int]:
    """Feature maps of the generator's hidden layers, base first (see the section comment)."""
    _, n_up = _conv_plan(size)
    if size < 128:  # DCGAN: width * 2^(n_up-1) at the base, halving to width; the output layer upsamples last
        return [width * 2 ** (n_up - 1 - i) for i in range(n_up)]
    # the paper's: n_up hidden upsamplings after the base, halving from width * 2^(n_up-1) down to width
    return [int(max(width, min(G_MAX_CHANNELS, width * 2 ** (n_up - 1 - i)))) for i in range(n_up + 1)]


class ConvGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, size: int, width: int, noise_planes: int = 0) -> None:
        super().__init__()
        base, n_up = _conv_plan(size)
        chans = generator_channels(size, width)
        k = noise_planes
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, chans[0], base, 1, 0, bias=False),
            nn.BatchNorm2d(chans[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            if k:
                layers.append(NoisePlanes(k))
            layers += [
                nn.ConvTranspose2d(c_in + k, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        if k:
            layers.append(NoisePlanes(k))
        if size >= 128:  # every upsampling was a hidden layer: a 3x3 convolution makes the image
            layers += [nn.Conv2d(chans[-1] + k, channels, 3, 1, 1), nn.Tanh()]
        else:
            layers += [nn.ConvTranspose2d(chans[-1] + k, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


def _conv_encoder(
    channels: int, size: int, width: int, batch_norm: bool, dropout: float, spectral_norm: bool
) -> tuple[nn.Sequential, int, int]:
    """Strided 4x4 convolutions down to 7x7 (28 px) or 8x8 (32-256 px): ``(encoder, out_channels, out_size)``."""
    _conv_plan(size)
    n_down = 2 if size == 28 else int(math.log2(size // 8))
    layers: list[nn.Module] = []
    c_in, ch = channels, width
    for i in range(n_down):
        layers += [_maybe_sn(nn.Conv2d(c_in, ch, 4, 2, 1), spectral_norm)]
        if batch_norm and i > 0:
            layers += [nn.BatchNorm2d(ch)]
        layers += [nn.LeakyReLU(0.2, inplace=True)]
        if dropout > 0:
            layers += [nn.Dropout(dropout)]
        c_in, ch = ch, min(ch * 2, D_MAX_CHANNELS)
    return nn.Sequential(*layers), c_in, size // 2**n_down


def _conv_decoder(code_channels: int, channels: int, n_up: int, batch_norm: bool, extra_in: int = 0) -> nn.Sequential:
    """Transposed 4x4 convolutions halving the maps up to ``channels``; the first also reads ``extra_in`` more
    input channels (minibatch-discrimination planes)."""
    layers: list[nn.Module] = []
    ch, extra = code_channels, extra_in
    for _ in range(n_up - 1):
        layers += [nn.ConvTranspose2d(ch + extra, ch // 2, 4, 2, 1)]
        if batch_norm:
            layers += [nn.BatchNorm2d(ch // 2)]
        layers += [nn.ReLU(inplace=True)]
        ch, extra = ch // 2, 0
    layers += [nn.ConvTranspose2d(ch + extra, channels, 4, 2, 1)]
    return nn.Sequential(*layers)


def _dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2015): conv weights N(0, 0.02), BN weights N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            p = getattr(m, "parametrizations", None)  # spectral norm: initialise the original weight
            w = p.weight.original if p is not None else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# BEGAN's auto-encoder has a code narrower than its input (Berthelot et al. 2017: h = 64 for 64x64x3 images),
# so that it cannot reconstruct everything equally well. Measured on MNIST (BENCHMARKS.md, loss comparison):
# IS 1.00 without it (one image), 1.92 with it; on the 2-D mixtures BEGAN collapses to one mode either way.
BEGAN_CODE = {"points": 1, "images": 64}


def code_size(cfg: Config, sample_shape: tuple[int, ...]) -> int:
    """Units of the auto-encoder's bottleneck code (0: none): ``cfg.d_code``, or the loss's default when None."""
    if cfg.d_code is not None:
        return cfg.d_code
    if cfg.loss == "began":
        return BEGAN_CODE["points" if len(sample_shape) == 1 else "images"]
    return 0


def build_networks(
    cfg: Config, sample_shape: tuple[int, ...], head: str, energy: str | None = None, n_classes: int = 0
) -> tuple[nn.Module, nn.Module]:
    """``(G, D)`` for ``cfg`` and samples of ``sample_shape`` (``(2,)`` points or ``(C, H, W)`` images).

    ``head`` is ``"ae"`` (auto-encoder D) or ``"logit"`` (scalar D); both share the backbone sizes. ``energy``
    overrides ``cfg.energy`` for the auto-encoder (an objective's :attr:`~ebgan.objectives.Objective.energy`:
    BEGAN's ``L(v) = |v - D(v)|`` is ``"l1"`` whatever the config says). With ``cfg.conditional``, ``n_classes``
    one-hot inputs are added to G's noise and D's input (:class:`Conditioned`). ``cfg.mbd_kernels > 0`` gives D
    minibatch-discrimination features (:class:`MinibatchDiscrimination`, appended before the output layer or,
    for the auto-encoder, to the code); ``cfg.pack = m > 1`` builds D for packs of m samples and wraps it in
    :class:`Packed`.
    """
    energy = energy or cfg.energy
    points = len(sample_shape) == 1
    if cfg.arch == "lapgan":
        if points or head != "logit" or sample_shape[1] != sample_shape[2]:
            raise EbganError(
                "arch=lapgan needs square images and a loss with a scalar discriminator (nsgan, gan, "
                "lsgan, wgan, wgan-gp, hinge, loss-sensitive)"
            )
        if cfg.pack > 1 or cfg.mbd_kernels:
            raise EbganError("arch=lapgan does not combine with pack or mbd_kernels")
        c, size = sample_shape[0], sample_shape[1]
        return (
            LapGenerator(cfg.z_dim, c, size, cfg.g_channels, cfg.batch_norm),
            LapDiscriminator(c, size, cfg.d_channels, cfg.d_dropout, cfg.spectral_norm),
        )
    G, D = _build_networks(cfg, sample_shape, head, energy, n_classes)
    return (G, Packed(D, cfg.pack)) if cfg.pack > 1 else (G, D)


def _build_networks(
    cfg: Config, sample_shape: tuple[int, ...], head: str, energy: str, n_classes: int
) -> tuple[nn.Module, nn.Module]:
    points = len(sample_shape) == 1
    sn = cfg.spectral_norm
    code = code_size(cfg, sample_shape)
    c_in = n_classes if cfg.conditional else 0
    if cfg.conditional and n_classes < 2:
        raise EbganError(f"conditional=true needs at least 2 classes, got {n_classes}")
    m, B = cfg.pack, cfg.mbd_kernels
    if m > 1 and c_in:
        raise EbganError("pack > 1 does not combine with conditional=true")

    # The gradient penalties backpropagate through a gradient of D: its minibatch features must be twice
    # differentiable.
    twice = cfg.loss == "wgan-gp" or (cfg.loss == "loss-sensitive" and cfg.ls_gp > 0)

    def mbd(features: int) -> MinibatchDiscrimination | None:
        return MinibatchDiscrimination(features, B, cfg.mbd_dim, twice) if B else None

    G: nn.Module
    enc: nn.Module
    if cfg.arch == "mlp":
        G = MLPGenerator(
            cfg.z_dim + c_in,
            sample_shape,
            cfg.g_layers,
            cfg.g_size,
            cfg.batch_norm,
            out_act="none" if points else "tanh",
        )
        in_dim = m * math.prod(sample_shape)  # a pack of m samples, concatenated (pack_samples)
        # nLayerD counts encoder layers plus the one decoder (or output) layer.
        body = nn.Sequential(
            nn.Flatten(), _mlp_encoder(in_dim + c_in, cfg.d_layers - 1, cfg.d_size, cfg.batch_norm, cfg.d_dropout, sn)
        )
        if head == "ae":  # (layers created in this order so that the initial weights stay those of before)
            d = code or cfg.d_size
            dec: nn.Module = _maybe_sn(nn.Linear(cfg.d_size + (0 if code else B), in_dim), sn)
            if code:  # a bottleneck: linear code, then a mirrored hidden layer before the output
                body.append(_maybe_sn(nn.Linear(cfg.d_size, code), sn))
                dec = nn.Sequential(_maybe_sn(nn.Linear(code + B, cfg.d_size), sn), nn.ReLU(inplace=True), dec)
        enc = body
        if c_in:
            G, enc = Conditioned(G, n_classes), Conditioned(enc, n_classes)
        if head == "ae":
            return G, AEDiscriminator(enc, dec, energy, mbd(d))
        return G, LogitDiscriminator(enc, cfg.d_size, sn, mbd(cfg.d_size))
    if points:
        raise EbganError("arch=conv needs image data; use arch=mlp for 2-D points")
    c, h, w = sample_shape
    if h != w:
        raise EbganError(f"conv nets need square images, got {h}x{w}")
    G = ConvGenerator(cfg.z_dim + c_in, c, h, cfg.g_channels, cfg.g_noise_planes)
    # A pack of m images is one image of m*c channels (pack_samples): D's first layer (and the auto-encoder's
    # last) are built for it.
    convs, code_ch, map_size = _conv_encoder(
        m * c + c_in, h, cfg.d_channels, cfg.batch_norm, cfg.d_dropout, cfg.spectral_norm
    )
    enc = convs
    flat = code_ch * map_size * map_size
    if head == "ae":
        n_up = int(round(math.log2(h / map_size)))
        # Minibatch features enter the decoder as B constant planes beside the code's maps, or as B more inputs
        # of its first linear layer after a bottleneck.
        dec = _conv_decoder(code_ch, m * c, n_up, cfg.batch_norm, extra_in=0 if code else B)
        if code:  # a bottleneck: the feature maps through a linear code of `code` units and back
            enc = nn.Sequential(*convs, nn.Flatten(), _maybe_sn(nn.Linear(flat, code), sn))
            dec = nn.Sequential(
                nn.Linear(code + B, flat), nn.ReLU(inplace=True), nn.Unflatten(1, (code_ch, map_size, map_size)), *dec
            )
        enc = Conditioned(enc, n_classes, planes=True) if c_in else enc
        D: nn.Module = AEDiscriminator(enc, dec, energy, mbd(code or flat))
    else:
        enc = Conditioned(enc, n_classes, planes=True) if c_in else enc
        D = LogitDiscriminator(enc, flat, cfg.spectral_norm, mbd(flat))
    _dcgan_init(G)
    _dcgan_init(D)
    if c_in:
        G = Conditioned(G, n_classes)
    return G, D


# ----------------------------------------------------------------------------------------------------------
# LAPGAN (Denton et al. 2015), the multi-scale model EBGAN's single-scale generation is set against: a
# Laplacian pyramid of the image, I_{k+1} = down(I_k) down to 8x8, h_k = I_k - up(I_{k+1}); a generator for
# the 8x8 image from z and, per finer level, a generator of the residual h_k from the upsampled coarser image
# (plus a noise plane); a discriminator per level, on the 8x8 image or on (h_k, up(I_{k+1})). Each level is
# trained on the real pyramid (ebgan.lapgan); sampling runs the chain coarse to fine, so G(z) gives images.
# down is 2x2 average pooling, up bilinear interpolation; any pair reconstructs exactly by construction.

LAPGAN_BASE = 8


def pyramid_down(x: Tensor) -> Tensor:
    return nn.functional.avg_pool2d(x, 2)


def pyramid_up(x: Tensor) -> Tensor:
    return nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def gaussian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[I_0 = x, I_1, ..., I_levels]``, each half the size of the one before."""
    out = [x]
    for _ in range(levels):
        out.append(pyramid_down(out[-1]))
    return out


def laplacian_pyramid(x: Tensor, levels: int) -> tuple[list[Tensor], Tensor]:
    """``([h_0, ..., h_{levels-1}], I_levels)``: the residuals, finest first, and the coarsest image."""
    g = gaussian_pyramid(x, levels)
    return [g[k] - pyramid_up(g[k + 1]) for k in range(levels)], g[-1]


def reconstruct_pyramid(residuals: list[Tensor], coarse: Tensor) -> Tensor:
    """The inverse of :func:`laplacian_pyramid`: ``I_k = up(I_{k+1}) + h_k`` from coarse to fine."""
    x = coarse
    for h in reversed(residuals):
        x = pyramid_up(x) + h
    return x


def lapgan_levels(size: int) -> int:
    if size < 16 or size & (size - 1):
        raise EbganError(f"arch=lapgan needs square images of 16, 32, 64, ... pixels, got {size}")
    return int(math.log2(size // LAPGAN_BASE))


class _LapLevelG(nn.Module):
    """The residual of one level from the upsampled coarser image and a noise plane: three 3x3 convolutions."""

    def __init__(self, channels: int, width: int, batch_norm: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [NoisePlanes(1), nn.Conv2d(channels + 1, width, 3, 1, 1)]
        layers += [nn.BatchNorm2d(width)] if batch_norm else []
        layers += [nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, 1, 1)]
        layers += [nn.BatchNorm2d(width)] if batch_norm else []
        layers += [nn.ReLU(inplace=True), nn.Conv2d(width, channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, cond: Tensor) -> Tensor:
        return self.net(cond)


class LapGenerator(nn.Module):
    """``z -> image``: the 8x8 image from z (an MLP), then per level ``I_k = up(I_{k+1}) + G_k(up(I_{k+1}))``."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int, batch_norm: bool) -> None:
        super().__init__()
        self.z_dim, self.channels, self.n_levels = z_dim, channels, lapgan_levels(size)
        hidden = [nn.Linear(z_dim, 512)] + ([nn.BatchNorm1d(512)] if batch_norm else []) + [nn.ReLU(inplace=True)]
        self.coarse = nn.Sequential(*hidden, nn.Linear(512, channels * LAPGAN_BASE**2), nn.Tanh())
        self.levels = nn.ModuleList(_LapLevelG(channels, width, batch_norm) for _ in range(self.n_levels))

    def coarse_image(self, z: Tensor) -> Tensor:
        return self.coarse(z).view(z.shape[0], self.channels, LAPGAN_BASE, LAPGAN_BASE)

    def forward(self, z: Tensor) -> Tensor:
        x = self.coarse_image(z)
        for k in reversed(range(self.n_levels)):
            cond = pyramid_up(x)
            x = cond + self.levels[k](cond)
        return x


class _LapLevelD(nn.Module):
    """A level's discriminator on ``(h_k, up(I_{k+1}))`` stacked as channels: a 3x3 and two strided 4x4
    convolutions, then one linear output; ``-> (score [N], features [N, d])``."""

    def __init__(self, in_channels: int, size: int, width: int, dropout: float, spectral_norm: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            _maybe_sn(nn.Conv2d(in_channels, width, 3, 1, 1), spectral_norm),
            nn.LeakyReLU(0.2, inplace=True),
            _maybe_sn(nn.Conv2d(width, 2 * width, 4, 2, 1), spectral_norm),
            nn.LeakyReLU(0.2, inplace=True),
            _maybe_sn(nn.Conv2d(2 * width, 2 * width, 4, 2, 1), spectral_norm),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.encoder = nn.Sequential(*layers)
        self.out = _maybe_sn(nn.Linear(2 * width * (size // 4) ** 2, 1), spectral_norm)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.encoder(x)
        return self.out(feats).squeeze(1), feats


class LapDiscriminator(nn.Module):
    """One discriminator per pyramid level: ``levels[k]`` for the residual level k (finest first) and ``coarse``
    for the 8x8 image (ebgan.lapgan trains them). Called on whole images it sums the levels' scores on the
    images' own pyramid (a summary; training never uses it)."""

    head = "logit"

    def __init__(self, channels: int, size: int, width: int, dropout: float, spectral_norm: bool) -> None:
        super().__init__()
        self.n_levels = lapgan_levels(size)
        self.levels = nn.ModuleList(
            _LapLevelD(2 * channels, size // 2**k, width, dropout, spectral_norm) for k in range(self.n_levels)
        )
        self.coarse = _LapLevelD(channels, LAPGAN_BASE, width, dropout, spectral_norm)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        g = gaussian_pyramid(x, self.n_levels)
        score, feats = self.coarse(g[-1])
        all_feats = [feats]
        for k in range(self.n_levels):
            cond = pyramid_up(g[k + 1])
            s, f = self.levels[k](torch.cat([g[k] - cond, cond], dim=1))
            score, all_feats = score + s, all_feats + [f]
        return score, torch.cat(all_feats, dim=1)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def describe_networks(cfg: Config, sample_shape: tuple[int, ...], head: str) -> dict[str, float]:
    """Parameter counts of G and D and the floating-point operations of one training iteration at
    ``cfg.batch_size`` (``d_steps`` D updates on a real and a generated batch, then one G update; forward and
    backward), counted by ``torch.utils.flop_counter`` on shape-only (meta) tensors, so that even a 256-pixel
    model is described in a moment without allocating it. Unconditional nets; the pulling-away term, the
    pairwise distances of minibatch discrimination and the losses' own arithmetic are not counted (a fraction of a
    percent for conv nets). For ``arch=lapgan`` G runs its whole coarse-to-fine chain and D scores every level of
    the images' pyramid, which is the training step's work up to that bookkeeping."""
    from torch.utils.flop_counter import FlopCounterMode

    B = cfg.batch_size
    with torch.device("meta"):
        G, D = build_networks(cfg, sample_shape, head)
        z = torch.randn(B, cfg.z_dim)
        x = torch.randn(B, *sample_shape)
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            fake = G(z)
        real_out, _ = D(x)
        fake_out, _ = D(fake)
        (real_out.sum() + fake_out.sum()).backward()
        d_flops = counter.get_total_flops()
        D.requires_grad_(False)  # as in the trainer's G update: no weight gradients for D
        out, _ = D(G(z))
        out.sum().backward()
        g_flops = counter.get_total_flops() - d_flops
    d_steps = cfg.d_steps or 1
    return {
        "params_g": count_parameters(G),
        "params_d": count_parameters(D),
        "flops_per_step": d_steps * d_flops + g_flops,
    }
