"""Notebook 06: PPO (and SAC, and the learned-model planner ``mpc``) on Pendulum's continuous
torque against DQN on a grid of torques.

DQN acts on ``rlcompare/DiscretePendulum-v0`` (the same dynamics with ``n_actions`` evenly
spaced torques), the continuous learners on ``Pendulum-v1``; every agent gets the same eval
protocol and, unless ``protocols`` gives it a smaller one, the same budget (a planner costs
tens of milliseconds of CPU per env step). Agents are labelled ``"dqn, <n> torques"`` and
``"<algo>, continuous"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlcompare.analysis import stats
from rlcompare.errors import SpecError
from rlcompare.experiments.common import SUMMARY_COLUMNS as FINAL_COLUMNS
from rlcompare.experiments.common import eval_every
from rlcompare.experiments.evidence import iqm_ci
from rlcompare.spec.runspec import RunSpec, grid
from rlcompare.viz import plots

DISCRETE_ENV = "rlcompare/DiscretePendulum-v0"
CONTINUOUS_ENV = "Pendulum-v1"
EXPERIMENT = "pendulum"

__all__ = [
    "FINAL_COLUMNS",
    "agent_label",
    "agent_labels",
    "build_specs",
    "cost_table",
    "curves_figure",
    "final_figure",
    "final_table",
    "headline",
    "label_agents",
    "order",
    "own_protocol_first",
    "threshold_table",
]


def build_specs(
    *,
    seeds: int,
    steps: int,
    n_actions: Sequence[int],
    dqn_hparams: Mapping[str, Any],
    continuous_algos: Sequence[str],
    continuous_hparams: Mapping[str, Mapping[str, Any]],
    evals: int,
    eval_episodes: int,
    protocols: Mapping[str, Mapping[str, int]] | None = None,
    extra_envs: Sequence[str] = (),
) -> list[RunSpec]:
    """DQN on each torque grid of ``n_actions``, then each of ``continuous_algos`` on the
    continuous torque (with its entry of ``continuous_hparams``), all on one protocol.

    ``protocols`` may give a continuous algorithm its own ``seeds``, ``steps``, ``evals`` and
    ``eval_episodes`` (for a planner whose every step is costly); missing keys keep the rest.
    ``extra_envs`` (e.g. MountainCarContinuous-v0) run every continuous algorithm once more
    on each of those envs, under the same protocols; their agents are labelled by env.
    """
    protocols = protocols or {}
    unknown = sorted(set(protocols) - set(continuous_algos))
    if unknown:
        raise SpecError(
            f"protocols name {unknown}, not in continuous_algos; valid: {list(continuous_algos)}"
        )

    def protocol(algo: str | None = None) -> dict[str, Any]:
        own = {"seeds": seeds, "steps": steps, "evals": evals, "eval_episodes": eval_episodes}
        own.update(protocols.get(algo, {}) if algo else {})
        return {
            "seeds": own["seeds"],
            "steps": own["steps"],
            "eval_every": eval_every(own["steps"], own["evals"]),
            "eval_episodes": own["eval_episodes"],
            "experiment": EXPERIMENT,
        }

    specs = grid(
        "dqn",
        DISCRETE_ENV,
        hparams=dict(dqn_hparams),
        env_kwargs={"n_actions": list(n_actions)},
        **protocol(),
    )
    for env in (CONTINUOUS_ENV, *extra_envs):
        for algo in continuous_algos:
            hparams = dict(continuous_hparams[algo])
            specs += grid(algo, env, hparams=hparams, **protocol(algo))
    return specs


def own_protocol_first(
    specs: Sequence[RunSpec], protocols: Mapping[str, Mapping[str, int]] | None
) -> list[RunSpec]:
    """``specs`` with the runs of the algorithms that ``protocols`` names (the planner: few
    runs, each costly) first, the rest in order.

    Workers take runs in order: with the planner's runs last, its final one ran alone while
    the other workers idled; first, the many short runs fill in beside them.
    """
    named = set(protocols or {})
    return [s for s in specs if s.algo in named] + [s for s in specs if s.algo not in named]


def agent_label(spec: RunSpec) -> str:
    """``"dqn, 3 torques"`` for a DQN run (its grid is in the env), ``"ppo, continuous"`` on
    Pendulum, ``"ppo, MountainCarContinuous-v0"`` on an extra env."""
    if spec.algo == "dqn":
        return f"dqn, {spec.env_kwargs['n_actions']} torques"
    return f"{spec.algo}, continuous" if spec.env == CONTINUOUS_ENV else f"{spec.algo}, {spec.env}"


def agent_labels(specs: Sequence[RunSpec]) -> dict[str, str]:
    """``run_id -> agent label`` of every spec (:func:`agent_label`)."""
    return {spec.run_id: agent_label(spec) for spec in specs}


def order(specs: Sequence[RunSpec]) -> list[str]:
    """The agent labels in the order of the specs, each once."""
    return list(dict.fromkeys(agent_labels(specs).values()))


def label_agents(frame: pd.DataFrame, specs: Sequence[RunSpec]) -> pd.DataFrame:
    """``frame`` with ``algo`` replaced by the agent label: DQN runs differ only in the env's
    torque grid, and each grid is a contender of its own."""
    return frame.assign(algo=frame["run_id"].map(agent_labels(specs)))


def _in_order(table: pd.DataFrame, agents: Sequence[str]) -> pd.DataFrame:
    return table.set_index("algo").loc[list(agents)].reset_index()


def final_table(
    frame: pd.DataFrame, agents: Sequence[str], *, final_evals: int, reps: int
) -> pd.DataFrame:
    """``stats.summary`` of each agent's mean over its last ``final_evals`` evaluations, one
    row per agent in the order of ``agents``."""
    return _in_order(stats.summary(frame, last=final_evals, reps=reps), agents)


def threshold_table(frame: pd.DataFrame, agents: Sequence[str], threshold: float) -> pd.DataFrame:
    """``stats.threshold_summary`` (runs reaching ``threshold``, Kaplan-Meier median) per agent
    in the order of ``agents``."""
    return _in_order(stats.threshold_summary(frame, threshold), agents)


def cost_table(frame: pd.DataFrame, agents: Sequence[str]) -> pd.DataFrame:
    """CPU cost against sample efficiency per agent: env steps per run and milliseconds of
    wall time per env step (training and evaluation, the median over runs; a run trained with
    other seeds as one stacked batch counts its share of the batch's time)."""
    walls = frame[frame["metric"] == "wall_time_s"].sort_values("step")
    last = walls.groupby("run_id").tail(1)
    per_step = last.assign(ms_per_step=1000 * last["value"] / last["step"].clip(lower=1))
    table = per_step.groupby("algo").agg(
        steps=("step", "max"), ms_per_step=("ms_per_step", "median")
    )
    return table.loc[[a for a in agents if a in table.index]].reset_index()


def curves_figure(frame: pd.DataFrame, threshold: float, *, reps: int) -> tuple[Figure, Axes]:
    """Eval return against env steps per agent (IQM, 95% CI), the threshold dashed."""
    fig, ax = plots.learning_curves(frame, reps=reps)
    ax.axhline(threshold, color="0.4", linestyle="--", linewidth=1)
    ax.legend(title=None, frameon=False, loc="lower right")
    return fig, ax


def final_figure(final: pd.DataFrame) -> tuple[Figure, Any]:
    """Median, IQM and mean of the final return per agent, with CIs (:func:`final_table`)."""
    columns = ["algo", "runs"]
    columns += [f"{s}{p}" for s in ("median", "iqm", "mean") for p in ("", "_low", "_high")]
    return plots.interval_estimates(final[columns])


def headline(
    final: pd.DataFrame,
    reached: pd.DataFrame,
    *,
    threshold: float,
    steps: int,
    runs: int,
) -> dict[str, Any]:
    """The notebook's headline numbers and the evidence claims of the summary table.

    Args:
        final: :func:`final_table`.
        reached: :func:`threshold_table`.
        threshold: The eval return of the steps-to-threshold section.
        steps: Env steps per run.
        runs: Number of distinct runs in the results.
    """
    rows = final.set_index("algo")
    final_iqm = rows["iqm"]
    dqn = [label for label in final["algo"] if label.startswith("dqn")]
    ci = "(IQM of the final evaluations, 95% CI)"
    evidence = {
        "Q-learning": [
            f"Pendulum-v1, {steps} env steps: DQN over {label.removeprefix('dqn, ')} "
            f"{iqm_ci(rows.loc[label])} {ci}"
            for label in dqn
        ],
        "Policy gradient (PPO)": [
            f"Pendulum-v1, {steps} env steps: PPO on the continuous torque "
            f"{iqm_ci(rows.loc['ppo, continuous'])} {ci}"
        ],
    }
    if "mpc, continuous" in final_iqm:
        evidence["Model-based"] = [
            f"Pendulum-v1, smaller budget: learned ensemble model with CEM planning (mpc) "
            f"{iqm_ci(rows.loc['mpc, continuous'])} {ci}"
        ]
    return {
        "final_return_iqm": final_iqm.to_dict(),
        "threshold": threshold,
        "runs_reaching_threshold": reached.set_index("algo")["reached"].to_dict(),
        "km_median_steps_to_threshold": reached.set_index("algo")["km_median_steps"].to_dict(),
        "runs": runs,
        "evidence": evidence,
    }
