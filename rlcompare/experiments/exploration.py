"""Notebook 02: exploration strategies with the same Q-learning update (epsilon-greedy constant
and decaying, Boltzmann, UCB, optimism) and posterior sampling (PSRL, Osband, Russo & Van Roy
2013) on RiverSwim, FrozenLake 8x8 and DeepSea of growing size, then DQN's exploration
(epsilon-greedy, Boltzmann, noisy nets) on classic control.

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
from rlcompare.experiments.common import (
    IQM_COLUMNS,
    eval_every,
    grid_per_budget,
    keyed,
    psrl_hparams,
)
from rlcompare.spec.runspec import RunSpec, grid
from rlcompare.studies.compare import stored_verdict
from rlcompare.studies.verdict import Verdict
from rlcompare.viz import plots

ALGO = "q_learning"
OPTIMISTIC = "optimistic"
# Optimism acts greedily: the optimistic start alone drives exploration.
GREEDY = {"exploration": "epsilon_greedy", "epsilon": 0.0}

# Posterior sampling: acts greedily on an MDP drawn from its posterior, redrawn at every
# episode's end (RiverSwim's 20-step time limit included); its reward prior is its default,
# which resolves from the env's reward scale (``common.psrl_hparams`` shows it), not from the
# results.
PSRL = "psrl"

DEEPSEA = "rlcompare/DeepSea-v0"
DEEPSEA_GAMMA = 0.99
# Episodes between evaluations on DeepSea (see :func:`solved`).
DEEPSEA_EVAL_EVERY = 100
# A DeepSea run is solved where its greedy policy's exact expected return stays at or above
# this: the treasure is reached with probability above 1/2, i.e. with certainty (see solved).
DEEPSEA_SOLVED = 0.5

COLUMNS = ["env", "experiment", *IQM_COLUMNS]

__all__ = [
    "ExplorationSpecs",
    "decided",
    "deep_figure",
    "deep_final",
    "deepsea_figure",
    "headline",
    "psrl_priors",
    "solved",
    "solved_share",
    "specs",
    "tabular_figure",
    "tabular_final",
    "tabular_verdict",
]


class ExplorationSpecs(NamedTuple):
    """The notebook's three sweeps."""

    tabular: list[RunSpec]
    deepsea: list[RunSpec]
    deep: list[RunSpec]


