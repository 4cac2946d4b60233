"""Env plumbing: registration on import, kwargs validation, the eval step cap, the wrapper."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlcompare
from rlcompare import SpecError
from rlcompare.envs import CUSTOM_ENVS
from rlcompare.envs.make import EVAL_STEP_CAP, effective_env_kwargs, make_env, success_fn
from rlcompare.envs.wrappers import discrete_pendulum


def test_import_registers_every_custom_env() -> None:
    assert rlcompare.envs is not None
    assert all(env_id in gym.registry for env_id in CUSTOM_ENVS)


def test_eval_envs_without_a_step_limit_are_capped() -> None:
    env = make_env("CliffWalking-v1", eval=True)
    env.reset(seed=0)
    steps, done = 0, False
    while not done:  # action 0 (up) from the start never reaches the goal
        _, _, terminated, truncated, _ = env.step(0)
        steps += 1
        done = terminated or truncated
    assert steps == EVAL_STEP_CAP
    assert make_env("CartPole-v1", eval=True).spec.max_episode_steps == 500


def test_success_tests_follow_each_env() -> None:
    lake = success_fn("FrozenLake-v1")
    assert lake(True, 1.0, {}) and not lake(True, 0.0, {})
    # Any other env is judged by the is_success of its final info, when it reports one.
    cartpole = success_fn("CartPole-v1")
    assert cartpole(True, 1.0, {}) is None and cartpole(True, 1.0, {"is_success": False}) is False
    assert success_fn("rlcompare/DynaMaze-v0")(True, 1.0, {"is_success": True})
    assert success_fn("rlcompare/SelfHealing-v0") is None  # no goal by design


def test_effective_env_kwargs_spell_out_defaults_and_the_step_limit() -> None:
    lake = effective_env_kwargs("FrozenLake-v1")
    assert lake["is_slippery"] is True and lake["map_name"] == "4x4"
    assert lake["max_episode_steps"] == 100 and "render_mode" not in lake
    assert lake["reward_schedule"] == [1, 0, 0]  # as JSON stores the tuple
    assert effective_env_kwargs("FrozenLake-v1", {"is_slippery": True, "map_name": "4x4"}) == lake
    changed = effective_env_kwargs("FrozenLake-v1", {"is_slippery": False, "max_episode_steps": 7})
    assert {k for k in lake if lake[k] != changed[k]} == {"is_slippery", "max_episode_steps"}


@pytest.mark.parametrize("n_actions", [3, 5, 11])
def test_discrete_pendulum_maps_actions_onto_the_torque_grid(n_actions: int) -> None:
    wrapper = discrete_pendulum(n_actions)
    check_env(wrapper, skip_render_check=True)
    env = gym.make("rlcompare/DiscretePendulum-v0", n_actions=n_actions)
    assert env.action_space == gym.spaces.Discrete(n_actions)
    np.testing.assert_allclose(wrapper.grid[[0, -1]], [-2.0, 2.0])
    assert wrapper.action(n_actions - 1).shape == (1,)


def test_discrete_pendulum_rejects_bad_sizes() -> None:
    with pytest.raises(SpecError, match="n_actions"):
        rlcompare.RunSpec(
            "random", "rlcompare/DiscretePendulum-v0", 0, steps=10, env_kwargs={"n_actions": 1}
        )
