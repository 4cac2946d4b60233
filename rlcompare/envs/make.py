"""Building envs from (id, kwargs) with errors that name the bad value and the valid ones."""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from rlcompare.envs import CUSTOM_ENVS, SELFHEALING_ID
from rlcompare.errors import SpecError, choices_text

# Envs that the suite uses and documents; any other registered gymnasium id works too.
FEATURED_ENVS = (
    "FrozenLake-v1",
    "FrozenLake8x8-v1",
    "CliffWalking-v1",
    "Taxi-v4",
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Pendulum-v1",
    *CUSTOM_ENVS,
)

# Id prefixes of envs that a known package registers when it is imported (gymnasium itself
# does not import it): an unknown id with one of them suggests ``"package:Id"``.
REGISTERING_PACKAGES = {
    "ALE/": ("ale_py", "ale-py"),
    "MinAtar/": ("minatar", "MinAtar"),
    "MiniGrid-": ("minigrid", "minigrid"),
    "BabyAI-": ("minigrid", "minigrid"),
    "highway-": ("highway_env", "highway-env"),
    "merge-": ("highway_env", "highway-env"),
    "roundabout-": ("highway_env", "highway-env"),
    "parking-": ("highway_env", "highway-env"),
    "intersection-": ("highway_env", "highway-env"),
    "racetrack-": ("highway_env", "highway-env"),
    "Fetch": ("gymnasium_robotics", "gymnasium-robotics"),
    "HandManipulate": ("gymnasium_robotics", "gymnasium-robotics"),
    "AdroitHand": ("gymnasium_robotics", "gymnasium-robotics"),
    "PointMaze_": ("gymnasium_robotics", "gymnasium-robotics"),
    "AntMaze_": ("gymnasium_robotics", "gymnasium-robotics"),
    "FrankaKitchen": ("gymnasium_robotics", "gymnasium-robotics"),
    "FlappyBird": ("flappy_bird_gymnasium", "flappy-bird-gymnasium"),
}

# Kwargs that gym.make itself takes rather than the env constructor.
MAKE_KWARGS = ("max_episode_steps",)

# Greedy evaluation of an env without a step limit could loop forever; cap it.
EVAL_STEP_CAP = 1_000


@dataclass(frozen=True)
class EnvInfo:
    """What validation needs to know about an env, without keeping it open."""

    env_id: str
    observation_space: gym.Space
    action_space: gym.Space
    max_episode_steps: int | None


def check_env_id(env_id: str) -> None:
    """Raises SpecError if ``env_id`` is not a registered gymnasium id. The form
    ``"module:Env-v0"`` imports ``module`` first (as ``gym.make`` does), so any process that
    knows the id string alone, a worker included, can build the env."""
    if not isinstance(env_id, str):
        raise SpecError(f"env must be a gymnasium id string, got {env_id!r}")
    if ":" in env_id:
        module, _, name = env_id.partition(":")
        try:
            importlib.import_module(module)
        except Exception as error:
            raise SpecError(
                f"env {env_id!r}: module {module!r} does not import ({error}); valid: "
                "'module:EnvName-v0' with a module that registers EnvName-v0 on import"
            ) from error
        if name not in gym.registry:
            raise SpecError(
                f"env {env_id!r}: module {module!r} registers no env {name!r}; valid: an id "
                "the module registers with gymnasium.register"
            )
        return
    if env_id not in gym.registry:
        package = registering_package(env_id)
        if package is not None:
            module, dist = package
            raise SpecError(
                f"unknown env {env_id!r}: the package {module} registers it when imported; "
                f"valid: {module + ':' + env_id!r} (imports {module} first; `pip install "
                f"{dist}` if it is missing)"
            )
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SpecError(
            f"unknown env {env_id!r}{hint}; valid: any registered gymnasium id, featured: "
            f"{', '.join(FEATURED_ENVS)}"
        )


def registering_package(env_id: str) -> tuple[str, str] | None:
    """(module, pip distribution) of the known package that registers ``env_id`` on import,
    or None."""
    for prefix, package in REGISTERING_PACKAGES.items():
        if env_id.startswith(prefix):
            return package
    return None


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """gymnasium's EnvSpec of ``env_id``, the ``"module:Env-v0"`` form included."""
    check_env_id(env_id)
    return gym.spec(env_id.partition(":")[2] if ":" in env_id else env_id)


# Constructor arguments that change how an env is shown, not what it does.
_NOT_SETTINGS = ("self", "render_mode")


