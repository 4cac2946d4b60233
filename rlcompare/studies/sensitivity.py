"""Scores of tuned configurations: per-env normalisation, selection, and sensitivity.

Everything here is a pure function of a table with one row per tuning run (columns ``algo,
env, rung, config, seed, run_id, score, perf``: ``score`` in the metric's units, ``perf`` the
same oriented so that higher is better). Definitions:

- Normalised score (Patterson, Neumann, White & White, "Cross-environment hyperparameter
  tuning for reinforcement learning", arXiv 2407.18840, 2024): a run's score is mapped
  through the empirical CDF of every run on its env (all algorithms, configurations and
  seeds), so 0.9 means "better than 90% of the runs there". Scores on different scales
  (CartPole's 500, FrozenLake's 1) then average across envs. ``p5p95`` is the
  normalisation of Adkins et al. instead: ``(perf - p5) / (p95 - p5)`` with the 5th and
  95th percentiles of the same pool (their percentile normalisation).
- Per-env tuning picks, on each env, the configuration of best IQM over tuning seeds;
  cross-environment tuning picks the one configuration of best mean normalised performance
  over envs (Patterson et al.'s cross-environment hyperparameter setting).
- Sensitivity (Adkins, Bowling & White, "A method for evaluating hyperparameter sensitivity
  in reinforcement learning", NeurIPS 2024, arXiv 2412.07165): with ``G(c, e)`` the normalised
  performance of configuration ``c`` on env ``e``,
  ``sensitivity = mean_e max_c G(c, e) - max_c mean_e G(c, e)``: the normalised performance
  an algorithm loses when one setting must serve every env, relative to tuning it per env.
  0 where one configuration is best everywhere (or there is one env).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from rlcompare.analysis.matrices import fast_iqm, fast_iqm_columns
from rlcompare.errors import SpecError, choices_text

NORMALISATIONS = ("cdf", "p5p95")
CONFIG_KEYS = ["algo", "env", "rung", "config"]


def normalised(runs: pd.DataFrame, method: str = "cdf") -> pd.Series:
    """The normalised score of each run (index of ``runs``), within its env and rung.

    Args:
        runs: One row per run with ``env``, ``rung`` and ``perf`` (higher is better).
        method: ``cdf`` (the empirical CDF of the pool: share of the env's runs scoring at
            most this one) or ``p5p95`` (``(perf - p5) / (p95 - p5)``, 0.5 where they tie).
    """
    if method not in NORMALISATIONS:
        raise SpecError(
            f"normalise = {method!r} is unknown; {choices_text(NORMALISATIONS, method)}"
        )
    groups = runs.groupby(["env", "rung"], sort=False)["perf"]
    if method == "cdf":
        return groups.rank(method="max", pct=True)

    def scaled(perf: pd.Series) -> pd.Series:
        low, high = np.percentile(perf, [5, 95])
        return (perf - low) / (high - low) if high > low else perf * 0 + 0.5

    return groups.transform(scaled)


def bootstrap_iqm(values: np.ndarray, reps: int, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile bootstrap interval of the IQM of ``values`` (one score per seed): what
    rliable's stratified bootstrap gives for one task. One value: the point twice."""
    values = np.asarray(values, dtype=float)
    if values.size < 2 or reps < 1:
        point = fast_iqm(values)
        return point, point
    picks = values[rng.integers(0, values.size, size=(reps, values.size))]
    low, high = np.percentile(fast_iqm_columns(picks.T), [2.5, 97.5])
    return float(low), float(high)


def config_table(
    runs: pd.DataFrame, normalise: str = "cdf", reps: int = 1000, random_state: int = 0
) -> pd.DataFrame:
    """One row per (algo, env, rung, config): ``runs``, the IQM of ``score`` over seeds with
    its 95% bootstrap CI (``iqm, iqm_low, iqm_high``), ``perf`` (that IQM, higher is better)
    and ``normalised`` (the IQM of the runs' normalised scores)."""
    runs = runs.assign(normalised=normalised(runs, normalise))
    rng = np.random.default_rng(random_state)
    records = []
    for key, group in runs.groupby(CONFIG_KEYS, sort=True):
        scores = group.sort_values("seed")["score"].to_numpy(dtype=float)
        low, high = bootstrap_iqm(scores, reps, rng)
        records.append(
            {
                **dict(zip(CONFIG_KEYS, key, strict=True)),
                "runs": len(group),
                "iqm": fast_iqm(scores),
                "iqm_low": low,
                "iqm_high": high,
                "perf": fast_iqm(group["perf"].to_numpy(dtype=float)),
                "normalised": fast_iqm(group["normalised"].to_numpy(dtype=float)),
            }
        )
    return pd.DataFrame.from_records(records)


