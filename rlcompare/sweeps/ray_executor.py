"""The Ray executor: one Ray task per sweep task, results streamed back to the driver.

Connection follows Ray's conventions: an explicit ``address``, else ``RAY_ADDRESS``, else a
local cluster started with ``workers`` CPUs. Workers never touch the store, so no shared
filesystem is needed. A worker that dies is retried by Ray (``max_retries``); after that the
task's runs are recorded as failed with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from rlcompare.errors import SpecError
from rlcompare.sweeps.tasks import failed_output

INSTALL_HINT = "executor 'ray' needs Ray: pip install 'rlcompare[ray]'"


def import_ray() -> Any:
    """Imports Ray or raises SpecError with the one line that says how to install it."""
    try:
        import ray
    except ImportError:
        raise SpecError(INSTALL_HINT) from None
    return ray


def connect(address: str | None, workers: int) -> Any:
    """Initialises Ray once per driver process (reusing an existing connection)."""
    ray = import_ray()
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, log_to_driver=False, include_dashboard=False)
    return ray


def run_on_ray(
    tasks: list[tuple[Any, bytes]],
    execute: Callable[[Any, bytes], Any],
    *,
    workers: int,
    address: str | None = None,
    max_retries: int = 2,
    cpus_per_task: float = 1,
) -> Iterator[Any]:
    """Yields ``execute(specs, definitions)`` for every packed task, in completion order."""
    ray = connect(address, workers)
    remote = ray.remote(num_cpus=cpus_per_task, max_retries=max_retries)(execute)
    pending = {remote.remote(specs, definitions): specs for specs, definitions in tasks}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            task = pending.pop(ref)
            try:
                yield ray.get(ref)
            except (
                ray.exceptions.WorkerCrashedError,
                ray.exceptions.NodeDiedError,
                ray.exceptions.RayTaskError,
            ) as error:
                yield failed_output(task, f"ray worker failed: {error}")
