"""Our textbook envs: gymnasium's checker, their models, and the facts of each layout."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlcompare

ENVS = [
    ("rlcompare/MaxBias-v0", {}),
    ("rlcompare/MaxBias-v0", {"n_actions_b": 1}),
    ("rlcompare/DynaMaze-v0", {}),
    ("rlcompare/RiverSwim-v0", {}),
    ("rlcompare/DeepSea-v0", {}),
    ("rlcompare/DeepSea-v0", {"size": 6, "deterministic": False, "mapping_seed": None}),
    ("rlcompare/Chain-v0", {}),
]


@pytest.mark.parametrize(("env_id", "kwargs"), ENVS)
def test_check_env_and_model(env_id: str, kwargs: dict) -> None:
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    mdp = env.unwrapped.tabular_mdp()
    assert rlcompare.tabular_mdp(env_id, **kwargs).n_states == mdp.n_states
    assert env.observation_space.n == mdp.n_states
    assert env.action_space.n == mdp.n_actions
    np.testing.assert_allclose(mdp.transitions.sum(axis=2), 1.0)
    assert mdp.valid_actions.any(axis=1).all()


def rollout(env_id: str, actions: list[int], seed: int = 0, **kwargs: object) -> list:
    env = gym.make(env_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    steps = [(obs, 0.0, False, {})]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append((obs, reward, terminated, info))
        if terminated or truncated:
            break
    return steps


def test_max_bias() -> None:
    right = rollout("rlcompare/MaxBias-v0", [0])
    assert right[-1][1:3] == (0.0, True) and right[-1][3]["is_success"]
    left = rollout("rlcompare/MaxBias-v0", [1, 7])
    assert [step[0] for step in left] == [0, 1, 2]
    assert left[-1][2] and not left[-1][3]["is_success"]
    assert rollout("rlcompare/MaxBias-v0", [3])[-1][0] == 1  # odd invalid action: left
    mdp = rlcompare.tabular_mdp("rlcompare/MaxBias-v0")
    assert mdp.valid_actions[0].sum() == 2 and mdp.valid_actions[1].sum() == 10
    assert mdp.rewards[1, 5] == pytest.approx(-0.1) and mdp.reward_std[1, 5] == 1.0
    rewards = [rollout("rlcompare/MaxBias-v0", [1, 0], seed=s)[-1][1] for s in range(400)]
    assert np.mean(rewards) == pytest.approx(-0.1, abs=0.15)
    assert np.std(rewards) == pytest.approx(1.0, abs=0.15)
    solution = rlcompare.value_iteration(mdp, 1.0)
    np.testing.assert_allclose(solution.q[0, :2], [0.0, -0.1])


def test_dyna_maze_layout() -> None:
    env = gym.make("rlcompare/DynaMaze-v0")
    assert env.spec.max_episode_steps is None
    mdp = env.unwrapped.tabular_mdp()
    assert np.argmax(mdp.initial) == 2 * 9 + 0
    assert np.flatnonzero(mdp.terminal).tolist() == [0 * 9 + 8]
    assert mdp.reachable.sum() == 54 - 7  # every cell but the seven walls
    # The shortest path takes 14 steps, so V*(start) = 0.95^13 at gamma 0.95.
    solution = rlcompare.value_iteration(mdp, 0.95)
    assert solution.v[18] == pytest.approx(0.95**13)
    # Up from the start: (1, 0); right from (2, 1) hits the wall at (2, 2).
    steps = rollout("rlcompare/DynaMaze-v0", [0, 1, 3, 3])
    assert [step[0] for step in steps] == [18, 9, 18, 19, 19]


def test_river_swim() -> None:
    mdp = rlcompare.tabular_mdp("rlcompare/RiverSwim-v0")
    np.testing.assert_allclose(mdp.initial, [0.5, 0.5, 0, 0, 0, 0])
    np.testing.assert_allclose(mdp.transitions[2, 1, 1:4], [0.1, 0.6, 0.3])
    np.testing.assert_allclose(mdp.transitions[5, 1, 4:], [0.7, 0.3])
    assert mdp.rewards[0, 0] == 5.0 and mdp.rewards[5, 1] == pytest.approx(3000.0)
    assert not mdp.terminal.any()
    assert gym.make("rlcompare/RiverSwim-v0").spec.max_episode_steps == 20
    # Swimming upstream is optimal at gamma 0.95.
    assert (rlcompare.value_iteration(mdp, 0.95).policy == 1).all()


def test_deep_sea() -> None:
    env = gym.make("rlcompare/DeepSea-v0", size=5)
    mapping = env.unwrapped.action_mapping
    assert mapping.shape == (5, 5) and 0 < mapping.sum() < 25  # randomized per cell
    other = gym.make("rlcompare/DeepSea-v0", size=5, mapping_seed=1).unwrapped.action_mapping
    assert not np.array_equal(mapping, other)
    env.reset(seed=0)
    column, total = 0, 0.0
    for row in range(5):
        obs, reward, terminated, _, info = env.step(int(mapping[row, column]))
        column = min(column + 1, 4)
        total += reward
    assert terminated and info["is_success"] and obs == 25
    assert total == pytest.approx(1.0 - 0.01)
    mdp = env.unwrapped.tabular_mdp()
    assert rlcompare.value_iteration(mdp, 1.0).v[0] == pytest.approx(0.99)


def test_chain() -> None:
    steps = rollout("rlcompare/Chain-v0", [1, 0, 1, 1, 1, 1])
    assert [step[0] for step in steps] == [0, 1, 0, 1, 2, 3, 4]
    assert steps[-1][1:3] == (1.0, True) and steps[-1][3]["is_success"]
    assert gym.make("rlcompare/Chain-v0", length=3).observation_space.n == 3
