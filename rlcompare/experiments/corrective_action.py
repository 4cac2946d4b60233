"""Notebook 07: corrective action on ``rlcompare/SelfHealing-v0``, learned policies against
the runbook. The spec grid from the notebook's parameters, the analysis (contenders, tables,
headline numbers) and the multi-panel figures; the domain helpers (fixed policies, exact
values, runbook logs, per-state tables) live in
:mod:`rlcompare.experiments.corrective_policies` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlcompare.envs.model import tabular_mdp
from rlcompare.envs.planning import value_iteration
from rlcompare.experiments.common import dataset_labels, eval_every, rows_of
from rlcompare.experiments.corrective_policies import (
    ENV_ID,
    action_table,
    agreement,
    clean_observation,
    evaluate_fixed,
    log_coverage,
    policy_actions,
    policy_values,
    regret_by_fault,
    runbook_actions,
    runbook_logs,
)
from rlcompare.experiments.evidence import iqm_ci, number
from rlcompare.runner.runs import run
from rlcompare.spec.runspec import RunSpec, grid

EXPERIMENT = "corrective"
# Contenders in the order of every table and figure: the optimum first, the runbook last.
ORDER = [
    "optimal",
    "q_learning",
    "dyna_q",
    "offline_q_learning",
    "offline_certainty_equivalence",
    "dqn",
    "ppo",
    "bc",
    "runbook",
]
# Metrics of the head-to-head scoreboard, and the four of its figure.
METRICS = ["eval_return", "time_to_recovery", "impaired_share", "action_cost", "policy_regret"]
FIGURE_METRICS = ["eval_return", "time_to_recovery", "action_cost", "policy_regret"]
ONLINE = ["q_learning", "dyna_q", "dqn", "ppo"]
TABULAR_ONLINE = ["q_learning", "dyna_q"]
CE = "offline_certainty_equivalence"
# Tabular learners renamed offline_<algo> when they learn from logs (:func:`contenders`).
OFFLINE_TABULAR = ["q_learning", "dyna_q", "certainty_equivalence"]

__all__ = [
    "ENV_ID",
    "FIGURE_METRICS",
    "METRICS",
    "ORDER",
    "Specs",
    "action_table",
    "agreement",
    "build_specs",
    "clean_observation",
    "contenders",
    "coverage_table",
    "evaluate_fixed",
    "exact_regret_by_rate",
    "fault_rate_figure",
    "fault_rate_tables",
    "fixed_policies",
    "frozen_policies",
    "head_to_head",
    "head_to_head_figure",
    "headline",
    "interval_lines",
    "learned_policies",
    "learning_curves_figure",
    "log_coverage",
    "logs_coverage",
    "policy_actions",
    "policy_values",
    "regret_by_fault",
    "runbook_actions",
    "runbook_logs",
    "scoreboard",
    "Withheld",
    "withheld_policies",
    "withheld_specs",
    "withheld_table",
]


# --------------------------------------------------------------------------------- spec grid
class Specs(NamedTuple):
    """The runs of notebook 07, in groups, and the logs the offline learners read."""

    logs: dict[str, str]
    """``{form: path}`` of the runbook logs with deviations (:func:`runbook_logs`)."""
    runbook_only_logs: dict[str, str]
    """``{"discrete": path}`` of the runbook's logs without deviations."""
    q_learning: list[RunSpec]
    dyna_q: list[RunSpec]
    offline: list[RunSpec]
    """Offline tabular Q-learning from the logs, pessimistic initial Q."""
    certainty_equivalence: list[RunSpec]
    """Certainty equivalence from the same logs, pessimistic initial Q for unlogged pairs:
    the logged transitions counted into a maximum-likelihood model, value iteration on it
    once at the end of the budget (pre-planning, no env interaction). These runs are also
    those of ``coverage`` on these logs."""
    dqn: list[RunSpec]
    ppo: list[RunSpec]
    bc: list[RunSpec]
    rate: list[RunSpec]
    """Q-learning at every fault rate (the runs at ``fault_rate`` are those of q_learning)."""
    coverage: list[RunSpec]
    """Offline Q-learning on runbook-only and deviating logs, with Q0 = 0 and pessimistic;
    certainty equivalence on both logs, pessimistic."""

    @property
    def compare(self) -> list[RunSpec]:
        """The head-to-head contenders that train."""
        return (
            self.q_learning
            + self.dyna_q
            + self.offline
            + self.certainty_equivalence
            + self.dqn
            + self.ppo
            + self.bc
        )

    @property
    def all(self) -> list[RunSpec]:
        """Every run to sweep (a spec may repeat across groups; the sweep runs it once)."""
        return self.compare + self.rate + self.coverage


