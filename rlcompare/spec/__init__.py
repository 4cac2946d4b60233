"""What to run: RunSpec (validated when built), grid, hyperparameter declarations (Param) and
the algorithm registry. Knows envs (to validate ids and kwargs), nothing above."""

from rlcompare.spec.runspec import RunSpec, grid

__all__ = ["RunSpec", "grid"]