def _constructor_parameters(env_id: str) -> list[inspect.Parameter]:
    entry = env_spec(env_id).entry_point
    creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    return [
        p for p in inspect.signature(creator).parameters.values() if p.name not in _NOT_SETTINGS
    ]


def constructor_kwargs(env_id: str) -> tuple[str, ...] | None:
    """Keyword arguments the env's constructor accepts, or None when it takes ``**kwargs``."""
    params = _constructor_parameters(env_id)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params)


def effective_env_kwargs(
    env_id: str, env_kwargs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every setting the env is built with: constructor defaults, then the registered kwargs
    and step limit, then ``env_kwargs``; values as JSON would store them (tuples as lists), so
    ``{}`` and the defaults spelled out compare equal."""
    spec = env_spec(env_id)
    settings: dict[str, Any] = {
        p.name: p.default
        for p in _constructor_parameters(env_id)
        if p.default is not inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    settings.update(spec.kwargs)
    settings["max_episode_steps"] = spec.max_episode_steps
    settings.update(env_kwargs or {})
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def check_env_kwargs(env_id: str, env_kwargs: Mapping[str, Any]) -> None:
    """Raises SpecError for a kwarg the env does not take."""
    accepted = constructor_kwargs(env_id)
    if accepted is None:
        return
    valid = sorted({*accepted, *MAKE_KWARGS})
    for name in env_kwargs:
        if name not in valid:
            raise SpecError(
                f"unknown env kwarg {name!r} for env {env_id!r}; {choices_text(valid, name)}"
            )


def make_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None, *, eval: bool = False):
    """Makes ``env_id`` with ``env_kwargs``; eval envs without a step limit get EVAL_STEP_CAP."""
    env_kwargs = dict(env_kwargs or {})
    check_env_id(env_id)
    check_env_kwargs(env_id, env_kwargs)
    try:
        env = gym.make(env_id, **env_kwargs)
    except (TypeError, ValueError) as error:
        raise SpecError(f"env {env_id!r} rejected kwargs {env_kwargs!r}: {error}") from error
    if eval and env.spec is not None and env.spec.max_episode_steps is None:
        env = TimeLimit(env, EVAL_STEP_CAP)
    return env


@functools.lru_cache(maxsize=256)
def _env_info(env_id: str, kwargs_json: str) -> EnvInfo:
    env = make_env(env_id, json.loads(kwargs_json))
    try:
        limit = env.spec.max_episode_steps if env.spec is not None else None
        return EnvInfo(env_id, env.observation_space, env.action_space, limit)
    finally:
        env.close()


def env_info(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> EnvInfo:
    """Spaces and step limit of an env, cached per (id, kwargs)."""
    return _env_info(env_id, json.dumps(dict(env_kwargs or {}), sort_keys=True, default=str))


def _frozen_lake_success(terminated: bool, reward: float, info: Mapping[str, Any]) -> bool:
    return terminated and reward > 0


def _terminated_success(terminated: bool, reward: float, info: Mapping[str, Any]) -> bool:
    return terminated


def _info_success(terminated: bool, reward: float, info: Mapping[str, Any]) -> bool | None:
    # None: the env did not say (it has no goal, or reports none at this episode's end).
    reported = info.get("is_success")
    return None if reported is None else bool(reported)


# (terminated, reward, final info) -> reached the goal; None when the env does not say.
SuccessFn = Callable[[bool, float, Mapping[str, Any]], bool | None]

# How to tell that an episode reached the goal, for envs that have one. Our own envs put
# ``is_success`` in the final info (the Stable-Baselines3 convention).
_SUCCESS_BY_PREFIX: dict[str, SuccessFn] = {
    "FrozenLake": _frozen_lake_success,
    "rlcompare/RandomFrozenLake": _frozen_lake_success,
    "CliffWalking": _terminated_success,
    "Taxi": _terminated_success,
    "MountainCar": _terminated_success,
}


def success_fn(env_id: str) -> SuccessFn | None:
    """The goal test of ``env_id``: the table above for gymnasium's envs with a goal, else
    the ``is_success`` entry of the final info (Stable-Baselines3's convention) for any env,
    ours and users' alike; None for an env that has no goal by design."""
    if env_id == SELFHEALING_ID:
        return None  # SelfHealing never terminates: an incident handled is not an episode won
    for prefix, fn in _SUCCESS_BY_PREFIX.items():
        if env_id.startswith(prefix):
            return fn
    return _info_success
