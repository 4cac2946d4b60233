"""A report card's output folder: the capability chart, a figure and a decision table per
item, and provenance, as a self-contained HTML page (``index.html``, figures embedded, no
network) and a LaTeX appendix (``card.tex``, booktabs tables and the PDF figures; the
appendix body is ``card_appendix.tex`` for ``\\input`` in a paper).

Plots read DataFrames only (the studies layer computes them): ``table`` has one row per item
(``item, title, score, best_reference, best_score, status, seconds, definition``), and each
item's ``scores`` one row per run (``task, contender, seed, run_id, score``).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rlcompare.viz.figures import save_figure
from rlcompare.viz.style import algo_colors

INDEX = "index.html"
TEX = "card.tex"
APPENDIX = "card_appendix.tex"
CHART = "capabilities"
# Counts decoded images once the page has loaded (<body data-images-rendered="N">), as the
# suite's report does, so a browser check can read it.
_IMAGE_CHECK = (
    "<script>window.addEventListener('load', () => { document.body.dataset.imagesRendered = "
    "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length; });</script>"
)
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
figure { margin: 1rem 0; max-width: 40rem; } figure img { width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #444; }
.na { color: #888; } .definition { font-size: 0.9rem; color: #333; }
"""
_DECISION_HEADERS = {
    "task": "task",
    "reference": "built-in",
    "decision": "decision",
    "runs": "runs",
    "means": "mean score",
    "difference": "difference [95% CI]",
    "p_improvement": "P(better)",
}


# ----------------------------------------------------------------------------- figures
def capability_chart(table: pd.DataFrame, algo: str, ax: Any = None) -> tuple[Figure, Any]:
    """Horizontal bars: the algorithm's score of each item and, beside it, the best built-in
    of each of its tasks averaged the same way (named at the bar's end); an item not
    applicable is marked "n/a"."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 0.45 * len(table) + 1.2))
    else:
        fig = ax.figure
    y = np.arange(len(table))[::-1]
    color = algo_colors([algo])[algo]
    scores = table["score"].astype(float)
    best = table["best_score"].astype(float)
    ax.barh(y + 0.18, scores.fillna(0.0), height=0.36, color=color, label=algo)
    ax.barh(y - 0.18, best.fillna(0.0), height=0.36, color="0.7", label="best built-in per task")
    for yi, score, ref in zip(y, scores, table["best_reference"], strict=True):
        if np.isnan(score):
            ax.text(0.01, yi + 0.18, "n/a", va="center", fontsize=8, color="0.4")
        if isinstance(ref, str):
            ax.text(1.01, yi - 0.18, ref, va="center", fontsize=7, color="0.35")
    ax.set_yticks(y, table["title"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (0 worst, 1 best)")
    ax.legend(loc="lower right", fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.0), ncol=2)
    fig.tight_layout()
    return fig, ax


def item_figure(scores: pd.DataFrame, title: str, ax: Any = None) -> tuple[Figure, Any]:
    """Per task, each contender's per-run scores (dots) and their mean (a bar)."""
    tasks = list(dict.fromkeys(scores["task"]))
    names = list(dict.fromkeys(scores["contender"]))
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(tasks) * len(names) / 2 + 2), 2.8))
    else:
        fig = ax.figure
    colors = algo_colors(names)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        for j, task in enumerate(tasks):
            values = scores.loc[
                (scores["task"] == task) & (scores["contender"] == name), "score"
            ].to_numpy()
            if values.size == 0:
                continue
            x = j - 0.4 + width * (i + 0.5)
            ax.bar(x, values.mean(), width=width * 0.9, color=colors[name], alpha=0.35)
            jitter = np.linspace(-width * 0.25, width * 0.25, values.size)
            ax.plot(x + jitter, values, "o", ms=3, color=colors[name])
    ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_ylim(-0.03, 1.05)
    ax.set_ylabel("score per run")
    ax.set_title(title, fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[n]) for n in names]
    ax.legend(handles, names, fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig, ax


# ----------------------------------------------------------------------------- tables
def decision_rows(decisions: pd.DataFrame) -> list[dict[str, str]]:
    """The decision table as display strings (the keys of the headers)."""
    rows = []
    for r in decisions.itertuples():
        rows.append(
            {
                "task": str(r.task),
                "reference": str(r.reference),
                "decision": str(r.decision),
                "runs": f"{r.runs_algo} + {r.runs_reference}",
                "means": f"{r.mean_algo:.2f} vs {r.mean_reference:.2f}",
                "difference": f"{r.difference:+.2f} [{r.difference_low:+.2f}, "
                f"{r.difference_high:+.2f}]",
                "p_improvement": f"{r.p_improvement:.2f}",
            }
        )
    return rows


def _score_text(value: Any) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.2f}"


