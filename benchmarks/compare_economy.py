"""Economy of the sequential verdicts: runs ``rlcompare.compare`` used against a fixed design.

Runs real comparisons of the default profile's tabular contenders (notebook 08's plugin
against Q-learning and SARSA; notebook 01's TD-control methods on FrozenLake), each with
``n`` seeds per interim and at most ``K`` interims at alpha 0.05, and prints per comparison
the runs the sequential test used and the runs a fixed-seed design with the same error
control would need for 80% power at the effect observed
(:func:`rlcompare.studies.verdict.fixed_design_runs`), then the totals side by side.

    python benchmarks/compare_economy.py                 # n 5, K 4 (a few minutes on 2 cores)
    python benchmarks/compare_economy.py --n 3 --K 2     # quicker

It also prints the runs all contenders used against the fixed design with the same maximum
(``n * K`` seeds per contender). A comparison whose observed effect is 0 has no fixed design
of that power ("inf").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

import rlcompare
from rlcompare.studies.verdict import fixed_design_runs

# (contenders, env budgets, shared hyperparameters): the default profile's settings.
COMPARISONS = [
    (
        ["q_lambda", "q_learning", "sarsa"],
        {"CliffWalking-v1": 20_000, "FrozenLake-v1": 50_000},
        {"alpha": 0.1, "gamma": 0.99, "epsilon": 0.1},
    ),
    (
        ["q_learning", "expected_sarsa", "double_q"],
        {"FrozenLake-v1": 50_000},
        {"alpha": 0.1, "gamma": 0.99, "epsilon": 0.1},
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="runs per contender per interim")
    parser.add_argument("--K", type=int, default=4, help="interims at most")
    parser.add_argument("--store", default=None, help="store folder (default: a temp folder)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import examples.q_lambda  # noqa: F401  (registers q_lambda)

    store = args.store or tempfile.mkdtemp(prefix="compare_economy_")
    tables, runs, most = [], 0, 0
    for algos, steps, hparams in COMPARISONS:
        verdict = rlcompare.compare(
            algos,
            list(steps),
            store,
            n=args.n,
            K=args.K,
            steps=steps,
            hparams=hparams,
            eval_episodes=20,
            progress=False,
            imports=("examples.q_lambda",),
        )
        tables.append(fixed_design_runs(verdict))
        runs += int(verdict.runs_used()["runs"].sum())
        most += args.n * args.K * len(algos) * len(steps)
    table = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(
        f"\nruns of all contenders: {runs} used, against {most} for the same seeds fixed at "
        f"n * K = {args.n * args.K} per contender (used / fixed = {runs / most:.2f})"
    )
    decided = table[table["decision"].isin(["better", "worse"])]
    print(
        f"decided comparisons: {len(decided)} of {len(table)}; their runs "
        f"{int(decided['runs_sequential'].sum())} against "
        f"{decided['runs_fixed'].sum():.0f} for fixed designs of 80% power sized at the "
        "effect observed (known only afterwards: a lower bound on what a fixed design needs)"
    )
    open_ = table[~table.index.isin(decided.index)]
    print(
        f"no difference found: {len(open_)} comparisons, {int(open_['runs_sequential'].sum())} "
        f"runs; a fixed design of 80% power at their observed effects: "
        f"{open_['runs_fixed'].sum():.0f} runs"
    )


if __name__ == "__main__":
    main()
