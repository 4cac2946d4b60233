"""``card``: what a registered algorithm is good at, capability by capability, against ours.

The card runs the algorithm on a fixed battery (:mod:`rlcompare.studies.card_battery`): each
item scores every run in [0, 1] (its definition is the item's docstring), the item's score is
the mean over its tasks of the mean per-run score, and every task compares the algorithm with
each built-in that can run it by the one-interim test of
:func:`rlcompare.studies.compare.stored_verdict` on those per-run scores (family-wise error
``alpha`` per item, split over its tasks). Items the algorithm cannot run are listed as not
applicable, with the reason, and cost nothing.

Every run lands in the store under the experiment label ``card`` at fixed seeds (0..n-1), so
the built-ins' reference runs are made once and reused by every later card, and a card run
again reuses its own runs until the algorithm's code changes (the store's fingerprint: a
stored run made by other code is rerun).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlcompare.errors import SpecError
from rlcompare.spec.registry import get_algorithm
from rlcompare.spec.runspec import RunSpec
from rlcompare.store.results import stored_runs
from rlcompare.studies.card_battery import Item, Task, battery, mdp_horizon
from rlcompare.studies.verdict import difference_interval
from rlcompare.sweeps.driver import sweep

EXPERIMENT = "card"
# Where built-ins' reference runs and the cards' own runs are kept unless told otherwise.
STORE_ENV = "RLCOMPARE_CARD_STORE"
DECISION_COLUMNS = ["task", "reference", "decision", "runs_algo", "runs_reference"]
DECISION_COLUMNS += ["mean_algo", "mean_reference", "difference", "difference_low"]
DECISION_COLUMNS += ["difference_high", "p_improvement"]

__all__ = ["Card", "ItemResult", "card", "default_store", "write_card"]


def default_store() -> Path:
    """``$RLCOMPARE_CARD_STORE``, else ``$XDG_CACHE_HOME/rlcompare/card`` (by default
    ``~/.cache/rlcompare/card``): one store that every card on this machine shares."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "rlcompare" / "card"


@dataclasses.dataclass
class ItemResult:
    """One item of a card.

    Attributes:
        item: The battery item.
        reason: Why the algorithm takes no part (None where it does).
        score: The algorithm's item score in [0, 1] (None where not applicable).
        reference_scores: Each built-in's item score over the tasks it ran with the algorithm.
        best: Per task, the built-in with the highest mean score there and that mean.
        scores: One row per run: ``task, contender, seed, run_id, score``.
        decisions: One row per (task, built-in), from the algorithm's side: ``decision``
            ("better" / "worse": the algorithm is better / worse than the built-in; "no
            difference found"), runs, means, the difference of means (algorithm minus
            built-in) with its 95% bootstrap CI and P(a run of the algorithm is better).
        notes: What was left out and why (tasks not applicable, references that cannot run).
        seconds: Wall time of the item (its runs not already stored, and its scoring).
        runs_started: Runs this item added to the store.
    """

    item: Item
    reason: str | None = None
    score: float | None = None
    reference_scores: dict[str, float] = dataclasses.field(default_factory=dict)
    best: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)
    scores: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    decisions: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    runs_started: int = 0

    @property
    def applicable(self) -> bool:
        return self.reason is None

    @property
    def best_score(self) -> float | None:
        """The best built-in's mean of each task, averaged over the tasks as the algorithm's
        own score is (over those where a built-in ran; None where none did)."""
        if not self.best:
            return None
        return float(np.mean([value for _, value in self.best.values()]))

    def summary_line(self) -> str:
        """``decided: better than q_learning on FrozenLake-v1; ...`` or the reason."""
        if not self.applicable:
            return f"not applicable: {self.reason}"
        if self.decisions.empty:
            return "no built-in to compare with"
        parts = [
            f"{r.decision} vs {r.reference} on {r.task}"
            if r.decision in ("better", "worse")
            else f"{r.reference} on {r.task}: {r.decision}"
            for r in self.decisions.itertuples()
        ]
        return "; ".join(parts)


