"""The DQN update rule: bootstrap targets, Huber loss, clipped Adam step, target updates.

Matches Stable-Baselines3's ``DQN.train`` step for step (``smooth_l1_loss`` averaged over the
batch, ``clip_grad_norm_`` at ``max_grad_norm``, Adam with eps 1e-8, hard or Polyak target
updates), plus the switches of ``dqn``: double, dueling, n-step discounts, importance weights,
NoisyNet noise and bootstrapping from the online net.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from rlcompare.algos.deep.network import QNetwork, Workspace
from rlcompare.algos.deep.replay import Batch, ReplayBuffer
from rlcompare.errors import Diverged, SpecError
from rlcompare.seeding import RunSeeds

# Rows per forward pass when computing a phase's bootstrap targets.
TARGET_CHUNK = 256


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("device = 'cuda' but torch sees no CUDA device; valid: cpu, auto")
    return torch.device(name)


class _PhaseSpace:
    """Per-row columns of one training phase (rows = its gradient steps x batch size).

    ``sums`` rows hold |TD error|, the weighted Huber loss and Q(s, a) of every row, laid out
    so that one reduction sums all three; ``q`` is a view of its last row.
    """

    def __init__(self, rows: int, n_actions: int) -> None:
        self.sums = np.zeros((3, rows), dtype=np.float32)
        self.q = self.sums[2]
        self.td = np.zeros(rows, dtype=np.float32)
        self.clipped = np.zeros(rows, dtype=np.float32)
        self.weights = np.ones(rows, dtype=np.float32)
        self.weighted = False
        self.target = np.zeros(rows, dtype=np.float32)
        self.grad_chosen = np.zeros(rows, dtype=np.float32)
        self._flat: dict[int, np.ndarray] = {}
        self.n_actions = n_actions

    def flat_index(self, n: int) -> np.ndarray:
        """Offsets (n,) of each row's first Q-value in a flattened (n, n_actions) array."""
        offsets = self._flat.get(n)
        if offsets is None:
            offsets = self._flat[n] = np.arange(n, dtype=np.int64) * self.n_actions
        return offsets


