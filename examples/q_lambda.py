"""An algorithm of your own, registered in a few lines: Watkins's Q(lambda).

Tabular Q-learning with replacing eligibility traces (Singh & Sutton 1996: accumulating
traces overshoot with large step sizes in looping envs), cut after an exploratory action
(Sutton & Barto, 2nd ed., section 12.10). Importing this module registers ``q_lambda``; from
then on it runs in ``rlcompare.grid``/``sweep``/``rlcompare run --plugin examples.q_lambda``
like any built-in, on every executor, with the same evaluation protocol and statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

import rlcompare
from rlcompare import Param


def discrete_spaces(observation_space: gym.Space, action_space: gym.Space) -> str | None:
    """Why Q(lambda) cannot run on these spaces, or None (it needs a table)."""
    if not isinstance(observation_space, gym.spaces.Discrete):
        return f"needs a Discrete observation space, got {observation_space}"
    if not isinstance(action_space, gym.spaces.Discrete):
        return f"needs a Discrete action space, got {action_space}"
    return None


@rlcompare.register_algorithm(
    "q_lambda",
    params={
        "alpha": Param(0.1, "float", "step size", low=0.0, high=1.0, low_open=True),
        "gamma": Param(0.99, "float", "discount", low=0.0, high=1.0),
        "lam": Param(0.9, "float", "trace decay lambda", low=0.0, high=1.0),
        "epsilon": Param(0.1, "float", "epsilon-greedy exploration", low=0.0, high=1.0),
    },
    spaces=discrete_spaces,
)
class QLambda:
    """Watkins's Q(lambda): Q-learning with eligibility traces (example plugin)."""

    def __init__(
        self,
        observation_space: gym.spaces.Discrete,
        action_space: gym.spaces.Discrete,
        hparams: Mapping[str, Any],
        rng: np.random.Generator,
    ) -> None:
        self.q = np.zeros((observation_space.n, action_space.n))
        self.traces = np.zeros_like(self.q)
        self.hp = hparams
        self.rng = rng
        self.n_actions = int(action_space.n)

    def _greedy(self, obs: int) -> int:
        best = np.flatnonzero(self.q[obs] == self.q[obs].max())
        return int(best[0]) if len(best) == 1 else int(self.rng.choice(best))

    def act(self, obs: int, step: int) -> int:
        if self.rng.random() < self.hp["epsilon"]:
            return int(self.rng.integers(self.n_actions))
        return self._greedy(obs)

    def update(
        self,
        obs: int,
        action: int,
        reward: float,
        next_obs: int,
        terminated: bool,
        truncated: bool,
        step: int,
    ) -> None:
        bootstrap = 0.0 if terminated else self.hp["gamma"] * self.q[next_obs].max()
        delta = reward + bootstrap - self.q[obs, action]
        was_greedy = self.q[obs, action] == self.q[obs].max()
        self.traces[obs, action] = 1.0
        self.q += self.hp["alpha"] * delta * self.traces
        # Watkins: traces decay after a greedy action and are cut after an exploratory one.
        self.traces *= self.hp["gamma"] * self.hp["lam"] if was_greedy else 0.0
        if terminated or truncated:
            self.traces[:] = 0.0

    def greedy_action(self, obs: int) -> int:
        return int(np.argmax(self.q[obs]))

    def eval_metrics(self) -> dict[str, float]:
        return {}
