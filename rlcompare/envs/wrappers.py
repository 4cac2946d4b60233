"""Continuous-action envs seen through a discrete action grid, so DQN can run on them."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv


class DiscretizedActions(gym.ActionWrapper):
    """Maps ``Discrete(n)`` to ``n`` evenly spaced points of a 1-D Box action space.

    Args:
        env: Env with a one-dimensional Box action space.
        n_actions: Grid size (>= 2); the grid includes both bounds.
    """

    def __init__(self, env: gym.Env, n_actions: int) -> None:
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or space.shape != (1,):
            raise ValueError(f"needs a 1-D Box action space, got {space}")
        if isinstance(n_actions, bool) or not isinstance(n_actions, int) or n_actions < 2:
            raise ValueError(f"n_actions = {n_actions!r} is invalid; valid: an int >= 2")
        self.grid = np.linspace(space.low[0], space.high[0], n_actions, dtype=space.dtype)
        self.action_space = gym.spaces.Discrete(n_actions)

    def action(self, action: Any) -> np.ndarray:
        return self.grid[int(action)].reshape(1)


def discrete_pendulum(n_actions: int = 5, g: float = 10.0, render_mode: str | None = None):
    """Pendulum-v1's dynamics with ``n_actions`` torques evenly spaced in [-2, 2]."""
    return DiscretizedActions(PendulumEnv(render_mode=render_mode, g=g), n_actions)
