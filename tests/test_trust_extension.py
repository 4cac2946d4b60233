"""Trust, round 3 (issue 27, items 9 and 10): bad extension input gets an error naming what is
wrong before training where it can; the plugin paths the README documents work as written;
``--set`` can target one algo of several; a trainer that breaks the protocol fails."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

import rlcompare
from rlcompare import Param, SpecError
from rlcompare.spec import registry

RLCOMPARE = str(Path(sys.executable).with_name("rlcompare"))


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test vanish after it (built-ins loaded first, into the real
    registry: loaded into the scratch copy they would vanish with it)."""
    registry.algorithms()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


class Fixed:
    """Always the action ``hparams["action"]`` (greedy: ``hparams["greedy"]``)."""

    def __init__(self, observation_space, action_space, hparams, rng):
        self.hp = hparams

    def act(self, obs, step):
        return self.hp["action"] if step >= self.hp["bad_from"] else 0

    def update(self, *transition):
        pass

    def greedy_action(self, obs):
        return self.hp["greedy"]


FIXED_PARAMS = {
    "action": Param(0, int, "behaviour action"),
    "bad_from": Param(0, int, "first step that takes ``action``"),
    "greedy": Param(0, int, "greedy action"),
}


# ------------------------------------------------------------------ A: Param default range
def test_a_param_default_outside_its_range_is_refused_naming_param_value_and_range(
    scratch_registry,
):
    with pytest.raises(ValueError, match=r"'p' of algorithm 'coin_bad'.*1\.5.*\[0, 1\]"):
        rlcompare.register_algorithm(
            "coin_bad", agent=Fixed, params={"p": Param(1.5, float, "P(action 1)", low=0, high=1)}
        )
    with pytest.raises(ValueError, match=r"'mode'.*'c'.*one of a, b"):
        rlcompare.register_algorithm(
            "choice_bad", agent=Fixed, params={"mode": Param("c", str, choices=("a", "b"))}
        )
    assert "coin_bad" not in registry._REGISTRY


# ------------------------------------------------------------- A: actions outside the space
def test_an_act_outside_the_action_space_names_algo_step_value_and_space(scratch_registry):
    rlcompare.register_algorithm("fixed", agent=Fixed, params=FIXED_PARAMS)
    spec = rlcompare.RunSpec(
        "fixed", "FrozenLake-v1", 0, steps=50, hparams={"action": 7, "bad_from": 3}
    )
    with pytest.raises(rlcompare.ProtocolError) as raised:
        rlcompare.run(spec)
    text = str(raised.value)
    for named in ("'fixed'", "act", "step 3", "7", "Discrete(4)"):
        assert named in text, (named, text)


def test_a_greedy_action_outside_the_action_space_names_algo_step_value_and_space(
    scratch_registry,
):
    rlcompare.register_algorithm("fixed", agent=Fixed, params=FIXED_PARAMS)
    spec = rlcompare.RunSpec("fixed", "FrozenLake-v1", 0, steps=50, hparams={"greedy": -1})
    with pytest.raises(rlcompare.ProtocolError) as raised:
        rlcompare.run(spec)
    text = str(raised.value)
    for named in ("'fixed'", "greedy_action", "step 0", "-1", "Discrete(4)"):
        assert named in text, (named, text)


def test_a_float_action_is_refused_too(scratch_registry):
    rlcompare.register_algorithm("fixed", agent=Fixed, params=FIXED_PARAMS)
    spec = rlcompare.RunSpec("fixed", "CliffWalking-v1", 0, steps=20)
    # An int-valued action of another int type passes; a float does not (as Discrete.contains).
    assert rlcompare.run(spec).status == "ok"

    class Floaty(Fixed):
        def act(self, obs, step):
            return 1.0

    rlcompare.register_algorithm("floaty", agent=Floaty, params=FIXED_PARAMS)
    with pytest.raises(rlcompare.ProtocolError, match=r"'floaty'.*act.*1\.0 at step 0.*Discrete"):
        rlcompare.run(rlcompare.RunSpec("floaty", "CliffWalking-v1", 0, steps=20))


