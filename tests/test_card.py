"""The report card (``rlcompare card``): per-run scores in [0, 1] and their direction, items
not applicable, bad input, reuse of stored runs, the HTML page in a real browser and the
LaTeX appendix through pdflatex. A tiny battery keeps every card to seconds."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from conftest import IN_CI

import rlcompare
from rlcompare.app.cli import main
from rlcompare.envs.model import tabular_mdp
from rlcompare.envs.planning import value_iteration
from rlcompare.errors import SpecError
from rlcompare.spec import registry
from rlcompare.store.results import stored_records
from rlcompare.studies import card as card_module
from rlcompare.studies.card import card, write_card
from rlcompare.studies.card_battery import (
    CARTPOLE_BEST,
    CARTPOLE_RANDOM,
    Item,
    Logs,
    Size,
    Task,
    battery,
    normalised_auc,
    normalised_return,
    not_collapsed,
    q_convergence,
    solved,
    steps_to_threshold,
    tabular_bounds,
)

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
PDFLATEX = shutil.which("pdflatex")
LAKE = "FrozenLake-v1"
# Non-slippery: Q-learning finds the goal within a few thousand steps, a random policy not.
STILL_LAKE = Task(
    "still lake",
    LAKE,
    env_kwargs={"is_slippery": False},
    references={"random": {}},
    seeds=Size(2, 2),
    steps=Size(3000, 3000),
    evals=3,
    eval_episodes=2,
    common={"gamma": 0.95},
)
LOGS = Task(
    "lake logs",
    LAKE,
    references={"double_q": {}},
    seeds=Size(2, 2),
    steps=Size(500, 500),
    evals=1,
    eval_episodes=2,
    common={"gamma": 0.95},
    logs=Logs("lake_random", LAKE, lambda obs: 0, Size(300, 300)),
)
PENDULUM = Task(
    "pendulum", "Pendulum-v1", references={"random": {}}, seeds=Size(2, 2), steps=Size(50, 50)
)
TINY = (
    Item("regret", "Exact regret", (STILL_LAKE,), normalised_return),
    Item("convergence", "Convergence to Q*", (STILL_LAKE,), q_convergence, requires="q_error"),
    Item("logs", "Learning from logs", (LOGS,), normalised_return, requires="dataset"),
    Item("continuous", "Continuous control", (PENDULUM,), normalised_return),
)


def _card(algo: str, store: Path, **kwargs):
    return card(algo, store=store, items=TINY, quick=True, executor="serial", **kwargs)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory):
    """q_learning's tiny card, written, with its store."""
    folder = tmp_path_factory.mktemp("card")
    result = _card("q_learning", folder / "store", out=folder / "out")
    return result, folder


# ----------------------------------------------------------------------------- scorers
def _rows(values: dict[str, list[float]], metric: str, algo: str = "a") -> pd.DataFrame:
    """Tidy rows: each run's values at steps 0, 1, 2, ..."""
    records = [
        {"run_id": run, "algo": algo, "env": LAKE, "seed": i, "step": step, "metric": metric,
         "value": value, "experiment": "card"}
        for i, (run, series) in enumerate(values.items())
        for step, value in enumerate(series)
    ]  # fmt: skip
    return pd.DataFrame.from_records(records)


def test_normalised_return_is_zero_at_random_and_one_at_optimal():
    low, high = tabular_bounds(LAKE)
    assert 0 <= low < high <= 1
    task = Task(LAKE, LAKE, references={}, seeds=Size(2, 2), steps=Size(1, 1))
    frame = _rows(
        {"best": [0, high], "random": [0, low], "half": [0, (low + high) / 2], "nan": [np.nan]},
        "expected_eval_return",
    )
    scores = normalised_return(frame, task)
    assert scores["best"] == pytest.approx(1) and scores["random"] == pytest.approx(0)
    assert scores["half"] == pytest.approx(0.5)
    assert scores["nan"] == 0, "a diverged run scores the floor"
    assert scores.between(0, 1).all()


def test_q_convergence_direction_and_range():
    mdp = tabular_mdp(LAKE)
    q = value_iteration(mdp, 0.95).q
    mask = mdp.valid_actions & (mdp.reachable & ~mdp.terminal)[:, None]
    scale = np.abs(q[mask]).max()
    task = Task(LAKE, LAKE, references={}, seeds=Size(2, 2), steps=Size(1, 1))
    frame = _rows({"exact": [scale, 0.0], "zeros": [scale], "worse": [3 * scale]}, "q_error")
    frame["hp.gamma"] = 0.95
    scores = q_convergence(frame, task)
    assert scores["exact"] == 1 and scores["zeros"] == pytest.approx(0) and scores["worse"] == 0
    other = _rows({"mid": [scale / 4]}, "q_error")
    other["hp.gamma"] = 0.95
    assert q_convergence(other, task)["mid"] == pytest.approx(0.75)


