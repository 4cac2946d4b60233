"""How close our ``dqn`` gets to its matmul floor, one gradient step per env step.

In one process (one torch thread, as every deep run), CartPole-v1 shapes (obs 4, actions 2),
batch 64, net_arch [256, 256], float32 in the learner's own layout (``QNetwork.views``):

1. **Floor**: the bare matrix products one gradient step must do, into preallocated outputs:
   the online and the target forward passes (3 ``addmm`` each), and the backward pass's
   weight gradients of the three layers and input gradients of the two upper ones (the
   first layer's input gradient is never needed). CPU ms per gradient step, median of
   repeats.
2. **Ours**: ``rlcompare.run`` of ``dqn`` with train_freq 1, gradient_steps 1, batch 64,
   [256, 256], learning_starts 100, one evaluation episode at the end. CPU ms per env step
   (``time.process_time`` around the run), median of repeats interleaved with the floor's,
   and its ratio to the floor (goal: <= 1.3).
3. **Where the time between goes**: one more run with CPU timers around each phase
   (exclusive times: a phase's own time, its timed children subtracted), in us per env step;
   the timers themselves add a few us per call (in "rest" and the phases).
4. **Stacked** (issue 29): ``rlcompare.run_batch`` of 10 seeds of the same run, which
   ``dqn`` trains as one stacked model (``rlcompare.algos.deep.stacked``). CPU ms per seed
   per env step, against the stacked floor measured here too: one gradient step's batched
   matrix products over the 10 seeds (3 ``baddbmm`` online, 3 target, 5 ``bmm`` backward)
   plus the fused Adam step over the stacked parameters, per seed. Printed: their ratio
   (goal: <= 1.3), the per-seed saving against the single-seed path (single / stacked), and
   where a stacked env step's time goes.
5. **SB3** (a figure, not a goal: the ratio depends on the CPU): Stable-Baselines3's DQN
   (``sb3_dqn``) at the same settings, CPU ms per env step and ours / theirs.

    python benchmarks/dqn_floor.py                # 8000 steps, 3 repeats (~10 min here)
    python benchmarks/dqn_floor.py --steps 2000 --repeats 1 --no-sb3   # quick
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

import rlcompare
from rlcompare.algos.deep import dqn, learner, network, replay, stacked, stacked_trainer
from rlcompare.algos.deep.stacked_network import StackedState
from rlcompare.runner import context, protocol
from rlcompare.versions import cpu_model

BATCH, OBS, ACTIONS, ARCH = 64, 4, 2, (256, 256)
SEEDS = 10  # of the stacked section
HPARAMS = {
    "learning_rate": 2.3e-3,
    "batch_size": BATCH,
    "buffer_size": 100_000,
    "learning_starts": 100,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 1,
    "gradient_steps": 1,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "net_arch": list(ARCH),
}


def floor_ms(iterations: int = 400) -> float:
    """CPU ms of the bare matrix products of one gradient step (see the module docstring)."""
    net = network.QNetwork(OBS, ACTIONS, ARCH)
    generator = torch.Generator().manual_seed(0)
    online = net.views(net.initial_parameters(generator))
    target = net.views(net.initial_parameters(generator))
    grads = net.views(torch.zeros(net.size))
    obs, next_obs = torch.randn(BATCH, OBS), torch.randn(BATCH, OBS)
    hidden = [torch.empty(BATCH, width) for width in ARCH]
    hidden_t = [torch.empty(BATCH, width) for width in ARCH]
    q, q_t = torch.empty(BATCH, ACTIONS), torch.empty(BATCH, ACTIONS)
    grad_q = torch.randn(BATCH, ACTIONS)
    grad_h = [torch.empty(BATCH, width) for width in ARCH]

    def step() -> None:
        for views, x, hs, out in ((online, obs, hidden, q), (target, next_obs, hidden_t, q_t)):
            torch.addmm(views[0].bias, x, views[0].weight_t, out=hs[0])
            torch.addmm(views[1].bias, hs[0], views[1].weight_t, out=hs[1])
            torch.addmm(views[2].bias, hs[1], views[2].weight_t, out=out)
        torch.mm(grad_q.t(), hidden[1], out=grads[2].weight)
        torch.mm(grad_q, online[2].weight, out=grad_h[1])
        torch.mm(grad_h[1].t(), hidden[0], out=grads[1].weight)
        torch.mm(grad_h[1], online[1].weight, out=grad_h[0])
        torch.mm(obs.t(), grad_h[0], out=grads[0].weight.t())

    for _ in range(50):
        step()
    began = time.process_time()
    for _ in range(iterations):
        step()
    return (time.process_time() - began) / iterations * 1e3


def stacked_floor_ms(seeds: int = SEEDS, iterations: int = 60) -> float:
    """CPU ms per seed of one stacked gradient step's bare batched matrix products and its
    fused Adam step over the (seeds, P) parameters (see the module docstring)."""
    net = network.QNetwork(OBS, ACTIONS, ARCH)
    state = StackedState(seeds, net.size)
    generator = torch.Generator().manual_seed(0)
    for s in range(seeds):
        state.params[s] = net.initial_parameters(generator)
        state.target[s] = net.initial_parameters(generator)
    online, target = net.views(state.params), net.views(state.target)
    grads = net.views(state.grad)
    obs, next_obs = torch.randn(seeds, BATCH, OBS), torch.randn(seeds, BATCH, OBS)
    hidden = [torch.empty(seeds, BATCH, width) for width in ARCH]
    hidden_t = [torch.empty(seeds, BATCH, width) for width in ARCH]
    q, q_t = torch.empty(seeds, BATCH, ACTIONS), torch.empty(seeds, BATCH, ACTIONS)
    grad_q = torch.randn(seeds, BATCH, ACTIONS) * 1e-3
    grad_h = [torch.empty(seeds, BATCH, width) for width in ARCH]
    rows = range(seeds)
    adam_state = [
        [tensor[s] for s in rows]
        for tensor in (state.params, state.grad, state.exp_avg, state.exp_avg_sq)
    ]
    steps = [state.steps[s] for s in rows]

    def step() -> None:
        for views, x, hs, out in ((online, obs, hidden, q), (target, next_obs, hidden_t, q_t)):
            torch.baddbmm(views[0].bias.unsqueeze(1), x, views[0].weight_t, out=hs[0])
            torch.baddbmm(views[1].bias.unsqueeze(1), hs[0], views[1].weight_t, out=hs[1])
            torch.baddbmm(views[2].bias.unsqueeze(1), hs[1], views[2].weight_t, out=out)
        torch.bmm(grad_q.transpose(1, 2), hidden[1], out=grads[2].weight)
        torch.bmm(grad_q, online[2].weight, out=grad_h[1])
        torch.bmm(grad_h[1].transpose(1, 2), hidden[0], out=grads[1].weight)
        torch.bmm(grad_h[1], online[1].weight, out=grad_h[0])
        torch.bmm(obs.transpose(1, 2), grad_h[0], out=grads[0].weight_t)
        state.steps.add_(1.0)
        torch._fused_adam_(  # type: ignore[attr-defined]
            *adam_state,
            [],
            steps,
            lr=1e-4,
            beta1=0.9,
            beta2=0.999,
            weight_decay=0.0,
            eps=1e-8,
            amsgrad=False,
            maximize=False,
        )

    for _ in range(10):
        step()
    began = time.process_time()
    for _ in range(iterations):
        step()
    return (time.process_time() - began) / iterations / seeds * 1e3


def stacked_run_ms(steps: int, first_seed: int = 0, seeds: int = SEEDS) -> float:
    """CPU ms per seed per env step of ``run_batch`` of ``seeds`` seeds (one stacked model)."""
    specs = [spec("dqn", steps, seed) for seed in range(first_seed, first_seed + seeds)]
    began = time.process_time()
    results = rlcompare.run_batch(specs)
    spent = time.process_time() - began
    if any(result.status != "ok" for result in results):
        raise RuntimeError("a stacked dqn run did not end ok")
    return spent / steps / seeds * 1e3


def spec(algo: str, steps: int, seed: int = 0) -> rlcompare.RunSpec:
    """The benchmarked run: eval only at step 0 and the end, one episode each."""
    return rlcompare.RunSpec(
        algo,
        "CartPole-v1",
        seed,
        steps=steps,
        hparams=HPARAMS,
        eval_every=steps,
        eval_episodes=1,
        experiment="bench",
    )


def run_ms(algo: str, steps: int, seed: int = 0) -> float:
    """CPU ms per env step of one whole run (evaluation included: it is two episodes)."""
    began = time.process_time()
    result = rlcompare.run(spec(algo, steps, seed))
    spent = time.process_time() - began
    if result.status != "ok":
        raise RuntimeError(f"{algo} run ended {result.status}")
    return spent / steps * 1e3


class PhaseTimers:
    """CPU timers patched around methods; exclusive time per phase name (a phase's own
    time, its timed children's subtracted)."""

    def __init__(self) -> None:
        self.exclusive: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[float] = []  # children's time of each open phase
        self._undo: list[tuple[Any, str, Any]] = []
        self._opaque = 0

    def wrap(self, name: str, fn: Callable, opaque: bool = False) -> Callable:
        """``fn`` timed as ``name``; inside an ``opaque`` phase no other timer records."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._opaque:
                return fn(*args, **kwargs)
            self._stack.append(0.0)
            self._opaque += opaque
            began = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.process_time() - began
                self._opaque -= opaque
                children = self._stack.pop()
                self.exclusive[name] += spent - children
                self.calls[name] += 1
                if self._stack:
                    self._stack[-1] += spent

        return timed

    def patch(self, owner: Any, attribute: str, name: str, opaque: bool = False) -> None:
        """Times ``owner.attribute`` (a class's method) as phase ``name``, if it exists."""
        original = owner.__dict__.get(attribute)
        if original is None:
            return
        self._undo.append((owner, attribute, original))
        setattr(owner, attribute, self.wrap(name, original, opaque))

    def undo(self) -> None:
        for owner, attribute, original in reversed(self._undo):
            setattr(owner, attribute, original)
        self._undo.clear()


def breakdown(steps: int, seeds: int = 1) -> tuple[dict[str, float], float]:
    """us per env step (per seed) of each phase of one instrumented ``dqn`` run (``seeds`` >
    1: a stacked batch), and the total."""
    timers = PhaseTimers()
    make_env = context.RunContext.make_env

    def timed_env(self: context.RunContext) -> Any:
        env = make_env(self)
        env.step = timers.wrap("env step", env.step)
        env.reset = timers.wrap("env reset", env.reset)
        return env

    context.RunContext.make_env = timed_env  # type: ignore[method-assign]
    # Each class's timed methods and their phase names.
    phases = {
        dqn.DQNAgent: {
            "act": "acting (epsilon, numpy forward)",
            "update": "agent update (schedules, target copy)",
        },
        replay.ReplayBuffer: {
            "add": "replay add",
            "sample": "replay sampling",
            "sample_phase": "replay sampling",
            "phase_indices": "replay sampling",
            "gather_into": "replay sampling",
        },
        learner.DQNLearner: {
            "train": "learner glue (tensors, stats, checks)",
            "_fixed_targets": "target computation (glue)",
            "_bootstrap": "target computation (glue)",
            "_step": "loss + gradient glue",
            "_clip_gradient": "gradient clip",
            "_record": "statistics",
        },
        network.QNetwork: {
            "q_values": "target forward (3 addmm, max)",
            "forward_cached": "online forward (3 addmm, relu)",
            "backward": "backward pass (5 mm, bias sums, relu)",
        },
        learner.FlatAdam: {"step": "Adam"},
        protocol.Protocol: {"after": "protocol (logging, schedule)"},
        context.RunContext: {"evaluate": "evaluation"},
    }
    if seeds > 1:
        del phases[learner.DQNLearner]  # the stacked trainer runs its steps
        phases[stacked.StackedTrainer] = {
            "train": "learner glue (stacked arrays, routing)",
            "_fixed_targets": "target computation (glue)",
            "_next_values": "target forward (3 baddbmm, max)",
            "_step": "loss + gradient glue, per-seed clip",
            "_adam": "Adam (one fused call, S rows)",
        }
        phases[stacked] = {
            "_record": "statistics",
            "_stack": "learner glue (stacked arrays, routing)",
            "stacked_forward": "online forward (3 baddbmm, relu)",
            "stacked_backward": "backward pass (5 bmm, bias sums, relu)",
        }
        phases[stacked_trainer] = {"_train_pending": "learner glue (stacked arrays, routing)"}
    # q_values runs forward_cached: the target forward's time stays its own.
    opaque = {(network.QNetwork, "q_values"), (stacked.StackedTrainer, "_next_values")}
    for owner, methods in phases.items():
        for attribute, name in methods.items():
            timers.patch(owner, attribute, name, (owner, attribute) in opaque)
    try:
        began = time.process_time()
        if seeds > 1:
            rlcompare.run_batch([spec("dqn", steps, seed) for seed in range(seeds)])
        else:
            rlcompare.run(spec("dqn", steps))
        total = time.process_time() - began
    finally:
        timers.undo()
        context.RunContext.make_env = make_env  # type: ignore[method-assign]
    scale = 1e6 / steps / seeds
    per_step = {name: spent * scale for name, spent in timers.exclusive.items()}
    per_step["rest (loop, run setup, timers)"] = total * scale - sum(per_step.values())
    return per_step, total * scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8000, help="env steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median)")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds of the stacked batch")
    parser.add_argument("--no-sb3", action="store_true", help="skip the SB3 figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run_ms("dqn", 300)  # imports and first-call costs out of the timings
    stacked_run_ms(300, seeds=args.seeds)
    floors, ours, theirs = [], [], []
    stacked_floors, stacked_ours = [], []
    for repeat in range(args.repeats):
        floors.append(floor_ms())
        ours.append(run_ms("dqn", args.steps, seed=repeat))
        floors.append(floor_ms())
        stacked_floors.append(stacked_floor_ms(args.seeds))
        stacked_ours.append(stacked_run_ms(args.steps, repeat * args.seeds, args.seeds))
        stacked_floors.append(stacked_floor_ms(args.seeds))
        print(
            f"repeat {repeat}: floor {floors[-1]:.3f} ms/gradient step, dqn "
            f"{ours[-1]:.3f} ms/env step; stacked floor {stacked_floors[-1]:.3f} ms/seed/"
            f"gradient step, stacked dqn {stacked_ours[-1]:.3f} ms/seed/env step",
            flush=True,
        )
    floor, mine = statistics.median(floors), statistics.median(ours)
    print(f"\nCPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} thread")
    print(f"batch {BATCH}, net_arch {list(ARCH)}, CartPole-v1, {args.steps} steps, train_freq 1")
    print(f"matmul floor: {floor:.3f} ms per gradient step (median of {len(floors)})")
    print(f"dqn:          {mine:.3f} ms per env step (median of {len(ours)})")
    print(f"dqn / floor:  {mine / floor:.2f}x (single seed; the matmuls alone, no Adam)")

    stacked_floor, stacked_mine = statistics.median(stacked_floors), statistics.median(stacked_ours)
    print(f"\nstacked, {args.seeds} seeds as one model (run_batch):")
    print(
        f"stacked floor:    {stacked_floor:.3f} ms per seed per gradient step (bmm products + "
        f"fused Adam, median of {len(stacked_floors)})"
    )
    print(
        f"stacked dqn:      {stacked_mine:.3f} ms per seed per env step "
        f"(median of {len(stacked_ours)})"
    )
    print(f"stacked / floor:  {stacked_mine / stacked_floor:.2f}x (goal <= 1.3)")
    print(
        f"single / stacked: {mine / stacked_mine:.2f}x less CPU per seed than the single-seed path"
    )

    for seeds in (1, args.seeds):
        phases, total = breakdown(args.steps, seeds)
        what = "an env step's" if seeds == 1 else f"a stacked env step's (per seed, {seeds} seeds)"
        print(f"\nwhere {what} CPU time goes (us, one timed run, {total:.0f} in all):")
        for name, value in sorted(phases.items(), key=lambda item: -item[1]):
            print(f"  {name:<42s}{value:8.1f}  {value / total:6.1%}")

    if not args.no_sb3:
        # Import costs out of the timing (torch.optim imports torch._dynamo on first use).
        importlib.import_module("stable_baselines3")
        importlib.import_module("torch._dynamo")

        run_ms("sb3_dqn", 300)
        sb3_steps = max(1000, args.steps // 4)
        for repeat in range(args.repeats):
            theirs.append(run_ms("sb3_dqn", sb3_steps, seed=repeat))
        sb3 = statistics.median(theirs)
        print(
            f"\nsb3_dqn: {sb3:.3f} ms per env step ({sb3_steps} steps); dqn is {sb3 / mine:.2f}x "
            f"faster, stacked dqn {sb3 / stacked_mine:.2f}x per seed (a figure for this CPU, "
            "not a goal)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
