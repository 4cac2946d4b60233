"""``tune``: every algorithm gets the same tuning budget, and is judged on fresh seeds.

The most common way an RL comparison misleads is that the new method was tuned and the
baselines ran at someone's defaults. ``tune`` gives each algorithm the same budget,
``budget`` configurations x ``tuning_seeds`` x ``steps`` (or ``episodes``) on every env,
drawn quasi-randomly from its search space (:mod:`rlcompare.studies.search_space`), picks
the best configuration by the IQM over the tuning seeds, and re-runs it on ``eval_seeds``,
disjoint from the tuning seeds: a configuration chosen on the tuning seeds overfits them
(Eimer, Lindauer & Raileanu, "Hyperparameters in reinforcement learning and how to tune
them", ICML 2023), so only the re-runs are evidence for a comparison.

Selection is per env (each env its own configuration) or across envs (one configuration
for all, by the mean of per-env CDF-normalised performance: Patterson et al., arXiv
2407.18840); optionally by successive halving (Jamieson & Talwalkar, AISTATS 2016), with the
same rungs for every algorithm so the budget stays equal. Sensitivity after Adkins et al.
(NeurIPS 2024) comes from the same runs (:mod:`rlcompare.studies.sensitivity`).

Every run goes through :func:`rlcompare.sweep` into ``store``, tagged by its experiment
(``<experiment>.tuning``, ``<experiment>.eval``, ``<experiment>.defaults``): the same call
again draws the same configurations, reuses every stored run, and so resumes a killed
tuning and chooses the same.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from rlcompare.errors import SpecError, choices_text
from rlcompare.spec.registry import get_algorithm
from rlcompare.spec.runspec import RunSpec
from rlcompare.studies import sensitivity as sens
from rlcompare.studies.scoring import check_score, run_scores
from rlcompare.studies.search_space import build_spaces
from rlcompare.studies.tune_inputs import (
    check_seeds,
    fixed_hparams,
    names,
    per_env_values,
    positive,
    run_budget,
    rung_schedule,
)
from rlcompare.studies.tune_result import (
    ALL_ENVS,
    MODES,
    TuneResult,
    budget_table,
    chosen_table,
    config_of,
    mark_chosen,
    with_hp,
)
from rlcompare.sweeps.driver import sweep

SCORES = ("iqm", "auc")


# ----------------------------------------------------------------------------- driver
def tune(
    algos: str | Sequence[str],
    envs: str | Sequence[str],
    store: str,
    *,
    budget: int,
    steps: int | Mapping[str, int] | None = None,
    episodes: int | Mapping[str, int] | None = None,
    space: Mapping[str, Any] | None = None,
    tuning_seeds: int | Sequence[int] = 3,
    eval_seeds: int | Sequence[int] = 5,
    executor: str = "process",
    workers: int | None = None,
    score: str = "iqm",
    metric: str | None = None,
    higher_is_better: bool | None = None,
    per_env: bool = True,
    halving: int | None = None,
    hparams: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    include_default: bool = True,
    eval_defaults: bool = True,
    sampler: str = "sobol",
    seed: int = 0,
    normalise: str = "cdf",
    reps: int = 1000,
    experiment: str = "tune",
    progress: bool = True,
    imports: Sequence[str] = (),
) -> TuneResult:
    """Tunes every algorithm with the same budget, then re-runs its choice on fresh seeds.

    Args:
        algos: Algorithm names.
        envs: Gymnasium ids.
        store: Result store folder.
        budget: Configurations per algorithm (the defaults first when ``include_default``);
            each runs on every tuning seed and env, so every algorithm gets
            ``budget x len(tuning_seeds) x steps`` env steps per env.
        steps: Budget of each run in env steps, or a mapping env id -> its budget.
        episodes: Budget of each run in training episodes, instead of ``steps``.
        space: Search spaces: ``{algo: {name: (low, high) | [values] | None}}``, or one
            ``{name: ...}`` for every algorithm; default (and for an algorithm not named)
            every hyperparameter whose ``Param`` declares a ``search``. A range is drawn on
            a log scale where the ``Param`` says ``log=True``.
        tuning_seeds: Seeds of the tuning runs (an int n: ``0..n-1``).
        eval_seeds: Seeds of the re-runs (an int m: the m seeds after the tuning ones);
            disjoint from ``tuning_seeds``.
        executor: ``serial``, ``process`` or ``ray`` (see :func:`rlcompare.sweep`).
        workers: Parallel workers.
        score: ``iqm``: IQM over tuning seeds of each run's final value of ``metric``;
            ``auc``: IQM of each run's normalised area under its ``metric`` curve.
        metric: Recorded metric; default ``expected_eval_return`` where every run of the
            env records it, else ``eval_return``.
        higher_is_better: Direction of a metric rlcompare does not know.
        per_env: Choose per env (True) or one configuration for every env (False).
        halving: Successive halving factor (>= 2), or None to run every configuration at
            the full budget. The rungs are the same for every algorithm.
        hparams: Fixed settings (not tuned): one mapping for every algorithm, or
            ``{algo: {...}}``. A tuned value overrides a fixed one.
        env_kwargs: Env kwargs for every env, or a mapping env id -> its own.
        eval_every: Env steps between evaluations (default: the protocol's).
        eval_episodes: Episodes per evaluation (default: the protocol's).
        include_default: Make configuration 0 each algorithm's defaults (over ``hparams``).
        eval_defaults: Also run each algorithm's defaults on the eval seeds
            (``defaults_frame``), for a defaults-against-tuned comparison.
        sampler: ``sobol`` or ``halton`` (``scipy.stats.qmc``, scrambled, seeded by ``seed``).
        seed: Seed of the configurations drawn.
        normalise: Per-env normalisation across envs: ``cdf`` (Patterson et al.) or
            ``p5p95`` (Adkins et al.).
        reps: Bootstrap replications of the tuning table's CIs.
        experiment: Prefix of the runs' experiment labels.
        progress: Show progress bars.
        imports: Modules every worker imports (see :func:`rlcompare.sweep`).

    Returns:
        The :class:`TuneResult`.

    Raises:
        SpecError: Bad input, before any run: an empty space, a range outside a ``Param``'s
            bounds, a budget below 1, overlapping seeds, an unknown score or normalisation.
    """
    algo_list, env_list = names(algos, "algos"), names(envs, "envs")
    for algo in algo_list:
        get_algorithm(algo)
    positive(budget, "budget")
    if halving is not None:
        positive(halving, "halving", minimum=2)
    if score not in SCORES:
        raise SpecError(f"score = {score!r} is unknown; {choices_text(SCORES, score)}")
    check_score("final", metric, None, higher_is_better)
    if normalise not in sens.NORMALISATIONS:
        raise SpecError(
            f"normalise = {normalise!r} is unknown; {choices_text(sens.NORMALISATIONS, normalise)}"
        )
    if not isinstance(per_env, bool):
        raise SpecError(f"per_env = {per_env!r} is invalid; valid: True, False")
    tuning, evals = check_seeds(tuning_seeds, eval_seeds)
    unit, full = run_budget(steps, episodes, env_list)
    kwargs = per_env_values(env_kwargs or {}, env_list, "env_kwargs")
    fixed = fixed_hparams(hparams, algo_list)
    spaces = build_spaces(algo_list, space)
    configs: dict[str, list[dict[str, Any]]] = {}
    for algo in algo_list:
        defaults = None
        if include_default:
            first_env = env_list[0]
            resolved = RunSpec(
                algo,
                first_env,
                0,
                hparams=fixed[algo],
                env_kwargs=kwargs[first_env] or {},
                **{unit: full[first_env]},
            )
            defaults = resolved.resolved_hparams
        configs[algo] = spaces[algo].draw(budget, seed=seed, sampler=sampler, first=defaults)
    schedules = {e: rung_schedule(budget, halving, full[e]) for e in env_list}
    fields: dict[str, Any] = {"eval_every": eval_every}
    if eval_episodes is not None:
        fields["eval_episodes"] = eval_episodes

    def spec(algo: str, env: str, config: int, seed_: int, amount: int, tag: str) -> RunSpec:
        settings = {**fixed[algo], **configs[algo][config]}
        return RunSpec(
            algo,
            env,
            seed_,
            hparams=settings,
            env_kwargs=kwargs[env] or {},
            experiment=f"{experiment}.{tag}",
            **{unit: amount},
            **fields,
        )

    # Every configuration at every rung's budget on one seed, and the defaults' re-runs:
    # built (so validated) before any run starts.
    for algo in algo_list:
        for env in env_list:
            for config in range(budget):
                for _, amount in schedules[env]:
                    spec(algo, env, config, tuning[0], amount, "tuning")
    alive = {(a, e): list(range(budget)) for a in algo_list for e in env_list}
    run_rows: list[dict[str, Any]] = []
    tables: list[pd.DataFrame] = []
    read: dict[str, tuple[str, bool]] = {}
    rungs = len(schedules[env_list[0]])
    for rung in range(rungs):
        design = {
            (a, e, c, s): spec(a, e, c, s, schedules[e][rung][1], "tuning")
            for (a, e), kept in alive.items()
            for c in kept
            for s in tuning
        }
        frame = _sweep(list(design.values()), store, executor, workers, progress, imports)
        rung_runs = _score_runs(frame, design, rung, score, metric, higher_is_better, read)
        run_rows.append(rung_runs)
        table = sens.config_table(rung_runs, normalise, reps)
        table[unit] = table["env"].map(lambda e, r=rung: schedules[e][r][1])
        tables.append(table)
        if rung + 1 < rungs:
            alive = _survivors(table, alive, per_env, schedules, rung + 1, env_list)
    table = pd.concat(tables, ignore_index=True)
    last = tables[-1]
    chosen = chosen_table(last, per_env, configs, env_list)
    table["chosen"] = mark_chosen(table, chosen, rungs - 1)
    table = with_hp(table, configs)
    eval_design = {
        (a, e, s): spec(a, e, config_of(chosen, a, e), s, full[e], "eval")
        for a in algo_list
        for e in env_list
        for s in evals
    }
    default_design: dict[tuple[str, str, int], RunSpec] = {}
    if eval_defaults:
        default_design = {
            (a, e, s): RunSpec(
                a,
                e,
                s,
                hparams=fixed[a],
                env_kwargs=kwargs[e] or {},
                experiment=f"{experiment}.defaults",
                **{unit: full[e]},
                **fields,
            )
            for a in algo_list
            for e in env_list
            for s in evals
        }
    specs = [*eval_design.values(), *default_design.values()]
    frame = _sweep(specs, store, executor, workers, progress, imports)
    eval_ids = {s.run_id for s in eval_design.values()}
    default_ids = {s.run_id for s in default_design.values()}
    runs = pd.concat(run_rows, ignore_index=True)
    parameters = {
        "budget": budget,
        "unit": unit,
        "budget_per_run": full,
        "tuning_seeds": tuning,
        "eval_seeds": evals,
        "score": score,
        "metric": {env: m for env, (m, _) in read.items()},
        "higher_is_better": {env: h for env, (_, h) in read.items()},
        "mode": MODES[0] if per_env else MODES[1],
        "halving": halving,
        "rungs": {e: schedules[e] for e in env_list},
        "sampler": sampler,
        "seed": seed,
        "normalise": normalise,
        "include_default": include_default,
        "experiment": experiment,
        "spaces": {a: s.describe() for a, s in spaces.items()},
    }
    return TuneResult(
        mode=parameters["mode"],
        chosen=chosen,
        table=table,
        runs=runs,
        budget=budget_table(store, runs, eval_design, configs),
        eval_frame=frame[frame["run_id"].isin(eval_ids)].reset_index(drop=True),
        defaults_frame=frame[frame["run_id"].isin(default_ids)].reset_index(drop=True),
        configs=configs,
        spaces=spaces,
        parameters=parameters,
    )


# ----------------------------------------------------------------------------- pieces
def _sweep(
    specs: list[RunSpec],
    store: str,
    executor: str,
    workers: int | None,
    progress: bool,
    imports: Sequence[str],
) -> pd.DataFrame:
    return sweep(
        specs, store, executor=executor, workers=workers, progress=progress, imports=imports
    )


def _score_runs(
    frame: pd.DataFrame,
    design: Mapping[tuple[str, str, int, int], RunSpec],
    rung: int,
    score: str,
    metric: str | None,
    higher_is_better: bool | None,
    read: dict[str, tuple[str, bool]],
) -> pd.DataFrame:
    """One row per tuning run of a rung: its score, and ``perf`` (higher is better). A run
    that failed or recorded no value scores at the worst score of its env, with a warning."""
    rows = []
    for env in dict.fromkeys(key[1] for key in design):
        env_frame = frame[frame["env"] == env]
        # The metric of the first rung stays for the later ones (as compare keeps it).
        chosen = read[env][0] if env in read else metric
        values, used, higher = run_scores(
            env_frame, "final" if score == "iqm" else "auc", chosen, None, higher_is_better
        )
        read.setdefault(env, (used, higher))
        sign = 1.0 if higher else -1.0
        keys = [k for k in design if k[1] == env]
        found = {k: values.get(design[k].run_id, float("nan")) for k in keys}
        missing = [design[k].run_id for k, v in found.items() if pd.isna(v)]
        if missing:
            worst = min((sign * v for v in found.values() if not pd.isna(v)), default=0.0)
            warnings.warn(
                f"tune: {len(missing)} run(s) on {env!r} recorded no {used!r} (failed; first: "
                f"{missing[0]}); they score as the worst run of the env",
                stacklevel=3,
            )
            found = {k: (sign * worst if pd.isna(v) else v) for k, v in found.items()}
        for (algo, _, config, seed), value in found.items():
            rows.append(
                {
                    "algo": algo,
                    "env": env,
                    "rung": rung,
                    "config": config,
                    "seed": seed,
                    "run_id": design[(algo, env, config, seed)].run_id,
                    "score": float(value),
                    "perf": sign * float(value),
                }
            )
    return pd.DataFrame.from_records(rows)


def _survivors(
    table: pd.DataFrame,
    alive: dict[tuple[str, str], list[int]],
    per_env: bool,
    schedules: Mapping[str, list[tuple[int, int]]],
    next_rung: int,
    envs: list[str],
) -> dict[tuple[str, str], list[int]]:
    """The configurations kept for the next rung: the best ``n`` per (algo, env), or per
    algo by mean normalised performance across envs (then the same on every env)."""
    kept: dict[tuple[str, str], list[int]] = {}
    if per_env:
        for (algo, env), _ in alive.items():
            n = schedules[env][next_rung][0]
            rows = table[(table["algo"] == algo) & (table["env"] == env)]
            ranked = rows.sort_values(["perf", "config"], ascending=[False, True])
            kept[(algo, env)] = sorted(ranked["config"].head(n).tolist())
        return kept
    means = sens.across_envs(table)
    for algo in dict.fromkeys(a for a, _ in alive):
        n = schedules[envs[0]][next_rung][0]
        rows = means[means["algo"] == algo]
        ranked = rows.sort_values(["normalised", "config"], ascending=[False, True])
        best = sorted(ranked["config"].head(n).tolist())
        kept.update({(algo, env): best for env in envs})
    return kept


__all__ = [
    "ALL_ENVS",
    "MODES",
    "SCORES",
    "TuneResult",
    "budget_table",
    "check_seeds",
    "rung_schedule",
    "tune",
]
