"""The notebook suite: execute every notebook under a profile with papermill.

Parameters come from one profiles file (``notebooks/profiles.yaml``); executed copies go to
``data/executed/<profile>/`` so ``notebooks/`` stays output-free. Unknown parameter names are
an error before anything runs (papermill itself only warns). A failing notebook is reported
with its name, cell and error, its executed copy kept, and the suite carries on. At the end
the suite writes the capability cards the profile names (:mod:`rlcompare.app.suite_cards`),
then the figure gallery and the HTML report: a self-contained page per executed notebook and
``data/executed/<profile>/index.html``, linking the cards, to send to a co-author. Given a Ray
address, the suite also says which nodes ran the runs its notebooks stored (printed and on the
index).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlcompare.app.suite_cards import CARD_STORE, CARDS_KEY, card_index, plan_cards, run_cards
from rlcompare.errors import SpecError, choices_text

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
PROFILES_FILE = NOTEBOOKS / "profiles.yaml"
# Profile names (each a section of PROFILES_FILE): smoke for CI, default for a 2-core machine,
# full for a cluster.
PROFILES = ("smoke", "default", "full")
DEFAULT_PROFILE = "default"
SMOKE_PROFILE = "smoke"
KERNEL = "rlcompare"
# Parameters the suite itself sets in every notebook (paths are absolute so that a copy of
# a notebook executed elsewhere, e.g. under nbval in a temporary folder, writes where asked;
# the suite itself passes them relative to the notebook when they lie in its project).
SUITE_PARAMETERS = ("store_root", "figures_dir", "executor")
PATH_PARAMETERS = ("store_root", "figures_dir")


@dataclass(frozen=True)
class NotebookRun:
    """One notebook to execute with its parameters."""

    name: str
    path: Path
    parameters: Mapping[str, Any]


def notebook_names(directory: Path = NOTEBOOKS) -> list[str]:
    """Notebook stems in execution order: experiments first, ``00_summary`` (which reads their
    stores) last."""
    names = sorted(p.stem for p in directory.glob("[0-9][0-9]_*.ipynb"))
    return [n for n in names if not n.startswith("00_")] + [n for n in names if n.startswith("00_")]


def _read_profiles(path: Path) -> dict[str, Any]:
    import yaml

    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, dict[str, dict[str, Any]]]:
    """``profile -> notebook -> parameters`` from the profiles file (its ``cards:`` entries
    are :func:`load_cards`')."""
    return {
        name: {nb: dict(p or {}) for nb, p in (nbs or {}).items() if nb != CARDS_KEY}
        for name, nbs in _read_profiles(path).items()
    }


def load_cards(path: Path = PROFILES_FILE) -> dict[str, Any]:
    """``profile -> its cards: entries`` as written (None where a profile names none)."""
    return {name: (nbs or {}).get(CARDS_KEY) for name, nbs in _read_profiles(path).items()}


def default_dirs(profile: str) -> tuple[Path, Path]:
    """Where a profile stores runs and figures: the write-up's ``data/`` and ``figures/`` for
    ``default`` and ``full``; ``data/smoke/`` and ``figures/smoke/`` for smoke runs, so a quick
    check never overwrites the write-up's numbers or figures. ``RLCOMPARE_FIGURES`` overrides
    the figures folder."""
    data, figures = REPO / "data", Path(os.environ.get("RLCOMPARE_FIGURES", REPO / "figures"))
    if profile == SMOKE_PROFILE:
        return data / SMOKE_PROFILE, figures / SMOKE_PROFILE
    return data, figures


def declared_parameters(path: Path) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters`` cell."""
    import papermill as pm

    return {name: spec["default"] for name, spec in pm.inspect_notebook(str(path)).items()}


def plan(
    profile: str,
    only: Iterable[str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    data_dir: Path | None = None,
    figures_dir: Path | None = None,
    directory: Path = NOTEBOOKS,
) -> list[NotebookRun]:
    """Validates the profile, the notebook names and every parameter name, before running.

    ``only``: the notebooks to run (None: all); ``cards`` there selects no notebook (it names
    the card step, :func:`run_suite`).

    Raises:
        SpecError: unknown profile, notebook or parameter, naming the valid ones.
    """
    profiles = load_profiles(directory / PROFILES_FILE.name)
    if profile not in profiles:
        raise SpecError(f"unknown profile {profile!r}; {choices_text(sorted(profiles), profile)}")
    names = notebook_names(directory)
    for name in only or ():
        if name not in names and name != CARDS_KEY:
            raise SpecError(f"unknown notebook {name!r}; {choices_text([*names, CARDS_KEY], name)}")
    for name in profiles[profile]:
        if name not in names:
            raise SpecError(
                f"profile {profile!r} names unknown notebook {name!r}; {choices_text(names, name)}"
            )
    data_dir = (data_dir or default_dirs(profile)[0]).resolve()
    figures_dir = figures_dir or default_dirs(profile)[1]
    runs = []
    for name in names if only is None else [n for n in names if n in set(only)]:
        path = directory / f"{name}.ipynb"
        declared = declared_parameters(path)
        parameters = {
            "store_root": str(data_dir),
            "figures_dir": str(figures_dir.resolve()),
            **profiles[profile].get(name, {}),
            **{k: v for k, v in (overrides or {}).items() if v is not None},
        }
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            raise SpecError(
                f"notebook {name!r} has no parameter {unknown[0]!r} (profile {profile!r}); "
                f"{choices_text(sorted(declared), unknown[0])}"
            )
        runs.append(NotebookRun(name, path, parameters))
    return runs


def executed_parameters(run: NotebookRun) -> dict[str, Any]:
    """The parameters papermill injects when the suite executes ``run`` (in the notebook's
    folder): a path parameter inside the notebook's project (the folder above the notebook's)
    becomes relative to the notebook, as in its own parameters cell, so the executed copy
    names no path of this machine."""
    parameters = dict(run.parameters)
    project = run.path.parent.resolve().parent
    for name in PATH_PARAMETERS:
        value = parameters.get(name)
        if isinstance(value, str) and Path(value).is_absolute():
            target = Path(value).resolve()
            if target.is_relative_to(project):
                parameters[name] = os.path.relpath(target, run.path.parent.resolve())
    return parameters


def describe_failure(error: BaseException) -> str:
    """One line naming the failing cell and error, or what happened to the kernel."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        return f"cell {error.exec_count}: {error.ename}: {error.evalue}"
    if isinstance(error, DeadKernelError):
        return "the kernel died (killed for memory? `dmesg` says); DeadKernelError"
    if isinstance(error, CellTimeoutError):
        return f"a cell timed out: {error}"
    return f"{type(error).__name__}: {error}"


