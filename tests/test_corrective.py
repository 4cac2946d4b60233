"""rlcompare.experiments.corrective_action: fixed policies scored exactly and by the eval
protocol, runbook logs, per-state action tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import rlcompare
from rlcompare.envs.make import make_env
from rlcompare.envs.selfheal import ACTIONS, decode_features, runbook_policy
from rlcompare.envs.selfheal_model import N_STATES, WAIT
from rlcompare.errors import SpecError
from rlcompare.experiments import corrective_action as corrective
from rlcompare.experiments.common import dataset_labels
from rlcompare.seeding import RunSeeds

GAMMA = 0.95
ENV = corrective.ENV_ID


@pytest.fixture(scope="module")
def optimal() -> np.ndarray:
    mdp = rlcompare.tabular_mdp(ENV, fault_rate=0.1)
    return rlcompare.value_iteration(mdp, GAMMA).policy


def test_runbook_actions_tabulate_the_runbook_in_both_forms():
    actions = corrective.runbook_actions()
    assert actions.shape == (N_STATES,)
    assert [runbook_policy(s) for s in range(N_STATES)] == actions.tolist()
    # The noiseless features of a state decode to that state, so both forms read the same.
    assert all(
        decode_features(corrective.clean_observation(s, "features")) == s for s in range(N_STATES)
    )
    assert (corrective.policy_actions(runbook_policy, "features") == actions).all()
    with pytest.raises(SpecError, match="observation = 'pixels'.*discrete, features"):
        corrective.clean_observation(0, "pixels")


def test_policy_values_are_exact_and_swept(optimal):
    table = corrective.policy_values(
        {"runbook": corrective.runbook_actions(), "frozen": optimal},
        GAMMA,
        fault_rate=[0.05, 0.1],
    )
    assert len(table) == 6 and set(table["fault_rate"]) == {0.05, 0.1}
    at = table.set_index(["fault_rate", "policy"])
    mdp = rlcompare.tabular_mdp(ENV, fault_rate=0.1)
    v_star = mdp.initial @ rlcompare.value_iteration(mdp, GAMMA).v
    v_runbook = mdp.initial @ rlcompare.policy_evaluation(mdp, corrective.runbook_actions(), GAMMA)
    assert at.loc[(0.1, "optimal"), "value"] == pytest.approx(v_star)
    assert at.loc[(0.1, "runbook"), "regret"] == pytest.approx(v_star - v_runbook)
    assert at.loc[(0.1, "runbook"), "regret"] > 1.0  # the runbook is sensible, not optimal
    assert at.loc[(0.1, "frozen"), "regret"] == pytest.approx(0.0, abs=1e-6)
    assert (table["regret"] >= 0).all()
    with pytest.raises(SpecError, match=r"policy 'short' has shape \(3,\)"):
        corrective.policy_values({"short": np.zeros(3, int)}, GAMMA)


def test_evaluate_fixed_follows_the_eval_protocol(optimal):
    policies = {"runbook": corrective.runbook_actions(), "optimal": optimal}
    settings = {"gamma": GAMMA, "env_kwargs": {"fault_rate": 0.1}, "eval_episodes": 3}
    frame = corrective.evaluate_fixed(policies, [0, 1], **settings, experiment="t")
    assert set(frame["algo"]) == {"runbook", "optimal"} and frame["run_id"].nunique() == 4
    assert set(frame["metric"]) == {
        "eval_return",
        "time_to_recovery",
        "impaired_share",
        "action_cost",
        "incidents",
        "policy_regret",
    }
    assert (frame["step"] == 0).all() and (frame["status"] == "ok").all()
    regret = frame[frame["metric"] == "policy_regret"].groupby("algo")["value"].first()
    assert regret["optimal"] == pytest.approx(0.0, abs=1e-6) and regret["runbook"] > 1.0
    # The same episodes as every learner with seed 1: the eval env, reset with the eval seed.
    env = make_env(ENV, {"fault_rate": 0.1}, eval=True)
    returns = []
    for index in range(3):
        obs, _ = env.reset(seed=RunSeeds(1).int_seed("eval") if index == 0 else None)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(runbook_policy(obs))
            total, done = total + reward, terminated or truncated
        returns.append(total)
    rows = frame[(frame["algo"] == "runbook") & (frame["seed"] == 1)]
    assert rows.loc[rows["metric"] == "eval_return", "value"].item() == pytest.approx(
        np.mean(returns)
    )
    again = corrective.evaluate_fixed(policies, [0, 1], **settings, experiment="t")
    pd.testing.assert_frame_equal(frame, again)
    summary = rlcompare.stats.summary(frame, "eval_return")
    assert (
        summary.set_index("algo").loc["optimal", "mean"]
        > summary.set_index("algo").loc["runbook", "mean"]
    )


def test_evaluate_fixed_in_the_features_form_and_over_settings():
    frame = corrective.evaluate_fixed(
        {"runbook": corrective.runbook_actions()},
        1,
        gamma=GAMMA,
        env_kwargs={"observation": "features", "fault_rate": [0.05, 0.2]},
        eval_episodes=1,
    )
    assert sorted(frame["env.fault_rate"].unique()) == [0.05, 0.2]
    regret = frame[frame["metric"] == "policy_regret"].set_index("env.fault_rate")["value"]
    assert regret[0.2] > regret[0.05] > 0


def test_contenders_relabel_offline_runs_and_share_one_task():
    base = {"run_id": "r", "env": ENV, "seed": 0, "step": 0, "metric": "eval_return", "value": 1.0}
    online = pd.DataFrame([{**base, "algo": "q_learning", "hp.dataset": None}])
    offline = pd.DataFrame([{**base, "run_id": "o", "algo": "q_learning", "hp.dataset": "x.npz"}])
    deep = pd.DataFrame(
        [
            {
                **base,
                "run_id": "d",
                "algo": "bc",
                "hp.dataset": "y.npz",
                "env.observation": "features",
            }
        ]
    )
    frame = corrective.contenders(online, offline, deep, pd.DataFrame())
    assert frame["algo"].tolist() == ["q_learning", "offline_q_learning", "bc"]
    assert "env.observation" not in frame


def test_action_table_and_agreement(optimal):
    runbook = corrective.runbook_actions()
    always_wait = np.full(N_STATES, WAIT)
    table = corrective.action_table(
        {"runbook": runbook, "wait": always_wait}, GAMMA, top=5, fault_rate=0.1
    )
    assert len(table) == 5 and table["time_share"].is_monotonic_decreasing
    assert {"symptoms", "likely_cause", "optimal", "runbook", "wait", "runbook_cost"} <= set(table)
    assert set(table["optimal"]) <= set(ACTIONS)
    assert table["optimal"].tolist() == [ACTIONS[optimal[s]] for s in table["state"]]
    agree = table["runbook"] == table["optimal"]
    assert (table.loc[agree, "runbook_cost"] == 0).all()
    assert (table.loc[~agree, "runbook_cost"] > 0).all()
    assert not table["symptoms"].str.startswith("error low, latency normal").any()
    share = corrective.agreement({"optimal": optimal, "runbook": runbook}, GAMMA, fault_rate=0.1)
    assert share["optimal"] == pytest.approx(1.0) and 0.3 < share["runbook"] < 1.0


def test_runbook_logs_are_saved_once_in_both_forms(tmp_path):
    paths = corrective.runbook_logs(tmp_path, episodes=2, epsilon=0.2, seed=3)
    assert set(paths) == {"discrete", "features"}
    assert all(Path(p).is_absolute() for p in paths.values())
    discrete = rlcompare.Dataset.load(paths["discrete"])
    features = rlcompare.Dataset.load(paths["features"])
    assert len(discrete) == len(features) == 200
    assert discrete.observations.ndim == 1 and features.observations.shape == (200, 5)
    # Same seed: same deviations, so the logs agree on almost every action.
    assert (discrete.actions == features.actions).mean() > 0.8
    stamp = {form: (tmp_path / p).stat().st_mtime_ns for form, p in paths.items()}
    assert corrective.runbook_logs(tmp_path, episodes=2, epsilon=0.2, seed=3) == paths
    assert stamp == {form: (tmp_path / p).stat().st_mtime_ns for form, p in paths.items()}
    assert corrective.runbook_logs(tmp_path, episodes=2, epsilon=0.0, seed=3) != paths
    only = corrective.runbook_logs(tmp_path, episodes=1, epsilon=0.0, forms=["discrete"])
    assert list(only) == ["discrete"]
    with pytest.raises(SpecError, match="form 'pixels' is invalid"):
        corrective.runbook_logs(tmp_path, episodes=1, epsilon=0.0, forms=["pixels"])


def test_interval_lines_draws_one_line_per_level():
    summary = pd.DataFrame(
        {
            "algo": ["a", "a", "b", "b"],
            "env.fault_rate": [0.1, 0.2, 0.1, 0.2],
            "iqm": [1.0, 2.0, 3.0, 3.0],
            "iqm_low": [0.5, 1.5, 3.0, 3.0],
            "iqm_high": [1.5, 2.5, 3.0, 3.0],
        }
    )
    fig, ax = corrective.interval_lines(summary, "env.fault_rate", ylabel="regret")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert ax.get_xlabel() == "fault rate" and ax.get_ylabel() == "regret"
    with pytest.raises(ValueError, match=r"missing column\(s\) \['mean', 'mean_low'"):
        corrective.interval_lines(summary, "env.fault_rate", stat="mean")


# ------------------------------------------------------------------- certainty equivalence
def test_certainty_equivalence_is_a_contender_from_the_same_logs(tmp_path):
    specs = corrective.build_specs(
        str(tmp_path / "logs"),
        seeds=1,
        deep_seeds=1,
        gamma=GAMMA,
        fault_rate=0.1,
        fault_rates=[0.1],
        steps=200,
        tabular_hparams={"alpha_schedule": "visit", "omega": 0.6, "epsilon": 0.1},
        planning_steps=1,
        log_episodes=2,
        log_epsilon=0.3,
        offline_steps=400,
        pessimistic_q_init=-100.0,
        deep_steps=64,
        dqn_hparams={},
        ppo_hparams={},
        bc_steps=10,
        bc_hparams={},
        evals=2,
        deep_evals=1,
        eval_episodes=1,
    )
    (ce,) = specs.certainty_equivalence
    assert ce.algo == "certainty_equivalence" and ce in specs.compare and ce in specs.coverage
    assert ce.hparams["dataset"] == specs.offline[0].hparams["dataset"] == specs.logs["discrete"]
    assert ce.hparams["q_init"] == -100.0 and ce.hparams["replan_every"] == ce.steps == 400
    tabular = specs.offline + specs.coverage
    frame = rlcompare.sweep(tabular, str(tmp_path / "store"), executor="serial")
    assert not frame.attrs["failed"]
    policies = corrective.fixed_policies(GAMMA, 0.1)
    compare = corrective.head_to_head(
        frame, specs, policies, seeds=1, gamma=GAMMA, fault_rate=0.1, eval_episodes=1
    )
    mine = compare[compare["algo"] == "offline_certainty_equivalence"]
    assert {"policy_regret", "model_error", "planning_updates", "eval_return"} <= set(
        mine["metric"]
    )
    board = corrective.scoreboard(compare, corrective.METRICS, corrective.ORDER, reps=20)
    regret = board[board["metric"] == "policy_regret"]["algo"].tolist()
    assert regret == ["optimal", "offline_q_learning", "offline_certainty_equivalence", "runbook"]
    coverage = corrective.coverage_table(frame, specs, 0.3, reps=20)
    assert len(coverage) == 6
    rows = coverage[coverage["algo"] == "offline_certainty_equivalence"]
    assert set(rows["logs"]) == {"runbook only", "30% deviations"}
    assert rows["model_error"].between(0, 1).all()
    assert coverage.loc[coverage["algo"] == "offline_q_learning", "model_error"].isna().all()
    logged = corrective.logs_coverage(specs, 0.3, GAMMA, 0.1)
    assert logged.index.tolist() == ["runbook only", "30% deviations"]
    # The runbook logs one action per state; the deviations log more pairs, from the same seed.
    assert logged.loc["runbook only", "pairs"] < logged.loc["30% deviations", "pairs"]
    assert ((logged["optimum_covered"] >= 0) & (logged["optimum_covered"] <= 1)).all()


def test_certainty_equivalence_from_logs_needs_coverage(tmp_path):
    """From runbook-only logs (one action per state) a pessimistic Q0 plans the runbook back;
    Q0 = 0 picks the actions nobody logged; logs of an on-call who tries every action cover
    those pairs, and the plan from them is far better than the optimistic one."""
    env_kwargs = {"fault_rate": 0.1}
    poor, full = (
        corrective.runbook_logs(
            tmp_path, episodes=30, epsilon=eps, env_kwargs=env_kwargs, forms=["discrete"]
        )["discrete"]
        for eps in (0.0, 1.0)
    )
    specs = rlcompare.grid(
        "certainty_equivalence",
        ENV,
        2,
        hparams={
            "gamma": GAMMA,
            "dataset": [poor, full],
            "q_init": [0.0, -100.0],
            "replan_every": 6000,
        },
        env_kwargs=env_kwargs,
        steps=6000,
        eval_every=6000,
        eval_episodes=1,
    )
    frame = corrective.contenders(
        rlcompare.sweep(specs, str(tmp_path / "store"), executor="serial")
    )
    assert set(frame["algo"]) == {"offline_certainty_equivalence"}
    kinds = dataset_labels({poor: "poor", full: "full"})
    final = frame[frame["step"] == 6000].assign(logs=lambda f: f["hp.dataset"].map(kinds))
    regret = final[final["metric"] == "policy_regret"].groupby(["logs", "hp.q_init"])["value"]
    worst, best = regret.max(), regret.min()
    assert worst[("full", 0.0)] < best[("poor", 0.0)] / 2
    runbook = corrective.policy_values(
        {"runbook": corrective.runbook_actions()}, GAMMA, **env_kwargs
    )
    runbook_regret = runbook.set_index("policy").loc["runbook", "regret"]
    # The runbook where it logged; the few states 30 episodes never reached tie at Q0.
    assert worst[("poor", -100.0)] == pytest.approx(runbook_regret, abs=0.5)
    assert best[("poor", -100.0)] == pytest.approx(runbook_regret, abs=0.5)
    errors = final.loc[final["metric"] == "model_error", "value"]
    assert len(errors) == 8 and errors.between(0, 1).all()


# ------------------------------------------------------------------------------ incident plans
FAULT_KINDS = ["memory_leak", "bad_deploy", "overload"]


def test_typical_incidents_point_to_their_fault():
    from rlcompare.envs.selfheal_model import FAULTS, ModelParams, build_model
    from rlcompare.experiments import incident_plans

    model = build_model(ModelParams(fault_rate=0.1))
    incidents = incident_plans.typical_incidents(FAULT_KINDS, fault_rate=0.1)
    assert list(incidents.index) == FAULT_KINDS
    for fault, state in incidents["state"].items():
        assert model.impaired[state] and FAULTS[np.argmax(model.posterior[state])] == fault
        # The most likely onset among the states pointing to that fault.
        same = np.argmax(model.posterior, axis=1) == FAULTS.index(fault)
        assert model.initial[state] == model.initial[same & model.impaired].max()
    with pytest.raises(SpecError, match="fault 'gremlins' is invalid; valid: latency_degradation"):
        incident_plans.typical_incidents(["gremlins"])


def test_incident_plans_first_steps_by_hand(optimal):
    from rlcompare.envs.selfheal_model import FAULTS, ModelParams, build_model
    from rlcompare.experiments import incident_plans

    model = build_model(ModelParams(fault_rate=0.1))
    runbook = corrective.runbook_actions()
    state = 60  # error elevated, latency very slow: most likely an overload
    plans = incident_plans.incident_plans({"runbook": runbook}, {"overload": state}, steps=2)
    first, second = plans.to_dict("records")
    a = runbook[state]
    assert first["action"] == ACTIONS[a] == "scale_out"
    assert first["likely_fault"] == FAULTS[np.argmax(model.posterior[state])] == "overload"
    assert first["p_fault"] == pytest.approx(model.posterior[state].max())
    assert first["p_recovered"] == pytest.approx(model.P[state, a][~model.impaired].sum())
    assert first["expected_cost"] == pytest.approx(model.severity[state] + 2.0)
    # Step 2: the still-open mass moves on, the cost of step 2 comes from every path.
    open_ = model.P[state, a] * model.impaired
    here = int(np.argmax(open_))
    belief = open_ @ model.posterior / open_.sum()
    cost = -model.R[np.arange(N_STATES), runbook]
    recovered = 1 - (open_ @ model.P[np.arange(N_STATES), runbook] @ model.impaired)
    assert second["action"] == ACTIONS[runbook[here]]
    assert second["likely_fault"] == FAULTS[np.argmax(belief)]
    assert second["p_fault"] == pytest.approx(belief.max())
    assert second["p_recovered"] == pytest.approx(recovered)
    assert second["expected_cost"] == pytest.approx(-model.R[state, a] + model.P[state, a] @ cost)


@pytest.mark.parametrize(
    "env_kwargs", [{"fault_rate": 0.1}, {"fault_rate": 0.0, "deploy_rate": 0.0}]
)
def test_incident_plans_are_probabilities_and_growing_costs(env_kwargs):
    from rlcompare.experiments import incident_plans

    mdp = rlcompare.tabular_mdp(ENV, **env_kwargs)
    policies = {
        "runbook": corrective.runbook_actions(),
        "optimal": rlcompare.value_iteration(mdp, GAMMA).policy,
    }
    incidents = incident_plans.typical_incidents(FAULT_KINDS, fault_rate=0.1)["state"]
    plans = incident_plans.incident_plans(policies, incidents.to_dict(), steps=8, **env_kwargs)
    assert list(plans.columns) == incident_plans.PLAN_COLUMNS
    assert len(plans) == 3 * 2 * 8
    assert plans["p_fault"].between(0, 1).all() and plans["p_recovered"].between(0, 1).all()
    for _, plan in plans.groupby(["incident", "policy"]):
        assert (plan["step"].diff().dropna() == 1).all()
        assert (plan["p_recovered"].diff().dropna() >= -1e-12).all()
        assert (plan["expected_cost"].diff().dropna() >= 0).all()
    if env_kwargs["fault_rate"] == 0.0:  # no new faults: the optimum recovers for sure, in time
        optimum = plans[plans["policy"] == "optimal"].groupby("incident")["p_recovered"].last()
        assert (optimum > 0.9).all()
    table = incident_plans.plan_table(plans, "overload")
    assert table.index.names == ["policy", "step"] and len(table) == 16
    with pytest.raises(SpecError, match="incident 'fire' is not in the plans; valid: memory_leak"):
        incident_plans.plan_table(plans, "fire")


def test_incident_plans_reject_healthy_onsets_and_bad_steps():
    from rlcompare.experiments import incident_plans

    runbook = {"runbook": corrective.runbook_actions()}
    with pytest.raises(SpecError, match="incident 'calm' starts in state 0; valid: an impaired"):
        incident_plans.incident_plans(runbook, {"calm": 0})
    with pytest.raises(SpecError, match="steps = 0 is invalid"):
        incident_plans.incident_plans(runbook, {"overload": 60}, steps=0)


def test_regret_by_fault_scores_each_kind_against_its_own_optimum(optimal):
    from rlcompare.envs.selfheal import FAULTS

    leak_only = rlcompare.tabular_mdp(ENV, fault_rate=0.1, only_fault="memory_leak")
    leak_optimal = rlcompare.value_iteration(leak_only, GAMMA).policy
    runbook = corrective.runbook_actions()
    table = corrective.regret_by_fault(
        {"optimal": optimal, "leak optimal": leak_optimal, "runbook": runbook},
        GAMMA,
        fault_rate=0.1,
    )
    assert list(table.columns) == ["all", *FAULTS[1:]]
    assert table.loc["optimal", "all"] == pytest.approx(0.0, abs=1e-6)
    assert table.loc["leak optimal", "memory_leak"] == pytest.approx(0.0, abs=1e-6)
    assert (table >= 0).all().all() and table.loc["runbook", "all"] > 5
    v_star = leak_only.initial @ rlcompare.value_iteration(leak_only, GAMMA).v
    v_runbook = leak_only.initial @ rlcompare.policy_evaluation(leak_only, runbook, GAMMA)
    assert table.loc["runbook", "memory_leak"] == pytest.approx(v_star - v_runbook)
    with pytest.raises(SpecError, match=r"env kwargs \['only_fault'\] are set"):
        corrective.regret_by_fault({"runbook": runbook}, GAMMA, only_fault="overload")
    with pytest.raises(SpecError, match=r"fault kinds \['gremlins'\] are invalid"):
        corrective.regret_by_fault({"runbook": runbook}, GAMMA, faults=["gremlins"])
