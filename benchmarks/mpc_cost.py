"""What ``mpc`` costs next to ``sac`` and ``ppo``: CPU milliseconds per env step on Pendulum-v1.

Default hyperparameters of each, the same seeds, one process, runs interleaved per seed (mpc,
sac, ppo), so machine noise hits all of them alike. A run's CPU time (``time.process_time``,
one torch thread as in every deep run) covers training plus the protocol's evaluations at
step 0 and at the end, one greedy episode each (200 steps; mpc plans at every one of them,
on the mean model, once trained). Prints CPU ms per env step (median over seeds), the ratio
to mpc, and the CPU model (absolute times differ between CPUs of one machine kind).

    python benchmarks/mpc_cost.py                 # 1 seed x 2048 steps (~2 min here)
    python benchmarks/mpc_cost.py --seeds 3 --steps 5000
"""

from __future__ import annotations

import argparse
import statistics
import time

import rlcompare
from rlcompare.algos.deep.mpc_params import register_mpc
from rlcompare.versions import cpu_model

ALGOS = ("mpc", "sac", "ppo")


def cpu_ms_per_step(algo: str, seed: int, steps: int) -> tuple[float, float]:
    """(CPU ms per env step, final eval return) of one run."""
    spec = rlcompare.RunSpec(
        algo, "Pendulum-v1", seed, steps=steps, eval_every=steps, eval_episodes=1
    )
    began = time.process_time()
    result = rlcompare.run(spec)
    seconds = time.process_time() - began
    frame = result.frame
    final = frame[frame["metric"] == "eval_return"]["value"].iloc[-1]
    return 1000.0 * seconds / steps, float(final)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2048)
    args = parser.parse_args()
    # Until rlcompare.algos.deep registers mpc with the built-ins (a no-op after that).
    register_mpc()
    for algo in ALGOS:  # imports and first-call costs out of the timings
        cpu_ms_per_step(algo, 0, 64)
    ms: dict[str, list[float]] = {algo: [] for algo in ALGOS}
    final: dict[str, list[float]] = {algo: [] for algo in ALGOS}
    for seed in range(args.seeds):
        for algo in ALGOS:
            cost, ret = cpu_ms_per_step(algo, seed, args.steps)
            ms[algo].append(cost)
            final[algo].append(ret)
    print(f"Pendulum-v1, {args.steps} env steps x {args.seeds} seed(s), CPU: {cpu_model()}")
    print(f"{'algo':<8}{'CPU ms/step':>14}{'x mpc':>10}{'final eval_return':>20}")
    base = statistics.median(ms["mpc"])
    for algo in ALGOS:
        median = statistics.median(ms[algo])
        ret = statistics.median(final[algo])
        print(f"{algo:<8}{median:>14.2f}{median / base:>10.2f}{ret:>20.1f}")
    print(
        f"mpc / sac = {base / statistics.median(ms['sac']):.2f}, "
        f"mpc / ppo = {base / statistics.median(ms['ppo']):.2f}"
    )


if __name__ == "__main__":
    main()
