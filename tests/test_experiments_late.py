"""rlcompare.experiments for notebooks 05, 06, 07 and 00: the spec grids on the notebooks' own
smoke and default parameters, and the analysis on tiny frames whose answers are checked by
hand."""

from __future__ import annotations

import ast
import html
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from rlcompare.errors import SpecError
from rlcompare.experiments import continuous_actions as pendulum
from rlcompare.experiments import corrective_action as corrective
from rlcompare.experiments import logs_vs_imitation as logs
from rlcompare.experiments import summary
from rlcompare.spec.runspec import grid


def notebook_parameters(name: str, profile: str) -> dict[str, Any]:
    """The parameters cell of ``notebooks/<name>.ipynb`` with ``profile``'s overrides."""
    notebook = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    values = {
        target.id: ast.literal_eval(statement.value)
        for statement in ast.parse(cell.source).body
        for target in statement.targets
    }
    profiles = yaml.safe_load((REPO / "notebooks" / "profiles.yaml").read_text())
    values.update(profiles[profile].get(name) or {})
    return values


def _kwargs(values: dict[str, Any], names: str) -> dict[str, Any]:
    return {k: values[k] for k in names.split()}


def _budgets(specs: list) -> list[tuple[str, str, int, int]]:
    """(algo, env, steps, eval_every) of each group of specs, in order, each once."""
    return list(dict.fromkeys((s.algo, s.env, s.steps, s.eval_every) for s in specs))


# ------------------------------------------------------------------------------ 06 pendulum
PENDULUM = "seeds steps n_actions dqn_hparams continuous_algos continuous_hparams evals "
PENDULUM += "eval_episodes protocols extra_envs"


@pytest.mark.parametrize(
    ("profile", "seeds", "steps", "every", "mpc"),
    [("smoke", 1, 400, 200, (1, 200, 200, 1)), ("default", 10, 10000, 1000, (5, 3000, 750, 2))],
)
def test_pendulum_grid(profile: str, seeds: int, steps: int, every: int, mpc: tuple) -> None:
    values = notebook_parameters("06_continuous_actions", profile)
    specs = pendulum.build_specs(**_kwargs(values, PENDULUM))
    mpc_seeds, mpc_steps, mpc_every, mpc_episodes = mpc
    assert len(specs) == 4 * seeds + mpc_seeds
    dqn, ppo = "rlcompare/DiscretePendulum-v0", "Pendulum-v1"
    assert _budgets(specs) == [
        ("dqn", dqn, steps, every),
        ("ppo", ppo, steps, every),
        ("mpc", ppo, mpc_steps, mpc_every),
    ]
    assert [s.env_kwargs.get("n_actions") for s in specs[: 4 * seeds : seeds]] == [3, 5, 11, None]
    assert pendulum.order(specs) == [
        "dqn, 3 torques",
        "dqn, 5 torques",
        "dqn, 11 torques",
        "ppo, continuous",
        "mpc, continuous",
    ]
    assert {s.experiment for s in specs} == {"pendulum"}
    assert {s.eval_episodes for s in specs if s.algo == "mpc"} == {mpc_episodes}
    assert specs[4 * seeds - 1].hparams["n_envs"] == (2 if profile == "smoke" else 4)


def test_pendulum_full_profile_adds_mountain_car_for_the_continuous_learners() -> None:
    specs = pendulum.build_specs(
        **_kwargs(notebook_parameters("06_continuous_actions", "full"), PENDULUM)
    )
    car = [s for s in specs if s.env == "MountainCarContinuous-v0"]
    assert sorted({s.algo for s in car}) == ["mpc", "ppo", "sac"]
    assert {pendulum.agent_label(s) for s in car} == {
        "ppo, MountainCarContinuous-v0",
        "sac, MountainCarContinuous-v0",
        "mpc, MountainCarContinuous-v0",
    }
    assert {s.steps for s in car if s.algo == "mpc"} == {20000}


def test_pendulum_runs_on_their_own_protocol_are_dispatched_first() -> None:
    values = notebook_parameters("06_continuous_actions", "default")
    specs = pendulum.build_specs(**_kwargs(values, PENDULUM))
    first = pendulum.own_protocol_first(specs, values["protocols"])
    assert sorted(first, key=specs.index) == specs, "the same runs"
    assert [s.algo for s in first[:5]] == ["mpc"] * 5
    assert [s.run_id for s in first[5:]] == [s.run_id for s in specs if s.algo != "mpc"]
    assert pendulum.own_protocol_first(specs, None) == specs


