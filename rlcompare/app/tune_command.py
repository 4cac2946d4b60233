"""``rlcompare tune``: the same tuning budget for every algorithm, from the command line.

Runs :func:`rlcompare.tune` and prints the configuration chosen for each algorithm (per env,
or one for every env with ``--across-envs``), the budget each algorithm got (runs and env
steps, counted from the store), and the sensitivity of each (Adkins et al. 2024) when more
than one env was tuned.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rlcompare.errors import SpecError


def add_tune_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Adds ``tune`` through the CLI's ``command`` factory."""
    from rlcompare.spec.runspec import EVAL_EPISODES
    from rlcompare.sweeps.executors import EXECUTORS

    parser = command(
        "tune",
        help="tune every algo with the same budget, re-run the choice on fresh seeds",
        description=__doc__,
    )
    parser.add_argument("--algo", required=True, help="comma-separated algorithms")
    parser.add_argument("--env", required=True, help="one env or a comma-separated list")
    parser.add_argument("--store", required=True)
    parser.add_argument("--budget", type=int, required=True, help="configurations per algo")
    parser.add_argument("--steps", type=int, help="env steps of each run")
    parser.add_argument("--episodes", type=int, help="training episodes of each run")
    parser.add_argument("--tuning-seeds", default="3", help="N, A-B or A,B,C (default 3)")
    parser.add_argument(
        "--eval-seeds", default="5", help="N (after the tuning seeds), A-B or A,B,C"
    )
    parser.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="[ALGO.]NAME=LOW:HIGH|A,B,C",
        help="a dimension to search (repeatable); default: each algo's declared search ranges",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[ALGO.]NAME=VALUE",
        help="fixed hyperparameter, not tuned (repeatable)",
    )
    parser.add_argument(
        "--across-envs", action="store_true", help="one configuration for every env"
    )
    parser.add_argument("--score", default="iqm", choices=("iqm", "auc"))
    parser.add_argument("--metric", help="recorded metric to score (default: exact if recorded)")
    parser.add_argument("--halving", type=int, help="successive halving factor (>= 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the configurations drawn")
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    parser.add_argument("--experiment", default="tune")
    parser.add_argument("--executor", default="process", choices=EXECUTORS)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(fn=cmd_tune)


def seed_list(text: str, flag: str) -> int | list[int]:
    """``N`` (an int), ``A-B`` (inclusive) or ``A,B,C``."""
    try:
        if "," in text:
            return [int(v) for v in text.split(",") if v.strip()]
        if "-" in text:
            low, high = (int(v) for v in text.split("-", 1))
            return list(range(low, high + 1))
        return int(text)
    except ValueError:
        raise SpecError(f"{flag} {text!r} is invalid; valid: N, A-B or A,B,C") from None


def parse_space(items: list[str], algos: list[str]) -> dict[str, dict[str, Any]] | None:
    """``--space`` items as ``{algo: {name: (low, high) | [values]}}`` (None when none is
    given: every algo searches its declared ranges)."""
    from rlcompare.app.settings import name_values, split_sets
    from rlcompare.spec.registry import get_algorithm

    if not items:
        return None
    per_algo = split_sets(name_values(items, "--space"), algos)
    space: dict[str, dict[str, Any]] = {}
    for algo, given in per_algo.items():
        table = get_algorithm(algo).params
        dims: dict[str, Any] = {}
        for name, text in given.items():
            if name not in table:
                continue  # named for another algo only; build_space names a stray one
            param = table[name]
            if ":" in text and param.kind in ("int", "float"):
                low, high = text.split(":", 1)
                dims[name] = (param.parse(low), param.parse(high))
            else:
                dims[name] = [param.parse(v) for v in text.split(",")]
        if dims:
            space[algo] = dims
    return space


def cmd_tune(args: argparse.Namespace) -> int:
    """Prints the chosen configurations, the budget each algorithm got, and sensitivity."""
    from rlcompare.app.settings import name_values, split_sets
    from rlcompare.spec.params import parse_params
    from rlcompare.spec.registry import get_algorithm
    from rlcompare.studies.tune import tune

    algos = [a.strip() for a in args.algo.split(",") if a.strip()]
    envs = [e.strip() for e in args.env.split(",") if e.strip()]
    for algo in algos:
        get_algorithm(algo)  # an unknown algo is named before its --set values are read
    sets = split_sets(name_values(args.set, "--set"), algos)
    fixed = {a: parse_params(get_algorithm(a).params, sets[a], a) for a in algos}
    result = tune(
        algos,
        envs,
        args.store,
        budget=args.budget,
        steps=args.steps,
        episodes=args.episodes,
        space=parse_space(args.space, algos),
        tuning_seeds=seed_list(args.tuning_seeds, "--tuning-seeds"),
        eval_seeds=seed_list(args.eval_seeds, "--eval-seeds"),
        executor=args.executor,
        workers=args.workers,
        score=args.score,
        metric=args.metric,
        per_env=not args.across_envs,
        halving=args.halving,
        hparams=fixed,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        seed=args.seed,
        experiment=args.experiment,
        progress=not args.quiet,
    )
    print(report(result))
    return 0


def report(result: Any) -> str:
    """The text ``rlcompare tune`` prints for a :class:`rlcompare.TuneResult`."""
    p = result.parameters
    lines = [
        f"tuned {p['mode'].replace('_', ' ')}: {p['budget']} configurations x "
        f"{len(p['tuning_seeds'])} tuning seeds (seeds {_seeds(p['tuning_seeds'])}) per "
        f"algo and env, {p['unit']} per run: "
        + ", ".join(f"{env} {n}" for env, n in p["budget_per_run"].items()),
        f"score: {p['score']} of "
        + ", ".join(f"{env} {m}" for env, m in p["metric"].items())
        + f"; chosen configurations re-run on eval seeds {_seeds(p['eval_seeds'])}",
        "search spaces:",
        *(f"  {text}" for text in p["spaces"].values()),
        "",
        "chosen (config 0 is the defaults):" if p["include_default"] else "chosen:",
    ]
    hp = [c for c in result.chosen.columns if c.startswith("hp.")]
    shown = result.chosen[["algo", "env", "config", "tuning_score", *hp]]
    lines.append(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    lines += ["", "budget each algo got (counted from the store):"]
    lines.append(result.budget.to_string(index=False))
    if result.table["env"].nunique() > 1:
        lines += ["", "sensitivity (Adkins et al. 2024; normalised, per-env tuned - one setting):"]
        lines.append(result.sensitivity().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return "\n".join(lines)


def _seeds(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))
