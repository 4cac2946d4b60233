"""S seeds' Q-networks as one stacked model: a batched matrix product per layer.

The parameters of S seeds live in one (S, P) tensor, each row in :class:`QNetwork`'s flat
layout, so row s is exactly the flat vector a single-seed run of seed s would hold. The
forward and hand-written backward passes here are :meth:`QNetwork.forward_cached` and
:meth:`QNetwork.backward` with a leading seed dimension, and give each seed the same bits as
its own single-seed pass. What that takes, measured on this CPU with torch 2.13:

- ``torch.bmm`` / ``baddbmm`` give each slice the bits of ``mm`` / ``addmm``, except for
  products with ``M * K * N < 400`` (torch computes those by its own loop, which rounds
  differently) and ``addmm`` with one output column (the dueling value head: ``mm`` then
  takes another kernel). Those products run seed by seed (:func:`_baddbmm`, :func:`_bmm`).
- Elementwise operations are exact per element, except where a fused multiply-add may be
  used in one memory layout and not the other (``addcmul`` of NoisyNet weights): those are
  built seed by seed by :meth:`QNetwork.effective` itself, then stacked.
- Reductions along the last dimension (bias gradients, dueling means) sum each row as the
  single-seed pass does.
- Each row starts 64-byte aligned, as a tensor of its own does (:class:`StackedState`):
  ``torch.dot`` (the gradient norm of clipping) sums an unaligned vector in another order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rlcompare.algos.deep.learner import SeedRows
from rlcompare.algos.deep.network import Effective, Layer, LayerViews, Noise, QNetwork

_threshold_backward = torch.ops.aten.threshold_backward

# torch's CPU bmm computes products with M * K * N below this by a loop of its own.
BMM_SMALL = 400


# Rows start at multiples of this many floats (64 bytes, as torch aligns a fresh tensor):
# torch.dot and other vectorised kernels can sum an unaligned vector in another order.
ROW_ALIGN = 16


class StackedState:
    """The (S, P) parameters, gradients, targets and Adam state of S seeds' networks (each
    row aligned as a tensor of its own would be)."""

    def __init__(self, seeds: int, size: int) -> None:
        stride = -(-size // ROW_ALIGN) * ROW_ALIGN
        self.params, self.grad, self.target, self.exp_avg, self.exp_avg_sq = (
            torch.zeros(seeds, stride)[:, :size] for _ in range(5)
        )
        self.steps = torch.zeros(seeds)

    def rows(self, seed: int) -> SeedRows:
        """Seed ``seed``'s views, for its DQNLearner."""
        return SeedRows(
            self.params[seed],
            self.grad[seed],
            self.target[seed],
            self.exp_avg[seed],
            self.exp_avg_sq[seed],
            self.steps[seed],
        )


def stackable() -> bool:
    """Whether this torch can run the stacked path (its fused Adam kernel exists)."""
    return hasattr(torch, "_fused_adam_")


def stacked_effective(
    net: QNetwork,
    views: LayerViews,
    seed_views: Sequence[LayerViews],
    noises: Sequence[Noise | None] | None,
) -> list[Effective]:
    """The layers a forward pass uses: the stacked means, or, with NoisyNet noise (one per
    seed), each seed's mean + sigma * noise built by ``net.effective`` and stacked."""
    if noises is None or not net.noisy:
        return [Effective(v.weight, v.weight_t, v.bias, None, None) for v in views]
    per_seed = [net.effective(own, noise) for own, noise in zip(seed_views, noises, strict=True)]
    layers = []
    for index in range(len(views)):
        parts = [seed[index] for seed in per_seed]
        weight = torch.stack([part.weight for part in parts])
        layers.append(
            Effective(
                weight,
                weight.transpose(1, 2),
                torch.stack([part.bias for part in parts]),
                torch.stack([part.noise_outer for part in parts]),  # type: ignore[misc]
                torch.stack([part.eps_out for part in parts]),  # type: ignore[misc]
            )
        )
    return layers


