"""Headline numbers of a notebook: rounded, written atomically, printed deterministically."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Decimals kept in headline numbers: enough to compare, few enough to be stable across BLAS.
DECIMALS = 3


def _rounded(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _rounded(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, DECIMALS)
    return value


def record_headline(path: str | os.PathLike[str], numbers: Mapping[str, Any]) -> dict[str, Any]:
    """Writes ``numbers`` (rounded) as JSON to ``path`` and prints them, one key a line.

    Non-finite floats become null. Returns the rounded mapping.
    """
    rounded = _rounded(numbers)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rounded, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    for key, value in rounded.items():
        print(f"{key}: {json.dumps(value, sort_keys=True)}")
    return rounded
