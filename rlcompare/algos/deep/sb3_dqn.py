"""``sb3_dqn``: Stable-Baselines3's DQN behind our contract, the reference peer of ``dqn``.

It takes the same hyperparameter table as ``dqn`` (so one grid can name both) and rejects our
own switches (double, dueling, PER, NoisyNet, ...) unless they keep their defaults; those are
not arguments of SB3's DQN, so the generic SB3 trainer does not pass them. Episodes,
evaluations and the budget follow :mod:`rlcompare.algos.deep.sb3_common`; epsilon decays over
the run's horizon (an episodes budget needs an env with a step limit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlcompare.algos.deep.sb3_generic import SB3Trainer


def model_kwargs(hp: Mapping[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``max_grad_norm = None`` (our "no clipping") is SB3's infinite norm."""
    if hp["max_grad_norm"] is None:
        return {**kwargs, "max_grad_norm": float("inf")}
    return kwargs


# The trainer of ``sb3_dqn``: the generic SB3 trainer (greedy policy: the Q-network's argmax).
train = SB3Trainer("stable_baselines3:DQN", model_kwargs=model_kwargs)
