"""The result store: one Parquet file per run, written so that a crash never leaves a result
that is half there.

A write goes to a temporary file in the store folder (flushed and fsynced), then is linked to
its final name: the link fails if another writer stored the run first, so a stored run is
never overwritten by the same code, and readers only ever see whole files. Two kinds of
stored run are replaced (atomically, by rename) by a new write: a failed one (stored with the
rows it recorded before its error, its traceback and the frame of user code that raised in
the metadata), and one whose code fingerprint differs from the new run's (made by other
code: see :mod:`rlcompare.store.fingerprint`).

:func:`load_results` checks each run's fingerprint against the code of the loading process:
rows of runs made by other code come marked (a ``stale`` column, ``attrs["stale"]``) with a
warning that says what changed.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rlcompare.errors import CorruptResultError, SpecError, StoreError
from rlcompare.runner.schema import ID_COLUMNS, STATUS_COLUMN
from rlcompare.store.fingerprint import Fingerprints, describe_changes, stale_runs

METADATA_KEY = b"rlcompare"
# Added to loaded rows when some run was made by other code than the loading process runs.
STALE_COLUMN = "stale"


class StaleResultWarning(UserWarning):
    """Stored runs were made by other code than the current one (or cannot be checked)."""


SUFFIX = ".parquet"
# Temporary files carry the writer's pid, so a later writer can tell leftovers of dead ones.
_TMP = re.compile(r"^\.(?P<run>.+)\.(?P<pid>\d+)\.tmp$")


def run_path(store: str | os.PathLike[str], run_id: str) -> Path:
    """Where the run ``run_id`` lives in ``store``."""
    return Path(store) / f"{run_id}{SUFFIX}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(store: str | os.PathLike[str]) -> list[Path]:
    """Removes temporary files left by writers that died; returns what it removed."""
    removed = []
    for path in Path(store).glob(".*.tmp"):
        match = _TMP.match(path.name)
        if match and not _pid_alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# Stores whose leftovers this process has cleaned: a writer that dies leaves its temporary
# file behind for the next process to clean, so once per store is enough (globbing a large
# store at every write grew with the store).
_CLEANED: set[Path] = set()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Arrow schemas (with their pandas metadata) by column layout: building one from pandas
# costs more than converting a run's rows, and a sweep's runs share a few layouts.
_SCHEMAS: dict[tuple[tuple[str, str, str], ...], pa.Schema] = {}


def _constant_text(column: pd.Series) -> tuple[bool, Any]:
    """(whether an object column holds one str or only None, that value)."""
    values = column.to_numpy()
    first = values[0]
    if first is None:
        return bool(column.isna().all()), None
    if isinstance(first, str):
        return bool((values == first).all()), first
    return False, None


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """``pa.Table.from_pandas(frame, preserve_index=False)``, the same table, faster.

    A run's frame repeats its identity and hyperparameters on every row: from_pandas turns
    each of those Python strings into Arrow one by one (most of a store write). Here a
    constant text column is one repeated scalar; the schema (with its pandas metadata) comes
    from the first row, which holds every column's type when the text columns are constant,
    once per column layout; a frame with other object columns takes from_pandas itself.
    """
    if frame.empty:
        return pa.Table.from_pandas(frame, preserve_index=False)
    constants: dict[str, Any] = {}
    for name in frame.select_dtypes(include="object").columns:
        constant, value = _constant_text(frame[name])
        if not constant:
            return pa.Table.from_pandas(frame, preserve_index=False)
        constants[name] = value
    layout = tuple(
        (name, str(dtype), type(constants[name]).__name__ if name in constants else "")
        for name, dtype in frame.dtypes.items()
    )
    schema = _SCHEMAS.get(layout)
    if schema is None:
        if len(_SCHEMAS) >= 256:
            _SCHEMAS.clear()
        schema = _SCHEMAS[layout] = pa.Schema.from_pandas(frame.iloc[:1], preserve_index=False)
    arrays = [
        pa.repeat(pa.scalar(constants[name], type=field.type), len(frame))
        if name in constants
        else pa.Array.from_pandas(frame[name], type=field.type)
        for name, field in zip(frame.columns, schema, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_run(
    store: str | os.PathLike[str], rows: pa.Table | pd.DataFrame, metadata: dict[str, Any]
) -> Path | None:
    """Stores one run atomically.

    Args:
        store: Store folder (created if missing).
        rows: The run's tidy rows (``RunResult.table``, or a frame).
        metadata: Must hold ``run_id`` and ``status``; kept in the Parquet footer. Without a
            ``fingerprint`` (a sweep stamps its own), the fingerprint of its ``spec`` under
            the code of this process is added when it can be computed.

    Returns:
        The stored path, or None when the run was already stored (by this or another writer)
        and is neither failed nor made by other code.

    Raises:
        StoreError: the write failed (disk full, permissions); earlier runs stay intact.
    """
    store = Path(store)
    run_id, status = metadata["run_id"], metadata["status"]
    metadata = _fingerprinted(metadata)
    final = run_path(store, run_id)
    tmp = store / f".{run_id}.{os.getpid()}.tmp"
    try:
        store.mkdir(parents=True, exist_ok=True)
        if (cleaned := store.resolve()) not in _CLEANED:
            clean_leftovers(store)
            _CLEANED.add(cleaned)
        table = rows if isinstance(rows, pa.Table) else arrow_table(rows)
        footer = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(metadata, default=str)}
        table = table.replace_schema_metadata(footer)
        with open(tmp, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        if final.exists() and _replaceable(read_metadata(final), metadata):
            os.replace(tmp, final)  # a failed or stale run: the new one takes its place
        else:
            try:
                os.link(tmp, final)
            except FileExistsError:
                return None
            finally:
                tmp.unlink(missing_ok=True)
        _fsync_dir(store)
        return final
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise StoreError(
            f"could not store run {run_id!r} ({status}) in {str(store)!r}: {error}; "
            "runs stored earlier are intact"
        ) from error


def _fingerprinted(metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` with the fingerprint of its spec added, when it has none and one can be
    computed (a run written by hand from ``rlcompare.run``'s result)."""
    if "fingerprint" in metadata or not isinstance(metadata.get("spec"), dict):
        return metadata
    try:
        return {**metadata, "fingerprint": Fingerprints().of(metadata["spec"])}
    except Exception:  # an algorithm or env unknown here: stored without, as before
        return metadata


