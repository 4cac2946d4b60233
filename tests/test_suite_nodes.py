"""Which nodes ran a suite's runs: counted from the stored runs' ``node`` metadata, printed and
on the report's index when the suite is given a Ray address, absent otherwise. Runs are faked
with the store's own writer; no Ray, no notebook kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import papermill
import pytest

from rlcompare.app.suite import run_suite, snapshot_stores, suite_node_report
from rlcompare.store.results import write_run
from rlcompare.sweeps.nodes import node_report

ALPHA = {"hostname": "alpha", "pid": "11", "ray_node_id": "0123456789abcdef"}
BETA = {"hostname": "beta", "pid": "12", "ray_node_id": "fedcba9876543210"}
NOTEBOOKS = ["01_convergence", "03_sample_efficiency"]


def store_run(store: Path, run_id: str, node: dict[str, str] | None, status: str = "ok") -> None:
    metadata: dict[str, Any] = {"run_id": run_id, "status": status}
    if node is not None:
        metadata["node"] = node
    write_run(store, pd.DataFrame({"run_id": [run_id], "value": [1.0]}), metadata)


def test_node_report_counts_each_stored_run_once_by_node(tmp_path: Path) -> None:
    store_run(tmp_path, "a", ALPHA)
    store_run(tmp_path, "b", ALPHA)
    store_run(tmp_path, "c", BETA)
    store_run(tmp_path, "old", None)  # stored before runs recorded their node
    report = node_report(tmp_path, ["a", "b", "b", "c", "old", "never-stored"])
    assert report == (
        "runs per node: alpha (ray node 0123456789ab) 2, beta (ray node fedcba987654) 1, unknown 1"
    )
    assert node_report(tmp_path, []) == "runs per node: none"


def test_suite_node_report_counts_only_runs_stored_since_the_snapshot(tmp_path: Path) -> None:
    stores = [tmp_path / name for name in NOTEBOOKS]
    store_run(stores[0], "kept", {"hostname": "earlier"})  # found stored: not run by the suite
    store_run(stores[0], "retried", {"hostname": "earlier"}, status="failed")
    before = snapshot_stores(stores)
    store_run(stores[0], "retried", ALPHA)  # a failed run is the one kind a retry replaces
    store_run(stores[0], "new", ALPHA)
    store_run(stores[1], "new", BETA)  # same run id in another notebook's store: its own run
    assert suite_node_report(before, stores) == (
        "runs per node: alpha (ray node 0123456789ab) 2, beta (ray node fedcba987654) 1"
    )
    assert suite_node_report(snapshot_stores(stores), stores) == "runs per node: none"


@pytest.fixture
def fake_notebooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """papermill's execute_notebook replaced by a notebook that stores one run on ALPHA and one
    on BETA in its store (``<store_root>/<notebook>``) and writes an empty executed copy."""

    def execute(source: str, output: str, parameters: dict[str, Any], **_: Any) -> None:
        store = Path(parameters["store_root"]) / Path(source).stem
        store_run(store, "run-on-alpha", ALPHA)
        store_run(store, "run-on-beta", BETA)
        nbformat.write(nbformat.v4.new_notebook(), output)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.setenv("RAY_ADDRESS", "unset-after-the-test")  # run_suite sets it


@pytest.mark.usefixtures("fake_notebooks")
@pytest.mark.parametrize("ray_address", ["head:6379", None])
def test_suite_prints_and_reports_runs_per_node_given_a_ray_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ray_address: str | None
) -> None:
    data = tmp_path / "data"
    store_run(data / NOTEBOOKS[0], "stored-before", {"hostname": "earlier"})
    status = run_suite(
        "smoke", NOTEBOOKS, ray_address=ray_address, data_dir=data, figures_dir=tmp_path / "fig"
    )
    assert status == 0
    out = capsys.readouterr().out
    index = (data / "executed" / "smoke" / "index.html").read_text()
    expected = "runs per node: alpha (ray node 0123456789ab) 2, beta (ray node fedcba987654) 2"
    if ray_address is None:
        assert "runs per node" not in out and "runs per node" not in index
        return
    assert [line for line in out.splitlines() if "runs per node" in line] == [f"[suite] {expected}"]
    assert f'<p class="nodes">{expected}</p>' in index
