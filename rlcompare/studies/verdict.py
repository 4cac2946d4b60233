"""What a comparison decided: the :class:`Verdict` table, its effect sizes, and the runs a
fixed design of the same power would have spent."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from rlcompare.analysis.sequential import SequentialComparison


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What ``compare`` decided.

    Attributes:
        decisions: One row per (env, pair): ``env, a, b, decision`` ("better" / "worse" means
            ``a`` is better / worse than ``b``; "no difference found" after the last interim;
            "undecided" only in a one-interim verdict that stopped early), ``interim`` (when it
            was decided), ``runs_a, runs_b``, ``mean_a, mean_b``, ``difference`` (mean of ``a``
            minus mean of ``b``) with a 95% bootstrap CI ``difference_low, difference_high``,
            ``p_improvement`` (P(a run of ``a`` is better than one of ``b``), rliable) with its
            CI ``p_low, p_high``, and the ``score``/``metric`` it was read from.
        scores: One row per run the test read: ``env, contender, interim, seed, run_id,
            score``.
        parameters: ``alpha`` (family-wise, over every env and pair), ``alpha_per_env``,
            ``n``, ``K``, ``permutations``, ``comparisons``, ``baseline``, ``family``, and
            ``interims`` run per env.
    """

    decisions: pd.DataFrame
    scores: pd.DataFrame
    parameters: dict[str, Any]

    def runs_used(self) -> pd.DataFrame:
        """Runs per env and contender."""
        return self.scores.groupby(["env", "contender"]).size().rename("runs").reset_index()

    def __str__(self) -> str:
        p = self.parameters
        head = (
            f"{p['family']}; alpha {p['alpha']} ({p['alpha_per_env']:.4g} per env), n {p['n']} "
            f"runs per interim, at most K {p['K']} interims"
        )
        columns = ["env", "a", "b", "decision", "interim", "runs_a", "runs_b", "difference"]
        return f"{head}\n{self.decisions[columns].to_string(index=False)}"

    def _repr_html_(self) -> str:
        return self.decisions.to_html(index=False)


def difference_interval(
    a: np.ndarray, b: np.ndarray, reps: int = 2000
) -> tuple[float, float, float]:
    """Mean of ``a`` minus mean of ``b`` with its 95% percentile bootstrap CI (scipy, seeded);
    a degenerate interval at the difference when every value is equal."""
    from scipy.stats import bootstrap

    difference = float(a.mean() - b.mean())
    if np.ptp(np.concatenate([a, b])) == 0:
        return difference, difference, difference
    interval = bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
        n_resamples=reps,
        method="percentile",
        random_state=0,
    ).confidence_interval
    return difference, float(interval.low), float(interval.high)


def effect_sizes(a: np.ndarray, b: np.ndarray, higher: bool, reps: int = 2000) -> dict[str, float]:
    """Difference of means with a percentile bootstrap CI (scipy) and P(improvement) with its
    CI (rliable); both 95%, seeded."""
    from rliable import library

    from rlcompare.analysis.matrices import fast_probability_of_improvement, seeded_global_rng

    difference, low, high = difference_interval(a, b, reps)
    sign = 1.0 if higher else -1.0
    with seeded_global_rng(0):
        points, intervals = library.get_interval_estimates(
            {"p": (sign * a[:, None], sign * b[:, None])},
            fast_probability_of_improvement,
            reps=reps,
        )
    p_low, p_high = map(float, np.ravel(intervals["p"]))
    return {
        "difference": difference,
        "difference_low": low,
        "difference_high": high,
        "p_improvement": float(points["p"]),
        "p_low": p_low,
        "p_high": p_high,
    }


def family_text(envs: int) -> str:
    if envs == 1:
        return "one family of comparisons"
    return f"one family per env, alpha split over {envs} envs (Bonferroni)"


def build_verdict(
    tests: Mapping[str, SequentialComparison],
    read: Mapping[str, tuple[str, bool]],
    scores: pd.DataFrame,
    score: str,
    parameters: dict[str, Any],
) -> Verdict:
    records = []
    for env, test in tests.items():
        metric, higher = read[env]
        for pair, decision in test.decisions.items():
            a = np.asarray(test.scores[pair[0]])
            b = np.asarray(test.scores[pair[1]])
            records.append(
                {
                    "env": env,
                    "a": pair[0],
                    "b": pair[1],
                    "decision": decision,
                    "interim": test.decided_at.get(pair),
                    "runs_a": a.size,
                    "runs_b": b.size,
                    "mean_a": float(a.mean()),
                    "mean_b": float(b.mean()),
                    **effect_sizes(a, b, higher),
                    "score": score,
                    "metric": metric,
                }
            )
    return Verdict(pd.DataFrame.from_records(records), scores, parameters)


def fixed_design_runs(verdict: Verdict, power: float = 0.8) -> pd.DataFrame:
    """Runs each comparison used against a fixed-seed design with the same error control.

    The fixed design is a two-sample test of each pair at ``alpha_per_env / pairs`` (two-
    sided, Bonferroni over the env's pairs), sized by the normal approximation to reach
    ``power`` at the effect the verdict observed (Cohen's d from the pooled standard
    deviation): ``n = 2 ((z(1 - a/2) + z(power)) / d)^2`` runs per contender. Where the
    observed effect is 0 no fixed design reaches the power (``inf``).

    Returns:
        One row per (env, pair): ``env, a, b, decision, runs_sequential`` (both contenders),
        ``runs_fixed`` (both contenders) and ``effect_d``.
    """
    table = verdict.decisions
    records = []
    for env, rows in table.groupby("env", sort=False):
        level = verdict.parameters["alpha_per_env"] / len(rows)
        z = norm.ppf(1 - level / 2) + norm.ppf(power)
        for row in rows.itertuples():
            scores = verdict.scores[verdict.scores["env"] == env]
            a = scores.loc[scores["contender"] == row.a, "score"].to_numpy()
            b = scores.loc[scores["contender"] == row.b, "score"].to_numpy()
            pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
            d = abs(a.mean() - b.mean()) / pooled if pooled > 0 else math.inf
            if a.mean() == b.mean():
                d = 0.0
            fixed = math.inf if d == 0 else 2 * max(2, math.ceil(2 * (z / d) ** 2))
            records.append(
                {
                    "env": env,
                    "a": row.a,
                    "b": row.b,
                    "decision": row.decision,
                    "runs_sequential": a.size + b.size,
                    "runs_fixed": fixed,
                    "effect_d": d,
                }
            )
    return pd.DataFrame.from_records(records)