def _replaceable(stored: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a new write replaces the stored run: a failed run (a retry), or a run made by
    other code than the new one (a new write without a fingerprint replaces nothing)."""
    if stored.get("status") == "failed":
        return True
    return "fingerprint" in new and stored.get("fingerprint") != new["fingerprint"]


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The rlcompare metadata of one stored run (spec, status, versions, ...)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as error:
        raise _not_a_result(path, error) from error
    return _footer(schema, path)


def _footer(schema: pa.Schema, path: str | os.PathLike[str]) -> dict[str, Any]:
    """The rlcompare metadata in a stored run's schema."""
    try:
        return json.loads((schema.metadata or {})[METADATA_KEY])
    except (KeyError, ValueError) as error:
        raise _not_a_result(path, error) from error


def _not_a_result(path: str | os.PathLike[str], error: Exception) -> CorruptResultError:
    return CorruptResultError(f"{str(path)!r} is not a readable rlcompare result: {error}")


def stored_runs(store: str | os.PathLike[str]) -> list[Path]:
    """Result files in ``store``, sorted (temporary and hidden files are never results)."""
    store = Path(store)
    if not store.is_dir():
        return []
    return sorted(p for p in store.glob(f"*{SUFFIX}") if not p.name.startswith("."))


def stored_records(store: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``run_id -> metadata`` (status, fingerprint, reason, ...) of every readable run in
    ``store``; unreadable ones, and files without a status, are skipped."""
    records = {}
    for path in stored_runs(store):
        try:
            meta = read_metadata(path)
        except CorruptResultError:
            continue
        if "status" in meta:
            records[path.name[: -len(SUFFIX)]] = meta
    return records


def stored_statuses(store: str | os.PathLike[str]) -> dict[str, str]:
    """``run_id -> status`` for every readable run in ``store`` (unreadable ones are skipped)."""
    return {run_id: meta["status"] for run_id, meta in stored_records(store).items()}


def metric_filter(metrics: Iterable[str] | None) -> list[str] | None:
    """The metric names ``metrics`` asks for (None: every row); SpecError for a bad value."""
    if metrics is None:
        return None
    if isinstance(metrics, str):
        wanted = [metrics]
    else:
        wanted = list(metrics) if isinstance(metrics, Iterable) else []
    if not wanted or not all(isinstance(name, str) and name for name in wanted):
        raise SpecError(
            f"metrics = {metrics!r} is invalid; valid: None (all rows) or a non-empty list of "
            "metric names such as ['eval_return', 'q_error']"
        )
    return wanted


def only_metrics(table: pa.Table, wanted: list[str] | None) -> pa.Table:
    """The rows of ``table`` whose metric is in ``wanted`` (every row for None)."""
    if wanted is None or not table.num_rows:
        return table
    return table.filter(pc.is_in(table["metric"], value_set=pa.array(wanted, pa.string())))


def load_results(
    store: str | os.PathLike[str],
    *,
    on_corrupt: str = "raise",
    run_ids: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
    include_failed: bool = False,
    check_code: bool = True,
) -> pd.DataFrame:
    """Every stored run's tidy rows in one DataFrame (a ``status`` column added).

    Args:
        store: Store folder.
        on_corrupt: ``"raise"`` (CorruptResultError naming the file) or ``"skip"`` (warn).
        run_ids: Only these runs (missing ones are left out).
        metrics: Only rows of these metrics, filtered as each run is read. Long tabular runs
            log millions of ``episode_return`` / ``episode_length`` rows; an analysis of the
            evaluation metrics need not hold them in memory.
        include_failed: Also the rows failed runs recorded before their error (left out by
            default: a run cut short is no sample of its algorithm's performance).
        check_code: Compare each run's code fingerprint with the code of this process. Runs
            made by other code (an algorithm or env edited since, a changed env default)
            come with a ``stale`` column True, ``attrs["stale"]`` (``run_id -> what
            changed``) and a warning; the column is there only when some run is stale. A run
            whose algorithm or env is unknown here is named in a warning, not marked.
    """
    return runs_frame(
        store,
        on_corrupt=on_corrupt,
        run_ids=run_ids,
        metrics=metrics,
        include_failed=include_failed,
        stale=None if check_code else {},
    )


def runs_frame(
    store: str | os.PathLike[str],
    *,
    on_corrupt: str = "raise",
    run_ids: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
    in_memory: dict[str, tuple[dict[str, Any], pa.Table]] | None = None,
    include_failed: bool = False,
    stale: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """:func:`load_results`, taking the runs in ``in_memory`` (``run_id -> (metadata,
    rows)``, the very tables just stored by this process) from there instead of their files.

    ``stale`` (``run_id -> what changed``) marks those runs stale; None checks every run's
    fingerprint here, and warns.
    """
    if on_corrupt not in ("raise", "skip"):
        raise ValueError(f"on_corrupt = {on_corrupt!r} is invalid; valid: raise, skip")
    wanted = metric_filter(metrics)
    in_memory = in_memory or {}
    paths = stored_runs(store)
    if run_ids is not None:
        requested = set(run_ids)
        paths = [p for p in paths if p.name[: -len(SUFFIX)] in requested]
    runs: list[tuple[dict[str, Any], pa.Table]] = []
    for path in paths:
        run_id = path.name[: -len(SUFFIX)]
        try:
            meta, table = in_memory[run_id] if run_id in in_memory else _read_run(path)
            status = meta["status"]
        except (CorruptResultError, OSError, KeyError, ValueError, pa.ArrowException) as error:
            if on_corrupt == "raise":
                raise CorruptResultError(
                    f"corrupt result file {str(path)!r}: {error} "
                    "(load_results(..., on_corrupt='skip') skips it with a warning)"
                ) from error
            warnings.warn(f"skipping corrupt result file {str(path)!r}: {error}", stacklevel=3)
            continue
        if status == "failed" and not include_failed:
            continue
        table = only_metrics(table, wanted)
        if table.num_rows:
            runs.append((meta, table))
    if stale is None:
        stale = _checked_code(store, [meta for meta, _ in runs])
    marked = {meta["run_id"] for meta, _ in runs} & set(stale)
    tables = []
    for meta, table in runs:
        table = table.append_column(STATUS_COLUMN, pa.repeat(meta["status"], table.num_rows))
        if marked:
            flag = pa.repeat(meta["run_id"] in marked, table.num_rows)
            table = table.append_column(STALE_COLUMN, flag)
        tables.append(table)
    if not tables:
        frame = pd.DataFrame(columns=[*ID_COLUMNS, STATUS_COLUMN])
    else:
        frame = _concatenated(tables)
    frame.attrs["stale"] = {run_id: "; ".join(stale[run_id]) for run_id in sorted(marked)}
    return frame


def _checked_code(store: str | os.PathLike[str], metas: list[dict[str, Any]]) -> dict:
    """Stale runs among ``metas`` (``run_id -> what changed``), with a warning for them and
    one for runs that could not be checked here."""
    stale, unchecked = stale_runs(metas)
    if stale:
        warnings.warn(
            f"{len(stale)} of {len(metas)} runs in {str(store)!r} were made by other code than "
            f"this process runs: {describe_changes(stale)}\ntheir rows are marked stale=True "
            "(attrs['stale'] says what changed); rlcompare.sweep of their specs recomputes "
            "them",
            StaleResultWarning,
            stacklevel=4,
        )
    if unchecked:
        first, why = next(iter(unchecked.items()))
        warnings.warn(
            f"{len(unchecked)} run(s) in {str(store)!r} could not be checked against the code "
            f"of this process (e.g. {first}: {why}); register their algorithms (or import "
            "their env modules) before loading to check them",
            StaleResultWarning,
            stacklevel=4,
        )
    return stale


def _read_run(path: Path) -> tuple[dict[str, Any], pa.Table]:
    """(metadata, rows) of one stored run, its file opened once."""
    file = pq.ParquetFile(path)
    try:
        return _footer(file.schema_arrow, path), file.read()
    finally:
        file.close()


def _concatenated(tables: list[pa.Table]) -> pd.DataFrame:
    """One frame of many runs' tables, in order, as ``pd.concat`` of their frames would give
    it: columns in order of first appearance, and a run's missing columns NaN (dtypes widened
    as pandas widens them: int to float, bool to object).

    The tables are joined in Arrow, their schemas unified, and converted once: pandas' concat
    of frames with different columns checks every cell of their all-missing object columns in
    Python (loading notebook 01's whole store took 30.7 s that way, 6.8 s this way).
    """
    try:
        merged = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Types Arrow will not unify (a column int in one run, text in another): pandas' rules.
        frames = [table.to_pandas() for table in tables]
        return pd.concat(frames, ignore_index=True, sort=False)
    frame = merged.replace_schema_metadata(tables[0].schema.metadata).to_pandas()
    _missing_as_nan(frame, tables)
    return frame


def _missing_as_nan(frame: pd.DataFrame, tables: list[pa.Table]) -> None:
    """Sets the object-column cells of runs that lack the column to NaN, as pandas' concat
    leaves them (Arrow's unified table holds None there)."""
    bounds = np.cumsum([0, *(table.num_rows for table in tables)])
    names = [set(table.column_names) for table in tables]
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        lacking = [i for i, present in enumerate(names) if column not in present]
        if not lacking:
            continue
        values = frame[column].to_numpy(dtype=object, copy=True)
        for i in lacking:
            values[bounds[i] : bounds[i + 1]] = np.nan
        frame[column] = values
