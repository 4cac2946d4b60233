"""The Q-network of ``dqn``: an MLP whose parameters live in one flat tensor.

One flat tensor makes the optimizer, gradient clipping and target updates a single operation
each (no per-layer Python loops), and lets the online and target networks be two tensors of
the same layout. Layers read their weights as views into the flat tensor.

Two ways to get gradients, checked against each other in the tests:
- ``forward`` under autograd: the reference.
- ``forward_cached`` + ``backward``: a hand-written backward pass (ReLU trunk, plain or
  dueling head, plain or NoisyNet layers), a few dense matrix products with no autograd
  bookkeeping; it is what makes ``dqn`` fast on CPU, and what training uses.
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


class Effective(NamedTuple):
    """One layer as a forward pass uses it: the means, or mean + sigma * noise."""

    weight: torch.Tensor  # (out, in)
    weight_t: torch.Tensor  # (in, out)
    bias: torch.Tensor
    noise_outer: torch.Tensor | None  # outer(eps_out, eps_in) of a noisy layer given noise
    eps_out: torch.Tensor | None


class Cache(NamedTuple):
    """What the hand-written backward pass needs from the forward pass."""

    inputs: list[torch.Tensor]  # each layer's input (the trunk's ReLU outputs)
    layers: list[Effective]


class Workspace(NamedTuple):
    """Preallocated outputs of one batch size's forward and backward passes (reused by every
    gradient step, so a step allocates no activations)."""

    hidden: list[torch.Tensor]  # (B, width) ReLU outputs of the trunk's layers
    q: torch.Tensor  # (B, n_actions) Q-values (plain head)
    grad_hidden: list[torch.Tensor]  # (B, width) gradients with respect to the ReLU outputs
    grad_q: torch.Tensor  # (B, n_actions) CPU tensor: the loss's gradient, filled in numpy
    grad_q_np: object  # numpy view of grad_q


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
        # effective() without noise is the views themselves: built once per views list.
        self._plain: dict[int, tuple[LayerViews, list[Effective]]] = {}

    def workspace(self, batch: int, device: torch.device) -> Workspace:
        """Preallocated activations and gradients for batches of ``batch`` rows."""
        widths = [slot.out_features for slot in self.trunk]
        grad_q = torch.zeros(batch, self.n_actions)
        return Workspace(
            [torch.empty(batch, w, device=device) for w in widths],
            torch.empty(batch, self.n_actions, device=device),
            [torch.empty(batch, w, device=device) for w in widths],
            grad_q,
            grad_q.numpy(),
        )

    def _add(self, in_features: int, out_features: int, transposed: bool) -> LinearSlot:
        count = in_features * out_features
        weight, bias = self.size, self.size + count
        self.size += count + out_features
        sigmas: tuple[int | None, int | None] = (None, None)
        if self.noisy:
            sigmas = (self.size, self.size + count)
            self.size += count + out_features
        return LinearSlot(in_features, out_features, weight, bias, *sigmas, transposed)

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
        them (a transposed view for layers stored (in, out)); gradients flow into ``flat``.
        A stacked (S, P) ``flat`` (one row per seed) gives (S, out, in) weights and (S, out)
        biases."""
        lead = flat.shape[:-1]

        def view(start: int | None, shape: tuple[int, int] | tuple[int], transposed: bool):
            if start is None:
                return None
            block = flat[..., start : start + math.prod(shape)]
            if transposed:
                return block.view(*lead, *shape[::-1]).transpose(-2, -1)
            return block.view(*lead, *shape)

        layers = []
        for s in self.slots:
            weight = view(s.weight, (s.out_features, s.in_features), s.transposed)
            layers.append(
                Layer(
                    weight,  # type: ignore[arg-type]
                    view(s.bias, (s.out_features,), False),  # type: ignore[arg-type]
                    view(s.weight_sigma, (s.out_features, s.in_features), s.transposed),
                    view(s.bias_sigma, (s.out_features,), False),
                    weight.transpose(-2, -1),  # type: ignore[union-attr]
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
        """Q-values without gradients (the autograd-free route)."""
        return self.forward_cached(x, views, noise)[0]

    # -- hand-written backward pass ---------------------------------------------------------
    def effective(self, views: LayerViews, noise: Noise | None) -> list[Effective]:
        """Per layer the tensors the forward pass uses: the means, or mean + sigma * noise for
        NoisyNet layers given ``noise`` (keeping the noise product for the backward pass)."""
        if noise is None:
            cached = self._plain.get(id(views))
            if cached is not None and cached[0] is views:
                return cached[1]
        layers = []
        for index, layer in enumerate(views):
            if noise is None or layer.weight_sigma is None:
                layers.append(Effective(layer.weight, layer.weight_t, layer.bias, None, None))
                continue
            eps_in, eps_out = noise[index]
            outer = torch.outer(eps_out, eps_in)
            weight = torch.addcmul(layer.weight, layer.weight_sigma, outer)
            bias = torch.addcmul(layer.bias, layer.bias_sigma, eps_out)
            layers.append(Effective(weight, weight.t(), bias, outer, eps_out))
        if noise is None:
            # Keyed by identity; holding ``views`` keeps its id from being reused. A learner
            # uses two views lists: a few entries suffice.
            if len(self._plain) >= 4:
                self._plain.clear()
            self._plain[id(views)] = (views, layers)
        return layers

    def forward_cached(
        self,
        x: torch.Tensor,
        views: LayerViews,
        noise: Noise | None = None,
        work: Workspace | None = None,
    ) -> tuple[torch.Tensor, Cache]:
        """Forward pass without autograd; returns Q (B, A) and what ``backward`` needs.

        With ``work`` (of x's batch size) the activations are written into its tensors.
        """
        layers = self.effective(views, noise)
        inputs = [x]
        h = x
        for index, layer in enumerate(layers[: len(self.trunk)]):
            out = None if work is None else work.hidden[index]
            h = torch.addmm(layer.bias, h, layer.weight_t, out=out).relu_()
            inputs.append(h)
        if not self.dueling:
            out = None if work is None else work.q
            q = torch.addmm(layers[-1].bias, h, layers[-1].weight_t, out=out)
        else:
            value = torch.addmm(layers[-2].bias, h, layers[-2].weight_t)
            advantage = torch.addmm(layers[-1].bias, h, layers[-1].weight_t)
            q = (value + advantage).sub_(advantage.mean(dim=1, keepdim=True))
        return q, Cache(inputs, layers)

    def backward(
        self,
        cache: Cache,
        grad_q: torch.Tensor,
        grad_views: LayerViews,
        work: Workspace | None = None,
    ) -> None:
        """Writes d(sum(grad_q * Q))/d(parameters) into ``grad_views`` (every entry set).

        Args:
            cache: What ``forward_cached`` returned beside Q.
            grad_q: (B, n_actions) gradient of the loss with respect to the Q-values.
            grad_views: Views of the flat gradient tensor, same layout as the parameters.
            work: Where to write the hidden layers' gradients (as ``forward_cached``).
        """
        inputs, layers = cache.inputs, cache.layers
        n = len(self.trunk)
        if self.dueling:  # Q = V + A - mean(A)
            heads = [(n, grad_q.sum(1, keepdim=True)), (n + 1, grad_q - grad_q.mean(1, True))]
        else:
            heads = [(n, grad_q)]
        grad = None
        for index, head_grad in heads:
            self._layer_gradients(layers[index], inputs[n], head_grad, grad_views[index])
            if n > 0:
                if grad is None:
                    out = None if work is None else work.grad_hidden[n - 1]
                    grad = torch.mm(head_grad, layers[index].weight, out=out)
                else:
                    grad.add_(head_grad @ layers[index].weight)
        for index in range(n - 1, -1, -1):
            # ReLU: the gradient passes where the layer's output (next input) is positive.
            grad = _threshold_backward(grad, inputs[index + 1], 0)
            self._layer_gradients(layers[index], inputs[index], grad, grad_views[index])
            if index > 0:
                out = None if work is None else work.grad_hidden[index - 1]
                grad = torch.mm(grad, layers[index].weight, out=out)

    @staticmethod
    def _layer_gradients(
        layer: Effective, layer_input: torch.Tensor, grad_out: torch.Tensor, target: Layer
    ) -> None:
        """Weight and bias gradients of one layer (and its sigmas: weight gradient * noise)."""
        if target.weight.is_contiguous():
            torch.mm(grad_out.t(), layer_input, out=target.weight)
        else:  # stored (in, out): write the contiguous transpose directly
            torch.mm(layer_input.t(), grad_out, out=target.weight.t())
        torch.sum(grad_out, 0, out=target.bias)
        if target.weight_sigma is None:
            return
        if layer.noise_outer is None:  # the means alone were used: sigma played no part
            target.weight_sigma.zero_()
            target.bias_sigma.zero_()  # type: ignore[union-attr]
            return
        torch.mul(target.weight, layer.noise_outer, out=target.weight_sigma)
        torch.mul(target.bias, layer.eps_out, out=target.bias_sigma)
