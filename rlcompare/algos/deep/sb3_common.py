"""Running Stable-Baselines3 models under our protocol, for every SB3 algorithm (``ppo``,
``sac``, ``sb3_dqn`` and those of ``register_sb3``: :mod:`rlcompare.algos.deep.sb3_generic`).

SB3 runs its own loop; ``ProtocolCallback`` reports it to :class:`rlcompare.runner.protocol.
Protocol` and makes it produce our rows: every finished training episode (``episode_return`` /
``episode_length`` at the cumulative env step), and greedy evaluations by the protocol's rules
(step 0, the schedule, the end; with n_envs > 1 an evaluation is due at the first vector step
at or past a multiple). A due evaluation runs once any training at that step is done (SB3
trains between rollouts), recorded at that step.

The budget is the protocol's one rule (:mod:`rlcompare.runner.protocol`, "The budget"):

* ``steps=N``: exactly N env steps, as our own loops take (with n_envs > 1 envs in lockstep:
  the vector step that reaches N, the first multiple of n_envs at or past N). SB3's ``learn``
  would finish the rollout it is in (up to ``n_steps * n_envs`` or ``train_freq`` - 1 steps
  more), so the callback stops it at N. A rollout that ends at or before N is trained on as
  SB3 trains every rollout; the rollout cut at N is not (the steps are taken and logged, the
  update they would have fed is not made). So ``dqn`` and ``sb3_dqn`` with the same settings
  take the same env steps and the same gradient steps.
* ``episodes=N``: SB3 has no episode budget of its own; the callback stops SB3 the way its
  ``StopTrainingOnMaxEpisodes`` does, once N episodes have finished over all envs, by the
  same rule (the rollout in progress is trained on only when it ends on that step). Exactly
  N episodes are recorded: when several envs finish on the vector step that reaches N, the
  first ones in env order count.

Classes whose loop ignores a callback's stop (sb3-contrib's ARS) are stopped by an exception
from the callback at the same step; the update in progress there is not made.

The greedy policy is evaluated on the model's current weights: the fast numpy forward reads
views of the parameters, and some classes (sb3-contrib's TRPO) replace ``param.data`` instead
of writing into it, which leaves old views behind. :class:`LivePolicy` rebuilds the forward
before every evaluation.

SB3 draws from numpy's and torch's global generators, so these wrappers seed them through
SB3's own ``seed`` argument, from the run's ``sb3`` stream; the training env is reset with
the run's ``env`` seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs
from stable_baselines3.common.utils import should_collect_more_steps
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
    views of the modules' parameter memory as it is now, or None when the chain has anything
    else or lives off the CPU. One observation at a time this is several times faster than
    calling the torch modules. The views follow in-place updates (SB3's optimizers) but not a
    rebound ``param.data`` (TRPO): rebuild it before each evaluation (:class:`LivePolicy`)."""
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
    ``predict(obs, deterministic=True)`` (slower, always correct). Each fast path equals
    ``predict(obs, deterministic=True)`` on the weights it was built from.

    Raises:
        SpecError: a recurrent policy, whose action depends on a hidden state carried across
            an episode (one observation does not determine it).
    """
    policy = model.policy
    if hasattr(policy, "lstm_actor"):
        raise SpecError(
            f"{type(model).__name__} has a recurrent policy ({type(policy).__name__}); valid: a "
            "non-recurrent class (the greedy evaluation maps one observation to one action)"
        )
    if isinstance(policy, ActorCriticPolicy) and not policy.squash_output:
        # (A squashing policy tanh-squashes and rescales; predict below does that.)
        return actor_policy(policy, observation_space, action_space)
    if isinstance(policy, DQNPolicy):
        return q_policy(policy, observation_space)
    if isinstance(policy, SACPolicy):
        return mean_action(model)
    if isinstance(action_space, gym.spaces.Discrete):
        return lambda obs: int(model.predict(obs, deterministic=True)[0])
    return lambda obs: model.predict(obs, deterministic=True)[0]


class LivePolicy:
    """The greedy policy of a model, rebuilt from its current weights by ``refresh``.

    Args:
        build: ``() -> policy`` from the model's weights as they are now (e.g.
            ``lambda: greedy_policy(model, obs_space, act_space)``); called once here.
    """

    def __init__(self, build: Callable[[], Policy]) -> None:
        self._build = build
        self._act = build()

    def refresh(self) -> None:
        """Rebuilds the policy (cheap: a few numpy views), so it sees rebound parameters."""
        self._act = self._build()

    def __call__(self, obs: Any) -> Any:
        return self._act(obs)


def check_finite(module: torch.nn.Module, step: int) -> None:
    """Raises Diverged when a parameter of ``module`` is NaN or infinite."""
    for name, param in module.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise Diverged(f"parameter {name} became non-finite by env step {step}")


class BudgetReached(Exception):
    """Raised by :class:`ProtocolCallback` to stop SB3 where returning False cannot: at the
    start of the rollout after the last one (SB3 would take its first step), and inside a
    loop that ignores a callback's stop (ARS)."""


