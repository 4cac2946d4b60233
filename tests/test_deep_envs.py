"""Tiny envs for the deep-agent tests (registered under ``rlcompare_test/``), and their checks.

- ``Identity``: observe a random symbol, name it (reward 1), 10 steps; Box one-hot or
  Discrete observations. Random play scores 10 / n, a learner 10.
- ``IdentityBox``: observe x in [-1, 1], act a in [-1, 1], reward 1 - |a - x|; 10 steps.
- ``Constant``: one observation, reward 1 per step whatever the action; cut by a time limit
  (``Constant-v0``) or terminated (``ConstantEnd-v0``) after 5 steps. With gamma = 0.5, Q is
  2 when truncation is bootstrapped through and 1/(1 - 0.4) = 5/3 when it is not.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

LENGTH = 10


class IdentityEnv(gym.Env):
    """Observe a symbol out of ``n``, name it."""

    def __init__(self, n: int = 4, discrete_obs: bool = False) -> None:
        self.n = n
        self.discrete_obs = discrete_obs
        if discrete_obs:
            self.observation_space = gym.spaces.Discrete(n)
        else:
            self.observation_space = gym.spaces.Box(0.0, 1.0, (n,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(n)
        self.state = 0

    def _obs(self) -> Any:
        if self.discrete_obs:
            return self.state
        obs = np.zeros(self.n, dtype=np.float32)
        obs[self.state] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = int(self.np_random.integers(self.n))
        return self._obs(), {}

    def step(self, action: Any):
        reward = float(int(action) == self.state)
        self.state = int(self.np_random.integers(self.n))
        return self._obs(), reward, False, False, {}


class IdentityBoxEnv(gym.Env):
    """Observe x in [-1, 1], act a; reward 1 - |a - x|."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, size=1).astype(np.float32)
        return self.x.copy(), {}

    def step(self, action: Any):
        reward = 1.0 - float(abs(np.asarray(action).reshape(1)[0] - self.x[0]))
        self.x = self.np_random.uniform(-1, 1, size=1).astype(np.float32)
        return self.x.copy(), reward, False, False, {}


class ConstantEnv(gym.Env):
    """Reward 1 per step; terminates after ``end`` steps when ``end`` is set."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, end: int | None = None) -> None:
        self.end = end
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.ones(1, dtype=np.float32), {}

    def step(self, action: Any):
        self.t += 1
        terminated = self.end is not None and self.t >= self.end
        return np.ones(1, dtype=np.float32), 1.0, terminated, False, {}


def register() -> None:
    """Registers the test envs (idempotent)."""
    entries = {
        "rlcompare_test/Identity-v0": (IdentityEnv, {}, LENGTH),
        "rlcompare_test/IdentityDiscrete-v0": (IdentityEnv, {"discrete_obs": True}, LENGTH),
        "rlcompare_test/IdentityBox-v0": (IdentityBoxEnv, {}, LENGTH),
        "rlcompare_test/Constant-v0": (ConstantEnv, {}, 5),
        "rlcompare_test/ConstantEnd-v0": (ConstantEnv, {"end": 5}, 100),
    }
    for env_id, (entry, kwargs, limit) in entries.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry, kwargs=kwargs, max_episode_steps=limit)


register()

IDENTITY = "rlcompare_test/Identity-v0"


def identity_expert(obs: Any) -> int:
    """The perfect Identity policy (Box observations)."""
    return int(np.argmax(obs))


def test_identity_env_rewards_naming_the_symbol() -> None:
    env = gym.make(IDENTITY)
    obs, _ = env.reset(seed=0)
    total, done, steps = 0.0, False, 0
    while not done:
        obs, reward, terminated, truncated, _ = env.step(identity_expert(obs))
        total += reward
        steps += 1
        done = terminated or truncated
    assert (total, steps) == (LENGTH, LENGTH)


def test_constant_env_truncates_or_terminates() -> None:
    env = gym.make("rlcompare_test/Constant-v0")
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(5)]
    assert flags[-1] == (False, True) and all(f == (False, False) for f in flags[:-1])
    env = gym.make("rlcompare_test/ConstantEnd-v0")
    env.reset(seed=0)
    assert [env.step(0)[2] for _ in range(5)] == [False] * 4 + [True]
