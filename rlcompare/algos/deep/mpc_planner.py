"""Sampling planners of ``mpc`` over action sequences in [-1, 1] (the Box scaled to unit width).

Both take a ``returns`` function that scores a whole population at once, ``(N, H, act) ->
(N,)``, and a warm-start mean plan ``(H, act)``, and return the refined mean plan. The current
mean is always candidate 0, so a good warm start is never lost to sampling noise.

- :func:`cem`: the cross-entropy method; sample around (mean, std), refit both to the
  ``elites`` best candidates, repeat.
- :func:`mppi`: model-predictive path integral control; sample around the mean with a fixed
  std and move the mean to the softmax(return / temperature)-weighted average.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rlcompare.errors import Diverged

Returns = Callable[[torch.Tensor], torch.Tensor]


def _sample(
    mean: torch.Tensor, std: torch.Tensor | float, population: int, generator: torch.Generator
) -> torch.Tensor:
    """(population, H, act) candidates around ``mean``, clipped to the Box; row 0 = mean."""
    noise = torch.randn((population, *mean.shape), generator=generator).to(mean.device)
    noise[0] = 0.0
    return noise.mul_(std).add_(mean).clamp_(-1.0, 1.0)


def cem(
    returns: Returns,
    mean: torch.Tensor,
    *,
    population: int,
    elites: int,
    iterations: int,
    init_std: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """The cross-entropy method: ``iterations`` rounds of sampling and refitting a diagonal
    Gaussian to the ``elites`` highest-return candidates. Returns the mean plan (H, act)."""
    std = torch.full_like(mean, init_std)
    for _ in range(iterations):
        candidates = _sample(mean, std, population, generator)
        best = _score(returns, candidates).topk(elites).indices
        chosen = candidates[best]
        mean = chosen.mean(dim=0)
        std = chosen.std(dim=0, unbiased=False)
    return _finite(mean)


def mppi(
    returns: Returns,
    mean: torch.Tensor,
    *,
    population: int,
    iterations: int,
    init_std: float,
    temperature: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """MPPI: ``iterations`` rounds of sampling around the mean (std ``init_std``) and
    averaging the candidates with weights softmax(return / temperature)."""
    for _ in range(iterations):
        candidates = _sample(mean, init_std, population, generator)
        weights = torch.softmax(_score(returns, candidates) / temperature, dim=0)
        mean = torch.einsum("n,nha->ha", weights, candidates)
    return _finite(mean)


def shifted(plan: torch.Tensor) -> torch.Tensor:
    """The warm start of the next step: the plan advanced by one step, the last step set to
    the middle of the Box."""
    out = torch.zeros_like(plan)
    out[:-1] = plan[1:]
    return out


def _score(returns: Returns, candidates: torch.Tensor) -> torch.Tensor:
    scores = returns(candidates)
    if not bool(torch.isfinite(scores).all()):
        raise Diverged("a predicted return became non-finite (the model predicts NaN/inf)")
    return scores


def _finite(plan: torch.Tensor) -> torch.Tensor:
    if not bool(torch.isfinite(plan).all()):
        raise Diverged("the planner's mean plan became non-finite (the model predicts NaN/inf)")
    return plan
