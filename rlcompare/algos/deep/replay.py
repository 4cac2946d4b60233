"""Replay memories of ``dqn``: preallocated numpy arrays, sampled with a named numpy stream.

Every stored transition carries its own bootstrap ``discount`` = gamma^k * (1 - terminated),
k being the number of rewards summed into it. So one-step and n-step transitions, episodes
cut by a time limit (bootstrapped) and episodes that terminated (not bootstrapped) are all
learned from with the one target ``reward + discount * max_a Q'(next_obs, a)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from rlcompare.algos.deep.common import ObsEncoder


class Batch(NamedTuple):
    """A sampled batch (B transitions), observations already encoded.

    Attributes:
        obs: (B, dim) float32 encoded observations.
        actions: (B,) int64 actions.
        rewards: (B,) float32 (n-step) rewards.
        next_obs: (B, dim) float32 encoded observations to bootstrap from.
        discounts: (B,) float32 gamma^k * (1 - terminated).
        weights: (B,) float32 importance weights (prioritized replay), else None.
        indices: (B,) int64 buffer slots (to update priorities).
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    discounts: np.ndarray
    weights: np.ndarray | None
    indices: np.ndarray


class ReplayBuffer:
    """Uniform replay (sampling with replacement, as Stable-Baselines3) over a ring buffer.

    Args:
        capacity: Most transitions kept; the oldest are overwritten first.
        encoder: Encodes raw observations of sampled batches.
        rng: Numpy Generator of the ``replay`` stream.
    """

    def __init__(self, capacity: int, encoder: ObsEncoder, rng: np.random.Generator) -> None:
        self.capacity = int(capacity)
        self.encoder = encoder
        self.rng = rng
        shape = (self.capacity, *encoder.raw_shape)
        self.obs = np.zeros(shape, dtype=encoder.raw_dtype)
        self.next_obs = np.zeros(shape, dtype=encoder.raw_dtype)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.discounts = np.zeros(self.capacity, dtype=np.float32)
        self.position = 0
        self.size = 0
        self._scratch: Batch | None = None

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Any, action: int, reward: float, next_obs: Any, discount: float) -> None:
        """Stores one transition."""
        index = self.position
        self.obs[index] = obs
        self.next_obs[index] = next_obs
        self.actions[index] = action
        self.rewards[index] = reward
        self.discounts[index] = discount
        self.position = (index + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self._added(index)

    def _added(self, index: int) -> None:
        """Hook for subclasses that track per-slot state."""

    def sample(self, batch_size: int, beta: float = 1.0) -> Batch:
        """Draws ``batch_size`` slots uniformly with replacement."""
        return self._gather(self.rng.integers(0, self.size, size=batch_size), None)

    def sample_phase(self, steps: int, batch_size: int) -> Batch | None:
        """The batches of ``steps`` gradient steps at once, stacked (steps * batch_size rows).

        Uniform draws do not depend on learning, so a phase's batches can be drawn together;
        prioritized replay returns None (its priorities change after every step). The arrays
        are reused by the next call of the same size: read them before drawing again.
        """
        rows = steps * batch_size
        indices = self.rng.integers(0, self.size, size=rows)
        if self.encoder.discrete:
            return self._gather(indices, None)
        scratch = self._scratch
        if scratch is None or len(scratch.actions) != rows:
            scratch = self._scratch = Batch(
                np.empty((rows, *self.obs.shape[1:]), dtype=self.obs.dtype),
                np.empty(rows, dtype=self.actions.dtype),
                np.empty(rows, dtype=self.rewards.dtype),
                np.empty((rows, *self.obs.shape[1:]), dtype=self.obs.dtype),
                np.empty(rows, dtype=self.discounts.dtype),
                None,
                indices,
            )
        # One gather per column into arrays reused by every phase of this size (the batch is
        # read before the next draw); encoding a float32 Box batch is a reshape.
        np.take(self.obs, indices, axis=0, out=scratch.obs)
        np.take(self.actions, indices, out=scratch.actions)
        np.take(self.rewards, indices, out=scratch.rewards)
        np.take(self.next_obs, indices, axis=0, out=scratch.next_obs)
        np.take(self.discounts, indices, out=scratch.discounts)
        encode = self.encoder.encode_batch
        return scratch._replace(
            obs=encode(scratch.obs), next_obs=encode(scratch.next_obs), indices=indices
        )

    def phase_indices(self, steps: int, batch_size: int) -> np.ndarray | None:
        """The slots ``sample_phase`` would draw (the same draw from the ``replay`` stream),
        for a caller that gathers them itself (``gather_into``); None: prioritized replay."""
        return self.rng.integers(0, self.size, size=steps * batch_size)

    def gather_into(self, indices: np.ndarray, out: Batch) -> None:
        """Writes the transitions at ``indices`` (rows,), observations encoded, into the
        arrays of ``out`` (obs and next_obs (rows, dim), the others (rows,)), as
        ``sample_phase`` gathers them."""
        for source, target in ((self.obs, out.obs), (self.next_obs, out.next_obs)):
            if self.encoder.discrete:
                target[...] = self.encoder.encode_batch(np.take(source, indices, axis=0))
            else:
                np.take(
                    source, indices, axis=0, out=target.reshape(len(indices), *source.shape[1:])
                )
        np.take(self.actions, indices, out=out.actions)
        np.take(self.rewards, indices, out=out.rewards)
        np.take(self.discounts, indices, out=out.discounts)

    def _gather(self, indices: np.ndarray, weights: np.ndarray | None) -> Batch:
        encode = self.encoder.encode_batch
        return Batch(
            encode(self.obs[indices]),
            self.actions[indices],
            self.rewards[indices],
            encode(self.next_obs[indices]),
            self.discounts[indices],
            weights,
            indices,
        )

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """No-op for uniform replay."""


class LatestBuffer(ReplayBuffer):
    """No replay: a FIFO of the latest ``capacity`` transitions, learned from all at once.

    Every gradient step sees exactly the stored transitions, oldest first (the ``replay=False``
    ablation: correlated, on-policy-ish updates).
    """

    def sample(self, batch_size: int, beta: float = 1.0) -> Batch:
        return self._gather(self._latest(), None)

    def sample_phase(self, steps: int, batch_size: int) -> Batch:
        return self._gather(self.phase_indices(steps, batch_size), None)

    def phase_indices(self, steps: int, batch_size: int) -> np.ndarray:
        return np.tile(self._latest(), steps)

    def _latest(self) -> np.ndarray:
        start = self.position if self.size == self.capacity else 0
        return (start + np.arange(self.size)) % self.capacity


class SumTree:
    """Binary sum tree over ``capacity`` leaves (float64): O(log n) batched update and find."""

    def __init__(self, capacity: int) -> None:
        self.leaves = 1 << max(0, int(capacity - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(self.tree[1])

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Sets leaves ``indices`` (B,) to ``values`` (B,) and refreshes their ancestors.

        All leaves sit at one depth, so the nodes climb level by level together; a node
        reached twice gets the same sum twice, which is cheaper than deduplicating.
        """
        nodes = np.asarray(indices, dtype=np.int64) + self.leaves
        self.tree[nodes] = values
        while nodes[0] > 1:
            nodes = nodes >> 1
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

    def set(self, index: int, value: float) -> None:
        """``update`` of one leaf, in scalar steps (every env step adds one transition)."""
        tree, node = self.tree, int(index) + self.leaves
        tree[node] = value
        while node > 1:
            node >>= 1
            tree[node] = tree[2 * node] + tree[2 * node + 1]

    def find(self, targets: np.ndarray) -> np.ndarray:
        """Leaf index whose prefix-sum interval holds each target in [0, total)."""
        nodes = np.ones(len(targets), dtype=np.int64)
        targets = np.array(targets, dtype=np.float64)
        while nodes[0] < self.leaves:
            left = self.tree[2 * nodes]
            right = targets >= left
            targets -= left * right
            nodes = 2 * nodes + right
        return nodes - self.leaves

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Leaf values at ``indices``."""
        return self.tree[np.asarray(indices) + self.leaves]


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al., 2016) with importance weights.

    A slot is drawn with probability p_i^alpha / sum_j p_j^alpha, p_i = |TD error| + 1e-6
    (new transitions get the largest priority seen), stratified over B equal segments. Weights
    (N * P(i))^-beta are divided by the batch maximum, so they only ever shrink updates.
    """

    EPSILON = 1e-6

    def __init__(
        self, capacity: int, encoder: ObsEncoder, rng: np.random.Generator, alpha: float
    ) -> None:
        super().__init__(capacity, encoder, rng)
        self.alpha = alpha
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0

    def _added(self, index: int) -> None:
        self.tree.set(index, self.max_priority)

    def sample(self, batch_size: int, beta: float = 1.0) -> Batch:
        total = self.tree.total
        segment = total / batch_size
        targets = (np.arange(batch_size) + self.rng.random(batch_size)) * segment
        indices = np.minimum(
            self.tree.find(np.minimum(targets, total * (1 - 1e-12))), self.size - 1
        )
        probabilities = self.tree.get(indices) / total
        weights = (self.size * probabilities) ** (-beta)
        weights = (weights / weights.max()).astype(np.float32)
        return self._gather(indices, weights)

    def sample_phase(self, steps: int, batch_size: int) -> None:
        return None

    def phase_indices(self, steps: int, batch_size: int) -> None:
        return None

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Sets the priorities of ``indices`` from their new absolute TD errors (B,)."""
        priorities = (np.abs(td_errors).astype(np.float64) + self.EPSILON) ** self.alpha
        self.tree.update(indices, priorities)
        self.max_priority = max(self.max_priority, float(priorities.max()))


class NStepAccumulator:
    """Turns one-step transitions into n-step ones: R = sum_i gamma^i r_i, discount gamma^k.

    At an episode's end every pending transition is flushed with the rewards it has, and
    bootstraps from the final observation unless the episode terminated.
    """

    def __init__(self, n: int, gamma: float) -> None:
        self.n = n
        self.gamma = gamma
        self.pending: deque[tuple[Any, int, float]] = deque()

    def push(
        self,
        obs: Any,
        action: int,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
    ) -> Iterator[tuple[Any, int, float, Any, float]]:
        """Adds a transition; yields (obs, action, return, next_obs, discount) ready to store."""
        self.pending.append((obs, action, reward))
        if terminated or truncated:
            while self.pending:
                yield self._pop(next_obs, terminated)
        elif len(self.pending) == self.n:
            yield self._pop(next_obs, False)

    def _pop(self, next_obs: Any, terminated: bool) -> tuple[Any, int, float, Any, float]:
        ret, scale = 0.0, 1.0
        for _, _, reward in self.pending:
            ret += scale * reward
            scale *= self.gamma
        obs, action, _ = self.pending.popleft()
        return obs, action, ret, next_obs, 0.0 if terminated else scale

    def reset(self) -> None:
        """Drops pending transitions (a new, unrelated sequence follows)."""
        self.pending.clear()
