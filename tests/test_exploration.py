"""Exploration strategies alone: exact probabilities checkable by hand, and draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlcompare.algos.exploration import (
    UCB,
    Boltzmann,
    EpsilonGreedy,
    exponential_schedule,
    linear_schedule,
    strategy_from_hparams,
)
from rlcompare.errors import SpecError


def test_epsilon_greedy_shares_ties() -> None:
    probs = EpsilonGreedy(0.2).probabilities(np.array([1.0, 3.0, 3.0, 0.0]))
    # 0.2 / 4 everywhere, plus 0.8 split between the two maximal actions.
    np.testing.assert_allclose(probs, [0.05, 0.45, 0.45, 0.05])


def test_epsilon_greedy_respects_valid_actions() -> None:
    probs = EpsilonGreedy(0.5).probabilities(
        np.array([9.0, 1.0, 0.0]), valid=np.array([False, True, True])
    )
    np.testing.assert_allclose(probs, [0.0, 0.75, 0.25])


def test_boltzmann() -> None:
    probs = Boltzmann(1.0).probabilities(np.array([0.0, math.log(2.0)]))
    np.testing.assert_allclose(probs, [1 / 3, 2 / 3])
    # Large values do not overflow (the maximum is subtracted first).
    np.testing.assert_allclose(Boltzmann(0.01).probabilities(np.array([1e4, 1e4])), [0.5, 0.5])


def test_ucb_tries_untried_actions_first_then_uses_the_bonus() -> None:
    ucb = UCB(1.0)
    np.testing.assert_allclose(
        ucb.probabilities(np.array([5.0, 0.0, 0.0]), np.array([3, 0, 0])), [0.0, 0.5, 0.5]
    )
    # n(s) = 5: bonuses sqrt(ln 5 / 1) = 1.27 and sqrt(ln 5 / 4) = 0.63.
    np.testing.assert_allclose(
        ucb.probabilities(np.array([0.0, 0.5]), np.array([1, 4])), [1.0, 0.0]
    )
    np.testing.assert_allclose(
        ucb.probabilities(np.array([0.0, 0.7]), np.array([1, 4])), [0.0, 1.0]
    )
    with pytest.raises(SpecError, match="counts"):
        ucb.probabilities(np.zeros(2))


def test_probabilities_of_a_batch_of_rows() -> None:
    q = np.array([[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(EpsilonGreedy(0.1).probabilities(q), [[0.95, 0.05], [0.5, 0.5]])


def test_select_is_the_inverse_cdf_of_the_probabilities() -> None:
    strategy = EpsilonGreedy(0.2)
    q = np.array([1.0, 3.0, 3.0, 0.0])  # probabilities 0.05, 0.45, 0.45, 0.05
    assert [strategy.select(q, None, 0, u) for u in (0.04, 0.3, 0.6, 0.99)] == [0, 1, 2, 3]
    rows = np.array([q, q])
    np.testing.assert_array_equal(strategy.select(rows, None, 0, np.array([0.3, 0.6])), [1, 2])
    # Never an action of probability 0, whatever the uniform.
    assert strategy.select(q, None, 0, 0.0, valid=np.array([False, True, True, True])) == 1


def test_select_frequencies_match_probabilities() -> None:
    strategy = Boltzmann(0.5)
    q = np.array([0.0, 0.5, 1.0])
    draws = strategy.select(
        np.tile(q, (20_000, 1)), None, 0, np.random.default_rng(0).random(20_000)
    )
    frequencies = np.bincount(draws, minlength=3) / draws.size
    np.testing.assert_allclose(frequencies, strategy.probabilities(q), atol=0.02)


def test_schedules() -> None:
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 1_000) == pytest.approx(0.1)
    assert exponential_schedule(1.0, 0.01, 100, 50) == pytest.approx(0.1)
    assert exponential_schedule(1.0, 0.01, 100, 500) == pytest.approx(0.01)
    decaying = EpsilonGreedy(1.0, 0.0, "linear", 10)
    assert [decaying.parameter(t) for t in (0, 5, 20)] == pytest.approx([1.0, 0.5, 0.0])
    assert EpsilonGreedy(0.3).parameter(10**9) == 0.3


def test_strategy_from_hparams() -> None:
    hp = {
        "exploration": "boltzmann",
        "temperature": 2.0,
        "temperature_final": 0.5,
        "temperature_decay": "exponential",
        "temperature_decay_steps": 100,
    }
    strategy = strategy_from_hparams(hp)
    assert isinstance(strategy, Boltzmann)
    assert strategy.parameter(100) == pytest.approx(0.5)
    assert isinstance(strategy_from_hparams({"exploration": "ucb", "ucb_c": 2.0}), UCB)
    with pytest.raises(SpecError, match="epsilon_final"):
        strategy_from_hparams(
            {"epsilon": 0.5, "epsilon_final": 0.0, "epsilon_decay": "exponential"}
        )
