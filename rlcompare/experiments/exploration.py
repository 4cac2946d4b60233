"""Notebook 02: exploration strategies with the same Q-learning update (epsilon-greedy constant
and decaying, Boltzmann, UCB, optimism) on RiverSwim, FrozenLake 8x8 and DeepSea of growing
size, then DQN's exploration (epsilon-greedy, Boltzmann, noisy nets) on classic control.

Runs are told apart by their ``experiment`` label (the strategy's name), which the tables and
figures use as the contender.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlcompare.analysis import stats
from rlcompare.errors import SpecError
from rlcompare.experiments.common import eval_every, grid_per_budget, keyed
from rlcompare.spec.runspec import RunSpec, grid
from rlcompare.viz import plots

ALGO = "q_learning"
OPTIMISTIC = "optimistic"
# Optimism acts greedily: the optimistic start alone drives exploration.
GREEDY = {"exploration": "epsilon_greedy", "epsilon": 0.0}

DEEPSEA = "rlcompare/DeepSea-v0"
DEEPSEA_GAMMA = 0.99
# Episodes between evaluations on DeepSea (solved at the first evaluation that succeeds).
DEEPSEA_EVAL_EVERY = 100

COLUMNS = ["env", "experiment", "runs", "iqm", "iqm_low", "iqm_high"]

__all__ = [
    "ExplorationSpecs",
    "deep_figure",
    "deep_final",
    "deepsea_figure",
    "headline",
    "solved",
    "solved_share",
    "specs",
    "tabular_figure",
    "tabular_final",
]


class ExplorationSpecs(NamedTuple):
    """The notebook's three sweeps."""

    tabular: list[RunSpec]
    deepsea: list[RunSpec]
    deep: list[RunSpec]


def specs(
    *,
    strategies: Mapping[str, Mapping[str, Any]],
    optimism: Mapping[str, float],
    steps: Mapping[str, int],
    seeds: int,
    gamma: float,
    evals: int,
    eval_episodes: int,
    deepsea_sizes: Sequence[int],
    deepsea_seeds: int,
    deepsea_episodes: int,
    deep_seeds: int,
    deep_steps: int,
    deep_envs: Sequence[str],
    deep_explorations: Sequence[str],
    deep_hparams: Mapping[str, Any],
    deep_eval_episodes: int,
) -> ExplorationSpecs:
    """The specs of notebook 02 from its parameters.

    Args:
        strategies: ``{label: exploration hparams}`` of the tabular strategies.
        optimism: ``{env: q_init}`` of the optimistic learner, for every env of ``steps``
            and for DeepSea.
        steps: ``{env: budget in env steps}`` of the tabular comparison.
        seeds, gamma, evals, eval_episodes: Seeds, discount and eval protocol of the tabular
            comparison.
        deepsea_sizes, deepsea_seeds, deepsea_episodes: DeepSea's sizes (swept), seeds and
            budget in episodes.
        deep_seeds, deep_steps, deep_envs: Seeds, budget and envs of the DQN comparison.
        deep_explorations: DQN's exploration modes compared.
        deep_hparams: DQN's hyperparameters (every mode).
        deep_eval_episodes: Episodes per DQN evaluation.
    """
    missing = [env for env in [*steps, DEEPSEA] if env not in optimism]
    if missing:
        raise SpecError(
            f"optimism has no q_init for {missing}; valid: a mapping with every env of steps "
            f"and {DEEPSEA!r} (it has {sorted(optimism)})"
        )
    protocol = {"evals": evals, "eval_episodes": eval_episodes}
    tabular: list[RunSpec] = []
    for label, hp in strategies.items():
        tabular += grid_per_budget(
            ALGO, steps, seeds, hparams={**hp, "gamma": gamma}, experiment=label, **protocol
        )
    for env, budget in steps.items():
        hp = {**GREEDY, "q_init": optimism[env], "gamma": gamma}
        tabular += grid_per_budget(
            ALGO, {env: budget}, seeds, hparams=hp, experiment=OPTIMISTIC, **protocol
        )
    deepsea_strategies = {**strategies, OPTIMISTIC: {**GREEDY, "q_init": optimism[DEEPSEA]}}
    deepsea: list[RunSpec] = []
    for label, hp in deepsea_strategies.items():
        deepsea += grid(
            ALGO,
            DEEPSEA,
            deepsea_seeds,
            hparams={**hp, "gamma": DEEPSEA_GAMMA},
            env_kwargs={"size": list(deepsea_sizes)},
            episodes=deepsea_episodes,
            eval_every=DEEPSEA_EVAL_EVERY,
            eval_episodes=1,
            experiment=label,
        )
    deep: list[RunSpec] = []
    for exploration in deep_explorations:
        deep += grid(
            "dqn",
            list(deep_envs),
            deep_seeds,
            hparams={**deep_hparams, "exploration": exploration},
            steps=deep_steps,
            eval_every=eval_every(deep_steps, evals),
            eval_episodes=deep_eval_episodes,
            experiment=f"dqn_{exploration}",
        )
    return ExplorationSpecs(tabular, deepsea, deep)


