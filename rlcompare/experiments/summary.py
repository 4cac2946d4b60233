"""Notebook 00: the seed's comparison table rebuilt from the headline numbers every other
notebook recorded, shown in full.

pandas cuts cell text to ``display.max_colwidth`` (50 characters) with "…", which leaves
every cell of the table, the evidence included, unreadable; :func:`readable_table` renders
it as an HTML table that shows each cell whole, in JupyterLab and in exported HTML alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from rlcompare.viz.report import comparison_html, comparison_table, load_headlines, show_gallery

__all__ = [
    "approaches_with_evidence",
    "comparison_table",
    "headline",
    "load_headlines",
    "notebooks_with_results",
    "readable_table",
    "show_gallery",
]


class ReadableTable:
    """A table shown in full: every cell whole and escaped, words never split, evidence as
    one line per claim linked to the notebook section it comes from (see
    :func:`rlcompare.viz.report.comparison_html`). Displays as HTML in JupyterLab and in any
    HTML export of the notebook."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table

    def to_html(self) -> str:
        return comparison_html(self.table)

    def _repr_html_(self) -> str:
        return self.to_html()


def readable_table(table: pd.DataFrame) -> ReadableTable:
    """``table`` shown in full, without pandas' cut at ``display.max_colwidth``.

    Args:
        table: :func:`comparison_table` (indexed by approach, an ``evidence`` column of
            claims), or any frame of text.
    """
    return ReadableTable(table)


def approaches_with_evidence(table: pd.DataFrame) -> list[str]:
    """Sorted approaches with at least one measured claim."""
    return sorted(approach for approach, items in table["evidence"].items() if len(items))


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
