"""Greedy evaluation in the compiled engine: the same rows as the gymnasium eval env, and the
exact ``expected_eval_return`` against Monte Carlo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import short_run

import rlcompare
from rlcompare.algos.tabular import kernels
from rlcompare.algos.tabular.evaluation import eval_plan
from rlcompare.envs.model import tabular_mdp
from rlcompare.envs.planning import expected_greedy_return
from rlcompare.runner.context import RunContext

ALGOS = ("q_learning", "sarsa", "expected_sarsa", "double_q", "dyna_q")
COST = ("wall_time_s", "env_steps_per_s")
# Every env with a model: (id, env kwargs, hyperparameters).
ENVS = (
    ("FrozenLake-v1", {}, {}),
    ("FrozenLake-v1", {"map_name": "8x8"}, {}),
    ("CliffWalking-v1", {}, {"gamma": 1.0}),
    ("Taxi-v4", {}, {"epsilon": 0.3}),
    ("rlcompare/MaxBias-v0", {}, {"gamma": 1.0}),
    ("rlcompare/DynaMaze-v0", {}, {"gamma": 0.95}),
    ("rlcompare/RiverSwim-v0", {}, {}),
    ("rlcompare/DeepSea-v0", {"deterministic": False}, {"exploration": "ucb"}),
    ("rlcompare/SelfHealing-v0", {}, {}),
    ("rlcompare/Chain-v0", {}, {}),
)


def without_cost(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame.metric.isin(COST)].reset_index(drop=True)


def gymnasium_rows(spec: rlcompare.RunSpec) -> pd.DataFrame:
    """The run's rows with every evaluation stepped through the gymnasium eval env
    (``train_steps``: ``loop.drive`` on the real env, ``RunContext.evaluate``)."""
    from rlcompare.algos.tabular.trainers import train_steps

    ctx = RunContext(spec)
    try:
        train_steps(ctx)
        return ctx.frame()
    finally:
        ctx.close()


@pytest.mark.parametrize(("env", "env_kwargs", "hparams"), ENVS, ids=lambda v: str(v))
@pytest.mark.parametrize("algo", ALGOS)
def test_engine_evaluation_equals_the_gymnasium_eval_env(
    algo: str, env: str, env_kwargs: dict, hparams: dict
) -> None:
    mdp = tabular_mdp(env, **env_kwargs)
    assert eval_plan(env, env_kwargs, mdp).engine  # the engine path, not the fallback
    spec = rlcompare.RunSpec(
        algo,
        env,
        3,
        steps=1_200,
        hparams=hparams,
        env_kwargs=env_kwargs,
        eval_every=400,
        eval_episodes=3,
    )
    engine = without_cost(rlcompare.run(spec).frame)
    stepped = without_cost(gymnasium_rows(spec))
    pd.testing.assert_frame_equal(engine, stepped)
    metrics = set(engine.metric)
    assert {"eval_return", "expected_eval_return"} <= metrics
    # Goals where the env has one; SelfHealing has none, but its domain metrics.
    assert ("success_rate" in metrics) == (env != "rlcompare/SelfHealing-v0")
    if env == "rlcompare/SelfHealing-v0":
        assert {"time_to_recovery", "impaired_share", "action_cost", "incidents"} <= metrics


def test_evaluations_repeat_the_same_episodes_and_ties() -> None:
    # Zero Q everywhere: every step of every episode is a tie, broken from eval_ties,
    # which restarts at every evaluation, as do the eval env's draws.
    rows = short_run(
        "q_learning", "FrozenLake-v1", 10, seed=1, eval_every=5, eval_episodes=20, alpha=1e-300
    ).frame
    returns = rows.loc[rows.metric == "eval_return", "value"]
    assert returns.size == 3 and returns.nunique() == 1


def monte_carlo(env: str, q: np.ndarray, episodes: int, seed: int) -> tuple[float, float]:
    """(mean, standard error) of the greedy policy's return over ``episodes`` episodes
    simulated by the engine's evaluation kernel."""
    mdp = tabular_mdp(env)
    limit = eval_plan(env, {}, mdp).limit
    returns, lengths = np.empty(episodes), np.empty(episodes, dtype=np.int64)
    kernels.run_evaluation(
        np.ascontiguousarray(q, dtype=np.float64),
        np.array(mdp.valid_actions),
        mdp.simulation,
        limit,
        np.random.default_rng(seed),
        np.random.default_rng(seed + 1),
        np.zeros((1, 1, 1), dtype=bool),
        False,
        returns,
        lengths,
        np.empty(episodes, dtype=bool),
        np.empty(0, np.int64),
        np.empty(0, np.int64),
    )
    return float(returns.mean()), float(returns.std(ddof=1) / np.sqrt(episodes))


@pytest.mark.parametrize(
    ("env", "scale"), [("FrozenLake-v1", 10.0), ("Taxi-v4", 1.0), ("rlcompare/SelfHealing-v0", 1.0)]
)
def test_expected_eval_return_agrees_with_monte_carlo(env: str, scale: float) -> None:
    mdp = tabular_mdp(env)
    limit = eval_plan(env, {}, mdp).limit
    # Q* rounded coarsely: a good policy with many ties (uniform picks among them).
    q = np.round(rlcompare.value_iteration(mdp, 0.95).q * scale)
    ties = (q == q.max(axis=1, keepdims=True)).sum(axis=1)
    assert (ties[~mdp.terminal] > 1).any()
    exact = expected_greedy_return(mdp, q, limit)
    mean, error = monte_carlo(env, q, 20_000, seed=5)
    assert error > 0
    assert abs(mean - exact) < 3 * error, (env, exact, mean, error)


def test_expected_eval_return_is_recorded_beside_eval_return() -> None:
    spec = rlcompare.RunSpec("q_learning", "FrozenLake-v1", 0, steps=2_000, eval_every=1_000)
    result = rlcompare.run(spec)
    frame = result.frame
    expected = frame.loc[frame.metric == "expected_eval_return", "value"].to_numpy()
    sampled = frame.loc[frame.metric == "eval_return", "value"].to_numpy()
    assert expected.size == sampled.size == 3
    assert np.all((expected >= 0) & (expected <= 1))
    mdp = tabular_mdp("FrozenLake-v1")
    assert expected[-1] == pytest.approx(expected_greedy_return(mdp, result.agent.q, 100))
