"""Notebook 03: sample efficiency of DQN and its variants (Double + dueling, prioritized
replay, n-step returns, and the no-target-network / no-replay ablations), Stable-Baselines3's
DQN with the same hyperparameters, and PPO, on classic control.

A variant is a label with an algorithm and hyperparameter overrides; runs carry the label as
their ``experiment``, which the analysis uses as the contender (:func:`contenders`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rlcompare.analysis import stats
from rlcompare.errors import SpecError
from rlcompare.experiments.common import SUMMARY_COLUMNS as FINAL_COLUMNS
from rlcompare.experiments.common import by_label, eval_every, keyed
from rlcompare.experiments.evidence import iqm_ci, verdict_claims
from rlcompare.spec.runspec import RunSpec, grid
from rlcompare.studies.compare import stored_verdict
from rlcompare.studies.verdict import Verdict
from rlcompare.viz import plots

# The algorithm that takes ``ppo_hparams``; every other variant starts from ``dqn_hparams``.
PPO = "ppo"
# Thresholds of the performance profile: 0, 0.05, ..., 1 of the normalized score.
TAUS = [i / 20 for i in range(21)]
# Collapse: below half of the running best for good, after first reaching 90% of the best.
COLLAPSE_FRACTION = 0.5
COLLAPSE_SOLVED = 0.9

# Families of contenders drawn in panels of their own, each with plain DQN as reference.
FAMILIES = {
    "variants": ("dqn", "double_dueling", "prioritized", "n_step_3"),
    "ablations": ("dqn", "no_target", "no_replay"),
    "peers": ("dqn", "sb3_dqn", "ppo"),
}
# The decisions table as the notebook shows it: which score each row was read from first.
DECISION_COLUMNS = ["score", "env", "a", "b", "decision", "runs_a", "runs_b", "difference"]
DECISION_COLUMNS += ["difference_low", "difference_high", "p_improvement"]

__all__ = [
    "DECISION_COLUMNS",
    "FAMILIES",
    "FINAL_COLUMNS",
    "SampleEfficiencySpecs",
    "SampleEfficiencyVerdicts",
    "collapse",
    "contenders",
    "decisions",
    "headline",
    "learning_curves_figure",
    "profile",
    "reach",
    "reach_summary",
    "specs",
    "threshold_figure",
    "verdicts",
]


class SampleEfficiencySpecs(NamedTuple):
    """The notebook's sweep and what its figures record as their parameters."""

    runs: list[RunSpec]
    provenance: dict[str, Any]


def specs(
    *,
    variants: Mapping[str, Sequence[Any]],
    envs: Sequence[str],
    seeds: int,
    steps: int,
    dqn_hparams: Mapping[str, Any],
    ppo_hparams: Mapping[str, Any],
    evals: int,
    eval_episodes: int,
) -> SampleEfficiencySpecs:
    """The specs of notebook 03 from its parameters.

    Args:
        variants: ``{label: [algo, hparam overrides]}``, in the order runs are listed.
        envs: Gymnasium ids every variant runs on.
        seeds: Seeds per (variant, env).
        steps: Budget in env steps.
        dqn_hparams: Hyperparameters of every variant whose algo is not PPO.
        ppo_hparams: Hyperparameters of PPO.
        evals: Evaluations over the budget.
        eval_episodes: Episodes per evaluation.
    """
    runs: list[RunSpec] = []
    for label, variant in variants.items():
        if len(variant) != 2 or not isinstance(variant[1], Mapping):
            raise SpecError(
                f"variant {label!r} = {variant!r} is invalid; valid: [algo, {{hparam: value}}]"
            )
        algo, extra = variant
        base = ppo_hparams if algo == PPO else dqn_hparams
        runs += grid(
            algo,
            list(envs),
            seeds,
            hparams={**base, **extra},
            steps=steps,
            eval_every=eval_every(steps, evals),
            eval_episodes=eval_episodes,
            experiment=label,
        )
    provenance = {
        "steps": steps,
        "variants": variants,
        "dqn_hparams": dqn_hparams,
        "ppo_hparams": ppo_hparams,
    }
    return SampleEfficiencySpecs(runs, provenance)


# ------------------------------------------------------------------------------ analysis
def contenders(runs: pd.DataFrame) -> pd.DataFrame:
    """The tidy table with each variant's label as its ``algo``, so variants of DQN compare
    as contenders."""
    return by_label(runs)