@dataclasses.dataclass
class Card:
    """A card: the algorithm, its items, and what produced them.

    Attributes:
        algo: The algorithm scored.
        quick: Whether the quick battery ran.
        items: One result per battery item, in battery order.
        provenance: Versions, commit, code fingerprint, store, seeds, budgets, alpha.
        index: The HTML page, once written (:func:`write_card`).
    """

    algo: str
    quick: bool
    items: list[ItemResult]
    provenance: dict[str, Any]
    index: Path | None = None

    def table(self) -> pd.DataFrame:
        """One row per item: ``item, title, score``, the best built-in of each task
        (``best_reference``, their names) averaged as the score is (``best_score``),
        ``status, seconds, runs_started, definition``."""
        rows = []
        for result in self.items:
            names = " / ".join(dict.fromkeys(name for name, _ in result.best.values()))
            rows.append(
                {
                    "item": result.item.name,
                    "title": result.item.title,
                    "score": result.score,
                    "best_reference": names or None,
                    "best_score": result.best_score,
                    "status": result.summary_line(),
                    "seconds": result.seconds,
                    "runs_started": result.runs_started,
                    "definition": result.item.definition,
                }
            )
        return pd.DataFrame.from_records(rows)


# ----------------------------------------------------------------------------- specs
def _spec(
    algo: str,
    task: Task,
    seed: int,
    quick: bool,
    store: Path,
    own: Mapping[str, Any],
) -> RunSpec:
    params = get_algorithm(algo).params
    hparams = {k: v for k, v in task.common.items() if k in params}
    hparams.update(task.references.get(algo, {}))
    hparams.update(own)
    if task.logs is not None:
        hparams["dataset"] = task.logs.path(store, quick)
    budget: dict[str, int] = {}
    if task.steps is not None:
        budget["steps"] = task.steps.of(quick)
        every = budget["steps"] // task.evals
    else:
        assert task.episodes is not None  # a Task has one budget (the battery is ours)
        budget["episodes"] = task.episodes.of(quick)
        every = budget["episodes"] * mdp_horizon(task.env, task.env_kwargs) // task.evals
    return RunSpec(
        algo=algo,
        env=task.env,
        seed=seed,
        hparams=hparams,
        env_kwargs=dict(task.env_kwargs),
        eval_every=max(1, every),
        eval_episodes=task.eval_episodes,
        experiment=EXPERIMENT,
        **budget,
    )


def _task_specs(
    algo: str, task: Task, quick: bool, store: Path, own: Mapping[str, Any]
) -> list[RunSpec]:
    return [_spec(algo, task, seed, quick, store, own) for seed in range(task.seeds.of(quick))]


_BOX = re.compile(r"Box\((?:\[[^\]]*\]|[^,\[\]]+), (?:\[[^\]]*\]|[^,\[\]]+), (\([^)]*\)), (\w+)\)")


def _why_not(
    algo: str, item: Item, task: Task, quick: bool, store: Path, own: Mapping
) -> str | None:
    """Why ``algo`` cannot run ``task`` (None where it can): the registry's checks, as a
    RunSpec runs them (spaces, settings, dataset), before any run."""
    if item.requires == "dataset" and "dataset" not in get_algorithm(algo).params:
        return "it learns online only (it declares no 'dataset' hyperparameter)"
    try:
        _spec(algo, task, 0, quick, store, own)
    except SpecError as error:
        # The registry's reason, without its advice on wrapping envs (one clause), and a
        # Box by its shape (its bounds fill a line).
        text = str(error).split(": it ", 1)[-1].split("; ", 1)[0]
        return _BOX.sub(r"Box of shape \1 (\2)", text)
    return None


