"""Headline numbers of a notebook: rounded, written atomically, printed deterministically."""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

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
# notebooks: each records ``evidence: {approach: [claim, ...]}`` in its headline numbers (a
# sentence of "; "-separated claims is split).
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


class Evidence(NamedTuple):
    """One measured claim of a notebook: its text (the claim and its number, CI or decision)
    and the notebook that measured it."""

    claim: str
    notebook: str

    @property
    def link(self) -> str:
        """The section of the notebook's report page where the number is recorded."""
        return f"{self.notebook}.html#{EVIDENCE_SECTION}"


# Every notebook records its headline numbers, evidence included, under this heading; the
# report page's anchor for it (nbconvert's heading ids).
EVIDENCE_SECTION = "Headline-numbers"


def split_claims(sentence: str) -> list[str]:
    """The claims of an evidence sentence: its ``"; "``-separated parts outside brackets."""
    claims, depth, start = [], 0, 0
    for index, char in enumerate(sentence):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        if depth == 0 and sentence.startswith("; ", index):
            claims.append(sentence[start:index])
            start = index + 2
    claims.append(sentence[start:])
    return [claim.strip() for claim in claims if claim.strip()]


def comparison_table(headlines: Mapping[str, Mapping[str, Any]]) -> Any:
    """The seed's comparison table with a column of measured evidence per approach.

    Args:
        headlines: Output of :func:`load_headlines`.

    Returns:
        A DataFrame indexed by approach: the static columns of :data:`APPROACHES` and
        ``evidence``, a list of :class:`Evidence` per approach (one claim each, in notebook
        order; empty where no notebook has measured the approach yet).
    """
    import pandas as pd

    rows = []
    for approach, columns in APPROACHES.items():
        evidence = [
            Evidence(claim, notebook)
            for notebook, numbers in sorted(headlines.items())
            for name, claims in (numbers.get("evidence") or {}).items()
            if name == approach
            for claim in (claims if isinstance(claims, list) else split_claims(str(claims)))
        ]
        rows.append({"approach": approach, **columns, "evidence": evidence})
    return pd.DataFrame(rows).set_index("approach")


# The comparison table's own style, so it reads the same on the index, on the summary's page
# and in JupyterLab: words never split (a column is at least as wide as its longest word),
# one line per claim, the notebook of each claim linked.
COMPARISON_CLASS = "rlcompare-comparison"
# The class is doubled in the selectors: JupyterLab's own table rule (the lab template of the
# report pages) has the specificity of two classes and an element, and right-aligns.
_C = f"table.{COMPARISON_CLASS}.{COMPARISON_CLASS}"
_COMPARISON_STYLE = f"""<style>
{_C} {{ border-collapse: collapse; font-size: 0.85rem; line-height: 1.35; table-layout: auto;
  width: 100%; }}
{_C} th, {_C} td {{ border: 1px solid #ccc; padding: 0.3rem 0.45rem; vertical-align: top;
  text-align: left; white-space: normal; overflow-wrap: normal; word-break: normal;
  hyphens: manual; max-width: none; }}
{_C} thead th {{ vertical-align: bottom; background: #f4f4f4; }}
{_C} tbody th {{ min-width: 6.5em; }}
{_C} td.evidence {{ min-width: 34em; }}
{_C} td.evidence ul {{ margin: 0; padding-left: 1em; }}
{_C} td.evidence li {{ margin: 0 0 0.2rem 0; text-align: left; }}
{_C} a.source {{ font-size: 0.8em; white-space: nowrap; }}
</style>"""


def _evidence_html(items: Any) -> str:
    if isinstance(items, str):  # a table built elsewhere, one text per cell
        return html.escape(items)
    if not len(items):
        return "<i>no notebook has measured it yet</i>"
    lines = "".join(
        f"<li>{html.escape(item.claim)} "
        f'<a class="source" href="{html.escape(item.link)}">{html.escape(item.notebook)}</a></li>'
        for item in items
    )
    return f"<ul>{lines}</ul>"


def comparison_html(table: Any) -> str:
    """``table`` (:func:`comparison_table`, or any frame of text) as a self-styled HTML table:
    every cell in full, escaped; the index's name left out of the header; evidence as one
    line per claim with a link to the notebook section it comes from."""
    head = "".join(
        f'<th scope="col">{html.escape(str(name).capitalize())}</th>'
        for name in [table.index.name or "", *table.columns]
    )
    rows = []
    for label, row in table.iterrows():
        cells = "".join(
            f'<td class="evidence">{_evidence_html(value)}</td>'
            if column == "evidence"
            else f"<td>{html.escape(str(value))}</td>"
            for column, value in row.items()
        )
        rows.append(f'<tr><th scope="row">{html.escape(str(label))}</th>{cells}</tr>')
    return (
        f'{_COMPARISON_STYLE}<table class="{COMPARISON_CLASS}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def figure_html(png: str | os.PathLike[str], pdf_href: str | None = None, width: str = "") -> str:
    """``<figure>`` of a saved PNG (embedded) with its caption from the provenance and a link
    to its PDF (``pdf_href``, relative to the page; None: no link)."""
    import base64

    from rlcompare.viz.figures import caption_html, read_provenance

    png = Path(png)
    try:
        caption = read_provenance(png).get("caption")
    except (OSError, ValueError):
        caption = None
    data = base64.b64encode(png.read_bytes()).decode()
    style = f' style="width: {width}"' if width else ""
    return (
        f'<figure class="rlcompare-figure" id="{html.escape(png.stem)}">'
        f'<img alt="{html.escape(caption or png.stem)}" src="data:image/png;base64,{data}"{style}>'
        f"<figcaption>{caption_html(png.stem, caption, pdf_href)}</figcaption></figure>"
    )


def show_gallery(figures_dir: str | os.PathLike[str]) -> list[Path]:
    """Displays every PNG in ``figures_dir`` with its caption and a link to its PDF (in a
    notebook); returns them."""
    from IPython.display import HTML, display

    shown = sorted(Path(figures_dir).glob("*.png"))
    for path in shown:
        pdf = path.with_suffix(".pdf")
        href = os.path.relpath(pdf) if pdf.exists() else None
        display(HTML(figure_html(path, href, width="640px")))
    return shown
