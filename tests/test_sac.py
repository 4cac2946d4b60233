"""``sac``: validation before training, and learning a one-step continuous bandit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import short_run

import rlcompare
from rlcompare import SpecError

TARGET = 0.5


class ContinuousBandit(gym.Env):
    """One step: reward -(a - 0.5)^2, so the best action is 0.5 and random scores ~ -0.58."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        reward = -float((np.asarray(action).ravel()[0] - TARGET) ** 2)
        return np.zeros(1, np.float32), reward, True, False, {}


gym.register("tests/ContinuousBandit-v0", entry_point=ContinuousBandit)


def test_sac_learns_a_continuous_bandit() -> None:
    result = short_run(
        "sac",
        "tests/ContinuousBandit-v0",
        600,
        eval_every=300,
        eval_episodes=3,
        learning_starts=50,
        net_arch=[32, 32],
        batch_size=64,
    )
    evals = result.frame[result.frame["metric"] == "eval_return"]["value"].to_numpy()
    assert result.status == "ok"
    assert evals[-1] > -0.05, evals


@pytest.mark.parametrize(
    ("hparams", "named"),
    [
        ({"ent_coef": "automatic"}, "'ent_coef'"),
        ({"ent_coef": -0.1}, "'ent_coef'"),
        ({"tau": 0.0}, "'tau'"),
        ({"gradient_steps": 0}, "'gradient_steps'"),
        ({"target_entropy": "high"}, "'target_entropy'"),
        ({"learning_rate": -1.0}, "'learning_rate'"),
    ],
)
def test_sac_rejects_bad_hyperparameters(hparams: dict, named: str) -> None:
    with pytest.raises(SpecError, match=named):
        rlcompare.RunSpec("sac", "Pendulum-v1", 0, steps=10, hparams=hparams)


def test_sac_needs_continuous_actions() -> None:
    with pytest.raises(SpecError, match="Box"):
        rlcompare.RunSpec("sac", "CartPole-v1", 0, steps=10)


def test_sac_greedy_action_is_sb3s_deterministic_prediction() -> None:
    # The generic SB3 trainer picks the actor's mean action for every SAC policy.
    result = short_run("sac", "Pendulum-v1", 64, learning_starts=32, net_arch=[16], batch_size=16)
    model = result.agent.model
    model.observation_space.seed(0)
    for _ in range(10):
        obs = model.observation_space.sample()
        expected = model.predict(obs, deterministic=True)[0]
        np.testing.assert_allclose(result.agent.greedy_action(obs), expected, rtol=1e-5, atol=1e-6)
