"""Pieces every experiment module shares: the eval schedule from a notebook's ``evals``, the
rows of a group of specs, contenders labelled by experiment."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from rlcompare.spec.runspec import RunSpec


def eval_every(budget: int, evals: int) -> int:
    """Env steps between evaluations so that a run of ``budget`` steps evaluates ``evals``
    times after step 0 (at least every step)."""
    if evals < 1:
        raise ValueError(f"evals = {evals!r}; valid: an int >= 1")
    return max(1, budget // evals)


def rows_of(frame: pd.DataFrame, specs: Iterable[RunSpec]) -> pd.DataFrame:
    """The rows of ``frame`` that belong to the runs of ``specs``."""
    return frame[frame["run_id"].isin({spec.run_id for spec in specs})]


def by_label(frame: pd.DataFrame, column: str = "experiment") -> pd.DataFrame:
    """``frame`` with ``algo`` replaced by ``column`` (an experiment label such as
    ``no_target``), so that variants of one algorithm compare as contenders."""
    return frame.assign(algo=frame[column])
