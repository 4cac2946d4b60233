"""The suite's HTML report: one page per executed notebook and an index to send to a co-author.

Every page is self-contained: figures are embedded as data URIs and no script or stylesheet is
fetched from the network, so the folder opens anywhere, offline, from a file manager or mail.
The index shows the profile, the commit and the date, the comparison table of the summary
notebook, a link to every notebook page, and the gallery of figures with their captions (and,
for a suite run on a Ray cluster, how many runs each node ran).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
from collections.abc import Sequence
from pathlib import Path

import nbformat

from rlcompare.versions import git_commit
from rlcompare.viz.figures import read_provenance

INDEX = "index.html"
# Counts the images that decoded, once the page has loaded: a browser check (and a reader's
# devtools) can read it from <body data-images-rendered="N">.
_IMAGE_CHECK = (
    "<script>window.addEventListener('load', () => { document.body.dataset.imagesRendered = "
    "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length; });</script>"
)
SUMMARY_NOTEBOOK = "00_summary"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; vertical-align: top; text-align: left;
         white-space: pre-wrap; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr));
           gap: 1.5rem; }
figure { margin: 0; } figure img { width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #444; }
"""


def notebook_page(executed: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Writes ``<out_dir>/<notebook name>.html`` from an executed notebook, images embedded."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    # No CDN: the page must open offline (math stays as TeX source without MathJax).
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.jquery_url = ""
    exporter.widget_renderer_url = ""
    exporter.jupyter_widgets_base_url = ""
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    body = body.replace("</body>", _IMAGE_CHECK + "</body>")
    path = Path(out_dir) / f"{Path(executed).stem}.html"
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


def _figure_html(png: Path) -> str:
    try:
        caption = read_provenance(png).get("caption") or png.stem
    except (OSError, ValueError):
        caption = png.stem
    data = base64.b64encode(png.read_bytes()).decode()
    return (
        f'<figure id="{html.escape(png.stem)}"><img alt="{html.escape(png.stem)}" '
        f'src="data:image/png;base64,{data}"><figcaption><b>{html.escape(png.stem)}</b>: '
        f"{html.escape(caption)}</figcaption></figure>"
    )


def write_report(
    executed_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str],
    profile: str,
    names: Sequence[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    nodes: str | None = None,
) -> Path:
    """Writes a page per executed notebook and the index; returns the index's path.

    Args:
        executed_dir: Folder of executed notebooks (``data/executed/<profile>``).
        figures_dir: Folder of the profile's figures (PNG with provenance).
        profile: The suite profile, shown on the index.
        names: Notebooks in reading order (default: every executed notebook, sorted).
        out_dir: Where the pages go (default: ``executed_dir``).
        nodes: The ``runs per node: ...`` line, shown under the profile (None: left out).
    """
    executed_dir, figures_dir = Path(executed_dir), Path(figures_dir)
    out = Path(out_dir) if out_dir is not None else executed_dir
    out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(executed_dir.glob("*.ipynb"))
    if names is not None:
        order = {name: index for index, name in enumerate(names)}
        notebooks = sorted(
            (nb for nb in notebooks if nb.stem in order), key=lambda nb: order[nb.stem]
        )
    pages = [notebook_page(nb, out) for nb in notebooks]
    table = summary_table(executed_dir / f"{SUMMARY_NOTEBOOK}.ipynb")
    links = "".join(
        f'<li><a href="{html.escape(page.name)}">{html.escape(page.stem)}</a></li>'
        for page in pages
    )
    gallery = "".join(_figure_html(png) for png in sorted(figures_dir.glob("*.png")))
    commit = git_commit() or "unknown"
    nodes_html = f'<p class="nodes">{html.escape(nodes)}</p>\n' if nodes is not None else ""
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rlcompare report ({html.escape(profile)})</title>
<style>{_STYLE}</style></head><body>
<h1>rlcompare report</h1>
<p>Profile <b>{html.escape(profile)}</b> · commit <code>{html.escape(commit)}</code> ·
{dt.date.today().isoformat()}</p>
{nodes_html}<h2>Comparison</h2>
{table or "<p>(the summary notebook has not run)</p>"}
<h2>Notebooks</h2>
<ul class="notebooks">{links}</ul>
<h2>Figures</h2>
<div class="gallery">{gallery}</div>
{_IMAGE_CHECK}
</body></html>
"""
    index = out / INDEX
    _write_atomically(index, body)
    return index


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
