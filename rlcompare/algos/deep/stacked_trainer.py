"""``dqn``'s batch trainer: runs that differ only in seed, trained as one stacked model.

``run_batch`` (and so every sweep) hands it the contexts of runs that differ only in seed.
Each seed keeps its own env, agent, replay memory, random streams and evaluation protocol,
stepped together in one loop; the gradient steps of all seeds run stacked
(:mod:`rlcompare.algos.deep.stacked`). Each seed's rows are those of the seed run alone,
bit for bit (``tests/test_dqn_stacked.py`` checks every variant: double, dueling, n-step,
prioritized, noisy, boltzmann, no target network, no replay, offline from a dataset).

What runs seed by seed: acting and the greedy evaluation (numpy forward passes of one
observation; a batched product would round differently and could flip a near-tie), and, on
a GPU or a torch without the fused Adam kernel, the whole runs (``dqn.train`` per seed).
``wall_time_s`` of each seed is its share of the batch's time since the start (the batch's
time over its seeds), so per-run costs add up to the time spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rlcompare.algos.deep import dqn
from rlcompare.algos.deep.common import ObsEncoder, schedule_horizon
from rlcompare.algos.deep.dqn import DQNAgent
from rlcompare.algos.deep.learner import resolve_device
from rlcompare.algos.deep.network import QNetwork
from rlcompare.algos.deep.stacked import StackedState, StackedTrainer, stackable
from rlcompare.envs.make import env_info
from rlcompare.runner.context import RunContext
from rlcompare.runner.protocol import Protocol


def train_batch(ctxs: Sequence[RunContext]) -> list[DQNAgent]:
    """Trains runs that differ only in seed together (the registered batch trainer)."""
    hp = ctxs[0].hp
    if not stackable() or resolve_device(hp["device"]).type != "cpu":
        return [dqn.train(ctx.start_clock()) for ctx in ctxs]
    if hp["dataset"] is not None:
        return _train_offline(ctxs)
    return _train_online(ctxs)


def _state(ctx: RunContext, seeds: int) -> StackedState:
    hp = ctx.hp
    info = env_info(ctx.spec.env, ctx.spec.env_kwargs)
    noisy = hp["noisy"] or hp["exploration"] == "noisy"
    net = QNetwork(
        ObsEncoder(info.observation_space).dim,
        int(info.action_space.n),
        hp["net_arch"],
        dueling=hp["dueling"],
        noisy=noisy,
    )
    return StackedState(seeds, net.size)


def _train_online(ctxs: Sequence[RunContext]) -> list[DQNAgent]:
    """``loop.drive`` for S seeds in lockstep: act, step, learn (training deferred), one
    stacked phase for the seeds that reached one, then each seed's episode end and
    evaluation schedule, in the order a single-seed run does them."""
    seeds = len(ctxs)
    state = _state(ctxs[0], seeds)
    horizon = schedule_horizon(ctxs[0].spec)
    agents = [dqn.make_agent(ctx, horizon, rows=state.rows(s)) for s, ctx in enumerate(ctxs)]
    for agent in agents:
        agent.defer_training = True
    trainer = StackedTrainer(agents, state)
    protocols = [
        Protocol(ctx, a.greedy_action, a.eval_metrics) for ctx, a in zip(ctxs, agents, strict=True)
    ]
    envs: list[Any] = []
    try:
        for ctx in ctxs:
            envs.append(ctx.make_env())
            ctx.start_clock(runs_together=seeds)
        kind, budget = ctxs[0].spec.budget
        observations = []
        for ctx, env, protocol in zip(ctxs, envs, protocols, strict=True):
            protocol.start()
            observations.append(env.reset(seed=ctx.env_seed)[0])
        episodes = [0] * seeds
        returns = np.zeros(seeds)
        lengths = [0] * seeds
        alive = [s for s in range(seeds) if budget > 0]
        step = 0
        while alive:
            moves = [(s, agents[s].act(observations[s], step)) for s in alive]
            outcomes = [(s, action, *envs[s].step(action)) for s, action in moves]
            step += 1
            for s, action, next_obs, reward, terminated, truncated, _ in outcomes:
                returns[s] += float(reward)
                lengths[s] += 1
                agents[s].update(
                    observations[s], action, float(reward), next_obs, terminated, truncated, step
                )
            diverged = _train_pending(trainer, agents, alive, step)
            still = []
            for s, _, next_obs, _, terminated, truncated, _ in outcomes:
                ctx = ctxs[s]
                if s in diverged:
                    ctx.mark_diverged(step, diverged[s])
                    continue
                observations[s] = next_obs
                if terminated or truncated:
                    episodes[s] += 1
                    ctx.log_episode(step, episodes[s], float(returns[s]), lengths[s])
                    returns[s], lengths[s] = 0.0, 0
                    observations[s] = envs[s].reset()[0]
                protocols[s].after(step, episodes[s])
                if (step if kind == "steps" else episodes[s]) < budget:
                    still.append(s)
                else:
                    protocols[s].finish(step)
            alive = still
        for ctx, protocol in zip(ctxs, protocols, strict=True):
            if budget == 0 and ctx.status == "ok":
                protocol.finish(0)
    finally:
        for env in envs:
            env.close()
        for agent in agents:  # a returned agent trains as a single-seed one would
            agent.defer_training, agent.pending = False, None
    return agents


def _train_pending(
    trainer: StackedTrainer, agents: list[DQNAgent], alive: list[int], step: int
) -> dict[int, str]:
    """Trains the phases the seeds' ``learn`` deferred at ``step``; {seed: divergence}."""
    pending = [s for s in alive if agents[s].pending is not None]
    if not pending:
        return {}
    for s in pending:
        agents[s].pending = None
    first = agents[pending[0]]
    return trainer.train(pending, first.phase_steps, first.beta(step))


def _train_offline(ctxs: Sequence[RunContext]) -> list[DQNAgent]:
    """``dqn.train_offline`` for S seeds: one stacked gradient step per step of the budget."""
    budgets = [dqn.check_offline(ctx) for ctx in ctxs]
    budget = budgets[0]
    state = _state(ctxs[0], len(ctxs))
    agents = [
        dqn.offline_agent(ctx.start_clock(runs_together=len(ctxs)), budget, rows=state.rows(s))
        for s, ctx in enumerate(ctxs)
    ]
    trainer = StackedTrainer(agents, state)
    protocols = [
        Protocol(ctx, a.greedy_action, a.eval_metrics) for ctx, a in zip(ctxs, agents, strict=True)
    ]
    for protocol in protocols:
        protocol.start()
    hp = agents[0].hp
    alive = list(range(len(ctxs)))
    for step in range(1, budget + 1):
        diverged = trainer.train(alive, 1, agents[alive[0]].beta(step))
        for s in alive:
            if s in diverged:
                ctxs[s].mark_diverged(step, diverged[s])
                continue
            if step % hp["target_update_interval"] == 0:
                agents[s].learner.update_target(hp["tau"])
            protocols[s].after(step)
        alive = [s for s in alive if s not in diverged]
        if not alive:
            break
    for s in alive:
        protocols[s].finish(budget)
    return agents
