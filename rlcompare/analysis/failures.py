"""Runs that failed or diverged: which they are, the value a diverged run counts at, and the
warning that names the runs a statistic leaves out.

The rules every statistic and figure of :mod:`rlcompare.analysis` follows:

- A diverged run (``status`` "diverged" or a ``diverged`` metric row) failed; stopping early
  must not pay. From its last recorded value on it counts at its *worst value*
  (:func:`worst_values`): the lowest value of the metric it recorded, or the highest where
  lower is better. That floor is in the metric's own units and needs no known random score.
- A failed run (``status`` "failed": an error stopped it; the rows it recorded before may be
  kept) is no result of the algorithm; it is left out, with a warning that names it.
- A run without a row of the metric is left out, with a warning that names it and its algo.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from rlcompare.runner import schema

# The metric row a diverged run logs at its divergence step (RunContext.mark_diverged).
DIVERGED_METRIC = "diverged"
# How many run ids a warning spells out before it says how many more there are.
NAMED_RUNS = 10
_PACKAGE = str(Path(__file__).resolve().parents[1])


def diverged_runs(df: pd.DataFrame) -> pd.Index:
    """run_ids of diverged runs: ``status`` "diverged" or a ``diverged`` metric row."""
    flagged = df["metric"] == DIVERGED_METRIC if "metric" in df else False
    if schema.STATUS_COLUMN in df:
        flagged = flagged | (df[schema.STATUS_COLUMN] == "diverged")
    return pd.Index(df.loc[flagged, "run_id"].unique())


def run_heads(df: pd.DataFrame) -> pd.DataFrame:
    """The first row of every stretch of rows of one run: each run at least once, and once
    per run where its rows are together (as a store loads them). Reading the run columns
    (one value per run) from these rows costs a fraction of reading every row."""
    ids = df["run_id"].to_numpy()
    starts = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        np.not_equal(ids[1:], ids[:-1], out=starts[1:])
    return df.loc[starts]


def failed_runs(df: pd.DataFrame) -> pd.Index:
    """run_ids with ``status`` "failed" (rows a run recorded before its error)."""
    if schema.STATUS_COLUMN not in df:
        return pd.Index([])
    heads = run_heads(df)
    return pd.Index(heads.loc[heads[schema.STATUS_COLUMN] == "failed", "run_id"].unique())


def divergence_steps(df: pd.DataFrame, rows: pd.DataFrame) -> pd.Series:
    """Per diverged run of ``rows`` (index run_id): the step of its ``diverged`` row, else
    its last step in ``rows``."""
    diverged = rows.loc[rows["run_id"].isin(diverged_runs(df))]
    last = diverged.groupby("run_id", sort=True)["step"].max()
    marked = df.loc[df["metric"] == DIVERGED_METRIC].groupby("run_id")["step"].min()
    return marked.reindex(last.index).fillna(last).astype(np.int64)


def worst_values(rows: pd.DataFrame, higher_is_better: bool) -> pd.Series:
    """The worst value each run of ``rows`` recorded (index run_id): its lowest, or its
    highest where lower is better; NaN values are skipped. The one definition of the value a
    diverged run counts at after its last value."""
    values = rows.groupby("run_id", sort=True)["value"]
    return values.min() if higher_is_better else values.max()


def outside_stacklevel() -> int:
    """The ``stacklevel`` of the first caller outside the rlcompare package, so a warning
    points at the user's line however deep inside the library it is raised."""
    frame, level = sys._getframe(1), 1  # noqa: SLF001 (the caller of this function)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def runs_text(df: pd.DataFrame, run_ids: Iterable[object]) -> str:
    """``"algo a: r1, r2; algo b: r3"`` for ``run_ids`` (the first ``NAMED_RUNS`` named)."""
    ids = sorted(set(run_ids), key=str)
    shown, parts = ids[:NAMED_RUNS], {}
    named = df.loc[df["run_id"].isin(shown)] if "algo" in df else df.iloc[:0]
    algos = named.drop_duplicates("run_id").set_index("run_id").get("algo", pd.Series())
    for run_id in shown:
        parts.setdefault(str(algos.get(run_id, "?")), []).append(str(run_id))
    text = "; ".join(f"algo {algo}: {', '.join(names)}" for algo, names in sorted(parts.items()))
    return text + (f" (and {len(ids) - len(shown)} more)" if len(ids) > len(shown) else "")


def warn_left_out(df: pd.DataFrame, run_ids: Iterable[object], reason: str) -> None:
    """Warn that the runs ``run_ids`` of ``df`` are left out of a statistic, and why."""
    ids = set(run_ids)
    if not ids:
        return
    runs = "1 run" if len(ids) == 1 else f"{len(ids)} runs"
    warnings.warn(
        f"left out {runs} {reason}: {runs_text(df, ids)}", stacklevel=outside_stacklevel()
    )
