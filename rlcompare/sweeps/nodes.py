"""Which nodes ran a sweep's runs, read back from the store: each stored run's metadata records
the ``node`` its task ran on (:func:`rlcompare.sweeps.tasks.worker_node`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rlcompare.errors import CorruptResultError
from rlcompare.store.results import read_metadata, run_path


def node_label(node: Mapping[str, Any]) -> str:
    """``<host>`` or ``<host> (ray node <id>)``; ``unknown`` for runs stored before nodes were
    recorded."""
    label = str(node.get("hostname", "unknown"))
    if node.get("ray_node_id"):
        label += f" (ray node {str(node['ray_node_id'])[:12]})"
    return label


def count_nodes(paths: Iterable[str | os.PathLike[str]]) -> dict[str, int]:
    """Runs per node label of the stored runs at ``paths``. Missing or unreadable files are
    left out: a run that was never stored has its failure reported elsewhere."""
    counts: dict[str, int] = {}
    for path in paths:
        try:
            node = read_metadata(path).get("node") or {}
        except CorruptResultError:
            continue
        label = node_label(node)
        counts[label] = counts.get(label, 0) + 1
    return counts


def format_node_counts(counts: Mapping[str, int]) -> str:
    """``runs per node: <label> <n>, ...`` in label order (``none`` when no run was stored)."""
    listed = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
    return f"runs per node: {listed or 'none'}"


def node_report(store: str | os.PathLike[str], run_ids: Sequence[str]) -> str:
    """The ``runs per node`` line of the runs ``run_ids`` (each counted once) in ``store``."""
    return format_node_counts(count_nodes(run_path(store, r) for r in dict.fromkeys(run_ids)))
