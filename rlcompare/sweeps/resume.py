"""What a sweep does with the runs a store already holds.

Each requested run is one of:

- new: not stored: run it;
- current: stored ``ok`` or ``diverged`` by the same code (its fingerprint equals the one
  this process computes, see :mod:`rlcompare.store.fingerprint`): reuse it, no training;
- stale: stored ``ok`` or ``diverged`` by other code (an algorithm or env edited, an env
  default changed, another rlcompare): by ``on_stale``, ``"rerun"`` (the default) recomputes
  it and replaces the stored file atomically, with a warning naming what changed;
  ``"error"`` refuses before any training, naming the runs, what changed and how to go on;
  ``"keep"`` returns the stored rows marked ``stale`` with a warning;
- failed: stored ``failed``. A failure raised by the run's own code (its agent, trainer or
  env) is deterministic for the same code and seed: it is reported again (in
  ``attrs["failed"]`` and the warning, with its error and where in user code it was
  raised), not re-run, unless its code changed (a fix) or ``retry_failed=True``. A failure
  of the infrastructure (a worker process or Ray node that died, a worker that could not
  load the task: stored ``transient``) is retried by every sweep.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlcompare.errors import SpecError, StoreError, choices_text
from rlcompare.runner.schema import DONE_STATUSES
from rlcompare.spec.runspec import RunSpec
from rlcompare.store.fingerprint import Fingerprints, describe_changes, differences
from rlcompare.store.results import StaleResultWarning
from rlcompare.versions import format_frame

ON_STALE = ("rerun", "error", "keep")


@dataclass
class Plan:
    """A sweep's runs sorted by what the store holds of them.

    Attributes:
        pending: Specs to run (new, stale under ``rerun``, failed ones to retry), in order.
        fingerprints: ``run_id -> fingerprint`` of every requested run (stamped on each
            stored result).
        stale: ``run_id -> what changed`` of stored runs made by other code.
        failed: ``run_id -> stored metadata`` of stored failures not retried.
    """

    pending: list[RunSpec] = field(default_factory=list)
    fingerprints: dict[str, dict[str, Any]] = field(default_factory=dict)
    stale: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)


def check_options(on_stale: Any, retry_failed: Any) -> None:
    """SpecError naming a bad ``on_stale`` or ``retry_failed`` and the valid values."""
    if not isinstance(on_stale, str) or on_stale not in ON_STALE:
        raise SpecError(f"on_stale = {on_stale!r} is invalid; {choices_text(ON_STALE, on_stale)}")
    if not isinstance(retry_failed, bool):
        raise SpecError(f"retry_failed = {retry_failed!r} is invalid; valid: True, False")


def plan(
    specs: Sequence[RunSpec],
    records: Mapping[str, Mapping[str, Any]],
    *,
    on_stale: str,
    retry_failed: bool,
    store: str,
) -> Plan:
    """Sorts ``specs`` against the stored ``records`` (``run_id -> metadata``); raises
    StoreError for stale runs under ``on_stale="error"`` before anything runs."""
    prints = Fingerprints()
    result = Plan()
    for spec in specs:
        run_id = spec.run_id
        current = result.fingerprints[run_id] = prints.of(spec)
        stored = records.get(run_id)
        if stored is None:
            result.pending.append(spec)
            continue
        changes = differences(stored.get("fingerprint"), current)
        if stored.get("status") in DONE_STATUSES:
            if changes:
                result.stale[run_id] = changes
                if on_stale == "rerun":
                    result.pending.append(spec)
        elif retry_failed or stored.get("transient") or changes:
            result.pending.append(spec)
        else:
            result.failed[run_id] = dict(stored)
    if result.stale:
        _report_stale(result.stale, on_stale, store, len(specs))
    return result


def _report_stale(stale: dict[str, list[str]], on_stale: str, store: str, total: int) -> None:
    what = describe_changes(stale)
    head = f"{len(stale)} stored run(s) of {total} in {store!r} were made by other code: {what}"
    if on_stale == "error":
        shown = ", ".join(list(stale)[:5]) + (", ..." if len(stale) > 5 else "")
        raise StoreError(
            f"{head}\nruns: {shown}\nvalid: on_stale='rerun' recomputes them (replacing the "
            "stored files), on_stale='keep' returns the stored rows marked stale, or sweep "
            "into a new store to keep both"
        )
    action = (
        "recomputing them (on_stale='rerun'; on_stale='error' refuses instead)"
        if on_stale == "rerun"
        else "returned marked stale (on_stale='keep'; on_stale='rerun' recomputes them)"
    )
    warnings.warn(f"{head}\n{action}", StaleResultWarning, stacklevel=4)


def failure_summary(
    failed: Mapping[str, str], where: Mapping[str, str], earlier: Sequence[str]
) -> str:
    """The warning of a sweep with failed runs: how many, the first error and where in user
    code it was raised, and which failures are stored ones that were not re-run."""
    first_id, reason = next(iter(failed.items()))
    lines = reason.strip().splitlines() or ["unknown error"]
    text = f"{len(failed)} run(s) failed (first: {first_id}: {lines[-1]}"
    if where.get(first_id):
        text += f", at {where[first_id]}"
    text += ")"
    if earlier:
        text += (
            f"; {len(earlier)} of them failed in an earlier sweep and were not re-run, their "
            "code being unchanged: pass retry_failed=True to run them again"
        )
    return text


def stored_failure(meta: Mapping[str, Any]) -> tuple[str, str]:
    """(reason, where in user code) of a stored failed run's metadata."""
    return meta.get("reason") or "unknown error", format_frame(meta.get("error_frame"))
