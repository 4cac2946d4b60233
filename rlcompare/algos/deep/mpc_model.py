"""The learned dynamics model of ``mpc``: an ensemble of small MLPs with stacked weights.

Each member maps (observation, action) to (change of observation, reward). The members' weights
are stacked along a leading ensemble axis, so one ``torch.baddbmm`` per layer runs every member
on its own batch: training draws an independent minibatch per member, and planning runs the
whole population through the whole ensemble in one forward per horizon step. Inputs and
targets are normalised with the mean and std of all transitions so far (refit at every training
phase); for planning the normalisation is folded into the first and last layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn.functional import silu

from rlcompare.errors import Diverged

# A feature whose std is below this (a constant one) is scaled by 1 instead.
MIN_STD = 1e-6


class TransitionStore:
    """All transitions so far as growing float32 arrays: inputs (obs, action) and targets
    (next_obs - obs, reward)."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 1024) -> None:
        self.obs_dim = obs_dim
        self.inputs = np.zeros((capacity, obs_dim + act_dim), dtype=np.float32)
        self.targets = np.zeros((capacity, obs_dim + 1), dtype=np.float32)
        self.size = 0

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray) -> None:
        """Appends one transition (``action`` in the planner's [-1, 1] units)."""
        if self.size == len(self.inputs):
            self.inputs = np.concatenate([self.inputs, np.zeros_like(self.inputs)])
            self.targets = np.concatenate([self.targets, np.zeros_like(self.targets)])
        row = self.size
        self.inputs[row, : self.obs_dim] = obs
        self.inputs[row, self.obs_dim :] = action
        self.targets[row, : self.obs_dim] = next_obs - obs
        self.targets[row, self.obs_dim] = reward
        self.size += 1

    def __len__(self) -> int:
        return self.size


