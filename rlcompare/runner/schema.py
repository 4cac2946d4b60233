"""The shapes that flow between the layers, named once (as Stable-Baselines3's type_aliases).

- The tidy results table: one row per (run, step, metric), in the columns below, plus ``hp.*``
  for every resolved hyperparameter and ``env.*`` for every env kwarg. ``step`` counts env
  steps; ``episode`` is set on per-episode rows and missing elsewhere.
- Metric names and their direction (which way is better), used by every statistic that ranks.
- Run statuses: ``ok``, ``diverged`` (stopped by a NaN/inf; its rows are kept) and ``failed``
  (an error; the rows recorded before it are kept, its traceback and the frame of user
  code that raised are in the metadata).
- What the loop needs of an agent (:class:`StepAgent`), the transition it hands over
  (:class:`Transition`) and what a trainer is (:data:`Trainer`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

# Columns of every stored row, in order.
ID_COLUMNS = ("experiment", "run_id", "algo", "env", "seed", "step", "episode", "metric", "value")
# Added when rows are loaded from a store.
STATUS_COLUMN = "status"
# Columns that identify a run (one value per run), for tables with one row per run.
RUN_COLUMNS = ("experiment", "run_id", "algo", "env", "seed", STATUS_COLUMN)
# What a statistic needs at the least.
REQUIRED_COLUMNS = ("run_id", "algo", "env", "seed", "step", "metric", "value")
HP_PREFIX = "hp."
ENV_PREFIX = "env."

# Rows of every finished training episode (with ``episode`` set).
EPISODE_METRICS = ("episode_return", "episode_length")
# Metric directions: which way is better. Every metric a built-in algorithm or env records is
# in exactly one of the three sets (tests/test_trust_directions.py runs each built-in and checks
# it), so a new metric without a direction fails a test instead of being ranked the wrong way.
# Metrics where a smaller value is better: errors, losses, regret, costs, time.
LOWER_IS_BETTER = frozenset(
    {
        "q_error",
        "policy_regret",
        "td_error",
        "loss",  # dqn, bc: training loss
        "model_error",
        "model_reward_error",
        "model_loss",
        "planning_updates",
        "planning_ms",
        "wall_time_s",
        # SelfHealing's domain metrics (rlcompare.envs.selfheal.episode_domain_metrics).
        "time_to_recovery",
        "impaired_share",
        "action_cost",
        "incidents",
    }
)
# Metrics where a larger value is better: returns, success, throughput.
HIGHER_IS_BETTER = frozenset(
    {
        "eval_return",
        "episode_return",
        "success_rate",
        "expected_eval_return",
        "demonstrator_return",
        "env_steps_per_s",
    }
)
# Metrics recorded for context that have no better side: a ranking of them needs an explicit
# ``higher_is_better`` (an episode is better long in CartPole and short in MountainCar).
NO_DIRECTION = frozenset({"episode_length", "q_mean", "dataset_size", "diverged"})

STATUSES = ("ok", "diverged", "failed")
# Statuses a sweep treats as done (reused while their code is unchanged). A failed run is
# re-run by a later sweep only if its code changed, its worker died, or with
# retry_failed=True; otherwise reported again (see rlcompare.sweeps.resume).
DONE_STATUSES = ("ok", "diverged")


def higher_is_better(metric: str, override: bool | None = None) -> bool:
    """The direction of ``metric``: ``override`` when given, else its declared set.

    Raises:
        ValueError: ``metric`` is in ``NO_DIRECTION`` and no ``override`` is given.

    Warns:
        UserWarning: ``metric`` is in no set (a user's own metric): it is ranked as
            higher-is-better, and the warning says how to state its direction.
    """
    if override is not None:
        return bool(override)
    if metric in LOWER_IS_BETTER:
        return False
    if metric in HIGHER_IS_BETTER:
        return True
    if metric in NO_DIRECTION:
        raise ValueError(
            f"metric {metric!r} has no better side; pass higher_is_better=True or False to rank it"
        )
    import warnings

    warnings.warn(
        f"metric {metric!r} has no declared direction; ranking it as higher-is-better. "
        "Pass higher_is_better= to say which way is better",
        stacklevel=3,
    )
    return True


class StepAgent(Protocol):
    """What the loop needs of an agent: choose, learn from a transition, act greedily.

    Public as ``rlcompare.Agent``. A registered agent class is built as
    ``Agent(observation_space, action_space, hparams, rng)``: the resolved hyperparameters as a
    mapping and a numpy Generator from the run's own seed streams (use no other randomness,
    so that the same seed gives the same run).
    """

    def act(self, obs: Any, step: int) -> Any:
        """The behaviour action at env step ``step`` (exploration included)."""

    def update(
        self,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
        step: int,
    ) -> None:
        """Learns from one transition. ``terminated`` cuts bootstrapping; ``truncated`` not."""

    def greedy_action(self, obs: Any) -> Any:
        """The evaluation (greedy, deterministic) action."""

    def eval_metrics(self) -> dict[str, float]:
        """Extra metrics recorded at each evaluation (``q_error``, ``td_error``, ...)."""


class Transition(NamedTuple):
    """One env step as the loop hands it to :meth:`StepAgent.update`."""

    obs: Any
    action: Any
    reward: float
    next_obs: Any
    terminated: bool
    truncated: bool
    step: int


class TransitionLearner:
    """Base of the built-in step agents: ``update`` takes the protocol's arguments and hands
    them to ``learn`` as one :class:`Transition`, so each agent writes only what it does with
    a transition."""

    def update(
        self,
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        truncated: bool,
        step: int,
    ) -> None:
        """See :meth:`StepAgent.update`."""
        self.learn(Transition(obs, action, reward, next_obs, terminated, truncated, step))

    def learn(self, t: Transition) -> None:
        """Learns from one transition."""
        raise NotImplementedError


class TrainerContext(Protocol):
    """What a trainer is given (``RunContext`` provides it; named here so that this module
    imports nothing of the runner): the spec, resolved hyperparameters, envs and recording."""

    spec: Any
    hp: Mapping[str, Any]

    @property
    def env_seed(self) -> int: ...

    def make_env(self) -> Any: ...

    def log(self, step: int, metric: str, value: float, episode: int | None = None) -> None: ...

    def log_episode(self, step: int, episode: int, episode_return: float, length: int) -> None: ...

    def evaluate(
        self, step: int, policy: Callable[[Any], Any], extra: Mapping[str, float] | None = None
    ) -> float: ...


# A trainer owns its loop: it takes the run's context, trains within the spec's budget,
# records through the context (the one evaluation protocol) and returns the trained agent.
Trainer = Callable[[TrainerContext], Any]
# A batch trainer trains runs that differ only in seed, one context each.
BatchTrainer = Callable[[list[TrainerContext]], list[Any]]
