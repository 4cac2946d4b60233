"""The suite's card step: the cards a profile names are written beside the report, linked from
its index, their runs reused by the next suite; a bad card entry is refused before any notebook.

The suite runs here on a temporary project (one tiny notebook, a q_learning card and a card of
notebook 08's plugin agent, copied from ``examples/``), with the card's battery replaced by one
tiny item so that each card takes seconds; ``tests/test_card.py`` tests the battery itself.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import REPO

from rlcompare.app.suite import load_cards, run_suite
from rlcompare.app.suite_cards import CARD_STORE, plan_cards
from rlcompare.errors import SpecError
from rlcompare.store.results import stored_runs
from rlcompare.studies import card as card_module
from rlcompare.studies.card_battery import Item, Size, Task, normalised_return

STILL_LAKE = Task(
    "still lake",
    "FrozenLake-v1",
    env_kwargs={"is_slippery": False},
    references={"random": {}},
    seeds=Size(2, 2),
    steps=Size(1000, 1000),
    evals=2,
    eval_episodes=2,
    common={"gamma": 0.95},
)
TINY = (Item("regret", "Exact regret", (STILL_LAKE,), normalised_return),)
CARDS = """
  cards:
    - {algo: q_learning, quick: true, executor: serial}
    - {algo: q_lambda, plugin: examples/q_lambda.py, quick: true, executor: serial}
"""


def _project(root: Path, cards: str = CARDS) -> Path:
    """A project with one notebook and ``cards`` in its smoke profile; its notebooks folder."""
    folder = root / "notebooks"
    folder.mkdir(parents=True)
    (folder / "profiles.yaml").write_text(f"smoke:\n  01_tiny: {{}}\n{cards}default: {{}}\n")
    (root / "examples").mkdir()
    shutil.copy(REPO / "examples" / "q_lambda.py", root / "examples" / "q_lambda.py")
    parameters = nbformat.v4.new_code_cell(
        'store_root = "../data"\nfigures_dir = "../figures"\nexecutor = "serial"',
        metadata={"tags": ["parameters"]},
    )
    notebook = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell("1 + 1")])
    notebook.metadata["kernelspec"] = {
        "name": "rlcompare",
        "display_name": "rlcompare",
        "language": "python",
    }
    nbformat.write(notebook, folder / "01_tiny.ipynb")
    return folder


def _suite(folder: Path, **kwargs) -> tuple[int, str]:
    """``run_suite`` of the smoke profile with the tiny battery; its status and stdout."""
    root = folder.parent
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(card_module, "battery", lambda quick: TINY)
        status = run_suite(
            "smoke",
            directory=folder,
            data_dir=root / "data",
            figures_dir=root / "figures",
            **kwargs,
        )
    return status, printed.getvalue()


def _runs(store: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in stored_runs(store)}


@pytest.fixture(scope="module")
def suites(tmp_path_factory: pytest.TempPathFactory):
    """The whole profile run once, then its cards again: (executed folder, first output,
    second output, the store's runs after each)."""
    folder = _project(tmp_path_factory.mktemp("project"))
    data = folder.parent / "data"
    status, first = _suite(folder)
    assert status == 0, first
    after_first = _runs(data / CARD_STORE)
    status, second = _suite(folder, only=["cards"])
    assert status == 0, second
    return data / "executed" / "smoke", first, second, after_first, _runs(data / CARD_STORE)


def test_index_links_each_card_to_its_page(suites):
    executed, *_ = suites
    index = (executed / "index.html").read_text()
    links = re.findall(r'<a href="(cards/[^"]+)">([^<]+)</a>', index)
    assert links == [
        ("cards/q_learning/index.html", "q_learning"),
        ("cards/q_lambda/index.html", "q_lambda"),
    ]
    for href, algo in links:
        page = executed / href
        assert page.is_file() and (page.parent / "card.tex").is_file()
        assert algo in page.read_text()


def test_cards_run_after_the_notebooks_and_print_their_time(suites):
    _, first, *_ = suites
    for algo in ("q_learning", "q_lambda"):
        found = re.search(
            rf"^\[suite\] card {algo} done in \d+ s \((\d+) runs started\)$", first, re.M
        )
        assert found and int(found.group(1)) > 0, first
    order = [first.index(s) for s in ("01_tiny done", "card q_learning (quick", "report:")]
    assert order == sorted(order), first


def test_a_second_suite_adds_no_card_runs(suites):
    executed, _, second, after_first, after_second = suites
    assert after_first and after_second == after_first, "no run added or rewritten"
    assert second.count("(0 runs started)") == 2, second
    assert "01_tiny" not in second, "--only cards runs no notebook"
    assert 'href="cards/q_lambda/index.html"' in (executed / "index.html").read_text()


@pytest.mark.parametrize(
    ("cards", "message"),
    [
        (
            "  cards:\n    - {algo: q_lerning, quick: true}\n",
            r"unknown algo 'q_lerning'.*q_learning",
        ),
        ("  cards:\n    - {algo: q_learning, quik: true}\n", r"unknown field 'quik'.*quick"),
        ("  cards:\n    - {algo: q_lambda, plugin: examples/nope.py}\n", r"plugin 'examples/nope"),
        ("  cards:\n    - {algo: q_learning, quick: yes please}\n", r"quick = 'yes please'"),
        ("  cards:\n    - {algo: dqn}\n    - {algo: dqn}\n", r"'dqn' is named twice"),
    ],
)
def test_a_bad_card_is_refused_before_any_notebook_runs(tmp_path: Path, cards: str, message):
    folder = _project(tmp_path, cards)
    with pytest.raises(SpecError, match=rf"profile 'smoke', cards: .*{message}"):
        run_suite("smoke", directory=folder, data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists(), "nothing ran"


def test_the_profiles_name_the_cards_of_the_report():
    cards = {
        profile: plan_cards(profile, entries, REPO) for profile, entries in load_cards().items()
    }
    assert cards["smoke"] == [], "the smoke suite stays fast"
    for profile, quick in (("default", True), ("full", False)):
        assert [c.algo for c in cards[profile]] == ["q_learning", "dqn", "q_lambda"]
        assert {c.quick for c in cards[profile]} == {quick}


def test_a_failing_card_is_reported_and_the_others_are_written(tmp_path: Path, capsys):
    cards = "  cards:\n    - {algo: sac, executor: serial}\n"
    folder = _project(tmp_path, cards + "    - {algo: q_learning, executor: serial}\n")
    status, _ = _suite(folder, only=["cards"])
    err = capsys.readouterr().err
    assert status == 1
    assert "FAILED card sac: SpecError: algo 'sac' can run none of the card's battery" in err
    assert "1 card(s) failed: sac" in err
    index = (tmp_path / "data" / "executed" / "smoke" / "index.html").read_text()
    assert 'href="cards/q_learning/index.html"' in index and "cards/sac" not in index
