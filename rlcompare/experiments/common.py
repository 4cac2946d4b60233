"""Pieces every experiment module shares: the eval schedule from a notebook's ``evals``, the
rows of a group of specs, contenders labelled by experiment, the columns of a final table,
PSRL's reward prior from an env's reward scale (what its defaults resolve to)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rlcompare.algos import tabular
from rlcompare.envs.datasets import resolve_dataset
from rlcompare.envs.model import tabular_mdp
from rlcompare.spec.runspec import RunSpec, grid

# The columns of ``stats.summary`` that a notebook's final table shows: the runs and the
# IQM with its CI (IQM_COLUMNS), then per algo the mean with its CI too (SUMMARY_COLUMNS).
IQM_COLUMNS = ["runs", "iqm", "iqm_low", "iqm_high"]
SUMMARY_COLUMNS = ["algo", *IQM_COLUMNS, "mean", "mean_low", "mean_high"]


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


def grid_per_budget(
    algos: str | Sequence[str],
    budgets: Mapping[str, int],
    seeds: int | Iterable[int],
    evals: int,
    **grid_kwargs: Any,
) -> list[RunSpec]:
    """``rlcompare.grid`` on each env of ``budgets`` with its own budget in env steps and
    ``evals`` evaluations over it (:func:`eval_every`), envs in the order of ``budgets``.

    Keyword arguments (``hparams``, ``eval_episodes``, ``experiment``, ...) go to every grid.
    """
    specs: list[RunSpec] = []
    for env, budget in budgets.items():
        specs += grid(
            algos, env, seeds, steps=budget, eval_every=eval_every(budget, evals), **grid_kwargs
        )
    return specs


def keyed(table: pd.DataFrame, keys: Sequence[str], value: str) -> dict[str, Any]:
    """``{"<key1>/<key2>...": value}`` from the rows of ``table``: the flat, readable keys of
    headline numbers (``"Taxi-v4/q_learning": 0.5``)."""
    missing = [c for c in (*keys, value) if c not in table]
    if missing:
        raise ValueError(f"missing column(s) {missing}; available: {', '.join(map(str, table))}")
    if table.empty:
        return {}
    labels = table[list(keys)].astype(str).agg("/".join, axis=1)
    return dict(zip(labels, table[value].tolist(), strict=True))


def dataset_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """``{path: label}`` of saved logs, keyed as the ``hp.dataset`` column holds them: by
    content_id (what a spec resolves a path to), and by path too (frames made by hand)."""
    keyed_labels = dict(labels)
    for path, label in labels.items():
        if Path(path).is_file():
            keyed_labels[resolve_dataset(path)] = label
    return keyed_labels


def reward_scale(env: str, env_kwargs: Sequence[Mapping[str, Any]] = ({},)) -> float:
    """The order of magnitude of ``env``'s rewards over every ``env_kwargs``
    (``rlcompare.algos.tabular.reward_scale``). RiverSwim: 10,000; DeepSea: 1; FrozenLake: 1."""
    return tabular.reward_scale([tabular_mdp(env, **kwargs) for kwargs in env_kwargs])


def psrl_hparams(env: str, env_kwargs: Sequence[Mapping[str, Any]] = ({},)) -> dict[str, Any]:
    """PSRL's reward prior for ``env`` over every ``env_kwargs``: what its defaults resolve
    to on each of them (``rlcompare.algos.tabular.psrl_prior``), shown by the notebooks;
    runs need not pass it."""
    return tabular.psrl_prior([tabular_mdp(env, **kwargs) for kwargs in env_kwargs])
