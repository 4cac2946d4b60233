"""The learned model of the model-based tabular learners, and the planning done on it.

One model for all of them: for each (s, a), the distinct next states seen with their counts
and termination flags, and the sum of the rewards, so ``count / n(s, a)`` is the
maximum-likelihood transition probability and ``reward_sum / n(s, a)`` the mean reward.
Dyna-Q's textbook model (the last transition seen) lives here too. On it:

* Dyna-Q's planning (Sutton & Barto 8.2): random seen pairs, the last-seen next state, a
  next state drawn from the counts, or the expectation over them;
* prioritized sweeping (8.4) with expected updates, a max-heap of pairs and predecessor
  lists built from the counts;
* value iteration on the maximum-likelihood model (certainty equivalence) or on an MDP drawn
  from the posterior (PSRL, Osband, Russo & Van Roy 2013).

Plain Python in the subset numba compiles (see ``rules``); ``kernels`` compiles it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rlcompare.algos.tabular.rules import (
    BETA_PRIOR,
    EXPECTED_MODEL,
    HEAP_SIZE,
    N_PREDECESSORS,
    PLANNING_UPDATES,
    TabularConfig,
    TabularState,
    max_valid,
    step_size,
    td_update,
)


# ---------------------------------------------------------------------------- the model
# Dyna-Q's last-seen leaves, called at every real step, take arrays, not the TabularState:
# an ordinary call passes every array of the tuple, which costs more than their own work.
def record_seen(
    seen_states: np.ndarray, seen_actions: np.ndarray, n_seen: np.ndarray, s: int, a: int
) -> None:
    """Dyna-Q's lists of seen states and of the actions taken in each (its planning draws
    from them); called at a pair's first real transition."""
    n_states = seen_states.shape[0]
    if n_seen[s] == 0:
        seen_states[n_seen[n_states]] = s
        n_seen[n_states] += 1
    seen_actions[s, n_seen[s]] = a
    n_seen[s] += 1


def remember(
    model_next: np.ndarray,
    model_reward: np.ndarray,
    model_terminal: np.ndarray,
    s: int,
    a: int,
    r: float,
    s_next: int,
    terminated: bool,
) -> None:
    """Dyna-Q's deterministic model: keep the last transition seen from (s, a)."""
    model_next[s, a] = s_next
    model_reward[s, a] = r
    model_terminal[s, a] = terminated


def observe(st: TabularState, s: int, a: int, r: float, s_next: int, terminated: bool) -> None:
    """Counts one transition into the learned model (``visits[s, a]`` already counts it).

    A next state new to (s, a) takes the next free slot of its row and, with prioritized
    sweeping, enters the predecessor list of ``s_next``. A row holds K next states: the
    env's outcomes per pair where its model is known (its distinct next states cannot be
    more), else every state.
    """
    st.reward_sum[s, a] += r
    if terminated and st.terminal_seen.shape[0] > 0:
        st.terminal_seen[s_next] = True
    n = st.n_successors[s, a]
    for k in range(n):
        if st.successor[s, a, k] == s_next:
            st.successor_count[s, a, k] += 1
            st.successor_terminal[s, a, k] = terminated
            return
    if n == st.successor.shape[2]:  # cannot happen (see above); never write past the row
        return
    st.successor[s, a, n] = s_next
    st.successor_count[s, a, n] = 1
    st.successor_terminal[s, a, n] = terminated
    st.n_successors[s, a] = n + 1
    if st.predecessor_head.shape[0] > 0:
        entry = st.counters[N_PREDECESSORS]
        st.predecessor_pair[entry] = s * st.q.shape[1] + a
        st.predecessor_link[entry] = st.predecessor_head[s_next]
        st.predecessor_head[s_next] = entry
        st.counters[N_PREDECESSORS] = entry + 1


def expected_backup(
    st: TabularState, q: np.ndarray, valid: np.ndarray, gamma: float, s: int, a: int
) -> float:
    """``r(s, a) + gamma * sum_s' p(s' | s, a) max_a' q[s', a']`` on the learned model (a
    seen pair; terminating transitions do not bootstrap)."""
    n = st.visits[s, a]
    total = st.reward_sum[s, a] / n
    for k in range(st.n_successors[s, a]):
        if not st.successor_terminal[s, a, k]:
            share = st.successor_count[s, a, k] / n
            total += gamma * share * max_valid(q, valid, st.successor[s, a, k])
    return total