# ----------------------------------------------------------------------------- the card
def card(
    algo: str,
    *,
    store: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    quick: bool = False,
    items: Sequence[Item] | None = None,
    hparams: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    executor: str = "process",
    workers: int | None = None,
    progress: bool = False,
    imports: Sequence[str] = (),
    on_item: Callable[[ItemResult], None] | None = None,
) -> Card:
    """Scores ``algo`` on the battery, each item against the built-ins that can run it.

    Args:
        algo: A registered algorithm (a plugin's included).
        store: Result store shared by cards (default :func:`default_store`).
        out: Write the card there (``index.html``, ``card.tex``, figures); None: not written.
        quick: The quick battery (fewer seeds, shorter budgets).
        items: The battery (default :func:`rlcompare.studies.card_battery.battery`).
        hparams: The algorithm's own settings (over its defaults; a built-in scored on the
            card otherwise runs with its reference settings, so its runs are the references').
        alpha: Family-wise error of each item's decisions, split over its tasks.
        executor: ``serial``, ``process`` or ``ray`` (see :func:`rlcompare.sweep`).
        workers: Parallel workers.
        progress: Progress bars.
        imports: Modules every worker imports (plugins).
        on_item: Called with each item's result as it is done (the CLI prints it).

    Raises:
        SpecError: An unknown algorithm (naming the valid ones), bad hyperparameters, or an
            algorithm that can run none of the battery (naming each item's reason), before
            any run.
    """
    from rlcompare.spec.params import resolve_params
    from rlcompare.store.fingerprint import Fingerprints
    from rlcompare.versions import git_commit, package_versions

    algorithm = get_algorithm(algo)
    # Bad settings are named as such, not read as "cannot run this task" below.
    resolve_params(algorithm.params, dict(hparams or {}), algo)
    if not 0 < alpha < 1:
        raise SpecError(f"alpha = {alpha!r} is invalid; valid: a number in (0, 1)")
    store = Path(store) if store is not None else default_store()
    own = dict(hparams or {})
    chosen = list(items) if items is not None else list(battery(quick))
    plans: list[tuple[Item, list[Task], list[str]]] = []
    for item in chosen:
        tasks, why = [], []
        for task in item.tasks:
            reason = _why_not(algo, item, task, quick, store, own)
            if reason is None:
                tasks.append(task)
            else:
                why.append(f"{task.label}: {reason}")
        plans.append((item, tasks, why))
    if not any(tasks for _, tasks, _ in plans):
        listed = "; ".join(f"{item.name}: {' / '.join(why)}" for item, _, why in plans)
        raise SpecError(f"algo {algo!r} can run none of the card's battery ({listed})")
    fingerprint = Fingerprints()
    first = next(_spec(algo, tasks[0], 0, quick, store, own) for _, tasks, _ in plans if tasks)
    results = []
    for item, tasks, why in plans:
        if not tasks:
            result = ItemResult(item, reason="; ".join(why))
        else:
            result = _run_item(
                algo, item, tasks, why, quick, store, own, alpha, executor, workers, progress,
                imports,
            )  # fmt: skip
        results.append(result)
        if on_item is not None:
            on_item(result)
    provenance = {
        "algo": algo,
        "battery": "quick" if quick else "full",
        "code_fingerprint": fingerprint.of(first)["algo"],
        "rlcompare_fingerprint": fingerprint.of(first)["rlcompare"],
        "hparams": own,
        "commit": git_commit() or "unknown",
        "versions": {k: v for k, v in package_versions().items() if v},
        "store": str(store),
        "alpha": alpha,
        "tasks": _task_table(chosen, quick),
    }
    result = Card(algo, quick, results, provenance)
    if out is not None:
        write_card(result, out)
    return result


def _task_table(items: Sequence[Item], quick: bool) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        for task in item.tasks:
            if task.label in seen:
                continue
            budget = (
                f"{task.steps.of(quick)} steps"
                if task.steps is not None
                else f"{task.episodes.of(quick)} episodes"  # type: ignore[union-attr]
            )
            seen[task.label] = {
                "task": task.label,
                "env": task.env,
                "env_kwargs": dict(task.env_kwargs),
                "budget": budget,
                "seeds": f"0-{task.seeds.of(quick) - 1}",
                "evals": task.evals,
                "eval_episodes": task.eval_episodes,
                "references": ", ".join(task.references),
                "logs": task.logs.name if task.logs is not None else "",
            }
    return list(seen.values())


