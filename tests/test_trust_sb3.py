"""Issue 27 (trust, round 3), the SB3 items: every SB3 / sb3-contrib class is evaluated on its
current weights; ``steps=N`` means N env steps for every algorithm (and the same gradient steps
for ``dqn`` and ``sb3_dqn``); ``register_sb3`` reaches the policy's own arguments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_deep_dqn import evals

import rlcompare
from rlcompare import RunSpec
from rlcompare.algos.deep import sb3_common
from rlcompare.spec import registry

pytest.importorskip("sb3_contrib")

# Tiny CartPole runs of each class that trains within a few hundred steps.
CLASSES = {
    "trpo": ("sb3_contrib:TRPO", {"n_steps": 128, "batch_size": 64, "net_arch": [16]}, 512),
    "qrdqn": (
        "sb3_contrib:QRDQN",
        {"learning_starts": 50, "train_freq": 8, "net_arch": [16], "n_quantiles": 10},
        400,
    ),
    "ars": ("sb3_contrib:ARS", {"n_delta": 2, "net_arch": [8]}, 400),
    "a2c": ("stable_baselines3:A2C", {"net_arch": [16]}, 200),
}


@pytest.fixture(scope="module")
def classes() -> Iterator[None]:
    """TRPO, QRDQN, ARS and A2C registered through ``register_sb3`` for this module."""
    for name, (target, _, _) in CLASSES.items():
        rlcompare.register_sb3(f"trust_{name}", target)
    yield
    for name in CLASSES:
        registry._REGISTRY.pop(f"trust_{name}", None)


def _run(name: str, seed: int = 0, **overrides: Any) -> rlcompare.RunResult:
    _, hparams, steps = CLASSES[name]
    spec = RunSpec(
        f"trust_{name}",
        "CartPole-v1",
        seed,
        steps=overrides.pop("steps", steps),
        eval_every=overrides.pop("eval_every", 100),
        eval_episodes=2,
        hparams={**hparams, **overrides},
    )
    return rlcompare.run(spec)


def _predict_policy(model: Any, observation_space: Any, action_space: Any) -> Any:
    """The reference greedy policy: SB3's own ``predict(obs, deterministic=True)``."""
    return lambda obs: int(model.predict(obs, deterministic=True)[0])


# -- item A: evaluated on the current weights ---------------------------------------------------


@pytest.mark.parametrize("name", list(CLASSES))
def test_the_evaluated_greedy_action_is_sb3s_predict_after_training(classes, name: str) -> None:
    result = _run(name)
    assert result.status == "ok"
    model = result.agent.model
    rng = np.random.default_rng(0)
    observations = rng.uniform(-4.0, 4.0, size=(300, 4)).astype(np.float32)
    ours = [int(result.agent.greedy_action(obs)) for obs in observations]
    sb3 = [int(model.predict(obs, deterministic=True)[0]) for obs in observations]
    assert ours == sb3
    # Not a constant policy that agrees by luck.
    assert len(set(sb3)) == 2


@pytest.mark.parametrize("name", ["trpo", "a2c"])
def test_every_evaluation_is_the_one_predict_would_give(classes, name: str, monkeypatch) -> None:
    """The same run evaluated through SB3's ``predict`` records the same eval_return at every
    evaluation (evaluation draws from no training generator), so the fast path tracks
    training; a policy stuck on stale weights does not."""
    fast = evals(_run(name))
    monkeypatch.setattr(sb3_common, "greedy_policy", _predict_policy)
    reference = evals(_run(name))
    assert fast == reference
    assert len(set(reference.values())) > 1  # training moved the greedy policy


def test_a_policy_whose_parameters_are_rebound_is_refreshed() -> None:
    """TRPO assigns ``param.data = ...``: numpy views taken before miss it, a refresh sees it."""
    from sb3_contrib import TRPO

    model = TRPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    space = model.observation_space
    policy = sb3_common.LivePolicy(
        lambda: sb3_common.greedy_policy(model, space, model.action_space)
    )
    generator = np.random.default_rng(1)
    observations = generator.uniform(-1, 1, size=(200, 4)).astype(np.float32)
    for param in model.policy.parameters():
        param.data = param.data.clone().normal_(0.0, 3.0)
    policy.refresh()
    ours = [policy(obs) for obs in observations]
    assert ours == [int(model.predict(obs, deterministic=True)[0]) for obs in observations]


def test_ars_logs_its_episodes_and_stops_at_the_budget(classes) -> None:
    result = _run("ars", steps=333)
    frame = result.frame
    lengths = frame[frame["metric"] == "episode_length"]
    assert result.status == "ok" and len(lengths) >= 5
    assert lengths["step"].tolist() == lengths["value"].cumsum().astype(int).tolist()
    assert max(evals(result)) == 333 == result.agent.model.num_timesteps


def test_a_recurrent_class_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError) as error:
        rlcompare.register_sb3("rppo", "sb3_contrib:RecurrentPPO")
    message = str(error.value)
    for word in ("'sb3_contrib:RecurrentPPO'", "recurrent", "MlpPolicy", "MlpLstmPolicy"):
        assert word in message
    assert "rppo" not in registry._REGISTRY


# -- item B: one budget rule ---------------------------------------------------------------------

# rl-zoo3's CartPole DQN, scaled down (train_freq 256 -> 16, gradient_steps 128 -> 8).
ZOO_DQN = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 100,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 16,
    "gradient_steps": 8,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "net_arch": [16],
}


def _gradient_steps(result: rlcompare.RunResult) -> int:
    agent = result.agent
    if result.spec.algo == "dqn":
        return agent.learner.gradient_steps
    return agent.model._n_updates