def _per_env(
    frame: pd.DataFrame,
    thresholds: Mapping[str, float],
    envs: Sequence[str],
    table: Callable[[pd.DataFrame, float], pd.DataFrame],
) -> pd.DataFrame:
    """``table(rows of env, threshold)`` for every env of ``envs`` with a threshold, stacked."""
    tables = [
        table(frame[frame["env"] == env], thr) for env, thr in thresholds.items() if env in envs
    ]
    if not tables:
        raise SpecError(f"no env of {list(envs)} has a threshold; thresholds: {dict(thresholds)}")
    return pd.concat(tables)


def reach(
    frame: pd.DataFrame, thresholds: Mapping[str, float], envs: Sequence[str]
) -> pd.DataFrame:
    """Per run: the first env step at which the eval return reached its env's threshold
    (``reached`` False: censored at its last step), envs in the order of ``thresholds``."""
    return _per_env(frame, thresholds, envs, stats.steps_to_threshold)


def reach_summary(
    frame: pd.DataFrame, thresholds: Mapping[str, float], envs: Sequence[str]
) -> pd.DataFrame:
    """Per env and contender: runs that reached the threshold, and the Kaplan-Meier median
    steps to reach it (``km_median_steps``)."""
    summary = partial(stats.threshold_summary, by=["env", "algo"])
    return _per_env(frame, thresholds, envs, summary)


def profile(normalized: pd.DataFrame, reps: int) -> pd.DataFrame:
    """Performance profile of the final normalized return at ``TAUS``, with 95% CIs."""
    return stats.performance_profile(normalized, taus=TAUS, reps=reps)


def collapse(normalized: pd.DataFrame) -> pd.DataFrame:
    """Per contender: runs, collapsed runs and their share (:func:`stats.collapse_rate`)."""
    return stats.collapse_rate(
        normalized, fraction=COLLAPSE_FRACTION, solve_threshold=COLLAPSE_SOLVED
    ).groups


class SampleEfficiencyVerdicts(NamedTuple):
    """One-interim verdicts on the notebook's stored runs: by the final eval return (every env
    at once), and by the steps to each env's threshold (a verdict per env)."""

    final: Verdict
    steps: tuple[Verdict, ...]


def verdicts(
    frame: pd.DataFrame,
    thresholds: Mapping[str, float],
    envs: Sequence[str],
    baseline: str = "dqn",
    alpha: float = 0.05,
) -> SampleEfficiencyVerdicts:
    """Every contender against ``baseline`` on the runs already stored (no run is added; each
    contender's stored seeds are one interim), by :func:`rlcompare.studies.compare.stored_verdict`.

    ``alpha`` is the chance of any wrong "better" or "worse" in the whole section: half of it
    goes to the final eval return (over every env and pair), half to the steps to threshold,
    split evenly between the envs with a threshold (a verdict takes one threshold). A run that
    never reached the threshold counts at its last step.

    Args:
        frame: :func:`contenders`' table.
        thresholds: Eval return to reach per env.
        envs: Envs of the sweep.
        baseline: The contender every other is compared with.
        alpha: Family-wise error over both scores, every env and pair.
    """
    per_score = alpha / 2
    final = stored_verdict(
        frame, envs=list(envs), baseline=baseline, metric="eval_return", alpha=per_score
    )
    with_threshold = [env for env in envs if env in thresholds]
    steps = tuple(
        stored_verdict(
            frame,
            envs=[env],
            baseline=baseline,
            metric="eval_return",
            score="steps_to_threshold",
            threshold=thresholds[env],
            alpha=per_score / len(with_threshold),
        )
        for env in with_threshold
    )
    return SampleEfficiencyVerdicts(final, steps)


def decisions(verdicts_: SampleEfficiencyVerdicts) -> pd.DataFrame:
    """The decisions of both scores in one table (:data:`DECISION_COLUMNS`), final eval return
    first; ``steps_to_threshold`` differences are in env steps (lower is better)."""
    tables = [verdicts_.final.decisions, *(v.decisions for v in verdicts_.steps)]
    return pd.concat(tables, ignore_index=True)[DECISION_COLUMNS]


