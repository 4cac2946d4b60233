"""Cost of ``rlcompare card ALGO --quick``: from an empty store, then again on the same store.

The second card starts no run (the store holds the built-ins' reference runs and the
algorithm's own): its time is the scoring and the writing of the page. Each card runs in a
fresh subprocess, so import time counts, with the command's default process executor. Prints
both wall times, their ratio, the CPU and the load average (the issue asks for a quick card
of a tabular algorithm within 3 minutes on 2 cores).

    python benchmarks/card_cost.py                 # q_learning
    python benchmarks/card_cost.py --algo sarsa
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlcompare.versions import cpu_model

RLCOMPARE = [
    sys.executable,
    "-c",
    "import sys; from rlcompare.app.cli import main; sys.exit(main(sys.argv[1:]))",
]


def timed_card(algo: str, store: Path, out: Path) -> float:
    start = time.perf_counter()
    command = [*RLCOMPARE, "card", algo, "--quick", "--store", str(store), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algo", default="q_learning")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store, out = Path(folder) / "store", Path(folder) / "card"
        load = os.getloadavg()[0]
        cold = timed_card(args.algo, store, out)
        warm = timed_card(args.algo, store, out)
        runs = len(list(store.glob("*.parquet")))
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores, load average {load:.1f} at the start")
    print(f"rlcompare card {args.algo} --quick: empty store {cold:.1f} s ({runs} runs),")
    print(f"  same store again {warm:.1f} s (no run): {cold / warm:.1f}x")


if __name__ == "__main__":
    main()