# ------------------------------------------------- A/D: trainers that break the protocol
def _no_eval_trainer(ctx):
    """Logs training episodes, never evaluates."""
    ctx.log_episode(10, 1, 1.0, 10)
    return None


def _late_start_trainer(ctx):
    """Evaluates at the end only (no step 0)."""
    ctx.log_episode(10, 1, 1.0, 10)
    ctx.evaluate(10, lambda obs: 0)
    return None


def _no_end_trainer(ctx):
    """Evaluates at step 0, trains on, never evaluates at the end."""
    ctx.evaluate(0, lambda obs: 0)
    ctx.log_episode(10, 1, 1.0, 10)
    return None


@pytest.mark.parametrize(
    ("trainer", "named"),
    [
        (_no_eval_trainer, "no eval_return rows"),
        (_late_start_trainer, "no evaluation at step 0"),
        (_no_end_trainer, "no evaluation at the end (step 10)"),
    ],
)
def test_a_trainer_that_breaks_the_protocol_fails_saying_which_rows_are_missing(
    scratch_registry, tmp_path, trainer, named
):
    rlcompare.register_algorithm("rude", trainer=trainer)
    spec = rlcompare.RunSpec("rude", "FrozenLake-v1", 0, steps=10)
    with pytest.raises(rlcompare.ProtocolError) as raised:
        rlcompare.run(spec)
    assert "algo 'rude'" in str(raised.value) and named in str(raised.value)
    with pytest.warns(UserWarning, match="1 run"):
        frame = rlcompare.sweep([spec], tmp_path / "s", executor="serial", progress=False)
    assert list(frame.attrs["failed"]) == [spec.run_id]
    assert named in frame.attrs["failed"][spec.run_id]


def test_a_protocol_following_trainer_is_ok(scratch_registry):
    def polite(ctx):
        protocol = rlcompare.Protocol(ctx, lambda obs: 0)
        protocol.start()
        ctx.log_episode(10, 1, 1.0, 10)
        protocol.finish(10)

    rlcompare.register_algorithm("polite", trainer=polite)
    result = rlcompare.run(rlcompare.RunSpec("polite", "FrozenLake-v1", 0, steps=10))
    assert result.status == "ok"
    assert sorted(result.frame.query("metric == 'eval_return'")["step"]) == [0, 10]


# ----------------------------------------------------------------- D: public Protocol, schema
def test_protocol_is_public_and_documents_the_rules():
    assert "Protocol" in rlcompare.__all__ and "ProtocolError" in rlcompare.__all__
    doc = rlcompare.Protocol.__doc__ or ""
    for rule in ("step 0", "eval_every", "finish", "Diverged"):
        assert rule in doc, rule


