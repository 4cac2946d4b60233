"""The report card's battery: what each capability item runs and how it scores, in [0, 1].

An :class:`Item` is a capability (as bsuite's experiments are): its tasks (an env with its
settings and budget, run by the card's algorithm and by the built-ins that can run it), and a
per-run score in [0, 1] whose definition is the docstring of its scoring function. An item's
score is the mean over its tasks of the mean per-run score; 1 is the best the item can tell.

Tasks are data: the same task in two items (stability reads the runs of convergence and
sample efficiency) is the same runs, stored once. Budgets and seeds come in two sizes,
``quick`` and ``full`` (:class:`Size`). Tabular tasks run ten seeds per contender (five
cannot separate most pairs at 5% family-wise), deep ones five (quick) or ten.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rlcompare.algos.deep.hparams import ZOO_CARTPOLE_DQN
from rlcompare.envs import experts
from rlcompare.envs.datasets import collect_demonstrations
from rlcompare.envs.model import tabular_mdp
from rlcompare.envs.planning import expected_return, value_iteration

# A DeepSea run is solved when its greedy policy's final return reaches this (the treasure
# pays 1, moving right costs 0.01 in all: only a policy that reaches it scores above 1/2).
DEEPSEA_SOLVED = 0.5
# CartPole-v1: a uniform random policy's mean return, and the cap (as notebook 03 normalises).
CARTPOLE_RANDOM, CARTPOLE_BEST = 22.0, 500.0
# Pendulum-v1: a uniform random policy's mean return (about -1,230 over 200 steps), and a
# return the solved swing-up reaches (about -150; SAC's and PPO's solved runs).
PENDULUM_RANDOM, PENDULUM_BEST = -1230.0, -150.0
# Collapse (as notebook 03): below half of its running best for good after reaching 90% of
# the best normalised return.
COLLAPSE_FRACTION, COLLAPSE_SOLVED = 0.5, 0.9

# Reference settings of the deep built-ins (notebooks 03 and 06's defaults).
DQN_HPARAMS = ZOO_CARTPOLE_DQN
PPO_HPARAMS = {
    "n_envs": 8,
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": 0.001,
    "clip_range": 0.2,
}
PPO_PENDULUM = {
    "n_envs": 4,
    "n_steps": 256,
    "batch_size": 64,
    "n_epochs": 10,
    "gae_lambda": 0.95,
    "gamma": 0.9,
    "learning_rate": 0.001,
    "use_sde": True,
    "sde_sample_freq": 4,
}


class Size(NamedTuple):
    """A value for ``quick`` cards and one for ``full`` ones."""

    quick: int
    full: int

    def of(self, quick: bool) -> int:
        return self.quick if quick else self.full


@dataclasses.dataclass(frozen=True)
class Logs:
    """A logged dataset a task learns from: ``policy`` on ``env`` with ``epsilon`` random
    actions, ``steps`` transitions, seed 0 (the same file for every card)."""

    name: str
    env: str
    policy: Callable[[Any], Any]
    steps: Size
    epsilon: float = 0.5

    def path(self, store: str | Path, quick: bool) -> str:
        """Collects the logs once into ``<store>/logs`` and returns the file's path."""
        steps = self.steps.of(quick)
        path = Path(store) / "logs" / f"{self.name}_eps{self.epsilon}_n{steps}.npz"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            data = collect_demonstrations(
                self.policy,
                self.env,
                steps=steps,
                seed=0,
                epsilon=self.epsilon,
                source=f"{self.name}, epsilon={self.epsilon}",
            )
            data.save(path)
        return str(path)


@dataclasses.dataclass(frozen=True)
class Task:
    """One env of an item, with its budget and the settings every contender runs it with.

    Attributes:
        label: Name in tables and figures (unique in a battery).
        env: Gymnasium id.
        env_kwargs: Its constructor settings.
        steps: Budget in env steps (or ``episodes``), quick and full.
        episodes: Budget in training episodes, quick and full.
        seeds: Runs per contender (seeds 0..n-1), quick and full (>= 2: a verdict needs 2).
        evals: Evaluations over the budget.
        eval_episodes: Episodes per evaluation.
        references: Built-ins this task compares with, each with its own settings.
        common: Settings given to every contender that declares them (``gamma``).
        logs: Learn from these logs (the ``dataset`` hyperparameter) instead of the env.
    """

    label: str
    env: str
    references: Mapping[str, Mapping[str, Any]]
    seeds: Size
    steps: Size | None = None
    episodes: Size | None = None
    env_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    evals: int = 10
    eval_episodes: int = 5
    common: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    logs: Logs | None = None


