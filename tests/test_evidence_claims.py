"""The evidence every notebook records for the summary table (issue 32): a list of short
claims per approach, each with its number's 95% CI ``[a, b]`` or a verdict's decision.

Each module's ``headline`` is fed small hand-made tables shaped as the notebook's own
(``stats.summary`` rows with their CI columns, verdict decisions)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rlcompare.experiments import (
    continuous_actions,
    convergence,
    corrective_action,
    logs_vs_imitation,
    model_based,
    sample_efficiency,
    tuning,
    your_algorithm,
)
from rlcompare.experiments.evidence import (
    MAX_WORDS,
    decisions_claim,
    is_short_claim,
    number,
    verdict_claims,
    with_ci,
)
from rlcompare.viz.report import comparison_table


def _rows(keys: dict[str, list[Any]], iqm: list[float]) -> pd.DataFrame:
    """A ``stats.summary``-shaped table: ``keys`` columns, ``iqm`` and its CI, ``runs``."""
    values = np.asarray(iqm, dtype=float)
    return pd.DataFrame(
        {**keys, "runs": 3, "iqm": values, "iqm_low": values - 0.5, "iqm_high": values + 0.5}
    )


def _decisions(pairs: list[tuple[str, str, str]], env: str = "A", **extra: Any) -> pd.DataFrame:
    """Decisions of a verdict: ``(a, b, decision)`` on ``env``, 2+2 runs each."""
    return pd.DataFrame(
        [
            {"env": env, "a": a, "b": b, "decision": d, "runs_a": 2, "runs_b": 2, **extra}
            for a, b, d in pairs
        ]
    )


def _convergence() -> dict[str, Any]:
    final = _rows(
        {"env": ["Taxi-v4", "Taxi-v4"], "hp.alpha_schedule": "visit", "algo": ["q_learning", "x"]},
        [20.0, 21.0],
    )
    frames = [pd.DataFrame({"run_id": ["a"]})]
    return convergence.headline(final, pd.Series(dtype=float), pd.Series(dtype=float), frames)


def _sample_efficiency() -> dict[str, Any]:
    algos = ["dqn", "sb3_dqn", "no_target", "no_replay", "ppo"]
    final = _rows({"algo": algos}, [0.1, 0.2, 0.3, 0.4, 0.5])
    reached = pd.DataFrame({"env": ["A"], "algo": ["dqn"], "km_median_steps": [300.0]})
    collapsed = pd.DataFrame({"algo": ["dqn"], "share": [0.0]})
    decided = pd.concat(
        [
            _decisions(
                [
                    (a, "dqn", "better" if a == "no_target" else "no difference found")
                    for a in algos[1:]
                ],
                score=score,
            )  # fmt: skip
            for score in ("final", "steps_to_threshold")
        ],
        ignore_index=True,
    )
    return sample_efficiency.headline(final, reached, collapsed, 800, decided)


def _model_based() -> dict[str, Any]:
    learners = list(model_based.LEARNERS)
    final = _rows({"env": "A", "learner": learners}, [10.0, 1.0, 0.5, 0.8, 2.0, 3.0, 4.0]).assign(
        env="A"
    )
    compare = pd.DataFrame(
        {"run_id": ["r"], "env": ["A"], "experiment": ["psrl"], "step": [1]}
        | {"metric": ["model_error"], "value": [0.1], "seed": [0], "algo": ["psrl"]}
    )
    late = pd.Series({0: 300.0, 50: 20.0})
    auc = pd.Series({("A", "psrl"): 0.5})
    auc.index.names = ["env", "learner"]
    auc.name = "auc"
    return model_based.headline(late, auc, final, compare, [compare])


def _logs_vs_imitation() -> dict[str, Any]:
    lake_logs = ["naive eps=0.5", "expert eps=0.5", "naive eps=0.0"]
    lake = _rows(
        {"logs": [k for k in lake_logs for _ in "ab"], "algo": ["q_learning", "bc"] * 3},
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    )
    cart_logs = ["expert eps=0.0", "novice eps=0.5"]
    cartpole = _rows(
        {"logs": [k for k in cart_logs for _ in "ab"] + ["online"]}
        | {"algo": ["dqn", "bc"] * 2 + ["ppo"]},
        [40.0, 120.0, 9.0, 50.0, 60.0],
    )
    experiment = SimpleNamespace(
        lake_demo={"naive eps=0.5": 0.02, "naive eps=0.0": 0.05},
        cartpole_demo={"novice eps=0.5": 44.0},
    )
    regret = pd.DataFrame({"logs": ["naive eps=0.5"], "iqm": [0.5]})
    return logs_vs_imitation.headline(
        experiment,
        lake,
        cartpole,
        regret,
        epsilons=[0.0, 0.5],
        cartpole_logs=[("expert", 0.0), ("novice", 0.5)],
        ppo_steps=256,
        runs=11,
    )


def _continuous_actions() -> dict[str, Any]:
    algos = ["dqn, 3 torques", "dqn, 5 torques", "ppo, continuous", "mpc, continuous"]
    final = _rows({"algo": algos}, [-1800.0, -1400.0, -1600.0, -1500.0])
    reached = pd.DataFrame({"algo": algos, "reached": 0, "km_median_steps": np.inf})
    return continuous_actions.headline(final, reached, threshold=-200, steps=400, runs=4)


def _corrective_action() -> dict[str, Any]:
    algos = ["optimal", "q_learning", "dyna_q", "dqn", "ppo", "bc", "runbook"]
    algos += [corrective_action.CE]
    board = pd.concat(
        [
            _rows({"metric": metric, "algo": algos}, [float(i + 10 * j) for i in range(8)])
            for j, metric in enumerate(corrective_action.METRICS)
        ],
        ignore_index=True,
    )
    coverage = _rows(
        {"algo": ["offline_q_learning"] * 3 + [corrective_action.CE] * 2}
        | {
            "logs": ["runbook only", "runbook only"]
            + ["30% deviations", "runbook only"]
            + ["30% deviations"]
        }
        | {"hp.q_init": [0.0, -100.0, -100.0, -100.0, -100.0]},
        [52.0, 6.6, 2.5, 6.6, 1.7],
    )
    coverage["model_error"] = np.nan
    by_rate = pd.DataFrame({"env.fault_rate": [0.1], "algo": ["runbook"], "iqm": [6.65]})
    return corrective_action.headline(
        board,
        pd.Series({"runbook": 0.75}),
        coverage,
        by_rate,
        steps=600,
        deep_steps=30,
        log_epsilon=0.3,
        pessimistic_q_init=-100.0,
        runs=9,
    )


def _your_algorithm() -> dict[str, Any]:
    tabular = _rows({"env": "A", "algo": ["q_lambda", "q_learning", "sarsa"]}, [1.0, 2.0, 3.0])
    deep = _rows({"env": "B", "algo": ["a2c", "dqn", "ppo"]}, [15.0, 9.0, 54.0])
    tabular_verdict = SimpleNamespace(
        decisions=_decisions(
            [("q_learning", "q_lambda", "better"), ("sarsa", "q_lambda", "no difference found")]
        )
    )
    deep_verdict = SimpleNamespace(
        decisions=_decisions([("dqn", "a2c", "no difference found")], env="B")
    )
    return your_algorithm.headline(tabular, deep, "Q(lambda)", "a2c", tabular_verdict, deep_verdict)


def _tuning() -> dict[str, Any]:
    algos = ["q_learning", "dqn", "ppo"]
    rank = pd.DataFrame(
        {"env": "A", "algo": algos, "defaults": [0.1, 0.5, 0.3], "tuned": [0.7, 0.5, 0.3]}
        | {"defaults_low": [0.0, 0.4, 0.2], "defaults_high": [0.2, 0.6, 0.4]}
        | {"tuned_low": [0.6, 0.4, 0.2], "tuned_high": [0.8, 0.6, 0.4]}
        | {"rank_defaults": [3, 1, 2], "rank_tuned": [1, 2, 3]}
    )
    budget = pd.DataFrame({"algo": algos, "tuning_env_steps": 1200})
    sensitivity = pd.DataFrame({"algo": algos, "sensitivity": [0.1, 0.0, 0.2]})
    return tuning.headline(rank, {}, sensitivity, budget)


HEADLINES = {
    "convergence": _convergence,
    "sample_efficiency": _sample_efficiency,
    "model_based": _model_based,
    "logs_vs_imitation": _logs_vs_imitation,
    "continuous_actions": _continuous_actions,
    "corrective_action": _corrective_action,
    "your_algorithm": _your_algorithm,
    "tuning": _tuning,
}


@pytest.mark.parametrize("module", list(HEADLINES))
def test_every_evidence_claim_is_one_short_line_with_its_interval_or_decision(module):
    evidence = HEADLINES[module]()["evidence"]
    assert evidence, f"{module} records no evidence"
    for approach, claims in evidence.items():
        assert isinstance(claims, list) and claims, (approach, claims)
        for claim in claims:
            assert is_short_claim(claim), f"{module}, {approach}: {claim!r}"
            assert "; " not in claim, f"one claim per line: {claim!r}"
    # The summary's table shows them as they are, one line each.
    table = comparison_table({"nb": {"evidence": evidence}})
    shown = [item.claim for items in table["evidence"] for item in items]
    assert sorted(shown) == sorted(c for claims in evidence.values() for c in claims)


def test_a_paragraph_or_a_bare_number_is_not_a_claim():
    assert is_short_claim("A: regret 0.5 [0.25, 0.75] (IQM, 95% CI)")
    assert is_short_claim("A, return vs dqn (2+2 runs): no difference found for the pair")
    assert not is_short_claim("A: regret 0.5 (IQM)")  # no interval, no decision
    assert not is_short_claim("A " * MAX_WORDS + "[0, 1]")  # too long


def test_numbers_keep_three_significant_digits_and_one_scale_per_interval():
    assert [number(v) for v in (-1531.2, 10.267, 5.171, 0.488, 0.0768, -0.0001)] == [
        "-1531",
        "10.3",
        "5.17",
        "0.488",
        "0.077",
        "0.000",
    ]
    assert with_ci(0.25, 0.125, 0.375) == "0.250 [0.125, 0.375]"
    assert with_ci(10.267, 8, 12) == "10.3 [8.0, 12.0]"
    assert with_ci(0, 0, 0) == "0 [0, 0]"
    assert with_ci(float("nan"), 0, 1) == "n/a [0.00, 1.00]"


def test_decisions_read_as_one_claim_per_group():
    assert decisions_claim("A vs dqn", [("x", "better"), ("y", "no difference found")]) == (
        "A vs dqn: x better, no difference found for the other 1"
    )
    assert decisions_claim("A vs dqn", [("x", "undecided")]) == "A vs dqn: undecided for the pair"
    two = [("x", "no difference found")] * 2
    assert decisions_claim("A", two) == "A: no difference found for both pairs"
    assert decisions_claim("A", two * 2) == "A: no difference found for all 4 pairs"
    assert decisions_claim("A", [("x", "undecided"), ("y", "no difference found")]) == (
        "A: undecided for 1, no difference found for 1"
    )
    table = pd.concat(
        [_decisions([("x", "dqn", "worse")]), _decisions([("y", "ppo", "better")], env="B")]
    )
    assert verdict_claims(table, "return") == [
        "A, return vs dqn (2+2 runs, 5% family-wise): x worse",
        "B, return vs ppo (2+2 runs, 5% family-wise): y better",
    ]


def test_your_algorithm_names_the_plugin_by_its_label_and_its_algo():
    evidence = _your_algorithm()["evidence"]
    assert evidence["Q-learning"][0] == (
        "A, final eval return: Q(lambda) = q_lambda (plugin agent) 1.00 [0.50, 1.50] vs ours: "
        "q_learning 2.00 [1.50, 2.50], sarsa 3.00 [2.50, 3.50] (IQM, 95% CI)"
    )
    assert evidence["Policy gradient (PPO)"][0].startswith(
        "B, final eval return: a2c (registered by class) 15.0 [14.5, 15.5] vs ours: dqn 9.00"
    )
