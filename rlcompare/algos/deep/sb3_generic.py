"""Any Stable-Baselines3 / sb3-contrib algorithm by class: ``register_sb3`` and its trainer.

``register_sb3("a2c", "stable_baselines3:A2C")`` imports the class and reads its
hyperparameters from ``Class.__init__``: every argument with a literal default (int, float,
bool, str, or None under an annotation naming int / float / str) becomes a
:class:`~rlcompare.spec.params.Param` of that kind, so a spec is validated before training
like every built-in's. Arguments a spec cannot express (buffer classes, noise objects, dicts)
keep SB3's defaults and are listed in the algorithm's summary. The arguments of the class's
``MlpPolicy`` with literal defaults become hyperparameters the same way (QRDQN's
``n_quantiles``, A2C's ``ortho_init``) and reach the policy through ``policy_kwargs``, except
those the class sets itself (``use_sde``, its optimizer) and any a class argument already
names. rlcompare sets ``policy`` ("MlpPolicy"), ``env`` (the spec's, in a DummyVecEnv),
``seed`` (the run's ``sb3`` stream) and ``policy_kwargs`` (from ``net_arch`` and the policy's
arguments), and adds ``device`` (cpu by default, the reproducible choice), ``net_arch`` and,
for on-policy classes, ``n_envs``.

Every SB3 algorithm runs through :class:`SB3Trainer`, the one generic trainer: build the
model, seed its envs, take its greedy policy, run :func:`~rlcompare.algos.deep.sb3_common.
run_protocol` (the one evaluation protocol and budget rule: ``steps=N`` is N env steps).
``ppo``, ``sac`` and ``sb3_dqn`` are instances with hooks for what is special to them (PPO's
policy kwargs and warm start, sb3_dqn's unclipped gradients).

This module imports neither torch nor SB3 until a class is imported or a run starts, so the
built-ins register through it without loading them.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym

from rlcompare.algos.deep.common import schedule_horizon
from rlcompare.algos.deep.hparams import DEVICE_PARAM, DeepAlgorithm, check_deep_spec
from rlcompare.errors import SpecError
from rlcompare.spec.params import Param
from rlcompare.spec.registry import CrossCheck, SpaceCheck

POLICY = "MlpPolicy"
# Arguments rlcompare sets itself (never hyperparameters of a spec).
SET_BY_US = ("policy", "env", "seed", "device", "policy_kwargs")
# Policy arguments that are not hyperparameters: the spaces and schedule the class passes, and
# net_arch, which has its own (int_list) parameter.
POLICY_SET_BY_CLASS = ("observation_space", "action_space", "lr_schedule", "net_arch")
# Arguments that change logging only, or SB3's construction order: left at SB3's defaults.
NOT_HYPERPARAMETERS = ("verbose", "tensorboard_log", "stats_window_size", "_init_setup_model")
# Bounds of the hyperparameters SB3 algorithms share by name (applied where the default
# satisfies them), so the obvious mistakes fail when the spec is built.
_BOUNDS: dict[str, dict[str, Any]] = {
    "learning_rate": {"low": 0, "low_open": True},
    "gamma": {"low": 0, "high": 1},
    "gae_lambda": {"low": 0, "high": 1},
    "tau": {"low": 0, "high": 1, "low_open": True},
    "batch_size": {"low": 1},
    "buffer_size": {"low": 1},
    "n_steps": {"low": 1},
    "n_epochs": {"low": 1},
    "learning_starts": {"low": 0},
    "train_freq": {"low": 1},
    "gradient_steps": {"low": -1},
    "target_update_interval": {"low": 1},
    "exploration_fraction": {"low": 0, "high": 1},
    "exploration_initial_eps": {"low": 0, "high": 1},
    "exploration_final_eps": {"low": 0, "high": 1},
    "vf_coef": {"low": 0},
    "max_grad_norm": {"low": 0, "low_open": True},
    "clip_range": {"low": 0, "low_open": True},
}
_LITERALS = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None)}
# Observation spaces our evaluation and SB3's MlpPolicy both handle.
_OBSERVATIONS = (gym.spaces.Box, gym.spaces.Discrete)


def import_sb3_class(target: str) -> type:
    """The SB3 algorithm class named ``"package.module:Class"``.

    Raises:
        ValueError: a malformed name, a module that does not import, a missing class, or a
            class that is not a Stable-Baselines3 ``BaseAlgorithm`` with an ``MlpPolicy``.
    """
    if not isinstance(target, str) or not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", target):
        raise ValueError(
            f"SB3 class {target!r} is invalid; valid: 'package:Class' such as "
            "'stable_baselines3:A2C' or 'sb3_contrib:QRDQN'"
        )
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"SB3 class {target!r}: module {module_name!r} does not import ({error}); valid: "
            "an installed package such as stable_baselines3 or sb3_contrib "
            "(pip install 'rlcompare[contrib]')"
        ) from error
    cls = getattr(module, class_name, None)
    if cls is None:
        found = sorted(n for n, v in vars(module).items() if _is_sb3_class(v))
        raise ValueError(
            f"SB3 class {target!r}: module {module_name!r} has no {class_name!r}; valid: "
            f"{', '.join(found) or 'none found'}"
        )
    if not _is_sb3_class(cls):
        raise ValueError(
            f"SB3 class {target!r} is not a Stable-Baselines3 algorithm (a subclass of "
            "stable_baselines3.common.base_class.BaseAlgorithm)"
        )
    aliases = getattr(cls, "policy_aliases", {})
    if POLICY not in aliases:
        recurrent = any("Lstm" in alias for alias in aliases)
        why = (
            " (a recurrent class: its action depends on a hidden state carried through the "
            "episode, which rlcompare's greedy evaluation of one observation does not keep)"
            if recurrent
            else ""
        )
        raise ValueError(
            f"SB3 class {target!r} has no {POLICY!r} (its policies: "
            f"{', '.join(aliases) or 'none'}){why}; valid: a class with an MlpPolicy"
        )
    return cls


def _is_sb3_class(value: Any) -> bool:
    from stable_baselines3.common.base_class import BaseAlgorithm  # loads torch: only here

    return (
        inspect.isclass(value) and issubclass(value, BaseAlgorithm) and value is not BaseAlgorithm
    )


def _annotation_types(annotation: Any) -> set[type]:
    """The literal types (int, float, str, bool, None) a top-level annotation admits; the
    arguments of other generics (``dict[str, Any]``, ``tuple[int, str]``) do not count."""
    if annotation is inspect.Parameter.empty:
        return set()
    if isinstance(annotation, str):
        parts = re.split(r"\s*\|\s*", annotation.strip())
        return {_LITERALS[p] for p in parts if p in _LITERALS}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return {t for arg in typing.get_args(annotation) for t in _annotation_types(arg)}
    return {annotation} if annotation in _LITERALS.values() else set()


def _kind(default: Any, admits: set[type]) -> str | None:
    """The Param kind of an argument, or None when a spec cannot express it."""
    if isinstance(default, bool):
        return "bool" if not admits or bool in admits else None
    if isinstance(default, int):
        if not admits or int in admits:
            return "int"
        return "float" if float in admits else None
    if isinstance(default, float):
        return "float" if not admits or float in admits else None
    if isinstance(default, str):
        return "float_or_str" if float in admits else "str"
    if default is None:
        if float in admits and str in admits:
            return "float_or_str"
        for kind, literal in (("float", float), ("int", int), ("str", str), ("bool", bool)):
            if literal in admits:
                return kind
    return None


def _param_docs(cls: type) -> dict[str, str]:
    """``:param name: text`` of the class docstrings (SB3's style), first sentence, one line."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        text = inspect.getdoc(klass) or ""
        for name, body in re.findall(r":param (\w+):(.*?)(?=\n\s*:|\Z)", text, re.DOTALL):
            line = " ".join(body.split())
            # First sentence: a period after a word (not "i.e.") before a capital letter.
            docs[name] = re.split(r"(?<=\w{2})\.\s+(?=[A-Z])", line)[0].rstrip(".")[:160]
    return docs


def sb3_params(cls: type) -> tuple[dict[str, Param], list[str]]:
    """The Param table of an SB3 class, read from ``cls.__init__``, and the arguments it
    leaves out (set by rlcompare, logging only, or not expressible as a spec value).

    Returns:
        (params, left_out): the hyperparameters, with ``device``, ``net_arch`` and (on-policy
        classes) ``n_envs`` added; the left-out argument names in signature order.
    """
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    docs = _param_docs(cls)
    params: dict[str, Param] = {}
    left_out: list[str] = []
    for name, arg in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if arg.kind in (arg.VAR_POSITIONAL, arg.VAR_KEYWORD):
            continue
        admits = _annotation_types(arg.annotation)
        kind = None if arg.default is arg.empty else _kind(arg.default, admits)
        if name in SET_BY_US or name in NOT_HYPERPARAMETERS or kind is None:
            left_out.append(name)
            continue
        default = float(arg.default) if kind == "float" and arg.default is not None else arg.default
        nullable = arg.default is None or type(None) in admits
        doc = docs.get(name, f"{cls.__name__}'s {name}")
        params[name] = _bounded(name, Param(default, kind, doc, nullable=nullable))
    for name, param in policy_params(cls).items():
        params.setdefault(name, param)
    if issubclass(cls, OnPolicyAlgorithm):
        params["n_envs"] = Param(
            1, "int", "parallel envs (DummyVecEnv) per rollout", low=1, high=256
        )
    params["net_arch"] = Param(
        None, "int_list", "hidden layer sizes (None = the class's own default)", nullable=True
    )
    params["device"] = DEVICE_PARAM
    return params, left_out


def policy_params(cls: type) -> dict[str, Param]:
    """The hyperparameters read from ``cls``'s MlpPolicy: its arguments with literal defaults,
    less those the class sets itself (:func:`class_set_policy_arguments`) and ours."""
    policy = cls.policy_aliases[POLICY]  # type: ignore[attr-defined]
    docs = _param_docs(policy)
    skip = {*POLICY_SET_BY_CLASS, *SET_BY_US, *class_set_policy_arguments(cls)}
    params: dict[str, Param] = {}
    for name, arg in list(inspect.signature(policy.__init__).parameters.items())[1:]:
        if name in skip or arg.default is arg.empty:
            continue
        admits = _annotation_types(arg.annotation)
        kind = _kind(arg.default, admits)
        if kind is None:
            continue
        default = float(arg.default) if kind == "float" and arg.default is not None else arg.default
        doc = docs.get(name, f"{policy.__name__}'s {name}")
        nullable = arg.default is None or type(None) in admits
        params[name] = _bounded(name, Param(default, kind, f"policy: {doc}", nullable=nullable))
    return params


def class_set_policy_arguments(cls: type) -> set[str]:
    """Policy arguments ``cls`` sets itself, read from its source: keywords of its
    ``self.policy_class(...)`` call (on-policy classes pass ``use_sde``) and keys it assigns
    in ``self.policy_kwargs[...]`` (A2C's and QRDQN's optimizer, DDPG's ``n_critics``).
    Passing them again would fail or be overwritten."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for method in ("__init__", "_setup_model"):
            if method not in vars(klass):
                continue
            try:
                tree = ast.parse(textwrap.dedent(inspect.getsource(vars(klass)[method])))
            except (OSError, TypeError, SyntaxError):
                continue
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "policy_class"
                ):
                    names.update(k.arg for k in node.keywords if k.arg is not None)
                elif (
                    isinstance(node, ast.Subscript)
                    and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "policy_kwargs"
                    and isinstance(node.slice, ast.Constant)
                    and isinstance(node.slice.value, str)
                ):
                    names.add(node.slice.value)
    return names


def _bounded(name: str, param: Param) -> Param:
    """``param`` with the shared bounds of ``name``, unless its kind or default disagrees."""
    bounds = _BOUNDS.get(name)
    if bounds is None or param.kind not in ("int", "float"):
        return param
    candidate = replace(param, **bounds)
    try:
        if param.default is not None:
            candidate.validate(name, param.default)
    except SpecError:
        return param
    return candidate


def supported_action_spaces(cls: type) -> tuple[str, ...] | None:
    """Names of the gymnasium spaces an SB3 class passes as ``supported_action_spaces`` to
    its base class (read from the source: SB3 keeps them nowhere else), or None (any)."""
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass.__init__)))
        except (OSError, TypeError, SyntaxError):
            return None
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "supported_action_spaces" and isinstance(
                    keyword.value, ast.Tuple
                ):
                    return tuple(
                        elt.attr if isinstance(elt, ast.Attribute) else getattr(elt, "id", "?")
                        for elt in keyword.value.elts
                    )
    return None


@dataclass(frozen=True)
class SB3Spaces:
    """Space check of an SB3 class: Box or Discrete observations, and the action spaces the
    class supports (gymnasium space names; None = any).

    Attributes:
        target: The class, for the message.
        actions: Names of ``gymnasium.spaces`` classes, or None.
    """

    target: str
    actions: tuple[str, ...] | None

    def __call__(self, obs: gym.Space, act: gym.Space) -> str | None:
        if self.actions is not None:
            valid = tuple(getattr(gym.spaces, name) for name in self.actions)
            if not isinstance(act, valid):
                return (
                    f"needs a {' or '.join(self.actions)} action space ({self.target} supports "
                    f"only these), got {act}"
                )
        if not isinstance(obs, _OBSERVATIONS):
            return f"needs a Box or Discrete observation space, got {obs}"
        return None


@dataclass(frozen=True)
class SB3Trainer:
    """The one trainer of every SB3 algorithm (callable as ``trainer(ctx)``).

    Builds ``Class("MlpPolicy", envs, seed=<the run's sb3 seed>, device=..., policy_kwargs=...,
    **<the hyperparameters that are arguments of Class>)``, seeds its envs, takes its greedy
    policy and trains it under the one evaluation protocol. Hyperparameters that are not
    arguments of the class (``n_envs``, ``net_arch``, a built-in's own switches) are not
    passed; the hooks read them.

    Attributes:
        target: ``"package:Class"`` of the SB3 algorithm.
        policy_kwargs: ``hp -> policy_kwargs`` (default: ``net_arch`` when given).
        model_kwargs: ``(hp, kwargs) -> kwargs``: adjusts the constructor arguments.
        after_build: ``(ctx, model) -> None`` after the envs are seeded (a warm start).
        greedy: ``(model, observation_space, action_space) -> policy`` (default: by policy
            type, see :func:`~rlcompare.algos.deep.sb3_common.greedy_policy`).
    """

    target: str
    policy_kwargs: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    model_kwargs: Callable[[Mapping[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    after_build: Callable[[Any, Any], None] | None = None
    greedy: Callable[..., Any] | None = None

    def build(self, ctx: Any) -> Any:
        """The SB3 model of ``ctx``'s spec, its envs seeded from the run's ``env`` stream."""
        from rlcompare.algos.deep.learner import resolve_device
        from rlcompare.algos.deep.sb3_common import make_vec_env, seed_model_env

        cls = import_sb3_class(self.target)
        hp = ctx.hp
        accepted = inspect.signature(cls.__init__).parameters
        kwargs = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in hp.items()
            if name in accepted and name not in SET_BY_US
        }
        if self.model_kwargs is not None:
            kwargs = self.model_kwargs(hp, kwargs)
        if self.policy_kwargs is not None:
            policy_kwargs = self.policy_kwargs(hp)
        else:
            arch = hp.get("net_arch")
            policy_kwargs = {} if arch is None else {"net_arch": list(arch)}
            # The policy's own arguments of the table (not the class's: those go to it).
            for name in policy_params(cls):
                if name in hp and name not in accepted:
                    policy_kwargs[name] = hp[name]
        # The envs are made before the seed is drawn, as SB3's argument order always had it.
        envs = make_vec_env(ctx, hp.get("n_envs", 1))
        model = cls(
            POLICY,
            envs,
            **kwargs,
            policy_kwargs=policy_kwargs,
            seed=ctx.seeds.int_seed("sb3"),
            device=resolve_device(hp["device"]),
        )
        seed_model_env(ctx, model)
        if self.after_build is not None:
            self.after_build(ctx, model)
        return model

    def __call__(self, ctx: Any) -> Any:
        from rlcompare.algos.deep.sb3_common import (
            LivePolicy,
            SB3Agent,
            greedy_policy,
            run_protocol,
            total_timesteps,
        )
        from rlcompare.envs.make import env_info

        model = self.build(ctx)
        info = env_info(ctx.spec.env, ctx.spec.env_kwargs)
        choose = self.greedy if self.greedy is not None else greedy_policy
        # Rebuilt before every evaluation: some classes rebind their parameters (TRPO).
        policy = LivePolicy(lambda: choose(model, info.observation_space, info.action_space))
        run_protocol(ctx, model, policy, model.policy, total_timesteps(ctx))
        return SB3Agent(model, policy)


def check_sb3_spec(spec: Any) -> None:
    """The deep agents' spec checks (use_sde on Box actions, a CUDA device that exists), and a
    known horizon for classes whose exploration decays over the budget."""
    check_deep_spec(spec)
    if "exploration_fraction" in spec.resolved_hparams:
        schedule_horizon(spec)  # SpecError when an episodes budget has no step limit


def register_sb3(
    name: str,
    target: str,
    *,
    params: Mapping[str, Param] | None = None,
    summary: str | None = None,
    spaces: SpaceCheck | None = None,
    check_params: CrossCheck | None = None,
    trainer: str | None = None,
) -> Any:
    """Registers a Stable-Baselines3 (or sb3-contrib) algorithm class under ``name``.

    ``rlcompare.register_sb3("qrdqn", "sb3_contrib:QRDQN")`` is all it takes: the
    hyperparameters, their defaults and kinds come from the class and its MlpPolicy's
    signatures (``n_quantiles=50`` reaches QRDQN's policy), the action spaces from the class,
    and runs follow the same protocol and budget rule as every algorithm (``steps=N``: N env
    steps, training on the rollouts complete by then; ``episodes=N``: exactly N episodes).
    A recurrent class (RecurrentPPO) is refused: one observation does not fix its action.

    Args:
        name: The ``algo`` of a RunSpec.
        target: ``"package:Class"``, e.g. ``"stable_baselines3:A2C"``.
        params: Hyperparameter table (default: read from the class; see :func:`sb3_params`).
            Names that are not arguments of the class are not passed to it.
        summary: One line for ``rlcompare algos`` (default: the class and what is left out).
        spaces: Space check (default: the class's supported action spaces).
        check_params: Cross-parameter checks on the resolved hyperparameters.
        trainer: ``"module:attribute"`` of an :class:`SB3Trainer` of ``target`` with hooks
            (the built-ins: named by string, so registering them loads neither torch nor
            SB3). Default: ``SB3Trainer(target)``.

    Returns:
        The registered Algorithm.

    Raises:
        ValueError: ``target`` is malformed, does not import, or is not an SB3 algorithm
            class (checked here; with ``trainer`` and everything it would derive given, when
            a run starts).
    """
    if trainer is None or params is None or spaces is None or summary is None:
        cls = import_sb3_class(target)
        derived, left_out = sb3_params(cls)
        params = derived if params is None else params
        spaces = SB3Spaces(target, supported_action_spaces(cls)) if spaces is None else spaces
        if summary is None:
            summary = (
                f"Stable-Baselines3 {cls.__name__} ({target}) via register_sb3; "
                f"not settable: {', '.join(n for n in left_out if n not in SET_BY_US)}"
            )
    trainer = SB3Trainer(target) if trainer is None else trainer
    return DeepAlgorithm(
        name, summary, params, trainer, spaces, check_params, check_sb3_spec
    ).register()
