"""``bc``: behavioral cloning of logged demonstrations, its rows and the PPO warm start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import short_run
from test_deep_dqn import evals
from test_deep_envs import LENGTH

import rlcompare
from rlcompare import RunSpec, SpecError


def cartpole_expert(obs: np.ndarray) -> int:
    """A hand-written CartPole controller: push towards where the pole is falling."""
    return int(obs[2] + 0.5 * obs[3] > 0)


@pytest.fixture(scope="module")
def cartpole_demos(tmp_path_factory) -> tuple[Path, rlcompare.Dataset]:
    data = rlcompare.collect_demonstrations(
        cartpole_expert, "CartPole-v1", episodes=4, seed=0, source="hand-written controller"
    )
    return data.save(tmp_path_factory.mktemp("demos") / "cartpole.npz"), data


def test_the_hand_written_expert_scores_500(cartpole_demos) -> None:
    _, data = cartpole_demos
    assert data.mean_return == 500.0 and len(data) == 2000


def test_bc_reaches_the_experts_return_on_cartpole(cartpole_demos) -> None:
    path, data = cartpole_demos
    result = short_run("bc", "CartPole-v1", 400, eval_every=200, eval_episodes=5, dataset=str(path))
    assert result.status == "ok"
    returns = evals(result)
    assert list(returns) == [0, 200, 400]  # the step column counts gradient steps
    assert returns[0] < 200 and returns[400] >= 0.95 * data.mean_return
    assert evals(result, "dataset_size") == {0: 2000.0}
    assert evals(result, "demonstrator_return") == {0: 500.0}
    assert set(evals(result, "loss")) == {200, 400}
    assert "episode_return" not in set(result.frame["metric"])


def test_bc_epoch_budget_counts_passes_over_the_dataset(tmp_path) -> None:
    data = rlcompare.collect_demonstrations(cartpole_expert, "CartPole-v1", steps=100, seed=1)
    path = data.save(tmp_path / "small.npz")
    result = rlcompare.run(
        RunSpec(
            "bc",
            "CartPole-v1",
            0,
            episodes=3,
            eval_episodes=1,
            hparams={"dataset": str(path), "batch_size": 32},
        )
    )
    # 100 transitions in batches of 32: 4 gradient steps per epoch, evaluated after each epoch
    assert list(evals(result)) == [0, 4, 8, 12]
    assert np.isnan(evals(result, "demonstrator_return")[0])  # no finished episode in the log


def test_bc_clones_continuous_actions(tmp_path) -> None:
    env = "rlcompare_test/IdentityBox-v0"
    data = rlcompare.collect_demonstrations(lambda obs: obs.copy(), env, steps=500, seed=0)
    path = data.save(tmp_path / "box.npz")
    result = short_run("bc", env, 500, eval_episodes=5, dataset=str(path), learning_rate=3e-3)
    assert evals(result)[500] >= 0.9 * LENGTH


def test_bc_policy_warm_starts_ppo(cartpole_demos, tmp_path) -> None:
    path, _ = cartpole_demos
    cloned = short_run("bc", "CartPole-v1", 200, seed=3, eval_episodes=3, dataset=str(path))
    weights = cloned.agent.save_policy(tmp_path / "bc_policy.pt")
    warm = short_run(
        "ppo",
        "CartPole-v1",
        64,
        seed=3,
        eval_episodes=3,
        warm_start=str(weights),
        n_steps=64,
        batch_size=32,
    )
    # Same actor, same eval seed: PPO starts exactly where behavioral cloning ended.
    assert evals(warm)[0] == evals(cloned)[200]
    with pytest.raises(SpecError, match="net_arch"):
        rlcompare.run(
            RunSpec(
                "ppo",
                "CartPole-v1",
                3,
                steps=64,
                hparams={"warm_start": str(weights), "net_arch": [32], "n_steps": 64},
            )
        )


def test_bc_needs_an_existing_dataset_of_the_same_env(cartpole_demos, tmp_path) -> None:
    path, _ = cartpole_demos
    with pytest.raises(SpecError, match="no such file"):  # rejected when the spec is built
        RunSpec("bc", "CartPole-v1", 0, steps=5, hparams={"dataset": str(tmp_path / "nothing.npz")})
    with pytest.raises(SpecError, match="logged on env"):
        rlcompare.run(RunSpec("bc", "Acrobot-v1", 0, steps=5, hparams={"dataset": str(path)}))