def build_specs(
    log_dir: str,
    *,
    seeds: int,
    deep_seeds: int,
    gamma: float,
    fault_rate: float,
    fault_rates: Sequence[float],
    steps: int,
    tabular_hparams: Mapping[str, Any],
    planning_steps: int,
    log_episodes: int,
    log_epsilon: float,
    offline_steps: int,
    pessimistic_q_init: float,
    deep_steps: int,
    dqn_hparams: Mapping[str, Any],
    ppo_hparams: Mapping[str, Any],
    bc_steps: int,
    bc_hparams: Mapping[str, Any],
    evals: int,
    deep_evals: int,
    eval_episodes: int,
) -> Specs:
    """The spec groups of notebook 07 from its parameters; writes the runbook logs to
    ``log_dir`` first (once: a log already there is reused) since offline runs name them."""
    env_kwargs = {"fault_rate": fault_rate}
    features = {"observation": "features", "fault_rate": fault_rate}
    tabular = {"gamma": gamma, **tabular_hparams}
    protocol = {"eval_episodes": eval_episodes, "experiment": EXPERIMENT}
    logs = runbook_logs(log_dir, episodes=log_episodes, epsilon=log_epsilon, env_kwargs=env_kwargs)
    runbook_only = runbook_logs(
        log_dir, episodes=log_episodes, epsilon=0.0, env_kwargs=env_kwargs, forms=["discrete"]
    )

    def tabular_grid(
        algo: str,
        hparams: Mapping[str, Any],
        budget: int,
        every: int,
        settings: Mapping[str, Any] | None = None,
    ) -> list[RunSpec]:
        settings = env_kwargs if settings is None else settings
        return grid(
            algo, ENV_ID, seeds, hparams=dict(hparams), env_kwargs=dict(settings), steps=budget,
            eval_every=every, **protocol,
        )  # fmt: skip

    def deep_grid(algo: str, hparams: Mapping[str, Any], budget: int) -> list[RunSpec]:
        return grid(
            algo, ENV_ID, deep_seeds, hparams=hparams, env_kwargs=features, steps=budget,
            eval_every=eval_every(budget, deep_evals), **protocol,
        )  # fmt: skip

    every, offline_every = eval_every(steps, evals), eval_every(offline_steps, evals)
    offline_hparams = {**tabular, "dataset": logs["discrete"], "q_init": pessimistic_q_init}
    q_specs = tabular_grid("q_learning", tabular, steps, every)
    other_rates = [rate for rate in fault_rates if rate != fault_rate]
    both_logs = [runbook_only["discrete"], logs["discrete"]]
    coverage_hparams = {**tabular, "dataset": both_logs, "q_init": [0.0, pessimistic_q_init]}
    # Counts each logged transition once and plans on the logs' own model when the last is
    # counted (replan_every = the budget: no plan before); no step size, no exploration.
    ce_hparams = {"gamma": gamma, "q_init": pessimistic_q_init, "replan_every": offline_steps}
    ce_coverage = tabular_grid(
        "certainty_equivalence", {**ce_hparams, "dataset": both_logs}, offline_steps, offline_steps
    )
    return Specs(
        logs=logs,
        runbook_only_logs=runbook_only,
        q_learning=q_specs,
        dyna_q=tabular_grid("dyna_q", {**tabular, "planning_steps": planning_steps}, steps, every),
        offline=tabular_grid("q_learning", offline_hparams, offline_steps, offline_every),
        certainty_equivalence=[s for s in ce_coverage if s.hparams["dataset"] == logs["discrete"]],
        dqn=deep_grid("dqn", {"gamma": gamma, **dqn_hparams}, deep_steps),
        ppo=deep_grid("ppo", {"gamma": gamma, **ppo_hparams}, deep_steps),
        bc=deep_grid("bc", {"dataset": logs["features"], **bc_hparams}, bc_steps),
        rate=q_specs
        + tabular_grid("q_learning", tabular, steps, steps, {"fault_rate": other_rates}),
        coverage=tabular_grid("q_learning", coverage_hparams, offline_steps, offline_steps)
        + ce_coverage,
    )


