"""The stability ablations of notebook 03 change what they claim to change."""

from __future__ import annotations

import numpy as np
import torch

import rlcompare
from rlcompare.algos.deep.common import ObsEncoder
from rlcompare.algos.deep.dqn import DQNAgent
from rlcompare.algos.deep.replay import LatestBuffer
from rlcompare.envs.make import env_info
from rlcompare.seeding import RunSeeds


def _agent(**hparams) -> DQNAgent:
    spec = rlcompare.RunSpec(
        "dqn",
        "CartPole-v1",
        0,
        steps=1000,
        hparams={"batch_size": 8, "learning_starts": 0, **hparams},
    )
    info = env_info("CartPole-v1")
    return DQNAgent(
        spec.resolved_hparams, info.observation_space, info.action_space, RunSeeds(0), horizon=1000
    )


def _fill_and_train(agent: DQNAgent, transitions: int = 64) -> torch.Tensor:
    rng = np.random.default_rng(0)
    for _ in range(transitions):
        obs, next_obs = rng.normal(size=4).astype(np.float32), rng.normal(size=4).astype(np.float32)
        agent.buffer.add(obs, int(rng.integers(2)), 1.0, next_obs, 0.99)
    agent.learner.train(agent.buffer, 5)
    return torch.as_tensor(rng.normal(size=(16, 4)).astype(np.float32))


def _online_max(agent: DQNAgent, probe: torch.Tensor) -> torch.Tensor:
    learner = agent.learner
    return learner.net.q_values(probe, learner.online_views, learner.online_noise).amax(dim=1)


def test_without_a_target_network_bootstraps_come_from_the_current_online_net() -> None:
    agent = _agent(target_network=False, target_update_interval=10_000)
    probe = _fill_and_train(agent)
    with torch.no_grad():
        torch.testing.assert_close(agent.learner._next_values(probe), _online_max(agent, probe))


def test_with_a_target_network_bootstraps_lag_behind_the_online_net() -> None:
    agent = _agent(target_network=True, target_update_interval=10_000)
    probe = _fill_and_train(agent)
    with torch.no_grad():
        lagging = agent.learner._next_values(probe)
        assert not torch.allclose(lagging, _online_max(agent, probe))


def test_without_replay_only_the_latest_transitions_are_sampled() -> None:
    agent = _agent(replay=False)
    assert isinstance(agent.buffer, LatestBuffer)
    encoder = ObsEncoder(env_info("CartPole-v1").observation_space)
    assert encoder.dim == 4
    for index in range(20):
        agent.buffer.add(
            np.full(4, index, np.float32), 0, float(index), np.full(4, index, np.float32), 0.99
        )
    batch = agent.buffer.sample(8)
    assert sorted(np.asarray(batch.rewards).ravel().tolist()) == list(range(12, 20))
