"""Hyperparameter tables of the deep agents, with cross-parameter checks.

Names and defaults follow Stable-Baselines3 (``DQN.__init__`` / ``PPO.__init__``), so rl-zoo3
settings transfer as they are; ``tests/test_deep_registry.py`` checks the defaults against
the installed SB3. This module imports neither torch nor SB3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import gymnasium as gym

from rlcompare.algos.deep.common import require_default
from rlcompare.envs.make import env_info
from rlcompare.errors import SpecError
from rlcompare.spec.params import Param
from rlcompare.spec.registry import (
    Algorithm,
    CrossCheck,
    SpaceCheck,
    dataset_matches_env,
    offline_needs_steps,
    register_algorithm,
)

DEVICES = ("cpu", "auto", "cuda")
EXPLORATIONS = ("epsilon_greedy", "boltzmann", "noisy")
ACTIVATIONS = ("tanh", "relu")

# rl-zoo3's DQN hyperparameters for CartPole-v1 (the benchmark and the slow test use them).
ZOO_CARTPOLE_DQN = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "net_arch": [256, 256],
}

DEVICE_DOC = "torch device; auto = cuda when available (CPU is the reproducible default)"
# Every deep agent's ``device`` (a frozen Param, so the tables can share it).
DEVICE_PARAM = Param("cpu", "str", DEVICE_DOC, choices=DEVICES)


def off_policy_params(
    *,
    learning_rate: float,
    tau_doc: str,
    learning_starts_doc: str,
    batch_size: int = 256,
    tau: float = 0.005,
    train_freq: int = 1,
) -> dict[str, Param]:
    """The replay hyperparameters of Stable-Baselines3's off-policy classes (DQN, SAC), with
    ``OffPolicyAlgorithm``'s defaults where the class keeps them."""
    return {
        "learning_rate": Param(
            learning_rate,
            "float",
            "Adam step size",
            low=0,
            low_open=True,
            log=True,
            search=(1e-5, 1e-2),
        ),
        "buffer_size": Param(1_000_000, "int", "replay capacity in transitions", low=1),
        "learning_starts": Param(100, "int", learning_starts_doc, low=0),
        "batch_size": Param(batch_size, "int", "transitions per gradient step", low=1),
        "tau": Param(tau, "float", tau_doc, low=0, high=1, low_open=True),
        "gamma": Param(0.99, "float", "discount factor", low=0, high=1),
        "train_freq": Param(train_freq, "int", "env steps between training phases", low=1),
        "gradient_steps": Param(
            1, "int", "gradient steps per training phase (-1 = as many as env steps)", low=-1
        ),
    }


# SB3 DQN's own hyperparameters (defaults of stable_baselines3.DQN).
SB3_DQN_PARAMS: dict[str, Param] = {
    **off_policy_params(
        learning_rate=1e-4,
        batch_size=32,
        tau=1.0,
        train_freq=4,
        tau_doc="target update coefficient (1 = hard copy)",
        learning_starts_doc="env steps of uniform random actions before learning starts",
    ),
    "n_steps": Param(1, "int", "n-step returns (1 = one-step TD)", low=1),
    "target_update_interval": Param(
        10_000,
        "int",
        "env steps between target network updates",
        low=1,
        log=True,
        search=(10, 10_000),
    ),
    "exploration_fraction": Param(
        0.1,
        "float",
        "share of the budget over which epsilon decays",
        low=0,
        high=1,
        search=(0.05, 0.5),
    ),
    "exploration_initial_eps": Param(1.0, "float", "epsilon at the start", low=0, high=1),
    "exploration_final_eps": Param(0.05, "float", "epsilon after the decay", low=0, high=1),
    "max_grad_norm": Param(
        10.0,
        "float",
        "gradient norm clip (None = no clipping)",
        low=0,
        low_open=True,
        nullable=True,
    ),
    "net_arch": Param((64, 64), "int_list", "hidden layer sizes of the Q-network (ReLU)"),
    "device": DEVICE_PARAM,
}

