"""TabularAgent: one learner's arrays and config, usable by the engine and by ``loop.drive``.

Both paths call the same compiled rules (``kernels.choose_action`` / ``kernels.learn`` here,
the engine's loop in ``kernels.run_segment``), draw from the same streams (``agent`` for
decisions; greedy evaluation ties from a separate ``eval_ties`` stream), and report the
same evaluation metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcompare.algos.exploration import EpsilonGreedy, strategy_from_hparams
from rlcompare.algos.tabular import kernels
from rlcompare.algos.tabular.rules import (
    ALGORITHMS,
    DIVERGED,
    DYNA_MODELS,
    DYNA_Q,
    LAST_MODEL,
    NO_ACTION,
    PLANNING_UPDATES,
    PRIORITIZED_SWEEPING,
    RESAMPLE_RULES,
    REWARD_PRIORS,
    TabularConfig,
    TabularState,
    new_state,
    uses_counts,
)
from rlcompare.envs.model import TabularMDP
from rlcompare.envs.planning import (
    Solution,
    expected_return,
    greedy_policy,
    q_error,
    regret_of_policy,
)
from rlcompare.errors import Diverged
from rlcompare.runner.context import RunContext
from rlcompare.runner.schema import Transition, TransitionLearner
from rlcompare.seeding import RunSeeds

# Greedy policies whose exact values a Reference keeps (a sweep's seeds share one Reference,
# and their greedy policies repeat from evaluation to evaluation).
POLICY_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Reference:
    """The model, its solution at the run's gamma and the eval time limit: what
    ``q_error``, ``policy_regret`` and ``expected_eval_return`` need.

    Attributes:
        mdp: The env's model.
        solution: Q* and V* at the run's gamma; None when they are not finite (then only
            ``expected_eval_return`` is recorded).
        horizon: The eval env's time limit (``max_episode_steps`` or EVAL_STEP_CAP); None:
            no ``expected_eval_return``.
    """

    mdp: TabularMDP
    solution: Solution | None
    horizon: int | None = None
    # Exact values per greedy policy (its tie mask's bytes): the same greedy policy is
    # evaluated once, not at every evaluation of every seed.
    _values: dict[bytes, tuple[float, ...]] = field(default_factory=dict, compare=False, repr=False)

    def metrics(self, q: np.ndarray) -> dict[str, float]:
        """``q_error``, ``policy_regret`` and ``expected_eval_return`` of action values
        ``q`` (S x A), those the reference can give."""
        policy = greedy_policy(q, self.mdp.valid_actions)
        key = policy.tobytes()
        values = self._values.get(key)
        if values is None:
            regret = (
                regret_of_policy(self.mdp, self.solution, policy)
                if self.solution is not None
                else float("nan")
            )
            expected = (
                expected_return(self.mdp, policy, self.horizon)
                if self.horizon is not None
                else float("nan")
            )
            if len(self._values) >= POLICY_CACHE_SIZE:
                self._values.clear()
            values = self._values[key] = (regret, expected)
        regret, expected = values
        metrics: dict[str, float] = {}
        if self.solution is not None:
            metrics["q_error"] = q_error(self.mdp, self.solution, q)
            metrics["policy_regret"] = regret
        if self.horizon is not None:
            metrics["expected_eval_return"] = expected
        return metrics


def learned_transitions(state: TabularState, cfg: TabularConfig) -> np.ndarray | None:
    """(S x A x S) the learner's model of P(s' | s, a) (zero rows where unseen); None for
    learners without a model."""
    q = state.q
    n_states, n_actions = q.shape
    if uses_counts(cfg):
        dense = np.zeros((n_states, n_actions, n_states))
        s, a, k = np.nonzero(state.successor >= 0)
        np.add.at(dense, (s, a, state.successor[s, a, k]), state.successor_count[s, a, k])
        seen = state.visits > 0
        dense[seen] /= state.visits[seen][:, None]
        return dense
    if cfg.algo == DYNA_Q and cfg.dyna_model == LAST_MODEL:
        dense = np.zeros((n_states, n_actions, n_states))
        s, a = np.nonzero(state.model_next >= 0)
        dense[s, a, state.model_next[s, a]] = 1.0
        return dense
    return None


def learned_rewards(state: TabularState, cfg: TabularConfig) -> np.ndarray:
    """(S x A) the learner's mean reward of each seen pair (0 where unseen)."""
    if uses_counts(cfg):
        return state.reward_sum / np.maximum(state.visits, 1)
    return np.where(state.model_next >= 0, state.model_reward, 0.0)


