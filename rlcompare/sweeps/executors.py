"""Executors: each takes a list of tasks and yields their outputs in completion order. The
driver writes each output to the store as it arrives, whatever the executor.

Worker processes get each task with its definitions (:func:`rlcompare.sweeps.tasks.pack`),
packed before any worker starts, so a definition that cannot travel fails the sweep before any
training. They never re-run the user's ``__main__``: a script without an
``if __name__ == "__main__":`` guard, or a notebook, works as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from typing import Any

from rlcompare.envs.datasets import dataset_bytes
from rlcompare.sweeps.tasks import (
    Task,
    TaskOutput,
    execute_packed,
    execute_task,
    failed_output,
    pack,
    task_datasets,
)

# A task whose worker process died is tried this many times in all before it is recorded failed.
MAX_ATTEMPTS = 2


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """While worker processes start: a spawned child re-imports ``__main__`` from its
    ``__spec__`` name or its ``__file__``, re-running a script without a main guard; with
    neither it imports nothing (as for an interactive session). Definitions from ``__main__``
    reach the workers by value instead (cloudpickle)."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__spec__", "__file__") if main and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)


def _serial(tasks: list[Task], workers: int, **_: Any) -> Iterator[TaskOutput]:
    for task in tasks:
        yield execute_task(task)


def _process(
    tasks: list[Task], workers: int, imports: Sequence[str] = (), **_: Any
) -> Iterator[TaskOutput]:
    packed = {id(task): pack(task, imports, "process") for task in tasks}
    remaining = list(tasks)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if not remaining:
            return
        # spawn, not fork: a forked child would inherit torch/OpenMP thread state mid-flight.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            with main_module_hidden():  # workers start as tasks are submitted
                futures = {
                    pool.submit(execute_packed, task, packed[id(task)]): task for task in remaining
                }
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


def _ray(
    tasks: list[Task], workers: int, imports: Sequence[str] = (), **options: Any
) -> Iterator[TaskOutput]:
    from rlcompare.sweeps.ray_executor import run_on_ray

    # Datasets go into Ray's object store once per sweep, not inside every task.
    packed = [(task, pack(task, imports, "ray", with_datasets=False)) for task in tasks]
    needs = {id(task): task_datasets(task) for task in tasks}
    blobs = {ref: dataset_bytes(ref) for refs in needs.values() for ref in refs}
    yield from run_on_ray(
        packed,
        execute_packed,
        workers=workers,
        datasets=blobs,
        needs=lambda task: needs[id(task)],
        **options,
    )


DISPATCH: dict[str, Callable[..., Iterator[TaskOutput]]] = {
    "serial": _serial,
    "process": _process,
    "ray": _ray,
}
EXECUTORS = tuple(DISPATCH)
