"""The result store: atomic writes, no overwrite, leftovers, corrupt files, a full disk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import rlcompare
from rlcompare import CorruptResultError, RunSpec, StoreError
from rlcompare.store import results as store_module
from rlcompare.store.results import read_metadata, run_path, write_run


def _result(seed: int = 0) -> rlcompare.RunResult:
    return rlcompare.run(RunSpec("random", "FrozenLake-v1", seed, steps=200))


def test_write_then_load_round_trips_rows_and_metadata(store: Path) -> None:
    result = _result()
    path = write_run(store, result.frame, result.metadata)
    assert path == run_path(store, result.spec.run_id)
    loaded = rlcompare.load_results(store)
    pd.testing.assert_frame_equal(loaded.drop(columns="status"), result.frame, check_dtype=False)
    meta = read_metadata(path)
    assert meta["status"] == "ok" and meta["spec"]["seed"] == 0
    assert {"versions", "git_commit", "platform", "torch_threads"} <= set(meta)
    assert meta["versions"]["gymnasium"]


def test_a_stored_run_is_never_overwritten(store: Path) -> None:
    result = _result()
    path = write_run(store, result.frame, result.metadata)
    before = (path.stat().st_ino, path.stat().st_mtime_ns)
    assert write_run(store, result.frame.iloc[:3], result.metadata) is None
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == before
    assert len(rlcompare.load_results(store)) == len(result.frame)


def test_a_run_made_by_other_code_is_replaced_whole_and_the_same_code_is_kept(
    store: Path,
) -> None:
    result = _result()
    path = write_run(store, result.frame, result.metadata)
    stamped = read_metadata(path)["fingerprint"]  # write_run adds the spec's fingerprint
    assert stamped["env_settings"]["is_slippery"] is True
    other = {**stamped, "algo": "0" * 16}
    assert (
        write_run(store, result.frame.iloc[:3], {**result.metadata, "fingerprint": stamped}) is None
    )
    assert write_run(store, result.frame.iloc[:3], {**result.metadata, "fingerprint": other})
    assert read_metadata(path)["fingerprint"] == other
    assert len(rlcompare.load_results(store, check_code=False)) == 3, "nothing of the old rows"
    assert not [p for p in store.iterdir() if p.name.endswith(".tmp")]


def test_leftover_temporary_file_is_ignored_and_cleaned(store: Path) -> None:
    store.mkdir()
    dead_pid = 2**22 + 12345  # above pid_max defaults: no such process
    leftover = store / f".FrozenLake-v1__random__9__deadbeef.{dead_pid}.tmp"
    leftover.write_bytes(b"PAR1 half a file")
    assert rlcompare.load_results(store).empty
    result = _result()
    write_run(store, result.frame, result.metadata)
    assert not leftover.exists()


def test_full_disk_raises_a_clear_error_and_keeps_earlier_runs(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _result(0)
    write_run(store, first.frame, first.metadata)
    second = _result(1)

    def no_space(table, where, **kwargs):
        where.write(b"PAR1 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_module.pq, "write_table", no_space)
    with pytest.raises(StoreError) as info:
        write_run(store, second.frame, second.metadata)
    message = str(info.value)
    assert second.spec.run_id in message and "No space left" in message
    monkeypatch.undo()
    assert sorted(os.listdir(store)) == [run_path(store, first.spec.run_id).name]
    loaded = rlcompare.load_results(store)
    assert set(loaded["run_id"]) == {first.spec.run_id}


def test_corrupt_file_is_named_or_skipped_with_a_warning(store: Path) -> None:
    result = _result()
    write_run(store, result.frame, result.metadata)
    bad = store / "broken__random__0__00000000.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(CorruptResultError, match="broken__random__0__00000000.parquet"):
        rlcompare.load_results(store)
    with pytest.warns(UserWarning, match="broken__random"):
        loaded = rlcompare.load_results(store, on_corrupt="skip")
    assert set(loaded["run_id"]) == {result.spec.run_id}


def test_failed_run_can_be_replaced_by_a_retry(store: Path) -> None:
    result = _result()
    failed = {**result.metadata, "status": "failed", "reason": "boom"}
    write_run(store, result.frame.iloc[0:0], failed)
    assert read_metadata(run_path(store, result.spec.run_id))["status"] == "failed"
    write_run(store, result.frame, result.metadata)
    assert read_metadata(run_path(store, result.spec.run_id))["status"] == "ok"


def test_loading_many_runs_equals_concatenating_each_run(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from rlcompare.store.results import load_results, read_metadata, stored_runs

    specs = rlcompare.grid(["q_learning", "random"], "FrozenLake-v1", seeds=2, steps=200)
    specs += rlcompare.grid(
        "q_learning", "FrozenLake-v1", seeds=1, steps=100, hparams={"alpha": 0.5}
    )
    rlcompare.sweep(specs, tmp_path, executor="serial", progress=False)
    each = [
        pq.read_table(path).to_pandas().assign(status=read_metadata(path)["status"])
        for path in stored_runs(tmp_path)
    ]
    expected = pd.concat(each, ignore_index=True, sort=False)
    pd.testing.assert_frame_equal(load_results(tmp_path), expected, check_exact=True)
    assert load_results(tmp_path)["hp.alpha"].isna().any(), "random's rows lack q_learning's hp"


def test_loading_runs_of_different_algorithms_is_pandas_concat_cell_for_cell(
    tmp_path: Path,
) -> None:
    """Runs whose hyperparameter columns differ (text and bool columns one run lacks, a column
    None in all of one algorithm's runs) load as pandas' concat of their frames would give
    them, a missing cell NaN and a stored None None, without pandas' all-NA FutureWarning."""
    import warnings

    import pyarrow.parquet as pq

    from rlcompare.store.results import load_results, stored_runs

    specs = rlcompare.grid(["random", "q_learning"], "FrozenLake-v1", seeds=2, steps=200)
    # epsilon_final: None (stored as a null column) in the runs above, a float here
    specs += rlcompare.grid(
        "q_learning", "FrozenLake-v1", seeds=1, steps=200, hparams={"epsilon_final": 0.01}
    )
    specs += rlcompare.grid(
        "dqn",
        "CartPole-v1",
        seeds=1,
        steps=200,
        hparams={"learning_starts": 50, "batch_size": 16, "net_arch": [8]},
    )
    rlcompare.sweep(specs, tmp_path, executor="serial", progress=False)
    each = [pq.read_table(path).to_pandas() for path in stored_runs(tmp_path)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        expected = pd.concat(each, ignore_index=True, sort=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        loaded = load_results(tmp_path).drop(columns="status")
    pd.testing.assert_frame_equal(loaded, expected, check_exact=True)
    objects = [c for c in expected if expected[c].dtype == object]
    assert {"hp.exploration", "hp.double"} <= set(objects)
    for column in objects:  # NaN and None are told apart, as pandas left them
        assert [type(x) for x in loaded[column]] == [type(x) for x in expected[column]], column


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"hp.note": [None, None, None]},  # a hyperparameter left at None
        {"hp.flag": [True, True, True], "hp.n": pd.array([1, None, 3], dtype="Int64")},
        {"hp.mixed": ["a", "b", "a"]},  # not constant: from_pandas itself
        {"hp.mixed": ["a", None, "a"]},
    ],
)
def test_arrow_table_equals_from_pandas(extra: dict) -> None:
    from rlcompare.store.results import arrow_table

    frame = pd.DataFrame(
        {
            "experiment": ["x"] * 3,
            "run_id": ["r"] * 3,
            "step": np.array([0, 1, 2], dtype=np.int64),
            "episode": pd.array([None, 1, 2], dtype="Int64"),
            "metric": pd.array(["a", "b", "a"], dtype="string"),
            "value": [0.5, np.nan, 1.0],
            **extra,
        }
    )
    expected = pa.Table.from_pandas(frame, preserve_index=False)
    for _ in range(2):  # the second call takes the cached schema
        table = arrow_table(frame)
        assert table.equals(expected, check_metadata=True)
        assert table.schema.equals(expected.schema, check_metadata=True)
    pd.testing.assert_frame_equal(table.to_pandas(), frame)


