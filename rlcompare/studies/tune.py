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

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rlcompare.errors import SpecError, choices_text
from rlcompare.spec.registry import get_algorithm
from rlcompare.spec.runspec import RunSpec
from rlcompare.store.results import load_results
from rlcompare.studies import sensitivity as sens
from rlcompare.studies.scoring import check_score, run_scores
from rlcompare.studies.search_space import SearchSpace, build_spaces
from rlcompare.sweeps.driver import sweep

SCORES = ("iqm", "auc")
MODES = ("per_env", "across_envs")
# The env label of a configuration chosen for every env at once.
ALL_ENVS = "*"


@dataclass
class TuneResult:
    """What :func:`tune` chose, from what, and at what cost.

    Attributes:
        mode: ``per_env`` or ``across_envs`` (one configuration for every env).
        chosen: One row per algo and env (``env`` is ``"*"`` across envs): ``mode``,
            ``config`` (index into ``configs[algo]``; 0 is the defaults when included),
            ``hparams`` (the tuned values), ``tuning_score`` (IQM over tuning seeds, or
            the mean normalised score across envs), and ``hp.<name>`` columns.
        table: The tuning table, one row per (algo, env, rung, config): ``steps`` or
            ``episodes``, ``runs``, ``iqm, iqm_low, iqm_high`` (score units, 95% bootstrap
            CI over tuning seeds), ``normalised``, ``chosen`` and ``hp.<name>``.
        runs: One row per tuning run: ``algo, env, rung, config, seed, run_id, score``.
        budget: Per algo, counted from the store: ``configurations``, ``tuning_runs``,
            ``tuning_env_steps``, ``eval_runs``, ``eval_env_steps``.
        eval_frame: Tidy rows of the chosen configurations re-run on the eval seeds (what
            a comparison reads).
        defaults_frame: Tidy rows of each algorithm's defaults on the same eval seeds (empty
            without ``eval_defaults``).
        configs: ``algo -> its configurations`` (dicts of tuned values).
        spaces: ``algo -> SearchSpace``.
        parameters: The call's settings (seeds, budget, metric, normalisation, ...).
    """

    mode: str
    chosen: pd.DataFrame
    table: pd.DataFrame
    runs: pd.DataFrame
    budget: pd.DataFrame
    eval_frame: pd.DataFrame
    defaults_frame: pd.DataFrame
    configs: dict[str, list[dict[str, Any]]]
    spaces: dict[str, SearchSpace]
    parameters: dict[str, Any] = field(default_factory=dict)

    def hparams(self, algo: str, env: str | None = None) -> dict[str, Any]:
        """The tuned values chosen for ``algo`` (on ``env`` when tuned per env)."""
        rows = self.chosen[self.chosen["algo"] == algo]
        if rows.empty:
            raise SpecError(f"algo {algo!r} was not tuned; {choices_text(self.configs, algo)}")
        if self.mode == "per_env":
            envs = list(rows["env"])
            if env not in envs:
                raise SpecError(f"env = {env!r} has no choice; {choices_text(envs, env)}")
            rows = rows[rows["env"] == env]
        return dict(rows["hparams"].iloc[0])

    def sensitivity(self) -> pd.DataFrame:
        """Per algo, the sensitivity of Adkins et al. from the first rung's runs (every
        configuration on every env): see :func:`rlcompare.studies.sensitivity.sensitivity`."""
        first = self.table[self.table["rung"] == 0]
        default = 0 if self.parameters.get("include_default") else None
        return sens.sensitivity(first, default_config=default)

    def curves(self) -> pd.DataFrame:
        """Performance against each tuned hyperparameter's value (first rung): one row per
        (algo, env, config, param) with the IQM and its CI over tuning seeds."""
        first = self.table[self.table["rung"] == 0]
        log = {a: {d.name: d.log for d in s.dimensions} for a, s in self.spaces.items()}
        return sens.performance_by_value(first, self.configs, log)


# ----------------------------------------------------------------------------- inputs
def _names(value: str | Sequence[str], what: str) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise SpecError(f"{what} = {value!r} is empty; valid: one or more names")
    if len(set(names)) != len(names):
        raise SpecError(f"{what} = {value!r} repeats a name; valid: distinct names")
    return names


