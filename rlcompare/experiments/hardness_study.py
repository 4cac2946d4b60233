"""Notebook 04, last section: regret against hardness. Four env families, each with a knob
that is a setting of a registered env (DeepSea's ``size``, RiverSwim's ``n_states``, the
random FrozenLake's ``map_size``, SelfHealing's ``fault_rate``); for each knob value the
exact hardness measures of the model (``rlcompare.hardness``: diameter, environmental value
norm, sum of reciprocal sub-optimality gaps) and a few tabular learners run on it, so that
their regret can be read against each measure (Conserva & Rauber, NeurIPS 2022, the
Colosseum benchmark, ask the same question).

A run's score is its average exact regret over training (the normalised area under its
``policy_regret`` curve: V*(s0) - V^greedy(s0) at each evaluation), divided by the regret
of the uniformly random policy on the same env (V*(s0) - V^random(s0), exact from the
model), so that 0 is optimal from the first evaluation, 1 is no better than acting at
random on average, and envs whose values differ by orders of magnitude share one axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats as scipy_stats

from rlcompare.analysis import stats
from rlcompare.envs.hardness import hardness
from rlcompare.envs.model import tabular_mdp
from rlcompare.envs.planning import policy_evaluation, value_iteration
from rlcompare.errors import SpecError, choices_text
from rlcompare.experiments.common import grid_per_budget, keyed, reward_scale
from rlcompare.spec.runspec import RunSpec
from rlcompare.viz.style import figure_legend, level_colors

__all__ = [
    "FAMILIES",
    "LEARNERS",
    "MEASURES",
    "conclusions",
    "correlations",
    "figure",
    "hardness_table",
    "headline",
    "regret_scores",
    "regret_summary",
    "specs",
]


class Family(NamedTuple):
    """An env family: a registered env and the setting that makes it harder."""

    env: str
    knob: str


FAMILIES: dict[str, Family] = {
    "DeepSea": Family("rlcompare/DeepSea-v0", "size"),
    "RiverSwim": Family("rlcompare/RiverSwim-v0", "n_states"),
    "FrozenLake": Family("rlcompare/RandomFrozenLake-v0", "map_size"),
    "SelfHealing": Family("rlcompare/SelfHealing-v0", "fault_rate"),
}
MEASURES = ("diameter", "value_norm", "reciprocal_gaps")
MEASURE_LABELS = {
    "diameter": "Diameter (steps)",
    "value_norm": "Environmental value norm",
    "reciprocal_gaps": r"$\sum 1/\Delta(s,a)$",
}
# The learners, as labels (the runs' ``experiment``): Q-learning with epsilon-greedy
# exploration, Q-learning with a UCB bonus, certainty equivalence and PSRL.
LEARNERS = ("q_learning", "ucb", "certainty_equivalence", "psrl")
LEARNER = "experiment"
SCORE = "normalized_regret"
# Normalised regrets closer than this are reported as a tie by :func:`conclusions`.
TIE = 0.05
# The mean rank correlation at which :func:`conclusions` says a measure orders the regret.
ORDERS = 0.5


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise SpecError(f"unknown env family {name!r}; {choices_text(list(FAMILIES), name)}")
    return FAMILIES[name]


def contenders(
    family: str, values: Sequence[Any], replan_every: int
) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{learner label: (algo, hyperparameters)}`` on ``family`` at knob ``values``.

    UCB's bonus weight is the family's reward scale (the power of ten at or above its largest
    reward over ``values``: 10,000 on RiverSwim, 1 on DeepSea and FrozenLake), so the bonus
    is in the units of the rewards; PSRL's reward prior is its default, which resolves from
    the env's model in the same way.
    """
    env, knob = _family(family)
    scale = reward_scale(env, [{knob: value} for value in values])
    return {
        "q_learning": ("q_learning", {}),
        "ucb": ("q_learning", {"exploration": "ucb", "ucb_c": scale}),
        "certainty_equivalence": ("certainty_equivalence", {"replan_every": replan_every}),
        "psrl": ("psrl", {}),
    }


