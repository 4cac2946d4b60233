"""Notebook 05: learning from fixed logs, offline Q-learning against behavioural cloning.

Logs come from scripted demonstrators whose actions are replaced by uniformly random ones with
probability epsilon. On FrozenLake 4x4 (slippery) the *expert* plays the optimal policy and
the *naive* one the optimal policy of a lake without ice; on CartPole the *expert* is a PD
controller and the *novice* ignores the pole's angular velocity. A log is labelled
``"<demonstrator> eps=<epsilon>"``; online runs (PPO) are labelled ``"online"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlcompare.analysis import stats
from rlcompare.envs import experts
from rlcompare.envs.datasets import Dataset, collect_demonstrations
from rlcompare.envs.model import tabular_mdp
from rlcompare.envs.planning import policy_evaluation, value_iteration
from rlcompare.experiments.common import IQM_COLUMNS, dataset_labels, eval_every
from rlcompare.experiments.evidence import iqm_ci, number
from rlcompare.spec.runspec import RunSpec, grid
from rlcompare.viz import plots

LAKE, CARTPOLE = "FrozenLake-v1", "CartPole-v1"
ONLINE = "online"
# Columns of the final-score tables that the notebook shows.
FINAL_COLUMNS = ["logs", "algo", *IQM_COLUMNS, "demonstrator"]
REGRET_COLUMNS = ["logs", *IQM_COLUMNS]
CARTPOLE_DEMONSTRATORS: dict[str, Callable[[Any], int]] = {
    "expert": experts.cartpole_expert,
    "novice": experts.cartpole_novice,
}

__all__ = [
    "CARTPOLE",
    "LAKE",
    "Experiment",
    "build_specs",
    "cartpole_curves_figure",
    "demonstrator_regret",
    "final_figure",
    "final_table",
    "headline",
    "label_logs",
    "logs_table",
    "regret_table",
    "split_envs",
]


class Experiment(NamedTuple):
    """The logs of notebook 05 and the runs that learn from them (or online)."""

    lake_data: dict[str, Dataset]
    """``label -> logs`` on FrozenLake, demonstrator by demonstrator, epsilon by epsilon."""
    cartpole_data: dict[str, Dataset]
    """``label -> logs`` on CartPole, in the order of ``cartpole_logs``."""
    labels: dict[str, str]
    """``content_id of a saved log -> its label``, for the ``hp.dataset`` column of the
    results."""
    lake_specs: list[RunSpec]
    cartpole_specs: list[RunSpec]

    @property
    def specs(self) -> list[RunSpec]:
        """Every run to sweep."""
        return self.lake_specs + self.cartpole_specs

    @property
    def lake_demo(self) -> dict[str, float]:
        """The demonstrator's own mean return in each FrozenLake log."""
        return {label: data.mean_return for label, data in self.lake_data.items()}

    @property
    def cartpole_demo(self) -> dict[str, float]:
        """The demonstrator's own mean return in each CartPole log."""
        return {label: data.mean_return for label, data in self.cartpole_data.items()}


def lake_demonstrators(gamma: float) -> dict[str, np.ndarray]:
    """``{"expert": ..., "naive": ...}``: (S,) optimal actions of the slippery lake and of the
    same lake without ice, at ``gamma``."""
    optimal = value_iteration(tabular_mdp(LAKE), gamma)
    naive = value_iteration(tabular_mdp(LAKE, is_slippery=False), gamma)
    return {"expert": optimal.policy, "naive": naive.policy}


def _log(policy: Callable[[Any], int], env: str, steps: int, name: str, eps: float) -> Dataset:
    source = f"{name}, epsilon={eps}"
    return collect_demonstrations(policy, env, steps=steps, seed=0, epsilon=eps, source=source)


def _save(data: Mapping[str, Dataset], directory: str, env: str, steps: int) -> dict[str, str]:
    """``label -> path`` of each log saved under a name that carries its settings."""
    return {
        label: str(log.save(f"{directory}/{env}_{label.replace(' ', '_')}_n{steps}.npz"))
        for label, log in data.items()
    }


