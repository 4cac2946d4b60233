"""Sweep scaling: the same grid under the serial, process and Ray executors on this machine.

The grid is 32 tabular runs (Q-learning on FrozenLake-v1, 4 step sizes x 8 seeds, batched
into seed tasks) plus 8 DQN runs (CartPole-v1, 8 seeds). Each executor writes to a fresh
store; wall times are measured side by side in one process and printed with speedups
relative to serial, and Ray's overhead per task (Ray wall time minus process wall time,
divided by the number of tasks). On 2 cores expect at most 2x.

    python benchmarks/sweep_scaling.py [--quick] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import rlcompare
from rlcompare.sweeps.tasks import plan_tasks


def grid(quick: bool) -> list[rlcompare.RunSpec]:
    """32 tabular + 8 DQN runs (smaller budgets with ``quick``)."""
    tabular_steps, dqn_steps = (20_000, 1_000) if quick else (200_000, 10_000)
    tabular = rlcompare.grid(
        "q_learning",
        "FrozenLake-v1",
        8,
        hparams={"alpha": [0.05, 0.1, 0.2, 0.4]},
        steps=tabular_steps,
        experiment="scaling",
    )
    deep = rlcompare.grid(
        "dqn",
        "CartPole-v1",
        8,
        steps=dqn_steps,
        eval_episodes=3,
        hparams={"learning_starts": 200, "net_arch": [64, 64]},
        experiment="scaling",
    )
    return tabular + deep


def timed(specs: list[rlcompare.RunSpec], executor: str, workers: int, root: Path) -> float:
    began = time.perf_counter()
    frame = rlcompare.sweep(
        specs, root / executor, executor=executor, workers=workers, progress=False
    )
    elapsed = time.perf_counter() - began
    if frame["run_id"].nunique() != len(specs) or frame.attrs["failed"]:
        raise RuntimeError(f"{executor}: incomplete sweep ({frame.attrs['failed']})")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    specs = grid(args.quick)
    tasks = len(plan_tasks(specs, args.workers))
    import ray

    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    times = {}
    with tempfile.TemporaryDirectory() as root:
        for executor in ("serial", "process", "ray"):
            times[executor] = timed(specs, executor, args.workers, Path(root))
    ray.shutdown()
    print(f"{len(specs)} runs in {tasks} tasks, {args.workers} workers")
    for executor, seconds in times.items():
        speedup = times["serial"] / seconds
        print(f"{executor:>8}: {seconds:7.1f} s wall   speedup vs serial {speedup:4.2f}x")
    overhead = (times["ray"] - times["process"]) / tasks
    print(f"Ray overhead vs process pool: {overhead * 1000:+.0f} ms per task")


if __name__ == "__main__":
    main()
