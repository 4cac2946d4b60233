"""The suite's HTML report: one page per executed notebook and an index to send to a co-author.

Every page is self-contained: figures are embedded as data URIs and no script or stylesheet is
fetched from the network, so the folder opens anywhere, offline, from a file manager or mail.
The index shows the profile, the commit and the date, the comparison table of the summary
notebook, a link to every notebook page, and the gallery of figures with their captions (and,
for a suite run on a Ray cluster, how many runs each node ran).

A notebook page reads like a paper: prose, figures with their captions and PDF links, and
tables; the code is hidden until the reader ticks "Show code"; the parameters papermill
injected are one table under the title; progress bars are left out; and no absolute path of
the machine that built it appears (paths under the project become relative to it).
"""

from __future__ import annotations

import ast
import datetime as dt
import html
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import nbformat

from rlcompare.versions import git_commit
from rlcompare.viz.figures import CAPTION_KEY, caption_html
from rlcompare.viz.report import figure_html

INDEX = "index.html"
# The project whose paths become relative in a report: this checkout by default.
PROJECT = Path(__file__).resolve().parents[2]
# Counts the images that decoded, once the page has loaded: a browser check (and a reader's
# devtools) can read it from <body data-images-rendered="N">.
_IMAGE_CHECK = (
    "<script>window.addEventListener('load', () => { document.body.dataset.imagesRendered = "
    "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length; });</script>"
)
SUMMARY_NOTEBOOK = "00_summary"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# A notebook cell's file as the IPython kernel names it in warnings and tracebacks.
_KERNEL_CELL = re.compile(r"(?:/[\w.-]+)*/ipykernel_\d+/\d+\.py")

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; vertical-align: top; text-align: left; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr));
           gap: 1.5rem; }