def _first_and_inverse(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(indices, return_index=True, return_inverse=True)[1:]``, without its
    overheads: the first position of each distinct value (in sorted order) and, per entry,
    the rank of its value among the distinct ones."""
    order = np.argsort(indices, kind="stable")
    ordered = indices[order]
    new = np.empty(len(indices), dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    inverse = np.empty(len(indices), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


class SeedRows(NamedTuple):
    """One seed's views into a stacked model's (S, P) state (see ``stacked.py``): parameters,
    gradient, target parameters, Adam's two moments, and its Adam step count (0-dim)."""

    params: torch.Tensor
    grad: torch.Tensor
    target: torch.Tensor
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    steps: torch.Tensor


class FlatAdam:
    """Adam on one flat parameter tensor (eps 1e-8, as SB3's DQN policy).

    Calls torch's fused Adam kernel directly where it exists: on a 70k-parameter network the
    ``torch.optim.Optimizer`` wrapper costs as much as the update itself. Elsewhere it falls
    back to ``torch.optim.Adam``; the tests check both against each other.
    """

    def __init__(
        self, param: torch.Tensor, lr: float, eps: float = 1e-8, rows: SeedRows | None = None
    ) -> None:
        self.param, self.lr, self.eps = param, lr, eps
        self._data = param.detach()
        self.betas = (0.9, 0.999)
        self.fallback: torch.optim.Adam | None = None
        if rows is not None:  # one seed's rows of a stacked model's state (stacked.py)
            self.grad, self.exp_avg, self.exp_avg_sq, self.steps = rows[1], *rows[3:]
            return
        self.grad = None
        self.exp_avg = torch.zeros_like(param, requires_grad=False)
        self.exp_avg_sq = torch.zeros_like(param, requires_grad=False)
        self.steps = torch.zeros((), dtype=torch.float32, device=param.device)
        if not hasattr(torch, "_fused_adam_"):
            self.fallback = torch.optim.Adam([param], lr=lr, eps=eps)

    def step(self) -> None:
        """One Adam update of ``param`` from ``param.grad``."""
        if self.fallback is not None:
            self.fallback.step()
            return
        self.steps.add_(1.0)
        torch._fused_adam_(  # type: ignore[attr-defined]
            [self._data],
            [self.param.grad if self.grad is None else self.grad],
            [self.exp_avg],
            [self.exp_avg_sq],
            [],
            [self.steps],
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )


class DQNLearner:
    """Online and target Q-networks, their optimizer, and the gradient steps.

    Args:
        in_dim: Encoded observation length.
        n_actions: Number of actions.
        hp: Resolved ``dqn`` hyperparameters.
        seeds: The run's seeds (streams ``torch`` for the initial weights, ``noise``).
        device: Where the networks live.
        rows: Where the parameters and optimizer state live when this seed is one row of a
            stacked model (``stacked.py``); None: tensors of its own.
    """

    def __init__(
        self,
        in_dim: int,
        n_actions: int,
        hp: Mapping[str, Any],
        seeds: RunSeeds,
        device: torch.device,
        rows: SeedRows | None = None,
    ) -> None:
        self.device = device
        self.batch_size = hp["batch_size"]
        self.double = hp["double"]
        self.max_grad_norm = hp["max_grad_norm"]
        self.use_target = hp["target_network"]
        noisy = hp["noisy"] or hp["exploration"] == "noisy"
        self.net = QNetwork(in_dim, n_actions, hp["net_arch"], dueling=hp["dueling"], noisy=noisy)
        init = torch.Generator().manual_seed(seeds.int_seed("torch"))
        flat = self.net.initial_parameters(init).to(device)
        if rows is None:
            self.params = flat.requires_grad_()
            self.params.grad = self.grad = torch.zeros_like(flat)
            self.target = flat.detach().clone()
        else:
            self.params, self.grad, self.target = rows.params, rows.grad, rows.target
            self.params.copy_(flat)
            self.target.copy_(flat)
        self.online_views = self.net.views(self.params.detach())
        self.target_views = self.net.views(self.target) if self.use_target else self.online_views
        self.grad_views = self.net.views(self.grad)
        self.optimizer = FlatAdam(self.params, hp["learning_rate"], rows=rows)
        self.noise_generator = torch.Generator(device).manual_seed(seeds.int_seed("noise"))
        self.online_noise = self.net.sample_noise(self.noise_generator, device)
        self.target_noise = self.online_noise
        # One observation, written in place by q_row() off the numpy path.
        self._one = torch.zeros(1, in_dim)
        self._one_np = self._one.numpy()
        self._acting: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._acting_key: tuple[bool, int] | None = None
        # Preallocated arrays: per phase size (rows) and per batch size (activations).
        self._spaces: dict[int, _PhaseSpace] = {}
        self._work: dict[int, Workspace] = {}
        self.gradient_steps = 0
        self.reset_stats()

    # -- acting ---------------------------------------------------------------------------------
    def q_row(self, encoded: np.ndarray, noisy: bool = False) -> np.ndarray:
        """Q-values (n_actions,) of one encoded observation; NoisyNet means unless ``noisy``.

        On CPU the network runs in numpy: for one observation that is several times faster
        than torch's per-operation dispatch.
        """
        if self.device.type != "cpu":
            self._one_np[0] = encoded
            noise = self.online_noise if noisy else None
            x = self._one.to(self.device)
            return self.net.q_values(x, self.online_views, noise)[0].cpu().numpy()
        layers = self._acting_layers(noisy and self.net.noisy)
        h = encoded
        for weight_t, bias in layers[: len(self.net.trunk)]:
            h = h @ weight_t
            h += bias
            np.maximum(h, 0.0, out=h)
        if not self.net.dueling:
            return h @ layers[-1][0] + layers[-1][1]
        value = h @ layers[-2][0] + layers[-2][1]
        advantage = h @ layers[-1][0] + layers[-1][1]
        return value + advantage - advantage.mean()

    def _acting_layers(self, noisy: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """(weight_t, bias) per layer as numpy arrays. Without noise they view the live
        parameters; with noise they are mean + sigma * noise, recomputed only after a gradient
        step (which also resamples the noise), not at every env step."""
        key = (noisy, self.gradient_steps if noisy else -1)
        if self._acting is None or key != self._acting_key:
            noise = self.online_noise if noisy else None
            layers = self.net.effective(self.online_views, noise)
            self._acting = [(layer.weight_t.numpy(), layer.bias.numpy()) for layer in layers]
            self._acting_key = key
        return self._acting

    # -- learning -------------------------------------------------------------------------------
    def train(self, buffer: ReplayBuffer, steps: int, beta: float = 1.0) -> None:
        """Runs ``steps`` gradient steps on batches from ``buffer``.

        Uniform replay draws the whole phase's batches at once; with a fixed target network
        (no NoisyNet resampling) the phase's bootstrap targets then come from a few large
        matrix products instead of ``steps`` small ones. The updates are the same.

        Raises:
            Diverged: the loss or a Q-value became non-finite.
        """
        phase = buffer.sample_phase(steps, self.batch_size)
        if phase is None:
            rows = steps * self.batch_size
            space = self._phase_space(rows)
            offset = 0
            for _ in range(steps):
                batch = buffer.sample(self.batch_size, beta)
                end = offset + len(batch.actions)
                obs, _, rewards, next_obs, discounts, _ = self._tensors(batch)
                target = self._bootstrap(next_obs, rewards, discounts).cpu().numpy().ravel()
                td = self._step(obs, batch.actions, target, batch.weights, offset, space)
                if batch.weights is not None:
                    buffer.update_priorities(batch.indices, np.abs(td))
                offset = end
        else:
            rows = len(phase.actions)
            space = self._phase_space(rows)
            obs, _, rewards, next_obs, discounts, _ = self._tensors(phase)
            per_step = rows // steps
            fixed = self.use_target and not self.net.noisy and not self.double
            targets = self._fixed_targets(phase, next_obs, space) if fixed else None
            for k in range(steps):
                start, end = k * per_step, (k + 1) * per_step
                if targets is None:
                    target = self._bootstrap(
                        next_obs[start:end], rewards[start:end], discounts[start:end]
                    )
                    target_np = target.cpu().numpy().ravel()
                else:
                    target_np = targets[start:end]
                self._step(obs[start:end], phase.actions[start:end], target_np, None, start, space)
            offset = steps * per_step
        self._record(offset, space)

    def _phase_space(self, rows: int) -> _PhaseSpace:
        space = self._spaces.get(rows)
        if space is None:
            space = self._spaces[rows] = _PhaseSpace(rows, self.net.n_actions)
        return space

    def _fixed_targets(
        self, phase: Batch, next_obs: torch.Tensor, space: _PhaseSpace
    ) -> np.ndarray:
        """The phase's bootstrap targets (rows,) from the fixed target net.

        Each distinct slot's next observation is scored once (the target net is fixed during
        the phase); early on, when the buffer is small, most repeat. The rows go through the
        net in the order of their slots (as ``np.unique`` orders them): a matrix product's
        rows can round differently with the rows around them, so the order is part of the
        result.
        """
        first, inverse = _first_and_inverse(phase.indices)
        if self.device.type == "cpu":
            unique_obs = torch.from_numpy(np.take(phase.next_obs, first, axis=0))
        else:
            unique_obs = next_obs[self._index(first)]
        values = self._next_values(unique_obs).cpu().numpy()
        targets = space.target
        np.take(values, inverse, out=targets)
        np.multiply(targets, phase.discounts, out=targets)
        np.add(targets, phase.rewards, out=targets)
        return targets

    def _tensors(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """Obs (B, dim), actions (B, 1), rewards, next obs, discounts, weights (B, 1) or None."""

        def tensor(array: np.ndarray | None, column: bool = False) -> torch.Tensor | None:
            if array is None:
                return None
            value = torch.from_numpy(array)
            value = value.view(-1, 1) if column else value
            return value if self.device.type == "cpu" else value.to(self.device)

        return (
            tensor(batch.obs),
            tensor(batch.actions, True),
            tensor(batch.rewards, True),
            tensor(batch.next_obs),
            tensor(batch.discounts, True),
            tensor(batch.weights, True),
        )  # type: ignore[return-value]

    def _step(
        self,
        obs: torch.Tensor,
        actions: np.ndarray,
        target: np.ndarray,
        weights: np.ndarray | None,
        offset: int,
        space: _PhaseSpace,
    ) -> np.ndarray:
        """One gradient step on a batch (targets (B,)); records its TD errors, Q(s, a) and
        weights at rows ``offset:offset + B`` of the phase and returns the TD errors (B,).

        The loss's few per-row operations run in numpy on views of the torch tensors (each
        one an exact IEEE operation, so the same bits as torch's, at a fraction of the
        dispatch cost); the matrix products stay in torch.
        """
        if self.net.noisy:
            self.online_noise = self.net.sample_noise(self.noise_generator, self.device)
        n = len(actions)
        work = self._work.get(n)
        if work is None:
            work = self._work[n] = self.net.workspace(n, self.device)
        q, cache = self.net.forward_cached(obs, self.online_views, self.online_noise, work)
        q_np = q.numpy() if self.device.type == "cpu" else q.cpu().numpy()
        rows = slice(offset, offset + n)
        chosen = space.q[rows]
        np.take(q_np.ravel(), space.flat_index(n) + actions, out=chosen)
        td = np.subtract(chosen, target, out=space.td[rows])
        # d(smooth_l1_loss)/dQ(s, a): the TD error clipped to [-1, 1], averaged over the batch.
        clipped = np.maximum(td, -1.0, out=space.clipped[rows])
        np.minimum(clipped, 1.0, out=clipped)
        grad_chosen = np.multiply(clipped, 1.0 / n, out=space.grad_chosen[:n])
        if weights is not None:
            grad_chosen *= weights
            space.weights[rows] = weights
            space.weighted = True
        grad_q = work.grad_q_np
        grad_q.fill(0.0)
        np.put(grad_q.ravel(), space.flat_index(n) + actions, grad_chosen)
        grad_q_t = work.grad_q if self.device.type == "cpu" else work.grad_q.to(self.device)
        self.net.backward(cache, grad_q_t, self.grad_views, work)
        if self.max_grad_norm is not None:
            self._clip_gradient(self.max_grad_norm)
        self.optimizer.step()
        self.gradient_steps += 1
        return td

    def _index(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array.astype(np.int64, copy=False)).to(self.device)

    def _bootstrap(
        self, next_obs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor
    ) -> torch.Tensor:
        """rewards + discounts * Q'(next_obs, a*) as a (B, 1) column."""
        if self.net.noisy:
            self.target_noise = self.net.sample_noise(self.noise_generator, self.device)
        return self._next_values(next_obs).view(-1, 1).mul_(discounts).add_(rewards)

    def _next_values(self, next_obs: torch.Tensor) -> torch.Tensor:
        """Q'(next_obs, a*) (B,), a* greedy for the target net (or the online net: double)."""
        values = []
        # Chunks of a few hundred rows keep the activations in cache.
        for start in range(0, len(next_obs), TARGET_CHUNK):
            part = next_obs[start : start + TARGET_CHUNK]
            next_q = self.net.q_values(part, self.target_views, self.target_noise)
            if self.double:
                online = self.net.q_values(part, self.online_views, self.online_noise)
                values.append(next_q.gather(1, online.argmax(dim=1, keepdim=True)).squeeze(1))
            else:
                values.append(next_q.amax(dim=1))
        return values[0] if len(values) == 1 else torch.cat(values)

    def _clip_gradient(self, max_norm: float) -> None:
        # torch.nn.utils.clip_grad_norm_ on one flat tensor, without its per-tensor loop.
        grad = self.grad
        norm = math.sqrt(float(torch.dot(grad, grad)))
        if norm > max_norm:
            grad.mul_(max_norm / (norm + 1e-6))

    def update_target(self, tau: float) -> None:
        """Hard copy (tau = 1) or Polyak average of the online parameters into the target."""
        if not self.use_target:
            return
        with torch.no_grad():
            if tau >= 1.0:
                self.target.copy_(self.params)
            else:
                self.target.lerp_(self.params, tau)

    # -- statistics -----------------------------------------------------------------------------
    def _record(self, rows: int, space: _PhaseSpace) -> None:
        if rows == 0:
            return
        td, clipped, sums = space.td[:rows], space.clipped[:rows], space.sums[:, :rows]
        # Huber loss clipped * (td - clipped / 2), per row, then |td|, loss and Q summed by
        # one torch reduction over the (3, rows) block (each row summed as torch sums a vector).
        huber = np.multiply(clipped, 0.5, out=sums[1])
        np.subtract(td, huber, out=huber)
        np.multiply(clipped, huber, out=huber)
        if space.weighted:
            huber *= space.weights[:rows]
            space.weights.fill(1.0)
            space.weighted = False
        np.abs(td, out=sums[0])
        abs_td, loss, q = torch.from_numpy(np.ascontiguousarray(sums)).sum(1).tolist()
        if not (math.isfinite(loss) and math.isfinite(q)):
            raise Diverged(
                f"non-finite loss ({loss}) or Q-value after {self.gradient_steps} gradient steps"
            )
        self._sums[0] += abs_td
        self._sums[1] += loss
        self._sums[2] += q
        self._sums[3] += rows

    def reset_stats(self) -> None:
        """Starts a new averaging window for ``stats``."""
        self._sums = [0.0, 0.0, 0.0, 0]

    def stats(self) -> dict[str, float]:
        """Means over the updates since the last reset: ``td_error`` (|TD error|), ``loss``
        (Huber, importance-weighted), ``q_mean`` (Q of the actions taken); {} without updates."""
        abs_td, loss, q, rows = self._sums
        if rows == 0:
            return {}
        return {"td_error": abs_td / rows, "loss": loss / rows, "q_mean": q / rows}
