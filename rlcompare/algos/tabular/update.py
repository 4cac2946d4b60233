"""One transition's learning for every tabular learner: the TD rules of ``rules`` and the
planning on the learned model of ``learned_model``.

Plain Python in the subset numba compiles (see ``rules``); ``kernels`` compiles it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rlcompare.algos.tabular import learned_model as model
from rlcompare.algos.tabular.rules import (
    CERTAINTY_EQUIVALENCE,
    DIVERGED,
    DOUBLE_Q,
    DYNA_Q,
    EXPECTED_SARSA,
    LAST_MODEL,
    NO_ACTION,
    PRIORITIZED_SWEEPING,
    PSRL,
    RESAMPLE_DOUBLING,
    RESAMPLE_EPISODE,
    RESAMPLE_EVERY,
    SARSA,
    SINCE_PLAN,
    TabularConfig,
    TabularState,
    argmax_valid,
    choose_action,
    max_valid,
    policy_probabilities,
    step_size,
    td_update,
)


def prepare(st: TabularState, cfg: TabularConfig, valid: np.ndarray, rng: Any) -> bool:
    """Before the first action: PSRL draws its first MDP from the prior and solves it (the
    others start from ``q_init``). Returns True on divergence."""
    if cfg.algo != PSRL:
        return False
    model.sample_posterior(st, cfg, valid, rng)
    return model.solve(st, cfg, valid, True)


def _psrl_due(
    st: TabularState, cfg: TabularConfig, s: int, a: int, terminated: bool, truncated: bool
) -> bool:
    """Whether PSRL draws a new MDP after this transition (see ``RESAMPLE_RULES``).

    A count has doubled by TSDE's condition (Ouyang et al. 2017): N_t(s, a) > 2 N_{t_k}(s, a),
    where t_k is the last draw, so after a draw at 0, 1, 3, 10 visits the pair redraws at
    1, 3, 7, 21. Only the pair just updated can newly meet it (no other count moved)."""
    doubled = st.visits[s, a] > 2 * st.sampled_visits[s, a]
    if cfg.resample == RESAMPLE_EPISODE:
        # An episode that never ends (a sampled MDP can make a loop look best) would keep
        # one sample forever: a doubled count ends it too.
        return terminated or truncated or doubled
    if cfg.resample == RESAMPLE_EVERY:
        return st.counters[SINCE_PLAN] >= cfg.resample_every
    return cfg.resample == RESAMPLE_DOUBLING and doubled


def _plan_on_model(
    st: TabularState,
    cfg: TabularConfig,
    valid: np.ndarray,
    s: int,
    a: int,
    terminated: bool,
    truncated: bool,
    rng: Any,
) -> bool:
    """Prioritized sweeping, certainty equivalence and PSRL after the model counted the
    transition. Returns True on divergence."""
    if cfg.algo == PRIORITIZED_SWEEPING:
        return model.sweep(st, cfg, valid, s, a)
    st.counters[SINCE_PLAN] += 1
    if cfg.algo == CERTAINTY_EQUIVALENCE:
        if st.counters[SINCE_PLAN] < cfg.replan_every:
            return False
        st.counters[SINCE_PLAN] = 0
        return model.solve(st, cfg, valid, False)
    if not _psrl_due(st, cfg, s, a, terminated, truncated):
        return False
    st.counters[SINCE_PLAN] = 0
    model.sample_posterior(st, cfg, valid, rng)
    return model.solve(st, cfg, valid, True)


def _learn_on_model(
    st: TabularState,
    cfg: TabularConfig,
    valid: np.ndarray,
    s: int,
    a: int,
    r: float,
    s_next: int,
    terminated: bool,
    truncated: bool,
    rng: Any,
) -> int:
    """Counts the transition into the learned model, then plans on it: the learners that
    only plan, and Dyna-Q on its counts model after its TD update. Returns DIVERGED or
    NO_ACTION. Each model-based path is one ordinary call out of ``learn``: with their calls
    inlined there, the engine's Q-learning ran at 5.3-6.0M env steps per CPU-second instead
    of 7.6-8.2M (measured side by side with the code before them)."""
    model.observe(st, s, a, r, s_next, terminated)
    if cfg.algo != DYNA_Q:
        diverged = _plan_on_model(st, cfg, valid, s, a, terminated, truncated, rng)
    else:
        if st.visits[s, a] == 1:
            model.record_seen(st.seen_states, st.seen_actions, st.n_seen, s, a)
        diverged = model.counts_plan(st, cfg, valid, rng)
    return DIVERGED if diverged else NO_ACTION


def learn(
    st: TabularState,
    cfg: TabularConfig,
    valid: np.ndarray,
    s: int,
    a: int,
    r: float,
    s_next: int,
    terminated: bool,
    truncated: bool,
    step: int,
    rng: Any,
) -> int:
    """Learns from one transition; ``terminated`` cuts bootstrapping, ``truncated`` does not.

    ``step`` counts env steps done, so policies at ``s_next`` use the schedule value of the
    next action. Returns SARSA's next action (chosen at ``s_next`` before the update, as in
    Sutton & Barto), NO_ACTION, or DIVERGED when a value became non-finite.
    """
    st.visits[s, a] += 1
    if cfg.algo >= PRIORITIZED_SWEEPING:
        return _learn_on_model(st, cfg, valid, s, a, r, s_next, terminated, truncated, rng)
    gamma = cfg.gamma
    next_action = NO_ACTION
    target = r
    if cfg.algo == DOUBLE_Q:
        first = rng.random() < 0.5
        table = st.qa if first else st.qb
        other = st.qb if first else st.qa
        # Each table is a Robbins-Monro estimator of its own: with the shared n(s, a) a
        # table's k-th update would step by about 1/(2k)^omega and keep a weight of order
        # k^-1/2 on q_init.
        table_visits = st.visits_a if first else st.visits_b
        table_visits[s, a] += 1
        alpha = step_size(cfg, table_visits[s, a])
        if not terminated:
            target += gamma * other[s_next, argmax_valid(table, valid, s_next, rng)]
        td = td_update(table, s, a, target, alpha)
        st.q[s, a] = (st.qa[s, a] + st.qb[s, a]) / 2.0
    else:
        alpha = step_size(cfg, st.visits[s, a])
        if terminated:
            pass
        elif cfg.algo == SARSA:
            a_next = choose_action(st, cfg, valid, s_next, step, rng)
            target += gamma * st.q[s_next, a_next]
            if not truncated:
                next_action = a_next
        elif cfg.algo == EXPECTED_SARSA:
            policy_probabilities(st, cfg, valid, s_next, step)
            expectation = 0.0
            for b in range(st.probs.shape[0]):
                if st.probs[b] > 0.0:
                    expectation += st.probs[b] * st.q[s_next, b]
            target += gamma * expectation
        else:
            target += gamma * max_valid(st.q, valid, s_next)
        td = td_update(st.q, s, a, target, alpha)
    if not math.isfinite(st.q[s, a]):
        return DIVERGED
    st.td_stats[0] += abs(td)
    st.td_stats[1] += 1.0
    if cfg.algo != DYNA_Q:
        return next_action
    # Dyna-Q's model learns the transition, then plans. The last-seen model's step takes
    # arrays: passing the whole TabularState at every step cost a third of its speed.
    if cfg.dyna_model != LAST_MODEL:
        diverged = (
            _learn_on_model(st, cfg, valid, s, a, r, s_next, terminated, truncated, rng) == DIVERGED
        )
    else:
        diverged = model.last_seen_step(
            st.q,
            st.visits,
            st.seen_states,
            st.seen_actions,
            st.n_seen,
            st.model_next,
            st.model_reward,
            st.model_terminal,
            st.counters,
            cfg,
            valid,
            s,
            a,
            r,
            s_next,
            terminated,
            rng,
        )
    return DIVERGED if diverged else next_action
