"""rlcompare.tune: the same budget for every algorithm, disjoint tuning and eval seeds, the
same choice twice, a known best region found, a wrong ranking by defaults put right, the
sensitivity of Adkins et al., and bad input refused before any run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rlcompare
from rlcompare import Param, SpecError
from rlcompare.spec import registry
from rlcompare.store.results import load_results, stored_records, stored_runs
from rlcompare.studies.compare import stored_verdict
from rlcompare.studies.search_space import build_space
from rlcompare.studies.tune import rung_schedule, tune

ENVS = ["FrozenLake-v1", "CliffWalking-v1"]
NOISE = 0.05
# Where the probe's expected score peaks in y, whatever the algorithm.
BEST_Y = 0.7


def expected_score(hp: dict, env: str) -> float:
    """The probe's expected final eval return: ``peak`` at x = best_x (x 100 times larger on
    CliffWalking when ``shift``) and y = 0.7, falling with the squared distance in log10 x
    and in y."""
    best_x = hp["best_x"] * (100.0 if hp["shift"] and env.startswith("Cliff") else 1.0)
    return hp["peak"] - (math.log10(hp["x"]) - math.log10(best_x)) ** 2 - (hp["y"] - BEST_Y) ** 2


def probe_trainer(ctx):
    """Records an evaluation at step 0 and one at the budget's end: the expected score of its
    hyperparameters plus Normal noise from the run's own seed."""
    rng = ctx.seeds.rng("probe")
    budget = ctx.spec.steps
    ctx.log_evaluation(0, np.array([rng.normal(0.0, NOISE)]))
    final = expected_score(dict(ctx.hp), ctx.spec.env) + rng.normal(0.0, NOISE)
    ctx.log_evaluation(budget, np.array([final]))


def probe_params(*, peak: float, best_x: float, shift: bool = False) -> dict[str, Param]:
    return {
        "x": Param(1.0, "float", "log-scale knob", low=1e-4, high=100, log=True, search=(1e-3, 10)),
        "y": Param(0.0, "float", "linear knob", low=0, high=1, search=(0, 1)),
        "peak": Param(peak, "float", "best expected score"),
        "best_x": Param(best_x, "float", "where x is best", low=1e-4, high=100),
        "shift": Param(shift, "bool", "best x 100 times larger on CliffWalking"),
    }


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """probe_a: its defaults are near its best, a modest 0.5. probe_b: its defaults are far
    from its best (x = 1 where 0.01 is best: expected -3.49), its best is 1.0. probe_shift:
    probe_b whose best x depends on the env."""
    rlcompare.algorithms()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    a = probe_params(peak=0.5, best_x=1.0)
    a["y"] = Param(BEST_Y, "float", "linear knob", low=0, high=1, search=(0, 1))
    rlcompare.register_algorithm("probe_a", trainer=probe_trainer, params=a)
    rlcompare.register_algorithm(
        "probe_b", trainer=probe_trainer, params=probe_params(peak=1.0, best_x=0.01)
    )
    rlcompare.register_algorithm(
        "probe_shift",
        trainer=probe_trainer,
        params=probe_params(peak=1.0, best_x=0.01, shift=True),
    )


QUIET = {"executor": "serial", "progress": False}


def _per_algo(store: Path, experiment: str) -> pd.DataFrame:
    """Runs and env steps (last step recorded) per algorithm, read back from the store."""
    frame = load_results(store, metrics=["eval_return"])
    frame = frame[frame["experiment"] == experiment]
    per_run = frame.groupby(["algo", "run_id"])["step"].max().reset_index()
    return per_run.groupby("algo").agg(runs=("run_id", "nunique"), steps=("step", "sum"))


