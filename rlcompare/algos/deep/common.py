"""Helpers shared by the deep agents that need neither torch nor Stable-Baselines3.

Observation encoding (Discrete -> one-hot, Box -> flat float32), the space checks of the
registry, and the step horizon that linear schedules (epsilon, PER beta) decay over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rlcompare.envs.datasets import Dataset, check_logged_on, load_dataset
from rlcompare.envs.make import env_info
from rlcompare.errors import SpecError


class ObsEncoder:
    """Turns raw observations into float32 vectors for a network.

    Box observations are flattened; Discrete ones become one-hot vectors, so the same agents
    run on FrozenLake and CartPole. Buffers keep raw observations (an index for Discrete
    spaces, not its one-hot vector) and encode batches when they are sampled.

    Attributes:
        dim: Length of an encoded observation.
        raw_shape: Shape of one raw observation as stored (``()`` for Discrete).
        raw_dtype: Dtype of stored raw observations.
    """

    def __init__(self, space: gym.Space) -> None:
        self.discrete = isinstance(space, gym.spaces.Discrete)
        if self.discrete:
            self.n = int(space.n)
            self.start = int(space.start)
            self.dim = self.n
            self.raw_shape: tuple[int, ...] = ()
            self.raw_dtype: np.dtype = np.dtype(np.int64)
        elif isinstance(space, gym.spaces.Box):
            self.dim = int(np.prod(space.shape))
            self.raw_shape = tuple(space.shape)
            self.raw_dtype = np.dtype(np.float32)
        else:
            raise SpecError(f"observation space {space} is not supported; valid: Box, Discrete")

    def encode_into(self, obs: Any, out: np.ndarray) -> None:
        """Writes the encoding of one observation into ``out`` of shape (dim,)."""
        if self.discrete:
            out.fill(0.0)
            out[int(obs) - self.start] = 1.0
        else:
            out[:] = np.ravel(obs)

    def encode(self, obs: Any) -> np.ndarray:
        """The (dim,) float32 encoding of one observation (a new array)."""
        out = np.empty(self.dim, dtype=np.float32)
        self.encode_into(obs, out)
        return out

    def encode_fast(self, obs: Any, scratch: np.ndarray) -> np.ndarray:
        """The encoding of one observation, without copying a flat float32 Box observation
        (otherwise written into ``scratch`` (dim,)); read it before the next call."""
        if (
            not self.discrete
            and isinstance(obs, np.ndarray)
            and obs.dtype == np.float32
            and (obs.ndim == 1)
        ):
            return obs
        self.encode_into(obs, scratch)
        return scratch

    def encode_batch(self, raw: np.ndarray) -> np.ndarray:
        """Encodes (B, *raw_shape) raw observations into a (B, dim) float32 array."""
        if self.discrete:
            out = np.zeros((len(raw), self.dim), dtype=np.float32)
            out[np.arange(len(raw)), raw.astype(np.int64) - self.start] = 1.0
            return out
        return np.asarray(raw, dtype=np.float32).reshape(len(raw), self.dim)


def _obs_supported(obs: gym.Space) -> str | None:
    if isinstance(obs, (gym.spaces.Box, gym.spaces.Discrete)):
        return None
    return f"needs a Box or Discrete observation space, got {obs}"


def value_based_spaces(obs: gym.Space, act: gym.Space) -> str | None:
    """Space check of ``dqn`` / ``sb3_dqn``: Box or Discrete observations, Discrete actions."""
    if not isinstance(act, gym.spaces.Discrete):
        return (
            f"needs a Discrete action space (a Q-network scores each action), got {act}; "
            "use ppo for continuous actions"
        )
    return _obs_supported(obs)


def policy_spaces(obs: gym.Space, act: gym.Space) -> str | None:
    """Space check of ``ppo`` / ``bc``: Box or Discrete observations and actions."""
    if not isinstance(act, (gym.spaces.Box, gym.spaces.Discrete)):
        return f"needs a Box or Discrete action space, got {act}"
    return _obs_supported(obs)


def continuous_actions(obs: gym.Space, act: gym.Space) -> str | None:
    """Space check of ``sac``: Box or Discrete observations, Box actions."""
    if not isinstance(act, gym.spaces.Box):
        return f"needs a Box (continuous) action space, got {act}"
    return _obs_supported(obs)


def schedule_horizon(spec: Any) -> int:
    """Env steps that linear schedules (epsilon, PER beta) span: the step budget.

    With an episode budget the horizon is ``episodes * max_episode_steps`` of the env (its
    time limit, or ``max_episode_steps`` in env_kwargs); without a time limit it is a SpecError.
    """
    kind, amount = spec.budget
    if kind == "steps":
        return int(amount)
    limit = env_info(spec.env, spec.env_kwargs).max_episode_steps
    if limit is None:
        raise SpecError(
            f"algo {spec.algo!r} with an episodes budget needs an env with a step limit (its "
            f"schedules decay over episodes * max_episode_steps); env {spec.env!r} has none: "
            "give steps=..., or env_kwargs={'max_episode_steps': ...}"
        )
    return int(amount) * int(limit)


def load_matching_dataset(ctx: Any) -> Dataset:
    """Loads ``hp['dataset']`` (a content identity: what the task carried, else the driver's
    catalogue) and checks it was logged on the spec's env with its settings."""
    dataset = load_dataset(ctx.hp["dataset"])
    check_logged_on(ctx.hp["dataset"], ctx.spec.env, ctx.spec.env_kwargs)
    if len(dataset) == 0:
        raise SpecError(f"dataset {ctx.hp['dataset']!r} is empty; valid: at least 1 transition")
    return dataset


def sb3_linear_schedule(
    start: float, end: float, fraction: float, step: int, horizon: int
) -> float:
    """Stable-Baselines3's ``get_linear_fn``: ``start`` to ``end`` over ``fraction`` of horizon."""
    progress = step / max(horizon, 1)
    if fraction <= 0.0 or progress >= fraction:
        return end
    return start + progress * (end - start) / fraction


def require_default(
    hp: Mapping[str, Any], defaults: Mapping[str, Any], algo: str, reason: str
) -> None:
    """Raises SpecError for the first of ``defaults`` whose value in ``hp`` differs."""
    for name, default in defaults.items():
        value = hp[name]
        same = (
            math.isclose(value, default)
            if isinstance(value, float) and isinstance(default, float)
            else value == default
        )
        if not same:
            raise SpecError(
                f"hyperparameter {name!r} = {value!r} is not available in {algo!r} ({reason}); "
                f"valid: {default!r} (the default)"
            )