def _seed_list(value: int | Sequence[int], what: str, start: int = 0) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise SpecError(f"{what} = {value!r} is invalid; valid: a positive int or seeds")
        return list(range(start, start + value))
    seeds = list(value)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise SpecError(
            f"{what} = {value!r} is invalid; valid: a positive int n or a list of "
            "non-negative int seeds"
        )
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{what} = {value!r} repeats a seed; valid: distinct seeds")
    return seeds


def check_seeds(
    tuning_seeds: int | Sequence[int], eval_seeds: int | Sequence[int]
) -> tuple[list[int], list[int]]:
    """The tuning and eval seeds (an int n: n seeds, the eval ones after the tuning ones).

    Raises:
        SpecError: A seed in both, naming it: a configuration chosen on its tuning seeds is
            not evidence on those seeds.
    """
    tuning = _seed_list(tuning_seeds, "tuning_seeds")
    evals = _seed_list(eval_seeds, "eval_seeds", start=max(tuning) + 1)
    both = sorted(set(tuning) & set(evals))
    if both:
        raise SpecError(
            f"tuning_seeds and eval_seeds share seed(s) {both}; valid: disjoint seeds (a "
            "configuration chosen on its tuning seeds overfits them, Eimer et al. 2023)"
        )
    return tuning, evals


