"""Aggregates and comparisons over the tidy results table, each with its uncertainty.

Aggregates (mean, median, IQM, optimality gap, probability of improvement, performance
profiles) and their stratified bootstrap confidence intervals come from rliable. The only
hand-written piece is the glue, :func:`_score_matrices`, which turns a frame with one row per
run into rliable's ``(num_runs x num_tasks)`` matrices. A task is an env together with its
``env.*`` kwargs (FrozenLake slippery and not slippery are two tasks).

Every function is pure: it takes the tidy table (one row per run x step x metric, columns
``run_id, algo, env, seed, step, metric, value`` and optional ``experiment, status, hp.*,
env.*``) and returns a new DataFrame.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.stats
from rliable import library, metrics

from rlcompare.errors import choices_text

REQUIRED_COLUMNS = ("run_id", "algo", "env", "seed", "step", "metric", "value")
RUN_COLUMNS = ("experiment", "run_id", "algo", "env", "seed", "status")
LOWER_IS_BETTER = frozenset({"q_error", "policy_regret", "td_error", "wall_time_s"})

__all__ = [
    "CollapseResult", "Estimate", "aggregate_curves", "auc", "collapse_rate", "final_scores",
    "improvement_matrix", "interpolate_curves", "normalize", "performance_profile",
    "probability_of_improvement", "steps_to_threshold", "summary", "threshold_summary",
]


class Estimate(NamedTuple):
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float


class CollapseResult(NamedTuple):
    """Output of :func:`collapse_rate`."""

    runs: pd.DataFrame
    """One row per run: run columns, ``peak``, ``collapsed``, ``collapse_step``."""
    groups: pd.DataFrame
    """One row per group: group columns, ``runs``, ``collapsed``, ``share``."""


# ---------------------------------------------------------------------------------- helpers
def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; available: {', '.join(map(str, df))}")


def _metric_rows(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of ``metric`` sorted by run and step; ValueError naming the metrics present."""
    _check_columns(df, REQUIRED_COLUMNS)
    rows = df[df["metric"] == metric]
    if rows.empty:
        present = sorted(df["metric"].dropna().unique())
        raise ValueError(f"no rows for metric {metric!r}; {choices_text(present, metric)}")
    return rows.sort_values(["run_id", "step"], kind="stable")


def _run_columns(df: pd.DataFrame) -> list[str]:
    prefixed = [c for c in df.columns if str(c).startswith(("hp.", "env."))]
    return [c for c in RUN_COLUMNS if c in df.columns] + prefixed


