"""Regression tests from a review of the statistics: lucky threshold crossings, diverged runs
and the direction of the probability of improvement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_stats import make_tidy

import rlcompare
from rlcompare.analysis import curves, stats


def with_divergence(frame: pd.DataFrame, run_id: str, step: int) -> pd.DataFrame:
    """``frame`` with ``run_id`` marked diverged at ``step``, as a stored run reads back:
    ``status`` "diverged" and a ``diverged`` metric row."""
    frame = frame.assign(status=np.where(frame["run_id"] == run_id, "diverged", "ok"))
    row = frame[frame["run_id"] == run_id].iloc[[-1]].assign(step=step, metric="diverged")
    return pd.concat([frame, row.assign(value=1.0)], ignore_index=True)


# -- item 3: sustained threshold crossings ------------------------------------------------------
def test_sustained_threshold_needs_the_metric_to_stay() -> None:
    tidy = make_tidy
    df = tidy(
        {
            ("a", "E", 0): [(0, 1.0), (10, 0.0), (20, 1.0), (30, 1.0)],  # lucky at 0
            ("a", "E", 1): [(0, 0.0), (10, 1.0), (20, 0.0)],  # crossed, fell back
            ("a", "E", 2): [(0, 0.0), (10, 1.0), (20, 1.0)],
        },
        metric="success_rate",
    )
    plain = curves.steps_to_threshold(df, 1.0, metric="success_rate").set_index("seed")
    assert plain["steps"].tolist() == [0, 10, 10] and plain["reached"].all()
    kept = curves.steps_to_threshold(df, 1.0, metric="success_rate", sustained=True)
    kept = kept.set_index("seed")
    assert kept["reached"].tolist() == [True, False, True]
    assert kept["steps"].tolist() == [20, 20, 10]
    summary = stats.threshold_summary(df, 1.0, metric="success_rate", sustained=True)
    assert summary.loc[0, ["reached", "censored"]].tolist() == [2, 1]
    assert summary.loc[0, "median_steps_reached"] == 15.0


def test_untrained_deep_sea_runs_do_not_count_as_solved_when_sustained() -> None:
    """Every value tied: the greedy eval policy is uniform and finds the treasure with
    probability 2^-4, so some of 50 untrained runs look "solved" at step 0; sustained, a run
    counts only if every evaluation (at step 0 and 1) succeeded."""
    specs = [
        rlcompare.RunSpec(
            "q_learning", "rlcompare/DeepSea-v0", seed, steps=1, env_kwargs={"size": 4},
            eval_episodes=1,
        )
        for seed in range(50)
    ]  # fmt: skip
    frame = pd.concat([result.frame for result in rlcompare.run_batch(specs)])
    plain = stats.steps_to_threshold(frame, 1.0, metric="success_rate").set_index("run_id")
    kept = stats.steps_to_threshold(frame, 1.0, metric="success_rate", sustained=True)
    kept = kept.set_index("run_id")
    lucky = plain["reached"] & (plain["steps"] == 0)
    assert lucky.sum() >= 1  # the defect: solved before learning anything
    always = frame[frame.metric == "success_rate"].groupby("run_id")["value"].min() == 1.0
    pd.testing.assert_series_equal(kept["reached"], always.reindex(kept.index), check_names=False)
    assert kept["reached"].sum() < lucky.sum()


# -- item 4: a diverged run has failed, not run out of budget ----------------------------------
def diverging_group() -> pd.DataFrame:
    """Group a: two runs reach 1.0 at 50 and 60 and run to 100; two diverge at step 5."""
    df = make_tidy(
        {
            ("a", "E", 0): [(0, 0.0), (50, 1.0), (100, 1.0)],
            ("a", "E", 1): [(0, 0.0), (60, 1.0), (100, 1.0)],
            ("a", "E", 2): [(0, 0.0), (5, 0.5)],
            ("a", "E", 3): [(0, 0.0), (5, 0.5)],
        }
    )
    for seed in (2, 3):
        df = with_divergence(df.drop(columns="status", errors="ignore"), f"E__a__{seed}", 5)
    status = df.groupby("run_id")["metric"].transform(lambda m: (m == "diverged").any())
    return df.assign(status=np.where(status, "diverged", "ok"))


def test_diverged_runs_are_censored_at_the_budget_end() -> None:
    df = diverging_group()
    runs = stats.steps_to_threshold(df, 1.0).set_index("seed")
    assert runs["reached"].tolist() == [True, True, False, False]
    assert runs["steps"].tolist() == [50, 60, 100, 100]
    assert runs["diverged"].tolist() == [False, False, True, True]
    # Censored at 5 they would leave two runs at risk at 50: KM median 50. At the budget's
    # end all four are at risk: S(50) = 3/4, S(60) = 3/4 * 2/3 = 1/2, median 60.
    summary = stats.threshold_summary(df, 1.0).iloc[0]
    assert summary["km_median_steps"] == 60.0


def test_diverged_run_without_finished_peers_is_censored_at_the_frames_budget() -> None:
    df = diverging_group()
    df = df.assign(algo=np.where(df["seed"] >= 2, "b", "a"))
    df = df.assign(run_id=df["env"] + "__" + df["algo"] + "__" + df["seed"].astype(str))
    runs = stats.steps_to_threshold(df, 1.0).set_index("seed")
    assert runs.loc[[2, 3], "steps"].tolist() == [100, 100]
    assert stats.threshold_summary(df, 1.0).set_index("algo").loc["b", "km_median_steps"] == (
        np.inf
    )


def test_auc_counts_the_diverged_tail_at_the_worst_value() -> None:
    df = diverging_group()
    areas = stats.auc(df).set_index("seed")["auc"]
    # Run 2: 0 -> 0.5 over steps 0..5 (area 1.25), then 5..100 at its worst value 0.
    assert areas[2] == pytest.approx(1.25 / 100)
    assert areas[0] == pytest.approx((25 + 50) / 100)
    regret = diverging_group().assign(
        metric=lambda f: f["metric"].replace("eval_return", "q_error")
    )
    worst = stats.auc(regret, metric="q_error").set_index("seed")["auc"]
    assert worst[2] == pytest.approx((1.25 + 95 * 0.5) / 100)  # lower is better: worst 0.5


def test_interpolate_curves_grid_is_not_cut_short_by_a_diverged_run() -> None:
    out = stats.interpolate_curves(diverging_group(), num_points=3)
    assert sorted(out["step"].unique()) == [0, 50, 100]
    diverged = out[out["seed"] == 2].set_index("step")["value"]
    assert diverged[0] == 0.0 and np.isnan(diverged[50]) and np.isnan(diverged[100])


# -- item 5: the probability of improvement follows the metric's direction --------------------
def test_probability_of_improvement_on_a_lower_is_better_metric() -> None:
    curves_ = {("a", "E", s): [(0, 5.0), (10, 0.0)] for s in range(3)}
    curves_.update({("b", "E", s): [(0, 5.0), (10, 1.0)] for s in range(3)})
    df = make_tidy(curves_, metric="policy_regret")
    better = stats.probability_of_improvement(df, "a", "b", metric="policy_regret", reps=50)
    assert better.value == 1.0
    forced = stats.probability_of_improvement(
        df, "a", "b", metric="policy_regret", reps=50, higher_is_better=True
    )
    assert forced.value == 0.0
    matrix = stats.improvement_matrix(df, metric="policy_regret", reps=50)
    assert matrix.set_index(["algo_x", "algo_y"]).loc[("b", "a"), "probability"] == 0.0
    returns = df.assign(metric="eval_return")
    assert stats.probability_of_improvement(returns, "a", "b", reps=50).value == 0.0
