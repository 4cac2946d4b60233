"""What :func:`rlcompare.tune` returns: the choice, the tuning table, the runs, and the
budget each algorithm got (counted from the store)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rlcompare.errors import SpecError, choices_text
from rlcompare.spec.runspec import RunSpec
from rlcompare.store.results import load_results
from rlcompare.studies import sensitivity as sens
from rlcompare.studies.search_space import SearchSpace

MODES = ("per_env", "across_envs")
# The env label of a configuration chosen for every env at once.
ALL_ENVS = "*"


@dataclass
class TuneResult:
    """What :func:`tune` chose, from what, and at what cost.

    Attributes:
        mode: ``per_env`` or ``across_envs`` (one configuration for every env).
        chosen: One row per algo and env (``env`` is ``"*"`` across envs): ``mode``,
            ``config`` (index into ``configs[algo]``; 0 is the defaults when included),
            ``hparams`` (the tuned values), ``tuning_score`` (IQM over tuning seeds, or
            the mean normalised score across envs), and ``hp.<name>`` columns.
        table: The tuning table, one row per (algo, env, rung, config): ``steps`` or
            ``episodes``, ``runs``, ``iqm, iqm_low, iqm_high`` (score units, 95% bootstrap
            CI over tuning seeds), ``normalised``, ``chosen`` and ``hp.<name>``.
        runs: One row per tuning run: ``algo, env, rung, config, seed, run_id, score``.
        budget: Per algo, counted from the store: ``configurations``, ``tuning_runs``,
            ``tuning_env_steps``, ``eval_runs``, ``eval_env_steps``.
        eval_frame: Tidy rows of the chosen configurations re-run on the eval seeds (what
            a comparison reads).
        defaults_frame: Tidy rows of each algorithm's defaults on the same eval seeds (empty
            without ``eval_defaults``).
        configs: ``algo -> its configurations`` (dicts of tuned values).
        spaces: ``algo -> SearchSpace``.
        parameters: The call's settings (seeds, budget, metric, normalisation, ...).
    """

    mode: str
    chosen: pd.DataFrame
    table: pd.DataFrame
    runs: pd.DataFrame
    budget: pd.DataFrame
    eval_frame: pd.DataFrame
    defaults_frame: pd.DataFrame
    configs: dict[str, list[dict[str, Any]]]
    spaces: dict[str, SearchSpace]
    parameters: dict[str, Any] = field(default_factory=dict)

    def hparams(self, algo: str, env: str | None = None) -> dict[str, Any]:
        """The tuned values chosen for ``algo`` (on ``env`` when tuned per env)."""
        rows = self.chosen[self.chosen["algo"] == algo]
        if rows.empty:
            raise SpecError(f"algo {algo!r} was not tuned; {choices_text(self.configs, algo)}")
        if self.mode == "per_env":
            envs = list(rows["env"])
            if env not in envs:
                raise SpecError(f"env = {env!r} has no choice; {choices_text(envs, env)}")
            rows = rows[rows["env"] == env]
        return dict(rows["hparams"].iloc[0])

    def sensitivity(self) -> pd.DataFrame:
        """Per algo, the sensitivity of Adkins et al. from the first rung's runs (every
        configuration on every env): see :func:`rlcompare.studies.sensitivity.sensitivity`."""
        first = self.table[self.table["rung"] == 0]
        default = 0 if self.parameters.get("include_default") else None
        return sens.sensitivity(first, default_config=default)

    def curves(self) -> pd.DataFrame:
        """Performance against each tuned hyperparameter's value (first rung): one row per
        (algo, env, config, param) with the IQM and its CI over tuning seeds."""
        first = self.table[self.table["rung"] == 0]
        log = {a: {d.name: d.log for d in s.dimensions} for a, s in self.spaces.items()}
        return sens.performance_by_value(first, self.configs, log)


def chosen_table(
    table: pd.DataFrame, per_env: bool, configs: Mapping[str, list[dict]], envs: list[str]
) -> pd.DataFrame:
    if per_env:
        best = sens.best_per_env(table)
        rows = [
            {
                "algo": r.algo,
                "env": r.env,
                "mode": MODES[0],
                "config": int(r.config),
                "tuning_score": float(r.iqm),
                "tuning_low": float(r.iqm_low),
                "tuning_high": float(r.iqm_high),
            }
            for r in best.itertuples()
        ]
    else:
        best = sens.best_across_envs(table)
        rows = [
            {
                "algo": r.algo,
                "env": ALL_ENVS,
                "mode": MODES[1],
                "config": int(r.config),
                "tuning_score": float(r.normalised),
                "tuning_low": float("nan"),
                "tuning_high": float("nan"),
            }
            for r in best.itertuples()
        ]
    chosen = pd.DataFrame.from_records(rows)
    chosen["hparams"] = [dict(configs[r.algo][r.config]) for r in chosen.itertuples()]
    return with_hp(chosen, configs)


def config_of(chosen: pd.DataFrame, algo: str, env: str) -> int:
    rows = chosen[(chosen["algo"] == algo) & chosen["env"].isin([env, ALL_ENVS])]
    return int(rows["config"].iloc[0])


def mark_chosen(table: pd.DataFrame, chosen: pd.DataFrame, last_rung: int) -> pd.Series:
    picks = {(r.algo, r.env, r.config) for r in chosen.itertuples()}
    return pd.Series(
        [
            r.rung == last_rung
            and ((r.algo, r.env, r.config) in picks or (r.algo, ALL_ENVS, r.config) in picks)
            for r in table.itertuples()
        ],
        index=table.index,
    )


def with_hp(frame: pd.DataFrame, configs: Mapping[str, list[dict]]) -> pd.DataFrame:
    """``frame`` with one ``hp.<name>`` column per tuned hyperparameter (None where the
    row's algorithm does not tune it)."""
    names = sorted({n for cs in configs.values() for c in cs for n in c})
    out = frame.copy()
    for name in names:
        out[f"hp.{name}"] = [
            configs[a][c].get(name) for a, c in zip(out["algo"], out["config"], strict=True)
        ]
    return out


def budget_table(
    store: str,
    runs: pd.DataFrame,
    eval_design: Mapping[Any, RunSpec],
    configs: Mapping[str, list[dict]],
) -> pd.DataFrame:
    """Runs and env steps each algorithm got, counted from the store: a run's env steps are
    the last step it recorded."""
    ids = set(runs["run_id"]) | {s.run_id for s in eval_design.values()}
    stored = load_results(store, run_ids=ids, metrics=["eval_return"], check_code=False)
    steps = stored.groupby("run_id")["step"].max()
    eval_runs = pd.DataFrame(
        {"algo": [k[0] for k in eval_design], "run_id": [s.run_id for s in eval_design.values()]}
    )
    records = []
    for algo in configs:
        tuning_ids = runs.loc[runs["algo"] == algo, "run_id"].drop_duplicates()
        eval_ids = eval_runs.loc[eval_runs["algo"] == algo, "run_id"].drop_duplicates()
        records.append(
            {
                "algo": algo,
                "configurations": len(configs[algo]),
                "tuning_runs": int(tuning_ids.isin(steps.index).sum()),
                "tuning_env_steps": int(steps.reindex(tuning_ids).fillna(0).sum()),
                "eval_runs": int(eval_ids.isin(steps.index).sum()),
                "eval_env_steps": int(steps.reindex(eval_ids).fillna(0).sum()),
            }
        )
    return pd.DataFrame.from_records(records)


__all__ = [
    "ALL_ENVS",
    "MODES",
    "TuneResult",
    "budget_table",
    "chosen_table",
    "config_of",
    "mark_chosen",
    "with_hp",
]