# ---------------------------------------------------------------------------------- analysis
def fixed_policies(gamma: float, fault_rate: float) -> dict[str, np.ndarray]:
    """``{"runbook": ..., "optimal": ...}``: the runbook and the optimal policy that value
    iteration computes from the model at ``fault_rate``."""
    solution = value_iteration(tabular_mdp(ENV_ID, fault_rate=fault_rate), gamma)
    return {"runbook": runbook_actions(), "optimal": solution.policy}


def frozen_policies(policies: Mapping[str, np.ndarray], fault_rate: float) -> dict[str, np.ndarray]:
    """The runbook and the optimum of ``fault_rate``, held fixed across fault rates (the
    optimum relabelled ``"optimal at <fault_rate>"``)."""
    return {"runbook": policies["runbook"], f"optimal at {fault_rate}": policies["optimal"]}


def contenders(*frames: pd.DataFrame) -> pd.DataFrame:
    """One table of every contender, learners and fixed policies alike.

    Tabular runs that learned from a logged dataset (``hp.dataset`` set) are renamed
    ``offline_<algo>`` (:data:`OFFLINE_TABULAR`). The observation form is dropped from the
    task (``env.observation``): both forms share one dynamics and, seed for seed, the same
    eval episodes.
    """
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True)
    if "hp.dataset" in frame:
        offline = frame["hp.dataset"].notna() & frame["algo"].isin(OFFLINE_TABULAR)
        frame.loc[offline, "algo"] = "offline_" + frame.loc[offline, "algo"]
    return frame.drop(columns=["env.observation"], errors="ignore")


def scoreboard(
    frame: pd.DataFrame,
    metrics: Iterable[str],
    order: Iterable[str] | None = None,
    **summary_kwargs: Any,
) -> pd.DataFrame:
    """:func:`rlcompare.stats.summary` by ``algo`` for several metrics, in one long table.

    Args:
        frame: Tidy table of the contenders (:func:`contenders`).
        metrics: Metrics to summarise; a contender without a metric has no row for it.
        order: Order of the contenders within each metric (the rest follow, sorted).
        **summary_kwargs: Passed to ``stats.summary`` (``last``, ``reps``, ``random_state``).

    Returns:
        ``metric``, then the columns of ``stats.summary``, one row per metric and contender.
    """
    from rlcompare.analysis import stats

    order = list(order or [])
    tables = []
    for metric in metrics:
        table = stats.summary(frame[frame["metric"] == metric], metric, by="algo", **summary_kwargs)
        names = [a for a in order if a in set(table["algo"])]
        names += sorted(set(table["algo"]) - set(names))
        table = table.set_index("algo").loc[names].reset_index()
        tables.append(table.assign(metric=metric))
    board = pd.concat(tables, ignore_index=True)
    return board[["metric", *[c for c in board if c != "metric"]]]


def head_to_head(
    frame: pd.DataFrame,
    specs: Specs,
    policies: Mapping[str, np.ndarray],
    *,
    seeds: int,
    gamma: float,
    fault_rate: float,
    eval_episodes: int,
) -> pd.DataFrame:
    """The contenders' rows: the trained runs of ``specs.compare`` and the fixed
    ``policies`` scored on the same eval episodes seed for seed (:func:`contenders`)."""
    fixed = evaluate_fixed(
        policies,
        seeds,
        gamma=gamma,
        env_kwargs={"fault_rate": fault_rate},
        eval_episodes=eval_episodes,
        experiment=EXPERIMENT,
    )
    return contenders(rows_of(frame, specs.compare), fixed)


