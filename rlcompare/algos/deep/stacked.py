"""S seeds of ``dqn`` trained as one stacked model, each seed's updates bit for bit its own.

Each seed keeps its own :class:`DQNAgent` (replay memory and its ``replay`` stream, epsilon
and Boltzmann draws, n-step accumulator, NoisyNet generator, target syncs, statistics); only
where its parameters and optimizer state live changes: row s of (S, P) tensors
(:class:`SeedRows`). A training phase that every seed reaches at the same env step runs
stacked: per gradient step one forward and one backward pass with a batched matrix product
per layer (``stacked_network.py``), per-seed gradient clipping, and one fused Adam call over
the S rows. Per-seed work stays per seed: sampling from each seed's own stream, NoisyNet
noise from each seed's generator, PER priorities, the loss and TD errors (elementwise over
an (S, B) block, the same IEEE operations), and the divergence check.

What runs seed by seed instead, through the single-seed learner on the same rows (so still
the same bits): a phase that only some seeds reach (a seed that diverged or finished its
episodes, an n-step buffer still empty), one whose batches differ in size between seeds
(``replay`` False with n-step returns early on), bootstrap targets of a seed whose distinct
next observations form a chunk of fewer than 4 rows (a matrix product of 1-3 rows rounds
differently from the same rows inside a larger one), and every phase off the CPU or where
torch lacks its fused Adam kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from rlcompare.algos.deep.dqn import DQNAgent
from rlcompare.algos.deep.learner import TARGET_CHUNK, DQNLearner
from rlcompare.algos.deep.replay import Batch, LatestBuffer
from rlcompare.algos.deep.stacked_network import (
    StackedState,
    stackable,
    stacked_backward,
    stacked_effective,
    stacked_forward,
)
from rlcompare.errors import Diverged

# A chunk of fewer rows than this through a matrix product rounds differently (see above).
MIN_CHUNK_ROWS = 4

__all__ = ["StackedState", "StackedTrainer", "stackable"]


class StackedTrainer:
    """Trains the pending phases of S agents built on one :class:`StackedState`.

    Args:
        agents: One DQNAgent per seed, in the order of the state's rows, all with the same
            hyperparameters (they differ only in seed).
        state: Where their parameters live.
    """

    def __init__(self, agents: Sequence[DQNAgent], state: StackedState) -> None:
        self.agents = list(agents)
        self.state = state
        first = self.agents[0].learner
        self.net = first.net
        self.hp = self.agents[0].hp
        self.use_target = first.use_target
        self.online = self.net.views(state.params)
        self.target = self.net.views(state.target) if self.use_target else self.online
        self.grads = self.net.views(state.grad)
        self.cpu = all(agent.learner.device.type == "cpu" for agent in self.agents)
        self._spaces: dict[int, _StackedSpace] = {}
        self._arrays: dict[int, Batch] = {}

    def train(self, seeds: Sequence[int], steps: int, beta: float) -> dict[int, str]:
        """Runs one phase of ``steps`` gradient steps for each of ``seeds`` (indices into the
        agents); returns {seed: reason} for the seeds whose phase diverged."""
        agents = [self.agents[s] for s in seeds]
        if not self._can_stack(agents):
            return self._one_by_one(seeds, steps, beta)
        learners = [agent.learner for agent in agents]
        batch = self.hp["batch_size"]
        drawn_slots = [agent.buffer.phase_indices(steps, batch) for agent in agents]
        if drawn_slots[0] is None:  # prioritized replay: one batch at a time
            rows = steps * batch
            space = self._space(rows)
            for k in range(steps):
                drawn = [agent.buffer.sample(batch, beta) for agent in agents]
                stacked = _stack(drawn)
                target = self._bootstrap(learners, stacked)
                td = self._step(learners, stacked, target, k * batch, space)
                for agent, one, errors in zip(agents, drawn, td, strict=True):
                    agent.buffer.update_priorities(one.indices, np.abs(errors))
        else:
            rows = len(drawn_slots[0])  # type: ignore[arg-type]
            stacked = self._phase_arrays(rows, agents[0].encoder.dim)
            for s, (agent, slots) in enumerate(zip(agents, drawn_slots, strict=True)):
                stacked.indices[s] = slots
                agent.buffer.gather_into(slots, _seed_rows(stacked, s))  # type: ignore[arg-type]
            space = self._space(rows)
            per_step = rows // steps
            fixed = self.use_target and not self.net.noisy and not learners[0].double
            targets = self._fixed_targets(learners, stacked) if fixed else None
            for k in range(steps):
                part = _rows(stacked, k * per_step, (k + 1) * per_step)
                if targets is None:
                    target = self._bootstrap(learners, part)
                else:
                    target = targets[:, k * per_step : (k + 1) * per_step]
                self._step(learners, part, target, k * per_step, space)
            rows = steps * per_step
        return _record(learners, seeds, space, rows)

    # -- routing ------------------------------------------------------------------------------
    def _can_stack(self, agents: list[DQNAgent]) -> bool:
        if len(agents) != len(self.agents) or not self.cpu or not stackable():
            return False
        if isinstance(agents[0].buffer, LatestBuffer):
            return len({len(agent.buffer) for agent in agents}) == 1
        return True

    def _one_by_one(self, seeds: Sequence[int], steps: int, beta: float) -> dict[int, str]:
        diverged = {}
        for seed in seeds:
            agent = self.agents[seed]
            try:
                agent.learner.train(agent.buffer, steps, beta)
            except Diverged as reason:
                diverged[seed] = str(reason)
        return diverged

    def _phase_arrays(self, rows: int, dim: int) -> Batch:
        """Preallocated (S, rows, ...) arrays that each seed's phase is gathered into (read
        before the next phase of the same size overwrites them)."""
        arrays = self._arrays.get(rows)
        if arrays is None:
            seeds = len(self.agents)
            arrays = self._arrays[rows] = Batch(
                np.empty((seeds, rows, dim), dtype=np.float32),
                np.empty((seeds, rows), dtype=np.int64),
                np.empty((seeds, rows), dtype=np.float32),
                np.empty((seeds, rows, dim), dtype=np.float32),
                np.empty((seeds, rows), dtype=np.float32),
                None,
                np.empty((seeds, rows), dtype=np.int64),
            )
        return arrays

    def _space(self, rows: int) -> _StackedSpace:
        space = self._spaces.get(rows)
        if space is None:
            space = self._spaces[rows] = _StackedSpace(len(self.agents), rows)
        return space

    # -- targets ------------------------------------------------------------------------------
    def _fixed_targets(self, learners: list[DQNLearner], stacked: Batch) -> np.ndarray:
        """``DQNLearner._fixed_targets`` of every seed: (S, rows).

        Each seed's distinct slots are found as ``_first_and_inverse`` finds them (a stable
        sort of each row), their next observations padded to the longest seed's count, and
        all go through the target net together, in the same chunks of rows as a single
        seed's.
        """
        slots, next_obs = stacked.indices, stacked.next_obs
        order = np.argsort(slots, axis=1, kind="stable")
        ordered = np.take_along_axis(slots, order, axis=1)
        new = np.empty(slots.shape, dtype=bool)
        new[:, 0] = True
        np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new[:, 1:])
        ranks = np.cumsum(new, axis=1) - 1
        inverse = np.empty_like(ranks)
        np.put_along_axis(inverse, order, ranks, axis=1)
        counts = (ranks[:, -1] + 1).tolist()
        seed_of, column = np.nonzero(new)
        unique = np.zeros((len(counts), max(counts), next_obs.shape[2]), dtype=np.float32)
        unique[seed_of, ranks[seed_of, column]] = next_obs[seed_of, order[seed_of, column]]
        values = self._next_values(torch.from_numpy(unique), learners, counts).numpy()
        targets = np.take_along_axis(values, inverse, axis=1)
        mask = np.array([[not _small_chunk(count)] for count in counts])
        np.multiply(targets, stacked.discounts, out=targets, where=mask)
        np.add(targets, stacked.rewards, out=targets, where=mask)
        for s, count in enumerate(counts):
            if _small_chunk(count):  # that seed's own pass, discounts and rewards included
                own = learners[s]._phase_space(slots.shape[1])
                targets[s] = learners[s]._fixed_targets(_seed_rows(stacked, s), None, own)  # type: ignore[arg-type]
        return targets

    def _bootstrap(self, learners: list[DQNLearner], batch: Batch) -> np.ndarray:
        """rewards + discounts * Q'(next_obs, a*) of every seed: (S, B), each seed's NoisyNet
        target noise drawn from its own generator first (as ``DQNLearner._bootstrap``)."""
        if self.net.noisy:
            for learner in learners:
                learner.target_noise = learner.net.sample_noise(
                    learner.noise_generator, learner.device
                )
        values = self._next_values(torch.from_numpy(batch.next_obs), learners)
        discounts = torch.from_numpy(batch.discounts).unsqueeze(2)
        rewards = torch.from_numpy(batch.rewards).unsqueeze(2)
        return values.unsqueeze(2).mul_(discounts).add_(rewards).squeeze(2).numpy()

    def _next_values(
        self,
        next_obs: torch.Tensor,
        learners: list[DQNLearner],
        counts: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Q'(next_obs, a*) (S, rows) in chunks of ``TARGET_CHUNK`` rows (as a single seed);
        ``counts``: each seed's own rows, the rest padding (None: all its own)."""
        noisy = self.net.noisy
        target = stacked_effective(
            self.net,
            self.target,
            [lr.target_views for lr in learners],
            [lr.target_noise for lr in learners] if noisy else None,
        )
        online = None
        if learners[0].double:
            online = stacked_effective(
                self.net,
                self.online,
                [lr.online_views for lr in learners],
                [lr.online_noise for lr in learners] if noisy else None,
            )
        values = []
        for start in range(0, next_obs.shape[1], TARGET_CHUNK):
            part = next_obs[:, start : start + TARGET_CHUNK]
            valid = None
            if counts is not None:
                valid = [min(max(count - start, 0), TARGET_CHUNK) for count in counts]
            next_q = stacked_forward(self.net, part, target, valid)[0]
            if online is not None:
                chosen = stacked_forward(self.net, part, online)[0].argmax(dim=2, keepdim=True)
                values.append(next_q.gather(2, chosen).squeeze(2))
            else:
                values.append(next_q.amax(dim=2))
        return values[0] if len(values) == 1 else torch.cat(values, dim=1)

    # -- the gradient step --------------------------------------------------------------------
    def _step(
        self,
        learners: list[DQNLearner],
        batch: Batch,
        target: np.ndarray,
        offset: int,
        space: _StackedSpace,
    ) -> np.ndarray:
        """``DQNLearner._step`` of every seed at once; returns the TD errors (S, B)."""
        if self.net.noisy:
            for learner in learners:
                learner.online_noise = learner.net.sample_noise(
                    learner.noise_generator, learner.device
                )
        layers = stacked_effective(
            self.net,
            self.online,
            [lr.online_views for lr in learners],
            [lr.online_noise for lr in learners] if self.net.noisy else None,
        )
        q, inputs = stacked_forward(self.net, torch.from_numpy(batch.obs), layers)
        q_np = q.numpy()
        n = batch.actions.shape[1]
        rows = slice(offset, offset + n)
        actions = batch.actions[:, :, None]
        chosen = space.q[:, rows]
        chosen[...] = np.take_along_axis(q_np, actions, axis=2)[:, :, 0]
        td = np.subtract(chosen, target, out=space.td[:, rows])
        clipped = np.maximum(td, -1.0, out=space.clipped[:, rows])
        np.minimum(clipped, 1.0, out=clipped)
        grad_chosen = np.multiply(clipped, 1.0 / n)
        if batch.weights is not None:
            grad_chosen *= batch.weights
            space.weights[:, rows] = batch.weights
            space.weighted = True
        grad_q = np.zeros(q_np.shape, dtype=np.float32)
        np.put_along_axis(grad_q, actions, grad_chosen[:, :, None], axis=2)
        stacked_backward(self.net, inputs, layers, torch.from_numpy(grad_q), self.grads)
        max_norm = learners[0].max_grad_norm
        grads = self.state.grad
        if max_norm is not None:
            for s in range(len(learners)):
                norm = math.sqrt(float(torch.dot(grads[s], grads[s])))
                if norm > max_norm:
                    grads[s].mul_(max_norm / (norm + 1e-6))
        self._adam(learners)
        for learner in learners:
            learner.gradient_steps += 1
        return td

    def _adam(self, learners: list[DQNLearner]) -> None:
        """One fused Adam call over the S rows, each with its own step count (the kernel
        updates each row as ``FlatAdam`` updates a seed's flat vector)."""
        state, opt = self.state, learners[0].optimizer
        state.steps.add_(1.0)
        seeds = range(len(learners))
        torch._fused_adam_(  # type: ignore[attr-defined]
            [state.params[s] for s in seeds],
            [state.grad[s] for s in seeds],
            [state.exp_avg[s] for s in seeds],
            [state.exp_avg_sq[s] for s in seeds],
            [],
            [state.steps[s] for s in seeds],
            lr=opt.lr,
            beta1=opt.betas[0],
            beta2=opt.betas[1],
            weight_decay=0.0,
            eps=opt.eps,
            amsgrad=False,
            maximize=False,
        )


