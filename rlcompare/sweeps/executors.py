"""Executors: each takes a list of tasks and yields their outputs in completion order. The
driver writes each output to the store as it arrives, whatever the executor.

Worker processes get each task with its definitions (:func:`rlcompare.sweeps.tasks.pack`),
packed before any worker starts, so a definition that cannot travel fails the sweep before any
training. They never re-run the user's ``__main__``: a script without an
``if __name__ == "__main__":`` guard, or a notebook, works as it is.

The process executor keeps its workers warm from one sweep to the next in one process
(starting them costs seconds: spawn, then numpy, gymnasium, torch imports). Since every task
carries its definitions, a warm worker runs what the driver has registered now. The pool is
started again when what a worker took from the driver at its start could differ: another
worker count, environment variables (``RLCOMPARE_PLUGINS`` among them), ``sys.path`` or
working folder, or a source file of a loaded module (outside the standard library and
installed packages) changed on disk since. A pool broken by a worker that died is never
reused; :func:`shutdown_workers` ends the workers (also done at exit).

So that a small sweep is never slower than serial, a sweep that finds its workers still
starting runs tasks itself, one at a time in the driver, until the first worker answers, and
hands the rest to the workers then (results are identical whichever process runs a task).
Only the tasks taken before a worker answered run in the driver, so only those lose the
isolation of a worker process (a crash in native code there ends the driver).
:func:`start_workers` starts them ahead of a sweep.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import sysconfig
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass
class _WarmPool:
    pool: ProcessPoolExecutor
    settings: tuple[Any, ...]  # what its workers took from the driver when they started
    started_ns: int
    sources: dict[str, int]  # source file -> modification time, when it started
    pings: list[Future[None]]  # one no-op task per worker: done once that worker is up


_WARM: _WarmPool | None = None
_WARM_LOCK = threading.Lock()
_INSTALLED = tuple(
    os.path.realpath(sysconfig.get_paths()[key]) + os.sep
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
)


def _settings(workers: int) -> tuple[Any, ...]:
    return (workers, tuple(sorted(os.environ.items())), tuple(sys.path), os.getcwd())


def _is_user_source(path: str) -> bool:
    if path not in _USER_SOURCE:
        _USER_SOURCE[path] = not os.path.realpath(path).startswith(_INSTALLED)
    return _USER_SOURCE[path]


_USER_SOURCE: dict[str, bool] = {}


def _sources() -> dict[str, int]:
    """Modification times of the source files of loaded modules that a worker imports from
    disk as they are then: user code and editable installs, not the standard library or
    installed packages (a pip install while a pool is warm is not seen)."""
    found = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not _is_user_source(path):
            continue
        try:
            found[path] = os.stat(path).st_mtime_ns
        except OSError:
            continue
    return found


def _sources_changed(warm: _WarmPool) -> bool:
    """Whether a source a worker may have imported changed on disk since the pool started
    (one the driver imported only later counts when it is newer than the pool)."""
    for path, mtime in _sources().items():
        known = warm.sources.get(path)
        if mtime != known and (known is not None or mtime >= warm.started_ns):
            return True
    return False


def warm_pool(workers: int) -> ProcessPoolExecutor:
    """The process pool of this process for ``workers`` workers: the one the last sweep used
    when its settings still hold, else a new one (the old one is shut down)."""
    global _WARM
    with _WARM_LOCK:
        settings = _settings(workers)
        if _WARM is not None and (_WARM.settings != settings or _sources_changed(_WARM)):
            _end(_WARM.pool)
            _WARM = None
        if _WARM is None:
            started_ns = time.time_ns()
            # spawn, not fork: a forked child would inherit torch/OpenMP thread state.
            pool = ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=_start_worker
            )
            # Every worker starts now (a spawn pool starts one per submitted task), while the
            # driver's __main__ is hidden from them.
            with main_module_hidden():
                pings = [pool.submit(_ping) for _ in range(workers)]
            _WARM = _WarmPool(pool, settings, started_ns, _sources(), pings)
        return _WARM.pool


def _pings(pool: ProcessPoolExecutor) -> list[Future[None]]:
    with _WARM_LOCK:
        return list(_WARM.pings) if _WARM is not None and _WARM.pool is pool else []


def start_workers(workers: int, wait_ready: bool = False) -> None:
    """Starts the process executor's ``workers`` workers ahead of a sweep (or keeps the warm
    ones); with ``wait_ready``, returns once every one of them is up."""
    pings = _pings(warm_pool(workers))
    if wait_ready:
        wait(pings)


def _ping() -> None:
    """A worker's first task: its answer says it is up."""


