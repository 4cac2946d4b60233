"""``dqn``: learning, switches, bootstrapping, divergence, offline data, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_deep_envs import IDENTITY, LENGTH, identity_expert

import rlcompare
from rlcompare import RunSpec, SpecError
from rlcompare.algos.deep.hparams import ZOO_CARTPOLE_DQN as ZOO_CARTPOLE

# Learns Identity in a few hundred steps (one gradient step per env step, tiny network).
FAST = {
    "learning_rate": 3e-3,
    "learning_starts": 100,
    "batch_size": 32,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 100,
    "exploration_fraction": 0.3,
    "gamma": 0.5,
    "net_arch": [32],
}


def evals(result: rlcompare.RunResult, metric: str = "eval_return") -> dict[int, float]:
    rows = result.frame[result.frame["metric"] == metric]
    return dict(zip(rows["step"].tolist(), rows["value"].tolist(), strict=True))


@pytest.mark.parametrize("env", [IDENTITY, "rlcompare_test/IdentityDiscrete-v0"])
def test_dqn_learns_identity(env: str) -> None:
    result = rlcompare.run(
        RunSpec("dqn", env, 0, steps=1000, eval_every=500, eval_episodes=5, hparams=FAST)
    )
    returns = evals(result)
    assert result.status == "ok" and list(returns) == [0, 500, 1000]
    assert returns[0] < 0.6 * LENGTH and returns[1000] >= 0.9 * LENGTH
    # td_error / loss / q_mean at evaluations after learning started, none before
    assert set(evals(result, "td_error")) == set(evals(result, "loss")) == {500, 1000}
    assert set(evals(result, "q_mean")) == {500, 1000}


def _run_identity(seed: int, switches: dict) -> rlcompare.RunResult:
    """DQN with FAST and ``switches`` on IDENTITY: 800 steps, one evaluation at the end."""
    return rlcompare.run(
        RunSpec(
            "dqn",
            IDENTITY,
            seed,
            steps=800,
            eval_every=800,
            eval_episodes=5,
            hparams={**FAST, **switches},
        )
    )


@pytest.mark.parametrize(
    "switches",
    [
        {"double": True},
        {"dueling": True},
        {"n_steps": 3},
        {"prioritized": True, "per_alpha": 0.7, "per_beta": 0.5},
        {"noisy": True},
        {"exploration": "boltzmann", "temperature": 0.3},
        {"target_network": False},
        {"replay": False},
        {"tau": 0.05, "target_update_interval": 1},
        {"train_freq": 8, "gradient_steps": -1},
        {"double": True, "dueling": True, "n_steps": 2, "prioritized": True, "noisy": True},
    ],
    ids=lambda s: "+".join(f"{k}={v}" for k, v in s.items()),
)
def test_dqn_switches_learn_identity(switches: dict) -> None:
    result = _run_identity(1, switches)
    assert result.status == "ok"
    assert evals(result)[800] >= 0.8 * LENGTH


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("rlcompare_test/Constant-v0", 2.0),  # cut by a time limit: bootstrap, Q = 1 / (1 - 0.5)
        ("rlcompare_test/ConstantEnd-v0", 5 / 3),  # terminated: Q = 1 / (1 - 0.5 * 4 / 5)
    ],
)
def test_truncation_is_bootstrapped_and_termination_is_not(env: str, expected: float) -> None:
    hparams = {**FAST, "learning_rate": 1e-2, "target_update_interval": 20, "net_arch": [8]}
    result = rlcompare.run(RunSpec("dqn", env, 0, steps=1500, eval_episodes=1, hparams=hparams))
    agent = result.agent
    assert agent.q_values(np.ones(1, dtype=np.float32)) == pytest.approx([expected] * 2, abs=0.1)
    discounts = agent.buffer.discounts[: len(agent.buffer)]
    if env.endswith("End-v0"):
        assert sorted(set(discounts.tolist())) == [0.0, 0.5]
    else:
        assert set(discounts.tolist()) == {0.5}


@pytest.mark.parametrize("algo", ["dqn", "sb3_dqn"])
def test_non_finite_values_stop_the_run_as_diverged(algo: str) -> None:
    hparams = {**FAST, "learning_rate": 1e20, "max_grad_norm": None, "net_arch": [64, 64]}
    result = rlcompare.run(
        RunSpec(algo, "CartPole-v1", 0, steps=600, eval_every=200, hparams=hparams)
    )
    assert result.status == "diverged"
    assert "non-finite" in result.metadata["reason"]
    assert "diverged" in set(result.frame["metric"])
    assert (result.frame["metric"] == "eval_return").any()  # rows before divergence kept


def test_dqn_learns_offline_from_a_dataset(tmp_path) -> None:
    data = rlcompare.collect_demonstrations(
        identity_expert, IDENTITY, steps=600, seed=0, epsilon=0.7
    )
    path = data.save(tmp_path / "identity.npz")
    hparams = {**FAST, "dataset": str(path)}
    result = rlcompare.run(
        RunSpec("dqn", IDENTITY, 0, steps=400, eval_every=200, eval_episodes=5, hparams=hparams)
    )
    assert result.status == "ok"
    returns = evals(result)
    assert list(returns) == [0, 200, 400] and returns[400] >= 0.9 * LENGTH
    assert evals(result, "dataset_size") == {0: 600.0}
    assert evals(result, "demonstrator_return")[0] == pytest.approx(data.mean_return)
    assert "episode_return" not in set(result.frame["metric"])  # no env interaction


def test_offline_dqn_rejects_episode_budgets_and_other_envs(tmp_path) -> None:
    data = rlcompare.collect_demonstrations(identity_expert, IDENTITY, steps=50, seed=0)
    path = str(data.save(tmp_path / "identity.npz"))
    with pytest.raises(SpecError, match="steps budget"):  # rejected when the spec is built
        RunSpec("dqn", IDENTITY, 0, episodes=5, hparams={"dataset": path})
    with pytest.raises(SpecError, match="logged on env"):
        rlcompare.run(
            RunSpec("dqn", "rlcompare_test/Constant-v0", 0, steps=5, hparams={"dataset": path})
        )
    with pytest.raises(SpecError, match="no such file"):
        RunSpec("dqn", IDENTITY, 0, steps=5, hparams={"dataset": str(tmp_path / "missing.npz")})


def test_trained_dqn_collects_demonstrations() -> None:
    result = rlcompare.run(RunSpec("dqn", IDENTITY, 0, steps=600, eval_episodes=2, hparams=FAST))
    data = rlcompare.collect_demonstrations(result, IDENTITY, episodes=3, seed=1)
    assert data.mean_return >= 0.9 * LENGTH
    assert result.agent.predict(np.eye(4, dtype=np.float32)[2])[0] == 2


def test_episode_budget_spans_episodes_times_the_time_limit() -> None:
    result = rlcompare.run(RunSpec("dqn", IDENTITY, 0, episodes=30, hparams=FAST))
    assert result.agent.horizon == 30 * LENGTH
    assert (result.frame["metric"] == "episode_return").sum() == 30


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dqn_trains_on_cuda() -> None:
    for switches in ({}, {"dueling": True, "noisy": True, "prioritized": True}):
        result = _run_identity(0, {**switches, "device": "cuda"})
        assert result.status == "ok"
        assert result.agent.learner.params.device.type == "cuda"
        assert evals(result)[800] >= 0.8 * LENGTH


@pytest.mark.slow
def test_dqn_solves_cartpole_with_zoo_hyperparameters() -> None:
    result = rlcompare.run(
        RunSpec("dqn", "CartPole-v1", 0, steps=50_000, eval_every=2500, hparams=ZOO_CARTPOLE)
    )
    assert result.status == "ok"
    assert max(evals(result).values()) >= 475
