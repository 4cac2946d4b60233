"""``mpc``: model-predictive control on a learned dynamics model (Box actions).

The model-based contender: instead of learning values or a policy, learn what the env does and
plan through it at every step.

- Uniformly random actions for the first ``random_steps`` env steps.
- Every transition is kept. Every ``train_every`` env steps (and once when the random steps
  end) an ensemble of ``ensemble_size`` MLPs (:mod:`rlcompare.algos.deep.mpc_model`) is trained
  for ``model_epochs`` epochs on all of them, continuing from its previous weights, to predict
  the change of the observation and the reward (or the env's own reward function with
  ``learned_reward = False``, from ``mpc_params.ENV_REWARDS``).
- Each step a sampling planner (:mod:`rlcompare.algos.deep.mpc_planner`, ``cem`` or ``mppi``)
  refines a ``horizon``-step action sequence, warm-started from the previous step's plan
  shifted by one (reset at the end of an episode), and the first action is taken. While
  training, candidate i is scored by its undiscounted return predicted by member i mod
  ``ensemble_size`` alone (PETS' TS-infinity with one particle: model disagreement explores,
  and a step costs one model forward per candidate; any population works, members beyond it
  score padding that is dropped); termination is not modelled. The observation coordinates
  that ``angle_pairs`` names as (cos, sin) of an angle (``'env'``: the env's pairs in
  ``mpc_params.ENV_ANGLE_PAIRS``) are projected back onto the unit circle after every model
  step, which predicts each coordinate's change on its own.
- The greedy (evaluation) action is the planner's first action on the mean model (the members'
  predictions averaged at every step: ``ensemble_size`` times the forwards of a behaviour
  step, so evaluation episodes dominate a run's cost), with the planner noise reseeded to a
  fixed seed at every call, so it depends only on the observation, the model and the
  evaluation's warm start, which is reset at the start of every evaluation episode (as PETS
  resets its plan per episode): two evaluation episodes from the same state act alike. Before
  the model has been trained it is the middle of the action Box.

Metrics at each evaluation: ``model_loss`` (mean squared error in normalised units over the
last training epoch) and ``planning_ms`` (wall milliseconds per behaviour planning call since
the previous evaluation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcompare.algos.deep.learner import resolve_device
from rlcompare.algos.deep.mpc_model import EnsembleModel, TransitionStore
from rlcompare.algos.deep.mpc_params import ENV_REWARDS, angle_pairs
from rlcompare.algos.deep.mpc_planner import cem, mppi, shifted
from rlcompare.envs.make import env_info, make_env
from rlcompare.runner.context import RunContext
from rlcompare.runner.loop import drive
from rlcompare.runner.schema import Transition, TransitionLearner
from rlcompare.seeding import RunSeeds

RewardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# A predicted (cos, sin) pair with a smaller radius than this is divided by it instead.
MIN_RADIUS = 1e-6


class MPCAgent(TransitionLearner):
    """A learned-model MPC step agent for ``loop.drive`` (semantics in the module docstring).

    Args:
        hp: Resolved ``mpc`` hyperparameters.
        observation_space: Box.
        action_space: Bounded Box.
        seeds: The run's seeds (streams ``explore``, ``model``, ``planner``, ``eval_planner``).
        reward_fn: The env's reward of (obs, action in env units) on tensors; None = learned.
        capacity: Transitions to allocate room for up front (the store grows past it).
        angle_pairs: (cos, sin) index pairs of the observation kept on the unit circle in
            the model's rollouts.
    """

    def __init__(
        self,
        hp: Mapping[str, Any],
        observation_space: gym.Space,
        action_space: gym.Space,
        seeds: RunSeeds,
        reward_fn: RewardFn | None = None,
        capacity: int = 1024,
        angle_pairs: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.hp = dict(hp)
        self.device = resolve_device(hp["device"])
        self.obs_dim = int(np.prod(observation_space.shape))
        self.act_dim = int(np.prod(action_space.shape))
        self.action_shape = action_space.shape
        self.action_dtype = action_space.dtype
        low = np.asarray(action_space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(action_space.high, dtype=np.float64).reshape(-1)
        self.center, self.half = (high + low) / 2, (high - low) / 2
        self._center_t = torch.as_tensor(self.center, dtype=torch.float32, device=self.device)
        self._half_t = torch.as_tensor(self.half, dtype=torch.float32, device=self.device)
        self.reward_fn = reward_fn
        pairs = torch.as_tensor(list(angle_pairs), dtype=torch.long, device=self.device)
        self._angle_pairs = pairs.view(-1, 2) if len(angle_pairs) else None
        self.model = EnsembleModel(
            self.obs_dim,
            self.act_dim,
            hp["hidden"],
            hp["ensemble_size"],
            hp["learning_rate"],
            torch.Generator().manual_seed(seeds.int_seed("model")),
            self.device,
        )
        self.store = TransitionStore(self.obs_dim, self.act_dim, max(capacity, 1))
        self.rng = seeds.rng("explore")
        self.plan_generator = torch.Generator().manual_seed(seeds.int_seed("planner"))
        self.eval_seed = seeds.int_seed("eval_planner")
        self.eval_generator = torch.Generator()
        self.plan = self._fresh_plan()
        self.eval_plan = self._fresh_plan()
        self._planning_s, self._planning_calls = 0.0, 0

    def _fresh_plan(self) -> torch.Tensor:
        return torch.zeros(self.hp["horizon"], self.act_dim, device=self.device)

    # -- planning -------------------------------------------------------------------------------
    def _returns(self, obs: torch.Tensor, mean_model: bool) -> Callable[[torch.Tensor], Any]:
        """Predicted return of candidates (N, H, act) from ``obs``: every candidate on the mean
        model, or candidate i on member i mod ensemble_size alone."""
        model, reward_fn, obs_dim, size = self.model, self.reward_fn, self.obs_dim, self.model.size
        pairs = self._angle_pairs

        def returns(actions: torch.Tensor) -> torch.Tensor:
            n, horizon, act_dim = actions.shape
            if not mean_model:
                # Pad the population to a multiple of the ensemble with copies of its
                # candidates, cycled when it is smaller than the ensemble (their scores are
                # dropped), then deal it out member by member.
                per_member = -(-n // size)
                copies = torch.arange(per_member * size - n, device=actions.device) % n
                padded = torch.cat([actions, actions[copies]])
                actions = padded.view(per_member, size, horizon, act_dim).transpose(0, 1)
            features = model.action_features(actions)  # (size, H, rows, h1)
            rows = features.shape[2]
            env_actions = actions * self._half_t + self._center_t if reward_fn else None
            state = obs.expand(rows, obs_dim) if mean_model else obs.expand(size, rows, obs_dim)
            total = torch.zeros(state.shape[:-1], device=obs.device)
            for t in range(horizon):
                out = model.step(state, features[:, t])  # (size, rows, obs + 1)
                if mean_model:
                    out = out.mean(dim=0)
                if reward_fn is not None:
                    total += reward_fn(state, env_actions[..., t, :])  # type: ignore[index]
                else:
                    total += out[..., obs_dim]
                state = state + out[..., :obs_dim]
                if pairs is not None:
                    cos, sin = state[..., pairs[:, 0]], state[..., pairs[:, 1]]
                    radius = torch.sqrt(cos.square() + sin.square()).clamp_min(MIN_RADIUS)
                    state[..., pairs[:, 0]] = cos / radius
                    state[..., pairs[:, 1]] = sin / radius
            # Per-member scores (size, per_member) back in candidate order.
            return total if mean_model else total.transpose(0, 1).reshape(-1)[:n]

        return returns

    def _plan_from(
        self, obs: Any, warm: torch.Tensor, generator: torch.Generator, mean_model: bool
    ) -> torch.Tensor:
        hp = self.hp
        with torch.inference_mode():
            state = torch.as_tensor(
                np.asarray(obs, dtype=np.float32).reshape(-1), device=self.device
            )
            returns = self._returns(state, mean_model)
            # Both planners sample the same way; each has one knob of its own.
            sampling = {name: hp[name] for name in ("population", "iterations", "init_std")}
            if hp["planner"] == "cem":
                return cem(returns, warm, elites=hp["elites"], generator=generator, **sampling)
            return mppi(
                returns, warm, temperature=hp["temperature"], generator=generator, **sampling
            )

    def _to_env(self, action: np.ndarray) -> np.ndarray:
        scaled = self.center + self.half * np.asarray(action, dtype=np.float64)
        return scaled.reshape(self.action_shape).astype(self.action_dtype)

    # -- the StepAgent contract -----------------------------------------------------------------
    def act(self, obs: Any, step: int) -> np.ndarray:
        """Random actions for ``random_steps`` steps, then the planner's first action."""
        if step < self.hp["random_steps"]:
            return self._to_env(self.rng.uniform(-1.0, 1.0, self.act_dim))
        began = time.perf_counter()
        self.plan = self._plan_from(obs, shifted(self.plan), self.plan_generator, False)
        self._planning_s += time.perf_counter() - began
        self._planning_calls += 1
        return self._to_env(self.plan[0].cpu().numpy())

    def learn(self, t: Transition) -> None:
        """Stores the transition; trains the model when due; a new episode plans afresh."""
        unit = (np.asarray(t.action, dtype=np.float64).reshape(-1) - self.center) / self.half
        self.store.add(
            np.asarray(t.obs, dtype=np.float32).reshape(-1),
            unit.astype(np.float32),
            t.reward,
            np.asarray(t.next_obs, dtype=np.float32).reshape(-1),
        )
        hp = self.hp
        if t.step % hp["train_every"] == 0 or t.step == hp["random_steps"]:
            self.model.fit(self.store, hp["model_epochs"], hp["model_batch_size"])
        if t.terminated or t.truncated:
            self.plan = self._fresh_plan()

    def greedy_action(self, obs: Any) -> np.ndarray:
        """The planner's first action on the mean model, with fixed planner noise."""
        if not self.model.trained:
            return self._to_env(np.zeros(self.act_dim))
        self.eval_generator.manual_seed(self.eval_seed)
        self.eval_plan = self._plan_from(obs, shifted(self.eval_plan), self.eval_generator, True)
        return self._to_env(self.eval_plan[0].cpu().numpy())

    def start_eval_episode(self) -> None:
        """A new evaluation episode plans from a fresh warm start (the eval env calls this
        at every reset, see :func:`train`)."""
        self.eval_plan = self._fresh_plan()

    def eval_metrics(self) -> dict[str, float]:
        """``model_loss`` (once trained) and ``planning_ms`` since the previous call; starts the
        evaluation that follows from a fresh warm start."""
        metrics: dict[str, float] = {}
        if self.model.trained:
            metrics["model_loss"] = self.model.last_loss
        if self._planning_calls:
            metrics["planning_ms"] = 1000.0 * self._planning_s / self._planning_calls
        self._planning_s, self._planning_calls = 0.0, 0
        self.eval_plan = self._fresh_plan()
        return metrics

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Stable-Baselines3-style prediction (greedy), so ``collect_demonstrations`` works."""
        return self.greedy_action(obs), None


def train(ctx: RunContext) -> MPCAgent:
    """Trainer of ``mpc``: the step agent through the one loop."""
    info = env_info(ctx.spec.env, ctx.spec.env_kwargs)
    reward_fn = None if ctx.hp["learned_reward"] else ENV_REWARDS[ctx.spec.env]
    kind, budget = ctx.spec.budget
    capacity = budget if kind == "steps" else 1024
    pairs = angle_pairs(ctx.hp["angle_pairs"], ctx.spec.env)
    agent = MPCAgent(
        ctx.hp, info.observation_space, info.action_space, ctx.seeds, reward_fn, capacity, pairs
    )
    # The evaluation resets its env for each episode without telling the agent (the runner
    # has no episode hook for a greedy policy), so the eval env tells it.
    ctx._eval_env = _EpisodeStarts(  # noqa: SLF001
        make_env(ctx.spec.env, ctx.spec.env_kwargs, eval=True), agent.start_eval_episode
    )
    return drive(ctx, agent)  # type: ignore[return-value]


class _EpisodeStarts(gym.Wrapper):
    """An env that calls ``on_reset`` after each of its resets."""

    def __init__(self, env: gym.Env, on_reset: Callable[[], None]) -> None:
        super().__init__(env)
        self._on_reset = on_reset

    def reset(self, **kwargs: Any) -> Any:
        """The wrapped env's reset, then ``on_reset``."""
        out = self.env.reset(**kwargs)
        self._on_reset()
        return out
