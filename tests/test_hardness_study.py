"""The hardness study of notebook 04: specs validated up front, scores normalised by the
random policy's exact regret, one summary row per (family, knob value, learner)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import rlcompare
from rlcompare import SpecError
from rlcompare.envs.model import tabular_mdp
from rlcompare.envs.planning import policy_evaluation, value_iteration
from rlcompare.experiments import hardness_study

COMMON = {"seeds": 1, "gamma": 0.9, "replan_every": 10, "evals": 2, "eval_episodes": 1}


def test_specs_cover_every_learner_family_and_knob_value() -> None:
    knobs = {"DeepSea": [3, 4], "SelfHealing": [0.2]}
    specs = hardness_study.specs(
        knobs=knobs, steps={"DeepSea": 100, "SelfHealing": 50}, **{**COMMON, "seeds": 2}
    )
    assert len(specs) == 4 * 3 * 2  # learners x (family, value) x seeds
    assert {s.experiment for s in specs} == set(hardness_study.LEARNERS)
    sizes = {s.env_kwargs["size"] for s in specs if s.env == "rlcompare/DeepSea-v0"}
    assert sizes == {3, 4}
    assert all(s.hparams["gamma"] == 0.9 for s in specs)
    ucb = [s for s in specs if s.experiment == "ucb"]
    assert all(s.hparams["exploration"] == "ucb" for s in ucb)
    assert {s.env: s.steps for s in specs} == {
        "rlcompare/DeepSea-v0": 100,
        "rlcompare/SelfHealing-v0": 50,
    }


def test_ucb_bonus_is_in_the_units_of_the_rewards() -> None:
    river = hardness_study.contenders("RiverSwim", [4, 6], replan_every=10)
    sea = hardness_study.contenders("DeepSea", [4], replan_every=10)
    assert river["ucb"][1]["ucb_c"] == 10_000.0 and sea["ucb"][1]["ucb_c"] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"knobs": {"DeepSee": [4]}, "steps": {"DeepSee": 10}}, "unknown env family 'DeepSee'"),
        ({"knobs": {"DeepSea": [4]}, "steps": {"RiverSwim": 10}}, "valid: the same families"),
        ({"knobs": {"DeepSea": [0]}, "steps": {"DeepSea": 10}}, "size = 0 is invalid"),
        (
            {"knobs": {"FrozenLake": [40]}, "steps": {"FrozenLake": 10}},
            "map_size = 40 is out of range",
        ),
        (
            {"knobs": {"SelfHealing": [1.5]}, "steps": {"SelfHealing": 10}},
            "fault_rate = 1.5 is out of range",
        ),
        (
            {"knobs": {"DeepSea": [4]}, "steps": {"DeepSea": 10}, "learners": ["dqn"]},
            "unknown learner 'dqn'",
        ),
    ],
)
def test_bad_study_settings_fail_before_any_run(kwargs: dict, named: str) -> None:
    with pytest.raises((SpecError, ValueError)) as info:
        hardness_study.specs(**{**COMMON, **kwargs})
    assert named in str(info.value)


def test_table_holds_exact_optimal_and_random_values() -> None:
    table = hardness_study.hardness_table({"RiverSwim": [4, 6]}, gamma=0.9)
    assert table["value"].tolist() == [4, 6]
    assert table["states"].tolist() == [4, 6]
    mdp = tabular_mdp("rlcompare/RiverSwim-v0", n_states=6)
    random = policy_evaluation(mdp, np.full((6, 2), 0.5), 0.9)
    row = table.iloc[1]
    assert row["v_random"] == pytest.approx(mdp.initial @ random)
    assert row["v_optimal"] == pytest.approx(mdp.initial @ value_iteration(mdp, 0.9).v)
    assert row["diameter"] == pytest.approx(rlcompare.hardness(mdp, gamma=0.9).diameter)


def _frame(values: list[float], regrets: list[list[float]]) -> pd.DataFrame:
    """Tidy policy_regret rows of DeepSea runs: run i at size values[i], regrets at steps
    0, 10, 20."""
    rows = []
    for i, (size, curve) in enumerate(zip(values, regrets, strict=True)):
        for step, regret in zip((0, 10, 20), curve, strict=True):
            rows.append(
                {
                    "run_id": f"run{i}",
                    "experiment": "q_learning",
                    "algo": "q_learning",
                    "env": "rlcompare/DeepSea-v0",
                    "seed": i,
                    "step": step,
                    "metric": "policy_regret",
                    "value": regret,
                    "env.size": float(size),  # float, as beside envs without a size
                }
            )
    return pd.DataFrame(rows)


def test_scores_divide_the_average_regret_by_the_random_policys() -> None:
    table = hardness_study.hardness_table({"DeepSea": [3]}, gamma=0.9)
    gap = float(table["v_optimal"].iloc[0] - table["v_random"].iloc[0])
    # Trapezoids over steps 0-20: (gap + gap/2) / 2 and (gap/2 + 0) / 2, halved: gap / 2.
    scores = hardness_study.regret_scores(_frame([3], [[gap, gap / 2, 0.0]]), table)
    assert scores["value"].tolist() == [3] and isinstance(scores["value"].iloc[0], int)
    assert scores["auc"].iloc[0] == pytest.approx(gap / 2)
    assert scores["normalized_regret"].iloc[0] == pytest.approx(0.5)


def test_a_tiny_study_end_to_end(tmp_path) -> None:
    knobs = {"DeepSea": [3, 4], "RiverSwim": [3]}
    steps = {"DeepSea": 200, "RiverSwim": 200}
    specs = hardness_study.specs(knobs=knobs, steps=steps, **{**COMMON, "seeds": 2})
    frame = rlcompare.sweep(specs, tmp_path / "store", executor="serial")
    table = hardness_study.hardness_table(knobs, gamma=0.9)
    scores = hardness_study.regret_scores(frame, table)
    assert len(scores) == len(specs) and (scores["normalized_regret"] >= 0).all()
    summary = hardness_study.regret_summary(scores, reps=50)
    assert len(summary) == 4 * 3 and (summary["runs"] == 2).all()
    assert (summary["iqm_low"] <= summary["iqm"] + 1e-12).all()
    ranks = hardness_study.correlations(summary, table)
    assert set(ranks.index) == set(hardness_study.LEARNERS) and (ranks["points"] == 3).all()
    assert all(math.isnan(v) or -1 <= v <= 1 for v in ranks["diameter"])
    fig, axes = hardness_study.figure(summary, table)
    assert axes.shape == (2, 3)
    text = hardness_study.conclusions(summary, table)
    assert text.count("- **") == 2 and "Pooled over the 3 envs" in text
    numbers = hardness_study.headline(summary, table, frame)
    assert numbers["hardness_runs"] == len(specs)
    assert numbers["hardness_diameter"]["DeepSea/3"] == pytest.approx(4.0)
