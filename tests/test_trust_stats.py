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


# -- issue 27, item 2: a diverged run counts at its worst value in every statistic ------------
REPS = 50


def finished_and_diverged() -> pd.DataFrame:
    """a: five runs end at 40. b: four runs end at 40 and one diverged at step 10 right after
    an eval of 100 (its eval at step 0 was 0, its worst value)."""
    runs = {("a", "E", s): [(0, 0.0), (50, 20.0), (100, 40.0)] for s in range(5)}
    runs.update({("b", "E", s): [(0, 0.0), (50, 20.0), (100, 40.0)] for s in range(4)})
    runs[("b", "E", 4)] = [(0, 0.0), (10, 100.0)]
    return with_divergence(make_tidy(runs), "E__b__4", 10)


def test_final_scores_count_a_diverged_run_at_its_worst_value() -> None:
    df = finished_and_diverged()
    scores = stats.final_scores(df).set_index("run_id")["score"]
    assert scores["E__b__4"] == 0.0
    assert stats.final_scores(df, last=2).set_index("run_id").loc["E__b__4", "score"] == 0.0
    table = stats.summary(df, reps=REPS).set_index("algo")
    # Scored by its last eval before diverging, b's mean was (4 * 40 + 100) / 5 = 52.
    assert table.loc["a", "mean"] == 40.0 and table.loc["b", "mean"] == 32.0
    gap = stats.summary(df, reps=REPS, target=40.0).set_index("algo")["optimality_gap"]
    assert gap["a"] == 0.0 and gap["b"] == 8.0


def test_probability_of_improvement_counts_a_diverged_run_at_its_worst_value() -> None:
    df = finished_and_diverged()
    # Every finished run ties at 40; scored at 100, the diverged run gave P(b > a) = 0.60.
    assert stats.probability_of_improvement(df, "b", "a", reps=REPS).value == pytest.approx(0.4)
    matrix = stats.improvement_matrix(df, reps=REPS).set_index(["algo_x", "algo_y"])
    assert matrix.loc[("a", "b"), "probability"] == pytest.approx(0.6)


def test_performance_profile_counts_a_diverged_run_at_its_worst_value() -> None:
    profile = stats.performance_profile(finished_and_diverged(), [30.0], reps=REPS)
    assert profile.set_index("algo")["fraction"].to_dict() == {"a": 1.0, "b": 0.8}


def test_aggregate_curves_continue_a_diverged_run_at_its_worst_value() -> None:
    # Group a of diverging_group: runs 0, 1 reach 1.0 and run to 100; runs 2, 3 diverge at 5
    # after 0 -> 0.5 (worst value 0). The curve was cut at the first divergence: steps [0].
    out = stats.aggregate_curves(diverging_group(), num_points=3, reps=REPS).set_index("step")
    assert out.index.tolist() == [0, 50, 100]
    assert out["runs"].tolist() == [4, 4, 4]
    # IQM of 4 values: the mean of the middle two. Step 100: {0, 0, 1, 1}; step 50: run 1 is
    # at 50 / 60 on its way to 1.0, so {0, 0, 5/6, 1}.
    assert out.loc[100, "iqm"] == pytest.approx(0.5)
    assert out.loc[50, "iqm"] == pytest.approx(5 / 12)


def test_collapse_rate_counts_a_diverged_run_as_fallen_to_its_worst_value() -> None:
    result = stats.collapse_rate(finished_and_diverged(), min_evals=2)
    runs = result.runs.set_index("run_id")
    assert bool(runs.loc["E__b__4", "collapsed"]) and not runs["collapsed"].drop("E__b__4").any()
    assert runs.loc["E__b__4", "collapse_step"] == 10


def test_learning_curves_draw_a_diverged_group_over_its_whole_budget() -> None:
    from rlcompare.viz import plots

    _, ax = plots.learning_curves(diverging_group(), num_points=3, reps=REPS)
    assert ax.get_lines()[0].get_xdata().tolist() == [0, 50, 100]


# -- issue 27, item 9: every statistic names the runs it leaves out and why -------------------
def with_a_run_without(metric: str) -> pd.DataFrame:
    """Runs of a and b with ``metric``, and a run of c that records only ``other``."""
    runs = {(algo, "E", s): [(0, 0.0), (10, 1.0)] for algo in "ab" for s in range(2)}
    df = make_tidy(runs, metric=metric)
    other = make_tidy({("c", "E", 0): [(0, 0.0), (10, 1.0)]}, metric="other")
    return pd.concat([df, other], ignore_index=True)


