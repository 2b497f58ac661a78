"""The Ladder Network (Rasmus et al. 2015) for permutation-invariant MNIST, and EBGAN-LN's generator.

A Ladder Network is an MLP classifier with three paths sharing weights:

* the **clean encoder**: ``z_l = BN(W_l h_{l-1})``, ``h_l = act(gamma_l (z_l + beta_l))``, ``h_0 = x``;
* the **corrupted encoder**: the same with Gaussian noise (std 0.3) added to the input and to every
  normalised pre-activation, ``z~_l = BN(W_l h~_{l-1}) + noise``, before the bias;
* the **decoder**, top-down from the corrupted output: ``u_L = BN(h~_L)``, ``u_l = BN(V_{l+1} z^_{l+1})``, and
  per unit the vanilla ("gauss") combinator ``z^_l = g(z~_l, u_l)`` with 10 parameters
  (:func:`combinator`).

Its cost is the supervised cross-entropy of the corrupted output on labelled images plus, per layer, the
denoising cost ``lambda_l / width_l * sum_units (z^_l,BN - z_l)^2`` averaged over the unlabelled batch, where
``z^_l,BN`` is ``z^_l`` normalised with the clean path's batch statistics of that layer (layer 0, the
pixels, is not normalised). ReLU layers have no learned scale (``gamma = 1``); the softmax layer has one. At
test time the clean path runs with population statistics (:meth:`Ladder.set_population_stats`).

Batch normalisation is computed per *segment* of a batch: the labelled, unlabelled and (EBGAN-LN) generated
images of one step go through the network as one matrix product but are normalised with their own
statistics, as in the reference code, so that a small labelled batch or the generator's samples never shift
the unlabelled batch's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LAYERS = (784, 1000, 500, 250, 250, 250, 10)
BN_EPS = 1e-10  # the reference code's epsilon; every unit's variance is far above it on MNIST


def combinator(a: Tensor, z_tilde: Tensor, u: Tensor) -> Tensor:
    """The vanilla combinator: ``mu = a1 sigmoid(a2 u + a3) + a4 u + a5``,
    ``v = a6 sigmoid(a7 u + a8) + a9 u + a10``, ``z^ = (z~ - mu) v + mu``; ``a`` is ``[10, width]``."""
    mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
    return (z_tilde - mu) * v + mu


def _moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-unit batch mean and (biased) variance."""
    var, mean = torch.var_mean(x, dim=0, unbiased=False)
    return mean, var


