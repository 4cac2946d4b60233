"""Deep agents without training: registration, parameter tables, validation, building blocks."""

from __future__ import annotations

import inspect

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import run_python
from test_deep_envs import IDENTITY

from rlcompare import RunSpec, SpecError
from rlcompare.algos.deep.common import ObsEncoder, sb3_linear_schedule
from rlcompare.algos.deep.hparams import (
    DQN_EXTRA_PARAMS,
    PPO_DEVIATIONS,
    PPO_PARAMS,
    SB3_DQN_PARAMS,
)
from rlcompare.algos.deep.learner import DQNLearner, FlatAdam, _first_and_inverse
from rlcompare.algos.deep.network import QNetwork
from rlcompare.algos.deep.replay import (
    NStepAccumulator,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    SumTree,
)
from rlcompare.seeding import RunSeeds
from rlcompare.spec.registry import get_algorithm


def test_import_and_validation_do_not_import_torch_or_sb3() -> None:
    out = run_python(
        "import sys, rlcompare\n"
        "rlcompare.algorithms()\n"
        "rlcompare.RunSpec('dqn', 'CartPole-v1', 0, steps=10, hparams={'double': True})\n"
        "rlcompare.RunSpec('ppo', 'Pendulum-v1', 0, steps=10)\n"
        "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))"
    )
    assert out.stdout.strip() == "[]"


def test_deep_algorithms_are_registered_as_deep() -> None:
    for name in ("dqn", "sb3_dqn", "ppo", "bc"):
        algorithm = get_algorithm(name)
        assert algorithm.family == "deep" and ":" in algorithm.trainer


def _signature_defaults(function) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_ppo_table_matches_sb3_defaults() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.policies import ActorCriticPolicy

    from rlcompare.algos.deep.ppo import ACTIVATIONS

    defaults = {
        **_signature_defaults(ActorCriticPolicy.__init__),
        **_signature_defaults(PPO.__init__),
    }
    shared = sorted(set(PPO_PARAMS) & set(defaults) - {"net_arch", "activation_fn"})
    assert len(shared) >= 18
    for name in shared:
        expected = PPO_DEVIATIONS.get(name, defaults[name])
        assert PPO_PARAMS[name].default == expected, name
    assert ACTIVATIONS[PPO_PARAMS["activation_fn"].default] is defaults["activation_fn"]
    # net_arch=None in SB3 means separate [64, 64] actor and critic networks.
    assert defaults["net_arch"] is None and PPO_PARAMS["net_arch"].default == (64, 64)
    assert set(PPO_PARAMS) - set(defaults) == {"n_envs", "warm_start"}


def test_dqn_table_matches_sb3_defaults() -> None:
    from stable_baselines3 import DQN

    defaults = _signature_defaults(DQN.__init__)
    for name, param in SB3_DQN_PARAMS.items():
        if name == "net_arch":
            continue
        expected = "cpu" if name == "device" else defaults[name]
        assert param.default == expected, name
    assert SB3_DQN_PARAMS["net_arch"].default == (64, 64)  # QNetwork's default
    assert not set(DQN_EXTRA_PARAMS) & set(defaults)


@pytest.mark.parametrize(
    ("algo", "hparams", "words"),
    [
        ("dqn", {"learning_rate": -1.0}, ["learning_rate", "(0, inf)"]),
        ("dqn", {"tau": 0.0}, ["tau", "(0, 1]"]),
        ("dqn", {"gamma": 1.5}, ["gamma", "[0, 1]"]),
        ("dqn", {"gradient_steps": 0}, ["gradient_steps", "-1"]),
        ("dqn", {"batch_size": 0}, ["batch_size", "[1, inf)"]),
        ("dqn", {"exploration": "ucb"}, ["exploration", "epsilon_greedy, boltzmann, noisy"]),
        ("dqn", {"prioritized": True, "replay": False}, ["prioritized", "replay"]),
        ("dqn", {"net_arch": [64, 0]}, ["net_arch", "positive ints"]),
        ("dqn", {"device": "tpu"}, ["device", "cpu, auto, cuda"]),
        ("dqn", {"max_grad_norm": 0.0}, ["max_grad_norm", "or None"]),
        ("sb3_dqn", {"double": True}, ["double", "sb3_dqn", "'dqn'", "False"]),
        ("sb3_dqn", {"exploration": "boltzmann"}, ["exploration", "epsilon_greedy"]),
        ("ppo", {"batch_size": 1}, ["batch_size", "[2, inf)"]),
        ("ppo", {"n_steps": 1}, ["n_steps * n_envs", "> 1"]),
        ("ppo", {"clip_range": 0.0}, ["clip_range", "(0, inf)"]),
        ("ppo", {"gae_lambda": 2.0}, ["gae_lambda", "[0, 1]"]),
        ("ppo", {"activation_fn": "gelu"}, ["activation_fn", "tanh, relu"]),
        ("ppo", {"n_epochs": 0}, ["n_epochs", "[1, inf)"]),
        ("bc", {}, ["dataset", "Dataset.save"]),
        ("bc", {"dataset": "x.npz", "batch_size": 0}, ["batch_size", "[1, inf)"]),
    ],
)
def test_bad_hyperparameters_are_rejected_with_name_and_range(algo, hparams, words) -> None:
    with pytest.raises(SpecError) as error:
        RunSpec(algo, "CartPole-v1", 0, steps=100, hparams=hparams)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize("algo", ["dqn", "sb3_dqn"])