def test_pendulum_protocols_name_only_continuous_algos() -> None:
    values = notebook_parameters("06_continuous_actions", "smoke")
    values["protocols"] = {"dqn": {"steps": 10}}
    with pytest.raises(SpecError, match=r"protocols name \['dqn'\], not in continuous_algos"):
        pendulum.build_specs(**_kwargs(values, PENDULUM))


def test_pendulum_cost_table_is_wall_time_per_env_step() -> None:
    rows = [
        ("r1", "a", "E", 100, "wall_time_s", 1.0),
        ("r1", "a", "E", 200, "wall_time_s", 4.0),
        ("r2", "a", "E", 200, "wall_time_s", 2.0),
        ("r3", "b", "E", 50, "wall_time_s", 5.0),
    ]
    frame = pd.DataFrame(rows, columns=["run_id", "algo", "env", "step", "metric", "value"])
    table = pendulum.cost_table(frame, ["b", "a", "c"])
    assert table["algo"].tolist() == ["b", "a"]
    assert table["ms_per_step"].tolist() == [100.0, 15.0]  # median of 20 and 10 ms for a
    assert table["steps"].tolist() == [50, 200]


def test_pendulum_labels_and_headline_on_hand_made_tables() -> None:
    specs = grid("dqn", pendulum.DISCRETE_ENV, 1, env_kwargs={"n_actions": [3, 5]}, steps=10)
    specs += grid("ppo", pendulum.CONTINUOUS_ENV, 1, steps=10)
    frame = pd.DataFrame({"run_id": [s.run_id for s in specs], "algo": ["dqn", "dqn", "ppo"]})
    labelled = pendulum.label_agents(frame, specs)
    assert labelled["algo"].tolist() == ["dqn, 3 torques", "dqn, 5 torques", "ppo, continuous"]
    final = pd.DataFrame(
        {
            "algo": labelled["algo"],
            "iqm": [-181.6, -1500.4, -1140.2],
            "iqm_low": [-190.0, -1600.0, -1200.0],
            "iqm_high": [-170.0, -1400.0, -1100.0],
            "runs": [1, 1, 1],
        }
    )
    reached = pd.DataFrame(
        {"algo": labelled["algo"], "reached": [1, 0, 0], "km_median_steps": [7000.0, np.inf, 1]}
    )
    numbers = pendulum.headline(final, reached, threshold=-200, steps=10, runs=3)
    assert numbers["final_return_iqm"] == dict(zip(final["algo"], final["iqm"], strict=True))
    assert numbers["runs_reaching_threshold"]["dqn, 3 torques"] == 1
    ci = "(IQM of the final evaluations, 95% CI)"
    assert numbers["evidence"] == {
        "Q-learning": [
            f"Pendulum-v1, 10 env steps: DQN over 3 torques -182 [-190, -170] {ci}",
            f"Pendulum-v1, 10 env steps: DQN over 5 torques -1500 [-1600, -1400] {ci}",
        ],
        "Policy gradient (PPO)": [
            f"Pendulum-v1, 10 env steps: PPO on the continuous torque -1140 [-1200, -1100] {ci}"
        ],
    }


