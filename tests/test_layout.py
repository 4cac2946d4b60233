"""The house layout: subpackages in the order the data flows, a lower layer never importing a
higher one, no import cycle, and every registered trainer and env loadable."""

from __future__ import annotations

import ast
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import ONE_WORKER, REPO, worker_group

import rlcompare
from rlcompare.envs import CUSTOM_ENVS
from rlcompare.envs.make import FEATURED_ENVS, make_env
from rlcompare.spec.registry import get_algorithm

PACKAGE = REPO / "rlcompare"
# Bottom to top. A module may import its own layer and the layers before it, never after.
# "base" is the few modules every layer uses (errors, seeded streams, package versions).
LAYERS = (
    "base",
    "envs",
    "spec",
    "runner",
    "algos",
    "store",
    "sweeps",
    "analysis",
    "viz",
    "studies",
    "experiments",
    "app",
)
BASE_MODULES = {"rlcompare.errors", "rlcompare.seeding", "rlcompare.versions"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_imports(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (never executed)."""
    guarded = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
    ]
    return {id(n) for g in guarded for s in g.body for n in ast.walk(s)}


def imported_modules(path: Path, type_checking: bool = True) -> set[str]:
    """Every rlcompare module ``path`` imports, at module level or inside functions (and
    under ``if TYPE_CHECKING:`` unless ``type_checking`` is False)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    skip = set() if type_checking else _type_checking_imports(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import name` imports pkg.name when that is a module, else pkg.
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                for a in node.names
            ]
        else:
            continue
        found |= {name for name in names if name in MODULES}
    return found


def layer(module: str) -> str:
    if module in BASE_MODULES:
        return "base"
    parts = module.split(".")
    assert len(parts) > 1 and parts[1] in LAYERS, f"{module} is in no layer of {LAYERS}"
    return parts[1]


GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def test_every_module_sits_in_a_layer():
    for module in MODULES:
        if module != "rlcompare":
            layer(module)


def test_no_lower_layer_imports_a_higher_one():
    upward = [
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module, targets in GRAPH.items()
        if module != "rlcompare"
        for target in targets
        if LAYERS.index(layer(target)) > LAYERS.index(layer(module))
    ]
    assert upward == []


def test_the_checker_sees_an_upward_import(tmp_path):
    # The layer rule is only as good as the import scan: it must see function-level imports.
    source = tmp_path / "probe.py"
    source.write_text(
        "def f():\n    from rlcompare.app import cli\n    import rlcompare.viz.plots\n"
    )
    assert imported_modules(source) == {"rlcompare.app.cli", "rlcompare.viz.plots"}
    guarded = tmp_path / "guarded.py"
    guarded.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import rlcompare.app.cli"
    )
    assert imported_modules(guarded) == {"rlcompare.app.cli"}
    assert imported_modules(guarded, type_checking=False) == set()


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_the_package_has_no_import_cycle():
    # Imports that only type checkers run (under `if TYPE_CHECKING:`) cannot form a cycle.
    runtime = {name: imported_modules(path, type_checking=False) for name, path in MODULES.items()}
    assert find_cycle(runtime) is None


@pytest.mark.parametrize("name", rlcompare.algorithms())
def test_every_registered_trainer_loads(name):
    algorithm = get_algorithm(name)
    assert callable(algorithm.load())
    if algorithm.batch_trainer is not None:
        assert callable(algorithm.load(batch=True))


@pytest.mark.parametrize("env_id", sorted(set(FEATURED_ENVS) | set(CUSTOM_ENVS)))
def test_every_registered_env_makes_and_steps(env_id):
    env = make_env(env_id)
    try:
        env.reset(seed=0)
        env.step(env.action_space.sample())
    finally:
        env.close()
    assert env_id in gym.registry


def test_every_one_worker_prefix_names_existing_tests() -> None:
    """A renamed test file or function would silently leave its ``ONE_WORKER`` group (and
    run beside the tests it must not meet); each prefix names a file and, where it names a
    function, a test defined in that file."""
    for prefix, group in ONE_WORKER.items():
        path, _, function = prefix.partition("::")
        assert (REPO / path).is_file(), prefix
        if function:
            tree = ast.parse((REPO / path).read_text())
            names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
            assert function in names, prefix
        assert worker_group(prefix + ("x" if not function else "[case]")) == group
    assert worker_group("tests/test_store.py::test_a") == "tests/test_store.py::test_a"
