"""Ground truth from a TabularMDP: value iteration (Q*, V*, an optimal policy), exact
policy evaluation (discounted, and undiscounted within a time limit), plus the model-based
metrics of tabular runs.

Terminal states have value 0. Only ``mdp.valid_actions`` count as choices. With gamma = 1
the MDP must be episodic enough for values to be finite (cliff walking is; a continuing
chain with positive rewards is not, and value iteration then raises). A policy that never
terminates has a finite value when it ends up in a loop that pays nothing: only a closed
recurrent class of its chain with nonzero mean reward makes a value infinite.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from rlcompare.envs.model import TabularMDP

# Up to this many states, policy values use dense arrays (faster than sparse ones there).
DENSE_STATES = 256


@dataclass(frozen=True)
class Solution:
    """The optimal values of an MDP at one discount.

    Attributes:
        q: (S x A) optimal action values Q* (0 in terminal states).
        v: (S,) optimal state values V*.
        policy: (S,) an optimal action per state (the lowest-numbered among ties).
        iterations: Sweeps value iteration took.
        gamma: The discount.
    """

    q: np.ndarray
    v: np.ndarray
    policy: np.ndarray
    iterations: int
    gamma: float


def _check_gamma(gamma: float) -> float:
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma = {gamma!r} is out of range; valid: float in [0, 1]")
    return float(gamma)


def q_from_v(mdp: TabularMDP, v: np.ndarray, gamma: float) -> np.ndarray:
    """(S x A) one-step lookahead ``R(s, a) + gamma * E[V(s')]`` (0 in terminal states)."""
    with np.errstate(invalid="ignore"):  # 0 * inf in padded outcomes of improper policies
        expected = np.where(mdp.outcome_prob > 0, mdp.outcome_prob * v[mdp.outcome_next], 0.0)
    q = mdp.rewards + gamma * expected.sum(axis=2)
    q[mdp.terminal] = 0.0
    return q


def _best(q: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return np.where(valid, q, -np.inf).max(axis=1)


def value_iteration(
    mdp: TabularMDP, gamma: float, tol: float = 1e-10, max_iterations: int = 100_000
) -> Solution:
    """Optimal Q*, V* and policy by value iteration, stopping when a sweep changes V by < tol.

    Raises:
        ValueError: gamma outside [0, 1], gamma = 1 on an MDP without terminal states, or no
            convergence within ``max_iterations`` (with gamma = 1: some values are infinite).
    """
    gamma = _check_gamma(gamma)
    if gamma == 1.0 and not mdp.terminal.any() and np.any(mdp.rewards != 0):
        raise ValueError(
            f"{mdp.name or 'the MDP'} has no terminal state, so with gamma=1 its values are "
            "infinite; valid: gamma < 1"
        )
    v = np.zeros(mdp.n_states)
    for iteration in range(1, max_iterations + 1):
        q = q_from_v(mdp, v, gamma)
        v_new = _best(q, mdp.valid_actions)
        v_new[mdp.terminal] = 0.0
        delta = float(np.max(np.abs(v_new - v)))
        v = v_new
        if delta < tol:
            q = q_from_v(mdp, v, gamma)
            policy = np.argmax(np.where(mdp.valid_actions, q, -np.inf), axis=1)
            return Solution(q=q, v=v, policy=policy, iterations=iteration, gamma=gamma)
    raise ValueError(
        f"value iteration on {mdp.name or 'the MDP'} did not converge in {max_iterations} "
        f"sweeps at gamma={gamma} (last change {delta:.3g}); values may be infinite"
    )


def greedy_policy(q: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(S x A) probabilities of the greedy policy of ``q``, ties shared uniformly."""
    masked = q if valid is None else np.where(valid, q, -np.inf)
    best = masked == masked.max(axis=1, keepdims=True)
    return best / best.sum(axis=1, keepdims=True)


def _as_probabilities(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    policy = np.asarray(policy)
    if policy.ndim == 1:
        probs = np.zeros((mdp.n_states, mdp.n_actions))
        probs[np.arange(mdp.n_states), policy.astype(np.int64)] = 1.0
        return probs
    if policy.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"policy has shape {policy.shape}; valid: ({mdp.n_states},) actions or "
            f"({mdp.n_states}, {mdp.n_actions}) probabilities"
        )
    return policy


def _policy_chain(mdp: TabularMDP, probs: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse (S x S) P_pi without terminal rows, and (S,) expected rewards r_pi."""
    weights = probs[:, :, None] * mdp.outcome_prob
    weights[mdp.terminal] = 0.0
    s, a, k = np.nonzero(weights)
    n = mdp.n_states
    chain = sp.csr_matrix((weights[s, a, k], (s, mdp.outcome_next[s, a, k])), shape=(n, n))
    reward = (probs * mdp.rewards).sum(axis=1)
    reward[mdp.terminal] = 0.0
    return chain, reward


def _can_reach(chain: sp.csr_matrix, targets: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """States in ``allowed`` with a positive-probability path into ``targets``."""
    reach = targets.copy()
    frontier = targets.astype(np.float64)
    while frontier.any():
        new = ((chain @ frontier) > 0) & allowed & ~reach
        reach |= new
        frontier = new.astype(np.float64)
    return reach


def _closed_classes(chain: sp.csr_matrix, states: np.ndarray) -> list[np.ndarray]:
    """The closed communicating classes of ``chain`` among ``states``, a set no transition
    leaves: its strongly connected components that no transition leaves."""
    index = np.flatnonzero(states)
    if index.size == 0:
        return []
    block = chain[index][:, index].tocoo()
    count, labels = connected_components(block, directed=True, connection="strong")
    leaving = labels[block.row] != labels[block.col]
    open_ = np.zeros(count, dtype=bool)
    open_[labels[block.row[leaving]]] = True
    return [index[labels == c] for c in range(count) if not open_[c]]


def _mean_reward(chain: sp.csr_matrix, members: np.ndarray, reward: np.ndarray) -> float:
    """Long-run mean reward per step in a closed class: its stationary distribution (the
    unique solution of pi P = pi, sum pi = 1, for an irreducible chain) times its rewards."""
    if members.size == 1:
        return float(reward[members[0]])
    block = chain[members][:, members]
    system = (block.T - sp.identity(members.size)).tolil()
    system[0, :] = 1.0  # pi P = pi has rank m - 1: one equation becomes sum pi = 1
    rhs = np.zeros(members.size)
    rhs[0] = 1.0
    pi = spla.spsolve(system.tocsc(), rhs)
    return float(pi @ reward[members])


def _gamma_one_infinite(
    chain: sp.csr_matrix, reward: np.ndarray, terminal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """With gamma = 1: (S,) values that are infinite (+inf, -inf, nan; 0 elsewhere) and (S,)
    bool, the states whose value is not found by the linear solve (infinite ones and those
    of zero-reward closed classes, worth 0).

    Among states that cannot terminate, the policy's chain ends in closed classes. One whose
    long-run mean reward is nonzero pays without bound (sign of the mean; nan when the mean
    is 0 but rewards are not, as +1, -1, +1, ... has no sum); a zero-reward one is worth 0.
    A state is infinite when it reaches an infinite class with positive probability (nan if
    it reaches classes of both signs); rewards on the way there, or to termination, are
    finite and are left to the linear solve.
    """
    live = ~terminal
    stuck = live & ~_can_reach(chain, terminal, live)
    values = np.zeros(terminal.size)
    known = np.zeros(terminal.size, dtype=bool)
    targets = {1.0: np.zeros_like(known), -1.0: np.zeros_like(known), 0.0: np.zeros_like(known)}
    for members in _closed_classes(chain, stuck):
        known[members] = True
        if np.any(reward[members] != 0):
            targets[float(np.sign(_mean_reward(chain, members, reward)))][members] = True
    positive, negative, undefined = (
        _can_reach(chain, targets[sign], live) for sign in (1.0, -1.0, 0.0)
    )
    values[positive] = np.inf
    values[negative] = -np.inf
    values[undefined | (positive & negative)] = np.nan
    return values, known | positive | negative | undefined


def policy_evaluation(mdp: TabularMDP, policy: np.ndarray, gamma: float) -> np.ndarray:
    """Exact (S,) state values of ``policy`` (S actions, or S x A probabilities) by a sparse
    linear solve.

    With gamma = 1 a value is infinite only when the policy reaches, with positive
    probability, a closed recurrent class of its chain (a loop it never leaves) whose
    long-run mean reward is nonzero: -inf / +inf by its sign, nan when it can reach classes
    of both signs (or a class whose mean is 0 but whose rewards are not). Rewards collected
    before such a class, or before termination, are finite; a loop that pays nothing is
    worth 0.
    """
    gamma = _check_gamma(gamma)
    probs = _as_probabilities(mdp, policy)
    if gamma < 1.0 and mdp.n_states <= DENSE_STATES:
        return _dense_policy_evaluation(mdp, probs, gamma)
    chain, reward = _policy_chain(mdp, probs)
    n = mdp.n_states
    values = np.zeros(n)
    solve = ~mdp.terminal
    if gamma == 1.0:
        values, known = _gamma_one_infinite(chain, reward, np.asarray(mdp.terminal))
        solve &= ~known
    index = np.flatnonzero(solve)
    if index.size:
        # States left out are worth 0 (terminal, zero-reward loops) or are not reached.
        block = chain[index][:, index]
        system = sp.identity(index.size, format="csc") - gamma * block.tocsc()
        values[index] = np.atleast_1d(spla.spsolve(system, reward[index]))
    return values


def _dense_policy_evaluation(mdp: TabularMDP, probs: np.ndarray, gamma: float) -> np.ndarray:
    """``policy_evaluation`` for gamma < 1 on a small MDP: one dense solve over the
    non-terminal states (values are finite, so no recurrent-class analysis is needed)."""
    index = np.flatnonzero(~mdp.terminal)
    values = np.zeros(mdp.n_states)
    if index.size:
        chain = np.einsum("sa,sat->st", probs[index], mdp.transitions[index][:, :, index])
        reward = (probs[index] * mdp.rewards[index]).sum(axis=1)
        values[index] = np.linalg.solve(np.identity(index.size) - gamma * chain, reward)
    return values


def q_error(mdp: TabularMDP, solution: Solution, q: np.ndarray) -> float:
    """max over reachable non-terminal states and valid actions of |Q - Q*|."""
    rows = mdp.reachable & ~mdp.terminal
    mask = mdp.valid_actions & rows[:, None]
    return float(np.max(np.abs(q - solution.q)[mask])) if mask.any() else 0.0


def policy_regret(mdp: TabularMDP, solution: Solution, q: np.ndarray) -> float:
    """V*(s0) - V^greedy(s0), exact, averaged over the initial distribution; the greedy
    policy of ``q`` breaks ties uniformly. ``inf`` when, with gamma = 1, it can end in a loop
    with a negative mean reward (see :func:`policy_evaluation`)."""
    return regret_of_policy(mdp, solution, greedy_policy(q, mdp.valid_actions))


def regret_of_policy(mdp: TabularMDP, solution: Solution, policy: np.ndarray) -> float:
    """V*(s0) - V^policy(s0), exact, averaged over the initial distribution, for ``policy``
    (S actions, or S x A probabilities); see :func:`policy_regret`."""
    v = policy_evaluation(mdp, policy, solution.gamma)
    start = mdp.initial > 0
    gap = solution.v[start] - v[start]
    regret = float(np.dot(mdp.initial[start], gap))
    # Values agree to solver precision for an optimal policy; a regret is never negative.
    return max(regret, 0.0) if np.isfinite(regret) else regret


def finite_horizon_values(mdp: TabularMDP, policy: np.ndarray, horizon: int) -> np.ndarray:
    """(S,) expected undiscounted return of ``policy`` (S actions, or S x A probabilities)
    from each state within ``horizon`` steps, as a time limit cuts episodes: backward
    dynamic programming ``V_h = r_pi + P_pi V_{h-1}``, ``V_0 = 0``, terminal states worth 0.

    Raises:
        ValueError: ``horizon`` below 1, or a policy of the wrong shape.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon = {horizon!r} is invalid; valid: an int >= 1")
    chain, reward = _policy_chain(mdp, _as_probabilities(mdp, policy))
    return _compiled_backward()(chain.indptr, chain.indices, chain.data, reward, int(horizon))


def _backward_values(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, reward: np.ndarray, horizon: int
) -> np.ndarray:
    """``V_h = r + P V_{h-1}`` for h = 1..horizon from ``V_0 = 0``, P in CSR arrays; stops
    at a fixed point (every later step gives the same values, bit for bit). Each row's sum
    runs in scipy's order (``csr_matvec``: from 0, entry by entry), so the values are those
    of ``reward + P @ values`` with the scipy matrix."""
    n = reward.shape[0]
    values = np.zeros(n)
    updated = np.empty(n)
    for _ in range(horizon):
        changed = False
        for state in range(n):
            total = 0.0
            for entry in range(indptr[state], indptr[state + 1]):
                total += data[entry] * values[indices[entry]]
            updated[state] = total + reward[state]
            changed = changed or updated[state] != values[state]
        values, updated = updated, values
        if not changed:
            break
    return values


@cache
def _compiled_backward():  # noqa: ANN202 (a numba dispatcher)
    """``_backward_values`` compiled (and cached on disk) on first use: the DP runs up to a
    thousand backups per evaluation of every tabular run, and numpy's per-call overhead was
    most of an evaluation's time (4 ms per policy on CliffWalking's 1,000-step cap)."""
    import numba

    return numba.njit(cache=True, nogil=True)(_backward_values)


def expected_return(mdp: TabularMDP, policy: np.ndarray, horizon: int) -> float:
    """Expected undiscounted return of ``policy`` within ``horizon`` steps from the initial
    distribution (see :func:`finite_horizon_values`)."""
    return float(np.dot(mdp.initial, finite_horizon_values(mdp, policy, horizon)))


def expected_greedy_return(mdp: TabularMDP, q: np.ndarray, horizon: int) -> float:
    """``expected_return`` of the greedy policy of ``q`` over valid actions, ties shared
    uniformly (the tabular agents' evaluation policy: a uniform pick among tied actions at
    every step)."""
    return expected_return(mdp, greedy_policy(q, mdp.valid_actions), horizon)
