"""Notebook 00: the seed's comparison table rebuilt from the headline numbers every other
notebook recorded, shown in full.

pandas cuts cell text to ``display.max_colwidth`` (50 characters) with "…", which leaves
every cell of the table, the evidence included, unreadable; :func:`readable_table` renders
it as an HTML table that wraps each cell instead, in JupyterLab and in exported HTML alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from rlcompare.viz.report import comparison_table, load_headlines, show_gallery

# Cell styles of the readable table: wrap (and keep the "; " breaks of) long text, align the
# rows of a family at the top, give the evidence room to read.
CELL_STYLE = [
    ("white-space", "pre-wrap"),
    ("word-break", "normal"),
    ("overflow-wrap", "anywhere"),
    ("text-align", "left"),
    ("vertical-align", "top"),
    ("max-width", "22em"),
]
EVIDENCE_STYLE = [("min-width", "32em"), ("max-width", "60em")]

__all__ = [
    "approaches_with_evidence",
    "comparison_table",
    "headline",
    "load_headlines",
    "notebooks_with_results",
    "readable_table",
    "show_gallery",
]


def readable_table(table: pd.DataFrame) -> Styler:
    """``table`` as a Styler that shows every cell in full, wrapped.

    A Styler renders to HTML (``_repr_html_``, ``to_html``) without pandas' column-width
    cut, in JupyterLab and in any HTML export of the notebook. Text is HTML-escaped.

    Args:
        table: :func:`comparison_table` (indexed by approach, an ``evidence`` column), or any
            frame of text.
    """
    styles = [
        {"selector": "td, th", "props": CELL_STYLE},
        {"selector": "thead th", "props": [("vertical-align", "bottom")]},
    ]
    styler = table.style.set_table_styles(styles).format(escape="html")
    if "evidence" in table:
        styler = styler.set_table_styles(
            {"evidence": [{"selector": "td", "props": EVIDENCE_STYLE}]}, overwrite=False
        )
    return styler


def approaches_with_evidence(table: pd.DataFrame) -> list[str]:
    """Sorted approaches whose evidence quotes at least one notebook (``[<notebook>]``)."""
    return sorted(approach for approach, text in table["evidence"].items() if "[" in text)


def notebooks_with_results(headlines: Mapping[str, Any]) -> list[str]:
    """Sorted notebooks that recorded headline numbers, this summary left out."""
    return sorted(name for name in headlines if name != "00_summary")


def headline(headlines: Mapping[str, Any], table: pd.DataFrame) -> dict[str, Any]:
    """The summary's headline numbers: which notebooks have results, which approaches have
    measured evidence."""
    return {
        "notebooks_with_results": notebooks_with_results(headlines),
        "approaches_with_evidence": approaches_with_evidence(table),
    }
