"""Running Stable-Baselines3 models under our protocol, shared by ``sb3_dqn`` and ``ppo``.

SB3 runs its own loop; ``ProtocolCallback`` makes it produce our rows: every finished
training episode (``episode_return`` / ``episode_length`` at the cumulative env step), and
greedy evaluations on the same schedule as ``loop.drive`` (step 0, every ``eval_every`` env
steps or every k-th episode, the end). A due evaluation runs once any training at that step
is done (SB3 trains between rollouts), as in ``loop.drive``. The budget is exact: the
callback stops SB3 when the env steps (or episodes) are spent, and a partial last rollout
is not trained on.

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
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs
from stable_baselines3.common.vec_env import DummyVecEnv

from rlcompare.algos.deep.common import ObsEncoder, schedule_horizon
from rlcompare.errors import Diverged, SpecError
from rlcompare.runner.context import RunContext

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


def check_finite(module: torch.nn.Module, step: int) -> None:
    """Raises Diverged when a parameter of ``module`` is NaN or infinite."""
    for name, param in module.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise Diverged(f"parameter {name} became non-finite by env step {step}")


class ProtocolCallback(BaseCallback):
    """Logs episodes, evaluates on the run's schedule and enforces the budget.

    Args:
        ctx: The run context.
        policy: Greedy ``obs -> action`` of the model being trained.
        network: Module whose parameters must stay finite (checked at each evaluation).
    """

    def __init__(self, ctx: RunContext, policy: Policy, network: torch.nn.Module) -> None:
        super().__init__(verbose=0)
        self.ctx = ctx
        self.policy_fn = policy
        self.network = network
        self.kind, self.budget = ctx.spec.budget
        self.episodes = 0
        self.returns: np.ndarray | None = None
        self.lengths: np.ndarray | None = None
        self.pending: int | None = None

    def evaluate(self, step: int) -> None:
        """Evaluates the greedy policy now, recorded at ``step``."""
        check_finite(self.network, step)
        self.ctx.evaluate(step, self.policy_fn)

    def _flush(self) -> None:
        if self.pending is not None:
            step, self.pending = self.pending, None
            self.evaluate(step)

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
        previous = step - len(rewards)
        due = False
        for index in np.flatnonzero(dones):
            self.episodes += 1
            self.ctx.log_episode(step, self.episodes, self.returns[index], self.lengths[index])
            self.returns[index], self.lengths[index] = 0.0, 0
            due = due or self.ctx.schedule.after_episode(self.episodes)
        every = self.ctx.schedule.every_steps
        if every is not None and step // every > previous // every:
            due = True
        spent = (step if self.kind == "steps" else self.episodes) >= self.budget
        if due and not spent:
            self.pending = step
        return not spent

    def finish(self) -> None:
        """The final evaluation, at the env steps actually taken."""
        self.pending = None
        self.evaluate(self.model.num_timesteps)


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
        network: Module whose parameters must stay finite.
        total_timesteps: What SB3's progress-based schedules span (the run's horizon).
    """
    callback = ProtocolCallback(ctx, policy, network)
    step = 0
    try:
        check_finite(network, 0)
        ctx.evaluate(0, policy)
        model.learn(total_timesteps=total_timesteps, callback=callback, progress_bar=False)
        step = model.num_timesteps
        callback.finish()
    except Diverged as reason:
        ctx.mark_diverged(max(step, model.num_timesteps), str(reason))
    except ValueError as error:
        # torch.distributions rejects NaN logits / means: the policy diverged.
        if "nan" not in str(error).lower():
            raise
        ctx.mark_diverged(model.num_timesteps, f"non-finite policy output: {error}")


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
