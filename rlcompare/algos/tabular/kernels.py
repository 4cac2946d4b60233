"""Compiled (numba) versions of the tabular rules, and the engine's simulation loops.

The engine's only module that imports numba (the other compiled loop is
``rlcompare.envs.planning``'s finite-horizon DP, self-contained). It compiles the plain
functions of ``rlcompare.algos.exploration``, ``rlcompare.envs.model`` and
``rlcompare.algos.tabular``'s ``rules``, ``learned_model`` and ``update`` in place
(``register_jitable``) and caches the machine code on disk (``cache=True``). numba checks
only a cached function's own file for changes, not the files of the functions it calls, so
this module keeps a digest of every source it compiles next to each cache entry and clears
entries whose digest is stale.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba.core import event as numba_events
from numba.extending import register_jitable
from numba.np.random.random_methods import buffered_bounded_lemire_uint32

from rlcompare.algos import exploration
from rlcompare.algos.tabular import learned_model, rules, update
from rlcompare.algos.tabular.rules import DIVERGED, NO_ACTION, TabularConfig, TabularState
from rlcompare.envs import model as tabular_envs
from rlcompare.envs.model import Simulation, sample_index, sample_outcome

# Why a segment of the engine stopped.
DONE, EVALUATE, FULL, STOPPED_DIVERGED = 0, 1, 2, 3
# Fields of the engine's int64 loop-state array.
STEP, EPISODE, OBS, LENGTH, PENDING = range(5)

# The engine allocates nothing, so it runs without numba's reference counting (_nrt=False):
# with it, every access to a learner's arrays costs atomic increments that take longer
# than the rest of a step. The functions that take a learner's NamedTuples are inlined into
# their callers for the same reason; the leaves stay ordinary calls (faster compiles).
_COMPILED = (
    exploration.linear_schedule,
    exploration.exponential_schedule,
    exploration.scheduled_value,
    exploration.action_probabilities,
    exploration.sample_action,
    sample_index,
    sample_outcome,
    rules.step_size,
    rules.policy_probabilities,
    rules.choose_action,
    rules.max_valid,
    rules.argmax_valid,
    rules.td_update,
    learned_model.record_seen,
    learned_model.remember,
    learned_model.observe,
    learned_model.expected_backup,
    learned_model.sampled_successor,
    learned_model._seen_pair,
    learned_model.last_seen_step,
    learned_model.counts_plan,
    learned_model._heap_swap,
    learned_model._sift_up,
    learned_model.queue_pair,
    learned_model.pop_pair,
    learned_model._queue_if_above,
    learned_model.sweep,
    learned_model._sampled_backup,
    learned_model._learned_backup,
    learned_model.solve,
    learned_model._sampled_reward,
    learned_model._is_successor,
    learned_model.sample_posterior,
    update.prepare,
    update._psrl_due,
    update._plan_on_model,
    update._learn_on_model,
    update.learn,
)
_INLINED = (
    rules.step_size,
    rules.policy_probabilities,
    rules.choose_action,
    learned_model._seen_pair,
    update.learn,
)
for _function in _COMPILED:
    register_jitable(_nrt=False, inline="always" if _function in _INLINED else "never")(_function)

_DIGEST = hashlib.sha1(
    b"".join(
        Path(module.__file__).read_bytes()
        for module in (
            exploration,
            tabular_envs,
            rules,
            learned_model,
            update,
            sys.modules[__name__],
        )
    )
).hexdigest()


def cache_dir() -> str:
    """Where the engine's machine code is cached: ``NUMBA_CACHE_DIR`` where the user set it,
    else ``$XDG_CACHE_HOME/rlcompare/numba`` (``~/.cache/rlcompare/numba``). Not numba's
    default, ``__pycache__`` inside the package, read-only in a site-packages install."""
    if numba.config.CACHE_DIR:
        return numba.config.CACHE_DIR
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rlcompare", "numba")


class _AnnounceCompile(numba_events.Listener):
    """Says once per process, on stderr, that the engine compiles: numba starts a
    ``numba:compile`` event only for a signature it did not find in its cache, and the
    first run after an install or an edit then compiles for a minute or two in silence."""

    announced = False

    def on_start(self, event: Any) -> None:
        dispatcher = event.data["dispatcher"]
        if _AnnounceCompile.announced or dispatcher.py_func.__module__ != __name__:
            return
        _AnnounceCompile.announced = True
        print(
            "rlcompare: compiling the tabular engine (once per install or edit of its source, "
            f"a minute or two; cached in {cache_dir()})",
            file=sys.stderr,
            flush=True,
        )

    def on_end(self, event: Any) -> None:
        pass


numba_events.register("numba:compile", _AnnounceCompile())


def _jit(function: Callable[..., Any]) -> Any:
    """``numba.njit(cache=True, _nrt=False)`` cached in :func:`cache_dir`, clearing a cache
    compiled from other sources."""
    # numba reads the folder when the dispatcher is made; set only around our own
    # dispatchers, so that the user's other numba code keeps its own cache.
    chosen, numba.config.CACHE_DIR = numba.config.CACHE_DIR, cache_dir()
    try:
        dispatcher = numba.njit(cache=True, _nrt=False)(function)
    finally:
        numba.config.CACHE_DIR = chosen
    cache = getattr(dispatcher, "_cache", None)
    path = getattr(cache, "cache_path", None)
    if path is None:
        return dispatcher
    stamp = Path(path) / f"{function.__module__}.{function.__qualname__}.rlcompare-digest"
    try:
        if not stamp.is_file() or stamp.read_text() != _DIGEST:
            os.makedirs(path, exist_ok=True)
            cache.flush()
            stamp.write_text(_DIGEST)
    except OSError:  # a read-only cache only costs a compile
        pass
    return dispatcher


choose_action = _jit(rules.choose_action)
learn = _jit(update.learn)
prepare = _jit(update.prepare)


def _env_step(sim: Simulation, s: int, a: int, env_rng: Any) -> tuple[int, int, float, bool]:
    """One env transition from (s, a): the outcome index k, the next state, the reward (with
    its Gaussian noise, drawn only where the std is positive) and whether it terminates."""
    k = sample_outcome(sim.cdf, sim.count, s, a, env_rng.random())
    s_next = sim.next_state[s, a, k]
    r = sim.reward[s, a, k]
    if sim.reward_std[s, a] > 0.0:
        r = r + sim.reward_std[s, a] * env_rng.standard_normal()
    return k, s_next, r, sim.terminal[s_next]


# Inlined like the other functions that take a NamedTuple (see _COMPILED).
register_jitable(_nrt=False, inline="always")(_env_step)


def _run_segment(
    st: TabularState,
    cfg: TabularConfig,
    valid: np.ndarray,
    sim: Simulation,
    max_steps: int,
    agent_rng: Any,
    env_rng: Any,
    loop: np.ndarray,
    episode_return: np.ndarray,
    budget_in_steps: bool,
    budget: int,
    every_steps: int,
    every_episodes: int,
    out_steps: np.ndarray,
    out_returns: np.ndarray,
    out_lengths: np.ndarray,
) -> tuple[int, int]:
    """Simulates and learns until an evaluation is due, the budget is spent, the episode
    buffers are full or the values diverge; mirrors ``rlcompare.runner.loop.drive`` step for step.

    ``loop`` (STEP, EPISODE, OBS, LENGTH, PENDING) and ``episode_return`` (1,) carry the
    loop's state between calls. Finished episodes go to ``out_*`` (cumulative step, return,
    length). Returns (why it stopped, number of finished episodes written).
    """
    step, episode, s = loop[STEP], loop[EPISODE], loop[OBS]
    length, pending = loop[LENGTH], loop[PENDING]
    total = episode_return[0]
    n_states = sim.terminal.shape[0]
    written = 0
    code = DONE
    while (step if budget_in_steps else episode) < budget:
        if written == out_steps.shape[0]:
            code = FULL
            break
        if pending >= 0:
            a = pending
        else:
            a = rules.choose_action(st, cfg, valid, s, step, agent_rng)
        k, s_next, r, terminated = _env_step(sim, s, a, env_rng)
        step += 1
        total += r
        length += 1
        truncated = max_steps > 0 and length >= max_steps
        pending = update.learn(
            st, cfg, valid, s, a, r, s_next, terminated, truncated, step, agent_rng
        )
        if pending == DIVERGED:
            code = STOPPED_DIVERGED
            break
        s = s_next
        due = False
        if terminated or truncated:
            episode += 1
            out_steps[written], out_returns[written], out_lengths[written] = step, total, length
            written += 1
            total, length, pending = 0.0, 0, NO_ACTION
            s = sample_index(sim.initial_cdf, n_states, env_rng.random())
            due = every_episodes > 0 and episode % every_episodes == 0
        if due or (every_steps > 0 and step % every_steps == 0):
            code = EVALUATE
            break
    loop[STEP], loop[EPISODE], loop[OBS], loop[LENGTH], loop[PENDING] = (
        step,
        episode,
        s,
        length,
        pending,
    )
    episode_return[0] = total
    return code, written


def _greedy(q: np.ndarray, valid: np.ndarray, s: int, ties: Any) -> int:
    """``TabularAgent.greedy_action``: an argmax of q[s, .] over valid actions (invalid ones
    count as -inf), a tie broken by ``ties.integers(number tied)`` (drawn only on a tie)."""
    best = -np.inf
    n_best = 0
    first = 0
    for a in range(q.shape[1]):
        value = q[s, a] if valid[s, a] else -np.inf
        if value > best:
            best, n_best, first = value, 1, a
        elif value == best:
            n_best += 1
    if n_best == 1:
        return first
    # numpy's Generator.integers(n_best), scalar case (numba's own integers allocates).
    k = np.int64(buffered_bounded_lemire_uint32(ties.bit_generator, np.uint32(n_best - 1)))
    for a in range(q.shape[1]):
        value = q[s, a] if valid[s, a] else -np.inf
        if value == best:
            if k == 0:
                return a
            k -= 1
    return first


register_jitable(_nrt=False, inline="never")(_greedy)


def _run_evaluation(
    q: np.ndarray,
    valid: np.ndarray,
    sim: Simulation,
    max_steps: int,
    env_rng: Any,
    ties: Any,
    success: np.ndarray,
    success_any: bool,
    out_returns: np.ndarray,
    out_lengths: np.ndarray,
    out_success: np.ndarray,
    out_states: np.ndarray,
    out_actions: np.ndarray,
) -> int:
    """Greedy evaluation episodes, one per entry of ``out_returns``; mirrors
    ``RunContext.evaluate`` on the env that ``sim`` simulates, draw for draw.

    ``env_rng`` is the eval env's generator just after its seeded reset was due (the first
    draw is the first episode's start); ``max_steps`` its time limit (> 0). ``success``
    (S x A x K) bool says whether outcome k of (s, a) reaches the goal: with ``success_any``
    an episode succeeds when any of its transitions does (our envs' ``is_success`` "so
    far"), otherwise when its last transition terminates and does (toy_text's tests).
    Writes each episode's return, length and success; with ``out_states`` of nonzero size
    also every step's (state, action) into ``out_states`` / ``out_actions``, episode after
    episode. Returns the number of steps written there.
    """
    n_states = sim.terminal.shape[0]
    record = out_states.shape[0] > 0
    written = 0
    for episode in range(out_returns.shape[0]):
        s = sample_index(sim.initial_cdf, n_states, env_rng.random())
        total = 0.0
        length = 0
        succeeded = False
        while True:
            a = _greedy(q, valid, s, ties)
            if record:
                out_states[written], out_actions[written] = s, a
                written += 1
            k, s_next, r, terminated = _env_step(sim, s, a, env_rng)
            total += r
            length += 1
            if success_any:
                succeeded = succeeded or success[s, a, k]
            else:
                succeeded = terminated and success[s, a, k]
            s = s_next
            if terminated or length >= max_steps:
                break
        out_returns[episode], out_lengths[episode] = total, length
        out_success[episode] = succeeded
    return written


def _run_offline(
    st: TabularState,
    cfg: TabularConfig,
    valid: np.ndarray,
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    next_observations: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    rng: Any,
    first_step: int,
    stop_step: int,
) -> tuple[int, bool]:
    """Updates ``first_step + 1 .. stop_step`` from the dataset. Returns (the last step done,
    whether the values diverged).

    Model-free learners (offline Q-learning, Expected SARSA, Double Q): each step is one TD
    update on a transition drawn uniformly, with replacement, with ``rng`` (experience
    replay of the logs). Learners with a model (certainty equivalence) count each logged
    transition exactly once, in logged order, step k counting transition k (Sutton & Barto
    6.3's batch setting): a model counted from draws with replacement would be a bootstrap
    resample of the logs, different for every seed. The step that counts the last
    transition also plans on the full model (value iteration); later steps change nothing.
    """
    n = observations.shape[0]
    once = cfg.algo >= rules.PRIORITIZED_SWEEPING
    for step in range(first_step + 1, stop_step + 1):
        if once:
            if step > n:
                break
            i = step - 1
        else:
            i = min(int(rng.random() * n), n - 1)
        result = update.learn(
            st,
            cfg,
            valid,
            observations[i],
            actions[i],
            rewards[i],
            next_observations[i],
            terminated[i],
            truncated[i],
            step,
            rng,
        )
        if result == DIVERGED:
            return step, True
        if once and step == n and learned_model.solve(st, cfg, valid, False):
            return step, True
    return stop_step, False


run_segment = _jit(_run_segment)
run_evaluation = _jit(_run_evaluation)
run_offline = _jit(_run_offline)
