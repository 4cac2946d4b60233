"""``ppo``: Stable-Baselines3's PPO with our evaluation protocol and rows.

Hyperparameters are SB3's own names and defaults (``PPO.__init__`` and the policy's
``net_arch``, ``activation_fn``, ``ortho_init``, ``log_std_init``), validated before training;
``device`` defaults to cpu (reproducible) instead of SB3's auto. Works on Discrete and Box
action spaces. ``n_envs`` > 1 collects with a DummyVecEnv. Built and run by the generic SB3
trainer (:class:`rlcompare.algos.deep.sb3_generic.SB3Trainer`) with two hooks: the policy
kwargs below and the warm start.

Warm start from behavioral cloning: train ``bc``, save its policy with
``result.agent.save_policy(path)``, and run ``ppo`` with ``warm_start=path`` and the same
``net_arch`` / ``activation_fn``. The actor (features, policy MLP, action head, log std) is
loaded; the critic keeps its fresh initialisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import PPO

from rlcompare.algos.deep.sb3_generic import SB3Trainer
from rlcompare.envs.make import env_info
from rlcompare.errors import SpecError
from rlcompare.runner.context import RunContext

ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
POLICY_FORMAT = "rlcompare.actor_critic_policy/1"
# Keys of an ActorCriticPolicy state dict that belong to the critic (not warm-started).
_CRITIC_PREFIXES = ("value_net.", "mlp_extractor.value_net.", "vf_features_extractor.")


def policy_kwargs(hp: Any) -> dict[str, Any]:
    """``policy_kwargs`` of an SB3 ActorCriticPolicy from ppo/bc hyperparameters."""
    return {
        "net_arch": list(hp["net_arch"]),
        "activation_fn": ACTIVATIONS[hp["activation_fn"]],
        "ortho_init": hp["ortho_init"],
        "log_std_init": hp["log_std_init"],
    }


def policy_identity(hp: Any, observation_space: gym.Space, action_space: gym.Space) -> dict:
    """What must agree between a saved policy and the PPO it warm-starts."""
    return {
        "net_arch": list(hp["net_arch"]),
        "activation_fn": hp["activation_fn"],
        "observation_space": str(observation_space),
        "action_space": str(action_space),
    }


def save_policy(path: str | Path, policy: torch.nn.Module, identity: dict) -> Path:
    """Writes an ActorCriticPolicy's weights with what ``load_warm_start`` checks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": POLICY_FORMAT, **identity, "state_dict": policy.state_dict()}, path)
    return path


def load_warm_start(path: str, policy: torch.nn.Module, identity: dict) -> None:
    """Loads the actor of a saved policy into ``policy``.

    Raises:
        SpecError: the file is missing, not a saved policy, or of another architecture/env.
    """
    if not Path(path).is_file():
        raise SpecError(f"warm_start file {path!r} does not exist")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a bad input
        raise SpecError(f"warm_start file {path!r} is not a saved policy: {error}") from error
    if not isinstance(saved, dict) or saved.get("format") != POLICY_FORMAT:
        raise SpecError(f"warm_start file {path!r} is not a policy saved by BCAgent.save_policy")
    for key, value in identity.items():
        if saved.get(key) != value:
            raise SpecError(
                f"warm_start policy has {key} = {saved.get(key)!r}; valid: {value!r} (this run's)"
            )
    actor = {
        name: tensor
        for name, tensor in saved["state_dict"].items()
        if not name.startswith(_CRITIC_PREFIXES)
    }
    missing, unexpected = policy.load_state_dict(actor, strict=False)
    stray = [name for name in missing if not name.startswith(_CRITIC_PREFIXES)]
    if stray or unexpected:
        raise SpecError(f"warm_start policy does not fit: missing {stray}, unexpected {unexpected}")


def warm_start(ctx: RunContext, model: PPO) -> None:
    """Loads the ``warm_start`` policy's actor, if any, into the freshly built model."""
    path = ctx.hp["warm_start"]
    if path is not None:
        info = env_info(ctx.spec.env, ctx.spec.env_kwargs)
        identity = policy_identity(ctx.hp, info.observation_space, info.action_space)
        load_warm_start(path, model.policy, identity)


# The trainer of ``ppo``: the generic SB3 trainer with PPO's policy kwargs and warm start.
train = SB3Trainer("stable_baselines3:PPO", policy_kwargs=policy_kwargs, after_build=warm_start)
