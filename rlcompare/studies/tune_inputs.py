"""The inputs of :func:`rlcompare.tune`, checked before any run: names, seeds (tuning and
eval disjoint), budgets per env, fixed settings per algorithm, and the rungs of successive
halving."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rlcompare.errors import SpecError, choices_text


def names(value: str | Sequence[str], what: str) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise SpecError(f"{what} = {value!r} is empty; valid: one or more names")
    if len(set(names)) != len(names):
        raise SpecError(f"{what} = {value!r} repeats a name; valid: distinct names")
    return names


def _seed_list(value: int | Sequence[int], what: str, start: int = 0) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise SpecError(f"{what} = {value!r} is invalid; valid: a positive int or seeds")
        return list(range(start, start + value))
    seeds = list(value)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise SpecError(
            f"{what} = {value!r} is invalid; valid: a positive int n or a list of "
            "non-negative int seeds"
        )
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{what} = {value!r} repeats a seed; valid: distinct seeds")
    return seeds


def check_seeds(
    tuning_seeds: int | Sequence[int], eval_seeds: int | Sequence[int]
) -> tuple[list[int], list[int]]:
    """The tuning and eval seeds (an int n: n seeds, the eval ones after the tuning ones).

    Raises:
        SpecError: A seed in both, naming it: a configuration chosen on its tuning seeds is
            not evidence on those seeds.
    """
    tuning = _seed_list(tuning_seeds, "tuning_seeds")
    evals = _seed_list(eval_seeds, "eval_seeds", start=max(tuning) + 1)
    both = sorted(set(tuning) & set(evals))
    if both:
        raise SpecError(
            f"tuning_seeds and eval_seeds share seed(s) {both}; valid: disjoint seeds (a "
            "configuration chosen on its tuning seeds overfits them, Eimer et al. 2023)"
        )
    return tuning, evals


def positive(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{what} = {value!r} is invalid; valid: an int >= {minimum}")
    return value


def per_env_values(value: Any, envs: list[str], what: str) -> dict[str, Any]:
    """``value`` for every env, or its own entry per env from a mapping env -> value."""
    if isinstance(value, Mapping) and value and all(k in envs for k in value):
        missing = [e for e in envs if e not in value]
        if missing:
            raise SpecError(f"{what} = {dict(value)!r} has no entry for env {missing[0]!r}")
        return {e: value[e] for e in envs}
    if isinstance(value, Mapping) and what != "env_kwargs":
        bad = next(iter(value), None)
        raise SpecError(
            f"{what} names env {bad!r}, not one of the tuned envs; {choices_text(envs, bad)}"
        )
    return dict.fromkeys(envs, value)


def run_budget(steps: Any, episodes: Any, envs: list[str]) -> tuple[str, dict[str, int]]:
    if (steps is None) == (episodes is None):
        raise SpecError(
            f"give exactly one of steps / episodes, got steps={steps!r}, episodes={episodes!r}"
        )
    unit, value = ("steps", steps) if steps is not None else ("episodes", episodes)
    per_env = per_env_values(value, envs, unit)
    return unit, {e: positive(v, f"{unit} of {e!r}") for e, v in per_env.items()}


def fixed_hparams(hparams: Mapping[str, Any] | None, algos: list[str]) -> dict[str, dict]:
    """Fixed (untuned) settings: one mapping per algo, or one for all."""
    hparams = dict(hparams or {})
    if hparams and all(k in algos and isinstance(v, Mapping) for k, v in hparams.items()):
        return {a: dict(hparams.get(a, {})) for a in algos}
    return {a: dict(hparams) for a in algos}


def rung_schedule(n: int, halving: int | None, budget: int) -> list[tuple[int, int]]:
    """``(configurations kept, budget of each run)`` per rung of successive halving with
    factor ``halving``: ``n`` configurations at ``budget / halving^R``, then the best
    ``1/halving`` of them at ``halving`` times the budget, up to one rung at the full
    budget; ``[(n, budget)]`` without halving."""
    if halving is None or n < halving:
        return [(n, budget)]
    rungs = int(math.floor(math.log(n, halving) + 1e-9))
    return [
        (max(1, n // halving**r), max(1, budget // halving ** (rungs - r)))
        for r in range(rungs + 1)
    ]


__all__ = [
    "check_seeds",
    "fixed_hparams",
    "names",
    "per_env_values",
    "positive",
    "rung_schedule",
    "run_budget",
]