def model_errors(mdp: TabularMDP, state: TabularState, cfg: TabularConfig) -> dict[str, float]:
    """``model_error`` (max over seen pairs of the total-variation distance between the
    learned and the true next-state distribution) and ``model_reward_error`` (max over seen
    pairs of |learned mean reward - true expected reward|); empty without a model or before
    any pair is seen."""
    learned = learned_transitions(state, cfg)
    if learned is None:
        return {}
    seen = learned.sum(axis=2) > 0
    if not seen.any():
        return {}
    distance = 0.5 * np.abs(learned - mdp.transitions).sum(axis=2)
    reward_error = np.abs(learned_rewards(state, cfg) - mdp.rewards)
    return {
        "model_error": float(distance[seen].max()),
        "model_reward_error": float(reward_error[seen].max()),
    }


def make_config(algo: str, hp: Mapping[str, Any]) -> TabularConfig:
    """The numeric config of ``algo`` from its resolved hyperparameters (a learner without a
    hyperparameter gets the value that leaves its rule out)."""
    # PSRL acts greedily on its sampled MDP: epsilon 0 breaks ties uniformly.
    strategy = EpsilonGreedy(0.0) if algo == "psrl" else strategy_from_hparams(hp)
    kind, start, end, decay, duration = strategy.kernel_args()
    return TabularConfig(
        algo=ALGORITHMS.index(algo),
        alpha=float(hp.get("alpha", 1.0)),
        visit_step_size=hp.get("alpha_schedule") == "visit",
        omega=float(hp.get("omega", 1.0)),
        gamma=float(hp["gamma"]),
        exploration=int(kind),
        explore_start=start,
        explore_end=end,
        explore_decay=int(decay),
        explore_duration=duration,
        planning_steps=int(hp.get("planning_steps", 0)),
        dyna_model=DYNA_MODELS.index(hp.get("model", "last")),
        theta=float(hp.get("theta", 0.0)),
        replan_every=int(hp.get("replan_every", 1)),
        max_sweeps=int(hp.get("max_sweeps", 1)),
        tolerance=float(hp.get("tolerance", 0.0)),
        prior=float(hp.get("prior", 1.0)),
        # A spec has filled PSRL's prior from the env (``resolve_psrl_prior``); a Beta prior
        # leaves the Normal's stds None.
        reward_prior=REWARD_PRIORS.index(hp.get("reward_prior", "normal")),
        reward_prior_mean=float(hp.get("reward_prior_mean", 0.0)),
        reward_prior_std=float(hp.get("reward_prior_std") or 1.0),
        reward_noise_std=float(hp.get("reward_noise_std") or 1.0),
        resample=RESAMPLE_RULES.index(hp.get("resample", "episode")),
        resample_every=int(hp.get("resample_every", 1)),
    )


