"""Sweeps: skip stored runs, group seed batches into tasks, dispatch, store each as it ends.

Only the driver writes to the store, as each task comes back, so executors need no shared
filesystem and an interrupted sweep loses only the runs in flight.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from rlcompare.errors import SpecError, StoreError, choices_text
from rlcompare.experiment import run_batch, seed_batch_key
from rlcompare.registry import get_algorithm
from rlcompare.results import load_results, metric_filter, stored_statuses, write_run
from rlcompare.spec import RunSpec

EXECUTORS = ("serial", "process", "ray")
DONE_STATUSES = ("ok", "diverged")
# A task whose worker process died is tried this many times in all before it is recorded failed.
MAX_ATTEMPTS = 2
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


def _serial(tasks: list[Task], workers: int, **_: Any) -> Iterator[TaskOutput]:
    for task in tasks:
        yield execute_task(task)


def _process(tasks: list[Task], workers: int, **_: Any) -> Iterator[TaskOutput]:
    remaining = list(tasks)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if not remaining:
            return
        # spawn, not fork: a forked child would inherit torch/OpenMP thread state mid-flight.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(execute_task, task): task for task in remaining}
            remaining = []
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    # Dropping the future frees its result once written: holding every
                    # finished future would keep the whole sweep's rows in memory.
                    task = futures.pop(future)
                    try:
                        output = future.result()
                    except BrokenProcessPool:
                        if attempt == MAX_ATTEMPTS:
                            yield failed_output(task, "worker process died")
                        else:
                            remaining.append(task)
                        continue
                    yield output


def _ray(tasks: list[Task], workers: int, **options: Any) -> Iterator[TaskOutput]:
    from rlcompare.ray_executor import run_on_ray

    yield from run_on_ray(tasks, execute_task, workers=workers, **options)


_DISPATCH: dict[str, Callable[..., Iterator[TaskOutput]]] = {
    "serial": _serial,
    "process": _process,
    "ray": _ray,
}


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="run", disable=not enabled or bool(os.environ.get("CI")))


def sweep(
    specs: Sequence[RunSpec],
    store: str | os.PathLike[str],
    executor: str = "process",
    workers: int | None = None,
    resume: bool = True,
    progress: bool = True,
    metrics: Sequence[str] | None = None,
    **executor_options: Any,
) -> pd.DataFrame:
    """Runs every spec not yet stored and returns the tidy rows of all of them.

    Args:
        specs: Runs to do (duplicates are run once).
        store: Result store folder.
        executor: ``serial``, ``process`` or ``ray``.
        workers: Parallel workers (default: CPU count).
        resume: Skip runs already stored. With False a store that already holds any of the
            runs is an error, since a stored run is never recomputed or rewritten.
        progress: Show a progress bar (always off when the ``CI`` env var is set).
        metrics: Return only rows of these metrics (every row is stored either way); see
            :func:`rlcompare.load_results`.
        **executor_options: Passed to the executor (``address`` for Ray).

    Returns:
        Tidy rows of every requested run; ``.attrs["failed"]`` maps failed run ids to reasons.
    """
    if executor not in EXECUTORS:
        raise SpecError(f"unknown executor {executor!r}; {choices_text(EXECUTORS, executor)}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise SpecError(f"workers = {workers!r} is invalid; valid: a positive int or None")
    if executor == "ray":
        from rlcompare.ray_executor import import_ray

        import_ray()
    metric_filter(metrics)  # a bad value fails here, before any training
    specs = list({spec.run_id: spec for spec in _checked(specs)}.values())
    workers = workers or os.cpu_count() or 1
    statuses = stored_statuses(store)
    done = {run_id for run_id, status in statuses.items() if status in DONE_STATUSES}
    requested = [spec.run_id for spec in specs]
    if not resume and done & set(requested):
        raise StoreError(
            f"{len(done & set(requested))} of these runs are already in {str(store)!r}; "
            "use resume=True to reuse them or a new store"
        )
    pending = [spec for spec in specs if spec.run_id not in done]
    failed: dict[str, str] = {}
    Path(store).mkdir(parents=True, exist_ok=True)
    if pending:
        tasks = plan_tasks(pending, workers)
        bar = _progress_bar(len(pending), progress)
        try:
            for output in _DISPATCH[executor](tasks, workers, **executor_options):
                for frame, metadata in output:
                    write_run(store, frame, metadata)
                    if metadata["status"] == "failed":
                        failed[metadata["run_id"]] = metadata.get("reason") or "unknown error"
                bar.update(len(output))
        finally:
            bar.close()
    if failed:
        first = next(iter(failed.values())).strip().splitlines()[-1]
        warnings.warn(f"{len(failed)} run(s) failed (first: {first})", stacklevel=2)
    frame = load_results(store, run_ids=requested, metrics=metrics)
    frame.attrs["failed"] = failed
    return frame


def _checked(specs: Sequence[RunSpec]) -> list[RunSpec]:
    specs = list(specs)
    for spec in specs:
        if not isinstance(spec, RunSpec):
            raise SpecError(f"sweep takes RunSpecs (see rlcompare.grid), got {spec!r}")
    return specs
