"""Tabular learners: Q-learning, SARSA, Expected SARSA, Double Q-learning, and the
model-based ones: Dyna-Q, prioritized sweeping, certainty equivalence, PSRL.

This module only declares them (hyperparameter tables, space checks); numba and the
engine load when a run starts (``rlcompare.algos.tabular.trainers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlcompare.algos.exploration import EXPLORATION_PARAMS, strategy_from_hparams
from rlcompare.algos.tabular.rules import DYNA_MODELS, RESAMPLE_RULES, REWARD_PRIORS
from rlcompare.errors import SpecError
from rlcompare.spec.params import Param
from rlcompare.spec.registry import check_offline, discrete_both, register_algorithm

VALUE_PARAMS: dict[str, Param] = {
    "gamma": Param(0.99, "float", "discount", low=0.0, high=1.0),
    "q_init": Param(0.0, "float", "initial action values (optimism: above the best return)"),
}

STEP_SIZE_PARAMS: dict[str, Param] = {
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
}

# The TD learners' table (Dyna-Q's too).
COMMON_PARAMS: dict[str, Param] = {**STEP_SIZE_PARAMS, **VALUE_PARAMS, **EXPLORATION_PARAMS}

DATASET_PARAM: dict[str, Param] = {
    "dataset": Param(
        None,
        "str",
        "learn from this Dataset.save file instead of the env: one TD update per step on "
        "a transition drawn uniformly, with replacement (replay of the logs)",
        nullable=True,
    ),
}

PLANNING_PARAM: dict[str, Param] = {
    "planning_steps": Param(5, "int", "simulated updates from the model per real step", low=0),
}

DYNA_PARAMS: dict[str, Param] = {
    **PLANNING_PARAM,
    "model": Param(
        "last",
        "str",
        "'last': the last transition seen per (s, a) (Sutton & Barto); 'sample': next states "
        "drawn from the visit counts; 'expected': the expectation over them",
        choices=DYNA_MODELS,
    ),
}

# Value iteration on a learned or sampled model (certainty equivalence, PSRL).
SOLVER_PARAMS: dict[str, Param] = {
    "max_sweeps": Param(1000, "int", "value iteration: most sweeps per (re)plan", low=1),
    "tolerance": Param(
        1e-6, "float", "value iteration: stop when no value moves by more", low=0.0, low_open=True
    ),
}

SWEEPING_PARAMS: dict[str, Param] = {
    "planning_steps": Param(
        5, "int", "most expected updates from the priority queue per real step", low=0
    ),
    "theta": Param(1e-4, "float", "queue a pair only if its update would move Q by more", low=0.0),
}

CERTAINTY_PARAMS: dict[str, Param] = {
    "replan_every": Param(
        10, "int", "value iteration on the learned model every this many real steps", low=1
    ),
    **SOLVER_PARAMS,
}

PSRL_PARAMS: dict[str, Param] = {
    **VALUE_PARAMS,
    "gamma": Param(
        0.99,
        "float",
        "discount (< 1: a sampled MDP need not terminate)",
        low=0.0,
        high=1.0,
        high_open=True,
    ),
    "prior": Param(
        0.01,
        "float",
        "total Dirichlet concentration over next states (prior / S on each state): after "
        "n visits about prior / n of a pair's mass goes to states never seen from it, whose "
        "values come from the prior alone",
        low=0.0,
        low_open=True,
    ),
    "reward_prior": Param(
        "normal",
        "str",
        "'normal': Normal prior, known noise std; 'beta': Beta(1, 1), rewards in [0, 1]",
        choices=REWARD_PRIORS,
    ),
    "reward_prior_mean": Param(0.0, "float", "Normal prior's mean reward"),
    "reward_prior_std": Param(1.0, "float", "Normal prior's std", low=0.0, low_open=True),
    "reward_noise_std": Param(
        1.0, "float", "known std of a reward around its mean", low=0.0, low_open=True
    ),
    "resample": Param(
        "episode",
        "str",
        "draw a new MDP at every episode's end or when the visit count of the pair just "
        "updated has doubled since the last draw ('episode'), every resample_every steps "
        "('every'), or only on a doubled count ('doubling')",
        choices=RESAMPLE_RULES,
    ),
    "resample_every": Param(1000, "int", "steps between draws (resample='every')", low=1),
    **SOLVER_PARAMS,
}

_TRAINERS = "rlcompare.algos.tabular.trainers"


def check_tabular_params(hp: Mapping[str, Any]) -> None:
    """Cross-parameter checks: exponential schedules need positive ends.

    Raises:
        SpecError: naming the parameter and what is valid.
    """
    if "exploration" in hp:
        strategy_from_hparams(hp)


def check_beta_rewards(spec: Any) -> None:
    """PSRL's Beta reward posterior needs rewards in [0, 1]: checked on the env's model,
    where it is known, before any training."""
    if spec.resolved_hparams.get("reward_prior") != "beta":
        return
    from rlcompare.envs.model import model_or_none

    mdp = model_or_none(spec.env, spec.env_kwargs)
    if mdp is None:
        return
    rewards = mdp.outcome_reward[mdp.outcome_prob > 0]
    low, high = float(rewards.min()), float(rewards.max())
    if low < 0.0 or high > 1.0 or (mdp.reward_std > 0).any():
        raise SpecError(
            f"reward_prior='beta' on {spec.env}: its rewards span [{low:g}, {high:g}]"
            f"{' with noise' if (mdp.reward_std > 0).any() else ''}; valid: rewards in "
            "[0, 1], or reward_prior='normal'"
        )


def _declare(
    name: str,
    summary: str,
    extra: Mapping[str, Param],
    base: Mapping[str, Param] = COMMON_PARAMS,
    check_spec: Any = check_offline,
) -> None:
    register_algorithm(
        name,
        trainer=f"{_TRAINERS}:train",
        batch_trainer=f"{_TRAINERS}:train_batch",
        params={**base, **extra},
        summary=summary,
        spaces=discrete_both,
        check_params=check_tabular_params,
        # A dataset must exist, match the env's settings, and comes with a steps budget.
        check_spec=check_spec,
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
    "dyna_q",
    "tabular Dyna-Q (Sutton & Barto 8.2): last-seen, sampled or expected model",
    DYNA_PARAMS,
)
_MODEL_BASED = {**VALUE_PARAMS, **EXPLORATION_PARAMS}
_declare(
    "prioritized_sweeping",
    "prioritized sweeping (Sutton & Barto 8.4), expected updates on the learned model",
    SWEEPING_PARAMS,
    _MODEL_BASED,
)
# Certainty equivalence builds its model from logs in one pass (``kernels.run_offline``).
CE_DATASET_PARAM: dict[str, Param] = {
    "dataset": Param(
        None,
        "str",
        "learn from this Dataset.save file instead of the env: step k counts logged "
        "transition k into the model (each once, in logged order; the last one also plans), "
        "steps past the logs' size change nothing",
        nullable=True,
    ),
}

_declare(
    "certainty_equivalence",
    "value iteration on the maximum-likelihood model, acting with an exploration strategy "
    "(from logs: the logs' own model)",
    {**CERTAINTY_PARAMS, **CE_DATASET_PARAM},
    _MODEL_BASED,
)
_declare(
    "psrl",
    "posterior sampling RL (Osband, Russo & Van Roy 2013): act on an MDP drawn from the posterior",
    {},
    PSRL_PARAMS,
    check_beta_rewards,
)
