"""Tabular learners: Q-learning, SARSA, Expected SARSA, Double Q-learning, Dyna-Q.

This module only declares them (hyperparameter tables, space checks); numba and the
engine load when a run starts (``rlcompare.algos.tabular.trainers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlcompare.algos.exploration import EXPLORATION_PARAMS, strategy_from_hparams
from rlcompare.spec.params import Param
from rlcompare.spec.registry import check_offline, discrete_both, register_algorithm

COMMON_PARAMS: dict[str, Param] = {
    "alpha": Param(
        0.1,
        "float",
        "constant step size (alpha_schedule='constant')",
        low=0.0,
        low_open=True,
        high=1.0,
    ),
    "alpha_schedule": Param(
        "constant",
        "str",
        "'visit': Robbins-Monro step size 1 / n(s, a)^omega (alpha unused)",
        choices=("constant", "visit"),
    ),
    "omega": Param(
        1.0, "float", "exponent of the visit step size", low=0.5, low_open=True, high=1.0
    ),
    "gamma": Param(0.99, "float", "discount", low=0.0, high=1.0),
    "q_init": Param(0.0, "float", "initial action values (optimism: above the best return)"),
    **EXPLORATION_PARAMS,
}

DATASET_PARAM: dict[str, Param] = {
    "dataset": Param(
        None,
        "str",
        "learn from this Dataset.save file instead of the env: one "
        "TD update per step on a uniformly drawn transition",
        nullable=True,
    ),
}

PLANNING_PARAM: dict[str, Param] = {
    "planning_steps": Param(
        5, "int", "Dyna-Q: simulated updates from the model per real step", low=0
    ),
}

_TRAINERS = "rlcompare.algos.tabular.trainers"


def check_tabular_params(hp: Mapping[str, Any]) -> None:
    """Cross-parameter checks: exponential schedules need positive ends.

    Raises:
        SpecError: naming the parameter and what is valid.
    """
    strategy_from_hparams(hp)


def _declare(name: str, summary: str, extra: Mapping[str, Param]) -> None:
    register_algorithm(
        name,
        trainer=f"{_TRAINERS}:train",
        batch_trainer=f"{_TRAINERS}:train_batch",
        params={**COMMON_PARAMS, **extra},
        summary=summary,
        spaces=discrete_both,
        check_params=check_tabular_params,
        # A dataset must exist, match the env's settings, and comes with a steps budget.
        check_spec=check_offline,
        family="tabular",
    )


_declare("q_learning", "tabular Q-learning (off-policy TD control)", DATASET_PARAM)
_declare("sarsa", "tabular SARSA (on-policy TD control)", {})
_declare(
    "expected_sarsa",
    "tabular Expected SARSA (expectation over the behaviour policy)",
    DATASET_PARAM,
)
_declare("double_q", "tabular Double Q-learning (van Hasselt 2010)", DATASET_PARAM)
_declare(
    "dyna_q", "tabular Dyna-Q (Sutton & Barto 8.2, deterministic last-seen model)", PLANNING_PARAM
)
