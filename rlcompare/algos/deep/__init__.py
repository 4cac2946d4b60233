"""Deep agents: our DQN, PPO, DQN and SAC from Stable-Baselines3, and behavioral cloning.

Importing this package registers the algorithms without importing torch or SB3: each trainer
is a ``"module:function"`` string loaded when a run starts.

- ``dqn`` (:mod:`rlcompare.algos.deep.dqn`): our own DQN with SB3's hyperparameter names and
  switches (double, dueling, n-step, prioritized replay, NoisyNet, Boltzmann), online or
  offline from a logged Dataset.
- ``sb3_dqn`` (:mod:`rlcompare.algos.deep.sb3_dqn`): Stable-Baselines3's DQN, the reference peer.
- ``ppo`` (:mod:`rlcompare.algos.deep.ppo`): Stable-Baselines3's PPO; optional BC warm start.
- ``bc`` (:mod:`rlcompare.algos.deep.bc`): behavioral cloning of a Dataset into an SB3 policy.
- ``sac`` (:mod:`rlcompare.algos.deep.sac`): Stable-Baselines3's SAC (Box actions).

``sb3_dqn``, ``ppo`` and ``sac`` are registered by ``register_sb3`` (any SB3 class,
:mod:`rlcompare.algos.deep.sb3_generic`) with their own tables and the generic trainer.
"""

from __future__ import annotations

from rlcompare.algos.deep.common import continuous_actions, policy_spaces, value_based_spaces
from rlcompare.algos.deep.hparams import (
    BC_PARAMS,
    DQN_PARAMS,
    PPO_PARAMS,
    check_bc,
    check_deep_spec,
    check_dqn,
    check_ppo,
    check_sb3_dqn,
)
from rlcompare.algos.deep.mpc_params import register_mpc
from rlcompare.algos.deep.sac_params import SAC_PARAMS, check_sac
from rlcompare.algos.deep.sb3_generic import register_sb3
from rlcompare.spec.registry import register_algorithm

# name, summary, hyperparameters, trainer module, space check, cross-parameter check; in
# registration order (plot colours follow it)
_DEEP = (
    (
        "dqn",
        "DQN (ours): replay, target net, double/dueling/n-step/PER/NoisyNet switches",
        DQN_PARAMS,
        "dqn",
        value_based_spaces,
        check_dqn,
    ),
    (
        "sb3_dqn",
        "Stable-Baselines3 DQN, the reference for dqn (same hyperparameter names)",
        DQN_PARAMS,
        "sb3_dqn",
        value_based_spaces,
        check_sb3_dqn,
    ),
    (
        "ppo",
        "Stable-Baselines3 PPO (Discrete and Box actions), optional BC warm start",
        PPO_PARAMS,
        "ppo",
        policy_spaces,
        check_ppo,
    ),
    (
        "bc",
        "behavioral cloning of a logged Dataset into an SB3 ActorCriticPolicy",
        BC_PARAMS,
        "bc",
        policy_spaces,
        check_bc,
    ),
    (
        "sac",
        "Stable-Baselines3 SAC: off-policy maximum-entropy actor-critic (Box actions)",
        SAC_PARAMS,
        "sac",
        continuous_actions,
        check_sac,
    ),
)

# The Stable-Baselines3 classes behind the SB3 built-ins (their trainers: SB3Trainer hooks).
_SB3_CLASSES = {
    "sb3_dqn": "stable_baselines3:DQN",
    "ppo": "stable_baselines3:PPO",
    "sac": "stable_baselines3:SAC",
}

for name, summary, params, module, spaces, check in _DEEP:
    trainer = f"rlcompare.algos.deep.{module}:train"
    if name in _SB3_CLASSES:
        register_sb3(
            name,
            _SB3_CLASSES[name],
            params=params,
            summary=summary,
            spaces=spaces,
            check_params=check,
            trainer=trainer,
        )
        continue
    register_algorithm(
        name,
        trainer=trainer,
        params=params,
        summary=summary,
        spaces=spaces,
        check_params=check,
        check_spec=check_deep_spec,
        family="deep",
    )

# The learned-model planner declares itself beside its hyperparameter table.
register_mpc()
