"""RunContext: what a trainer gets (spec, hyperparameters, seeds, envs) and how it records rows.

Trainers write tidy rows only through ``log``/``log_episode``/``evaluate``, so every algorithm
produces the same schema; when to evaluate is :mod:`rlcompare.runner.protocol`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rlcompare.envs.make import make_env, success_fn
from rlcompare.runner.protocol import (
    EvalSchedule,
    check_evaluated,
    refuse_outside_action,
)
from rlcompare.runner.schema import ENV_PREFIX, EPISODE_METRICS, HP_PREFIX
from rlcompare.seeding import RunSeeds
from rlcompare.spec.registry import get_algorithm
from rlcompare.spec.runspec import RunSpec


class RunContext:
    """Per-run state shared by every trainer.

    Attributes:
        spec: The validated RunSpec.
        hp: Resolved hyperparameters (defaults filled in).
        seeds: Named random streams of this run.
        schedule: The evaluation schedule (:class:`rlcompare.runner.protocol.EvalSchedule`).
        status: ``"ok"`` until ``mark_diverged`` is called.
    """

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.algorithm = get_algorithm(spec.algo)
        self.hp: Mapping[str, Any] = spec.resolved_hparams
        self.seeds = RunSeeds(spec.seed)
        self.schedule = EvalSchedule(spec)
        self.status = "ok"
        self.status_reason: str | None = None
        self.extra_metadata: dict[str, Any] = {}
        self._rows: list[tuple[int, int | None, str, float]] = []
        # Bulk episode records (engines that log thousands of episodes at once).
        self._episode_blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._last_eval_step: int | None = None
        self._eval_env = None
        self._success = success_fn(spec.env)
        self._started = time.perf_counter()
        self._eval_seconds = 0.0
        self._runs_together = 1

    def start_clock(self, runs_together: int = 1) -> RunContext:
        """Restarts ``wall_time_s`` at the start of this run's training: a batch trainer builds
        every context first and trains them one after another, or ``runs_together`` of them
        at once (stacked seeds). Then each run records its share, the time since the start
        over ``runs_together``, so per-run costs add up to the time spent and compare with
        runs trained alone."""
        self._started = time.perf_counter()
        self._eval_seconds = 0.0
        self._runs_together = max(1, int(runs_together))
        return self

    # -- envs ---------------------------------------------------------------------------------
    def make_env(self) -> Any:
        """A fresh training env (the caller seeds its first reset with ``env_seed``)."""
        return make_env(self.spec.env, self.spec.env_kwargs)

    @property
    def env_seed(self) -> int:
        """Seed for the training env's first ``reset``."""
        return self.seeds.int_seed("env")

    # -- recording ----------------------------------------------------------------------------
    def log(self, step: int, metric: str, value: float, episode: int | None = None) -> None:
        """Records one tidy row."""
        self._rows.append((int(step), episode, metric, float(value)))

    def log_episode(self, step: int, episode: int, episode_return: float, length: int) -> None:
        """Records a finished training episode (``step`` is the cumulative env step count)."""
        self.log(step, "episode_return", episode_return, episode)
        self.log(step, "episode_length", length, episode)

    def log_episodes(
        self, steps: np.ndarray, episodes: np.ndarray, returns: np.ndarray, lengths: np.ndarray
    ) -> None:
        """Records many finished episodes at once (arrays of equal length, in order)."""
        if len(steps):
            block = (
                np.asarray(steps, np.int64),
                np.asarray(episodes, np.int64),
                np.asarray(returns, np.float64),
                np.asarray(lengths, np.float64),
            )
            self._episode_blocks.append(block)

    def mark_diverged(self, step: int, reason: str) -> None:
        """Marks the run diverged (non-finite values); its rows so far are kept."""
        self.status = "diverged"
        self.status_reason = reason
        self.log(step, "diverged", 1.0)

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(
        self,
        step: int,
        policy: Callable[[Any], Any],
        extra: Mapping[str, float] | None = None,
    ) -> float:
        """Runs the greedy ``policy`` for ``eval_episodes`` episodes and records the metrics.

        The eval env is separate from the training env and is reset with the same eval seed at
        every evaluation, so all evaluations of a run (and of runs with the same seed) face the
        same episodes. Records ``eval_return`` (mean undiscounted return), ``success_rate``
        where the env has a goal, ``extra`` metrics, ``wall_time_s`` and ``env_steps_per_s``.
        Evaluating twice at one step records once.

        Returns:
            The mean eval return.
        """
        if self._last_eval_step == step:
            return float("nan")
        self._last_eval_step = step
        began = time.perf_counter()
        if self._eval_env is None:
            self._eval_env = make_env(self.spec.env, self.spec.env_kwargs, eval=True)
        # Envs with domain metrics (time to recovery, ...) compute them from the step infos.
        domain = getattr(self._eval_env.unwrapped, "episode_metrics", None)
        returns, successes, domain_rows = [], [], []  # success None: the env did not say
        for index in range(self.spec.eval_episodes):
            seed = self.seeds.int_seed("eval") if index == 0 else None
            obs, _ = self._eval_env.reset(seed=seed)
            total, done, success, infos = 0.0, False, None, []
            while not done:
                action = policy(obs)
                try:
                    obs, reward, terminated, truncated, info = self._eval_env.step(action)
                except Exception as error:
                    refuse_outside_action(
                        f"algo {self.spec.algo!r}: its greedy policy, at the evaluation,",
                        self._eval_env.action_space,
                        action,
                        step,
                        error,
                    )
                    raise
                total += float(reward)
                done = terminated or truncated
                if domain is not None:
                    infos.append(info)
                if done and self._success is not None:
                    success = self._success(terminated, float(reward), info)
            returns.append(total)
            successes.append(success)
            if domain is not None:
                domain_rows.append(domain(infos))
        reported = any(success is not None for success in successes)
        return self.log_evaluation(
            step,
            np.asarray(returns, dtype=np.float64),
            np.array([bool(s) for s in successes]) if reported else None,
            domain_rows,
            extra,
            began,
        )

    def log_evaluation(
        self,
        step: int,
        returns: np.ndarray,
        successes: np.ndarray | None = None,
        domain_rows: Sequence[Mapping[str, float]] = (),
        extra: Mapping[str, float] | None = None,
        began: float | None = None,
    ) -> float:
        """Records one evaluation from its episodes' results, as ``evaluate`` does: for
        engines that run the eval episodes themselves (the compiled tabular engine).

        Args:
            step: Env step the evaluation is recorded at.
            returns: (eval_episodes,) undiscounted return of each episode.
            successes: (eval_episodes,) bool, whether each reached the goal; None when the
                env does not say.
            domain_rows: The env's ``episode_metrics`` of each episode (empty: none).
            extra: Further metrics of this evaluation.
            began: ``time.perf_counter()`` when the evaluation began (its time is excluded
                from ``env_steps_per_s``); None: now.

        Returns:
            The mean eval return.
        """
        self._last_eval_step = step
        mean_return = float(np.mean(returns))
        self.log(step, "eval_return", mean_return)
        if successes is not None:
            self.log(step, "success_rate", float(np.mean(successes)))
        for metric in domain_rows[0] if domain_rows else ():
            values = [row[metric] for row in domain_rows if np.isfinite(row[metric])]
            self.log(step, metric, float(np.mean(values)) if values else float("nan"))
        for metric, value in (extra or {}).items():
            self.log(step, metric, value)
        if began is not None:
            self._eval_seconds += time.perf_counter() - began
        self.log_cost(step)
        return mean_return

    def log_cost(self, step: int) -> None:
        """Records wall time so far (this run's share where runs train together, see
        :meth:`start_clock`) and training throughput (its own evaluation time excluded)."""
        elapsed = (time.perf_counter() - self._started) / self._runs_together
        self.log(step, "wall_time_s", elapsed)
        training = max(elapsed - self._eval_seconds, 1e-9)
        self.log(step, "env_steps_per_s", step / training)

    @property
    def last_eval_step(self) -> int | None:
        """Env step of the latest evaluation (None before the first)."""
        return self._last_eval_step

    def check_evaluated(self) -> None:
        """Raises ``ProtocolError`` when a run that did not diverge lacks its evaluation at
        step 0 or at its last recorded step (see ``protocol.check_evaluated``)."""
        if self.status != "ok":
            return
        eval_steps = [step for step, _, metric, _ in self._rows if metric == "eval_return"]
        last = max((step for step, *_ in self._rows), default=0)
        for steps, *_ in self._episode_blocks:
            last = max(last, int(np.max(steps)))
        check_evaluated(self.spec.algo, eval_steps, last)

    # -- output -------------------------------------------------------------------------------
    def table(self) -> pa.Table:
        """The run's tidy rows with identity, ``hp.*`` and ``env.*`` columns, as Arrow.

        Built from the recorded arrays: no pandas frame and no Python object per row (a store
        write once spent most of its time turning each row's repeated strings into Arrow).
        The table, schema and pandas metadata included, is the one
        ``pa.Table.from_pandas(frame, preserve_index=False)`` makes of :meth:`frame`.
        """
        spec = self.spec
        steps, episodes, codes, values, names = self._columns()
        # Rows sorted by step, episode rows before the evaluation at the same step (a stable
        # sort keeps each source's order), whatever mix of row-wise and bulk logging made them.
        if self._episode_blocks:
            is_episode = np.isin(codes, [names.index(m) for m in EPISODE_METRICS])
            order = np.lexsort((~is_episode, steps))
            steps, episodes, codes, values = (
                steps[order],
                episodes[order],
                codes[order],
                values[order],
            )
        constants = {
            prefix + name: flat_value(value)
            for prefix, mapping in (
                (HP_PREFIX, spec.resolved_hparams),
                (ENV_PREFIX, spec.env_kwargs),
            )
            for name, value in sorted(mapping.items())
        }
        schema = _schema(constants)
        rows = len(steps)
        identity = (spec.experiment, spec.run_id, spec.algo, spec.env)
        arrays = [pa.repeat(pa.scalar(text, pa.string()), rows) for text in identity]
        arrays += [
            pa.array(np.full(rows, spec.seed, dtype=np.int64)),
            pa.array(steps),
            pa.array(episodes, mask=episodes < 0),
            pa.array(names, pa.string()).take(pa.array(codes)),
            pa.array(values),
        ]
        arrays += [
            pa.nulls(rows) if value is None else pa.repeat(pa.scalar(value, field.type), rows)
            for value, field in zip(constants.values(), list(schema)[len(arrays) :], strict=True)
        ]
        return pa.Table.from_arrays(arrays, schema=schema)

    def frame(self) -> pd.DataFrame:
        """The run's tidy rows with identity, ``hp.*`` and ``env.*`` columns."""
        return self.table().to_pandas()

    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """(steps, episodes (-1: none), metric codes, values, metric names) of every recorded
        row: row-wise records first, then the bulk episode blocks, each in its own order."""
        names = list(dict.fromkeys([row[2] for row in self._rows] + list(EPISODE_METRICS)))
        code = {name: index for index, name in enumerate(names)}
        blocks = []
        if self._rows:
            steps, episodes, metrics, values = zip(*self._rows, strict=True)
            blocks.append(
                (
                    np.asarray(steps, dtype=np.int64),
                    np.asarray([-1 if e is None else e for e in episodes], dtype=np.int64),
                    np.asarray([code[m] for m in metrics], dtype=np.int32),
                    np.asarray(values, dtype=np.float64),
                )
            )
        for steps, episodes, returns, lengths in self._episode_blocks:
            for metric, values in zip(EPISODE_METRICS, (returns, lengths), strict=True):
                blocks.append(
                    (steps, episodes, np.full(len(steps), code[metric], np.int32), values)
                )
        if not blocks:
            empty = np.array([], dtype=np.int64)
            return empty, empty, empty.astype(np.int32), empty.astype(np.float64), names
        steps, episodes, codes, values = (np.concatenate([b[i] for b in blocks]) for i in range(4))
        return steps, episodes, codes, values, names

    def close(self) -> None:
        """Closes the eval env."""
        if self._eval_env is not None:
            self._eval_env.close()


