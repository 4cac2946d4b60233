"""Greedy evaluation inside the compiled engine, with the rows of ``RunContext.evaluate``.

``RunContext.evaluate`` steps the gymnasium eval env in Python, and on FrozenLake that costs
more than all of training in the engine. Here the engine replays the eval env's draws (the
seeded reset at the first episode of every evaluation, one uniform per step, one normal for
noisy rewards) and the greedy policy's tie draws (``eval_ties``), so the recorded rows are
the very numbers the gymnasium path gives. What the engine cannot know in general (what an
env counts as success, its domain metrics, its wrappers) is read off the eval env once per
(env, kwargs) into an :class:`EvalPlan`; an env outside what the plan understands is
evaluated through gymnasium as before.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.toy_text import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

from rlcompare.algos.tabular import kernels
from rlcompare.algos.tabular.agent import TabularAgent
from rlcompare.envs.make import make_env, success_fn
from rlcompare.envs.model import TabularMDP
from rlcompare.envs.selfheal import ACTION_COSTS, SelfHealingEnv
from rlcompare.envs.textbook import TabularEnv
from rlcompare.runner.context import RunContext
from rlcompare.runner.protocol import EvalSchedule, Policy
from rlcompare.spec.runspec import RunSpec

# gymnasium's toy_text envs whose reset and step are categorical draws from their ``P``.
_TOY_TEXT = (FrozenLakeEnv, CliffWalkingEnv, TaxiEnv)
# Wrappers of ``gym.make`` that change no observation, reward or draw.
_NEUTRAL_WRAPPERS = (TimeLimit, OrderEnforcing, PassiveEnvChecker)

# (states, actions) of one episode -> the step infos its env's ``episode_metrics`` reads.
InfoBuilder = Callable[[np.ndarray, np.ndarray], list[dict[str, Any]]]


@dataclass(frozen=True)
class EvalPlan:
    """What the engine needs to evaluate like the eval env of one (env, kwargs).

    Attributes:
        limit: The eval env's time limit (``max_episode_steps``, or EVAL_STEP_CAP for envs
            without one); None when it has none.
        engine: Whether the engine can replay this env's evaluations (else: why not).
        reason: Why not, when it cannot.
        success: (S x A x K) bool, outcomes that reach the goal; None: the env reports no
            success (no ``success_rate`` row).
        success_any: Success is "reached the goal at some step" (our envs' ``is_success``);
            otherwise "the last transition terminated at the goal" (toy_text).
        episode_metrics: The env's per-episode domain metrics (None: none).
        infos: Builds the step infos ``episode_metrics`` reads from states and actions.
    """

    limit: int | None
    engine: bool
    reason: str = ""
    success: np.ndarray | None = None
    success_any: bool = False
    episode_metrics: Callable[[list[dict[str, Any]]], dict[str, float]] | None = None
    infos: InfoBuilder | None = None


def _time_limit(env: Any) -> tuple[int | None, bool]:
    """(the TimeLimit's steps or None, whether every wrapper is neutral)."""
    limit, neutral = None, True
    while isinstance(env, gym.Wrapper):
        if isinstance(env, TimeLimit) and limit is None:
            limit = int(env._max_episode_steps)
        neutral = neutral and isinstance(env, _NEUTRAL_WRAPPERS)
        env = env.env
    return limit, neutral


def _outcome_table(mdp: TabularMDP, test: Callable[[int, int, int, float], Any]) -> np.ndarray:
    """(S x A x K) values of ``test(s, a, s_next, reward)`` on every outcome (padding too)."""
    table = np.zeros(mdp.outcome_next.shape, dtype=object)
    for s, a, k in np.ndindex(table.shape):
        table[s, a, k] = test(s, a, int(mdp.outcome_next[s, a, k]), mdp.outcome_reward[s, a, k])
    return table


def _selfheal_infos(env: SelfHealingEnv) -> InfoBuilder:
    model = env.model

    def infos(states: np.ndarray, actions: np.ndarray) -> list[dict[str, Any]]:
        # The entries of SelfHealingEnv.step's info that depend on (state, action) alone.
        return [
            {
                "impaired": bool(model.impaired[s]),
                "action_cost": float(ACTION_COSTS[a]),
                "severity": float(model.severity[s]),
                "state": int(s),
            }
            for s, a in zip(states.tolist(), actions.tolist(), strict=True)
        ]

    return infos


def _plan(env_id: str, env: Any, mdp: TabularMDP) -> EvalPlan:
    limit, neutral = _time_limit(env)
    unwrapped = env.unwrapped
    kind = type(unwrapped)
    if limit is None or limit < 1:
        return EvalPlan(limit, False, "the eval env has no time limit")
    if not neutral:
        return EvalPlan(limit, False, "the eval env has wrappers the engine does not replay")
    goal = success_fn(env_id)
    if kind in _TOY_TEXT:
        if goal is None:
            return EvalPlan(limit, True)
        # toy_text's infos carry no is_success: a goal test sees (terminated, reward) only.
        ended = _outcome_table(mdp, lambda s, a, n, r: goal(True, float(r), {}))
        cut = _outcome_table(mdp, lambda s, a, n, r: goal(False, float(r), {}))
        if all(value is None for value in ended.flat) and all(v is None for v in cut.flat):
            return EvalPlan(limit, True)
        if any(value is not False for value in cut.flat) or any(
            value is None for value in ended.flat
        ):
            return EvalPlan(limit, False, "its goal test is not one the engine replays")
        return EvalPlan(limit, True, success=ended.astype(bool))
    if issubclass(kind, TabularEnv) and kind.step is TabularEnv.step:
        if kind.reset is not TabularEnv.reset or goal is None:
            return EvalPlan(limit, False, "its reset or goal test is its own")
        # TabularEnv reports is_success "so far": the goal test reads exactly that.
        if (
            goal(False, 0.0, {"is_success": True}) is not True
            or goal(False, 0.0, {"is_success": False}) is not False
        ):
            return EvalPlan(limit, False, "its goal test is not is_success")
        reached = _outcome_table(mdp, lambda s, a, n, r: unwrapped.is_success(s, a, n))
        return EvalPlan(limit, True, success=reached.astype(bool), success_any=True)
    if (
        kind is SelfHealingEnv
        and unwrapped.observation_form == "discrete"
        and goal is None
        and callable(getattr(unwrapped, "episode_metrics", None))
    ):
        return EvalPlan(
            limit,
            True,
            episode_metrics=unwrapped.episode_metrics,
            infos=_selfheal_infos(unwrapped),
        )
    return EvalPlan(limit, False, f"the engine does not know how {kind.__name__} steps")


@functools.lru_cache(maxsize=32)
def _cached_plan(env_id: str, kwargs_json: str, mdp: TabularMDP) -> EvalPlan:
    env = make_env(env_id, json.loads(kwargs_json), eval=True)
    try:
        return _plan(env_id, env, mdp)
    finally:
        env.close()


def eval_plan(env_id: str, env_kwargs: Mapping[str, Any], mdp: TabularMDP) -> EvalPlan:
    """The EvalPlan of ``env_id`` with ``env_kwargs`` (cached)."""
    kwargs = json.dumps(dict(env_kwargs), sort_keys=True, default=str)
    return _cached_plan(env_id, kwargs, mdp)


class EngineEvaluation:
    """The run as the protocol sees it (``rlcompare.runner.protocol.Run``), with its
    evaluations done by the engine: the rows of ``RunContext.evaluate``, bit for bit.

    Args:
        ctx: The run.
        agent: The learner (its greedy policy and ``eval_ties`` stream).
        mdp: The env's model.
        plan: The env's EvalPlan (``plan.engine`` must be True).
    """

    def __init__(
        self, ctx: RunContext, agent: TabularAgent, mdp: TabularMDP, plan: EvalPlan
    ) -> None:
        if not plan.engine or plan.limit is None:
            raise ValueError(f"the engine cannot evaluate on {ctx.spec.env}: {plan.reason}")
        self.ctx = ctx
        self.spec: RunSpec = ctx.spec
        self.schedule: EvalSchedule = ctx.schedule
        self.agent = agent
        self.sim = mdp.simulation
        self.plan = plan
        self._limit = plan.limit
        # The generator gymnasium's reset(seed=...) gives the eval env, restored to its first
        # state at every evaluation (cheaper than building it again).
        self._env_rng = np.random.default_rng(ctx.seeds.int_seed("eval"))
        self._env_start = self._env_rng.bit_generator.state
        # Outcome tables of envs without a goal: never read (success_any False, all False).
        self._success = (
            plan.success if plan.success is not None else np.zeros((1, 1, 1), dtype=bool)
        )

    def _restarted_env_rng(self) -> np.random.Generator:
        self._env_rng.bit_generator.state = self._env_start
        return self._env_rng

    @property
    def last_eval_step(self) -> int | None:
        """Env step of the latest evaluation (None before the first)."""
        return self.ctx.last_eval_step

    def mark_diverged(self, step: int, reason: str) -> None:
        """``RunContext.mark_diverged``."""
        self.ctx.mark_diverged(step, reason)

    def evaluate(
        self, step: int, policy: Policy | None = None, extra: Mapping[str, float] | None = None
    ) -> float:
        """``RunContext.evaluate`` of the agent's greedy policy (``policy`` is not called:
        the engine runs the same policy compiled). Returns the mean eval return."""
        ctx = self.ctx
        if ctx.last_eval_step == step:
            return float("nan")
        began = time.perf_counter()
        n = ctx.spec.eval_episodes
        returns, lengths = np.empty(n), np.empty(n, dtype=np.int64)
        successes = np.empty(n, dtype=bool)
        record = n * self._limit if self.plan.infos is not None else 0
        states, actions = np.empty(record, np.int64), np.empty(record, np.int64)
        kernels.run_evaluation(
            self.agent.state.q,
            self.agent.valid,
            self.sim,
            self._limit,
            self._restarted_env_rng(),
            self.agent.tie_stream(),
            self._success,
            self.plan.success_any,
            returns,
            lengths,
            successes,
            states,
            actions,
        )
        domain_rows = []
        if self.plan.infos is not None and self.plan.episode_metrics is not None:
            ends = np.cumsum(lengths)
            for end, length in zip(ends.tolist(), lengths.tolist(), strict=True):
                infos = self.plan.infos(states[end - length : end], actions[end - length : end])
                domain_rows.append(self.plan.episode_metrics(infos))
        return ctx.log_evaluation(
            step,
            returns,
            successes if self.plan.success is not None else None,
            domain_rows,
            extra,
            began,
        )
