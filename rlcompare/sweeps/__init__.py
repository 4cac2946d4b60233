"""Many runs: expand specs, skip stored runs, batch seeds, dispatch to an executor (serial,
process pool, Ray) and write each result to the store as it arrives."""

from rlcompare.sweeps.driver import sweep

__all__ = ["sweep"]
