"""``mpc``: the learned model controls a linear system, the planners improve their objective,
runs repeat exactly in fresh processes, bad settings fail when the RunSpec is built, and
(slow) Pendulum-v1 is swung up within 3,000 env steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_python, without_wall_time

import rlcompare
from rlcompare import RunSpec
from rlcompare.algos.deep.mpc import MPCAgent
from rlcompare.algos.deep.mpc_model import EnsembleModel, TransitionStore
from rlcompare.algos.deep.mpc_params import MPC_PARAMS, register_mpc
from rlcompare.algos.deep.mpc_planner import cem, mppi
from rlcompare.errors import Diverged, SpecError
from rlcompare.seeding import RunSeeds


@pytest.fixture(autouse=True)
def _registered() -> None:
    # Until rlcompare.algos.deep registers it with the built-ins; a second call is a no-op.
    register_mpc()
    # As every deep run (rlcompare.run pins it too); agents built here bypass run().
    torch.set_num_threads(1)


class DoubleIntegrator(gym.Env):
    """State (x, v), action a in [-1, 1]: x += dt v, v += dt a; reward -x^2."""

    dt = 0.1

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.state = np.zeros(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = np.array([self.np_random.uniform(-1.0, 1.0), 0.0])
        if options and "x" in options:
            self.state[0] = options["x"]
        return self.state.astype(np.float32), {}

    def step(self, action):
        x, v = self.state
        a = float(np.clip(action[0], -1.0, 1.0))
        self.state = np.array([x + self.dt * v, v + self.dt * a])
        return self.state.astype(np.float32), -(x**2), False, False, {}


def _hp(**overrides) -> dict:
    return {**{name: param.default for name, param in MPC_PARAMS.items()}, **overrides}


def test_the_learned_model_of_a_linear_system_steers_it_to_the_target() -> None:
    env = DoubleIntegrator()
    hp = _hp(
        hidden=(32, 32),
        ensemble_size=2,
        population=100,
        elites=10,
        horizon=15,
        model_epochs=60,
        train_every=10_000,
        random_steps=400,
    )
    agent = MPCAgent(hp, env.observation_space, env.action_space, RunSeeds(0))
    obs, _ = env.reset(seed=0)
    for step in range(1, 401):  # random actions, 20-step episodes
        action = agent.act(obs, step - 1)
        next_obs, reward, *_ = env.step(action)
        agent.update(obs, action, reward, next_obs, False, step % 20 == 0, step)
        obs = env.reset()[0] if step % 20 == 0 else next_obs
    assert agent.model.trained and agent.model.last_loss < 0.05
    agent.eval_metrics()  # a fresh evaluation warm start
    obs, _ = env.reset(seed=1, options={"x": 1.0})
    xs = []
    for _ in range(60):
        obs, *_ = env.step(agent.greedy_action(obs))
        xs.append(float(obs[0]))
    # Uncontrolled it stays at 1; bang-bang control reaches 0 in about 20 steps.
    assert max(abs(x) for x in xs[-20:]) < 0.15, xs


def _quadratic_costs(planner, **kwargs) -> list[float]:
    """Cost of the mean plan after 0..6 iterations on sum((a - target)^2) (H=8, act=2)."""
    target = torch.linspace(-0.8, 0.8, 16).view(8, 2)

    def returns(candidates: torch.Tensor) -> torch.Tensor:
        return -(candidates - target).square().sum(dim=(1, 2))

    costs = []
    for iterations in range(7):
        mean = torch.zeros(8, 2)
        if iterations:
            generator = torch.Generator().manual_seed(3)
            mean = planner(returns, mean, iterations=iterations, generator=generator, **kwargs)
        costs.append(float((mean - target).square().sum()))
    return costs


def test_cem_lowers_the_cost_of_its_plan_over_iterations() -> None:
    costs = _quadratic_costs(cem, population=200, elites=20, init_std=0.5)
    assert costs[0] > costs[1] > costs[3] > costs[6], costs
    assert costs[6] < 0.05 * costs[0], costs


def test_mppi_lowers_the_cost_of_its_plan_over_iterations() -> None:
    costs = _quadratic_costs(mppi, population=200, init_std=0.3, temperature=0.5)
    assert costs[0] > costs[1] > costs[3] > costs[6], costs
    assert costs[6] < 0.1 * costs[0], costs


def test_a_non_finite_model_loss_is_divergence() -> None:
    store = TransitionStore(2, 1)
    for index in range(10):
        reward = float("nan") if index == 5 else 0.0
        store.add(np.zeros(2, np.float32), np.zeros(1, np.float32), reward, np.ones(2, np.float32))
    model = EnsembleModel(
        2, 1, (8,), 2, 1e-3, torch.Generator().manual_seed(0), torch.device("cpu")
    )
    with pytest.raises(Diverged, match="model loss"):
        model.fit(store, 1, 4)


def test_a_run_records_model_loss_and_planning_time() -> None:
    hp = dict(hidden=[16], population=30, elites=3, horizon=5, random_steps=50, train_every=50)
    spec = RunSpec("mpc", "Pendulum-v1", 0, steps=100, eval_every=100, eval_episodes=1, hparams=hp)
    frame = rlcompare.run(spec).frame
    at_end = frame[frame["step"] == 100].set_index("metric")["value"]
    assert at_end["model_loss"] > 0 and at_end["planning_ms"] > 0
    assert "mpc" in rlcompare.algorithms()


DETERMINISM = """
import pandas as pd
import rlcompare
from rlcompare import RunSpec
from rlcompare.algos.deep.mpc_params import register_mpc

