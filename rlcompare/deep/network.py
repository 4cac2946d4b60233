"""The Q-network of ``dqn``: an MLP whose parameters live in one flat tensor.

One flat tensor makes the optimizer, gradient clipping and target updates a single operation
each (no per-layer Python loops), and lets the online and target networks be two tensors of
the same layout. Layers read their weights as views into the flat tensor.

Two ways to get gradients, checked against each other in the tests:
- ``forward`` under autograd: any architecture (dueling head, NoisyNet layers).
- ``forward_cached`` + ``backward``: hand-written backward pass of the plain ReLU MLP, a few
  dense matrix products with no autograd bookkeeping; it is what makes ``dqn`` fast on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

# Fortunato et al. (2018), factorized Gaussian noise: sigma_0 / sqrt(fan_in).
NOISY_SIGMA0 = 0.5

_threshold_backward = torch.ops.aten.threshold_backward


@dataclass(frozen=True)
class LinearSlot:
    """Where one linear layer's tensors sit in the flat parameter vector (start offsets)."""

    in_features: int
    out_features: int
    weight: int
    bias: int
    weight_sigma: int | None = None
    bias_sigma: int | None = None
    transposed: bool = False

    @property
    def noisy(self) -> bool:
        return self.weight_sigma is not None


class Layer(NamedTuple):
    """Views of one layer's tensors in a flat vector (sigmas None for plain layers)."""

    weight: torch.Tensor  # (out, in), as F.linear takes it
    bias: torch.Tensor  # (out,)
    weight_sigma: torch.Tensor | None
    bias_sigma: torch.Tensor | None
    weight_t: torch.Tensor  # (in, out) view of weight, made once rather than per product


LayerViews = list[Layer]
# Per noisy layer: (eps_in (in,), eps_out (out,)) factorized noise.
Noise = list[tuple[torch.Tensor, torch.Tensor]]