def test_value_based_agents_reject_continuous_actions(algo: str) -> None:
    with pytest.raises(SpecError, match="Discrete action space"):
        RunSpec(algo, "Pendulum-v1", 0, steps=100)


def test_unknown_hyperparameter_suggests_the_sb3_name() -> None:
    with pytest.raises(SpecError, match="n_steps"):
        RunSpec("dqn", "CartPole-v1", 0, steps=100, hparams={"n_step": 3})


# -- building blocks ---------------------------------------------------------------------------
def test_obs_encoder_one_hot_and_flatten() -> None:
    discrete = ObsEncoder(gym.spaces.Discrete(4, start=1))
    assert discrete.encode(3).tolist() == [0, 0, 1, 0]
    assert discrete.encode_batch(np.array([1, 4])).tolist() == [[1, 0, 0, 0], [0, 0, 0, 1]]
    box = ObsEncoder(gym.spaces.Box(0, 1, (2, 3)))
    assert box.dim == 6 and box.encode_batch(np.zeros((5, 2, 3))).shape == (5, 6)


def test_linear_schedule_follows_sb3() -> None:
    assert sb3_linear_schedule(1.0, 0.1, 0.5, 0, 100) == 1.0
    assert sb3_linear_schedule(1.0, 0.1, 0.5, 25, 100) == pytest.approx(0.55)
    assert sb3_linear_schedule(1.0, 0.1, 0.5, 60, 100) == 0.1
    assert sb3_linear_schedule(1.0, 0.1, 0.0, 0, 100) == 0.1


def test_sum_tree_finds_prefix_sums() -> None:
    tree = SumTree(5)
    tree.update(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.0]))
    assert tree.total == 10.0
    assert tree.find(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 9.99])).tolist() == [0, 0, 1, 1, 2, 3]
    tree.update(np.array([3]), np.array([0.5]))
    assert tree.total == 6.5
    tree.set(4, 2.0)
    assert tree.total == 8.5 and tree.get(np.array([4])).tolist() == [2.0]


def test_sum_tree_batched_and_single_updates_agree_with_sums() -> None:
    rng = np.random.default_rng(0)
    batched, single = SumTree(100), SumTree(100)
    for _ in range(20):
        indices, values = rng.choice(100, 16, replace=False), rng.random(16)
        batched.update(indices, values)  # siblings share parents, refreshed once per level
        for index, value in zip(indices, values, strict=True):
            single.set(int(index), float(value))
    np.testing.assert_array_equal(batched.tree, single.tree)
    leaves = batched.get(np.arange(100))
    assert batched.total == pytest.approx(leaves.sum())
    parents = np.arange(1, batched.leaves)
    tree = batched.tree
    np.testing.assert_array_equal(tree[parents], tree[2 * parents] + tree[2 * parents + 1])


