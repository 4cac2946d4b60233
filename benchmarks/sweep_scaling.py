"""Sweep scaling: the same grid under the serial, process and Ray executors on this machine.

The grid is 32 tabular runs (Q-learning on FrozenLake-v1, 4 step sizes x 8 seeds, batched
into seed tasks) plus 8 DQN runs (CartPole-v1, 8 seeds). Each executor writes to a fresh
store; wall times are measured side by side in one process and printed with speedups
relative to serial, and Ray's overhead per task (Ray wall time minus process wall time,
divided by the number of tasks). On 2 cores expect at most 2x.

With ``--two-node`` it also measures Ray with two nodes on this machine, as
``tests/test_multinode.py`` starts them (a head with no CPUs and a second node in its own
mount namespace, which sees none of the driver's files, every task pinned to it), beside a
one-node Ray cluster: on one machine this shows the overhead of the second node (object
transfers, remote scheduling), not a speed-up. Both are timed on the grid and on tiny tasks
(0 training steps' worth of work), whose wall time per task is the per-task overhead.

With ``--small`` it measures what a notebook user meets first (issue 29 item 6): a sweep of
4 short runs, serial beside the process executor's first sweep (workers started: cold) and
its next sweeps (workers kept warm in this process), and the old behaviour (new workers for
every sweep) as ratios to serial.

    python benchmarks/sweep_scaling.py [--quick] [--workers N] [--two-node | --small]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import rlcompare
from rlcompare.sweeps.executors import shutdown_workers, start_workers
from rlcompare.sweeps.tasks import plan_tasks
from rlcompare.versions import cpu_model


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


def tiny(count: int = 40) -> list[rlcompare.RunSpec]:
    """Runs that do almost no work, one task each: their wall time is dispatch overhead."""
    return rlcompare.grid(
        "random", "FrozenLake-v1", count, steps=10, eval_episodes=1, experiment="tiny"
    )


def timed(
    specs: list[rlcompare.RunSpec], executor: str, workers: int, root: Path, **options: object
) -> float:
    began = time.perf_counter()
    frame = rlcompare.sweep(
        specs, root / executor, executor=executor, workers=workers, progress=False, **options
    )
    elapsed = time.perf_counter() - began
    if frame["run_id"].nunique() != len(specs) or frame.attrs["failed"]:
        raise RuntimeError(f"{executor}: incomplete sweep ({frame.attrs['failed']})")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--two-node", action="store_true", help="also Ray on two nodes")
    parser.add_argument("--small", action="store_true", help="only 4 short runs, cold / warm")
    parser.add_argument("--repeats", type=int, default=3, help="warm sweeps timed (--small)")
    args = parser.parse_args()
    if args.small:
        small_sweeps(args.workers, args.repeats)
        return
    if args.two_node:
        two_nodes(grid(args.quick), args.workers)
        return
    specs = grid(args.quick)
    tasks = len(plan_tasks(specs, args.workers))
    import ray

    # "local", as the Ray executor does: never join a cluster that `ray start` left behind.
    ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
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


def small() -> list[rlcompare.RunSpec]:
    """4 short runs as a new user writes them: Q-learning, 4 seeds, 5,000 steps each."""
    return rlcompare.grid("q_learning", "FrozenLake-v1", 4, steps=5_000, experiment="small")


def small_sweeps(workers: int, repeats: int) -> None:
    """Serial beside the process executor on a sweep of 4 short runs, in one process: its
    first sweep (cold: workers start, the driver runs tasks meanwhile), its next ones (warm),
    and new workers every sweep, started and waited for before the sweep (the behaviour before
    the pool was kept and the driver took tasks), each timed on a fresh store."""
    specs = small()
    times: dict[str, list[float]] = {"serial": [], "cold": [], "warm": [], "new each": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        counter = iter(range(10_000))

        def once(kind: str, executor: str) -> None:
            began = time.perf_counter()
            if kind == "new each":
                start_workers(workers, wait_ready=True)
            timed(specs, executor, workers, root / f"{kind}{next(counter)}")
            times[kind].append(time.perf_counter() - began)

        once("serial", "serial")  # the driver's own imports (numba kernels) paid here, untimed
        times["serial"].clear()
        shutdown_workers()
        once("cold", "process")
        for _ in range(repeats):
            once("warm", "process")
            once("serial", "serial")
            shutdown_workers()  # as every sweep did before: start new workers, wait for them
            once("new each", "process")
        shutdown_workers()
    serial = statistics.median(times["serial"])
    print(f"{len(specs)} runs ({len(plan_tasks(specs, workers))} tasks), {workers} workers")
    print(f"CPU: {cpu_model()}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    print(f"medians of {repeats} (cold: one), seconds of wall time and ratio to serial")
    for kind, label in (
        ("serial", "serial"),
        ("cold", "process, first sweep (cold, driver helps)"),
        ("warm", "process, next sweeps (warm)"),
        ("new each", "process, new workers every sweep, waited for (before)"),
    ):
        seconds = statistics.median(times[kind])
        print(f"{label:>55}: {seconds:6.2f} s   {seconds / serial:5.2f}x serial")


def two_nodes(specs: list[rlcompare.RunSpec], workers: int) -> None:
    """One-node Ray beside two-node Ray (tasks pinned to the second node), grid and tiny."""
    import importlib.util
    import secrets

    # Ray reads RAY_AUTH_MODE when it is imported and keeps the first auth token this process
    # loads, so both are set before ray is imported, and both clusters share the token: a
    # token set between the two connections never reaches the second (InvalidAuthToken).
    token = secrets.token_hex(32)
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    import ray

    test = Path(__file__).resolve().parent.parent / "tests" / "test_multinode.py"
    module_spec = importlib.util.spec_from_file_location("test_multinode", test)
    multinode = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
    module_spec.loader.exec_module(multinode)  # type: ignore[union-attr]
    results: dict[str, dict[str, float]] = {}
    sweeps = {"grid": specs, "tiny": tiny()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = multinode.Cluster(root)
        cluster.env["RAY_AUTH_TOKEN"] = token
        # The two-node cluster's settings (health checks, timeouts) for the one-node one too.
        os.environ.update({k: v for k, v in cluster.env.items() if k.startswith("RAY_")})
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
        results["ray, 1 node"] = {
            name: timed(todo, "ray", workers, root / f"one-{name}") for name, todo in sweeps.items()
        }
        ray.shutdown()
        try:
            cluster.start_head()
            cluster.start_far()
            cluster.wait_for_far()
            # Connected here, outside the timings, as for one node. Passed to each sweep, the
            # address (127.0.0.1) differs from the one Ray reports (the node's IP), so every
            # sweep would reconnect: a new job, its workers started cold, inside the timing.
            ray.init(address=cluster.address, log_to_driver=False)
            pinned = {"resources": {"far": 1}}
            results["ray, 2 nodes"] = {
                name: timed(todo, "ray", workers, root / f"two-{name}", **pinned)
                for name, todo in sweeps.items()
            }
        finally:
            ray.shutdown()
            cluster.stop()
    print(f"{len(specs)} grid runs; {len(sweeps['tiny'])} tiny tasks; {workers} worker CPUs")
    print("One machine: the second node adds overhead; this is not a speed-up measurement.")
    for setup, times in results.items():
        per_task = times["tiny"] / len(sweeps["tiny"]) * 1000
        print(
            f"{setup:>13}: grid {times['grid']:7.1f} s   tiny {times['tiny']:6.2f} s "
            f"= {per_task:6.1f} ms per task"
        )
    extra = (results["ray, 2 nodes"]["tiny"] - results["ray, 1 node"]["tiny"]) / len(sweeps["tiny"])
    print(f"second-node overhead: {extra * 1000:+.1f} ms per task")


if __name__ == "__main__":
    main()
