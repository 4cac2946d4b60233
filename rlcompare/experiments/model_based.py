"""Notebook 04: model-based RL. The Dyna maze of Sutton & Barto's Example 8.1 (steps per
episode for several numbers of planning steps), then Q-learning against every learner that
learns a model (Dyna-Q with its last-seen, sampled and expected models, prioritized
sweeping, certainty equivalence, PSRL) on deterministic and stochastic tabular envs: exact
regret against env steps and against planning updates, model error, final IQM with CIs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlcompare.analysis import stats
from rlcompare.experiments.common import IQM_COLUMNS, grid_per_budget, keyed, psrl_hparams
from rlcompare.experiments.evidence import iqm_ci
from rlcompare.spec.runspec import RunSpec, grid
from rlcompare.viz import plots
from rlcompare.viz.style import figure_legend, level_colors, metric_label

MAZE_ENV = "rlcompare/DynaMaze-v0"
# Example 8.1's settings (the planning steps come from the notebook).
MAZE_HPARAMS = {"alpha": 0.1, "epsilon": 0.1, "gamma": 0.95}
# The first episode is the same random walk whatever the planning: it is left out of the mean.
MAZE_FIRST_COUNTED = 2

# The learners of the comparison, as labels (the runs' ``experiment``); Dyna-Q once per model.
LEARNERS = (
    "q_learning",
    "dyna_q-last",
    "dyna_q-sample",
    "dyna_q-expected",
    "prioritized_sweeping",
    "certainty_equivalence",
    "psrl",
)
MODEL_LEARNERS = LEARNERS[1:]
# How the evidence claims name them.
EVIDENCE_NAMES = {
    "q_learning": "Q-learning",
    "dyna_q-last": "Dyna-Q (last-seen model)",
    "dyna_q-sample": "Dyna-Q (sampled model)",
    "dyna_q-expected": "Dyna-Q (expected model)",
    "prioritized_sweeping": "prioritized sweeping",
    "certainty_equivalence": "certainty equivalence",
    "psrl": "PSRL",
}
FINAL_COLUMNS = ["env", "learner", *IQM_COLUMNS]
# Where a run's learner label lives: its ``experiment`` (an identity column every analysis
# function keeps).
LEARNER = "experiment"

__all__ = [
    "FINAL_COLUMNS",
    "LEARNERS",
    "ModelBasedSpecs",
    "final_regret",
    "headline",
    "maze_curves",
    "maze_figure",
    "maze_late",
    "model_error_figure",
    "planning_figure",
    "regret_auc",
    "regret_figure",
    "specs",
]


class ModelBasedSpecs(NamedTuple):
    """The notebook's two sweeps and the maze's hyperparameters (its figure's parameters)."""

    maze: list[RunSpec]
    compare: list[RunSpec]
    maze_hparams: dict[str, Any]


def contenders(
    env: str, planning_steps: int, replan_every: int, psrl: bool
) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{learner label: (algo, hyperparameters)}`` of the comparison on ``env``."""
    planning = {"planning_steps": planning_steps}
    learners: dict[str, tuple[str, dict[str, Any]]] = {"q_learning": ("q_learning", {})}
    for model in ("last", "sample", "expected"):
        learners[f"dyna_q-{model}"] = ("dyna_q", {**planning, "model": model})
    learners["prioritized_sweeping"] = ("prioritized_sweeping", planning)
    learners["certainty_equivalence"] = (
        "certainty_equivalence",
        {"replan_every": replan_every},
    )
    if psrl:
        learners["psrl"] = ("psrl", psrl_hparams(env))
    return learners


def specs(
    *,
    maze_seeds: int,
    maze_episodes: int,
    planning_steps: Sequence[int],
    seeds: int,
    steps: Mapping[str, int],
    dyna_planning_steps: int,
    replan_every: int,
    psrl_envs: Sequence[str],
    gamma: float,
    evals: int,
    eval_episodes: int,
) -> ModelBasedSpecs:
    """The specs of notebook 04 from its parameters.

    Args:
        maze_seeds, maze_episodes: Seeds and budget in episodes of the Dyna maze.
        planning_steps: Planning steps per real step swept in the maze.
        seeds: Seeds per (learner, env) of the comparison.
        steps: ``{env: budget in env steps}`` of the comparison.
        dyna_planning_steps: Planning updates per real step of Dyna-Q and prioritized
            sweeping in the comparison.
        replan_every: Certainty equivalence's env steps between value iterations.
        psrl_envs: The envs of ``steps`` PSRL runs on (it solves a sampled MDP per episode).
        gamma, evals, eval_episodes: Discount and eval protocol of the comparison.

    Raises:
        ValueError: an env of ``psrl_envs`` that ``steps`` does not list.
    """
    unknown = sorted(set(psrl_envs) - set(steps))
    if unknown:
        raise ValueError(f"psrl_envs {unknown} are not in steps; valid: {sorted(steps)}")
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
    compare: list[RunSpec] = []
    for env, budget in steps.items():
        learners = contenders(env, dyna_planning_steps, replan_every, env in psrl_envs)
        for learner, (algo, hparams) in learners.items():
            compare += grid_per_budget(
                algo,
                {env: budget},
                seeds,
                evals,
                hparams={"gamma": gamma, **hparams},
                eval_episodes=eval_episodes,
                experiment=learner,
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
    (env, learner)."""
    auc = stats.auc(compare, "policy_regret").rename(columns={LEARNER: "learner"})
    return auc.groupby(["env", "learner"])["auc"].mean()


def final_regret(compare: pd.DataFrame, reps: int) -> pd.DataFrame:
    """Final exact regret per (env, learner): IQM over seeds with its 95% stratified
    bootstrap CI."""
    table = stats.summary(compare, "policy_regret", by=["env", LEARNER], reps=reps)
    return table.rename(columns={LEARNER: "learner"})[FINAL_COLUMNS]


def headline(
    late: pd.Series,
    auc: pd.Series,
    final: pd.DataFrame,
    compare: pd.DataFrame,
    frames: Sequence[pd.DataFrame],
) -> dict[str, Any]:
    """The notebook's headline numbers.

    Args:
        late: :func:`maze_late`.
        auc: :func:`regret_auc`.
        final: :func:`final_regret`.
        compare: The comparison's table (its final model errors are recorded).
        frames: The tidy tables of the two sweeps (their runs are counted).
    """
    # Only the learners with a model record model_error (Q-learning, the baseline, has none).
    with_model = compare["run_id"].isin(compare.loc[compare["metric"] == "model_error", "run_id"])
    errors = stats.final_scores(compare[with_model], "model_error").rename(
        columns={LEARNER: "learner"}
    )
    model_error = errors.groupby(["env", "learner"])["score"].mean().reset_index()
    envs = list(dict.fromkeys(final["env"]))
    claims = []
    for env in envs:
        rows = final[final["env"] == env].set_index("learner")
        planners = rows.loc[rows.index.isin(MODEL_LEARNERS)]
        if "q_learning" not in rows.index or planners.empty:
            continue
        best = str(planners["iqm"].idxmin())
        claims.append(
            f"{env}, final exact regret: best planner {EVIDENCE_NAMES[best]} "
            f"{iqm_ci(rows.loc[best])} vs Q-learning {iqm_ci(rows.loc['q_learning'])} (IQM, 95% CI)"
        )
    return {
        "maze_steps_per_episode_after_first": {str(k): v for k, v in late.items()},
        "regret_auc": keyed(auc.reset_index(), ["env", "learner"], "auc"),
        "final_regret_iqm": keyed(final, ["env", "learner"], "iqm"),
        "final_model_error": keyed(model_error, ["env", "learner"], "score"),
        "runs": int(sum(frame["run_id"].nunique() for frame in frames)),
        "evidence": {"Model-based": claims},
    }


# ------------------------------------------------------------------------------- figures
def maze_figure(curves: pd.DataFrame) -> tuple[Figure, Axes]:
    """Figure 8.2: steps per episode against episodes, one line per number of planning
    steps (from :func:`maze_curves`)."""
    fig, ax = plots.episode_curves(curves, hue="hp.planning_steps", ylabel="Steps per episode")
    ax.set_ylim(0, 800)
    return fig, ax


def regret_figure(compare: pd.DataFrame, reps: int) -> tuple[Figure, np.ndarray]:
    """Exact greedy-policy regret against env steps, one panel per env, every learner
    (IQM, 95% CI band)."""
    return plots.facets(
        plots.learning_curves, compare, col="env", metric="policy_regret", hue=LEARNER, reps=reps
    )


def model_error_figure(compare: pd.DataFrame, reps: int) -> tuple[Figure, np.ndarray]:
    """The learned model's error (largest total-variation distance over the pairs seen)
    against env steps, one panel per env, the learners with a model."""
    return plots.facets(
        plots.learning_curves,
        compare[compare[LEARNER].isin(MODEL_LEARNERS)],
        col="env",
        metric="model_error",
        hue=LEARNER,
        reps=reps,
    )


def planning_figure(compare: pd.DataFrame) -> tuple[Figure, np.ndarray]:
    """Mean exact regret against planning updates (log axis), one panel per env: each
    evaluation of each learner with a model is one point, at the mean updates over seeds
    and the mean regret over seeds, joined in order of env steps."""
    frame = compare[compare[LEARNER].isin(MODEL_LEARNERS)]
    wide = frame[frame["metric"].isin(["policy_regret", "planning_updates"])].pivot_table(
        index=["env", LEARNER, "run_id", "step"], columns="metric", values="value"
    )
    points = wide.groupby(["env", LEARNER, "step"]).mean().reset_index()
    points = points[points["planning_updates"] > 0]
    envs = list(dict.fromkeys(frame["env"]))
    fig, axes = plt.subplots(
        1, len(envs), figsize=(2.6 * len(envs), 2.6), layout="constrained", squeeze=False
    )
    colors = level_colors(list(MODEL_LEARNERS), LEARNER)
    for ax, env in zip(axes[0], envs, strict=True):
        for learner, line in points[points["env"] == env].groupby(LEARNER, sort=False):
            ax.plot(
                line["planning_updates"],
                line["policy_regret"],
                marker=".",
                label=learner,
                color=colors[learner],
            )
        ax.set_xscale("log")
        ax.set_title(env)
        ax.set_xlabel("Planning updates")
        ax.set_ylabel(metric_label("policy_regret"))
    figure_legend(fig, axes[0], title="learner")
    return fig, axes[0]
