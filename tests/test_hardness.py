"""rlcompare.hardness on MDPs whose diameter, value norm and gaps are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rlcompare
from rlcompare.envs.model import TabularMDP


def _mdp(table: dict, n_states: int, n_actions: int, start: int = 0) -> TabularMDP:
    initial = np.zeros(n_states)
    initial[start] = 1.0
    return TabularMDP.from_transitions(table, initial, n_states=n_states, n_actions=n_actions)


def _chain(n: int) -> TabularMDP:
    """n states in a line; action 0 steps left, 1 steps right (walls hold), reward 0."""
    table = {
        s: {0: [(1.0, max(s - 1, 0), 0.0, False)], 1: [(1.0, min(s + 1, n - 1), 0.0, False)]}
        for s in range(n)
    }
    return _mdp(table, n, 2)


@pytest.mark.parametrize("n", [2, 5, 9])
def test_chain_diameter_is_n_minus_one(n: int) -> None:
    result = rlcompare.hardness(_chain(n))
    assert result.diameter == pytest.approx(n - 1)
    assert (result.states, result.actions, result.horizon) == (n, 2, None)
    assert result.value_norm == 0.0  # deterministic: V*(s') has no variance


def test_two_state_gaps_by_hand() -> None:
    # State 0: stay for +1, or move to 1 for 0; state 1: move to 0 or stay, both 0.
    # gamma 0.5: V*(0) = 2, V*(1) = 0.5 * 2 = 1, Q*(0, move) = 0.5, Q*(1, stay) = 0.5.
    table = {
        0: {0: [(1.0, 0, 1.0, False)], 1: [(1.0, 1, 0.0, False)]},
        1: {0: [(1.0, 0, 0.0, False)], 1: [(1.0, 1, 0.0, False)]},
    }
    result = rlcompare.hardness(_mdp(table, 2, 2), gamma=0.5)
    assert result.reciprocal_gaps == pytest.approx(1 / 1.5 + 1 / 0.5)
    assert result.diameter == pytest.approx(1.0)
    assert result.value_norm == 0.0
    assert result.gamma == 0.5


def test_value_norm_of_a_fifty_fifty_split() -> None:
    # State 0 goes to 1 or 2 with probability 1/2; 1 pays 1 forever, 2 pays nothing.
    # gamma 0.5: V*(1) = 2, V*(2) = 0, so the split's std is 1. 2 never reaches 1.
    table = {
        0: {0: [(0.5, 1, 0.0, False), (0.5, 2, 0.0, False)]},
        1: {0: [(1.0, 1, 1.0, False)]},
        2: {0: [(1.0, 2, 0.0, False)]},
    }
    result = rlcompare.hardness(_mdp(table, 3, 1), gamma=0.5)
    assert result.value_norm == pytest.approx(1.0)
    assert result.reciprocal_gaps == 0.0  # one action: no gaps
    assert math.isinf(result.diameter)


def test_terminal_resets_to_the_initial_distribution() -> None:
    # 0 -> 1 -> 2 (entering 2 ends the episode); episodes start in 0 or 1 with 1/2 each.
    # 1 reaches 0 only through the reset: 1 step into 2, then 0 with prob 1/2, else from 1
    # again: T = 1 + T / 2, T = 2. 0 reaches 1 in one step.
    table = {
        0: {0: [(1.0, 1, 0.0, False)]},
        1: {0: [(1.0, 2, 1.0, True)]},
        2: {0: [(1.0, 2, 0.0, False)]},
    }
    mdp = TabularMDP.from_transitions(table, np.array([0.5, 0.5, 0.0]), n_states=3, n_actions=1)
    assert rlcompare.hardness(mdp).diameter == pytest.approx(2.0)


def test_env_without_a_model_is_refused() -> None:
    with pytest.raises(rlcompare.SpecError) as info:
        rlcompare.hardness("CartPole-v1")
    assert "CartPole-v1" in str(info.value) and "needs a tabular model" in str(info.value)


def test_bad_gamma_is_refused() -> None:
    with pytest.raises(ValueError, match="gamma"):
        rlcompare.hardness(_chain(3), gamma=1.0)


def test_frozenlake_horizon_and_finite_diameter() -> None:
    result = rlcompare.hardness("FrozenLake-v1")
    assert (result.states, result.actions, result.horizon) == (16, 4, 100)
    assert math.isfinite(result.diameter) and result.diameter > 6  # 6 steps if deterministic
    assert result.value_norm > 0  # slippery


# ---------------------------------------------------------------- env families with a knob
def _riverswim_diameter(n: int) -> float:
    """From state 0 to the last, swimming right all the way: the first step right takes
    T_0 = 1 / 0.3; from a middle state (right 0.3, stay 0.6, left 0.1),
    T_i = 1 + 0.6 T_i + 0.1 (T_{i-1} + T_i), so T_i = (1 + 0.1 T_{i-1}) / 0.3. Every other
    pair is a sub-path of this one or a walk left of at most n - 1 deterministic steps."""
    step, total = 1 / 0.3, 1 / 0.3
    for _ in range(n - 2):
        step = (1 + 0.1 * step) / 0.3
        total += step
    return total


@pytest.mark.parametrize("n_states", [3, 4, 6, 9, 12])
def test_riverswim_diameter_in_closed_form(n_states: int) -> None:
    result = rlcompare.hardness("rlcompare/RiverSwim-v0", n_states=n_states)
    assert result.diameter == pytest.approx(_riverswim_diameter(n_states), rel=1e-9)
    assert (result.states, result.actions, result.horizon) == (n_states, 2, 20)


def test_riverswim_grows_harder_with_its_length() -> None:
    results = [rlcompare.hardness("rlcompare/RiverSwim-v0", n_states=n) for n in (3, 5, 8, 12)]
    diameters = [r.diameter for r in results]
    gaps = [r.reciprocal_gaps for r in results]
    assert diameters == sorted(diameters) and len(set(diameters)) == 4
    assert gaps == sorted(gaps) and len(set(gaps)) == 4


@pytest.mark.parametrize("size", [2, 3, 5, 8])
def test_deepsea_diameter_is_two_size_minus_two(size: int) -> None:
    # Deterministic, one row down per step: from row 1 to the bottom row takes N - 1 steps
    # to the episode's end (the reset to the top is free), then N - 1 steps down again.
    result = rlcompare.hardness("rlcompare/DeepSea-v0", size=size)
    assert result.diameter == pytest.approx(2 * size - 2)
    assert result.value_norm == 0.0
    assert (result.states, result.horizon) == (size * size + 1, None)


def test_deepsea_gaps_grow_with_its_size() -> None:
    gaps = [rlcompare.hardness("rlcompare/DeepSea-v0", size=n).reciprocal_gaps for n in (3, 5, 8)]
    assert gaps == sorted(gaps) and len(set(gaps)) == 3


@pytest.mark.parametrize("size", [2, 3, 5, 8])
def test_open_frozen_lake_diameter_is_the_grid_distance(size: int) -> None:
    # frozen_p = 1: no holes whatever the seed. Without slipping the hardest pair is the
    # top-right to the bottom-left corner: 2 (size - 1) moves (through the goal and the
    # reset to the start is no shorter).
    result = rlcompare.hardness(
        "rlcompare/RandomFrozenLake-v0", map_size=size, frozen_p=1.0, is_slippery=False
    )
    assert result.diameter == pytest.approx(2 * size - 2)
    assert result.value_norm == 0.0
    assert (result.states, result.actions, result.horizon) == (size * size, 4, 200)


def test_slippery_frozen_lake_grows_harder_with_its_size() -> None:
    diameters = [
        rlcompare.hardness("rlcompare/RandomFrozenLake-v0", map_size=n, frozen_p=1.0).diameter
        for n in (2, 4, 6, 8)
    ]
    assert diameters == sorted(diameters) and len(set(diameters)) == 4
    for size, diameter in zip((2, 4, 6, 8), diameters, strict=True):
        assert diameter > 2 * size - 2  # slipping only ever costs steps


def test_selfhealing_diameter_falls_as_faults_come_more_often() -> None:
    # The states hardest to reach show the symptoms of a fault: the more often faults arrive,
    # the sooner a policy can reach them (measured: 1138 / 626 / 299 steps at 0.05 / 0.2 / 0.8).
    results = [
        rlcompare.hardness("rlcompare/SelfHealing-v0", gamma=0.95, fault_rate=rate)
        for rate in (0.05, 0.2, 0.8)
    ]
    diameters = [r.diameter for r in results]
    assert diameters == sorted(diameters, reverse=True) and len(set(diameters)) == 3
    assert all(math.isfinite(d) for d in diameters)
    assert all(r.value_norm > 0 and r.reciprocal_gaps > 0 for r in results)
    assert (results[0].states, results[0].actions, results[0].horizon) == (108, 7, 100)


def test_frozenlake_diameter_by_policy_iteration_agrees_with_a_long_value_iteration() -> None:
    # The reference: hitting times by plain value iteration over every target, run to a
    # fixed point (what diameter computed before it used policy iteration).
    mdp = rlcompare.tabular_mdp("FrozenLake8x8-v1")
    reference = _value_iteration_diameter(mdp)
    assert rlcompare.hardness(mdp).diameter == pytest.approx(reference, rel=1e-9)


def _value_iteration_diameter(mdp: TabularMDP) -> float:
    from rlcompare.envs.hardness import _reset_chain

    live = mdp.reachable & ~mdp.terminal
    n, n_actions = int(live.sum()), mdp.n_actions
    chain = _reset_chain(mdp, live)
    valid = np.asarray(mdp.valid_actions[live]).reshape(-1)
    target = np.identity(n, dtype=bool)
    times = np.zeros((n, n))
    for _ in range(200_000):
        q = 1.0 + (chain @ times.T).T
        q = np.where(valid, q, np.inf).reshape(n, n, n_actions).min(axis=2)
        q = np.where(target, 0.0, q)
        if np.max(np.abs(q - times)) < 1e-13 * q.max():
            return float(q.max())
        times = q
    raise AssertionError("value iteration did not converge")
