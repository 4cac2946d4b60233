"""Tasks: the unit an executor runs. Runs that differ only in seed go in one task (a seed
batch trained by one call); every other run is a task of its own.

A task sent to another process travels with its :class:`Definitions`, pickled with
cloudpickle: the definitions of its algorithms and envs, the modules to import first, and (for
the process executor) the bytes of the datasets its runs learn from. A worker therefore needs
no registration of its own and no shared filesystem: agents, trainers and envs defined in a
script's or a notebook's ``__main__`` travel by value, everything importable by reference,
and datasets by content identity (the Ray executor puts each dataset in its object store
once per sweep and passes the reference with each task).
"""

from __future__ import annotations

import importlib
import math
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import gymnasium as gym
import pandas as pd
import pyarrow as pa

from rlcompare.envs.datasets import dataset_bytes, is_content_id, provide_datasets
from rlcompare.envs.make import check_env_id, env_spec
from rlcompare.errors import SpecError
from rlcompare.runner.runs import run_batch, seed_batch_key
from rlcompare.spec.registry import Algorithm, algorithm_definitions, get_algorithm, install
from rlcompare.spec.runspec import RunSpec

# Upper bound on seeds trained in lock-step in one task.
MAX_BATCH = 256

Task = list[RunSpec]
# Each run as (its rows, its metadata); rows travel as Arrow (pickled: 2-3x cheaper than pandas).
TaskOutput = list[tuple[pa.Table | pd.DataFrame, dict[str, Any]]]


def worker_node() -> dict[str, str]:
    """Where this process runs: ``hostname`` and ``pid``, and Ray's ``ray_node_id`` inside a
    Ray worker (recorded in each run's metadata, so a sweep can say which nodes ran it)."""
    node = {"hostname": socket.gethostname(), "pid": str(os.getpid())}
    ray = sys.modules.get("ray")  # only a Ray worker has it imported; never import it here
    if ray is not None and ray.is_initialized():
        node["ray_node_id"] = ray.get_runtime_context().get_node_id()
    return node


def execute_task(specs: Task) -> TaskOutput:
    """Runs one task (a seed batch or a single run) in whatever process it lands in; each
    run's metadata records the ``node`` it ran on."""
    node = worker_node()
    return [(r.table, {**r.metadata, "node": node}) for r in run_batch(specs, catch_errors=True)]


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
    """Rows and metadata that record every run of a task as failed with ``reason``: a failure
    of the infrastructure (a worker that died or could not load the task), not of the run's
    code, so it is marked ``transient`` and the next sweep retries it."""
    return [
        (
            pd.DataFrame(),
            {
                "run_id": s.run_id,
                "spec": s.to_dict(),
                "status": "failed",
                "reason": reason,
                "transient": True,
            },
        )
        for s in specs
    ]


def task_datasets(task: Task) -> tuple[str, ...]:
    """Content identities of the datasets a task's runs learn from (in first-use order)."""
    found = (spec.resolved_hparams.get("dataset") for spec in task)
    return tuple(dict.fromkeys(ref for ref in found if is_content_id(ref)))


@dataclass(frozen=True)
class Definitions:
    """What a fresh worker needs to run a task: its algorithms, envs, modules to import, and
    the datasets it carries (``(content identity, file bytes)`` pairs)."""

    algorithms: tuple[Algorithm, ...]
    envs: tuple[gym.envs.registration.EnvSpec, ...]
    imports: tuple[str, ...] = ()
    env_ids: tuple[str, ...] = ()
    datasets: tuple[tuple[str, bytes], ...] = ()


def pack(
    task: Task,
    imports: Sequence[str] = (),
    executor: str = "process",
    with_datasets: bool = True,
) -> bytes:
    """The definitions a task needs, as bytes for a worker; SpecError (before any training)
    when one cannot be sent, naming the algorithm and what works instead.

    With ``with_datasets`` the bytes of every dataset the task learns from go inside; the
    Ray executor passes False and ships them once per sweep through its object store.
    """
    algos = tuple(algorithm_definitions(spec.algo for spec in task))
    for algorithm in algos:
        _send_by_value(algorithm)
    env_ids = tuple(dict.fromkeys(spec.env for spec in task))
    envs = tuple(env_spec(env_id) for env_id in env_ids)
    datasets = (
        tuple((ref, dataset_bytes(ref)) for ref in task_datasets(task)) if with_datasets else ()
    )
    try:
        return cloudpickle.dumps(Definitions(algos, envs, tuple(imports), env_ids, datasets))
    except Exception as error:  # cloudpickle raises whatever the unpicklable object raises
        names = ", ".join(sorted({a.name for a in algos}))
        raise SpecError(
            f"algo {names} (env {task[0].env!r}) cannot be sent to {executor} workers: "
            f"{type(error).__name__}: {error}; valid: executor='serial', or an agent/trainer "
            "that holds no open file, lock or socket"
        ) from error


def _send_by_value(algorithm: Algorithm) -> None:
    """A user's agent or trainer defined in a module of their own (a script folder, a test
    file) travels by value: a worker on another node has no copy of that module. Modules of
    installed packages (rlcompare's, a pip-installed plugin's) stay by reference."""
    target = algorithm.agent or algorithm.trainer
    module = sys.modules.get(getattr(target, "__module__", "") or "")
    if module is None or module.__name__ == "__main__" or not callable(target):
        return  # __main__ travels by value anyway; a "module:function" string is imported
    source = getattr(module, "__file__", None) or ""
    installed = any(part in ("site-packages", "dist-packages") for part in Path(source).parts)
    if not installed and not module.__name__.startswith("rlcompare."):
        cloudpickle.register_pickle_by_value(module)


def install_definitions(blob: bytes) -> None:
    """Imports the modules, and registers the envs and algorithms, of packed definitions
    (replacing what this process had registered under their names)."""
    definitions: Definitions = cloudpickle.loads(blob)
    # getattr: definitions packed by an older driver carry no datasets.
    provide_datasets(getattr(definitions, "datasets", ()))
    for module in definitions.imports:
        importlib.import_module(module)
    # The driver's registrations win: a warm worker may hold older ones under the same names
    # (an env or algorithm registered again, changed, since the worker started).
    for registered in definitions.envs:
        gym.registry[registered.id] = registered
    for env_id in definitions.env_ids:
        check_env_id(env_id)  # a "module:Env-v0" id imports its module here, as make will
    for algorithm in definitions.algorithms:
        install(algorithm, replace=True)


def execute_packed(
    specs: Task, definitions: bytes, dataset_ids: Sequence[str] = (), *dataset_blobs: bytes
) -> TaskOutput:
    """:func:`execute_task` in a worker process, after installing the task's definitions and
    the datasets shipped beside them (``dataset_ids[i]`` names ``dataset_blobs[i]``; Ray
    resolves the object references it was given into these bytes); a worker that cannot
    install them records the task's runs as failed, with the reason."""
    try:
        provide_datasets(zip(dataset_ids, dataset_blobs, strict=True))
        install_definitions(definitions)
    except Exception as error:
        # One line naming what the worker lacks (a SpecError already names it and the fix).
        return failed_output(specs, f"worker could not load the task: {error}")
    return execute_task(specs)