@pytest.mark.parametrize("steps", [500, 512])
def test_dqn_and_sb3_dqn_take_the_same_env_and_gradient_steps(steps: int) -> None:
    """500 cuts SB3's last rollout of 16 (SB3's learn(500) took 512 steps and 8 gradient steps
    more); 512 ends on a rollout, which both train on."""
    counts = {}
    for algo in ("dqn", "sb3_dqn"):
        result = rlcompare.run(RunSpec(algo, "CartPole-v1", 0, steps=steps, hparams=ZOO_DQN))
        assert result.status == "ok"
        counts[algo] = (max(evals(result)), _gradient_steps(result))
    # Training at 112, 128, ..., the last multiple of 16 at or before the budget.
    expected = (steps, 8 * (steps // 16 - 100 // 16))
    assert counts == {"dqn": expected, "sb3_dqn": expected}


@pytest.mark.parametrize(
    ("algo", "env", "hparams", "updates"),
    [
        # 300 steps of rollouts of 64: 4 rollouts trained on (1 epoch each), the 5th cut.
        ("ppo", "CartPole-v1", {"n_steps": 64, "batch_size": 64, "n_epochs": 1}, 4),
        # train_freq 16, gradient_steps 1, learning_starts 50: phases at 64, 80, ..., 288.
        (
            "sac",
            "Pendulum-v1",
            {"learning_starts": 50, "train_freq": 16, "batch_size": 16, "net_arch": [8]},
            15,
        ),
        ("trust_trpo", "CartPole-v1", {"n_steps": 64, "batch_size": 64, "net_arch": [8]}, 4),
    ],
)
def test_a_steps_budget_is_exactly_that_many_env_steps(classes, algo, env, hparams, updates):
    result = rlcompare.run(RunSpec(algo, env, 0, steps=300, eval_every=100, hparams=hparams))
    assert result.status == "ok"
    model = result.agent.model
    assert model.num_timesteps == 300 and list(evals(result)) == [0, 100, 200, 300]
    assert model._n_updates == updates


def test_several_envs_end_at_the_vector_step_that_reaches_the_budget(classes) -> None:
    """8 envs step 8 at a time: 203 ends at 208, not at A2C's rollout end (5 x 8 = 240)."""
    result = _run("a2c", steps=203, n_envs=8, eval_every=1000)
    model = result.agent.model
    assert model.num_timesteps == 208 and list(evals(result)) == [0, 208]
    assert model._n_updates == 208 // 40


def test_an_episodes_budget_trains_on_a_rollout_that_ends_with_it() -> None:
    """PPO's rollouts of 16 on an env whose episodes last exactly 16 steps: the 3rd episode
    ends the 3rd rollout, which is trained on (before, SB3 stopped and dropped it)."""
    from test_deep_envs import IDENTITY, LENGTH

    hparams = {"n_steps": LENGTH, "batch_size": LENGTH, "n_epochs": 1}
    result = rlcompare.run(RunSpec("ppo", IDENTITY, 0, episodes=3, hparams=hparams))
    model = result.agent.model
    assert model.num_timesteps == 3 * LENGTH and model._n_updates == 3


# -- item C: the policy's own arguments --------------------------------------------------------


def test_qrdqns_n_quantiles_reaches_its_policy(classes) -> None:
    params = registry.get_algorithm("trust_qrdqn").params
    assert params["n_quantiles"].default == 200 and params["n_quantiles"].kind == "int"
    result = _run("qrdqn", steps=60, n_quantiles=7)
    quantile_net = result.agent.model.policy.quantile_net
    assert quantile_net.n_quantiles == 7
    assert quantile_net.quantile_net[-1].out_features == 2 * 7
    assert result.frame["hp.n_quantiles"].eq(7).all()


def test_a_policy_argument_is_validated_when_the_spec_is_built(classes) -> None:
    with pytest.raises(rlcompare.SpecError, match="n_quantiles"):
        RunSpec("trust_qrdqn", "CartPole-v1", 0, steps=10, hparams={"n_quantiles": "many"})


def test_policy_arguments_keep_the_class_arguments_and_ours(classes) -> None:
    """A2C's policy adds ortho_init etc.; what the class passes itself (use_sde) and what we
    set (net_arch) stay single."""
    from stable_baselines3 import A2C

    from rlcompare.algos.deep.sb3_generic import class_set_policy_arguments

    params = registry.get_algorithm("trust_a2c").params
    assert params["ortho_init"].default is True and params["log_std_init"].default == 0.0
    assert {"use_sde", "optimizer_class", "optimizer_kwargs"} <= class_set_policy_arguments(A2C)
    assert not params["use_sde"].doc.startswith("policy:")  # A2C's own argument
    result = _run("a2c", steps=40, ortho_init=False, log_std_init=-1.0, use_sde=False)
    assert result.status == "ok" and result.agent.model.policy.ortho_init is False
    frame = result.frame
    assert isinstance(frame, pd.DataFrame) and frame["hp.ortho_init"].eq(False).all()


def test_a_squashing_policy_made_settable_is_evaluated_as_predict(classes) -> None:
    """squash_output (now a hyperparameter of A2C's policy) tanh-squashes and rescales the
    action: the fast actor path, which only clips, would differ from predict."""
    spec = RunSpec(
        "trust_a2c",
        "Pendulum-v1",
        0,
        steps=40,
        eval_episodes=1,
        hparams={"use_sde": True, "squash_output": True, "net_arch": [8]},
    )
    result = rlcompare.run(spec)
    model = result.agent.model
    rng = np.random.default_rng(0)
    for obs in rng.uniform(-1, 1, size=(50, 3)).astype(np.float32):
        expected = model.predict(obs, deterministic=True)[0]
        np.testing.assert_allclose(result.agent.greedy_action(obs), expected, rtol=1e-5)
