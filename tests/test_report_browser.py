"""The report as a reader sees it: pages rendered by headless Chromium at 1400 px.

A script appended to a copy of each page measures the laid-out DOM and writes what it found
into the page, which ``--dump-dom`` returns: words split across lines inside table cells,
cells whose content spills out, images without a caption, code shown by default, and the
page text (hidden code included) for absolute paths of the machine that built it.

The suite itself builds the report here: two small notebooks (one saving a captioned figure
and warning, one rebuilding the comparison table) run through ``run_suite`` in a temporary
project, so the injected parameters, the kernel's outputs and the pages are the real ones.
Where this checkout holds the smoke profile's executed notebooks, the same checks run on
the report rebuilt from them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import IN_CI, REPO

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH = 1400
SMOKE_EXECUTED = REPO / "data" / "smoke" / "executed" / "smoke"
SMOKE_FIGURES = REPO / "figures" / "smoke"

pytestmark = pytest.mark.skipif(
    BROWSER is None and not IN_CI,
    reason="no chromium here (make browser installs it where apt-get works)",
)

# Runs in the page once it has loaded; its findings go into <pre id="rlcompare-check">.
_MEASURE = r"""
<script>
window.addEventListener('load', () => {
  const words = [];
  for (const cell of document.querySelectorAll('td, th')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/[\p{L}\p{N}_]+/gu)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)
                                                          .map(r => Math.round(r.top)));
        if (tops.size > 1) words.push(m[0]);
      }
    }
  }
  const spilling = [...document.querySelectorAll('td, th')]
    .filter(c => c.offsetParent !== null && c.scrollWidth > c.clientWidth + 1)
    .map(c => c.textContent.slice(0, 40));
  const uncaptioned = [...document.images].filter(img => {
    const figure = img.closest('figure');
    const caption = figure && figure.querySelector('figcaption');
    return !(caption && caption.textContent.trim());
  }).length;
  const codeShown = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea')]
    .filter(e => e.offsetParent !== null).length;
  const toggle = document.getElementById('show-code');
  if (toggle) toggle.checked = true;
  const codeShownWhenAsked = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea')]
    .filter(e => e.offsetParent !== null).length;
  if (toggle) toggle.checked = false;
  const links = [...document.querySelectorAll('[href], [src]')]
    .map(e => e.getAttribute('href') || e.getAttribute('src'))
    .filter(v => !v.startsWith('data:'));
  const out = document.createElement('pre');
  out.id = 'rlcompare-check';
  out.textContent = JSON.stringify({
    brokenWords: words, spilling, uncaptioned, images: document.images.length, codeShown,
    codeShownWhenAsked,
    comparisonAlign: [...document.querySelectorAll('table.rlcompare-comparison td')]
      .map(td => getComputedStyle(td).textAlign),
    codeCells: document.querySelectorAll('.jp-CodeCell').length,
    tables: document.querySelectorAll('table').length,
    pageWidth: document.documentElement.scrollWidth, viewWidth: window.innerWidth,
    text: document.body.textContent, visibleText: document.body.innerText, links,
  });
  document.body.appendChild(out);
});
</script>
"""


def measure(page: Path) -> dict:
    """What the browser laid out for ``page`` at 1400 px (a measured copy beside it)."""
    assert BROWSER is not None
    probe = page.with_name(f"measured-{page.name}")
    probe.write_text(page.read_text().replace("</body>", _MEASURE + "</body>"))
    dom = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={WIDTH},1000",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    found = re.search(r'<pre id="rlcompare-check">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the measuring script ran"
    import html

    return json.loads(html.unescape(found.group(1)))


def machine_paths(text: str, *roots: Path) -> list[str]:
    """Absolute paths of this machine in ``text``: under the repository, the temporary
    folder, the home folder or any of ``roots``."""
    prefixes = {str(REPO), tempfile.gettempdir(), str(Path.home()), *map(str, roots)}
    pattern = "|".join(re.escape(p.rstrip("/") + "/") for p in sorted(prefixes) if p != "/")
    return sorted(set(re.findall(rf"(?:{pattern})[^\s\"'<>)]*", text)))


def check_reader_view(found: dict, *roots: Path) -> None:
    assert found["brokenWords"] == [], "words split across lines in table cells"
    assert found["spilling"] == [], "cells whose text spills out"
    assert found["pageWidth"] <= found["viewWidth"], "the page scrolls sideways"
    assert found["uncaptioned"] == 0, f"of {found['images']} images, some have no caption"
    assert machine_paths(found["text"], *roots) == []
    assert machine_paths(" ".join(found["links"]), *roots) == []
    assert "PosixPath" not in found["text"]


_FIGURE_NOTEBOOK = [
    ("markdown", "# 01 · A figure\n\nOne captioned figure and a warning.", []),
    ("code", "import warnings\n\nimport matplotlib.pyplot as plt\n\nimport rlcompare", []),
    (
        "code",
        'store_root = "../data"\nfigures_dir = "../figures"\nexecutor = "serial"\nseeds = 3',
        ["parameters"],
    ),
    ("markdown", "## Curves", []),
    (
        "code",
        "fig, ax = plt.subplots()\nax.plot([0, 1, 2], [0, 1, 4])\n"
        'rlcompare.save_figure(fig, "01_curve", directory=figures_dir, caption="A curve")',
        [],
    ),
    ("code", 'warnings.warn("something to know")', []),
    ("markdown", "## Headline numbers", []),
    (
        "code",
        "# NBVAL_CHECK_OUTPUT\nrlcompare.record_headline(\n"
        '    f"{store_root}/01_figure/summary.json",\n'
        '    {"evidence": {"Q-learning": "final max|Q - Q*| (IQM): CliffWalking-v1 5.171; '
        'decided: q_learning vs sarsa: no difference found (2+2 runs)"}},\n)',
        [],
    ),
]


def _notebook(path: Path, cells: list) -> None:
    notebook = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        notebook.cells.append(make(source, metadata={"tags": tags} if tags else {}))
    notebook.metadata["kernelspec"] = {
        "name": "rlcompare",
        "display_name": "rlcompare",
        "language": "python",
    }
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project in a temporary folder whose suite ran two notebooks; its executed folder."""
    from rlcompare.app.suite import run_suite

    root = tmp_path_factory.mktemp("project")
    folder = root / "notebooks"
    folder.mkdir()
    (folder / "profiles.yaml").write_text("smoke: {01_figure: {seeds: 2}}\ndefault: {}\nfull: {}\n")
    _notebook(folder / "01_figure.ipynb", _FIGURE_NOTEBOOK)
    _notebook(
        folder / "00_summary.ipynb",
        [
            ("markdown", "# 00 · Summary", []),
            ("code", "from rlcompare.experiments import summary", []),
            (
                "code",
                'store_root = "../data"\nfigures_dir = "../figures"\nexecutor = "serial"',
                ["parameters"],
            ),
            ("markdown", "## The comparison table", []),
            (
                "code",
                "summary.readable_table(summary.comparison_table(summary.load_headlines("
                "store_root)))",
                [],
            ),
        ],
    )
    status = run_suite(
        "smoke", directory=folder, data_dir=root / "data", figures_dir=root / "figures"
    )
    assert status == 0
    return root / "data" / "executed" / "smoke"


