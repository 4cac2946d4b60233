"""TabularMDP: the model of a finite env as arrays, from toy_text's ``P`` or from our own envs.

A TabularMDP keeps every outcome of every (state, action) in the order the env lists them, so
simulating from it with ``sample_index`` and one uniform per step reproduces gymnasium's
toy_text ``categorical_sample`` draw for draw. Planning (``rlcompare.envs.planning``) reads the
same arrays.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rlcompare.envs.make import MAKE_KWARGS, check_env_id, make_env
from rlcompare.errors import SpecError

# gymnasium's toy_text format: P[state][action] = [(probability, next_state, reward, done), ...]
TransitionTable = Mapping[int, Mapping[int, Sequence[tuple[float, int, float, bool]]]]


class NoModelError(SpecError):
    """The env exposes no tabular model (neither ``tabular_mdp()`` nor toy_text's ``P``)."""


class Simulation(NamedTuple):
    """The arrays a simulator needs (compiled code takes them as one argument).

    Attributes:
        next_state: (S x A x K) int64, outcome k's next state (padding repeats outcome 0).
        cdf: (S x A x K) float64, cumulative outcome probabilities (``np.cumsum`` order).
        reward: (S x A x K) float64, outcome k's reward (mean, when ``reward_std`` > 0).
        count: (S x A) int64, number of real outcomes of each pair.
        reward_std: (S x A) float64, std of Gaussian reward noise (0: none).
        terminal: (S,) bool, entering the state ends the episode.
        initial_cdf: (S,) float64, cumulative initial-state distribution.
    """

    next_state: np.ndarray
    cdf: np.ndarray
    reward: np.ndarray
    count: np.ndarray
    reward_std: np.ndarray
    terminal: np.ndarray
    initial_cdf: np.ndarray


def sample_index(cdf: np.ndarray, count: int, u: float) -> int:
    """The first index whose cumulative probability exceeds ``u``; 0 when none does.

    This is toy_text's ``argmax(cumsum(p) > u)`` (including its answer 0 when rounding
    leaves the last cumulative value below ``u``). Plain Python in numba's subset: the
    tabular engine compiles it, our envs call it as is.
    """
    for k in range(count):
        if cdf[k] > u:
            return k
    return 0


def sample_outcome(cdf: np.ndarray, count: np.ndarray, s: int, a: int, u: float) -> int:
    """``sample_index`` on row (s, a) of (S x A x K) ``cdf`` with (S x A) ``count``."""
    for k in range(count[s, a]):
        if cdf[s, a, k] > u:
            return k
    return 0


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP as read-only arrays (S states, A actions, at most K outcomes per pair).

    Attributes:
        outcome_next: (S x A x K) int64 next state of each listed outcome.
        outcome_prob: (S x A x K) float64 probability of each outcome (0 for padding).
        outcome_reward: (S x A x K) float64 (mean) reward of each outcome.
        outcome_count: (S x A) int64 number of listed outcomes.
        reward_std: (S x A) float64 std of Gaussian noise added to rewards (0: none).
        rewards: (S x A) float64 expected immediate reward.
        terminal: (S,) bool, states whose entry ends the episode (their value is 0).
        initial: (S,) float64 initial-state distribution.
        valid_actions: (S x A) bool, actions a learner may choose in each state (all True
            except in envs that document otherwise, e.g. MaxBias).
        reachable: (S,) bool, states reachable from the initial distribution.
        name: Label (the env id where known).
    """

    outcome_next: np.ndarray
    outcome_prob: np.ndarray
    outcome_reward: np.ndarray
    outcome_count: np.ndarray
    reward_std: np.ndarray
    rewards: np.ndarray
    terminal: np.ndarray
    initial: np.ndarray
    valid_actions: np.ndarray
    reachable: np.ndarray
    name: str = ""

    @property
    def n_states(self) -> int:
        """S."""
        return int(self.rewards.shape[0])

    @property
    def n_actions(self) -> int:
        """A."""
        return int(self.rewards.shape[1])

    @functools.cached_property
    def transitions(self) -> np.ndarray:
        """(S x A x S) dense transition probabilities P[s, a, s'] (built on first use)."""
        dense = np.zeros((self.n_states, self.n_actions, self.n_states))
        s, a, k = np.nonzero(self.outcome_prob)
        np.add.at(dense, (s, a, self.outcome_next[s, a, k]), self.outcome_prob[s, a, k])
        return dense

    @functools.cached_property
    def transition_rewards(self) -> np.ndarray:
        """(S x A x S) expected reward given the next state (0 where P[s, a, s'] = 0)."""
        weighted = np.zeros((self.n_states, self.n_actions, self.n_states))
        s, a, k = np.nonzero(self.outcome_prob)
        np.add.at(
            weighted,
            (s, a, self.outcome_next[s, a, k]),
            self.outcome_prob[s, a, k] * self.outcome_reward[s, a, k],
        )
        probs = self.transitions
        return np.divide(weighted, probs, out=np.zeros_like(weighted), where=probs > 0)

    @functools.cached_property
    def simulation(self) -> Simulation:
        """Arrays for simulating the env (see ``Simulation``)."""
        counts = self.outcome_count
        cdf = np.zeros_like(self.outcome_prob)
        for s, a in np.ndindex(counts.shape):
            # np.cumsum over the listed probabilities: the very sums toy_text compares against.
            cdf[s, a, : counts[s, a]] = np.cumsum(self.outcome_prob[s, a, : counts[s, a]])
            cdf[s, a, counts[s, a] :] = np.inf
        return Simulation(
            _frozen(self.outcome_next),
            _frozen(cdf),
            _frozen(self.outcome_reward),
            _frozen(counts),
            _frozen(self.reward_std),
            _frozen(self.terminal),
            _frozen(np.cumsum(self.initial)),
        )

    @classmethod
    def from_transitions(
        cls,
        table: TransitionTable,
        initial: np.ndarray,
        *,
        n_states: int,
        n_actions: int,
        valid_actions: np.ndarray | None = None,
        reward_std: np.ndarray | None = None,
        name: str = "",
    ) -> TabularMDP:
        """Builds the arrays from a toy_text-style table ``P[s][a] = [(p, s', r, done), ...]``.

        A state is terminal when some outcome with ``done`` leads into it. Termination must
        depend on the next state alone on the reachable part of the MDP (it does for every
        toy_text env); otherwise a SpecError says where it does not.
        """
        width = max(len(table[s][a]) for s in range(n_states) for a in range(n_actions))
        shape = (n_states, n_actions, width)
        nxt = np.zeros(shape, dtype=np.int64)
        prob = np.zeros(shape)
        reward = np.zeros(shape)
        done = np.zeros(shape, dtype=bool)
        count = np.zeros((n_states, n_actions), dtype=np.int64)
        for s in range(n_states):
            for a in range(n_actions):
                outcomes = table[s][a]
                count[s, a] = len(outcomes)
                for k, (p, s_next, r, d) in enumerate(outcomes):
                    nxt[s, a, k], prob[s, a, k], reward[s, a, k], done[s, a, k] = s_next, p, r, d
                nxt[s, a, len(outcomes) :] = nxt[s, a, 0]
        terminal = np.zeros(n_states, dtype=bool)
        terminal[nxt[done]] = True
        initial = np.asarray(initial, dtype=np.float64)
        reachable = _reachable(nxt, prob, terminal, initial)
        live = reachable & ~terminal
        mismatch = (done != terminal[nxt]) & (prob > 0) & live[:, None, None]
        if mismatch.any():
            s, a, k = (int(i[0]) for i in np.nonzero(mismatch))
            raise SpecError(
                f"env {name!r}: termination depends on more than the next state (state {s}, "
                f"action {a} -> {int(nxt[s, a, k])}); valid: envs whose episodes end on "
                "entering fixed terminal states"
            )
        valid = np.ones((n_states, n_actions), bool) if valid_actions is None else valid_actions
        std = np.zeros((n_states, n_actions)) if reward_std is None else reward_std
        return cls(
            outcome_next=_frozen(nxt),
            outcome_prob=_frozen(prob),
            outcome_reward=_frozen(reward),
            outcome_count=_frozen(count),
            reward_std=_frozen(np.asarray(std, dtype=np.float64)),
            rewards=_frozen((prob * reward).sum(axis=2)),
            terminal=_frozen(terminal),
            initial=_frozen(initial),
            valid_actions=_frozen(np.asarray(valid, dtype=bool)),
            reachable=_frozen(reachable),
            name=name,
        )


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


def _reachable(
    nxt: np.ndarray, prob: np.ndarray, terminal: np.ndarray, initial: np.ndarray
) -> np.ndarray:
    """States reachable from the initial support under some policy (terminals not expanded)."""
    seen = initial > 0
    queue = deque(np.flatnonzero(seen).tolist())
    while queue:
        s = queue.popleft()
        if terminal[s]:
            continue
        for s_next in np.unique(nxt[s][prob[s] > 0]).tolist():
            if not seen[s_next]:
                seen[s_next] = True
                queue.append(s_next)
    return seen


def _from_env(unwrapped: Any, name: str) -> TabularMDP:
    builder = getattr(unwrapped, "tabular_mdp", None)
    if callable(builder):
        return builder()
    table = getattr(unwrapped, "P", None)
    initial = getattr(unwrapped, "initial_state_distrib", None)
    n_states = getattr(getattr(unwrapped, "observation_space", None), "n", None)
    n_actions = getattr(getattr(unwrapped, "action_space", None), "n", None)
    if table is None or initial is None or n_states is None or n_actions is None:
        raise NoModelError(
            f"env {name!r} has no tabular model; valid: envs exposing tabular_mdp() (ours) or "
            "toy_text's P and initial_state_distrib (FrozenLake, CliffWalking, Taxi)"
        )
    if getattr(unwrapped, "fickle_passenger", False):
        raise NoModelError(
            f"env {name!r} with fickle_passenger=True changes destinations outside its P; "
            "valid: fickle_passenger=False"
        )
    return TabularMDP.from_transitions(
        table, initial, n_states=int(n_states), n_actions=int(n_actions), name=name
    )


@functools.lru_cache(maxsize=32)
def _cached(env_id: str, kwargs_json: str) -> TabularMDP:
    env = make_env(env_id, json.loads(kwargs_json))
    try:
        return _from_env(env.unwrapped, env_id)
    finally:
        env.close()


def tabular_mdp(env: Any, **env_kwargs: Any) -> TabularMDP:
    """The TabularMDP of ``env`` (a gymnasium id, with constructor kwargs, or an env instance).

    Built from ``env.unwrapped.tabular_mdp()`` (our envs) or from toy_text's ``P``
    (FrozenLake, CliffWalking, Taxi). Models of ids are cached per (id, kwargs);
    ``max_episode_steps`` is ignored, since a time limit is not part of the MDP.

    Raises:
        NoModelError: (a SpecError) the env exposes no model.
        SpecError: unknown id or kwargs.
    """
    if isinstance(env, str):
        check_env_id(env)
        kwargs = {k: v for k, v in env_kwargs.items() if k not in MAKE_KWARGS}
        return _cached(env, json.dumps(kwargs, sort_keys=True, default=str))
    if env_kwargs:
        raise SpecError(f"env kwargs {sorted(env_kwargs)} given with an env instance; valid: none")
    unwrapped = getattr(env, "unwrapped", env)
    spec = getattr(env, "spec", None)
    return _from_env(unwrapped, getattr(spec, "id", None) or type(unwrapped).__name__)


def model_or_none(env_id: str, env_kwargs: Mapping[str, Any]) -> TabularMDP | None:
    """``tabular_mdp(env_id, **env_kwargs)``, or None when the env has no model."""
    try:
        return tabular_mdp(env_id, **env_kwargs)
    except NoModelError:
        return None