def _stats(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = data.mean(dim=0)
    std = data.std(dim=0, unbiased=False)
    return mean, torch.where(std < MIN_STD, torch.ones_like(std), std)


class EnsembleModel:
    """``size`` MLPs on (obs, action) -> (delta obs, reward), trained and run together.

    Args:
        obs_dim: Length of a (flat) observation.
        act_dim: Length of an action.
        hidden: Hidden layer sizes of every member.
        size: Members of the ensemble.
        learning_rate: Adam step size.
        generator: Draws the initial weights and the minibatch orders (CPU generator).
        device: Where the weights live.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int],
        size: int,
        learning_rate: float,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        self.obs_dim, self.act_dim, self.size = obs_dim, act_dim, size
        self.device = device
        self.generator = generator
        widths = [obs_dim + act_dim, *hidden, obs_dim + 1]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            # nn.Linear's default initialisation, per member.
            bound = 1.0 / math.sqrt(fan_in)
            weight = (torch.rand(size, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            bias = (torch.rand(size, 1, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(weight.to(device).requires_grad_())
            self.biases.append(bias.to(device).requires_grad_())
        self.optimizer = torch.optim.Adam([*self.weights, *self.biases], lr=learning_rate)
        self.x_mean = torch.zeros(widths[0], device=device)
        self.x_std = torch.ones(widths[0], device=device)
        self.y_mean = torch.zeros(widths[-1], device=device)
        self.y_std = torch.ones(widths[-1], device=device)
        self.trained = False
        self.last_loss = float("nan")
        self._fold()

    def _forward(self, x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]):
        """(size, B, in) -> (size, B, out) through every member's layers."""
        for weight, bias in zip(weights[:-1], biases[:-1], strict=True):
            x = silu(torch.baddbmm(bias, x, weight))
        return torch.baddbmm(biases[-1], x, weights[-1])

    def fit(self, store: TransitionStore, epochs: int, batch_size: int) -> float:
        """Refits the normalisation to every transition so far, then runs ``epochs`` passes
        of Adam on the mean squared error in normalised units, each member on its own
        shuffle of the data. Returns the mean loss of the last epoch.

        Raises:
            Diverged: the loss became non-finite.
        """
        n = len(store)
        x = torch.from_numpy(store.inputs[:n]).to(self.device)
        y = torch.from_numpy(store.targets[:n]).to(self.device)
        self.x_mean, self.x_std = _stats(x)
        self.y_mean, self.y_std = _stats(y)
        x = (x - self.x_mean) / self.x_std
        y = (y - self.y_mean) / self.y_std
        for _ in range(epochs):
            order = torch.argsort(torch.rand(self.size, n, generator=self.generator), dim=1)
            order = order.to(self.device)
            total, batches = torch.zeros((), device=self.device), 0
            for start in range(0, n, batch_size):
                rows = order[:, start : start + batch_size]  # (size, B)
                pred = self._forward(x[rows], self.weights, self.biases)
                # A sum over members of each member's own mean: independent gradients.
                loss = (pred - y[rows]).square().mean(dim=(1, 2)).sum()
                self.optimizer.zero_grad(set_to_none=False)
                loss.backward()
                self.optimizer.step()
                total += loss.detach()
                batches += 1
            self.last_loss = float(total) / (batches * self.size)
            if not math.isfinite(self.last_loss):
                raise Diverged(f"model loss became {self.last_loss} after training on {n} steps")
        self.trained = True
        self._fold()
        return self.last_loss

    def _fold(self) -> None:
        """Planning weights: the input normalisation folded into the first layer, the output
        scale into the last, so a planning forward is the bare layers on raw inputs."""
        with torch.no_grad():
            weights = [w.detach().clone() for w in self.weights]
            biases = [b.detach().clone() for b in self.biases]
            # ((x - m) / s) @ W + b = x @ (W / s) + (b - (m / s) @ W)
            first = weights[0]
            biases[0] = biases[0] - (self.x_mean / self.x_std).view(1, 1, -1) @ first
            weights[0] = first / self.x_std.view(1, -1, 1)
            # (h @ W + b) * s + m = h @ (W * s) + (b * s + m)
            weights[-1] = weights[-1] * self.y_std
            biases[-1] = biases[-1] * self.y_std + self.y_mean
        self.plan_obs_weight = weights[0][:, : self.obs_dim].contiguous()  # (size, obs, h1)
        self.plan_act_weight = weights[0][:, self.obs_dim :].contiguous()  # (size, act, h1)
        self.plan_first_bias = biases[0]  # (size, 1, h1)
        self.plan_weights, self.plan_biases = weights[1:], biases[1:]

    def action_features(self, actions: torch.Tensor) -> torch.Tensor:
        """First-layer pre-activations of whole action sequences at once, bias included:
        (N, H, act) shared by every member, or (size, N, H, act) one batch per member ->
        (size, H, N, h1)."""
        horizon, n = actions.shape[-2], actions.shape[-3]
        if actions.dim() == 3:
            flat = actions.transpose(0, 1).reshape(1, horizon * n, self.act_dim)
        else:
            flat = actions.transpose(1, 2).reshape(self.size, horizon * n, self.act_dim)
        features = torch.matmul(flat, self.plan_act_weight)  # (size, H * N, h1)
        return features.view(self.size, horizon, n, -1).add_(self.plan_first_bias.unsqueeze(1))

    def step(self, obs: torch.Tensor, action_features: torch.Tensor) -> torch.Tensor:
        """Predicted (delta obs, reward) of every member: obs (size, N, obs) or (N, obs)
        shared by all members, action features (size, N, h1) -> (size, N, obs + 1)."""
        h = silu(torch.matmul(obs, self.plan_obs_weight).add_(action_features))
        for weight, bias in zip(self.plan_weights[:-1], self.plan_biases[:-1], strict=True):
            h = silu(torch.baddbmm(bias, h, weight))
        return torch.baddbmm(self.plan_biases[-1], h, self.plan_weights[-1])