class ProtocolCallback(BaseCallback):
    """Logs episodes, reports progress to the protocol and ends the run at the budget (the
    module docstring's rule).

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
        self.max_steps = amount if kind == "steps" else None
        self.reached = False
        self.episodes = 0
        self.returns: np.ndarray | None = None
        self.lengths: np.ndarray | None = None
        self.pending: int | None = None

    def _flush(self) -> None:
        if self.pending is not None:
            step, self.pending = self.pending, None
            self.protocol.evaluate(step)

    def _on_rollout_start(self) -> None:
        if self.reached:
            raise BudgetReached  # the last rollout was trained on; take no step more
        self._flush()  # after the training phase that ended the last rollout

    def _on_step(self) -> bool:
        if self.reached:
            raise BudgetReached  # a class that took a step after a stop: end it here
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
        if self.episodes == self.max_episodes or (
            self.max_steps is not None and step >= self.max_steps
        ):
            return self._stop(dones)  # the end evaluation follows the last training
        if due:
            self.pending = step
        return True

    def _stop(self, dones: np.ndarray) -> bool:
        """Ends the run at this step: a rollout that ends here is trained on first."""
        self.reached = True
        if self._rollout_ends_here(dones):
            return True  # SB3 trains on it; learn(N) ends or the next rollout start raises
        if isinstance(self.model, (OnPolicyAlgorithm, OffPolicyAlgorithm)):
            return False  # SB3 drops the partial rollout and ends learn
        raise BudgetReached

    def _rollout_ends_here(self, dones: np.ndarray) -> bool:
        """Whether SB3's rollout is complete with this step, from its collect_rollouts
        locals (on-policy: ``n_steps`` counts the steps before this one; off-policy:
        ``num_collected_steps`` includes it and ``num_collected_episodes`` does not yet)."""
        local = self.locals
        if "n_rollout_steps" in local and "n_steps" in local:
            return local["n_steps"] + 1 >= local["n_rollout_steps"]
        if "train_freq" in local and "num_collected_steps" in local:
            episodes = local["num_collected_episodes"] + int(dones.sum())
            return not should_collect_more_steps(
                local["train_freq"], local["num_collected_steps"], episodes
            )
        return False


def learn_timesteps(ctx: RunContext, model: BaseAlgorithm, horizon: int) -> int:
    """What to pass to SB3's ``learn``: the horizon its schedules span, which for a steps
    budget is the budget itself (SB3 ends at the rollout that reaches it; the callback ends a
    rollout that would pass it). With an episodes budget the callback must stop SB3 first:
    ``horizon`` (episodes x time limit) counts steps over all envs, which n envs in lockstep
    can spend with fewer than the episodes finished, so SB3 gets n times as many."""
    if ctx.spec.budget[0] == "steps":
        return horizon
    return min(horizon * model.n_envs, 2**62)


def run_protocol(
    ctx: RunContext,
    model: BaseAlgorithm,
    policy: LivePolicy,
    network: torch.nn.Module,
    total_timesteps: int,
) -> None:
    """Trains ``model`` with SB3's ``learn`` under our budget, schedule and rows.

    Args:
        ctx: The run context.
        model: A freshly built SB3 model.
        policy: Its greedy ``obs -> action``, refreshed before each evaluation.
        network: Module whose parameters must stay finite (checked at each evaluation).
        total_timesteps: What SB3's progress-based schedules span (the run's horizon).
    """

    def check(step: int) -> None:
        check_finite(network, step)
        policy.refresh()  # the weights as they are now, whatever the class did to them

    protocol = Protocol(ctx, policy, check=check)
    callback = ProtocolCallback(ctx, protocol)
    with protocol.guard(lambda: model.num_timesteps), _step_locals(model):
        protocol.start()
        try:
            model.learn(
                total_timesteps=learn_timesteps(ctx, model, total_timesteps),
                callback=callback,
                progress_bar=False,
            )
        except BudgetReached:
            pass  # the callback ended the run at the budget
        except ValueError as error:
            # torch.distributions rejects NaN logits / means: the policy diverged.
            if "nan" not in str(error).lower():
                raise
            raise Diverged(f"non-finite policy output: {error}") from error
        protocol.finish(model.num_timesteps)


@contextmanager
def _step_locals(model: BaseAlgorithm) -> Iterator[None]:
    """ARS steps its envs inside ``evaluate_policy`` and calls the callback without the step's
    locals (rewards, dones): hand them over for the block, so its episodes are logged like
    every other class's. Other classes are left as they are."""
    trigger = getattr(model, "_trigger_callback", None)
    if trigger is None:
        yield
        return

    def with_locals(
        step_locals: dict[str, Any],
        step_globals: dict[str, Any],
        callback: BaseCallback,
        n_envs: int,
    ) -> None:
        callback.update_locals(step_locals)
        trigger(step_locals, step_globals, callback=callback, n_envs=n_envs)

    model._trigger_callback = with_locals  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del model._trigger_callback  # type: ignore[attr-defined]


class SB3Agent:
    """A trained SB3 model behind our agent interface.

    Attributes:
        model: The SB3 model (``model.policy`` holds the networks).
    """

    def __init__(self, model: BaseAlgorithm, policy: LivePolicy) -> None:
        self.model = model
        self._policy = policy
        self._seen = model.num_timesteps

    def greedy_action(self, obs: Any) -> Any:
        """The deterministic action of the current weights (refreshed when the model has
        trained since, e.g. by a further ``model.learn``)."""
        if self.model.num_timesteps != self._seen:
            self._seen = self.model.num_timesteps
            self._policy.refresh()
        return self._policy(obs)

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[Any, None]:
        """Stable-Baselines3-style prediction (deterministic), for ``collect_demonstrations``."""
        return self.greedy_action(obs), None


def total_timesteps(ctx: RunContext) -> int:
    """SB3's ``total_timesteps`` for a model whose schedules are constant (PPO): the horizon
    of ``schedule_horizon``, or an effectively endless count when it is unknown."""
    try:
        return schedule_horizon(ctx.spec)
    except SpecError:
        return 2**62
