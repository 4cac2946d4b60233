"""Regression tests from issue 27 ("Trust, round 3") on the tabular learners: certainty
equivalence from logs counts each logged transition once (item 3), PSRL's defaults and its
TSDE redraw points (item 7), and when a DeepSea run counts as solved (item 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rlcompare
from rlcompare.algos.tabular import update
from rlcompare.algos.tabular.agent import make_config
from rlcompare.algos.tabular.rules import new_state
from rlcompare.envs.datasets import Dataset
from rlcompare.experiments import exploration

RIVER = "rlcompare/RiverSwim-v0"


# -- item 3: a model from logs counts every logged transition once ---------------------------
def hand_logs(path: Path) -> str:
    """Six transitions on RiverSwim's states 0 and 1 (the dynamics are the logs' own; only
    the ids must fit the env): (0, 0) -> 0 with reward 5 twice; (0, 1) -> 1 once and -> 0
    twice, reward 0; (1, 0) -> 0 once, reward 0."""
    rows = [(0, 0, 5.0, 0), (0, 1, 0.0, 1), (0, 0, 5.0, 0), (0, 1, 0.0, 0), (1, 0, 0.0, 0)]
    rows.append((0, 1, 0.0, 0))
    obs, actions, rewards, next_obs = (np.array(column) for column in zip(*rows, strict=True))
    data = Dataset(
        observations=obs,
        actions=actions,
        rewards=rewards,
        next_observations=next_obs,
        terminated=np.zeros(len(rows), dtype=bool),
        truncated=np.zeros(len(rows), dtype=bool),
        episode_returns=np.zeros(0),
        env=RIVER,
        source="by hand",
    )
    return str(data.save(path / "hand.npz"))


def test_certainty_equivalence_plans_on_the_logs_own_model(tmp_path: Path) -> None:
    """The maximum-likelihood model of the logs, solved by hand at gamma 0.5 with unlogged
    pairs held at q_init 0: V(0) = Q(0, 0) = 5 / (1 - 0.5) = 10, Q(1, 0) = 0.5 * 10 = 5,
    V(1) = 5, Q(0, 1) = 0.5 * (1/3 * 5 + 2/3 * 10) = 25/6. A bootstrap resample of the six
    transitions (the ``steps`` draws with replacement) gives other shares, other values and
    a different answer per seed."""
    path = hand_logs(tmp_path)
    expected = np.zeros((6, 2))
    expected[0] = [10.0, 25.0 / 6.0]
    expected[1, 0] = 5.0
    hparams = {"gamma": 0.5, "dataset": path, "replan_every": 60, "tolerance": 1e-12}
    for seed in range(5):
        spec = rlcompare.RunSpec(
            "certainty_equivalence", RIVER, seed, steps=60, hparams=hparams, eval_episodes=1
        )
        agent = rlcompare.run(spec).agent
        np.testing.assert_allclose(agent.q, expected, atol=1e-9, err_msg=f"seed {seed}")
        np.testing.assert_array_equal(agent.state.visits[:2], [[2, 3], [1, 0]])


def test_certainty_equivalence_from_logs_does_not_depend_on_the_seed(tmp_path: Path) -> None:
    """On fixed logs the model and its plan are those of the logs, whatever the seed; offline
    Q-learning replays uniform draws from the logs (with replacement), so its seeds differ."""
    env = "FrozenLake-v1"
    data = rlcompare.collect_demonstrations(lambda obs: 0, env, steps=3_000, seed=1, epsilon=1.0)
    path = str(data.save(tmp_path / "lake.npz"))

    def final(algo: str, hparams: dict) -> list[tuple[float, bytes]]:
        specs = [
            rlcompare.RunSpec(
                algo,
                env,
                seed,
                steps=4_000,
                hparams={"gamma": 0.95, "dataset": path, **hparams},
                eval_every=2_000,
                eval_episodes=1,
            )
            for seed in range(3)
        ]
        out = []
        for result in rlcompare.run_batch(specs):
            regret = result.frame.loc[result.frame.metric == "policy_regret", "value"]
            out.append((float(regret.iloc[-1]), result.agent.q.tobytes()))
        return out

    ce = final("certainty_equivalence", {"replan_every": 4_000})
    assert ce[0] == ce[1] == ce[2]
    q_learning = final("q_learning", {})
    assert len({q for _, q in q_learning}) == 3


# -- item 7: PSRL -----------------------------------------------------------------------------
def test_psrl_defaults_take_the_reward_scale_from_the_env() -> None:
    """With nothing set, PSRL's reward prior comes from the env's model: RiverSwim's rewards
    reach 10,000, so a Normal prior of std 10,000 and noise std 100 (1% of it); FrozenLake's
    lie in [0, 1] without noise: Beta(1, 1). Before, N(0, 1) on every env: on RiverSwim the
    far reward never looked worth the swim (regret 57,144 at 50,000 steps, every seed)."""
    river = rlcompare.RunSpec("psrl", RIVER, 0, steps=10, hparams={"gamma": 0.95})
    hp = river.resolved_hparams
    assert (hp["reward_prior"], hp["reward_prior_std"], hp["reward_noise_std"]) == (
        "normal",
        10_000.0,
        100.0,
    )
    lake = rlcompare.RunSpec("psrl", "FrozenLake8x8-v1", 0, steps=10)
    assert lake.resolved_hparams["reward_prior"] == "beta"
    # What a user sets is kept.
    mine = rlcompare.RunSpec("psrl", RIVER, 0, steps=10, hparams={"reward_prior_std": 3.0})
    assert mine.resolved_hparams["reward_prior_std"] == 3.0


def test_psrl_defaults_find_the_far_end_of_riverswim() -> None:
    spec = rlcompare.RunSpec(
        "psrl", RIVER, 0, steps=10_000, hparams={"gamma": 0.95}, eval_every=10_000
    )
    frame = rlcompare.run(spec).frame
    regret = frame.loc[frame.metric == "policy_regret", "value"]
    assert regret.iloc[-1] == pytest.approx(0.0, abs=1e-6)


def first_redraw(sampled: int, resample: str = "doubling") -> int:
    """The visit count of a pair at which PSRL's rule first redraws, the last draw having
    been made at ``sampled`` visits (pure Python: the function the engine compiles)."""
    spec = rlcompare.RunSpec("psrl", "FrozenLake-v1", 0, steps=1, hparams={"resample": resample})
    cfg = make_config("psrl", spec.resolved_hparams)
    st = new_state(2, 1, cfg, 0.0)
    st.sampled_visits[0, 0] = st.visits[0, 0] = sampled
    while True:
        st.visits[0, 0] += 1
        if update._psrl_due(st, cfg, 0, 0, False, False):
            return int(st.visits[0, 0])


@pytest.mark.parametrize("resample", ["doubling", "episode"])
def test_psrl_redraws_where_tsde_does(resample: str) -> None:
    """TSDE (Ouyang et al. 2017) starts a new episode when some N_t(s, a) > 2 N_{t_k}(s, a):
    after a draw at counts 0, 1, 3, 10, at counts 1, 3, 7, 21 (before: 2, 2, 6, 20)."""
    assert [first_redraw(n, resample) for n in (0, 1, 3, 10)] == [1, 3, 7, 21]


def test_psrl_redraw_points_in_the_compiled_engine() -> None:
    """One pair visited over and over: the compiled learner redraws at 1, 3, 7, 15, 31."""
    from rlcompare.algos.tabular import kernels

    spec = rlcompare.RunSpec("psrl", "FrozenLake-v1", 0, steps=1, hparams={"resample": "doubling"})
    cfg = make_config("psrl", spec.resolved_hparams)
    st = new_state(1, 1, cfg, 0.0)
    valid = np.ones((1, 1), dtype=bool)
    rng = np.random.default_rng(0)
    kernels.prepare(st, cfg, valid, rng)
    draws = []
    for step in range(1, 40):
        kernels.learn(st, cfg, valid, 0, 0, 0.0, 0, False, False, step, rng)
        if st.sampled_visits[0, 0] == st.visits[0, 0]:
            draws.append(step)
    assert draws == [1, 3, 7, 15, 31]


# -- item 6: DeepSea solved from the greedy policy's exact value ------------------------------
DEEPSEA = "rlcompare/DeepSea-v0"


def deepsea_frame(seeds: int, episodes: int, hparams: dict, every: int) -> object:
    specs = [
        rlcompare.RunSpec(
            "q_learning",
            DEEPSEA,
            seed,
            episodes=episodes,
            hparams=hparams,
            env_kwargs={"size": 4},
            eval_every=every,
            eval_episodes=1,
            experiment="x",
        )
        for seed in range(seeds)
    ]
    import pandas as pd

    return pd.concat([r.frame for r in rlcompare.run_batch(specs)], ignore_index=True)


def test_untrained_deepsea_runs_are_not_solved() -> None:
    """50 runs of one episode with all values tied: the greedy policy reaches the treasure
    with probability 2^-4 whatever the eval episode shows. Before: 2 of 50 counted as solved
    (the tie-break stream restarts at every evaluation, so a lucky path repeats)."""
    frame = deepsea_frame(50, 1, {"q_init": 0.0}, 100)
    assert int(exploration.solved(frame)["reached"].sum()) == 0


def test_a_trained_optimal_deepsea_run_is_solved() -> None:
    frame = deepsea_frame(1, 300, {"q_init": 1.0, "epsilon": 0.0, "gamma": 0.99}, 100)
    expected = frame.loc[frame.metric == "expected_eval_return", "value"]
    assert expected.iloc[-1] == pytest.approx(0.99)
    assert bool(exploration.solved(frame)["reached"].iloc[0])