def test_index_reads_at_1400_px(built: Path):
    found = measure(built / "index.html")
    check_reader_view(found, built.parents[2])
    assert found["images"] == 1 and found["tables"] >= 1
    assert "CliffWalking-v1 5.171" in found["visibleText"]


def test_index_evidence_is_one_line_per_claim_linked_to_its_notebook(built: Path):
    index = (built / "index.html").read_text()
    assert ">approach<" not in index, "no stray header row holding the index's name"
    items = re.findall(r"<li[^>]*>(.*?)</li>", index.split('class="notebooks"')[0], re.DOTALL)
    claims = [i for i in items if "01_figure.html#" in i]
    assert len(claims) == 2, "each claim of the sentence is its own line"
    assert "5.171" in claims[0] and "no difference found" in claims[1]


def test_notebook_page_hides_code_and_shows_parameters_as_a_table(built: Path):
    page = built / "01_figure.html"
    found = measure(page)
    check_reader_view(found, built.parents[2])
    assert found["images"] == 1 and found["codeCells"] > 0
    assert found["codeShown"] == 0, "code is hidden until the reader asks for it"
    assert found["codeShownWhenAsked"] == found["codeCells"], "ticking 'Show code' shows it"
    text = page.read_text()
    assert re.search(r'<input[^>]+id="show-code"', text), "a way to show the code"
    assert "A curve" in found["visibleText"] and "01_curve.pdf" in " ".join(found["links"])
    assert "something to know" in found["visibleText"], "warnings stay, without their path"
    assert re.search(r"seeds</th>\s*<td[^>]*>(?:<[^>]+>)*2<", text), (
        "the profile's value, in a table"
    )
    assert "injected-parameters" not in text and "# Parameters" not in found["text"]


def test_summary_page_shows_the_comparison_left_aligned(built: Path):
    found = measure(built / "00_summary.html")
    check_reader_view(found, built.parents[2])
    assert found["comparisonAlign"] and set(found["comparisonAlign"]) == {"left"}


def test_executed_notebooks_show_no_machine_paths(built: Path):
    for executed in built.glob("*.ipynb"):
        for cell in nbformat.read(executed, as_version=4).cells:
            shown = [cell.source] + [json.dumps(o) for o in cell.get("outputs", [])]
            assert machine_paths("\n".join(shown), built.parents[2]) == [], executed.name
            assert "PosixPath" not in "\n".join(shown)


@pytest.mark.skipif(not SMOKE_EXECUTED.is_dir(), reason="no executed smoke notebooks here")
@pytest.mark.parametrize("page", ["index.html", "01_convergence.html"])
def test_smoke_report_reads_at_1400_px(page: str, tmp_path: Path):
    from rlcompare.app.suite import notebook_names
    from rlcompare.viz.html_report import write_report

    figures = shutil.copytree(SMOKE_FIGURES, tmp_path / "figures")
    out = tmp_path / "executed"
    write_report(SMOKE_EXECUTED, figures, "smoke", names=notebook_names(), out_dir=out)
    found = measure(out / page)
    check_reader_view(found, tmp_path)
    assert found["codeShown"] == 0
