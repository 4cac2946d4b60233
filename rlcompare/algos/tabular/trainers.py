"""Trainers of the tabular learners: which path a run takes, and the engine's driver.

* Env with a model (toy_text, ours): the engine simulates the TabularMDP in compiled code,
  seed after seed; it reproduces the env's own sampling draw for draw, so its rows equal
  those of ``loop.drive`` on the real env (``train_steps``), only faster.
* Discrete env without a model: ``loop.drive`` with a TabularAgent (the step API).
* ``dataset`` set: learning from logged transitions, no env interaction (TD updates on
  uniform draws; certainty equivalence: each transition counted once).

Seeds share nothing but read-only arrays, so a seed's results do not depend on its batch.
"""

from __future__ import annotations

import functools
import json

import numpy as np

from rlcompare.algos.tabular import kernels
from rlcompare.algos.tabular.agent import Reference, TabularAgent
from rlcompare.algos.tabular.evaluation import EngineEvaluation, eval_plan
from rlcompare.envs.datasets import load_dataset
from rlcompare.envs.make import env_info
from rlcompare.envs.model import Simulation, TabularMDP, model_or_none, sample_index
from rlcompare.envs.planning import value_iteration
from rlcompare.errors import Diverged, SpecError
from rlcompare.runner.context import RunContext
from rlcompare.runner.loop import drive
from rlcompare.runner.protocol import Protocol, Run

# Finished episodes the engine buffers before handing them to the context.
EPISODE_BUFFER = 4096


@functools.lru_cache(maxsize=32)
def _reference(env_id: str, kwargs_json: str, gamma: float) -> tuple[Reference | None, str]:
    kwargs = json.loads(kwargs_json)
    mdp = model_or_none(env_id, kwargs)
    if mdp is None:
        return None, "the env has no model"
    horizon = eval_plan(env_id, kwargs, mdp).limit
    try:
        return Reference(mdp, value_iteration(mdp, gamma), horizon), ""
    except ValueError as error:
        return Reference(mdp, None, horizon), str(error)


def reference_for(ctx: RunContext) -> Reference | None:
    """The env's model with Q* at the run's gamma and the eval time limit (cached); None
    when the env has no model. Skipped metrics are noted in the run's metadata."""
    kwargs = json.dumps(dict(ctx.spec.env_kwargs), sort_keys=True, default=str)
    found, why = _reference(ctx.spec.env, kwargs, float(ctx.hp["gamma"]))
    if found is None or found.solution is None:
        ctx.extra_metadata["model_metrics"] = f"q_error and policy_regret skipped: {why}"
    return found


def _outcomes(mdp: TabularMDP | None) -> int | None:
    """The env's outcomes per pair: no pair has more distinct next states, so the learned
    model's rows need no more room (None: unknown, room for every state)."""
    return int(mdp.outcome_next.shape[2]) if mdp is not None else None


def train(ctx: RunContext) -> TabularAgent:
    """Trains one run (the registered trainer)."""
    return train_batch([ctx])[0]


def train_batch(ctxs: list[RunContext]) -> list[TabularAgent]:
    """Trains runs that differ only in seed (the registered batch trainer)."""
    spec = ctxs[0].spec
    mdp = model_or_none(spec.env, spec.env_kwargs)
    if ctxs[0].hp.get("dataset") is not None:
        trainer = train_offline
    elif mdp is None:
        trainer = train_steps
    else:
        trainer = functools.partial(train_on_model, mdp=mdp)
    return [trainer(ctx.start_clock()) for ctx in ctxs]


def train_steps(ctx: RunContext, mdp: TabularMDP | None = None) -> TabularAgent:
    """The step-API path: ``loop.drive`` on the real env (any Discrete env)."""
    mdp = mdp if mdp is not None else model_or_none(ctx.spec.env, ctx.spec.env_kwargs)
    info = env_info(ctx.spec.env, ctx.spec.env_kwargs)
    valid = mdp.valid_actions if mdp is not None else None
    agent = TabularAgent.for_run(
        ctx,
        info.observation_space.n,
        info.action_space.n,
        valid,
        reference_for(ctx),
        _outcomes(mdp),
    )
    return drive(ctx, agent)  # type: ignore[return-value]


