"""Agents given as classes (``register_algorithm(name, agent=...)``): built from the env's
spaces, the resolved hyperparameters and the run's own random stream, then driven by the one
step loop (:func:`rlcompare.runner.loop.drive`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlcompare.errors import SpecError
from rlcompare.runner.context import RunContext
from rlcompare.runner.loop import drive
from rlcompare.runner.schema import Trainer
from rlcompare.spec.registry import AGENT_METHODS

# The agent's own stream of the run's seeds (independent of the env's and the evaluation's).
AGENT_STREAM = "agent"


class _WithEvalMetrics:
    """An agent without ``eval_metrics`` records no extra metrics at evaluations."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.act = agent.act
        self.update = agent.update
        self.greedy_action = agent.greedy_action

    def eval_metrics(self) -> dict[str, float]:
        return {}


def build_agent(factory: Callable[..., Any], ctx: RunContext) -> Any:
    """``factory(observation_space, action_space, hparams, rng)``, checked for the methods the
    loop calls before any training."""
    env = ctx.make_env()
    try:
        spaces = env.observation_space, env.action_space
    finally:
        env.close()
    agent = factory(*spaces, dict(ctx.hp), ctx.seeds.rng(AGENT_STREAM))
    missing = [m for m in AGENT_METHODS if not callable(getattr(agent, m, None))]
    if missing:
        raise SpecError(
            f"algo {ctx.spec.algo!r}: its agent {type(agent).__qualname__} has no "
            f"{missing[0]!r} method; valid: an agent with {', '.join(AGENT_METHODS)}"
        )
    return agent


def agent_trainer(factory: Callable[..., Any]) -> Trainer:
    """The trainer of an algorithm given as an agent: build it, drive it, return it."""

    def train(ctx: RunContext) -> Any:
        agent = build_agent(factory, ctx)
        driven = (
            agent if callable(getattr(agent, "eval_metrics", None)) else _WithEvalMetrics(agent)
        )
        drive(ctx, driven)
        return agent

    return train
