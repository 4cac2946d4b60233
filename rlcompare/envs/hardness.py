"""Hardness measures of a finite env, exact from its TabularMDP (Colosseum's measures).

Three numbers Conserva & Rauber ("Hardness in Markov decision processes: theory and
practice", NeurIPS 2022; the Colosseum benchmark) use to place an MDP on a hardness scale:
the diameter (Jaksch, Ortner & Auer, JMLR 2010), the environmental value norm (Maillard,
Mann & Mannor, NeurIPS 2014) and the sum of the reciprocals of the sub-optimality gaps.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from rlcompare.envs.make import env_spec
from rlcompare.envs.model import NoModelError, TabularMDP, tabular_mdp
from rlcompare.envs.planning import value_iteration
from rlcompare.errors import SpecError


class Hardness(NamedTuple):
    """Hardness measures of one env (see :func:`hardness` for the definitions).

    Attributes:
        states: S, all states of the model.
        actions: A.
        horizon: The env's step limit (``max_episode_steps``), None without one.
        diameter: Largest smallest expected number of steps between two states (inf when
            some reachable state cannot reach another almost surely).
        value_norm: Environmental value norm max_{s,a} std_{s'~P(.|s,a)} V*(s').
        reciprocal_gaps: Sum of 1 / (V*(s) - Q*(s, a)) over positive gaps.
        gamma: The discount of V* and Q*.
    """

    states: int
    actions: int
    horizon: int | None
    diameter: float
    value_norm: float
    reciprocal_gaps: float
    gamma: float


def hardness(env: Any, gamma: float = 0.99, **env_kwargs: Any) -> Hardness:
    """Diameter, value norm and reciprocal gaps of ``env``, exact from its tabular model.

    ``env`` is a gymnasium id (with constructor kwargs), an env instance, or a TabularMDP.
    Only states reachable from the initial distribution, not terminal, and only valid
    actions count.

    Diameter (Jaksch et al. 2010): max over ordered pairs s != s' of min over policies of the
    expected number of steps from s to s', by policy iteration on each target's shortest
    expected hitting time (cost 1 per step, s' absorbing; see :func:`diameter`). A terminal
    state is not a start nor a target: the step into it counts, and the next episode goes on
    from a state drawn from the initial distribution (the reset is free), as a learner
    experiences it. The time limit is ignored: this is the diameter of the unbounded MDP. A
    pair is infinite when no policy reaches s' from s with probability 1 (Colosseum instead
    restricts the diameter to the recurrent class; here an inf says the MDP is not
    communicating).

    Value norm (Maillard et al. 2014; Colosseum's ``calculate_norm_discounted``):
    max over (s, a) of sqrt(Var_{s'~P(.|s,a)} V*(s')), V* the optimal discounted values,
    terminal states worth 0. It is 0 for a deterministic MDP. (Colosseum's code centres each
    V*(s') on the mean of the row of s' rather than of (s, a); we follow the paper.)

    Reciprocal gaps: sum over (s, a) with Delta(s, a) = V*(s) - Q*(s, a) > tol of
    1 / Delta(s, a), tol = 1e-9 * max|r| / (1 - gamma), the value scale. A state whose
    actions are all optimal adds nothing. (Colosseum sums 1 / (Delta + 0.1) over every pair,
    optimal ones included; the unregularised sum is the one of gap-dependent regret bounds.)

    Args:
        env: Gymnasium id, env instance or TabularMDP.
        gamma: Discount of V* and Q*, in [0, 1).
        **env_kwargs: Constructor kwargs of an id (``max_episode_steps`` sets ``horizon``).

    Returns:
        The measures as a :class:`Hardness`.

    Raises:
        SpecError: the env has no tabular model, or an unknown id or kwargs.
        ValueError: gamma outside [0, 1).
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma = {gamma!r} is out of range; valid: float in [0, 1)")
    mdp, horizon = _model(env, env_kwargs)
    live = mdp.reachable & ~mdp.terminal
    solution = value_iteration(mdp, gamma, tol=1e-11 * max(1.0 - gamma, _reward_scale(mdp)))
    return Hardness(
        states=mdp.n_states,
        actions=mdp.n_actions,
        horizon=horizon,
        diameter=diameter(mdp),
        value_norm=_value_norm(mdp, solution.v, live),
        reciprocal_gaps=_reciprocal_gaps(mdp, solution.q, solution.v, live, gamma),
        gamma=float(gamma),
    )


def _model(env: Any, env_kwargs: dict[str, Any]) -> tuple[TabularMDP, int | None]:
    if isinstance(env, TabularMDP):
        return env, None
    try:
        mdp = tabular_mdp(env, **env_kwargs)
    except NoModelError as error:
        raise SpecError(f"hardness needs a tabular model of the env: {error}") from error
    if isinstance(env, str):
        limit = env_kwargs.get("max_episode_steps", env_spec(env).max_episode_steps)
    else:
        limit = getattr(getattr(env, "spec", None), "max_episode_steps", None)
    return mdp, None if limit is None else int(limit)


def _reward_scale(mdp: TabularMDP) -> float:
    listed = mdp.outcome_prob > 0
    return float(np.max(np.abs(mdp.outcome_reward[listed]), initial=0.0)) or 1.0


def _value_norm(mdp: TabularMDP, v: np.ndarray, live: np.ndarray) -> float:
    prob, nxt = mdp.outcome_prob, mdp.outcome_next
    mean = (prob * v[nxt]).sum(axis=2)
    var = (prob * (v[nxt] - mean[:, :, None]) ** 2).sum(axis=2)
    mask = mdp.valid_actions & live[:, None]
    return float(np.sqrt(np.max(var[mask], initial=0.0)))


def _reciprocal_gaps(
    mdp: TabularMDP, q: np.ndarray, v: np.ndarray, live: np.ndarray, gamma: float
) -> float:
    gaps = v[:, None] - q
    tol = 1e-9 * _reward_scale(mdp) / (1.0 - gamma)
    mask = mdp.valid_actions & live[:, None] & (gaps > tol)
    return float(np.sum(1.0 / gaps[mask]))


def _reset_chain(mdp: TabularMDP, live: np.ndarray) -> sp.csr_matrix:
    """Sparse (L*A x L) transitions among the live states, row s * A + a; mass into a
    terminal state goes on to the initial distribution (the reset)."""
    index = np.flatnonzero(live)
    position = np.full(mdp.n_states, -1)
    position[index] = np.arange(index.size)
    n_actions = mdp.n_actions
    s, a, k = np.nonzero(mdp.outcome_prob[index])
    nxt = mdp.outcome_next[index][s, a, k]
    p = mdp.outcome_prob[index][s, a, k]
    rows = s * n_actions + a
    direct = live[nxt]
    start = np.flatnonzero(mdp.initial > 0)
    reset = ~direct & mdp.terminal[nxt]  # off-live, non-terminal targets cannot occur
    r_rows = np.repeat(rows[reset], start.size)
    r_cols = np.tile(position[start], int(reset.sum()))
    r_p = np.outer(p[reset], mdp.initial[start]).ravel()
    shape = (index.size * n_actions, index.size)
    data = np.concatenate([p[direct], r_p])
    coords = (
        np.concatenate([rows[direct], r_rows]),
        np.concatenate([position[nxt[direct]], r_cols]),
    )
    return sp.csr_matrix((data, coords), shape=shape)


def diameter(mdp: TabularMDP, tol: float = 1e-12, max_iterations: int = 10_000) -> float:
    """The diameter of ``mdp`` as :func:`hardness` defines it, all targets at once.

    First, per target t, the states that reach t with probability 1 (the standard fixed
    point: keep shrinking the candidate set to the states that reach t using only actions
    that never leave it); a pair outside makes the diameter infinite. Then the smallest
    expected hitting times by policy iteration on each target's stochastic shortest path
    (Bertsekas & Tsitsiklis 1991), started from a proper policy (the action by which each
    state first joined the reaching set, which moves closer to t with positive probability
    at every step): each policy is evaluated exactly by a linear solve, and every policy that
    follows is proper too. Value iteration needs of the order of D log(1 / tol) sweeps where
    the diameter D is large (SelfHealing: thousands); policy iteration needs a handful.

    Raises:
        ValueError: policy iteration did not settle within ``max_iterations`` improvements.
    """
    live = mdp.reachable & ~mdp.terminal
    n = int(live.sum())
    if n < 2:
        return 0.0
    n_actions = mdp.n_actions
    chain = _reset_chain(mdp, live)
    valid = np.asarray(mdp.valid_actions[live]).reshape(-1)  # (L*A,)
    policy = _proper_policy(chain, valid, n, n_actions)
    if policy is None:
        return float("inf")
    off_target = ~np.identity(n, dtype=bool)  # row t: the states that still have to reach t
    rows = np.arange(n) * n_actions
    identity = sp.identity(n, format="csr")
    times = np.zeros((n, n))
    for _ in range(max_iterations):
        for t in range(n):
            # Sparse LU per target: single-threaded, and the chains have few outcomes per row.
            moves = sp.diags(off_target[t].astype(np.float64)) @ chain[rows + policy[t]]
            times[t] = spla.spsolve((identity - moves).tocsc(), off_target[t].astype(np.float64))
        q = 1.0 + (chain @ times.T).T  # (t, L*A) expected steps after each action
        q = np.where(valid, q, np.inf).reshape(n, n, n_actions)
        current = np.take_along_axis(q, policy[:, :, None], axis=2)[:, :, 0]
        # Only a clear improvement switches, so rounding cannot make the policies cycle.
        better = off_target & (q.min(axis=2) < current - tol * max(1.0, float(times.max())))
        if not better.any():
            return float(times.max())
        policy = np.where(better, q.argmin(axis=2), policy)
    raise ValueError(
        f"diameter of {mdp.name or 'the MDP'}: policy iteration did not settle in "
        f"{max_iterations} improvements"
    )


def _proper_policy(
    chain: sp.csr_matrix, valid: np.ndarray, n: int, n_actions: int
) -> np.ndarray | None:
    """(t, L) actions that reach each target t with probability 1 from every state, or None
    when some state cannot reach some target almost surely (the diameter is infinite).

    Per target, the candidate set W starts at every state and shrinks to the states that
    reach t using only valid actions that never leave W, until it holds still; a state's
    action is the one by which it joined the reaching set, layer by layer from t."""
    support = (chain > 0).astype(np.float64).tocsr()
    target = np.identity(n, dtype=bool)  # row t: target t
    good = np.ones((n, n), dtype=bool)
    while True:
        leaves = (support @ (~(good | target)).T.astype(np.float64)).T > 0  # (t, L*A)
        allowed = ~leaves & valid
        reach = target.copy()
        policy = np.zeros((n, n), dtype=np.int64)
        while True:
            hits = (support @ reach.T.astype(np.float64)).T > 0
            moves = (hits & allowed).reshape(n, n, n_actions)
            joined = moves.any(axis=2) & good & ~reach
            if not joined.any():
                break
            policy[joined] = moves[joined].argmax(axis=1)
            reach |= joined
        if np.array_equal(reach, good | target):
            break
        good = reach & good
    return policy if reach.all() else None