def sampled_successor(st: TabularState, s: int, a: int, u: float) -> int:
    """Slot k of a next state of (s, a) drawn from the counts with the uniform ``u``."""
    n = st.n_successors[s, a]
    target = u * st.visits[s, a]
    cumulative = 0
    for k in range(n):
        cumulative += st.successor_count[s, a, k]
        if target < cumulative:
            return k
    return n - 1


# ---------------------------------------------------------------------------- Dyna-Q
def _seen_pair(
    seen_states: np.ndarray, seen_actions: np.ndarray, n_seen: np.ndarray, rng: Any
) -> tuple[int, int]:
    """A random seen state and a random action taken there (two uniforms)."""
    n = n_seen[seen_states.shape[0]]
    s = seen_states[min(int(rng.random() * n), n - 1)]
    n = n_seen[s]
    return s, seen_actions[s, min(int(rng.random() * n), n - 1)]


def last_seen_step(
    q: np.ndarray,
    visits: np.ndarray,
    seen_states: np.ndarray,
    seen_actions: np.ndarray,
    n_seen: np.ndarray,
    model_next: np.ndarray,
    model_reward: np.ndarray,
    model_terminal: np.ndarray,
    counters: np.ndarray,
    cfg: TabularConfig,
    valid: np.ndarray,
    s: int,
    a: int,
    r: float,
    s_next: int,
    terminated: bool,
    rng: Any,
) -> bool:
    """Dyna-Q on its last-seen model (Sutton & Barto) after its TD update: keep the
    transition, then ``planning_steps`` updates, each from a random seen pair. Returns True
    on divergence. It runs at every real step, so it takes the arrays it uses rather than
    the whole TabularState (see above)."""
    if visits[s, a] == 1:
        record_seen(seen_states, seen_actions, n_seen, s, a)
    remember(model_next, model_reward, model_terminal, s, a, r, s_next, terminated)
    for _ in range(cfg.planning_steps):
        s, a = _seen_pair(seen_states, seen_actions, n_seen, rng)
        target = model_reward[s, a]
        if not model_terminal[s, a]:
            target += cfg.gamma * max_valid(q, valid, model_next[s, a])
        td_update(q, s, a, target, step_size(cfg, visits[s, a]))
        if not math.isfinite(q[s, a]):
            return True
    counters[PLANNING_UPDATES] += cfg.planning_steps
    return False


def counts_plan(st: TabularState, cfg: TabularConfig, valid: np.ndarray, rng: Any) -> bool:
    """Dyna-Q's planning on the counts model: ``planning_steps`` updates, each from a random
    seen pair, on the expectation over its next states (``"expected"``) or on one drawn
    from the counts (``"sample"``: a third uniform). Returns True on divergence."""
    gamma = cfg.gamma
    for _ in range(cfg.planning_steps):
        s, a = _seen_pair(st.seen_states, st.seen_actions, st.n_seen, rng)
        if cfg.dyna_model == EXPECTED_MODEL:
            target = expected_backup(st, st.q, valid, gamma, s, a)
        else:
            k = sampled_successor(st, s, a, rng.random())
            target = st.reward_sum[s, a] / st.visits[s, a]
            if not st.successor_terminal[s, a, k]:
                target += gamma * max_valid(st.q, valid, st.successor[s, a, k])
        td_update(st.q, s, a, target, step_size(cfg, st.visits[s, a]))
        if not math.isfinite(st.q[s, a]):
            return True
    st.counters[PLANNING_UPDATES] += cfg.planning_steps
    return False


# ---------------------------------------------------------------------------- prioritized sweeping
def _heap_swap(st: TabularState, i: int, j: int) -> None:
    pair_i, pair_j = st.heap_pair[i], st.heap_pair[j]
    st.heap_pair[i], st.heap_pair[j] = pair_j, pair_i
    st.heap_priority[i], st.heap_priority[j] = st.heap_priority[j], st.heap_priority[i]
    st.heap_position[pair_j], st.heap_position[pair_i] = i, j


def _sift_up(st: TabularState, i: int) -> None:
    while i > 0:
        parent = (i - 1) // 2
        if st.heap_priority[parent] >= st.heap_priority[i]:
            return
        _heap_swap(st, i, parent)
        i = parent


