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
