"""``dqn``: our DQN, readable and fast, with Stable-Baselines3's hyperparameter semantics.

The agent follows SB3's ``DQN`` so that rl-zoo3 settings mean the same updates:
- uniform random actions for the first ``learning_starts`` env steps;
- epsilon decays linearly from ``exploration_initial_eps`` to ``exploration_final_eps`` over
  ``exploration_fraction`` of the budget (an episodes budget spans episodes * time limit);
- every ``train_freq`` env steps, once past ``learning_starts``, ``gradient_steps`` gradient
  steps (-1: as many as env steps since the last phase) on uniform batches of
  ``batch_size``;
- every ``target_update_interval`` env steps, target <- tau * online + (1 - tau) * target;
- bootstrapping through time-limit truncation, never through termination.

Switches: ``double``, ``dueling``, ``n_steps``, ``prioritized`` (``per_alpha``, ``per_beta``
annealed to 1), ``noisy``, ``exploration`` (epsilon_greedy | boltzmann with ``temperature`` |
noisy), ``target_network`` (False: bootstrap from the online net), ``replay`` (False: each
gradient step uses the latest ``batch_size`` transitions).

With ``dataset`` set, ``dqn`` learns offline from logged transitions: the budget ``steps``
counts gradient steps (the step column too), the target net updates every
``target_update_interval`` gradient steps, the whole dataset is the replay memory, and
``buffer_size``, ``learning_starts``, ``train_freq``, ``gradient_steps`` and the exploration
settings play no part (``replay`` must stay True). An ``episodes`` budget is a SpecError.

Greedy actions break ties to the first action (``argmax``); Q-values start from torch's
``nn.Linear`` initialisation.

Runs that differ only in seed (``rlcompare.run_batch``, a sweep's seed batches) train as one
stacked model (:mod:`rlcompare.algos.deep.stacked_trainer`), each seed's rows bit for bit
those of the seed run alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rlcompare.algos.deep.common import (
    ObsEncoder,
    load_matching_dataset,
    sb3_linear_schedule,
    schedule_horizon,
)
from rlcompare.algos.deep.learner import DQNLearner, SeedRows, resolve_device
from rlcompare.algos.deep.replay import (
    LatestBuffer,
    NStepAccumulator,
    PrioritizedReplayBuffer,
    ReplayBuffer,
)
from rlcompare.algos.exploration import Boltzmann
from rlcompare.envs.datasets import Dataset
from rlcompare.envs.make import env_info
from rlcompare.errors import SpecError
from rlcompare.runner.context import RunContext
from rlcompare.runner.loop import drive
from rlcompare.runner.protocol import Protocol
from rlcompare.runner.schema import Transition, TransitionLearner
from rlcompare.seeding import RunSeeds


class DQNAgent(TransitionLearner):
    """A DQN step agent for ``loop.drive`` (see the module docstring for the semantics).

    Args:
        hp: Resolved ``dqn`` hyperparameters.
        observation_space: Box or Discrete.
        action_space: Discrete.
        seeds: The run's seeds (streams ``explore``, ``replay``, ``torch``, ``noise``).
        horizon: Env steps that the epsilon and PER-beta schedules span.
        capacity: Replay slots to allocate; by default ``min(buffer_size, horizon)`` (a run
            never stores more transitions than its horizon).
        rows: This seed's rows of a stacked model (``stacked.py``); None: a model of its own.

    Attributes:
        defer_training: When True, ``learn`` does not train but sets ``pending`` to the step
            (a stacked trainer then trains every seed's pending phase together).
    """

    def __init__(
        self,
        hp: Mapping[str, Any],
        observation_space: gym.Space,
        action_space: gym.Space,
        seeds: RunSeeds,
        horizon: int,
        capacity: int | None = None,
        rows: SeedRows | None = None,
    ) -> None:
        self.hp = dict(hp)
        self.encoder = ObsEncoder(observation_space)
        self.n_actions = int(action_space.n)
        self.action_start = int(action_space.start)
        self.horizon = horizon
        self.learner = DQNLearner(
            self.encoder.dim, self.n_actions, hp, seeds, resolve_device(hp["device"]), rows
        )
        self.defer_training = False
        self.pending: int | None = None
        self.rng = seeds.rng("explore")
        if capacity is None:
            capacity = min(hp["buffer_size"], horizon)
        self.buffer = self._make_buffer(max(capacity, 1), seeds.rng("replay"))
        self.nstep = NStepAccumulator(hp["n_steps"], hp["gamma"]) if hp["n_steps"] > 1 else None
        noisy = hp["noisy"] or hp["exploration"] == "noisy"
        # With NoisyNet layers the noise replaces epsilon-greedy (Fortunato et al., 2018).
        self.exploration = (
            "noisy" if noisy and hp["exploration"] != "boltzmann" else (hp["exploration"])
        )
        self.boltzmann = Boltzmann(hp["temperature"])
        self.train_freq = hp["train_freq"]
        self.phase_steps = hp["gradient_steps"] if hp["gradient_steps"] > 0 else hp["train_freq"]
        self._encoded = np.zeros(self.encoder.dim, dtype=np.float32)

    def _make_buffer(self, capacity: int, rng: np.random.Generator) -> ReplayBuffer:
        hp = self.hp
        if not hp["replay"]:
            return LatestBuffer(hp["batch_size"], self.encoder, rng)
        if hp["prioritized"]:
            return PrioritizedReplayBuffer(capacity, self.encoder, rng, hp["per_alpha"])
        return ReplayBuffer(capacity, self.encoder, rng)

    # -- the StepAgent contract -----------------------------------------------------------------
    def epsilon(self, step: int) -> float:
        """Epsilon of epsilon-greedy at env step ``step``."""
        hp = self.hp
        return sb3_linear_schedule(
            hp["exploration_initial_eps"],
            hp["exploration_final_eps"],
            hp["exploration_fraction"],
            step,
            self.horizon,
        )

    def act(self, obs: Any, step: int) -> int:
        """Behaviour action; exploring epsilon-greedy steps skip the network entirely."""
        if step < self.hp["learning_starts"]:
            return self._random_action()
        if self.exploration == "epsilon_greedy":
            if self.rng.random() < self.epsilon(step):
                return self._random_action()
            return self.greedy_action(obs)
        encoded = self.encoder.encode_fast(obs, self._encoded)
        q = self.learner.q_row(encoded, noisy=self.learner.net.noisy)
        if self.exploration == "boltzmann":
            index = self.boltzmann.select(q, None, step, self.rng.random())
            return int(index) + self.action_start
        return int(q.argmax()) + self.action_start

    def _random_action(self) -> int:
        return int(self.rng.integers(self.n_actions)) + self.action_start

    def learn(self, t: Transition) -> None:
        """Stores the transition; updates the target and trains when their intervals say."""
        index = int(t.action) - self.action_start
        if self.nstep is None:
            discount = 0.0 if t.terminated else self.hp["gamma"]
            self.buffer.add(t.obs, index, t.reward, t.next_obs, discount)
        else:
            pushed = self.nstep.push(t.obs, index, t.reward, t.next_obs, t.terminated, t.truncated)
            for stored in pushed:
                self.buffer.add(*stored)
        step = t.step
        if step % self.hp["target_update_interval"] == 0:
            self.learner.update_target(self.hp["tau"])
        if step % self.train_freq == 0 and step > self.hp["learning_starts"] and len(self.buffer):
            if self.defer_training:
                self.pending = step
            else:
                self.learner.train(self.buffer, self.phase_steps, self.beta(step))

    def beta(self, step: int) -> float:
        """Importance-weight exponent, annealed from ``per_beta`` to 1 over the horizon."""
        start = self.hp["per_beta"]
        return start + (1.0 - start) * min(1.0, step / max(self.horizon, 1))

    def greedy_action(self, obs: Any) -> int:
        """argmax_a Q(obs, a) (NoisyNet means), one small forward pass without autograd."""
        encoded = self.encoder.encode_fast(obs, self._encoded)
        return int(self.learner.q_row(encoded).argmax()) + self.action_start

    def eval_metrics(self) -> dict[str, float]:
        """``td_error``, ``loss`` and ``q_mean`` averaged over the updates since the last call."""
        stats = self.learner.stats()
        self.learner.reset_stats()
        return stats

    # -- conveniences ---------------------------------------------------------------------------
    def predict(self, obs: Any, deterministic: bool = True) -> tuple[int, None]:
        """Stable-Baselines3-style prediction (greedy), so ``collect_demonstrations`` works."""
        return self.greedy_action(obs), None

    def q_values(self, obs: Any) -> np.ndarray:
        """Q-values (n_actions,) of one observation."""
        return self.learner.q_row(self.encoder.encode(obs))

    def load_dataset(self, dataset: Dataset) -> None:
        """Fills the replay memory with a dataset's transitions (n-step where asked)."""
        ends = dataset.terminated | dataset.truncated
        last = len(dataset) - 1
        for i in range(len(dataset)):
            obs, next_obs = dataset.observations[i], dataset.next_observations[i]
            action = int(dataset.actions[i]) - self.action_start
            terminated = bool(dataset.terminated[i])
            if self.nstep is None:
                discount = 0.0 if terminated else self.hp["gamma"]
                self.buffer.add(obs, action, float(dataset.rewards[i]), next_obs, discount)
                continue
            # A log cut mid-episode ends as if truncated: bootstrap from the last observation.
            cut = bool(ends[i]) or i == last
            for transition in self.nstep.push(
                obs, action, float(dataset.rewards[i]), next_obs, terminated, cut and not terminated
            ):
                self.buffer.add(*transition)


def make_agent(
    ctx: RunContext, horizon: int, capacity: int | None = None, rows: SeedRows | None = None
) -> DQNAgent:
    """The run's DQNAgent (``rows``: its place in a stacked model, see ``stacked.py``)."""
    info = env_info(ctx.spec.env, ctx.spec.env_kwargs)
    return DQNAgent(
        ctx.hp, info.observation_space, info.action_space, ctx.seeds, horizon, capacity, rows
    )


def check_offline(ctx: RunContext) -> int:
    """The gradient-step budget of an offline run; SpecError for what needs an env."""
    kind, budget = ctx.spec.budget
    if kind != "steps":
        raise SpecError(
            f"algo 'dqn' with a dataset counts gradient steps; valid: steps=..., got "
            f"episodes={budget}"
        )
    if not ctx.hp["replay"]:
        raise SpecError(
            "hyperparameter 'replay' = False needs env interaction; valid: replay = True with "
            "a dataset"
        )
    return int(budget)


def train(ctx: RunContext) -> DQNAgent:
    """Trainer of ``dqn``: online through ``loop.drive``, or offline when ``dataset`` is set."""
    if ctx.hp["dataset"] is not None:
        return train_offline(ctx)
    agent = make_agent(ctx, schedule_horizon(ctx.spec))
    return drive(ctx, agent)  # type: ignore[return-value]


def offline_agent(ctx: RunContext, budget: int, rows: SeedRows | None = None) -> DQNAgent:
    """An agent whose replay memory is the whole dataset (whatever buffer_size says), with
    the dataset's size and its demonstrator's return logged at step 0."""
    dataset = load_matching_dataset(ctx)
    agent = make_agent(ctx, budget, capacity=len(dataset), rows=rows)
    agent.load_dataset(dataset)
    ctx.log(0, "dataset_size", len(dataset))
    ctx.log(0, "demonstrator_return", dataset.mean_return)
    return agent


def train_offline(ctx: RunContext) -> DQNAgent:
    """Learns from a fixed dataset; ``steps`` = gradient steps, evaluated on the schedule."""
    budget = check_offline(ctx)
    agent = offline_agent(ctx, budget)
    learner, hp = agent.learner, agent.hp
    protocol = Protocol(ctx, agent.greedy_action, agent.eval_metrics)
    step = 0
    with protocol.guard(lambda: step):
        protocol.start()
        for step in range(1, budget + 1):
            learner.train(agent.buffer, 1, agent.beta(step))
            if step % hp["target_update_interval"] == 0:
                learner.update_target(hp["tau"])
            protocol.after(step)
        protocol.finish(budget)
    return agent