def learned_policies(specs: Specs, policies: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(S,) actions of the greedy policies of Q-learning, offline Q-learning and certainty
    equivalence from the logs (seed 0, retrained: same spec, same result) beside the
    runbook's."""
    return {
        "q_learning": policy_actions(run(specs.q_learning[0])),
        "offline_q_learning": policy_actions(run(specs.offline[0])),
        "offline_certainty_equivalence": policy_actions(run(specs.certainty_equivalence[0])),
        "runbook": policies["runbook"],
    }


class Withheld(NamedTuple):
    """Learners from logs that never hold one fault kind, and those they are compared with."""

    fault: str
    """The fault kind the logs never hold (``withheld_fault`` of their env)."""
    logs: dict[str, str]
    """``{form: path}`` of the runbook logs with deviations, logged without ``fault``."""
    specs: dict[str, list[RunSpec]]
    """``{label: runs}``: ``<learner> (without <fault>)`` from those logs, then online
    Q-learning and the same offline learners from the full logs (runs of :class:`Specs`);
    each evaluated once, at the end."""


def withheld_specs(
    specs: Specs,
    log_dir: str,
    *,
    fault: str,
    seeds: int,
    fault_rate: float,
    log_episodes: int,
    log_epsilon: float,
) -> Withheld:
    """The first ``seeds`` runs of the offline learners and BC of ``specs``, learning instead
    from runbook logs of a service where ``fault`` never occurs (logged to ``log_dir`` once).

    The runs' env settings name the withheld kind too, as the logs' do (a dataset is only
    learned from on the settings it was logged on); the learners are scored on the full mix
    afterwards (:func:`withheld_table`). Only the final greedy policy counts, so every run
    is evaluated once, at the end: the evaluations draw on their own streams, so training,
    hence the policy, is that of the run with more evaluations.
    """
    env_kwargs = {"fault_rate": fault_rate, "withheld_fault": fault}
    logs = runbook_logs(log_dir, episodes=log_episodes, epsilon=log_epsilon, env_kwargs=env_kwargs)

    def final(group: list[RunSpec]) -> list[RunSpec]:
        return [replace(spec, eval_every=spec.steps) for spec in group[:seeds]]

    def without(group: list[RunSpec], form: str) -> list[RunSpec]:
        return [
            replace(
                spec,
                hparams={**spec.hparams, "dataset": logs[form]},
                env_kwargs={**spec.env_kwargs, "withheld_fault": fault},
            )
            for spec in final(group)
        ]

    label = f"(without {fault})"
    return Withheld(
        fault=fault,
        logs=logs,
        specs={
            f"offline_q_learning {label}": without(specs.offline, "discrete"),
            f"{CE} {label}": without(specs.certainty_equivalence, "discrete"),
            f"bc {label}": without(specs.bc, "features"),
            "q_learning": final(specs.q_learning),
            "offline_q_learning": final(specs.offline),
            CE: final(specs.certainty_equivalence),
        },
    )


def withheld_policies(withheld: Withheld) -> dict[str, np.ndarray]:
    """(S,) greedy actions of every run of ``withheld``, keyed ``<label>/<seed>`` (retrained:
    the store keeps no agents; same spec, same result)."""
    return {
        f"{label}/{spec.seed}": policy_actions(
            run(spec), spec.env_kwargs.get("observation", "discrete")
        )
        for label, group in withheld.specs.items()
        for spec in group
    }


def withheld_table(
    policies: Mapping[str, np.ndarray],
    fixed: Mapping[str, np.ndarray],
    gamma: float,
    *,
    fault: str,
    fault_rate: float,
) -> pd.DataFrame:
    """Mean exact regret over seeds of each learner of :func:`withheld_policies`, beside the
    runbook and the optimum of the full mix, on the full mix (``all``) and on each kind alone
    (:func:`regret_by_fault`); the withheld ``fault``'s column comes right after ``all``.

    Returns:
        One row per learner (index ``learner``), ``seeds``, then the regret columns.
    """
    named = {**policies, "runbook": fixed["runbook"], "optimal (full mix)": fixed["optimal"]}
    regret = regret_by_fault(named, gamma, fault_rate=fault_rate)
    learner = regret.index.str.rsplit("/", n=1).str[0].rename("learner")
    table = regret.groupby(learner, sort=False).mean()
    table.insert(0, "seeds", regret.groupby(learner, sort=False).size())
    others = [c for c in table if c not in ("seeds", "all", fault)]
    return table[["seeds", "all", fault, *others]]


def _log_kinds(specs: Specs, log_epsilon: float) -> dict[str, str]:
    return {
        specs.runbook_only_logs["discrete"]: "runbook only",
        specs.logs["discrete"]: f"{log_epsilon:.0%} deviations",
    }


def logs_coverage(
    specs: Specs, log_epsilon: float, gamma: float, fault_rate: float
) -> pd.DataFrame:
    """:func:`log_coverage` of the two discrete logs, labelled as in :func:`coverage_table`."""
    kinds = {label: path for path, label in _log_kinds(specs, log_epsilon).items()}
    return log_coverage(kinds, gamma, fault_rate=fault_rate)


def coverage_table(
    frame: pd.DataFrame, specs: Specs, log_epsilon: float, *, reps: int
) -> pd.DataFrame:
    """Final exact regret of each learner from logs (``algo``: ``offline_q_learning``,
    ``offline_certainty_equivalence``) per kind of logs (``logs``: ``runbook only`` or
    ``<log_epsilon> deviations``) and initial value ``hp.q_init``; ``model_error`` is the IQM
    of the learned model's final ``model_error`` (NaN for the model-free learner)."""
    from rlcompare.analysis import stats

    rows = contenders(rows_of(frame, specs.coverage))
    by = ["algo", "hp.dataset", "hp.q_init"]
    table = stats.summary(rows, "policy_regret", by=by, reps=reps)
    if (rows["metric"] == "model_error").any():
        error = stats.summary(rows, "model_error", by=by, reps=reps)
        table = table.merge(
            error[[*by, "iqm"]].rename(columns={"iqm": "model_error"}), on=by, how="left"
        )
    else:
        table = table.assign(model_error=np.nan)
    kinds = dataset_labels(_log_kinds(specs, log_epsilon))
    return table.assign(logs=table["hp.dataset"].map(kinds))


def fault_rate_tables(
    frame: pd.DataFrame,
    specs: Specs,
    frozen: Mapping[str, np.ndarray],
    *,
    seeds: int,
    gamma: float,
    fault_rates: Sequence[float],
    eval_episodes: int,
    reps: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(regret, return)`` summaries by ``env.fault_rate`` and ``algo`` of Q-learning retrained
    at each rate and of the ``frozen`` policies scored at each rate."""
    from rlcompare.analysis import stats

    fixed = evaluate_fixed(
        frozen,
        seeds,
        gamma=gamma,
        env_kwargs={"fault_rate": list(fault_rates)},
        eval_episodes=eval_episodes,
        experiment=EXPERIMENT,
    )
    rates = contenders(rows_of(frame, specs.rate), fixed)
    by = ["env.fault_rate", "algo"]
    return (
        stats.summary(rates, "policy_regret", by=by, reps=reps),
        stats.summary(rates, "eval_return", by=by, reps=reps),
    )


def exact_regret_by_rate(
    frozen: Mapping[str, np.ndarray], gamma: float, fault_rates: Sequence[float]
) -> pd.DataFrame:
    """Exact regret of each frozen policy (columns) at each fault rate (rows)."""
    table = policy_values(frozen, gamma, fault_rate=list(fault_rates))
    return table.pivot(index="fault_rate", columns="policy", values="regret")


def headline(
    board: pd.DataFrame,
    agree: pd.Series,
    coverage: pd.DataFrame,
    regret_by_rate: pd.DataFrame,
    *,
    steps: int,
    deep_steps: int,
    log_epsilon: float,
    pessimistic_q_init: float,
    runs: int,
    logged: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The notebook's headline numbers and the evidence claims of the summary table.

    Args:
        board: :func:`scoreboard` of :data:`METRICS`.
        agree: Share of optimal actions per policy (:func:`agreement`).
        coverage: :func:`coverage_table`.
        regret_by_rate: The regret table of :func:`fault_rate_tables`.
        steps: Env steps of the tabular learners.
        deep_steps: Env steps of the deep learners.
        log_epsilon: Share of deviations in the logs.
        pessimistic_q_init: Initial Q of the pessimistic offline learner.
        runs: Number of distinct runs in the results.
        logged: :func:`logs_coverage` (adds what each kind of logs covers).
    """
    rows = board.set_index(["metric", "algo"])
    iqm = rows["iqm"]
    by_logs = coverage.set_index(["algo", "logs", "hp.q_init"]).sort_index()
    deviations = f"{log_epsilon:.0%} deviations"

    def ret(algo: str) -> str:
        return iqm_ci(rows.loc[("eval_return", algo)])

    def regret(algo: str) -> str:
        return iqm_ci(rows.loc[("policy_regret", algo)])

    def offline(algo: str, logs: str, q_init: float) -> str:
        return iqm_ci(by_logs.loc[(algo, logs, q_init)])

    pessimistic = (deviations, pessimistic_q_init)
    ci, optimum = "(IQM, 95% CI)", number(iqm[("eval_return", "optimal")])
    evidence = {
        "Q-learning": [
            f"SelfHealing, exact regret after {steps} steps: Q-learning {regret('q_learning')} "
            f"vs runbook {regret('runbook')} {ci}",
            f"SelfHealing, offline Q-learning from runbook logs with {deviations}, pessimistic "
            f"Q0: exact regret {offline('offline_q_learning', *pessimistic)} {ci}",
            f"SelfHealing, offline Q-learning from runbook-only logs, Q0 = 0: exact regret "
            f"{offline('offline_q_learning', 'runbook only', 0.0)} {ci}",
            f"SelfHealing, DQN on noisy features after {deep_steps} steps: return {ret('dqn')} "
            f"vs runbook {ret('runbook')}, optimum {optimum} {ci}",
        ],
        "Policy gradient (PPO)": [
            f"SelfHealing, PPO after {deep_steps} env steps: return {ret('ppo')} vs runbook "
            f"{ret('runbook')}, optimum {optimum} {ci}",
        ],
        "Model-based": [
            f"SelfHealing, exact regret after {steps} steps: Dyna-Q {regret('dyna_q')} vs "
            f"Q-learning {regret('q_learning')} {ci}",
            f"SelfHealing, certainty equivalence on runbook logs with {deviations} (no "
            f"env interaction): exact regret {offline(CE, *pessimistic)} vs offline Q-learning "
            f"{offline('offline_q_learning', *pessimistic)} {ci}",
            f"SelfHealing, certainty equivalence from runbook-only logs: exact regret "
            f"{offline(CE, 'runbook only', pessimistic_q_init)} vs runbook {regret('runbook')} "
            f"{ci}",
            f"SelfHealing, certainty equivalence from logs: return {ret(CE)} vs BC "
            f"{ret('bc')} {ci}",
        ],
        "Imitation (BC)": [
            f"SelfHealing, BC on runbook logs: return {ret('bc')} vs runbook {ret('runbook')}, "
            f"optimum {optimum} {ci}",
        ],
    }
    q_rows = coverage[coverage["algo"] == "offline_q_learning"]
    ce_rows = coverage[coverage["algo"] == CE]
    kinds = zip(q_rows["logs"], q_rows["hp.q_init"], q_rows["iqm"], strict=True)
    by_rate = zip(
        regret_by_rate["env.fault_rate"],
        regret_by_rate["algo"],
        regret_by_rate["iqm"],
        strict=True,
    )
    numbers = {
        "eval_return_iqm": iqm["eval_return"].to_dict(),
        "time_to_recovery_iqm": iqm["time_to_recovery"].to_dict(),
        "action_cost_iqm": iqm["action_cost"].to_dict(),
        "policy_regret_iqm": iqm["policy_regret"].to_dict(),
        "optimal_action_share": agree.to_dict(),
        "offline_regret_iqm": {f"{kind}/q_init={q_init}": value for kind, q_init, value in kinds},
        "ce_regret_iqm": dict(zip(ce_rows["logs"], ce_rows["iqm"], strict=True)),
        "ce_model_error_iqm": dict(zip(ce_rows["logs"], ce_rows["model_error"], strict=True)),
        "regret_by_fault_rate": {f"{rate}/{algo}": value for rate, algo, value in by_rate},
        "runs": runs,
        "evidence": evidence,
    }
    if logged is not None:
        numbers["logged"] = _logged(logged)
    return numbers


def _logged(logged: pd.DataFrame) -> dict[str, float]:
    columns = ["pairs", "optimum_covered", "model_error_weighted"]
    return {f"{kind}/{c}": float(logged.loc[kind, c]) for kind in logged.index for c in columns}


# ------------------------------------------------------------------------------------ figures
def interval_lines(
    summary: pd.DataFrame,
    x: str,
    stat: str = "iqm",
    hue: str = "algo",
    ylabel: str | None = None,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    """A statistic of :func:`rlcompare.stats.summary` against a numeric setting, with CIs.

    One line per ``hue`` level through the point estimates, error bars for the intervals
    (a fixed policy scored exactly has a zero-width interval).
    """
    from rlcompare.viz.style import FIGSIZE, algo_colors

    missing = [c for c in (x, hue, stat, f"{stat}_low", f"{stat}_high") if c not in summary]
    if missing:
        raise ValueError(f"missing column(s) {missing}; available: {', '.join(summary)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    else:
        fig = ax.figure
    levels = list(dict.fromkeys(summary[hue]))
    colors = algo_colors(levels)
    for level in levels:
        rows = summary[summary[hue] == level].sort_values(x)
        low = rows[stat] - rows[f"{stat}_low"]
        high = rows[f"{stat}_high"] - rows[stat]
        ax.errorbar(
            rows[x],
            rows[stat],
            yerr=[low, high],
            color=colors[level],
            label=str(level),
            marker="o",
            markersize=3,
            capsize=2,
        )
    ax.set_xlabel(x.removeprefix("env.").replace("_", " "))
    ax.set_ylabel(ylabel or stat)
    ax.legend(title=hue, frameon=False)
    return fig, ax


def head_to_head_figure(board: pd.DataFrame) -> tuple[Figure, np.ndarray]:
    """2 x 2 panels of :data:`FIGURE_METRICS`: each contender's IQM with its 95% CI, from the
    :func:`scoreboard`."""
    from rlcompare.viz import plots

    fig, axes = plt.subplots(2, 2, figsize=(7, 5.2), layout="constrained")
    for ax, metric in zip(axes.flat, FIGURE_METRICS, strict=True):
        rows = board[board["metric"] == metric].drop(columns="metric")
        plots.interval_estimates(rows, "iqm", ax=ax)
        ax.set_xlabel(f"{metric.replace('_', ' ')} (IQM)")
        ax.use_sticky_edges = False  # exact (zero-width) intervals at the edge stay visible
        ax.autoscale_view()
    return fig, axes


def learning_curves_figure(
    compare: pd.DataFrame, board: pd.DataFrame, *, reps: int
) -> tuple[Figure, np.ndarray]:
    """Left: eval return of the online learners against env steps (log x), with the runbook
    (dashed) and the optimum (dotted) as levels; right: exact regret of the tabular learners
    (log y) against the runbook's."""
    from rlcompare.viz import plots

    online = compare[compare["algo"].isin(ONLINE) & (compare["step"] > 0)]
    levels = board[board["algo"].isin(["runbook", "optimal"])].set_index(["metric", "algo"])
    levels = levels["iqm"]
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8), layout="constrained")
    steps = sorted(set(online.loc[online["metric"] == "eval_return", "step"]))
    plots.learning_curves(online, "eval_return", steps=steps, reps=reps, ax=axes[0])
    tabular = online[online["algo"].isin(TABULAR_ONLINE)]
    plots.learning_curves(tabular, "policy_regret", reps=reps, log_scale=True, ax=axes[1])
    for ax, metric in zip(axes, ["eval_return", "policy_regret"], strict=True):
        level = levels[(metric, "runbook")]
        ax.axhline(level, color="0.3", linestyle="--", linewidth=1, label="runbook")
        ax.legend(frameon=False)
    optimal = levels[("eval_return", "optimal")]
    axes[0].axhline(optimal, color="0.6", linestyle=":", linewidth=1, label="optimal")
    axes[0].set_xscale("log")
    axes[1].ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    axes[0].legend(frameon=False)
    return fig, axes


def fault_rate_figure(
    regret_by_rate: pd.DataFrame, return_by_rate: pd.DataFrame
) -> tuple[Figure, np.ndarray]:
    """Regret (left) and eval return (right) against the fault rate (:func:`fault_rate_tables`)."""
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8), layout="constrained")
    interval_lines(regret_by_rate, "env.fault_rate", ylabel="Policy regret (IQM)", ax=axes[0])
    interval_lines(return_by_rate, "env.fault_rate", ylabel="Eval return (IQM)", ax=axes[1])
    axes[1].get_legend().remove()
    return fig, axes
