"""Tabular learners: Q-learning, SARSA, Expected SARSA, Double Q-learning, and the
model-based ones: Dyna-Q, prioritized sweeping, certainty equivalence, PSRL.

This module only declares them (hyperparameter tables, space checks); numba and the
engine load when a run starts (``rlcompare.algos.tabular.trainers``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rlcompare.algos.exploration import EXPLORATION_PARAMS, strategy_from_hparams
from rlcompare.algos.tabular.rules import DYNA_MODELS, RESAMPLE_RULES, REWARD_PRIORS
from rlcompare.errors import SpecError
from rlcompare.spec.params import Param
from rlcompare.spec.registry import check_offline, discrete_both, register_algorithm

if TYPE_CHECKING:
    from rlcompare.envs.model import TabularMDP

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
        log=True,
        search=(0.01, 1.0),
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

# A PSRL setting the spec fills from the env's model (``resolve_psrl_prior``).
AUTO = "auto"

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
        AUTO,
        "str",
        "'normal': Normal prior, known noise std; 'beta': Beta(1, 1), rewards in [0, 1]; "
        "'auto': from the env's model, beta where its rewards lie in [0, 1] without noise, "
        "else normal",
        choices=(AUTO, *REWARD_PRIORS),
    ),
    "reward_prior_mean": Param(0.0, "float", "Normal prior's mean reward"),
    "reward_prior_std": Param(
        None,
        "float",
        "Normal prior's std (None: the env's reward scale, the power of ten at or above its "
        "largest |reward|; 1 without a model)",
        low=0.0,
        low_open=True,
        nullable=True,
    ),
    "reward_noise_std": Param(
        None,
        "float",
        "known std of a reward around its mean (None: 1% of the env's reward scale; 1 "
        "without a model)",
        low=0.0,
        low_open=True,
        nullable=True,
    ),
    "resample": Param(
        "episode",
        "str",
        "draw a new MDP at every episode's end or when the visit count of the pair just "
        "updated exceeds twice its count at the last draw ('episode'), every resample_every "
        "steps ('every'), or only on such a count ('doubling': TSDE's condition, Ouyang et "
        "al. 2017, without its episode-length one)",
        choices=RESAMPLE_RULES,
    ),
    "resample_every": Param(1000, "int", "steps between draws (resample='every')", low=1),
    **SOLVER_PARAMS,
}

_TRAINERS = "rlcompare.algos.tabular.trainers"
_PRIOR_STDS = ("reward_prior_std", "reward_noise_std")
# PSRL's known reward noise, as a share of the reward scale (see ``psrl_prior``).
PSRL_NOISE_SHARE = 0.01
# PSRL's Normal prior on an env without a model, whose reward scale is unknown.
NO_MODEL_PRIOR: dict[str, Any] = {
    "reward_prior": "normal",
    "reward_prior_mean": 0.0,
    "reward_prior_std": 1.0,
    "reward_noise_std": 1.0,
}


def check_tabular_params(hp: Mapping[str, Any]) -> None:
    """Cross-parameter checks: exponential schedules need positive ends.

    Raises:
        SpecError: naming the parameter and what is valid.
    """
    if "exploration" in hp:
        strategy_from_hparams(hp)


def reward_scale(mdps: Sequence[TabularMDP]) -> float:
    """The order of magnitude of the rewards of ``mdps``: the power of ten at or above the
    largest |reward| of any possible outcome (1 when every reward is 0). RiverSwim: 10,000
    (its far reward); DeepSea: 1 (the treasure); FrozenLake: 1; CliffWalking: 100."""
    largest = max(float(np.abs(m.outcome_reward[m.outcome_prob > 0]).max()) for m in mdps)
    if largest == 0.0:
        return 1.0
    return float(10.0 ** math.ceil(math.log10(largest)))


def psrl_prior(mdps: Sequence[TabularMDP]) -> dict[str, Any]:
    """PSRL's reward prior from the rewards of ``mdps`` (one env, or one env at several
    settings that should share a prior).

    Rewards in [0, 1] without noise (FrozenLake's goal): ``{"reward_prior": "beta"}``, the
    Beta(1, 1) prior, conjugate to a pair's Bernoulli reward. Otherwise (RiverSwim's 5 and
    10,000, DeepSea's move cost of -0.01 / N): a Normal prior centred on 0 with the std of
    the reward scale (:func:`reward_scale`) and a known noise std of ``PSRL_NOISE_SHARE`` of
    it, small so that a mean reward's posterior narrows within a few visits and the
    Dirichlet over next states carries the rest. A N(0, 1) prior on RiverSwim never leaves
    the bank: no draw makes 10,000 upstream worth more than the 5 it has seen.
    """
    rewards = np.concatenate([m.outcome_reward[m.outcome_prob > 0] for m in mdps])
    noisy = any((m.reward_std > 0).any() for m in mdps)
    if rewards.min() >= 0.0 and rewards.max() <= 1.0 and not noisy:
        return {"reward_prior": "beta"}
    scale = reward_scale(mdps)
    return {
        "reward_prior": "normal",
        "reward_prior_mean": 0.0,
        "reward_prior_std": scale,
        "reward_noise_std": PSRL_NOISE_SHARE * scale,
    }


def resolve_psrl_prior(spec: Any) -> None:
    """PSRL's check_spec: fills the reward prior left to the env (``reward_prior='auto'``,
    ``reward_prior_std`` / ``reward_noise_std`` None) from its model (:func:`psrl_prior`;
    N(0, 1) with noise std 1 for an env without a model), so the spec's resolved
    hyperparameters, its run id and the stored ``hp.`` columns hold the numbers used; then
    checks that a Beta prior meets rewards in [0, 1]."""
    from rlcompare.envs.model import model_or_none

    hp = dict(spec.resolved_hparams)
    unset = [name for name in _PRIOR_STDS if hp[name] is None]
    if hp["reward_prior"] == AUTO or unset:
        mdp = model_or_none(spec.env, spec.env_kwargs)
        prior = psrl_prior([mdp]) if mdp is not None else dict(NO_MODEL_PRIOR)
        if hp["reward_prior"] == AUTO:
            hp["reward_prior"] = prior["reward_prior"]
        if hp["reward_prior"] == "normal":  # a Beta prior has no stds: they stay None
            scaled = _scaled(mdp)
            for name in unset:
                hp[name] = scaled[name]
        # RunSpec is frozen; its resolved hyperparameters are derived data it owns.
        object.__setattr__(spec, "_resolved", type(spec.resolved_hparams)(hp))
    check_beta_rewards(spec)


def _scaled(mdp: TabularMDP | None) -> dict[str, float]:
    """The Normal prior's stds from the reward scale of ``mdp`` (None: no model)."""
    if mdp is None:
        return dict(NO_MODEL_PRIOR)
    scale = reward_scale([mdp])
    return {"reward_prior_std": scale, "reward_noise_std": PSRL_NOISE_SHARE * scale}


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
    "posterior sampling RL, discounted variant: act greedily on the stationary gamma-discounted "
    "policy of an MDP drawn from the posterior (Osband, Russo & Van Roy 2013 plan a tau-horizon "
    "policy per episode), redrawn at episode ends and on TSDE's doubled counts",
    {},
    PSRL_PARAMS,
    resolve_psrl_prior,
)