# A per-run scorer: (rows of one task's runs, the task) -> score in [0, 1] per run id.
Scorer = Callable[[pd.DataFrame, Task], pd.Series]
# Evidence beside the score: (rows of every contender's runs of a task, the task) -> a line.
Evidence = Callable[[pd.DataFrame, Task], str]


@dataclasses.dataclass(frozen=True)
class Item:
    """A capability: its tasks and its per-run score (the scorer's docstring defines it).

    Attributes:
        name: Short id (``regret``).
        title: Its heading.
        tasks: What it runs.
        scorer: Per-run score in [0, 1], higher better.
        requires: Why an algorithm may be unable to take part, beyond the env's spaces:
            ``"dataset"`` (the item learns from logs: the algorithm must declare a
            ``dataset`` hyperparameter), ``"q_error"`` (read after the runs: the
            algorithm's runs must record it).
        evidence: A line per task shown beside the decisions (steps to a threshold).
    """

    name: str
    title: str
    tasks: tuple[Task, ...]
    scorer: Scorer
    requires: str | None = None
    evidence: Evidence | None = None

    @property
    def definition(self) -> str:
        """The score's definition: its scorer's docstring, as plain text."""
        text = " ".join((self.scorer.__doc__ or "").split())
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
        return text.replace("``", "")


# ----------------------------------------------------------------------------- references
@cache
def tabular_bounds(env: str, kwargs_json: str = "{}") -> tuple[float, float]:
    """``(uniform random, optimal)`` expected undiscounted return within the env's time limit,
    exact from its model: the random policy picks valid actions uniformly; the optimal one
    is value iteration's at gamma 0.999 (stationary, so at most the finite-horizon optimum:
    a run may score a hair above it, and is clipped to 1)."""
    import json

    mdp = tabular_mdp(env, **json.loads(kwargs_json))
    horizon = mdp_horizon(env, json.loads(kwargs_json))
    uniform = mdp.valid_actions / mdp.valid_actions.sum(axis=1, keepdims=True)
    best = value_iteration(mdp, 0.999).policy
    return expected_return(mdp, uniform, horizon), expected_return(mdp, best, horizon)


def mdp_horizon(env: str, env_kwargs: Mapping[str, Any]) -> int:
    """The env's step limit; DeepSea's episodes end after ``size`` steps anyway."""
    from rlcompare.envs.make import env_info

    limit = env_info(env, env_kwargs).max_episode_steps
    return int(limit) if limit else int(env_kwargs.get("size", 1000)) + 1


# ----------------------------------------------------------------------------- scorers
def final_values(rows: pd.DataFrame, metric: str) -> pd.Series:
    """The last recorded value of ``metric`` per run id (NaN where a run has none)."""
    picked = rows[rows["metric"] == metric].sort_values(["run_id", "step"])
    return picked.groupby("run_id")["value"].last()


def return_metric(rows: pd.DataFrame) -> str:
    """``expected_eval_return`` where every run records it (exact, from the model), else
    ``eval_return``: one metric for every contender of a task, as ``compare`` chooses."""
    every = set(rows["run_id"].unique())
    exact = set(rows.loc[rows["metric"] == "expected_eval_return", "run_id"].unique())
    return "expected_eval_return" if every and every <= exact else "eval_return"


def _bounds(task: Task) -> tuple[float, float]:
    import json

    if task.env == "CartPole-v1":
        return CARTPOLE_RANDOM, CARTPOLE_BEST
    if task.env == "Pendulum-v1":
        return PENDULUM_RANDOM, PENDULUM_BEST
    return tabular_bounds(task.env, json.dumps(dict(task.env_kwargs), sort_keys=True))


def normalised(values: pd.Series, low: float, high: float) -> pd.Series:
    """``(value - low) / (high - low)`` clipped to [0, 1]; NaN (a diverged run) scores 0."""
    return ((values - low) / (high - low)).clip(0.0, 1.0).fillna(0.0)


def normalised_return(rows: pd.DataFrame, task: Task) -> pd.Series:
    """Final return between random and optimal: ``(G - G_random) / (G_best - G_random)``
    clipped to [0, 1], where G is the run's last evaluation (the exact expected return of its
    greedy policy within the time limit where every run of the task records it, else the mean
    eval return). On envs with a model, G_random and G_best are exact (the uniform policy and
    value iteration's at gamma 0.999, within the time limit); CartPole-v1: 22 and 500;
    Pendulum-v1: -1,230 and -150. 1: optimal; 0: no better than acting at random. With
    the exact return this is 1 minus the exact regret of the final greedy policy (within the
    time limit) over the random policy's."""
    low, high = _bounds(task)
    return normalised(final_values(rows, return_metric(rows)), low, high)


