"""Deep agents: our DQN, PPO and DQN from Stable-Baselines3, and behavioral cloning.

Importing this package registers the algorithms without importing torch or SB3: each trainer
is a ``"module:function"`` string loaded when a run starts.

- ``dqn`` (:mod:`rlcompare.deep.dqn`): our own DQN with SB3's hyperparameter names and
  switches (double, dueling, n-step, prioritized replay, NoisyNet, Boltzmann), online or
  offline from a logged Dataset.
- ``sb3_dqn`` (:mod:`rlcompare.deep.sb3_dqn`): Stable-Baselines3's DQN, the reference peer.
- ``ppo`` (:mod:`rlcompare.deep.ppo`): Stable-Baselines3's PPO; optional BC warm start.
- ``bc`` (:mod:`rlcompare.deep.bc`): behavioral cloning of a Dataset into an SB3 policy.
"""

from __future__ import annotations

from rlcompare.deep.common import policy_spaces, value_based_spaces
from rlcompare.deep.hparams import (
    BC_PARAMS,
    DQN_PARAMS,
    PPO_PARAMS,
    check_bc,
    check_deep_spec,
    check_dqn,
    check_ppo,
    check_sb3_dqn,
)
from rlcompare.deep.sac_params import SAC_PARAMS, check_sac, continuous_actions
from rlcompare.registry import Algorithm, register

register(
    Algorithm(
        name="dqn",
        summary="DQN (ours): replay, target net, double/dueling/n-step/PER/NoisyNet switches",
        params=DQN_PARAMS,
        trainer="rlcompare.deep.dqn:train",
        check_spaces=value_based_spaces,
        check_params=check_dqn,
        check_spec=check_deep_spec,
        family="deep",
    )
)
register(
    Algorithm(
        name="sb3_dqn",
        summary="Stable-Baselines3 DQN, the reference for dqn (same hyperparameter names)",
        params=DQN_PARAMS,
        trainer="rlcompare.deep.sb3_dqn:train",
        check_spaces=value_based_spaces,
        check_params=check_sb3_dqn,
        check_spec=check_deep_spec,
        family="deep",
    )
)
register(
    Algorithm(
        name="ppo",
        summary="Stable-Baselines3 PPO (Discrete and Box actions), optional BC warm start",
        params=PPO_PARAMS,
        trainer="rlcompare.deep.ppo:train",
        check_spaces=policy_spaces,
        check_params=check_ppo,
        check_spec=check_deep_spec,
        family="deep",
    )
)
register(
    Algorithm(
        name="bc",
        summary="behavioral cloning of a logged Dataset into an SB3 ActorCriticPolicy",
        params=BC_PARAMS,
        trainer="rlcompare.deep.bc:train",
        check_spaces=policy_spaces,
        check_params=check_bc,
        check_spec=check_deep_spec,
        family="deep",
    )
)
register(
    Algorithm(
        name="sac",
        summary="Stable-Baselines3 SAC: off-policy maximum-entropy actor-critic (Box actions)",
        params=SAC_PARAMS,
        trainer="rlcompare.deep.sac:train",
        check_spaces=continuous_actions,
        check_params=check_sac,
        check_spec=check_deep_spec,
        family="deep",
    )
)
