"""The DQN update rule: bootstrap targets, Huber loss, clipped Adam step, target updates.

Matches Stable-Baselines3's ``DQN.train`` step for step (``smooth_l1_loss`` averaged over the
batch, ``clip_grad_norm_`` at ``max_grad_norm``, Adam with eps 1e-8, hard or Polyak target
updates), plus the switches of ``dqn``: double, dueling, n-step discounts, importance weights,
NoisyNet noise and bootstrapping from the online net.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlcompare.algos.deep.network import QNetwork
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


class FlatAdam:
    """Adam on one flat parameter tensor (eps 1e-8, as SB3's DQN policy).

    Calls torch's fused Adam kernel directly where it exists: on a 70k-parameter network the
    ``torch.optim.Optimizer`` wrapper costs as much as the update itself. Elsewhere it falls
    back to ``torch.optim.Adam``; the tests check both against each other.
    """

    def __init__(self, param: torch.Tensor, lr: float, eps: float = 1e-8) -> None:
        self.param, self.lr, self.eps = param, lr, eps
        self._data = param.detach()
        self.betas = (0.9, 0.999)
        self.exp_avg = torch.zeros_like(param, requires_grad=False)
        self.exp_avg_sq = torch.zeros_like(param, requires_grad=False)
        self.steps = torch.zeros((), dtype=torch.float32, device=param.device)
        self.fallback: torch.optim.Adam | None = None
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
            [self.param.grad],
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
    """

    def __init__(
        self,
        in_dim: int,
        n_actions: int,
        hp: Mapping[str, Any],
        seeds: RunSeeds,
        device: torch.device,
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
        self.params = flat.requires_grad_()
        self.params.grad = torch.zeros_like(flat)
        self.target = flat.detach().clone()
        self.online_views = self.net.views(self.params.detach())
        self.target_views = self.net.views(self.target) if self.use_target else self.online_views
        self.grad_views = self.net.views(self.params.grad)
        self.optimizer = FlatAdam(self.params, hp["learning_rate"])
        self.noise_generator = torch.Generator(device).manual_seed(seeds.int_seed("noise"))
        self.online_noise = self.net.sample_noise(self.noise_generator, device)
        self.target_noise = self.online_noise
        # One observation, written in place by q_row() off the numpy path.
        self._one = torch.zeros(1, in_dim)
        self._one_np = self._one.numpy()
        self._acting: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._acting_key: tuple[bool, int] | None = None
        self._td = torch.empty(0, device=device)
        self._q = torch.empty(0, device=device)
        self._w = torch.empty(0, device=device)
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
        rows = steps * self.batch_size
        if len(self._td) < rows:
            # Per-sample TD errors, Q(s, a) and IS weights of the phase, as (rows, 1) columns.
            self._td = torch.empty(rows, 1, device=self.device)
            self._q = torch.empty(rows, 1, device=self.device)
            self._w = torch.ones(rows, 1, device=self.device)
        self._grad_q = torch.zeros(rows, self.net.n_actions, device=self.device)
        phase = buffer.sample_phase(steps, self.batch_size)
        if phase is None:
            offset = 0
            for _ in range(steps):
                batch = buffer.sample(self.batch_size, beta)
                end = offset + len(batch.actions)
                obs, actions, rewards, next_obs, discounts, weights = self._tensors(batch)
                target = self._bootstrap(next_obs, rewards, discounts)
                td = self._step(obs, actions, target, weights, slice(offset, end))
                if batch.weights is not None:
                    buffer.update_priorities(batch.indices, td.abs().view(-1).cpu().numpy())
                offset = end
        else:
            obs, actions, rewards, next_obs, discounts, _ = self._tensors(phase)
            per_step = len(phase.actions) // steps
            fixed = self.use_target and not self.net.noisy and not self.double
            targets = None
            if fixed:
                # Each distinct slot's next observation is scored once (the target net is
                # fixed during the phase); early on, when the buffer is small, most repeat.
                _, first, inverse = np.unique(phase.indices, return_index=True, return_inverse=True)
                values = self._next_values(next_obs[self._index(first)])[self._index(inverse)]
                targets = values.view(-1, 1).mul_(discounts).add_(rewards)
            for k in range(steps):
                part = slice(k * per_step, (k + 1) * per_step)
                target = (
                    targets[part]
                    if targets is not None
                    else self._bootstrap(next_obs[part], rewards[part], discounts[part])
                )
                self._step(obs[part], actions[part], target, None, part)
            offset = steps * per_step
        self._record(offset)

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
        actions: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | None,
        rows: slice,
    ) -> torch.Tensor:
        """One gradient step on a batch (targets (B, 1)); records its TD errors, Q(s, a) and
        weights at ``rows`` of the phase's columns and returns the TD errors (B, 1)."""
        if self.net.noisy:
            self.online_noise = self.net.sample_noise(self.noise_generator, self.device)
        q, cache = self.net.forward_cached(obs, self.online_views, self.online_noise)
        chosen = torch.gather(q, 1, actions, out=self._q[rows])
        td = torch.sub(chosen, target, out=self._td[rows])
        # d(smooth_l1_loss)/dQ(s, a): the TD error clipped to [-1, 1], averaged over the batch.
        grad_chosen = td.clamp(-1.0, 1.0).mul_(1.0 / len(td))
        if weights is not None:
            grad_chosen.mul_(weights)
            self._w[rows] = weights
        grad_q = self._grad_q[rows].scatter_(1, actions, grad_chosen)
        self.net.backward(cache, grad_q, self.grad_views)
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
        grad = self.params.grad
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
    def _record(self, rows: int) -> None:
        if rows == 0:
            return
        td, weights = self._td[:rows], self._w[:rows]  # (rows, 1)
        clipped = td.clamp(-1.0, 1.0)
        huber = clipped * (td - 0.5 * clipped)
        sums = torch.stack([td.abs().sum(), (huber * weights).sum(), self._q[:rows].sum()])
        abs_td, loss, q = sums.tolist()
        self._w[:rows].fill_(1.0)
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
