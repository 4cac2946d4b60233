"""Model-based tabular learners: the learned model, Dyna-Q's three models, prioritized
sweeping, certainty equivalence and PSRL (validation, rules, both training paths,
reproducibility, metrics)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import assert_engine_matches_step_api

import rlcompare
from rlcompare.algos.tabular import learned_model, update
from rlcompare.algos.tabular.agent import make_config, model_errors
from rlcompare.algos.tabular.rules import HEAP_SIZE, PLANNING_UPDATES, SINCE_PLAN, new_state
from rlcompare.envs.model import TabularMDP
from rlcompare.envs.planning import value_iteration

PLANNERS = ("prioritized_sweeping", "certainty_equivalence", "psrl")
# Every model-based learner, as (algo, hyperparameters).
MODEL_BASED = [
    ("dyna_q", {"model": "last"}),
    ("dyna_q", {"model": "sample"}),
    ("dyna_q", {"model": "expected"}),
    ("prioritized_sweeping", {}),
    ("certainty_equivalence", {"replan_every": 50}),
    ("psrl", {"reward_prior": "beta"}),
    ("psrl", {"resample": "doubling"}),
    ("psrl", {"resample": "every", "resample_every": 100}),
]
COST = ("wall_time_s", "env_steps_per_s")


def without_cost(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame.metric.isin(COST)].reset_index(drop=True)


def metric(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame.loc[frame.metric == name, "value"].reset_index(drop=True)


def fresh(algo: str, n_states: int, n_actions: int, **hparams: Any) -> tuple[Any, Any]:
    """(config, state) of ``algo`` with its defaults and ``hparams``."""
    spec = rlcompare.RunSpec(algo, "FrozenLake-v1", 0, steps=1, hparams=hparams)
    cfg = make_config(algo, spec.resolved_hparams)
    return cfg, new_state(n_states, n_actions, cfg, spec.resolved_hparams.get("q_init", 0.0))


def count(st: Any, s: int, a: int, r: float, s_next: int, terminated: bool = False) -> None:
    """One real transition into the learned model (what ``update.learn`` does first)."""
    st.visits[s, a] += 1
    learned_model.observe(st, s, a, r, s_next, terminated)


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("algo", "hparams", "match"),
    [
        ("dyna_q", {"model": "counts"}, "last, sample, expected"),
        ("prioritized_sweeping", {"theta": -1.0}, "'theta'"),
        ("prioritized_sweeping", {"planning_steps": -1}, "'planning_steps'"),
        ("prioritized_sweeping", {"alpha": 0.1}, "unknown hyperparameter 'alpha'"),
        ("certainty_equivalence", {"replan_every": 0}, "'replan_every'"),
        ("certainty_equivalence", {"max_sweeps": 0}, "'max_sweeps'"),
        ("certainty_equivalence", {"tolerance": 0.0}, "'tolerance'"),
        ("psrl", {"prior": 0.0}, "'prior'"),
        ("psrl", {"gamma": 1.0}, r"'gamma'.*\[0, 1\)"),
        ("psrl", {"reward_prior": "gamma"}, "auto, normal, beta"),
        ("psrl", {"reward_prior_std": 0.0}, "'reward_prior_std'"),
        ("psrl", {"reward_noise_std": -1.0}, "'reward_noise_std'"),
        ("psrl", {"resample": "never"}, "episode, every, doubling"),
        ("psrl", {"resample_every": 0}, "'resample_every'"),
        ("psrl", {"epsilon": 0.1}, "unknown hyperparameter 'epsilon'"),
    ],
)
def test_bad_hyperparameters_are_rejected_by_name(algo: str, hparams: dict, match: str) -> None:
    with pytest.raises(rlcompare.SpecError, match=match):
        rlcompare.RunSpec(algo, "FrozenLake-v1", 0, steps=10, hparams=hparams)


def test_beta_rewards_need_rewards_in_the_unit_interval() -> None:
    with pytest.raises(rlcompare.SpecError, match=r"rewards span \[-100, -1\].*'normal'"):
        rlcompare.RunSpec("psrl", "CliffWalking-v1", 0, steps=10, hparams={"reward_prior": "beta"})
    rlcompare.RunSpec("psrl", "FrozenLake-v1", 0, steps=10, hparams={"reward_prior": "beta"})


def test_new_learners_need_discrete_spaces() -> None:
    for algo in PLANNERS:
        with pytest.raises(rlcompare.SpecError, match="Discrete observation space"):
            rlcompare.RunSpec(algo, "CartPole-v1", 0, steps=10)


# -- the learned model ------------------------------------------------------------------------
def two_state_mdp() -> TabularMDP:
    """From state 0: half to 0 (reward 1), half to 1 (reward 0); state 1 loops, reward 0."""
    table = {
        0: {0: [(0.5, 0, 1.0, False), (0.5, 1, 0.0, False)]},
        1: {0: [(1.0, 1, 0.0, False)]},
    }
    return TabularMDP.from_transitions(table, np.array([1.0, 0.0]), n_states=2, n_actions=1)


def test_model_error_is_exact_on_a_hand_made_case() -> None:
    mdp = two_state_mdp()
    cfg, st = fresh("certainty_equivalence", 2, 1)
    assert model_errors(mdp, st, cfg) == {}  # nothing seen yet
    for s_next, r in ((0, 1.0), (0, 1.0), (0, 1.0), (1, 0.0)):
        count(st, 0, 0, r, s_next)
    # Learned (0.75, 0.25) against (0.5, 0.5): TV 0.25; mean reward 0.75 against 0.5.
    # State 1 was never left, so it does not count.
    errors = model_errors(mdp, st, cfg)
    assert errors["model_error"] == pytest.approx(0.25, abs=1e-15)
    assert errors["model_reward_error"] == pytest.approx(0.25, abs=1e-15)
    count(st, 1, 0, 0.0, 1)
    assert model_errors(mdp, st, cfg)["model_error"] == pytest.approx(0.25, abs=1e-15)


def test_dyna_last_model_error_is_that_of_a_point_mass() -> None:
    mdp = two_state_mdp()
    cfg, st = fresh("dyna_q", 2, 1)
    st.visits[0, 0] = 1
    learned_model.remember(st.model_next, st.model_reward, st.model_terminal, 0, 0, 1.0, 0, False)
    errors = model_errors(mdp, st, cfg)
    assert errors == {"model_error": 0.5, "model_reward_error": 0.5}


def test_sampled_successors_follow_the_counts() -> None:
    cfg, st = fresh("dyna_q", 3, 1, model="sample")
    for s_next in (1, 1, 1, 2):
        count(st, 0, 0, 0.0, s_next)
    draws = [learned_model.sampled_successor(st, 0, 0, u) for u in np.linspace(0, 0.999, 400)]
    assert np.mean(np.asarray(draws) == 0) == pytest.approx(0.75, abs=0.01)  # slot 0 is state 1
    assert st.successor[0, 0, :2].tolist() == [1, 2]


# -- prioritized sweeping ---------------------------------------------------------------------
def test_priority_queue_pops_the_highest_priority_and_keeps_the_larger() -> None:
    cfg, st = fresh("prioritized_sweeping", 3, 2)
    for pair, priority in ((0, 0.3), (1, 0.9), (2, 0.5), (3, 0.1), (4, 0.7)):
        learned_model.queue_pair(st, pair, priority)
    learned_model.queue_pair(st, 3, 0.8)  # raised: a queued pair keeps the larger priority
    learned_model.queue_pair(st, 1, 0.2)  # lowered: ignored
    assert st.counters[HEAP_SIZE] == 5
    order = [learned_model.pop_pair(st) for _ in range(5)]
    assert order == [1, 3, 4, 2, 0]
    assert st.counters[HEAP_SIZE] == 0 and (st.heap_position == -1).all()


def chain_sweep(theta: float) -> Any:
    """A deterministic chain 0 -> 1 -> 2 -> 3 (terminal, reward 1) seen once, in order."""
    cfg, st = fresh("prioritized_sweeping", 4, 1, theta=theta, gamma=0.9, planning_steps=10)
    valid = np.ones((4, 1), dtype=bool)
    for s in range(3):
        st.visits[s, 0] += 1
        learned_model.observe(st, s, 0, float(s == 2), s + 1, s == 2)
        assert not learned_model.sweep(st, cfg, valid, s, 0)
    return st


def test_prioritized_sweeping_carries_the_goal_back_along_predecessors() -> None:
    # The first two transitions change nothing (priority 0 <= theta); the third queues (2, 0)
    # at 1, whose update queues its predecessor (1, 0) at 0.9, then (0, 0) at 0.81.
    st = chain_sweep(theta=0.1)
    np.testing.assert_allclose(st.q[:, 0], [0.81, 0.9, 1.0, 0.0], rtol=1e-15)
    assert st.counters[PLANNING_UPDATES] == 3


def test_prioritized_sweeping_threshold_stops_the_sweep() -> None:
    st = chain_sweep(theta=0.85)  # 0.81 for (0, 0) is below theta: never queued
    np.testing.assert_allclose(st.q[:, 0], [0.0, 0.9, 1.0, 0.0], rtol=1e-15)
    assert st.counters[PLANNING_UPDATES] == 2


# -- certainty equivalence --------------------------------------------------------------------
def test_certainty_equivalence_equals_value_iteration_once_every_pair_is_seen() -> None:
    env = "rlcompare/DynaMaze-v0"
    hparams = {"gamma": 0.95, "epsilon": 1.0, "replan_every": 5_000, "tolerance": 1e-10}
    spec = rlcompare.RunSpec("certainty_equivalence", env, 0, steps=40_000, hparams=hparams)
    agent = rlcompare.run(spec).agent
    q, agent_visits = agent.q, agent.state.visits
    mdp = rlcompare.tabular_mdp(env)
    states = mdp.reachable & ~mdp.terminal
    assert (agent_visits[states] > 0).all()  # the uniform policy saw every reachable pair
    solution = value_iteration(mdp, 0.95)
    np.testing.assert_allclose(q[states], solution.q[states], atol=1e-8)


def test_certainty_equivalence_plans_from_a_dataset(tmp_path: Any) -> None:
    env = "rlcompare/DynaMaze-v0"
    data = rlcompare.collect_demonstrations(lambda obs: 0, env, steps=20_000, seed=3, epsilon=1.0)
    path = data.save(tmp_path / "maze.npz")
    spec = rlcompare.RunSpec(
        "certainty_equivalence",
        env,
        0,
        steps=20_000,
        hparams={"gamma": 0.95, "dataset": str(path), "replan_every": 20_000},
        eval_episodes=1,
    )
    frame = rlcompare.run(spec).frame
    assert metric(frame, "policy_regret").iloc[-1] == pytest.approx(0.0, abs=1e-9)
    assert metric(frame, "model_error").iloc[-1] == 0.0  # a deterministic maze


# -- PSRL ------------------------------------------------------------------------------------
def test_psrl_samples_valid_distributions_that_concentrate_on_the_true_model() -> None:
    env = "rlcompare/RiverSwim-v0"
    # A reward prior at the river's scale (3,000 at the far end): with N(0, 1) the far end
    # never looks worth the swim and PSRL stays at the bank.
    hparams = {"gamma": 0.95, "reward_prior_std": 10_000.0, "reward_noise_std": 100.0}
    spec = rlcompare.RunSpec("psrl", env, 0, steps=30_000, hparams=hparams)
    agent = rlcompare.run(spec).agent
    st, cfg, mdp = agent.state, agent.cfg, rlcompare.tabular_mdp(env)
    rng = np.random.default_rng(0)
    learned_model.sample_posterior(st, cfg, agent.valid, rng)
    totals = st.sampled_prob.sum(axis=2) + st.sampled_other_prob
    np.testing.assert_allclose(totals, 1.0, rtol=1e-12)
    assert (st.sampled_prob >= 0).all() and (st.sampled_other_prob >= 0).all()
    # Posterior counts: the seen successors' counts add up to the visits.
    np.testing.assert_array_equal(st.successor_count.sum(axis=2), st.visits)
    well_seen = st.visits > 2_000
    assert well_seen.sum() >= 4
    sampled = np.zeros((mdp.n_states, mdp.n_actions, mdp.n_states))
    for s, a in zip(*np.nonzero(well_seen), strict=True):
        for k in range(st.n_successors[s, a]):
            sampled[s, a, st.successor[s, a, k]] += st.sampled_prob[s, a, k]
        sampled[s, a, st.sampled_other[s, a]] += st.sampled_other_prob[s, a]
    distance = 0.5 * np.abs(sampled - mdp.transitions).sum(axis=2)
    assert distance[well_seen].max() < 0.05
    # Unseen pairs are drawn from the prior: one unseen next state takes all the mass.
    cfg0, fresh_state = fresh("psrl", mdp.n_states, mdp.n_actions)
    learned_model.sample_posterior(fresh_state, cfg0, agent.valid, rng)
    np.testing.assert_array_equal(fresh_state.sampled_other_prob, 1.0)


def test_psrl_draws_a_new_mdp_per_episode() -> None:
    spec = rlcompare.RunSpec(
        "psrl", "FrozenLake-v1", 0, steps=2_000, hparams={"gamma": 0.95}, eval_every=1_000
    )
    frame = rlcompare.run(spec).frame
    episodes = int(frame.loc[frame.metric == "episode_return", "episode"].max())
    updates = metric(frame, "planning_updates")
    # The prior's MDP is solved before the first step, then one more MDP per episode.
    assert updates.iloc[0] > 0 and updates.is_monotonic_increasing
    assert updates.iloc[-1] >= (episodes + 1) * 16 * 4


@pytest.mark.parametrize(
    ("resample", "ended", "visits", "since", "due"),
    [
        ("episode", True, 3, 1, True),  # an episode's end
        ("episode", False, 3, 1, False),
        ("episode", False, 4, 1, False),  # TSDE: more than doubled (4 > 2 * 2 is not)
        ("episode", False, 5, 1, True),  # a count more than doubled within a long episode
        ("every", True, 9, 99, False),  # only the step count matters
        ("every", False, 1, 100, True),
        ("doubling", True, 3, 1, False),
        ("doubling", False, 5, 1, True),
    ],
)
def test_psrl_resampling_rules(
    resample: str, ended: bool, visits: int, since: int, due: bool
) -> None:
    cfg, st = fresh("psrl", 2, 1, resample=resample, resample_every=100)
    st.sampled_visits[0, 0], st.visits[0, 0] = 2, visits
    st.counters[SINCE_PLAN] = since
    assert bool(update._psrl_due(st, cfg, 0, 0, ended, False)) is due


# -- every model-based learner: both paths, batches, metrics -----------------------------------
@pytest.mark.parametrize(("algo", "hparams"), MODEL_BASED)
def test_a_seed_gives_the_same_rows_alone_or_in_a_batch(algo: str, hparams: dict) -> None:
    fields = {"steps": 1_500, "hparams": {"gamma": 0.95, **hparams}, "eval_every": 500}
    specs = [rlcompare.RunSpec(algo, "FrozenLake-v1", seed, **fields) for seed in range(3)]
    batch = rlcompare.run_batch(specs)
    alone = rlcompare.run(specs[1])
    pd.testing.assert_frame_equal(without_cost(batch[1].frame), without_cost(alone.frame))
    np.testing.assert_array_equal(batch[1].agent.q, alone.agent.q)
    assert not without_cost(batch[0].frame).equals(without_cost(batch[1].frame))


@pytest.mark.parametrize(("algo", "hparams"), MODEL_BASED)
def test_engine_equals_the_step_api_on_the_real_env(algo: str, hparams: dict) -> None:
    spec = rlcompare.RunSpec(
        algo,
        "FrozenLake-v1",
        4,
        steps=2_000,
        hparams={"gamma": 0.95, **hparams},
        eval_every=700,
        eval_episodes=2,
    )
    frame = assert_engine_matches_step_api(spec)
    assert {"planning_updates", "model_error", "model_reward_error"} <= set(frame.metric)


@pytest.mark.parametrize("algo", PLANNERS)
def test_planners_learn_an_env_without_a_model(algo: str) -> None:
    # PSRL acts on one posterior sample: a Beta posterior (rewards are 0 or 1 here) is
    # sure of the rarely tried action's reward sooner than N(0, 1) with noise std 1.
    hparams = {"gamma": 0.9, **({"reward_prior": "beta"} if algo == "psrl" else {})}
    spec = rlcompare.RunSpec(algo, "rlcompare_test/NoModelLoop-v0", 0, steps=3_000, hparams=hparams)
    result = rlcompare.run(spec)
    # The greedy policy moves right: 2 reached within the 30-step limit, despite the slips.
    np.testing.assert_array_equal(result.agent.q[:2].argmax(axis=1), [1, 1])
    assert metric(result.frame, "eval_return").iloc[-1] == 1.0
    assert "model_error" not in set(result.frame.metric)  # no true model to compare with
    assert result.agent.state.successor.shape[2] == 3  # room for every state


@pytest.mark.parametrize(("algo", "hparams"), MODEL_BASED[:6])
def test_every_model_based_learner_solves_the_chain(algo: str, hparams: dict) -> None:
    # PSRL with the Beta posterior: the chain's rewards are 0 or 1. With N(0, 1) and noise
    # std 1 a self-loop's sampled reward of 2 posterior stds outvalues the goal at gamma 0.9.
    spec = rlcompare.RunSpec(
        algo, "rlcompare/Chain-v0", 0, steps=2_000, hparams={"gamma": 0.9, **hparams}
    )
    frame = rlcompare.run(spec).frame
    assert metric(frame, "policy_regret").iloc[-1] == pytest.approx(0.0, abs=1e-12)


def test_the_expected_model_fixes_dyna_on_slippery_ice() -> None:
    """On slippery FrozenLake the last-seen model replays transitions the env rarely makes;
    the counts do not (mean final regret over 6 seeds)."""

    def final_regret(model: str) -> float:
        specs = [
            rlcompare.RunSpec(
                "dyna_q",
                "FrozenLake-v1",
                seed,
                steps=10_000,
                hparams={"gamma": 0.95, "model": model, "planning_steps": 10},
                eval_every=10_000,
            )
            for seed in range(6)
        ]
        runs = rlcompare.run_batch(specs)
        return float(np.mean([metric(run.frame, "policy_regret").iloc[-1] for run in runs]))

    assert final_regret("expected") < final_regret("last") / 2


def test_update_learn_matches_its_compiled_version() -> None:
    """The plain-Python rules (the reference) and the compiled ones apply the same updates."""
    from rlcompare.algos.tabular import kernels

    mdp = rlcompare.tabular_mdp("FrozenLake-v1")
    valid = np.array(mdp.valid_actions)
    results = []
    for learn in (update.learn, kernels.learn):
        cfg, st = fresh("prioritized_sweeping", 16, 4, gamma=0.95)
        rng, env_rng = np.random.default_rng(1), np.random.default_rng(2)
        s = 0
        for step in range(1, 300):
            a = int(rng.integers(4))
            k = int(env_rng.choice(3, p=mdp.outcome_prob[s, a]))
            s_next = int(mdp.outcome_next[s, a, k])
            done = bool(mdp.terminal[s_next])
            reward = float(mdp.outcome_reward[s, a, k])
            learn(st, cfg, valid, s, a, reward, s_next, done, False, step, rng)
            s = 0 if done else s_next
        results.append(st.q.copy())
    np.testing.assert_array_equal(results[0], results[1])