STATISTICS = {
    "final_scores": lambda df: stats.final_scores(df),
    "summary": lambda df: stats.summary(df, reps=REPS),
    "improvement_matrix": lambda df: stats.improvement_matrix(df, reps=REPS),
    "probability_of_improvement": lambda df: stats.probability_of_improvement(
        df, "a", "b", reps=REPS
    ),
    "performance_profile": lambda df: stats.performance_profile(df, [0.5], reps=REPS),
    "interpolate_curves": lambda df: stats.interpolate_curves(df, num_points=3),
    "aggregate_curves": lambda df: stats.aggregate_curves(df, num_points=3, reps=REPS),
    "auc": lambda df: stats.auc(df),
    "steps_to_threshold": lambda df: stats.steps_to_threshold(df, 1.0),
    "threshold_summary": lambda df: stats.threshold_summary(df, 1.0),
    "collapse_rate": lambda df: stats.collapse_rate(df),
}


@pytest.mark.parametrize("name", list(STATISTICS))
def test_every_statistic_names_runs_missing_the_metric(name: str) -> None:
    with pytest.warns(UserWarning, match=r"no eval_return rows.*algo c.*E__c__0"):
        STATISTICS[name](with_a_run_without("eval_return"))


@pytest.mark.parametrize("name", list(STATISTICS))
def test_every_statistic_names_failed_runs_it_leaves_out(name: str) -> None:
    df = with_a_run_without("eval_return")
    df = df[df["algo"] != "c"]
    df = df.assign(status=np.where(df["run_id"] == "E__a__1", "failed", "ok"))
    with pytest.warns(UserWarning, match=r"failed.*E__a__1"):
        STATISTICS[name](df)


def test_a_run_that_diverged_before_its_first_evaluation_is_named() -> None:
    df = with_a_run_without("eval_return")
    df = df.assign(status=np.where(df["algo"] == "c", "diverged", "ok"))
    with pytest.warns(UserWarning, match=r"diverged before.*E__c__0"):
        stats.summary(df, reps=REPS)


def test_truncated_tasks_name_the_runs_left_out() -> None:
    runs = {("a", "E0", s): [(0, 1.0)] for s in range(3)}
    runs.update({("a", "E1", s): [(0, 5.0)] for s in range(2)})
    with pytest.warns(UserWarning, match=r"using the first 2.*E0__a__2"):
        stats.summary(make_tidy(runs), reps=REPS)


def test_aggregate_curves_names_a_group_it_cannot_draw() -> None:
    df = make_tidy({("a", "E", 0): [(0, 0.0), (10, 1.0)], ("b", "E", 0): [(20, 0.0), (30, 1.0)]})
    with pytest.warns(UserWarning, match=r"algo=a.*no grid step"):
        out = stats.aggregate_curves(df, steps=[20, 30], reps=REPS)
    assert set(out["algo"]) == {"b"}


def test_per_episode_continues_a_diverged_run_at_its_worst_value() -> None:
    """Run 0 plays episodes 0..3 (returns 0, 1, 1, 1); run 1 diverged after episodes 0, 1
    (returns 0, 1). Averaging only the runs still there, episodes 2 and 3 showed 1.0 over one
    run; run 1 counts at its worst return, 0, up to its group's last episode."""
    rows = []
    for seed, returns in [(0, [0.0, 1.0, 1.0, 1.0]), (1, [0.0, 1.0])]:
        for episode, value in enumerate(returns):
            rows.append(
                {"run_id": f"E__a__{seed}", "algo": "a", "env": "E", "seed": seed,
                 "step": 10 * (episode + 1), "episode": episode, "metric": "episode_return",
                 "value": value, "status": "diverged" if seed == 1 else "ok"}
            )  # fmt: skip
    df = pd.DataFrame(rows).astype({"episode": "Int64"})
    table = stats.per_episode(df).set_index("episode")
    assert table["runs"].tolist() == [2, 2, 2, 2]
    assert table["value"].tolist() == [0.0, 1.0, 0.5, 0.5]
    shares = stats.per_episode(df, at_least=1.0).set_index("episode")["value"]
    assert shares.tolist() == [0.0, 1.0, 0.5, 0.5]