# ----------------------------------------------------------------------------- HTML
def _figure_html(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    return (
        f'<figure id="{html.escape(png.stem)}"><img alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}</figcaption>'
        "</figure>"
    )


def _html_table(rows: Sequence[Mapping[str, Any]], headers: Mapping[str, str]) -> str:
    head = "".join(f"<th>{html.escape(v)}</th>" for v in headers.values())
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(row[k]))}</td>" for k in headers) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _item_caption(item: Mapping[str, Any], algo: str) -> str:
    return (
        f"{item['title']}: per-run scores of {algo} and the built-ins on each task (dots), "
        "means as bars."
    )


def _chart_caption(algo: str) -> str:
    return (
        f"Capabilities of {algo}: its score per item (0 worst, 1 best) beside the best "
        "built-in of each of its tasks, averaged the same way; n/a: not applicable."
    )


# ----------------------------------------------------------------------------- LaTeX
_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def tex_escape(text: Any) -> str:
    """``text`` with LaTeX's special characters escaped (ASCII only: others become '?')."""
    escaped = re.sub(r"[\\&%$#_{}~^<>]", lambda m: _TEX_SPECIAL[m.group()], str(text))
    return escaped.replace("*", r"$^*$").encode("ascii", "replace").decode()


def _tex_table(rows: Sequence[Mapping[str, Any]], headers: Mapping[str, str], spec: str) -> str:
    lines = [
        r"\cardfit{\begin{tabular}{" + spec + "}",
        r"\toprule",
        " & ".join(tex_escape(h) for h in headers.values()) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(tex_escape(row[k]) for k in headers) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}}"]
    return "\n".join(lines)


def _tex_figure(pdf: str, caption: str, label: str) -> str:
    return "\n".join(
        [
            r"\begin{figure}[htbp]",
            r"\centering",
            r"\includegraphics[width=0.85\linewidth]{" + pdf + "}",
            r"\caption{" + tex_escape(caption) + "}",
            r"\label{fig:card-" + label + "}",
            r"\end{figure}",
        ]
    )


