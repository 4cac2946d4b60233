"""Sweeps: skip stored runs, group seed batches into tasks, dispatch, store each as it ends.

Only the driver writes to the store, as each task comes back, so executors need no shared
filesystem and an interrupted sweep loses only the runs in flight. The driver also computes
each run's code fingerprint (once per algorithm and env) and stamps it on the stored
metadata: workers never compute one, so every executor stores the same. What a sweep does
with stored runs made by other code, and with stored failures, is
:mod:`rlcompare.sweeps.resume`'s.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from rlcompare.errors import SpecError, StoreError, choices_text
from rlcompare.runner.schema import DONE_STATUSES
from rlcompare.spec.runspec import RunSpec
from rlcompare.store.results import (
    metric_filter,
    only_metrics,
    runs_frame,
    stored_records,
    write_run,
)
from rlcompare.sweeps.executors import DISPATCH, EXECUTORS
from rlcompare.sweeps.resume import check_options, failure_summary, plan, stored_failure
from rlcompare.sweeps.tasks import plan_tasks
from rlcompare.versions import format_frame


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
    imports: Sequence[str] = (),
    on_stale: str = "rerun",
    retry_failed: bool = False,
    **executor_options: Any,
) -> pd.DataFrame:
    """Runs every spec not yet stored (by the same code) and returns the tidy rows of all.

    Args:
        specs: Runs to do (duplicates are run once).
        store: Result store folder.
        executor: ``serial``, ``process`` or ``ray``. The process executor's workers stay
            up for the next sweep of this Python process (the first sweep pays their
            start-up, seconds); :func:`rlcompare.sweeps.executors.shutdown_workers` ends them.
            Every executor gives the same rows.
        workers: Parallel workers (default: CPU count).
        resume: Skip runs already stored. With False a store that already holds any of the
            runs is an error, since a stored run of the same code is never recomputed.
        progress: Show a progress bar (always off when the ``CI`` env var is set).
        metrics: Return only rows of these metrics (every row is stored either way); see
            :func:`rlcompare.load_results`.
        imports: Modules every worker imports before running (for definitions that register
            themselves on import; definitions made in ``__main__`` travel without this).
        on_stale: What to do with a stored run made by other code than this process runs
            (its algorithm, hyperparameter table, env or env defaults changed since; see
            :mod:`rlcompare.store.fingerprint`): ``"rerun"`` (default) recomputes it,
            replacing the stored file, and warns naming what changed; ``"error"`` refuses
            before any training, naming the runs and what changed; ``"keep"`` returns the
            stored rows marked ``stale`` (a column) with a warning.
        retry_failed: Run stored failures again. Without it, a run that failed by an error
            of its own code is reported (not re-run) until its code changes; a run whose
            worker died is retried anyway.
        **executor_options: Passed to the executor (``address`` for Ray).

    Returns:
        Tidy rows of every requested run (failed runs have none); ``.attrs["failed"]`` maps
        failed run ids (this sweep's and stored ones not re-run) to their tracebacks,
        ``.attrs["failed_where"]`` to the frame of user code that raised, and
        ``.attrs["stale"]`` names runs returned stale (``on_stale="keep"``).

    Raises:
        StoreError: stale runs under ``on_stale="error"``, or stored runs with
            ``resume=False``.
    """
    if executor not in EXECUTORS:
        raise SpecError(f"unknown executor {executor!r}; {choices_text(EXECUTORS, executor)}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise SpecError(f"workers = {workers!r} is invalid; valid: a positive int or None")
    if executor == "ray":
        from rlcompare.sweeps.ray_executor import import_ray

        import_ray()
    wanted = metric_filter(metrics)  # a bad value fails here, before any training
    check_options(on_stale, retry_failed)
    _check_imports(imports)
    specs = list({spec.run_id: spec for spec in _checked(specs)}.values())
    workers = workers or os.cpu_count() or 1
    records = stored_records(store)
    requested = [spec.run_id for spec in specs]
    done = {run_id for run_id, meta in records.items() if meta["status"] in DONE_STATUSES}
    if not resume and done & set(requested):
        raise StoreError(
            f"{len(done & set(requested))} of these runs are already in {str(store)!r}; "
            "use resume=True to reuse them or a new store"
        )
    todo = plan(
        specs, records, on_stale=on_stale, retry_failed=retry_failed, store=os.fspath(store)
    )
    failed: dict[str, str] = {}
    where: dict[str, str] = {}
    for run_id, meta in todo.failed.items():
        failed[run_id], where[run_id] = stored_failure(meta)
    # The rows this sweep stored, kept (filtered) to be returned without reading them back.
    written: dict[str, tuple[dict[str, Any], pa.Table]] = {}
    Path(store).mkdir(parents=True, exist_ok=True)
    if todo.pending:
        tasks = plan_tasks(todo.pending, workers)
        bar = _progress_bar(len(todo.pending), progress)
        try:
            dispatch = DISPATCH[executor](tasks, workers, imports=imports, **executor_options)
            for output in dispatch:
                for rows, metadata in output:
                    run_id = metadata["run_id"]
                    metadata = {**metadata, "fingerprint": todo.fingerprints[run_id]}
                    stored = write_run(store, rows, metadata)
                    if stored is not None and isinstance(rows, pa.Table):
                        written[run_id] = (metadata, only_metrics(rows, wanted))
                    if metadata["status"] == "failed":
                        failed[run_id] = metadata.get("reason") or "unknown error"
                        where[run_id] = format_frame(metadata.get("error_frame"))
                bar.update(len(output))
        finally:
            bar.close()
    if failed:
        earlier = [run_id for run_id in todo.failed if run_id in failed]
        warnings.warn(failure_summary(failed, where, earlier), stacklevel=2)
    kept = {run_id: todo.stale[run_id] for run_id in todo.stale if on_stale == "keep"}
    frame = runs_frame(store, run_ids=requested, metrics=metrics, in_memory=written, stale=kept)
    frame.attrs["failed"] = failed
    frame.attrs["failed_where"] = where
    return frame


def _checked(specs: Sequence[RunSpec]) -> list[RunSpec]:
    specs = list(specs)
    for spec in specs:
        if not isinstance(spec, RunSpec):
            raise SpecError(f"sweep takes RunSpecs (see rlcompare.grid), got {spec!r}")
    return specs


def _check_imports(imports: Sequence[str]) -> None:
    if isinstance(imports, str):
        raise SpecError(f"imports = {imports!r}; valid: a list of module names")
    for module in imports:
        try:
            importlib.import_module(module)
        except Exception as error:
            raise SpecError(
                f"imports: module {module!r} does not import here ({type(error).__name__}: "
                f"{error}); valid: modules importable by the driver and every worker"
            ) from error
