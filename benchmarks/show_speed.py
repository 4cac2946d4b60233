"""Speed of ``rlcompare show``: the table at once against the table with bootstrap intervals.

Creates a 20-run store (q_learning and sarsa on FrozenLake-v1, 10 seeds each, a few thousand
steps) in a temporary folder, or reuses ``--store``, then times ``rlcompare show STORE`` (the
default: point estimates, no bootstrap) and ``rlcompare show STORE --ci`` (95% intervals at
2,000 replications, what ``show`` always computed before) each in a fresh subprocess, so
import time counts, and prints the median wall time of ``--repeat`` calls side by side.

    python benchmarks/show_speed.py              # builds the store (about a minute on 2 cores)
    python benchmarks/show_speed.py --store S    # times an existing store
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlcompare.versions import cpu_model

# The ``rlcompare`` console script's entry point, run by this interpreter.
RLCOMPARE = [
    sys.executable,
    "-c",
    "import sys; from rlcompare.app.cli import main; sys.exit(main(sys.argv[1:]))",
]


def build_store(store: Path, steps: int) -> None:
    """20 runs: q_learning and sarsa on FrozenLake-v1, seeds 0-9."""
    command = [*RLCOMPARE, "run", "--algo", "q_learning,sarsa"]
    command += ["--env", "FrozenLake-v1", "--seeds", "0-9", "--steps", str(steps)]
    command += ["--store", str(store), "--quiet"]
    subprocess.run(command, check=True, capture_output=True)


def time_show(store: Path, flags: list[str], repeat: int) -> float:
    """Median wall time in seconds of ``rlcompare show STORE *flags`` in a fresh process."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [*RLCOMPARE, "show", str(store), *flags],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="an existing store (default: build one)")
    parser.add_argument("--steps", type=int, default=3000, help="steps per run (default 3000)")
    parser.add_argument("--repeat", type=int, default=3, help="calls per timing (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = args.store
        if store is None:
            store = Path(folder) / "store"
            build_store(store, args.steps)
        with_ci = time_show(store, ["--ci"], args.repeat)
        default = time_show(store, [], args.repeat)
    print(f"CPU: {cpu_model()}")
    print(f"rlcompare show, median of {args.repeat} fresh processes, store {store}")
    print(f"  --ci (2,000 replications, as before): {with_ci:6.2f} s")
    print(f"  default (points, no bootstrap):       {default:6.2f} s")
    print(f"  ratio: {with_ci / default:.1f}x faster")


if __name__ == "__main__":
    main()
