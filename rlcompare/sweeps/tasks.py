"""Tasks: the unit an executor runs. Runs that differ only in seed go in one task (a seed
batch trained by one call); every other run is a task of its own."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from rlcompare.runner.runs import run_batch, seed_batch_key
from rlcompare.spec.registry import get_algorithm
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
