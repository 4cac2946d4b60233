"""``rlcompare card ALGO``: what a registered algorithm is good at, capability by capability.

Runs the card's battery (:func:`rlcompare.studies.card.card`) and writes ``index.html`` and
``card.tex`` (with the figures) into ``--out``. The built-ins' reference runs are kept in
``--store`` (default ``~/.cache/rlcompare/card``, or ``$RLCOMPARE_CARD_STORE``) and reused by
every later card; the algorithm's own runs land there too, rerun when its code changes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_card_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Adds ``card`` through the CLI's ``command`` factory."""
    from rlcompare.sweeps.executors import EXECUTORS

    parser = command(
        "card",
        help="score an algorithm capability by capability against the built-ins",
        description=__doc__,
    )
    parser.add_argument("algo", help="a registered algorithm (a --plugin module's included)")
    parser.add_argument("--quick", action="store_true", help="fewer seeds, shorter budgets")
    parser.add_argument("--out", help="output folder (default: card_<ALGO>[_quick])")
    parser.add_argument("--store", help="result store (default: ~/.cache/rlcompare/card)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="hyperparameter of ALGO (repeatable; default: its defaults)",
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise error per item")
    parser.add_argument("--executor", default="process", choices=EXECUTORS)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--progress", action="store_true", help="progress bars")
    parser.set_defaults(fn=cmd_card)


def cmd_card(args: argparse.Namespace) -> int:
    """Prints each item's time, score and decisions as it is done, then the output path."""
    import os
    import time

    from rlcompare.app.settings import name_values
    from rlcompare.spec.params import parse_params
    from rlcompare.spec.registry import PLUGINS_ENV, get_algorithm
    from rlcompare.studies.card import ItemResult, card, default_store

    algorithm = get_algorithm(args.algo)  # an unknown algo is named before anything else
    hparams: dict[str, Any] = parse_params(
        algorithm.params, name_values(args.set, "--set"), args.algo
    )
    out = args.out or f"card_{args.algo}{'_quick' if args.quick else ''}"
    store = args.store or str(default_store())
    plugins = [m for m in os.environ.get(PLUGINS_ENV, "").split(",") if m]
    print(f"card of {args.algo} ({'quick' if args.quick else 'full'} battery), store {store}")
    start = time.perf_counter()

    def show(result: ItemResult) -> None:
        score = "n/a" if result.score is None else f"{result.score:.2f}"
        names = " / ".join(dict.fromkeys(name for name, _ in result.best.values()))
        best = result.best_score
        ref = f" (best built-in per task: {names} {best:.2f})" if best is not None else ""
        print(
            f"  {result.item.name:<22} {result.seconds:6.1f} s  score {score}{ref}; "
            f"{result.summary_line()}",
            flush=True,
        )

    made = card(
        args.algo,
        store=store,
        out=out,
        quick=args.quick,
        hparams=hparams,
        alpha=args.alpha,
        executor=args.executor,
        workers=args.workers,
        progress=args.progress,
        imports=plugins,
        on_item=show,
    )
    print(f"{time.perf_counter() - start:.1f} s in all; card written to {made.index}")
    print(f"  LaTeX appendix: {made.index.parent / 'card.tex'}")  # type: ignore[union-attr]
    return 0
