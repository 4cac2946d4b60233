"""Notebook 01: convergence of tabular TD control (Q-learning, SARSA, Expected SARSA, Double Q)
to the true Q*, and Sutton & Barto's Examples 6.6 (cliff walking) and 6.7 (maximization bias).

The convergence sweep crosses the algorithms with both step-size schedules on every env of
the notebook's ``steps``; the two textbook experiments have the book's own settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlcompare.analysis import stats
from rlcompare.experiments.common import IQM_COLUMNS, grid_per_budget, keyed
from rlcompare.experiments.evidence import iqm_ci
from rlcompare.spec.runspec import RunSpec, grid
from rlcompare.viz import plots

EXPERIMENT = "convergence"
SCHEDULES = ("constant", "visit")
# What the convergence figures and tables read; the per-episode rows stay on disk.
METRICS = ("q_error", "policy_regret", "td_error")

CLIFF_ENV = "CliffWalking-v1"
CLIFF_ALGOS = ("q_learning", "sarsa", "expected_sarsa")
# Example 6.6's settings.
CLIFF_HPARAMS = {"alpha": 0.5, "epsilon": 0.1, "gamma": 1.0}
# Online return is averaged over this many final episodes.
CLIFF_LAST_EPISODES = 100

MAXBIAS_ENV = "rlcompare/MaxBias-v0"
MAXBIAS_ALGOS = ("q_learning", "double_q")
# Example 6.7's settings.
MAXBIAS_HPARAMS = {"alpha": 0.1, "epsilon": 0.1, "gamma": 1.0}
# Share of "left" with an epsilon-greedy optimal policy (epsilon / 2 over two actions).
MAXBIAS_OPTIMAL_LEFT = 0.05
MAXBIAS_EARLY_EPISODES = 50

FINAL_COLUMNS = ["env", "hp.alpha_schedule", "algo", *IQM_COLUMNS]

__all__ = [
    "ConvergenceSpecs",
    "cliff_curves",
    "cliff_figure",
    "cliff_online",
    "final_q_error",
    "headline",
    "left_early",
    "left_share",
    "maxbias_figure",
    "q_error_figure",
    "regret_figure",
    "specs",
    "td_error_figure",
    "with_schedule",
]


class ConvergenceSpecs(NamedTuple):
    """The notebook's three sweeps and what its figures record as their parameters."""

    convergence: list[RunSpec]
    cliff: list[RunSpec]
    maxbias: list[RunSpec]
    provenance: dict[str, Any]


def specs(
    *,
    algos: Sequence[str],
    steps: Mapping[str, int],
    seeds: int,
    gamma: float,
    epsilon: float,
    alpha: float,
    omega: float,
    evals: int,
    eval_episodes: int,
    cliff_seeds: int,
    cliff_episodes: int,
    maxbias_seeds: int,
    maxbias_episodes: int,
) -> ConvergenceSpecs:
    """The specs of notebook 01 from its parameters.

    Args:
        algos: Tabular algorithms compared for convergence.
        steps: ``{env: budget in env steps}`` of the convergence sweep.
        seeds: Seeds per (algo, env, schedule).
        gamma, epsilon, alpha, omega: Hyperparameters of every convergence run; each runs
            with the constant step size ``alpha`` and with ``1 / n(s, a)^omega``.
        evals: Evaluations over each budget.
        eval_episodes: Episodes per evaluation.
        cliff_seeds, cliff_episodes: Example 6.6's seeds and budget in episodes.
        maxbias_seeds, maxbias_episodes: Example 6.7's seeds and budget in episodes.
    """
    hparams = {
        "alpha": alpha,
        "alpha_schedule": list(SCHEDULES),
        "omega": omega,
        "gamma": gamma,
        "epsilon": epsilon,
    }
    convergence = grid_per_budget(
        list(algos),
        steps,
        seeds,
        evals,
        hparams=hparams,
        eval_episodes=eval_episodes,
        experiment=EXPERIMENT,
    )
    cliff = grid(
        list(CLIFF_ALGOS),
        CLIFF_ENV,
        cliff_seeds,
        hparams=CLIFF_HPARAMS,
        episodes=cliff_episodes,
        eval_episodes=1,
        experiment="cliff",
    )
    maxbias = grid(
        list(MAXBIAS_ALGOS),
        MAXBIAS_ENV,
        maxbias_seeds,
        hparams=MAXBIAS_HPARAMS,
        episodes=maxbias_episodes,
        eval_episodes=1,
        experiment="maxbias",
    )
    provenance = {
        "steps": steps,
        "gamma": gamma,
        "epsilon": epsilon,
        "alpha": alpha,
        "omega": omega,
    }
    return ConvergenceSpecs(convergence, cliff, maxbias, provenance)


