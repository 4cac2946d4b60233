"""The experiment modules of notebooks 01-04: their spec grids on the notebooks' own smoke and
default parameters, and their analysis on tiny hand-made frames."""

from __future__ import annotations

import ast
import inspect
import math
from types import ModuleType
from typing import Any

import matplotlib.pyplot as plt
import nbformat
import pandas as pd
import pytest
from conftest import REPO

from rlcompare import SpecError
from rlcompare.algos.deep.hparams import ZOO_CARTPOLE_DQN
from rlcompare.app.suite import load_profiles
from rlcompare.experiments import (
    common,
    convergence,
    exploration,
    model_based,
    sample_efficiency,
)


def notebook_parameters(name: str, profile: str) -> dict[str, Any]:
    """The parameters a notebook runs with under ``profile``: its parameters cell's literals
    updated by the profile's overrides."""
    cells = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4).cells
    (cell,) = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    defaults = {s.targets[0].id: ast.literal_eval(s.value) for s in ast.parse(cell.source).body}
    return {**defaults, **load_profiles().get(profile, {}).get(name, {})}


def build(module: ModuleType, name: str, profile: str) -> Any:
    """``module.specs`` called with the notebook's parameters under ``profile``."""
    accepted = inspect.signature(module.specs).parameters
    params = notebook_parameters(name, profile)
    return module.specs(**{k: v for k, v in params.items() if k in accepted})


def budgets(specs: list) -> dict[str, tuple[int | None, int | None, int | None]]:
    """``{env: (steps, episodes, eval_every)}``; fails if an env has two budgets."""
    found = {(s.env, s.steps, s.episodes, s.eval_every) for s in specs}
    table = {env: (steps, episodes, every) for env, steps, episodes, every in found}
    assert len(table) == len(found), found
    return table


def count(specs: list, field: str) -> dict[Any, int]:
    return pd.Series([getattr(s, field) for s in specs]).value_counts().to_dict()