# Switches of our own DQN that Stable-Baselines3's DQN does not have.
DQN_EXTRA_PARAMS: dict[str, Param] = {
    "double": Param(False, "bool", "Double DQN: online net picks, target net scores"),
    "dueling": Param(False, "bool", "dueling head: Q = V + A - mean(A)"),
    "prioritized": Param(False, "bool", "proportional prioritized replay with IS weights"),
    "per_alpha": Param(0.6, "float", "priority exponent of prioritized replay", low=0, high=1),
    "per_beta": Param(
        0.4, "float", "initial IS-weight exponent, annealed to 1 over the budget", low=0, high=1
    ),
    "noisy": Param(
        False, "bool", "factorized NoisyNet layers; with epsilon_greedy they replace epsilon"
    ),
    "exploration": Param(
        "epsilon_greedy",
        "str",
        "behaviour policy (noisy = greedy on a NoisyNet)",
        choices=EXPLORATIONS,
    ),
    "temperature": Param(1.0, "float", "Boltzmann temperature", low=0, low_open=True, log=True),
    "target_network": Param(True, "bool", "bootstrap from a target net (False = online net)"),
    "replay": Param(True, "bool", "replay memory (False = learn from the latest batch only)"),
    "dataset": Param(
        None,
        "str",
        "path of a Dataset.save file: learn offline, steps = gradient steps",
        nullable=True,
    ),
}

DQN_PARAMS: dict[str, Param] = {**SB3_DQN_PARAMS, **DQN_EXTRA_PARAMS}


def check_gradient_steps(hp: Mapping[str, Any], algo: str) -> None:
    """SB3's off-policy ``gradient_steps``: -1 or >= 1 (0 would never learn)."""
    if hp["gradient_steps"] == 0:
        raise SpecError(
            f"hyperparameter 'gradient_steps' of {algo!r} = 0 is invalid; valid: -1 (as many "
            "as env steps) or an int >= 1"
        )


def check_dqn(hp: Mapping[str, Any]) -> None:
    """Cross-parameter checks of ``dqn``."""
    check_gradient_steps(hp, "dqn")
    if hp["prioritized"] and not hp["replay"]:
        raise SpecError(
            "hyperparameter 'prioritized' = True needs replay = True; valid: prioritized = "
            "False when replay = False"
        )


def check_sb3_dqn(hp: Mapping[str, Any]) -> None:
    """Rejects our own switches, which Stable-Baselines3's DQN does not have."""
    check_gradient_steps(hp, "sb3_dqn")
    defaults = {name: param.default for name, param in DQN_EXTRA_PARAMS.items()}
    require_default(hp, defaults, "sb3_dqn", "Stable-Baselines3's DQN lacks it; use algo 'dqn'")


# PPO: defaults of stable_baselines3.PPO and of its ActorCriticPolicy (policy_kwargs).
PPO_PARAMS: dict[str, Param] = {
    "learning_rate": Param(
        3e-4, "float", "Adam step size", low=0, low_open=True, log=True, search=(1e-5, 1e-2)
    ),
    "n_steps": Param(2048, "int", "env steps per env per rollout", low=1),
    "batch_size": Param(64, "int", "minibatch size", low=2),
    "n_epochs": Param(10, "int", "passes over each rollout", low=1),
    "gamma": Param(0.99, "float", "discount factor", low=0, high=1),
    "gae_lambda": Param(0.95, "float", "GAE lambda", low=0, high=1),
    "clip_range": Param(0.2, "float", "policy ratio clip", low=0, low_open=True, search=(0.1, 0.4)),
    "clip_range_vf": Param(
        None, "float", "value clip (None = no clipping)", low=0, low_open=True, nullable=True
    ),
    "normalize_advantage": Param(True, "bool", "normalize advantages per minibatch"),
    "ent_coef": Param(0.0, "float", "entropy bonus coefficient", low=0, search=(0.0, 0.05)),
    "vf_coef": Param(0.5, "float", "value loss coefficient", low=0),
    "max_grad_norm": Param(0.5, "float", "gradient norm clip", low=0, low_open=True),
    "use_sde": Param(False, "bool", "generalized state-dependent exploration (Box actions)"),
    "sde_sample_freq": Param(-1, "int", "gSDE noise resampling period (-1 = per rollout)", low=-1),
    "target_kl": Param(
        None,
        "float",
        "early-stop an update past this KL (None = never)",
        low=0,
        low_open=True,
        nullable=True,
    ),
    "net_arch": Param((64, 64), "int_list", "hidden sizes of the policy and value nets"),
    "activation_fn": Param("tanh", "str", "hidden activation", choices=ACTIVATIONS),
    "ortho_init": Param(True, "bool", "orthogonal initialisation"),
    "log_std_init": Param(0.0, "float", "initial log std of Gaussian actions"),
    "n_envs": Param(1, "int", "parallel envs (DummyVecEnv) per rollout", low=1, high=256),
    "device": DEVICE_PARAM,
    "warm_start": Param(
        None,
        "str",
        "path of policy weights saved by a bc agent (BCAgent.save_policy)",
        nullable=True,
    ),
}