def build_specs(
    store: str,
    *,
    seeds: int,
    epsilons: Sequence[float],
    gamma: float,
    lake_log_steps: int,
    lake_steps: int,
    lake_hparams: Mapping[str, Any],
    lake_eval_episodes: int,
    bc_steps: int,
    bc_hparams: Mapping[str, Any],
    cartpole_logs: Sequence[Sequence[Any]],
    cartpole_log_steps: int,
    dqn_steps: int,
    dqn_hparams: Mapping[str, Any],
    ppo_steps: int,
    ppo_hparams: Mapping[str, Any],
    cartpole_eval_episodes: int,
    evals: int,
) -> Experiment:
    """Collects and saves the logs under ``<store>/logs`` (seed 0), then the runs: offline
    tabular Q-learning and BC on every FrozenLake log (evaluated at the start and the end
    only); offline DQN and BC on every CartPole log, and online PPO (``evals`` evaluations).

    Args:
        store: The notebook's result store; logs go to its ``logs`` folder.
        cartpole_logs: ``[demonstrator, epsilon]`` pairs, demonstrator in
            :data:`CARTPOLE_DEMONSTRATORS`.

    The other arguments are the notebook parameters of the same names.
    """
    lake_policies = {name: p.__getitem__ for name, p in lake_demonstrators(gamma).items()}
    lake_data = {
        f"{name} eps={eps}": _log(policy, LAKE, lake_log_steps, name, eps)
        for name, policy in lake_policies.items()
        for eps in epsilons
    }
    cartpole_data = {
        f"{name} eps={eps}": _log(
            CARTPOLE_DEMONSTRATORS[name], CARTPOLE, cartpole_log_steps, name, eps
        )
        for name, eps in cartpole_logs
    }
    lake_paths = _save(lake_data, f"{store}/logs", LAKE, lake_log_steps)
    cartpole_paths = _save(cartpole_data, f"{store}/logs", CARTPOLE, cartpole_log_steps)
    # Runs know a log by its content (the ``hp.dataset`` column holds its content_id).
    logs = [*lake_paths.items(), *cartpole_paths.items()]
    labels = dataset_labels({path: label for label, path in logs})

    lake = {"eval_episodes": lake_eval_episodes, "experiment": "frozenlake"}
    lake_logs = {"dataset": list(lake_paths.values())}
    lake_specs = grid(
        "q_learning", LAKE, seeds, hparams={"gamma": gamma, **lake_hparams, **lake_logs},
        steps=lake_steps, eval_every=lake_steps, **lake,
    ) + grid(
        "bc", LAKE, seeds, hparams={**bc_hparams, **lake_logs}, steps=bc_steps,
        eval_every=bc_steps, **lake,
    )  # fmt: skip

    cartpole = {"eval_episodes": cartpole_eval_episodes, "experiment": "cartpole"}
    cartpole_logs_hp = {"dataset": list(cartpole_paths.values())}
    learners = [
        ("dqn", {**dqn_hparams, **cartpole_logs_hp}, dqn_steps),
        ("bc", {**bc_hparams, **cartpole_logs_hp}, bc_steps),
        ("ppo", dict(ppo_hparams), ppo_steps),
    ]
    cartpole_specs = []
    for algo, hparams, budget in learners:
        every = eval_every(budget, evals)
        cartpole_specs += grid(
            algo, CARTPOLE, seeds, hparams=hparams, steps=budget, eval_every=every, **cartpole
        )
    return Experiment(lake_data, cartpole_data, labels, lake_specs, cartpole_specs)