def _run_item(
    algo: str,
    item: Item,
    tasks: list[Task],
    why: list[str],
    quick: bool,
    store: Path,
    own: Mapping[str, Any],
    alpha: float,
    executor: str,
    workers: int | None,
    progress: bool,
    imports: Sequence[str],
) -> ItemResult:
    start = time.perf_counter()
    notes = [f"not applicable on {w}" for w in why]
    contenders: dict[str, list[str]] = {}
    specs: dict[tuple[str, str], list[RunSpec]] = {}
    for task in tasks:
        names = [algo]
        for ref in task.references:
            if ref == algo:
                continue
            reason = _why_not(ref, item, task, quick, store, {})
            if reason is None:
                names.append(ref)
            else:
                notes.append(f"{ref} cannot run {task.label}: {reason}")
        contenders[task.label] = names
        for name in names:
            specs[(task.label, name)] = _task_specs(
                name, task, quick, store, own if name == algo else {}
            )
    before = _run_files(store)
    every = [s for group in specs.values() for s in group]
    frame = sweep(
        every, store, executor=executor, workers=workers, progress=progress, imports=imports
    )
    after = _run_files(store)
    # New files, and stored runs replaced (made by code that has changed since).
    started = sum(1 for name, stamp in after.items() if before.get(name) != stamp)
    failed = frame.attrs.get("failed") or {}
    rows = []
    for task in tasks:
        if item.evidence is not None:
            ids = {s.run_id for n in contenders[task.label] for s in specs[(task.label, n)]}
            ok = frame[frame["run_id"].isin(ids - set(failed))]
            if not ok.empty:
                notes.append(item.evidence(ok, task))
        for name in contenders[task.label]:
            ids = [s.run_id for s in specs[(task.label, name)]]
            bad = [r for r in ids if r in failed]
            if bad:
                last = failed[bad[0]].strip().splitlines()[-1]
                if name == algo:
                    reason = f"{len(bad)} run(s) on {task.label} failed ({last})"
                    return ItemResult(
                        item,
                        reason=reason,
                        notes=notes,
                        seconds=time.perf_counter() - start,
                        runs_started=started,
                    )
                notes.append(f"{name} left out on {task.label}: {len(bad)} run(s) failed ({last})")
                continue
            task_rows = frame[frame["run_id"].isin(ids)]
            values = item.scorer(task_rows, task) if not task_rows.empty else pd.Series()
            seeds = {s.run_id: s.seed for s in specs[(task.label, name)]}
            for run_id, value in values.items():
                rows.append(
                    {
                        "task": task.label,
                        "contender": name,
                        "seed": seeds[run_id],
                        "run_id": run_id,
                        "score": float(value),
                    }
                )
    scores = pd.DataFrame.from_records(
        rows, columns=["task", "contender", "seed", "run_id", "score"]
    )
    mine = scores[scores["contender"] == algo]
    if mine.empty:
        reason = f"its runs record no {item.requires}" if item.requires else "no run scored"
        return ItemResult(
            item,
            reason=reason,
            scores=scores,
            notes=notes,
            seconds=time.perf_counter() - start,
            runs_started=started,
        )
    score = float(mine.groupby("task")["score"].mean().mean())
    references = {}
    for name in dict.fromkeys(scores["contender"]):
        if name == algo:
            continue
        shared = scores[scores["task"].isin(mine["task"])]
        own_rows = shared[shared["contender"] == name]
        references[name] = float(own_rows.groupby("task")["score"].mean().mean())
    best = {}
    for task in mine["task"].unique():
        means = scores[(scores["task"] == task) & (scores["contender"] != algo)]
        means = means.groupby("contender")["score"].mean()
        if not means.empty:
            best[task] = (str(means.idxmax()), float(means.max()))
    decisions = _decisions(algo, scores, alpha)
    return ItemResult(
        item,
        score=score,
        reference_scores=references,
        best=best,
        scores=scores,
        decisions=decisions,
        notes=notes,
        seconds=time.perf_counter() - start,
        runs_started=started,
    )


