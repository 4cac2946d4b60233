"""The algorithm registry: name -> hyperparameter table, space check and (lazy) trainer.

Algorithm modules declare themselves here without importing torch; the trainer is named by a
``"module:function"`` string and imported only when a run of that algorithm starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from rlcompare.errors import SpecError, choices_text
from rlcompare.spec.params import Param

# Modules whose import registers the built-in algorithms.
_BUILTIN_MODULES = ("rlcompare.algos.baselines", "rlcompare.algos.tabular", "rlcompare.algos.deep")

SpaceCheck = Callable[[gym.Space, gym.Space], str | None]
CrossCheck = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Algorithm:
    """A registered algorithm.

    Attributes:
        name: The ``algo`` of a RunSpec.
        summary: One line for ``rlcompare algos``.
        params: Hyperparameter table (validation, defaults, CLI parsing).
        trainer: ``"module:function"``; the function takes a RunContext and returns the agent.
        batch_trainer: Optional ``"module:function"`` taking a list of RunContexts that differ
            only in seed and returning their agents; sweeps group such runs into one task.
        check_spaces: Returns why the algorithm cannot run on (obs space, action space), or None.
        check_params: Cross-parameter checks on the resolved hyperparameters.
        family: ``baseline``, ``tabular`` or ``deep`` (deep runs pin torch to one thread).
        check_spec: Checks that need the whole RunSpec (budget, env kwargs), run when the
            spec is built.
    """

    name: str
    summary: str
    params: Mapping[str, Param]
    trainer: str
    check_spaces: SpaceCheck
    batch_trainer: str | None = None
    check_params: CrossCheck | None = None
    family: str = "baseline"
    check_spec: Callable[[Any], None] | None = None

    def load(self, batch: bool = False) -> Callable[..., Any]:
        """Imports and returns the trainer (or the batch trainer)."""
        target = self.batch_trainer if batch else self.trainer
        if target is None:
            raise ValueError(f"algo {self.name!r} has no batch trainer")
        module, function = target.split(":")
        return getattr(importlib.import_module(module), function)


_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    """Adds ``algorithm``; a second registration under the same name is an error."""
    if algorithm.name in _REGISTRY and _REGISTRY[algorithm.name] != algorithm:
        raise ValueError(f"algorithm {algorithm.name!r} registered twice")
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def algorithms(order: str = "name") -> list[str]:
    """Names of every registered algorithm, sorted (``order="name"``) or in the order they
    were registered (``order="registered"``: built-ins first, so their plot colours are
    stable)."""
    if order not in ("name", "registered"):
        raise ValueError(f"order={order!r}; valid: 'name', 'registered'")
    _load_builtins()
    return sorted(_REGISTRY) if order == "name" else list(_REGISTRY)


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm ``name``; SpecError naming the valid ones otherwise."""
    _load_builtins()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise SpecError(f"unknown algo {name!r}; {choices_text(sorted(_REGISTRY), name)}")
    return _REGISTRY[name]


# Space checks shared by algorithm declarations.
def discrete_actions(obs: gym.Space, act: gym.Space) -> str | None:
    """Requires a Discrete action space."""
    if not isinstance(act, gym.spaces.Discrete):
        return f"needs a Discrete action space, got {act}"
    return None


def discrete_both(obs: gym.Space, act: gym.Space) -> str | None:
    """Requires Discrete observations and actions (tabular learners)."""
    if not isinstance(obs, gym.spaces.Discrete):
        return f"needs a Discrete observation space (tabular), got {obs}"
    return discrete_actions(obs, act)


def any_spaces(obs: gym.Space, act: gym.Space) -> str | None:
    """Accepts every space."""
    return None


def offline_needs_steps(spec: Any) -> None:
    """Learning from a dataset has no episodes: its budget counts updates (``steps``)."""
    dataset = spec.resolved_hparams.get("dataset")
    if dataset is not None and spec.episodes is not None:
        raise SpecError(
            f"episodes={spec.episodes} with dataset {dataset!r}: learning from a dataset has "
            "no episodes; valid: a steps budget (one update per step)"
        )