class ModelRunner:
    """Runs one agent on a simulated TabularMDP in segments between evaluations.

    Args:
        agent: The learner.
        sim: The MDP's simulation arrays.
        env_seed: Seed of the simulated env (the run's ``env`` stream).
        budget: ("steps" | "episodes", amount).
        max_episode_steps: The env's time limit (None: none).
        every_steps: Stop for an evaluation every this many steps (None: never).
        every_episodes: ... every this many finished episodes (None: never).
        capacity: Finished episodes buffered per segment.
    """

    def __init__(
        self,
        agent: TabularAgent,
        sim: Simulation,
        *,
        env_seed: int,
        budget: tuple[str, int],
        max_episode_steps: int | None = None,
        every_steps: int | None = None,
        every_episodes: int | None = None,
        capacity: int = EPISODE_BUFFER,
    ) -> None:
        self.agent = agent
        self.sim = sim
        # The same generator a gymnasium env gets from reset(seed=env_seed).
        self.env_rng = np.random.default_rng(env_seed)
        self.budget = budget
        self.max_steps = max_episode_steps or 0
        self.every_steps = every_steps or 0
        self.every_episodes = every_episodes or 0
        self.loop = np.zeros(5, dtype=np.int64)
        self.loop[kernels.PENDING] = -1
        n_states = sim.terminal.shape[0]
        self.loop[kernels.OBS] = sample_index(sim.initial_cdf, n_states, self.env_rng.random())
        self.episode_return = np.zeros(1)
        self.capacity = capacity

    @property
    def step(self) -> int:
        """Env steps done."""
        return int(self.loop[kernels.STEP])

    @property
    def episode(self) -> int:
        """Episodes finished."""
        return int(self.loop[kernels.EPISODE])

    def advance(self) -> tuple[int, tuple[np.ndarray, ...]]:
        """Runs one segment. Returns (kernels.DONE | EVALUATE | FULL | STOPPED_DIVERGED, the
        finished episodes as arrays (steps, episode numbers, returns, lengths))."""
        agent, first = self.agent, self.episode
        kind, amount = self.budget
        # Fresh per segment: a batch of idle runners holds no buffers.
        out = (
            np.empty(self.capacity, np.int64),
            np.empty(self.capacity),
            np.empty(self.capacity, np.int64),
        )
        code, written = kernels.run_segment(
            agent.state,
            agent.cfg,
            agent.valid,
            self.sim,
            self.max_steps,
            agent.rng,
            self.env_rng,
            self.loop,
            self.episode_return,
            kind == "steps",
            amount,
            self.every_steps,
            self.every_episodes,
            *out,
        )
        steps, returns, lengths = (array[:written].copy() for array in out)
        episodes = np.arange(first + 1, first + 1 + written, dtype=np.int64)
        return int(code), (steps, episodes, returns, lengths)


def _engine_run(ctx: RunContext, agent: TabularAgent, mdp: TabularMDP) -> Run:
    """The run the protocol evaluates: in the engine where it replays the eval env (the
    same rows, far less time), else the gymnasium eval env of ``RunContext.evaluate``."""
    plan = eval_plan(ctx.spec.env, ctx.spec.env_kwargs, mdp)
    return EngineEvaluation(ctx, agent, mdp, plan) if plan.engine else ctx