def _run_info(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per run (indexed by run_id) with the run's identity, hp.* and env.* columns."""
    columns = [c for c in _run_columns(rows) if c != "run_id"]
    return rows.groupby("run_id", sort=True)[columns].first()


def _as_list(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _higher_is_better(metric: str, higher_is_better: bool | None) -> bool:
    return metric not in LOWER_IS_BETTER if higher_is_better is None else higher_is_better


@contextmanager
def _seeded(random_state: int | None) -> Iterator[None]:
    # rliable's bootstraps draw indices from NumPy's global RNG and ignore their own
    # random_state argument, so seed the global RNG for the call and then put it back.
    if random_state is None:
        yield
        return
    saved = np.random.get_state()  # noqa: NPY002
    np.random.seed(random_state)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(saved)  # noqa: NPY002


def _score_matrices(
    runs: pd.DataFrame, by: list[str], values: Sequence[object]
) -> dict[tuple, tuple[np.ndarray, list[str]]]:
    """The glue: rliable score arrays per group.

    Args:
        runs: One row per run with the ``by`` columns, ``env``, ``seed`` and ``values``.
        by: Grouping columns.
        values: Columns holding each run's score(s).

    Returns:
        ``{group key tuple: (scores, tasks)}`` where scores has shape
        ``(num_runs x num_tasks x len(values))`` and tasks labels its second axis
        (``"env(kwarg=value, ...)"``). Runs with a
        NaN score are dropped with a warning. Where tasks of a group have unequal run counts,
        each task keeps its first ``min`` runs by seed, with a warning (a stratified bootstrap
        needs a rectangular matrix).
    """
    _check_columns(runs, [*by, "env", "seed"])
    nan = runs[list(values)].isna().any(axis=1)
    if nan.any():
        warnings.warn(f"dropping runs with NaN scores: {sorted(runs.loc[nan].index)}",
                      stacklevel=3)
        runs = runs[~nan]
    task_cols = ["env"] + sorted(c for c in runs.columns if str(c).startswith("env."))
    result = {}
    for key, group in runs.groupby(by, sort=True, dropna=False):
        columns, tasks = [], []
        for task, cell in group.groupby(task_cols, sort=True, dropna=False):
            columns.append(cell.sort_values("seed")[list(values)].to_numpy(dtype=float))
            pairs = zip(task_cols[1:], task[1:], strict=True)
            kwargs = ", ".join(f"{column[4:]}={value}" for column, value in pairs)
            tasks.append(f"{task[0]}({kwargs})" if kwargs else str(task[0]))
        counts = [len(c) for c in columns]
        if len(set(counts)) > 1:
            warnings.warn(f"group {key}: tasks have {counts} runs; using the first {min(counts)}"
                          " of each (by seed)", stacklevel=3)
        result[key] = (np.stack([c[: min(counts)] for c in columns], axis=1), tasks)
    task_sets = {frozenset(tasks) for _, tasks in result.values()}
    if "env" not in by and len(task_sets) > 1:
        warnings.warn("groups cover different tasks; each aggregate is over its own tasks",
                      stacklevel=3)
    return result


def _group_record(by: list[str], key: tuple) -> dict[str, object]:
    return dict(zip(by, key, strict=True))


# ------------------------------------------------------------------------- final scores
def final_scores(df: pd.DataFrame, metric: str = "eval_return", last: int = 1) -> pd.DataFrame:
    """One score per run: the mean of its last ``last`` recorded values of ``metric``.

    Args:
        df: Tidy results table.
        metric: Metric to score (normally ``eval_return``).
        last: Number of final evaluations to average (>= 1).

    Returns:
        One row per run: ``run_id``, identity columns (``experiment, algo, env, seed,
        status`` where present), ``hp.*``, ``env.*``, ``score`` and ``step`` (last step).
    """
    if last < 1:
        raise ValueError(f"last = {last!r} is invalid; it must be an int >= 1")
    rows = _metric_rows(df, metric)
    tail = rows.groupby("run_id", sort=False).tail(last)
    scores = tail.groupby("run_id", sort=True).agg(score=("value", "mean"), step=("step", "max"))
    return _run_info(rows).join(scores).reset_index()


def summary(
    df: pd.DataFrame,
    metric: str = "eval_return",
    by: str | Sequence[str] = "algo",
    last: int = 1,
    reps: int = 2000,
    target: float | None = None,
    random_state: int | None = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Aggregate final scores per group, each with a stratified bootstrap CI (rliable).

    ``mean`` is the mean over tasks of per-task mean scores, ``median`` the median over
    tasks of per-task means (so with one task it equals ``mean``), ``iqm`` the interquartile
    mean over all runs and tasks, ``optimality_gap`` the mean shortfall below ``target``.
    With one run the CI collapses to the point.

    Args:
        df: Tidy results table.
        metric: Metric to score.
        by: Column or columns defining a group (e.g. ``"algo"`` or ``["algo", "hp.lr"]``).
        last: Final evaluations averaged per run.
        reps: Bootstrap replications.
        target: Score counted as optimal; adds the ``optimality_gap`` columns when given.
        random_state: Seed for the bootstrap; None leaves NumPy's global RNG as it is.
        confidence: Coverage of the intervals.

    Returns:
        One row per group: the ``by`` columns, ``runs``, ``tasks``, then for each statistic
        ``<stat>, <stat>_low, <stat>_high``.
    """
    by = _as_list(by)
    matrices = _score_matrices(final_scores(df, metric, last).set_index("run_id"), by, ["score"])
    names = ["mean", "median", "iqm"] + (["optimality_gap"] if target is not None else [])

    def aggregates(scores: np.ndarray) -> np.ndarray:
        values = [metrics.aggregate_mean(scores), metrics.aggregate_median(scores),
                  metrics.aggregate_iqm(scores)]
        if target is not None:
            values.append(metrics.aggregate_optimality_gap(scores, target))
        return np.array(values)

    arrays = {key: scores[..., 0] for key, (scores, _) in matrices.items()}
    with _seeded(random_state):
        points, intervals = library.get_interval_estimates(
            arrays, aggregates, reps=reps, confidence_interval_size=confidence)
    records = []
    for key, scores in arrays.items():
        record = {**_group_record(by, key), "runs": scores.size, "tasks": scores.shape[1]}
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
) -> pd.DataFrame:
    """P(X > Y) with a CI for every ordered pair of algorithms (rliable).

    The probability is averaged over the tasks both algorithms ran (Mann-Whitney U per task);
    each algorithm's runs are resampled independently within tasks.

    Returns:
        Columns ``algo_x, algo_y, probability, low, high`` (pairs with x != y).
    """
    matrices = _score_matrices(final_scores(df, metric, last).set_index("run_id"), ["algo"],
                               ["score"])
    present = [key[0] for key in matrices]
    algos = present if algos is None else list(algos)
    for algo in algos:
        if algo not in present:
            raise ValueError(f"unknown algo {algo!r}; {choices_text(present, algo)}")
    pairs = {}
    for i, x in enumerate(algos):
        for y in algos[i + 1:]:
            (sx, tx), (sy, ty) = matrices[(x,)], matrices[(y,)]
            common = sorted(set(tx) & set(ty))
            if not common:
                raise ValueError(f"{x!r} and {y!r} share no task; {x}: {tx}, {y}: {ty}")
            if len(common) < max(len(tx), len(ty)):
                warnings.warn(f"comparing {x!r} with {y!r} on shared tasks {common} only",
                              stacklevel=2)
            pairs[(x, y)] = (sx[:, [tx.index(t) for t in common], 0],
                             sy[:, [ty.index(t) for t in common], 0])
    with _seeded(random_state):
        points, intervals = library.get_interval_estimates(
            pairs, metrics.probability_of_improvement, reps=reps,
            confidence_interval_size=confidence)
    records = []
    for x, y in pairs:
        # Ties count one half, so P(Y > X) = 1 - P(X > Y) exactly, resample by resample.
        p, (low, high) = float(points[(x, y)]), map(float, np.ravel(intervals[(x, y)]))
        records.append({"algo_x": x, "algo_y": y, "probability": p, "low": low, "high": high})
        records.append({"algo_x": y, "algo_y": x, "probability": 1 - p, "low": 1 - high,
                        "high": 1 - low})
    columns = ["algo_x", "algo_y", "probability", "low", "high"]
    return pd.DataFrame.from_records(records, columns=columns)


def probability_of_improvement(
    df: pd.DataFrame,
    a: str,
    b: str,
    metric: str = "eval_return",
    last: int = 1,
    reps: int = 2000,
    random_state: int | None = 0,
    confidence: float = 0.95,
) -> Estimate:
    """P(X_a > X_b): the chance a random run of ``a`` beats one of ``b``, with its CI.

    Ties count one half. See :func:`improvement_matrix` for the estimator.
    """
    frame = improvement_matrix(df, [a, b], metric, last, reps, random_state, confidence)
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
) -> pd.DataFrame:
    """Score distribution: the fraction of runs (over all tasks) scoring above each tau.

    Returns:
        Columns: the ``by`` columns, ``tau, fraction, low, high``.
    """
    by, taus = _as_list(by), np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size == 0:
        raise ValueError(f"taus must be a non-empty 1-D sequence, got shape {taus.shape}")
    matrices = _score_matrices(final_scores(df, metric, last).set_index("run_id"), by, ["score"])
    with _seeded(random_state):
        profiles, cis = library.create_performance_profile(
            {key: scores[..., 0] for key, (scores, _) in matrices.items()}, taus, reps=reps,
            confidence_interval_size=confidence)
    return pd.DataFrame.from_records([
        {**_group_record(by, key), "tau": tau, "fraction": float(profiles[key][i]),
         "low": float(cis[key][0, i]), "high": float(cis[key][1, i])}
        for key in matrices for i, tau in enumerate(taus)
    ])


# ------------------------------------------------------------------------ learning curves
def interpolate_curves(
    df: pd.DataFrame,
    metric: str = "eval_return",
    steps: Sequence[int] | np.ndarray | None = None,
    num_points: int = 50,
) -> pd.DataFrame:
    """Each run's ``metric`` linearly interpolated onto one step grid.

    Runs evaluated at different steps aggregate correctly only on a common grid. Values at
    repeated steps are averaged first; nothing is extrapolated (NaN outside a run's range).

    Args:
        df: Tidy results table.
        metric: Metric to interpolate.
        steps: Grid of env steps; by default ``num_points`` evenly spaced integer steps over
            the range every run covers.
        num_points: Grid size when ``steps`` is None.

    Returns:
        Long frame: run columns, ``step``, ``metric``, ``value`` (one row per run x grid step).
    """
    rows = _metric_rows(df, metric).groupby(["run_id", "step"], sort=True)["value"].mean()
    spans = rows.reset_index().groupby("run_id")["step"].agg(["min", "max"])
    if steps is None:
        low, high = spans["min"].max(), spans["max"].min()
        if high < low:
            raise ValueError(f"runs share no step range for {metric!r} (latest start {low}, "
                             f"earliest end {high}); pass steps=")
        grid = np.unique(np.round(np.linspace(low, high, num_points)).astype(np.int64))
    else:
        grid = np.unique(np.asarray(steps, dtype=np.int64))
    frames = []
    for run_id, curve in rows.groupby(level="run_id", sort=True):
        x = curve.index.get_level_values("step").to_numpy(dtype=float)
        y = np.interp(grid, x, curve.to_numpy(dtype=float), left=np.nan, right=np.nan)
        frames.append(pd.DataFrame({"run_id": run_id, "step": grid, "value": y}))
    out = pd.concat(frames, ignore_index=True).assign(metric=metric)
    return out.join(_run_info(_metric_rows(df, metric)), on="run_id")


def aggregate_curves(
    df: pd.DataFrame,
    metric: str = "eval_return",
    by: str | Sequence[str] = "algo",
    steps: Sequence[int] | np.ndarray | None = None,
    num_points: int = 50,
    reps: int = 1000,
    random_state: int | None = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """IQM learning curve per group with a stratified bootstrap CI band at every grid step.

    Curves are first put on a common grid (:func:`interpolate_curves`); grid steps where some
    run of a group has no value are left out for that group.

    Returns:
        Columns: the ``by`` columns, ``step, iqm, iqm_low, iqm_high, runs``.
    """
    by = _as_list(by)
    curves = interpolate_curves(df, metric, steps, num_points)
    wide = curves.pivot(index="run_id", columns="step", values="value")
    runs = _run_info(_metric_rows(df, metric)).join(wide)

    def iqm_per_step(scores: np.ndarray) -> np.ndarray:
        # Same as metrics.aggregate_iqm on each scores[..., step], in one vectorised call.
        return scipy.stats.trim_mean(scores.reshape(-1, scores.shape[-1]), 0.25, axis=0)

    records = []
    for key, (scores, _) in _score_matrices(runs, by, list(wide.columns)).items():
        keep = ~np.isnan(scores).any(axis=(0, 1))
        if not keep.any():
            continue
        with _seeded(random_state):
            points, cis = library.get_interval_estimates(
                {key: scores[..., keep]}, iqm_per_step, reps=reps,
                confidence_interval_size=confidence)
        group = _group_record(by, key)
        for i, step in enumerate(wide.columns[keep]):
            records.append({**group, "step": int(step), "iqm": float(points[key][i]),
                            "iqm_low": float(cis[key][0, i]), "iqm_high": float(cis[key][1, i]),
                            "runs": scores.shape[0] * scores.shape[1]})
    return pd.DataFrame.from_records(records)


def auc(df: pd.DataFrame, metric: str = "eval_return") -> pd.DataFrame:
    """Normalised area under each run's learning curve.

    The trapezoid area over env steps divided by the step span, i.e. the curve's average
    height; a run with a single recorded step gets that value.

    Returns:
        One row per run: run columns and ``auc``.
    """
    def area(curve: pd.DataFrame) -> float:
        x, y = curve["step"].to_numpy(dtype=float), curve["value"].to_numpy(dtype=float)
        span = x[-1] - x[0]
        if span == 0:
            return float(y[-1])
        return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) / span)

    rows = _metric_rows(df, metric)
    areas = rows.groupby("run_id", sort=True)[["step", "value"]].apply(area).rename("auc")
    return _run_info(rows).join(areas).reset_index()


# ------------------------------------------------------------------ thresholds, collapse
def steps_to_threshold(
    df: pd.DataFrame,
    threshold: float,
    metric: str = "eval_return",
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """The first step at which each run's ``metric`` reaches ``threshold``, with censoring.

    Args:
        df: Tidy results table.
        threshold: Level to reach (``>=``, or ``<=`` when lower is better).
        metric: Metric to watch.
        higher_is_better: Direction; by default lower is better for
            ``q_error, policy_regret, td_error, wall_time_s`` and higher for the rest.

    Returns:
        One row per run: run columns, ``reached`` (bool) and ``steps``: the first step at the
        threshold, or, for a censored run (``reached`` False), its last observed step.
    """
    rows = _metric_rows(df, metric)
    values = rows["value"]
    higher = _higher_is_better(metric, higher_is_better)
    hit = values >= threshold if higher else values <= threshold
    first = rows[hit].groupby("run_id")["step"].min()
    out = _run_info(rows)
    out["reached"] = out.index.isin(first.index)
    out["steps"] = first.reindex(out.index).fillna(rows.groupby("run_id")["step"].max())
    return out.astype({"steps": np.int64}).reset_index()


def _kaplan_meier_median(steps: np.ndarray, reached: np.ndarray) -> float:
    """Smallest event step where the Kaplan-Meier survival S(t) <= 0.5; inf if never."""
    survival = 1.0
    for t in np.unique(steps[reached]):
        at_risk = np.sum(steps >= t)  # runs censored at t still count as at risk at t
        survival *= 1 - np.sum(reached & (steps == t)) / at_risk
        if survival <= 0.5:
            return float(t)
    return float("inf")


def threshold_summary(
    df: pd.DataFrame,
    threshold: float,
    metric: str = "eval_return",
    by: str | Sequence[str] = "algo",
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Per group: how many runs reached ``threshold`` and how fast.

    ``median_steps_reached`` is the median over runs that reached it (NaN when none did; it
    ignores censored runs, so it flatters groups that often fail). ``km_median_steps`` is the
    Kaplan-Meier median, which counts censored runs as "not yet" up to their last step; it is
    ``inf`` when the KM survival never falls to one half within the observed steps.

    Returns:
        Columns: the ``by`` columns, ``runs, reached, censored, median_steps_reached,
        km_median_steps``.
    """
    by = _as_list(by)
    runs = steps_to_threshold(df, threshold, metric, higher_is_better)
    _check_columns(runs, by)
    records = []
    for key, group in runs.groupby(by, sort=True, dropna=False):
        steps, reached = group["steps"].to_numpy(), group["reached"].to_numpy(dtype=bool)
        records.append({
            **_group_record(by, key if isinstance(key, tuple) else (key,)), "runs": len(group),
            "reached": int(reached.sum()), "censored": int((~reached).sum()),
            "median_steps_reached": float(np.median(steps[reached])) if reached.any() else np.nan,
            "km_median_steps": _kaplan_meier_median(steps, reached),
        })
    return pd.DataFrame.from_records(records)


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
    _check_columns(df, ("env", "metric", "value"))
    out = df.copy()
    mask = out["metric"].isin(list(metrics))
    envs = out.loc[mask, "env"]

    def per_env(score: float | Mapping[str, float], name: str) -> pd.Series:
        if isinstance(score, Mapping):
            missing = sorted(set(envs) - set(score))
            if missing:
                raise ValueError(f"{name} has no entry for env(s) {missing}; "
                                 f"{choices_text(sorted(score))}")
            return envs.map(score).astype(float)
        return pd.Series(float(score), index=envs.index)

    low, high = per_env(random_score, "random_score"), per_env(optimal_score, "optimal_score")
    if (high == low).any():
        bad = sorted(set(envs[high == low]))
        raise ValueError(f"random_score equals optimal_score for env(s) {bad}")
    out["value"] = out["value"].astype(float)
    out.loc[mask, "value"] = (out.loc[mask, "value"] - low) / (high - low)
    return out


def collapse_rate(
    df: pd.DataFrame,
    metric: str = "eval_return",
    fraction: float = 0.5,
    solve_threshold: float | None = None,
    by: str | Sequence[str] = "algo",
    min_evals: int = 1,
) -> CollapseResult:
    """Which runs learned and then fell apart for good.

    A run collapses when its metric drops below ``fraction`` x its running best and stays
    below through its last ``min_evals`` or more evaluations. With ``solve_threshold``, only
    runs that first reached it can collapse, and only after reaching it. NaN (divergence)
    counts as below. The rule assumes 0 is the floor of the scale: rescale with
    :func:`normalize` first where returns go negative.

    Returns:
        :class:`CollapseResult` with per-run ``peak, collapsed, collapse_step`` (first step
        of the final low stretch, <NA> if not collapsed) and per-group ``runs, collapsed,
        share``.
    """
    by = _as_list(by)
    rows = _metric_rows(df, metric)
    if (rows["value"] < 0).any():
        warnings.warn(f"{metric} has negative values; runs whose best is <= 0 never count as "
                      "collapsed (rescale with normalize())", stacklevel=2)
    out = _run_info(rows)
    records = {}
    for run_id, curve in rows.groupby("run_id", sort=True):
        values = curve["value"].to_numpy(dtype=float)
        best = np.fmax.accumulate(values)
        below = ~(values >= fraction * best) & (best > 0)
        stretch = len(below) if below.all() else int(np.argmin(below[::-1]))  # final low run
        start = len(values) - stretch
        armed = 0 if solve_threshold is None else np.argmax(values >= solve_threshold)
        solved = solve_threshold is None or bool((values >= solve_threshold).any())
        collapsed = bool(solved and stretch >= min_evals and start > armed)
        records[run_id] = (np.nanmax(values) if not np.isnan(values).all() else np.nan,
                           collapsed, curve["step"].iloc[start] if collapsed else pd.NA)
    out[["peak", "collapsed", "collapse_step"]] = pd.DataFrame.from_dict(
        records, orient="index", columns=["peak", "collapsed", "collapse_step"])
    out = out.astype({"collapsed": bool, "collapse_step": "Int64"}).reset_index()
    _check_columns(out, by)
    groups = out.groupby(by, sort=True, dropna=False).agg(
        runs=("collapsed", "size"), collapsed=("collapsed", "sum")).reset_index()
    groups["share"] = groups["collapsed"] / groups["runs"]
    return CollapseResult(out, groups)