def _positive(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{what} = {value!r} is invalid; valid: an int >= {minimum}")
    return value


def _per_env(value: Any, envs: list[str], what: str) -> dict[str, Any]:
    """``value`` for every env, or its own entry per env from a mapping env -> value."""
    if isinstance(value, Mapping) and value and all(k in envs for k in value):
        missing = [e for e in envs if e not in value]
        if missing:
            raise SpecError(f"{what} = {dict(value)!r} has no entry for env {missing[0]!r}")
        return {e: value[e] for e in envs}
    if isinstance(value, Mapping) and what != "env_kwargs":
        bad = next(iter(value), None)
        raise SpecError(
            f"{what} names env {bad!r}, not one of the tuned envs; {choices_text(envs, bad)}"
        )
    return dict.fromkeys(envs, value)


def _budget(steps: Any, episodes: Any, envs: list[str]) -> tuple[str, dict[str, int]]:
    if (steps is None) == (episodes is None):
        raise SpecError(
            f"give exactly one of steps / episodes, got steps={steps!r}, episodes={episodes!r}"
        )
    unit, value = ("steps", steps) if steps is not None else ("episodes", episodes)
    per_env = _per_env(value, envs, unit)
    return unit, {e: _positive(v, f"{unit} of {e!r}") for e, v in per_env.items()}


def _fixed_hparams(hparams: Mapping[str, Any] | None, algos: list[str]) -> dict[str, dict]:
    """Fixed (untuned) settings: one mapping per algo, or one for all."""
    hparams = dict(hparams or {})
    if hparams and all(k in algos and isinstance(v, Mapping) for k, v in hparams.items()):
        return {a: dict(hparams.get(a, {})) for a in algos}
    return {a: dict(hparams) for a in algos}


def rung_schedule(n: int, halving: int | None, budget: int) -> list[tuple[int, int]]:
    """``(configurations kept, budget of each run)`` per rung of successive halving with
    factor ``halving``: ``n`` configurations at ``budget / halving^R``, then the best
    ``1/halving`` of them at ``halving`` times the budget, up to one rung at the full
    budget; ``[(n, budget)]`` without halving."""
    if halving is None or n < halving:
        return [(n, budget)]
    rungs = int(math.floor(math.log(n, halving) + 1e-9))
    return [
        (max(1, n // halving**r), max(1, budget // halving ** (rungs - r)))
        for r in range(rungs + 1)
    ]


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
    algo_list, env_list = _names(algos, "algos"), _names(envs, "envs")
    for algo in algo_list:
        get_algorithm(algo)
    _positive(budget, "budget")
    if halving is not None:
        _positive(halving, "halving", minimum=2)
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
    unit, full = _budget(steps, episodes, env_list)
    kwargs = _per_env(env_kwargs or {}, env_list, "env_kwargs")
    fixed = _fixed_hparams(hparams, algo_list)
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
    chosen = _chosen(last, per_env, configs, env_list)
    table["chosen"] = _mark_chosen(table, chosen, rungs - 1)
    table = _with_hp(table, configs)
    eval_design = {
        (a, e, s): spec(a, e, _config_of(chosen, a, e), s, full[e], "eval")
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


def _chosen(
    table: pd.DataFrame, per_env: bool, configs: Mapping[str, list[dict]], envs: list[str]
) -> pd.DataFrame:
    if per_env:
        best = sens.best_per_env(table)
        rows = [
            {
                "algo": r.algo,
                "env": r.env,
                "mode": MODES[0],
                "config": int(r.config),
                "tuning_score": float(r.iqm),
                "tuning_low": float(r.iqm_low),
                "tuning_high": float(r.iqm_high),
            }
            for r in best.itertuples()
        ]
    else:
        best = sens.best_across_envs(table)
        rows = [
            {
                "algo": r.algo,
                "env": ALL_ENVS,
                "mode": MODES[1],
                "config": int(r.config),
                "tuning_score": float(r.normalised),
                "tuning_low": float("nan"),
                "tuning_high": float("nan"),
            }
            for r in best.itertuples()
        ]
    chosen = pd.DataFrame.from_records(rows)
    chosen["hparams"] = [dict(configs[r.algo][r.config]) for r in chosen.itertuples()]
    return _with_hp(chosen, configs)


def _config_of(chosen: pd.DataFrame, algo: str, env: str) -> int:
    rows = chosen[(chosen["algo"] == algo) & chosen["env"].isin([env, ALL_ENVS])]
    return int(rows["config"].iloc[0])


def _mark_chosen(table: pd.DataFrame, chosen: pd.DataFrame, last_rung: int) -> pd.Series:
    picks = {(r.algo, r.env, r.config) for r in chosen.itertuples()}
    return pd.Series(
        [
            r.rung == last_rung
            and ((r.algo, r.env, r.config) in picks or (r.algo, ALL_ENVS, r.config) in picks)
            for r in table.itertuples()
        ],
        index=table.index,
    )


def _with_hp(frame: pd.DataFrame, configs: Mapping[str, list[dict]]) -> pd.DataFrame:
    """``frame`` with one ``hp.<name>`` column per tuned hyperparameter (None where the
    row's algorithm does not tune it)."""
    names = sorted({n for cs in configs.values() for c in cs for n in c})
    out = frame.copy()
    for name in names:
        out[f"hp.{name}"] = [
            configs[a][c].get(name) for a, c in zip(out["algo"], out["config"], strict=True)
        ]
    return out


def budget_table(
    store: str,
    runs: pd.DataFrame,
    eval_design: Mapping[Any, RunSpec],
    configs: Mapping[str, list[dict]],
) -> pd.DataFrame:
    """Runs and env steps each algorithm got, counted from the store: a run's env steps are
    the last step it recorded."""
    ids = set(runs["run_id"]) | {s.run_id for s in eval_design.values()}
    stored = load_results(store, run_ids=ids, metrics=["eval_return"], check_code=False)
    steps = stored.groupby("run_id")["step"].max()
    eval_runs = pd.DataFrame(
        {"algo": [k[0] for k in eval_design], "run_id": [s.run_id for s in eval_design.values()]}
    )
    records = []
    for algo in configs:
        tuning_ids = runs.loc[runs["algo"] == algo, "run_id"].drop_duplicates()
        eval_ids = eval_runs.loc[eval_runs["algo"] == algo, "run_id"].drop_duplicates()
        records.append(
            {
                "algo": algo,
                "configurations": len(configs[algo]),
                "tuning_runs": int(tuning_ids.isin(steps.index).sum()),
                "tuning_env_steps": int(steps.reindex(tuning_ids).fillna(0).sum()),
                "eval_runs": int(eval_ids.isin(steps.index).sum()),
                "eval_env_steps": int(steps.reindex(eval_ids).fillna(0).sum()),
            }
        )
    return pd.DataFrame.from_records(records)


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
