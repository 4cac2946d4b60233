"""run(spec): build the context, train with the algorithm's trainer, return tidy rows."""

from __future__ import annotations

import json
import os
import platform
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd
import pyarrow as pa

from rlcompare.errors import Diverged, SpecError
from rlcompare.runner.context import RunContext
from rlcompare.spec.runspec import RunSpec
from rlcompare.versions import first_user_frame, git_commit, package_versions


@dataclass
class RunResult:
    """What one run produced.

    Attributes:
        spec: The spec that was run.
        table: Tidy rows (see DESIGN.md) as Arrow, what the store writes.
        agent: The trained agent (None when the run failed or came from the store).
        status: ``ok``, ``diverged`` or ``failed``.
        metadata: Spec, status, versions, commit, threads, platform (and error if failed).
    """

    spec: RunSpec
    table: pa.Table
    agent: Any = None
    status: str = "ok"
    metadata: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """Tidy rows (see DESIGN.md) as pandas, converted from ``table`` on first use."""
        return self.table.to_pandas()


def environment_metadata() -> dict[str, Any]:
    """Versions, commit, threads and platform, for the run's stored metadata."""
    versions = package_versions()
    versions["python"] = platform.python_version()
    torch = sys.modules.get("torch")
    return {
        "versions": versions,
        "git_commit": git_commit(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def _metadata(ctx: RunContext, status: str, error: str | None = None) -> dict[str, Any]:
    meta = {
        "run_id": ctx.spec.run_id,
        "spec": ctx.spec.to_dict(),
        "status": status,
        "reason": error if error is not None else ctx.status_reason,
        **environment_metadata(),
        **ctx.extra_metadata,
    }
    return meta


def run(spec: RunSpec) -> RunResult:
    """Trains and evaluates ``spec``; returns its tidy rows, agent and status.

    Raises:
        SpecError: ``spec`` is not a RunSpec (a RunSpec validates itself when built).
    """
    return run_batch([spec])[0]


def seed_batch_key(spec: RunSpec) -> str:
    """Equal for specs that differ only in seed: a batch trainer may run them together."""
    return json.dumps(spec.identity(with_seed=False), sort_keys=True, default=str)


def run_batch(specs: Sequence[RunSpec], *, catch_errors: bool = False) -> list[RunResult]:
    """Runs ``specs``; those that differ only in seed go through the algorithm's batch trainer
    together. Results come back in the order of ``specs``.

    Each result is bit-identical to ``run`` of its spec alone. With ``catch_errors`` an
    exception inside training becomes a ``failed`` result carrying the traceback (sweeps use
    this so one bad run does not stop the rest); otherwise it propagates.
    """
    for spec in specs:
        if not isinstance(spec, RunSpec):
            raise SpecError(f"expected a RunSpec, got {spec!r}")
    groups: dict[str, list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(seed_batch_key(spec), []).append(index)
    results: list[RunResult | None] = [None] * len(specs)
    for indices in groups.values():
        batch = _run_seed_batch([specs[i] for i in indices], catch_errors)
        for index, result in zip(indices, batch, strict=True):
            results[index] = result
    return [result for result in results if result is not None]


# The rows of a failed run: none (its traceback is in the metadata).
_NO_ROWS = pa.Table.from_pandas(pd.DataFrame(), preserve_index=False)


def _failed(spec: RunSpec, error: str, where: dict[str, Any] | None = None) -> RunResult:
    """A run that could not even start (its context failed to build): no rows, the reason."""
    meta = {
        "run_id": spec.run_id,
        "spec": spec.to_dict(),
        "status": "failed",
        "reason": error,
        "error_frame": where,
        **environment_metadata(),
    }
    return RunResult(spec, _NO_ROWS, None, "failed", meta)


def _run_seed_batch(specs: Sequence[RunSpec], catch_errors: bool) -> list[RunResult]:
    # Building a context resolves the algorithm and env, which a worker may lack: inside the
    # failure handling, so one bad spec is one failed run, never an aborted sweep.
    try:
        contexts = [RunContext(spec) for spec in specs]
    except Exception as exc:
        if not catch_errors:
            raise
        error = traceback.format_exc()
        return [_failed(spec, error, first_user_frame(exc)) for spec in specs]
    algorithm = contexts[0].algorithm
    try:
        _pin_threads(torch_too=algorithm.family == "deep")
        if algorithm.batch_trainer is not None and len(specs) > 1:
            agents = list(algorithm.load(batch=True)(contexts))
        else:
            agents = [_train_one(algorithm.load(), ctx) for ctx in contexts]
        for ctx in contexts:
            ctx.check_evaluated()  # a trainer that skipped its evaluations fails, named
    except Exception as exc:
        if not catch_errors:
            raise
        error = traceback.format_exc()
        # The rows recorded before the error are kept, with the frame of user code that raised.
        where = {"error_frame": first_user_frame(exc)}
        return [
            RunResult(
                ctx.spec, ctx.table(), None, "failed", {**_metadata(ctx, "failed", error), **where}
            )
            for ctx in contexts
        ]
    finally:
        for ctx in contexts:
            ctx.close()
    return [
        RunResult(ctx.spec, ctx.table(), agent, ctx.status, _metadata(ctx, ctx.status))
        for ctx, agent in zip(contexts, agents, strict=True)
    ]


def _train_one(trainer: Any, ctx: RunContext) -> Any:
    try:
        return trainer(ctx)
    except Diverged as reason:
        ctx.mark_diverged(ctx.last_eval_step or 0, str(reason))
        return None


_BLAS_PINNED = False


def _pin_threads(torch_too: bool) -> None:
    """One thread for BLAS/LAPACK (and torch, for deep runs), in whichever process runs.

    Small networks and matrices gain nothing from more; two workers each spinning up
    OpenBLAS's threads on two cores ran exact policy evaluation (a linear solve) ~1.5-3x
    slower; and a solve's last bits depend on the thread count, so pinned, results do not
    depend on how many cores the worker happens to have (measured: policy_regret of
    certainty equivalence on SelfHealing differed by 1e-12 between 2 threads and 1).
    """
    global _BLAS_PINNED
    if not _BLAS_PINNED:  # finding the loaded BLAS libraries takes a few ms: once a process
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _BLAS_PINNED = True
    if torch_too:
        import torch

        torch.set_num_threads(1)