class QNetwork:
    """Layout and maths of an MLP Q-network: ``(B, in_dim) -> (B, n_actions)``.

    Args:
        in_dim: Length of an encoded observation.
        n_actions: Number of discrete actions.
        net_arch: Hidden layer sizes (ReLU after each, as Stable-Baselines3's QNetwork).
        dueling: Value and advantage heads on the last hidden layer, Q = V + A - mean(A).
        noisy: Factorized NoisyNet layers everywhere instead of plain linear layers.
    """

    def __init__(
        self,
        in_dim: int,
        n_actions: int,
        net_arch: Sequence[int],
        *,
        dueling: bool = False,
        noisy: bool = False,
    ) -> None:
        self.in_dim, self.n_actions = in_dim, n_actions
        self.dueling, self.noisy = dueling, noisy
        self.size = 0
        sizes = [in_dim, *net_arch]
        # The first layer is stored (in, out): with few inputs, x @ W and x.T @ grad are then
        # plain contiguous products, several times faster than their transposed forms.
        self.trunk = [
            self._add(sizes[i], sizes[i + 1], transposed=i == 0) for i in range(len(net_arch))
        ]
        first = not net_arch
        if dueling:
            self.heads = [self._add(sizes[-1], 1, first), self._add(sizes[-1], n_actions, first)]
        else:
            self.heads = [self._add(sizes[-1], n_actions, first)]
        self.slots = [*self.trunk, *self.heads]

    def _add(self, in_features: int, out_features: int, transposed: bool) -> LinearSlot:
        count = in_features * out_features
        weight, bias = self.size, self.size + count
        self.size += count + out_features
        sigmas: tuple[int | None, int | None] = (None, None)
        if self.noisy:
            sigmas = (self.size, self.size + count)
            self.size += count + out_features
        return LinearSlot(in_features, out_features, weight, bias, *sigmas, transposed)

    @property
    def plain(self) -> bool:
        """Whether the hand-written backward pass applies (no dueling head, no noise)."""
        return not (self.dueling or self.noisy)

    def initial_parameters(self, generator: torch.Generator) -> torch.Tensor:
        """A flat float32 CPU vector: ``torch.nn.Linear``'s U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        for weights and biases; NoisyNet sigmas at sigma_0 / sqrt(fan_in)."""
        flat = torch.empty(self.size)
        for slot in self.slots:
            bound = 1.0 / math.sqrt(slot.in_features)
            count = slot.in_features * slot.out_features
            for start, length in ((slot.weight, count), (slot.bias, slot.out_features)):
                flat[start : start + length].uniform_(-bound, bound, generator=generator)
            if slot.noisy:
                end = slot.bias_sigma + slot.out_features  # type: ignore[operator]
                flat[slot.weight_sigma : end].fill_(NOISY_SIGMA0 * bound)
        return flat

    def views(self, flat: torch.Tensor) -> LayerViews:
        """Per-layer tensors viewing ``flat``, weights shaped (out, in) as ``F.linear`` takes
        them (a transposed view for layers stored (in, out)); gradients flow into ``flat``."""

        def view(start: int | None, shape: tuple[int, int] | tuple[int], transposed: bool):
            if start is None:
                return None
            if transposed:
                return flat[start : start + math.prod(shape)].view(shape[::-1]).t()
            return flat[start : start + math.prod(shape)].view(shape)

        layers = []
        for s in self.slots:
            weight = view(s.weight, (s.out_features, s.in_features), s.transposed)
            layers.append(
                Layer(
                    weight,  # type: ignore[arg-type]
                    view(s.bias, (s.out_features,), False),  # type: ignore[arg-type]
                    view(s.weight_sigma, (s.out_features, s.in_features), s.transposed),
                    view(s.bias_sigma, (s.out_features,), False),
                    weight.t(),  # type: ignore[union-attr]
                )
            )
        return layers

    def sample_noise(self, generator: torch.Generator, device: torch.device) -> Noise | None:
        """Fresh factorized noise f(x) = sign(x) sqrt(|x|) per layer, or None when not noisy."""
        if not self.noisy:
            return None

        def scaled(n: int) -> torch.Tensor:
            x = torch.randn(n, generator=generator, device=device)
            return x.sign().mul_(x.abs().sqrt_())

        return [(scaled(s.in_features), scaled(s.out_features)) for s in self.slots]

    def forward(
        self, x: torch.Tensor, views: LayerViews, noise: Noise | None = None
    ) -> torch.Tensor:
        """Q-values (B, n_actions); NoisyNet layers use ``noise`` or, when None, their means."""
        weights = []
        for index, (w, b, w_sigma, b_sigma, _) in enumerate(views):
            if noise is not None and w_sigma is not None:
                eps_in, eps_out = noise[index]
                w = w + w_sigma * torch.outer(eps_out, eps_in)
                b = b + b_sigma * eps_out
            weights.append((w, b))
        h = x
        for w, b in weights[: len(self.trunk)]:
            h = F.relu(F.linear(h, w, b))
        if not self.dueling:
            return F.linear(h, *weights[-1])
        value = F.linear(h, *weights[-2])
        advantage = F.linear(h, *weights[-1])
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def q_values(
        self, x: torch.Tensor, views: LayerViews, noise: Noise | None = None
    ) -> torch.Tensor:
        """Q-values without gradients, by the fastest route for this architecture."""
        with torch.no_grad():
            if self.plain:
                return self.forward_cached(x, views)[0]
            return self.forward(x, views, noise)

    # -- hand-written backward pass of the plain MLP ------------------------------------------
    def forward_cached(
        self, x: torch.Tensor, views: LayerViews
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Plain MLP forward (no autograd); returns Q (B, A) and each layer's input."""
        inputs = [x]
        h = x
        for layer in views[:-1]:
            h = torch.addmm(layer.bias, h, layer.weight_t).relu_()
            inputs.append(h)
        return torch.addmm(views[-1].bias, h, views[-1].weight_t), inputs

    def backward(
        self,
        inputs: list[torch.Tensor],
        grad_q: torch.Tensor,
        views: LayerViews,
        grad_views: LayerViews,
    ) -> None:
        """Writes d(sum(grad_q * Q))/d(parameters) into ``grad_views`` (every entry set).

        Args:
            inputs: Layer inputs saved by ``forward_cached``.
            grad_q: (B, n_actions) gradient of the loss with respect to the Q-values.
            views: Parameter views the forward pass used.
            grad_views: Views of the flat gradient tensor, same layout.
        """
        grad = grad_q
        for index in range(len(views) - 1, -1, -1):
            weight = views[index].weight
            grad_weight, grad_bias = grad_views[index].weight, grad_views[index].bias
            if grad_weight.is_contiguous():
                torch.mm(grad.t(), inputs[index], out=grad_weight)
            else:  # stored (in, out): write the contiguous transpose directly
                torch.mm(inputs[index].t(), grad, out=grad_weight.t())
            torch.sum(grad, 0, out=grad_bias)
            if index > 0:
                # ReLU: the gradient passes where the layer's output (next input) is positive.
                grad = _threshold_backward(grad @ weight, inputs[index], 0)
