"""Figures of a comparison's verdict: who beats whom, and the runs each decision needed.

Both read the tables of :class:`rlcompare.studies.verdict.Verdict` (plain DataFrames), take
an optional ``ax`` and return ``(fig, ax)``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from rlcompare.viz.style import algo_colors, new_axes

# Row beats column, row loses to column, no difference found, undecided / not compared.
_CELLS = {"better": 1.0, "worse": -1.0, "no difference found": 0.0}
_CELL_TEXT = {1.0: "better", -1.0: "worse", 0.0: "no diff."}
_CELL_COLORS = ListedColormap(["#d9795f", "#e8e8e8", "#5f9bd9"])


def decision_matrix(
    decisions: pd.DataFrame, env: str | None = None, ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Who beats whom on one env: cell (row, column) says whether the row's contender was
    found better than, worse than, or not different from the column's; blank cells were not
    compared.

    Args:
        decisions: ``Verdict.decisions`` (columns ``env, a, b, decision, interim``).
        env: The env to draw (default: the only one).
        ax: Axes to draw on.
    """
    envs = list(dict.fromkeys(decisions["env"]))
    if env is None:
        if len(envs) != 1:
            raise ValueError(f"the decisions cover {len(envs)} envs; pick one of {envs}")
        env = envs[0]
    rows = decisions[decisions["env"] == env]
    if rows.empty:
        raise ValueError(f"no decision on env {env!r}; envs: {envs}")
    names = list(dict.fromkeys([*rows["a"], *rows["b"]]))
    grid = np.full((len(names), len(names)), np.nan)
    interims = np.full_like(grid, np.nan)
    for row in rows.itertuples():
        i, j = names.index(row.a), names.index(row.b)
        value = _CELLS.get(row.decision, np.nan)
        grid[i, j], grid[j, i] = value, -value if value == value else value
        interims[i, j] = interims[j, i] = row.interim if row.interim == row.interim else np.nan
    size = 0.6 * len(names) + 1.4
    fig, ax = new_axes(ax, (size + 0.6, size))
    ax.imshow(np.ma.masked_invalid(grid), cmap=_CELL_COLORS, vmin=-1.5, vmax=1.5)
    for (i, j), value in np.ndenumerate(grid):
        if value == value:
            when = f"\nk={int(interims[i, j])}" if interims[i, j] == interims[i, j] else ""
            ax.text(j, i, _CELL_TEXT[value] + when, ha="center", va="center", fontsize=6)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.grid(False)
    ax.set_xlabel("against")
    ax.set_title(env)
    return fig, ax


def runs_used(table: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Runs each comparison used (bars) against a fixed design with the same error control
    sized to the power target at the observed effect (diamonds; an arrow at the right edge
    where no fixed design reaches it, the observed effect being 0), from
    :func:`rlcompare.studies.verdict.fixed_design_runs`."""
    several = table["env"].nunique() > 1
    labels = [f"{r.a} vs {r.b}" + (f" ({r.env})" if several else "") for r in table.itertuples()]
    fig, ax = new_axes(ax, (3.5, 0.35 * len(table) + 1.2))
    y = np.arange(len(table))[::-1]
    colors = algo_colors(table["a"])
    ax.barh(y, table["runs_sequential"], color=[colors[a] for a in table["a"]], height=0.6)
    fixed = table["runs_fixed"].to_numpy(dtype=float)
    finite = np.isfinite(fixed)
    top = max(float(table["runs_sequential"].max()), float(fixed[finite].max(initial=0.0)))
    ax.scatter(fixed[finite], y[finite], marker="D", color="black", zorder=3, s=14)
    # Log scale: a fixed design at a small effect needs orders of magnitude more runs.
    ax.set_xscale("log")
    right = top * 3 if math.isfinite(top) and top > 0 else 10
    for yi in y[~finite]:
        ax.annotate("", (right, yi), (right / 2, yi), arrowprops={"arrowstyle": "->"})
    ax.set_xlim(1, right)
    ax.set_yticks(y, labels)
    ax.set_xlabel("runs, both contenders\n(bars: sequential test; \u25c6: fixed design)")
    ax.grid(axis="y", visible=False)
    return fig, ax
