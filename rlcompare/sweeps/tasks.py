"""Tasks: the unit an executor runs. Runs that differ only in seed go in one task (a seed
batch trained by one call); every other run is a task of its own.

A task sent to another process travels as a :class:`Shipment`, pickled with cloudpickle: its
specs, the definitions of its algorithms and envs, and the modules to import first. A worker
therefore needs no registration of its own: agents, trainers and envs defined in a script's
or a notebook's ``__main__`` travel by value, everything importable by reference.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
import gymnasium as gym
import pandas as pd

from rlcompare.envs.make import check_env_id, env_spec
from rlcompare.errors import SpecError
from rlcompare.runner.runs import run_batch, seed_batch_key
from rlcompare.spec.registry import Algorithm, algorithm_definitions, get_algorithm, install
from rlcompare.spec.runspec import RunSpec

# Upper bound on seeds trained in lock-step in one task.
MAX_BATCH = 256

Task = list[RunSpec]
TaskOutput = list[tuple[pd.DataFrame, dict[str, Any]]]


def execute_task(specs: Task) -> TaskOutput:
    """Runs one task (a seed batch or a single run) in whatever process it lands in."""
    return [(r.frame, r.metadata) for r in run_batch(specs, catch_errors=True)]


def plan_tasks(specs: Sequence[RunSpec], workers: int) -> list[Task]:
    """Groups runs that differ only in seed (for algorithms with a batch trainer) into tasks.

    A group is split into about ``workers`` chunks so that every worker has work.
    """
    groups: dict[str, Task] = {}
    tasks: list[Task] = []
    for spec in specs:
        if get_algorithm(spec.algo).batch_trainer is None:
            tasks.append([spec])
            continue
        groups.setdefault(seed_batch_key(spec), []).append(spec)
    for group in groups.values():
        size = min(MAX_BATCH, max(1, math.ceil(len(group) / max(1, workers))))
        tasks.extend(group[i : i + size] for i in range(0, len(group), size))
    return tasks


def failed_output(specs: Task, reason: str) -> TaskOutput:
    """Rows and metadata that record every run of a task as failed with ``reason``."""
    return [
        (
            pd.DataFrame(),
            {"run_id": s.run_id, "spec": s.to_dict(), "status": "failed", "reason": reason},
        )
        for s in specs
    ]


@dataclass(frozen=True)
class Definitions:
    """What a fresh worker needs to run a task: its algorithms, envs and modules to import."""

    algorithms: tuple[Algorithm, ...]
    envs: tuple[gym.envs.registration.EnvSpec, ...]
    imports: tuple[str, ...] = ()
    env_ids: tuple[str, ...] = ()


def pack(task: Task, imports: Sequence[str] = (), executor: str = "process") -> bytes:
    """The definitions a task needs, as bytes for a worker; SpecError (before any training)
    when one cannot be sent, naming the algorithm and what works instead."""
    algos = tuple(algorithm_definitions(spec.algo for spec in task))
    env_ids = tuple(dict.fromkeys(spec.env for spec in task))
    envs = tuple(env_spec(env_id) for env_id in env_ids)
    try:
        return cloudpickle.dumps(Definitions(algos, envs, tuple(imports), env_ids))
    except Exception as error:  # cloudpickle raises whatever the unpicklable object raises
        names = ", ".join(sorted({a.name for a in algos}))
        raise SpecError(
            f"algo {names} (env {task[0].env!r}) cannot be sent to {executor} workers: "
            f"{type(error).__name__}: {error}; valid: executor='serial', or an agent/trainer "
            "that holds no open file, lock or socket"
        ) from error


def install_definitions(blob: bytes) -> None:
    """Imports the modules, and registers the envs and algorithms, of packed definitions."""
    definitions: Definitions = cloudpickle.loads(blob)
    for module in definitions.imports:
        importlib.import_module(module)
    for registered in definitions.envs:
        if registered.id not in gym.registry:
            gym.registry[registered.id] = registered
    for env_id in definitions.env_ids:
        check_env_id(env_id)  # a "module:Env-v0" id imports its module here, as make will
    for algorithm in definitions.algorithms:
        install(algorithm)


def execute_packed(specs: Task, definitions: bytes) -> TaskOutput:
    """:func:`execute_task` in a worker process, after installing the task's definitions; a
    worker that cannot install them records the task's runs as failed, with the reason."""
    try:
        install_definitions(definitions)
    except Exception as error:
        # One line naming what the worker lacks (a SpecError already names it and the fix).
        return failed_output(specs, f"worker could not load the task: {error}")
    return execute_task(specs)
