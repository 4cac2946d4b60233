"""The one evaluation protocol, in the two forms a trainer can take.

The rules, for every algorithm:

1. **Step 0.** The greedy policy is evaluated before any training.
2. **The schedule.** Every ``eval_every`` env steps; without ``eval_every``, every
   ``budget // DEFAULT_EVALS`` env steps for a steps budget, or every ``episodes //
   DEFAULT_EVALS`` finished training episodes for an episodes budget (at least 1).
   Trainers whose step column counts something else (gradient steps offline, bc's epochs as
   episodes) apply the same rule to their own counts.
3. **What "due" means.** Progress is reported as (steps done, episodes done). An evaluation
   is due when, since the previous report, either count reached or passed a multiple of its
   interval. A loop that steps one env one step at a time reaches every multiple exactly; a
   vector env of n envs (SB3) advances n steps at once and may finish several episodes at
   once, and then passes a multiple without landing on it. Either way one evaluation runs,
   however many multiples were passed, recorded at the step actually reached (the first one
   at or past the multiple). Both forms below use this one rule (``EvalSchedule.due``).
4. **The end.** One evaluation once training stops, at the steps actually taken: the budget,
   by the budget rule below, for every algorithm (SB3 models included).
5. **Once per step.** A step that was just evaluated is not evaluated again (the end that
   falls on a schedule step records one evaluation).
6. **Divergence.** ``Diverged`` raised anywhere in training or evaluation stops the run; it
   is recorded with ``mark_diverged`` at the step reached, its rows so far kept, and no end
   evaluation runs.

The budget, the same rule for every algorithm:

* ``steps=N``: exactly N env steps (an offline learner counts its own updates: ``dqn`` with
  a dataset, N gradient steps). A learner that trains in phases (every ``train_freq`` env
  steps, on rollouts of ``n_steps``) trains on every phase complete by step N, and not on a
  phase the budget cuts: those steps are taken and logged, the update they would feed is not
  made. SB3 models follow it too: their own ``learn(N)`` would finish the rollout in
  progress, past N, so ``sb3_common`` stops them at N. Hence ``dqn`` and ``sb3_dqn`` with the
  same settings take the same env steps and the same gradient steps. With n envs in lockstep
  the run ends at the vector step that reaches N (the first multiple of n at or past N).
* ``episodes=N``: exactly N finished training episodes (with n envs, the first ones in env
  order on the vector step that reaches N); a phase in progress then follows the same rule.

Forms:

* ``rlcompare.runner.loop.drive(ctx, agent)``: the step-agent loop, for anything with
  ``act``/``update``; built on ``Protocol`` (it lives in ``loop`` because it needs the
  ``StepAgent`` shape of ``schema``, which names ``RunContext``, which holds the schedule).
* ``Protocol``: for trainers that own their loop (SB3 models through a callback, offline
  learners, the compiled tabular engine): ``start()``, then ``after(step, episodes)`` (or
  ``due`` + ``evaluate`` when the evaluation must wait for a training phase), ``finish(step)``,
  all inside ``with protocol.guard(...)``, the one place that turns ``Diverged`` into
  ``mark_diverged``. Public as ``rlcompare.Protocol``.

What is checked: after a run that did not diverge, ``check_evaluated`` fails it
(``ProtocolError``, naming the algo and the rows missing) unless it recorded ``eval_return``
at step 0 (rule 1) and at its last recorded step (rule 4); an action outside the env's action
space is a ``ProtocolError`` naming the algo, the method, the step, the action and the space.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from typing import Protocol as TypingProtocol

from rlcompare.errors import Diverged
from rlcompare.spec.runspec import RunSpec

# Evaluations spread over a budget when eval_every is not given.
DEFAULT_EVALS = 20

Policy = Callable[[Any], Any]


class ProtocolError(RuntimeError):
    """An agent or trainer broke the evaluation protocol or its env's contract: an action
    outside the action space, or a run without the evaluations every run records. The run
    fails with this message (a sweep records it as ``failed``)."""


def refuse_outside_action(who: str, space: Any, action: Any, step: int, error: Exception) -> None:
    """Raises ProtocolError naming ``who`` (``algo 'x': act``), the action, the step and the
    space when the env refused an action that lies outside its space (a bare ``KeyError: 7``
    names none of them); returns when the action was inside, so the env's own error stands."""
    try:
        inside = bool(space.contains(action))
    except Exception:
        inside = False
    if not inside:
        raise ProtocolError(
            f"{who} returned action {action!r} at step {step}, outside the env's action space "
            f"{space} ({type(error).__name__}: {error}); valid: an action in {space}"
        ) from error


def check_evaluated(algo: str, eval_steps: Sequence[int], last_step: int) -> None:
    """Raises ProtocolError unless a finished run evaluated at step 0 (rule 1) and at its last
    recorded step (rule 4): without them its ``eval_return`` is missing from summaries and
    curves, or compares a different point of training than the other runs'.

    Args:
        algo: The run's algorithm, named in the message.
        eval_steps: Steps of the run's ``eval_return`` rows.
        last_step: The largest step of any of the run's rows.
    """
    fix = (
        "valid: a trainer that evaluates through rlcompare.Protocol(ctx, policy): start() "
        "before training, after(step, episodes) as it trains, finish(step) at the end"
    )
    if not eval_steps:
        raise ProtocolError(
            f"algo {algo!r}: the run recorded no eval_return rows (it never evaluated its "
            f"policy), so summaries, plots and `rlcompare show` would leave it out; {fix}"
        )
    if min(eval_steps) != 0:
        raise ProtocolError(
            f"algo {algo!r}: no evaluation at step 0 (the first eval_return is at step "
            f"{min(eval_steps)}): every run starts from its untrained policy's value; {fix}"
        )
    if max(eval_steps) < last_step:
        raise ProtocolError(
            f"algo {algo!r}: no evaluation at the end (step {last_step}): its last "
            f"eval_return is at step {max(eval_steps)}, before the last step it recorded; {fix}"
        )