figure { margin: 0; } figure img { width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #444; }
"""

# The reader's view of a notebook page: code, its prompts and the cells that only ran code
# are hidden until "Show code" is ticked; figures keep to the page width.
_PAGE_STYLE = """<style>
.rlcompare-toggle { position: sticky; top: 0; z-index: 10; display: block; text-align: right;
  padding: 0.3rem 1rem; background: rgba(255, 255, 255, 0.9); font: 0.85rem system-ui; }
body:not(:has(#show-code:checked)) .jp-CodeCell .jp-Cell-inputWrapper,
body:not(:has(#show-code:checked)) .jp-CodeCell.jp-mod-noOutputs,
body:not(:has(#show-code:checked)) .jp-OutputPrompt { display: none; }
body:not(:has(#show-code:checked)) .jp-OutputArea-child { display: block; }
figure.rlcompare-figure { margin: 0.5rem 0 1rem 0; max-width: 100%; }
figure.rlcompare-figure img { max-width: 100%; height: auto; }
figure.rlcompare-figure figcaption, .rlcompare-caption { font-size: 0.85rem; color: #444; }
table.rlcompare-parameters { border-collapse: collapse; font-size: 0.8rem; margin: 0.5rem 0; }
table.rlcompare-parameters th, table.rlcompare-parameters td { border: 1px solid #ddd;
  padding: 0.15rem 0.4rem; text-align: left; vertical-align: top; }
table.rlcompare-parameters td code { white-space: pre-wrap; overflow-wrap: normal; }
</style>"""
_TOGGLE = '<label class="rlcompare-toggle"><input type="checkbox" id="show-code"> Show code</label>'


def relative_paths(text: str, roots: Iterable[str | os.PathLike[str]] = (PROJECT,)) -> str:
    """``text`` with this machine's absolute paths taken out: a path under one of ``roots``
    becomes relative to it, a notebook cell's kernel file becomes ``<cell>`` and the home
    folder ``~``."""
    if "ipykernel_" in text:  # cheap test first: outputs can hold megabytes of base64
        text = _KERNEL_CELL.sub("<cell>", text)
    for root in sorted({str(Path(r).resolve()) for r in roots}, key=len, reverse=True):
        text = text.replace(root + "/", "")
        text = re.sub(re.escape(root) + r"(?=[\s\"'<>)\],]|$)", ".", text)
    home = str(Path.home())
    return text.replace(home + "/", "~/") if home != "/" else text


def scrub_notebook(notebook: Any, roots: Iterable[str | os.PathLike[str]] = (PROJECT,)) -> Any:
    """Takes this machine's absolute paths out of every cell's source and outputs (see
    :func:`relative_paths`); returns the notebook, changed in place."""
    roots = list(roots)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return relative_paths(value, roots)
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    for cell in notebook.cells:
        cell.source = scrub(cell.source)
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = scrub(output.text)
            if "traceback" in output:
                output.traceback = scrub(output.traceback)
            if "evalue" in output:
                output.evalue = scrub(output.evalue)
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/"):
                    output.data[mime] = scrub(value)
    return notebook


def _literals(source: str) -> dict[str, Any]:
    """``name -> value`` of a parameters cell's assignments of literals."""
    found = {}
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                try:
                    found[target.id] = ast.literal_eval(statement.value)
                except ValueError:
                    found[target.id] = ast.get_source_segment(source, statement.value)
    return found


def parameters_table(notebook: Any) -> str | None:
    """One HTML table of the notebook's parameters: its defaults, and in bold the values the
    suite's profile injected (None: the notebook has no parameters cell)."""
    tagged = {
        tag: cell
        for cell in notebook.cells
        for tag in cell.metadata.get("tags", [])
        if tag in ("parameters", "injected-parameters")
    }
    if "parameters" not in tagged:
        return None
    values = _literals(tagged["parameters"].source)
    injected = (
        _literals(tagged["injected-parameters"].source) if "injected-parameters" in tagged else {}
    )
    values.update(injected)
    rows = "".join(
        f'<tr><th scope="row">{html.escape(name)}</th><td>'
        + ("<b>" if name in injected else "")
        + f"<code>{html.escape(repr(value) if not isinstance(value, str) else value)}</code>"
        + ("</b>" if name in injected else "")
        + "</td></tr>"
        for name, value in values.items()
    )
    profile = notebook.metadata.get("papermill", {}).get("parameters") is not None
    note = " (bold: set by the suite's profile)" if injected or profile else ""
    return (
        f'<details open class="rlcompare-parameters"><summary>Parameters{note}</summary>'
        f'<table class="rlcompare-parameters"><tbody>{rows}</tbody></table></details>'
    )


def _image_output(output: Any) -> bool:
    return output.get("output_type") in ("display_data", "execute_result") and (
        "image/png" in output.get("data", {})
    )


def _captioned_figures(outputs: list[Any], page_dir: Path, figures_dir: Path | None) -> list[Any]:
    """A cell's outputs with each figure and the caption that :func:`save_figure` showed
    under it joined into one ``<figure>``, its PDF linked relative to the page."""
    result: list[Any] = []
    for output in outputs:
        record = output.get("metadata", {}).get(CAPTION_KEY)
        if record is None:
            result.append(output)
            continue
        images = [i for i, o in enumerate(result) if _image_output(o)]
        if not images:
            result.append(output)
            continue
        image = result[images[-1]]
        name, caption = str(record.get("name")), record.get("caption")
        pdf = figures_dir / f"{name}.pdf" if figures_dir is not None else None
        href = os.path.relpath(pdf, page_dir) if pdf is not None and pdf.exists() else None
        data = image["data"]["image/png"]
        data = data if isinstance(data, str) else "".join(data)
        result[images[-1]] = nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": f'<figure class="rlcompare-figure" id="{html.escape(name)}">'
                f'<img alt="{html.escape(caption or name)}" '
                f'src="data:image/png;base64,{data.strip()}">'
                f"<figcaption>{caption_html(name, caption, href)}</figcaption></figure>",
                "text/plain": f"{name}: {caption}",
            },
        )
    return result


def reader_view(
    notebook: Any,
    page_dir: Path,
    figures_dir: Path | None = None,
    roots: Iterable[str | os.PathLike[str]] = (PROJECT,),
) -> Any:
    """The notebook as its report page shows it (changed in place and returned): parameters
    cells replaced by one table under the first cell, progress bars left out, figures joined
    to their captions, paths made relative."""
    scrub_notebook(notebook, roots)
    table = parameters_table(notebook)
    cells = []
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            continue
        if cell.cell_type == "code":
            outputs = [o for o in cell.outputs if WIDGET_MIME not in o.get("data", {})]
            cell.outputs = _captioned_figures(outputs, page_dir, figures_dir)
        cells.append(cell)
    if table is not None:
        # A markdown cell: nbconvert escapes the HTML of a raw cell when images are embedded.
        shown = nbformat.v4.new_markdown_cell(table)
        cells.insert(1 if cells and cells[0].cell_type == "markdown" else 0, shown)
    notebook.cells = cells
    return notebook


def notebook_page(
    executed: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str] | None = None,
    roots: Iterable[str | os.PathLike[str]] = (PROJECT,),
) -> Path:
    """Writes ``<out_dir>/<notebook name>.html`` from an executed notebook, images embedded,
    in the reader's view (:func:`reader_view`)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    # No CDN: the page must open offline (math stays as TeX source without MathJax).
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.jquery_url = ""
    exporter.widget_renderer_url = ""
    exporter.jupyter_widgets_base_url = ""
    out_dir = Path(out_dir)
    notebook = reader_view(
        nbformat.read(executed, as_version=4),
        out_dir,
        Path(figures_dir) if figures_dir is not None else None,
        roots,
    )
    body, _ = exporter.from_notebook_node(notebook)
    body = body.replace("</head>", _PAGE_STYLE + "</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + _TOGGLE, body, count=1)
    body = body.replace("</body>", _IMAGE_CHECK + "</body>")
    path = out_dir / f"{Path(executed).stem}.html"
    _write_atomically(path, body)
    return path


def summary_table(executed_summary: str | os.PathLike[str]) -> str | None:
    """The HTML of the comparison table displayed by the summary notebook, if it ran."""
    path = Path(executed_summary)
    if not path.exists():
        return None
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/html", "")
            if "<table" in text:
                return text
    return None


def write_report(
    executed_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str],
    profile: str,
    names: Sequence[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    nodes: str | None = None,
    roots: Iterable[str | os.PathLike[str]] = (PROJECT,),
    cards: Iterable[str | os.PathLike[str]] | None = None,
) -> Path:
    """Writes a page per executed notebook and the index; returns the index's path.

    Args:
        executed_dir: Folder of executed notebooks (``data/executed/<profile>``).
        figures_dir: Folder of the profile's figures (PNG with provenance, PDF linked).
        profile: The suite profile, shown on the index.
        names: Notebooks in reading order (default: every executed notebook, sorted).
        out_dir: Where the pages go (default: ``executed_dir``).
        nodes: The ``runs per node: ...`` line, shown under the profile (None: left out).
        roots: Folders whose paths the pages show relative to them (default: this checkout).
        cards: Capability cards (``rlcompare card``'s ``index.html``) the index links to
            (default: every ``cards/*/index.html`` under the report's folder).
    """
    executed_dir, figures_dir = Path(executed_dir), Path(figures_dir)
    roots = list(roots)
    out = Path(out_dir) if out_dir is not None else executed_dir
    out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(executed_dir.glob("*.ipynb"))
    if names is not None:
        order = {name: index for index, name in enumerate(names)}
        notebooks = sorted(
            (nb for nb in notebooks if nb.stem in order), key=lambda nb: order[nb.stem]
        )
    pages = [notebook_page(nb, out, figures_dir, roots) for nb in notebooks]
    table = summary_table(executed_dir / f"{SUMMARY_NOTEBOOK}.ipynb")
    links = "".join(
        f'<li><a href="{html.escape(page.name)}">{html.escape(page.stem)}</a></li>'
        for page in pages
    )
    gallery = "".join(
        figure_html(png, _relative_pdf(png, out)) for png in sorted(figures_dir.glob("*.png"))
    )
    found = sorted(out.glob(f"cards/*/{INDEX}")) if cards is None else [Path(c) for c in cards]
    cards_html = (
        '<h2>Cards</h2>\n<ul class="cards">'
        + "".join(
            f'<li><a href="{html.escape(os.path.relpath(card.resolve(), out.resolve()))}">'
            f"{html.escape(card.parent.name)}</a></li>"
            for card in found
        )
        + "</ul>\n"
        if found
        else ""
    )
    commit = git_commit() or "unknown"
    nodes_html = f'<p class="nodes">{html.escape(nodes)}</p>\n' if nodes is not None else ""
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rlcompare report ({html.escape(profile)})</title>
<style>{_STYLE}</style></head><body>
<h1>rlcompare report</h1>
<p>Profile <b>{html.escape(profile)}</b> · commit <code>{html.escape(commit)}</code> ·
{dt.date.today().isoformat()}</p>
{nodes_html}<h2>Comparison</h2>
{relative_paths(table, roots) if table else "<p>(the summary notebook has not run)</p>"}
<h2>Notebooks</h2>
<ul class="notebooks">{links}</ul>
{cards_html}<h2>Figures</h2>
<div class="gallery">{gallery}</div>
{_IMAGE_CHECK}
</body></html>
"""
    index = out / INDEX
    _write_atomically(index, body)
    return index


def _relative_pdf(png: Path, page_dir: Path) -> str | None:
    pdf = png.with_suffix(".pdf")
    return os.path.relpath(pdf.resolve(), page_dir.resolve()) if pdf.exists() else None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
