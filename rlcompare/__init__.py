"""rlcompare: head-to-head comparisons of reinforcement-learning algorithms.

Importing the package registers our envs with gymnasium (``rlcompare/...`` ids). Torch,
Stable-Baselines3 and Ray are imported only when a deep algorithm or the Ray executor runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from rlcompare import envs as envs  # registers the rlcompare/ env ids
from rlcompare.errors import CorruptResultError, Diverged, SpecError, StoreError
from rlcompare.runner.protocol import Protocol, ProtocolError
from rlcompare.runner.runs import RunResult, run, run_batch
from rlcompare.runner.schema import StepAgent as Agent
from rlcompare.spec.params import Param
from rlcompare.spec.registry import algorithms, register_algorithm
from rlcompare.spec.runspec import RunSpec, grid
from rlcompare.versions import VERSION as __version__  # noqa: F401

# Public names served from submodules on first use, keeping `import rlcompare` light.
_LAZY = {
    "sweep": "rlcompare.sweeps.driver",
    "load_results": "rlcompare.store.results",
    "tabular_mdp": "rlcompare.envs.model",
    "TabularMDP": "rlcompare.envs.model",
    "value_iteration": "rlcompare.envs.planning",
    "policy_evaluation": "rlcompare.envs.planning",
    "hardness": "rlcompare.envs.hardness",
    "collect_demonstrations": "rlcompare.envs.datasets",
    "Dataset": "rlcompare.envs.datasets",
    "save_figure": "rlcompare.viz.figures",
    "record_headline": "rlcompare.viz.report",
    "read_provenance": "rlcompare.viz.figures",
    "write_gallery": "rlcompare.viz.figures",
    "stats": "rlcompare.analysis.stats",
    "plots": "rlcompare.viz.plots",
    "curves": "rlcompare.analysis.curves",
    "register_sb3": "rlcompare.algos.deep.sb3_generic",
    "compare": "rlcompare.studies.compare",
    "Contender": "rlcompare.studies.compare",
    "card": "rlcompare.studies.card",
    "tune": "rlcompare.studies.tune",
    "TuneResult": "rlcompare.studies.tune",
}


_MODULES = ("stats", "plots", "curves")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        return module if name in _MODULES else getattr(module, name)
    raise AttributeError(f"module 'rlcompare' has no attribute {name!r}")


__all__ = [
    "Agent",
    "CorruptResultError",
    "Diverged",
    "Param",
    "Protocol",
    "ProtocolError",
    "RunResult",
    "RunSpec",
    "SpecError",
    "StoreError",
    "algorithms",
    "grid",
    "register_algorithm",
    "run",
    "run_batch",
    *sorted(_LAZY),
]