def q_convergence(rows: pd.DataFrame, task: Task) -> pd.Series:
    """How close the final action values are to Q*: ``1 - q_error / max|Q*|`` clipped to
    [0, 1], where q_error is max over reachable (s, a) of |Q - Q*| at the run's own gamma (as
    the agent records it) and max|Q*| is the same maximum for Q = 0. 1: Q* exactly; 0: no
    closer than all zeros. Only runs that record q_error take part."""
    import json

    errors = final_values(rows, "q_error").dropna()
    gammas = rows.drop_duplicates("run_id").set_index("run_id").get("hp.gamma")
    mdp = tabular_mdp(task.env, **json.loads(json.dumps(dict(task.env_kwargs))))
    scale: dict[float, float] = {}
    out = {}
    for run_id, error in errors.items():
        gamma = float(gammas[run_id]) if gammas is not None and pd.notna(gammas[run_id]) else 0.99
        if gamma not in scale:
            q = value_iteration(mdp, gamma).q
            mask = mdp.valid_actions & (mdp.reachable & ~mdp.terminal)[:, None]
            scale[gamma] = float(np.max(np.abs(q[mask]))) if mask.any() else 1.0
        out[run_id] = min(max(1.0 - error / scale[gamma], 0.0), 1.0) if scale[gamma] else 1.0
    return pd.Series(out, dtype=float)


def solved(rows: pd.DataFrame, task: Task) -> pd.Series:
    """Solved or not, in {0, 1} (so in [0, 1]): 1 where the run's final greedy policy
    reaches DeepSea's treasure (its final return, exact where recorded, at least 0.5), else
    0; the item's score is the share of (size, seed) runs solved, as bsuite's deep_sea score
    counts sizes solved."""
    values = final_values(rows, return_metric(rows))
    return (values >= DEEPSEA_SOLVED).astype(float)


def normalised_auc(rows: pd.DataFrame, task: Task) -> pd.Series:
    """Sample efficiency: the area under the eval-return curve over the budget divided by the
    budget (the curve's mean height, ``rlcompare.curves.auc``), normalised between random
    and best as :func:`normalised_return` does and clipped to [0, 1]. 1: the best return
    from the first evaluation on; 0: never better than random."""
    from rlcompare.analysis import curves

    low, high = _bounds(task)
    areas = curves.auc(rows, "eval_return").set_index("run_id")["auc"]
    return normalised(areas, low, high)


def not_collapsed(rows: pd.DataFrame, task: Task) -> pd.Series:
    """Stability: 1 where the run did not collapse, else 0; the item's score, in [0, 1], is 1
    minus the collapse rate across seeds. A run collapses when its normalised return (see
    :func:`normalised_return`), after first reaching 0.9, falls below half of its running
    best and stays there to its last evaluation (``rlcompare.curves.collapse_rate``; a
    diverged run counts at its worst value). A run that never reached 0.9 did not collapse."""
    from rlcompare.analysis import curves

    metric = return_metric(rows)
    low, high = _bounds(task)
    curve = rows[rows["metric"] == metric].copy()
    # Below random is the floor (collapse_rate takes 0 as the bottom of the scale).
    curve["value"] = ((curve["value"] - low) / (high - low)).clip(lower=0.0)
    curve["metric"] = "eval_return"
    heads = rows[rows["metric"] != metric]
    frame = pd.concat([curve, heads[heads["metric"] == "diverged"]], ignore_index=True)
    result = curves.collapse_rate(
        frame, fraction=COLLAPSE_FRACTION, solve_threshold=COLLAPSE_SOLVED, by="algo"
    )
    return 1.0 - result.runs.set_index("run_id")["collapsed"].astype(float)


CARTPOLE_THRESHOLD = 475.0


def steps_to_threshold(rows: pd.DataFrame, task: Task) -> str:
    """Env steps until the eval return first reaches 475 (CartPole-v1's solved level) per
    contender: runs that reached it, and the Kaplan-Meier median (runs that never did count
    as "not yet" at their budget's end; inf: fewer than half reached it)."""
    from rlcompare.analysis import curves

    table = curves.threshold_summary(rows, CARTPOLE_THRESHOLD, "eval_return", by="algo")
    parts = [
        f"{r.algo} {r.reached}/{r.runs} runs, KM median {r.km_median_steps:,.0f}"
        for r in table.itertuples()
    ]
    return f"steps to eval return {CARTPOLE_THRESHOLD:g} on {task.label}: " + "; ".join(parts)


