"""The one interaction loop that drives any step-wise agent, whatever its update rule: the
step-agent form of the evaluation protocol (:mod:`rlcompare.runner.protocol`)."""

from __future__ import annotations

from rlcompare.runner.context import RunContext
from rlcompare.runner.protocol import Protocol
from rlcompare.runner.schema import StepAgent


def drive(ctx: RunContext, agent: StepAgent) -> StepAgent:
    """Trains ``agent`` for the spec's budget on one env, evaluating by the protocol.

    An agent that raises ``Diverged`` stops the run; it is recorded as diverged with its rows.
    """
    protocol = Protocol(ctx, agent.greedy_action, agent.eval_metrics)
    env = ctx.make_env()
    kind, budget = ctx.spec.budget
    step = episode = 0
    try:
        with protocol.guard(lambda: step):
            protocol.start()
            obs, _ = env.reset(seed=ctx.env_seed)
            episode_return, episode_length = 0.0, 0
            while (step if kind == "steps" else episode) < budget:
                action = agent.act(obs, step)
                next_obs, reward, terminated, truncated, _ = env.step(action)
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