# ------------------------------------------------------------------------------ analysis
def with_schedule(frame: pd.DataFrame, schedule: str) -> pd.DataFrame:
    """The rows of the runs with step-size schedule ``schedule`` (constant or visit)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule = {schedule!r} is invalid; valid: {', '.join(SCHEDULES)}")
    return frame[frame["hp.alpha_schedule"] == schedule]


def final_q_error(frame: pd.DataFrame, reps: int) -> pd.DataFrame:
    """Final ``q_error`` per env, schedule and algo: IQM over seeds with its 95% CI."""
    by = ["env", "hp.alpha_schedule", "algo"]
    return stats.summary(frame, metric="q_error", by=by, reps=reps)[FINAL_COLUMNS]


def cliff_curves(cliff: pd.DataFrame) -> pd.DataFrame:
    """Example 6.6's curves: return per episode, mean over seeds, 10-episode moving average."""
    return stats.per_episode(cliff, "episode_return", window=10)


def cliff_online(curves: pd.DataFrame, episodes: int) -> pd.Series:
    """Mean online return per algo over the last 100 of ``episodes`` (of :func:`cliff_curves`)."""
    late = curves[curves["episode"] > episodes - CLIFF_LAST_EPISODES]
    return late.groupby("algo")["value"].mean()


def left_share(maxbias: pd.DataFrame) -> pd.DataFrame:
    """Example 6.7's curves: share of runs going left from A in each episode (a left episode
    lasts 2 steps, a right one 1)."""
    return stats.per_episode(maxbias, "episode_length", at_least=2)


def left_early(left: pd.DataFrame) -> pd.Series:
    """Mean share of left per algo over the first 50 episodes (of :func:`left_share`)."""
    early = left[left["episode"] <= MAXBIAS_EARLY_EPISODES]
    return early.groupby("algo")["value"].mean()


def headline(
    final: pd.DataFrame,
    online: pd.Series,
    early: pd.Series,
    frames: Sequence[pd.DataFrame],
) -> dict[str, Any]:
    """The notebook's headline numbers.

    Args:
        final: :func:`final_q_error` (its visit-count rows are reported).
        online: :func:`cliff_online`.
        early: :func:`left_early`.
        frames: The tidy tables of the three sweeps (their runs are counted).
    """
    visit = final[final["hp.alpha_schedule"] == "visit"]
    q_learning = visit[visit["algo"] == "q_learning"]
    claims = [
        f"{row['env']}: final max|Q - Q*| {iqm_ci(row)} (IQM, 95% CI, 1/n^omega steps)"
        for row in q_learning.to_dict("records")
    ]
    return {
        "final_q_error_iqm": keyed(visit, ["env", "algo"], "iqm"),
        "cliff_online_return_last100": online.to_dict(),
        "maxbias_left_share_first50": early.to_dict(),
        "runs": int(sum(frame["run_id"].nunique() for frame in frames)),
        "evidence": {"Q-learning": claims},
    }


# ------------------------------------------------------------------------------- figures
def q_error_figure(frame: pd.DataFrame, schedule: str, reps: int) -> tuple[Figure, np.ndarray]:
    """max |Q - Q*| against env steps, one panel per env, for one step-size schedule."""
    return plots.facets(
        plots.q_error_convergence, with_schedule(frame, schedule), col="env", reps=reps
    )


def _visit_curves(
    frame: pd.DataFrame, metric: str, reps: int, **options: Any
) -> tuple[Figure, np.ndarray]:
    """Learning curves of ``metric`` against env steps, one panel per env, visit-count steps."""
    return plots.facets(
        plots.learning_curves,
        with_schedule(frame, "visit"),
        col="env",
        metric=metric,
        reps=reps,
        **options,
    )


def td_error_figure(frame: pd.DataFrame, reps: int) -> tuple[Figure, np.ndarray]:
    """Mean |TD error| against env steps (log scale), one panel per env, visit-count steps."""
    return _visit_curves(frame, "td_error", reps, log_scale=True)


def regret_figure(frame: pd.DataFrame, reps: int) -> tuple[Figure, np.ndarray]:
    """Greedy-policy regret against env steps, one panel per env, visit-count steps."""
    return _visit_curves(frame, "policy_regret", reps)


def cliff_figure(curves: pd.DataFrame) -> tuple[Figure, Axes]:
    """Example 6.6's figure from :func:`cliff_curves`, on the book's y range."""
    fig, ax = plots.episode_curves(curves, ylabel="Sum of rewards during episode")
    ax.set_ylim(-100, 0)
    return fig, ax


def maxbias_figure(left: pd.DataFrame) -> tuple[Figure, Axes]:
    """Example 6.7's figure from :func:`left_share`, with the epsilon-greedy optimum."""
    fig, ax = plots.episode_curves(left, ylabel="Share of episodes going left from A")
    ax.axhline(MAXBIAS_OPTIMAL_LEFT, linestyle="--", color="gray", label="optimal (ε-greedy)")
    return fig, ax
