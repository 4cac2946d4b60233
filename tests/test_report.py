"""The suite's HTML report, opened in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from conftest import IN_CI
from matplotlib.image import imread

import rlcompare
from rlcompare.viz.html_report import write_report

EVIDENCE = "final max|Q - Q*| (IQM, 1/n^omega steps): CliffWalking 1.1, FrozenLake 0.32 " * 3
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def _png() -> bytes:
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _executed(folder: Path) -> None:
    """Two executed notebooks: a summary with a long-celled table, one with a figure."""
    import base64

    table = f"<table><tr><th>evidence</th></tr><tr><td>{EVIDENCE}</td></tr></table>"
    summary = nbformat.v4.new_notebook()
    summary.cells = [
        nbformat.v4.new_markdown_cell("# Summary"),
        nbformat.v4.new_code_cell(
            "table",
            outputs=[nbformat.v4.new_output("display_data", data={"text/html": table})],
        ),
    ]
    figure = nbformat.v4.new_notebook()
    image = base64.b64encode(_png()).decode()
    figure.cells = [
        nbformat.v4.new_markdown_cell("# Convergence"),
        nbformat.v4.new_code_cell(
            "fig", outputs=[nbformat.v4.new_output("display_data", data={"image/png": image})]
        ),
    ]
    folder.mkdir(parents=True)
    nbformat.write(summary, folder / "00_summary.ipynb")
    nbformat.write(figure, folder / "01_convergence.ipynb")


@pytest.fixture
def report(tmp_path: Path) -> Path:
    executed, figures = tmp_path / "executed", tmp_path / "figures"
    _executed(executed)
    for name in ("01_curves", "02_scaling"):
        fig, ax = plt.subplots()
        ax.plot(np.arange(5))
        rlcompare.save_figure(fig, name, directory=figures, caption=f"caption of {name}")
        plt.close(fig)
    return write_report(executed, figures, "smoke", names=["01_convergence", "00_summary"])


def test_report_pages_are_self_contained(report: Path):
    pages = sorted(report.parent.glob("*.html"))
    assert [p.name for p in pages] == ["00_summary.html", "01_convergence.html", "index.html"]
    for page in pages:
        text = page.read_text()
        assert not re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//', text)
    index = report.read_text()
    assert EVIDENCE in index, "the comparison table is shown in full"
    assert "Profile <b>smoke</b>" in index and "caption of 02_scaling" in index
    links = re.findall(r'<li><a href="([^"]+)">', index)
    assert links == ["01_convergence.html", "00_summary.html"], "reading order kept"


def _browse(page: Path, screenshot: Path) -> str:
    """The DOM after load, and a screenshot beside the page."""
    assert BROWSER is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run(
        [BROWSER, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    subprocess.run(
        [BROWSER, *flags, "--window-size=1200,1600", f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return dom


@pytest.mark.skipif(
    BROWSER is None and not IN_CI,
    reason="no chromium here (make test installs it where apt-get works)",
)
def test_report_renders_in_a_real_browser(report: Path):
    shot = report.with_suffix(".png")
    dom = _browse(report, shot)
    assert EVIDENCE.strip() in dom
    assert re.search(r'data-images-rendered="2"', dom), "both gallery images decoded"
    assert len(re.findall(r'<a href="[^"]+\.html"', dom)) == 2
    pixels = imread(shot)
    assert pixels.shape[0] == 1600 and pixels.std() > 0.05, "the screenshot shows a page"
    page = report.parent / "01_convergence.html"
    dom = _browse(page, page.with_suffix(".png"))
    assert re.search(r'data-images-rendered="1"', dom), "the notebook's figure decoded"
    assert "Convergence" in dom


def test_index_links_the_cards_beside_it(report: Path):
    card = report.parent / "cards" / "q_lambda" / "index.html"
    card.parent.mkdir(parents=True)
    card.write_text("<html><body>card</body></html>")
    figures = report.parent.parent / "figures"
    index = write_report(report.parent, figures, "smoke").read_text()
    assert '<a href="cards/q_lambda/index.html">q_lambda</a>' in index
    elsewhere = report.parent.parent / "card_dqn" / "index.html"
    elsewhere.parent.mkdir()
    elsewhere.write_text("<html></html>")
    index = write_report(report.parent, figures, "smoke", cards=[elsewhere]).read_text()
    assert '<a href="../card_dqn/index.html">card_dqn</a>' in index


def test_suite_injects_paths_inside_the_project_relative_to_the_notebook(tmp_path: Path):
    from rlcompare.app.suite import NotebookRun, executed_parameters

    notebook = tmp_path / "project" / "notebooks" / "01_x.ipynb"
    notebook.parent.mkdir(parents=True)
    outside = tmp_path / "elsewhere" / "figures"
    run = NotebookRun(
        "01_x",
        notebook,
        {
            "store_root": str(tmp_path / "project" / "data" / "smoke"),
            "figures_dir": str(outside),
            "seeds": 2,
        },
    )
    assert executed_parameters(run) == {
        "store_root": "../data/smoke",
        "figures_dir": str(outside),  # outside the project: kept as given
        "seeds": 2,
    }


def test_relative_paths_takes_out_machine_paths():
    from rlcompare.viz.html_report import relative_paths

    text = (
        "/tmp/ipykernel_1070/4152510235.py:1: UserWarning: x\n"
        "/work/proj/rlcompare/viz/plots.py:115: UserWarning: y\n"
        'store_root = "/work/proj"'
    )
    assert relative_paths(text, ["/work/proj"]) == (
        '<cell>:1: UserWarning: x\nrlcompare/viz/plots.py:115: UserWarning: y\nstore_root = "."'
    )
