"""Notebook 09: does equal-budget tuning change the ranking, and how sensitive is each algo?

Every algorithm (Q-learning variants, DQN, PPO) is tuned with :func:`rlcompare.tune` on the
same budget (configurations x tuning seeds x env steps), per env and with one setting
across envs; its defaults and its choices are re-run on the same fresh eval seeds. The
ranking by eval IQM at the defaults is set beside the ranking after tuning, each pair
decided by a one-interim :func:`rlcompare.studies.compare.stored_verdict`, and the
sensitivity of Adkins et al. (NeurIPS 2024) says how much each algo loses when one setting
must serve every env. Every sentence of the conclusions is computed from these tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rlcompare.analysis import stats
from rlcompare.errors import SpecError
from rlcompare.experiments.evidence import iqm_ci
from rlcompare.studies.compare import stored_verdict
from rlcompare.studies.tune import TuneResult, tune
from rlcompare.studies.verdict import Verdict

__all__ = [
    "APPROACHES",
    "DECISION_COLUMNS",
    "RANKING_COLUMNS",
    "conclusions",
    "evidence",
    "headline",
    "ranking",
    "run_tuning",
    "verdicts",
]

# The decisions table as the notebook shows it.
DECISION_COLUMNS = ["env", "a", "b", "decision", "runs_a", "runs_b", "difference"]
DECISION_COLUMNS += ["difference_low", "difference_high", "p_improvement"]
RANKING_COLUMNS = ["env", "algo", "defaults", "defaults_low", "defaults_high", "rank_defaults"]
RANKING_COLUMNS += ["tuned", "tuned_low", "tuned_high", "rank_tuned", "rank_change"]


def run_tuning(
    algos: Sequence[str],
    envs: Sequence[str],
    store: str,
    *,
    per_env: bool,
    budget: int,
    steps: Mapping[str, int],
    tuning_seeds: int,
    eval_seeds: int,
    hparams: Mapping[str, Mapping[str, Any]],
    evals: int,
    eval_episodes: int,
    halving: int | None,
    executor: str,
    reps: int,
    env_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> TuneResult:
    """:func:`rlcompare.tune` as the notebook calls it: both modes share the tuning runs (same
    configurations, seeds and experiment), only their eval re-runs differ. ``env_kwargs``:
    env id -> its kwargs (an env not named gets none)."""
    unknown = sorted(set(env_kwargs or {}) - set(envs))
    if unknown:
        raise SpecError(f"env_kwargs name {unknown}, not in envs; valid: {list(envs)}")
    every = min(steps.values()) // evals
    kwargs = {env: dict((env_kwargs or {}).get(env, {})) for env in envs}
    return tune(
        list(algos),
        list(envs),
        store,
        budget=budget,
        steps=dict(steps),
        tuning_seeds=tuning_seeds,
        eval_seeds=eval_seeds,
        hparams={a: dict(hparams.get(a, {})) for a in algos},
        env_kwargs=kwargs,
        per_env=per_env,
        halving=halving,
        eval_every=max(1, every),
        eval_episodes=eval_episodes,
        executor=executor,
        reps=reps,
        experiment="tuning09",
        progress=False,
    )


def _iqm(frame: pd.DataFrame, metric: str, reps: int) -> pd.DataFrame:
    table = stats.summary(frame, metric=metric, by=["env", "algo"], reps=reps)
    return table.set_index(["env", "algo"])[["iqm", "iqm_low", "iqm_high"]]


def ranking(result: TuneResult, reps: int = 2000) -> pd.DataFrame:
    """Per env and algo: eval IQM (95% CI) at the defaults and at the tuned choice, on the same
    eval seeds, and the rank of each (1 = best; ties share the better rank)."""
    rows = []
    for env, metric in result.parameters["metric"].items():
        defaults = _iqm(result.defaults_frame[result.defaults_frame["env"] == env], metric, reps)
        tuned = _iqm(result.eval_frame[result.eval_frame["env"] == env], metric, reps)
        higher = result.parameters["higher_is_better"][env]
        both = defaults.join(tuned, lsuffix="_d", rsuffix="_t").reset_index()
        for prefix, suffix in (("defaults", "_d"), ("tuned", "_t")):
            both[prefix] = both[f"iqm{suffix}"]
            both[f"{prefix}_low"] = both[f"iqm_low{suffix}"]
            both[f"{prefix}_high"] = both[f"iqm_high{suffix}"]
            both[f"rank_{prefix}"] = (
                both[prefix].rank(ascending=not higher, method="min").astype(int)
            )
        both["rank_change"] = both["rank_defaults"] - both["rank_tuned"]
        rows.append(both[RANKING_COLUMNS])
    return pd.concat(rows, ignore_index=True).sort_values(["env", "rank_tuned", "algo"])


def verdicts(result: TuneResult) -> dict[str, Verdict]:
    """One-interim verdicts (5% family-wise over envs and pairs) on the eval seeds: at the
    defaults, and at the tuned choice."""
    return {
        "defaults": stored_verdict(result.defaults_frame),
        "tuned": stored_verdict(result.eval_frame),
    }


def _order(table: pd.DataFrame, column: str) -> str:
    """``a > b = c``: algorithms by rank, ties joined by ``=``."""
    groups = table.sort_values([column, "algo"]).groupby(column, sort=True)["algo"]
    return " > ".join(" = ".join(names) for _, names in groups)


def _decided(verdict: Verdict, env: str) -> list[str]:
    rows = verdict.decisions[verdict.decisions["env"] == env]
    return [
        f"{r.a} {r.decision} than {r.b}"
        for r in rows.itertuples()
        if r.decision in ("better", "worse")
    ]


def conclusions(
    rank: pd.DataFrame,
    decided: Mapping[str, Verdict],
    sensitivity: pd.DataFrame,
    budget: pd.DataFrame,
) -> str:
    """The notebook's conclusions as Markdown, every number and claim read from the tables."""
    lines = []
    runs = budget.set_index("algo")
    same = runs["tuning_env_steps"].nunique() == 1 and runs["tuning_runs"].nunique() == 1
    lines.append(
        f"- **Budget.** Every algorithm ran {int(runs['tuning_runs'].iloc[0])} tuning runs and "
        f"{int(runs['tuning_env_steps'].iloc[0]):,} env steps"
        + (
            " (equal for all, counted from the store)."
            if same
            else "; NOT equal: " + runs.to_string()
        )
    )
    for env, table in rank.groupby("env", sort=False):
        moved = table[table["rank_change"] != 0]
        by_defaults, by_tuned = _order(table, "rank_defaults"), _order(table, "rank_tuned")
        change = (
            "the ranking is unchanged"
            if moved.empty
            else "the ranking changes: "
            + ", ".join(
                f"{r.algo} {int(r.rank_defaults)} -> {int(r.rank_tuned)}"
                for r in moved.itertuples()
            )
        )
        before, after = _decided(decided["defaults"], env), _decided(decided["tuned"], env)
        lines.append(
            f"- **{env}.** Defaults: {by_defaults}; tuned: {by_tuned}; {change}. "
            f"Decided at 5% (defaults): {'; '.join(before) or 'no pair'}; "
            f"(tuned): {'; '.join(after) or 'no pair'}."
        )
    if not sensitivity.empty and (sensitivity["envs"] > 1).any():
        ordered = sensitivity.sort_values(["sensitivity", "algo"], ascending=[False, True])
        listed = ", ".join(f"{r.algo} {r.sensitivity:.2f}" for r in ordered.itertuples())
        most = ordered.iloc[0]
        if most["sensitivity"] > 0:
            detail = (
                f"{most['algo']} depends most on per-env tuning: its best single setting "
                f"reaches {most['across_envs_tuned']:.2f} against {most['per_env_tuned']:.2f} "
                f"tuned per env (defaults {most['default']:.2f})."
            )
        else:
            detail = (
                "With these configurations one setting serves every env as well as per-env tuning."
            )
        lines.append(
            "- **Sensitivity** (normalised performance lost by one setting for every env): "
            f"{listed}. {detail}"
        )
    return "\n".join(lines)


