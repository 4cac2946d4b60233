"""Executors: each takes a list of tasks and yields their outputs in completion order. The
driver writes each output to the store as it arrives, whatever the executor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from rlcompare.sweeps.tasks import Task, TaskOutput, execute_task, failed_output

# A task whose worker process died is tried this many times in all before it is recorded failed.
MAX_ATTEMPTS = 2


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
    from rlcompare.sweeps.ray_executor import run_on_ray

    yield from run_on_ray(tasks, execute_task, workers=workers, **options)


DISPATCH: dict[str, Callable[..., Iterator[TaskOutput]]] = {
    "serial": _serial,
    "process": _process,
    "ray": _ray,
}
EXECUTORS = tuple(DISPATCH)