# ------------------------------------------------------------------------------ analysis
def tabular_final(tabular: pd.DataFrame, reps: int) -> pd.DataFrame:
    """Final greedy-policy regret per env and strategy: IQM over seeds with its 95% CI."""
    return stats.summary(tabular, metric="policy_regret", by=["env", "experiment"], reps=reps)[
        COLUMNS
    ]


def solved(deepsea: pd.DataFrame) -> pd.DataFrame:
    """Per DeepSea run: whether the greedy policy solved it (``reached``) and the env steps
    until it did (or the run's last evaluated step).

    Solved means solved from that evaluation on (``sustained``): with every value tied, the
    greedy policy breaks ties at random and reaches the treasure with probability 2^-N, so a
    single lucky evaluation (3 of 50 untrained runs at N = 4) is not learning; a policy that
    reaches the treasure at every later evaluation is.
    """
    return stats.steps_to_threshold(deepsea, threshold=1.0, metric="success_rate", sustained=True)


def solved_share(runs: pd.DataFrame) -> pd.Series:
    """Share of runs that solved DeepSea, by (strategy, size), from :func:`solved`."""
    return runs.groupby(["experiment", "env.size"])["reached"].mean()


def deep_final(deep: pd.DataFrame, reps: int) -> pd.DataFrame:
    """Final DQN eval return per env and exploration: IQM over seeds with its 95% CI."""
    return stats.summary(deep, by=["env", "experiment"], reps=reps)[COLUMNS]


def headline(
    tabular: pd.DataFrame, solved_runs: pd.DataFrame, deep: pd.DataFrame
) -> dict[str, Any]:
    """The notebook's headline numbers.

    Args:
        tabular: :func:`tabular_final`.
        solved_runs: :func:`solved`.
        deep: :func:`deep_final`.
    """
    share = solved_share(solved_runs)
    return {
        "final_regret_iqm": keyed(tabular, ["env", "experiment"], "iqm"),
        "deepsea_solved_share": {
            f"{label}/N={size}": value for (label, size), value in share.items()
        },
        "dqn_final_return_iqm": keyed(deep, ["env", "experiment"], "iqm"),
    }


# ------------------------------------------------------------------------------- figures
def tabular_figure(tabular: pd.DataFrame, reps: int) -> tuple[Figure, np.ndarray]:
    """Greedy-policy regret against env steps, one panel per env, one line per strategy."""
    return plots.facets(
        plots.learning_curves,
        tabular,
        col="env",
        metric="policy_regret",
        hue="experiment",
        reps=reps,
    )


def deepsea_figure(solved_runs: pd.DataFrame) -> tuple[Figure, Axes]:
    """Env steps to solve DeepSea against its size, from :func:`solved`."""
    return plots.scaling(solved_runs, x="env.size", y="steps", hue="experiment")


def deep_figure(deep: pd.DataFrame, reps: int) -> tuple[Figure, np.ndarray]:
    """DQN eval return against env steps, one panel per env, one line per exploration."""
    return plots.facets(plots.learning_curves, deep, col="env", hue="experiment", reps=reps)