def _normalise(x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    return (x - mean) * torch.rsqrt(var + BN_EPS)


def _bn_segments(x: Tensor, sizes: list[int]) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """Batch-normalise each segment of the rows of ``x`` with its own statistics."""
    if len(sizes) == 1:
        m, v = _moments(x)
        return _normalise(x, m, v), [(m, v)]
    outs, stats = [], []
    for part in torch.split(x, sizes):
        m, v = _moments(part)
        outs.append(_normalise(part, m, v))
        stats.append((m, v))
    return torch.cat(outs), stats


@dataclass
class EncoderPass:
    """What one encoder pass leaves for the decoder and the costs: the clean input ``x``, per layer
    ``l = 0..L`` the normalised pre-activations ``z[l]`` (``z[0]`` the input, with noise on the corrupted
    path), per layer ``l >= 1`` and segment the batch statistics ``stats[l][s]``, and the top layer's logits."""

    x: Tensor
    z: list[Tensor]
    stats: list[list[tuple[Tensor, Tensor]]]
    logits: Tensor


class Ladder(nn.Module):
    """A Ladder Network ``784-1000-500-250-250-250-10`` (``layers`` changes it; tests use small ones).

    ``forward(x)`` is the test-time classifier: the clean path with population statistics, returning logits.
    Training uses :meth:`encode` and :meth:`decode` (see :func:`ebgan.semisup.recipe.ladder_costs`).
    """

    def __init__(self, layers: tuple[int, ...] = LAYERS, noise_std: float = 0.3) -> None:
        super().__init__()
        self.layers = tuple(int(n) for n in layers)
        self.noise_std = float(noise_std)
        L = len(self.layers) - 1
        W = [nn.Linear(self.layers[i], self.layers[i + 1], bias=False) for i in range(L)]
        V = [nn.Linear(self.layers[i + 1], self.layers[i], bias=False) for i in range(L)]
        self.W, self.V = nn.ModuleList(W), nn.ModuleList(V)
        self.beta = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in self.layers[1:])
        self.gamma_top = nn.Parameter(torch.ones(self.layers[-1]))  # the softmax layer's scale
        a = torch.zeros(10)
        a[1] = a[6] = 1.0  # a2 = a7 = 1, the others 0 (the reference initialisation)
        self.comb = nn.ParameterList(nn.Parameter(a[:, None].repeat(1, n)) for n in self.layers)
        for i in range(L):
            self.register_buffer(f"pop_mean_{i + 1}", torch.zeros(self.layers[i + 1]))
            self.register_buffer(f"pop_var_{i + 1}", torch.ones(self.layers[i + 1]))
        for lin in W + V:
            # Weights ~ N(0, 1/fan_in), as the reference code initialises them.
            nn.init.normal_(lin.weight, std=lin.in_features**-0.5)

    @property
    def depth(self) -> int:
        return len(self.layers) - 1

    def _activate(self, l: int, z: Tensor) -> Tensor:
        """``h_l`` from the (noisy) normalised pre-activation: bias, then ReLU, or scale and logits on top."""
        if l == self.depth:
            return self.gamma_top * (z + self.beta[l - 1])
        return F.relu(z + self.beta[l - 1])

    def draw_noise(self, rows: int, noise: float, generator: torch.Generator | None = None) -> list[Tensor] | None:
        """The corrupted path's Gaussian noise for ``rows`` images: one ``[rows, width]`` tensor per layer, the
        input first, drawn from ``generator`` in that order; None when ``noise`` is 0 (the clean path).

        Drawn apart from :meth:`encode` so that the pass itself is a pure function of its tensors, which
        ``torch.compile`` can trace whole (a generator object is not traceable)."""
        if noise <= 0:
            return None
        w = self.W[0].weight
        assert isinstance(w, Tensor)
        return [
            noise * torch.randn((rows, n), generator=generator, device=w.device, dtype=w.dtype) for n in self.layers
        ]

    def encode(self, x: Tensor, sizes: list[int], noises: list[Tensor] | None = None) -> EncoderPass:
        """One encoder pass with batch statistics per segment (``sizes`` rows each); ``noises`` (from
        :meth:`draw_noise`) makes it the corrupted path. Returns logits, not probabilities, at the top."""
        h = x if noises is None else x + noises[0]
        zs: list[Tensor] = [h]
        stats: list[list[tuple[Tensor, Tensor]]] = [[]]
        for l in range(1, self.depth + 1):
            z, st = _bn_segments(self.W[l - 1](h), sizes)
            if noises is not None:
                z = z + noises[l]
            zs.append(z)
            stats.append(st)
            h = self._activate(l, z)
        return EncoderPass(x, zs, stats, h)

    def decode(
        self,
        corrupted: EncoderPass,
        segment: int,
        sizes: list[int],
        weights: list[float],
        clean: EncoderPass | None = None,
    ) -> list[Tensor | None]:
        """The decoder on segment ``segment`` of a corrupted pass; returns per layer the per-sample denoising
        cost ``sum_units (z^_BN - z)^2 / width`` (unweighted), or None where ``weights[l]`` is 0.

        ``clean`` is the clean pass over exactly that segment's images: it gives the targets and the batch
        statistics that normalise ``z^`` above the pixels. It may be None when only the bottom layer is
        weighted: the pixels are never normalised and their target is the clean input itself.
        """
        start = sum(sizes[:segment])
        rows = slice(start, start + sizes[segment])
        costs: list[Tensor | None] = [None] * (self.depth + 1)
        z_hat = None
        for l in range(self.depth, -1, -1):
            u = torch.softmax(corrupted.logits[rows], dim=1) if l == self.depth else self.V[l](z_hat)
            m, v = _moments(u)
            z_hat = combinator(self.comb[l], corrupted.z[l][rows], _normalise(u, m, v))
            if weights[l] == 0:
                continue
            if l == 0:
                z_hat_bn, target = z_hat, corrupted.x[rows]
            else:
                if clean is None:
                    raise ValueError(f"the cost of layer {l} needs the clean pass")
                cm, cv = clean.stats[l][0]
                z_hat_bn, target = _normalise(z_hat, cm, cv), clean.z[l]
            costs[l] = (z_hat_bn - target).pow(2).sum(dim=1) / self.layers[l]
        return costs

    # -- test time --------------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Logits of the clean path with population statistics (call :meth:`set_population_stats` first)."""
        h = x
        for l in range(1, self.depth + 1):
            z = _normalise(self.W[l - 1](h), getattr(self, f"pop_mean_{l}"), getattr(self, f"pop_var_{l}"))
            h = self._activate(l, z)
        return h

    @torch.no_grad()
    def set_population_stats(self, x: Tensor, chunk: int = 10000) -> None:
        """Set every layer's population mean and variance from one clean pass over ``x`` (the training
        images), layer by layer: each layer's statistics are those of its input normalised with the layers
        below's population statistics, exactly what :meth:`forward` will see."""
        h = x
        for l in range(1, self.depth + 1):
            pre = torch.cat([self.W[l - 1](c) for c in torch.split(h, chunk)])
            var, mean = torch.var_mean(pre.double(), dim=0, unbiased=False)
            getattr(self, f"pop_mean_{l}").copy_(mean.float())
            getattr(self, f"pop_var_{l}").copy_(var.float())
            h = self._activate(l, _normalise(pre, mean.float(), var.float()))

    @torch.no_grad()
    def predict(self, x: Tensor, chunk: int = 10000) -> Tensor:
        """Class predictions of the clean path (population statistics)."""
        return torch.cat([self(c).argmax(dim=1) for c in torch.split(x, chunk)])


class MLPGenerator(nn.Module):
    """EBGAN-LN's generator for 784-d MNIST: ``z (100) - 500 - 500 - 784``, batch norm and softplus in the
    hidden layers, a sigmoid output (pixels in [0, 1] like the Ladder's input). This is the permutation-
    invariant MNIST generator of Salimans et al. (2016); the EBGAN paper does not give its own."""

    def __init__(self, z_dim: int = 100, hidden: tuple[int, ...] = (500, 500), out: int = 784) -> None:
        super().__init__()
        self.z_dim = z_dim
        mods: list[nn.Module] = []
        prev = z_dim
        for n in hidden:
            mods += [nn.Linear(prev, n), nn.BatchNorm1d(n), nn.Softplus()]
            prev = n
        mods += [nn.Linear(prev, out), nn.Sigmoid()]
        self.net = nn.Sequential(*mods)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)
