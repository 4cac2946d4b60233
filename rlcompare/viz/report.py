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


# The seed's comparison, one row per family of methods. The measured evidence comes from the
# notebooks: each records ``evidence: {approach: sentence}`` in its headline numbers.
APPROACHES: dict[str, dict[str, str]] = {
    "Q-learning": {
        "mechanism": "learns Q(s, a) by TD bootstrapping on max_a' Q(s', a'); acts greedily",
        "data requirement": "any experience: off-policy, learns from replay and from logs",
        "continuous actions": "no: needs a max over actions (discretize, or use SAC)",
        "convergence guarantee": "tabular: to Q* with Robbins-Monro steps and full coverage",
        "sample efficiency": "moderate; replay reuses data",
        "corrective planning": "learns which corrective action maximizes long-term success",
    },
    "Policy gradient (PPO)": {
        "mechanism": "ascends the gradient of expected return of a stochastic policy",
        "data requirement": "on-policy: fresh rollouts of the current policy",
        "continuous actions": "yes, natively (Gaussian policy)",
        "convergence guarantee": "to a local optimum",
        "sample efficiency": "low: data is used for a few epochs, then discarded",
        "corrective planning": "possible, but needs many live interactions",
    },
    "Model-based": {
        "mechanism": "learns transition and reward models and plans on them (Dyna-Q, "
        "prioritized sweeping, value iteration); PSRL explores by sampling models from a "
        "posterior",
        "data requirement": "real experience (or logs) plus compute for planning",
        "continuous actions": "with function approximation of the model (MPC)",
        "convergence guarantee": "to the optimal policy of its model (certainty equivalence); "
        "to Q* when the model is right",
        "sample efficiency": "potentially high: a good model allows planning without env "
        "interaction",
        "corrective planning": "pre-plans corrections when the service's failure model is "
        "learnable",
    },
    "Imitation (BC)": {
        "mechanism": "supervised learning of the demonstrator's actions",
        "data requirement": "demonstrations (e.g. a runbook's logs)",
        "continuous actions": "yes",
        "convergence guarantee": "to the demonstrator at best",
        "sample efficiency": "no env interaction, but bounded by the demonstrator",
        "corrective planning": "copies the runbook, mistakes included",
    },
}


def load_headlines(store_root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``notebook -> headline numbers`` for every ``<store_root>/<notebook>/summary.json``."""
    root = Path(store_root)
    found = {}
    for path in sorted(root.glob("*/summary.json")):
        found[path.parent.name] = json.loads(path.read_text())
    return found


def comparison_table(headlines: Mapping[str, Mapping[str, Any]]) -> Any:
    """The seed's comparison table with a column of measured evidence per approach.

    Args:
        headlines: Output of :func:`load_headlines`.

    Returns:
        A DataFrame indexed by approach: the static columns of :data:`APPROACHES` and
        ``evidence`` (sentences from the notebooks, each tagged with its notebook).
    """
    import pandas as pd

    rows = []
    for approach, columns in APPROACHES.items():
        evidence = [
            f"{text} [{notebook}]"
            for notebook, numbers in sorted(headlines.items())
            for name, text in (numbers.get("evidence") or {}).items()
            if name == approach
        ]
        rows.append(
            {
                "approach": approach,
                **columns,
                "evidence": "; ".join(evidence) or "no notebook has run yet",
            }
        )
    return pd.DataFrame(rows).set_index("approach")


def show_gallery(figures_dir: str | os.PathLike[str]) -> list[Path]:
    """Displays every PNG in ``figures_dir`` with its caption (in a notebook); returns them."""
    from IPython.display import Image, Markdown, display

    from rlcompare.viz.figures import read_provenance

    shown = sorted(Path(figures_dir).glob("*.png"))
    for path in shown:
        caption = read_provenance(path).get("caption") or path.stem
        display(Markdown(f"**{path.stem}**: {caption}"), Image(filename=str(path), width=640))
    return shown
