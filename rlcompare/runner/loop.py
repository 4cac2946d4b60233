"""The one interaction loop that drives any step-wise agent, whatever its update rule: the
step-agent form of the evaluation protocol (:mod:`rlcompare.runner.protocol`)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from rlcompare.runner.context import RunContext
from rlcompare.runner.protocol import Protocol, ProtocolError, refuse_outside_action
from rlcompare.runner.schema import StepAgent

# (action, agent method that returned it, env step) -> the action, or ProtocolError.
ActionCheck = Callable[[Any, str, int], Any]


def action_check(algo: str, space: gym.Space) -> ActionCheck:
    """Checks each action an agent returns against the env's action space, naming the algo,
    the method, the step, the action and the space (an env given action 7 of 4 raises a bare
    ``KeyError: 7`` or acts on it silently).

    Discrete spaces get an int range check (what ``Discrete.contains`` accepts: ints and
    integer numpy scalars, not floats), a fraction of ``contains``' cost per step. Other
    spaces are checked only when the env refuses an action (see :func:`drive`).
    """
    if not isinstance(space, gym.spaces.Discrete):
        return lambda action, method, step: action
    low, high = int(space.start), int(space.start + space.n)

    def check(action: Any, method: str, step: int) -> Any:
        try:
            value = operator.index(action)
        except TypeError:
            value = None
        if value is None or not low <= value < high:
            raise ProtocolError(
                f"algo {algo!r}: {method} returned action {action!r} at step {step}, outside "
                f"the env's action space {space}; valid: an int in [{low}, {high - 1}]"
            )
        return action

    return check


def drive(ctx: RunContext, agent: StepAgent) -> StepAgent:
    """Trains ``agent`` for the spec's budget on one env, evaluating by the protocol.

    An agent that raises ``Diverged`` stops the run; it is recorded as diverged with its rows.
    An action outside the env's action space, from ``act`` or ``greedy_action``, stops it
    with ``ProtocolError``.
    """
    env = ctx.make_env()
    check = action_check(ctx.spec.algo, env.action_space)
    kind, budget = ctx.spec.budget
    step = episode = 0

    def greedy(obs: Any) -> Any:
        return check(agent.greedy_action(obs), "greedy_action", step)

    protocol = Protocol(ctx, greedy, agent.eval_metrics)
    try:
        with protocol.guard(lambda: step):
            protocol.start()
            obs, _ = env.reset(seed=ctx.env_seed)
            episode_return, episode_length = 0.0, 0
            while (step if kind == "steps" else episode) < budget:
                action = check(agent.act(obs, step), "act", step)
                try:
                    next_obs, reward, terminated, truncated, _ = env.step(action)
                except Exception as error:
                    refuse_outside_action(
                        f"algo {ctx.spec.algo!r}: act", env.action_space, action, step, error
                    )
                    raise
                step += 1
                episode_return += float(reward)
                episode_length += 1
                agent.update(obs, action, float(reward), next_obs, terminated, truncated, step)
                obs = next_obs
                if terminated or truncated:
                    episode += 1
                    ctx.log_episode(step, episode, episode_return, episode_length)
                    episode_return, episode_length = 0.0, 0
                    obs, _ = env.reset()
                protocol.after(step, episode)
            protocol.finish(step)
    finally:
        env.close()
    return agent