TABULAR_ENVS = ["FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "Taxi-v4"]
ALGOS_01 = ["q_learning", "sarsa", "expected_sarsa", "double_q"]


# ------------------------------------------------------------------------------- 01 grids
@pytest.mark.parametrize(
    ("profile", "seeds", "budget", "every", "cliff_episodes", "maxbias"),
    [
        ("smoke", 2, dict.fromkeys(TABULAR_ENVS, 2000), 500, 20, (4, 20)),
        (
            "default",
            20,
            dict(zip(TABULAR_ENVS, [200000, 400000, 100000, 400000], strict=True)),
            None,
            500,
            (200, 300),
        ),
    ],
)
def test_convergence_grid(profile, seeds, budget, every, cliff_episodes, maxbias):
    specs = build(convergence, "01_convergence", profile)
    # 4 envs x 4 algos x 2 schedules x seeds.
    assert len(specs.convergence) == 4 * 4 * 2 * seeds
    assert [s.env for s in specs.convergence[:: 4 * 2 * seeds]] == TABULAR_ENVS
    assert count(specs.convergence, "algo") == dict.fromkeys(ALGOS_01, 4 * 2 * seeds)
    # The default profile evaluates 10 times (profiles.yaml), the smoke profile 4 times.
    evals = 4 if profile == "smoke" else 10
    expected = {env: (n, None, every or n // evals) for env, n in budget.items()}
    assert budgets(specs.convergence) == expected
    schedules = [s.hparams["alpha_schedule"] for s in specs.convergence]
    assert schedules.count("constant") == schedules.count("visit") == 4 * 4 * seeds
    assert {s.resolved_hparams["gamma"] for s in specs.convergence} == {0.9}
    assert {s.experiment for s in specs.convergence} == {"convergence"}

    # Example 6.6 keeps 50 seeds in the default profile (cheap: 500 episodes each).
    assert len(specs.cliff) == 3 * (2 if profile == "smoke" else 50)
    assert budgets(specs.cliff) == {"CliffWalking-v1": (None, cliff_episodes, None)}
    assert {s.hparams["alpha"] for s in specs.cliff} == {0.5}
    maxbias_seeds, maxbias_episodes = maxbias
    assert count(specs.maxbias, "algo") == {"q_learning": maxbias_seeds, "double_q": maxbias_seeds}
    assert budgets(specs.maxbias) == {"rlcompare/MaxBias-v0": (None, maxbias_episodes, None)}
    assert specs.provenance["gamma"] == 0.9 and specs.provenance["steps"] == budget


# ------------------------------------------------------------------------------- 02 grids
@pytest.mark.parametrize(
    ("profile", "seeds", "sizes", "psrl_sizes", "deepsea_seeds", "deep", "deep_every"),
    [
        ("smoke", 2, [4, 6], [4, 6], 2, (1, 600), 200),
        ("default", 20, [4, 6, 8, 10, 12, 16], [4, 6, 8], 10, (10, 30000), 1500),
    ],
)
def test_exploration_grid(profile, seeds, sizes, psrl_sizes, deepsea_seeds, deep, deep_every):
    deep_seeds, deep_steps = deep
    specs = build(exploration, "02_exploration", profile)
    labels = ["eps_0.1", "eps_decay", "boltzmann", "ucb", "optimistic", "psrl"]
    # 6 strategies x 2 envs x seeds, optimism then PSRL last.
    assert len(specs.tabular) == 6 * 2 * seeds
    assert list(dict.fromkeys(s.experiment for s in specs.tabular)) == labels
    assert count(specs.tabular, "algo") == {"q_learning": 5 * 2 * seeds, "psrl": 2 * seeds}
    assert {s.algo for s in specs.tabular if s.experiment == "psrl"} == {"psrl"}
    river, lake = "rlcompare/RiverSwim-v0", "FrozenLake8x8-v1"
    tabular_budget = 2000 if profile == "smoke" else None
    evals = 3 if profile == "smoke" else 20
    river_steps, lake_steps = (tabular_budget or 20000), (tabular_budget or 200000)
    assert budgets(specs.tabular) == {
        river: (river_steps, None, river_steps // evals),
        lake: (lake_steps, None, lake_steps // evals),
    }
    optimistic = {s.env: s.hparams["q_init"] for s in specs.tabular if s.experiment == "optimistic"}
    assert optimistic == {river: 200000.0, lake: 20.0}
    assert {
        s.resolved_hparams["epsilon"] for s in specs.tabular if s.experiment == "optimistic"
    } == {0.0}
    # PSRL's reward prior follows each env's reward scale: RiverSwim's far reward of 10,000,
    # FrozenLake's rewards in [0, 1]; the notebook's discount, no epsilon.
    psrl = {s.env: s.resolved_hparams for s in specs.tabular if s.experiment == "psrl"}
    assert psrl[river]["reward_prior"] == "normal"
    assert (psrl[river]["reward_prior_std"], psrl[river]["reward_noise_std"]) == (10000.0, 100.0)
    assert psrl[lake]["reward_prior"] == "beta"
    assert {hp["gamma"] for hp in psrl.values()} == {0.95}
    assert {hp["resample"] for hp in psrl.values()} == {"episode"}
    assert all("epsilon" not in hp for hp in psrl.values())

    # PSRL only at psrl_deepsea_sizes: it solves a sampled N^2-state MDP per episode.
    assert len(specs.deepsea) == (5 * len(sizes) + len(psrl_sizes)) * deepsea_seeds
    assert list(dict.fromkeys(s.experiment for s in specs.deepsea)) == labels
    sea_psrl = [s for s in specs.deepsea if s.experiment == "psrl"]
    assert sorted({s.env_kwargs["size"] for s in sea_psrl}) == psrl_sizes
    assert len(sea_psrl) == len(psrl_sizes) * deepsea_seeds
    assert {s.algo for s in sea_psrl} == {"psrl"}
    # DeepSea's moves cost -0.01 / N, so not the Beta prior: a Normal at its scale of 1.
    assert {
        (hp["reward_prior"], hp["reward_prior_std"], hp["reward_noise_std"])
        for hp in (s.resolved_hparams for s in sea_psrl)
    } == {("normal", 1.0, 0.01)}
    assert sorted({s.env_kwargs["size"] for s in specs.deepsea}) == sizes
    assert {s.eval_every for s in specs.deepsea} == {100}
    assert {s.resolved_hparams["gamma"] for s in specs.deepsea} == {0.99}

    assert len(specs.deep) == 3 * 1 * deep_seeds  # both profiles run CartPole only
    assert budgets(specs.deep) == {"CartPole-v1": (deep_steps, None, deep_every)}
    assert [s.hparams["exploration"] for s in specs.deep[::deep_seeds]] == [
        "epsilon_greedy",
        "boltzmann",
        "noisy",
    ]
    batch = 32 if profile == "smoke" else 64
    assert {s.resolved_hparams["batch_size"] for s in specs.deep} == {batch}


def test_exploration_refuses_an_env_without_optimism():
    params = notebook_parameters("02_exploration", "smoke")
    accepted = inspect.signature(exploration.specs).parameters
    kwargs = {k: v for k, v in params.items() if k in accepted}
    kwargs["optimism"] = {"rlcompare/RiverSwim-v0": 1.0}
    with pytest.raises(SpecError, match="FrozenLake8x8-v1"):
        exploration.specs(**kwargs)


# ------------------------------------------------------------------------------- 03 grids
@pytest.mark.parametrize(
    ("profile", "seeds", "steps", "every"), [("smoke", 2, 800, 400), ("default", 10, 30000, 1500)]
)
def test_sample_efficiency_grid(profile, seeds, steps, every):
    specs = build(sample_efficiency, "03_sample_efficiency", profile)
    assert len(specs.runs) == 8 * 1 * seeds  # 8 variants, CartPole only in both profiles
    assert count(specs.runs, "algo") == {"dqn": 6 * seeds, "sb3_dqn": seeds, "ppo": seeds}
    assert budgets(specs.runs) == {"CartPole-v1": (steps, None, every)}
    by_label = {s.experiment: s.resolved_hparams for s in specs.runs}
    assert list(by_label) == [
        "dqn",
        "double_dueling",
        "prioritized",
        "n_step_3",
        "no_target",
        "no_replay",
        "sb3_dqn",
        "ppo",
    ]
    assert by_label["n_step_3"]["n_steps"] == 3 and by_label["dqn"]["n_steps"] == 1
    assert by_label["no_target"]["target_network"] is False
    batch = 32 if profile == "smoke" else 64
    assert by_label["sb3_dqn"]["batch_size"] == by_label["dqn"]["batch_size"] == batch
    assert by_label["ppo"]["batch_size"] == (32 if profile == "smoke" else 256)
    assert specs.provenance["steps"] == steps


def test_sample_efficiency_refuses_a_malformed_variant():
    with pytest.raises(SpecError, match="variant 'dqn'.*\\[algo, \\{hparam: value\\}\\]"):
        sample_efficiency.specs(
            variants={"dqn": ["dqn"]},
            envs=["CartPole-v1"],
            seeds=1,
            steps=100,
            dqn_hparams={},
            ppo_hparams={},
            evals=2,
            eval_episodes=1,
        )


@pytest.mark.parametrize(
    ("name", "parameter"),
    [("02_exploration", "deep_hparams"), ("03_sample_efficiency", "dqn_hparams")],
)
def test_notebook_dqn_settings_are_rl_zoo3s(name, parameter):
    # The notebooks keep the settings as a parameter because the smoke profile replaces them
    # whole; their default must stay rl-zoo3's (the text says so).
    assert notebook_parameters(name, "default")[parameter] == ZOO_CARTPOLE_DQN


# ------------------------------------------------------------------------------- 04 grids
@pytest.mark.parametrize(
    ("profile", "maze_seeds", "maze_episodes", "seeds", "evals"),
    [("smoke", 2, 5, 2, 4), ("default", 30, 50, 10, 20)],
)
def test_model_based_grid(profile, maze_seeds, maze_episodes, seeds, evals):
    specs = build(model_based, "04_model_based", profile)
    assert len(specs.maze) == 3 * maze_seeds
    assert count(specs.maze, "algo") == {"dyna_q": 3 * maze_seeds}
    assert sorted({s.hparams["planning_steps"] for s in specs.maze}) == [0, 5, 50]
    assert budgets(specs.maze) == {"rlcompare/DynaMaze-v0": (None, maze_episodes, None)}
    assert specs.maze_hparams == {
        "alpha": 0.1,
        "epsilon": 0.1,
        "gamma": 0.95,
        "planning_steps": [0, 5, 50],
    }
    steps = {
        "rlcompare/DynaMaze-v0": 10000,
        "CliffWalking-v1": 10000,
        "Taxi-v4": 50000,
        "FrozenLake-v1": 20000,
        "rlcompare/SelfHealing-v0": 20000,
    }
    if profile == "smoke":
        steps = dict.fromkeys(steps, 2000)
    assert budgets(specs.compare) == {env: (n, None, n // evals) for env, n in steps.items()}
    # Every learner on every env, but PSRL not on Taxi (the full profile's).
    assert count(specs.compare, "experiment") == {
        **dict.fromkeys(model_based.LEARNERS, 5 * seeds),
        "psrl": 4 * seeds,
    }
    assert "Taxi-v4" not in {s.env for s in specs.compare if s.algo == "psrl"}
    planning = {
        (s.algo, s.resolved_hparams["planning_steps"])
        for s in specs.compare
        if "planning_steps" in s.resolved_hparams
    }
    assert planning == {("dyna_q", 10), ("prioritized_sweeping", 10)}
    models = {
        s.experiment: s.resolved_hparams["model"] for s in specs.compare if s.algo == "dyna_q"
    }
    assert models == {
        "dyna_q-last": "last",
        "dyna_q-sample": "sample",
        "dyna_q-expected": "expected",
    }


def test_model_based_full_profile_runs_psrl_on_taxi():
    specs = build(model_based, "04_model_based", "full")
    assert {s.env for s in specs.compare if s.algo == "psrl"} == set(
        notebook_parameters("04_model_based", "full")["steps"]
    )


def test_model_based_psrl_envs_must_be_in_steps():
    with pytest.raises(ValueError, match=r"psrl_envs \['X'\] are not in steps"):
        model_based.specs(
            maze_seeds=1, maze_episodes=1, planning_steps=[0], seeds=1,
            steps={"FrozenLake-v1": 10}, dyna_planning_steps=1, replan_every=1,
            psrl_envs=["X"], gamma=0.9, evals=1, eval_episodes=1,
        )  # fmt: skip


# ------------------------------------------------------------------------------ common
def test_grid_per_budget_gives_each_env_its_budget_and_schedule():
    specs = common.grid_per_budget(
        "q_learning", {"FrozenLake-v1": 100, "Taxi-v4": 50}, 2, 4, experiment="x"
    )
    assert [(s.env, s.seed, s.steps, s.eval_every) for s in specs] == [
        ("FrozenLake-v1", 0, 100, 25),
        ("FrozenLake-v1", 1, 100, 25),
        ("Taxi-v4", 0, 50, 12),
        ("Taxi-v4", 1, 50, 12),
    ]
    assert {s.experiment for s in specs} == {"x"}


def test_keyed_joins_key_columns():
    table = pd.DataFrame({"env": ["A", "B"], "size": [4, 6], "iqm": [0.5, 1.5]})
    assert common.keyed(table, ["env", "size"], "iqm") == {"A/4": 0.5, "B/6": 1.5}
    assert common.keyed(table.iloc[:0], ["env"], "iqm") == {}
    with pytest.raises(ValueError, match=r"missing column\(s\) \['algo'\]"):
        common.keyed(table, ["algo"], "iqm")


# ----------------------------------------------------------------------------- analysis
def tidy(records: list[tuple[str, str, str, int, str, float]], **extra: Any) -> pd.DataFrame:
    """A tidy frame from ``(run_id, algo, env, step, metric, value)`` rows (seed 0)."""
    frame = pd.DataFrame(records, columns=["run_id", "algo", "env", "step", "metric", "value"])
    return frame.assign(seed=0, **extra)


def test_convergence_episode_windows():
    episodes = list(range(1, 151))
    curves = pd.DataFrame(
        {"algo": ["a"] * 150 + ["b"] * 150, "episode": episodes * 2, "value": episodes * 2}
    )
    curves.loc[curves["algo"] == "b", "value"] *= 2
    # Last 100 of 150 episodes: 51..150, mean 100.5; first 50: 1..50, mean 25.5.
    assert convergence.cliff_online(curves, 150).to_dict() == {"a": 100.5, "b": 201.0}
    assert convergence.left_early(curves).to_dict() == {"a": 25.5, "b": 51.0}


def test_convergence_schedule_filter_and_headline():
    frame = pd.DataFrame({"run_id": ["r1", "r2"], "hp.alpha_schedule": ["constant", "visit"]})
    assert convergence.with_schedule(frame, "visit")["run_id"].tolist() == ["r2"]
    with pytest.raises(ValueError, match="'harmonic'.*constant, visit"):
        convergence.with_schedule(frame, "harmonic")
    final = pd.DataFrame(
        {
            "env": ["Taxi-v4", "Taxi-v4", "Taxi-v4", "FrozenLake-v1"],
            "hp.alpha_schedule": ["visit", "visit", "constant", "visit"],
            "algo": ["q_learning", "sarsa", "q_learning", "q_learning"],
            "iqm": [1.0, 2.0, 3.0, 0.25],
            "iqm_low": [0.5, 1.0, 2.0, 0.125],
            "iqm_high": [1.5, 3.0, 4.0, 0.375],
        }
    )
    online = pd.Series({"q_learning": -50.0})
    early = pd.Series({"double_q": 0.1})
    frames = [pd.DataFrame({"run_id": ["a", "a", "b"]}), pd.DataFrame({"run_id": ["c"]})]
    numbers = convergence.headline(final, online, early, frames)
    assert numbers == {
        "final_q_error_iqm": {
            "Taxi-v4/q_learning": 1.0,
            "Taxi-v4/sarsa": 2.0,
            "FrozenLake-v1/q_learning": 0.25,
        },
        "cliff_online_return_last100": {"q_learning": -50.0},
        "maxbias_left_share_first50": {"double_q": 0.1},
        "runs": 3,
        "evidence": {
            "Q-learning": [
                "Taxi-v4: final max|Q - Q*| 1.00 [0.50, 1.50] (IQM, 95% CI, 1/n^omega steps)",
                "FrozenLake-v1: final max|Q - Q*| 0.250 [0.125, 0.375] (IQM, 95% CI, "
                "1/n^omega steps)",
            ]
        },
    }


def test_exploration_solved_share_and_headline():
    runs = pd.DataFrame(
        {
            "experiment": ["ucb", "ucb", "ucb", "optimistic", "psrl"],
            "env.size": [4, 4, 6, 4, 4],
            "reached": [True, False, False, True, True],
        }
    )
    share = exploration.solved_share(runs)
    assert share.to_dict() == {
        ("optimistic", 4): 1.0,
        ("psrl", 4): 1.0,
        ("ucb", 4): 0.5,
        ("ucb", 6): 0.0,
    }
    table = pd.DataFrame({"env": ["E", "E"], "experiment": ["ucb", "psrl"], "iqm": [2.0, 0.0]})
    numbers = exploration.headline(table, runs, table.assign(iqm=7.0))
    assert numbers == {
        "decided_regret": {},
        "final_regret_iqm": {"E/ucb": 2.0, "E/psrl": 0.0},
        "deepsea_solved_share": {
            "optimistic/N=4": 1.0,
            "psrl/N=4": 1.0,
            "ucb/N=4": 0.5,
            "ucb/N=6": 0.0,
        },
        "dqn_final_return_iqm": {"E/ucb": 7.0, "E/psrl": 7.0},
    }


def test_exploration_tabular_final_has_a_psrl_row():
    rows = [
        (f"{label}{seed}", algo, "R", step, "policy_regret", value)
        for label, algo, final in [("ucb", "q_learning", 6.0), ("psrl", "psrl", 0.0)]
        for seed in range(3)
        for step, value in [(0, 9.0), (10, final)]
    ]
    frame = tidy(rows).assign(experiment=lambda f: f["run_id"].str.rstrip("012"))
    frame["seed"] = frame["run_id"].str[-1].astype(int)
    final = exploration.tabular_final(frame, reps=50).set_index("experiment")
    assert sorted(final.index) == ["psrl", "ucb"]
    assert final.loc["psrl", "iqm"] == 0.0 and final.loc["ucb", "iqm"] == 6.0
    assert (final["runs"] == 3).all()


def test_psrl_hparams_from_the_reward_scale():
    assert common.reward_scale("rlcompare/RiverSwim-v0") == 10000.0
    assert common.psrl_hparams("FrozenLake8x8-v1") == {"reward_prior": "beta"}
    sizes = [{"size": 4}, {"size": 16}]
    assert common.psrl_hparams("rlcompare/DeepSea-v0", sizes) == {
        "reward_prior": "normal",
        "reward_prior_mean": 0.0,
        "reward_prior_std": 1.0,
        "reward_noise_std": 0.01,
    }
    priors = exploration.psrl_priors({"rlcompare/RiverSwim-v0": 10}, [4])
    assert set(priors) == {"rlcompare/RiverSwim-v0", "rlcompare/DeepSea-v0"}
    # CliffWalking: -1 per step, -100 at the cliff: scale 100, noise 1.
    assert common.psrl_hparams("CliffWalking-v1")["reward_prior_std"] == 100.0


def test_exploration_solved_reads_the_first_success():
    deepsea = tidy(
        [
            # The greedy policy's exact expected return (issue 27 item 6), not the eval episode.
            ("r1", "q_learning", "D", 0, "expected_eval_return", 0.0),
            ("r1", "q_learning", "D", 40, "expected_eval_return", 0.99),
            ("r2", "q_learning", "D", 0, "expected_eval_return", 0.0625),
            ("r2", "q_learning", "D", 80, "expected_eval_return", 0.0),
        ],
        experiment="ucb",
    )
    solved = exploration.solved(deepsea).set_index("run_id")
    assert solved["reached"].to_dict() == {"r1": True, "r2": False}
    assert solved["steps"].to_dict() == {"r1": 40, "r2": 80}  # r2 censored at its last step


def learning_frame() -> pd.DataFrame:
    """Two runs per env: on A one reaches 10 at step 20, on B none reaches 0."""
    rows = []
    for run, env, values in [
        ("a1", "A", [0, 5, 10]),
        ("a2", "A", [0, 1, 2]),
        ("b1", "B", [-9, -5, -3]),
        ("b2", "B", [-9, -9, -9]),
    ]:
        rows += [
            (run, "dqn", env, step, "eval_return", v)
            for step, v in zip([0, 10, 20], values, strict=True)
        ]
    return tidy(rows, experiment="n_step_3")


def test_sample_efficiency_contenders_and_thresholds():
    frame = sample_efficiency.contenders(learning_frame())
    assert set(frame["algo"]) == {"n_step_3"}
    thresholds = {"A": 10.0, "B": 0.0, "C": 1.0}
    reach = sample_efficiency.reach(frame, thresholds, ["A", "B"]).set_index("run_id")
    assert reach["reached"].to_dict() == {"a1": True, "a2": False, "b1": False, "b2": False}
    assert reach.loc["a1", "steps"] == 20
    summary = sample_efficiency.reach_summary(frame, thresholds, ["A", "B"])
    assert summary[["env", "algo", "runs", "reached"]].values.tolist() == [
        ["A", "n_step_3", 2, 1],
        ["B", "n_step_3", 2, 0],
    ]
    # One of two runs reached at step 20: the Kaplan-Meier survival falls to 1/2 there.
    assert summary["km_median_steps"].tolist() == [20.0, math.inf]
    with pytest.raises(SpecError, match="no env of \\['C'\\] has a threshold"):
        sample_efficiency.reach(frame, {"A": 1.0}, ["C"])


def test_sample_efficiency_collapse():
    # Normalized scores: c1 reaches 1 then drops to 0.2 for good; c2 rises and stays.
    rows = [("c1", "dqn", "A", s, "eval_return", v) for s, v in [(0, 0.0), (1, 1.0), (2, 0.2)]]
    rows += [("c2", "dqn", "A", s, "eval_return", v) for s, v in [(0, 0.0), (1, 0.5), (2, 0.95)]]
    groups = sample_efficiency.collapse(tidy(rows))
    assert groups[["algo", "runs", "collapsed", "share"]].values.tolist() == [["dqn", 2, 1, 0.5]]


def test_sample_efficiency_headline():
    final = pd.DataFrame(
        {"algo": ["dqn", "ppo"], "iqm": [0.5, 0.25], "iqm_low": [0.4, 0], "iqm_high": [0.6, 1]}
    )
    reached = pd.DataFrame({"env": ["A"], "algo": ["dqn"], "km_median_steps": [300.0]})
    collapsed = pd.DataFrame({"algo": ["dqn"], "share": [0.1]})
    numbers = sample_efficiency.headline(final, reached, collapsed, 800)
    assert numbers["final_normalized_iqm"] == {"dqn": 0.5, "ppo": 0.25}
    assert numbers["km_median_steps_to_threshold"] == {"A/dqn": 300.0}
    assert numbers["collapse_share"] == {"dqn": 0.1}
    # Variants that did not run read as n/a.
    ci = "(final normalized IQM after 800 env steps, 95% CI)"
    assert numbers["evidence"] == {
        "Q-learning": [
            f"DQN 0.500 [0.400, 0.600] vs SB3 DQN n/a {ci}",
            f"DQN without a target network n/a, without replay n/a {ci}",
        ],
        "Policy gradient (PPO)": [f"PPO 0.25 [0.00, 1.00] vs DQN 0.500 [0.400, 0.600] {ci}"],
    }


def test_model_based_analysis_and_headline():
    curves = pd.DataFrame(
        {
            "hp.planning_steps": [0, 0, 0, 50, 50, 50],
            "episode": [1, 2, 3, 1, 2, 3],
            "value": [900.0, 100.0, 80.0, 900.0, 20.0, 16.0],
        }
    )
    late = model_based.maze_late(curves)  # episodes 2 and 3 only
    assert late.to_dict() == {0: 90.0, 50: 18.0}
    # Regret 1 -> 0 over 10 steps (area 0.5) and constant 1 (area 1); learners are labelled
    # by the runs' experiment.
    compare = pd.concat(
        [
            tidy(
                [
                    ("q1", "q_learning", "A", 0, "policy_regret", 1.0),
                    ("q1", "q_learning", "A", 10, "policy_regret", 0.0),
                ],
                experiment="q_learning",
            ),
            tidy(
                [
                    ("d1", "dyna_q", "A", 0, "policy_regret", 1.0),
                    ("d1", "dyna_q", "A", 10, "policy_regret", 1.0),
                    ("d1", "dyna_q", "A", 10, "model_error", 0.25),
                    ("d1", "dyna_q", "A", 10, "planning_updates", 50.0),
                ],
                experiment="dyna_q-expected",
            ),
        ],
        ignore_index=True,
    )
    auc = model_based.regret_auc(compare)
    assert auc.to_dict() == {("A", "dyna_q-expected"): 1.0, ("A", "q_learning"): 0.5}
    final = model_based.final_regret(compare, reps=50)
    assert final[["env", "learner", "runs", "iqm"]].values.tolist() == [
        ["A", "dyna_q-expected", 1, 1.0],
        ["A", "q_learning", 1, 0.0],
    ]
    numbers = model_based.headline(late, auc, final, compare, [compare, compare.iloc[:1]])
    assert numbers == {
        "maze_steps_per_episode_after_first": {"0": 90.0, "50": 18.0},
        "regret_auc": {"A/dyna_q-expected": 1.0, "A/q_learning": 0.5},
        "final_regret_iqm": {"A/dyna_q-expected": 1.0, "A/q_learning": 0.0},
        "final_model_error": {"A/dyna_q-expected": 0.25},
        "runs": 3,
        "evidence": {
            "Model-based": [
                "A, final exact regret: best planner Dyna-Q (expected model) 1.00 [1.00, 1.00] "
                "vs Q-learning 0 [0, 0] (IQM, 95% CI)"
            ]
        },
    }
    fig, axes = model_based.planning_figure(compare)
    assert [line.get_label() for line in axes[0].get_lines()] == ["dyna_q-expected"]
    assert axes[0].get_xscale() == "log"
    plt.close("all")


def test_figures_return_figure_and_axes_without_saving(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    curves = pd.DataFrame(
        {"algo": ["a", "a"], "episode": [1, 2], "value": [-50.0, -20.0], "sem": [1.0, 1.0]}
    )
    fig, ax = convergence.cliff_figure(curves)
    assert ax.get_ylim() == (-100, 0)
    fig2, ax2 = convergence.maxbias_figure(curves.assign(value=[0.5, 0.2]))
    assert [line.get_ydata()[0] for line in ax2.get_lines()][-1] == 0.05
    fig3, ax3 = model_based.maze_figure(curves.rename(columns={"algo": "hp.planning_steps"}))
    assert ax3.get_ylim() == (0, 800)
    assert list(tmp_path.iterdir()) == []
    plt.close("all")


def test_sample_efficiency_curves_split_by_family():
    names = ["dqn", "double_dueling", "prioritized", "n_step_3", "no_target", "no_replay"]
    names += ["sb3_dqn", "ppo", "mine"]
    rows = [
        (f"{env}{name}{seed}", name, env, step, "eval_return", float(step + seed + i))
        for i, name in enumerate(names)
        for env in ("A", "B")
        for seed in range(2)
        for step in (0, 10, 20)
    ]
    frame = tidy(rows).assign(seed=[r[0][-1] for r in rows])
    fig, axes = sample_efficiency.learning_curves_figure(frame, reps=20)
    assert axes.shape == (4, 2), "variants, ablations, peers, others x two envs"
    panels = [{line.get_label() for line in ax.get_lines()} for ax in axes[:, 0]]
    assert panels == [
        {"dqn", "double_dueling", "prioritized", "n_step_3"},
        {"dqn", "no_target", "no_replay"},
        {"dqn", "sb3_dqn", "ppo"},
        {"mine"},
    ]
    assert all(ax.get_legend() is None for ax in axes.flat)
    (legend,) = fig.legends
    assert sorted(t.get_text() for t in legend.get_texts()) == sorted(names)
    plt.close("all")


def verdict_frame(seeds: int = 6) -> pd.DataFrame:
    """On env A over steps 0, 10, 20: n_step_3 reaches 10 at step 10 in every run; dqn and
    ppo end near 1 and never reach 10 (seeds differ by a small amount)."""
    rows = []
    for seed in range(seeds):
        for label, values in [
            ("dqn", [0, 0.5, 1 + 0.1 * seed]),
            ("ppo", [0, 0.6, 1 + 0.1 * seed]),
            ("n_step_3", [0, 10, 10 + 0.1 * seed]),
        ]:
            rows += [
                {"run_id": f"{label}{seed}", "algo": "dqn", "env": "A", "seed": seed,
                 "step": step, "metric": "eval_return", "value": float(v),
                 "experiment": label, "status": "ok", "hp.label": label}
                for step, v in zip([0, 10, 20], values, strict=True)
            ]  # fmt: skip
    return sample_efficiency.contenders(pd.DataFrame(rows))


def test_sample_efficiency_verdicts_decide_against_the_baseline():
    verdicts = sample_efficiency.verdicts(verdict_frame(), {"A": 10.0, "B": 0.0}, ["A"])
    assert "one-interim verdict on stored runs" in verdicts.final.parameters["family"]
    assert verdicts.final.parameters["alpha"] == 0.025  # half of 5% per score
    table = sample_efficiency.decisions(verdicts)
    assert list(table.columns) == sample_efficiency.DECISION_COLUMNS
    decided = {(r.score, r.a): r.decision for r in table.itertuples()}
    assert decided == {
        ("final", "n_step_3"): "better",
        ("final", "ppo"): "no difference found",
        ("steps_to_threshold", "n_step_3"): "better",
        ("steps_to_threshold", "ppo"): "no difference found",
    }
    assert set(table["b"]) == {"dqn"} and set(table["runs_a"]) == {6}
    # Never-reached runs count at their last step: 10 - 20 env steps.
    steps = table[table["score"] == "steps_to_threshold"].set_index("a")
    assert steps.loc["n_step_3", "difference"] == -10.0


def test_sample_efficiency_headline_carries_the_decisions():
    final = pd.DataFrame(
        {"algo": ["dqn", "ppo"], "iqm": [0.5, 0.25], "iqm_low": [0.4, 0], "iqm_high": [0.6, 1]}
    )
    reached = pd.DataFrame({"env": ["A"], "algo": ["dqn"], "km_median_steps": [300.0]})
    collapsed = pd.DataFrame({"algo": ["dqn"], "share": [0.1]})
    table = sample_efficiency.decisions(
        sample_efficiency.verdicts(verdict_frame(), {"A": 10.0}, ["A"])
    )
    numbers = sample_efficiency.headline(final, reached, collapsed, 800, table)
    assert numbers["decisions"] == {
        "final_eval_return": {
            "A: n_step_3 vs dqn": "better",
            "A: ppo vs dqn": "no difference found",
        },
        "steps_to_threshold": {
            "A: n_step_3 vs dqn": "better",
            "A: ppo vs dqn": "no difference found",
        },
    }
    evidence = numbers["evidence"]
    assert evidence["Q-learning"][-2:] == [
        "A, final eval return vs dqn (6+6 runs, 5% family-wise): n_step_3 better",
        "A, steps to threshold vs dqn (6+6 runs, 5% family-wise): n_step_3 better",
    ]
    assert evidence["Policy gradient (PPO)"][-2:] == [
        "A, final eval return vs dqn (6+6 runs, 5% family-wise): no difference found for the pair",
        "A, steps to threshold vs dqn (6+6 runs, 5% family-wise): no difference found for the pair",
    ]


def test_sample_efficiency_verdicts_need_two_runs_per_contender():
    with pytest.raises(SpecError, match="n = 1 is invalid; valid: an int >= 2"):
        sample_efficiency.verdicts(verdict_frame(seeds=1), {"A": 10.0}, ["A"])
