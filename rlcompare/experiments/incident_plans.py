"""Corrective plans step by step: what each policy does in a typical incident on
``rlcompare/SelfHealing-v0``, computed exactly on the model (no sampling).

A plan follows one incident, an observed symptom state at the onset, through the policy's
deterministic chain. "Recovered" means the symptoms are back to normal (``model.impaired``
false: error low and latency normal), the definition behind the env's ``time_to_recovery``.
Two distributions are propagated:

- the *open* mass: the paths that have not yet recovered (normal symptoms absorb), which gives
  the chance of recovery by each step, the symptoms the on-call most likely still sees, the
  policy's action there and the most likely hidden fault behind the open incident;
- the *full* distribution (recovered paths run on, faults may come back): the expected
  cumulative cost, severity plus action costs (minus the reward), undiscounted.

In this model the cause is attributed from the current symptoms alone (``posterior(s)``, see
``rlcompare.envs.selfheal_model``), so given the symptoms so far the fault belief is the
posterior mixed over the open states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rlcompare.envs.selfheal import ACTIONS, FAULTS, explain_state
from rlcompare.envs.selfheal_model import (
    ERROR_LEVELS,
    LATENCY_LEVELS,
    MEMORY_LEVELS,
    SelfHealingModel,
    build_model,
    decode_state,
)
from rlcompare.errors import SpecError
from rlcompare.experiments.corrective_policies import checked_policies, model_params

__all__ = ["PLAN_COLUMNS", "incident_plans", "plan_table", "short_symptoms", "typical_incidents"]

PLAN_COLUMNS = [
    "incident",
    "policy",
    "step",
    "symptoms",
    "action",
    "likely_fault",
    "p_fault",
    "p_recovered",
    "expected_cost",
]


def _fault_index(fault: str) -> int:
    if fault not in FAULTS[1:]:
        raise SpecError(f"fault {fault!r} is invalid; valid: {', '.join(FAULTS[1:])}")
    return FAULTS.index(fault)


def typical_incidents(faults: Sequence[str], **env_kwargs: Any) -> pd.DataFrame:
    """For each fault kind, the onset state most likely under the initial distribution among
    the impaired states whose most likely cause is that kind.

    Returns:
        One row per kind, indexed by ``fault``: ``state``, ``symptoms``, ``p_initial`` (its
        probability at the onset of an incident) and ``p_fault`` (posterior of the kind).
    """
    model = build_model(model_params(env_kwargs))
    likely = np.argmax(model.posterior, axis=1)
    records = []
    for fault in faults:
        f = _fault_index(fault)
        candidates = np.flatnonzero((likely == f) & model.impaired & (model.initial > 0))
        if candidates.size == 0:
            raise SpecError(f"no onset state points to fault {fault!r} under {env_kwargs}")
        state = int(candidates[np.argmax(model.initial[candidates])])
        records.append(
            {
                "fault": fault,
                "state": state,
                "symptoms": explain_state(state),
                "p_initial": float(model.initial[state]),
                "p_fault": float(model.posterior[state, f]),
            }
        )
    return pd.DataFrame.from_records(records).set_index("fault")


def short_symptoms(state: int) -> str:
    """Symptoms of a state in a few words, e.g. ``"err high, lat slow, mem normal, deploy,
    acted"`` (flags only when set)."""
    error, latency, memory, deploy, acted = decode_state(state)
    words = [
        f"err {ERROR_LEVELS[error]}",
        f"lat {LATENCY_LEVELS[latency]}",
        f"mem {MEMORY_LEVELS[memory]}",
    ]
    return ", ".join(words + ["deploy"] * deploy + ["acted"] * acted)


def _plan(model: SelfHealingModel, state: int, actions: np.ndarray, steps: int) -> list[dict]:
    """Rows of one policy's plan from ``state`` (see the module docstring)."""
    chain = model.P[np.arange(len(actions)), actions]
    cost = -model.R[np.arange(len(actions)), actions]
    full = np.eye(len(actions))[state]
    open_ = full * model.impaired
    total, rows = 0.0, []
    for step in range(1, steps + 1):
        mass = open_.sum()
        if mass <= 1e-12:  # every path has recovered: the plan is over
            break
        here = int(np.argmax(open_))
        belief = open_ @ model.posterior / mass
        fault = int(np.argmax(belief))
        total += float(full @ cost)
        full, open_ = full @ chain, (open_ @ chain) * model.impaired
        rows.append(
            {
                "step": step,
                "symptoms": short_symptoms(here),
                "action": ACTIONS[actions[here]],
                "likely_fault": FAULTS[fault],
                "p_fault": float(belief[fault]),
                "p_recovered": float(1.0 - open_.sum()),
                "expected_cost": total,
            }
        )
    return rows


def incident_plans(
    policies: Mapping[str, np.ndarray],
    incidents: Mapping[str, int],
    steps: int = 6,
    **env_kwargs: Any,
) -> pd.DataFrame:
    """Each policy's corrective plan in each incident, step by step, exact on the model.

    Args:
        policies: ``{name: (S,) actions}`` (deterministic policies).
        incidents: ``{label: onset state}``; each state must be impaired.
        steps: Steps of each plan (a plan stops early once every path has recovered).
        **env_kwargs: The env's settings (``fault_rate``): the model the plans run on.

    Returns:
        The tidy table of :data:`PLAN_COLUMNS`, one row per incident, policy and step. At
        step t: ``symptoms``, the most likely state of the incidents still open at t, and
        ``action``, the policy's action there; ``likely_fault`` and ``p_fault``, the most
        likely hidden fault of the open incidents; ``p_recovered``, the chance the symptoms
        have been normal at least once after the t-th action; ``expected_cost``, the
        expected cost of steps 1..t.
    """
    policies = checked_policies(policies)
    if steps < 1:
        raise SpecError(f"steps = {steps!r} is invalid; valid: an int >= 1")
    model = build_model(model_params(env_kwargs))
    records = []
    for label, state in incidents.items():
        state = int(state)
        if not 0 <= state < len(model.impaired) or not model.impaired[state]:
            raise SpecError(
                f"incident {label!r} starts in state {state!r}; valid: an impaired state "
                f"(error above low or latency above normal) in 0..{len(model.impaired) - 1}"
            )
        for name, actions in policies.items():
            rows = _plan(model, state, actions, steps)
            records += [{"incident": label, "policy": name, **row} for row in rows]
    return pd.DataFrame.from_records(records, columns=PLAN_COLUMNS)


def plan_table(plans: pd.DataFrame, incident: str | None = None) -> pd.DataFrame:
    """The plans as runbook pages: rows ``(incident, policy, step)`` in the plans' order, or
    ``(policy, step)`` of one ``incident``."""
    if incident is None:
        return plans.set_index(["incident", "policy", "step"])
    if incident not in set(plans["incident"]):
        valid = ", ".join(plans["incident"].unique())
        raise SpecError(f"incident {incident!r} is not in the plans; valid: {valid}")
    return (
        plans[plans["incident"] == incident].drop(columns="incident").set_index(["policy", "step"])
    )