def _run_files(store: Path) -> dict[str, int]:
    """Each stored run's file and its modification time (ns)."""
    return {p.name: p.stat().st_mtime_ns for p in stored_runs(store)} if store.exists() else {}


def _decisions(algo: str, scores: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """The algorithm against each built-in on each task, by the per-run scores (higher is
    better), from the algorithm's side: the one-interim test of
    :func:`rlcompare.studies.compare.stored_verdict` (``SequentialComparison`` with K = 1,
    every stored run of each contender counted), family-wise ``alpha`` over the item's tasks
    and pairs. Effect sizes: the difference of means with a 95% percentile bootstrap CI
    (scipy, seeded) and P(a run of the algorithm scores higher, ties half), the
    Mann-Whitney point estimate (rliable's bootstrap of its CI cost ~6 s a pair here, more
    than the runs of a quick card).
    """
    from rlcompare.analysis.sequential import SequentialComparison

    tasks = list(dict.fromkeys(scores["task"]))
    records = []
    for task in tasks:
        rows = scores[scores["task"] == task]
        block = {
            name: rows.loc[rows["contender"] == name].sort_values("seed")["score"].to_numpy()
            for name in dict.fromkeys(rows["contender"])
        }
        block = {name: values for name, values in block.items() if values.size >= 2}
        if algo not in block or len(block) < 2:
            continue
        names = list(block)
        test = SequentialComparison(
            names,
            [(algo, name) for name in names if name != algo],
            n={name: len(values) for name, values in block.items()},
            K=1,
            alpha=alpha / len(tasks),
            higher_is_better=True,
        )
        test.update(block)
        for (_, reference), decision in test.decisions.items():
            mine, theirs = block[algo], block[reference]
            records.append(
                {
                    "task": task,
                    "reference": reference,
                    "decision": decision,
                    "runs_algo": mine.size,
                    "runs_reference": theirs.size,
                    "mean_algo": float(mine.mean()),
                    "mean_reference": float(theirs.mean()),
                    **_difference(mine, theirs),
                    "p_improvement": _p_improvement(mine, theirs),
                }
            )
    return pd.DataFrame.from_records(records, columns=DECISION_COLUMNS)


def _difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of ``a`` minus mean of ``b`` with its 95% percentile bootstrap CI (seeded)."""
    difference, low, high = difference_interval(a, b)
    return {"difference": difference, "difference_low": low, "difference_high": high}


def _p_improvement(a: np.ndarray, b: np.ndarray) -> float:
    """P(a run of ``a`` scores higher than one of ``b``), ties counted half."""
    wins = (a[:, None] > b[None, :]).mean() + 0.5 * (a[:, None] == b[None, :]).mean()
    return float(wins)


def write_card(result: Card, out: str | os.PathLike[str]) -> Path:
    """Writes ``index.html``, ``card.tex`` and the figures (PNG and PDF) of ``result`` into
    ``out``; returns the index's path (also kept as ``result.index``)."""
    from rlcompare.viz import card as view

    index = view.write_card_folder(
        out,
        algo=result.algo,
        table=result.table(),
        items=[
            {
                "name": r.item.name,
                "title": r.item.title,
                "definition": r.item.definition,
                "reason": r.reason,
                "score": r.score,
                "reference_scores": r.reference_scores,
                "scores": r.scores,
                "decisions": r.decisions,
                "notes": r.notes,
                "seconds": r.seconds,
            }
            for r in result.items
        ],
        provenance=result.provenance,
    )
    result.index = index
    return index
