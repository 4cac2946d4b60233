"""Shared glue between the tidy results table and rliable's arrays (used by stats and curves).

The one hand-written bridge, :func:`score_matrices`, turns a frame with one row per run into
rliable's ``(num_runs x num_tasks)`` matrices. A task is an env together with its ``env.*``
kwargs (FrozenLake slippery and not slippery are two tasks).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from rlcompare.analysis.failures import (
    diverged_runs,
    failed_runs,
    outside_stacklevel,
    run_heads,
    warn_left_out,
)
from rlcompare.errors import choices_text
from rlcompare.runner.schema import (
    ENV_PREFIX,
    HP_PREFIX,
    REQUIRED_COLUMNS,
    RUN_COLUMNS,
)


# ---------------------------------------------------------------------------------- helpers
def require_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """ValueError naming the missing columns and the available ones, if any are missing."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; available: {', '.join(map(str, df))}")


def metric_rows(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of ``metric`` sorted by run and step, of the runs a statistic can use.

    Left out, each with a warning that names the runs and their algos: failed runs (``status``
    "failed": an error stopped them, so their rows are no result of the algorithm), and runs
    with no row of ``metric`` (an algorithm that does not record it, or a run that diverged
    before its first evaluation and so has no value to count at).

    Raises:
        ValueError: a required column is missing, or no run has a row of ``metric`` (the
            message names the metrics present).
    """
    require_columns(df, REQUIRED_COLUMNS)
    failed = failed_runs(df)
    if len(failed):
        warn_left_out(df, failed, "that failed (status 'failed': an error stopped them)")
        df = df.loc[~df["run_id"].isin(failed)]
    is_metric = df["metric"] == metric
    rows = df.loc[is_metric]
    if rows.empty:
        present = sorted(df["metric"].dropna().unique())
        raise ValueError(f"no rows for metric {metric!r}; {choices_text(present, metric)}")
    missing = pd.Index(run_heads(df)["run_id"].unique()).difference(rows["run_id"].unique())
    if len(missing):
        early = missing.intersection(diverged_runs(df))
        warn_left_out(
            df,
            early,
            f"that diverged before their first {metric} row (no value to count them at)",
        )
        warn_left_out(df, missing.difference(early), f"with no {metric} rows")
    return rows.sort_values(["run_id", "step"], kind="stable")


def run_columns(df: pd.DataFrame) -> list[str]:
    prefixed = [c for c in df.columns if str(c).startswith((HP_PREFIX, ENV_PREFIX))]
    return [c for c in RUN_COLUMNS if c in df.columns] + prefixed


def run_info(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per run (indexed by run_id) with the run's identity, hp.* and env.* columns."""
    columns = [c for c in run_columns(rows) if c != "run_id"]
    return rows.groupby("run_id", sort=True)[columns].first()


def as_list(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


@contextmanager
def seeded_global_rng(random_state: int | None) -> Iterator[None]:
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


def score_matrices(
    runs: pd.DataFrame, by: list[str], values: Sequence[object], drop_nan: bool = True
) -> dict[tuple, tuple[np.ndarray, list[str]]]:
    """The glue: rliable score arrays per group.

    Args:
        runs: One row per run with the ``by`` columns, ``env``, ``seed`` and ``values``.
        by: Grouping columns.
        values: Columns holding each run's score(s).
        drop_nan: Drop runs with a NaN among ``values`` (with a warning).

    Returns:
        ``{group key tuple: (scores, tasks)}`` where scores has shape
        ``(num_runs x num_tasks x len(values))`` and tasks labels its second axis
        (``"env(kwarg=value, ...)"``). Where tasks of a group have unequal run counts, each
        task keeps its first ``min`` runs by seed, with a warning (a stratified bootstrap
        needs a rectangular matrix).
    """
    require_columns(runs, [*by, "env", "seed"])
    # The run ids of the index, as a column, for the warnings that name left-out runs.
    named = runs if "run_id" in runs else runs.rename_axis("run_id").reset_index()
    nan = runs[list(values)].isna().any(axis=1) & drop_nan
    if nan.any():
        warn_left_out(named, runs.index[nan], "with NaN scores")
        runs = runs[~nan]
    task_cols = ["env"] + sorted(c for c in runs.columns if str(c).startswith("env."))
    result = {}
    for key, group in runs.groupby(by, sort=True, dropna=False):
        columns, tasks, order = [], [], []
        for task, cell in group.groupby(task_cols, sort=True, dropna=False):
            cell = cell.sort_values("seed")
            columns.append(cell[list(values)].to_numpy(dtype=float))
            order.append(cell.index)
            pairs = zip(task_cols[1:], task[1:], strict=True)
            kwargs = ", ".join(f"{column[4:]}={value}" for column, value in pairs)
            tasks.append(f"{task[0]}({kwargs})" if kwargs else str(task[0]))
        counts = [len(c) for c in columns]
        if len(set(counts)) > 1:
            extra = [run for ids in order for run in ids[min(counts) :]]
            warn_left_out(
                named,
                extra,
                f"of group {key}: its tasks have {counts} runs; using the first "
                f"{min(counts)} of each (by seed), as a stratified bootstrap needs as many "
                "runs per task",
            )
        result[key] = (np.stack([c[: min(counts)] for c in columns], axis=1), tasks)
    task_sets = {frozenset(tasks) for _, tasks in result.values()}
    if "env" not in by and len(task_sets) > 1:
        warnings.warn(
            "groups cover different tasks; each aggregate is over its own tasks",
            stacklevel=outside_stacklevel(),
        )
    return result


def group_record(by: list[str], key: tuple) -> dict[str, object]:
    return dict(zip(by, key, strict=True))


def fast_iqm(scores: np.ndarray) -> float:
    """rliable's ``aggregate_iqm`` (scipy's 25% trimmed mean over all runs and tasks), without
    scipy's per-call argument handling, which dominates a 2,000-replicate bootstrap."""
    flat = np.asarray(scores, dtype=float).ravel()
    cut = int(0.25 * flat.size)
    kept = np.partition(flat, (cut, flat.size - cut - 1))[cut : flat.size - cut]
    return float(np.mean(kept))


def fast_iqm_columns(matrix: np.ndarray) -> np.ndarray:
    """``scipy.stats.trim_mean(matrix, 0.25, axis=0)``: the IQM of every column at once."""
    matrix = np.asarray(matrix, dtype=float)
    cut = int(0.25 * matrix.shape[0])
    ordered = np.sort(matrix, axis=0)
    return ordered[cut : matrix.shape[0] - cut].mean(axis=0)


def fast_probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """rliable's ``probability_of_improvement`` (the Mann-Whitney U of X over Y per task, ties
    counted one half, over ``runs_x * runs_y``, averaged over tasks), bit for bit, counted
    with numpy: scipy's ``mannwhitneyu`` costs ~0.4 ms a call, 0.8 s of every 2,000-replicate
    bootstrap."""
    per_task = []
    for task in range(scores_x.shape[1]):
        x, y = scores_x[:, task], scores_y[:, task]
        if np.array_equal(x, y):
            per_task.append(0.5)
        elif np.isnan(x).any() or np.isnan(y).any():
            per_task.append(np.nan)  # scipy propagates NaN
        else:
            above = np.count_nonzero(x[:, None] > y[None, :])
            tied = np.count_nonzero(x[:, None] == y[None, :])
            per_task.append((above + 0.5 * tied) / (x.size * y.size))
    return np.mean(per_task)
