"""Notebook 04: Dyna-Q. The Dyna maze of Sutton & Barto's Example 8.1 (steps per episode for
several numbers of planning steps), then Dyna-Q against Q-learning on the tabular envs
(greedy-policy regret against env steps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlcompare.analysis import stats
from rlcompare.experiments.common import grid_per_budget, keyed
from rlcompare.spec.runspec import RunSpec, grid
from rlcompare.viz import plots

MAZE_ENV = "rlcompare/DynaMaze-v0"
# Example 8.1's settings (the planning steps come from the notebook).
MAZE_HPARAMS = {"alpha": 0.1, "epsilon": 0.1, "gamma": 0.95}
# The first episode is the same random walk whatever the planning: it is left out of the mean.
MAZE_FIRST_COUNTED = 2

__all__ = [
    "ModelBasedSpecs",
    "headline",
    "maze_curves",
    "maze_figure",
    "maze_late",
    "regret_auc",
    "regret_figure",
    "specs",
]


class ModelBasedSpecs(NamedTuple):
    """The notebook's two sweeps and the maze's hyperparameters (its figure's parameters)."""

    maze: list[RunSpec]
    compare: list[RunSpec]
    maze_hparams: dict[str, Any]


def specs(
    *,
    maze_seeds: int,
    maze_episodes: int,
    planning_steps: Sequence[int],
    seeds: int,
    steps: Mapping[str, int],
    dyna_planning_steps: int,
    gamma: float,
    evals: int,
    eval_episodes: int,
) -> ModelBasedSpecs:
    """The specs of notebook 04 from its parameters.

    Args:
        maze_seeds, maze_episodes: Seeds and budget in episodes of the Dyna maze.
        planning_steps: Planning steps per real step swept in the maze.
        seeds: Seeds per (algo, env) of the comparison.
        steps: ``{env: budget in env steps}`` of the comparison.
        dyna_planning_steps: Dyna-Q's planning steps in the comparison.
        gamma, evals, eval_episodes: Discount and eval protocol of the comparison.
    """
    maze_hparams = {**MAZE_HPARAMS, "planning_steps": list(planning_steps)}
    maze = grid(
        "dyna_q",
        MAZE_ENV,
        maze_seeds,
        hparams=maze_hparams,
        episodes=maze_episodes,
        eval_episodes=1,
        experiment="dyna_maze",
    )
    contenders = {"q_learning": {}, "dyna_q": {"planning_steps": dyna_planning_steps}}
    compare: list[RunSpec] = []
    for env, budget in steps.items():
        for algo, extra in contenders.items():
            compare += grid_per_budget(
                algo,
                {env: budget},
                seeds,
                evals,
                hparams={"gamma": gamma, **extra},
                eval_episodes=eval_episodes,
                experiment="dyna_vs_q",
            )
    return ModelBasedSpecs(maze, compare, maze_hparams)


# ------------------------------------------------------------------------------ analysis
def maze_curves(maze: pd.DataFrame) -> pd.DataFrame:
    """Steps per episode in the maze, mean over seeds, per number of planning steps."""
    return stats.per_episode(maze, "episode_length", by="hp.planning_steps")


def maze_late(curves: pd.DataFrame) -> pd.Series:
    """Mean steps per episode after the first, per number of planning steps."""
    late = curves[curves["episode"] >= MAZE_FIRST_COUNTED]
    return late.groupby("hp.planning_steps")["value"].mean()


def regret_auc(compare: pd.DataFrame) -> pd.Series:
    """Normalized area under the regret curve (lower is better), mean over seeds, per
    (env, algo)."""
    return stats.auc(compare, "policy_regret").groupby(["env", "algo"])["auc"].mean()


def headline(late: pd.Series, auc: pd.Series, frames: Sequence[pd.DataFrame]) -> dict[str, Any]:
    """The notebook's headline numbers.

    Args:
        late: :func:`maze_late`.
        auc: :func:`regret_auc`.
        frames: The tidy tables of the two sweeps (their runs are counted).
    """
    first, last = late.index[0], late.index[-1]
    return {
        "maze_steps_per_episode_after_first": {str(k): v for k, v in late.items()},
        "regret_auc": keyed(auc.reset_index(), ["env", "algo"], "auc"),
        "runs": int(sum(frame["run_id"].nunique() for frame in frames)),
        "evidence": {
            "Model-based (Dyna-Q)": (
                f"Dyna maze: {late.iloc[-1]:.0f} steps per episode with {last} planning steps "
                f"vs {late.iloc[0]:.0f} with {first}"
            )
        },
    }


# ------------------------------------------------------------------------------- figures
def maze_figure(curves: pd.DataFrame) -> tuple[Figure, Axes]:
    """Figure 8.2: steps per episode against episodes, one line per number of planning
    steps (from :func:`maze_curves`)."""
    fig, ax = plots.episode_curves(curves, hue="hp.planning_steps", ylabel="Steps per episode")
    ax.set_ylim(0, 800)
    return fig, ax


def regret_figure(compare: pd.DataFrame, reps: int) -> tuple[Figure, np.ndarray]:
    """Greedy-policy regret against env steps, one panel per env, Dyna-Q and Q-learning."""
    return plots.facets(
        plots.learning_curves, compare, col="env", metric="policy_regret", reps=reps
    )
