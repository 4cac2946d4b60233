"""``sb3_dqn``: Stable-Baselines3's DQN behind our contract, the reference peer of ``dqn``.

It takes the same hyperparameter table as ``dqn`` (so one grid can name both) and rejects our
own switches (double, dueling, PER, NoisyNet, ...) unless they keep their defaults. Episodes,
evaluations and the budget follow :mod:`rlcompare.algos.deep.sb3_common`.
"""

from __future__ import annotations

from stable_baselines3 import DQN

from rlcompare.algos.deep.common import schedule_horizon
from rlcompare.algos.deep.learner import resolve_device
from rlcompare.algos.deep.sb3_common import (
    SB3Agent,
    make_vec_env,
    q_policy,
    run_protocol,
    seed_model_env,
)
from rlcompare.envs.make import env_info
from rlcompare.runner.context import RunContext


def build_model(ctx: RunContext) -> DQN:
    """The SB3 DQN of the spec, seeded from the run's ``sb3`` stream."""
    hp = ctx.hp
    max_grad_norm = hp["max_grad_norm"] if hp["max_grad_norm"] is not None else float("inf")
    model = DQN(
        "MlpPolicy",
        make_vec_env(ctx),
        learning_rate=hp["learning_rate"],
        buffer_size=hp["buffer_size"],
        learning_starts=hp["learning_starts"],
        batch_size=hp["batch_size"],
        tau=hp["tau"],
        gamma=hp["gamma"],
        train_freq=hp["train_freq"],
        gradient_steps=hp["gradient_steps"],
        n_steps=hp["n_steps"],
        target_update_interval=hp["target_update_interval"],
        exploration_fraction=hp["exploration_fraction"],
        exploration_initial_eps=hp["exploration_initial_eps"],
        exploration_final_eps=hp["exploration_final_eps"],
        max_grad_norm=max_grad_norm,
        policy_kwargs={"net_arch": list(hp["net_arch"])},
        seed=ctx.seeds.int_seed("sb3"),
        device=resolve_device(hp["device"]),
    )
    seed_model_env(ctx, model)
    return model


def train(ctx: RunContext) -> SB3Agent:
    """Trainer of ``sb3_dqn``."""
    horizon = schedule_horizon(ctx.spec)
    model = build_model(ctx)
    info = env_info(ctx.spec.env, ctx.spec.env_kwargs)
    policy = q_policy(model.policy, info.observation_space)
    run_protocol(ctx, model, policy, model.policy, horizon)
    return SB3Agent(model, policy)
