"""The update rules of the tabular learners, once, as functions on arrays.

Plain Python in the subset numba compiles: ``rlcompare.algos.tabular.kernels`` compiles these
functions, and both the engine that simulates a TabularMDP and the step agent that drives
a gymnasium env call the compiled versions, so the two paths apply identical updates.
Randomness comes from the generator passed in (the run's ``agent`` stream), one uniform
per decision: action choice, Double Q's coin and its tie-break, Dyna's model samples.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from rlcompare.algos.exploration import action_probabilities, sample_action, scheduled_value

ALGORITHMS = ("q_learning", "sarsa", "expected_sarsa", "double_q", "dyna_q")
Q_LEARNING, SARSA, EXPECTED_SARSA, DOUBLE_Q, DYNA_Q = range(len(ALGORITHMS))

# Return codes of ``learn`` besides a next action (SARSA's A', taken at the next step).
NO_ACTION = -1
DIVERGED = -2


class TabularConfig(NamedTuple):
    """Scalars of one learner (hyperparameters as numbers; see rlcompare.algos.tabular)."""

    algo: int
    alpha: float
    visit_step_size: bool
    omega: float
    gamma: float
    exploration: int
    explore_start: float
    explore_end: float
    explore_decay: int
    explore_duration: float
    planning_steps: int


class TabularState(NamedTuple):
    """Arrays of one learner (S states, A actions); unused ones have size 0.

    Attributes:
        q: (S x A) the learner's action values (Double Q: the mean of its two tables, kept
            up to date, so every consumer reads one table).
        qa: (S x A) Double Q's first table.
        qb: (S x A) Double Q's second table.
        visits: (S x A) int64 n(s, a), real transitions (or dataset samples) of each pair
            (what UCB exploration counts).
        visits_a: (S x A) int64 updates of Double Q's first table at each pair: each table
            is its own Robbins-Monro estimator, so its step size counts its own updates.
        visits_b: (S x A) int64 updates of Double Q's second table.
        model_next: (S x A) int64 Dyna's last-seen next state, -1 when unseen.
        model_reward: (S x A) Dyna's last-seen reward.
        model_terminal: (S x A) bool, Dyna's last-seen termination.
        seen_states: (S,) int64 states in order of first visit (Dyna's planning draws).
        seen_actions: (S x A) int64 actions taken in each state in order of first use.
        n_seen: (S + 1,) int64 number of seen actions per state; last entry: seen states.
        td_stats: (2,) sum of |TD error| and number of real updates since the last reset.
        probs: (A,) work row.
    """

    q: np.ndarray
    qa: np.ndarray
    qb: np.ndarray
    visits: np.ndarray
    visits_a: np.ndarray
    visits_b: np.ndarray
    model_next: np.ndarray
    model_reward: np.ndarray
    model_terminal: np.ndarray
    seen_states: np.ndarray
    seen_actions: np.ndarray
    n_seen: np.ndarray
    td_stats: np.ndarray
    probs: np.ndarray


def new_state(n_states: int, n_actions: int, algo: int, q_init: float) -> TabularState:
    """Fresh arrays for ``algo``: Q at ``q_init``, no visits, an empty model."""
    shape = (n_states, n_actions)
    dyna = shape if algo == DYNA_Q else (0, 0)
    double = shape if algo == DOUBLE_Q else (0, 0)
    return TabularState(
        q=np.full(shape, float(q_init)),
        qa=np.full(double, float(q_init)),
        qb=np.full(double, float(q_init)),
        visits=np.zeros(shape, dtype=np.int64),
        visits_a=np.zeros(double, dtype=np.int64),
        visits_b=np.zeros(double, dtype=np.int64),
        model_next=np.full(dyna, -1, dtype=np.int64),
        model_reward=np.zeros(dyna),
        model_terminal=np.zeros(dyna, dtype=bool),
        seen_states=np.zeros(dyna[0], dtype=np.int64),
        seen_actions=np.zeros(dyna, dtype=np.int64),
        n_seen=np.zeros(dyna[0] + 1, dtype=np.int64),
        td_stats=np.zeros(2),
        probs=np.zeros(n_actions),
    )


# Compiled callers pass whole arrays plus indices and get scalars back: views and returned
# arrays would cost reference counting on every call of the engine's inner loop.
def step_size(cfg: TabularConfig, visits: int) -> float:
    """alpha, or the Robbins-Monro 1 / n(s, a)^omega."""
    if cfg.visit_step_size:
        return 1.0 / visits**cfg.omega
    return cfg.alpha


def policy_probabilities(
    st: TabularState, cfg: TabularConfig, valid: np.ndarray, s: int, step: int
) -> None:
    """Behaviour-policy probabilities in state ``s`` at env step ``step`` into ``st.probs``."""
    parameter = scheduled_value(
        cfg.explore_start, cfg.explore_end, cfg.explore_decay, cfg.explore_duration, step
    )
    action_probabilities(cfg.exploration, st.q, st.visits, valid, s, parameter, st.probs)


def choose_action(
    st: TabularState, cfg: TabularConfig, valid: np.ndarray, s: int, step: int, rng: Any
) -> int:
    """A behaviour action in state ``s`` (one uniform from ``rng``)."""
    policy_probabilities(st, cfg, valid, s, step)
    return sample_action(st.probs, rng.random())


def max_valid(q: np.ndarray, valid: np.ndarray, s: int) -> float:
    """max over valid actions of q[s, .]."""
    best = -np.inf
    for a in range(q.shape[1]):
        if valid[s, a]:
            best = max(best, q[s, a])
    return best


def argmax_valid(q: np.ndarray, valid: np.ndarray, s: int, rng: Any) -> int:
    """A valid argmax of q[s, .], ties broken uniformly with one uniform from ``rng`` (drawn
    only when there is a tie): Double Q's A* = argmax_a Q1(s', a) picks one action (Sutton &
    Barto, Section 6.7), not the mean over the tied ones, which lowers the target's variance
    and with it the maximization bias Double Q is measured against (Figure 6.5)."""
    best = max_valid(q, valid, s)
    n_best = 0
    first = -1
    for a in range(q.shape[1]):
        if valid[s, a] and q[s, a] == best:
            if n_best == 0:
                first = a
            n_best += 1
    if n_best == 1:
        return first
    k = min(int(rng.random() * n_best), n_best - 1)
    for a in range(q.shape[1]):
        if valid[s, a] and q[s, a] == best:
            if k == 0:
                return a
            k -= 1
    return first


def td_update(table: np.ndarray, s: int, a: int, target: float, alpha: float) -> float:
    """table[s, a] += alpha * (target - table[s, a]); returns the TD error."""
    td = target - table[s, a]
    table[s, a] += alpha * td
    return td


def remember(st: TabularState, s: int, a: int, r: float, s_next: int, terminated: bool) -> None:
    """Dyna-Q's deterministic model: keep the last transition seen from (s, a)."""
    if st.model_next[s, a] < 0:
        n_states = st.seen_states.shape[0]
        if st.n_seen[s] == 0:
            st.seen_states[st.n_seen[n_states]] = s
            st.n_seen[n_states] += 1
        st.seen_actions[s, st.n_seen[s]] = a
        st.n_seen[s] += 1
    st.model_next[s, a] = s_next
    st.model_reward[s, a] = r
    st.model_terminal[s, a] = terminated


def plan(st: TabularState, cfg: TabularConfig, valid: np.ndarray, rng: Any) -> bool:
    """Dyna-Q's planning: ``planning_steps`` Q-learning updates on transitions from the model,
    each from a random seen state and a random action taken there. Returns True on
    divergence."""
    n_states = st.seen_states.shape[0]
    for _ in range(cfg.planning_steps):
        n = st.n_seen[n_states]
        s = st.seen_states[min(int(rng.random() * n), n - 1)]
        n = st.n_seen[s]
        a = st.seen_actions[s, min(int(rng.random() * n), n - 1)]
        target = st.model_reward[s, a]
        if not st.model_terminal[s, a]:
            target += cfg.gamma * max_valid(st.q, valid, st.model_next[s, a])
        td_update(st.q, s, a, target, step_size(cfg, st.visits[s, a]))
        if not math.isfinite(st.q[s, a]):
            return True
    return False


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
    if cfg.algo == DYNA_Q:
        remember(st, s, a, r, s_next, terminated)
        if plan(st, cfg, valid, rng):
            return DIVERGED
    return next_action
