"""Issue 27, item 4: every metric has a declared direction and every ranking follows it.

A metric in neither ``LOWER_IS_BETTER`` nor ``HIGHER_IS_BETTER`` (nor ``NO_DIRECTION``) was
ranked as higher-is-better in silence: ``loss`` of dqn and bc, SelfHealing's
``time_to_recovery``, ``impaired_share`` and ``action_cost`` put the worst algorithm first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_stats import make_tidy

import rlcompare
from rlcompare import RunSpec
from rlcompare.analysis import curves, stats
from rlcompare.runner import schema
from rlcompare.viz import plots

REPS = 50
TABULAR = (
    "q_learning", "sarsa", "expected_sarsa", "double_q", "dyna_q", "prioritized_sweeping",
    "certainty_equivalence", "psrl", "random",
)  # fmt: skip
DEEP_FAST = {"learning_starts": 50, "batch_size": 16, "net_arch": [8]}


def cartpole_expert(obs: np.ndarray) -> int:
    return int(obs[2] + 0.5 * obs[3] > 0)


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> str:
    data = rlcompare.collect_demonstrations(cartpole_expert, "CartPole-v1", episodes=1, seed=0)
    return str(data.save(tmp_path_factory.mktemp("demos") / "cartpole.npz"))


def builtin_specs(dataset: str) -> dict[str, list[RunSpec]]:
    """A tiny run of every built-in algorithm, on an env it supports (a few hundred steps)."""
    tiny = {"eval_every": 100, "eval_episodes": 1}
    return {
        "tabular": [RunSpec(a, "FrozenLake-v1", 0, steps=200, **tiny) for a in TABULAR],
        "selfhealing": [RunSpec("q_learning", "rlcompare/SelfHealing-v0", 0, steps=200, **tiny)],
        "dqn": [
            RunSpec("dqn", "CartPole-v1", 0, steps=200, hparams=DEEP_FAST, **tiny),
            RunSpec(
                "dqn", "CartPole-v1", 0, steps=100, hparams={**DEEP_FAST, "dataset": dataset},
                **tiny,
            ),
        ],
        "bc": [
            RunSpec(
                "bc", "CartPole-v1", 0, steps=100, hparams={"dataset": dataset, "batch_size": 32},
                **tiny,
            )
        ],
        "sb3_dqn": [RunSpec("sb3_dqn", "CartPole-v1", 0, steps=200, hparams=DEEP_FAST, **tiny)],
        "ppo": [
            RunSpec(
                "ppo", "CartPole-v1", 0, steps=128, eval_every=64, eval_episodes=1,
                hparams={"n_steps": 64, "batch_size": 32, "n_epochs": 1},
            )
        ],
        "sac": [RunSpec("sac", "Pendulum-v1", 0, steps=100, hparams=DEEP_FAST, **tiny)],
        "mpc": [
            RunSpec(
                "mpc", "Pendulum-v1", 0, steps=100, **tiny,
                hparams={"hidden": [16], "population": 30, "elites": 3, "horizon": 5,
                         "random_steps": 50, "train_every": 50},
            )
        ],
    }  # fmt: skip


def declared() -> set[str]:
    return set(schema.LOWER_IS_BETTER) | set(schema.HIGHER_IS_BETTER) | set(schema.NO_DIRECTION)


def test_every_builtin_algorithm_is_covered_by_the_walk(demos: str) -> None:
    # A fresh interpreter: other tests register algorithms of their own in this process.
    env = {k: v for k, v in os.environ.items() if k != "RLCOMPARE_PLUGINS"}
    code = "import rlcompare; print(' '.join(rlcompare.algorithms()))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    walked = {spec.algo for specs in builtin_specs(demos).values() for spec in specs}
    assert walked == set(out.stdout.split())


@pytest.mark.parametrize(
    "group", ["tabular", "selfhealing", "dqn", "bc", "sb3_dqn", "ppo", "sac", "mpc"]
)
def test_every_metric_a_builtin_records_has_a_declared_direction(group: str, demos: str) -> None:
    recorded: set[str] = set()
    for spec in builtin_specs(demos)[group]:
        result = rlcompare.run(spec)
        assert result.status == "ok", result.metadata
        recorded |= set(result.frame["metric"])
    assert recorded, group
    assert recorded - declared() == set(), f"{group}: metrics without a direction"


def test_fixed_policy_rows_and_the_divergence_marker_have_a_direction() -> None:
    from rlcompare.experiments import corrective_policies as cp

    rows = cp.evaluate_fixed({"runbook": cp.runbook_actions()}, [0], gamma=0.9, eval_episodes=1)
    assert set(rows["metric"]) - declared() == set()
    assert curves.DIVERGED_METRIC in declared()


def test_the_direction_sets_are_disjoint() -> None:
    lower, higher, none = schema.LOWER_IS_BETTER, schema.HIGHER_IS_BETTER, schema.NO_DIRECTION
    assert not (lower & higher) and not (lower & none) and not (higher & none)
    for metric in ("loss", "time_to_recovery", "impaired_share", "action_cost", "incidents"):
        assert not schema.higher_is_better(metric), metric


def test_a_metric_without_a_direction_is_named_when_ranked() -> None:
    df = good_and_bad("my_metric", good=1.0, bad=0.0)
    with pytest.warns(UserWarning, match=r"'my_metric' has no declared direction"):
        stats.probability_of_improvement(df, "good", "bad", metric="my_metric", reps=REPS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats.probability_of_improvement(
            df, "good", "bad", metric="my_metric", reps=REPS, higher_is_better=True
        )
    length = good_and_bad("episode_length", good=1.0, bad=0.0)
    with pytest.raises(ValueError, match=r"'episode_length'.*higher_is_better="):
        stats.improvement_matrix(length, metric="episode_length", reps=REPS)


# -- every ranking follows the direction ----------------------------------------------------------
LOWER = ["q_error", "loss", "time_to_recovery", "impaired_share", "action_cost"]


def good_and_bad(metric: str, good: float = 0.1, bad: float = 5.0) -> pd.DataFrame:
    """Three runs each: ``good`` ends at ``good``, ``bad`` at ``bad``; both start at 10."""
    runs = {("good", "E", s): [(0, 10.0), (10, good), (20, good)] for s in range(3)}
    runs.update({("bad", "E", s): [(0, 10.0), (10, bad), (20, bad)] for s in range(3)})
    return make_tidy(runs, metric=metric)


@pytest.mark.parametrize("metric", LOWER)
def test_performance_profile_counts_runs_below_tau_where_lower_is_better(metric: str) -> None:
    profile = stats.performance_profile(good_and_bad(metric), [1.0], metric=metric, reps=REPS)
    fraction = profile.set_index("algo")["fraction"]
    assert (fraction["good"], fraction["bad"]) == (1.0, 0.0)
    _, ax = plots.performance_profile(profile)
    assert "<" in ax.get_ylabel()


@pytest.mark.parametrize("metric", LOWER)
def test_optimality_gap_is_the_excess_above_target_where_lower_is_better(metric: str) -> None:
    table = stats.summary(good_and_bad(metric), metric=metric, target=0.0, reps=REPS)
    gap = table.set_index("algo")["optimality_gap"]
    assert gap["good"] == pytest.approx(0.1) and gap["bad"] == pytest.approx(5.0)


@pytest.mark.parametrize("metric", LOWER)
def test_improvement_follows_the_direction(metric: str) -> None:
    df = good_and_bad(metric)
    assert stats.probability_of_improvement(df, "good", "bad", metric, reps=REPS).value == 1.0
    matrix = stats.improvement_matrix(df, metric=metric, reps=REPS)
    assert matrix.set_index(["algo_x", "algo_y"]).loc[("bad", "good"), "probability"] == 0.0


@pytest.mark.parametrize("metric", LOWER)
def test_steps_to_threshold_follows_the_direction(metric: str) -> None:
    runs = stats.steps_to_threshold(good_and_bad(metric), 1.0, metric=metric)
    reached = runs.groupby("algo")["reached"].all()
    assert reached["good"] and not runs[runs["algo"] == "bad"]["reached"].any()
    summary = stats.threshold_summary(good_and_bad(metric), 1.0, metric=metric)
    assert summary.set_index("algo")["reached"].to_dict() == {"bad": 0, "good": 3}


@pytest.mark.parametrize("metric", LOWER)
def test_a_diverged_run_counts_at_its_highest_value_where_lower_is_better(metric: str) -> None:
    df = good_and_bad(metric)
    diverged = df["run_id"] == "E__good__0"
    df = df[~(diverged & (df["step"] == 20))]  # it stopped at step 10
    df = df.assign(status=np.where(df["run_id"] == "E__good__0", "diverged", "ok"))
    scores = stats.final_scores(df, metric).set_index("run_id")["score"]
    assert scores["E__good__0"] == 10.0  # its worst value: the highest it recorded
    area = stats.auc(df, metric).set_index("run_id")["auc"]
    # 10 -> 0.1 over steps 0..10, then at 10 to step 20 (its peers' end): (50.5 + 100) / 20.
    assert area["E__good__0"] == pytest.approx(150.5 / 20)
    curve = stats.aggregate_curves(df, metric, num_points=3, reps=REPS)
    good = curve[curve["algo"] == "good"].set_index("step")["iqm"]
    assert good.index.tolist() == [0, 10, 20]
    # Step 20: {0.1, 0.1, 10}; a 25% trimmed mean of 3 values trims none: their mean.
    assert good[20] == pytest.approx(10.2 / 3)


def test_collapse_rate_refuses_a_lower_is_better_metric() -> None:
    with pytest.raises(ValueError, match=r"'loss'.*lower is better"):
        stats.collapse_rate(good_and_bad("loss"), "loss")


def test_heatmap_says_better_not_greater(tmp_path: Path) -> None:
    matrix = stats.improvement_matrix(good_and_bad("loss"), metric="loss", reps=REPS)
    _, ax = plots.probability_of_improvement(matrix)
    assert "better" in ax.get_title() and ">" not in ax.get_title()
