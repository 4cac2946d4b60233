"""``bc``: behavioral cloning of a logged Dataset into a Stable-Baselines3 ActorCriticPolicy.

Supervised learning of the demonstrator's actions: cross-entropy for Discrete actions, the
Gaussian log-likelihood (SB3's diagonal Gaussian with a learned, state-independent log std)
for Box actions; Adam as SB3's policy optimizer (eps 1e-5).

Budget and step column: ``step`` counts **gradient steps**, not env steps (bc never acts in
the training env). ``steps=n`` runs n gradient steps; ``episodes=n`` runs n **epochs** over
the dataset (each a fresh shuffle cut into batches of ``batch_size``, the last one smaller),
and an evaluation schedule without ``eval_every`` then evaluates after every k-th epoch.
Rows at step 0: ``dataset_size`` (transitions) and ``demonstrator_return`` (the
demonstrator's mean episode return in the dataset); at each evaluation ``loss`` (mean
negative log-likelihood since the last one) besides the usual eval metrics.

The policy has ppo's architecture (same ``net_arch`` / ``activation_fn``), so a BC policy
saved with ``BCAgent.save_policy`` warm-starts ``ppo`` (hyperparameter ``warm_start``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import preprocess_obs

from rlcompare.algos.deep.common import load_matching_dataset
from rlcompare.algos.deep.learner import resolve_device
from rlcompare.algos.deep.ppo import policy_identity, policy_kwargs, save_policy
from rlcompare.algos.deep.sb3_common import actor_policy
from rlcompare.envs.datasets import Dataset
from rlcompare.envs.make import env_info
from rlcompare.errors import Diverged
from rlcompare.runner.context import RunContext
from rlcompare.runner.protocol import Protocol


class Constant:
    """A constant learning-rate schedule (picklable, unlike a lambda)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, progress_remaining: float) -> float:
        return self.value


class BCAgent:
    """A cloned policy.

    Attributes:
        policy: The SB3 ActorCriticPolicy.
        identity: Architecture and spaces, saved with the weights for warm starts.
    """

    def __init__(
        self,
        policy: ActorCriticPolicy,
        identity: dict,
        observation_space: gym.Space,
        action_space: gym.Space,
    ) -> None:
        self.policy = policy
        self.identity = identity
        self._act = actor_policy(policy, observation_space, action_space)

    def greedy_action(self, obs: Any) -> Any:
        """The deterministic action (argmax / Gaussian mean)."""
        return self._act(obs)

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[Any, None]:
        """Stable-Baselines3-style prediction, for ``collect_demonstrations``."""
        return self._act(obs), None

    def save_policy(self, path: str | Path) -> Path:
        """Writes the weights where ``ppo``'s ``warm_start`` can read them."""
        return save_policy(path, self.policy, self.identity)


def _batches(size: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index batches of successive shuffles; each epoch ends with a possibly smaller batch."""
    while True:
        order = rng.permutation(size)
        for start in range(0, size, batch_size):
            yield order[start : start + batch_size]


def _tensors(
    dataset: Dataset, observation_space: gym.Space, action_space: gym.Space, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    discrete_obs = isinstance(observation_space, gym.spaces.Discrete)
    obs = torch.as_tensor(
        dataset.observations.astype(np.int64 if discrete_obs else np.float32), device=device
    )
    if isinstance(action_space, gym.spaces.Discrete):
        actions = torch.as_tensor(dataset.actions.astype(np.int64), device=device)
    else:
        actions = torch.as_tensor(
            dataset.actions.astype(np.float32).reshape(len(dataset), -1), device=device
        )
    return obs, actions


def train(ctx: RunContext) -> BCAgent:
    """Trainer of ``bc`` (see the module docstring for budget and rows)."""
    hp = ctx.hp
    dataset = load_matching_dataset(ctx)
    info = env_info(ctx.spec.env, ctx.spec.env_kwargs)
    obs_space, act_space = info.observation_space, info.action_space
    device = resolve_device(hp["device"])
    # SB3 initialises its networks from torch's global generator.
    torch.manual_seed(ctx.seeds.int_seed("torch"))
    policy = ActorCriticPolicy(
        obs_space, act_space, Constant(hp["learning_rate"]), **policy_kwargs(hp)
    ).to(device)
    agent = BCAgent(policy, policy_identity(hp, obs_space, act_space), obs_space, act_space)
    observations, actions = _tensors(dataset, obs_space, act_space, device)
    per_epoch = math.ceil(len(dataset) / hp["batch_size"])
    kind, budget = ctx.spec.budget
    total = budget if kind == "steps" else budget * per_epoch
    batches = _batches(len(dataset), hp["batch_size"], ctx.seeds.rng("batches"))

    ctx.log(0, "dataset_size", len(dataset))
    ctx.log(0, "demonstrator_return", dataset.mean_return)
    losses: list[torch.Tensor] = []

    def loss_since_last_evaluation() -> dict[str, float]:
        extra = {}
        if losses:
            extra["loss"] = float(torch.stack(losses).mean())
            losses.clear()
        return extra

    # Epochs play the part of episodes in the schedule (the module docstring).
    protocol = Protocol(ctx, agent.greedy_action, loss_since_last_evaluation)
    step = 0
    with protocol.guard(lambda: step):
        protocol.start()
        for step in range(1, total + 1):
            index = torch.as_tensor(next(batches), device=device)
            x = preprocess_obs(
                observations[index], obs_space, normalize_images=policy.normalize_images
            )
            latent = policy.mlp_extractor.forward_actor(policy.pi_features_extractor(x))
            distribution = policy._get_action_dist_from_latent(latent)
            loss = -distribution.log_prob(actions[index]).mean()
            if not torch.isfinite(loss):
                raise Diverged(f"non-finite BC loss after {step - 1} gradient steps")
            policy.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            policy.optimizer.step()
            losses.append(loss.detach())
            protocol.after(step, step // per_epoch)
        protocol.finish(total)
    policy.set_training_mode(False)
    return agent