def _start_worker() -> None:
    """In each worker, first. Ctrl-C, and Jupyter's interrupt (sent to the kernel's whole
    process group), is the driver's to handle: an idle warm worker would die of it otherwise
    (the driver stops the workers of a sweep it was interrupted in, see :func:`_process`).
    A worker ends with its driver: killed between sweeps, the driver leaves no idle workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    driver = multiprocessing.parent_process()
    if driver is not None:
        threading.Thread(target=_end_with, args=(driver.sentinel,), daemon=True).start()


def _end_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])  # ready once the driver is gone
    os._exit(1)


def _discard(pool: ProcessPoolExecutor, kill: bool = False) -> None:
    """Stops reusing ``pool``; with ``kill`` its workers stop now, not after their task."""
    global _WARM
    with _WARM_LOCK:
        if _WARM is not None and _WARM.pool is pool:
            _WARM = None
    _end(pool, kill)


def _end(pool: ProcessPoolExecutor, kill: bool = False) -> None:
    # No public way to stop a running task: the pool's own table of its processes, read
    # before shutdown clears it.
    processes = list((getattr(pool, "_processes", None) or {}).values()) if kill else []
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def shutdown_workers() -> None:
    """Ends the process executor's warm workers (their memory is freed; the next sweep
    starts new ones)."""
    global _WARM
    with _WARM_LOCK:
        warm, _WARM = _WARM, None
    if warm is not None:
        warm.pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_workers)


class _Handover:
    """One attempt's tasks: the driver takes them one at a time until a worker of the pool
    is up, then the rest go to the workers (from the callback of the first worker's answer,
    in the pool's own thread, so that they start while the driver finishes its task)."""

    def __init__(
        self,
        tasks: list[Task],
        pool: ProcessPoolExecutor,
        packed: dict[int, bytes],
        driver_may_run: bool,
    ) -> None:
        self.queue, self.pool, self.packed = deque(tasks), pool, packed
        self.driver_may_run = driver_may_run
        self.futures: dict[Future[TaskOutput], Task] = {}
        self.lock = threading.Lock()
        self.handed = self.broken = self.closed = False
        pings = _pings(pool)
        if not pings or not driver_may_run:  # all to the workers now, up or not
            self.hand_over(None)
        for ping in pings:
            ping.add_done_callback(self.hand_over)  # runs at once when already up

    def hand_over(self, ping: Future[None] | None) -> None:
        with self.lock:
            if self.handed or self.closed or self.broken:
                return
            if ping is not None and (ping.cancelled() or ping.exception() is not None):
                self.broken = True  # the pool broke while starting: its tasks are retried
                return
            self.handed = True
            tasks, self.queue = list(self.queue), deque()
            try:
                for task in tasks:
                    self.futures[self.pool.submit(execute_packed, task, self.packed[id(task)])] = (
                        task
                    )
            except BrokenProcessPool:
                self.broken = True
                self.queue.extend(t for t in tasks if t not in self.futures.values())

    def next_for_driver(self) -> Task | None:
        """The next task the driver runs itself, while no worker is up yet."""
        with self.lock:
            if self.handed or self.broken or not self.queue or not self.driver_may_run:
                return None
            return self.queue.popleft()

    def close(self) -> list[Task]:
        """No more hand-over; the tasks nobody took."""
        with self.lock:
            self.closed = True
            left, self.queue = list(self.queue), deque()
            return left


def _process(
    tasks: list[Task], workers: int, imports: Sequence[str] = (), **_: Any
) -> Iterator[TaskOutput]:
    packed = {id(task): pack(task, imports, "process") for task in tasks}
    remaining = list(tasks)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if not remaining:
            return
        retry: list[Task] = []
        yield from _attempt(remaining, packed, workers, retry, attempt)
        remaining = retry


def _attempt(
    tasks: list[Task], packed: dict[int, bytes], workers: int, retry: list[Task], attempt: int
) -> Iterator[TaskOutput]:
    """Runs ``tasks`` on the warm pool (on a first attempt the driver takes some while it
    starts: a retried task may be one that killed its worker); tasks of a worker that died go
    to ``retry``, or are recorded failed on the last attempt."""
    pool = warm_pool(workers)
    handover = _Handover(tasks, pool, packed, driver_may_run=attempt == 1)
    last = attempt == MAX_ATTEMPTS

    def lost(task: Task) -> Iterator[TaskOutput]:
        if last:
            yield failed_output(task, "worker process died")
        else:
            retry.append(task)

    futures = handover.futures
    try:
        while (task := handover.next_for_driver()) is not None:
            yield execute_task(task)
        left = handover.close()
        if handover.broken or left:
            _discard(pool)  # never reused: the next attempt gets a new one
            for task in left:
                yield from lost(task)
        while futures:
            done, _pending = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                # Dropping the future frees its result once written: holding every finished
                # future would keep the whole sweep's rows in memory.
                task = futures.pop(future)
                try:
                    output = future.result()
                except BrokenProcessPool:
                    _discard(pool)
                    yield from lost(task)
                    continue
                yield output
    except BaseException:
        # Interrupted (Ctrl-C, or the driver stopped reading): queued tasks are dropped;
        # workers still running one are stopped rather than left busy for the next sweep.
        handover.close()
        running = [f for f in futures if not f.cancel() and not f.done()]  # cancels all
        if running:
            _discard(pool, kill=True)
        raise


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
