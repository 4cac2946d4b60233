"""The notebooks: shape rules, profiles, and every notebook executed with the smoke profile
under nbval (parameters injected with papermill's prepare-only into a temporary folder)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from conftest import REPO

from rlcompare import SpecError
from rlcompare.app.suite import (
    NOTEBOOKS,
    PROFILES,
    SUITE_PARAMETERS,
    inject_check_output,
    load_profiles,
    notebook_names,
    plan,
    run_suite,
)

NAMES = notebook_names()


def _cells(name: str) -> list[nbformat.NotebookNode]:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells


def test_every_listed_notebook_exists() -> None:
    expected = {
        "00_summary",
        "01_convergence",
        "02_exploration",
        "03_sample_efficiency",
        "04_model_based",
        "05_logs_vs_imitation",
        "06_continuous_actions",
        "07_corrective_action",
        "08_your_algorithm",
        "09_tuning",
    }
    assert set(NAMES) == expected
    assert NAMES[-1] == "00_summary"


# A loop or comprehension longer than this is logic, which belongs in rlcompare.experiments.
SHORT_LINE = 60
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
LOOPS = (
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def notebook_logic(source: str) -> list[str]:
    """What a notebook cell may not hold: definitions, and loops or comprehensions longer
    than one short line (each returned as its source)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        text = ast.get_source_segment(source, node) or ""
        if isinstance(node, DEFINITIONS) or (
            isinstance(node, LOOPS) and ("\n" in text or len(text) > SHORT_LINE)
        ):
            found.append(text)
    return found


def test_notebook_logic_rule():
    assert notebook_logic("x = [a for a in b]\nfig, ax = plots.f(x)") == []
    long = "specs = [s for label, (algo, extra) in variants.items() for s in grid(algo, envs)]"
    assert notebook_logic(long) == [long.removeprefix("specs = ")]
    assert notebook_logic("for a in b:\n    print(a)") == ["for a in b:\n    print(a)"]
    assert notebook_logic("f = lambda x: x") == ["lambda x: x"]
    assert notebook_logic("def f():\n    pass") == ["def f():\n    pass"]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_shape(name: str) -> None:
    cells = _cells(name)
    code = [c for c in cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        "committed notebooks carry no outputs"
    )
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged parameters"
    for statement in ast.parse(tagged[0].source).body:
        assert isinstance(statement, ast.Assign), ast.unparse(statement)
        ast.literal_eval(statement.value)  # raises on anything but a literal
    declared = {t.id for s in ast.parse(tagged[0].source).body for t in s.targets}
    assert set(SUITE_PARAMETERS) <= declared
    for cell in code:
        assert notebook_logic(cell.source) == [], "logic belongs in rlcompare.experiments"
    assert sum(c.cell_type == "markdown" for c in cells) >= 3
    assert "NBVAL_CHECK_OUTPUT" in cells[-1].source, "the last cell records headline numbers"


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_name_only_declared_parameters(profile: str) -> None:
    runs = plan(profile)
    assert [r.name for r in runs] == NAMES


def test_unknown_parameter_fails_before_running(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no parameter 'sedes'"):
        plan("smoke", overrides={"sedes": 3})
    with pytest.raises(SpecError, match="unknown profile 'fast'.*smoke"):
        plan("fast")
    with pytest.raises(SpecError, match="unknown notebook '01_convergense'.*01_convergence"):
        plan("smoke", only=["01_convergense"])
    assert set(load_profiles()) == set(PROFILES)


def _tiny_notebook(path: Path, body: str) -> None:
    parameters = nbformat.v4.new_code_cell(
        'store_root = "."\nfigures_dir = "."\nexecutor = "serial"',
        metadata={"tags": ["parameters"]},
    )
    notebook = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(body)])
    notebook.metadata["kernelspec"] = {
        "name": "rlcompare",
        "display_name": "rlcompare",
        "language": "python",
    }
    nbformat.write(notebook, path)


def test_suite_reports_failing_and_dead_notebooks_and_runs_the_rest(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder, data = tmp_path / "notebooks", tmp_path / "data"
    folder.mkdir()
    (folder / "profiles.yaml").write_text("smoke: {}\ndefault: {}\nfull: {}\n")
    _tiny_notebook(folder / "01_raises.ipynb", "raise ValueError('bad budget 7')")
    _tiny_notebook(
        folder / "02_dies.ipynb", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    _tiny_notebook(
        folder / "03_fine.ipynb",
        "import pathlib\npathlib.Path(store_root, 'ran').write_text('yes')",
    )
    status = run_suite("default", directory=folder, data_dir=data, figures_dir=tmp_path / "figures")
    err = capfd.readouterr().err  # the kernels' own stderr included (file descriptor 2)
    assert status == 1
    assert re.search(r"FAILED 01_raises: cell \d+: ValueError: bad budget 7", err)
    assert "FAILED 02_dies: the kernel died" in err
    executed = data / "executed" / "default"
    assert f"kernel log: {executed / '02_dies.kernel.log'}" in err
    # ipykernel's own messages go to each notebook's kernel log, not the suite's console
    # (before: "[IPKernelApp] WARNING | Kernel is running over TCP ..." once per notebook).
    assert "IPKernelApp" not in err
    assert all((executed / f"{name}.kernel.log").exists() for name in ("01_raises", "03_fine"))
    assert "2 notebook(s) failed: 01_raises, 02_dies" in err
    assert (data / "ran").read_text() == "yes"  # the suite went on after both failures
    assert (data / "executed" / "default" / "01_raises.ipynb").exists()
    index = (data / "executed" / "default" / "index.html").read_text()
    assert 'href="03_fine.html"' in index, "the report links every executed notebook"
    assert (data / "executed" / "default" / "03_fine.html").exists()


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data and figures folder for the whole smoke run, so that ``00_summary`` (last in
    NAMES) reads the stores the other notebooks wrote."""
    return tmp_path_factory.mktemp("smoke")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_under_nbval_with_smoke_profile(name: str, smoke_dir: Path) -> None:
    (run,) = plan(
        "smoke", only=[name], data_dir=smoke_dir / "data", figures_dir=smoke_dir / "figures"
    )
    prepared = smoke_dir / f"{name}.ipynb"
    pm.execute_notebook(
        str(run.path),
        str(prepared),
        parameters=dict(run.parameters),
        prepare_only=True,
        progress_bar=False,
    )
    inject_check_output(prepared, name)
    _nbval(prepared, cwd=smoke_dir)
    assert list((smoke_dir / "figures").glob("*.png")), "the notebook saved its figures"


def _nbval(*notebooks: Path, cwd: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "--nbval-sanitize-with",
            str(NOTEBOOKS / "sanitize.cfg"),
            "-o",
            "addopts=",
            "--rootdir",
            str(cwd),
            *map(str, notebooks),
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**_env(), "CI": "1"},
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}
