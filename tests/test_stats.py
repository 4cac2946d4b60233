"""Tests for rlcompare.stats on tiny tidy frames whose answers can be checked by hand."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pytest
from rliable import metrics

from rlcompare.analysis import curves, stats

Curves = Mapping[tuple[str, str, int], Sequence[tuple[int, float]]]
REPS = 200


def make_tidy(curves: Curves, metric: str = "eval_return", **columns: object) -> pd.DataFrame:
    """Tidy rows from ``{(algo, env, seed): [(step, value), ...]}`` plus constant columns."""
    rows = [
        {
            "experiment": "test",
            "run_id": f"{env}__{algo}__{seed}",
            "algo": algo,
            "env": env,
            "seed": seed,
            "step": step,
            "episode": pd.NA,
            "metric": metric,
            "value": value,
            "hp.lr": 0.1,
            **columns,
        }
        for (algo, env, seed), curve in curves.items()
        for step, value in curve
    ]
    frame = pd.DataFrame(rows)
    return frame.astype({"episode": "Int64", "step": "int64", "value": float})


def finals(scores: Mapping[str, np.ndarray], step: int = 100) -> pd.DataFrame:
    """One final eval per run from ``{algo: (num_runs x num_tasks) matrix}``; tasks E0, E1..."""
    curves = {}
    for algo, matrix in scores.items():
        for (seed, task), value in np.ndenumerate(np.asarray(matrix, dtype=float)):
            curves[(algo, f"E{task}", seed)] = [(0, 0.0), (step, value)]
    return make_tidy(curves)


@pytest.fixture
def tidy() -> Callable[..., pd.DataFrame]:
    return make_tidy


# ----------------------------------------------------------------------- final scores
def test_final_scores_averages_last_k_and_keeps_run_columns(tidy):
    df = tidy({("a", "E", 0): [(0, 0.0), (10, 2.0), (20, 4.0)]}, **{"env.is_slippery": True})
    one, two = stats.final_scores(df), stats.final_scores(df, last=2)
    assert one.loc[0, "score"] == 4.0
    assert two.loc[0, "score"] == 3.0
    assert one.loc[0, "step"] == 20
    assert {"run_id", "algo", "env", "seed", "hp.lr", "env.is_slippery"} <= set(one.columns)


def test_final_scores_rejects_bad_last(tidy):
    with pytest.raises(ValueError, match="last"):
        stats.final_scores(tidy({("a", "E", 0): [(0, 1.0)]}), last=0)


def test_missing_metric_names_available_ones(tidy):
    df = tidy({("a", "E", 0): [(0, 1.0)]})
    with pytest.raises(ValueError, match=r"'success_rate'.*eval_return"):
        stats.summary(df, metric="success_rate")


def test_missing_column_names_it(tidy):
    df = tidy({("a", "E", 0): [(0, 1.0)]}).drop(columns="seed")
    with pytest.raises(ValueError, match=r"\['seed'\]"):
        stats.final_scores(df)


def test_unknown_group_column_is_named(tidy):
    df = tidy({("a", "E", 0): [(0, 1.0)]})
    with pytest.raises(ValueError, match="hp.gamma"):
        stats.summary(df, by=["algo", "hp.gamma"], reps=REPS)


# ---------------------------------------------------------------------------- summary
def test_summary_iqm_mean_median_of_4x2_matrix_by_hand():
    # Flattened and sorted: 1 2 [3 4 5 6] 7 100 -> IQM 4.5. Task means 4 and 28 -> mean 16.
    df = finals({"a": [[1, 2], [3, 4], [5, 6], [7, 100]]})
    row = stats.summary(df, reps=REPS).iloc[0]
    assert row["iqm"] == pytest.approx(4.5)
    assert row["mean"] == pytest.approx(16.0)
    assert row["median"] == pytest.approx(16.0)
    assert (row["runs"], row["tasks"]) == (8, 2)
    for name in ("mean", "median", "iqm"):
        assert row[f"{name}_low"] <= row[name] <= row[f"{name}_high"]
    assert row["mean_low"] < row["mean_high"]


def test_summary_median_is_median_of_task_means():
    df = finals({"a": [[1, 10, 100], [3, 30, 300]]})
    row = stats.summary(df, reps=REPS).iloc[0]
    assert row["median"] == pytest.approx(20.0)
    assert row["mean"] == pytest.approx((2 + 20 + 200) / 3)


def test_summary_one_run_single_env_ci_equals_point():
    df = finals({"a": [[3.0]], "b": [[5.0]]})
    out = stats.summary(df, by="algo", reps=REPS)
    assert list(out["algo"]) == ["a", "b"]
    assert list(out["runs"]) == [1, 1]
    for name in ("mean", "median", "iqm"):
        assert list(out[name]) == list(out[f"{name}_low"]) == list(out[f"{name}_high"])
    assert list(out["iqm"]) == [3.0, 5.0]


def test_summary_optimality_gap_by_hand():
    # Scores 0.5 and 1.5 clipped at 1: 1 - mean(0.5, 1) = 0.25.
    row = stats.summary(finals({"a": [[0.5], [1.5]]}), target=1.0, reps=REPS).iloc[0]
    assert row["optimality_gap"] == pytest.approx(0.25)
    assert "optimality_gap" not in stats.summary(finals({"a": [[0.5]]}), reps=REPS)


def test_summary_is_seeded_and_leaves_global_rng_alone():
    df = finals({"a": np.arange(12.0).reshape(6, 2) ** 2})
    # rliable's bootstraps draw from the legacy global RNG; summary must put it back.
    before = np.random.get_state()  # noqa: NPY002
    first = stats.summary(df, reps=REPS, random_state=7)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    second = stats.summary(df, reps=REPS, random_state=7)
    other = stats.summary(df, reps=REPS, random_state=8)
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(other)


def test_summary_groups_by_several_columns(tidy):
    curves = {("a", "E", s): [(0, float(s))] for s in range(3)}
    df = pd.concat([tidy(curves), tidy(curves).assign(**{"hp.lr": 0.5, "value": 9.0})])
    df["run_id"] = df["run_id"] + "_" + df["hp.lr"].astype(str)
    out = stats.summary(df, by=["algo", "hp.lr"], reps=REPS)
    assert list(out["hp.lr"]) == [0.1, 0.5]
    assert list(out["mean"]) == [pytest.approx(1.0), 9.0]


def test_summary_by_env_gives_one_task_per_group():
    out = stats.summary(finals({"a": [[1, 10], [3, 30]]}), by=["algo", "env"], reps=REPS)
    assert list(out["env"]) == ["E0", "E1"]
    assert list(out["tasks"]) == [1, 1]
    assert list(out["mean"]) == [2.0, 20.0]


def test_unequal_runs_per_task_are_truncated_with_a_warning(tidy):
    curves = {("a", "E0", s): [(0, 1.0)] for s in range(3)}
    curves.update({("a", "E1", s): [(0, 5.0)] for s in range(2)})
    with pytest.warns(UserWarning, match="using the first 2"):
        row = stats.summary(tidy(curves), reps=REPS).iloc[0]
    assert (row["runs"], row["tasks"], row["mean"]) == (4, 2, 3.0)


def test_nan_scores_are_dropped_with_a_warning(tidy):
    df = tidy({("a", "E", 0): [(0, 1.0)], ("a", "E", 1): [(0, np.nan)]})
    with pytest.warns(UserWarning, match="E__a__1"):
        row = stats.summary(df, reps=REPS).iloc[0]
    assert (row["runs"], row["mean"]) == (1, 1.0)


# ----------------------------------------------------------- probability of improvement
def test_probability_of_improvement_all_better_is_one():
    df = finals({"a": [[5, 6], [7, 8]], "b": [[1, 2], [3, 4], [0, 0]]})
    est = stats.probability_of_improvement(df, "a", "b", reps=REPS)
    assert (est.value, est.low, est.high) == (1.0, 1.0, 1.0)
    assert stats.probability_of_improvement(df, "b", "a", reps=REPS).value == 0.0


def test_probability_of_improvement_by_hand_with_ties():
    # a = {1, 3}, b = {2, 3}: pairs (1>2 no, 1>3 no, 3>2 yes, 3=3 half) -> 1.5 / 4.
    df = finals({"a": [[1], [3]], "b": [[2], [3]]})
    est = stats.probability_of_improvement(df, "a", "b", reps=REPS)
    assert est.value == pytest.approx(0.375)
    assert est.low <= est.value <= est.high
    assert est.low < est.high


def test_improvement_matrix_is_complementary():
    df = finals({"a": [[1], [3], [4]], "b": [[2], [3], [0]], "c": [[9], [9], [9]]})
    out = stats.improvement_matrix(df, reps=REPS).set_index(["algo_x", "algo_y"])
    assert len(out) == 6
    ab, ba = out.loc[("a", "b")], out.loc[("b", "a")]
    assert ab["probability"] + ba["probability"] == pytest.approx(1.0)
    assert ab["low"] == pytest.approx(1 - ba["high"])
    assert out.loc[("c", "a"), "probability"] == 1.0


def test_probability_of_improvement_unknown_algo():
    with pytest.raises(ValueError, match=r"'dqm'.*valid: a, b.*dqn"):
        stats.probability_of_improvement(
            finals({"a": [[1]], "b": [[2]], "dqn": [[3]]}), "dqm", "a", reps=REPS
        )


def test_performance_profile_fractions_by_hand():
    df = finals({"a": [[1], [2], [3], [4]]})
    out = stats.performance_profile(df, [0.0, 2.5, 4.0], reps=REPS)
    assert list(out.columns) == ["algo", "tau", "fraction", "low", "high"]
    assert list(out["fraction"]) == [1.0, 0.5, 0.0]
    mid = out.iloc[1]
    assert mid["low"] < 0.5 < mid["high"]


# -------------------------------------------------------------------------- thresholds
def test_steps_to_threshold_marks_censored_runs(tidy):
    df = tidy(
        {
            ("a", "E", 0): [(0, 0.0), (10, 0.5), (20, 0.9), (30, 0.2)],
            ("a", "E", 1): [(0, 0.0), (10, 0.1), (25, 0.3)],
        }
    )
    out = stats.steps_to_threshold(df, 0.8).set_index("seed")
    assert out.loc[0, "reached"] and out.loc[0, "steps"] == 20
    assert not out.loc[1, "reached"] and out.loc[1, "steps"] == 25
    assert out["steps"].notna().all()


def test_steps_to_threshold_lower_is_better_for_q_error(tidy):
    df = tidy({("a", "E", 0): [(0, 10.0), (10, 1.0), (20, 0.05)]}, metric="q_error")
    assert stats.steps_to_threshold(df, 0.1, metric="q_error").loc[0, "steps"] == 20
    assert (
        stats.steps_to_threshold(df, 5.0, metric="q_error", higher_is_better=True).loc[0, "steps"]
        == 0
    )


def test_threshold_summary_kaplan_meier_median_by_hand(tidy):
    # Reached at 10 and 20, censored at 30 and 40: S(10) = 3/4, S(20) = 3/4 * 2/3 = 1/2.
    curves = {
        ("a", "E", 0): [(0, 0.0), (10, 1.0)],
        ("a", "E", 1): [(0, 0.0), (20, 1.0)],
        ("a", "E", 2): [(0, 0.0), (30, 0.0)],
        ("a", "E", 3): [(0, 0.0), (40, 0.0)],
        # b: one of three reached, so S never falls to 1/2.
        ("b", "E", 0): [(0, 0.0), (10, 1.0)],
        ("b", "E", 1): [(0, 0.0), (50, 0.0)],
        ("b", "E", 2): [(0, 0.0), (50, 0.0)],
    }
    out = stats.threshold_summary(tidy(curves), 1.0).set_index("algo")
    assert out.loc["a", ["runs", "reached", "censored"]].tolist() == [4, 2, 2]
    assert out.loc["a", "median_steps_reached"] == 15.0
    assert out.loc["a", "km_median_steps"] == 20.0
    assert out.loc["b", "km_median_steps"] == np.inf
    assert out.loc["b", "median_steps_reached"] == 10.0


def test_kaplan_meier_counts_early_censoring():
    # Censored at 5 (twice), reached at 10 and 20: S(10) = 1 - 1/2 -> median 10.
    steps, reached = np.array([5, 5, 10, 20]), np.array([False, False, True, True])
    assert curves._kaplan_meier_median(steps, reached) == 10.0


# ----------------------------------------------------------------------------- curves
def test_interpolate_curves_onto_common_grid(tidy):
    df = tidy(
        {
            ("a", "E", 0): [(0, 0.0), (10, 1.0), (20, 2.0)],
            ("a", "E", 1): [(0, 0.0), (5, 2.0), (15, 2.0), (30, 4.0)],
        }
    )
    out = stats.interpolate_curves(df, num_points=5)
    assert sorted(out["step"].unique()) == [0, 5, 10, 15, 20]
    run0 = out[out["seed"] == 0].set_index("step")["value"]
    run1 = out[out["seed"] == 1].set_index("step")["value"]
    assert run0.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert run1.tolist() == pytest.approx([0.0, 2.0, 2.0, 2.0, 2.0 + 2.0 * 5 / 15])
    assert (out["metric"] == "eval_return").all() and (out["algo"] == "a").all()


def test_interpolate_curves_never_extrapolates(tidy):
    df = tidy({("a", "E", 0): [(0, 0.0), (10, 1.0)]})
    out = stats.interpolate_curves(df, steps=[5, 20]).set_index("step")["value"]
    assert out[5] == 0.5 and np.isnan(out[20])
    disjoint = tidy({("a", "E", 0): [(0, 0.0), (10, 1.0)], ("a", "E", 1): [(20, 0.0), (30, 1.0)]})
    with pytest.raises(ValueError, match="share no step range"):
        stats.interpolate_curves(disjoint)


def test_aggregate_curves_iqm_per_step_matches_rliable(tidy):
    rng = np.random.default_rng(0)
    curves = {
        ("a", env, s): [(0, 0.0), (7 + s, rng.random()), (40, rng.random())]
        for env in ("E0", "E1")
        for s in range(4)
    }
    df = tidy(curves)
    out = stats.aggregate_curves(df, num_points=5, reps=REPS)
    assert list(out["step"]) == [0, 10, 20, 30, 40]
    wide = stats.interpolate_curves(df, num_points=5).pivot(
        index="run_id", columns="step", values="value"
    )
    for _, row in out.iterrows():
        assert row["iqm"] == pytest.approx(metrics.aggregate_iqm(wide[row["step"]].to_numpy()))
        assert row["iqm_low"] <= row["iqm"] + 1e-12 and row["iqm"] <= row["iqm_high"] + 1e-12
    assert (out["runs"] == 8).all()
    assert out.loc[0, "iqm_low"] == out.loc[0, "iqm_high"] == 0.0


def test_aggregate_curves_groups(tidy):
    curves = {
        (algo, "E", s): [(0, 0.0), (10, float(k + 1))]
        for k, algo in enumerate(("a", "b"))
        for s in range(2)
    }
    out = stats.aggregate_curves(tidy(curves), num_points=2, reps=REPS)
    assert out.set_index(["algo", "step"])["iqm"].to_dict() == {
        ("a", 0): 0.0,
        ("a", 10): 1.0,
        ("b", 0): 0.0,
        ("b", 10): 2.0,
    }


def test_auc_is_trapezoid_over_step_span(tidy):
    df = tidy(
        {
            ("a", "E", 0): [(0, 0.0), (100, 1.0)],
            ("a", "E", 1): [(0, 0.0), (10, 1.0), (100, 1.0)],
            ("a", "E", 2): [(50, 0.7)],
        }
    )
    out = stats.auc(df).set_index("seed")["auc"]
    assert out[0] == pytest.approx(0.5)
    assert out[1] == pytest.approx((5 + 90) / 100)
    assert out[2] == pytest.approx(0.7)


# -------------------------------------------------------------------------- normalize
def test_normalize_maps_random_to_zero_and_optimal_to_one(tidy):
    df = pd.concat(
        [
            tidy({("a", "E0", 0): [(0, -100.0), (10, -13.0)], ("a", "E1", 0): [(0, 0.5)]}),
            tidy({("a", "E0", 0): [(0, 7.0)]}, metric="wall_time_s"),
        ]
    )
    out = stats.normalize(
        df, random_score={"E0": -100.0, "E1": 0.0}, optimal_score={"E0": -13.0, "E1": 1.0}
    )
    returns = out[out["metric"] == "eval_return"]["value"].tolist()
    assert returns == [0.0, 1.0, 0.5]
    assert out[out["metric"] == "wall_time_s"]["value"].tolist() == [7.0]
    assert df["value"].tolist()[:2] == [-100.0, -13.0]  # input untouched


def test_normalize_errors_name_the_env(tidy):
    df = tidy({("a", "E0", 0): [(0, 1.0)], ("a", "E1", 0): [(0, 1.0)]})
    with pytest.raises(ValueError, match=r"\['E1'\].*valid: E0"):
        stats.normalize(df, {"E0": 0.0}, 1.0)
    with pytest.raises(ValueError, match="E0"):
        stats.normalize(df, 1.0, {"E0": 1.0, "E1": 2.0})


# --------------------------------------------------------------------------- collapse
def test_collapse_rate(tidy):
    curves = {
        ("a", "E", 0): [(0, 0.0), (10, 1.0), (20, 0.3), (30, 0.2)],  # collapses at 20
        ("a", "E", 1): [(0, 0.0), (10, 1.0), (20, 0.3), (30, 0.9)],  # dips and recovers
        ("a", "E", 2): [(0, 0.0), (10, 0.4), (20, 0.1)],  # collapses, but never solved
        ("b", "E", 0): [(0, 0.0), (10, 1.0), (20, np.nan)],  # diverges after learning
    }
    result = stats.collapse_rate(tidy(curves))
    runs = result.runs.set_index("run_id")
    assert runs["collapsed"].tolist() == [True, False, True, True]
    assert runs.loc["E__a__0", "collapse_step"] == 20
    assert pd.isna(runs.loc["E__a__1", "collapse_step"])
    assert runs.loc["E__a__0", "peak"] == 1.0
    groups = result.groups.set_index("algo")
    assert groups.loc["a", ["runs", "collapsed"]].tolist() == [3, 2]
    assert groups.loc["a", "share"] == pytest.approx(2 / 3)
    solved = stats.collapse_rate(tidy(curves), solve_threshold=0.9).runs
    assert solved["collapsed"].tolist() == [True, False, False, True]
    patient = stats.collapse_rate(tidy(curves), min_evals=2).runs
    assert patient["collapsed"].tolist() == [True, False, False, False]


def test_collapse_rate_warns_on_negative_scores(tidy):
    df = tidy({("a", "E", 0): [(0, -100.0), (10, -13.0), (20, -100.0)]})
    with pytest.warns(UserWarning, match="normalize"):
        runs = stats.collapse_rate(df).runs
    assert not runs.loc[0, "collapsed"]


def test_collapse_rate_rejects_bad_fraction(tidy):
    with pytest.raises(ValueError, match="fraction = 1.5"):
        stats.collapse_rate(tidy({("a", "E", 0): [(0, 1.0)]}), fraction=1.5)


def test_aggregate_curves_skips_grid_steps_a_group_does_not_cover(tidy):
    df = tidy(
        {
            ("a", "E", 0): [(0, 0.0), (40, 4.0)],
            ("a", "E", 1): [(0, 0.0), (50, 5.0)],
            ("b", "E", 0): [(0, 0.0), (50, 1.0)],
        }
    )
    out = stats.aggregate_curves(df, steps=[0, 20, 50], reps=REPS)
    assert out.groupby("algo")["step"].apply(list).to_dict() == {"a": [0, 20], "b": [0, 20, 50]}
    assert out.set_index(["algo", "step"]).loc[("a", 20), "iqm"] == pytest.approx(2.0)


def test_fast_iqm_matches_rliable() -> None:
    from rliable import metrics

    from rlcompare.analysis.matrices import fast_iqm

    rng = np.random.default_rng(0)
    for shape in [(4, 2), (5, 3), (7, 1), (1, 1), (10, 4)]:
        scores = rng.normal(size=shape)
        assert fast_iqm(scores) == pytest.approx(metrics.aggregate_iqm(scores), abs=1e-12)


def test_fast_iqm_columns_matches_scipy() -> None:
    import scipy.stats

    from rlcompare.analysis.matrices import fast_iqm_columns

    rng = np.random.default_rng(1)
    for rows in (1, 2, 4, 7, 13):
        matrix = rng.normal(size=(rows, 5))
        np.testing.assert_allclose(
            fast_iqm_columns(matrix), scipy.stats.trim_mean(matrix, 0.25, axis=0), atol=1e-12
        )


def test_fast_probability_of_improvement_is_rliables_bit_for_bit() -> None:
    """Ties (integer scores), identical samples, one run, several tasks, NaN."""
    from rliable import metrics

    from rlcompare.analysis.matrices import fast_probability_of_improvement

    rng = np.random.default_rng(2)
    for trial in range(400):
        n, m, tasks = rng.integers(1, 25), rng.integers(1, 25), rng.integers(1, 4)
        x = (
            rng.integers(0, 4, (n, tasks)).astype(float)
            if trial % 2
            else rng.normal(size=(n, tasks))
        )
        y = (
            rng.integers(0, 4, (m, tasks)).astype(float)
            if trial % 3
            else rng.normal(size=(m, tasks))
        )
        if trial % 5 == 0:
            y = x.copy()
        assert fast_probability_of_improvement(x, y) == metrics.probability_of_improvement(x, y)
    x, y = np.array([[1.0], [np.nan]]), np.array([[0.0], [2.0]])
    assert np.isnan(fast_probability_of_improvement(x, y))
    assert np.isnan(metrics.probability_of_improvement(x, y))


def test_verdict_effect_sizes_equal_rliables_own_metric(monkeypatch) -> None:
    """The verdict's P(improvement) CI is rliable's bootstrap of rliable's metric: the same
    numbers with the metric swapped back."""
    from rliable import metrics

    from rlcompare.analysis import matrices
    from rlcompare.studies import verdict

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 6, 9).astype(float), rng.integers(1, 7, 7).astype(float)
    fast = verdict.effect_sizes(a, b, higher=False, reps=300)
    monkeypatch.setattr(
        matrices, "fast_probability_of_improvement", metrics.probability_of_improvement
    )
    assert verdict.effect_sizes(a, b, higher=False, reps=300) == fast


def test_aggregate_curves_default_grid_spans_every_groups_budget(tidy):
    # Notebook 06: the planner runs 5,000 steps, DQN 10,000; each curve must reach its own end
    # (a grid over the range every run covers stopped DQN's curve at the planner's budget).
    df = tidy(
        {
            ("long", "E", 0): [(0, 0.0), (100, 10.0)],
            ("long", "E", 1): [(0, 0.0), (100, 20.0)],
            ("short", "E", 0): [(0, 0.0), (50, 5.0)],
        }
    )
    out = stats.aggregate_curves(df, num_points=5, reps=REPS)
    steps = out.groupby("algo")["step"].apply(list).to_dict()
    assert steps == {"long": [0, 25, 50, 75, 100], "short": [0, 25, 50]}
    assert out.set_index(["algo", "step"]).loc[("long", 100), "iqm"] == pytest.approx(15.0)
    with pytest.raises(ValueError, match=r"span = 'both'.*common, all"):
        stats.interpolate_curves(df, span="both")