def test_auc_solved_and_stability_scores():
    task = Task("CartPole-v1", "CartPole-v1", references={}, seeds=Size(2, 2), steps=Size(1, 1))
    frame = _rows(
        {
            "fast": [CARTPOLE_BEST] * 5,
            "slow": [CARTPOLE_RANDOM] * 4 + [CARTPOLE_BEST],
            "never": [CARTPOLE_RANDOM] * 5,
        },
        "eval_return",
    )
    auc = normalised_auc(frame, task)
    assert auc["fast"] == 1 and auc["never"] == 0 and 0 < auc["slow"] < 0.2
    steady = not_collapsed(frame, task)
    assert (steady == 1).all(), "no run fell from its best"
    fell = _rows({"fell": [CARTPOLE_RANDOM, CARTPOLE_BEST, 100.0, 50.0]}, "eval_return")
    assert not_collapsed(fell, task)["fell"] == 0
    evidence = steps_to_threshold(frame, task)
    assert evidence.endswith("a 2/3 runs, KM median 4"), "reached at 0 and 4, one never"
    sea = Task("sea", "rlcompare/DeepSea-v0", references={}, seeds=Size(2, 2), steps=Size(1, 1))
    found = solved(_rows({"yes": [0.0, 0.99], "no": [0.99, 0.0]}, "eval_return"), sea)
    assert found.to_dict() == {"no": 0.0, "yes": 1.0}


def test_every_item_of_the_battery_has_a_definition():
    for quick in (True, False):
        items = battery(quick)
        assert [i.name for i in items] == [
            "convergence", "regret", "exploration_deepsea", "exploration_riverswim",
            "sample_efficiency", "stability", "logs", "continuous",
        ]  # fmt: skip
        for item in items:
            assert "[0, 1]" in item.definition or "share" in item.definition, item.name
            assert "``" not in item.definition and ":func:" not in item.definition
            assert all(t.seeds.of(quick) >= 2 for t in item.tasks)


def test_decisions_are_from_the_algorithms_side():
    """Five runs each, every run of one above every run of the other: decided at 5%."""
    high, low = [0.9, 0.8, 0.95, 0.85, 1.0], [0.1, 0.2, 0.0, 0.15, 0.05]
    runs = (("mine", high), ("ref", low), ("tie", high))
    scores = pd.DataFrame(
        [{"task": "t", "contender": c, "seed": i, "run_id": f"{c}{i}", "score": v}
         for c, values in runs for i, v in enumerate(values)]
    )  # fmt: skip
    table = card_module._decisions("mine", scores, 0.05).set_index("reference")
    assert table.at["ref", "decision"] == "better" and table.at["tie", "decision"] != "better"
    assert table.at["ref", "difference"] == pytest.approx(np.mean(high) - np.mean(low))
    assert table.at["ref", "difference_low"] > 0 and table.at["ref", "p_improvement"] == 1
    assert table.at["tie", "p_improvement"] == 0.5
    flipped = card_module._decisions("ref", scores[scores["contender"] != "tie"], 0.05)
    assert flipped["decision"].tolist() == ["worse"] and flipped["p_improvement"].iloc[0] == 0


# ----------------------------------------------------------------------------- a card
def test_card_scores_items_and_lists_what_does_not_apply(made):
    result, _ = made
    items = {r.item.name: r for r in result.items}
    for name in ("regret", "convergence", "logs"):
        assert items[name].applicable, items[name].reason
        assert 0 <= items[name].score <= 1
        assert set(items[name].scores["contender"]) >= {"q_learning"}
        assert items[name].scores["score"].between(0, 1).all()
    assert items["continuous"].reason == (
        "pendulum: needs a Discrete observation space (tabular), got Box of shape (3,) (float32)"
    )
    assert items["continuous"].score is None and items["continuous"].runs_started == 0
    decisions = items["regret"].decisions
    assert list(decisions["reference"]) == ["random"]
    assert decisions["decision"].iloc[0] in ("better", "worse", "no difference found")
    assert decisions["difference_low"].iloc[0] <= decisions["difference"].iloc[0]
    # random keeps no Q table: it records no q_error, so it is no reference there.
    assert set(items["convergence"].scores["contender"]) == {"q_learning"}
    regret = items["regret"]
    assert regret.best == {"still lake": ("random", regret.reference_scores["random"])}
    assert regret.best_score == regret.reference_scores["random"]
    table = result.table()
    assert table["score"].iloc[0] == items["regret"].score
    assert "Discrete observation" in table.set_index("item").at["continuous", "status"]


