"""Aggregates and comparisons over the tidy results table, each with its uncertainty.

Aggregates (mean, median, IQM, optimality gap, probability of improvement, performance
profiles) and their stratified bootstrap confidence intervals come from rliable. The only
hand-written piece is the glue,
:func:`rlcompare.analysis.matrices.score_matrices`, which turns a frame with one row per
run into rliable's ``(num_runs x num_tasks)`` matrices. A task is an env together with its
``env.*`` kwargs (FrozenLake slippery and not slippery are two tasks).

Every function is pure: it takes the tidy table (one row per run x step x metric, columns
``run_id, algo, env, seed, step, metric, value`` and optional ``experiment, status, hp.*,
env.*``) and returns a new DataFrame.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from rliable import library, metrics

from rlcompare.analysis.curves import diverged_tails
from rlcompare.analysis.failures import outside_stacklevel
from rlcompare.analysis.matrices import (
    as_list,
    fast_iqm,
    fast_probability_of_improvement,
    group_record,
    metric_rows,
    require_columns,
    run_info,
    score_matrices,
    seeded_global_rng,
)
from rlcompare.errors import choices_text
from rlcompare.runner import schema


class Estimate(NamedTuple):
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float


# ------------------------------------------------------------------------- final scores
def final_scores(
    df: pd.DataFrame,
    metric: str = "eval_return",
    last: int = 1,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """One score per run: the mean of its last ``last`` recorded values of ``metric``.

    A diverged run (``status`` "diverged" or a ``diverged`` row) scores its worst value: the
    lowest value of ``metric`` it recorded, or the highest where lower is better (the rule
    of :func:`auc`, from ``rlcompare.analysis.failures.worst_values``). It failed before its
    budget's end, so its final evaluations are those of a broken learner; its last value
    before diverging would credit it with a score it did not keep. Every statistic built on
    final scores (:func:`summary`, :func:`improvement_matrix`,
    :func:`probability_of_improvement`, :func:`performance_profile`) follows this rule.
    Failed runs and runs without ``metric`` are left out, with a warning naming them.

    Args:
        df: Tidy results table.
        metric: Metric to score (normally ``eval_return``).
        last: Number of final evaluations to average (>= 1).
        higher_is_better: Direction (which value is worst); by default from
            ``rlcompare.runner.schema.higher_is_better``. Needed only with diverged runs.

    Returns:
        One row per run: ``run_id``, identity columns (``experiment, algo, env, seed,
        status`` where present), ``hp.*``, ``env.*``, ``score`` and ``step`` (last step
        recorded).
    """
    if last < 1:
        raise ValueError(f"last = {last!r} is invalid; it must be an int >= 1")
    rows = metric_rows(df, metric)
    tail = rows.groupby("run_id", sort=False).tail(last)
    scores = tail.groupby("run_id", sort=True).agg(score=("value", "mean"), step=("step", "max"))
    tails = diverged_tails(df, rows, metric, higher_is_better)
    scores.loc[tails.index, "score"] = tails["value"]
    return run_info(rows).join(scores).reset_index()


def summary(
    df: pd.DataFrame,
    metric: str = "eval_return",
    by: str | Sequence[str] = "algo",
    last: int = 1,
    reps: int = 2000,
    target: float | None = None,
    random_state: int | None = 0,
    confidence: float = 0.95,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Aggregate final scores per group, each with a stratified bootstrap CI (rliable).

    ``mean`` is the mean over tasks of per-task mean scores, ``median`` the median over
    tasks of per-task means (so with one task it equals ``mean``), ``iqm`` the interquartile
    mean over all runs and tasks, ``optimality_gap`` the mean shortfall of the scores from
    ``target``: below it where higher is better, above it where lower is better (a
    ``q_error`` of 5 against a target of 0 is a gap of 5). With one run the CI collapses to
    the point. Scores are :func:`final_scores`: a diverged run counts at its worst value;
    left-out runs are named in a warning.

    Args:
        df: Tidy results table.
        metric: Metric to score.
        by: Column or columns defining a group (e.g. ``"algo"`` or ``["algo", "hp.lr"]``).
        last: Final evaluations averaged per run.
        reps: Bootstrap replications.
        target: Score counted as optimal; adds the ``optimality_gap`` columns when given.
        random_state: Seed for the bootstrap; None leaves NumPy's global RNG as it is.
        confidence: Coverage of the intervals.
        higher_is_better: Direction (of the optimality gap and of a diverged run's worst
            value); by default from ``rlcompare.runner.schema.higher_is_better``.

    Returns:
        One row per group: the ``by`` columns, ``runs``, ``tasks``, then for each statistic
        ``<stat>, <stat>_low, <stat>_high``.
    """
    by = as_list(by)
    scores = final_scores(df, metric, last, higher_is_better).set_index("run_id")
    matrices = score_matrices(scores, by, ["score"])
    names = ["mean", "median", "iqm"] + (["optimality_gap"] if target is not None else [])
    # rliable's gap is the shortfall below target; negated scores and target make it the
    # excess above target where lower is better.
    sign = 1.0
    if target is not None and not schema.higher_is_better(metric, higher_is_better):
        sign = -1.0

    def aggregates(scores: np.ndarray) -> np.ndarray:
        values = [
            metrics.aggregate_mean(scores),
            metrics.aggregate_median(scores),
            fast_iqm(scores),
        ]
        if target is not None:
            values.append(metrics.aggregate_optimality_gap(sign * scores, sign * target))
        return np.array(values)

    arrays = {key: scores[..., 0] for key, (scores, _) in matrices.items()}
    with seeded_global_rng(random_state):
        points, intervals = library.get_interval_estimates(
            arrays, aggregates, reps=reps, confidence_interval_size=confidence
        )
    records = []
    for key, scores in arrays.items():
        record = {**group_record(by, key), "runs": scores.size, "tasks": scores.shape[1]}
        for i, name in enumerate(names):
            record[name] = float(points[key][i])
            record[f"{name}_low"], record[f"{name}_high"] = map(float, intervals[key][:, i])
        records.append(record)
    return pd.DataFrame.from_records(records)


