"""The suite's card step: the capability cards a profile names, written beside its report.

A profile of ``notebooks/profiles.yaml`` may hold a ``cards:`` list, each entry a mapping::

    cards:
      - {algo: q_learning, quick: true}
      - {algo: q_lambda, plugin: examples/q_lambda.py, quick: true}

``algo`` is a registered algorithm (required), ``plugin`` a ``.py`` file that registers it
(relative to the project, the folder above ``notebooks/``), ``quick`` the quick battery
(default false, as ``rlcompare card``), ``executor`` the card's executor (default
``process``; the suite's ``--executor`` wins, as for the notebooks). The suite checks every
entry before any notebook runs, writes each card after the notebooks into
``data/executed/<profile>/cards/<algo>/`` (``rlcompare card``'s folder: ``index.html``,
``card.tex``, figures), and its index links them. Their runs go to one store per data root,
``<data>/card_store`` (``data/card_store`` for default and full, ``data/smoke/card_store`` for
smoke), beside the notebooks' stores: the built-ins' reference runs are made once and every
later suite reuses every stored run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlcompare.errors import SpecError, choices_text

# The profile key that lists cards, and the name that selects them in `suite --only`.
CARDS_KEY = "cards"
CARD_FIELDS = ("algo", "plugin", "quick", "executor")
# The cards' result store, under the suite's data root (beside the notebooks' stores).
CARD_STORE = "card_store"
DEFAULT_EXECUTOR = "process"


@dataclass(frozen=True)
class CardRun:
    """One card a profile names.

    Attributes:
        algo: The registered algorithm scored.
        quick: The quick battery (fewer seeds, shorter budgets).
        executor: ``serial``, ``process`` or ``ray``.
        plugin: The ``.py`` file that registers ``algo`` (None: a built-in or an installed
            plugin).
    """

    algo: str
    quick: bool
    executor: str
    plugin: Path | None = None


def plan_cards(
    profile: str,
    entries: Any,
    project: Path,
    executor: str | None = None,
) -> list[CardRun]:
    """Checks a profile's ``cards:`` entries and loads their plugins, before any run.

    Args:
        profile: The profile's name (for messages).
        entries: The profile's ``cards:`` value (None: no cards).
        project: The folder a ``plugin`` path is relative to.
        executor: The suite's ``--executor`` (over each entry's).

    Raises:
        SpecError: A malformed entry, an unknown field, a plugin file that is missing or does
            not import, an unknown algo (naming the valid ones), or an algo named twice.
    """
    from rlcompare.spec.registry import get_algorithm
    from rlcompare.sweeps.executors import EXECUTORS

    where = f"profile {profile!r}, {CARDS_KEY}"
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SpecError(
            f"{where}: {entries!r} is not a list; valid: a list of mappings with "
            f"{', '.join(CARD_FIELDS)}"
        )
    cards: list[CardRun] = []
    for entry in entries:
        if not isinstance(entry, Mapping) or "algo" not in entry:
            raise SpecError(
                f"{where}: {entry!r} names no algo; valid: a mapping with "
                f"{', '.join(CARD_FIELDS)} (algo required)"
            )
        unknown = sorted(set(entry) - set(CARD_FIELDS))
        if unknown:
            raise SpecError(
                f"{where}: unknown field {unknown[0]!r} of the card of {entry['algo']!r}; "
                f"{choices_text(CARD_FIELDS, unknown[0])}"
            )
        quick = entry.get("quick", False)
        if not isinstance(quick, bool):
            raise SpecError(f"{where}: quick = {quick!r} is invalid; valid: true, false")
        chosen = executor or entry.get("executor") or DEFAULT_EXECUTOR
        if chosen not in EXECUTORS:
            raise SpecError(f"{where}: executor {chosen!r}; {choices_text(EXECUTORS, chosen)}")
        plugin = _load_plugin(where, entry.get("plugin"), project)
        algo = entry["algo"]
        try:
            get_algorithm(algo)
        except SpecError as error:
            raise SpecError(f"{where}: {error}") from None
        if any(card.algo == algo for card in cards):
            raise SpecError(f"{where}: algo {algo!r} is named twice; valid: one card per algo")
        cards.append(CardRun(algo, quick, chosen, plugin))
    return cards


def _load_plugin(where: str, plugin: Any, project: Path) -> Path | None:
    """Imports the plugin file as notebook 08 does (by path, sent to workers by value)."""
    from rlcompare.experiments.your_algorithm import load_plugin

    if plugin is None:
        return None
    path = project / str(plugin)
    if not str(plugin).endswith(".py") or not path.is_file():
        raise SpecError(
            f"{where}: plugin {plugin!r} is not a Python file (looked for {path}); valid: the "
            "path of a .py file, relative to the project"
        )
    try:
        load_plugin(path)
    except Exception as error:  # whatever the user's file raises, named before any run
        raise SpecError(
            f"{where}: plugin {plugin!r} does not import ({type(error).__name__}: {error})"
        ) from error
    return path


def card_index(executed_dir: Path, card: CardRun) -> Path:
    """Where the suite writes ``card``'s page: ``<executed_dir>/cards/<algo>/index.html``."""
    return executed_dir / CARDS_KEY / card.algo / "index.html"


def run_cards(cards: Sequence[CardRun], executed_dir: Path, store: Path) -> list[str]:
    """Writes each card into ``<executed_dir>/cards/<algo>/``, its runs in ``store``; prints
    each card's time and the runs it started. A failing card is reported and the others run.

    Returns:
        The algos whose card failed.
    """
    from rlcompare.studies.card import card

    failures = []
    for entry in cards:
        battery = "quick" if entry.quick else "full"
        out = card_index(executed_dir, entry).parent
        print(f"[suite] card {entry.algo} ({battery} battery) ...", flush=True)
        began = time.perf_counter()
        try:
            made = card(
                entry.algo, store=store, out=out, quick=entry.quick, executor=entry.executor
            )
        except Exception as error:  # a failing card must not stop the others
            failures.append(entry.algo)
            print(
                f"[suite] FAILED card {entry.algo}: {type(error).__name__}: {error}",
                file=sys.stderr,
                flush=True,
            )
            continue
        started = sum(result.runs_started for result in made.items)
        print(
            f"[suite] card {entry.algo} done in {time.perf_counter() - began:.0f} s "
            f"({started} runs started)",
            flush=True,
        )
    return failures
