"""Scripted demonstrators: the scores their docstrings promise, and determinism."""

from __future__ import annotations

import numpy as np

import rlcompare
from rlcompare.envs.experts import cartpole_expert, cartpole_novice


def test_the_cartpole_expert_scores_500_on_every_episode() -> None:
    data = rlcompare.collect_demonstrations(cartpole_expert, "CartPole-v1", episodes=20, seed=0)
    assert np.all(data.episode_returns == 500.0)


def test_the_cartpole_novice_is_a_poor_demonstrator() -> None:
    data = rlcompare.collect_demonstrations(cartpole_novice, "CartPole-v1", episodes=50, seed=0)
    assert 20.0 < data.mean_return < 80.0
    assert data.episode_returns.max() < 200.0


def test_the_experts_are_deterministic_functions_of_the_observation() -> None:
    obs = np.array([0.0, 0.0, 0.01, -0.05], dtype=np.float32)
    assert cartpole_expert(obs) == 0  # falling back to the left: push left
    assert cartpole_novice(obs) == 1  # leaning right: push right, whatever the velocity
    assert cartpole_expert(-obs) == 1 and cartpole_novice(-obs) == 0
    assert isinstance(cartpole_expert(obs), int)