class _StackedSpace:
    """``_PhaseSpace``'s per-row columns for S seeds: (S, rows) blocks, sums (S, 3, rows)."""

    def __init__(self, seeds: int, rows: int) -> None:
        self.sums = np.zeros((seeds, 3, rows), dtype=np.float32)
        self.q = self.sums[:, 2]
        self.td = np.zeros((seeds, rows), dtype=np.float32)
        self.clipped = np.zeros((seeds, rows), dtype=np.float32)
        self.weights = np.ones((seeds, rows), dtype=np.float32)
        self.weighted = False


def _record(
    learners: list[DQNLearner], seeds: Sequence[int], space: _StackedSpace, rows: int
) -> dict[int, str]:
    """``DQNLearner._record`` of every seed (one reduction over the (S, 3, rows) block, each
    row summed as a single seed sums it); returns {seed: reason} of those that diverged."""
    if rows == 0:
        return {}
    td, clipped, sums = space.td[:, :rows], space.clipped[:, :rows], space.sums[:, :, :rows]
    huber = np.multiply(clipped, 0.5, out=sums[:, 1])
    np.subtract(td, huber, out=huber)
    np.multiply(clipped, huber, out=huber)
    if space.weighted:
        huber *= space.weights[:, :rows]
        space.weights.fill(1.0)
        space.weighted = False
    np.abs(td, out=sums[:, 0])
    totals = torch.from_numpy(np.ascontiguousarray(sums)).sum(2).tolist()
    diverged = {}
    for seed, learner, (abs_td, loss, q) in zip(seeds, learners, totals, strict=True):
        if not (math.isfinite(loss) and math.isfinite(q)):
            diverged[seed] = (
                f"non-finite loss ({loss}) or Q-value after {learner.gradient_steps} gradient steps"
            )
            continue
        learner._sums[0] += abs_td
        learner._sums[1] += loss
        learner._sums[2] += q
        learner._sums[3] += rows
    return diverged


def _small_chunk(count: int) -> bool:
    """Whether ``count`` rows in chunks of TARGET_CHUNK leave a chunk of 1-3 rows."""
    return 0 < count % TARGET_CHUNK < MIN_CHUNK_ROWS


def _stack(batches: Sequence[Batch]) -> Batch:
    """Seeds' batches of equal size as one Batch of (S, B, ...) arrays."""

    def column(name: str) -> np.ndarray | None:
        values = [getattr(batch, name) for batch in batches]
        return None if values[0] is None else np.stack(values)

    return Batch(*(column(name) for name in Batch._fields))  # type: ignore[arg-type]


def _seed_rows(batch: Batch, seed: int) -> Batch:
    """One seed's arrays of a stacked Batch (views)."""
    return Batch(*(None if value is None else value[seed] for value in batch))  # type: ignore[arg-type]


def _rows(batch: Batch, start: int, end: int) -> Batch:
    """Rows ``start:end`` of every seed of a stacked Batch (views)."""
    return Batch(
        *(None if value is None else value[:, start:end] for value in batch)  # type: ignore[arg-type]
    )