# --------------------------------------------------------------------- budget, seeds, twice
def test_budget_is_equal_seeds_are_disjoint_and_the_same_call_chooses_the_same(tmp_path):
    store = tmp_path / "store"
    call = {
        "budget": 3,
        "steps": 300,
        "tuning_seeds": 2,
        "eval_seeds": 2,
        "eval_every": 150,
        "eval_episodes": 2,
        **QUIET,
    }
    first = tune(["q_learning", "expected_sarsa"], ENVS, str(store), **call)
    counted = _per_algo(store, "tune.tuning")
    # 3 configurations x 2 seeds x 2 envs = 12 runs of 300 steps each, for both algorithms.
    assert counted.to_dict("index") == {
        "expected_sarsa": {"runs": 12, "steps": 3600},
        "q_learning": {"runs": 12, "steps": 3600},
    }
    assert first.budget.set_index("algo")[["tuning_runs", "tuning_env_steps"]].equals(
        counted.rename(columns={"runs": "tuning_runs", "steps": "tuning_env_steps"})
        .astype("int64")
        .reindex(first.budget["algo"])
    )
    stored = load_results(store, metrics=["eval_return"])
    tuning_seeds = set(stored.loc[stored["experiment"] == "tune.tuning", "seed"])
    eval_seeds = set(stored.loc[stored["experiment"] == "tune.eval", "seed"])
    assert tuning_seeds == {0, 1} and eval_seeds == {2, 3}
    assert set(first.eval_frame["seed"]) == {2, 3}
    files = len(stored_runs(store))
    again = tune(["q_learning", "expected_sarsa"], ENVS, str(store), **call)
    assert len(stored_runs(store)) == files, "the second call reuses every stored run"
    assert again.configs == first.configs
    pd.testing.assert_frame_equal(again.chosen, first.chosen)


def test_halving_keeps_the_budget_equal(tmp_path, probes):
    assert rung_schedule(8, 2, 800) == [(8, 100), (4, 200), (2, 400), (1, 800)]
    assert rung_schedule(5, None, 800) == [(5, 800)]
    store = tmp_path / "store"
    result = tune(["probe_a", "probe_b"], ENVS, str(store), budget=8, steps=800, halving=2, **QUIET)
    counted = _per_algo(store, "tune.tuning")
    # Per env: 8 x 100 + 4 x 200 + 2 x 400 + 1 x 800 steps on each of 3 tuning seeds.
    assert counted.to_dict("index") == {
        "probe_a": {"runs": 90, "steps": 19200},
        "probe_b": {"runs": 90, "steps": 19200},
    }
    assert sorted(result.table["rung"].unique()) == [0, 1, 2, 3]
    assert result.table["chosen"].sum() == 4  # one per algorithm and env, at the last rung


# --------------------------------------------------------------------- known answers
def test_the_choice_lands_in_the_known_best_region(tmp_path, probes):
    result = tune("probe_b", ENVS, str(tmp_path / "s"), budget=16, steps=10, **QUIET)
    expected = {
        config: expected_score(
            {**result.configs["probe_b"][0], **c, "peak": 1.0, "best_x": 0.01, "shift": False},
            "FrozenLake-v1",
        )
        for config, c in enumerate(result.configs["probe_b"])
    }
    best_drawn = max(expected.values())
    for env in ENVS:
        hp = result.hparams("probe_b", env)
        score = expected_score({**hp, "peak": 1.0, "best_x": 0.01, "shift": False}, env)
        # The best region: within 0.3 of the peak (|log10 x + 2| and |y - 0.7| both small),
        # and as good as the best configuration drawn, up to the noise of 3 seeds.
        assert score > 0.7, (env, hp, score)
        assert score >= best_drawn - 4 * NOISE
        assert 10**-2.6 < hp["x"] < 10**-1.4 and abs(hp["y"] - BEST_Y) < 0.55
    assert expected[0] == pytest.approx(1.0 - 4.0 - BEST_Y**2)  # config 0: the defaults


def test_defaults_rank_two_algorithms_wrongly_and_equal_budget_tuning_puts_it_right(
    tmp_path, probes
):
    result = tune(
        ["probe_a", "probe_b"],
        "FrozenLake-v1",
        str(tmp_path / "s"),
        budget=16,
        steps=10,
        tuning_seeds=3,
        eval_seeds=5,
        **QUIET,
    )
    by_defaults = stored_verdict(result.defaults_frame, algos=["probe_a", "probe_b"])
    tuned = stored_verdict(result.eval_frame, algos=["probe_a", "probe_b"])
    assert by_defaults.decisions["decision"].tolist() == ["better"]  # probe_a over probe_b
    assert tuned.decisions["decision"].tolist() == ["worse"]  # probe_a under probe_b
    assert result.budget["tuning_runs"].tolist() == [48, 48]