def _decided(table: pd.DataFrame, score: str) -> dict[str, str]:
    rows = table[table["score"] == score]
    return {f"{r.env}: {r.a} vs {r.b}": r.decision for r in rows.itertuples()}


def _decided_claims(table: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """What the verdicts decided about the contenders ``names``: a claim per score."""
    rows = table[table["a"].isin(names)]
    return [
        claim
        for score, label in (
            ("final", "final eval return"),
            ("steps_to_threshold", "steps to threshold"),
        )
        for claim in verdict_claims(rows[rows["score"] == score], label)
    ]


def headline(
    final: pd.DataFrame,
    reached: pd.DataFrame,
    collapsed: pd.DataFrame,
    steps: int,
    decided: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The notebook's headline numbers.

    Args:
        final: ``stats.summary`` of the normalized scores by ``algo``.
        reached: :func:`reach_summary`.
        collapsed: :func:`collapse`.
        steps: The budget in env steps (quoted in the evidence).
        decided: :func:`decisions`, whose outcomes join the numbers and the evidence.
    """
    rows = final.set_index("algo")
    iqm = rows["iqm"]

    def score(label: str) -> str:
        return iqm_ci(rows.loc[label]) if label in rows.index else "n/a"

    ci = f"(final normalized IQM after {steps} env steps, 95% CI)"
    numbers: dict[str, Any] = {
        "final_normalized_iqm": iqm.to_dict(),
        "km_median_steps_to_threshold": keyed(reached, ["env", "algo"], "km_median_steps"),
        "collapse_share": collapsed.set_index("algo")["share"].to_dict(),
        "evidence": {
            "Q-learning": [
                f"DQN {score('dqn')} vs SB3 DQN {score('sb3_dqn')} {ci}",
                f"DQN without a target network {score('no_target')}, without replay "
                f"{score('no_replay')} {ci}",
            ],
            "Policy gradient (PPO)": [f"PPO {score('ppo')} vs DQN {score('dqn')} {ci}"],
        },
    }
    if decided is not None:
        numbers["decisions"] = {
            "final_eval_return": _decided(decided, "final"),
            "steps_to_threshold": _decided(decided, "steps_to_threshold"),
        }
        evidence = numbers["evidence"]
        q_learners = [name for name in decided["a"].unique() if name != PPO]
        evidence["Q-learning"] += _decided_claims(decided, q_learners)
        evidence["Policy gradient (PPO)"] += _decided_claims(decided, [PPO])
    return numbers


# ------------------------------------------------------------------------------- figures
def learning_curves_figure(
    frame: pd.DataFrame, reps: int, families: Mapping[str, Sequence[str]] = FAMILIES
) -> tuple[Figure, np.ndarray]:
    """Eval return against env steps: a row of panels per family of contenders (each with
    plain DQN as the reference line), a column per env, one shared legend outside.

    Eight lines in one panel cover one another; a family holds at most four. Contenders in
    no family get a row of their own ("others").
    """
    present = list(dict.fromkeys(frame["algo"]))
    listed = {name for members in families.values() for name in members}
    rows = {
        family: [name for name in members if name in present]
        for family, members in families.items()
    }
    rows = {family: names for family, names in rows.items() if len(names) > 1}
    others = [name for name in present if name not in listed]
    if others:
        rows["others"] = others
    envs = list(dict.fromkeys(frame["env"]))
    colors = plots.algo_colors(present)  # one colour per contender in every panel
    fig, axes = plt.subplots(
        len(rows),
        len(envs),
        figsize=(2.8 * len(envs) + 1.2, 2.2 * len(rows)),
        layout="constrained",
        squeeze=False,
        sharex="col",
    )
    for row, (family, names) in zip(axes, rows.items(), strict=True):
        for ax, env in zip(row, envs, strict=True):
            subset = frame[(frame["env"] == env) & frame["algo"].isin(names)]
            plots.learning_curves(subset, reps=reps, colors=colors, ax=ax)
            ax.set_title(f"{env} · {family}")
    plots.figure_legend(fig, list(axes.flat), title="algo")
    return fig, axes


def threshold_figure(reached: pd.DataFrame) -> tuple[Figure, np.ndarray]:
    """Steps to threshold per run (:func:`reach`), one panel per env."""
    return plots.facets(plots.steps_to_threshold, reached, col="env")
