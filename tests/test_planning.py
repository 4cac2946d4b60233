"""Value iteration, exact policy evaluation and the TabularMDP extraction, on MDPs whose
answers can be checked by hand."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rlcompare
from rlcompare.envs.model import TabularMDP
from rlcompare.envs.planning import greedy_policy, policy_regret, q_error


def stay_or_quit() -> TabularMDP:
    """State 0: action 0 stays and pays 1; action 1 pays 5 and ends (state 1 is terminal)."""
    table = {
        0: {0: [(1.0, 0, 1.0, False)], 1: [(1.0, 1, 5.0, True)]},
        1: {0: [(1.0, 1, 0.0, True)], 1: [(1.0, 1, 0.0, True)]},
    }
    return TabularMDP.from_transitions(table, np.array([1.0, 0.0]), n_states=2, n_actions=2)


def test_value_iteration_closed_form_staying_pays() -> None:
    # gamma 0.9: staying forever is worth 1 / (1 - 0.9) = 10 > 5.
    solution = rlcompare.value_iteration(stay_or_quit(), 0.9)
    np.testing.assert_allclose(solution.v, [10.0, 0.0], atol=1e-8)
    np.testing.assert_allclose(solution.q[0], [10.0, 5.0], atol=1e-8)
    assert solution.policy[0] == 0
    assert solution.iterations > 1


def test_value_iteration_closed_form_quitting_pays() -> None:
    # gamma 0.5: staying forever is worth 2 < 5, so Q*(0, stay) = 1 + 0.5 * 5 = 3.5.
    solution = rlcompare.value_iteration(stay_or_quit(), 0.5)
    np.testing.assert_allclose(solution.q[0], [3.5, 5.0], atol=1e-9)
    assert solution.policy[0] == 1


def test_policy_evaluation_is_exact() -> None:
    mdp = stay_or_quit()
    # Uniform policy: V = 0.5 (1 + 0.9 V) + 0.5 * 5  =>  V = 3 / 0.55.
    v = rlcompare.policy_evaluation(mdp, np.full((2, 2), 0.5), 0.9)
    assert v[0] == pytest.approx(3 / 0.55, abs=1e-12)
    assert v[1] == 0.0
    assert rlcompare.policy_evaluation(mdp, np.array([1, 0]), 0.9)[0] == pytest.approx(5.0)


def test_gamma_one_on_cliff_walking() -> None:
    mdp = rlcompare.tabular_mdp("CliffWalking-v1")
    solution = rlcompare.value_iteration(mdp, 1.0)
    start = int(np.argmax(mdp.initial))
    assert solution.v[start] == pytest.approx(-13.0)  # 13 steps along the cliff edge
    v = rlcompare.policy_evaluation(mdp, solution.policy, 1.0)
    assert v[start] == pytest.approx(-13.0)


def test_gamma_one_never_finishing_policies() -> None:
    cliff = rlcompare.tabular_mdp("CliffWalking-v1")
    up = np.zeros(cliff.n_states, dtype=np.int64)  # bumps into the top wall forever
    start = int(np.argmax(cliff.initial))
    assert rlcompare.policy_evaluation(cliff, up, 1.0)[start] == -np.inf
    solution = rlcompare.value_iteration(cliff, 1.0)
    q_up = np.zeros((cliff.n_states, 4))
    q_up[:, 0] = 1.0
    assert policy_regret(cliff, solution, q_up) == np.inf
    # With zero rewards a never-ending walk is worth 0, not -inf.
    lake = rlcompare.tabular_mdp("FrozenLake-v1")
    assert rlcompare.policy_evaluation(lake, np.zeros(16, np.int64), 1.0)[0] == 0.0


def test_infinite_values_raise() -> None:
    river = rlcompare.tabular_mdp("rlcompare/RiverSwim-v0")
    with pytest.raises(ValueError, match="no terminal state"):
        rlcompare.value_iteration(river, 1.0)
    # A positive-reward loop beside a terminal state: values grow without bound.
    loop = {
        0: {0: [(1.0, 0, 1.0, False)], 1: [(1.0, 1, 0.0, True)]},
        1: {0: [(1.0, 1, 0.0, True)], 1: [(1.0, 1, 0.0, True)]},
    }
    mdp = TabularMDP.from_transitions(loop, np.array([1.0, 0.0]), n_states=2, n_actions=2)
    with pytest.raises(ValueError, match="did not converge"):
        rlcompare.value_iteration(mdp, 1.0, max_iterations=1_000)
    with pytest.raises(ValueError, match="gamma"):
        rlcompare.value_iteration(river, 1.5)


def test_frozen_lake_values_agree_with_policy_evaluation() -> None:
    mdp = rlcompare.tabular_mdp("FrozenLake-v1")
    solution = rlcompare.value_iteration(mdp, 0.99)
    v = rlcompare.policy_evaluation(mdp, solution.policy, 0.99)
    np.testing.assert_allclose(v, solution.v, atol=1e-7)
    assert solution.v[0] == pytest.approx(0.542, abs=1e-3)
    assert q_error(mdp, solution, solution.q) == 0.0
    assert policy_regret(mdp, solution, solution.q) == pytest.approx(0.0, abs=1e-7)
    assert policy_regret(mdp, solution, np.zeros((16, 4))) > 0.4


def test_greedy_policy_shares_ties() -> None:
    probs = greedy_policy(
        np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]]),
        np.array([[True, True, True], [True, True, False]]),
    )
    np.testing.assert_allclose(probs, [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize(
    ("env_id", "kwargs", "shape"),
    [
        ("FrozenLake-v1", {}, (16, 4)),
        ("FrozenLake-v1", {"map_name": "8x8"}, (64, 4)),
        ("FrozenLake8x8-v1", {}, (64, 4)),
        ("CliffWalking-v1", {}, (48, 4)),
        ("Taxi-v4", {}, (500, 6)),
    ],
)
def test_tabular_mdp_of_toy_text(env_id: str, kwargs: dict, shape: tuple[int, int]) -> None:
    mdp = rlcompare.tabular_mdp(env_id, **kwargs)
    assert (mdp.n_states, mdp.n_actions) == shape
    np.testing.assert_allclose(mdp.transitions.sum(axis=2), 1.0)
    assert mdp.transitions.shape == (*shape, shape[0])
    assert mdp.transition_rewards.shape == (*shape, shape[0])
    assert mdp.initial.sum() == pytest.approx(1.0)
    assert mdp.terminal.any()
    assert rlcompare.tabular_mdp(env_id, **kwargs) is mdp  # cached per (id, kwargs)


def test_tabular_mdp_expected_rewards() -> None:
    cliff = rlcompare.tabular_mdp("CliffWalking-v1")
    start = int(np.argmax(cliff.initial))
    assert cliff.rewards[start, 1] == -100.0  # right from the start falls off the cliff
    assert cliff.rewards[start, 0] == -1.0
    # Taxi: an illegal drop-off costs 10.
    assert rlcompare.tabular_mdp("Taxi-v4").rewards.min() == -10.0


def test_tabular_mdp_of_an_instance_and_errors() -> None:
    mdp = rlcompare.tabular_mdp(gym.make("FrozenLake-v1", is_slippery=False))
    assert mdp.outcome_next.shape == (16, 4, 1)
    with pytest.raises(rlcompare.SpecError, match="has no tabular model"):
        rlcompare.tabular_mdp("CartPole-v1")
    with pytest.raises(rlcompare.SpecError, match="fickle_passenger"):
        rlcompare.tabular_mdp("Taxi-v4", fickle_passenger=True)
    with pytest.raises(rlcompare.SpecError, match="unknown env"):
        rlcompare.tabular_mdp("FrozenLake-v9")


def pay_then_rest() -> TabularMDP:
    """State 0: action 0 pays -1 and moves to state 1, which never terminates and pays 0;
    action 1 pays -5 and ends (state 2 is terminal). V*(0) = -1."""
    table = {
        0: {0: [(1.0, 1, -1.0, False)], 1: [(1.0, 2, -5.0, True)]},
        1: {0: [(1.0, 1, 0.0, False)], 1: [(1.0, 1, 0.0, False)]},
        2: {0: [(1.0, 2, 0.0, True)], 1: [(1.0, 2, 0.0, True)]},
    }
    return TabularMDP.from_transitions(table, np.array([1.0, 0.0, 0.0]), n_states=3, n_actions=2)


def test_gamma_one_transient_reward_before_a_zero_loop_is_finite() -> None:
    mdp = pay_then_rest()
    solution = rlcompare.value_iteration(mdp, 1.0)
    assert solution.v[0] == pytest.approx(-1.0)
    values = rlcompare.policy_evaluation(mdp, np.array([0, 0, 0]), 1.0)
    np.testing.assert_allclose(values, [-1.0, 0.0, 0.0])
    assert policy_regret(mdp, solution, solution.q) == 0.0
    quit_ = rlcompare.policy_evaluation(mdp, np.array([1, 0, 0]), 1.0)
    assert quit_[0] == pytest.approx(-5.0)


def test_gamma_one_closed_classes_by_their_mean_reward() -> None:
    """State 0 goes half to the terminal state 4, half into the loop 1 <-> 2 that pays +2
    then -1 (mean +0.5 per step: +inf); state 3 pays -1 in a self-loop (-inf); from state 5
    (reward 3) half to 3, half to the loop: nan, both signs."""
    table = {
        0: {0: [(0.5, 4, 7.0, True), (0.5, 1, 7.0, False)]},
        1: {0: [(1.0, 2, 2.0, False)]},
        2: {0: [(1.0, 1, -1.0, False)]},
        3: {0: [(1.0, 3, -1.0, False)]},
        4: {0: [(1.0, 4, 0.0, True)]},
        5: {0: [(0.5, 3, 3.0, False), (0.5, 1, 3.0, False)]},
    }
    start = np.array([0.5, 0.0, 0.0, 0.0, 0.0, 0.5])
    mdp = TabularMDP.from_transitions(table, start, n_states=6, n_actions=1)
    values = rlcompare.policy_evaluation(mdp, np.zeros(6, np.int64), 1.0)
    np.testing.assert_array_equal(values, [np.inf, np.inf, np.inf, -np.inf, 0.0, np.nan])
    # A loop whose rewards cancel (+1, -1, ...) has no sum; one whose rewards are 0 has 0.
    table[1][0], table[2][0] = [(1.0, 2, 1.0, False)], [(1.0, 1, -1.0, False)]
    table[3][0] = [(1.0, 3, 0.0, False)]
    mdp = TabularMDP.from_transitions(table, start, n_states=6, n_actions=1)
    values = rlcompare.policy_evaluation(mdp, np.zeros(6, np.int64), 1.0)
    assert np.isnan(values[[0, 1, 2, 5]]).all() and values[3] == 0.0 and values[4] == 0.0


def test_finite_horizon_return_by_hand() -> None:
    from rlcompare.envs.planning import expected_return, finite_horizon_values

    mdp = stay_or_quit()
    # Staying pays 1 per step until the limit; quitting pays 5 once; half-half: V_h =
    # 0.5 * (1 + V_{h-1}) + 0.5 * 5, so V_1 = 3, V_2 = 4.5, V_3 = 5.25.
    assert expected_return(mdp, np.array([0, 0]), 7) == pytest.approx(7.0)
    assert expected_return(mdp, np.array([1, 0]), 7) == pytest.approx(5.0)
    np.testing.assert_allclose(finite_horizon_values(mdp, np.full((2, 2), 0.5), 3), [5.25, 0.0])
    with pytest.raises(ValueError, match="horizon"):
        expected_return(mdp, np.array([0, 0]), 0)


@pytest.mark.parametrize("env", ["FrozenLake-v1", "Taxi-v4"])
def test_dense_and_sparse_policy_values_agree(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlcompare.envs import planning

    mdp = rlcompare.tabular_mdp(env)
    policy = planning.greedy_policy(np.round(rlcompare.value_iteration(mdp, 0.9).q))
    values = {}
    for dense in (10**6, 0):
        monkeypatch.setattr(planning, "DENSE_STATES", dense)
        values[dense] = (
            planning.policy_evaluation(mdp, policy, 0.9),
            planning.finite_horizon_values(mdp, policy, 50),
        )
    for fast, slow in zip(values[10**6], values[0], strict=True):
        np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9)