def improvement_matrix(
    df: pd.DataFrame,
    algos: Sequence[str] | None = None,
    metric: str = "eval_return",
    last: int = 1,
    reps: int = 2000,
    random_state: int | None = 0,
    confidence: float = 0.95,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """P(X better than Y) with a CI for every ordered pair of algorithms (rliable).

    The probability is averaged over the tasks both algorithms ran (Mann-Whitney U per task);
    each algorithm's runs are resampled independently within tasks. "Better" follows the
    metric's direction: P(X > Y) for ``eval_return``, P(X < Y) for ``policy_regret`` or
    ``q_error``.

    Scores are :func:`final_scores`: a diverged run counts at its worst value; left-out runs
    are named in a warning.

    Args:
        df: Tidy results table.
        algos: Algorithms to compare (default: all present).
        metric: Metric to score.
        last: Final evaluations averaged per run.
        reps: Bootstrap replications.
        random_state: Seed for the bootstrap; None leaves NumPy's global RNG as it is.
        confidence: Coverage of the intervals.
        higher_is_better: Direction; by default from
            ``rlcompare.runner.schema.higher_is_better`` (``LOWER_IS_BETTER`` there:
            ``q_error, policy_regret, loss, time_to_recovery, wall_time_s``, ...).

    Returns:
        Columns ``algo_x, algo_y, probability, low, high`` (pairs with x != y);
        ``attrs["metric"]`` and ``attrs["higher_is_better"]`` say what "better" meant.
    """
    higher = schema.higher_is_better(metric, higher_is_better)
    scores = final_scores(df, metric, last, higher).set_index("run_id")
    if not higher:
        # rliable counts X > Y as an improvement: negated scores make lower better.
        scores["score"] = -scores["score"]
    matrices = score_matrices(scores, ["algo"], ["score"])
    present = [key[0] for key in matrices]
    algos = present if algos is None else list(algos)
    for algo in algos:
        if algo not in present:
            raise ValueError(f"unknown algo {algo!r}; {choices_text(present, algo)}")
    pairs = {}
    for i, x in enumerate(algos):
        for y in algos[i + 1 :]:
            (sx, tx), (sy, ty) = matrices[(x,)], matrices[(y,)]
            common = sorted(set(tx) & set(ty))
            if not common:
                raise ValueError(f"{x!r} and {y!r} share no task; {x}: {tx}, {y}: {ty}")
            if len(common) < max(len(tx), len(ty)):
                warnings.warn(
                    f"comparing {x!r} with {y!r} on shared tasks {common} only; runs on "
                    "other tasks are left out",
                    stacklevel=outside_stacklevel(),
                )
            pairs[(x, y)] = (
                sx[:, [tx.index(t) for t in common], 0],
                sy[:, [ty.index(t) for t in common], 0],
            )
    with seeded_global_rng(random_state):
        points, intervals = library.get_interval_estimates(
            pairs,
            fast_probability_of_improvement,
            reps=reps,
            confidence_interval_size=confidence,
        )
    records = []
    for x, y in pairs:
        # Ties count one half, so P(Y > X) = 1 - P(X > Y) exactly, resample by resample.
        p, (low, high) = float(points[(x, y)]), map(float, np.ravel(intervals[(x, y)]))
        records.append({"algo_x": x, "algo_y": y, "probability": p, "low": low, "high": high})
        records.append(
            {"algo_x": y, "algo_y": x, "probability": 1 - p, "low": 1 - high, "high": 1 - low}
        )
    columns = ["algo_x", "algo_y", "probability", "low", "high"]
    out = pd.DataFrame.from_records(records, columns=columns)
    out.attrs.update(metric=metric, higher_is_better=higher)
    return out


def probability_of_improvement(
    df: pd.DataFrame,
    a: str,
    b: str,
    metric: str = "eval_return",
    last: int = 1,
    reps: int = 2000,
    random_state: int | None = 0,
    confidence: float = 0.95,
    higher_is_better: bool | None = None,
) -> Estimate:
    """The chance a random run of ``a`` beats one of ``b``, with its CI: P(X_a > X_b) where
    higher is better, P(X_a < X_b) where lower is (``policy_regret``, ``q_error``, ...).

    Ties count one half. A diverged run counts at its worst value (:func:`final_scores`);
    left-out runs are named in a warning. See :func:`improvement_matrix` for the estimator
    and the direction (``higher_is_better`` overrides the metric's).
    """
    frame = improvement_matrix(
        df, [a, b], metric, last, reps, random_state, confidence, higher_is_better
    )
    row = frame[(frame["algo_x"] == a) & (frame["algo_y"] == b)].iloc[0]
    return Estimate(float(row["probability"]), float(row["low"]), float(row["high"]))


def performance_profile(
    df: pd.DataFrame,
    taus: Sequence[float] | np.ndarray,
    metric: str = "eval_return",
    by: str | Sequence[str] = "algo",
    last: int = 1,
    reps: int = 2000,
    random_state: int | None = 0,
    confidence: float = 0.95,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Score distribution: the fraction of runs (over all tasks) scoring better than each
    tau: above it where higher is better, below it where lower is better (``q_error``).

    Scores are :func:`final_scores`: a diverged run counts at its worst value; left-out runs
    are named in a warning.

    Args:
        df: Tidy results table.
        taus: Score thresholds.
        metric: Metric to score.
        by: Grouping column(s).
        last: Final evaluations averaged per run.
        reps: Bootstrap replications.
        random_state: Seed for the bootstrap; None leaves NumPy's global RNG as it is.
        confidence: Coverage of the intervals.
        higher_is_better: Direction; by default from
            ``rlcompare.runner.schema.higher_is_better``.

    Returns:
        Columns: the ``by`` columns, ``tau, fraction, low, high``; ``attrs["metric"]`` and
        ``attrs["higher_is_better"]`` say which side of tau counted.
    """
    by, taus = as_list(by), np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size == 0:
        raise ValueError(f"taus must be a non-empty 1-D sequence, got shape {taus.shape}")
    higher = schema.higher_is_better(metric, higher_is_better)
    scores = final_scores(df, metric, last, higher).set_index("run_id")
    matrices = score_matrices(scores, by, ["score"])
    # rliable counts scores above tau: negated scores and taus count those below it.
    sign = 1.0 if higher else -1.0
    with seeded_global_rng(random_state):
        profiles, cis = library.create_performance_profile(
            {key: sign * scores[..., 0] for key, (scores, _) in matrices.items()},
            sign * taus,
            reps=reps,
            confidence_interval_size=confidence,
        )
    out = pd.DataFrame.from_records(
        [
            {
                **group_record(by, key),
                "tau": tau,
                "fraction": float(profiles[key][i]),
                "low": float(cis[key][0, i]),
                "high": float(cis[key][1, i]),
            }
            for key in matrices
            for i, tau in enumerate(taus)
        ]
    )
    out.attrs.update(metric=metric, higher_is_better=higher)
    return out


def normalize(
    df: pd.DataFrame,
    random_score: float | Mapping[str, float],
    optimal_score: float | Mapping[str, float],
    metrics: Sequence[str] = ("eval_return", "episode_return"),
) -> pd.DataFrame:
    """Rescale return metrics so a random policy scores 0 and an optimal one 1.

    Args:
        df: Tidy results table.
        random_score: Score of a random policy, one number or a dict per env.
        optimal_score: Optimal score, one number or a dict per env.
        metrics: Metrics to rescale; other rows are left as they are.

    Returns:
        A copy of ``df`` with the chosen metrics' values rescaled.
    """
    require_columns(df, ("env", "metric", "value"))
    out = df.copy()
    mask = out["metric"].isin(list(metrics))
    envs = out.loc[mask, "env"]

    def per_env(score: float | Mapping[str, float], name: str) -> pd.Series:
        if isinstance(score, Mapping):
            missing = sorted(set(envs) - set(score))
            if missing:
                raise ValueError(
                    f"{name} has no entry for env(s) {missing}; {choices_text(sorted(score))}"
                )
            return envs.map(score).astype(float)
        return pd.Series(float(score), index=envs.index)

    low, high = per_env(random_score, "random_score"), per_env(optimal_score, "optimal_score")
    if (high == low).any():
        bad = sorted(set(envs[high == low]))
        raise ValueError(f"random_score equals optimal_score for env(s) {bad}")
    out["value"] = out["value"].astype(float)
    out.loc[mask, "value"] = (out.loc[mask, "value"] - low) / (high - low)
    return out


# Curve-level measures live in rlcompare.curves; served here too so notebooks need one module.
from rlcompare.analysis.curves import (  # noqa: E402
    CollapseResult,
    aggregate_curves,
    auc,
    collapse_rate,
    interpolate_curves,
    per_episode,
    steps_to_threshold,
    threshold_summary,
)

__all__ = [
    "CollapseResult",
    "Estimate",
    "aggregate_curves",
    "auc",
    "collapse_rate",
    "final_scores",
    "improvement_matrix",
    "interpolate_curves",
    "normalize",
    "per_episode",
    "performance_profile",
    "probability_of_improvement",
    "require_columns",
    "steps_to_threshold",
    "summary",
    "threshold_summary",
]
