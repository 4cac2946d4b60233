"""What each ``dqn`` switch costs: CPU time of a variant relative to plain DQN, side by side.

Same rl-zoo3 CartPole-v1 hyperparameters, same seeds, one process, runs interleaved per seed
(plain, then each variant), so machine noise hits all of them alike. Prints per variant the
median CPU seconds over seeds and the median of the per-seed ratios variant / plain. The
variants share the hand-written backward pass and numpy acting path; a ratio far above ~1.3
means a variant fell off them.

    python benchmarks/dqn_variants.py                  # 3 seeds x 20k steps (~5 min here)
    python benchmarks/dqn_variants.py --seeds 1 --steps 5000
"""

from __future__ import annotations

import argparse
import statistics
import time

import rlcompare
from rlcompare.algos.deep.hparams import ZOO_CARTPOLE_DQN

VARIANTS = {
    "plain": {},
    "double": {"double": True},
    "dueling": {"dueling": True},
    "double_dueling": {"double": True, "dueling": True},
    "prioritized": {"prioritized": True},
    "n_step_3": {"n_steps": 3},
    "noisy": {"exploration": "noisy"},
}


def cpu_seconds(hparams: dict, seed: int, steps: int) -> float:
    spec = rlcompare.RunSpec(
        "dqn",
        "CartPole-v1",
        seed,
        hparams={**ZOO_CARTPOLE_DQN, **hparams},
        steps=steps,
        eval_every=steps,
        eval_episodes=1,
    )
    began = time.process_time()
    rlcompare.run(spec)
    return time.process_time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    cpu_seconds({}, 0, 300)  # imports and first-call costs out of the timings
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for seed in range(args.seeds):
        for name, hparams in VARIANTS.items():
            times[name].append(cpu_seconds(hparams, seed, args.steps))
    print(f"{'variant':<16}{'CPU s (median)':>16}{'x plain (median)':>18}")
    for name, values in times.items():
        ratios = [v / p for v, p in zip(values, times["plain"], strict=True)]
        print(f"{name:<16}{statistics.median(values):>16.2f}{statistics.median(ratios):>18.2f}")


if __name__ == "__main__":
    main()