def best_per_env(table: pd.DataFrame) -> pd.DataFrame:
    """The row of best ``perf`` per (algo, env) of ``table`` (ties: the lowest config)."""
    ordered = table.sort_values(["algo", "env", "perf", "config"], ascending=[1, 1, 0, 1])
    return ordered.groupby(["algo", "env"], sort=True).head(1).reset_index(drop=True)


def across_envs(table: pd.DataFrame) -> pd.DataFrame:
    """Per (algo, config) present on every env of its algorithm: ``normalised`` averaged over
    envs (``envs``: how many)."""
    envs = table.groupby("algo")["env"].nunique()
    mean = table.groupby(["algo", "config"], sort=True)["normalised"].agg(["mean", "count"])
    mean = mean.reset_index().rename(columns={"mean": "normalised", "count": "envs"})
    return mean[mean["envs"] == mean["algo"].map(envs)].reset_index(drop=True)


def best_across_envs(table: pd.DataFrame) -> pd.DataFrame:
    """Per algo, the configuration of best mean normalised performance over envs (ties: the
    lowest config)."""
    mean = across_envs(table)
    ordered = mean.sort_values(["algo", "normalised", "config"], ascending=[1, 0, 1])
    return ordered.groupby("algo", sort=True).head(1).reset_index(drop=True)


def sensitivity(table: pd.DataFrame, default_config: int | None = 0) -> pd.DataFrame:
    """Hyperparameter sensitivity after Adkins et al. (NeurIPS 2024), per algorithm.

    Args:
        table: :func:`config_table` rows of one rung (every configuration on every env).
        default_config: The configuration that holds the defaults (its normalised
            performance is reported as ``default``), or None.

    Returns:
        One row per algo: ``envs``, ``configurations``, ``per_env_tuned`` (mean over envs of
        the best normalised performance on each), ``across_envs_tuned`` (the best mean over
        envs of one configuration), ``sensitivity`` (their difference, >= 0) and
        ``default`` (the defaults' mean normalised performance, NaN without them).
    """
    records = []
    means = across_envs(table).set_index(["algo", "config"])["normalised"]
    for algo, rows in table.groupby("algo", sort=True):
        per_env = rows.groupby("env")["normalised"].max().mean()
        across = means.loc[algo].max()
        default = (
            means.loc[(algo, default_config)]
            if default_config is not None and (algo, default_config) in means.index
            else float("nan")
        )
        records.append(
            {
                "algo": algo,
                "envs": rows["env"].nunique(),
                "configurations": rows["config"].nunique(),
                "per_env_tuned": float(per_env),
                "across_envs_tuned": float(across),
                "sensitivity": float(per_env - across),
                "default": float(default),
            }
        )
    return pd.DataFrame.from_records(records)


def performance_by_value(
    table: pd.DataFrame, configs: Mapping[str, list[dict]], log: Mapping[str, Mapping[str, bool]]
) -> pd.DataFrame:
    """Performance against each tuned hyperparameter's value (the curves of Adkins et al.).

    Args:
        table: :func:`config_table` rows.
        configs: ``algo -> its configurations`` (config index -> name -> value).
        log: ``algo -> name -> whether that hyperparameter is on a log scale``.

    Returns:
        One row per (algo, env, rung, config, param): ``value``, ``log``, ``iqm``,
        ``iqm_low``, ``iqm_high``, ``normalised``. Configurations vary every tuned
        hyperparameter at once, so each curve is a projection of the whole space on one axis.
    """
    records = []
    for row in table.itertuples(index=False):
        config = configs[row.algo][row.config]
        for param, value in config.items():
            records.append(
                {
                    "algo": row.algo,
                    "env": row.env,
                    "rung": row.rung,
                    "config": row.config,
                    "param": param,
                    "value": value,
                    "log": bool(log[row.algo].get(param, False)),
                    "iqm": row.iqm,
                    "iqm_low": row.iqm_low,
                    "iqm_high": row.iqm_high,
                    "normalised": row.normalised,
                }
            )
    return pd.DataFrame.from_records(records)


__all__ = [
    "NORMALISATIONS",
    "across_envs",
    "best_across_envs",
    "best_per_env",
    "bootstrap_iqm",
    "config_table",
    "normalised",
    "performance_by_value",
    "sensitivity",
]