# The approaches of the summary table (notebook 00) and the tuned algorithms of each.
APPROACHES = {
    "Q-learning": ("q_learning", "double_q", "expected_sarsa", "dqn"),
    "Policy gradient (PPO)": ("ppo",),
}


def evidence(rank: pd.DataFrame, budget: pd.DataFrame) -> dict[str, list[str]]:
    """The claims of each approach of the summary table: each member's eval IQM (95% CI) and
    rank at its defaults and after equal-budget tuning, one claim per env and member."""
    steps = int(budget["tuning_env_steps"].iloc[0])
    out = {}
    for approach, members in APPROACHES.items():
        rows = rank[rank["algo"].isin(members)]
        if rows.empty:
            continue
        out[approach] = [
            f"{r['env']}, {r['algo']}: eval IQM {iqm_ci(r, 'defaults')} at defaults, "
            f"{iqm_ci(r, 'tuned')} tuned ({steps:,} env steps), rank {int(r['rank_defaults'])} "
            f"-> {int(r['rank_tuned'])} of {int((rank['env'] == r['env']).sum())} (95% CI)"
            for r in rows.to_dict("records")
        ]
    return out


def headline(
    rank: pd.DataFrame,
    decided: Mapping[str, Verdict],
    sensitivity: pd.DataFrame,
    budget: pd.DataFrame,
) -> dict[str, Any]:
    """Headline numbers: ranks and IQMs at defaults and tuned, decisions, sensitivity."""
    key = rank["env"] + "/" + rank["algo"]

    def rounded(values: pd.Series) -> list:
        return [None if not np.isfinite(v) else round(float(v), 3) for v in values]

    return {
        "ranks_defaults": dict(zip(key, rank["rank_defaults"].astype(int).tolist(), strict=True)),
        "ranks_tuned": dict(zip(key, rank["rank_tuned"].astype(int).tolist(), strict=True)),
        "iqm_defaults": dict(zip(key, rounded(rank["defaults"]), strict=True)),
        "iqm_tuned": dict(zip(key, rounded(rank["tuned"]), strict=True)),
        "decisions": {
            name: {f"{r.env}: {r.a} vs {r.b}": r.decision for r in v.decisions.itertuples()}
            for name, v in decided.items()
        },
        "sensitivity": dict(
            zip(sensitivity["algo"], rounded(sensitivity["sensitivity"]), strict=True)
        ),
        "evidence": evidence(rank, budget),
        "tuning_env_steps": dict(
            zip(budget["algo"], budget["tuning_env_steps"].astype(int).tolist(), strict=True)
        ),
    }