# ----------------------------------------------------------------------------- the battery
TABULAR = {"q_learning": {}, "sarsa": {}, "expected_sarsa": {}, "double_q": {}}
LAKE = Task(
    "FrozenLake-v1",
    "FrozenLake-v1",
    references=TABULAR,
    seeds=Size(10, 10),
    steps=Size(20_000, 50_000),
    eval_episodes=10,
    common={"gamma": 0.95},
)
CARTPOLE = Task(
    "CartPole-v1",
    "CartPole-v1",
    references={"dqn": DQN_HPARAMS, "ppo": PPO_HPARAMS},
    seeds=Size(5, 10),
    steps=Size(5_000, 20_000),
    evals=20,
)


def _deepsea(size: int) -> Task:
    return Task(
        f"DeepSea-{size}",
        "rlcompare/DeepSea-v0",
        env_kwargs={"size": size},
        references={"q_learning": {}, "psrl": {}},
        seeds=Size(10, 10),
        # 300 / 1,000 episodes (each exactly ``size`` steps) as a steps budget: deep
        # learners' schedules need one (DeepSea has no step limit).
        steps=Size(300 * size, 1_000 * size),
        eval_episodes=1,
        common={"gamma": 0.99},
    )


def _lake_expert(obs: int) -> int:
    return int(_lake_policy()[obs])


@cache
def _lake_policy() -> np.ndarray:
    return value_iteration(tabular_mdp("FrozenLake-v1"), 0.95).policy


LAKE_LOGS = Logs("frozenlake_expert", "FrozenLake-v1", _lake_expert, Size(2_000, 10_000))
CARTPOLE_LOGS = Logs("cartpole_expert", "CartPole-v1", experts.cartpole_expert, Size(5_000, 20_000))


def battery(quick: bool) -> tuple[Item, ...]:
    """The fixed battery (the same items for quick and full cards; quick ones run shorter
    budgets, five seeds instead of ten on the deep tasks and the two smallest DeepSea
    sizes)."""
    sizes = (4, 6) if quick else (4, 6, 8, 10)
    river = Task(
        "RiverSwim",
        "rlcompare/RiverSwim-v0",
        references={"q_learning": {}, "psrl": {}},
        seeds=Size(10, 10),
        steps=Size(5_000, 20_000),
        eval_episodes=10,
        common={"gamma": 0.95},
    )
    lake_logs = Task(
        "FrozenLake-v1 logs",
        "FrozenLake-v1",
        references={"q_learning": {}, "double_q": {}, "certainty_equivalence": {}},
        seeds=Size(10, 10),
        steps=Size(5_000, 20_000),
        evals=2,
        eval_episodes=10,
        common={"gamma": 0.95},
        logs=LAKE_LOGS,
    )
    cartpole_logs = Task(
        "CartPole-v1 logs",
        "CartPole-v1",
        references={"dqn": {"learning_rate": 0.001, "target_update_interval": 500}, "bc": {}},
        seeds=Size(5, 10),
        steps=Size(1_000, 5_000),
        evals=2,
        logs=CARTPOLE_LOGS,
    )
    pendulum = Task(
        "Pendulum-v1",
        "Pendulum-v1",
        references={"ppo": PPO_PENDULUM, "sac": {"learning_rate": 0.001}},
        seeds=Size(5, 10),
        steps=Size(3_000, 10_000),
    )
    return (
        Item("convergence", "Convergence to Q*", (LAKE,), q_convergence, requires="q_error"),
        Item("regret", "Exact regret", (LAKE,), normalised_return),
        Item(
            "exploration_deepsea",
            "Exploration: DeepSea",
            tuple(_deepsea(n) for n in sizes),
            solved,
        ),
        Item("exploration_riverswim", "Exploration: RiverSwim", (river,), normalised_return),
        Item(
            "sample_efficiency",
            "Sample efficiency",
            (CARTPOLE,),
            normalised_auc,
            evidence=steps_to_threshold,
        ),
        Item("stability", "Stability across seeds", (LAKE, CARTPOLE), not_collapsed),
        Item(
            "logs",
            "Learning from logs",
            (lake_logs, cartpole_logs),
            normalised_return,
            requires="dataset",
        ),
        Item("continuous", "Continuous control", (pendulum,), normalised_return),
    )


__all__ = [
    "Item",
    "Logs",
    "Size",
    "Task",
    "battery",
    "normalised_auc",
    "normalised_return",
    "not_collapsed",
    "q_convergence",
    "solved",
]
