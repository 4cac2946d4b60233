"""The algorithm registry: name -> hyperparameter table, space check and (lazy) trainer.

Every algorithm, built-in or not, is declared with :func:`register_algorithm`, without
importing torch: the trainer is named by a ``"module:function"`` string and imported only when
a run of that algorithm starts.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import gymnasium as gym

from rlcompare.envs.datasets import check_logged_on
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
        family: One of ``FAMILIES`` (deep runs pin torch to one thread).
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
    family: str = "custom"
    check_spec: Callable[[Any], None] | None = None

    def load(self, batch: bool = False) -> Callable[..., Any]:
        """Imports and returns the trainer (or the batch trainer)."""
        target = self.batch_trainer if batch else self.trainer
        if target is None:
            raise ValueError(f"algo {self.name!r} has no batch trainer")
        module, function = target.split(":")
        return getattr(importlib.import_module(module), function)


_REGISTRY: dict[str, Algorithm] = {}

FAMILIES = ("baseline", "tabular", "deep", "custom")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def register_algorithm(
    name: str,
    *,
    trainer: str,
    params: Mapping[str, Param],
    summary: str,
    spaces: SpaceCheck,
    batch_trainer: str | None = None,
    check_params: CrossCheck | None = None,
    check_spec: Callable[[Any], None] | None = None,
    family: str = "custom",
) -> Algorithm:
    """Registers an algorithm under ``name``, the one way built-ins and users declare one.

    Nothing is imported here: ``trainer`` names its function, loaded when a run starts (so
    registering a deep algorithm keeps torch out of ``import rlcompare``).

    Args:
        name: The ``algo`` of a RunSpec.
        trainer: ``"module:function"``; the function takes a RunContext, returns the agent.
        params: Hyperparameter table (validation, defaults, CLI parsing, ``rlcompare algos``).
        summary: One line for ``rlcompare algos``.
        spaces: ``(observation space, action space) -> why not, or None``.
        batch_trainer: Optional ``"module:function"`` training runs that differ only in seed.
        check_params: Cross-parameter checks on the resolved hyperparameters (raise SpecError).
        check_spec: Checks that need the whole RunSpec (budget, env, dataset), run when the
            spec is built.
        family: One of ``FAMILIES``; ``deep`` runs pin torch to one thread.

    Returns:
        The registered Algorithm. Registering the same definition again (a re-imported module,
        a re-run notebook cell: checks compared by qualified name) replaces it.

    Raises:
        ValueError: a malformed declaration, or ``name`` already registered with a different
            definition.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"algorithm name {name!r} is invalid; valid: letters, digits, _ . -")
    for label, target in (("trainer", trainer), ("batch_trainer", batch_trainer)):
        if (target is not None or label == "trainer") and not (
            isinstance(target, str) and _TARGET.match(target)
        ):
            raise ValueError(
                f"algorithm {name!r}: {label} = {target!r} is invalid; valid: a "
                "'module:function' string such as 'mypackage.agents:train'"
            )
    bad = [k for k, v in params.items() if not isinstance(k, str) or not isinstance(v, Param)]
    if bad:
        raise ValueError(f"algorithm {name!r}: params[{bad[0]!r}] is not a rlcompare Param")
    for label, check in (
        ("spaces", spaces),
        ("check_params", check_params),
        ("check_spec", check_spec),
    ):
        if (check is not None or label == "spaces") and not callable(check):
            raise ValueError(f"algorithm {name!r}: {label} = {check!r} is not callable")
    if family not in FAMILIES:
        raise ValueError(
            f"algorithm {name!r}: family {family!r} is invalid; {choices_text(FAMILIES, family)}"
        )
    algorithm = Algorithm(
        name=name,
        summary=summary,
        params=dict(params),
        trainer=trainer,
        check_spaces=spaces,
        batch_trainer=batch_trainer,
        check_params=check_params,
        family=family,
        check_spec=check_spec,
    )
    known = _REGISTRY.get(name)
    if known is not None:
        differ = [
            f.name
            for f in fields(Algorithm)
            if _definition(getattr(known, f.name)) != _definition(getattr(algorithm, f.name))
        ]
        if differ:
            raise ValueError(
                f"algorithm {name!r} is already registered with a different {', '.join(differ)}; "
                "valid: a new name, or the same definition"
            )
    _REGISTRY[name] = algorithm
    return algorithm


def _definition(value: Any) -> Any:
    """What identifies a field of a declaration: a function by where it is defined, so that
    re-running the cell or module that defines it is the same definition."""
    if callable(value) and hasattr(value, "__qualname__"):
        return (getattr(value, "__module__", None), value.__qualname__)
    return value


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


def dataset_matches_env(spec: Any) -> None:
    """A ``dataset`` hyperparameter names an existing file logged on the spec's env with the
    spec's env settings (shared by every algorithm that learns from a dataset)."""
    dataset = spec.resolved_hparams.get("dataset")
    if dataset is None:
        return
    if not Path(dataset).is_file():
        raise SpecError(
            f"hyperparameter 'dataset' = {dataset!r}: no such file; valid: a path written by "
            "rlcompare.Dataset.save, or None"
        )
    check_logged_on(dataset, spec.env, spec.env_kwargs)


def check_offline(spec: Any) -> None:
    """``dataset_matches_env`` and ``offline_needs_steps``: the check_spec of an algorithm
    whose budget counts updates when it learns from a dataset."""
    dataset_matches_env(spec)
    offline_needs_steps(spec)


def offline_needs_steps(spec: Any) -> None:
    """Learning from a dataset has no episodes: its budget counts updates (``steps``)."""
    dataset = spec.resolved_hparams.get("dataset")
    if dataset is not None and spec.episodes is not None:
        raise SpecError(
            f"episodes={spec.episodes} with dataset {dataset!r}: learning from a dataset has "
            "no episodes; valid: a steps budget (one update per step)"
        )