# Where our PPO table deliberately departs from SB3's signature (checked by the tests).
PPO_DEVIATIONS = {"device": "cpu"}


def check_ppo(hp: Mapping[str, Any]) -> None:
    """Checks that SB3 would otherwise make with bare asserts (gone under ``python -O``)."""
    if hp["n_steps"] * hp["n_envs"] <= 1:
        raise SpecError(
            f"n_steps * n_envs = {hp['n_steps'] * hp['n_envs']} is invalid; valid: > 1 "
            "(advantages are normalized over the rollout)"
        )


BC_PARAMS: dict[str, Param] = {
    "dataset": Param(None, "str", "path of a Dataset.save file (required)"),
    "batch_size": Param(64, "int", "transitions per gradient step", low=1),
    "learning_rate": Param(
        1e-3, "float", "Adam step size", low=0, low_open=True, log=True, search=(1e-4, 1e-2)
    ),
    "net_arch": Param((64, 64), "int_list", "hidden sizes (as ppo, so bc can warm-start it)"),
    "activation_fn": Param("tanh", "str", "hidden activation", choices=ACTIVATIONS),
    "ortho_init": Param(True, "bool", "orthogonal initialisation"),
    "log_std_init": Param(0.0, "float", "initial log std of Gaussian actions"),
    "device": DEVICE_PARAM,
}


def check_bc(hp: Mapping[str, Any]) -> None:
    """``dataset`` is required."""
    if hp["dataset"] is None:
        raise SpecError(
            "algo 'bc' needs hyperparameter 'dataset'; valid: the path of a file written by "
            "Dataset.save (see rlcompare.collect_demonstrations)"
        )


def check_deep_spec(spec: Any) -> None:
    """Checks that need the whole RunSpec, made when it is built rather than when training
    starts (where a sweep could only record a failure): a dataset of the spec's env and
    settings, use_sde on Box actions, a CUDA device that exists."""
    hp = spec.resolved_hparams
    dataset_matches_env(spec)
    if spec.algo != "bc":  # bc's episodes are passes over the data
        offline_needs_steps(spec)
    if hp.get("use_sde"):
        actions = env_info(spec.env, spec.env_kwargs).action_space
        if not isinstance(actions, gym.spaces.Box):
            raise SpecError(
                f"hyperparameter 'use_sde' = True needs a Box action space; env {spec.env!r} "
                f"has {actions}; valid: use_sde = False"
            )
    if hp.get("device") == "cuda":
        import torch  # only when a user asks for CUDA

        if not torch.cuda.is_available():
            raise SpecError(
                "hyperparameter 'device' = 'cuda' but no CUDA device is available; valid: cpu, auto"
            )


class DeepAlgorithm(NamedTuple):
    """The declaration of a deep algorithm: every one (the built-ins, ``mpc`` and each
    ``register_sb3`` class) is registered by :meth:`register`, in the ``deep`` family (each
    run pins torch to one thread)."""

    name: str
    summary: str
    params: Mapping[str, Param]
    trainer: str | Callable[..., Any]
    spaces: SpaceCheck
    check_params: CrossCheck | None
    check_spec: Callable[[Any], None] = check_deep_spec

    def register(self) -> Algorithm:
        """Registers it; the same declaration again is a no-op."""
        return register_algorithm(
            self.name,
            trainer=self.trainer,
            params=self.params,
            summary=self.summary,
            spaces=self.spaces,
            check_params=self.check_params,
            check_spec=self.check_spec,
            family="deep",
        )