# ---------------------------------------------------------------------------------- analysis
def label_logs(frame: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with a ``logs`` column: the label of the run's log, ``"online"`` without."""
    return frame.assign(logs=frame["hp.dataset"].map(labels).fillna(ONLINE))


def split_envs(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(FrozenLake rows, CartPole rows)`` of ``frame``."""
    return frame[frame["env"] == LAKE], frame[frame["env"] == CARTPOLE]


def logs_table(experiment: Experiment) -> pd.DataFrame:
    """One row per log: its env, size in transitions and episodes, the demonstrator's own
    return and, on FrozenLake, how many (state, action) pairs it shows."""
    data = [*experiment.lake_data.items(), *experiment.cartpole_data.items()]
    return pd.DataFrame(
        [
            {
                "env": log.env,
                "logs": label,
                "transitions": len(log),
                "episodes": len(log.episode_returns),
                "demonstrator_return": log.mean_return,
                "state_action_pairs": _pairs(log) if log.env == LAKE else None,
            }
            for label, log in data
        ]
    )


def _pairs(log: Dataset) -> int:
    return len(set(zip(log.observations.tolist(), log.actions.tolist(), strict=True)))


def final_table(
    frame: pd.DataFrame, labels: Mapping[str, str], demo: Mapping[str, float], *, reps: int
) -> pd.DataFrame:
    """Final ``eval_return`` per log and learner (``stats.summary`` by ``hp.dataset`` and
    ``algo``), with ``logs`` first and the demonstrator's own return (``demonstrator``)."""
    table = stats.summary(frame, by=["hp.dataset", "algo"], reps=reps)
    table.insert(0, "logs", table["hp.dataset"].map(labels).fillna(ONLINE))
    table["demonstrator"] = table["logs"].map(demo)
    return table


def regret_table(lake_frame: pd.DataFrame, labels: Mapping[str, str], *, reps: int) -> pd.DataFrame:
    """Final exact regret of offline Q-learning per FrozenLake log."""
    rows = lake_frame[lake_frame["algo"] == "q_learning"]
    table = stats.summary(rows, "policy_regret", by="hp.dataset", reps=reps)
    table.insert(0, "logs", table["hp.dataset"].map(labels))
    return table


def demonstrator_regret(gamma: float) -> pd.Series:
    """Exact regret V*(s0) - V^pi(s0) at ``gamma`` of each FrozenLake demonstrator without
    random actions (``"<name> alone"``)."""
    mdp = tabular_mdp(LAKE)
    v_star = value_iteration(mdp, gamma).v[0]
    return pd.Series(
        {
            f"{name} alone": v_star - policy_evaluation(mdp, policy, gamma)[0]
            for name, policy in lake_demonstrators(gamma).items()
        },
        name="exact regret",
    ).clip(lower=0.0)


# ----------------------------------------------------------------------------------- figures
def final_figure(
    summary: pd.DataFrame, xlabel: str, *, loose_edges: bool = False
) -> tuple[Figure, Axes]:
    """Each (log, learner)'s final IQM with its 95% CI (bars) and the demonstrator's own
    return in its logs (black x), from :func:`final_table`.

    Args:
        loose_edges: Keep a margin beyond the data, so that zero-width intervals at the edge
            (e.g. at CartPole's maximum of 500) stay in view.
    """
    fig, ax = plots.interval_estimates(summary[FINAL_COLUMNS[:-1]], "iqm")
    ax.scatter(
        summary["demonstrator"],
        range(len(summary)),
        marker="x",
        s=25,
        color="black",
        zorder=3,
    )
    ax.set_xlabel(xlabel)
    if loose_edges:
        ax.use_sticky_edges = False
        ax.margins(x=0.05)
    return fig, ax


def cartpole_curves_figure(cartpole_frame: pd.DataFrame, *, reps: int) -> tuple[Figure, Any]:
    """One panel per log: eval return of the offline learners against gradient steps (log x),
    IQM over seeds with 95% CIs."""
    offline = cartpole_frame[cartpole_frame["algo"] != "ppo"].sort_values("logs", kind="stable")
    steps = sorted(set(offline.loc[offline["metric"] == "eval_return", "step"]) - {0})
    fig, axes = plots.facets(plots.learning_curves, offline, col="logs", steps=steps, reps=reps)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("Gradient steps")
    return fig, axes


# ---------------------------------------------------------------------------------- headline
def headline(
    experiment: Experiment,
    lake_summary: pd.DataFrame,
    cartpole_summary: pd.DataFrame,
    lake_regret: pd.DataFrame,
    *,
    epsilons: Sequence[float],
    cartpole_logs: Sequence[Sequence[Any]],
    ppo_steps: int,
    runs: int,
) -> dict[str, Any]:
    """The notebook's headline numbers and the evidence claims of the summary table.

    The evidence quotes the logs with ``epsilons[1]`` (mixed) and ``epsilons[0]`` (the
    demonstrator alone), and the last of ``cartpole_logs`` (the novice's).
    """
    lake_rows = lake_summary.set_index(["logs", "algo"])
    cartpole_rows = cartpole_summary.set_index(["logs", "algo"])
    lake_iqm, cartpole_iqm = lake_rows["iqm"], cartpole_rows["iqm"]
    lake_demo, cartpole_demo = experiment.lake_demo, experiment.cartpole_demo
    mixed, alone = f"eps={epsilons[1]}", f"eps={epsilons[0]}"
    novice = f"novice eps={cartpole_logs[-1][1]}"
    naive_mixed, expert_alone = f"naive {mixed}", f"expert {alone}"

    def lake(logs: str, algo: str) -> str:
        return iqm_ci(lake_rows.loc[(logs, algo)])

    def cartpole(logs: str, algo: str) -> str:
        return iqm_ci(cartpole_rows.loc[(logs, algo)])

    ci = "(IQM, 95% CI)"
    evidence = {
        "Q-learning": [
            f"FrozenLake, offline from a naive demonstrator's logs with {mixed}: success "
            f"{lake(naive_mixed, 'q_learning')} vs BC {lake(naive_mixed, 'bc')} {ci}",
            f"CartPole, offline DQN from {novice} logs: return {cartpole(novice, 'dqn')} vs "
            f"the novice's own {number(cartpole_demo[novice])} {ci}",
            f"CartPole, offline DQN from expert-only logs (no other action covered): return "
            f"{cartpole(expert_alone, 'dqn')} {ci}",
        ],
        "Imitation (BC)": [
            f"FrozenLake, BC success: {lake('expert ' + mixed, 'bc')} from the expert's logs "
            f"with {mixed} vs {lake(naive_mixed, 'bc')} from the naive one's {ci}",
            f"CartPole, BC return: {cartpole(expert_alone, 'bc')} from expert logs vs "
            f"{cartpole(novice, 'bc')} from {novice} logs {ci}",
        ],
        "Policy gradient (PPO)": [
            f"CartPole, online PPO after {ppo_steps} env steps (as many as each log holds): "
            f"return {cartpole(ONLINE, 'ppo')} {ci}",
        ],
    }
    return {
        "frozenlake_success_iqm": {f"{logs}/{algo}": v for (logs, algo), v in lake_iqm.items()},
        "frozenlake_demonstrator_return": lake_demo,
        "frozenlake_q_learning_regret_iqm": dict(
            zip(lake_regret["logs"], lake_regret["iqm"], strict=True)
        ),
        "cartpole_return_iqm": {f"{logs}/{algo}": v for (logs, algo), v in cartpole_iqm.items()},
        "cartpole_demonstrator_return": cartpole_demo,
        "runs": runs,
        "evidence": evidence,
    }
