"""Policies of corrective action on ``rlcompare/SelfHealing-v0``: fixed policies (the
runbook, a planned optimum) scored exactly and by the eval protocol, runbook logs for offline
learning, and per-state tables of which action each policy takes.

Every policy here is an ``(S,)`` array of action indices over the env's discrete states (the
symptom tuples). Exact values come from the model (``rlcompare.envs.planning``); simulated
scores come from the one evaluation protocol
(:meth:`rlcompare.runner.context.RunContext.evaluate`), so a fixed policy with seed ``k`` faces
the very eval episodes a learner with seed ``k`` faces.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlcompare.envs.datasets import Dataset, as_policy, collect_demonstrations
from rlcompare.envs.model import TabularMDP, tabular_mdp
from rlcompare.envs.planning import policy_evaluation, value_iteration
from rlcompare.envs.selfheal import (
    ACTIONS,
    FAULTS,
    decode_features,
    explain_state,
    runbook_policy,
)
from rlcompare.envs.selfheal_model import N_STATES, build_model, decode_state
from rlcompare.envs.selfheal_model import ModelParams as _ModelParams
from rlcompare.errors import SpecError
from rlcompare.runner.context import RunContext
from rlcompare.spec.runspec import grid

ENV_ID = "rlcompare/SelfHealing-v0"
# The registered step limit of the env: the horizon of "share of time" in a state.
HORIZON = 100
# Metrics of the cost of running the eval protocol, meaningless for a policy that never trains.
_COST_METRICS = ("wall_time_s", "env_steps_per_s")

__all__ = [
    "ENV_ID",
    "action_table",
    "agreement",
    "checked_policies",
    "clean_observation",
    "evaluate_fixed",
    "log_coverage",
    "model_params",
    "policy_actions",
    "policy_values",
    "regret_by_fault",
    "runbook_actions",
    "runbook_logs",
]


# ------------------------------------------------------------------------------ policies
def runbook_actions() -> np.ndarray:
    """(S,) the runbook's action in every discrete state (``runbook_policy``)."""
    return np.array([runbook_policy(s) for s in range(N_STATES)], dtype=np.int64)


def clean_observation(state: int, observation: str = "discrete") -> Any:
    """The observation of ``state`` without noise: its index, or its features vector.

    In the features form the time since the last corrective action is 0 after an action and
    saturated (1) otherwise, the two cases the discrete state tells apart.
    """
    if observation == "discrete":
        return int(state)
    if observation != "features":
        raise SpecError(f"observation = {observation!r} is invalid; valid: discrete, features")
    error, latency, memory, deploy, acted = decode_state(state)
    time = 0.0 if acted else 1.0
    return np.array([error / 2, latency / 2, memory / 2, deploy, time], dtype=np.float32)


def policy_actions(policy: Any, observation: str = "discrete") -> np.ndarray:
    """(S,) the greedy action of ``policy`` in every discrete state.

    Args:
        policy: A trained agent, a RunResult, an SB3 model or a callable ``obs -> action``.
        observation: The form the policy reads; features policies see the noiseless features
            of each state (:func:`clean_observation`).
    """
    act = as_policy(policy)
    return np.array(
        [int(act(clean_observation(s, observation))) for s in range(N_STATES)], dtype=np.int64
    )