register_mpc()
small = dict(hidden=[16, 16], ensemble_size=2, population=40, elites=4, horizon=6,
             iterations=2, random_steps=100, train_every=100, model_epochs=2)
specs = [
    RunSpec("mpc", "Pendulum-v1", 5, steps=300, eval_every=150, eval_episodes=1, hparams=small),
    RunSpec("mpc", "Pendulum-v1", 5, steps=200, eval_every=200, eval_episodes=1,
            hparams=dict(small, planner="mppi", learned_reward=False)),
]
pd.concat([rlcompare.run(spec).frame for spec in specs]).to_parquet(r"{out}")
"""


def test_mpc_runs_repeat_exactly_in_fresh_processes(tmp_path) -> None:
    frames = []
    for index in range(2):
        out = tmp_path / f"run{index}.parquet"
        run_python(DETERMINISM.format(out=out), timeout=300)
        frame = pd.read_parquet(out)
        # planning_ms is a wall time, like wall_time_s.
        frames.append(without_wall_time(frame[frame["metric"] != "planning_ms"]))
    first, second = frames
    assert set(first["metric"]) >= {"eval_return", "model_loss", "episode_return"}
    assert first["run_id"].nunique() == 2
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize(
    ("env", "hparams", "message"),
    [
        ("Pendulum-v1", {"horizon": 0}, "'horizon'.*= 0"),
        ("Pendulum-v1", {"elites": 30, "population": 20}, "'elites'.*= 30.*population = 20"),
        ("Pendulum-v1", {"planner": "ilqr"}, "'planner'.*'ilqr'.*cem, mppi"),
        ("CartPole-v1", {}, "needs a Box \\(continuous\\) action space, got Discrete\\(2\\)"),
        (
            "MountainCarContinuous-v0",
            {"learned_reward": False},
            "'MountainCarContinuous-v0' has no reward function.*Pendulum-v1",
        ),
    ],
)
def test_bad_settings_fail_when_the_spec_is_built(env: str, hparams: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        RunSpec("mpc", env, 0, steps=100, hparams=hparams)


@pytest.mark.slow
def test_pendulum_is_swung_up_within_3000_steps() -> None:
    spec = RunSpec("mpc", "Pendulum-v1", 0, steps=3000, eval_every=1000, eval_episodes=3)
    frame = rlcompare.run(spec).frame
    returns = frame[frame["metric"] == "eval_return"].set_index("step")["value"]
    assert returns.max() >= -400, returns
