"""Search spaces of :func:`rlcompare.tune`, drawn from each algorithm's ``Param`` table.

A space is a set of dimensions, one per tuned hyperparameter: a range of numbers (drawn
uniformly, or uniformly in the logarithm where the ``Param`` says ``log=True``; ints rounded)
or a tuple of choices. Configurations are quasi-random: the points of a scrambled Sobol' or
Halton sequence (``scipy.stats.qmc``) seeded from the tuning seed and the algorithm's name,
mapped through each dimension, so the same call draws the same configurations, and ``n``
points cover the space more evenly than ``n`` independent draws (Bergstra & Bengio, JMLR
2012, on random search; quasi-random points fill the gaps that random ones leave).

Every value a space can produce is valid for its ``Param``: a range is checked against the
parameter's bounds, each choice through ``Param.validate``, when the space is built (before
any run), with a message naming the value and the valid ones.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcompare.errors import SpecError, choices_text
from rlcompare.spec.params import Param
from rlcompare.spec.registry import get_algorithm

SAMPLERS = ("sobol", "halton")


@dataclass(frozen=True)
class Dimension:
    """One tuned hyperparameter.

    Attributes:
        name: The hyperparameter.
        low: Smallest value of a range (None for choices).
        high: Largest value of a range (None for choices).
        log: Drawn uniformly in ``log(value)``.
        integer: Values rounded to ints.
        choices: The values of a categorical dimension (None for a range).
    """

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def value(self, u: float) -> Any:
        """The value at ``u`` in [0, 1) of this dimension."""
        if self.choices is not None:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.log:
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            value = low + u * (high - low)
        value = min(max(value, low), high)
        if self.integer:
            return int(min(max(round(value), math.ceil(low)), math.floor(high)))
        return float(value)

    def describe(self) -> str:
        """``name in [low, high] (log)`` or ``name in {a, b}``."""
        if self.choices is not None:
            return f"{self.name} in {{{', '.join(map(str, self.choices))}}}"
        scale = ", log" if self.log else ""
        kind = "int" if self.integer else "float"
        return f"{self.name} in [{self.low:g}, {self.high:g}] ({kind}{scale})"


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions tuned for one algorithm (the others stay at their values).

    Attributes:
        algo: The algorithm.
        dimensions: One per tuned hyperparameter, in a fixed order (sorted by name).
    """

    algo: str
    dimensions: tuple[Dimension, ...]

    @property
    def names(self) -> list[str]:
        """The tuned hyperparameters."""
        return [d.name for d in self.dimensions]

    def draw(
        self,
        n: int,
        seed: int = 0,
        sampler: str = "sobol",
        first: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """``n`` configurations, the same for the same arguments.

        Args:
            n: How many (>= 1).
            seed: Seed of the scrambling, mixed with the algorithm's name so two algorithms
                do not share points.
            sampler: ``sobol`` (the first ``n`` points of a scrambled Sobol' sequence) or
                ``halton``.
            first: A configuration to put first (the defaults), counted in ``n``.

        Returns:
            ``n`` dicts ``name -> value``.
        """
        from scipy.stats import qmc

        if sampler not in SAMPLERS:
            raise SpecError(f"sampler = {sampler!r} is unknown; {choices_text(SAMPLERS, sampler)}")
        drawn = n - (first is not None)
        configs = [] if first is None else [{k: first[k] for k in self.names}]
        if drawn <= 0:
            return configs
        rng = np.random.default_rng([seed, zlib.crc32(self.algo.encode())])
        d = len(self.dimensions)
        if sampler == "sobol":
            engine = qmc.Sobol(d, scramble=True, seed=rng)
            # A power of two keeps Sobol' balanced; its first `drawn` points are a prefix.
            points = engine.random_base2(max(0, math.ceil(math.log2(drawn))))[:drawn]
        else:
            points = qmc.Halton(d, scramble=True, seed=rng).random(drawn)
        for row in points:
            configs.append(
                {dim.name: dim.value(float(u)) for dim, u in zip(self.dimensions, row, strict=True)}
            )
        return configs

    def describe(self) -> str:
        """One line naming every dimension."""
        return f"{self.algo}: " + "; ".join(d.describe() for d in self.dimensions)


def dimension(name: str, param: Param, given: Any, algo: str) -> Dimension:
    """The dimension of ``param`` from ``given``: ``(low, high)``, a list of choices, or None
    for the ``Param``'s own ``search``. Refuses, naming the value and the valid ones, a range
    or choice outside the parameter's valid values, an empty one, or a log range from 0."""
    where = f"search space of {algo!r}: {name!r}"
    if given is None:
        given = param.search
        if given is None:
            given = (False, True) if param.kind == "bool" else param.choices
        if given is None:
            raise SpecError(
                f"{where} has no declared search range; valid: give one, e.g. {{{name!r}: "
                "(low, high)}} or a list of values"
            )
        if param.search is not None and param.kind in ("int", "float"):
            given = tuple(given)
        else:
            given = list(given)
    if isinstance(given, tuple) and param.kind in ("int", "float"):
        if len(given) != 2:
            raise SpecError(
                f"{where} = {given!r} is invalid; valid: (low, high) or a list of values"
            )
        low, high = (param.validate(name, value, algo) for value in given)
        if not low < high:
            raise SpecError(
                f"{where} = {given!r} is an empty range; valid: (low, high) with low < high"
            )
        if param.log and low <= 0:
            raise SpecError(
                f"{where} = {given!r} starts at {low!r}, but {name!r} is on a log scale; valid: "
                "a range above 0"
            )
        return Dimension(name, low, high, log=param.log, integer=param.kind == "int")
    if isinstance(given, (list, tuple)):
        if not given:
            raise SpecError(f"{where} = {given!r} is empty; valid: one or more values")
        values = tuple(param.validate(name, value, algo) for value in given)
        return Dimension(name, choices=tuple(dict.fromkeys(values)))
    raise SpecError(
        f"{where} = {given!r} is invalid; valid: (low, high) for a number, a list of values, "
        "or None for the declared search range"
    )


def build_space(algo: str, given: Mapping[str, Any] | None = None) -> SearchSpace:
    """The search space of ``algo``: the dimensions ``given`` (name -> ``(low, high)``,
    a list of values, or None for the declared ``Param.search``), else every parameter of
    its table that declares a ``search``.

    Raises:
        SpecError: An unknown hyperparameter, a bad range (see :func:`dimension`), or an empty
            space (nothing given and nothing declared), naming the algorithm.
    """
    table = get_algorithm(algo).params
    if given is None:
        given = {name: None for name, param in table.items() if param.search is not None}
        if not given:
            raise SpecError(
                f"search space of {algo!r} is empty: none of its hyperparameters declares a "
                f"search range; valid: pass space={{{algo!r}: {{name: (low, high)}}}} with "
                f"names from {', '.join(sorted(table)) or '(none)'}"
            )
    if not isinstance(given, Mapping):
        raise SpecError(
            f"search space of {algo!r} = {given!r} is invalid; valid: a mapping name -> "
            "(low, high) or a list of values"
        )
    if not given:
        raise SpecError(
            f"search space of {algo!r} = {{}} is empty; valid: one or more of "
            f"{', '.join(sorted(table))}"
        )
    for name in given:
        if name not in table:
            raise SpecError(
                f"search space of {algo!r} names {name!r}, not one of its hyperparameters; "
                f"{choices_text(sorted(table), name)}"
            )
    dims = tuple(dimension(name, table[name], given[name], algo) for name in sorted(given))
    return SearchSpace(algo, dims)


def build_spaces(
    algos: Sequence[str], space: Mapping[str, Any] | None = None
) -> dict[str, SearchSpace]:
    """The space of each algorithm: ``space`` maps an algorithm to its own dimensions (an
    algorithm it does not name searches its declared ranges), or, when no key of it is an
    algorithm of ``algos``, gives the same dimensions to every one."""
    space = None if space is None else dict(space)
    if space is not None and not isinstance(space, dict):
        raise SpecError(f"space = {space!r} is invalid; valid: a mapping")
    per_algo = space is not None and any(key in algos for key in space)
    if per_algo:
        extra = [key for key in space if key not in algos]  # type: ignore[union-attr]
        if extra:
            raise SpecError(
                f"space names {extra[0]!r}, not one of the tuned algorithms; "
                f"{choices_text(algos, extra[0])}"
            )
        return {a: build_space(a, space.get(a)) for a in algos}  # type: ignore[union-attr]
    return {a: build_space(a, space) for a in algos}


__all__ = ["SAMPLERS", "Dimension", "SearchSpace", "build_space", "build_spaces", "dimension"]
