"""Our ``dqn`` against Stable-Baselines3's DQN (``sb3_dqn``), same hyperparameters and seeds.

Runs both with the rl-zoo3 CartPole-v1 hyperparameters, each (algo, seed) in a fresh
process (one torch thread, as every deep run), and prints per algorithm:

- env steps per CPU-second of training (process CPU time minus the time spent in our
  evaluation protocol, which is the same code for both);
- steps to the first evaluation with mean return >= 475 (median over seeds; runs that never
  get there count as not reached);
- final evaluation return; peak resident memory of the process and its growth during the run;

and the ratios dqn / sb3_dqn. Goal: >= 5x the throughput, median steps-to-475 no worse.

    python benchmarks/dqn_vs_sb3.py                    # 10 seeds x 50k steps (~30 min here)
    python benchmarks/dqn_vs_sb3.py --seeds 2 --steps 20000
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import time
from typing import Any

from rlcompare.algos.deep.hparams import ZOO_CARTPOLE_DQN as ZOO_CARTPOLE

ALGOS = ("dqn", "sb3_dqn")
THRESHOLD = 475.0


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_run(algo: str, seed: int, steps: int, eval_every: int, eval_episodes: int) -> dict:
    """Trains one (algo, seed) in this (fresh) process and measures it."""
    import resource

    import rlcompare
    from rlcompare.runner.context import RunContext

    spent_in_eval = [0.0]
    evaluate = RunContext.evaluate

    def timed_evaluate(self: RunContext, *args: Any, **kwargs: Any) -> float:
        began = time.process_time()
        try:
            return evaluate(self, *args, **kwargs)
        finally:
            spent_in_eval[0] += time.process_time() - began

    RunContext.evaluate = timed_evaluate  # type: ignore[method-assign]
    spec = rlcompare.RunSpec(
        algo,
        "CartPole-v1",
        seed,
        steps=steps,
        hparams=ZOO_CARTPOLE,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        experiment="bench",
    )
    # One-time imports before measuring: torch, SB3, and torch._dynamo, which torch.optim
    # imports on its first step (seconds of CPU that would otherwise count against SB3).
    import stable_baselines3  # noqa: F401
    import torch._dynamo  # noqa: F401

    rss_before = _rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    result = rlcompare.run(spec)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    frame = result.frame
    evals = frame[frame["metric"] == "eval_return"].sort_values("step")
    reached = evals[evals["value"] >= THRESHOLD]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "algo": algo,
        "seed": seed,
        "status": result.status,
        "cpu_s": cpu,
        "eval_cpu_s": spent_in_eval[0],
        "train_cpu_s": cpu - spent_in_eval[0],
        "wall_s": wall,
        "steps_per_cpu_s": steps / max(cpu - spent_in_eval[0], 1e-9),
        "steps_to_475": int(reached["step"].iloc[0]) if len(reached) else None,
        "final_eval": float(evals["value"].iloc[-1]),
        "max_eval": float(evals["value"].max()),
        "eval_curve": [
            [int(a), float(b)] for a, b in zip(evals["step"], evals["value"], strict=True)
        ],
        "peak_rss_mb": peak,
        "rss_growth_mb": peak - rss_before,
    }


def _one_run(args: tuple) -> dict:
    return one_run(*args)


def median_steps(values: list[int | None]) -> float:
    """Median steps-to-threshold; runs that never reached it sort last (as infinity)."""
    return statistics.median(float("inf") if v is None else v for v in values)


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per-algorithm medians (and the mean final return)."""
    summary = {}
    for algo in ALGOS:
        mine = [row for row in rows if row["algo"] == algo]
        summary[algo] = {
            "runs": len(mine),
            "steps_per_cpu_s": statistics.median(r["steps_per_cpu_s"] for r in mine),
            "train_cpu_s": statistics.median(r["train_cpu_s"] for r in mine),
            "steps_to_475": median_steps([r["steps_to_475"] for r in mine]),
            "reached_475": sum(r["steps_to_475"] is not None for r in mine),
            "final_eval": statistics.fmean(r["final_eval"] for r in mine),
            "mean_eval": statistics.fmean(
                statistics.fmean(v for _, v in r["eval_curve"]) for r in mine
            ),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in mine),
            "rss_growth_mb": statistics.median(r["rss_growth_mb"] for r in mine),
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..n-1 (default 10)")
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per run")
    parser.add_argument("--eval-every", type=int, default=1000, help="env steps between evals")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (1 = timings)")
    parser.add_argument("--json", help="also write the per-run rows and summary here")
    args = parser.parse_args(argv)

    tasks = [
        (algo, seed, args.steps, args.eval_every, args.eval_episodes)
        for seed in range(args.seeds)
        for algo in ALGOS
    ]
    context = multiprocessing.get_context("spawn")
    rows = []
    with context.Pool(args.jobs, maxtasksperchild=1) as pool:
        for row in pool.imap(_one_run, tasks):
            rows.append(row)
            print(
                f"{row['algo']:8s} seed {row['seed']}: {row['steps_per_cpu_s']:7.0f} steps/cpu-s, "
                f"to-475 {row['steps_to_475']}, final {row['final_eval']:.1f}, "
                f"{row['status']}",
                flush=True,
            )
    summary = summarize(rows)
    print(f"\nCartPole-v1, rl-zoo3 hyperparameters, {args.seeds} seeds x {args.steps} steps")
    header = (
        "steps/cpu-s",
        "train cpu s",
        "median to 475",
        "reached",
        "final eval",
        "mean eval",
        "peak MB",
        "growth MB",
    )
    print(f"{'':8s}" + "".join(f"{h:>15s}" for h in header))
    for algo in ALGOS:
        s = summary[algo]
        cells = (
            s["steps_per_cpu_s"],
            s["train_cpu_s"],
            s["steps_to_475"],
            f"{s['reached_475']}/{s['runs']}",
            s["final_eval"],
            s["mean_eval"],
            s["peak_rss_mb"],
            s["rss_growth_mb"],
        )
        print(
            f"{algo:8s}"
            + "".join(f"{c:>15s}" if isinstance(c, str) else f"{c:15.1f}" for c in cells)
        )
    ours, theirs = summary["dqn"], summary["sb3_dqn"]
    speedup = ours["steps_per_cpu_s"] / theirs["steps_per_cpu_s"]
    print(f"\nthroughput dqn / sb3_dqn: {speedup:.2f}x (goal >= 5)")
    if math.isinf(ours["steps_to_475"]) or math.isinf(theirs["steps_to_475"]):
        print(
            f"median steps-to-475: dqn {ours['steps_to_475']}, sb3_dqn "
            f"{theirs['steps_to_475']} (inf: half or more of the seeds never got there)"
        )
    else:
        ratio_475 = ours["steps_to_475"] / theirs["steps_to_475"]
        print(f"median steps-to-475 dqn / sb3_dqn: {ratio_475:.2f} (goal <= 1)")
    print(f"peak memory dqn / sb3_dqn: {ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "rows": rows, "summary": summary}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
