"""Environments: gymnasium ids plus our own under the ``rlcompare/`` namespace.

Importing this package registers our envs with gymnasium (entry points are strings, so nothing
heavy is imported until an env is made).
"""

from __future__ import annotations

import gymnasium as gym

# SelfHealing's id and step limit, here once: rlcompare.envs.selfheal re-exports them as
# ENV_ID and MAX_EPISODE_STEPS (importing that module here would load its model at import).
SELFHEALING_ID = "rlcompare/SelfHealing-v0"
SELFHEALING_MAX_STEPS = 100

# id -> (entry point, max_episode_steps). None means no step limit, as in the textbook.
CUSTOM_ENVS: dict[str, tuple[str, int | None]] = {
    "rlcompare/MaxBias-v0": ("rlcompare.envs.textbook:MaxBiasEnv", None),
    "rlcompare/DynaMaze-v0": ("rlcompare.envs.textbook:DynaMazeEnv", None),
    "rlcompare/RiverSwim-v0": ("rlcompare.envs.textbook:RiverSwimEnv", 20),
    "rlcompare/DeepSea-v0": ("rlcompare.envs.textbook:DeepSeaEnv", None),
    SELFHEALING_ID: ("rlcompare.envs.selfheal:SelfHealingEnv", SELFHEALING_MAX_STEPS),
    "rlcompare/Chain-v0": ("rlcompare.envs.textbook:ChainEnv", 50),
    "rlcompare/DiscretePendulum-v0": ("rlcompare.envs.wrappers:discrete_pendulum", 200),
    "rlcompare/RandomFrozenLake-v0": ("rlcompare.envs.frozen_lake:random_frozen_lake", 200),
}


def register_envs() -> None:
    """Registers every custom env with gymnasium; safe to call more than once."""
    for env_id, (entry_point, max_steps) in CUSTOM_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_steps)


register_envs()
