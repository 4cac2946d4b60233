"""Hyperparameters, checks and registration of ``mpc`` (learned model + sampling planner).

Imports neither torch nor the agent, so registering ``mpc`` keeps ``import rlcompare`` light:
the trainer is named by its ``"module:function"`` string. The env reward functions below are
written with tensor methods only, so they too need no torch import here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

from rlcompare.algos.deep.hparams import DEVICE_PARAM, DeepAlgorithm, check_deep_spec
from rlcompare.envs.make import env_info
from rlcompare.errors import SpecError
from rlcompare.spec.params import Param

PLANNERS = ("cem", "mppi")

MPC_PARAMS: dict[str, Param] = {
    "planner": Param(
        "cem", "str", "sampling planner: cem (elites refit) or mppi", choices=PLANNERS
    ),
    "horizon": Param(20, "int", "env steps each candidate action sequence plans ahead", low=1),
    "population": Param(200, "int", "candidate action sequences per planner iteration", low=1),
    "elites": Param(20, "int", "cem: best candidates the sampling distribution is refit to", low=1),
    "iterations": Param(3, "int", "planner iterations per env step (resample, refit)", low=1),
    "temperature": Param(
        1.0,
        "float",
        "mppi: softmax temperature over predicted returns (in return units)",
        low=0,
        low_open=True,
    ),
    "init_std": Param(
        0.5,
        "float",
        "std of the sampled actions in units of the Box half-width (cem: first iteration; "
        "mppi: every iteration)",
        low=0,
        low_open=True,
    ),
    "ensemble_size": Param(3, "int", "dynamics models in the ensemble (1 = a single model)", low=1),
    "hidden": Param((128, 128), "int_list", "hidden layer sizes of each model (SiLU)"),
    "learning_rate": Param(1e-3, "float", "Adam step size of the model", low=0, low_open=True),
    "model_batch_size": Param(64, "int", "transitions per model gradient step", low=1),
    "model_epochs": Param(
        5, "int", "passes over all transitions so far at each model training phase", low=1
    ),
    "train_every": Param(
        200, "int", "env steps between model training phases (and one when random_steps end)", low=1
    ),
    "random_steps": Param(
        200, "int", "env steps of uniformly random actions before planning starts", low=0
    ),
    "learned_reward": Param(
        True,
        "bool",
        "learn the reward with the dynamics (False: the env's reward function from "
        "ENV_REWARDS, where it has one)",
    ),
    "angle_pairs": Param(
        "env",
        "str",
        "observation coordinate pairs (cos, sin) of an angle that the model's rollouts project "
        "back onto the unit circle: 'env' (the env's pairs in ENV_ANGLE_PAIRS; Pendulum-v1: "
        "0:1), 'none', or 'cos:sin' index pairs such as '0:1,3:4'",
    ),
    "device": DEVICE_PARAM,
}

# env id -> the (cos, sin) coordinate pairs of its observation (``angle_pairs = 'env'``). A
# learned model predicts each coordinate's change on its own, so its rollouts leave the unit
# circle: on Pendulum-v1 after 1,500 steps (notebook 06's planner), radius after 10 steps of
# random actions per seed: median 0.995-1.049, 5% 0.896-0.965, 95% 1.037-1.212 (issue 27
# saw median 1.075, 5-95% [0.468, 1.299] on planning candidates). Projected, the final eval
# return over 6 seeds: median -180.6 (unprojected -186.2), IQM -167.5 (-174.2), mean -268.0
# (-177.8: one seed's 2 eval episodes, -819 against -253).
ENV_ANGLE_PAIRS: dict[str, tuple[tuple[int, int], ...]] = {"Pendulum-v1": ((0, 1),)}


def _pendulum_reward(obs: Any, action: Any) -> Any:
    """Pendulum-v1's reward of (obs, torque) as gymnasium computes it from the state before
    the step: atan2 already lies in [-pi, pi], so it is its own angle_normalize."""
    theta = obs[..., 1].atan2(obs[..., 0])
    torque = action[..., 0].clamp(-2.0, 2.0)
    return -(theta.square() + 0.1 * obs[..., 2].square() + 0.001 * torque.square())


# env id -> reward(obs (..., obs_dim), action in env units (..., act_dim)) -> (...), on torch
# tensors; used by the planner when learned_reward = False.
ENV_REWARDS: dict[str, Callable[[Any, Any], Any]] = {"Pendulum-v1": _pendulum_reward}


def mpc_spaces(obs: gym.Space, act: gym.Space) -> str | None:
    """Space check of ``mpc``: a Box observation (the model predicts its change) and a Box
    action space (the planner samples continuous action sequences)."""
    if not isinstance(act, gym.spaces.Box):
        return (
            f"needs a Box (continuous) action space, got {act}; the planner samples continuous "
            "action sequences (use dqn or ppo for discrete actions)"
        )
    if not isinstance(obs, gym.spaces.Box):
        return f"needs a Box observation space (the model predicts its change), got {obs}"
    if not (all(math.isfinite(v) for v in act.low) and all(math.isfinite(v) for v in act.high)):
        return f"needs a bounded Box action space (the planner samples within it), got {act}"
    return None


def check_mpc(hp: Mapping[str, Any]) -> None:
    """Cross-parameter checks of ``mpc``."""
    if hp["planner"] == "cem" and hp["elites"] > hp["population"]:
        raise SpecError(
            f"hyperparameter 'elites' of 'mpc' = {hp['elites']} is more than population = "
            f"{hp['population']}; valid: 1 <= elites <= population"
        )


def angle_pairs(value: str, env_id: str) -> tuple[tuple[int, int], ...]:
    """The (cos, sin) index pairs that ``angle_pairs = value`` names on ``env_id``.

    Raises:
        SpecError: ``value`` is not 'env', 'none' or 'i:j,k:l' with distinct indices.
    """
    if value == "env":
        return ENV_ANGLE_PAIRS.get(env_id, ())
    if value == "none":
        return ()
    pairs = []
    for text in value.split(","):
        cos_sin = text.strip().split(":")
        if len(cos_sin) != 2 or not all(part.strip().isdigit() for part in cos_sin):
            raise SpecError(
                f"hyperparameter 'angle_pairs' of 'mpc' = {value!r} is not understood; valid: "
                "'env', 'none' or 'cos:sin' pairs of observation indices such as '0:1,3:4'"
            )
        pairs.append((int(cos_sin[0]), int(cos_sin[1])))
    indices = [index for pair in pairs for index in pair]
    repeated = sorted({index for index in indices if indices.count(index) > 1})
    if repeated:
        raise SpecError(
            f"hyperparameter 'angle_pairs' of 'mpc' = {value!r} names index {repeated[0]} more "
            "than once; valid: pairs of distinct observation indices"
        )
    return tuple(pairs)


def check_mpc_spec(spec: Any) -> None:
    """``learned_reward = False`` needs the env's reward function; ``angle_pairs`` must name
    coordinates of the observation; the deep agents' checks."""
    check_deep_spec(spec)
    pairs = angle_pairs(spec.resolved_hparams["angle_pairs"], spec.env)
    obs_space = env_info(spec.env, spec.env_kwargs).observation_space
    obs_dim = math.prod(obs_space.shape or ())
    outside = [index for pair in pairs for index in pair if index >= obs_dim]
    if outside:
        raise SpecError(
            f"hyperparameter 'angle_pairs' of 'mpc' = {spec.resolved_hparams['angle_pairs']!r} "
            f"names index {outside[0]}, outside the {obs_dim} coordinates of {spec.env!r}'s "
            f"observation; valid: indices 0 <= i < {obs_dim}"
        )
    if not spec.resolved_hparams["learned_reward"] and spec.env not in ENV_REWARDS:
        raise SpecError(
            f"hyperparameter 'learned_reward' = False but env {spec.env!r} has no reward "
            f"function in rlcompare.algos.deep.mpc_params.ENV_REWARDS; valid: learned_reward = "
            f"True, or an env with one: {', '.join(sorted(ENV_REWARDS))}"
        )


MPC_SUMMARY = "MPC: learned ensemble dynamics + CEM/MPPI sampling planner (Box actions)"

# mpc's declaration, beside its hyperparameter table (rlcompare.algos.deep registers it with
# the other built-ins, after sac).
MPC = DeepAlgorithm(
    "mpc",
    MPC_SUMMARY,
    MPC_PARAMS,
    "rlcompare.algos.deep.mpc:train",
    mpc_spaces,
    check_mpc,
    check_mpc_spec,
)


def register_mpc() -> None:
    """Registers ``mpc``; registering it again (a re-imported module) is a no-op."""
    MPC.register()
