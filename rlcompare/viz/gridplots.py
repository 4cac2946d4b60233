"""Grid-world figures: values as a heatmap and the greedy policy as arrows (FrozenLake,
CliffWalking, DynaMaze). Functions take plain arrays and ``ax=None`` and return ``(fig, ax)``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from rlcompare.viz.style import COLUMN_WIDTH, new_axes

# Arrow (dx, dy) per action in the FrozenLake / CliffWalking convention (0 left, 1 down, 2 right,
# 3 up); y grows downward on an image axis.
ACTION_VECTORS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])


def _grid(array: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    rows, cols = shape
    array = np.asarray(array)
    if array.size != rows * cols or array.ndim not in (1, 2):
        raise ValueError(
            f"{what} of shape {array.shape} does not fit grid {shape}; "
            f"valid: ({rows * cols},) or ({rows}, {cols})"
        )
    return array.reshape(rows, cols)


def grid_values(
    values: np.ndarray,
    shape: tuple[int, int],
    ax: Axes | None = None,
    cmap: str = "viridis",
    log: bool = False,
    annotate: bool | None = None,
    label: str | None = None,
) -> tuple[Figure, Axes]:
    """Heatmap of one value per grid cell (state values, visitation counts...).

    Args:
        values: Shape ``(rows * cols,)`` (state index ``row * cols + col``) or ``(rows, cols)``.
        shape: ``(rows, cols)``.
        ax: Axes to draw on.
        cmap: Colormap.
        log: Log color scale (for visitation counts; zero cells shown blank).
        annotate: Write values in cells; default when the grid has at most 64 cells.
        label: Colorbar label.
    """
    grid = _grid(values, shape, "values").astype(float)
    fig, ax = new_axes(ax, (COLUMN_WIDTH, COLUMN_WIDTH * shape[0] / max(shape[1], 1)))
    shown, norm = grid, None
    if log:  # zero counts have no logarithm: leave those cells blank
        shown = np.ma.masked_where(grid <= 0, grid)
        norm = LogNorm(vmin=shown.min(), vmax=shown.max()) if shown.count() else None
    image = ax.imshow(shown, cmap=cmap, norm=norm, origin="upper")
    fig.colorbar(image, ax=ax, label=label or "")
    if annotate if annotate is not None else grid.size <= 64:
        for (row, col), value in np.ndenumerate(grid):
            dark = not np.ma.is_masked(shown[row, col]) and image.norm(value) < 0.5
            ax.text(
                col,
                row,
                f"{value:.2g}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(shape[1]))
    ax.set_yticks(range(shape[0]))
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.grid(False)
    return fig, ax


def policy_arrows(
    policy: np.ndarray,
    shape: tuple[int, int],
    ax: Axes | None = None,
    walls: np.ndarray | None = None,
    color: str = "black",
) -> tuple[Figure, Axes]:
    """Greedy-policy arrows on a grid (0=left, 1=down, 2=right, 3=up, as in FrozenLake).

    Draw on the ``ax`` of :func:`grid_values` (with ``annotate=False``) to overlay values and
    policy.

    Args:
        policy: Action index per state, shape ``(rows * cols,)`` or ``(rows, cols)``.
        shape: ``(rows, cols)``.
        ax: Axes to draw on; a blank grid by default.
        walls: Boolean mask of cells without an arrow (walls, holes, terminals), shaded gray.
        color: Arrow color.
    """
    actions = _grid(policy, shape, "policy")
    bad = sorted(set(actions.ravel().tolist()) - {0, 1, 2, 3})
    if bad:
        raise ValueError(
            f"policy has invalid action(s) {bad}; valid: 0 (left), 1 (down), 2 (right), 3 (up)"
        )
    mask = np.zeros(shape, bool) if walls is None else _grid(walls, shape, "walls").astype(bool)
    new = ax is None
    fig, ax = new_axes(ax, (COLUMN_WIDTH, COLUMN_WIDTH * shape[0] / max(shape[1], 1)))
    if new:
        ax.set_xlim(-0.5, shape[1] - 0.5)
        ax.set_ylim(shape[0] - 0.5, -0.5)  # row 0 at the top, as the env renders it
        ax.set_aspect("equal")
        ax.set_xticks(range(shape[1]))
        ax.set_yticks(range(shape[0]))
    for row, col in zip(*np.nonzero(mask), strict=True):
        ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, color="0.6"))
    rows, cols = np.nonzero(~mask)
    vectors = ACTION_VECTORS[actions[rows, cols].astype(int)]
    ax.quiver(
        cols,
        rows,
        vectors[:, 0],
        vectors[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1.6,
        pivot="middle",
        color=color,
        width=0.012,
    )
    return fig, ax
