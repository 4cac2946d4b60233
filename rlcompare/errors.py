"""Exceptions that users see. Every message names the bad value and the valid ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SpecError(ValueError):
    """Bad user input, raised before any training starts."""


class StoreError(RuntimeError):
    """A result store could not be written or read."""


class CorruptResultError(StoreError):
    """A file in the store is not a readable result."""


class Diverged(RuntimeError):
    """Raised by an agent whose values or loss became non-finite; the run is kept as diverged."""


def choices_text(valid: Iterable[object], bad: object | None = None) -> str:
    """Lists valid choices, leading with close matches to ``bad`` when there are any."""
    valid = [str(v) for v in valid]
    close = difflib.get_close_matches(str(bad), valid, n=3) if bad is not None else []
    listed = ", ".join(valid) if len(valid) <= 40 else ", ".join(valid[:40]) + ", ..."
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"valid: {listed}{hint}"