def flat_value(value: Any) -> Any:
    """Scalars stay as they are; sequences and mappings become strings (one Parquet type)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(list(value)) if isinstance(value, (list, tuple)) else str(value)


# Arrow schemas (with their pandas metadata) by the run's hp/env columns and their types:
# building one costs more than a run's rows, and a sweep's runs share a few.
_SCHEMAS: dict[tuple[tuple[str, str], ...], pa.Schema] = {}


def _schema(constants: Mapping[str, Any]) -> pa.Schema:
    """The schema ``pa.Table.from_pandas`` gives a run's frame whose ``hp.*`` / ``env.*``
    columns hold ``constants`` (the types of the other columns never change)."""
    layout = tuple((name, type(value).__name__) for name, value in constants.items())
    schema = _SCHEMAS.get(layout)
    if schema is None:
        if len(_SCHEMAS) >= 256:
            _SCHEMAS.clear()
        template = pd.DataFrame(
            {
                **{name: ["x"] for name in ("experiment", "run_id", "algo", "env")},
                "seed": np.zeros(1, dtype=np.int64),
                "step": np.zeros(1, dtype=np.int64),
                "episode": pd.array([0], dtype="Int64"),
                "metric": pd.array(["x"], dtype="string"),
                "value": np.zeros(1, dtype=np.float64),
                **{name: [value] for name, value in constants.items()},
            }
        )
        schema = _SCHEMAS[layout] = pa.Schema.from_pandas(template, preserve_index=False)
    return schema
