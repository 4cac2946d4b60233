"""Hyperparameters of ``sac`` (Stable-Baselines3's SAC): SB3's names and defaults, checked
before training. Imports neither torch nor SB3, so registration stays light."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from rlcompare.algos.deep.common import _obs_supported
from rlcompare.errors import SpecError
from rlcompare.spec.params import Param

SAC_PARAMS: dict[str, Param] = {
    "learning_rate": Param(3e-4, "float", "Adam step size", low=0, low_open=True),
    "buffer_size": Param(1_000_000, "int", "replay capacity in transitions", low=1),
    "learning_starts": Param(100, "int", "env steps of random actions before learning", low=0),
    "batch_size": Param(256, "int", "transitions per gradient step", low=1),
    "tau": Param(
        0.005, "float", "Polyak coefficient of the target critics", low=0, high=1, low_open=True
    ),
    "gamma": Param(0.99, "float", "discount factor", low=0, high=1),
    "train_freq": Param(1, "int", "env steps between training phases", low=1),
    "gradient_steps": Param(
        1, "int", "gradient steps per phase (-1 = as many as env steps)", low=-1
    ),
    "ent_coef": Param(
        "auto",
        "float_or_str",
        "entropy weight: a positive float, 'auto' or 'auto_<init>' (learned)",
    ),
    "target_update_interval": Param(1, "int", "gradient steps between target updates", low=1),
    "target_entropy": Param("auto", "float_or_str", "entropy target of 'auto': 'auto' = -dim(A)"),
    "use_sde": Param(False, "bool", "generalized state-dependent exploration"),
    "net_arch": Param((256, 256), "int_list", "hidden sizes of actor and critics"),
    "device": Param(
        "cpu",
        "str",
        "torch device (cpu is the reproducible default)",
        choices=("cpu", "auto", "cuda"),
    ),
}

_AUTO = re.compile(r"^auto(_\d+(\.\d*)?([eE]-?\d+)?)?$")


def check_sac(hp: Mapping[str, Any]) -> None:
    """Rejects what SB3 would only catch deep inside ``__init__`` (or with a bare assert)."""
    ent_coef = hp["ent_coef"]
    if (
        isinstance(ent_coef, str)
        and not _AUTO.match(ent_coef)
        or (isinstance(ent_coef, float) and ent_coef <= 0)
    ):
        raise SpecError(
            f"hyperparameter 'ent_coef' of 'sac' = {ent_coef!r} is invalid; valid: a positive "
            "float, 'auto' or 'auto_<initial value>' such as 'auto_0.1'"
        )
    target = hp["target_entropy"]
    if isinstance(target, str) and target != "auto":
        raise SpecError(
            f"hyperparameter 'target_entropy' of 'sac' = {target!r} is invalid; valid: 'auto' "
            "or a float"
        )
    if hp["gradient_steps"] == 0:
        raise SpecError(
            "hyperparameter 'gradient_steps' of 'sac' = 0 is invalid; valid: -1 or >= 1"
        )


def continuous_actions(obs: gym.Space, act: gym.Space) -> str | None:
    """SAC needs a Box action space."""
    if not isinstance(act, gym.spaces.Box):
        return f"needs a Box (continuous) action space, got {act}"
    return _obs_supported(obs)