def _bmm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.bmm``, seed by seed where a slice's bits would differ from ``torch.mm``'s."""
    rows, inner, cols = a.shape[1], a.shape[2], b.shape[2]
    if rows * inner * cols >= BMM_SMALL:
        return torch.bmm(a, b, out=out)
    result = torch.stack([torch.mm(a[s], b[s]) for s in range(a.shape[0])])
    if out is None:
        return result
    return out.copy_(result)


def _baddbmm(
    bias: torch.Tensor,
    x: torch.Tensor,
    weight_t: torch.Tensor,
    valid: Sequence[int] | None = None,
) -> torch.Tensor:
    """``x @ weight_t + bias`` per seed (bias (S, N)), with ``addmm``'s bits per slice.

    With one output column ``addmm``'s rows round differently with the number of rows: then
    each seed's first ``valid[s]`` rows (its own, before padding) go through it alone and
    the padding rows are left zero.
    """
    seeds, rows, inner, cols = x.shape[0], x.shape[1], x.shape[2], weight_t.shape[2]
    if rows * inner * cols >= BMM_SMALL and cols > 1:
        return torch.baddbmm(bias.unsqueeze(1), x, weight_t)
    if valid is None or cols > 1:
        return torch.stack([torch.addmm(bias[s], x[s], weight_t[s]) for s in range(seeds)])
    out = torch.zeros(seeds, rows, cols)
    for s, count in enumerate(valid):
        if count:
            torch.addmm(bias[s], x[s, :count], weight_t[s], out=out[s, :count])
    return out


def stacked_forward(
    net: QNetwork,
    x: torch.Tensor,
    layers: list[Effective],
    valid: Sequence[int] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Q-values (S, B, n_actions) of x (S, B, in_dim), and each layer's input (for backward).

    ``valid``: how many of each seed's B rows are its own (the rest pad seeds with fewer
    rows); None: all of them.
    """
    inputs = [x]
    h = x
    for layer in layers[: len(net.trunk)]:
        h = _baddbmm(layer.bias, h, layer.weight_t).relu_()
        inputs.append(h)
    if not net.dueling:
        return _baddbmm(layers[-1].bias, h, layers[-1].weight_t, valid), inputs
    value = _baddbmm(layers[-2].bias, h, layers[-2].weight_t, valid)
    advantage = _baddbmm(layers[-1].bias, h, layers[-1].weight_t, valid)
    return (value + advantage).sub_(advantage.mean(dim=2, keepdim=True)), inputs


def stacked_backward(
    net: QNetwork,
    inputs: list[torch.Tensor],
    layers: list[Effective],
    grad_q: torch.Tensor,
    grad_views: LayerViews,
) -> None:
    """:meth:`QNetwork.backward` per seed: writes every entry of the (S, P) gradient that
    ``grad_views`` view, from grad_q (S, B, n_actions)."""
    n = len(net.trunk)
    if net.dueling:
        heads = [(n, grad_q.sum(2, keepdim=True)), (n + 1, grad_q - grad_q.mean(2, True))]
    else:
        heads = [(n, grad_q)]
    grad = None
    for index, head_grad in heads:
        _layer_gradients(layers[index], inputs[n], head_grad, grad_views[index])
        if n > 0:
            if grad is None:
                grad = _bmm(head_grad, layers[index].weight)
            else:
                grad.add_(_bmm(head_grad, layers[index].weight))
    for index in range(n - 1, -1, -1):
        grad = _threshold_backward(grad, inputs[index + 1], 0)
        _layer_gradients(layers[index], inputs[index], grad, grad_views[index])
        if index > 0:
            grad = _bmm(grad, layers[index].weight)


def _layer_gradients(
    layer: Effective, layer_input: torch.Tensor, grad_out: torch.Tensor, target: Layer
) -> None:
    """Weight and bias gradients of one stacked layer (and its sigmas)."""
    if target.weight.stride(2) == 1:  # stored (out, in)
        _bmm(grad_out.transpose(1, 2), layer_input, out=target.weight)
    else:  # stored (in, out)
        _bmm(layer_input.transpose(1, 2), grad_out, out=target.weight_t)
    torch.sum(grad_out, 1, out=target.bias)
    if target.weight_sigma is None:
        return
    if layer.noise_outer is None:
        target.weight_sigma.zero_()
        target.bias_sigma.zero_()  # type: ignore[union-attr]
        return
    torch.mul(target.weight, layer.noise_outer, out=target.weight_sigma)
    torch.mul(target.bias, layer.eps_out, out=target.bias_sigma)
