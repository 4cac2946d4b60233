"""Notebook 08: your own algorithm against ours, under one protocol and one set of statistics.

Two ways in, each a line in the notebook: a plugin file that registers an agent
(``examples/q_lambda.py``: Watkins's Q(lambda), compared with Q-learning and SARSA on the
tabular envs), and any Stable-Baselines3 class registered by name (A2C, compared with PPO and
our DQN on CartPole). Nothing here knows the contenders: it sweeps whatever names it is given.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import cloudpickle
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rlcompare.analysis import stats
from rlcompare.errors import SpecError
from rlcompare.experiments.common import IQM_COLUMNS, grid_per_budget, keyed
from rlcompare.experiments.evidence import iqm_ci, verdict_claims
from rlcompare.spec import registry
from rlcompare.spec.runspec import RunSpec
from rlcompare.studies.compare import compare, stored_verdict
from rlcompare.studies.verdict import Verdict, fixed_design_runs
from rlcompare.viz import plots, verdicts

# The folder above the rlcompare package: where examples/ lives in a source checkout.
SOURCE_TREE = Path(__file__).resolve().parents[2]
FINAL_COLUMNS = ["env", "algo", *IQM_COLUMNS, "mean"]
# The decisions table as the notebook shows it.
DECISION_COLUMNS = ["env", "a", "b", "decision", "interim", "runs_a", "runs_b", "difference"]
DECISION_COLUMNS += ["difference_low", "difference_high", "p_improvement"]

__all__ = [
    "DECISION_COLUMNS",
    "FINAL_COLUMNS",
    "YourAlgorithmSpecs",
    "curves_figure",
    "decisions_figure",
    "deep_verdict",
    "plugin_verdict",
    "final",
    "headline",
    "load_plugin",
    "specs",
]


def load_plugin(path: str | os.PathLike[str]) -> list[str]:
    """Imports the Python file ``path`` (a plugin that registers algorithms, like
    ``examples/q_lambda.py``) and returns the names of the algorithms it defines.

    The module is registered under its file's stem, so re-running the notebook cell finds the
    same definitions (the registry accepts the same definition twice). A file loaded by path
    is importable nowhere else, so its definitions reach worker processes by value.
    """
    path = _plugin_path(Path(path))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None  # a .py file always has a loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    return [name for name in registry.algorithms() if _defined_in(name, path.stem)]


def _plugin_path(path: Path) -> Path:
    """``path`` as given (relative to the working folder), else relative to the folder of the
    rlcompare source tree (``examples/`` lives there), so the notebook runs from anywhere."""
    if path.is_file():
        return path
    in_tree = SOURCE_TREE / path.as_posix().lstrip("./")
    if not path.is_absolute() and in_tree.is_file():
        return in_tree
    raise SpecError(
        f"plugin file {str(path)!r} does not exist here or in {str(SOURCE_TREE)!r}; valid: a "
        ".py file that registers algorithms"
    )


def _defined_in(name: str, module: str) -> bool:
    algorithm = registry.get_algorithm(name)
    target = algorithm.agent or algorithm.trainer
    return getattr(target, "__module__", None) == module


class YourAlgorithmSpecs(NamedTuple):
    """The notebook's two sweeps."""

    tabular: list[RunSpec]
    deep: list[RunSpec]


def specs(
    *,
    tabular_algos: Sequence[str],
    tabular_steps: Mapping[str, int],
    tabular_hparams: Mapping[str, Any],
    seeds: int,
    evals: int,
    eval_episodes: int,
    deep_algos: Mapping[str, Mapping[str, Any]],
    deep_steps: Mapping[str, int],
    deep_seeds: int,
    deep_evals: int,
    deep_eval_episodes: int,
) -> YourAlgorithmSpecs:
    """Tabular contenders (shared hyperparameters) on each env of ``tabular_steps`` with its
    budget, and deep contenders (each with its own hyperparameters) on ``deep_steps``."""
    tabular = grid_per_budget(
        list(tabular_algos),
        tabular_steps,
        seeds,
        evals,
        hparams=dict(tabular_hparams),
        eval_episodes=eval_episodes,
        experiment="your_algorithm",
    )
    deep: list[RunSpec] = []
    for algo, hparams in deep_algos.items():
        deep += grid_per_budget(
            algo,
            deep_steps,
            deep_seeds,
            deep_evals,
            hparams=dict(hparams),
            eval_episodes=deep_eval_episodes,
            experiment="your_algorithm",
        )
    return YourAlgorithmSpecs(tabular, deep)


def final(frame: pd.DataFrame, reps: int) -> pd.DataFrame:
    """Final eval return per env and contender: IQM over seeds with its 95% CI, and the mean."""
    return stats.summary(frame, metric="eval_return", by=["env", "algo"], reps=reps)[FINAL_COLUMNS]


