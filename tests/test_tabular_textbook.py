"""The textbook results the tabular learners must reproduce (Sutton & Barto, 2nd ed.)."""

from __future__ import annotations

import pandas as pd

import rlcompare


def episodes(algo: str, env: str, n: int, seeds: int, hparams: dict) -> pd.DataFrame:
    """Training rows of ``seeds`` runs of ``n`` episodes (evaluations only at both ends)."""
    specs = [
        rlcompare.RunSpec(
            algo, env, seed, episodes=n, hparams=hparams, eval_every=10**9, eval_episodes=1
        )
        for seed in range(seeds)
    ]
    frame = pd.concat([result.frame for result in rlcompare.run_batch(specs)])
    return frame[frame.metric.isin(["episode_return", "episode_length"])]


def test_cliff_walking_example_6_6() -> None:
    """SARSA's online return beats Q-learning's: it learns the safe path, Q-learning the
    optimal one along the edge, where epsilon-greedy steps fall off."""
    hparams = {"epsilon": 0.1, "alpha": 0.5, "gamma": 1.0}
    mean_return = {}
    for algo in ("q_learning", "sarsa", "expected_sarsa"):
        frame = episodes(algo, "CliffWalking-v1", 500, 3, hparams)
        returns = frame[frame.metric == "episode_return"]
        assert returns.groupby("seed").size().eq(500).all()
        mean_return[algo] = returns[returns.episode > 100].value.mean()
    assert mean_return["sarsa"] > mean_return["q_learning"] + 10
    assert mean_return["expected_sarsa"] > mean_return["q_learning"] + 10
    assert -35 < mean_return["sarsa"] < -15 and -65 < mean_return["q_learning"] < -40


def test_maximization_bias_example_6_7() -> None:
    """Q-learning goes left from A far more often than Double Q early on (left: length 2)."""
    hparams = {"epsilon": 0.1, "alpha": 0.1, "gamma": 1.0}
    left_rate = {}
    for algo in ("q_learning", "double_q"):
        frame = episodes(algo, "rlcompare/MaxBias-v0", 100, 60, hparams)
        lengths = frame[(frame.metric == "episode_length") & (frame.episode <= 50)]
        left_rate[algo] = (lengths.value == 2).mean()
    assert left_rate["q_learning"] > 0.6
    assert left_rate["double_q"] < left_rate["q_learning"] - 0.3


def test_dyna_maze_example_8_1() -> None:
    """Planning shortens the second episode from hundreds of steps to a few dozen."""
    hparams = {"alpha": 0.1, "epsilon": 0.1, "gamma": 0.95}
    second = {}
    for n in (0, 5, 50):
        frame = episodes("dyna_q", "rlcompare/DynaMaze-v0", 50, 5, {**hparams, "planning_steps": n})
        lengths = frame[frame.metric == "episode_length"]
        assert lengths.groupby("seed").size().eq(50).all()
        second[n] = lengths[lengths.episode == 2].value.mean()
        final = lengths[lengths.episode > 40].value.mean()
        assert final < 25  # the shortest path takes 14 steps
    assert second[50] < second[5] < second[0]
    assert second[0] > 300 and second[50] < 100
