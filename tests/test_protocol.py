"""The one evaluation protocol: its rules on a recording fake run, and the SB3 budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from test_deep_dqn import evals

import rlcompare
from rlcompare import RunSpec
from rlcompare.envs.make import make_env
from rlcompare.errors import Diverged
from rlcompare.runner.protocol import EvalSchedule, Protocol


class FakeRun:
    """Records the protocol's evaluations and divergence (what ``RunContext`` would log)."""

    def __init__(self, **budget: Any) -> None:
        self.spec = RunSpec("random", "CartPole-v1", 0, **budget)
        self.schedule = EvalSchedule(self.spec)
        self.evaluations: list[tuple[int, Mapping[str, float] | None]] = []
        self.diverged: tuple[int, str] | None = None

    @property
    def last_eval_step(self) -> int | None:
        return self.evaluations[-1][0] if self.evaluations else None

    def evaluate(self, step: int, policy: Any, extra: Mapping[str, float] | None = None) -> float:
        self.evaluations.append((step, extra))
        return 0.0

    def mark_diverged(self, step: int, reason: str) -> None:
        self.diverged = (step, reason)


def steps_evaluated(run: FakeRun) -> list[int]:
    return [step for step, _ in run.evaluations]


def test_schedule_by_steps_when_a_vector_env_jumps_past_multiples() -> None:
    run = FakeRun(steps=100, eval_every=10)
    protocol = Protocol(run, policy=lambda obs: 0)
    protocol.start()
    # Vector steps of 8 envs: 8, 16, ... ; 10 is passed at 16, 20 at 24, 30 and 40 both at 40.
    for step in range(8, 97, 8):
        protocol.after(step)
    protocol.finish(100)
    assert steps_evaluated(run) == [0, 16, 24, 32, 40, 56, 64, 72, 80, 96, 100]


def test_one_step_loop_evaluates_at_exact_multiples_and_once_at_the_end() -> None:
    run = FakeRun(steps=30, eval_every=10)
    calls = []
    protocol = Protocol(run, lambda obs: 0, metrics=lambda: calls.append(1) or {"m": 1.0})
    protocol.start()
    for step in range(1, 31):
        protocol.after(step)
    protocol.finish(30)
    assert steps_evaluated(run) == [0, 10, 20, 30]
    # The end that falls on a schedule step records nothing more, but still asks the metrics
    # hook (agents restart their per-evaluation state there).
    assert len(calls) == 5


def test_schedule_by_episodes_counts_several_episodes_finishing_at_once() -> None:
    run = FakeRun(episodes=40)  # no eval_every: every 40 // 20 = 2 episodes
    protocol = Protocol(run, lambda obs: 0)
    protocol.start()
    assert not protocol.due(5, 1)
    assert protocol.due(7, 3)  # episodes 2 and 3 finished on one vector step: one evaluation
    assert not protocol.due(9, 3)
    assert protocol.after(11, 4) and steps_evaluated(run) == [0, 11]


def test_divergence_is_recorded_at_the_step_reached_and_skips_the_end() -> None:
    run = FakeRun(steps=100, eval_every=10)
    protocol = Protocol(run, lambda obs: 0)
    step = 0
    with protocol.guard(lambda: step):
        protocol.start()
        for step in range(1, 101):  # noqa: B007 - the guard reads the step
            if step == 17:
                raise Diverged("nan")
            protocol.after(step)
        protocol.finish(step)
    assert steps_evaluated(run) == [0, 10]
    assert run.diverged == (17, "nan")


def test_check_runs_before_each_evaluation() -> None:
    run = FakeRun(steps=20, eval_every=10)

    def check(step: int) -> None:
        if step == 20:
            raise Diverged(f"parameter non-finite by step {step}")

    protocol = Protocol(run, lambda obs: 0, check=check)
    with protocol.guard(lambda: 20):
        protocol.start()
        protocol.after(10)
        protocol.finish(20)
    assert steps_evaluated(run) == [0, 10] and run.diverged is not None


# -- the SB3 forms: SB3's learn on the rollouts complete within the budget -----------------


def test_ppo_trains_the_last_rollout_like_sb3_learn() -> None:
    settings = {"n_steps": 64, "batch_size": 64}
    result = rlcompare.run(
        RunSpec("ppo", "CartPole-v1", 0, steps=256, eval_episodes=1, hparams=settings)
    )
    plain = PPO("MlpPolicy", DummyVecEnv([lambda: make_env("CartPole-v1")]), seed=0, **settings)
    plain.learn(256)
    assert plain._n_updates == 40  # 4 rollouts x n_epochs 10
    assert result.agent.model._n_updates == plain._n_updates
    assert max(evals(result)) == 256


def test_sb3_dqn_trains_every_phase_like_sb3_learn_and_our_dqn() -> None:
    settings = {"train_freq": 4, "learning_starts": 0, "batch_size": 32}
    spec = dict(steps=200, eval_episodes=1, hparams={**settings, "net_arch": [8]})
    ours = rlcompare.run(RunSpec("sb3_dqn", "CartPole-v1", 0, **spec))
    plain = DQN(
        "MlpPolicy",
        DummyVecEnv([lambda: make_env("CartPole-v1")]),
        seed=0,
        policy_kwargs={"net_arch": [8]},
        **settings,
    )
    plain.learn(200)
    dqn = rlcompare.run(RunSpec("dqn", "CartPole-v1", 0, **spec))
    assert plain._n_updates == 50
    assert ours.agent.model._n_updates == plain._n_updates
    assert dqn.agent.learner.gradient_steps == plain._n_updates


def test_ppo_steps_budget_ends_at_the_budget() -> None:
    # 300 is not a multiple of the rollout (64 steps): SB3's learn(300) would finish the
    # rollout, to 320; the protocol's budget rule stops at 300 and trains on 4 rollouts.
    hparams = {"n_steps": 64, "batch_size": 32, "n_epochs": 1}
    result = rlcompare.run(
        RunSpec(
            "ppo", "CartPole-v1", 0, steps=300, eval_every=100, eval_episodes=1, hparams=hparams
        )
    )
    assert list(evals(result)) == [0, 100, 200, 300]
    assert result.agent.model.num_timesteps == 300 and result.agent.model._n_updates == 4


def test_ppo_with_several_envs_evaluates_at_the_first_vector_step_past_a_multiple() -> None:
    hparams = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "n_envs": 3}
    result = rlcompare.run(
        RunSpec(
            "ppo", "CartPole-v1", 0, steps=384, eval_every=100, eval_episodes=1, hparams=hparams
        )
    )
    # Vector steps count 3 env steps: 100 -> 102, 200 -> 201, 300 -> 300; the end at 384.
    assert list(evals(result)) == [0, 102, 201, 300, 384]


@pytest.mark.parametrize("n_envs", [1, 8])
def test_ppo_episodes_budget_is_exact_with_several_envs(n_envs: int) -> None:
    result = rlcompare.run(
        RunSpec(
            "ppo", "MountainCar-v0", 0, episodes=10, eval_episodes=1, hparams={"n_envs": n_envs}
        )
    )
    lengths = result.frame[result.frame["metric"] == "episode_length"]
    assert result.status == "ok"
    assert lengths["episode"].tolist() == list(range(1, 11))
    assert max(evals(result)) == int(lengths["step"].iloc[-1])
    # With 8 envs in lockstep the 10th episode ends on the 2nd time-limit step of the envs.
    expected_last = 10 * 200 if n_envs == 1 else 2 * 200 * 8
    assert int(lengths["step"].iloc[-1]) == expected_last
    assert np.all(lengths["value"].to_numpy() == 200)