def curves_figure(frame: pd.DataFrame, reps: int) -> tuple[Figure, np.ndarray]:
    """Eval return against env steps, a panel per env, a line per contender."""
    return plots.facets(plots.learning_curves, frame, col="env", reps=reps)


def plugin_verdict(
    plugin_algo: str,
    algos: Sequence[str],
    steps: Mapping[str, int],
    hparams: Mapping[str, Any],
    store: str,
    *,
    n: int,
    K: int,
    eval_episodes: int,
    executor: str,
) -> Verdict:
    """The plugin against every other contender on each env, by :func:`rlcompare.compare`
    (alpha 0.05 over both envs and every pair, ``n`` seeds per interim, at most ``K``), scored
    by the final exact ``expected_eval_return`` where every contender records it."""
    return compare(
        list(algos),
        list(steps),
        store,
        baseline=plugin_algo,
        n=n,
        K=K,
        steps=dict(steps),
        hparams=dict(hparams),
        eval_episodes=eval_episodes,
        executor=executor,
        experiment="your_algorithm_verdict",
    )


def deep_verdict(frame: pd.DataFrame, baseline: str) -> Verdict:
    """A one-interim verdict on the deep sweep's stored runs (no runs added): the SB3 class
    registered by name against the others."""
    return stored_verdict(frame, baseline=baseline)


def decisions_figure(*verdicts_: Verdict) -> tuple[Figure, np.ndarray]:
    """The decision matrix of every env of the verdicts, then the runs each comparison used
    against a fixed design (all verdicts' comparisons)."""
    import matplotlib.pyplot as plt

    panels = [(v, env) for v in verdicts_ for env in dict.fromkeys(v.decisions["env"])]
    runs = pd.concat([fixed_design_runs(v) for v in verdicts_], ignore_index=True)
    fig = plt.figure(figsize=(2.5 * len(panels), 2.6 + 0.3 * len(runs)))
    grid = fig.add_gridspec(2, len(panels), height_ratios=[2.6, 0.3 * len(runs) + 0.6])
    axes = [fig.add_subplot(grid[0, i]) for i in range(len(panels))]
    for ax, (verdict, env) in zip(axes, panels, strict=True):
        verdicts.decision_matrix(verdict.decisions, env, ax=ax)
    axes.append(fig.add_subplot(grid[1, :]))
    verdicts.runs_used(runs, ax=axes[-1])
    fig.tight_layout()
    return fig, np.array(axes)


def headline(
    tabular_final: pd.DataFrame,
    deep_final: pd.DataFrame,
    plugin: str,
    sb3: str,
    tabular_verdict: Verdict | None = None,
    sb3_verdict: Verdict | None = None,
) -> dict[str, Any]:
    """Final IQMs of both comparisons, the verdicts' decisions, and evidence claims for the
    summary table."""

    def claims(final: pd.DataFrame, name: str, kind: str, verdict: Verdict | None):
        # ``name`` is how the text names the contender (``Q(lambda)``); its algo is the
        # verdict's baseline, or ``name`` itself.
        algo = name
        if verdict is not None and len(verdict.decisions):
            algo = str(verdict.decisions["b"].iloc[0])
        label = name if name == algo else f"{name} = {algo}"
        out = []
        for env, rows in final.groupby("env", sort=False):
            by_algo = rows.set_index("algo")
            ours = ", ".join(f"{a} {iqm_ci(row)}" for a, row in by_algo.iterrows() if a != algo)
            if algo not in by_algo.index:
                out.append(f"{env}, final eval return: {ours} (IQM, 95% CI)")
                continue
            out.append(
                f"{env}, final eval return: {label} ({kind}) {iqm_ci(by_algo.loc[algo])} vs "
                f"ours: {ours} (IQM, 95% CI)"
            )
        if verdict is not None:
            out += verdict_claims(verdict.decisions, "final eval return")
        return out

    decided = {
        name: {f"{r.env}: {r.a} vs {r.b}": r.decision for r in v.decisions.itertuples()}
        for name, v in (("tabular", tabular_verdict), ("deep", sb3_verdict))
        if v is not None
    }
    return {
        "decisions": decided,
        "tabular_final_iqm": keyed(tabular_final, ["env", "algo"], "iqm"),
        "deep_final_iqm": keyed(deep_final, ["env", "algo"], "iqm"),
        "evidence": {
            "Q-learning": claims(tabular_final, plugin, "plugin agent", tabular_verdict),
            "Policy gradient (PPO)": claims(deep_final, sb3, "registered by class", sb3_verdict),
        },
    }
