"""Baselines every comparison needs: the uniform random policy."""

from __future__ import annotations

from typing import Any

from rlcompare.runner.context import RunContext
from rlcompare.runner.loop import drive
from rlcompare.spec.registry import any_spaces, register_algorithm


class RandomAgent:
    """Uniform over the action space; its own greedy policy; learns nothing."""

    def __init__(self, action_space: Any, seed: int) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)

    def act(self, obs: Any, step: int) -> Any:
        return self.action_space.sample()

    def update(self, *transition: Any) -> None:
        return None

    def greedy_action(self, obs: Any) -> Any:
        return self.action_space.sample()

    def eval_metrics(self) -> dict[str, float]:
        return {}

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[Any, None]:
        """Stable-Baselines3-style prediction, so the agent can collect demonstrations."""
        return self.action_space.sample(), None


def train_random(ctx: RunContext) -> RandomAgent:
    """Runs the uniform random policy through the standard loop."""
    env = ctx.make_env()
    agent = RandomAgent(env.action_space, ctx.seeds.int_seed("agent"))
    env.close()
    return drive(ctx, agent)  # type: ignore[return-value]


register_algorithm(
    "random",
    trainer="rlcompare.algos.baselines:train_random",
    params={},
    summary="uniform random policy (the zero of normalized scores)",
    spaces=any_spaces,
    family="baseline",
)