def test_schema_does_not_import_the_run_context():
    tree = ast.parse((REPO / "rlcompare" / "runner" / "schema.py").read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "rlcompare.runner.context" not in imported


# ------------------------------------------------------------------------ D: envs hints
def test_an_unknown_env_that_a_known_package_registers_suggests_package_colon_id():
    with pytest.raises(SpecError, match=r"ale_py:ALE/Pong-v5"):
        rlcompare.RunSpec("random", "ALE/Pong-v5", 0, steps=10)
    with pytest.raises(SpecError, match=r"minigrid:MiniGrid-Empty-5x5-v0"):
        rlcompare.RunSpec("random", "MiniGrid-Empty-5x5-v0", 0, steps=10)


def test_a_space_error_suggests_a_wrapper():
    with pytest.raises(SpecError, match=r"Discrete observation space.*wrap"):
        rlcompare.RunSpec("q_learning", "CartPole-v1", 0, steps=10)


# ------------------------------------------------------------------------------ B: plugins
PLUGIN = (
    "import rlcompare\n"
    "class Always:\n"
    '    """Action 0 always."""\n'
    "    def __init__(self, obs_space, act_space, hparams, rng): self.a = hparams['a']\n"
    "    def act(self, obs, step): return self.a\n"
    "    def update(self, *t): pass\n"
    "    def greedy_action(self, obs): return self.a\n"
    "rlcompare.register_algorithm('always', agent=Always, params={'a': rlcompare.Param(0, int)})\n"
)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RLCOMPARE_PLUGINS")}
    return subprocess.run(
        [RLCOMPARE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_a_plugin_module_in_the_working_directory_imports_as_with_python_m(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "my_plugin.py").write_text(PLUGIN)
    done = _cli(tmp_path, "--plugin", "pkg.my_plugin", "algos")
    assert done.returncode == 0, done.stderr
    assert "always" in done.stdout and "Action 0 always." in done.stdout


def test_a_plugin_file_path_runs_on_the_process_executor(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "my_plugin.py").write_text(PLUGIN)
    work = tmp_path / "work"
    work.mkdir()
    run = ["run", "--algo", "always,random", "--env", "FrozenLake-v1", "--seeds", "0-1"]
    run += ["--steps", "40", "--executor", "process", "--workers", "2", "--quiet"]
    done = _cli(work, "--plugin", "../plugins/my_plugin.py", *run, "--store", "s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stderr
    assert len(list((work / "s").glob("*.parquet"))) == 4
    # --plugin after the subcommand too (as examples/q_lambda.py's docstring writes it)
    done = _cli(work, "algos", "--plugin", str(tmp_path / "plugins" / "my_plugin.py"))
    assert done.returncode == 0, done.stderr
    assert "always" in done.stdout


def test_a_plugin_path_that_is_not_there_or_shadows_a_module_is_named(tmp_path):
    done = _cli(tmp_path, "--plugin", "./nope.py", "algos")
    assert done.returncode == 2
    assert "'./nope.py'" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "tabnanny.py").write_text(PLUGIN)  # a stdlib name, not imported
    done = _cli(tmp_path, "--plugin", "plugins/tabnanny.py", "algos")
    assert done.returncode == 2, done.stdout
    assert "'tabnanny' already exists" in done.stderr and "rename the file" in done.stderr


# -------------------------------------------------------------------- B: --set algo.name
def test_set_with_an_algo_prefix_applies_to_that_algo_only(tmp_path, capsys):
    from rlcompare.app.cli import main

    store = tmp_path / "s"
    run = ["run", "--algo", "random,q_learning", "--env", "FrozenLake-v1", "--seeds", "0"]
    run += ["--steps", "30", "--executor", "serial", "--quiet", "--store", str(store)]
    assert main([*run, "--set", "q_learning.alpha=0.25", "--set", "gamma=0.9"]) == 2
    assert "'gamma'" in capsys.readouterr().err  # random has no gamma: unprefixed is for all
    assert main([*run, "--set", "q_learning.alpha=0.25", "--set", "q_learning.gamma=0.9"]) == 0
    frame = rlcompare.load_results(store)
    learner = frame[frame["algo"] == "q_learning"]
    assert set(learner["hp.alpha"]) == {0.25} and set(learner["hp.gamma"]) == {0.9}
    assert main([*run, "--set", "sarsa.alpha=0.25"]) == 2
    err = capsys.readouterr().err
    assert "'sarsa'" in err and "random" in err and "q_learning" in err
    assert main([*run, "--set", "alpha=0.25"]) == 2
    assert "q_learning.alpha=0.25" in capsys.readouterr().err  # the fix, spelled out


def test_a_trainers_greedy_policy_outside_the_action_space_is_named(scratch_registry):
    def off_by_three(ctx):
        protocol = rlcompare.Protocol(ctx, lambda obs: 7)
        protocol.start()
        protocol.finish(0)

    rlcompare.register_algorithm("off_by_three", trainer=off_by_three)
    spec = rlcompare.RunSpec("off_by_three", "FrozenLake-v1", 0, steps=10)
    with pytest.raises(rlcompare.ProtocolError) as raised:
        rlcompare.run(spec)
    text = str(raised.value)
    for named in ("'off_by_three'", "action 7", "step 0", "Discrete(4)"):
        assert named in text, (named, text)