def _tidy(scores: dict[str, list[float]], metric: str = "eval_return", **columns: Any):
    """One final evaluation per run: ``algo -> scores of its runs`` on one env."""
    rows = [
        {"run_id": f"{algo}-{i}", "algo": algo, "env": "E", "seed": i, "step": 10}
        | {"metric": metric, "value": v, **columns}
        for algo, values in scores.items()
        for i, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_pendulum_final_table_is_in_the_agents_order() -> None:
    # IQM of four runs is the mean of the middle two: (1 + 3) / 2 = 2, and (10 + 20) / 2 = 15.
    frame = _tidy({"b": [0.0, 1.0, 3.0, 100.0], "a": [-50.0, 10.0, 20.0, 90.0]})
    final = pendulum.final_table(frame, ["b", "a"], final_evals=1, reps=50)
    assert final["algo"].tolist() == ["b", "a"]
    assert final["iqm"].tolist() == pytest.approx([2.0, 15.0])


# ---------------------------------------------------------------------------------- 07 corrective
CORRECTIVE = (
    "seeds deep_seeds gamma fault_rate fault_rates steps tabular_hparams planning_steps "
    "log_episodes log_epsilon offline_steps pessimistic_q_init deep_steps dqn_hparams "
    "ppo_hparams bc_steps bc_hparams evals deep_evals eval_episodes"
)


@pytest.mark.parametrize(
    ("profile", "counts", "budgets"),
    [
        (
            "smoke",
            (11, 4, 12),
            [(2000, 1000), (2000, 1000), (2000, 1000), (256, 128), (256, 128), (20, 10)],
        ),
        (
            "default",
            (95, 100, 120),
            [(600000, 60000), (600000, 60000), (300000, 30000), (30000, 6000), (30000, 6000)]
            + [(3000, 600)],
        ),
    ],
)
def test_corrective_grid(tmp_path: Path, profile: str, counts: tuple, budgets: list) -> None:
    values = notebook_parameters("07_corrective_action", profile)
    specs = corrective.build_specs(str(tmp_path), **_kwargs(values, CORRECTIVE))
    assert (len(specs.compare), len(specs.rate), len(specs.coverage)) == counts
    groups = [specs.q_learning, specs.dyna_q, specs.offline, specs.dqn, specs.ppo, specs.bc]
    assert [g[0].algo for g in groups] == ["q_learning", "dyna_q", "q_learning", "dqn", "ppo", "bc"]
    assert [(g[0].steps, g[0].eval_every) for g in groups] == budgets
    assert {s.env for s in specs.all} == {corrective.ENV_ID}
    assert {s.experiment for s in specs.all} == {"corrective"}
    # The deep agents read noisy features; the tabular ones the discrete symptoms.
    assert specs.dqn[0].env_kwargs == {"observation": "features", "fault_rate": 0.1}
    assert specs.offline[0].hparams["dataset"] == specs.logs["discrete"]
    assert specs.bc[0].hparams["dataset"] == specs.logs["features"]
    rates = sorted({s.env_kwargs["fault_rate"] for s in specs.rate})
    assert rates == sorted(values["fault_rates"])
    assert specs.rate[: len(specs.q_learning)] == specs.q_learning
    q_coverage = [s for s in specs.coverage if s.algo == "q_learning"]
    assert {(s.hparams["dataset"], s.hparams["q_init"]) for s in q_coverage} == {
        (specs.runbook_only_logs["discrete"], 0.0),
        (specs.runbook_only_logs["discrete"], -100.0),
        (specs.logs["discrete"], 0.0),
        (specs.logs["discrete"], -100.0),
    }
    # Certainty equivalence from the same logs, pessimistic, planned once at the end: the
    # head-to-head runs are its coverage runs on the logs with deviations.
    ce = [s for s in specs.coverage if s.algo == "certainty_equivalence"]
    assert {(s.hparams["dataset"], s.hparams["q_init"]) for s in ce} == {
        (specs.runbook_only_logs["discrete"], -100.0),
        (specs.logs["discrete"], -100.0),
    }
    offline_steps = values["offline_steps"]
    assert {(s.steps, s.eval_every, s.hparams["replan_every"]) for s in ce} == {
        (offline_steps, offline_steps, offline_steps)
    }
    assert len(specs.certainty_equivalence) == values["seeds"]
    assert set(specs.certainty_equivalence) <= set(ce) and set(ce) - set(specs.compare)
    assert {s.hparams["dataset"] for s in specs.certainty_equivalence} == {specs.logs["discrete"]}


def test_corrective_coverage_table_labels_the_logs() -> None:
    logs_path, only_path = "/logs/deviations.npz", "/logs/runbook.npz"
    coverage = grid("random", corrective.ENV_ID, 4, steps=1)
    specs = corrective.Specs(
        {"discrete": logs_path}, {"discrete": only_path}, *[[]] * 8, coverage=coverage
    )
    # Two runs per kind of logs: the IQM of two values is their mean. The fifth run is not
    # one of the coverage specs and is left out.
    frame = _tidy({"q_learning": [4.0, 6.0, 1.0, 3.0, 1000.0]}, "policy_regret")
    frame["hp.q_init"] = 0.0
    frame["hp.dataset"] = [only_path, only_path, logs_path, logs_path, logs_path]
    frame.loc[:3, "run_id"] = [s.run_id for s in coverage]
    table = corrective.coverage_table(frame, specs, 0.3, reps=50)
    assert table.set_index("logs")["iqm"].to_dict() == pytest.approx(
        {"30% deviations": 2.0, "runbook only": 5.0}
    )
    assert table["runs"].tolist() == [2, 2]
    assert set(table["algo"]) == {"offline_q_learning"} and table["model_error"].isna().all()
    # Certainty equivalence beside it: its own rows, with the IQM of its model_error.
    ce_specs = grid("random", corrective.ENV_ID, [10, 11], steps=1)
    specs = specs._replace(coverage=coverage + ce_specs)
    ce = pd.concat(
        [
            _tidy({"certainty_equivalence": [0.5, 1.5]}, "policy_regret"),
            _tidy({"certainty_equivalence": [0.2, 0.4]}, "model_error"),
        ],
        ignore_index=True,
    )
    ce["run_id"] = [s.run_id for s in ce_specs] * 2
    ce["hp.q_init"], ce["hp.dataset"] = -100.0, logs_path
    table = corrective.coverage_table(pd.concat([frame, ce]), specs, 0.3, reps=50)
    row = table.set_index("algo").loc["offline_certainty_equivalence"]
    assert row["logs"] == "30% deviations"
    assert (row["iqm"], row["model_error"]) == pytest.approx((1.0, 0.3))
    assert len(table) == 3


def test_corrective_headline_on_hand_made_tables() -> None:
    algos = ["optimal", "q_learning", "dyna_q", "dqn", "ppo", "bc", "runbook"]
    algos += ["offline_certainty_equivalence"]
    board = pd.DataFrame(
        [
            {"metric": metric, "algo": algo, "iqm": float(i + 10 * j)}
            | {"iqm_low": i + 10 * j - 0.5, "iqm_high": i + 10 * j + 0.5}
            for j, metric in enumerate(corrective.METRICS)
            for i, algo in enumerate(algos)
        ]
    )
    agree = pd.Series({"q_learning": 0.9, "runbook": 0.75}, name="agreement")
    ce = "offline_certainty_equivalence"
    coverage = pd.DataFrame(
        {
            "algo": ["offline_q_learning"] * 3 + [ce] * 2,
            "logs": ["runbook only", "runbook only", "30% deviations"]
            + ["runbook only", "30% deviations"],
            "hp.q_init": [0.0, -100.0, -100.0, -100.0, -100.0],
            "iqm": [52.04, 6.65, 2.5, 6.65, 1.75],
            "iqm_low": [50.0, 6.0, 2.0, 6.0, 1.5],
            "iqm_high": [54.0, 7.0, 3.0, 7.0, 2.0],
            "model_error": [np.nan] * 3 + [0.9, 0.99],
        }
    )
    logged = pd.DataFrame(
        {"pairs": [200, 600], "optimum_covered": [0.8, 1.0], "model_error_weighted": [0.1, 0.2]},
        index=pd.Index(["runbook only", "30% deviations"], name="logs"),
    )
    by_rate = pd.DataFrame({"env.fault_rate": [0.1], "algo": ["runbook"], "iqm": [6.65]})
    numbers = corrective.headline(
        board,
        agree,
        coverage,
        by_rate,
        steps=600,
        deep_steps=30,
        log_epsilon=0.3,
        pessimistic_q_init=-100.0,
        runs=9,
        logged=logged,
    )
    # policy_regret is the fifth metric: 40 + the contender's index.
    assert numbers["policy_regret_iqm"]["runbook"] == 46.0
    assert numbers["eval_return_iqm"]["dqn"] == 3.0
    assert numbers["offline_regret_iqm"] == {
        "runbook only/q_init=0.0": 52.04,
        "runbook only/q_init=-100.0": 6.65,
        "30% deviations/q_init=-100.0": 2.5,
    }
    assert numbers["ce_regret_iqm"] == {"runbook only": 6.65, "30% deviations": 1.75}
    assert numbers["ce_model_error_iqm"] == {"runbook only": 0.9, "30% deviations": 0.99}
    assert numbers["logged"]["30% deviations/pairs"] == 600.0
    assert numbers["logged"]["runbook only/optimum_covered"] == 0.8
    ci = "(IQM, 95% CI)"
    assert numbers["evidence"]["Model-based"] == [
        f"SelfHealing, exact regret after 600 steps: Dyna-Q 42.0 [41.5, 42.5] vs Q-learning "
        f"41.0 [40.5, 41.5] {ci}",
        "SelfHealing, certainty equivalence on runbook logs with 30% deviations (no env "
        "interaction): exact regret 1.75 [1.50, 2.00] vs offline Q-learning 2.50 [2.00, 3.00] "
        f"{ci}",
        "SelfHealing, certainty equivalence from runbook-only logs: exact regret 6.65 [6.00, "
        f"7.00] vs runbook 46.0 [45.5, 46.5] {ci}",
        "SelfHealing, certainty equivalence from logs: return 7.00 [6.50, 7.50] vs BC 5.00 "
        f"[4.50, 5.50] {ci}",
    ]
    assert numbers["regret_by_fault_rate"] == {"0.1/runbook": 6.65}
    assert numbers["optimal_action_share"] == {"q_learning": 0.9, "runbook": 0.75}
    assert numbers["evidence"]["Q-learning"] == [
        f"SelfHealing, exact regret after 600 steps: Q-learning 41.0 [40.5, 41.5] vs runbook "
        f"46.0 [45.5, 46.5] {ci}",
        "SelfHealing, offline Q-learning from runbook logs with 30% deviations, pessimistic Q0: "
        f"exact regret 2.50 [2.00, 3.00] {ci}",
        "SelfHealing, offline Q-learning from runbook-only logs, Q0 = 0: exact regret 52.0 "
        f"[50.0, 54.0] {ci}",
        "SelfHealing, DQN on noisy features after 30 steps: return 3.00 [2.50, 3.50] vs runbook "
        f"6.00 [5.50, 6.50], optimum 0 {ci}",
    ]
    assert numbers["evidence"]["Imitation (BC)"] == [
        "SelfHealing, BC on runbook logs: return 5.00 [4.50, 5.50] vs runbook 6.00 [5.50, 6.50], "
        f"optimum 0 {ci}"
    ]


def test_corrective_frozen_policies_and_exact_regret_by_rate() -> None:
    policies = corrective.fixed_policies(0.95, 0.1)
    frozen = corrective.frozen_policies(policies, 0.1)
    assert list(frozen) == ["runbook", "optimal at 0.1"]
    table = corrective.exact_regret_by_rate(frozen, 0.95, [0.05, 0.1])
    assert table.index.tolist() == [0.05, 0.1]
    assert table.loc[0.1, "optimal at 0.1"] == pytest.approx(0.0, abs=1e-6)  # its own rate
    assert table.loc[0.1, "runbook"] > 1.0


# ------------------------------------------------------------------------------ 05 logs
LOGS = (
    "seeds epsilons gamma lake_log_steps lake_steps lake_hparams lake_eval_episodes bc_steps "
    "bc_hparams cartpole_logs cartpole_log_steps dqn_steps dqn_hparams ppo_steps ppo_hparams "
    "cartpole_eval_episodes evals"
)


@pytest.mark.parametrize(
    ("profile", "seeds", "lake", "cartpole"),
    [
        (
            "smoke",
            1,
            [("q_learning", 2000, 2000), ("bc", 20, 20)],
            [("dqn", 50, 25), ("bc", 20, 10), ("ppo", 256, 128)],
        ),
        (
            "default",
            10,
            [("q_learning", 100000, 100000), ("bc", 500, 500)],
            [("dqn", 3000, 600), ("bc", 500, 100), ("ppo", 20000, 4000)],
        ),
    ],
)
def test_logs_grid(tmp_path: Path, profile: str, seeds: int, lake: list, cartpole: list) -> None:
    values = notebook_parameters("05_logs_vs_imitation", profile)
    experiment = logs.build_specs(str(tmp_path), **_kwargs(values, LOGS))
    lake_logs = [f"{n} eps={e}" for n in ("expert", "naive") for e in (0.0, 0.5, 0.9)]
    cartpole_logs = ["expert eps=0.0", "expert eps=0.5", "expert eps=0.9", "novice eps=0.5"]
    assert list(experiment.lake_data) == lake_logs
    assert list(experiment.cartpole_data) == cartpole_logs
    # Each log is known by its path and by its content_id (what runs record in hp.dataset).
    assert sorted(experiment.labels.values()) == sorted(2 * (lake_logs + cartpole_logs))
    assert sum(key.startswith("sha256:") for key in experiment.labels) == 10
    assert len(experiment.lake_specs) == 2 * 6 * seeds
    assert len(experiment.cartpole_specs) == (2 * 4 + 1) * seeds
    budgets = [(a, s, e) for a, _, s, e in _budgets(experiment.lake_specs)]
    assert budgets == lake
    assert {s.env for s in experiment.lake_specs} == {"FrozenLake-v1"}
    assert [(a, s, e) for a, _, s, e in _budgets(experiment.cartpole_specs)] == cartpole
    assert {s.env for s in experiment.cartpole_specs} == {"CartPole-v1"}
    # The expert's own logs on CartPole reach the maximum return of 500.
    assert experiment.cartpole_demo["expert eps=0.0"] == 500.0
    assert "dataset" not in experiment.cartpole_specs[-1].hparams  # PPO learns online


def test_logs_tables_on_a_hand_made_frame() -> None:
    labels = {"/a.npz": "expert eps=0.0", "/b.npz": "naive eps=0.0"}
    # Four runs per (log, learner): IQM is the mean of the middle two.
    frame = pd.concat(
        [
            _tidy({"bc": [0.0, 1.0, 3.0, 9.0]}, **{"hp.dataset": "/a.npz"}),
            _tidy({"bc": [0.0, 0.2, 0.4, 1.0]}, **{"hp.dataset": "/b.npz"}).assign(env="F"),
            _tidy({"ppo": [5.0, 6.0, 8.0, 9.0]}, **{"hp.dataset": None}),
        ],
        ignore_index=True,
    )
    frame["run_id"] = [f"r{i}" for i in range(len(frame))]
    frame["env"] = ["FrozenLake-v1"] * 8 + ["CartPole-v1"] * 4
    labelled = logs.label_logs(frame, labels)
    assert labelled["logs"].tolist()[-1] == "online"
    lake_frame, cartpole_frame = logs.split_envs(labelled)
    assert (len(lake_frame), len(cartpole_frame)) == (8, 4)
    demo = {"expert eps=0.0": 0.7, "naive eps=0.0": 0.05}
    table = logs.final_table(lake_frame, labels, demo, reps=50).set_index("logs")
    assert table["iqm"].to_dict() == pytest.approx({"expert eps=0.0": 2.0, "naive eps=0.0": 0.3})
    assert table["demonstrator"].to_dict() == demo
    online = logs.final_table(cartpole_frame, labels, demo, reps=50)
    assert online[["logs", "algo", "iqm"]].values.tolist() == [["online", "ppo", 7.0]]


def test_logs_demonstrator_regret_is_zero_for_the_expert() -> None:
    regret = logs.demonstrator_regret(0.99)
    assert regret.index.tolist() == ["expert alone", "naive alone"]
    assert regret["expert alone"] == 0.0
    assert regret["naive alone"] > 0.1  # the shortest path slips into holes


# ------------------------------------------------------------------------------ 00 summary
EVIDENCE = {
    "05_logs_vs_imitation": {
        "Q-learning": "offline from FrozenLake logs of a naive demonstrator with 50% random "
        "actions (its own success 0.03): success 0.61 vs BC 0.05; offline DQN from CartPole "
        "novice eps=0.5 logs 206 vs the novice's 40, but 36 from expert-only logs",
        "Imitation (BC)": "copies the logged mode: the expert's <500> & the novice's 47",
    },
    # The list form every notebook records now: one claim per item, "; " inside kept whole.
    "07_corrective_action": {
        "Q-learning": ["SelfHealing: exact regret 0.38 [0.2, 0.5]; runbook 6.65", "second claim"]
    },
}


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "td":
            self._in_cell = True
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = self._in_cell and tag != "td"

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells[-1] += data


def _cells(rendered: str) -> list[str]:
    """The text of every body cell of an HTML table, row by row, entities decoded."""
    parser = _Cells()
    parser.feed(rendered)
    return parser.cells


def test_summary_table_renders_every_evidence_string_in_full() -> None:
    headlines = {name: {"evidence": e} for name, e in EVIDENCE.items()}
    table = summary.comparison_table(headlines)
    rendered = summary.readable_table(table).to_html()
    assert "overflow-wrap: normal" in rendered and ">approach<" not in rendered
    for notebook, sentences in EVIDENCE.items():
        for sentence in sentences.values():
            claims = sentence if isinstance(sentence, list) else sentence.split("; ")
            for claim in claims:  # one line per claim, linked to its notebook
                link = f'<a class="source" href="{notebook}.html#Headline-numbers">{notebook}</a>'
                assert f"<li>{html.escape(claim)} {link}</li>" in rendered
    assert "&lt;500&gt; &amp;" in rendered  # text is escaped, not read as markup
    static = table.drop(columns="evidence").to_numpy().ravel().tolist()
    assert [c for c in _cells(rendered) if c in static] == static  # every cell, whole
    assert "..." not in rendered and "…" not in rendered
    # What the table replaces: pandas' own HTML cuts these cells at 50 characters.
    with pd.option_context("display.max_colwidth", 50):
        assert "tabular: to Q* with Robbins-Monro steps and full coverage" not in (
            table._repr_html_()
        )


def test_summary_headline_lists_notebooks_and_approaches_with_evidence() -> None:
    headlines = {name: {"evidence": e} for name, e in EVIDENCE.items()}
    headlines["00_summary"] = {}
    headlines["06_continuous_actions"] = {"runs": 4}
    table = summary.comparison_table(headlines)
    assert summary.headline(headlines, table) == {
        "notebooks_with_results": [
            "05_logs_vs_imitation",
            "06_continuous_actions",
            "07_corrective_action",
        ],
        "approaches_with_evidence": ["Imitation (BC)", "Q-learning"],
    }


def test_corrective_withheld_fault_runs_and_table(tmp_path: Path) -> None:
    from rlcompare.envs.datasets import Dataset
    from rlcompare.envs.selfheal import FAULTS
    from rlcompare.envs.selfheal_model import decode_state

    values = notebook_parameters("07_corrective_action", "smoke")
    specs = corrective.build_specs(str(tmp_path), **_kwargs(values, CORRECTIVE))
    withheld = corrective.withheld_specs(
        specs,
        str(tmp_path),
        fault="memory_leak",
        seeds=1,
        fault_rate=0.1,
        log_episodes=5,
        log_epsilon=0.3,
    )
    without = "(without memory_leak)"
    assert list(withheld.specs) == [
        f"offline_q_learning {without}",
        f"offline_certainty_equivalence {without}",
        f"bc {without}",
        "q_learning",
        "offline_q_learning",
        "offline_certainty_equivalence",
    ]
    first = withheld.specs[f"offline_q_learning {without}"][0]
    assert first.env_kwargs == {"fault_rate": 0.1, "withheld_fault": "memory_leak"}
    assert first.hparams["dataset"] == withheld.logs["discrete"] != specs.logs["discrete"]
    assert withheld.specs[f"bc {without}"][0].env_kwargs["observation"] == "features"
    # The same runs, evaluated once at the end: only the final policy counts.
    (online,) = withheld.specs["q_learning"]
    assert online.eval_every == online.steps and online.seed == specs.q_learning[0].seed
    assert online.hparams == specs.q_learning[0].hparams and online.env_kwargs == {
        "fault_rate": 0.1
    }
    # Memory rises only under a leak: logs without leaks never show it above normal.
    logged = Dataset.load(withheld.logs["discrete"])
    assert logged.env_kwargs["withheld_fault"] == "memory_leak"
    observations = np.asarray(logged.observations).reshape(-1)
    assert {decode_state(s)[2] for s in observations} == {0}
    policies = corrective.withheld_policies(withheld)
    assert len(policies) == 6 and all(p.shape == (108,) for p in policies.values())
    fixed = corrective.fixed_policies(0.95, 0.1)
    table = corrective.withheld_table(policies, fixed, 0.95, fault="memory_leak", fault_rate=0.1)
    assert list(table.columns) == ["seeds", "all", "memory_leak"] + [
        f for f in FAULTS[1:] if f != "memory_leak"
    ]
    assert list(table.index)[-2:] == ["runbook", "optimal (full mix)"]
    assert table.loc["optimal (full mix)", "all"] == pytest.approx(0.0, abs=1e-6)
    assert (table.drop(columns="seeds") >= 0).all().all()