def train_on_model(ctx: RunContext, mdp: TabularMDP) -> TabularAgent:
    """The engine path: same rows as ``train_steps`` on the real env, far less time."""
    agent = TabularAgent.for_run(
        ctx, mdp.n_states, mdp.n_actions, mdp.valid_actions, reference_for(ctx), _outcomes(mdp)
    )
    runner = ModelRunner(
        agent,
        mdp.simulation,
        env_seed=ctx.env_seed,
        budget=ctx.spec.budget,
        max_episode_steps=env_info(ctx.spec.env, ctx.spec.env_kwargs).max_episode_steps,
        every_steps=ctx.schedule.every_steps,
        every_episodes=ctx.schedule.every_episodes,
    )
    protocol = Protocol(_engine_run(ctx, agent, mdp), agent.greedy_action, agent.eval_metrics)
    with protocol.guard(lambda: runner.step):
        protocol.start()
        while True:
            # The engine stops at every step the schedule makes due (EVALUATE), and also
            # when its episode buffer is full (FULL), where the protocol finds nothing due.
            code, episodes = runner.advance()
            ctx.log_episodes(*episodes)
            if code == kernels.STOPPED_DIVERGED:
                raise Diverged(f"non-finite action value at step {runner.step}")
            if code == kernels.DONE:
                break
            protocol.after(runner.step, runner.episode)
        protocol.finish(runner.step)
    return agent


def load_transitions(path: str, n_states: int, n_actions: int) -> tuple[np.ndarray, ...]:
    """(observations, actions, rewards, next observations, terminated, truncated) of a
    Dataset file as the arrays the engine takes, checked against the env's sizes."""
    data = load_dataset(path)  # what the task carried, else the driver's catalogue
    if len(data) == 0:
        raise SpecError(f"dataset {path!r} holds no transitions; valid: a non-empty dataset")
    arrays = (
        np.ascontiguousarray(data.observations, dtype=np.int64).reshape(-1),
        np.ascontiguousarray(data.actions, dtype=np.int64).reshape(-1),
        np.ascontiguousarray(data.rewards, dtype=np.float64),
        np.ascontiguousarray(data.next_observations, dtype=np.int64).reshape(-1),
        np.ascontiguousarray(data.terminated, dtype=bool),
        np.ascontiguousarray(data.truncated, dtype=bool),
    )
    for name, values, size in (
        ("observations", arrays[0], n_states),
        ("actions", arrays[1], n_actions),
        ("next_observations", arrays[3], n_states),
    ):
        if values.size != len(data) or values.min() < 0 or values.max() >= size:
            raise SpecError(
                f"dataset {path!r}: {name} are not indices below {size}; valid: transitions "
                "logged on this env (Discrete spaces)"
            )
    return arrays


def train_offline(ctx: RunContext) -> TabularAgent:
    """Learning from logged data (``kernels.run_offline``): for the model-free learners each
    step of the ``steps`` budget is one TD update on a transition drawn uniformly, with
    replacement, with the agent's stream; certainty equivalence counts each logged
    transition once, in logged order, and plans on the logs' own maximum-likelihood model
    (its result does not depend on the seed)."""
    _, budget = ctx.spec.budget  # a steps budget: RunSpec rejects episodes with a dataset
    path = str(ctx.hp["dataset"])
    mdp = model_or_none(ctx.spec.env, ctx.spec.env_kwargs)
    info = env_info(ctx.spec.env, ctx.spec.env_kwargs)
    n_states, n_actions = info.observation_space.n, info.action_space.n
    transitions = load_transitions(path, n_states, n_actions)
    valid = mdp.valid_actions if mdp is not None else None
    agent = TabularAgent.for_run(
        ctx, n_states, n_actions, valid, reference_for(ctx), _outcomes(mdp)
    )
    every = ctx.schedule.every_steps or budget
    protocol = Protocol(ctx, agent.greedy_action, agent.eval_metrics)
    step = 0
    with protocol.guard(lambda: step):
        protocol.start()
        while step < budget:
            stop = min(budget, (step // every + 1) * every)
            reached, diverged = kernels.run_offline(
                agent.state, agent.cfg, agent.valid, *transitions, agent.rng, step, stop
            )
            step = int(reached)
            if diverged:
                raise Diverged(f"non-finite action value at update {step}")
            if step < budget:
                protocol.after(step)
        protocol.finish(step)
    return agent