# --------------------------------------------------------------------- across envs, sensitivity
def test_one_setting_across_envs_and_the_sensitivity_it_costs(tmp_path, probes):
    result = tune(
        ["probe_b", "probe_shift"],
        ENVS,
        str(tmp_path / "s"),
        budget=16,
        steps=10,
        per_env=False,
        **QUIET,
    )
    assert result.mode == "across_envs"
    assert set(result.chosen["env"]) == {"*"} and set(result.chosen["mode"]) == {"across_envs"}
    for algo in ("probe_b", "probe_shift"):
        ran = result.eval_frame[result.eval_frame["algo"] == algo]
        assert ran.groupby("env")["hp.x"].first().nunique() == 1, "one setting on every env"
    table = result.sensitivity().set_index("algo")
    assert (table["sensitivity"] >= 0).all()
    # probe_b's best is the same on both envs; probe_shift's moves by two decades of x.
    assert table.at["probe_b", "sensitivity"] < 0.05
    assert table.at["probe_shift", "sensitivity"] > 0.1
    assert table.at["probe_shift", "sensitivity"] == pytest.approx(
        table.at["probe_shift", "per_env_tuned"] - table.at["probe_shift", "across_envs_tuned"]
    )
    curves = result.curves()
    assert set(curves["param"]) == {"x", "y"}
    assert curves.loc[curves["param"] == "x", "log"].all()
    assert (curves["iqm_low"] <= curves["iqm"]).all() and (
        curves["iqm"] <= curves["iqm_high"]
    ).all()


# --------------------------------------------------------------------- spaces
def test_spaces_are_drawn_the_same_way_twice_on_the_declared_scale(probes):
    space = build_space("probe_b")
    first, again = space.draw(32, seed=3), space.draw(32, seed=3)
    assert first == again and first != space.draw(32, seed=4)
    xs = np.log10([c["x"] for c in first])
    assert xs.min() >= -3 and xs.max() <= 1
    # Log scale: as many draws below 0.1 (two of the four decades) as above.
    assert 12 <= (xs < -1).sum() <= 20
    ints = build_space("dqn", {"target_update_interval": None}).draw(8)
    assert all(isinstance(c["target_update_interval"], int) for c in ints)
    assert build_space("q_learning", {"exploration": ["ucb", "boltzmann"]}).dimensions[0].choices


def test_a_declared_search_outside_the_bounds_is_refused_at_registration(probes):
    bad = {"lr": Param(0.1, "float", "", low=0, high=1, search=(0.01, 2.0))}
    with pytest.raises(ValueError, match=r"'lr'.*search \(0\.01, 2\.0\).*2\.0"):
        rlcompare.register_algorithm("bad_search", trainer=probe_trainer, params=bad)


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"space": {"probe_b": {}}}, r"search space of 'probe_b' = \{\} is empty"),
        ({"space": {}}, r"search space of 'probe_b' = \{\} is empty"),
        (
            {"space": {"x": (1e-6, 1.0)}},
            r"'x' of 'probe_b' = 1e-06 is out of range.*\[0\.0001, 100\]",
        ),
        ({"space": {"x": (1.0, 1.0)}}, r"\(1\.0, 1\.0\) is an empty range"),
        ({"space": {"z": (0, 1)}}, r"names 'z'.*valid: .*x"),
        ({"budget": 0}, r"budget = 0 is invalid"),
        ({"tuning_seeds": [0, 1, 2], "eval_seeds": [2, 3]}, r"share seed\(s\) \[2\]"),
        ({"score": "median"}, r"score = 'median' is unknown; valid: iqm, auc"),
        ({"steps": None}, r"give exactly one of steps / episodes"),
        ({"halving": 1}, r"halving = 1 is invalid"),
    ],
)
def test_bad_input_is_refused_before_any_run(tmp_path, probes, kwargs, named):
    store = tmp_path / "store"
    call = {"budget": 4, "steps": 10, **QUIET, **kwargs}
    with pytest.raises(SpecError, match=named):
        tune("probe_b", ENVS, str(store), **call)
    assert not store.exists() or not stored_runs(store), "nothing ran"


def test_an_algorithm_without_a_declared_space_is_refused_naming_it(tmp_path):
    with pytest.raises(SpecError, match=r"search space of 'random' is empty"):
        tune("random", "FrozenLake-v1", str(tmp_path / "s"), budget=2, steps=10, **QUIET)


def test_tune_is_public():
    assert rlcompare.tune is tune
    assert "tune" in rlcompare.__all__


