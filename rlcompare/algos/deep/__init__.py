"""Deep agents: our DQN, PPO, DQN and SAC from Stable-Baselines3, and behavioral cloning.

Importing this package registers the algorithms without importing torch or SB3: each trainer
is a ``"module:function"`` string loaded when a run starts.

- ``dqn`` (:mod:`rlcompare.algos.deep.dqn`): our own DQN with SB3's hyperparameter names and
  switches (double, dueling, n-step, prioritized replay, NoisyNet, Boltzmann), online or
  offline from a logged Dataset; runs that differ only in seed train as one stacked model
  (:mod:`rlcompare.algos.deep.stacked_trainer`).
- ``sb3_dqn`` (:mod:`rlcompare.algos.deep.sb3_dqn`): Stable-Baselines3's DQN, the reference peer.
- ``ppo`` (:mod:`rlcompare.algos.deep.ppo`): Stable-Baselines3's PPO; optional BC warm start.
- ``bc`` (:mod:`rlcompare.algos.deep.bc`): behavioral cloning of a Dataset into an SB3 policy.
- ``sac`` (:mod:`rlcompare.algos.deep.sac`): Stable-Baselines3's SAC (Box actions).

- ``mpc`` (:mod:`rlcompare.algos.deep.mpc`): learned ensemble dynamics and a sampling planner.

``sb3_dqn``, ``ppo`` and ``sac`` run on the generic trainer of ``register_sb3`` (any SB3
class, :mod:`rlcompare.algos.deep.sb3_generic`), with their own tables and its spec check.
"""

from __future__ import annotations

from rlcompare.algos.deep.common import continuous_actions, policy_spaces, value_based_spaces
from rlcompare.algos.deep.hparams import (
    BC_PARAMS,
    DQN_PARAMS,
    PPO_PARAMS,
    DeepAlgorithm,
    check_bc,
    check_dqn,
    check_ppo,
    check_sb3_dqn,
)
from rlcompare.algos.deep.mpc_params import MPC
from rlcompare.algos.deep.sac_params import SAC_PARAMS, check_sac
from rlcompare.algos.deep.sb3_generic import check_sb3_spec
from rlcompare.spec.registry import register_algorithm

# In registration order (plot colours follow it); the SB3 trainers are SB3Trainer hooks.
_DEEP = (
    DeepAlgorithm(
        "dqn",
        "DQN (ours): replay, target net, double/dueling/n-step/PER/NoisyNet switches",
        DQN_PARAMS,
        "rlcompare.algos.deep.dqn:train",
        value_based_spaces,
        check_dqn,
    ),
    DeepAlgorithm(
        "sb3_dqn",
        "Stable-Baselines3 DQN, the reference for dqn (same hyperparameter names)",
        DQN_PARAMS,
        "rlcompare.algos.deep.sb3_dqn:train",
        value_based_spaces,
        check_sb3_dqn,
        check_sb3_spec,
    ),
    DeepAlgorithm(
        "ppo",
        "Stable-Baselines3 PPO (Discrete and Box actions), optional BC warm start",
        PPO_PARAMS,
        "rlcompare.algos.deep.ppo:train",
        policy_spaces,
        check_ppo,
        check_sb3_spec,
    ),
    DeepAlgorithm(
        "bc",
        "behavioral cloning of a logged Dataset into an SB3 ActorCriticPolicy",
        BC_PARAMS,
        "rlcompare.algos.deep.bc:train",
        policy_spaces,
        check_bc,
    ),
    DeepAlgorithm(
        "sac",
        "Stable-Baselines3 SAC: off-policy maximum-entropy actor-critic (Box actions)",
        SAC_PARAMS,
        "rlcompare.algos.deep.sac:train",
        continuous_actions,
        check_sac,
        check_sb3_spec,
    ),
    MPC,
)

# dqn trains runs that differ only in seed as one stacked model (run_batch and sweeps use it).
DQN_BATCH_TRAINER = "rlcompare.algos.deep.stacked_trainer:train_batch"

for algorithm in _DEEP:
    if algorithm.name != "dqn":
        algorithm.register()
        continue
    register_algorithm(
        algorithm.name,
        trainer=algorithm.trainer,
        params=algorithm.params,
        summary=algorithm.summary,
        spaces=algorithm.spaces,
        batch_trainer=DQN_BATCH_TRAINER,
        check_params=algorithm.check_params,
        check_spec=algorithm.check_spec,
        family="deep",
    )