def psrl_priors(steps: Mapping[str, int], deepsea_sizes: Sequence[int]) -> dict[str, Any]:
    """``{env: PSRL's reward prior}`` (``common.psrl_hparams``) for every env of ``steps``
    and for DeepSea over ``deepsea_sizes``: what PSRL's defaults resolve to in :func:`specs`
    (on DeepSea the same at every size)."""
    priors = {env: psrl_hparams(env) for env in steps}
    priors[DEEPSEA] = psrl_hparams(DEEPSEA, [{"size": size} for size in deepsea_sizes])
    return priors


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
    psrl_deepsea_sizes: Sequence[int],
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

    Every env of ``steps`` and DeepSea also get PSRL (label ``psrl``, greedy on its sampled
    MDP, the discount of the others) with its default reward prior, which resolves from the
    env's model (:func:`psrl_priors` shows it).

    Args:
        strategies: ``{label: exploration hparams}`` of the tabular strategies.
        optimism: ``{env: q_init}`` of the optimistic learner, for every env of ``steps``
            and for DeepSea.
        steps: ``{env: budget in env steps}`` of the tabular comparison.
        seeds, gamma, evals, eval_episodes: Seeds, discount and eval protocol of the tabular
            comparison.
        deepsea_sizes, deepsea_seeds, deepsea_episodes: DeepSea's sizes (swept), seeds and
            budget in episodes.
        psrl_deepsea_sizes: The sizes of ``deepsea_sizes`` PSRL runs at (it solves a sampled
            N^2-state MDP per episode: 24 CPU-seconds per run at N = 12).
        deep_seeds, deep_steps, deep_envs: Seeds, budget and envs of the DQN comparison.
        deep_explorations: DQN's exploration modes compared.
        deep_hparams: DQN's hyperparameters (every mode).
        deep_eval_episodes: Episodes per DQN evaluation.

    Raises:
        SpecError: an env without an optimism setting.
        ValueError: a size of ``psrl_deepsea_sizes`` that ``deepsea_sizes`` lacks.
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
    unknown = sorted(set(psrl_deepsea_sizes) - set(deepsea_sizes))
    if unknown:
        raise ValueError(
            f"psrl_deepsea_sizes {unknown} are not in deepsea_sizes; valid: {list(deepsea_sizes)}"
        )
    for env, budget in steps.items():
        tabular += grid_per_budget(
            PSRL, {env: budget}, seeds, hparams={"gamma": gamma}, experiment=PSRL, **protocol
        )
    all_sizes = list(deepsea_sizes)
    deepsea_strategies = {
        **{label: (ALGO, hp, all_sizes) for label, hp in strategies.items()},
        OPTIMISTIC: (ALGO, {**GREEDY, "q_init": optimism[DEEPSEA]}, all_sizes),
        PSRL: (PSRL, {}, list(psrl_deepsea_sizes)),
    }
    deepsea: list[RunSpec] = []
    for label, (algo, hp, sizes) in deepsea_strategies.items():
        deepsea += grid(
            algo,
            DEEPSEA,
            deepsea_seeds,
            hparams={**hp, "gamma": DEEPSEA_GAMMA},
            env_kwargs={"size": sizes},
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

    Solved: from some evaluation on, at it and at every later one (``sustained``), the greedy
    policy reaches the treasure with probability above 1/2, read from its exact
    ``expected_eval_return`` (:data:`DEEPSEA_SOLVED`), not from the sampled eval episode.
    That metric is computed from the model with tied actions sharing the probability
    uniformly (the evaluation breaks ties at random), so an agent whose values are all tied
    gets 2^-N. On (deterministic) DeepSea the treasure lies at the end of one path, N moves
    right: a greedy policy reaches it with probability 1, or 2^-k with k ties on the path,
    or 0, and its expected return is that probability less at most 0.01 of move costs;
    at least 1/2 therefore means the path without a tie (0.99). The eval episode cannot
    tell this: the tie-break stream restarts at every evaluation, so an untrained agent that
    was lucky once is lucky at every evaluation (2 of 50 untrained runs at N = 4 counted as
    solved, even with ``sustained``).
    """
    return stats.steps_to_threshold(
        deepsea,
        threshold=DEEPSEA_SOLVED,
        metric="expected_eval_return",
        higher_is_better=True,
        sustained=True,
    )


def solved_share(runs: pd.DataFrame) -> pd.Series:
    """Share of runs that solved DeepSea, by (strategy, size), from :func:`solved`."""
    return runs.groupby(["experiment", "env.size"])["reached"].mean()


def deep_final(deep: pd.DataFrame, reps: int) -> pd.DataFrame:
    """Final DQN eval return per env and exploration: IQM over seeds with its 95% CI."""
    return stats.summary(deep, by=["env", "experiment"], reps=reps)[COLUMNS]


def tabular_verdict(tabular: pd.DataFrame, envs: Sequence[str]) -> Verdict:
    """Who beats whom on final greedy-policy regret (exact, lower is better), every pair of
    strategies on each tabular env: a one-interim verdict on the stored seeds (alpha 0.05
    over both envs and every pair; :func:`rlcompare.studies.compare.stored_verdict`)."""
    return stored_verdict(tabular, by="experiment", envs=list(envs), metric="policy_regret")


def decided(verdict: Verdict) -> pd.DataFrame:
    """The decided pairs, winner first: ``env, winner, loser, runs, difference``."""
    rows = verdict.decisions[verdict.decisions["decision"].isin(["better", "worse"])]
    better = rows["decision"] == "better"
    return pd.DataFrame(
        {
            "env": rows["env"],
            "winner": rows["a"].where(better, rows["b"]),
            "loser": rows["b"].where(better, rows["a"]),
            "runs": rows["runs_a"].astype(str) + "+" + rows["runs_b"].astype(str),
            "regret_gap": rows["difference"].abs(),
        }
    ).reset_index(drop=True)


def headline(
    tabular: pd.DataFrame,
    solved_runs: pd.DataFrame,
    deep: pd.DataFrame,
    verdict: Verdict | None = None,
) -> dict[str, Any]:
    """The notebook's headline numbers.

    Args:
        tabular: :func:`tabular_final`.
        solved_runs: :func:`solved`.
        deep: :func:`deep_final`.
        verdict: :func:`tabular_verdict` (its decided pairs, winner first).
    """
    share = solved_share(solved_runs)
    wins = (
        {}
        if verdict is None
        else {f"{r.env}: {r.winner} beats {r.loser}": r.runs for r in decided(verdict).itertuples()}
    )
    return {
        "decided_regret": wins,
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
