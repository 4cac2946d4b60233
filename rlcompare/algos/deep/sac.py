"""``sac``: Stable-Baselines3's SAC with our evaluation protocol and rows.

The off-policy actor-critic for continuous actions: like Q-learning it learns action values
from replayed experience, while optimizing a stochastic (maximum-entropy) policy. The greedy
action for evaluation is the actor's mean action, squashed and rescaled to the Box.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3 import SAC

from rlcompare.algos.deep.learner import resolve_device
from rlcompare.algos.deep.sb3_common import (
    SB3Agent,
    make_vec_env,
    run_protocol,
    seed_model_env,
    total_timesteps,
)
from rlcompare.runner.context import RunContext


def mean_action(model: SAC) -> Any:
    """``obs -> action``: the deterministic actor output in the env's action units."""
    policy = model.policy

    def act(obs: Any) -> np.ndarray:
        with torch.no_grad():
            tensor = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(1, -1)
            scaled = policy.actor(tensor.to(policy.device), deterministic=True)[0]
        return policy.unscale_action(scaled.cpu().numpy())

    return act


def train(ctx: RunContext) -> SB3Agent:
    """Trainer of ``sac``."""
    hp = ctx.hp
    model = SAC(
        "MlpPolicy",
        make_vec_env(ctx, 1),
        learning_rate=hp["learning_rate"],
        buffer_size=hp["buffer_size"],
        learning_starts=hp["learning_starts"],
        batch_size=hp["batch_size"],
        tau=hp["tau"],
        gamma=hp["gamma"],
        train_freq=hp["train_freq"],
        gradient_steps=hp["gradient_steps"],
        ent_coef=hp["ent_coef"],
        target_update_interval=hp["target_update_interval"],
        target_entropy=hp["target_entropy"],
        use_sde=hp["use_sde"],
        policy_kwargs={"net_arch": list(hp["net_arch"])},
        seed=ctx.seeds.int_seed("sb3"),
        device=resolve_device(hp["device"]),
    )
    seed_model_env(ctx, model)
    policy = mean_action(model)
    run_protocol(ctx, model, policy, model.policy, total_timesteps(ctx))
    return SB3Agent(model, policy)