class EvalSchedule:
    """When to evaluate between step 0 and the end (rule 2 of the module docstring).

    Attributes:
        every_steps: Evaluate every this many env steps (None: not by steps).
        every_episodes: Evaluate every this many finished episodes (None: not by episodes).
    """

    def __init__(self, spec: RunSpec) -> None:
        kind, amount = spec.budget
        self.every_steps: int | None = spec.eval_every
        self.every_episodes: int | None = None
        if self.every_steps is None:
            if kind == "steps":
                self.every_steps = max(1, amount // DEFAULT_EVALS)
            else:
                self.every_episodes = max(1, amount // DEFAULT_EVALS)

    def due(self, steps: tuple[int, int], episodes: tuple[int, int] = (0, 0)) -> bool:
        """Whether an evaluation is due on moving from ``(before, after)`` steps and episodes:
        a multiple of an interval reached or passed (rule 3)."""
        return _passes(steps, self.every_steps) or _passes(episodes, self.every_episodes)


def _passes(moved: tuple[int, int], every: int | None) -> bool:
    before, after = moved
    return every is not None and after // every > before // every


class Run(TypingProtocol):
    """What the protocol needs of a run (``RunContext`` provides it)."""

    spec: RunSpec
    schedule: EvalSchedule

    @property
    def last_eval_step(self) -> int | None: ...

    def evaluate(
        self, step: int, policy: Policy, extra: Mapping[str, float] | None = None
    ) -> float: ...

    def mark_diverged(self, step: int, reason: str) -> None: ...


class Protocol:
    """The evaluation protocol for a trainer that owns its loop (``register_algorithm(name,
    trainer=...)``): what such a trainer calls so that its runs compare with every other.

    The rules (the module docstring gives them in full):

    1. ``start()`` before any training: the evaluation at step 0.
    2. ``after(step, episodes)`` as training goes (env steps and finished episodes so far):
       evaluates when the schedule is due, every ``eval_every`` env steps of the spec (by
       default ``budget // 20`` steps or episodes).
    3. ``finish(step)`` once training stops: the evaluation at the end.
    4. All inside ``with protocol.guard(lambda: step):``, which records a ``Diverged``
       raised there as the run's divergence (its rows kept, no end evaluation).

    Episodes are recorded with ``ctx.log_episode(step, episode, return, length)``. A run
    that did not diverge and lacks the evaluation at step 0 or at the end fails with
    ``ProtocolError``::

        def train(ctx):
            model, env = ..., ctx.make_env()
            protocol = rlcompare.Protocol(ctx, policy=model.greedy)
            step = 0
            with protocol.guard(lambda: step):
                protocol.start()
                while step < ctx.spec.steps:
                    ...  # one env step of training
                    step += 1
                    protocol.after(step, episodes)
                protocol.finish(step)
            return model

    Args:
        ctx: The run.
        policy: Greedy ``obs -> action`` of the model being trained.
        metrics: Extra metrics recorded with each evaluation (called once per evaluation; an
            agent restarts its per-evaluation state there).
        check: Called with the step before each evaluation; raises ``Diverged`` when the
            model is no longer finite.
    """

    def __init__(
        self,
        ctx: Run,
        policy: Policy,
        metrics: Callable[[], Mapping[str, float]] | None = None,
        check: Callable[[int], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.policy = policy
        self.metrics = metrics
        self.check = check
        self._steps = 0
        self._episodes = 0

    def start(self) -> None:
        """The evaluation at step 0."""
        self.evaluate(0)

    def due(self, step: int, episodes: int = 0) -> bool:
        """Reports progress (``step`` env steps, ``episodes`` finished episodes) and says
        whether an evaluation is due since the previous report (rule 3); evaluates nothing."""
        moved = (self._steps, step), (self._episodes, episodes)
        self._steps, self._episodes = step, episodes
        return self.ctx.schedule.due(*moved)

    def after(self, step: int, episodes: int = 0) -> bool:
        """``due``, and the evaluation at ``step`` when it is. Returns whether it was due."""
        if not self.due(step, episodes):
            return False
        self.evaluate(step)
        return True

    def evaluate(self, step: int) -> None:
        """Evaluates the greedy policy now, recorded at ``step``, unless ``step`` was just
        evaluated (rule 5)."""
        if self.ctx.last_eval_step == step:
            return
        self._run_evaluation(step)

    def finish(self, step: int) -> None:
        """The evaluation at the end (rule 4).

        The ``metrics`` hook runs even when ``step`` was just evaluated, so the returned agent
        always ends with a fresh evaluation state (as every trainer did before this module).
        """
        if self.ctx.last_eval_step == step:
            if self.metrics is not None:
                self.metrics()
            return
        self._run_evaluation(step)

    def _run_evaluation(self, step: int) -> None:
        if self.check is not None:
            self.check(step)
        extra = self.metrics() if self.metrics is not None else None
        self.ctx.evaluate(step, self.policy, extra)

    @contextmanager
    def guard(self, step: Callable[[], int]) -> Iterator[None]:
        """Records a ``Diverged`` raised inside the block as the run's divergence at
        ``step()`` (rule 6) and ends the block; the trainer continues after it."""
        try:
            yield
        except Diverged as reason:
            self.ctx.mark_diverged(step(), str(reason))