def specs(
    *,
    knobs: Mapping[str, Sequence[Any]],
    steps: Mapping[str, int],
    seeds: int,
    gamma: float,
    replan_every: int,
    evals: int,
    eval_episodes: int,
    learners: Sequence[str] = LEARNERS,
) -> list[RunSpec]:
    """The runs: every learner of ``learners`` on every family of ``knobs`` at every knob value.

    Args:
        knobs: ``{family: knob values}``, families of :data:`FAMILIES`.
        steps: ``{family: budget in env steps}``, the same families.
        seeds: Seeds per (family, knob value, learner).
        gamma: Discount of every learner (and of the regret and the hardness measures).
        replan_every: Certainty equivalence's env steps between value iterations.
        evals, eval_episodes: Evaluations per run and episodes per evaluation.
        learners: Labels of :data:`LEARNERS` to run.

    Raises:
        SpecError: an unknown family or learner, or families of ``knobs`` and ``steps`` that
            differ; a bad knob value fails when its specs are built, before any run.
    """
    for family in (*knobs, *steps):
        _family(family)
    if set(knobs) != set(steps):
        raise SpecError(
            f"steps has families {sorted(steps)} and knobs {sorted(knobs)}; valid: the same "
            "families in both"
        )
    for learner in learners:
        if learner not in LEARNERS:
            raise SpecError(f"unknown learner {learner!r}; {choices_text(LEARNERS, learner)}")
    runs: list[RunSpec] = []
    for family, values in knobs.items():
        env, knob = FAMILIES[family]
        table = contenders(family, values, replan_every)
        for learner in learners:
            algo, hparams = table[learner]
            runs += grid_per_budget(
                algo,
                {env: steps[family]},
                seeds,
                evals,
                hparams={"gamma": gamma, **hparams},
                env_kwargs={knob: list(values)},
                eval_episodes=eval_episodes,
                experiment=learner,
            )
    return runs


# ------------------------------------------------------------------------------ analysis
def hardness_table(knobs: Mapping[str, Sequence[Any]], gamma: float) -> pd.DataFrame:
    """One row per (family, knob value): the env's hardness measures at ``gamma``
    (:func:`rlcompare.hardness`), its size, and the exact values of the optimal and of the
    uniformly random policy from the initial distribution (their difference scales the
    regret, :func:`regret_scores`).

    Returns:
        Columns ``family, env, knob, value, states, actions, diameter, value_norm,
        reciprocal_gaps, v_optimal, v_random``.
    """
    records = []
    for family, values in knobs.items():
        env, knob = _family(family)
        for value in values:
            mdp = tabular_mdp(env, **{knob: value})
            measures = hardness(mdp, gamma=gamma)
            uniform = mdp.valid_actions / mdp.valid_actions.sum(axis=1, keepdims=True)
            v_optimal = float(mdp.initial @ value_iteration(mdp, gamma).v)
            v_random = float(mdp.initial @ policy_evaluation(mdp, uniform, gamma))
            records.append(
                {
                    "family": family,
                    "env": env,
                    "knob": knob,
                    "value": value,
                    "states": measures.states,
                    "actions": measures.actions,
                    **{measure: getattr(measures, measure) for measure in MEASURES},
                    "v_optimal": v_optimal,
                    "v_random": v_random,
                }
            )
    table = pd.DataFrame.from_records(records)
    # Knob values as given (ints stay ints beside SelfHealing's float rates).
    table["value"] = pd.Series([r["value"] for r in records], dtype=object)
    return table


