"""Exploration strategies: epsilon-greedy (constant or scheduled), Boltzmann, UCB.

A strategy turns action values into exact action probabilities and draws an action from
them by inverse CDF with one caller-supplied uniform, so the caller owns every random
stream and ties among maximal actions are broken uniformly at random. The row functions
below are plain Python in the subset numba compiles: the tabular engine compiles these
very functions (``rlcompare.algos.tabular.kernels``), and the strategy objects call them as they
are, so there is one implementation of each rule. Shared by the tabular and deep learners.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rlcompare.errors import SpecError
from rlcompare.spec.params import Param

KIND_EPSILON_GREEDY, KIND_BOLTZMANN, KIND_UCB = 0, 1, 2
STRATEGIES = ("epsilon_greedy", "boltzmann", "ucb")
LINEAR, EXPONENTIAL = 0, 1
DECAYS = ("linear", "exponential")

# The exploration hyperparameters every value-based learner takes.
EXPLORATION_PARAMS: dict[str, Param] = {
    "exploration": Param("epsilon_greedy", "str", "behaviour policy", choices=STRATEGIES),
    "epsilon": Param(
        0.1,
        "float",
        "epsilon-greedy: (initial) share of random actions",
        low=0.0,
        high=1.0,
        search=(0.01, 0.5),
    ),
    "epsilon_final": Param(
        None,
        "float",
        "epsilon after epsilon_decay_steps; None: constant",
        low=0.0,
        high=1.0,
        nullable=True,
    ),
    "epsilon_decay": Param("linear", "str", "shape of the epsilon schedule", choices=DECAYS),
    "epsilon_decay_steps": Param(10_000, "int", "env steps from epsilon to epsilon_final", low=1),
    "temperature": Param(
        1.0, "float", "Boltzmann: (initial) temperature", low=0.0, low_open=True, log=True
    ),
    "temperature_final": Param(
        None,
        "float",
        "temperature after the decay; None: constant",
        low=0.0,
        low_open=True,
        nullable=True,
    ),
    "temperature_decay": Param(
        "linear", "str", "shape of the temperature schedule", choices=DECAYS
    ),
    "temperature_decay_steps": Param(10_000, "int", "env steps of the temperature schedule", low=1),
    "ucb_c": Param(1.0, "float", "UCB: weight of the bonus sqrt(ln n(s) / n(s, a))", low=0.0),
}


# -- schedules --------------------------------------------------------------------------------
def linear_schedule(start: float, end: float, duration: float, t: float) -> float:
    """Moves linearly from ``start`` to ``end`` over ``duration`` steps, then stays at ``end``."""
    fraction = min(t / duration, 1.0)
    return start + fraction * (end - start)


def exponential_schedule(start: float, end: float, duration: float, t: float) -> float:
    """Geometric interpolation from ``start`` to ``end`` (both > 0) over ``duration`` steps."""
    fraction = min(t / duration, 1.0)
    return start * (end / start) ** fraction


def scheduled_value(start: float, end: float, decay: int, duration: float, t: float) -> float:
    """``start`` when ``end`` is NaN (no schedule), else the ``decay`` schedule at step ``t``."""
    if math.isnan(end):
        return start
    if decay == EXPONENTIAL:
        return exponential_schedule(start, end, duration, t)
    return linear_schedule(start, end, duration, t)


# -- row functions (compiled by the tabular engine) ------------------------------------------
def action_probabilities(
    kind: int,
    q: np.ndarray,
    counts: np.ndarray,
    valid: np.ndarray,
    row: int,
    parameter: float,
    out: np.ndarray,
) -> None:
    """Writes the exact (A,) action probabilities of row ``row`` into ``out``.

    Rows are addressed by index rather than passed as views, which keeps compiled callers
    free of per-call reference counting.

    Args:
        kind: KIND_EPSILON_GREEDY, KIND_BOLTZMANN or KIND_UCB.
        q: (N x A) action values.
        counts: (N x A) visit counts n(s, a) (read by UCB only).
        valid: (N x A) bool, the actions that may be chosen (others get probability 0).
        row: Which row.
        parameter: epsilon, temperature or the UCB weight c.
        out: (A,) output.
    """
    n_actions = q.shape[1]
    best = -np.inf
    n_valid = 0
    visits = 0.0
    untried = 0
    for a in range(n_actions):
        if valid[row, a]:
            n_valid += 1
            visits += counts[row, a]
            untried += counts[row, a] == 0
            best = max(best, q[row, a])
    if kind == KIND_UCB and untried > 0:
        # An untried action has an infinite bonus: uniform over the untried ones.
        for a in range(n_actions):
            out[a] = 1.0 / untried if valid[row, a] and counts[row, a] == 0 else 0.0
    elif kind == KIND_UCB:
        best = -np.inf
        for a in range(n_actions):
            out[a] = -np.inf
            if valid[row, a]:
                out[a] = q[row, a] + parameter * math.sqrt(math.log(visits) / counts[row, a])
                best = max(best, out[a])
        n_best = 0
        for a in range(n_actions):
            n_best += out[a] == best
        for a in range(n_actions):
            out[a] = 1.0 / n_best if out[a] == best else 0.0
    elif kind == KIND_BOLTZMANN:
        total = 0.0
        for a in range(n_actions):
            out[a] = math.exp((q[row, a] - best) / parameter) if valid[row, a] else 0.0
            total += out[a]
        for a in range(n_actions):
            out[a] = out[a] / total
    else:
        n_best = 0
        for a in range(n_actions):
            n_best += valid[row, a] and q[row, a] == best
        for a in range(n_actions):
            if valid[row, a]:
                share = (1.0 - parameter) / n_best if q[row, a] == best else 0.0
                out[a] = parameter / n_valid + share
            else:
                out[a] = 0.0


def sample_action(probs: np.ndarray, u: float) -> int:
    """Inverse-CDF draw from (A,) ``probs`` with a uniform ``u`` in [0, 1); never picks an
    action of probability 0 (rounding that leaves the total below ``u`` gives the last
    possible action)."""
    total = 0.0
    last = 0
    for a in range(probs.shape[0]):
        if probs[a] > 0.0:
            total += probs[a]
            last = a
            if u < total:
                return a
    return last


# -- strategy objects -------------------------------------------------------------------------
@dataclass(frozen=True)
class Strategy:
    """Base of the strategies: a kind, a (scheduled) parameter, and the row functions.

    Attributes:
        start: The parameter (epsilon, temperature, c) at step 0.
        end: The parameter after ``duration`` steps; None keeps ``start``.
        decay: ``linear`` or ``exponential``.
        duration: Steps of the schedule.
    """

    start: float
    end: float | None = None
    decay: str = "linear"
    duration: int = 10_000
    kind: ClassVar[int] = KIND_EPSILON_GREEDY

    def __post_init__(self) -> None:
        if self.decay not in DECAYS:
            raise SpecError(f"decay = {self.decay!r} is invalid; valid: {', '.join(DECAYS)}")
        if self.decay == "exponential" and self.end is not None and min(self.start, self.end) <= 0:
            raise SpecError(
                f"an exponential schedule from {self.start} to {self.end} is invalid; "
                "valid: both ends > 0 (or a linear schedule)"
            )

    def parameter(self, step: int) -> float:
        """The parameter in force at env step ``step``."""
        return scheduled_value(*self.kernel_args()[1:], float(step))

    def kernel_args(self) -> tuple[int, float, float, int, float]:
        """(kind, start, end or NaN, decay code, duration) for compiled callers."""
        end = math.nan if self.end is None else float(self.end)
        return self.kind, float(self.start), end, DECAYS.index(self.decay), float(self.duration)

    def probabilities(
        self,
        q: np.ndarray,
        counts: np.ndarray | None = None,
        step: int = 0,
        valid: np.ndarray | None = None,
    ) -> np.ndarray:
        """Exact probabilities: (A,) for one row of values, (N x A) for N rows.

        Args:
            q: (A,) or (N x A) action values.
            counts: Visit counts of the same shape (UCB needs them; others ignore them).
            step: Env steps done (for schedules).
            valid: Bool mask of the same shape; None: every action is valid.
        """
        rows = np.atleast_2d(np.asarray(q, dtype=np.float64))
        if counts is None:
            if self.kind == KIND_UCB:
                raise SpecError("UCB needs visit counts; valid: counts of the shape of q")
            counts = np.zeros(rows.shape)
        counts = np.broadcast_to(np.asarray(counts, dtype=np.float64), rows.shape)
        valid = np.broadcast_to(
            np.ones(rows.shape[1], bool) if valid is None else valid, rows.shape
        )
        out = np.empty_like(rows)
        parameter = self.parameter(step)
        for i in range(rows.shape[0]):
            action_probabilities(self.kind, rows, counts, valid, i, parameter, out[i])
        return out[0] if np.ndim(q) == 1 else out

    def select(
        self,
        q: np.ndarray,
        counts: np.ndarray | None,
        step: int,
        uniforms: np.ndarray | float,
        valid: np.ndarray | None = None,
    ) -> np.ndarray | int:
        """Actions drawn with one uniform per row: an int for (A,) values, (N,) for (N x A)."""
        probs = np.atleast_2d(self.probabilities(q, counts, step, valid))
        draws = np.broadcast_to(np.asarray(uniforms, dtype=np.float64), probs.shape[:1])
        actions = np.array([sample_action(p, u) for p, u in zip(probs, draws, strict=True)])
        return int(actions[0]) if np.ndim(q) == 1 else actions


@dataclass(frozen=True)
class EpsilonGreedy(Strategy):
    """Uniform random with probability epsilon, else greedy (ties uniform)."""

    start: float = 0.1
    kind: ClassVar[int] = KIND_EPSILON_GREEDY


@dataclass(frozen=True)
class Boltzmann(Strategy):
    """Softmax of Q / temperature."""

    start: float = 1.0
    kind: ClassVar[int] = KIND_BOLTZMANN


@dataclass(frozen=True)
class UCB(Strategy):
    """Greedy in Q(s, a) + c sqrt(ln n(s) / n(s, a)); untried actions first (ties uniform)."""

    start: float = 1.0
    kind: ClassVar[int] = KIND_UCB


def _scheduled(cls: type[Strategy], name: str, hp: Mapping[str, Any]) -> Strategy:
    """``cls`` with the schedule of hyperparameter ``name`` (``name_final``, ``name_decay``,
    ``name_decay_steps``), checked first so the error names the hyperparameters."""
    start, end = hp[name], hp.get(f"{name}_final")
    decay = hp.get(f"{name}_decay", "linear")
    if decay == "exponential" and end is not None and min(start, end) <= 0:
        raise SpecError(
            f"hyperparameters {name}={start!r}, {name}_final={end!r} are invalid with "
            f"{name}_decay='exponential'; valid: both > 0, or {name}_decay='linear'"
        )
    return cls(start, end, decay, hp.get(f"{name}_decay_steps", 10_000))


# The strategies with a scheduled parameter: kind -> (class, hyperparameter name).
_SCHEDULED: dict[str, tuple[type[Strategy], str]] = {
    "epsilon_greedy": (EpsilonGreedy, "epsilon"),
    "boltzmann": (Boltzmann, "temperature"),
}


def strategy_from_hparams(hp: Mapping[str, Any]) -> Strategy:
    """The strategy that the EXPLORATION_PARAMS entries of ``hp`` describe.

    Raises:
        SpecError: an exponential schedule with an end at 0 (naming the hyperparameters).
    """
    kind = hp.get("exploration", "epsilon_greedy")
    if kind in _SCHEDULED:
        return _scheduled(*_SCHEDULED[kind], hp)
    if kind == "ucb":
        return UCB(hp["ucb_c"])
    raise SpecError(f"exploration = {kind!r} is invalid; valid: {', '.join(STRATEGIES)}")
