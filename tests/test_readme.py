"""The README as a user meets it: every fenced code block and every command it quotes inline
runs as written, from a working directory laid out like the repository root (its
``examples/``), with the project's ``rlcompare`` and ``python`` first on PATH.

Stores go to that temporary directory, never to the repository's ``data/``. A command that is
long-running by nature, or needs what a test cannot have (a cluster of hosts, a server that
runs until stopped, the stores of ``make suite``), is skipped by name in ``EXEMPT``, with the
reason; a command that is neither run nor exempt fails ``test_every_readme_command_is_run_or_
exempt``, so a new README command gets a test or a stated reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

README = REPO / "README.md"
BIN = Path(sys.executable).parent
# Folders of the repository root that README commands read (``--plugin examples.q_lambda``).
COPIED = ("examples",)
# Stores README commands write, relative to the working directory.
STORES = (
    "data/quickstart",
    "data/cliff",
    "data/mine",
    "data/tune",
    "data/card",
    "data/card_q_lambda",
)

# Commands not run here, each with why (matched as the whole command, or as its start when
# the key ends with " ...").
EXEMPT = {
    "make suite": "runs every notebook under the default profile: 26 minutes here",
    "make suite PROFILE=smoke": "every notebook under the smoke profile, minutes, into the "
    "repository's data/smoke/; tests/test_notebooks.py executes the same notebooks",
    "make test": "the whole test suite (this file included): 7 minutes here",
    "make test TEST_WORKERS=N": "the whole test suite; N is a placeholder",
    "make venv TORCH_SPEC=... PIP_TORCH_ARGS=...": "placeholders; reinstalls the venv",
    "make bench": "every benchmark, timed side by side: minutes",
    "make lab": "starts a JupyterLab server, which runs until stopped",
    "pytest -m slow tests/test_default_profile.py": "reads the stores `make suite` writes "
    "under the default profile",
    'pip install -e ".[ray]"': "installs packages on a cluster node (what `make venv` does)",
    "rlcompare suite --profile smoke --only 01_convergence": "writes into the repository's "
    "data/smoke/ and figures/smoke/ whatever the working directory; tests/test_notebooks.py "
    "executes notebook 01 under the smoke profile",
    "rlcompare suite --only cards": "writes the default profile's cards into the repository's "
    "data/ (minutes); tests/test_suite_cards.py runs the suite's card step on a temporary project",
    "rlcompare suite --ray-address ...": "needs a Ray cluster; the address is a placeholder",
    "rlcompare run": "names the command of the block above, not a command line",
    "python -m": "names how Python finds modules, not a command line",
    "ray start ...": "starts Ray nodes across hosts; tests/test_multinode.py runs a two-node "
    "cluster on one machine",
    "RAY_ADDRESS=<head-host>:6379 make suite": "a cluster's address (placeholder) and the "
    "whole suite",
    "rlcompare run --algo random --env FrozenLake-v1 --seeds 0-3 --steps 100 --executor ray "
    "--ray-address ...": "needs a Ray cluster with a node offering the 'far' resource "
    "(<head-host> is a placeholder); tests/test_multinode.py checks runs per node",
}
# Run in the repository itself: read-only commands about its files.
IN_REPO = ("make lint",)


def _fenced(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)


def _commands(body: str) -> list[str]:
    """The command lines of a shell block: continuations joined, comments and blank lines
    left out."""
    joined = re.sub(r"\\\n\s*", "", body)
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line and not line.startswith("#"):
            commands.append(re.sub(r"\s+", " ", line))
    return commands


def _inline_commands(text: str) -> list[str]:
    """Commands quoted inline in prose (``make ...``, ``rlcompare ...``, ...)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    spans = re.findall(r"`([^`\n]+)`", prose)
    starts = ("make ", "rlcompare ", "pytest ", "pip ", "ray ", "python ")
    return [s for s in spans if s.startswith(starts) or s in ("make", "rlcompare run")]


def _exemption(command: str) -> str | None:
    for key, reason in EXEMPT.items():
        if command == key or (key.endswith(" ...") and command.startswith(key[:-4])):
            return reason
    return None


TEXT = README.read_text()
BLOCKS = _fenced(TEXT)
PYTHON_BLOCKS = [body for lang, body in BLOCKS if lang == "python"]
SHELL_COMMANDS = [c for lang, body in BLOCKS if lang in ("", "sh", "bash") for c in _commands(body)]
INLINE = _inline_commands(TEXT)
# Shell commands run here, in README order (a later one may read what an earlier one stored).
RUN = [c for c in [*SHELL_COMMANDS, *INLINE] if _exemption(c) is None]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory laid out like the repository root, without its data."""
    root = tmp_path_factory.mktemp("readme")
    for folder in COPIED:
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RLCOMPARE_PLUGINS")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["CI"] = "1"  # no progress bars in the captured output
    return env


def _repo_stores() -> dict[str, float]:
    """Files of the README's stores inside the repository, with their times (must not
    change)."""
    return {
        str(path): path.stat().st_mtime
        for store in STORES
        for path in (REPO / store).glob("*")
        if path.is_file()
    }


@pytest.fixture(scope="module")
def repo_stores_untouched():
    before = _repo_stores()
    yield
    assert _repo_stores() == before, "a README command wrote into the repository's data/"


def test_the_readme_has_the_blocks_this_file_runs():
    assert len(PYTHON_BLOCKS) == 3, "quick start, the verdict and the Coin agent"
    assert any(c.startswith("rlcompare run") for c in RUN)
    assert any(c.startswith("rlcompare --plugin") for c in RUN)


def test_every_readme_command_is_run_or_exempt():
    unknown_exemptions = [
        key
        for key in EXEMPT
        if not any(
            c == key or (key.endswith(" ...") and c.startswith(key[:-4]))
            for c in [*SHELL_COMMANDS, *INLINE]
        )
    ]
    assert not unknown_exemptions, (
        f"exemptions for commands the README no longer has: {unknown_exemptions}"
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs_as_written(index, workdir, repo_stores_untouched):
    script = workdir / f"readme_block_{index}.py"
    script.write_text(PYTHON_BLOCKS[index])
    done = subprocess.run(
        [sys.executable, script.name],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=_env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "failed" not in done.stderr


@pytest.mark.timeout(900)
def test_shell_commands_run_as_written(workdir, repo_stores_untouched):
    """Every shell command not exempt, in README order, in one test: a later one reads what
    an earlier one stored (``rlcompare show data/cliff``)."""
    failures = []
    for command in RUN:
        cwd = REPO if command in IN_REPO else workdir
        if command.startswith("make "):
            fresh = subprocess.run(["make", "-q", "venv"], cwd=REPO, capture_output=True)
            if fresh.returncode != 0:
                continue  # make would reinstall .venv first (pyproject.toml is newer)
        done = subprocess.run(
            command, shell=True, capture_output=True, text=True, cwd=cwd, env=_env(), timeout=600
        )
        if done.returncode != 0 or "Traceback" in done.stderr or "FAILED" in done.stderr:
            failures.append(f"$ {command}\n{done.stdout[-1500:]}\n{done.stderr[-2500:]}")
    assert not failures, "\n\n".join(failures)
    assert len(list((workdir / "data" / "cliff").glob("*.parquet"))) == 20
