"""Textbook envs: each is defined by its TabularMDP and simulated from it.

Every env here steps by drawing one uniform per transition (plus one normal where rewards
are noisy) from its own ``np_random``, exactly as the tabular engine simulates the same
arrays, exposes its model through ``env.unwrapped.tabular_mdp()``, and reports in every
step's ``info["is_success"]`` whether the episode has reached its goal so far.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlcompare.envs.model import TabularMDP, sample_index, sample_outcome

Outcomes = list[tuple[float, int, float, bool]]


class TabularEnv(gym.Env[int, int]):
    """A gymnasium env that simulates a TabularMDP; subclasses say what counts as success."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, mdp: TabularMDP, render_mode: str | None = None) -> None:
        self._mdp = mdp
        self._sim = mdp.simulation
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(mdp.n_states)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        self._state = 0
        self._succeeded = False

    def tabular_mdp(self) -> TabularMDP:
        """The model this env simulates."""
        return self._mdp

    def is_success(self, state: int, action: int, next_state: int) -> bool:
        """Whether the transition reaches the goal (subclasses override)."""
        return False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        sim = self._sim
        self._state = sample_index(sim.initial_cdf, self._mdp.n_states, self.np_random.random())
        self._succeeded = False
        return int(self._state), {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        sim, s, a = self._sim, self._state, int(action)
        k = sample_outcome(sim.cdf, sim.count, s, a, self.np_random.random())
        s_next = int(sim.next_state[s, a, k])
        reward = sim.reward[s, a, k]
        if sim.reward_std[s, a] > 0.0:
            reward = reward + sim.reward_std[s, a] * self.np_random.standard_normal()
        self._succeeded = self._succeeded or self.is_success(s, a, s_next)
        self._state = s_next
        return (
            s_next,
            float(reward),
            bool(sim.terminal[s_next]),
            False,
            {"is_success": self._succeeded},
        )


def _table(n_states: int, n_actions: int) -> dict[int, dict[int, Outcomes]]:
    return {s: {a: [] for a in range(n_actions)} for s in range(n_states)}


def _one_hot(n_states: int, state: int) -> np.ndarray:
    initial = np.zeros(n_states)
    initial[state] = 1.0
    return initial


class MaxBiasEnv(TabularEnv):
    """Sutton & Barto Example 6.7 (maximization bias).

    States: 0 = A (start), 1 = B, 2 = terminal. At A, action 0 is *right* (ends the episode,
    reward 0) and action 1 is *left* (to B, reward 0). Every action at B ends the episode
    with reward drawn from N(-0.1, 1). The action space is Discrete(max(2, n_actions_b));
    the model's ``valid_actions`` marks A's two actions and B's ``n_actions_b`` actions, and
    our tabular learners choose among valid actions only, as in the book. For agents that
    ignore the mask, an invalid action acts as ``action % n_valid`` (at A: even = right,
    odd = left, so a uniform policy still goes left half the time). Success: going right at A
    (the optimal choice), so ``success_rate`` is 1 minus the share of left turns.
    """

    def __init__(self, n_actions_b: int = 10, render_mode: str | None = None) -> None:
        if isinstance(n_actions_b, bool) or not isinstance(n_actions_b, int) or n_actions_b < 1:
            raise ValueError(f"n_actions_b = {n_actions_b!r} is invalid; valid: a positive int")
        n_actions = max(2, n_actions_b)
        table = _table(3, n_actions)
        valid = np.zeros((3, n_actions), dtype=bool)
        valid[0, :2] = valid[1, :n_actions_b] = valid[2, :] = True
        std = np.zeros((3, n_actions))
        std[1, :] = 1.0
        for a in range(n_actions):
            table[0][a] = [(1.0, 2, 0.0, True)] if a % 2 == 0 else [(1.0, 1, 0.0, False)]
            table[1][a] = [(1.0, 2, -0.1, True)]
            table[2][a] = [(1.0, 2, 0.0, True)]
        mdp = TabularMDP.from_transitions(
            table,
            _one_hot(3, 0),
            n_states=3,
            n_actions=n_actions,
            valid_actions=valid,
            reward_std=std,
            name="rlcompare/MaxBias-v0",
        )
        super().__init__(mdp, render_mode)

    def is_success(self, state: int, action: int, next_state: int) -> bool:
        return state == 0 and next_state == 2


# Sutton & Barto Figure 8.2: 6 x 9 grid, (row, column) cells.
MAZE_SHAPE = (6, 9)
MAZE_START = (2, 0)
MAZE_GOAL = (0, 8)
MAZE_WALLS = ((1, 2), (2, 2), (3, 2), (4, 5), (0, 7), (1, 7), (2, 7))
_MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right


class DynaMazeEnv(TabularEnv):
    """The maze of Sutton & Barto Example 8.1 / Figure 8.2.

    Observation ``row * 9 + column`` over all 54 cells (wall cells are never entered).
    Actions 0..3 = up, down, left, right; moves into a wall or off the grid stay put. Reward
    1 on entering the goal (0, 8), which ends the episode; 0 otherwise. Start (2, 0). No step
    limit (the book's setting).
    """

    def __init__(self, render_mode: str | None = None) -> None:
        rows, cols = MAZE_SHAPE
        n_states = rows * cols
        goal = MAZE_GOAL[0] * cols + MAZE_GOAL[1]
        table = _table(n_states, 4)
        for row, col in np.ndindex(MAZE_SHAPE):
            s = row * cols + col
            for a, (dr, dc) in enumerate(_MOVES):
                r2, c2 = row + dr, col + dc
                if not (0 <= r2 < rows and 0 <= c2 < cols) or (r2, c2) in MAZE_WALLS:
                    r2, c2 = row, col
                s2 = r2 * cols + c2
                at_goal = s2 == goal
                table[s][a] = [(1.0, s2, 1.0 if at_goal else 0.0, at_goal)]
        self._goal = goal
        start = MAZE_START[0] * cols + MAZE_START[1]
        mdp = TabularMDP.from_transitions(
            table,
            _one_hot(n_states, start),
            n_states=n_states,
            n_actions=4,
            name="rlcompare/DynaMaze-v0",
        )
        super().__init__(mdp, render_mode)

    def is_success(self, state: int, action: int, next_state: int) -> bool:
        return next_state == self._goal


class RiverSwimEnv(TabularEnv):
    """RiverSwim of Strehl & Littman (2008), a continuing chain of ``n_states`` (6) states.

    Action 0 swims with the current: always one state left (staying in state 0, where it
    pays ``small_reward``). Action 1 swims against it: in state 0, right with probability 0.3,
    else stay; in the middle, right 0.3, stay 0.6, left 0.1; in the last state, stay 0.3 with
    ``large_reward``, else back left 0.7. Starts in state 0 or 1 with equal probability. No
    terminal state (the registered id cuts episodes at 20 steps). Success: reaching the last
    state during the episode.
    """

    def __init__(
        self,
        n_states: int = 6,
        small_reward: float = 5.0,
        large_reward: float = 10_000.0,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(n_states, bool) or not isinstance(n_states, int) or n_states < 3:
            raise ValueError(f"n_states = {n_states!r} is invalid; valid: an int >= 3")
        last = n_states - 1
        table = _table(n_states, 2)
        for s in range(n_states):
            table[s][0] = [(1.0, max(s - 1, 0), small_reward if s == 0 else 0.0, False)]
            if s == 0:
                table[s][1] = [(0.7, 0, 0.0, False), (0.3, 1, 0.0, False)]
            elif s == last:
                table[s][1] = [(0.7, s - 1, 0.0, False), (0.3, s, large_reward, False)]
            else:
                table[s][1] = [
                    (0.1, s - 1, 0.0, False),
                    (0.6, s, 0.0, False),
                    (0.3, s + 1, 0.0, False),
                ]
        initial = np.zeros(n_states)
        initial[:2] = 0.5
        self._last = last
        mdp = TabularMDP.from_transitions(
            table, initial, n_states=n_states, n_actions=2, name="rlcompare/RiverSwim-v0"
        )
        super().__init__(mdp, render_mode)

    def is_success(self, state: int, action: int, next_state: int) -> bool:
        return next_state == self._last


class DeepSeaEnv(TabularEnv):
    """bsuite's Deep Sea: an N x N staircase that rewards only relentless exploration.

    The agent starts at the top-left cell and descends one row per step; the episode ends
    after ``size`` steps. In each cell one action (0 or 1, fixed per cell by
    ``mapping_seed``, as bsuite randomizes it; None: action 1 everywhere) moves *right* at a
    cost of 0.01 / size, the other moves *left* (clipped at column 0) for free. Moving right
    from the bottom-right cell also pays 1, the only positive reward. With
    ``deterministic=False`` a right move fails (the column stays) with probability 1 / size
    and the bottom corners add N(0, 1) reward noise, as in bsuite. Observation
    ``row * size + column``; ``size * size`` is the terminal state. Success: collecting the 1.
    """

    def __init__(
        self,
        size: int = 10,
        deterministic: bool = True,
        mapping_seed: int | None = 0,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size = {size!r} is invalid; valid: a positive int")
        if mapping_seed is None:
            mapping = np.ones((size, size), dtype=np.int64)
        else:
            mapping = np.random.default_rng(mapping_seed).integers(0, 2, (size, size))
        self.action_mapping = mapping
        n_states = size * size + 1
        end = size * size
        table = _table(n_states, 2)
        std = np.zeros((n_states, 2))
        cost = 0.01 / size
        for row, col in np.ndindex(size, size):
            s = row * size + col
            last_row = row == size - 1

            def below(column: int, row: int = row) -> int:
                return end if row == size - 1 else (row + 1) * size + column

            for a in range(2):
                if a == mapping[row, col]:  # right
                    reward = -cost + (1.0 if col == size - 1 else 0.0)
                    moved = below(min(col + 1, size - 1))
                    if deterministic or size == 1:
                        table[s][a] = [(1.0, moved, reward, last_row)]
                    else:
                        table[s][a] = [
                            (1.0 - 1.0 / size, moved, reward, last_row),
                            (1.0 / size, below(col), reward, last_row),
                        ]
                else:
                    table[s][a] = [(1.0, below(max(col - 1, 0)), 0.0, last_row)]
                if not deterministic and last_row and col in (0, size - 1):
                    std[s, a] = 1.0
        for a in range(2):
            table[end][a] = [(1.0, end, 0.0, True)]
        self.size = size
        mdp = TabularMDP.from_transitions(
            table,
            _one_hot(n_states, 0),
            n_states=n_states,
            n_actions=2,
            reward_std=std,
            name="rlcompare/DeepSea-v0",
        )
        super().__init__(mdp, render_mode)

    def is_success(self, state: int, action: int, next_state: int) -> bool:
        size = self.size
        return state == size * size - 1 and action == self.action_mapping[size - 1, size - 1]


class ChainEnv(TabularEnv):
    """A deterministic chain of ``length`` states, the trivial env every learner must solve.

    Starts in state 0. Action 1 moves right, action 0 moves left (staying in state 0).
    Entering the last state pays 1 and ends the episode. Success: reaching it.
    """

    def __init__(self, length: int = 5, render_mode: str | None = None) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or length < 2:
            raise ValueError(f"length = {length!r} is invalid; valid: an int >= 2")
        last = length - 1
        table = _table(length, 2)
        for s in range(last):
            table[s][0] = [(1.0, max(s - 1, 0), 0.0, False)]
            table[s][1] = [(1.0, s + 1, 1.0 if s + 1 == last else 0.0, s + 1 == last)]
        table[last][0] = table[last][1] = [(1.0, last, 0.0, True)]
        self._last = last
        mdp = TabularMDP.from_transitions(
            table, _one_hot(length, 0), n_states=length, n_actions=2, name="rlcompare/Chain-v0"
        )
        super().__init__(mdp, render_mode)

    def is_success(self, state: int, action: int, next_state: int) -> bool:
        return next_state == self._last
