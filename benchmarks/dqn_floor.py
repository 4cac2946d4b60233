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
4. **SB3** (a figure, not a goal: the ratio depends on the CPU): Stable-Baselines3's DQN
   (``sb3_dqn``) at the same settings, CPU ms per env step and ours / theirs.

    python benchmarks/dqn_floor.py                # 8000 steps, 3 repeats (~2-3 min here)
    python benchmarks/dqn_floor.py --steps 3000 --repeats 1 --no-sb3
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
from rlcompare.algos.deep import dqn, learner, network, replay
from rlcompare.runner import context, protocol
from rlcompare.versions import cpu_model

BATCH, OBS, ACTIONS, ARCH = 64, 4, 2, (256, 256)
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


def breakdown(steps: int) -> tuple[dict[str, float], float]:
    """us per env step of each phase of one instrumented ``dqn`` run, and the run's total."""
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
    # q_values runs forward_cached: the target forward's time stays its own.
    opaque = {(network.QNetwork, "q_values")}
    for owner, methods in phases.items():
        for attribute, name in methods.items():
            timers.patch(owner, attribute, name, (owner, attribute) in opaque)
    try:
        began = time.process_time()
        rlcompare.run(spec("dqn", steps))
        total = time.process_time() - began
    finally:
        timers.undo()
        context.RunContext.make_env = make_env  # type: ignore[method-assign]
    per_step = {name: spent / steps * 1e6 for name, spent in timers.exclusive.items()}
    per_step["rest (loop, run setup, timers)"] = total / steps * 1e6 - sum(per_step.values())
    return per_step, total / steps * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8000, help="env steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median)")
    parser.add_argument("--no-sb3", action="store_true", help="skip the SB3 figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run_ms("dqn", 300)  # imports and first-call costs out of the timings
    floors, ours, theirs = [], [], []
    for repeat in range(args.repeats):
        floors.append(floor_ms())
        ours.append(run_ms("dqn", args.steps, seed=repeat))
        floors.append(floor_ms())
        print(
            f"repeat {repeat}: floor {floors[-1]:.3f} ms/gradient step, dqn "
            f"{ours[-1]:.3f} ms/env step",
            flush=True,
        )
    floor, mine = statistics.median(floors), statistics.median(ours)
    print(f"\nCPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} thread")
    print(f"batch {BATCH}, net_arch {list(ARCH)}, CartPole-v1, {args.steps} steps, train_freq 1")
    print(f"matmul floor: {floor:.3f} ms per gradient step (median of {len(floors)})")
    print(f"dqn:          {mine:.3f} ms per env step (median of {len(ours)})")
    print(f"dqn / floor:  {mine / floor:.2f}x (goal <= 1.3)")

    phases, total = breakdown(args.steps)
    print(f"\nwhere an env step's CPU time goes (us, one timed run, {total:.0f} in all):")
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
            f"faster (a figure for this CPU, not a goal)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
