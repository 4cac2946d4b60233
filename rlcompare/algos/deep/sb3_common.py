"""Running Stable-Baselines3 models under our protocol, for every SB3 algorithm (``ppo``,
``sac``, ``sb3_dqn`` and those of ``register_sb3``: :mod:`rlcompare.algos.deep.sb3_generic`).

SB3 runs its own loop; ``ProtocolCallback`` reports it to :class:`rlcompare.runner.protocol.
Protocol` and makes it produce our rows: every finished training episode (``episode_return`` /
``episode_length`` at the cumulative env step), and greedy evaluations by the protocol's rules
(step 0, the schedule, the end; with n_envs > 1 an evaluation is due at the first vector step
at or past a multiple). A due evaluation runs once any training at that step is done (SB3
trains between rollouts), recorded at that step.

The budget means what SB3 means by it:

* ``steps=N``: exactly SB3's ``learn(total_timesteps=N)``. SB3 stops by itself and finishes
  the rollout it is in, so the run ends at the first multiple of the rollout (PPO:
  ``n_steps * n_envs``; off-policy: ``train_freq``) at or past N, with the last rollout
  trained on like every other; the end evaluation is at the steps actually taken.
* ``episodes=N``: SB3 has no episode budget of its own; the callback stops SB3 the way its
  ``StopTrainingOnMaxEpisodes`` does, once N episodes have finished over all envs (the
  partial last rollout is not trained on). Exactly N episodes are recorded: when several
  envs finish on the vector step that reaches N, the first ones in env order count.

SB3 draws from numpy's and torch's global generators, so these wrappers seed them through
SB3's own ``seed`` argument, from the run's ``sb3`` stream; the training env is reset with
the run's ``env`` seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy

from rlcompare.algos.deep.common import ObsEncoder, schedule_horizon
from rlcompare.errors import Diverged, SpecError
from rlcompare.runner.context import RunContext
from rlcompare.runner.protocol import Protocol

Policy = Callable[[Any], Any]


def make_vec_env(ctx: RunContext, n_envs: int = 1) -> DummyVecEnv:
    """``n_envs`` training envs of the spec in a DummyVecEnv (deterministic, one process)."""
    return DummyVecEnv([ctx.make_env for _ in range(n_envs)])


def seed_model_env(ctx: RunContext, model: BaseAlgorithm) -> None:
    """Seeds the model's training envs from the run's ``env`` stream (env i: seed + i)."""
    model.get_env().seed(ctx.env_seed)  # type: ignore[union-attr]


def _obs_tensor(obs: Any, space: gym.Space, device: torch.device) -> torch.Tensor:
    dtype = np.int64 if isinstance(space, gym.spaces.Discrete) else np.float32
    return torch.as_tensor(np.asarray(obs, dtype=dtype)[None], device=device)


_NUMPY_ACTIVATIONS = {
    torch.nn.ReLU: lambda h: np.maximum(h, 0.0, out=h),
    torch.nn.Tanh: lambda h: np.tanh(h, out=h),
}


def numpy_mlp(
    modules: list[torch.nn.Module], observation_space: gym.Space
) -> Callable[[Any], np.ndarray] | None:
    """``obs -> outputs`` of a chain of Flatten/Linear/ReLU/Tanh modules, evaluated in numpy on
    views of the modules' own parameter memory (so it follows training), or None when the
    chain has anything else or lives off the CPU. One observation at a time this is several
    times faster than calling the torch modules."""
    if is_image_space(observation_space):
        return None  # SB3 scales image pixels; keep its own preprocessing
    steps: list[tuple[np.ndarray, np.ndarray] | Callable[[np.ndarray], np.ndarray]] = []
    leaves = [m for module in modules for m in module.modules() if not list(m.children())]
    for module in leaves:
        if isinstance(module, torch.nn.Flatten):
            continue
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            if module.weight.device.type != "cpu":
                return None
            steps.append((module.weight.detach().numpy().T, module.bias.detach().numpy()))
        elif type(module) in _NUMPY_ACTIVATIONS:
            steps.append(_NUMPY_ACTIVATIONS[type(module)])
        else:
            return None
    encoder = ObsEncoder(observation_space)
    scratch = np.zeros(encoder.dim, dtype=np.float32)

    def forward(obs: Any) -> np.ndarray:
        h = encoder.encode_fast(obs, scratch)
        for step in steps:
            if isinstance(step, tuple):
                h = h @ step[0]
                h += step[1]
            else:
                step(h)
        return h

    return forward


def q_policy(policy: Any, observation_space: gym.Space) -> Policy:
    """Greedy action of an SB3 DQN policy: one forward of its Q-network, no ``predict``."""
    q_net = policy.q_net
    fast = numpy_mlp([q_net.features_extractor, q_net.q_net], observation_space)
    if fast is not None:
        return lambda obs: int(fast(obs).argmax())
    device = policy.device

    def act(obs: Any) -> int:
        with torch.no_grad():
            return int(q_net(_obs_tensor(obs, observation_space, device)).argmax())

    return act


def actor_policy(policy: Any, observation_space: gym.Space, action_space: gym.Space) -> Policy:
    """Deterministic action of an SB3 ActorCriticPolicy (argmax logits / Gaussian mean,
    clipped to the Box), computed from the actor network alone."""
    device = policy.device
    discrete = isinstance(action_space, gym.spaces.Discrete)
    fast = numpy_mlp(
        [policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net],
        observation_space,
    )

    def actor(obs: Any) -> np.ndarray:
        with torch.no_grad():
            x = preprocess_obs(
                _obs_tensor(obs, observation_space, device),
                observation_space,
                normalize_images=policy.normalize_images,
            )
            latent = policy.mlp_extractor.forward_actor(policy.pi_features_extractor(x))
            return policy.action_net(latent)[0].cpu().numpy()

    forward = fast if fast is not None else actor

    def act(obs: Any) -> Any:
        out = forward(obs)
        if discrete:
            return int(out.argmax())
        return np.clip(out.reshape(action_space.shape), action_space.low, action_space.high)

    return act


def mean_action(model: BaseAlgorithm) -> Policy:
    """``obs -> action`` of a SAC policy: the deterministic actor output (its mean action,
    squashed) in the env's action units."""
    policy = model.policy

    def act(obs: Any) -> np.ndarray:
        with torch.no_grad():
            tensor = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(1, -1)
            scaled = policy.actor(tensor.to(policy.device), deterministic=True)[0]
        return policy.unscale_action(scaled.cpu().numpy())

    return act