def regret_scores(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its average exact regret over training (``auc`` of
    ``policy_regret``) and that divided by the random policy's regret on its env
    (``normalized_regret``).

    Args:
        frame: The tidy rows of the runs of :func:`specs`.
        table: :func:`hardness_table` of the same knobs.

    Returns:
        Columns ``run_id, family, value, experiment, seed, auc, normalized_regret``.
    """
    areas = stats.auc(frame, "policy_regret")
    parts = []
    for family, rows in table.groupby("family", sort=False):
        env, knob = FAMILIES[str(family)]
        scale = rows["v_optimal"] - rows["v_random"]
        if (scale <= 0).any():
            raise ValueError(f"{family}: the random policy is optimal at some knob value")
        # The table's knob values as given: the frame's column is float where other envs
        # have no such setting (NaN).
        values = {float(value): value for value in rows["value"]}
        gaps = dict(zip(rows["value"], scale, strict=True))
        runs = areas[areas["env"] == env]
        knob_values = [values[float(value)] for value in runs[f"env.{knob}"]]
        runs = runs.assign(
            family=family,
            value=pd.Series(knob_values, index=runs.index, dtype=object),
            normalized_regret=runs["auc"] / [gaps[value] for value in knob_values],
        )
        parts.append(runs[["run_id", "family", "value", LEARNER, "seed", "auc", SCORE]])
    return pd.concat(parts, ignore_index=True)


def regret_summary(scores: pd.DataFrame, reps: int) -> pd.DataFrame:
    """IQM over seeds of :func:`regret_scores`' normalised regret per (family, knob value,
    learner), with its 95% stratified bootstrap CI (rliable, through ``stats.summary``).

    Returns:
        Columns ``family, value, learner, runs, iqm, iqm_low, iqm_high``.
    """
    # Each run's score as one tidy row (the family as its env, the knob value as an env
    # setting), so that the shared statistics code does the bootstrap.
    tidy = pd.DataFrame(
        {
            "run_id": scores["run_id"],
            LEARNER: scores[LEARNER],
            "algo": scores[LEARNER],
            "env": scores["family"],
            "seed": scores["seed"],
            "step": 0,
            "metric": SCORE,
            "value": scores[SCORE],
            "env.knob": scores["value"],
        }
    )
    table = stats.summary(tidy, SCORE, by=["env", "env.knob", LEARNER], reps=reps)
    table = table.rename(columns={"env": "family", "env.knob": "value", LEARNER: "learner"})
    # Back to the knob values as given and to the study's order: families as the scores
    # list them, knob values rising, learners as LEARNERS.
    given = {(f, float(v)): v for f, v in zip(scores["family"], scores["value"], strict=True)}
    families = {family: i for i, family in enumerate(dict.fromkeys(scores["family"]))}
    keys = list(zip(table["family"], table["value"].astype(float), strict=True))
    learners = [LEARNERS.index(x) if x in LEARNERS else len(LEARNERS) for x in table["learner"]]
    table = table.assign(
        value=pd.Series([given[key] for key in keys], index=table.index, dtype=object),
        _family=[families[family] for family, _ in keys],
        _value=[value for _, value in keys],
        _learner=learners,
    )
    table = table.sort_values(["_family", "_value", "_learner"], kind="stable")
    table = table.reset_index(drop=True)
    return table[["family", "value", "learner", "runs", "iqm", "iqm_low", "iqm_high"]]


def correlations(summary: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rank correlation between each hardness measure and each learner's IQM
    normalised regret over every (family, knob value) point of the study, pooled.

    Returns:
        One row per learner, one column per measure of :data:`MEASURES`, plus ``points``.
    """
    joined = summary.merge(table, on=["family", "value"])
    records = []
    for learner, rows in joined.groupby("learner", sort=False):
        record: dict[str, Any] = {"learner": learner, "points": len(rows)}
        for measure in MEASURES:
            x, y = rows[measure].to_numpy(), rows["iqm"].to_numpy()
            constant = np.ptp(x) == 0 or np.ptp(y) == 0
            record[measure] = float("nan") if constant else scipy_stats.spearmanr(x, y)[0]
        records.append(record)
    return pd.DataFrame.from_records(records).set_index("learner")


def _knob_trend(rows: pd.DataFrame) -> float:
    x, y = rows["value"].to_numpy(dtype=float), rows["iqm"].to_numpy()
    if len(rows) < 2 or np.ptp(y) == 0:
        return float("nan")
    return float(scipy_stats.spearmanr(x, y)[0])