class TabularAgent(TransitionLearner):
    """A tabular learner (the StepAgent of ``rlcompare.runner.loop``).

    Attributes:
        cfg: Numeric config.
        state: The learner's arrays (``state.q`` is its action-value estimate).
        valid: (S x A) bool, the actions it may choose.
        rng: The run's ``agent`` stream (every training decision).
    """

    def __init__(
        self,
        cfg: TabularConfig,
        state: TabularState,
        valid: np.ndarray,
        seeds: RunSeeds,
        reference: Reference | None = None,
    ) -> None:
        """Raises Diverged when PSRL's first sampled MDP has non-finite values."""
        self.cfg = cfg
        self.state = state
        # A private writable copy: compiled code specializes on read-only arrays.
        self.valid = np.array(valid, dtype=bool)
        self.rng = seeds.rng("agent")
        self.reference = reference
        self._seeds = seeds
        self._pending = NO_ACTION
        self._ties: np.random.Generator | None = None
        self._ties_start: dict[str, Any] | None = None
        if kernels.prepare(self.state, self.cfg, self.valid, self.rng):
            raise Diverged("non-finite action value in the first sampled MDP")

    @classmethod
    def for_run(
        cls,
        ctx: RunContext,
        n_states: int,
        n_actions: int,
        valid: np.ndarray | None = None,
        reference: Reference | None = None,
        outcomes: int | None = None,
    ) -> TabularAgent:
        """A fresh agent for the run of ``ctx`` (``outcomes``: the env's outcomes per pair,
        where its model is known: they bound the learned model's rows)."""
        cfg = make_config(ctx.spec.algo, ctx.hp)
        state = new_state(n_states, n_actions, cfg, ctx.hp.get("q_init", 0.0), outcomes)
        valid = np.ones((n_states, n_actions), dtype=bool) if valid is None else valid
        return cls(cfg, state, valid, ctx.seeds, reference)

    @property
    def q(self) -> np.ndarray:
        """(S x A) action values (Double Q: the mean of its two tables)."""
        return self.state.q

    # -- StepAgent ------------------------------------------------------------------------
    def act(self, obs: Any, step: int) -> int:
        """The behaviour action (SARSA's already chosen A' when there is one)."""
        if self._pending != NO_ACTION:
            action, self._pending = self._pending, NO_ACTION
            return action
        return int(
            kernels.choose_action(self.state, self.cfg, self.valid, int(obs), step, self.rng)
        )

    def learn(self, t: Transition) -> None:
        """Learns from one transition (raises Diverged on non-finite values)."""
        result = kernels.learn(
            self.state,
            self.cfg,
            self.valid,
            int(t.obs),
            int(t.action),
            float(t.reward),
            int(t.next_obs),
            bool(t.terminated),
            bool(t.truncated),
            t.step,
            self.rng,
        )
        if result == DIVERGED:
            raise Diverged(f"non-finite action value after the update at step {t.step}")
        self._pending = int(result)

    def greedy_action(self, obs: Any) -> int:
        """argmax over valid actions, ties broken uniformly from the ``eval_ties`` stream."""
        s = int(obs)
        row = np.where(self.valid[s], self.q[s], -np.inf)
        ties = np.flatnonzero(row == row.max())
        if ties.size == 1:
            return int(ties[0])
        return int(ties[self.tie_stream().integers(ties.size)])

    def tie_stream(self) -> np.random.Generator:
        """The ``eval_ties`` generator ``greedy_action`` draws its tie-breaks from (the
        engine's evaluation draws from the same one)."""
        if self._ties is None:
            self._ties = self._seeds.rng("eval_ties")
        return self._ties

    def eval_metrics(self) -> dict[str, float]:
        """``q_error``, ``policy_regret`` and ``expected_eval_return`` (with a model; see
        ``Reference``), ``td_error`` (mean |TD error| of the updates since the previous
        call, when there were any); for learners with a model ``planning_updates`` (model
        updates so far) and, where the env's model is known, ``model_error`` and
        ``model_reward_error``. Called once before each evaluation: it also restarts the
        tie-breaking stream, so equal values give equal evaluations."""
        metrics = self.reference.metrics(self.q) if self.reference is not None else {}
        if self.cfg.algo == DYNA_Q or self.cfg.algo >= PRIORITIZED_SWEEPING:
            metrics["planning_updates"] = float(self.state.counters[PLANNING_UPDATES])
            if self.reference is not None:
                metrics.update(model_errors(self.reference.mdp, self.state, self.cfg))
        sum_abs, count = self.state.td_stats
        if count > 0:
            metrics["td_error"] = float(sum_abs / count)
        self.state.td_stats[:] = 0.0
        self._restart_ties()
        return metrics

    def _restart_ties(self) -> None:
        """The ``eval_ties`` stream from its start (restoring its first state is a fraction
        of the cost of deriving the stream again, at every evaluation)."""
        if self._ties_start is None:
            self._ties = self._seeds.rng("eval_ties")
            self._ties_start = self._ties.bit_generator.state
        elif self._ties is not None:
            self._ties.bit_generator.state = self._ties_start

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[int, None]:
        """Stable-Baselines3-style greedy prediction (for ``collect_demonstrations``)."""
        return self.greedy_action(obs), None