def greedy_policy(
    model: BaseAlgorithm, observation_space: gym.Space, action_space: gym.Space
) -> Policy:
    """The greedy ``obs -> action`` of an SB3 model, by its policy's type: an actor-critic's
    actor alone, a DQN's Q-network, a SAC actor's mean; any other policy through SB3's own
    ``predict(obs, deterministic=True)`` (slower, always correct)."""
    policy = model.policy
    if isinstance(policy, ActorCriticPolicy):
        return actor_policy(policy, observation_space, action_space)
    if isinstance(policy, DQNPolicy):
        return q_policy(policy, observation_space)
    if isinstance(policy, SACPolicy):
        return mean_action(model)
    if isinstance(action_space, gym.spaces.Discrete):
        return lambda obs: int(model.predict(obs, deterministic=True)[0])
    return lambda obs: model.predict(obs, deterministic=True)[0]


def check_finite(module: torch.nn.Module, step: int) -> None:
    """Raises Diverged when a parameter of ``module`` is NaN or infinite."""
    for name, param in module.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise Diverged(f"parameter {name} became non-finite by env step {step}")


class ProtocolCallback(BaseCallback):
    """Logs episodes, reports progress to the protocol and enforces an episodes budget.

    Args:
        ctx: The run context.
        protocol: The run's protocol (evaluates the model being trained).
    """

    def __init__(self, ctx: RunContext, protocol: Protocol) -> None:
        super().__init__(verbose=0)
        self.ctx = ctx
        self.protocol = protocol
        kind, amount = ctx.spec.budget
        self.max_episodes = amount if kind == "episodes" else None
        self.episodes = 0
        self.returns: np.ndarray | None = None
        self.lengths: np.ndarray | None = None
        self.pending: int | None = None

    def _flush(self) -> None:
        if self.pending is not None:
            step, self.pending = self.pending, None
            self.protocol.evaluate(step)

    def _on_rollout_start(self) -> None:
        self._flush()  # after the training phase that ended the last rollout

    def _on_step(self) -> bool:
        self._flush()
        rewards = np.asarray(self.locals["rewards"], dtype=np.float64)
        dones = np.asarray(self.locals["dones"], dtype=bool)
        if self.returns is None:
            self.returns = np.zeros(len(rewards))
            self.lengths = np.zeros(len(rewards), dtype=np.int64)
        self.returns += rewards
        self.lengths += 1
        step = self.num_timesteps
        for index in np.flatnonzero(dones):
            if self.episodes == self.max_episodes:
                break  # envs after the one that reached the budget: not counted
            self.episodes += 1
            self.ctx.log_episode(step, self.episodes, self.returns[index], self.lengths[index])
            self.returns[index], self.lengths[index] = 0.0, 0
        due = self.protocol.due(step, self.episodes)
        if self.episodes == self.max_episodes:
            return False  # SB3 stops here; the end evaluation follows
        if due:
            self.pending = step
        return True


