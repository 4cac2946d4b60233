"""``ppo`` and ``sb3_dqn``: Stable-Baselines3 behind our protocol (rows, schedule, budget)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import without_wall_time
from test_deep_dqn import FAST, evals
from test_deep_envs import IDENTITY, LENGTH

import rlcompare
from rlcompare import RunSpec

PPO_FAST = {"n_steps": 128, "batch_size": 64, "learning_rate": 3e-3, "n_epochs": 5}
PPO_TINY = {"n_steps": 64, "batch_size": 32, "n_epochs": 1}


def test_ppo_learns_identity_with_discrete_actions() -> None:
    result = rlcompare.run(
        RunSpec("ppo", IDENTITY, 0, steps=768, eval_every=256, eval_episodes=5, hparams=PPO_FAST)
    )
    returns = evals(result)
    assert result.status == "ok" and list(returns) == [0, 256, 512, 768]
    assert returns[0] < 0.6 * LENGTH and returns[768] >= 0.9 * LENGTH


def test_ppo_learns_with_box_actions() -> None:
    hparams = {"n_steps": 256, "batch_size": 64, "learning_rate": 3e-3, "gamma": 0.5}
    result = rlcompare.run(
        RunSpec(
            "ppo",
            "rlcompare_test/IdentityBox-v0",
            0,
            steps=2048,
            eval_every=1024,
            eval_episodes=5,
            hparams=hparams,
        )
    )
    returns = evals(result)
    assert returns[0] < 0.6 * LENGTH and returns[2048] >= 0.8 * LENGTH


@pytest.mark.parametrize("env", ["Pendulum-v1", "Acrobot-v1", "FrozenLake-v1"])
def test_ppo_runs_on_classic_envs(env: str) -> None:
    result = rlcompare.run(
        RunSpec("ppo", env, 0, steps=128, eval_every=64, eval_episodes=1, hparams=PPO_TINY)
    )
    assert result.status == "ok" and list(evals(result)) == [0, 64, 128]
    action = result.agent.greedy_action(result.agent.model.observation_space.sample())
    assert result.agent.model.action_space.contains(
        np.asarray(action, dtype=result.agent.model.action_space.dtype)
    )


def test_ppo_rows_follow_the_schema() -> None:
    result = rlcompare.run(
        RunSpec(
            "ppo", "CartPole-v1", 0, steps=320, eval_every=100, eval_episodes=2, hparams=PPO_TINY
        )
    )
    frame = result.frame
    assert list(evals(result)) == [0, 100, 200, 300, 320]
    lengths = frame[frame["metric"] == "episode_length"]
    assert lengths["episode"].tolist() == list(range(1, len(lengths) + 1))
    assert lengths["step"].tolist() == lengths["value"].cumsum().astype(int).tolist()
    assert {"wall_time_s", "env_steps_per_s", "episode_return"} <= set(frame["metric"])
    assert all(f"hp.{name}" in frame.columns for name in result.spec.resolved_hparams)


@pytest.mark.parametrize("algo", ["ppo", "sb3_dqn"])
def test_episode_budget_is_exact(algo: str) -> None:
    hparams = PPO_TINY if algo == "ppo" else {**FAST, "net_arch": [8]}
    result = rlcompare.run(RunSpec(algo, "CartPole-v1", 0, episodes=6, hparams=hparams))
    lengths = result.frame[result.frame["metric"] == "episode_length"]
    assert len(lengths) == 6
    last_eval = max(evals(result))
    assert last_eval == int(lengths["step"].iloc[-1])


def test_ppo_with_several_envs_logs_every_episode() -> None:
    result = rlcompare.run(
        RunSpec(
            "ppo",
            "CartPole-v1",
            0,
            steps=256,
            eval_every=128,
            eval_episodes=1,
            hparams={**PPO_TINY, "n_envs": 2},
        )
    )
    lengths = result.frame[result.frame["metric"] == "episode_length"]
    assert result.status == "ok" and len(lengths) >= 10
    assert list(evals(result)) == [0, 128, 256]
    assert lengths["value"].sum() <= 256


def test_sb3_dqn_learns_identity() -> None:
    result = rlcompare.run(
        RunSpec("sb3_dqn", IDENTITY, 0, steps=600, eval_every=300, eval_episodes=5, hparams=FAST)
    )
    returns = evals(result)
    assert result.status == "ok" and list(returns) == [0, 300, 600]
    assert returns[600] >= 0.9 * LENGTH


@pytest.mark.parametrize(
    ("algo", "env"),
    [
        ("ppo", "Pendulum-v1"),
        ("ppo", "rlcompare_test/IdentityDiscrete-v0"),
        ("sb3_dqn", "CartPole-v1"),
    ],
)
def test_fast_eval_policy_matches_sb3_predict(algo: str, env: str) -> None:
    hparams = PPO_TINY if algo == "ppo" else {"learning_starts": 10, "train_freq": 8}
    result = rlcompare.run(RunSpec(algo, env, 0, steps=64, eval_episodes=1, hparams=hparams))
    model = result.agent.model
    model.observation_space.seed(0)
    for _ in range(20):
        obs = model.observation_space.sample()
        expected = model.predict(obs, deterministic=True)[0]
        np.testing.assert_allclose(result.agent.greedy_action(obs), expected, rtol=1e-5)


def test_sb3_runs_do_not_leak_global_state() -> None:
    spec_a = RunSpec("ppo", "CartPole-v1", 0, steps=128, eval_episodes=2, hparams=PPO_TINY)
    spec_b = RunSpec(
        "sb3_dqn",
        "CartPole-v1",
        1,
        steps=128,
        eval_episodes=2,
        hparams={"learning_starts": 10, "train_freq": 8},
    )
    first = rlcompare.run(spec_a).frame
    rlcompare.run(spec_b)
    again = rlcompare.run(spec_a).frame
    pd.testing.assert_frame_equal(without_wall_time(first), without_wall_time(again))
