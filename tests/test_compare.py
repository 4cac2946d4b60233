"""The sequential test and ``compare``: error rate under the null (exactly, by enumeration, and
by simulation on normal, bimodal and tied scores), power on known differences, directions,
reproducibility and resume, and bad input refused before any run."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

import rlcompare
from rlcompare.analysis.sequential import (
    BETTER,
    NO_DIFFERENCE,
    WORSE,
    SequentialComparison,
    comparison_pairs,
)
from rlcompare.errors import SpecError
from rlcompare.studies.compare import Contender, compare, interim_seeds

ALPHA = 0.05


def _any_difference(test: SequentialComparison) -> bool:
    return any(d in (BETTER, WORSE) for d in test.decisions.values())


def _run_to_end(test: SequentialComparison, draw) -> SequentialComparison:
    while not test.finished:
        test.update({name: draw(test.sizes[name]) for name in test.active})
    return test


# ------------------------------------------------------------------ the test, by hand
def test_every_split_of_a_pooled_sample_rejects_at_most_alpha_exactly() -> None:
    """2 contenders, K=1, n=5: all 252 splits of one pooled sample are enumerated, so the
    share of splits that reject is the exact error rate (adastop 0.1.3: 24/252 = 0.095)."""
    pooled = np.random.default_rng(1).normal(size=10)
    rejected = 0
    for split in itertools.combinations(range(10), 5):
        a, b = pooled[list(split)], np.delete(pooled, list(split))
        test = SequentialComparison(["a", "b"], n=5, K=1, alpha=ALPHA)
        rejected += _any_difference(_one(test, a, b))
    assert rejected / 252 <= ALPHA
    assert rejected == 12  # the 12 most extreme splits: the test spends all it may


def _one(test: SequentialComparison, a, b) -> SequentialComparison:
    test.update({"a": a, "b": b})
    return test


def test_ties_never_reject_through_float_rounding() -> None:
    """Equal means in a different order: sums that differ only by rounding (0.1 + 0.2 +
    0.3 summed in two orders) must not reject; identical scores neither."""
    a = [0.1, 0.2, 0.3, 0.7, 0.7]
    b = [0.7, 0.3, 0.7, 0.2, 0.1]
    assert _one(SequentialComparison(["a", "b"], n=5, K=1), a, b).decisions[("a", "b")] == (
        NO_DIFFERENCE
    )
    same = [500.0] * 5
    for k in (1, 3):
        test = SequentialComparison(["a", "b", "c"], n=5, K=k)
        _run_to_end(test, lambda n: same)
        assert set(test.decisions.values()) == {NO_DIFFERENCE}


def test_a_clear_difference_is_decided_with_its_direction() -> None:
    """Higher scores are better by default; with ``higher_is_better=False`` (regret) the
    same numbers read the other way round."""
    high, low = [10, 11, 12, 13, 14], [0, 1, 2, 3, 4]
    assert (
        _one(SequentialComparison(["a", "b"], n=5, K=1), high, low).decisions[("a", "b")] == BETTER
    )
    regret = SequentialComparison(["a", "b"], n=5, K=1, higher_is_better=False)
    assert _one(regret, high, low).decisions[("a", "b")] == WORSE
    assert (
        _one(SequentialComparison(["a", "b"], n=5, K=1), low, high).decisions[("a", "b")] == WORSE
    )


def test_one_contenders_rare_failures_do_not_hide_a_clear_difference() -> None:
    """CliffWalking at 20,000 steps (compare_economy's runs): Q-learning at -13 in all 20
    seeds, Q(lambda) at -15 to -19, SARSA at -15 with two runs at -1000. With raw mean
    differences the -1000s set the max-statistic's boundary for every pair and Q-learning vs
    Q(lambda) ended "no difference found" after 40 runs; studentized, it is decided."""
    q_lambda = [-15, -17, -19, -17, -17, -17, -17, -17, -19, -17] * 2
    q_learning = [-13] * 20
    sarsa = [-15, -15, -15, -15, -1000, -15, -15, -15, -15, -15] * 2
    test = SequentialComparison(["q_lambda", "q_learning", "sarsa"], n=20, K=1)
    test.update({"q_lambda": q_lambda, "q_learning": q_learning, "sarsa": sarsa})
    assert test.decisions[("q_lambda", "q_learning")] == WORSE


def test_decided_contenders_stop_running() -> None:
    """Against a baseline: a contender whose only comparison is decided gets no more runs."""
    test = SequentialComparison(
        ["new", "weak", "same"], comparison_pairs(["new", "weak", "same"], "new"), n=5, K=4
    )
    rng = np.random.default_rng(0)
    means = {"new": 0.0, "weak": -100.0, "same": 0.0}
    while not test.finished:
        test.update({name: rng.normal(means[name], 1.0, 5) for name in test.active})
    assert test.decisions[("weak", "new")] == WORSE
    assert test.decided_at[("weak", "new")] == 1
    assert test.runs("weak") == 5
    assert test.runs("new") == test.runs("same") == 5 * test.k


# ------------------------------------------------------------------ error rate by simulation
SIMULATIONS = 500


def _bimodal(rng):
    # Seeds that sometimes fail: 30% of runs near 0, the rest near 500.
    return lambda n: np.where(rng.random(n) < 0.3, 0.0, 500.0) + rng.normal(0, 5, n)


def _cartpole(rng):
    # Most runs at the 500.0 cap, the rest spread below it in whole steps.
    return lambda n: np.where(rng.random(n) < 0.8, 500.0, rng.integers(100, 500, n) * 1.0)


def _success_rates(rng):
    # FrozenLake-like success rates of 10 eval episodes: steps of 0.1.
    return lambda n: rng.binomial(10, 0.6, n) / 10


@pytest.mark.parametrize(
    "scores",
    [lambda rng: lambda n: rng.normal(size=n), _bimodal, _cartpole, _success_rates],
    ids=["normal", "bimodal", "cartpole_ties", "success_rate_ties"],
)
def test_family_wise_error_under_the_null_is_at_most_alpha(scores) -> None:
    """Three identical contenders, all pairs, n=5, K=5: the share of simulations with any
    "better"/"worse" is at most alpha plus two Monte Carlo standard errors (adastop 0.1.3:
    0.110 normal, 0.107 bimodal). 2,000 drawn permutations per test keep this fast; the
    identity is always one of them, so fewer only makes boundaries coarser, not looser."""
    rng = np.random.default_rng(7)
    draw = scores(rng)
    wrong = 0
    for sim in range(SIMULATIONS):
        test = SequentialComparison(
            ["a", "b", "c"], n=5, K=5, alpha=ALPHA, permutations=2000, seed=sim
        )
        wrong += _any_difference(_run_to_end(test, draw))
    error = wrong / SIMULATIONS
    standard_error = np.sqrt(ALPHA * (1 - ALPHA) / SIMULATIONS)
    assert error <= ALPHA + 2 * standard_error, error


def test_family_wise_error_on_real_runs_of_one_algorithm_is_at_most_alpha(tmp_path) -> None:
    """The null on real scores: 75 real q_learning runs on FrozenLake-v1 (exact final
    expected_eval_return, a skewed, tied distribution), dealt at random to three labels of the
    same algorithm for each of 500 simulated all-pairs comparisons (n=5, K=5, runs drawn
    without replacement within a comparison)."""
    specs = rlcompare.grid(
        "q_learning", "FrozenLake-v1", seeds=75, steps=3000, hparams={"alpha": 0.5}
    )
    frame = rlcompare.sweep(specs, tmp_path, executor="serial", progress=False)
    pool = (
        frame[frame["metric"] == "expected_eval_return"]
        .groupby("run_id")["value"]
        .last()
        .to_numpy()
    )
    assert pool.size == 75 and np.unique(pool).size > 5
    rng = np.random.default_rng(11)
    wrong = 0
    for sim in range(SIMULATIONS):
        order = iter(rng.permutation(pool))
        test = SequentialComparison(["x", "y", "z"], n=5, K=5, permutations=2000, seed=sim)
        wrong += _any_difference(
            _run_to_end(test, lambda n, order=order: [next(order) for _ in range(n)])
        )
    error = wrong / SIMULATIONS
    assert error <= ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / SIMULATIONS), error


def test_a_one_standard_deviation_shift_is_decided_by_the_second_interim() -> None:
    """Power: b's scores shifted up by one standard deviation, n=20, K=5: decided (b better)
    in the first or second interim in at least 90% of 200 simulations (measured 97%; at
    n=10 it is 72%, and 92% by the third), never the wrong way."""
    rng = np.random.default_rng(3)
    early, wrong = 0, 0
    for sim in range(200):
        test = SequentialComparison(["a", "b"], n=20, K=5, permutations=2000, seed=sim)
        while not test.finished:
            test.update({"a": rng.normal(0, 1, 20), "b": rng.normal(1, 1, 20)})
        decision = test.decisions[("a", "b")]
        wrong += decision == BETTER
        early += decision == WORSE and test.decided_at[("a", "b")] <= 2
    assert wrong == 0
    assert early / 200 >= 0.9, early / 200


# ------------------------------------------------------------------ compare on real runs
FAST = {"steps": 2000, "eval_episodes": 5, "executor": "serial", "progress": False}


def test_q_learning_beats_random_on_frozenlake_in_the_first_interims(tmp_path: Path) -> None:
    """A real, known difference: q_learning (alpha 0.5) against random on FrozenLake-v1,
    scored by the final eval_return (random records no exact expected_eval_return)."""
    verdict = compare(
        [Contender("q_learning", "q_learning", {"alpha": 0.5, "epsilon": 0.1}), "random"],
        "FrozenLake-v1",
        str(tmp_path),
        n=5,
        K=5,
        **{**FAST, "steps": 20_000},
    )
    row = verdict.decisions.iloc[0]
    assert (row["a"], row["b"], row["decision"]) == ("q_learning", "random", BETTER)
    assert row["interim"] <= 2
    assert row["metric"] == "eval_return"
    assert row["difference_low"] > 0 and row["p_improvement"] > 0.5


def test_one_algorithm_under_three_labels_finds_no_difference(tmp_path: Path) -> None:
    """Real runs of one algorithm entered three times (distinct labels, so distinct seeds),
    scored by the exact expected_eval_return: no pair is declared different, and every
    contender used K * n runs."""
    contenders = [Contender(label, "q_learning", {"alpha": 0.5}) for label in "xyz"]
    verdict = compare(contenders, "FrozenLake-v1", str(tmp_path), n=4, K=2, **FAST)
    assert set(verdict.decisions["decision"]) == {NO_DIFFERENCE}
    assert set(verdict.decisions["metric"]) == {"expected_eval_return"}
    assert verdict.runs_used()["runs"].tolist() == [8, 8, 8]
    seeds = {label: set(verdict.scores.query("contender == @label")["seed"]) for label in "xyz"}
    assert not (seeds["x"] & seeds["y"]) and not (seeds["y"] & seeds["z"])


def test_a_rerun_and_a_resumed_comparison_give_the_same_verdict(tmp_path: Path) -> None:
    """The same call twice gives the same table without training; a comparison killed mid-
    interim (some runs of interim 2 missing from the store) resumes to the same table and
    rewrites none of the stored runs."""
    args = (["q_learning", "sarsa", "random"], "FrozenLake-v1", str(tmp_path))
    kwargs = {"n": 3, "K": 2, "hparams": {"alpha": 0.5}, **FAST}
    kwargs["hparams"] = {"q_learning": {"alpha": 0.5}, "sarsa": {"alpha": 0.5}, "random": {}}
    first = compare(*args, **kwargs)
    files = sorted(tmp_path.rglob("*.parquet"))
    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = compare(*args, **kwargs)
    assert again.decisions.equals(first.decisions)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    interim_two = {s for label in ("q_learning", "sarsa") for s in interim_seeds(label, 2, 3)}
    removed = [f for f in files if int(f.name.split("__")[2]) in interim_two][:2]
    if not removed:
        pytest.skip("every comparison was decided in interim 1; nothing to resume")
    for f in removed:
        os.remove(f)
    resumed = compare(*args, **kwargs)
    assert resumed.decisions.equals(first.decisions)
    kept = [f for f in files if f not in removed]
    assert {f: f.stat().st_mtime_ns for f in kept} == {f: stamps[f] for f in kept}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"alpha": 1.5}, "alpha = 1.5"),
        ({"alpha": 0}, "alpha = 0"),
        ({"n": 1}, "n = 1"),
        ({"K": 0}, "K = 0"),
        ({"baseline": "dqn_x"}, "baseline = 'dqn_x'"),
        ({"score": "median"}, "score = 'median'"),
        ({"metric": "reward_per_joule"}, "reward_per_joule"),
        ({"score": "steps_to_threshold"}, "threshold"),
        ({"envs": "CartPole-v1"}, "cannot run on env 'CartPole-v1'"),
        ({"algos": ["q_learning", "q_learning"]}, "repeat a label"),
        ({"algos": ["q_learning", "no_such_algo"]}, "no_such_algo"),
    ],
)
def test_bad_input_is_refused_before_any_run(tmp_path: Path, change, named) -> None:
    args = {"algos": ["q_learning", "random"], "envs": "FrozenLake-v1", **FAST}
    args.update(change)
    store = tmp_path / "store"
    with pytest.raises(SpecError, match=named.replace("(", r"\(").replace("[", r"\[")):
        compare(args.pop("algos"), args.pop("envs"), str(store), **args)
    assert not store.exists() or not any(store.rglob("*.parquet"))


def test_compare_is_public() -> None:
    assert rlcompare.compare is compare
    assert rlcompare.Contender is Contender


# ------------------------------------------------------------------ tables and figures
def _verdict_of(scores: dict[str, list[float]], **test_args):
    """A Verdict from hand-made scores (one env), through the same table builder."""
    import pandas as pd

    from rlcompare.studies.verdict import build_verdict

    names = list(scores)
    test = SequentialComparison(names, n=len(scores[names[0]]), K=1, **test_args)
    test.update(scores)
    rows = [
        {"env": "E", "contender": c, "interim": 1, "seed": i, "run_id": f"{c}{i}", "score": v}
        for c, values in scores.items()
        for i, v in enumerate(values)
    ]
    parameters = {"alpha": ALPHA, "alpha_per_env": ALPHA, "n": 5, "K": 1, "family": "f"}
    return build_verdict(
        {"E": test}, {"E": ("eval_return", True)}, pd.DataFrame(rows), "final", parameters
    )


def test_decisions_table_effects_follow_the_direction() -> None:
    verdict = _verdict_of({"a": [10, 11, 12, 13, 14], "b": [0, 1, 2, 3, 4], "c": [0, 1, 2, 3, 4]})
    table = verdict.decisions.set_index(["a", "b"])
    assert table.loc[("a", "b"), "decision"] == BETTER
    assert table.loc[("a", "b"), "difference"] == 10
    assert table.loc[("a", "b"), "difference_low"] > 0
    assert table.loc[("a", "b"), "p_improvement"] == 1.0
    assert table.loc[("b", "c"), "decision"] == NO_DIFFERENCE
    assert table.loc[("b", "c"), "p_improvement"] == 0.5
    assert "better" in str(verdict)


def test_fixed_design_runs_grow_as_the_effect_shrinks() -> None:
    from rlcompare.studies.verdict import fixed_design_runs

    verdict = _verdict_of(
        {
            "a": [0.0, 1, 2, 3, 4],
            "b": [1.0, 2, 3, 4, 5],
            "c": [3.0, 4, 5, 6, 7],
            "d": [0.0, 1, 2, 3, 4],
        }
    )
    table = fixed_design_runs(verdict).set_index(["a", "b"])
    assert table.loc[("a", "b"), "runs_fixed"] > table.loc[("a", "c"), "runs_fixed"]
    assert table.loc[("a", "d"), "runs_fixed"] == float("inf")
    assert (table["runs_sequential"] == 10).all()


def test_verdict_figures_draw_every_comparison() -> None:
    from rlcompare.studies.verdict import fixed_design_runs
    from rlcompare.viz.verdicts import decision_matrix, runs_used

    verdict = _verdict_of({"a": [10, 11, 12, 13, 14], "b": [0, 1, 2, 3, 4], "c": [0, 1, 2, 3, 5]})
    fig, ax = decision_matrix(verdict.decisions)
    texts = sorted(t.get_text().split("\n")[0] for t in ax.texts)
    assert texts == ["better", "better", "no diff.", "no diff.", "worse", "worse"]
    fig, ax = runs_used(fixed_design_runs(verdict))
    assert len(ax.patches) == 3


def test_stored_runs_give_a_one_interim_verdict(tmp_path: Path) -> None:
    """On an existing store: no run is added, the verdict says it is one interim."""
    from rlcompare.studies.compare import stored_verdict

    specs = rlcompare.grid(["q_learning", "random"], "FrozenLake-v1", seeds=4, steps=2000)
    frame = rlcompare.sweep(specs, tmp_path, executor="serial", progress=False)
    files = sorted(tmp_path.rglob("*.parquet"))
    verdict = stored_verdict(frame)
    assert verdict.parameters["K"] == 1
    assert "one-interim verdict on stored runs" in verdict.parameters["family"]
    assert verdict.runs_used()["runs"].tolist() == [4, 4]
    assert sorted(tmp_path.rglob("*.parquet")) == files
    with pytest.raises(SpecError, match="no_such"):
        stored_verdict(frame, algos=["q_learning", "no_such"])
    by_experiment = frame.assign(experiment=frame["algo"].map({"q_learning": "x", "random": "y"}))
    assert stored_verdict(by_experiment, by="experiment").runs_used()["contender"].tolist() == [
        "x",
        "y",
    ]
    with pytest.raises(SpecError, match="by = 'label' is not a column"):
        stored_verdict(frame, by="label")
    bare = frame[[c for c in frame.columns if not c.startswith(("hp.", "env."))]]
    assert stored_verdict(bare).runs_used()["runs"].tolist() == [4, 4]


def test_the_compare_command_runs_then_reads_the_store_as_one_interim(tmp_path, capsys) -> None:
    from rlcompare.app.cli import main

    store = str(tmp_path / "s")
    args = ["compare", "--algo", "q_learning,random", "--env", "FrozenLake-v1", "--store", store]
    budget = ["--n", "2", "--K", "1", "--steps", "1000", "--executor", "serial", "--quiet"]
    assert main([*args, *budget, "--set", "q_learning.alpha=0.5"]) == 0
    ran = capsys.readouterr().out
    assert "one family of comparisons" in ran and "q_learning random" in ran
    assert main(args) == 0
    stored = capsys.readouterr().out
    assert "one-interim verdict on stored runs" in stored
    assert main([*args, "--alpha", "1.5", "--steps", "10"]) == 2
    assert "alpha = 1.5 is invalid" in capsys.readouterr().err


def test_the_metric_chosen_at_the_first_interim_stays(tmp_path: Path) -> None:
    """random records no expected_eval_return, so the first interim scores eval_return; once
    random's comparisons are decided, q_learning against sarsa still scores eval_return, not
    the exact metric the two of them record."""
    verdict = compare(
        [Contender("q_learning", "q_learning", {"alpha": 0.5}), "random", "sarsa"],
        "FrozenLake-v1",
        str(tmp_path),
        n=5,
        K=3,
        **{**FAST, "steps": 20_000},
    )
    assert set(verdict.decisions["metric"]) == {"eval_return"}
    runs = verdict.runs_used().set_index("contender")["runs"]
    assert runs["random"] < runs["q_learning"]  # random dropped out, the others went on
    frame = rlcompare.load_results(tmp_path, metrics=["eval_return"])
    last = frame.sort_values("step").groupby("run_id")["value"].last()
    assert np.allclose(verdict.scores.set_index("run_id")["score"], last[verdict.scores["run_id"]])