def queue_pair(st: TabularState, pair: int, priority: float) -> None:
    """Queues ``pair`` (s * A + a) at ``priority``; a queued pair keeps the larger of its
    priorities (Sutton & Barto 8.4: "insert ... with priority P" into a queue that holds
    each pair once)."""
    i = st.heap_position[pair]
    if i >= 0:
        if priority > st.heap_priority[i]:
            st.heap_priority[i] = priority
            _sift_up(st, i)
        return
    i = st.counters[HEAP_SIZE]
    st.heap_pair[i], st.heap_priority[i] = pair, priority
    st.heap_position[pair] = i
    st.counters[HEAP_SIZE] = i + 1
    _sift_up(st, i)


def pop_pair(st: TabularState) -> int:
    """Removes and returns the queued pair of highest priority (the queue is not empty)."""
    top = st.heap_pair[0]
    last = st.counters[HEAP_SIZE] - 1
    _heap_swap(st, 0, last)
    st.heap_position[top] = -1
    st.counters[HEAP_SIZE] = last
    i = 0
    while True:
        largest = i
        for child in (2 * i + 1, 2 * i + 2):
            if child < last and st.heap_priority[child] > st.heap_priority[largest]:
                largest = child
        if largest == i:
            return top
        _heap_swap(st, i, largest)
        i = largest


def _queue_if_above(
    st: TabularState, cfg: TabularConfig, valid: np.ndarray, s: int, a: int
) -> None:
    priority = abs(expected_backup(st, st.q, valid, cfg.gamma, s, a) - st.q[s, a])
    if priority > cfg.theta:
        queue_pair(st, s * st.q.shape[1] + a, priority)