def kernel_logging_to(path: Path) -> type:
    """A kernel manager whose kernel process writes its own stderr to ``path``: ipykernel's
    start-up and shutdown messages (its unencrypted-TCP warning, asyncio's "Task was
    destroyed" at exit), not a cell's output, which the executed notebook keeps. The suite's
    console then shows the suite's lines only; the log is named where a notebook fails."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with path.open("ab") as log:  # the kernel process keeps its own copy
                await super()._async_launch_kernel(kernel_cmd, **{**kw, "stderr": log})

    return LoggedKernelManager


# Each stored run file's (inode, mtime): a new run, or a failed run that a retry replaced,
# changes it, so comparing two snapshots tells the runs stored in between.
StoreSnapshot = dict[Path, tuple[int, int]]


def notebook_stores(runs: Iterable[NotebookRun]) -> list[Path]:
    """Each notebook's result store, ``<store_root>/<notebook name>`` as every notebook's
    parameters cell sets it (a relative ``store_root`` is relative to the notebook's folder,
    its working directory)."""
    return [run.path.parent / str(run.parameters["store_root"]) / run.name for run in runs]


def snapshot_stores(stores: Iterable[Path]) -> StoreSnapshot:
    """``path -> (inode, mtime_ns)`` of every run stored in ``stores`` now."""
    from rlcompare.store.results import stored_runs  # pandas and Arrow: not for `--help`

    snapshot = {}
    for store in stores:
        for path in stored_runs(store):
            try:
                stat = path.stat()
            except FileNotFoundError:  # gone between listing and stat
                continue
            snapshot[path] = (stat.st_ino, stat.st_mtime_ns)
    return snapshot


def stored_since(before: StoreSnapshot, stores: Iterable[Path]) -> list[Path]:
    """Runs in ``stores`` stored since ``before`` was taken: the runs this suite ran, not the
    ones its sweeps found already stored."""
    return sorted(p for p, key in snapshot_stores(stores).items() if before.get(p) != key)


def suite_node_report(before: StoreSnapshot, stores: Iterable[Path]) -> str:
    """The ``runs per node`` line of the runs stored in ``stores`` since ``before``."""
    from rlcompare.sweeps.nodes import count_nodes, format_node_counts

    return format_node_counts(count_nodes(stored_since(before, stores)))


def run_suite(
    profile: str = DEFAULT_PROFILE,
    only: Sequence[str] | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
    *,
    data_dir: Path | None = None,
    figures_dir: Path | None = None,
    record_check_outputs_to: Path | None = None,
    directory: Path = NOTEBOOKS,
) -> int:
    """Executes the notebooks, then writes the profile's cards; returns 0 when all succeeded,
    1 otherwise (CLI exit status).

    ``only`` names the notebooks to run, and ``cards`` the card step (None or empty: every
    notebook and the cards). The cards run when the whole profile runs or when ``cards`` is
    named, so that rerunning one notebook costs no card; the index links every card of the
    profile that is written. Every card entry is checked (plugins loaded, algos known) before
    any notebook runs.

    With ``record_check_outputs_to`` the check cells' outputs of a fully successful run are
    stored there as the nbval reference (see :func:`record_check_outputs`). With
    ``ray_address`` the runs the notebooks stored are counted per node (:func:`suite_node_report`).
    """
    import papermill as pm

    if ray_address:
        os.environ["RAY_ADDRESS"] = ray_address
    only = list(only) if only else None
    runs = plan(
        profile,
        only,
        overrides={"executor": executor},
        data_dir=data_dir,
        figures_dir=figures_dir,
        directory=directory,
    )
    cards = plan_cards(
        profile,
        load_cards(directory / PROFILES_FILE.name).get(profile),
        directory.resolve().parent,
        executor,
    )
    cards_now = cards if only is None or CARDS_KEY in only else []
    data_dir = data_dir or default_dirs(profile)[0]
    figures_dir = figures_dir or default_dirs(profile)[1]
    executed_dir = data_dir.resolve() / "executed" / profile
    executed_dir.mkdir(parents=True, exist_ok=True)
    card_store = data_dir.resolve() / CARD_STORE
    stores = notebook_stores(runs) + ([card_store] if cards_now else [])
    before = snapshot_stores(stores) if ray_address else None
    failures = []
    for run in runs:
        began = time.perf_counter()
        output = executed_dir / f"{run.name}.ipynb"
        kernel_log = executed_dir / f"{run.name}.kernel.log"
        kernel_log.unlink(missing_ok=True)
        print(f"[suite] {run.name} ({profile}) ...", flush=True)
        try:
            pm.execute_notebook(
                str(run.path),
                str(output),
                parameters=executed_parameters(run),
                kernel_name=KERNEL,
                cwd=str(run.path.parent),
                progress_bar=False,
                kernel_manager_class=kernel_logging_to(kernel_log),
            )
        except Exception as error:  # a failing notebook must not stop the others
            failures.append(run.name)
            print(
                f"[suite] FAILED {run.name}: {describe_failure(error)} (executed copy: {output}; "
                f"kernel log: {kernel_log})",
                file=sys.stderr,
                flush=True,
            )
            continue
        finally:
            if output.exists():
                _scrub_executed(output, directory.resolve().parent)
        print(f"[suite] {run.name} done in {time.perf_counter() - began:.0f} s", flush=True)
    card_failures = run_cards(cards_now, executed_dir, card_store)
    nodes = suite_node_report(before, stores) if before is not None else None
    if nodes is not None:
        print(f"[suite] {nodes}", flush=True)
    from rlcompare.viz.figures import write_gallery

    gallery = write_gallery(figures_dir)
    print(f"[suite] gallery: {gallery}")
    from rlcompare.viz.html_report import write_report

    report = write_report(
        executed_dir,
        figures_dir,
        profile,
        names=sorted(notebook_names(directory)),
        nodes=nodes,
        roots=[directory.resolve().parent],
        cards=[card_index(executed_dir, c) for c in cards if card_index(executed_dir, c).exists()],
    )
    print(f"[suite] report: {report}")
    if failures:
        print(f"[suite] {len(failures)} notebook(s) failed: {', '.join(failures)}", file=sys.stderr)
    if card_failures:
        print(
            f"[suite] {len(card_failures)} card(s) failed: {', '.join(card_failures)}",
            file=sys.stderr,
        )
    if failures or card_failures:
        return 1
    if record_check_outputs_to is not None:
        recorded = record_check_outputs(
            executed_dir, record_check_outputs_to, names=[run.name for run in runs]
        )
        print(f"[suite] check outputs: {recorded}")
    return 0


def _scrub_executed(path: Path, project: Path) -> None:
    """Rewrites an executed notebook with the paths of this machine taken out of its cells
    (warnings name their file relative to the project, a cell as ``<cell>``)."""
    import nbformat

    from rlcompare.viz.html_report import scrub_notebook

    nbformat.write(scrub_notebook(nbformat.read(path, as_version=4), [project]), path)


# Expected output of each notebook's `# NBVAL_CHECK_OUTPUT` cell under the smoke profile.
# Committed notebooks carry no outputs, so nbval's reference comes from here: the test suite
# writes it into the prepared copy before nbval compares.
CHECK_OUTPUTS_FILE = NOTEBOOKS / "smoke_outputs.json"
CHECK_MARKER = "NBVAL_CHECK_OUTPUT"


def _check_cell(notebook: Any) -> Any:
    cells = [c for c in notebook.cells if c.cell_type == "code" and CHECK_MARKER in c.source]
    if len(cells) != 1:
        raise ValueError(f"expected one {CHECK_MARKER} cell, found {len(cells)}")
    return cells[0]


def record_check_outputs(
    executed_dir: Path, path: Path = CHECK_OUTPUTS_FILE, names: Iterable[str] | None = None
) -> Path:
    """Stores the stdout of executed notebooks' check cells as the nbval reference (only
    ``names`` when given, so stale copies of other notebooks are left out)."""
    import json

    import nbformat

    recorded = json.loads(path.read_text()) if path.exists() else {}
    for executed in sorted(Path(executed_dir).glob("*.ipynb")):
        if names is not None and executed.stem not in set(names):
            continue
        cell = _check_cell(nbformat.read(executed, as_version=4))
        recorded[executed.stem] = "".join(
            o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream"
        )
    path.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return path


def inject_check_output(notebook_path: Path, name: str, path: Path = CHECK_OUTPUTS_FILE) -> None:
    """Writes the recorded reference output into a prepared notebook's check cell.

    Raises:
        KeyError: no reference is recorded for ``name``.
    """
    import json

    import nbformat

    recorded = json.loads(path.read_text()) if path.exists() else {}
    if name not in recorded:
        raise KeyError(
            f"no recorded check output for {name!r}; run `rlcompare suite "
            "--profile smoke --record-check-outputs`"
        )
    notebook = nbformat.read(notebook_path, as_version=4)
    cell = _check_cell(notebook)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=recorded[name])]
    cell.execution_count = 1  # nbval ignores the outputs of a cell that never ran
    nbformat.write(notebook, notebook_path)
