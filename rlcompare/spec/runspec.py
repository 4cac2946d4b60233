"""RunSpec: what one run is, validated in full when built, and grids of them."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rlcompare.envs.make import check_env_id, check_env_kwargs, env_info
from rlcompare.errors import SpecError
from rlcompare.spec.params import resolve_params
from rlcompare.spec.registry import get_algorithm


class FrozenDict(dict):
    """A dict that refuses mutation, so a RunSpec stays immutable (and picklable)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("RunSpec mappings are immutable; build a new spec with dataclasses.replace")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(json.dumps(self, sort_keys=True, default=str))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


# Greedy episodes per evaluation unless a spec says otherwise (the CLI's default too).
EVAL_EPISODES = 10


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{name} = {value!r} is invalid; valid: a positive int")


@dataclass(frozen=True)
class RunSpec:
    """One training run: algorithm, env, seed, budget, hyperparameters and eval protocol.

    Attributes:
        algo: A name from ``rlcompare.algorithms()``.
        env: A gymnasium id (ours live under ``rlcompare/``).
        seed: Non-negative int; every random stream of the run derives from it.
        steps: Budget in env steps (exactly one of steps / episodes).
        episodes: Budget in finished training episodes.
        hparams: Hyperparameters; unset ones take the algorithm's defaults.
        env_kwargs: Keyword arguments of the env constructor (and ``max_episode_steps``).
        eval_every: Env steps between greedy evaluations; None spreads 20 over the budget.
        eval_episodes: Episodes per evaluation.
        experiment: Label that groups runs in the results table.
    """

    algo: str
    env: str
    seed: int
    steps: int | None = None
    episodes: int | None = None
    hparams: Mapping[str, Any] = field(default_factory=FrozenDict)
    env_kwargs: Mapping[str, Any] = field(default_factory=FrozenDict)
    eval_every: int | None = None
    eval_episodes: int = EVAL_EPISODES
    experiment: str = "default"

    def __post_init__(self) -> None:
        for name in ("hparams", "env_kwargs"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise SpecError(f"{name} = {value!r} is invalid; valid: a mapping of name -> value")
            object.__setattr__(self, name, FrozenDict(value))
        algorithm = get_algorithm(self.algo)
        check_env_id(self.env)
        check_env_kwargs(self.env, self.env_kwargs)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise SpecError(f"seed = {self.seed!r} is invalid; valid: a non-negative int")
        if (self.steps is None) == (self.episodes is None):
            raise SpecError(
                f"give exactly one of steps / episodes, got steps={self.steps!r}, "
                f"episodes={self.episodes!r}"
            )
        _positive_int("steps", self.steps, allow_none=True)
        _positive_int("episodes", self.episodes, allow_none=True)
        _positive_int("eval_every", self.eval_every, allow_none=True)
        _positive_int("eval_episodes", self.eval_episodes)
        if not isinstance(self.experiment, str) or not re.fullmatch(r"[\w.-]+", self.experiment):
            raise SpecError(
                f"experiment = {self.experiment!r} is invalid; valid: letters, digits, _ . -"
            )
        resolved = resolve_params(algorithm.params, self.hparams, self.algo)
        if algorithm.check_params is not None:
            algorithm.check_params(resolved)
        info = env_info(self.env, self.env_kwargs)
        why = algorithm.check_spaces(info.observation_space, info.action_space)
        if why is not None:
            raise SpecError(f"algo {self.algo!r} cannot run on env {self.env!r}: it {why}")
        object.__setattr__(self, "_resolved", FrozenDict(resolved))
        if algorithm.check_spec is not None:
            algorithm.check_spec(self)

    @property
    def resolved_hparams(self) -> Mapping[str, Any]:
        """Every hyperparameter of the algorithm, defaults filled in."""
        return self._resolved  # type: ignore[attr-defined]

    @property
    def budget(self) -> tuple[str, int]:
        """``("steps", n)`` or ``("episodes", n)``."""
        return ("steps", self.steps) if self.steps is not None else ("episodes", self.episodes)  # type: ignore[return-value]

    def identity(self, *, with_seed: bool = True) -> dict[str, Any]:
        """Everything that determines the run's results, as plain data."""
        data = asdict(self)
        data["hparams"] = dict(self.resolved_hparams)
        data["env_kwargs"] = dict(self.env_kwargs)
        if not with_seed:
            data.pop("seed")
        return data

    @property
    def run_id(self) -> str:
        """``<env>__<algo>__<seed>__<hash of the rest>``: readable, deterministic, file-safe."""
        rest = {k: v for k, v in self.identity().items() if k not in ("env", "algo", "seed")}
        digest = hashlib.sha1(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()
        env_slug = re.sub(r"[^\w.-]+", "-", self.env)
        return f"{env_slug}__{self.algo}__{self.seed}__{digest[:8]}"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (stored in result metadata); ``RunSpec.from_dict`` inverts it."""
        data = asdict(self)
        data["hparams"] = dict(self.hparams)
        data["env_kwargs"] = dict(self.env_kwargs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """Rebuilds (and revalidates) a spec from ``to_dict`` output."""
        return cls(**data)


def _expand(
    mapping: Mapping[str, Any] | None, list_valued: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Cartesian product over list values. Names in ``list_valued`` (e.g. ``net_arch``) take a
    list as one value; a list of lists sweeps them."""
    mapping = dict(mapping or {})
    keys = list(mapping)
    list_valued = set(list_valued)
    options = []
    for key, value in mapping.items():
        swept = isinstance(value, list) and (
            key not in list_valued or all(isinstance(v, (list, tuple)) for v in value)
        )
        options.append(value if swept else [value])
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*options)]


def grid(
    algos: str | Sequence[str],
    envs: str | Sequence[str],
    seeds: int | Iterable[int],
    hparams: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    **spec_fields: Any,
) -> list[RunSpec]:
    """The Cartesian product of algos x envs x hparam values x env kwarg values x seeds.

    List values in ``hparams`` / ``env_kwargs`` are swept, except for list-valued
    hyperparameters such as ``net_arch``, where ``[64, 64]`` is one value and
    ``[[64, 64], [256, 256]]`` sweeps two. ``seeds`` may be an int n (seeds 0..n-1). Other
    keyword arguments go to every RunSpec (steps, episodes, eval_every, ...).
    """
    algos = [algos] if isinstance(algos, str) else list(algos)
    envs = [envs] if isinstance(envs, str) else list(envs)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    specs = []
    for algo in algos:
        table = get_algorithm(algo).params
        list_valued = [name for name, param in table.items() if param.kind == "int_list"]
        for env, hp, kw in itertools.product(
            envs, _expand(hparams, list_valued), _expand(env_kwargs)
        ):
            specs += [
                RunSpec(algo=algo, env=env, seed=seed, hparams=hp, env_kwargs=kw, **spec_fields)
                for seed in seeds
            ]
    return specs
