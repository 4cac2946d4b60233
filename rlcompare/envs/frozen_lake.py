"""``rlcompare/RandomFrozenLake-v0``: gymnasium's FrozenLake on a random map named by its
settings, so a map is a hardness knob of a registered env.

The map is gymnasium's ``generate_random_map(map_size, frozen_p, map_seed)`` passed to
``FrozenLakeEnv`` as ``desc``: a deterministic function of the three kwargs (and of
gymnasium's version, recorded with every run), which are the env's settings and so part of
every run's identity. The env is gymnasium's own ``FrozenLakeEnv`` (``env.unwrapped.desc``
holds the map): its model, the tabular engine's fast path and FrozenLake's goal test apply
unchanged.
"""

from __future__ import annotations

import numbers

from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv, generate_random_map

MAP_SIZES = (2, 32)
# Below the square lattice's site-percolation threshold (~0.593) a map with a path from start
# to goal gets exponentially rare as it grows, and gymnasium draws maps until one has a path:
# at 0.6 about 1 draw in 30 has one at size 32 (measured, 400 draws), at 0.5 none did.
FROZEN_P = (0.6, 1.0)


def random_map(map_size: int = 8, frozen_p: float = 0.8, map_seed: int = 0) -> list[str]:
    """gymnasium's ``generate_random_map(map_size, frozen_p, map_seed)``, its arguments
    checked first.

    Args:
        map_size: Side of the square map, an int in ``MAP_SIZES``.
        frozen_p: Probability that a tile is frozen (else a hole), in ``FROZEN_P``.
        map_seed: Seed of the map, an int >= 0 (None would give a new map every time).

    Raises:
        ValueError: a value out of its range, named with the valid ones.
    """
    low, high = MAP_SIZES
    if isinstance(map_size, bool) or not isinstance(map_size, numbers.Integral):
        raise ValueError(f"map_size = {map_size!r} is invalid; valid: an int in [{low}, {high}]")
    if not low <= map_size <= high:
        raise ValueError(
            f"map_size = {map_size!r} is out of range; valid: an int in [{low}, {high}]"
        )
    low_p, high_p = FROZEN_P
    if isinstance(frozen_p, bool) or not isinstance(frozen_p, numbers.Real):
        raise ValueError(
            f"frozen_p = {frozen_p!r} is invalid; valid: a float in [{low_p}, {high_p}]"
        )
    if not low_p <= frozen_p <= high_p:
        raise ValueError(
            f"frozen_p = {frozen_p!r} is out of range; valid: a float in [{low_p}, {high_p}] "
            "(below 0.6 a map with a path from start to goal is too rare to draw)"
        )
    if isinstance(map_seed, bool) or not isinstance(map_seed, numbers.Integral) or map_seed < 0:
        raise ValueError(f"map_seed = {map_seed!r} is invalid; valid: an int >= 0")
    return generate_random_map(size=int(map_size), p=float(frozen_p), seed=int(map_seed))


def random_frozen_lake(
    map_size: int = 8,
    frozen_p: float = 0.8,
    map_seed: int = 0,
    is_slippery: bool = True,
    success_rate: float = 1.0 / 3.0,
    reward_schedule: tuple[int, int, int] = (1, 0, 0),
    render_mode: str | None = None,
) -> FrozenLakeEnv:
    """FrozenLake on the map :func:`random_map` draws (the entry point of
    ``rlcompare/RandomFrozenLake-v0``); the other arguments are ``FrozenLakeEnv``'s.

    The defaults draw an 8 x 8 map as ``generate_random_map()`` does; the registered step
    limit is 200, as ``FrozenLake8x8-v1``'s.
    """
    return FrozenLakeEnv(
        render_mode=render_mode,
        desc=random_map(map_size, frozen_p, map_seed),
        is_slippery=is_slippery,
        success_rate=success_rate,
        reward_schedule=reward_schedule,
    )