def _sweep(env_kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the list values of ``env_kwargs`` (as ``rlcompare.grid``)."""
    options = [v if isinstance(v, list) else [v] for v in env_kwargs.values()]
    return [dict(zip(env_kwargs, combo, strict=True)) for combo in itertools.product(*options)]


def _model(env_kwargs: Mapping[str, Any]) -> TabularMDP:
    kwargs = {k: v for k, v in env_kwargs.items() if k not in ("observation", "feature_noise")}
    return tabular_mdp(ENV_ID, **kwargs)


def checked_policies(policies: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``policies`` as arrays, each checked to be one action per SelfHealing state.

    Raises:
        SpecError: naming the policy whose shape or actions are invalid.
    """
    checked = {}
    for name, actions in policies.items():
        actions = np.asarray(actions)
        if actions.shape != (N_STATES,) or not np.isin(actions, range(len(ACTIONS))).all():
            raise SpecError(
                f"policy {name!r} has shape {actions.shape}; valid: ({N_STATES},) action "
                f"indices in 0..{len(ACTIONS) - 1}"
            )
        checked[str(name)] = actions.astype(np.int64)
    return checked


# ----------------------------------------------------------------------------- exact values
def policy_values(
    policies: Mapping[str, np.ndarray], gamma: float, **env_kwargs: Any
) -> pd.DataFrame:
    """Exact discounted value at the start of an incident, and the regret, of each policy.

    List values in ``env_kwargs`` are swept (``fault_rate=[0.05, 0.1]``): each setting has its
    own model and its own optimum, and the policies are held fixed across settings.

    Returns:
        One row per setting and policy, plus an ``optimal`` row per setting: the swept kwargs,
        ``policy``, ``value`` (E over initial states of V^pi) and ``regret`` (V* - V^pi, >= 0).
    """
    policies = checked_policies(policies)
    records = []
    for kwargs in _sweep(env_kwargs):
        mdp = _model(kwargs)
        solution = value_iteration(mdp, gamma)
        optimum = float(mdp.initial @ solution.v)
        records.append({**kwargs, "policy": "optimal", "value": optimum, "regret": 0.0})
        for name, actions in policies.items():
            value = float(mdp.initial @ policy_evaluation(mdp, actions, gamma))
            regret = max(optimum - value, 0.0)
            records.append({**kwargs, "policy": name, "value": value, "regret": regret})
    return pd.DataFrame.from_records(records)


def regret_by_fault(
    policies: Mapping[str, np.ndarray],
    gamma: float,
    faults: Sequence[str] = FAULTS[1:],
    **env_kwargs: Any,
) -> pd.DataFrame:
    """Exact regret of each policy on the full fault mix and on each fault kind alone.

    A kind's column scores the policy in the model where only that kind occurs
    (``only_fault``), against that model's own optimum; a policy built for the full mix, the
    optimum of the full mix included, has some regret there, since it does not know which
    kind it faces.

    Returns:
        One row per policy (index ``policy``): ``all`` (the full mix), then one column per
        kind of ``faults``.
    """
    policies = checked_policies(policies)
    fixed = sorted({"only_fault", "withheld_fault"} & set(env_kwargs))
    if fixed:
        raise SpecError(f"env kwargs {fixed} are set; valid: none, each column sets its own mix")
    unknown = [f for f in faults if f not in FAULTS[1:]]
    if unknown:
        raise SpecError(f"fault kinds {unknown} are invalid; valid: {', '.join(FAULTS[1:])}")
    columns = {}
    for column, only in [("all", ""), *((f, f) for f in faults)]:
        mdp = _model({**env_kwargs, "only_fault": only})
        optimum = float(mdp.initial @ value_iteration(mdp, gamma).v)
        columns[column] = {
            name: max(optimum - float(mdp.initial @ policy_evaluation(mdp, actions, gamma)), 0.0)
            for name, actions in policies.items()
        }
    return pd.DataFrame(columns).rename_axis("policy")


# ------------------------------------------------------------------------- simulated scores
def evaluate_fixed(
    policies: Mapping[str, np.ndarray],
    seeds: int | Iterable[int],
    *,
    gamma: float,
    env_kwargs: Mapping[str, Any] | None = None,
    eval_episodes: int = 10,
    experiment: str = "default",
) -> pd.DataFrame:
    """Tidy rows of fixed policies scored by the evaluation protocol of every run.

    Each (policy, seed, env setting) is one "run" evaluated once at step 0: ``eval_return``,
    the env's domain metrics (``time_to_recovery``, ``impaired_share``, ``action_cost``,
    ``incidents``) and the exact ``policy_regret`` at ``gamma``. List values in
    ``env_kwargs`` are swept. The eval episodes of seed ``k`` are those of every learner with
    seed ``k`` on the same env setting (common random numbers).

    Returns:
        The tidy table (``algo`` is the policy's name, ``status`` is ``ok``).
    """
    policies = checked_policies(policies)
    specs = grid(
        "random",
        ENV_ID,
        seeds,
        env_kwargs=dict(env_kwargs or {}),
        steps=1,
        eval_episodes=eval_episodes,
        experiment=experiment,
    )
    frames = []
    optima: dict[str, float] = {}
    for spec in specs:
        mdp = _model(spec.env_kwargs)
        key = repr(sorted(spec.env_kwargs.items()))
        if key not in optima:
            optima[key] = float(mdp.initial @ value_iteration(mdp, gamma).v)
        optimum = optima[key]
        observation = spec.env_kwargs.get("observation", "discrete")
        for name, actions in policies.items():
            value = float(mdp.initial @ policy_evaluation(mdp, actions, gamma))
            act = actions.__getitem__ if observation == "discrete" else _features_policy(actions)
            ctx = RunContext(spec)
            try:
                ctx.evaluate(0, act, {"policy_regret": max(optimum - value, 0.0)})
                frame = ctx.frame()
            finally:
                ctx.close()
            frame = frame[~frame["metric"].isin(_COST_METRICS)]
            frames.append(
                frame.assign(
                    algo=name,
                    run_id=spec.run_id.replace("__random__", f"__{name}__", 1),
                    status="ok",
                )
            )
    return pd.concat(frames, ignore_index=True)


def _features_policy(actions: np.ndarray) -> Any:
    return lambda obs: int(actions[decode_features(obs)])


# ------------------------------------------------------------------------------ state tables
def _visits(mdp: TabularMDP, actions: np.ndarray, horizon: int) -> np.ndarray:
    """(S,) share of the first ``horizon`` steps spent in each state under ``actions``."""
    chain = mdp.transitions[np.arange(N_STATES), actions]
    dist, total = mdp.initial.copy(), np.zeros(N_STATES)
    for _ in range(horizon):
        total += dist
        dist = dist @ chain
    return total / horizon


def action_table(
    policies: Mapping[str, np.ndarray],
    gamma: float,
    top: int = 12,
    impaired_only: bool = True,
    horizon: int = HORIZON,
    **env_kwargs: Any,
) -> pd.DataFrame:
    """In each of the ``top`` most visited observed states: what every policy does.

    States are ranked by the share of time the optimal policy spends in them over an episode
    of ``horizon`` steps (so the table covers what an on-call engineer sees most); with
    ``impaired_only`` the healthy-looking states, where every sensible policy waits, are left
    out.

    Returns:
        One row per state: ``state`` (index), ``symptoms`` (readable), ``likely_cause`` (the
        most probable hidden fault with its probability), ``time_share``, ``optimal`` and one
        column per policy (action names), then ``<policy>_cost`` per policy: Q*(s, optimal) -
        Q*(s, its action), what its choice loses in discounted cost (0 when it agrees).
    """
    policies = checked_policies(policies)
    mdp = _model(env_kwargs)
    solution = value_iteration(mdp, gamma)
    posterior = build_model(model_params(env_kwargs)).posterior
    visits = _visits(mdp, solution.policy, horizon)
    ranked = np.argsort(-visits, kind="stable")
    if impaired_only:
        ranked = ranked[build_model(model_params(env_kwargs)).impaired[ranked]]
    states = ranked[:top]
    records = []
    for s in states:
        cause = int(np.argmax(posterior[s]))
        record = {
            "state": int(s),
            "symptoms": explain_state(int(s)),
            "likely_cause": f"{FAULTS[cause]} ({posterior[s, cause]:.0%})",
            "time_share": float(visits[s]),
            "optimal": ACTIONS[solution.policy[s]],
        }
        record.update({name: ACTIONS[actions[s]] for name, actions in policies.items()})
        record.update(
            {
                # Below solver precision an agreeing action costs exactly nothing.
                f"{name}_cost": _nonzero(solution.v[s] - solution.q[s, actions[s]])
                for name, actions in policies.items()
            }
        )
        records.append(record)
    return pd.DataFrame.from_records(records)


def _nonzero(gap: float) -> float:
    return float(gap) if gap > 1e-6 else 0.0


def agreement(
    policies: Mapping[str, np.ndarray],
    gamma: float,
    horizon: int = HORIZON,
    **env_kwargs: Any,
) -> pd.Series:
    """Share of its own time in which each policy takes an optimal action.

    Weighted by the policy's own state visits over ``horizon`` steps; an action counts as
    optimal when its Q* is within 1e-6 of the best.
    """
    policies = checked_policies(policies)
    mdp = _model(env_kwargs)
    solution = value_iteration(mdp, gamma)
    best = solution.q >= solution.q.max(axis=1, keepdims=True) - 1e-6
    return pd.Series(
        {
            name: float(_visits(mdp, actions, horizon) @ best[np.arange(N_STATES), actions])
            for name, actions in policies.items()
        },
        name="agreement",
    )


def model_params(env_kwargs: Mapping[str, Any]) -> _ModelParams:
    """The SelfHealing model's parameters that ``env_kwargs`` set (the rest at defaults)."""
    names = (
        "fault_rate",
        "compound_rate",
        "deploy_rate",
        "difficulty",
        "withheld_fault",
        "only_fault",
    )
    return _ModelParams(**{k: v for k, v in env_kwargs.items() if k in names})


# -------------------------------------------------------------------------------------- logs
def runbook_logs(
    directory: str | os.PathLike[str],
    *,
    episodes: int,
    epsilon: float,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    forms: Iterable[str] = ("discrete", "features"),
) -> dict[str, str]:
    """Runbook logs in each observation form of ``forms``, saved once under names that carry
    every setting.

    The two logs share their seed, hence the hidden faults and the random deviations (a share
    ``epsilon`` of actions is replaced by a uniformly random one, as when the on-call departs
    from the runbook); in the features form the runbook reads noisy symptoms, so a few of its
    actions differ. A file already there is reused: the same settings give the same data.

    Returns:
        ``{form: path}``: absolute paths of ``Dataset.save`` files.
    """
    kwargs = dict(env_kwargs or {})
    kwargs.pop("observation", None)
    tag = "_".join(f"{k}{v}" for k, v in sorted(kwargs.items()))
    paths = {}
    for form in forms:
        if form not in ("discrete", "features"):
            raise SpecError(f"form {form!r} is invalid; valid: discrete, features")
        name = f"runbook_{form}_eps{epsilon}_n{episodes}_seed{seed}{'_' + tag if tag else ''}.npz"
        path = Path(directory) / name
        if not path.is_file():
            collect_demonstrations(
                runbook_policy,
                ENV_ID,
                episodes=episodes,
                seed=seed,
                env_kwargs={**kwargs, "observation": form},
                epsilon=epsilon,
                source=f"runbook, epsilon={epsilon}",
            ).save(path)
        # Absolute: the path is part of the runs' identity, wherever the notebook runs from.
        paths[form] = str(path.resolve())
    return paths


def log_coverage(logs: Mapping[str, str], gamma: float, **env_kwargs: Any) -> pd.DataFrame:
    """What each log covers, and how well its own counts estimate the failure model.

    Args:
        logs: ``{label: path}`` of discrete-form ``Dataset.save`` files.
        gamma: Discount of the optimal policy whose coverage is measured.
        **env_kwargs: The env's settings (``fault_rate``): the true model and the optimum.

    Returns:
        One row per log, indexed by its label: ``transitions``; ``pairs``, the (state,
        action) pairs logged at least once; ``optimum_covered``, the share of the optimal
        policy's own time (over :data:`HORIZON` steps) spent in states where its action is
        logged; ``model_error``, the largest total-variation distance over logged pairs
        between the logged next-state frequencies and the true distribution (what
        certainty equivalence learns from many draws, so near its own ``model_error``);
        ``model_error_weighted``, that distance averaged over the logged transitions.
    """
    mdp = _model(env_kwargs)
    optimal = value_iteration(mdp, gamma).policy
    records = []
    for label, path in logs.items():
        data = Dataset.load(path)
        s = np.asarray(data.observations, dtype=np.int64).reshape(-1)
        a = np.asarray(data.actions, dtype=np.int64).reshape(-1)
        s_next = np.asarray(data.next_observations, dtype=np.int64).reshape(-1)
        counts = np.zeros(mdp.transitions.shape)
        np.add.at(counts, (s, a, s_next), 1.0)
        visits = counts.sum(axis=2)
        seen = visits > 0
        frequencies = counts / np.maximum(visits, 1.0)[..., None]
        distance = 0.5 * np.abs(frequencies - mdp.transitions).sum(axis=2)
        time = _visits(mdp, optimal, HORIZON)
        records.append(
            {
                "logs": label,
                "transitions": len(data),
                "pairs": int(seen.sum()),
                "optimum_covered": float(time @ seen[np.arange(N_STATES), optimal]),
                "model_error": float(distance[seen].max()),
                "model_error_weighted": float((distance * visits).sum() / visits.sum()),
            }
        )
    return pd.DataFrame.from_records(records).set_index("logs")
