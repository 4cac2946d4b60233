"""The crash-safe result store: one Parquet file per run, written atomically, and
load_results."""

from rlcompare.store.results import load_results

__all__ = ["load_results"]