# ----------------------------------------------------------------------------- folder
def write_card_folder(
    out: str | os.PathLike[str],
    *,
    algo: str,
    table: pd.DataFrame,
    items: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
) -> Path:
    """Writes the card's figures, ``index.html``, ``card.tex`` and ``card_appendix.tex``;
    returns the path of ``index.html``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    params = {"algo": algo, "battery": provenance.get("battery")}
    fig, _ = capability_chart(table, algo)
    chart_png, _chart_pdf = save_figure(
        fig, CHART, directory=folder, params=params, caption=_chart_caption(algo)
    )
    plt.close(fig)
    figures: dict[str, tuple[Path, str]] = {}
    for item in items:
        if item["reason"] is not None or item["scores"].empty:
            continue
        fig, _ = item_figure(item["scores"], item["title"])
        seeds = sorted({int(s) for s in item["scores"]["seed"]})
        caption = _item_caption(item, algo)
        png, _pdf = save_figure(
            fig, f"item_{item['name']}", directory=folder, params=params, seeds=seeds,
            caption=caption,
        )  # fmt: skip
        plt.close(fig)
        figures[item["name"]] = (png, caption)
    _write(folder / INDEX, _html_page(algo, table, items, provenance, chart_png, figures))
    _write(folder / APPENDIX, _tex_body(algo, table, items, provenance, figures))
    _write(folder / TEX, _tex_document(algo))
    return folder / INDEX


def _summary_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {
            "title": r.title,
            "score": _score_text(r.score),
            "best": f"{_score_text(r.best_score)} ({r.best_reference})"
            if isinstance(r.best_reference, str)
            else "-",
            "seconds": f"{r.seconds:.0f}",
            "status": r.status,
        }
        for r in table.itertuples()
    ]


_SUMMARY_HEADERS = {
    "title": "capability",
    "score": "score",
    "best": "best built-in per task",
    "seconds": "time (s)",
    "status": "decisions",
}


def _provenance_rows(provenance: Mapping[str, Any]) -> list[dict[str, str]]:
    keys = ["algo", "battery", "code_fingerprint", "rlcompare_fingerprint", "commit", "store"]
    rows = [{"what": k, "value": str(provenance.get(k))} for k in keys]
    rows.append({"what": "hparams", "value": json.dumps(provenance.get("hparams") or {})})
    rows.append({"what": "alpha", "value": f"{provenance.get('alpha')} per item"})
    versions = provenance.get("versions") or {}
    rows.append({"what": "versions", "value": ", ".join(f"{k} {v}" for k, v in versions.items())})
    rows.append({"what": "date", "value": dt.date.today().isoformat()})
    return rows


_TASK_HEADERS = {
    "task": "task",
    "env": "env",
    "budget": "budget",
    "seeds": "seeds",
    "evals": "evals",
    "eval_episodes": "eval episodes",
    "references": "built-ins",
    "logs": "logs",
}


def _html_page(
    algo: str,
    table: pd.DataFrame,
    items: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
    chart: Path,
    figures: Mapping[str, tuple[Path, str]],
) -> str:
    sections = []
    for item in items:
        parts = [
            f'<section id="{html.escape(item["name"])}">',
            f"<h2>{html.escape(item['title'])}</h2>",
        ]
        parts.append(f'<p class="definition">{html.escape(item["definition"])}</p>')
        if item["reason"] is not None:
            parts.append(f'<p class="na">Not applicable: {html.escape(item["reason"])}</p>')
        else:
            scores = ", ".join(
                f"{name} {value:.2f}" for name, value in item["reference_scores"].items()
            )
            parts.append(
                f"<p>Score <b>{item['score']:.2f}</b>"
                + (f"; built-ins: {html.escape(scores)}" if scores else "")
                + f" ({item['seconds']:.0f} s)</p>"
            )
            if item["name"] in figures:
                parts.append(_figure_html(*figures[item["name"]]))
            if not item["decisions"].empty:
                parts.append(_html_table(decision_rows(item["decisions"]), _DECISION_HEADERS))
        if item["notes"]:
            notes = "".join(f"<li>{html.escape(n)}</li>" for n in item["notes"])
            parts.append(f'<ul class="notes">{notes}</ul>')
        parts.append("</section>")
        sections.append("\n".join(parts))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rlcompare card: {html.escape(algo)}</title>
<style>{_STYLE}</style></head><body>
<h1>Report card: {html.escape(algo)}</h1>
<p>Each item scores every run in [0, 1] (its definition under its heading); the item's score
is the mean over its tasks of the mean per-run score. Decisions: the one-interim permutation
test of <code>rlcompare.compare</code> on those per-run scores, family-wise error
{provenance.get("alpha")} per item; "better" / "worse" is {html.escape(algo)}'s side.</p>
{_figure_html(chart, _chart_caption(algo))}
{_html_table(_summary_rows(table), _SUMMARY_HEADERS)}
{"".join(sections)}
<h2>Provenance</h2>
{_html_table(_provenance_rows(provenance), {"what": "", "value": ""})}
{_html_table(provenance.get("tasks") or [], _TASK_HEADERS)}
{_IMAGE_CHECK}
</body></html>
"""


