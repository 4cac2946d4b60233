"""Logged transitions: collect them from any policy, save, load, learn from them offline."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlcompare.envs.make import effective_env_kwargs, make_env
from rlcompare.errors import SpecError
from rlcompare.seeding import RunSeeds

_ARRAYS = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated")


@dataclass(frozen=True)
class Dataset:
    """Transitions logged by one policy on one env (arrays share their first dimension N).

    Attributes:
        observations: (N, *obs_shape) observations (int indices for Discrete spaces).
        actions: (N, *act_shape) actions taken.
        rewards: (N,) rewards.
        next_observations: (N, *obs_shape) observations after each action.
        terminated: (N,) bool, the episode ended in a terminal state (no bootstrapping).
        truncated: (N,) bool, the episode was cut by a time limit (bootstrap through it).
        episode_returns: (E,) undiscounted return of each finished episode: the
            demonstrator's own score.
        env: Env id the data came from.
        env_kwargs: Its kwargs.
        source: Free text naming the policy that produced the data.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_returns: np.ndarray
    env: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def mean_return(self) -> float:
        """The demonstrator's mean episode return (NaN when no episode finished)."""
        return float(np.mean(self.episode_returns)) if len(self.episode_returns) else float("nan")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes an ``.npz`` atomically (temporary file, fsync, rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"env": self.env, "env_kwargs": dict(self.env_kwargs), "source": self.source}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                episode_returns=self.episode_returns,
                meta=np.array(json.dumps(meta)),
                **{name: getattr(self, name) for name in _ARRAYS},
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Dataset:
        """Reads a file written by ``save``."""
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"dataset file {str(path)!r} does not exist")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {name: data[name] for name in _ARRAYS}
            returns = data["episode_returns"]
        return cls(**arrays, episode_returns=returns, **meta)


def logged_env(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """``(env id, env kwargs)`` a Dataset file was logged on, read without its arrays.

    Raises:
        SpecError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"dataset file {str(path)!r} does not exist")
    with np.load(path, allow_pickle=False) as data:  # an .npz reads one member at a time
        meta = json.loads(str(data["meta"]))
    return meta["env"], dict(meta.get("env_kwargs") or {})


def check_logged_on(
    path: str | os.PathLike[str], env_id: str, env_kwargs: Mapping[str, Any] | None = None
) -> None:
    """Refuses a dataset logged on another env, or on the same env with other settings:
    learning from it would score one MDP's data against another's evaluation.

    Settings are compared in full (constructor defaults and the registered step limit
    included), so ``{}`` and the defaults spelled out are the same settings.

    Raises:
        SpecError: naming the env id, or each differing kwarg with both values.
    """
    logged_id, logged_kwargs = logged_env(path)
    if logged_id != env_id:
        raise SpecError(
            f"dataset {str(path)!r} was logged on env {logged_id!r}; valid: a dataset of env "
            f"{env_id!r}"
        )
    logged = effective_env_kwargs(logged_id, logged_kwargs)
    wanted = effective_env_kwargs(env_id, env_kwargs)
    differ = [
        f"{name!r}: dataset {logged.get(name)!r}, spec {wanted.get(name)!r}"
        for name in sorted({*logged, *wanted})
        if logged.get(name) != wanted.get(name)
    ]
    if differ:
        raise SpecError(
            f"dataset {str(path)!r} was logged on env {env_id!r} with other settings ("
            + "; ".join(differ)
            + f"); valid: env_kwargs matching the dataset's {logged_kwargs!r}, or a dataset "
            "logged with these env_kwargs"
        )


def as_policy(policy: Any) -> Callable[[Any], Any]:
    """Turns an agent, a run result, an SB3 model or a callable into ``obs -> action``."""
    policy = getattr(policy, "agent", policy)  # a RunResult
    if hasattr(policy, "greedy_action"):
        return policy.greedy_action
    if hasattr(policy, "predict"):
        return lambda obs: policy.predict(obs, deterministic=True)[0]
    if callable(policy):
        return policy
    raise SpecError(
        f"policy {policy!r} is not usable; valid: an agent with greedy_action or predict, "
        "a RunResult, or a callable obs -> action"
    )


def collect_demonstrations(
    policy: Any,
    env: str,
    *,
    episodes: int | None = None,
    steps: int | None = None,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    epsilon: float = 0.0,
    source: str = "",
) -> Dataset:
    """Rolls out ``policy`` on ``env`` and logs every transition.

    Args:
        policy: A trained agent, a RunResult, an SB3 model or a callable ``obs -> action``.
        env: Env id.
        episodes: Number of whole episodes to log (exactly one of episodes / steps).
        steps: Number of transitions to log.
        seed: Seeds the env and the epsilon coin; the same seed gives the same dataset.
        env_kwargs: Env constructor kwargs.
        epsilon: Share of actions replaced by uniform random ones (mixed-quality logs).
        source: Label kept with the data.
    """
    if (episodes is None) == (steps is None):
        raise SpecError(f"give exactly one of episodes / steps, got {episodes=}, {steps=}")
    budget = episodes if episodes is not None else steps
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise SpecError(f"budget {budget!r} is invalid; valid: a positive int")
    if not 0.0 <= epsilon <= 1.0:
        raise SpecError(f"epsilon = {epsilon!r} is out of range; valid: float in [0, 1]")
    act = as_policy(policy)
    seeds = RunSeeds(seed)
    rng = seeds.rng("demonstrations")
    environment = make_env(env, env_kwargs)
    environment.action_space.seed(seeds.int_seed("action_space"))
    logged: dict[str, list[Any]] = {name: [] for name in _ARRAYS}
    returns: list[float] = []
    obs, _ = environment.reset(seed=seeds.int_seed("env"))
    total = 0.0
    while (len(returns) if episodes is not None else len(logged["rewards"])) < budget:
        action = environment.action_space.sample() if rng.random() < epsilon else act(obs)
        next_obs, reward, terminated, truncated, _ = environment.step(action)
        for name, value in zip(
            _ARRAYS, (obs, action, reward, next_obs, terminated, truncated), strict=True
        ):
            logged[name].append(value)
        total += float(reward)
        obs = next_obs
        if terminated or truncated:
            returns.append(total)
            total = 0.0
            obs, _ = environment.reset()
    environment.close()
    return Dataset(
        **{name: np.asarray(values) for name, values in logged.items()},
        episode_returns=np.asarray(returns, dtype=np.float64),
        env=env,
        env_kwargs=dict(env_kwargs or {}),
        source=source,
    )