def sweep(st: TabularState, cfg: TabularConfig, valid: np.ndarray, s: int, a: int) -> bool:
    """Prioritized sweeping after a real transition from (s, a): queue it if its expected
    update would change Q by more than ``theta``, then up to ``planning_steps`` expected
    updates of the highest-priority pairs, each queueing the predecessors it changes by more
    than ``theta``. Returns True on divergence."""
    n_actions = st.q.shape[1]
    _queue_if_above(st, cfg, valid, s, a)
    for _ in range(cfg.planning_steps):
        if st.counters[HEAP_SIZE] == 0:
            break
        pair = pop_pair(st)
        s, a = pair // n_actions, pair % n_actions
        st.q[s, a] = expected_backup(st, st.q, valid, cfg.gamma, s, a)
        st.counters[PLANNING_UPDATES] += 1
        if not math.isfinite(st.q[s, a]):
            return True
        entry = st.predecessor_head[s]
        while entry >= 0:
            before = st.predecessor_pair[entry]
            _queue_if_above(st, cfg, valid, before // n_actions, before % n_actions)
            entry = st.predecessor_link[entry]
    return False


# ---------------------------------------------------------------------------- value iteration
def _sampled_backup(st: TabularState, gamma: float, s: int, a: int) -> float:
    """The Bellman backup of (s, a) in PSRL's sampled MDP, on the values ``st.v``."""
    total = st.sampled_reward[s, a]
    for k in range(st.n_successors[s, a]):
        if not st.successor_terminal[s, a, k]:
            total += gamma * st.sampled_prob[s, a, k] * st.v[st.successor[s, a, k]]
    if st.sampled_other_prob[s, a] > 0.0:
        total += gamma * st.sampled_other_prob[s, a] * st.v[st.sampled_other[s, a]]
    return total


def _learned_backup(st: TabularState, gamma: float, s: int, a: int) -> float:
    """``expected_backup`` on the values ``st.v`` (value iteration keeps V beside Q)."""
    n = st.visits[s, a]
    total = st.reward_sum[s, a] / n
    for k in range(st.n_successors[s, a]):
        if not st.successor_terminal[s, a, k]:
            total += gamma * st.successor_count[s, a, k] / n * st.v[st.successor[s, a, k]]
    return total


def solve(st: TabularState, cfg: TabularConfig, valid: np.ndarray, sampled: bool) -> bool:
    """Value iteration in place (Gauss-Seidel), warm-started from ``st.q``: on PSRL's sampled
    MDP (every valid pair) or on the maximum-likelihood model (seen pairs; unseen ones keep
    their values, ``q_init``); states seen to terminate an episode are worth 0. Sweeps
    until no value moves by ``tolerance`` or ``max_sweeps`` are done; counts every backup.
    Returns True on divergence."""
    q = st.q
    n_states, n_actions = q.shape
    for s in range(n_states):
        st.v[s] = 0.0 if st.terminal_seen[s] else max_valid(q, valid, s)
    for _ in range(cfg.max_sweeps):
        change = 0.0
        backups = 0
        for s in range(n_states):
            if st.terminal_seen[s]:
                continue
            for a in range(n_actions):
                if not valid[s, a]:
                    continue
                if sampled:
                    value = _sampled_backup(st, cfg.gamma, s, a)
                elif st.visits[s, a] > 0:
                    value = _learned_backup(st, cfg.gamma, s, a)
                else:
                    continue
                change = max(change, abs(value - q[s, a]))
                q[s, a] = value
                backups += 1
            st.v[s] = max_valid(q, valid, s)
        st.counters[PLANNING_UPDATES] += backups
        if not math.isfinite(change):
            return True
        if change < cfg.tolerance:
            break
    return False


# ---------------------------------------------------------------------------- PSRL
def _sampled_reward(st: TabularState, cfg: TabularConfig, s: int, a: int, rng: Any) -> float:
    """A mean reward of (s, a) from its posterior: Normal with known noise variance, or
    Beta(1 + sum r, 1 + n - sum r) for rewards in [0, 1]."""
    n = st.visits[s, a]
    total = st.reward_sum[s, a] if n > 0 else 0.0
    if cfg.reward_prior == BETA_PRIOR:
        return rng.beta(1.0 + total, 1.0 + n - total)
    precision = 1.0 / cfg.reward_prior_std**2 + n / cfg.reward_noise_std**2
    mean = (
        cfg.reward_prior_mean / cfg.reward_prior_std**2 + total / cfg.reward_noise_std**2
    ) / precision
    return mean + rng.standard_normal() / math.sqrt(precision)


def _is_successor(st: TabularState, s: int, a: int, state: int) -> bool:
    for k in range(st.n_successors[s, a]):
        if st.successor[s, a, k] == state:
            return True
    return False


def sample_posterior(st: TabularState, cfg: TabularConfig, valid: np.ndarray, rng: Any) -> None:
    """Draws one MDP from the posterior into ``st.sampled_*``.

    Next states: Dirichlet with concentration ``prior / S`` on every state plus the counts.
    A Dirichlet's components aggregate exactly, so the seen next states and the lump of all
    unseen ones are drawn as one Dirichlet (one gamma variate each); the lump goes to one
    unseen state drawn uniformly, which is what a Dirichlet of total concentration at most
    ``prior`` <= 1 spread over them nearly always draws (it is almost one-hot).
    """
    n_states, n_actions = st.q.shape
    share = cfg.prior / n_states
    for s in range(n_states):
        for a in range(n_actions):
            if not valid[s, a]:
                continue
            st.sampled_reward[s, a] = _sampled_reward(st, cfg, s, a, rng)
            n = st.n_successors[s, a]
            total = 0.0
            for k in range(n):
                draw = rng.standard_gamma(share + st.successor_count[s, a, k])
                st.sampled_prob[s, a, k] = draw
                total += draw
            other = 0.0
            if n < n_states:
                other = rng.standard_gamma(share * (n_states - n))
                total += other
                state = min(int(rng.random() * n_states), n_states - 1)
                while _is_successor(st, s, a, state):
                    state = min(int(rng.random() * n_states), n_states - 1)
                st.sampled_other[s, a] = state
            if total > 0.0:
                for k in range(n):
                    st.sampled_prob[s, a, k] /= total
                st.sampled_other_prob[s, a] = other / total
            else:  # every variate underflowed: all mass on the most frequent next state
                most = 0
                for k in range(n):
                    most = (
                        k if st.successor_count[s, a, k] > st.successor_count[s, a, most] else most
                    )
                    st.sampled_prob[s, a, k] = 0.0
                if n > 0:
                    st.sampled_prob[s, a, most] = 1.0
                st.sampled_other_prob[s, a] = 1.0 if n == 0 else 0.0
            st.sampled_visits[s, a] = st.visits[s, a]