# --------------------------------------------------------------------- figures, CLI
def test_sensitivity_figures_have_a_panel_per_algorithm_and_hyperparameter(tmp_path, probes):
    import matplotlib.pyplot as plt

    from rlcompare.viz.tuning import sensitivity_bars, sensitivity_curves

    result = tune(["probe_a", "probe_b"], ENVS, str(tmp_path / "s"), budget=4, steps=10, **QUIET)
    fig, axes = sensitivity_curves(result.curves())
    assert axes.shape == (4, 2)  # a row per algorithm and env: each env in its own units
    assert axes[0, 0].get_xscale() == "log" and axes[0, 1].get_xscale() == "linear"
    titles = [ax.get_title() for ax in axes[2]]
    assert titles == ["probe_b: x on CliffWalking-v1", "probe_b: y on CliffWalking-v1"]
    assert len(axes[2, 0].lines) + len(axes[2, 0].collections) > 0
    plt.close(fig)
    fig, axes = sensitivity_curves(result.curves(), value="normalised")
    assert axes.shape == (2, 2)  # a row per algorithm, envs by colour
    assert [ax.get_title() for ax in axes[1]] == ["probe_b: x", "probe_b: y"]
    plt.close(fig)
    fig, ax = sensitivity_bars(result.sensitivity())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["probe_a", "probe_b"]
    plt.close(fig)


