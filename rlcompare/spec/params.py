"""Hyperparameter declarations: one table drives validation, defaults, CLI and `algos`."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rlcompare.errors import SpecError, choices_text

_KINDS = ("int", "float", "bool", "str", "int_list", "float_or_str")


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    Attributes:
        default: Value used when the spec does not set it.
        kind: One of ``int, float, bool, str, int_list, float_or_str`` (or the type itself:
            ``int``, ``float``, ``bool``, ``str``).
        doc: One line on what it does.
        low: Smallest valid value (numbers), or None.
        high: Largest valid value (numbers), or None.
        low_open: Whether ``low`` itself is excluded.
        high_open: Whether ``high`` itself is excluded.
        choices: Valid values for ``str`` parameters.
        nullable: Whether None is a valid value.
        log: Whether the value acts on a log scale (step sizes, learning rates): a tuner
            draws it uniformly in its logarithm (``rlcompare.tune``).
        search: Where ``rlcompare.tune`` searches by default: ``(low, high)`` for numbers, a
            tuple of choices otherwise; None leaves the parameter at its value unless a
            search space names it. Checked against the valid values when the algorithm
            registers.
    """

    default: Any
    kind: str
    doc: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    log: bool = False
    search: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.kind, type) and self.kind.__name__ in _KINDS:
            # Param(0.5, float) reads as well as Param(0.5, "float").
            object.__setattr__(self, "kind", self.kind.__name__)
        if isinstance(self.choices, list):
            object.__setattr__(self, "choices", tuple(self.choices))
        if isinstance(self.search, list):
            object.__setattr__(self, "search", tuple(self.search))
        if self.kind not in _KINDS:
            raise ValueError(f"Param kind {self.kind!r} unknown; valid: {', '.join(_KINDS)}")

    def valid_text(self) -> str:
        """Describes the valid values, e.g. ``float in (0, 1]`` or ``one of a, b``."""
        if self.choices is not None:
            text = "one of " + ", ".join(self.choices)
        elif self.low is not None or self.high is not None:
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            left = "(" if self.low_open or self.low is None else "["
            right = ")" if self.high_open or self.high is None else "]"
            text = f"{self.kind} in {left}{lo}, {hi}{right}"
        elif self.kind == "int_list":
            text = "list of positive ints"
        else:
            text = self.kind
        return text + (" or None" if self.nullable else "")

    def validate(self, name: str, value: Any, algo: str = "") -> Any:
        """Returns ``value`` normalised to this kind, or raises SpecError naming both."""
        where = f"hyperparameter {name!r}" + (f" of {algo!r}" if algo else "")
        if value is None:
            if self.nullable:
                return None
            raise SpecError(f"{where} = None is invalid; valid: {self.valid_text()}")
        value = self._coerce(where, value)
        if self.choices is not None and value not in self.choices:
            raise SpecError(f"{where} = {value!r} is invalid; {choices_text(self.choices, value)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise SpecError(f"{where} = {value!r} is not finite; valid: {self.valid_text()}")
            too_low = self.low is not None and (
                value < self.low or (self.low_open and value == self.low)
            )
            too_high = self.high is not None and (
                value > self.high or (self.high_open and value == self.high)
            )
            if too_low or too_high:
                raise SpecError(f"{where} = {value!r} is out of range; valid: {self.valid_text()}")
        return value

    def check_default(self, name: str, algo: str) -> None:
        """Raises ValueError when the default is not one of this parameter's own valid values
        (``Param(1.5, float, low=0, high=1)``): caught when the algorithm registers, before
        any spec resolves it, naming the parameter, the value and the range. A None default
        passes: it means "no default" (a value the spec must give, checked where it is used).
        The values of ``search`` must be valid too."""
        if self.default is not None:
            try:
                self.validate(name, self.default)
            except SpecError as error:
                raise ValueError(
                    f"hyperparameter {name!r} of algorithm {algo!r}: its default "
                    f"{self.default!r} is not one of its own valid values; valid: a default in "
                    f"{self.valid_text()}"
                ) from error
        # A search range is checked here too, so a tuner never draws an invalid value.
        for value in self.search or ():
            try:
                self.validate(name, value)
            except SpecError as error:
                raise ValueError(
                    f"hyperparameter {name!r} of algorithm {algo!r}: its search {self.search!r} "
                    f"holds {value!r}, not one of its valid values; valid: {self.valid_text()}"
                ) from error

    def _coerce(self, where: str, value: Any) -> Any:
        bad = SpecError(
            f"{where} = {value!r} has type {type(value).__name__}; valid: {self.valid_text()}"
        )
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise bad
            return value
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    return int(value)
                raise bad
            return int(value)
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            return float(value)
        if self.kind == "str":
            if not isinstance(value, str):
                raise bad
            return value
        if self.kind == "float_or_str":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise bad
            return float(value) if not isinstance(value, str) else value
        # int_list
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        ):
            raise bad
        return tuple(int(v) for v in value)

    def parse(self, text: str) -> Any:
        """Parses a CLI string (``--set name=text``) into this parameter's kind."""
        if text.lower() in ("none", "null") and self.nullable:
            return None
        if self.kind == "bool":
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            return text
        if self.kind in ("str",):
            return text
        if self.kind == "int_list":
            try:
                return [int(v) for v in text.strip("[]()").split(",") if v.strip()]
            except ValueError:
                return text
        return parse_literal(text)


def parse_literal(text: str) -> Any:
    """A command-line value as JSON (``0.5``, ``true``, ``[64, 64]``), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _check_names(table: Mapping[str, Param], names: Iterable[str], algo: str) -> None:
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise SpecError(
            f"unknown hyperparameter {unknown[0]!r} for algo {algo!r}; "
            f"{choices_text(sorted(table), unknown[0])}"
        )


def parse_params(table: Mapping[str, Param], texts: Mapping[str, str], algo: str) -> dict[str, Any]:
    """Parses command-line values (``--set name=text``) into ``table``'s kinds.

    Values are validated where every spec's are, by ``resolve_params`` when the RunSpec is
    built (a list value is a sweep for ``grid``, as in Python).

    Returns:
        The given names only, parsed (defaults are left to the RunSpec).

    Raises:
        SpecError: an unknown name, with the valid names.
    """
    _check_names(table, texts, algo)
    return {name: table[name].parse(text) for name, text in texts.items()}


def resolve_params(
    table: Mapping[str, Param], given: Mapping[str, Any], algo: str
) -> dict[str, Any]:
    """Validates ``given`` against ``table`` and fills in defaults.

    Raises:
        SpecError: an unknown name (with the valid names) or an invalid value.
    """
    _check_names(table, given, algo)
    resolved = {name: param.default for name, param in table.items()}
    for name, value in given.items():
        resolved[name] = table[name].validate(name, value, algo)
    return resolved
