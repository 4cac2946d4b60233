"""The algorithm registry: name -> hyperparameter table, space check and (lazy) trainer.

Every algorithm, built-in or not, is declared with :func:`register_algorithm` (also usable as
a decorator), in one of two forms:

- ``agent=``: a class (or factory) built as ``agent(observation_space, action_space, hparams,
  rng)`` and driven by the one step loop (see :class:`rlcompare.Agent`);
- ``trainer=``: a function ``trainer(ctx)`` that owns its loop and records through the run's
  context (the same evaluation protocol). Built-ins name it as a ``"module:function"`` string,
  imported only when a run starts, so registering them keeps torch out of ``import rlcompare``.

Installed packages add algorithms through the entry-point group ``rlcompare.algorithms``
(each entry point names a module to import or a function to call).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from importlib import metadata
from typing import Any

import gymnasium as gym

from rlcompare.envs.datasets import check_logged_on, resolve_dataset
from rlcompare.errors import SpecError, choices_text
from rlcompare.spec.params import Param

# Modules whose import registers the built-in algorithms.
_BUILTIN_MODULES = ("rlcompare.algos.baselines", "rlcompare.algos.tabular", "rlcompare.algos.deep")
ENTRY_POINT_GROUP = "rlcompare.algorithms"
# Comma-separated plugin modules to import too (``rlcompare --plugin`` sets it, so notebook
# kernels and worker processes started from there import them as well).
PLUGINS_ENV = "RLCOMPARE_PLUGINS"
# What the step loop calls on an agent (rlcompare.Agent); eval_metrics is optional.
AGENT_METHODS = ("act", "update", "greedy_action")
# Turns an agent class into a trainer; named by string: the run layer sits above this one.
_AGENT_TRAINER = "rlcompare.runner.agents:agent_trainer"

SpaceCheck = Callable[[gym.Space, gym.Space], str | None]
CrossCheck = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Algorithm:
    """A registered algorithm.

    Attributes:
        name: The ``algo`` of a RunSpec.
        summary: One line for ``rlcompare algos``.
        params: Hyperparameter table (validation, defaults, CLI parsing).
        trainer: ``"module:function"`` or a callable taking a RunContext and returning the
            agent; None when the algorithm is given as an ``agent``.
        batch_trainer: Optional ``"module:function"`` taking a list of RunContexts that differ
            only in seed and returning their agents; sweeps group such runs into one task.
        check_spaces: Returns why the algorithm cannot run on (obs space, action space), or None.
        check_params: Cross-parameter checks on the resolved hyperparameters.
        family: One of ``FAMILIES`` (deep runs pin torch to one thread).
        check_spec: Checks that need the whole RunSpec (budget, env kwargs), run when the
            spec is built.
        agent: The agent class or factory driven by the step loop, when given that way.
    """

    name: str
    summary: str
    params: Mapping[str, Param]
    trainer: str | Callable[..., Any] | None
    check_spaces: SpaceCheck
    batch_trainer: str | None = None
    check_params: CrossCheck | None = None
    family: str = "custom"
    check_spec: Callable[[Any], None] | None = None
    agent: Callable[..., Any] | None = None

    def load(self, batch: bool = False) -> Callable[..., Any]:
        """Imports and returns the trainer (or the batch trainer)."""
        if self.agent is not None and not batch:
            return _import(_AGENT_TRAINER)(self.agent)
        target = self.batch_trainer if batch else self.trainer
        if target is None:
            raise ValueError(f"algo {self.name!r} has no batch trainer")
        return target if callable(target) else _import(target)


def _import(target: str) -> Any:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


_REGISTRY: dict[str, Algorithm] = {}

FAMILIES = ("baseline", "tabular", "deep", "custom")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def register_algorithm(
    name: str,
    *,
    agent: Callable[..., Any] | None = None,
    trainer: str | Callable[..., Any] | None = None,
    params: Mapping[str, Param] | None = None,
    summary: str | None = None,
    spaces: SpaceCheck | None = None,
    batch_trainer: str | None = None,
    check_params: CrossCheck | None = None,
    check_spec: Callable[[Any], None] | None = None,
    family: str = "custom",
) -> Any:
    """Registers an algorithm under ``name``, the one way built-ins and users declare one.

    Give exactly one of ``agent`` and ``trainer``, or neither to use this as a decorator of
    the agent class (or trainer function)::

        @rlcompare.register_algorithm("coin", params={"p": rlcompare.Param(0.5, float)})
        class Coin:
            def __init__(self, observation_space, action_space, hparams, rng): ...
            def act(self, obs, step): ...
            def update(self, obs, action, reward, next_obs, terminated, truncated, step): ...
            def greedy_action(self, obs): ...

    Args:
        name: The ``algo`` of a RunSpec.
        agent: A class or factory built as ``agent(observation_space, action_space, hparams,
            rng)`` (hparams: the resolved hyperparameters; rng: a numpy Generator from the
            run's own seed streams) with the methods of :class:`rlcompare.Agent`.
        trainer: A function ``trainer(ctx)`` owning its loop (records through ``ctx``), or
            its ``"module:function"`` name (imported only when a run starts).
        params: Hyperparameter table (validation, defaults, CLI parsing, ``rlcompare algos``).
        summary: One line for ``rlcompare algos`` (default: the first docstring line).
        spaces: ``(observation space, action space) -> why not, or None`` (default: any).
        batch_trainer: Optional ``"module:function"`` training runs that differ only in seed.
        check_params: Cross-parameter checks on the resolved hyperparameters (raise SpecError).
        check_spec: Checks that need the whole RunSpec (budget, env, dataset), run when the
            spec is built.
        family: One of ``FAMILIES``; ``deep`` runs pin torch to one thread.

    Returns:
        The registered Algorithm (as a decorator: the decorated object, unchanged).
        Registering the same definition again (a re-imported module, a re-run notebook cell:
        functions and classes compared by qualified name) replaces it.

    Raises:
        ValueError: a malformed declaration (naming the field, or the missing agent method),
            or ``name`` already registered with a different definition.
    """
    declaration = {
        "params": params,
        "summary": summary,
        "spaces": spaces,
        "batch_trainer": batch_trainer,
        "check_params": check_params,
        "check_spec": check_spec,
        "family": family,
    }
    if agent is None and trainer is None:

        def decorate(target: Any) -> Any:
            form = "agent" if inspect.isclass(target) else "trainer"
            register_algorithm(name, **{form: target}, **declaration)
            return target

        return decorate
    if agent is not None and trainer is not None:
        raise ValueError(f"algorithm {name!r}: give agent= or trainer=, not both")
    params = {} if params is None else params
    spaces = any_spaces if spaces is None else spaces
    summary = summary if summary is not None else _first_doc_line(agent or trainer)
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"algorithm name {name!r} is invalid; valid: letters, digits, _ . -")
    if agent is not None:
        _check_agent(name, agent)
    for label, target in (("trainer", trainer), ("batch_trainer", batch_trainer)):
        if target is None or callable(target):
            continue
        if not (isinstance(target, str) and _TARGET.match(target)):
            raise ValueError(
                f"algorithm {name!r}: {label} = {target!r} is invalid; valid: a function or a "
                "'module:function' string such as 'mypackage.agents:train'"
            )
    if not isinstance(params, Mapping):
        raise ValueError(f"algorithm {name!r}: params = {params!r}; valid: a dict of Param")
    bad = [k for k, v in params.items() if not isinstance(k, str) or not isinstance(v, Param)]
    if bad:
        raise ValueError(f"algorithm {name!r}: params[{bad[0]!r}] is not a rlcompare Param")
    for key, param in params.items():
        param.check_default(key, name)
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
        agent=agent,
    )
    return install(algorithm)


def install(algorithm: Algorithm, replace: bool = False) -> Algorithm:
    """Adds a built Algorithm (a worker receives its sweep's algorithms this way); the same
    definition again replaces it, a different one under the same name is an error unless
    ``replace`` (a warm worker given the driver's current definition)."""
    name = algorithm.name
    known = _REGISTRY.get(name)
    if known is not None and not replace:
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


def _first_doc_line(target: Any) -> str:
    doc = inspect.getdoc(target) or ""
    return doc.strip().splitlines()[0] if doc.strip() else "(no summary)"


def _check_agent(name: str, agent: Any) -> None:
    if not callable(agent):
        raise ValueError(f"algorithm {name!r}: agent = {agent!r} is not a class or factory")
    if inspect.isclass(agent):
        missing = [m for m in AGENT_METHODS if not callable(getattr(agent, m, None))]
        if missing:
            raise ValueError(
                f"algorithm {name!r}: agent {agent.__qualname__} has no {missing[0]!r} method; "
                f"valid: an agent with {', '.join(AGENT_METHODS)} (eval_metrics optional)"
            )


def _definition(value: Any) -> Any:
    """What identifies a field of a declaration: a function by where it is defined, so that
    re-running the cell or module that defines it is the same definition."""
    if callable(value) and hasattr(value, "__qualname__"):
        return (getattr(value, "__module__", None), value.__qualname__)
    return value


_PLUGINS_LOADED = False


def _load_builtins() -> None:
    global _PLUGINS_LOADED
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True  # before loading: a plugin may itself list algorithms
        load_plugins(metadata.entry_points(group=ENTRY_POINT_GROUP))
        load_plugins(m for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip())


def load_plugins(entries: Iterable[Any]) -> None:
    """Imports plugin modules (``"module"`` strings) or loads entry points, calling what an
    entry point names when it is a function, so that their algorithms register."""
    for entry in entries:
        if isinstance(entry, str):
            try:
                importlib.import_module(entry.strip())
            except Exception as error:
                raise SpecError(
                    f"plugin module {entry!r} does not import ({type(error).__name__}: "
                    f"{error}); valid: an importable module that registers algorithms"
                ) from error
            continue
        loaded = entry.load()
        if callable(loaded) and not inspect.ismodule(loaded):
            loaded()


def algorithm_definitions(names: Iterable[str]) -> list[Algorithm]:
    """The Algorithm objects of ``names`` (what a sweep sends to its workers)."""
    return [get_algorithm(name) for name in dict.fromkeys(names)]


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
        return (
            f"needs a Discrete observation space (tabular), got {obs}; wrap the env to one, "
            "e.g. a gymnasium.ObservationWrapper whose observation() maps each observation to "
            "a bin index, registered as an env id of your own; or use a deep algo"
        )
    return discrete_actions(obs, act)


def any_spaces(obs: gym.Space, act: gym.Space) -> str | None:
    """Accepts every space."""
    return None


def dataset_matches_env(spec: Any) -> None:
    """A ``dataset`` hyperparameter names an existing, unaltered Dataset file (or an identity
    this process resolved) logged on the spec's env with the spec's env settings (shared by
    every algorithm that learns from a dataset).

    The spec's resolved hyperparameters then hold the dataset's content identity
    (``"sha256:..."``) instead of its path, so its run id does not depend on where the file
    lives, and the sweep ships the data to workers by that identity.
    """
    dataset = spec.resolved_hparams.get("dataset")
    if dataset is None:
        return
    identity = resolve_dataset(dataset)
    check_logged_on(dataset, spec.env, spec.env_kwargs)  # its error names the file
    if identity != dataset:
        # RunSpec is frozen; its resolved hyperparameters are derived data it owns.
        resolved = type(spec.resolved_hparams)({**spec.resolved_hparams, "dataset": identity})
        object.__setattr__(spec, "_resolved", resolved)


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