def conclusions(summary: pd.DataFrame, table: pd.DataFrame) -> str:
    """What this run's numbers say, as Markdown bullets (computed, not written by hand).

    Per family: for how many learners the normalised regret rises with the knob (Spearman's
    rho over the knob values above 0), and which learner does best and worst at the hardest
    value, unless all lie within :data:`TIE` of each other (then none is named). Pooled: the
    measure with the highest mean rank correlation over the learners, named as the one that
    orders the regret only where that mean reaches :data:`ORDERS`.
    """
    ranks = correlations(summary, table)
    lines = []
    for family, rows in summary.groupby("family", sort=False):
        knob = FAMILIES[str(family)].knob
        values = list(dict.fromkeys(rows["value"]))
        rising = [
            learner for learner, own in rows.groupby("learner", sort=False) if _knob_trend(own) > 0
        ]
        hardest = rows[rows["value"] == values[-1]].sort_values("iqm")
        low, high = hardest["iqm"].iloc[0], hardest["iqm"].iloc[-1]
        if high - low < TIE:
            at_hardest = f"every learner's normalised regret lies within {low:.3g}-{high:.3g}"
        else:
            at_hardest = (
                f"the lowest normalised regret is {hardest['learner'].iloc[0]}'s ({low:.3g}) "
                f"and the highest {hardest['learner'].iloc[-1]}'s ({high:.3g})"
            )
        lines.append(
            f"- **{family}** ({knob} {', '.join(map(str, values))}): regret rises with "
            f"{knob} for {len(rising)} of {rows['learner'].nunique()} learners"
            f"{' (' + ', '.join(rising) + ')' if rising else ''}; at {knob} = {values[-1]} "
            f"{at_hardest}."
        )
    means = ranks[list(MEASURES)].mean(axis=0, skipna=True)
    if means.notna().any():
        best = str(means.idxmax())
        per_learner = ", ".join(
            f"{learner} {ranks.at[learner, best]:.2f}" for learner in ranks.index
        )
        others = ", ".join(f"{m.replace('_', ' ')} {means[m]:.2f}" for m in MEASURES if m != best)
        points = int(ranks["points"].max())
        if means[best] >= ORDERS:
            verdict = (
                f"the measure whose rank follows the regret best is the "
                f"{best.replace('_', ' ')} (mean Spearman rho {means[best]:.2f}: "
                f"{per_learner}); {others}"
            )
        else:
            verdict = (
                f"no measure orders the regret across families (mean Spearman rho below "
                f"{ORDERS}): {best.replace('_', ' ')} {means[best]:.2f} ({per_learner}), {others}"
            )
        lines.append(f"- Pooled over the {points} envs, {verdict}.")
    return "\n".join(lines)


def headline(summary: pd.DataFrame, table: pd.DataFrame, frame: pd.DataFrame) -> dict[str, Any]:
    """The section's headline numbers: each env's measures, each learner's IQM normalised
    regret, the rank correlations, and the runs counted."""
    keys = table.assign(value=table["value"].astype(str))
    ranks = correlations(summary, table).reset_index()
    long = ranks.melt(id_vars="learner", value_vars=list(MEASURES), var_name="measure")
    return {
        "hardness_diameter": keyed(keys, ["family", "value"], "diameter"),
        "hardness_value_norm": keyed(keys, ["family", "value"], "value_norm"),
        "hardness_reciprocal_gaps": keyed(keys, ["family", "value"], "reciprocal_gaps"),
        "hardness_regret_iqm": keyed(
            summary.assign(value=summary["value"].astype(str)),
            ["family", "value", "learner"],
            "iqm",
        ),
        "hardness_rank_correlation": keyed(long, ["measure", "learner"], "value"),
        "hardness_runs": int(frame["run_id"].nunique()),
    }


# ------------------------------------------------------------------------------- figures
def figure(summary: pd.DataFrame, table: pd.DataFrame) -> tuple[Figure, np.ndarray]:
    """Normalised regret against each hardness measure: one row of panels per family, one
    column per measure, one line per learner through its knob values in the order of the
    measure (IQM over seeds, 95% CI band). Axes are logarithmic where a measure spans more
    than a factor of 10; a measure constant over the knob (DeepSea's value norm: 0, it is
    deterministic) shows as one column of points."""
    joined = summary.merge(table, on=["family", "value"])
    families = list(dict.fromkeys(summary["family"]))
    learners = list(dict.fromkeys(summary["learner"]))
    colors = level_colors(learners, "experiment")
    fig, axes = plt.subplots(
        len(families),
        len(MEASURES),
        figsize=(2.4 * len(MEASURES), 1.9 * len(families)),
        layout="constrained",
        squeeze=False,
    )
    for row, family in zip(axes, families, strict=True):
        rows = joined[joined["family"] == family]
        for ax, measure in zip(row, MEASURES, strict=True):
            for learner in learners:
                line = rows[rows["learner"] == learner].sort_values([measure, "value"])
                x = line[measure].to_numpy()
                ax.plot(x, line["iqm"], marker=".", color=colors[learner], label=learner)
                ax.fill_between(
                    x, line["iqm_low"], line["iqm_high"], color=colors[learner], alpha=0.2, lw=0
                )
            positive = rows[measure][rows[measure] > 0]
            if len(positive) == len(rows) and positive.max() > 10 * positive.min():
                ax.set_xscale("log")
            ax.set_xlabel(MEASURE_LABELS[measure])
            knob = FAMILIES[family].knob
            knob_values = ", ".join(map(str, dict.fromkeys(rows["value"])))
            ax.set_title(f"{family} ({knob} {knob_values})", fontsize="small")
        row[0].set_ylabel("Normalised regret")
    figure_legend(fig, axes[0], title="learner")
    return fig, axes