def test_cli_prints_the_choice_and_the_budget_each_algorithm_got(tmp_path, capsys):
    from rlcompare.app.cli import main

    store = str(tmp_path / "s")
    argv = ["tune", "--algo", "q_learning,sarsa", "--env", "FrozenLake-v1", "--store", store]
    argv += ["--budget", "2", "--steps", "200", "--tuning-seeds", "0-1", "--eval-seeds", "5"]
    argv += ["--executor", "serial", "--quiet", "--space", "alpha=0.05:0.5"]
    argv += ["--space", "q_learning.epsilon=0.05,0.2", "--eval-episodes", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "q_learning: alpha in [0.05, 0.5] (float, log); epsilon in {0.05, 0.2}" in out
    assert "sarsa: alpha in [0.05, 0.5] (float, log)" in out
    assert "tuning seeds (seeds 0,1)" in out and "eval seeds 2-6" in out
    budget = out.split("budget each algo got (counted from the store):\n")[1].splitlines()
    assert budget[1].split() == ["q_learning", "2", "4", "800", "5", "1000"]
    assert budget[2].split() == ["sarsa", "2", "4", "800", "5", "1000"]
    assert main([*argv[:-2], "--space", "alpha=0:0.5"]) == 2
    assert "'alpha' of 'q_learning' = 0.0 is out of range" in capsys.readouterr().err


def test_the_notebook_conclusions_are_computed_from_the_rankings(tmp_path, probes):
    from rlcompare.experiments import tuning as experiment

    result = tune(
        ["probe_a", "probe_b"],
        ENVS,
        str(tmp_path / "s"),
        budget=16,
        steps=10,
        eval_seeds=5,
        **QUIET,
    )
    rank = experiment.ranking(result, reps=200).set_index(["env", "algo"])
    for env in ENVS:
        assert rank.loc[(env, "probe_a"), "rank_defaults"] == 1
        assert rank.loc[(env, "probe_b"), "rank_tuned"] == 1
        assert rank.loc[(env, "probe_b"), "rank_change"] == 1
    decided = experiment.verdicts(result)
    text = experiment.conclusions(
        experiment.ranking(result, reps=200), decided, result.sensitivity(), result.budget
    )
    assert "Every algorithm ran 96 tuning runs and 960 env steps (equal for all" in text
    assert "Defaults: probe_a > probe_b; tuned: probe_b > probe_a; the ranking changes" in text
    assert "(defaults): probe_a better than probe_b; (tuned): probe_a worse than probe_b" in text
    numbers = experiment.headline(
        experiment.ranking(result, reps=200), decided, result.sensitivity(), result.budget
    )
    assert numbers["ranks_tuned"]["FrozenLake-v1/probe_b"] == 1
    assert numbers["tuning_env_steps"] == {"probe_a": 960, "probe_b": 960}
    assert numbers["evidence"] == {}  # the probes belong to no approach of the summary


def test_evidence_claims_name_each_iqm_with_its_interval_and_rank():
    from rlcompare.experiments.tuning import evidence

    rank = pd.DataFrame(
        {
            "env": ["FrozenLake-v1"] * 3,
            "algo": ["q_learning", "dqn", "ppo"],
            "defaults": [0.0, 0.5, 0.25],
            "defaults_low": [0.0, 0.25, 0.0],
            "defaults_high": [0.0, 0.75, 0.5],
            "tuned": [0.75, 0.5, 0.25],
            "tuned_low": [0.5, 0.25, 0.0],
            "tuned_high": [1.0, 0.75, 0.5],
            "rank_defaults": [3, 1, 2],
            "rank_tuned": [1, 2, 3],
        }
    )
    budget = pd.DataFrame({"algo": ["q_learning", "dqn", "ppo"], "tuning_env_steps": [1200] * 3})
    claims = evidence(rank, budget)
    assert claims["Q-learning"] == [
        "FrozenLake-v1, q_learning: eval IQM 0 [0, 0] at defaults, 0.75 [0.50, 1.00] tuned "
        "(1,200 env steps), rank 3 -> 1 of 3 (95% CI)",
        "FrozenLake-v1, dqn: eval IQM 0.500 [0.250, 0.750] at defaults, 0.500 [0.250, 0.750] "
        "tuned (1,200 env steps), rank 1 -> 2 of 3 (95% CI)",
    ]
    assert claims["Policy gradient (PPO)"] == [
        "FrozenLake-v1, ppo: eval IQM 0.250 [0.000, 0.500] at defaults, 0.250 [0.000, 0.500] "
        "tuned (1,200 env steps), rank 2 -> 3 of 3 (95% CI)"
    ]


def test_a_killed_tuning_resumes_from_the_store_and_chooses_the_same(tmp_path, probes):
    store = tmp_path / "store"
    call = {"budget": 6, "steps": 10, "tuning_seeds": 2, "eval_seeds": 2, **QUIET}
    first = tune(["probe_a", "probe_b"], ENVS, str(store), **call)
    files = stored_runs(store)
    lost = files[::5]  # as if the tuning had been killed before these runs were stored
    for path in lost:
        path.unlink()
    kept = {path: path.stat().st_mtime_ns for path in files if path not in lost}
    again = tune(["probe_a", "probe_b"], ENVS, str(store), **call)
    assert sorted(stored_runs(store)) == sorted(files)
    assert {path: path.stat().st_mtime_ns for path in kept} == kept, "stored runs not redone"
    pd.testing.assert_frame_equal(again.chosen, first.chosen)
    pd.testing.assert_frame_equal(again.table, first.table)


def test_halving_across_envs_keeps_one_setting_per_algorithm_at_every_rung(tmp_path, probes):
    result = tune(
        ["probe_b", "probe_shift"],
        ENVS,
        str(tmp_path / "s"),
        budget=4,
        steps=40,
        halving=2,
        per_env=False,
        score="auc",
        **QUIET,
    )
    table = result.table
    for (algo, rung), rows in table.groupby(["algo", "rung"]):
        per_env = rows.groupby("env")["config"].apply(frozenset)
        assert per_env.nunique() == 1, (algo, rung)  # the same survivors on every env
        assert len(per_env.iloc[0]) == {0: 4, 1: 2, 2: 1}[rung]
    assert sorted(table.loc[table["rung"] == 2, "steps"].unique()) == [40]
    assert result.parameters["score"] == "auc"


def test_an_episode_budget_counts_runs_equally_and_env_steps_as_they_fell(tmp_path):
    result = tune(
        ["q_learning", "sarsa"],
        "FrozenLake-v1",
        str(tmp_path / "s"),
        budget=2,
        episodes=5,
        tuning_seeds=2,
        eval_seeds=[7],
        eval_episodes=1,
        **QUIET,
    )
    assert result.parameters["unit"] == "episodes"
    assert result.budget["tuning_runs"].tolist() == [4, 4]
    assert (result.budget["tuning_env_steps"] > 0).all()
    assert set(result.eval_frame["seed"]) == {7}


def test_the_notebook_refuses_env_kwargs_of_an_env_it_does_not_tune(tmp_path):
    from rlcompare.experiments import tuning as experiment

    settings = dict(
        per_env=True,
        budget=2,
        steps={"rlcompare/Chain-v0": 10},
        tuning_seeds=1,
        eval_seeds=1,
        hparams={},
        evals=1,
        eval_episodes=1,
        halving=None,
        executor="serial",
        reps=10,
    )
    store = tmp_path / "s"
    named = (
        r"env_kwargs name \['rlcompare/DeepSea-v0'\], not in envs; valid: \['rlcompare/Chain-v0'\]"
    )
    with pytest.raises(SpecError, match=named):
        experiment.run_tuning(
            ["q_learning"],
            ["rlcompare/Chain-v0"],
            str(store),
            env_kwargs={"rlcompare/DeepSea-v0": {"size": 6}},
            **settings,
        )
    assert not store.exists()  # refused before any run
    chosen = experiment.run_tuning(
        ["q_learning"],
        ["rlcompare/Chain-v0"],
        str(store),
        env_kwargs={"rlcompare/Chain-v0": {"length": 3}},
        **settings,
    ).chosen
    records = stored_records(str(store)).values()
    assert len(chosen) == 1 and records
    assert all(r["spec"]["env_kwargs"] == {"length": 3} for r in records)
