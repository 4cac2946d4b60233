"""The tabular learners' numbers and arrays, and the model-free update rules, as functions
on arrays.

Plain Python in the subset numba compiles: ``rlcompare.algos.tabular.kernels`` compiles these
functions (with ``learned_model`` and ``update``), and both the engine that simulates a
TabularMDP and the step agent that drives a gymnasium env call the compiled versions, so
the two paths apply identical updates. Randomness comes from the generator passed in (the
run's ``agent`` stream), one uniform per decision: action choice, Double Q's coin and its
tie-break, Dyna's model samples; PSRL's posterior draws come from the same stream.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rlcompare.algos.exploration import action_probabilities, sample_action, scheduled_value

ALGORITHMS = (
    "q_learning",
    "sarsa",
    "expected_sarsa",
    "double_q",
    "dyna_q",
    "prioritized_sweeping",
    "certainty_equivalence",
    "psrl",
)
(
    Q_LEARNING,
    SARSA,
    EXPECTED_SARSA,
    DOUBLE_Q,
    DYNA_Q,
    PRIORITIZED_SWEEPING,
    CERTAINTY_EQUIVALENCE,
    PSRL,
) = range(len(ALGORITHMS))
# The learners that plan on the learned stochastic model alone (no TD update from the real
# transition): every algo from PRIORITIZED_SWEEPING on.
PLANNERS = ALGORITHMS[PRIORITIZED_SWEEPING:]

# Dyna-Q's model: the last transition seen from each (s, a) (Sutton & Barto's), or the
# counts, sampled from or taken in expectation.
DYNA_MODELS = ("last", "sample", "expected")
LAST_MODEL, SAMPLE_MODEL, EXPECTED_MODEL = range(len(DYNA_MODELS))
REWARD_PRIORS = ("normal", "beta")
NORMAL_PRIOR, BETA_PRIOR = range(len(REWARD_PRIORS))
# When PSRL draws a new MDP: at each episode's end (or within one, when the visit count of
# the pair just updated has more than doubled since the last draw), every ``resample_every``
# steps, or only on such a count: TSDE's doubling condition (Ouyang et al. 2017; its second
# condition, an episode longer than the previous one, is not implemented).
RESAMPLE_RULES = ("episode", "every", "doubling")
RESAMPLE_EPISODE, RESAMPLE_EVERY, RESAMPLE_DOUBLING = range(len(RESAMPLE_RULES))

# Fields of TabularState.counters.
PLANNING_UPDATES, N_PREDECESSORS, HEAP_SIZE, SINCE_PLAN = range(4)

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
    dyna_model: int
    theta: float
    replan_every: int
    max_sweeps: int
    tolerance: float
    prior: float
    reward_prior: int
    reward_prior_mean: float
    reward_prior_std: float
    reward_noise_std: float
    resample: int
    resample_every: int


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
        successor: (S x A x K) int64, the learned model's distinct next states of each pair
            in order of first sight (K: the env's outcomes per pair where its model is
            known, else S), -1 past ``n_successors``.
        successor_count: (S x A x K) int64 transitions to each of them.
        successor_terminal: (S x A x K) bool, whether that transition terminated.
        n_successors: (S x A) int64 distinct next states seen.
        reward_sum: (S x A) sum of the rewards seen (the mean is over ``visits``).
        counters: (4,) int64 PLANNING_UPDATES (model updates so far), N_PREDECESSORS (used
            entries of ``predecessor_pair``), HEAP_SIZE, SINCE_PLAN (real steps since the
            last replan or posterior draw).
        predecessor_head: (S,) int64 first entry of each state's predecessor list, -1: none.
        predecessor_pair: (S*A*K,) int64 pair s*A + a of a list entry.
        predecessor_link: (S*A*K,) int64 next entry of the same list, -1: the last.
        heap_pair: (S*A,) int64 prioritized sweeping's max-heap of pairs.
        heap_priority: (S*A,) their priorities.
        heap_position: (S*A,) int64 where each pair sits in the heap, -1: not queued.
        v: (S,) state values during value iteration (certainty equivalence, PSRL).
        terminal_seen: (S,) bool, states a transition was seen to terminate in: value
            iteration holds their value at 0 (entering a state ends an episode or not).
        sampled_prob: (S x A x K) PSRL's sampled probability of each seen successor.
        sampled_other: (S x A) int64 the unseen next state that takes the rest of the mass.
        sampled_other_prob: (S x A) that rest (the prior's share of unseen next states).
        sampled_reward: (S x A) the sampled mean reward.
        sampled_visits: (S x A) int64 visits at the last draw (TSDE's doubling condition).
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
    successor: np.ndarray
    successor_count: np.ndarray
    successor_terminal: np.ndarray
    n_successors: np.ndarray
    reward_sum: np.ndarray
    counters: np.ndarray
    predecessor_head: np.ndarray
    predecessor_pair: np.ndarray
    predecessor_link: np.ndarray
    heap_pair: np.ndarray
    heap_priority: np.ndarray
    heap_position: np.ndarray
    v: np.ndarray
    terminal_seen: np.ndarray
    sampled_prob: np.ndarray
    sampled_other: np.ndarray
    sampled_other_prob: np.ndarray
    sampled_reward: np.ndarray
    sampled_visits: np.ndarray


def uses_counts(cfg: TabularConfig) -> bool:
    """Whether the learner keeps the learned stochastic model (visit counts per successor)."""
    return cfg.algo >= PRIORITIZED_SWEEPING or (cfg.algo == DYNA_Q and cfg.dyna_model != LAST_MODEL)


def new_state(
    n_states: int,
    n_actions: int,
    cfg: TabularConfig,
    q_init: float,
    outcomes: int | None = None,
) -> TabularState:
    """Fresh arrays for ``cfg.algo``: Q at ``q_init``, no visits, an empty model.

    ``outcomes`` bounds the distinct next states of a pair (the env's K where its model is
    known; None: S): the learned model's rows hold that many.
    """
    algo = cfg.algo
    shape = (n_states, n_actions)
    dyna = shape if algo == DYNA_Q else (0, 0)
    double = shape if algo == DOUBLE_Q else (0, 0)
    k = min(n_states, outcomes) if outcomes else n_states
    counted = (*shape, k) if uses_counts(cfg) else (0, 0, 0)
    links = n_states * n_actions * k if algo == PRIORITIZED_SWEEPING else 0
    heap = n_states * n_actions if algo == PRIORITIZED_SWEEPING else 0
    values = n_states if algo in (CERTAINTY_EQUIVALENCE, PSRL) else 0
    sampled = shape if algo == PSRL else (0, 0)
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
        successor=np.full(counted, -1, dtype=np.int64),
        successor_count=np.zeros(counted, dtype=np.int64),
        successor_terminal=np.zeros(counted, dtype=bool),
        n_successors=np.zeros(counted[:2], dtype=np.int64),
        reward_sum=np.zeros(counted[:2]),
        counters=np.zeros(4, dtype=np.int64),
        predecessor_head=np.full(n_states if links else 0, -1, dtype=np.int64),
        predecessor_pair=np.zeros(links, dtype=np.int64),
        predecessor_link=np.zeros(links, dtype=np.int64),
        heap_pair=np.zeros(heap, dtype=np.int64),
        heap_priority=np.zeros(heap),
        heap_position=np.full(heap, -1, dtype=np.int64),
        v=np.zeros(values),
        terminal_seen=np.zeros(values, dtype=bool),
        sampled_prob=np.zeros((*sampled, k) if algo == PSRL else (0, 0, 0)),
        sampled_other=np.zeros(sampled, dtype=np.int64),
        sampled_other_prob=np.zeros(sampled),
        sampled_reward=np.zeros(sampled),
        sampled_visits=np.zeros(sampled, dtype=np.int64),
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