@pytest.mark.parametrize(
    "spec",
    [
        RunSpec("q_learning", "FrozenLake-v1", 0, steps=2_000),  # bulk episode rows
        RunSpec("dyna_q", "Taxi-v4", 1, steps=1_000, hparams={"model": "expected"}),
        RunSpec("random", "CartPole-v1", 0, steps=300),  # row-wise episode rows
    ],
)
def test_run_table_is_from_pandas_of_its_frame(spec: RunSpec) -> None:
    """The Arrow table a run builds from its arrays (what the store writes) is, schema and
    pandas metadata included, what ``from_pandas`` makes of its frame."""
    result = rlcompare.run(spec)
    expected = pa.Table.from_pandas(result.frame, preserve_index=False)
    assert result.table.equals(expected)
    assert result.table.schema.equals(expected.schema, check_metadata=True)
    steps = result.frame["step"].to_numpy()
    assert (np.diff(steps) >= 0).all(), "rows are sorted by step"


@pytest.mark.parametrize("metrics", [None, ["eval_return", "episode_length"]])
def test_sweep_returns_what_the_store_loads(tmp_path: Path, metrics: list | None) -> None:
    """A sweep returns the runs it just stored from memory and the others from their files:
    the frame equals ``load_results`` of the store, cell for cell."""
    specs = rlcompare.grid(["q_learning", "random"], "FrozenLake-v1", seeds=2, steps=1_000)
    rlcompare.sweep(specs[:2], tmp_path, executor="serial", progress=False)
    swept = rlcompare.sweep(specs, tmp_path, executor="serial", progress=False, metrics=metrics)
    expected = rlcompare.load_results(tmp_path, metrics=metrics)
    pd.testing.assert_frame_equal(swept, expected, check_exact=True)
    assert set(swept["run_id"]) == {spec.run_id for spec in specs}
    assert metrics is None or set(swept["metric"]) == set(metrics)
