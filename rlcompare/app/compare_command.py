"""``rlcompare compare``: a verdict from the command line.

With a budget (``--steps`` or ``--episodes``) it runs :func:`rlcompare.compare`, adding seeds
interim by interim; without one it reads the runs already in ``--store`` as one interim
(:func:`rlcompare.studies.compare.stored_verdict`) and says so.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rlcompare.errors import SpecError

COLUMNS = ["env", "a", "b", "decision", "interim", "runs_a", "runs_b", "difference"]
COLUMNS += ["difference_low", "difference_high", "p_improvement"]


def add_compare_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Adds ``compare`` through the CLI's ``command`` factory."""
    from rlcompare.spec.runspec import EVAL_EPISODES
    from rlcompare.studies.scoring import SCORES
    from rlcompare.sweeps.executors import EXECUTORS

    parser = command(
        "compare",
        help="decide who beats whom (sequential test, family-wise error alpha)",
        description=__doc__,
    )
    parser.add_argument("--algo", required=True, help="comma-separated contenders (two or more)")
    parser.add_argument("--env", required=True, help="one env or a comma-separated list")
    parser.add_argument("--store", required=True)
    parser.add_argument("--baseline", help="compare every algo against this one only")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise error")
    parser.add_argument("--n", type=int, default=5, help="runs per contender per interim")
    parser.add_argument("--K", type=int, default=5, help="interims at most")
    parser.add_argument("--steps", type=int, help="budget; without a budget: stored runs only")
    parser.add_argument("--episodes", type=int)
    parser.add_argument("--score", default="final", choices=SCORES)
    parser.add_argument("--metric", help="recorded metric to score (default: exact if recorded)")
    parser.add_argument("--threshold", type=float, help="level for --score steps_to_threshold")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[ALGO.]NAME=VALUE",
        help="hyperparameter of every algo of --algo, or of ALGO only (repeatable)",
    )
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    parser.add_argument("--executor", default="process", choices=EXECUTORS)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(fn=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """Prints the decisions table and the runs each contender used."""
    from rlcompare.app.settings import name_values, split_sets
    from rlcompare.spec.params import parse_params
    from rlcompare.spec.registry import get_algorithm
    from rlcompare.store.results import load_results
    from rlcompare.studies.compare import compare, stored_verdict

    algos = [a.strip() for a in args.algo.split(",") if a.strip()]
    envs = [e.strip() for e in args.env.split(",") if e.strip()]
    options: dict[str, Any] = {
        "alpha": args.alpha,
        "baseline": args.baseline,
        "score": args.score,
        "metric": args.metric,
        "threshold": args.threshold,
    }
    if args.steps is None and args.episodes is None:
        if args.set:
            raise SpecError("--set needs a budget (--steps or --episodes): it sets new runs")
        frame = load_results(args.store)
        if frame.empty:
            raise SpecError(
                f"--store {args.store!r} holds no runs; give --steps or --episodes to run them"
            )
        verdict = stored_verdict(frame, algos=algos, envs=envs, **options)
    else:
        for algo in algos:
            get_algorithm(algo)  # an unknown algo is named before its --set values are read
        sets = split_sets(name_values(args.set, "--set"), algos)
        hparams = {a: parse_params(get_algorithm(a).params, sets[a], a) for a in algos}
        verdict = compare(
            algos,
            envs,
            args.store,
            n=args.n,
            K=args.K,
            steps=args.steps,
            episodes=args.episodes,
            hparams=hparams,
            executor=args.executor,
            workers=args.workers,
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes,
            progress=not args.quiet,
            **options,
        )
    p, metric = verdict.parameters, verdict.decisions["metric"].iloc[0]
    print(f"{p['family']}: alpha {p['alpha']}, score {args.score} of {metric}")
    print(verdict.decisions[COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nruns used:")
    print(verdict.runs_used().to_string(index=False))
    return 0
