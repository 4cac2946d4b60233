"""Scripted demonstrators: fixed policies ``obs -> action`` that produce logs of known quality.

Use them with :func:`rlcompare.collect_demonstrations` (``epsilon`` mixes in random actions).
Scores below are the mean undiscounted return over the episodes of the tests' seeds.

- :func:`cartpole_expert`: a linear state-feedback (PD) controller; 500 on CartPole-v1, the
  maximum, on every episode.
- :func:`cartpole_novice`: pushes toward the side the pole leans and ignores its angular
  velocity, so it overshoots and falls after ~40 steps: a plausible but poor demonstrator.
"""

from __future__ import annotations

import numpy as np

# Gains on (cart position, cart velocity, pole angle, pole angular velocity): push right when
# the weighted sum is positive. The angle and its rate do the balancing; the small cart terms
# keep the cart from drifting out of the track within 500 steps.
EXPERT_GAINS = np.array([0.1, 0.5, 1.0, 0.5])
NOVICE_GAINS = np.array([0.0, 0.0, 1.0, 0.0])


def _push(obs: np.ndarray, gains: np.ndarray) -> int:
    return int(float(np.dot(np.asarray(obs, dtype=np.float64), gains)) > 0.0)


def cartpole_expert(obs: np.ndarray) -> int:
    """CartPole-v1 action (0 = push left, 1 = push right) of a PD controller scoring 500.

    Args:
        obs: (4,) observation: cart position, cart velocity, pole angle, pole angular velocity.
    """
    return _push(obs, EXPERT_GAINS)


def cartpole_novice(obs: np.ndarray) -> int:
    """CartPole-v1 action of a demonstrator that reacts to the pole angle only (~40 a run).

    Args:
        obs: (4,) observation, as for :func:`cartpole_expert`.
    """
    return _push(obs, NOVICE_GAINS)