def learn_timesteps(ctx: RunContext, model: BaseAlgorithm, horizon: int) -> int:
    """What to pass to SB3's ``learn``: the horizon its schedules span, which for a steps
    budget is the budget itself. With an episodes budget the callback must stop SB3 first:
    ``horizon`` (episodes x time limit) counts steps over all envs, which n envs in lockstep
    can spend with fewer than the episodes finished, so SB3 gets n times as many."""
    if ctx.spec.budget[0] == "steps":
        return horizon
    return min(horizon * model.n_envs, 2**62)


def run_protocol(
    ctx: RunContext,
    model: BaseAlgorithm,
    policy: Policy,
    network: torch.nn.Module,
    total_timesteps: int,
) -> None:
    """Trains ``model`` with SB3's ``learn`` under our budget, schedule and rows.

    Args:
        ctx: The run context.
        model: A freshly built SB3 model.
        policy: Its greedy ``obs -> action``.
        network: Module whose parameters must stay finite (checked at each evaluation).
        total_timesteps: What SB3's progress-based schedules span (the run's horizon).
    """
    protocol = Protocol(ctx, policy, check=lambda step: check_finite(network, step))
    callback = ProtocolCallback(ctx, protocol)
    with protocol.guard(lambda: model.num_timesteps):
        protocol.start()
        try:
            model.learn(
                total_timesteps=learn_timesteps(ctx, model, total_timesteps),
                callback=callback,
                progress_bar=False,
            )
        except ValueError as error:
            # torch.distributions rejects NaN logits / means: the policy diverged.
            if "nan" not in str(error).lower():
                raise
            raise Diverged(f"non-finite policy output: {error}") from error
        protocol.finish(model.num_timesteps)


class SB3Agent:
    """A trained SB3 model behind our agent interface.

    Attributes:
        model: The SB3 model (``model.policy`` holds the networks).
    """

    def __init__(self, model: BaseAlgorithm, policy: Policy) -> None:
        self.model = model
        self._policy = policy

    def greedy_action(self, obs: Any) -> Any:
        """The deterministic action."""
        return self._policy(obs)

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[Any, None]:
        """Stable-Baselines3-style prediction (deterministic), for ``collect_demonstrations``."""
        return self._policy(obs), None


def total_timesteps(ctx: RunContext) -> int:
    """SB3's ``total_timesteps`` for a model whose schedules are constant (PPO): the horizon
    of ``schedule_horizon``, or an effectively endless count when it is unknown."""
    try:
        return schedule_horizon(ctx.spec)
    except SpecError:
        return 2**62
