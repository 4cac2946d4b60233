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


# FrozenLake on gymnasium's generate_random_map(8, 0.8, seed=0), the defaults of
# rlcompare/RandomFrozenLake-v0. Pinned: if gymnasium ever draws another map for the same
# settings, stored runs with these settings were made on a different lake.
DEFAULT_RANDOM_MAP = [
    "SFFFHHFF",
    "FHHFHFFF",
    "HFFFFFFF",
    "FFHHFFFF",
    "FFFFFHHF",
    "FFFFFHFF",
    "FHFFHFFF",
    "FFFFFFFG",
]


def test_random_frozen_lake_map_is_gymnasiums_random_map_of_its_settings() -> None:
    from gymnasium.envs.toy_text.frozen_lake import generate_random_map

    lake = make_env("rlcompare/RandomFrozenLake-v0")
    desc = [row.tobytes().decode() for row in lake.unwrapped.desc]
    assert desc == generate_random_map(8, 0.8, 0) == DEFAULT_RANDOM_MAP
    assert lake.spec.max_episode_steps == 200
    small = {"map_size": 5, "frozen_p": 0.7, "map_seed": 3}
    again = make_env("rlcompare/RandomFrozenLake-v0", small).unwrapped.desc
    assert again.shape == (5, 5)
    assert (again == make_env("rlcompare/RandomFrozenLake-v0", small).unwrapped.desc).all()
    other = make_env("rlcompare/RandomFrozenLake-v0", {**small, "map_seed": 4}).unwrapped.desc
    assert (other != again).any()
    # The map's settings are the env's settings, so they are part of every run's identity.
    settings = effective_env_kwargs("rlcompare/RandomFrozenLake-v0", small)
    assert {k: settings[k] for k in small} == small and settings["is_slippery"] is True
    assert success_fn("rlcompare/RandomFrozenLake-v0") is success_fn("FrozenLake-v1")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"map_size": 1}, "map_size = 1 is out of range; valid: an int in [2, 32]"),
        ({"map_size": 4.0}, "map_size = 4.0 is invalid; valid: an int in [2, 32]"),
        ({"frozen_p": 0.5}, "frozen_p = 0.5 is out of range; valid: a float in [0.6, 1.0]"),
        ({"frozen_p": "0.8"}, "frozen_p = '0.8' is invalid"),
        ({"map_seed": None}, "map_seed = None is invalid; valid: an int >= 0"),
        ({"map_seed": -1}, "map_seed = -1 is invalid; valid: an int >= 0"),
    ],
)
def test_random_frozen_lake_refuses_bad_settings_before_training(kwargs, named) -> None:
    with pytest.raises(SpecError) as info:
        rlcompare.RunSpec(
            algo="q_learning",
            env="rlcompare/RandomFrozenLake-v0",
            seed=0,
            steps=10,
            env_kwargs=kwargs,
        )
    assert named in str(info.value)


def test_random_frozen_lake_runs_on_the_tabular_engine_with_exact_regret() -> None:
    spec = rlcompare.RunSpec(
        algo="q_learning",
        env="rlcompare/RandomFrozenLake-v0",
        seed=0,
        steps=400,
        eval_every=200,
        eval_episodes=2,
        env_kwargs={"map_size": 4, "map_seed": 1},
    )
    first = rlcompare.run(spec).table.to_pandas()
    again = rlcompare.run(spec).table.to_pandas()
    metrics = set(first["metric"])
    assert {"policy_regret", "success_rate", "expected_eval_return"} <= metrics
    keep = first["metric"].isin(["policy_regret", "eval_return", "q_error"])
    assert first.loc[keep, "value"].tolist() == again.loc[keep, "value"].tolist()
    assert (first.loc[first["metric"] == "policy_regret", "value"] >= 0).all()
