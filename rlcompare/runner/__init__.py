"""How one run happens: RunContext, the one evaluation protocol, run() and run_batch(), and
the schema of the tidy rows a run produces."""

from rlcompare.runner.runs import RunResult, run, run_batch

__all__ = ["RunResult", "run", "run_batch"]
