"""``mpc`` (issue 27): every evaluation episode plans from a fresh warm start, any population
works with any ensemble size, and the model's rollouts keep declared (cos, sin) pairs on the
unit circle."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control.pendulum import PendulumEnv

import rlcompare
from rlcompare import RunSpec
from rlcompare.algos.deep.mpc import MPCAgent
from rlcompare.algos.deep.mpc_params import MPC_PARAMS, angle_pairs, register_mpc
from rlcompare.errors import SpecError
from rlcompare.seeding import RunSeeds

FIXED_START = "rlcompare_test/FixedStartPendulum-v0"
SMALL = dict(
    hidden=[16],
    ensemble_size=2,
    population=20,
    elites=4,
    horizon=5,
    iterations=2,
    random_steps=60,
    train_every=60,
    model_epochs=2,
)


class FixedStartPendulum(PendulumEnv):
    """Pendulum-v1 whose every episode starts hanging at rest, whatever the seed; the torques
    of each episode are recorded (class-wide: the eval env is built inside the run)."""

    episodes: list[list[float]] = []

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        self.state = np.array([np.pi - 0.3, 0.0])
        FixedStartPendulum.episodes.append([])
        return self._get_obs(), {}

    def step(self, u):
        FixedStartPendulum.episodes[-1].append(float(np.asarray(u).reshape(-1)[0]))
        return super().step(u)


if FIXED_START not in gymnasium.registry:
    gymnasium.register(id=FIXED_START, entry_point=FixedStartPendulum, max_episode_steps=25)


@pytest.fixture(autouse=True)
def _registered() -> None:
    register_mpc()
    torch.set_num_threads(1)


def _hp(**overrides) -> dict:
    return {**{name: param.default for name, param in MPC_PARAMS.items()}, **overrides}


def test_two_evaluation_episodes_from_the_same_state_act_identically() -> None:
    FixedStartPendulum.episodes.clear()
    spec = RunSpec("mpc", FIXED_START, 0, steps=100, eval_every=100, eval_episodes=2, hparams=SMALL)
    assert rlcompare.run(spec).status == "ok"
    # The last two recorded episodes are the evaluation at step 100 (the model is trained).
    first, second = FixedStartPendulum.episodes[-2:]
    assert len(first) == len(second) == 25
    assert len(set(first)) > 1  # the planner acts, not the untrained middle of the Box
    assert first == second, np.abs(np.subtract(first, second)).max()


@pytest.mark.parametrize(
    ("planner", "population", "ensemble_size"), [("cem", 1, 3), ("mppi", 2, 5)]
)
def test_a_population_smaller_than_the_ensemble_plans(
    planner: str, population: int, ensemble_size: int
) -> None:
    hp = dict(SMALL, planner=planner, population=population, elites=1)
    hp["ensemble_size"] = ensemble_size
    spec = RunSpec("mpc", "Pendulum-v1", 0, steps=80, eval_every=80, eval_episodes=1, hparams=hp)
    result = rlcompare.run(spec)
    assert result.status == "ok"
    frame = result.frame
    assert np.isfinite(frame[frame["metric"] == "eval_return"]["value"]).all()


def test_candidates_are_scored_by_member_i_mod_ensemble_size() -> None:
    """Each candidate's behaviour score is its own member's, whatever the population."""
    space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    agent = MPCAgent(_hp(hidden=(8,), ensemble_size=3, horizon=2), obs_space, space, RunSeeds(0))
    obs = torch.tensor([0.3, -0.2])
    actions = torch.linspace(-1, 1, 4).view(2, 2, 1)  # 2 candidates < 3 members
    with torch.inference_mode():
        scores = agent._returns(obs, mean_model=False)(actions)
        alone = [agent._returns(obs, mean_model=False)(actions[i : i + 1])[0] for i in (0,)]
    assert scores.shape == (2,)
    assert float(scores[0]) == pytest.approx(float(alone[0]))


def _rollout_radii(pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Radius of (obs[0], obs[1]) along 10-step mean-model rollouts of a model trained briefly
    on random Pendulum-v1 transitions (the reward function sees every predicted state)."""
    env = gymnasium.make("Pendulum-v1")
    radii: list[torch.Tensor] = []

    def reward(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        radii.append(state[..., :2].norm(dim=-1).flatten())
        return torch.zeros(state.shape[:-1])

    hp = _hp(hidden=(32, 32), ensemble_size=2, horizon=10, random_steps=300, train_every=300)
    agent = MPCAgent(
        hp, env.observation_space, env.action_space, RunSeeds(0), reward, angle_pairs=pairs
    )
    obs, _ = env.reset(seed=0)
    for step in range(1, 301):
        action = agent.act(obs, step - 1)
        next_obs, reward_value, terminated, truncated, _ = env.step(action)
        agent.update(obs, action, float(reward_value), next_obs, terminated, truncated, step)
        obs = env.reset()[0] if terminated or truncated else next_obs
    assert agent.model.trained
    agent.eval_metrics()
    radii.clear()
    agent.greedy_action(obs)
    return torch.cat(radii[-200:]).numpy()  # the last 20 rollout steps of the planner


def test_declared_angle_pairs_stay_on_the_unit_circle_in_rollouts() -> None:
    drifting = _rollout_radii(())
    assert np.abs(drifting - 1).max() > 1e-2  # the test can see a drift
    projected = _rollout_radii(((0, 1),))
    assert np.abs(projected - 1).max() < 1e-5, np.abs(projected - 1).max()


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("Pendulum-v1", "env", ((0, 1),)),
        ("Pendulum-v1", "none", ()),
        ("MountainCarContinuous-v0", "env", ()),
        ("MountainCarContinuous-v0", "0:1", ((0, 1),)),
    ],
)
def test_angle_pairs_come_from_the_env_or_the_hyperparameter(
    env: str, value: str, expected: tuple
) -> None:
    spec = RunSpec("mpc", env, 0, steps=100, hparams={"angle_pairs": value})
    assert angle_pairs(spec.resolved_hparams["angle_pairs"], env) == expected


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        ({"angle_pairs": "0:3"}, "'angle_pairs'.*'0:3'.*index 3.*0 <= i < 3"),
        ({"angle_pairs": "0-1"}, "'angle_pairs'.*'0-1'.*'env', 'none'"),
        ({"angle_pairs": "0:1,1:2"}, "'angle_pairs'.*'0:1,1:2'.*more than once"),
    ],
)
def test_bad_angle_pairs_fail_when_the_spec_is_built(hparams: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        RunSpec("mpc", "Pendulum-v1", 0, steps=100, hparams=hparams)