def test_a_better_algorithm_scores_higher(made, tmp_path: Path):
    result, folder = made
    learner = {r.item.name: r for r in result.items}["regret"]
    other = _card("random", folder / "store")
    guesser = {r.item.name: r for r in other.items}["regret"]
    assert learner.score > guesser.score
    assert learner.reference_scores["random"] == pytest.approx(guesser.score)
    assert guesser.reference_scores == {}, "random is not its own reference"
    # It ran the lake (for regret) but keeps no Q table: convergence is not applicable.
    convergence = {r.item.name: r for r in other.items}["convergence"]
    assert convergence.reason == "its runs record no q_error" and convergence.score is None


def test_an_algorithm_without_a_dataset_parameter_cannot_learn_from_logs(made):
    _, folder = made
    result = card("sarsa", store=folder / "store", items=TINY[:1] + TINY[2:3], executor="serial")
    logs = {r.item.name: r for r in result.items}["logs"]
    assert not logs.applicable and "declares no 'dataset' hyperparameter" in logs.reason


def test_reference_runs_are_reused(made):
    """A second card starts no new run: every run of the first is in the store."""
    result, folder = made
    store = folder / "store"
    before = len(stored_records(store))
    again = _card("q_learning", store)
    assert len(stored_records(store)) == before
    assert all(r.runs_started == 0 for r in again.items)
    assert result.items[0].runs_started > 0
    pd.testing.assert_frame_equal(again.items[0].scores, result.items[0].scores)


# ----------------------------------------------------------------------------- bad input
def test_unknown_algo_names_the_valid_ones(tmp_path: Path, capsys):
    with pytest.raises(SpecError, match=r"unknown algo 'q_lerning'.*q_learning"):
        card("q_lerning", store=tmp_path, items=TINY)
    assert main(["card", "q_lerning", "--store", str(tmp_path)]) == 2
    assert "unknown algo 'q_lerning'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing ran"


def test_bad_settings_are_named_before_any_run(tmp_path: Path, capsys):
    with pytest.raises(SpecError, match=r"alpha.*5\.0"):
        card("q_learning", store=tmp_path / "s", items=TINY, hparams={"alpha": 5.0})
    assert main(["card", "q_learning", "--set", "lam=1", "--store", str(tmp_path / "s")]) == 2
    assert "lam" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_plugin_that_does_not_import(tmp_path: Path, capsys):
    plugin = tmp_path / "broken_card_plugin.py"
    plugin.write_text("import no_such_module_here\n")
    code = main(["card", "--plugin", str(plugin), "q_learning", "--store", str(tmp_path / "s")])
    assert code == 2
    err = capsys.readouterr().err
    assert "does not import" in err and "no_such_module_here" in err
    assert not (tmp_path / "s").exists()


class _BoxOnly:
    """Acts on Box observations only."""

    def __init__(self, observation_space, action_space, hparams, rng):
        self.space = action_space

    def act(self, obs, step):
        return self.space.sample()

    def update(self, *transition):
        pass

    def greedy_action(self, obs):
        return self.space.sample()


def _image_obs(obs: gym.Space, act: gym.Space) -> str | None:
    return (
        "needs image observations"
        if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 3
        else None
    )  # noqa: E501


