"""Tabular learners: validation, both training paths, reproducibility, metrics, datasets."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from conftest import assert_engine_matches_step_api, short_run

import rlcompare
from rlcompare.envs.model import TabularMDP
from rlcompare.envs.textbook import TabularEnv

ALGOS = ("q_learning", "sarsa", "expected_sarsa", "double_q", "dyna_q")
COST = ("wall_time_s", "env_steps_per_s")


class RandomMDPEnv(TabularEnv):
    """A fixed random 4-state, 2-action MDP with stochastic transitions and full coverage."""

    def __init__(self, render_mode: str | None = None) -> None:
        rng = np.random.default_rng(7)
        table = {
            s: {
                a: [
                    (float(p), t, float(r), False)
                    for t, (p, r) in enumerate(
                        zip(rng.dirichlet(np.ones(4)), rng.random(4), strict=True)
                    )
                ]
                for a in range(2)
            }
            for s in range(4)
        }
        mdp = TabularMDP.from_transitions(table, np.full(4, 0.25), n_states=4, n_actions=2)
        super().__init__(mdp, render_mode)


for _id, _entry in (("rlcompare_test/RandomMDP-v0", RandomMDPEnv),):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_entry, max_episode_steps=50)


def without_cost(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame.metric.isin(COST)].reset_index(drop=True)


def metric(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame.loc[frame.metric == name, "value"].reset_index(drop=True)


# -- declaration and validation -----------------------------------------------------------
def test_algorithms_registered_without_numba() -> None:
    import subprocess
    import sys

    code = "import rlcompare.algos.tabular, sys; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert set(ALGOS) <= set(rlcompare.algorithms())


@pytest.mark.parametrize(
    ("hparams", "match"),
    [
        ({"alpha": 0.0}, r"'alpha'.*\(0, 1\]"),
        ({"alpha": 1.5}, r"'alpha'.*\(0, 1\]"),
        ({"gamma": -0.1}, r"'gamma'.*\[0, 1\]"),
        ({"epsilon": 2.0}, r"'epsilon'.*\[0, 1\]"),
        ({"omega": 0.5}, r"'omega'.*\(0.5, 1\]"),
        ({"temperature": 0.0}, r"'temperature'"),
        ({"exploration": "softmax"}, "epsilon_greedy, boltzmann, ucb"),
        ({"alpha_schedule": "harmonic"}, "constant, visit"),
        ({"epsilon_final": 0.0, "epsilon_decay": "exponential"}, r"epsilon_final=0\.0.*> 0"),
        ({"dataset": "/nonexistent/data.npz"}, "no such file"),
        ({"planning_steps": 5}, "unknown hyperparameter 'planning_steps'"),
    ],
)
def test_bad_hyperparameters_are_rejected(hparams: dict, match: str) -> None:
    with pytest.raises(rlcompare.SpecError, match=match):
        rlcompare.RunSpec("q_learning", "FrozenLake-v1", 0, steps=10, hparams=hparams)


def test_tabular_algos_need_discrete_observations() -> None:
    for algo in ALGOS:
        with pytest.raises(rlcompare.SpecError, match="Discrete observation space"):
            rlcompare.RunSpec(algo, "CartPole-v1", 0, steps=10)
    with pytest.raises(rlcompare.SpecError, match="planning_steps"):
        rlcompare.RunSpec("dyna_q", "FrozenLake-v1", 0, steps=10, hparams={"planning_steps": -1})


# -- every learner, every strategy ------------------------------------------------------------
@pytest.mark.parametrize("algo", ALGOS)
def test_every_learner_solves_the_chain(algo: str) -> None:
    frame = short_run(
        algo, "rlcompare/Chain-v0", 2_000, eval_episodes=2, alpha=0.5, gamma=0.9
    ).frame
    assert metric(frame, "success_rate").iloc[-1] == 1.0
    assert metric(frame, "eval_return").iloc[-1] == 1.0
    assert metric(frame, "policy_regret").iloc[-1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "hparams",
    [
        {"exploration": "boltzmann", "temperature": 0.2},
        {"exploration": "ucb", "ucb_c": 0.5},
        {"epsilon": 1.0, "epsilon_final": 0.05, "epsilon_decay_steps": 1_000},
        {"alpha_schedule": "visit", "omega": 0.8, "q_init": 1.0},
    ],
)
def test_strategies_and_step_sizes_solve_the_chain(hparams: dict) -> None:
    result = short_run("q_learning", "rlcompare/Chain-v0", 3_000, seed=1, gamma=0.9, **hparams)
    assert metric(result.frame, "success_rate").iloc[-1] == 1.0


# -- reproducibility -----------------------------------------------------------------------
def specs(algo: str, env: str, seeds: Any, **fields: Any) -> list[rlcompare.RunSpec]:
    return [rlcompare.RunSpec(algo, env, seed, **fields) for seed in seeds]


@pytest.mark.parametrize(
    ("algo", "env", "hparams"),
    [
        ("q_learning", "FrozenLake-v1", {}),
        ("double_q", "rlcompare/MaxBias-v0", {"gamma": 1.0}),
        ("dyna_q", "rlcompare/DynaMaze-v0", {"gamma": 0.95, "planning_steps": 3}),
    ],
)
def test_a_seed_gives_the_same_rows_alone_or_in_any_batch(
    algo: str, env: str, hparams: dict
) -> None:
    fields = {"steps": 1_500, "hparams": hparams, "eval_every": 500, "eval_episodes": 2}
    batch = rlcompare.run_batch(specs(algo, env, range(4), **fields))
    alone = rlcompare.run(specs(algo, env, range(2, 3), **fields)[0])
    other = rlcompare.run_batch(specs(algo, env, range(2, 6), **fields))
    pd.testing.assert_frame_equal(without_cost(batch[2].frame), without_cost(alone.frame))
    pd.testing.assert_frame_equal(without_cost(other[0].frame), without_cost(alone.frame))
    np.testing.assert_array_equal(batch[2].agent.q, alone.agent.q)
    assert not without_cost(batch[1].frame).equals(without_cost(batch[2].frame))


@pytest.mark.parametrize(
    ("algo", "env", "hparams", "env_kwargs"),
    [
        ("q_learning", "FrozenLake-v1", {}, {}),
        ("sarsa", "Taxi-v4", {"epsilon": 0.3}, {}),
        ("expected_sarsa", "CliffWalking-v1", {"gamma": 1.0, "exploration": "boltzmann"}, {}),
        ("double_q", "rlcompare/MaxBias-v0", {"gamma": 1.0}, {}),
        ("dyna_q", "rlcompare/DeepSea-v0", {"exploration": "ucb"}, {"deterministic": False}),
    ],
)
def test_engine_equals_the_step_api_on_the_real_env(
    algo: str, env: str, hparams: dict, env_kwargs: dict
) -> None:
    spec = rlcompare.RunSpec(
        algo,
        env,
        5,
        steps=2_500,
        hparams=hparams,
        env_kwargs=env_kwargs,
        eval_every=700,
        eval_episodes=2,
    )
    assert_engine_matches_step_api(spec)


# -- budgets, rows and metrics --------------------------------------------------------------
def test_episode_budget_is_exact() -> None:
    spec = rlcompare.RunSpec(
        "sarsa",
        "CliffWalking-v1",
        0,
        episodes=37,
        eval_every=10**6,
        hparams={"gamma": 1.0, "alpha": 0.5},
        eval_episodes=1,
    )
    frame = rlcompare.run(spec).frame
    lengths = frame[frame.metric == "episode_length"]
    assert lengths.episode.tolist() == list(range(1, 38))
    returns = frame[frame.metric == "episode_return"]
    assert returns.step.tolist() == lengths.value.cumsum().astype(int).tolist()
    assert frame.step.max() == returns.step.iloc[-1]
    assert metric(frame, "eval_return").size == 2  # at step 0 and at the end


def test_time_limit_truncates_episodes() -> None:
    lengths = metric(
        short_run("q_learning", "rlcompare/RiverSwim-v0", 1_000, gamma=0.9).frame, "episode_length"
    )
    assert (lengths == 20).all() and lengths.size == 50


def test_td_error_decreases_on_a_small_mdp() -> None:
    result = short_run(
        "q_learning", "rlcompare/Chain-v0", 3_000, eval_every=500, alpha=0.5, gamma=0.9
    )
    td = metric(result.frame, "td_error")
    assert td.size == 6  # none at step 0: no updates yet
    assert td.iloc[0] > 0.01 > td.iloc[-1]


def test_model_metrics_present_with_a_model() -> None:
    frame = short_run("q_learning", "Taxi-v4", 1_000, eval_every=500, gamma=0.9).frame
    for name in ("q_error", "policy_regret"):
        values = metric(frame, name)
        assert values.size == 3 and np.isfinite(values).all()
    assert metric(frame, "td_error").size == 2


def test_no_model_metrics_without_a_model() -> None:
    result = short_run(
        "q_learning", "rlcompare_test/NoModelChain-v0", 1_000, eval_every=250, alpha=0.5, gamma=0.9
    )
    metrics = set(result.frame.metric)
    assert {"q_error", "policy_regret"}.isdisjoint(metrics)
    assert {"td_error", "eval_return", "episode_return"} <= metrics
    assert metric(result.frame, "eval_return").iloc[-1] == 1.0
    assert "no model" in result.metadata["model_metrics"]


def test_model_metrics_skipped_when_values_are_infinite() -> None:
    result = short_run("q_learning", "rlcompare/RiverSwim-v0", 100, eval_every=5, gamma=1.0)
    assert "q_error" not in set(result.frame.metric)
    assert result.status == "ok"


def test_robbins_monro_q_learning_converges_to_q_star() -> None:
    spec_fields = {
        "steps": 200_000,
        "eval_every": 100_000,
        "eval_episodes": 1,
        "hparams": {"alpha_schedule": "visit", "omega": 0.8, "gamma": 0.5, "epsilon": 1.0},
    }
    for result in rlcompare.run_batch(
        specs("q_learning", "rlcompare_test/RandomMDP-v0", range(2), **spec_fields)
    ):
        errors = metric(result.frame, "q_error")
        assert errors.iloc[0] > 0.5
        assert errors.iloc[-1] < 0.01


# -- learning from logged data ---------------------------------------------------------------
def test_learning_from_a_dataset(tmp_path: Any) -> None:
    data = rlcompare.collect_demonstrations(
        lambda obs: 0, "rlcompare/Chain-v0", steps=3_000, seed=0, epsilon=1.0
    )
    path = data.save(tmp_path / "chain.npz")
    fields = {
        "steps": 5_000,
        "eval_every": 1_000,
        "eval_episodes": 1,
        "hparams": {"dataset": str(path), "gamma": 0.9, "alpha": 0.5},
    }
    for algo in ("q_learning", "expected_sarsa", "double_q"):
        result = rlcompare.run(rlcompare.RunSpec(algo, "rlcompare/Chain-v0", 0, **fields))
        frame = result.frame
        assert "episode_return" not in set(frame.metric)  # no env interaction
        assert metric(frame, "q_error").iloc[-1] < 0.05
        assert metric(frame, "success_rate").iloc[-1] == 1.0
        assert result.agent.state.visits.sum() == 5_000
    first, second = rlcompare.run_batch(specs("q_learning", "rlcompare/Chain-v0", [1, 1], **fields))
    np.testing.assert_array_equal(first.agent.q, second.agent.q)
    episodes = {**fields, "steps": None, "episodes": 10}
    with pytest.raises(rlcompare.SpecError, match="steps budget"):
        rlcompare.run(rlcompare.RunSpec("q_learning", "rlcompare/Chain-v0", 0, **episodes))
