"""Tabular throughput: the obvious gymnasium loop against rlcompare's engine.

Both run epsilon-greedy Q-learning (alpha 0.1, gamma 0.99, epsilon 0.1, random tie-breaking)
on FrozenLake-v1 (4x4, slippery). Prints the CPU model, env steps per CPU-second
(``time.process_time``) for each, their ratio, the end-to-end rate of ``rlcompare.run_batch``
(rows, evaluations and the tidy table included), the end-to-end rate of a serial
``rlcompare.sweep`` with the default evaluation settings (store writes and the loaded
table included) beside the naive loop, the memory of 1,024 seeds on Taxi-v4, and for each
model-based learner its env steps and planning updates per CPU-second in the engine.

    python benchmarks/tabular_throughput.py [--quick] [--seeds 256 --steps 100000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc

import gymnasium as gym
import numpy as np

import rlcompare
from rlcompare.runner.context import RunContext
from rlcompare.versions import cpu_model

ENV = "FrozenLake-v1"
HPARAMS = {"alpha": 0.1, "gamma": 0.99, "epsilon": 0.1}
# The model-based learners at their defaults (gamma and epsilon as above).
MODEL_BASED = {
    "dyna_q (last)": ("dyna_q", {"alpha": 0.1, "epsilon": 0.1, "model": "last"}),
    "dyna_q (sample)": ("dyna_q", {"alpha": 0.1, "epsilon": 0.1, "model": "sample"}),
    "dyna_q (expected)": ("dyna_q", {"alpha": 0.1, "epsilon": 0.1, "model": "expected"}),
    "prioritized_sweeping": ("prioritized_sweeping", {"epsilon": 0.1}),
    "certainty_equivalence": ("certainty_equivalence", {"epsilon": 0.1}),
    "psrl": ("psrl", {"reward_prior": "beta"}),
}


def best_naive(steps: int, repeats: int = 3) -> float:
    """The fastest of ``repeats`` naive loops: on a shared machine one measurement of it moved
    by 2x within a run, and the fastest is the least disturbed (so the ratios against it
    are the conservative ones)."""
    return max(naive_loop(steps, seed) for seed in range(repeats))


def naive_loop(steps: int, seed: int = 0) -> float:
    """Env steps per CPU-second of a textbook Q-learning loop on the gymnasium env."""
    env = gym.make(ENV)
    rng = np.random.default_rng(seed)
    q = np.zeros((env.observation_space.n, env.action_space.n))
    alpha, gamma, epsilon = HPARAMS["alpha"], HPARAMS["gamma"], HPARAMS["epsilon"]
    obs, _ = env.reset(seed=seed)
    began = time.process_time()
    for _ in range(steps):
        if rng.random() < epsilon:
            action = int(rng.integers(q.shape[1]))
        else:
            row = q[obs]
            action = int(rng.choice(np.flatnonzero(row == row.max())))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        target = reward + (0.0 if terminated else gamma * q[next_obs].max())
        q[obs, action] += alpha * (target - q[obs, action])
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    return steps / (time.process_time() - began)


def runners(
    env: str, seeds: int, steps: int, algo: str = "q_learning", hparams: dict | None = None
) -> list:
    """ModelRunners (the engine without evaluation or row writing), one per seed."""
    from rlcompare.algos.tabular.agent import TabularAgent
    from rlcompare.algos.tabular.trainers import ModelRunner
    from rlcompare.envs.model import tabular_mdp

    mdp = tabular_mdp(env)
    limit = gym.spec(env).max_episode_steps
    out = []
    for seed in range(seeds):
        spec = rlcompare.RunSpec(algo, env, seed, steps=steps, hparams=hparams or HPARAMS)
        ctx = RunContext(spec)
        outcomes = mdp.outcome_next.shape[2]
        agent = TabularAgent.for_run(
            ctx, mdp.n_states, mdp.n_actions, mdp.valid_actions, outcomes=outcomes
        )
        out.append(
            ModelRunner(
                agent,
                mdp.simulation,
                env_seed=ctx.env_seed,
                budget=("steps", steps),
                max_episode_steps=limit,
            )
        )
    return out


def engine(seeds: int, steps: int) -> float:
    """Env steps per CPU-second of the engine over ``seeds`` seeds (episode records
    included, evaluations excluded)."""
    batch = runners(ENV, seeds, steps)
    batch[0].advance()  # load the compiled code before timing
    began = time.process_time()
    for runner in batch[1:]:
        while runner.advance()[0] != 0:
            pass
    return (seeds - 1) * steps / (time.process_time() - began)


def model_based(seeds: int, steps: int) -> dict[str, tuple[float, float]]:
    """{learner: (env steps, planning updates) per CPU-second} in the engine on ``ENV``."""
    from rlcompare.algos.tabular.rules import PLANNING_UPDATES

    rates = {}
    for label, (algo, hparams) in MODEL_BASED.items():
        batch = runners(ENV, seeds + 1, steps, algo, {"gamma": 0.99, **hparams})
        batch[0].advance()  # compiled code loaded outside the timing
        began = time.process_time()
        for runner in batch[1:]:
            while runner.advance()[0] != 0:
                pass
        spent = time.process_time() - began
        updates = sum(int(runner.agent.state.counters[PLANNING_UPDATES]) for runner in batch[1:])
        rates[label] = (seeds * steps / spent, updates / spent)
    return rates


def end_to_end(seeds: int, steps: int) -> float:
    """Env steps per CPU-second of ``rlcompare.run_batch`` (two one-episode evaluations)."""
    specs = [
        rlcompare.RunSpec(
            "q_learning", ENV, seed, steps=steps, hparams=HPARAMS, eval_every=steps, eval_episodes=1
        )
        for seed in range(seeds)
    ]
    began = time.process_time()
    rlcompare.run_batch(specs)
    return seeds * steps / (time.process_time() - began)


def sweep_end_to_end(seeds: int, steps: int) -> float:
    """Env steps per CPU-second of a serial ``rlcompare.sweep`` of ``seeds`` Q-learning runs
    of ``steps`` steps, default evaluation settings (``eval_every``, ``eval_episodes``), into
    a fresh store; the returned table is loaded as part of the sweep."""
    specs = [
        rlcompare.RunSpec("q_learning", ENV, seed, steps=steps, hparams=HPARAMS)
        for seed in range(seeds)
    ]
    # Compiled code loaded outside the timing, as in ``engine``.
    rlcompare.run(rlcompare.RunSpec("q_learning", ENV, 0, steps=100, hparams=HPARAMS))
    with tempfile.TemporaryDirectory() as store:
        began = time.process_time()
        rlcompare.sweep(specs, store, executor="serial", progress=False)
        return seeds * steps / (time.process_time() - began)


def max_rss_mib() -> float:
    """The process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def taxi_memory(seeds: int, steps: int) -> tuple[float, float, float]:
    """(MiB of agent arrays, MiB traced by tracemalloc at peak, growth of the peak RSS in
    MiB) for ``seeds`` Q-learning agents on Taxi-v4, each trained ``steps`` steps and all
    kept alive."""
    runners("Taxi-v4", 1, 10)[0].advance()  # imports and compiled code outside the count
    before = max_rss_mib()
    tracemalloc.start()
    batch = runners("Taxi-v4", seeds, steps)
    for runner in batch:
        while runner.advance()[0] != 0:
            pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrays = sum(array.nbytes for runner in batch for array in runner.agent.state)
    return arrays / 2**20, peak / 2**20, max_rss_mib() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (a smoke run)")
    parser.add_argument("--seeds", type=int, default=32, help="seeds of the sweep line")
    parser.add_argument("--steps", type=int, default=100_000, help="steps per sweep run")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    print(f"CPU: {cpu_model()}")
    arrays, traced, rss = taxi_memory(1024, 10_000 // scale)
    naive = best_naive(100_000 // scale)
    fast = engine(65, 1_000_000 // scale)
    print(f"{ENV}: naive gymnasium loop   {naive:14,.0f} env steps / CPU-s (best of 3)")
    print(f"{ENV}: rlcompare engine       {fast:14,.0f} env steps / CPU-s (64 seeds)")
    print(f"ratio engine / naive:          {fast / naive:14,.0f} x")
    full = end_to_end(64, 200_000 // scale)
    print(
        f"{ENV}: run_batch end to end   {full:14,.0f} env steps / CPU-s (64 seeds, rows "
        "and evaluations included)"
    )
    sweep_seeds = max(1, args.seeds // scale)
    swept = sweep_end_to_end(sweep_seeds, args.steps)
    naive_again = best_naive(100_000 // scale)
    print(
        f"{ENV}: sweep end to end      {swept:14,.0f} env steps / CPU-s ({sweep_seeds} seeds x "
        f"{args.steps:,} steps, default eval, serial); naive loop beside it "
        f"{naive_again:,.0f}: {swept / naive_again:,.0f} x"
    )
    print(
        f"Taxi-v4, 1,024 seeds: agent arrays {arrays:.1f} MiB, traced peak {traced:.1f} MiB, "
        f"peak RSS growth {rss:.0f} MiB"
    )
    print(f"{ENV}, model-based learners in the engine (8 seeds x {200_000 // scale:,} steps):")
    for label, (env_rate, update_rate) in model_based(8, 200_000 // scale).items():
        print(
            f"  {label:24s} {env_rate:12,.0f} env steps / CPU-s  {update_rate:14,.0f} "
            f"planning updates / CPU-s  ({env_rate / naive:,.1f} x the naive loop)"
        )


if __name__ == "__main__":
    main()