def test_an_algo_that_runs_none_of_the_battery(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # no leak to others
    rlcompare.register_algorithm("card_test_images", agent=_BoxOnly, spaces=_image_obs)
    with pytest.raises(SpecError, match=r"can run none of the card's battery.*needs image"):
        card("card_test_images", store=tmp_path / "s", items=TINY)
    with pytest.raises(SpecError, match=r"can run none.*continuous: .*needs image"):
        card("card_test_images", store=tmp_path / "s")  # the real battery, refused as fast
    assert not (tmp_path / "s").exists(), "refused before any run"


# ----------------------------------------------------------------------------- CLI
def test_command_prints_each_item_and_the_output(made, monkeypatch, capsys):
    _, folder = made
    monkeypatch.setattr(card_module, "battery", lambda quick: TINY)
    out = folder / "cli"
    code = main(
        ["card", "q_learning", "--quick", "--store", str(folder / "store"), "--out", str(out),
         "--executor", "serial"]
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    for name in ("regret", "convergence", "logs", "continuous"):
        assert re.search(rf"^  {name} +\d+\.\d s  score ", text, re.MULTILINE), text
    assert "not applicable: pendulum: needs a Discrete observation" in text
    assert "vs random on still lake" in text or "random on still lake:" in text
    assert str(out / "index.html") in text and (out / "card.tex").exists()


# ----------------------------------------------------------------------------- output
def test_output_folder(made):
    result, folder = made
    out = folder / "out"
    assert result.index == out / "index.html"
    page = result.index.read_text()
    assert not re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//', page)
    for key in ("code_fingerprint", "versions", "still lake", "3000 steps", "0-1"):
        assert key in page, key
    for pdf in ("capabilities.pdf", "item_regret.pdf", "item_logs.pdf"):
        assert (out / pdf).exists()
        assert pdf in (out / "card_appendix.tex").read_text()
    assert "item_continuous" not in page, "no figure for an item not applicable"
    tex = (out / "card_appendix.tex").read_text()
    assert r"\toprule" in tex and r"q\_learning" in tex
    assert "\\input{card_appendix}" in (out / "card.tex").read_text()


@pytest.mark.skipif(
    BROWSER is None and not IN_CI,
    reason="no chromium here (make test installs it where apt-get works)",
)
def test_card_renders_in_a_real_browser(made):
    result, _ = made
    assert BROWSER is not None
    dom = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--dump-dom", result.index.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    images = re.findall(r"<img ", dom)
    assert len(images) == 4, "the chart and three item figures"
    rendered = re.search(r'data-images-rendered="(\d+)"', dom)
    assert rendered and int(rendered.group(1)) == len(images), "no broken image"
    figures = re.findall(r"<figure.*?</figure>", dom, re.DOTALL)
    assert len(figures) == len(images)
    for figure in figures:
        caption = re.search(r"<figcaption>(.+?)</figcaption>", figure, re.DOTALL)
        assert caption and caption.group(1).strip(), "every figure has a caption"


@pytest.mark.skipif(
    PDFLATEX is None and not IN_CI,
    reason="no pdflatex here (make tex installs it where apt-get works)",
)
def test_card_tex_compiles(made, tmp_path: Path):
    result, _ = made
    assert PDFLATEX is not None
    copy = tmp_path / "tex"
    shutil.copytree(result.index.parent, copy)
    run = subprocess.run(
        [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "card.tex"],
        cwd=copy, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert (copy / "card.pdf").stat().st_size > 10_000
    assert "Overfull" not in run.stdout, "every table fits the text width"


def test_write_card_again_returns_the_index(made, tmp_path: Path):
    result, _ = made
    index = write_card(result, tmp_path / "again")
    assert index == tmp_path / "again" / "index.html" and index.exists()


AGENT_SOURCE = '''
import rlcompare


@rlcompare.register_algorithm("card_test_edited")
class Edited:
    """Acts at random (a stand-in for a user's method under development)."""

    def __init__(self, observation_space, action_space, hparams, rng):
        self.n, self.rng = action_space.n, rng

    def act(self, obs, step):
        return int(self.rng.integers(self.n))

    def update(self, obs, action, reward, next_obs, terminated, truncated, step):
        pass

    def greedy_action(self, obs):
        return {greedy}
'''


def test_an_edited_algorithm_reruns_its_own_runs_only(tmp_path: Path, monkeypatch):
    """The store's fingerprint: after an edit the algorithm's runs are redone, the
    built-ins' reference runs are not."""
    import importlib
    import sys

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # no leak to others
    source = tmp_path / "card_edited_plugin.py"
    source.write_text(AGENT_SOURCE.format(greedy="0"))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("card_edited_plugin")
    try:
        store = tmp_path / "store"
        first = card("card_test_edited", store=store, items=TINY[:1], executor="serial")
        assert first.items[0].runs_started == 4, "two own runs, two of random"
        again = card("card_test_edited", store=store, items=TINY[:1], executor="serial")
        assert again.items[0].runs_started == 0
        source.write_text(AGENT_SOURCE.format(greedy="int(self.rng.integers(self.n))"))
        importlib.reload(module)
        with pytest.warns(UserWarning, match="card_test_edited"):
            edited = card("card_test_edited", store=store, items=TINY[:1], executor="serial")
        assert len(stored_records(store)) == 4, "the two stale runs replaced"
        assert edited.items[0].runs_started == 2, "its own two runs, not random's"
        scores = edited.items[0].scores.set_index("run_id")["score"]
        before = first.items[0].scores.set_index("run_id")["score"]
        random_runs = [r for r in before.index if "__random__" in r]
        assert scores[random_runs].equals(before[random_runs])
    finally:
        sys.modules.pop("card_edited_plugin", None)
