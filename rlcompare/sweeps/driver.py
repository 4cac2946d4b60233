"""Sweeps: skip stored runs, group seed batches into tasks, dispatch, store each as it ends.

Only the driver writes to the store, as each task comes back, so executors need no shared
filesystem and an interrupted sweep loses only the runs in flight.
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
    stored_statuses,
    write_run,
)
from rlcompare.sweeps.executors import DISPATCH, EXECUTORS
from rlcompare.sweeps.tasks import plan_tasks


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
        imports: Modules every worker imports before running (for definitions that register
            themselves on import; definitions made in ``__main__`` travel without this).
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
        from rlcompare.sweeps.ray_executor import import_ray

        import_ray()
    wanted = metric_filter(metrics)  # a bad value fails here, before any training
    _check_imports(imports)
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
    # The rows this sweep stored, kept (filtered) to be returned without reading them back.
    written: dict[str, tuple[str, pa.Table]] = {}
    Path(store).mkdir(parents=True, exist_ok=True)
    if pending:
        tasks = plan_tasks(pending, workers)
        bar = _progress_bar(len(pending), progress)
        try:
            dispatch = DISPATCH[executor](tasks, workers, imports=imports, **executor_options)
            for output in dispatch:
                for rows, metadata in output:
                    stored = write_run(store, rows, metadata)
                    if stored is not None and isinstance(rows, pa.Table):
                        written[metadata["run_id"]] = (
                            metadata["status"],
                            only_metrics(rows, wanted),
                        )
                    if metadata["status"] == "failed":
                        failed[metadata["run_id"]] = metadata.get("reason") or "unknown error"
                bar.update(len(output))
        finally:
            bar.close()
    if failed:
        first = next(iter(failed.values())).strip().splitlines()[-1]
        warnings.warn(f"{len(failed)} run(s) failed (first: {first})", stacklevel=2)
    frame = runs_frame(store, run_ids=requested, metrics=metrics, in_memory=written)
    frame.attrs["failed"] = failed
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