def _tex_body(
    algo: str,
    table: pd.DataFrame,
    items: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
    figures: Mapping[str, tuple[Path, str]],
) -> str:
    name = tex_escape(algo)
    lines = [
        "% rlcompare report card of " + name + r": \input{card_appendix} in a document that",
        "% loads booktabs and graphicx (card.tex is one).",
        r"\makeatletter",
        # A table wider than the text is scaled down to its width, never up.
        r"\providecommand{\cardfit}[1]{\sbox\@tempboxa{#1}\ifdim\wd\@tempboxa>\linewidth"
        r"\resizebox{\linewidth}{!}{\usebox\@tempboxa}\else\usebox\@tempboxa\fi}",
        r"\makeatother",
        r"\section*{Report card: " + name + "}",
        "Each item scores every run in $[0, 1]$; the item's score is the mean over its tasks "
        "of the mean per-run score. Decisions come from the one-interim permutation test of "
        r"\texttt{rlcompare.compare} on those scores, family-wise error "
        + tex_escape(provenance.get("alpha"))
        + " per item; better and worse are "
        + name
        + "'s side.",
        "",
        _tex_figure(f"{CHART}.pdf", _chart_caption(algo), CHART),
        r"\begin{table}[htbp]",
        r"\centering\small",
        _tex_table(
            [{k: v for k, v in r.items() if k != "status"} for r in _summary_rows(table)],
            {k: v for k, v in _SUMMARY_HEADERS.items() if k != "status"},
            "lrlr",
        ),
        r"\caption{Scores of " + name + " per capability.}",
        r"\end{table}",
    ]
    for item in items:
        lines += [
            "",
            r"\subsection*{" + tex_escape(item["title"]) + "}",
            tex_escape(item["definition"]),
        ]
        if item["reason"] is not None:
            lines += ["", r"\emph{Not applicable: " + tex_escape(item["reason"]) + "}"]
            lines += _tex_notes(item["notes"])
            continue
        lines += ["", f"Score {item['score']:.2f}."]
        if item["name"] in figures:
            lines.append(
                _tex_figure(f"item_{item['name']}.pdf", figures[item["name"]][1], item["name"])
            )
        if not item["decisions"].empty:
            lines += [
                r"\begin{table}[htbp]",
                r"\centering\scriptsize",
                _tex_table(decision_rows(item["decisions"]), _DECISION_HEADERS, "lllllll"),
                r"\caption{" + tex_escape(item["title"]) + ": " + name + " against the built-ins.}",
                r"\end{table}",
            ]
        lines += _tex_notes(item["notes"])
    lines += [
        "",
        r"\subsection*{Provenance}",
        r"\begin{table}[htbp]",
        r"\centering\scriptsize",
        _tex_table(_provenance_rows(provenance), {"what": "", "value": ""}, r"lp{0.75\linewidth}"),
        r"\caption{What produced this card.}",
        r"\end{table}",
        r"\begin{table}[htbp]",
        r"\centering\scriptsize",
        _tex_table(
            provenance.get("tasks") or [],
            {k: v for k, v in _TASK_HEADERS.items() if k != "references"},
            "lllllll",
        ),
        r"\caption{Tasks: budgets, seeds and evaluations.}",
        r"\end{table}",
        r"\clearpage",
    ]
    return "\n".join(lines) + "\n"


def _tex_notes(notes: Sequence[str]) -> list[str]:
    if not notes:
        return []
    return ["", r"\begin{itemize}", *(r"\item " + tex_escape(n) for n in notes), r"\end{itemize}"]


def _tex_document(algo: str) -> str:
    return "\n".join(
        [
            r"\documentclass{article}",
            r"\usepackage[T1]{fontenc}",
            r"\usepackage{booktabs}",
            r"\usepackage{graphicx}",
            r"\title{rlcompare report card: " + tex_escape(algo) + "}",
            r"\date{}",
            r"\begin{document}",
            r"\input{" + Path(APPENDIX).stem + "}",
            r"\end{document}",
            "",
        ]
    )


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
