"""Runs pin BLAS to one thread: what that saves when two processes share the 2 cores.

Two processes side by side (as the process executor's two workers), each running the same
small serial sweep (certainty equivalence and Q-learning on SelfHealing, whose exact policy
evaluation is a linear solve, and DQN on CartPole, whose acting is numpy), once with the pin
(``rlcompare.runner.runs._pin_threads``) and once without it; wall seconds of the slower of
the two, medians of ``--repeats`` alternating rounds, and the ratio.

    python benchmarks/blas_threads.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from rlcompare.versions import cpu_model

SWEEP = """
import sys, tempfile
import rlcompare
import rlcompare.runner.runs as runs
if sys.argv[1] == "unpinned":
    runs._BLAS_PINNED = True  # as if already pinned: BLAS keeps its default threads
specs = rlcompare.grid(["certainty_equivalence", "q_learning"], "rlcompare/SelfHealing-v0", 2,
                       steps=3000, eval_every=500)
specs += rlcompare.grid("dqn", "CartPole-v1", 2, steps=3000, eval_every=1000)
with tempfile.TemporaryDirectory() as store:
    rlcompare.sweep(specs, store, executor="serial", progress=False)
"""


def side_by_side(mode: str) -> float:
    """Wall seconds until both of two concurrent processes finished the sweep."""
    began = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-c", SWEEP, mode]) for _ in range(2)]
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"{mode}: a sweep failed")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"unpinned": [], "pinned": []}
    for _ in range(args.repeats):
        for mode in times:
            times[mode].append(side_by_side(mode))
    print(f"CPU: {cpu_model()}; two processes side by side, medians of {args.repeats}")
    unpinned, pinned = (statistics.median(times[mode]) for mode in ("unpinned", "pinned"))
    print(f"BLAS default threads: {unpinned:5.1f} s wall (imports included)")
    print(f"BLAS pinned to one:   {pinned:5.1f} s wall")
    print(f"pinned saves {unpinned / pinned:.2f}x wall time")


if __name__ == "__main__":
    main()
