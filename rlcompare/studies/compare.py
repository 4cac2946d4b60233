"""``compare``: who beats whom, at a controlled error rate, spending seeds only where needed.

The driver owns the runs, the test only reads scores (the split of rlberry's comparator):
interim by interim, ``compare`` sweeps ``n`` new seeds of every contender still in an
undecided comparison, scores each run, and feeds the scores to
:class:`rlcompare.analysis.sequential.SequentialComparison`. Every run lands in the store, so
an interrupted comparison, run again, reuses its stored runs and reaches the same decisions.

Seeds are a fixed sequence per contender: interim ``k`` of contender ``c`` uses seeds
``first_seed(c) + (k - 1) * n ... first_seed(c) + k * n - 1``, where ``first_seed`` comes from
a hash of the contender's label. Different contenders get different seeds on purpose: the
permutation test needs independent runs, and one algorithm entered under two labels must
not replay the same runs.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd

from rlcompare.analysis.sequential import (
    SequentialComparison,
    check_test_parameters,
    comparison_pairs,
)
from rlcompare.errors import SpecError, choices_text
from rlcompare.runner import schema
from rlcompare.spec.runspec import RunSpec
from rlcompare.studies.scoring import check_score, run_scores
from rlcompare.studies.verdict import Verdict, build_verdict, family_text
from rlcompare.sweeps.driver import sweep

# Seeds of one contender: a block of this many from its first seed.
SEED_BLOCK = 10_000


class Contender(NamedTuple):
    """A labelled variant: one algorithm may enter a comparison twice with other settings.

    Attributes:
        label: The name in the decisions table.
        algo: A name from ``rlcompare.algorithms()``.
        hparams: Its own hyperparameters (over the comparison's common ``hparams``).
    """

    label: str
    algo: str
    hparams: Mapping[str, Any] = {}


# ----------------------------------------------------------------------------- inputs
def _contenders(algos: Sequence[str | Contender | RunSpec] | str) -> list[Contender | RunSpec]:
    items = [algos] if isinstance(algos, (str, Contender, RunSpec)) else list(algos)
    out: list[Contender | RunSpec] = []
    for item in items:
        if isinstance(item, str):
            out.append(Contender(item, item))
        elif isinstance(item, (Contender, RunSpec)):
            out.append(item)
        else:
            raise SpecError(
                f"contender {item!r} is invalid; valid: an algorithm name, a Contender(label, "
                "algo, hparams) or a RunSpec template"
            )
    labels = [_label(c) for c in out]
    if len(set(labels)) != len(labels):
        raise SpecError(
            f"contenders {labels!r} repeat a label; enter an algorithm twice as "
            "Contender(label, algo, hparams) with distinct labels"
        )
    return out


def _label(contender: Contender | RunSpec) -> str:
    return contender.label if isinstance(contender, Contender) else contender.algo


def _per_key(
    value: Mapping[str, Any] | None, keys: Sequence[str], what: str
) -> dict[str, dict[str, Any]]:
    """``value`` for every key, or a mapping key -> own value when every key of it is one of
    ``keys`` and every value a mapping."""
    value = dict(value or {})
    if value and all(k in keys and isinstance(v, Mapping) for k, v in value.items()):
        return {k: dict(value.get(k, {})) for k in keys}
    for k, v in value.items():
        if k in keys and isinstance(v, Mapping):
            raise SpecError(
                f"{what} mixes settings for all with {k!r}'s own; give one mapping for every "
                f"one, or one per name of {list(keys)!r}"
            )
    return {k: dict(value) for k in keys}


def first_seed(label: str) -> int:
    """The first seed of a contender: a stable hash of its label, in blocks of 10,000."""
    return SEED_BLOCK * (zlib.crc32(label.encode()) % 100_000)


def interim_seeds(label: str, interim: int, n: int) -> list[int]:
    """The ``n`` seeds of interim ``interim`` (1-based) of contender ``label``."""
    start = first_seed(label) + (interim - 1) * n
    return list(range(start, start + n))


def _budget(
    steps: int | Mapping[str, int] | None, episodes: int | Mapping[str, int] | None, env: str
) -> dict[str, int | None]:
    """``steps`` / ``episodes`` of one env, from one budget for all or a mapping per env."""
    out = {}
    for name, value in (("steps", steps), ("episodes", episodes)):
        if isinstance(value, Mapping):
            if env not in value:
                raise SpecError(f"{name} = {dict(value)!r} has no budget for env {env!r}")
            value = value[env]
        out[name] = value
    return out


def _design(
    contenders: list[Contender | RunSpec],
    envs: list[str],
    *,
    n: int,
    K: int,
    hparams: Mapping[str, Any] | None,
    env_kwargs: Mapping[str, Any] | None,
    spec_fields: dict[str, Any],
    steps: int | Mapping[str, int] | None,
    episodes: int | Mapping[str, int] | None,
) -> dict[tuple[str, str, int], list[RunSpec]]:
    """Every spec of every interim, ``(env, label, interim) -> its n specs``, built (so
    validated) before any run starts."""
    labels = [_label(c) for c in contenders]
    own = _per_key(hparams, labels, "hparams")
    kwargs = _per_key(env_kwargs, envs, "env_kwargs")
    specs: dict[tuple[str, str, int], list[RunSpec]] = {}
    for contender, label in zip(contenders, labels, strict=True):
        for env in envs:
            for k in range(1, K + 1):
                seeds = interim_seeds(label, k, n)
                if isinstance(contender, RunSpec):
                    made = [dataclasses.replace(contender, env=env, seed=s) for s in seeds]
                else:
                    merged = {**own[label], **dict(contender.hparams)}
                    made = [
                        RunSpec(
                            algo=contender.algo,
                            env=env,
                            seed=s,
                            hparams=merged,
                            env_kwargs=kwargs[env],
                            **{**spec_fields, **_budget(steps, episodes, env)},
                        )
                        for s in seeds
                    ]
                specs[(env, label, k)] = made
    return specs


# ----------------------------------------------------------------------------- driver
def compare(
    algos: Sequence[str | Contender | RunSpec] | str,
    envs: str | Sequence[str],
    store: str,
    *,
    alpha: float = 0.05,
    n: int = 5,
    K: int = 5,
    baseline: str | None = None,
    score: str = "final",
    metric: str | None = None,
    higher_is_better: bool | None = None,
    threshold: float | None = None,
    steps: int | Mapping[str, int] | None = None,
    episodes: int | Mapping[str, int] | None = None,
    hparams: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    executor: str = "process",
    workers: int | None = None,
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    permutations: int = 10_000,
    experiment: str = "compare",
    progress: bool = True,
    imports: Sequence[str] = (),
) -> Verdict:
    """Decides who beats whom on each env, adding seeds only to undecided comparisons.

    Each env is its own family of comparisons, tested by the group-sequential permutation
    test of :mod:`rlcompare.analysis.sequential` at ``alpha / len(envs)`` (Bonferroni over
    envs), so the chance of any wrong "better" or "worse" in the whole verdict is at most
    ``alpha``. Interim ``k`` runs ``n`` fixed seeds (see :func:`interim_seeds`) of each
    contender still in an open comparison of that env, through :func:`rlcompare.sweep`
    (stored runs are reused, so a rerun resumes). A diverged run scores at its metric's
    worst value, as every statistic of :mod:`rlcompare.analysis.stats` does.

    Args:
        algos: Contenders: algorithm names (a registered one included), ``Contender``
            (label, algo, hparams) for labelled variants, or ``RunSpec`` templates (their
            env and seed are replaced).
        envs: Gymnasium ids.
        store: Result store folder.
        alpha: Family-wise error over every env and pair, in (0, 1).
        n: Runs per contender per interim (>= 2).
        K: Interims at most (>= 1).
        baseline: Compare every contender against this one only; default all pairs.
        score: ``final`` (the last recorded value of ``metric``), ``auc`` (normalised area
            under the curve) or ``steps_to_threshold`` (env steps until ``metric`` reaches
            ``threshold``, runs that never do at their budget's end; fewer is better).
        metric: Recorded metric to score; default ``expected_eval_return`` where every run
            of the env records it (exact, from the env's model), else ``eval_return``.
        higher_is_better: Direction of ``metric`` (needed for a metric rlcompare does not
            know; default from ``rlcompare.runner.schema``).
        threshold: Level for ``steps_to_threshold``.
        steps: Budget in env steps (or ``episodes``), or a mapping env id -> its budget.
        episodes: Budget in training episodes, or a mapping env id -> its budget.
        hparams: Settings for every contender, or a mapping label -> its own settings.
        env_kwargs: Env kwargs for every env, or a mapping env id -> its own kwargs.
        executor: ``serial``, ``process`` or ``ray`` (see :func:`rlcompare.sweep`).
        workers: Parallel workers.
        eval_every: Env steps between evaluations (default: the protocol's).
        eval_episodes: Episodes per evaluation (default: the protocol's).
        permutations: Permutations enumerated up to / drawn (see the test).
        experiment: Label of the runs in the store.
        progress: Show progress bars.
        imports: Modules every worker imports (see :func:`rlcompare.sweep`).

    Returns:
        The :class:`Verdict`.

    Raises:
        SpecError: Bad input (alpha outside (0, 1), n < 2, K < 1, an unknown baseline or
            score, a metric without a known direction, an env where a contender cannot
            run), before any run starts.
        RuntimeError: A run failed or recorded no value of the scored metric.
    """
    check_test_parameters(alpha, n, K, permutations)
    check_score(score, metric, threshold, higher_is_better)
    if n * K > SEED_BLOCK:
        raise SpecError(f"n * K = {n * K} is invalid; valid: at most {SEED_BLOCK} runs")
    contenders = _contenders(algos)
    labels = [_label(c) for c in contenders]
    pairs = comparison_pairs(labels, baseline)
    env_list = [envs] if isinstance(envs, str) else list(envs)
    if not env_list:
        raise SpecError("envs = [] is invalid; valid: one or more gymnasium ids")
    spec_fields: dict[str, Any] = {"eval_every": eval_every}
    if eval_episodes is not None:
        spec_fields["eval_episodes"] = eval_episodes
    spec_fields["experiment"] = experiment
    design = _design(
        contenders,
        env_list,
        n=n,
        K=K,
        hparams=hparams,
        env_kwargs=env_kwargs,
        spec_fields=spec_fields,
        steps=steps,
        episodes=episodes,
    )
    alpha_env = alpha / len(env_list)
    tests: dict[str, SequentialComparison] = {}
    read: dict[str, tuple[str, bool]] = {}
    rows: list[dict[str, Any]] = []
    for k in range(1, K + 1):
        wanted = {
            env: tests[env].active if env in tests else labels
            for env in env_list
            if env not in tests or not tests[env].finished
        }
        if not wanted:
            break
        specs = [s for env, names in wanted.items() for c in names for s in design[(env, c, k)]]
        frame = sweep(
            specs, store, executor=executor, workers=workers, progress=progress, imports=imports
        )
        failed = frame.attrs.get("failed") or {}
        if failed:
            listed = "; ".join(
                f"{run}: {why.strip().splitlines()[-1]}" for run, why in failed.items()
            )
            raise RuntimeError(
                f"compare: interim {k} cannot be scored, {len(failed)} run(s) failed: {listed}"
            )
        for env, names in wanted.items():
            env_frame = frame[frame["env"] == env]
            # The metric chosen at interim 1 stays: a contender that drops out must not switch
            # the rest to another metric (the exact one, once no run lacks it).
            chosen = read[env][0] if env in read else metric
            values, used_metric, higher = run_scores(
                env_frame, score, chosen, threshold, higher_is_better
            )
            if env not in tests:
                read[env] = (used_metric, higher)
                tests[env] = SequentialComparison(
                    labels,
                    pairs,
                    n=n,
                    K=K,
                    alpha=alpha_env,
                    higher_is_better=higher,
                    permutations=permutations,
                    seed=0,
                )
            block = {}
            for name in names:
                run_ids = [s.run_id for s in design[(env, name, k)]]
                missing = [r for r in run_ids if r not in values.index or pd.isna(values[r])]
                if missing:
                    raise RuntimeError(
                        f"compare: {len(missing)} run(s) of {name!r} on {env!r} recorded no "
                        f"{used_metric!r} (first: {missing[0]}); score another metric"
                    )
                block[name] = values[run_ids].to_numpy(dtype=float)
                rows += [
                    {
                        "env": env,
                        "contender": name,
                        "interim": k,
                        "seed": s.seed,
                        "run_id": s.run_id,
                        "score": float(values[s.run_id]),
                    }
                    for s in design[(env, name, k)]
                ]
            tests[env].update(block)
    scores = pd.DataFrame.from_records(
        rows, columns=["env", "contender", "interim", "seed", "run_id", "score"]
    )
    return build_verdict(
        tests,
        read,
        scores,
        score,
        {
            "alpha": alpha,
            "alpha_per_env": alpha_env,
            "n": n,
            "K": K,
            "permutations": permutations,
            "comparisons": pairs,
            "baseline": baseline,
            "family": family_text(len(env_list)),
            "interims": {env: t.k for env, t in tests.items()},
        },
    )


def stored_verdict(
    frame: pd.DataFrame,
    *,
    algos: Sequence[str] | None = None,
    by: str = "algo",
    envs: Sequence[str] | None = None,
    alpha: float = 0.05,
    baseline: str | None = None,
    score: str = "final",
    metric: str | None = None,
    higher_is_better: bool | None = None,
    threshold: float | None = None,
    permutations: int = 10_000,
) -> Verdict:
    """A one-interim verdict (K = 1) on runs already stored: no run is added, every stored run
    of each contender counts (contenders are the values of the ``by`` column: ``algo``, or
    ``experiment`` where one algorithm ran under several labelled settings), and the same
    test and family-wise error as :func:`compare` decide. Labelled as such in
    ``parameters["family"]``.

    Raises:
        SpecError: An unknown contender, env or baseline, a contender with runs of different
            hyperparameters on one env (they are different contenders: filter the frame or
            pick another ``by``), or fewer than two runs of a contender.
    """
    check_score(score, metric, threshold, higher_is_better)
    if by not in frame.columns:
        raise SpecError(f"by = {by!r} is not a column; valid: algo, experiment")
    present = sorted(frame[by].unique())
    labels = present if algos is None else list(algos)
    for name in labels:
        if name not in present:
            raise SpecError(f"{by} {name!r} has no stored run; {choices_text(present, name)}")
    pairs = comparison_pairs(labels, baseline)
    env_present = sorted(frame["env"].unique())
    env_list = env_present if envs is None else list(envs)
    for env in env_list:
        if env not in env_present:
            raise SpecError(f"env {env!r} has no stored run; {choices_text(env_present, env)}")
    alpha_env = alpha / len(env_list)
    tests: dict[str, SequentialComparison] = {}
    read: dict[str, tuple[str, bool]] = {}
    rows: list[dict[str, Any]] = []
    hp_columns = [c for c in frame.columns if c.startswith((schema.HP_PREFIX, schema.ENV_PREFIX))]
    for env in env_list:
        env_frame = frame[(frame["env"] == env) & frame[by].isin(labels)]
        values, used_metric, higher = run_scores(
            env_frame, score, metric, threshold, higher_is_better
        )
        runs = env_frame.drop_duplicates("run_id").set_index("run_id")
        for name in labels:
            settings = runs.loc[runs[by] == name, hp_columns].astype(str).drop_duplicates()
            if hp_columns and len(settings) > 1:
                raise SpecError(
                    f"{by} {name!r} has runs of {len(settings)} different settings on {env!r}; "
                    "they are different contenders: filter the frame or pick another by"
                )
        block = {}
        for name in labels:
            ids = sorted(runs.index[runs[by] == name], key=lambda r: runs.at[r, "seed"])
            ids = [r for r in ids if r in values.index and not pd.isna(values[r])]
            block[name] = values[ids].to_numpy(dtype=float)
            rows += [
                {
                    "env": env,
                    "contender": name,
                    "interim": 1,
                    "seed": int(runs.at[r, "seed"]),
                    "run_id": r,
                    "score": float(values[r]),
                }
                for r in ids
            ]
        read[env] = (used_metric, higher)
        tests[env] = SequentialComparison(
            labels,
            pairs,
            n={name: len(v) for name, v in block.items()},
            K=1,
            alpha=alpha_env,
            higher_is_better=higher,
            permutations=permutations,
        )
        tests[env].update(block)
    scores = pd.DataFrame.from_records(
        rows, columns=["env", "contender", "interim", "seed", "run_id", "score"]
    )
    parameters = {
        "alpha": alpha,
        "alpha_per_env": alpha_env,
        "n": {name: int((scores["contender"] == name).sum()) for name in labels},
        "K": 1,
        "permutations": permutations,
        "comparisons": pairs,
        "baseline": baseline,
        "family": "one-interim verdict on stored runs (K = 1, no runs added); "
        + family_text(len(env_list)),
        "interims": dict.fromkeys(env_list, 1),
    }
    return build_verdict(tests, read, scores, score, parameters)


__all__ = ["Contender", "Verdict", "compare", "stored_verdict"]
