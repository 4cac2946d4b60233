"""Pieces every experiment module shares: the eval schedule from a notebook's ``evals``, the
rows of a group of specs, contenders labelled by experiment, the columns of a final table,
PSRL's reward prior from an env's reward scale."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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


# PSRL's known reward noise, as a share of the reward scale: small, so that the posterior of a
# mean reward narrows within a few visits and the Dirichlet over next states carries the rest.
PSRL_NOISE_SHARE = 0.01


def reward_scale(env: str, env_kwargs: Sequence[Mapping[str, Any]] = ({},)) -> float:
    """The order of magnitude of ``env``'s rewards: the power of ten at or above the largest
    |reward| of any possible outcome of its model, over every ``env_kwargs`` (DeepSea's sizes).
    RiverSwim: 10,000 (its far reward); DeepSea: 1 (the treasure); FrozenLake: 1."""
    largest = 0.0
    for kwargs in env_kwargs:
        mdp = tabular_mdp(env, **kwargs)
        largest = max(largest, float(np.abs(mdp.outcome_reward[mdp.outcome_prob > 0]).max()))
    if largest == 0.0:
        return 1.0
    return float(10.0 ** math.ceil(math.log10(largest)))


def psrl_hparams(env: str, env_kwargs: Sequence[Mapping[str, Any]] = ({},)) -> dict[str, Any]:
    """PSRL's reward prior for ``env``, from its model's rewards (over every ``env_kwargs``).

    Rewards in [0, 1] without noise (FrozenLake's goal): the Beta(1, 1) prior, conjugate to
    the Bernoulli reward of a pair. Otherwise (RiverSwim's 5 and 10,000, DeepSea's move cost
    of -0.01 / N): a Normal prior centred on 0 with the std of the reward scale
    (:func:`reward_scale`) and a known noise std of ``PSRL_NOISE_SHARE`` of it. The
    default N(0, 1) prior on RiverSwim never leaves the bank: no draw makes 10,000 upstream
    worth more than the 5 it has seen.
    """
    models = [tabular_mdp(env, **kwargs) for kwargs in env_kwargs]
    rewards = np.concatenate([m.outcome_reward[m.outcome_prob > 0] for m in models])
    noisy = any((m.reward_std > 0).any() for m in models)
    if rewards.min() >= 0.0 and rewards.max() <= 1.0 and not noisy:
        return {"reward_prior": "beta"}
    scale = reward_scale(env, env_kwargs)
    return {
        "reward_prior": "normal",
        "reward_prior_mean": 0.0,
        "reward_prior_std": scale,
        "reward_noise_std": PSRL_NOISE_SHARE * scale,
    }
