"""Learning curves, sample efficiency and stability: interpolation onto a common step grid,
IQM bands, area under the curve, steps to a threshold (with censoring) and collapse."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from rliable import library

from rlcompare.analysis.failures import (  # DIVERGED_METRIC, diverged_runs: served here too
    DIVERGED_METRIC,  # noqa: F401
    diverged_runs,
    divergence_steps,
    outside_stacklevel,
    runs_text,
    worst_values,
)
from rlcompare.analysis.matrices import (
    as_list,
    fast_iqm_columns,
    group_record,
    metric_rows,
    require_columns,
    run_info,
    score_matrices,
    seeded_global_rng,
)
from rlcompare.runner import schema


class CollapseResult(NamedTuple):
    """Output of :func:`collapse_rate`."""

    runs: pd.DataFrame
    """One row per run: run columns, ``peak``, ``collapsed``, ``collapse_step``."""
    groups: pd.DataFrame
    """One row per group: group columns, ``runs``, ``collapsed``, ``share``."""


# ------------------------------------------------------------------------ diverged runs
def budget_ends(df: pd.DataFrame, rows: pd.DataFrame) -> pd.Series:
    """Per run of ``rows`` (index run_id): the step its budget ends at, as far as the rows
    tell: for a run that finished, its last step; for a diverged one, the largest last step
    of the finished runs of its group (same identity, hp.* and env.* columns but the seed),
    else of any finished run of the frame, else of any run."""
    info = run_info(rows)
    last = rows.groupby("run_id", sort=True)["step"].max()
    diverged = info.index.isin(diverged_runs(df))
    if not diverged.any():
        return last
    finished = last[~diverged]
    fallback = finished.max() if len(finished) else last.max()
    config = [c for c in info.columns if c not in ("seed", schema.STATUS_COLUMN)]
    ends = last.copy()
    keys = info[config].astype(str).agg("|".join, axis=1) if config else pd.Series("", info.index)
    group_end = finished.groupby(keys[~diverged]).max()
    ends[diverged] = keys[diverged].map(group_end).fillna(fallback).to_numpy()
    return np.maximum(ends, last).astype(np.int64)


# ------------------------------------------------------------------------ learning curves
# Default step ranges of interpolate_curves' grid.
GRID_SPANS = ("common", "all")


def interpolate_curves(
    df: pd.DataFrame,
    metric: str = "eval_return",
    steps: Sequence[int] | np.ndarray | None = None,
    num_points: int = 50,
    *,
    span: str = "common",
) -> pd.DataFrame:
    """Each run's ``metric`` linearly interpolated onto one step grid.

    Runs evaluated at different steps aggregate correctly only on a common grid. Values at
    repeated steps are averaged first; nothing is extrapolated (NaN outside a run's range).
    The default grid spans the steps every run that did not diverge covers: a diverged run
    (``status`` "diverged" or a ``diverged`` row) stopped early because it failed, so it does
    not cut the grid short for the others; here it has NaN past its last value (the raw
    data; :func:`aggregate_curves` counts it at its worst value there). Runs left out (failed,
    or without ``metric``) are named in a warning.

    Args:
        df: Tidy results table.
        metric: Metric to interpolate.
        steps: Grid of env steps; by default ``num_points`` evenly spaced integer steps over
            the range of ``span``.
        num_points: Grid size when ``steps`` is None.
        span: ``"common"``: the range every run covers (every run that did not diverge,
            where there is one); ``"all"``: from the latest start to the last step of any
            run, for runs of different budgets (NaN past a run's end).

    Raises:
        ValueError: an unknown ``span``, or runs that share no step range.

    Returns:
        Long frame: run columns, ``step``, ``metric``, ``value`` (one row per run x grid step).
    """
    if span not in GRID_SPANS:
        raise ValueError(f"span = {span!r} is invalid; valid: {', '.join(GRID_SPANS)}")
    return _on_grid(df, metric_rows(df, metric), metric, steps, num_points, span)


def _on_grid(
    df: pd.DataFrame,
    rows: pd.DataFrame,
    metric: str,
    steps: Sequence[int] | np.ndarray | None,
    num_points: int,
    span: str,
    tails: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """:func:`interpolate_curves` of the ``metric_rows`` ``rows``; with ``tails`` (index
    run_id, columns ``end`` and ``value``), a run's grid steps after its last value and up to
    ``end`` get ``value``."""
    means = rows.groupby(["run_id", "step"], sort=True)["value"].mean()
    spans = means.reset_index().groupby("run_id")["step"].agg(["min", "max"])
    finished = spans[~spans.index.isin(diverged_runs(df))]
    spans = finished if len(finished) else spans
    if steps is None:
        low = spans["min"].max()
        high = spans["max"].min() if span == "common" else spans["max"].max()
        if high < low:
            raise ValueError(
                f"runs share no step range for {metric!r} (latest start {low}, "
                f"earliest end {high}); pass steps="
            )
        grid = np.unique(np.round(np.linspace(low, high, num_points)).astype(np.int64))
    else:
        grid = np.unique(np.asarray(steps, dtype=np.int64))
    frames = []
    for run_id, curve in means.groupby(level="run_id", sort=True):
        x = curve.index.get_level_values("step").to_numpy(dtype=float)
        y = np.interp(grid, x, curve.to_numpy(dtype=float), left=np.nan, right=np.nan)
        if tails is not None and run_id in tails.index:
            after = (grid > x[-1]) & (grid <= tails.at[run_id, "end"])
            y[after] = tails.at[run_id, "value"]
        frames.append(pd.DataFrame({"run_id": run_id, "step": grid, "value": y}))
    out = pd.concat(frames, ignore_index=True).assign(metric=metric)
    return out.join(run_info(rows), on="run_id")


def diverged_tails(
    df: pd.DataFrame, rows: pd.DataFrame, metric: str, higher_is_better: bool | None
) -> pd.DataFrame:
    """Per diverged run of ``rows`` (index run_id): ``end``, the step its budget ends at
    (:func:`budget_ends`), and ``value``, its worst value (:func:`worst_values`), which it
    counts at from its last value to ``end``."""
    diverged = rows.loc[rows["run_id"].isin(diverged_runs(df))]
    if diverged.empty:
        return pd.DataFrame({"end": [], "value": []}, index=pd.Index([], name="run_id"))
    worst = worst_values(diverged, schema.higher_is_better(metric, higher_is_better))
    return pd.DataFrame({"end": budget_ends(df, rows).reindex(worst.index), "value": worst})


def aggregate_curves(
    df: pd.DataFrame,
    metric: str = "eval_return",
    by: str | Sequence[str] = "algo",
    steps: Sequence[int] | np.ndarray | None = None,
    num_points: int = 50,
    reps: int = 1000,
    random_state: int | None = 0,
    confidence: float = 0.95,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """IQM learning curve per group with a stratified bootstrap CI band at every grid step.

    Curves are first put on one grid (:func:`interpolate_curves`; by default over the steps of
    the longest run, so each group's curve reaches the end of its own budget). A diverged run
    (``status`` "diverged" or a ``diverged`` row) continues after its last value at its worst
    value (the lowest it recorded, the highest where lower is better) up to its budget's end
    (:func:`budget_ends`), as in :func:`auc`: a group's curve is not cut at a divergence, and
    it does not keep a broken run at its pre-divergence level.

    A grid step where some runs of a group have a value and others not (a run that ended
    earlier) is left out for that group, with a warning naming those runs; a group with no
    step where all its runs have a value is left out, with a warning. Failed runs and runs
    without ``metric`` are left out with a warning (see ``metric_rows``).

    Args:
        df: Tidy results table.
        metric: Metric on the curve.
        by: Grouping column(s).
        steps: Step grid (default ``num_points`` steps up to the last step of any run).
        num_points: Grid size when ``steps`` is None.
        reps: Bootstrap replications.
        random_state: Seed for the bootstrap; None leaves NumPy's global RNG as it is.
        confidence: Coverage of the bands.
        higher_is_better: Direction (which value is worst); by default from
            ``rlcompare.runner.schema.higher_is_better``. Needed only with diverged runs.

    Returns:
        Columns: the ``by`` columns, ``step, iqm, iqm_low, iqm_high, runs``.
    """
    by = as_list(by)
    rows = metric_rows(df, metric)
    tails = diverged_tails(df, rows, metric, higher_is_better)
    curves = _on_grid(df, rows, metric, steps, num_points, "all", tails)
    wide = curves.pivot(index="run_id", columns="step", values="value")
    runs = run_info(rows).join(wide)
    require_columns(runs, by)
    short = {}
    for key, group in runs.groupby(by, sort=True, dropna=False):
        values = group[list(wide.columns)].isna()
        partly = values.any(axis=0) & ~values.all(axis=0)
        if partly.any():
            ids = group.index[values.loc[:, partly].any(axis=1)]
            short[key] = (ids, [int(step) for step in wide.columns[partly.to_numpy()]])

    def iqm_per_step(scores: np.ndarray) -> np.ndarray:
        # Same as metrics.aggregate_iqm on each scores[..., step], in one vectorised call.
        return fast_iqm_columns(scores.reshape(-1, scores.shape[-1]))

    records = []
    for key, (scores, _) in score_matrices(runs, by, list(wide.columns), False).items():
        keep = ~np.isnan(scores).any(axis=(0, 1))
        named = ", ".join(f"{k}={v}" for k, v in group_record(by, key).items())
        if not keep.any():
            warnings.warn(
                f"left out group {named}: no grid step where all its runs have a {metric} "
                "value (pass steps= within its runs' range)",
                stacklevel=outside_stacklevel(),
            )
            continue
        if key in short:
            ids, left_out = short[key]
            shown = ", ".join(map(str, left_out[:5])) + (", ..." if len(left_out) > 5 else "")
            warnings.warn(
                f"group {named}: left out {len(left_out)} grid step(s) ({shown}) where some "
                f"of its runs have no {metric} value: {runs_text(rows, ids)}",
                stacklevel=outside_stacklevel(),
            )
        with seeded_global_rng(random_state):
            points, cis = library.get_interval_estimates(
                {key: scores[..., keep]},
                iqm_per_step,
                reps=reps,
                confidence_interval_size=confidence,
            )
        group = group_record(by, key)
        for i, step in enumerate(wide.columns[keep]):
            records.append(
                {
                    **group,
                    "step": int(step),
                    "iqm": float(points[key][i]),
                    "iqm_low": float(cis[key][0, i]),
                    "iqm_high": float(cis[key][1, i]),
                    "runs": scores.shape[0] * scores.shape[1],
                }
            )
    return pd.DataFrame.from_records(records)


def auc(
    df: pd.DataFrame, metric: str = "eval_return", higher_is_better: bool | None = None
) -> pd.DataFrame:
    """Normalised area under each run's learning curve.

    The trapezoid area over env steps divided by the step span, i.e. the curve's average
    height; a run with a single recorded step gets that value.

    A diverged run (``status`` "diverged" or a ``diverged`` row) is scored over its whole
    budget, up to the step its group's finished runs reach (see :func:`budget_ends`), with
    the stretch after its last value counted at the worst value it recorded (the lowest, or
    the highest where lower is better). Stopping early must not pay: the area over the
    steps it ran alone would drop the part of the budget where it had failed, and carrying
    its last value forward would credit a broken learner with its pre-divergence score. The
    worst value seen is a floor in the metric's own units that needs no known random or
    worst score.

    Args:
        df: Tidy results table.
        metric: Metric under the curve.
        higher_is_better: Direction (which value is worst); by default from
            ``rlcompare.runner.schema.higher_is_better``. Needed only with diverged runs.

    Returns:
        One row per run: run columns and ``auc``.
    """
    rows = metric_rows(df, metric)
    tails = diverged_tails(df, rows, metric, higher_is_better)

    def area(curve: pd.DataFrame) -> float:
        x, y = curve["step"].to_numpy(dtype=float), curve["value"].to_numpy(dtype=float)
        if curve.name in tails.index and tails.at[curve.name, "end"] > x[-1]:
            end, worst = tails.at[curve.name, "end"], tails.at[curve.name, "value"]
            x, y = np.append(x, [x[-1], end]), np.append(y, [worst, worst])
        span = x[-1] - x[0]
        if span == 0:
            return float(y[-1])
        return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) / span)

    areas = rows.groupby("run_id", sort=True)[["step", "value"]].apply(area).rename("auc")
    return run_info(rows).join(areas).reset_index()


# ------------------------------------------------------------------ thresholds, collapse
def steps_to_threshold(
    df: pd.DataFrame,
    threshold: float,
    metric: str = "eval_return",
    higher_is_better: bool | None = None,
    sustained: bool = False,
) -> pd.DataFrame:
    """The first step at which each run's ``metric`` reaches ``threshold``, with censoring.

    With ``sustained=True`` a run reaches the threshold at the first evaluation from which
    its metric stays at or beyond the threshold at every later evaluation of that run. Use
    it where one evaluation can cross the threshold by luck: a greedy policy whose values
    are all tied acts uniformly at random, so an untrained DeepSea agent of size N finds the
    treasure in one eval episode with probability 2^-N and would count as solved at step 0.
    A run that crossed and fell back is then "not yet" (censored) at its last step.

    A diverged run (``status`` "diverged" or a ``diverged`` row) stopped because it failed,
    not because its budget ran out; censoring it at its divergence step would treat the
    failure as uninformative and flatter the algorithm. If it has not reached the threshold
    it is censored at the end of its budget instead (the largest step of the finished runs
    of its group, see :func:`budget_ends`), i.e. it did not reach it within the budget. With
    ``sustained=True`` a diverged run never reaches the threshold: its metric did not stay.

    Args:
        df: Tidy results table.
        threshold: Level to reach (``>=``, or ``<=`` when lower is better).
        metric: Metric to watch.
        higher_is_better: Direction; by default lower is better for
            ``q_error, policy_regret, td_error, wall_time_s`` and higher for the rest.
        sustained: Count a run as reaching the threshold only from an evaluation on which
            it stays there to the end of the run.

    Returns:
        One row per run: run columns, ``reached`` (bool), ``diverged`` (bool) and ``steps``:
        the first step at the threshold, or, for a censored run (``reached`` False), its
        last observed step (a diverged run: its budget's end).
    """
    rows = metric_rows(df, metric)
    values = rows["value"]
    higher = schema.higher_is_better(metric, higher_is_better)
    hit = values >= threshold if higher else values <= threshold
    diverged = rows["run_id"].isin(diverged_runs(df))
    if sustained:
        # A suffix of hits: reversed running minimum within each run (rows are in step order).
        flags = hit.astype(np.int64)[::-1]
        stays = flags.groupby(rows["run_id"][::-1], sort=False).cummin()[::-1]
        hit = stays.astype(bool) & ~diverged
    first = rows[hit].groupby("run_id")["step"].min()
    out = run_info(rows)
    out["reached"] = out.index.isin(first.index)
    out["diverged"] = out.index.isin(diverged_runs(df))
    out["steps"] = first.reindex(out.index).fillna(budget_ends(df, rows))
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
    sustained: bool = False,
) -> pd.DataFrame:
    """Per group: how many runs reached ``threshold`` and how fast.

    Reaching, ``sustained`` and diverged runs follow :func:`steps_to_threshold`: a diverged
    run that has not reached the threshold is censored at its budget's end.

    ``median_steps_reached`` is the median over runs that reached it (NaN when none did; it
    ignores censored runs, so it flatters groups that often fail). ``km_median_steps`` is the
    Kaplan-Meier median, which counts censored runs as "not yet" up to their last step; it is
    ``inf`` when the KM survival never falls to one half within the observed steps.

    Returns:
        Columns: the ``by`` columns, ``runs, reached, censored, median_steps_reached,
        km_median_steps``.
    """
    by = as_list(by)
    runs = steps_to_threshold(df, threshold, metric, higher_is_better, sustained)
    require_columns(runs, by)
    records = []
    for key, group in runs.groupby(by, sort=True, dropna=False):
        steps, reached = group["steps"].to_numpy(), group["reached"].to_numpy(dtype=bool)
        records.append(
            {
                **group_record(by, key if isinstance(key, tuple) else (key,)),
                "runs": len(group),
                "reached": int(reached.sum()),
                "censored": int((~reached).sum()),
                "median_steps_reached": float(np.median(steps[reached]))
                if reached.any()
                else np.nan,
                "km_median_steps": _kaplan_meier_median(steps, reached),
            }
        )
    return pd.DataFrame.from_records(records)


def collapse_rate(
    df: pd.DataFrame,
    metric: str = "eval_return",
    fraction: float = 0.5,
    solve_threshold: float | None = None,
    by: str | Sequence[str] = "algo",
    min_evals: int = 1,
    higher_is_better: bool | None = None,
) -> CollapseResult:
    """Which runs learned and then fell apart for good.

    A run collapses when its metric drops below ``fraction`` x its running best and stays
    below through its last ``min_evals`` or more evaluations. With ``solve_threshold``, only
    runs that first reached it can collapse, and only after reaching it. NaN (divergence)
    counts as below. A diverged run (``status`` "diverged" or a ``diverged`` row) counts at
    its worst value (the lowest it recorded) from its divergence step to the end of its
    budget, as in :func:`auc`: it collapsed when that value is below ``fraction`` x its best,
    whatever ``min_evals``, since it stays there. The rule assumes 0 is the floor of the
    scale: rescale with :func:`normalize` first where returns go negative. Without
    ``solve_threshold`` a noisy run that never learned (0.1 once, then 0) counts as
    collapsed; pass one for sparse or noisy evaluations.

    Raises:
        ValueError: ``metric`` is one where lower is better (a fall below a fraction of the
            best means nothing there), or bad ``fraction`` / ``min_evals``.

    Returns:
        :class:`CollapseResult` with per-run ``peak, collapsed, collapse_step`` (first step
        of the final low stretch, <NA> if not collapsed) and per-group ``runs, collapsed,
        share``.
    """
    if not 0 < fraction <= 1 or min_evals < 1:
        raise ValueError(
            f"need 0 < fraction <= 1 and min_evals >= 1, got fraction = "
            f"{fraction!r}, min_evals = {min_evals!r}"
        )
    if not schema.higher_is_better(metric, higher_is_better):
        raise ValueError(
            f"collapse_rate needs a metric where higher is better; for {metric!r} lower is "
            "better (use steps_to_threshold, or pass higher_is_better=True to override)"
        )
    by = as_list(by)
    rows = metric_rows(df, metric)
    worst = worst_values(rows.loc[rows["run_id"].isin(diverged_runs(df))], True)
    broke = divergence_steps(df, rows)
    if (rows["value"] < 0).any():
        warnings.warn(
            f"{metric} has negative values; runs whose best is <= 0 never count as "
            "collapsed (rescale with normalize())",
            stacklevel=outside_stacklevel(),
        )
    out = run_info(rows)
    records = {}
    for run_id, curve in rows.groupby("run_id", sort=True):
        values, steps = curve["value"].to_numpy(dtype=float), curve["step"].to_numpy()
        if run_id in worst.index:
            # From its divergence on it counts at its worst value, for the rest of its budget.
            values = np.append(values, worst[run_id])
            steps = np.append(steps, broke[run_id])
        best = np.fmax.accumulate(values)
        below = ~(values >= fraction * best) & (best > 0)
        stretch = len(below) if below.all() else int(np.argmin(below[::-1]))  # final low run
        start = len(values) - stretch
        # The final low stretch always starts after the threshold is first reached: the
        # value there set the running best, so it cannot be below a fraction of it.
        solved = solve_threshold is None or bool((values >= solve_threshold).any())
        collapsed = bool(solved and stretch >= (1 if run_id in worst.index else min_evals))
        records[run_id] = (
            np.nanmax(values) if not np.isnan(values).all() else np.nan,
            collapsed,
            steps[start] if collapsed else pd.NA,
        )
    out[["peak", "collapsed", "collapse_step"]] = pd.DataFrame.from_dict(
        records, orient="index", columns=["peak", "collapsed", "collapse_step"]
    )
    out = out.astype({"collapsed": bool, "collapse_step": "Int64"}).reset_index()
    require_columns(out, by)
    groups = (
        out.groupby(by, sort=True, dropna=False)
        .agg(runs=("collapsed", "size"), collapsed=("collapsed", "sum"))
        .reset_index()
    )
    groups["share"] = groups["collapsed"] / groups["runs"]
    return CollapseResult(out, groups)


def _diverged_episodes(
    df: pd.DataFrame, rows: pd.DataFrame, metric: str, higher_is_better: bool | None
) -> pd.DataFrame:
    """Rows of each diverged run of ``rows`` for the episodes after its last, up to its
    group's last episode, at its worst value (episodes play the part of steps)."""
    by_episode = rows.assign(step=rows["episode"].astype(np.int64))
    tails = diverged_tails(df, by_episode, metric, higher_is_better)
    last = by_episode.groupby("run_id")["step"].max()
    info, frames = run_info(rows), []
    for run_id, (end, worst) in tails[["end", "value"]].iterrows():
        episodes = np.arange(last[run_id] + 1, int(end) + 1)
        if len(episodes):
            frames.append(
                pd.DataFrame({"episode": episodes, "value": worst}).assign(
                    run_id=run_id, metric=metric, **info.loc[run_id].to_dict()
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else rows.iloc[:0]


def per_episode(
    df: pd.DataFrame,
    metric: str = "episode_return",
    by: str | Sequence[str] = "algo",
    at_least: float | None = None,
    window: int = 1,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Mean over runs of a per-episode metric, episode by episode (x axis: episodes).

    A diverged run (``status`` "diverged" or a ``diverged`` row) counts at its worst value
    (the lowest it recorded, the highest where lower is better) in every episode after its
    last, up to the last episode of its group's finished runs (as :func:`budget_ends` does
    for steps): averaging only the runs still playing would drop the broken ones.

    Args:
        df: Tidy results table with ``episode`` set on ``metric`` rows.
        metric: A per-episode metric (``episode_return``, ``episode_length``).
        by: Grouping column(s).
        at_least: When given, the share of runs whose value is >= ``at_least`` instead of the
            mean value (e.g. ``episode_length >= 2`` is "went left" in MaxBias).
        window: Trailing moving-average window over episodes (1: none).
        higher_is_better: Direction (which value is worst); by default from
            ``rlcompare.runner.schema.higher_is_better``. Needed only with diverged runs
            (``episode_length`` has no direction of its own: pass it there).

    Returns:
        One row per (group, episode): ``by`` columns, ``episode``, ``value`` (mean or share),
        ``sem`` (standard error over runs) and ``runs``.
    """
    rows = metric_rows(df, metric)
    if rows["episode"].isna().all():
        raise ValueError(
            f"metric {metric!r} has no episode numbers; valid: episode_return, episode_length"
        )
    by = as_list(by)
    rows = rows.loc[rows["episode"].notna()]
    rows = pd.concat([rows, _diverged_episodes(df, rows, metric, higher_is_better)])
    values = rows["value"] >= at_least if at_least is not None else rows["value"]
    rows = rows.assign(value=values.astype(float), episode=rows["episode"].astype(int))
    grouped = rows.groupby([*by, "episode"], sort=True)["value"]
    table = grouped.agg(value="mean", sem="sem", runs="count").reset_index()
    if window > 1:
        smooth = table.groupby(by, sort=False)[["value", "sem"]].rolling(window, min_periods=1)
        table[["value", "sem"]] = smooth.mean().reset_index(level=list(range(len(by))), drop=True)
    return table
