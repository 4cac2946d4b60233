"""``sac``: Stable-Baselines3's SAC with our evaluation protocol and rows.

The off-policy actor-critic for continuous actions: like Q-learning it learns action values
from replayed experience, while optimizing a stochastic (maximum-entropy) policy. The greedy
action for evaluation is the actor's mean action, squashed and rescaled to the Box
(:func:`rlcompare.algos.deep.sb3_common.mean_action`, chosen for every SAC policy). Built and
run by the generic SB3 trainer; hyperparameters in :mod:`rlcompare.algos.deep.sac_params`.
"""

from __future__ import annotations

from rlcompare.algos.deep.sb3_common import mean_action
from rlcompare.algos.deep.sb3_generic import SB3Trainer

__all__ = ["mean_action", "train"]

# The trainer of ``sac``: no hooks (net_arch is the generic policy kwargs, the mean action
# the generic greedy policy of a SAC model).
train = SB3Trainer("stable_baselines3:SAC")