@pytest.mark.parametrize("size", [1, 2, 7, 64, 500])
def test_first_and_inverse_is_np_unique(size: int) -> None:
    # The fixed-target path scores rows in np.unique's order: the order is part of the result.
    indices = np.random.default_rng(size).integers(0, max(2, size // 3), size=size)
    _, first, inverse = np.unique(indices, return_index=True, return_inverse=True)
    mine_first, mine_inverse = _first_and_inverse(indices)
    np.testing.assert_array_equal(mine_first, first)
    np.testing.assert_array_equal(mine_inverse, inverse)


def test_phase_sample_gathers_the_same_transitions_as_sample() -> None:
    encoder = ObsEncoder(gym.spaces.Box(-1.0, 1.0, (2, 3), dtype=np.float32))
    phased = ReplayBuffer(50, encoder, np.random.default_rng(3))
    plain = ReplayBuffer(50, encoder, np.random.default_rng(3))
    rng = np.random.default_rng(0)
    for i in range(80):  # wraps around the ring
        obs, next_obs = rng.random((2, 3)), rng.random((2, 3))
        for buffer in (phased, plain):
            buffer.add(obs, i % 3, float(i), next_obs, 0.5 + i / 200)
    for steps in (1, 4, 1):  # reused arrays, then new sizes
        got, want = phased.sample_phase(steps, 8), plain.sample(steps * 8)
        for name in ("obs", "actions", "rewards", "next_obs", "discounts", "indices"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        assert got.obs.shape == (steps * 8, 6) and got.weights is None


def test_prioritized_replay_prefers_large_td_errors() -> None:
    buffer = PrioritizedReplayBuffer(
        8, ObsEncoder(gym.spaces.Discrete(8)), np.random.default_rng(0), alpha=1.0
    )
    for i in range(8):
        buffer.add(i, 0, 0.0, i, 0.9)
    buffer.update_priorities(np.arange(8), np.array([0, 0, 0, 0, 0, 0, 0, 10.0]))
    batch = buffer.sample(64, beta=1.0)
    assert (batch.indices == 7).mean() > 0.9
    assert batch.weights.max() == 1.0 and batch.weights.min() > 0


def test_n_step_returns_stop_at_termination_and_bootstrap_at_truncation() -> None:
    acc = NStepAccumulator(3, 0.5)
    out = list(acc.push("s0", 0, 1.0, "s1", False, False))
    out += list(acc.push("s1", 0, 1.0, "s2", False, False))
    out += list(acc.push("s2", 0, 1.0, "s3", False, False))
    assert out == [("s0", 0, 1.75, "s3", 0.125)]
    out = list(acc.push("s3", 0, 1.0, "s4", True, False))
    assert out == [("s1", 0, 1.75, "s4", 0.0), ("s2", 0, 1.5, "s4", 0.0), ("s3", 0, 1.0, "s4", 0.0)]
    out = list(acc.push("a", 0, 2.0, "b", False, True))
    assert out == [("a", 0, 2.0, "b", 0.5)]


@pytest.mark.parametrize("net_arch", [(16, 8), (5,), ()])
@pytest.mark.parametrize(
    ("dueling", "noisy", "with_noise"),
    [
        (False, False, False),
        (True, False, False),
        (False, True, True),
        (True, True, True),
        (True, True, False),
    ],
)
def test_hand_written_backward_matches_autograd(net_arch, dueling, noisy, with_noise) -> None:
    net = QNetwork(3, 4, net_arch, dueling=dueling, noisy=noisy)
    generator = torch.Generator().manual_seed(0)
    flat = net.initial_parameters(generator).requires_grad_()
    noise = net.sample_noise(generator, torch.device("cpu")) if with_noise else None
    x, grad_q = torch.randn(7, 3), torch.randn(7, 4)
    q = net.forward(x, net.views(flat), noise)
    q.backward(grad_q)
    manual = torch.full_like(flat, float("nan"))  # every entry must be written
    q2, cache = net.forward_cached(x, net.views(flat.detach()), noise)
    net.backward(cache, grad_q, net.views(manual))
    torch.testing.assert_close(q2, q.detach())
    torch.testing.assert_close(manual, flat.grad)


def test_flat_adam_matches_torch_adam() -> None:
    torch.manual_seed(0)
    a = torch.randn(50).requires_grad_()
    b = a.detach().clone().requires_grad_()
    ours, reference = FlatAdam(a, 1e-2), torch.optim.Adam([b], lr=1e-2, eps=1e-8)
    for _ in range(5):
        grad = torch.randn(50)
        a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        reference.step()
    torch.testing.assert_close(a.detach(), b.detach())


@pytest.mark.parametrize(
    "switches", [{}, {"dueling": True}, {"noisy": True}, {"noisy": True, "dueling": True}]
)
def test_numpy_acting_path_matches_torch_forward_before_and_after_learning(switches) -> None:
    hparams = {"net_arch": [8, 8], "learning_starts": 0, "batch_size": 4, **switches}
    spec = RunSpec("dqn", IDENTITY, 0, steps=10, hparams=hparams)
    learner = DQNLearner(4, 4, spec.resolved_hparams, RunSeeds(0), torch.device("cpu"))
    encoder = ObsEncoder(gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32))
    buffer = ReplayBuffer(16, encoder, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    obs = rng.random(4).astype(np.float32)
    for order in ((False, True), (True, False)):  # noisy acting right before and after
        for noisy in order:
            noise = learner.online_noise if noisy and learner.net.noisy else None
            reference = learner.net.forward(
                torch.from_numpy(obs)[None], learner.online_views, noise
            )
            np.testing.assert_allclose(
                learner.q_row(obs, noisy=noisy), reference[0].detach().numpy(), rtol=1e-5, atol=1e-6
            )
        for _ in range(8):  # a gradient step changes the weights (and resamples the noise)
            sample = rng.random(4).astype(np.float32)
            buffer.add(sample, int(rng.integers(4)), 1.0, sample, 0.9)
        learner.train(buffer, steps=2)


def _sac_target_after(target_update_interval: int, train_freq: int, gradient_steps: int):
    from stable_baselines3 import SAC

    torch.set_num_threads(1)
    model = SAC(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=8,
        batch_size=8,
        train_freq=train_freq,
        gradient_steps=gradient_steps,
        target_update_interval=target_update_interval,
        policy_kwargs={"net_arch": [8]},
        seed=0,
        device="cpu",
    )
    model.learn(24)
    return torch.cat([p.detach().flatten() for p in model.critic_target.parameters()])


def test_sac_target_update_interval_counts_within_one_training_phase() -> None:
    # What the sac Param doc says: SB3 counts gradient steps from 0 in every train() call,
    # so with one gradient step per phase every interval updates the target every time.
    assert torch.equal(_sac_target_after(1, 1, 1), _sac_target_after(5, 1, 1))
    assert not torch.equal(_sac_target_after(1, 4, 4), _sac_target_after(3, 4, 4))
    doc = get_algorithm("sac").params["target_update_interval"].doc
    assert "restarts every phase" in doc
