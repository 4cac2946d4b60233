"""rlcompare: head-to-head comparisons of reinforcement-learning algorithms.

Importing the package registers our envs with gymnasium (``rlcompare/...`` ids). Torch,
Stable-Baselines3 and Ray are imported only when a deep algorithm or the Ray executor runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from rlcompare import envs as envs  # registers the rlcompare/ env ids
from rlcompare.errors import CorruptResultError, Diverged, SpecError, StoreError
from rlcompare.experiment import RunResult, run, run_batch
from rlcompare.registry import algorithms
from rlcompare.spec import RunSpec, grid

__version__ = "0.1.0"

# Public names served from submodules on first use, keeping `import rlcompare` light.
_LAZY = {
    "sweep": "rlcompare.sweeps",
    "load_results": "rlcompare.results",
    "tabular_mdp": "rlcompare.envs.tabular",
    "TabularMDP": "rlcompare.envs.tabular",
    "value_iteration": "rlcompare.planning",
    "policy_evaluation": "rlcompare.planning",
    "collect_demonstrations": "rlcompare.datasets",
    "Dataset": "rlcompare.datasets",
    "save_figure": "rlcompare.figures",
    "record_headline": "rlcompare.report",
    "read_provenance": "rlcompare.figures",
    "write_gallery": "rlcompare.figures",
    "stats": "rlcompare.stats",
    "plots": "rlcompare.plots",
    "curves": "rlcompare.curves",
}


_MODULES = ("stats", "plots", "curves")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        return module if name in _MODULES else getattr(module, name)
    raise AttributeError(f"module 'rlcompare' has no attribute {name!r}")


__all__ = [
    "CorruptResultError",
    "Diverged",
    "RunResult",
    "RunSpec",
    "SpecError",
    "StoreError",
    "algorithms",
    "grid",
    "run",
    "run_batch",
    *sorted(_LAZY),
]
