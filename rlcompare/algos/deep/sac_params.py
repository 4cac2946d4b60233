"""Hyperparameters of ``sac`` (Stable-Baselines3's SAC): SB3's names and defaults, checked
before training with the checks the other deep agents share (``rlcompare.algos.deep.hparams``).
Imports neither torch nor SB3, so registration stays light."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rlcompare.algos.deep.hparams import DEVICE_PARAM, check_gradient_steps, off_policy_params
from rlcompare.errors import SpecError
from rlcompare.spec.params import Param

SAC_PARAMS: dict[str, Param] = {
    **off_policy_params(
        learning_rate=3e-4,
        tau_doc="Polyak coefficient of the target critics",
        learning_starts_doc="env steps of random actions before learning",
    ),
    "ent_coef": Param(
        "auto",
        "float_or_str",
        "entropy weight: a positive float, 'auto' or 'auto_<init>' (learned)",
    ),
    # SB3 tests `gradient_step % target_update_interval == 0` with the index inside one
    # train() call, which restarts at 0 every phase: not a count of all gradient steps.
    "target_update_interval": Param(
        1,
        "int",
        "Polyak update of the target critics on gradient steps 0, k, 2k, ... of each training "
        "phase (the count restarts every phase): ceil(gradient_steps / k) per phase, so with "
        "gradient_steps=1 every value updates after every gradient step",
        low=1,
    ),
    "target_entropy": Param("auto", "float_or_str", "entropy target of 'auto': 'auto' = -dim(A)"),
    "use_sde": Param(False, "bool", "generalized state-dependent exploration"),
    "net_arch": Param((256, 256), "int_list", "hidden sizes of actor and critics"),
    "device": DEVICE_PARAM,
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
    check_gradient_steps(hp, "sac")
