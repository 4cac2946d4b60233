"""`rlcompare ...`: list algorithms and envs, run sweeps, summarize stores, decide who beats whom
(``compare``), run the suite.

Bad input exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from rlcompare.app.settings import name_values, split_sets
from rlcompare.errors import SpecError, StoreError


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` -> 0..9, ``"1,4,7"`` -> [1, 4, 7], ``"3"`` -> [3]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                low, high = part.split("-", 1)
                seeds.extend(range(int(low), int(high) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise SpecError(f"--seeds {text!r} is invalid; valid: N, A-B or A,B,C") from None
    if not seeds or min(seeds) < 0:
        raise SpecError(f"--seeds {text!r} is invalid; valid: non-negative N, A-B or A,B,C")
    return seeds


def cmd_algos(args: argparse.Namespace) -> int:
    from rlcompare.spec.registry import algorithms, get_algorithm

    for name in algorithms():
        algorithm = get_algorithm(name)
        print(f"{name}  ({algorithm.family}): {algorithm.summary}")
        width = max((len(p) for p in algorithm.params), default=0)
        for param_name, param in algorithm.params.items():
            print(
                f"    {param_name:<{width}}  default {param.default!r:<16} "
                f"{param.valid_text():<34} {param.doc}".rstrip()
            )
        print()
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    import pandas as pd

    from rlcompare.envs.make import FEATURED_ENVS, env_info

    rows = []
    for env_id in FEATURED_ENVS:
        try:
            info = env_info(env_id)
        except Exception as error:  # an env whose optional dependency is missing
            rows.append({"env": env_id, "observations": f"unavailable: {error}"})
            continue
        rows.append(
            {
                "env": env_id,
                "observations": str(info.observation_space),
                "actions": str(info.action_space),
                "step limit": info.max_episode_steps or "none",
            }
        )
    print(pd.DataFrame(rows).to_string(index=False, justify="left"))
    print("Any other registered gymnasium id works too.")
    return 0


def summary_table(frame: Any, reps: int | None = 2000) -> Any:
    """Per algo and env: runs, final eval return mean and IQM, wall time; with ``reps``, the
    mean's 95% stratified bootstrap CI (``mean_low``, ``mean_high``) at ``reps`` replications.

    Scores are those of :func:`rlcompare.analysis.stats.final_scores` (a diverged run counts
    at its worst value). ``mean`` is the mean over tasks of per-task means and ``iqm`` the
    IQM over all runs, as in :func:`rlcompare.analysis.stats.summary`. Without ``reps``
    nothing imports the statistics module (rliable: about 1 s) and nothing is resampled.
    """
    if reps is None:
        table = point_summary(frame)
    else:
        from rlcompare.analysis import stats

        table = stats.summary(frame, metric="eval_return", by=["env", "algo"], reps=reps)
    wall = (
        frame[frame["metric"] == "wall_time_s"]
        .groupby(["env", "algo", "run_id"])["value"]
        .max()
        .groupby(["env", "algo"])
        .mean()
        .rename("wall_time_s")
    )
    table = table.join(wall, on=["env", "algo"])
    columns = ["env", "algo", "runs", "mean", "mean_low", "mean_high", "iqm", "wall_time_s"]
    return table[[c for c in columns if c in table.columns]]


def point_summary(frame: Any, metric: str = "eval_return") -> Any:
    """``stats.summary``'s points (runs, mean, iqm) per env and algo, without its intervals
    and without importing it: the final scores follow ``stats.final_scores``' rule (a
    diverged run counts at its worst value, ``failures.worst_values``)."""
    import pandas as pd

    from rlcompare.analysis.failures import diverged_runs, worst_values
    from rlcompare.analysis.matrices import fast_iqm, metric_rows, run_info, score_matrices
    from rlcompare.runner import schema

    rows = metric_rows(frame, metric)
    # The last row as it is (NaN included, then left out with a warning), as final_scores'
    # tail(1) takes it; groupby's last() would skip a NaN to an earlier value.
    last = rows.drop_duplicates("run_id", keep="last").set_index("run_id")["value"]
    scores = run_info(rows).join(last.rename("score"))
    diverged = rows.loc[rows["run_id"].isin(diverged_runs(frame))]
    if len(diverged):
        worst = worst_values(diverged, schema.higher_is_better(metric, None))
        scores.loc[worst.index, "score"] = worst
    by = ["env", "algo"]
    records = []
    for key, (matrix, _) in score_matrices(scores, by, ["score"]).items():
        matrix = matrix[..., 0]
        record = dict(zip(by, key, strict=True))
        record.update(runs=matrix.size, mean=float(matrix.mean(axis=0).mean()))
        record["iqm"] = fast_iqm(matrix)
        records.append(record)
    return pd.DataFrame.from_records(records)


def cmd_run(args: argparse.Namespace) -> int:
    from rlcompare.spec.params import parse_literal, parse_params
    from rlcompare.spec.registry import get_algorithm
    from rlcompare.spec.runspec import grid
    from rlcompare.sweeps.driver import sweep
    from rlcompare.sweeps.nodes import node_report

    if (args.steps is None) == (args.episodes is None):
        raise SpecError("give exactly one of --steps / --episodes")
    seeds = parse_seeds(args.seeds)
    env_kwargs = {k: parse_literal(v) for k, v in name_values(args.env_set, "--env-set").items()}
    algos = [algo.strip() for algo in args.algo.split(",")]
    for algo in algos:
        get_algorithm(algo)  # an unknown algo is named before its --set values are read
    sets = split_sets(name_values(args.set, "--set"), algos)
    specs = []
    for algo in algos:
        specs += grid(
            algo,
            args.env,
            seeds,
            # The algorithm's own Param table parses the values; RunSpec validates them.
            hparams=parse_params(get_algorithm(algo).params, sets[algo], algo),
            env_kwargs=env_kwargs,
            steps=args.steps,
            episodes=args.episodes,
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes,
            experiment=args.experiment,
        )
    options: dict[str, Any] = {"address": args.ray_address} if args.ray_address else {}
    if args.ray_resources:
        try:
            options["resources"] = json.loads(args.ray_resources)
        except ValueError as error:
            raise SpecError(
                f"--ray-resources {args.ray_resources!r} is not JSON ({error}); valid: e.g. "
                "'{\"far\": 1}'"
            ) from None
    frame = sweep(
        specs,
        args.store,
        executor=args.executor,
        workers=args.workers,
        progress=not args.quiet,
        **options,
    )
    if len(frame):
        print(summary_table(frame).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(node_report(args.store, [spec.run_id for spec in specs]))
    failed = frame.attrs.get("failed", {})
    for run_id, reason in failed.items():
        print(f"FAILED {run_id}: {reason.strip().splitlines()[-1]}", file=sys.stderr)
    return 1 if failed else 0


# Bootstrap replications of `show --ci`: what `show` always computed before it printed.
SHOW_REPS = 2000


def cmd_show(args: argparse.Namespace) -> int:
    from rlcompare.store.results import load_results, stored_statuses

    if args.reps is not None and args.reps < 1:
        raise SpecError(f"--reps {args.reps} is invalid; valid: an integer >= 1 (e.g. 2000)")
    statuses = stored_statuses(args.store)
    if not statuses:
        raise StoreError(f"no results in {args.store!r}")
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    print(
        f"{args.store}: {len(statuses)} runs ("
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + ")"
    )
    frame = load_results(args.store, on_corrupt="skip")
    if not len(frame):
        return 0
    reps = args.reps if args.reps is not None else (SHOW_REPS if args.ci else None)
    table = summary_table(frame, reps=reps)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if reps is None:
        print(
            "mean, iqm: point estimates without intervals; --ci adds the mean's 95% "
            f"bootstrap interval (--reps N, default {SHOW_REPS})"
        )
    else:
        print(f"mean_low, mean_high: 95% stratified bootstrap interval, {reps} replications")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    from rlcompare.app.suite import CHECK_OUTPUTS_FILE, SMOKE_PROFILE, run_suite

    if args.record_check_outputs and args.profile != SMOKE_PROFILE:
        raise SpecError(
            f"--record-check-outputs records the {SMOKE_PROFILE} profile; valid: --profile "
            f"{SMOKE_PROFILE}"
        )
    return run_suite(
        profile=args.profile,
        only=args.only,
        executor=args.executor,
        ray_address=args.ray_address,
        record_check_outputs_to=CHECK_OUTPUTS_FILE if args.record_check_outputs else None,
    )


def use_working_directory() -> None:
    """Puts the working directory first on ``sys.path``, as ``python -m`` does (the
    ``rlcompare`` script's own folder is there instead), so that ``--plugin pkg.module`` and
    ``"module:Env-v0"`` ids find modules beside the user. Spawned worker processes inherit
    ``sys.path``; notebook kernels get it through ``PYTHONPATH`` (``use_plugins``)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _export_path(folder: str) -> None:
    known = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if folder not in known:
        os.environ["PYTHONPATH"] = os.pathsep.join([*known, folder])


def plugin_module(plugin: str) -> str:
    """The module name of a ``--plugin`` value: a dotted module name as it is, a ``.py``
    file path as its file name (``../x/my_algos.py`` -> ``my_algos``) with its folder put on
    ``sys.path`` and ``PYTHONPATH``, so that worker processes and kernels import the same
    module under the same name.

    Raises:
        SpecError: a path that is not a file, or whose name is already another module's.
    """
    if not (plugin.endswith(".py") or os.sep in plugin or "/" in plugin):
        return plugin
    path = os.path.abspath(plugin)
    name = os.path.splitext(os.path.basename(path))[0]
    if not plugin.endswith(".py") or not os.path.isfile(path):
        raise SpecError(
            f"--plugin {plugin!r} is not a Python file (looked for {path}); valid: a module "
            "name (mypackage.algos) or the path of a .py file"
        )
    if not name.isidentifier():
        raise SpecError(
            f"--plugin {plugin!r}: {name!r} cannot be a module name; valid: a .py file "
            "whose name is a Python identifier (letters, digits, _)"
        )
    # Another module of that name (stdlib, installed, imported) would be imported instead,
    # here or in a worker; or the file would shadow it for the whole process.
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    origin = getattr(found, "origin", None)
    if found is not None and (origin is None or os.path.abspath(origin) != path):
        raise SpecError(
            f"--plugin {plugin!r}: a module named {name!r} already exists "
            f"({origin or 'built-in'}); valid: rename the file"
        )
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    _export_path(folder)
    return name


def use_plugins(plugins: Sequence[str]) -> None:
    """Imports ``plugins`` (module names or ``.py`` paths) here and names them in the
    environment, so that notebook kernels and worker processes started from this command
    import them too."""
    from rlcompare.spec.registry import PLUGINS_ENV, load_plugins

    if not plugins:
        return
    _export_path(os.getcwd())
    modules = [plugin_module(plugin) for plugin in plugins]
    load_plugins(modules)
    known = [m for m in os.environ.get(PLUGINS_ENV, "").split(",") if m]
    os.environ[PLUGINS_ENV] = ",".join(dict.fromkeys([*known, *modules]))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept importable for documentation and tests)."""
    from rlcompare.app.card_command import add_card_command
    from rlcompare.app.compare_command import add_compare_command
    from rlcompare.app.suite import DEFAULT_PROFILE, PROFILES
    from rlcompare.app.tune_command import add_tune_command
    from rlcompare.spec.runspec import EVAL_EPISODES
    from rlcompare.sweeps.executors import EXECUTORS

    parser = argparse.ArgumentParser(prog="rlcompare", description=__doc__)
    plugin_help = (
        "import MODULE first (a module name, found from the working directory as with "
        "python -m, or a .py file path); it registers algorithms or envs; repeatable"
    )
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help=plugin_help)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        # --plugin after the command too (`rlcompare run --plugin m ...`), kept apart so that
        # it adds to the ones given before the command instead of replacing them.
        parser = sub.add_parser(name, **kwargs)
        parser.add_argument(
            "--plugin",
            action="append",
            default=[],
            dest="command_plugin",
            metavar="MODULE",
            help=plugin_help,
        )
        return parser

    command("algos", help="algorithms with their hyperparameters").set_defaults(fn=cmd_algos)
    command("envs", help="featured environments").set_defaults(fn=cmd_envs)

    run = command("run", help="run a sweep and print a summary")
    run.add_argument("--algo", required=True, help="one algo or a comma-separated list")
    run.add_argument("--env", required=True)
    run.add_argument("--seeds", default="0", help="N, A-B or A,B,C (default 0)")
    run.add_argument("--steps", type=int)
    run.add_argument("--episodes", type=int)
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[ALGO.]NAME=VALUE",
        help="hyperparameter of every algo of --algo, or of ALGO only (repeatable)",
    )
    run.add_argument(
        "--env-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="env kwarg (repeatable)",
    )
    run.add_argument("--eval-every", type=int)
    run.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    run.add_argument("--experiment", default="default")
    run.add_argument("--store", required=True)
    run.add_argument("--executor", default="process", choices=EXECUTORS)
    run.add_argument("--workers", type=int)
    run.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS or local)")
    run.add_argument(
        "--ray-resources",
        help="custom Ray resources each task needs, as JSON (e.g. '{\"far\": 1}')",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(fn=cmd_run)

    show = command("show", help="summarize a result store")
    show.add_argument("store")
    show.add_argument(
        "--ci",
        action="store_true",
        help="add the mean's 95%% bootstrap interval (slower: resamples every group)",
    )
    show.add_argument(
        "--reps",
        type=int,
        metavar="N",
        help="bootstrap replications of the interval (implies --ci; default 2000)",
    )
    show.set_defaults(fn=cmd_show)

    suite = command("suite", help="execute the notebooks with papermill")
    suite.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES)
    suite.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="NAME",
        help="these notebooks only, and the profile's cards if 'cards' is named (default: all)",
    )
    suite.add_argument("--executor", default=None, choices=EXECUTORS)
    suite.add_argument("--ray-address")
    suite.add_argument(
        "--record-check-outputs",
        action="store_true",
        help="store the check cells' outputs as nbval's reference (smoke profile)",
    )
    suite.set_defaults(fn=cmd_suite)

    add_compare_command(command)
    add_tune_command(command)
    add_card_command(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rlcompare`` command."""
    args = build_parser().parse_args(argv)
    try:
        use_working_directory()
        use_plugins([*args.plugin, *args.command_plugin])
        return args.fn(args)
    except (SpecError, StoreError) as error:
        print(f"rlcompare: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
