"""What a piece of code is, as a short digest that changes when the code does.

Three kinds of code, told apart by the file that holds it (:func:`rlcompare.versions.code_origin`):

- rlcompare's own: the package version plus a hash of the source files of the unit that
  holds it (``rlcompare/algos/tabular/``, ``rlcompare/algos/baselines.py``, ``rlcompare/envs/``
  ...), read once per process;
- an installed package's (site-packages, the standard library): the module's qualified name
  and its distribution's version (what a pip install changes);
- the user's (a module of their own, a script, a notebook cell, code given to ``exec``): the
  code as it is in memory, so what is fingerprinted is what runs (a module edited on disk but
  not re-imported still runs its old code). A function is its code object (bytecode,
  constants, names, nested code), defaults and closure; a class is its bases and every
  attribute (methods as functions, constants as values). Each global name the code uses
  that is the user's own function, class or immutable constant (number, text, tuple) in the
  same namespace is included in turn, so a helper or a module-level constant edited changes
  the digest (mutable globals, such as a list used as a counter, are not); a user module used
  by attribute (``helpers.f()``) counts by the hash of its file. Line numbers, file names
  and comments are left out: moving code, re-running a notebook cell or editing a comment
  changes nothing. Bytecode differs between Python versions: a new Python is new code.

Not covered: the versions of libraries the code calls (numpy, torch, Stable-Baselines3 are
recorded with each run, see :mod:`rlcompare.versions`, but do not make a run stale), data read
from files, and values reached through attributes of objects that are not the user's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import re
import sys
import types
from importlib import metadata
from pathlib import Path
from typing import Any

from rlcompare.versions import PACKAGE_DIR, VERSION, code_origin

__all__ = [
    "code_digest",
    "digest",
    "module_digest",
    "rlcompare_digest",
    "target_digest",
    "unit_digest",
]

# Attributes of a class that describe where it was defined, not what it does.
_CLASS_NOISE = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__module__",
        "__qualname__",
        "__firstlineno__",
        "__static_attributes__",
        "__annotations__",
    }
)
# A "module:attribute" reference to code.
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
# How deep a description follows containers and references (a guard against huge graphs).
_MAX_DEPTH = 12


def digest(data: Any) -> str:
    """16 hex digits of the SHA-256 of ``data`` as canonical JSON."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=64)
def unit_digest(unit: str) -> str:
    """Hash of the source files of one unit of rlcompare (``"runner"``, ``"envs/make"``: a
    folder or a module, relative to the package), read once per process: the code imported
    from them does not change under a running process either."""
    root = PACKAGE_DIR / unit
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]
    sha = hashlib.sha256()
    for path in files:
        if path.is_file():
            sha.update(str(path.relative_to(PACKAGE_DIR)).encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def rlcompare_digest(module: str) -> str:
    """rlcompare's version plus the hash of the unit that holds ``module``: its algorithm
    family for ``rlcompare.algos.<family>...``, else its first-level subpackage or module."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "algos":
        unit = f"algos/{parts[2]}"
    elif len(parts) >= 2:
        unit = parts[1]
    else:
        unit = "__init__"
    return f"rlcompare {VERSION} {unit} {unit_digest(unit)}"


@functools.lru_cache(maxsize=256)
def _distribution_version(top: str) -> str | None:
    try:
        return metadata.version(top)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def _library_identity(module: str) -> str:
    top = module.split(".")[0]
    version = _distribution_version(top)
    return f"{module} {version}" if version else module


@functools.lru_cache(maxsize=256)
def _file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "unreadable"


def _module_origin(name: str) -> tuple[str, str | None]:
    """(origin, file) of the module ``name``, without importing it when it is not loaded."""
    if name == "rlcompare" or name.startswith("rlcompare."):
        return "rlcompare", None
    module = sys.modules.get(name)
    if module is not None:
        file = getattr(module, "__file__", None)
    else:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        file = found.origin if found is not None else None
        if file in ("built-in", "frozen"):
            return "library", None
    return code_origin(file), file


def module_digest(name: str) -> str:
    """What the module ``name`` is: rlcompare's unit, a library's version, or the hash of a
    user module's file (used for modules that code refers to, and for string targets)."""
    origin, file = _module_origin(name)
    if origin == "rlcompare":
        return rlcompare_digest(name)
    if origin == "library":
        return _library_identity(name)
    return f"{name} file {_file_digest(file)}" if file else f"{name} (no file)"


def target_digest(target: Any) -> str:
    """Digest of a ``"module:attribute"`` string (rlcompare's and libraries' by module, not
    imported; a user module's imported and described in memory) or of a Python object."""
    if isinstance(target, str) and ":" in target:
        module, _, attribute = target.partition(":")
        origin, _ = _module_origin(module)
        if origin == "user":
            imported = importlib.import_module(module)
            value: Any = imported
            for part in attribute.split("."):
                value = getattr(value, part)
            return code_digest(value)
        return digest([target, module_digest(module)])
    return code_digest(target)


def code_digest(value: Any) -> str:
    """16 hex digits that change when the code (or data) of ``value`` changes; see the module
    docstring for what is covered."""
    return digest(_Describer().describe(value, None, 0))


def _defined_in(value: Any) -> str | None:
    """The file of the code of a function or class (None when it has none). A class is
    placed by its methods' code, since its module may not be where it was written (a class
    of code given to ``exec`` in a ``__main__`` namespace)."""
    code = getattr(value, "__code__", None)
    if code is not None:
        return code.co_filename
    if isinstance(value, type):
        for item in vars(value).values():
            item = getattr(item, "__func__", None) or getattr(item, "fget", None) or item
            code = getattr(item, "__code__", None)
            if code is not None:
                return code.co_filename
    module = sys.modules.get(getattr(value, "__module__", "") or "")
    return getattr(module, "__file__", None) if module is not None else None


class _Describer:
    """Turns code and data into plain JSON data, each object once (cycles become refs)."""

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def describe(self, value: Any, scope: dict[str, Any] | None, depth: int) -> Any:
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return ["float", repr(value)]
        if isinstance(value, (bytes, bytearray)):
            return ["bytes", hashlib.sha256(bytes(value)).hexdigest()[:16]]
        if depth > _MAX_DEPTH:
            return ["deep", type(value).__qualname__]
        if isinstance(value, types.CodeType):
            return self._code(value, scope, depth)
        if isinstance(value, types.ModuleType):
            return ["module", module_digest(value.__name__)]
        if isinstance(value, (tuple, list)):
            return [type(value).__name__, [self.describe(v, scope, depth + 1) for v in value]]
        if isinstance(value, dict):
            items = [
                [self.describe(k, scope, depth + 1), self.describe(v, scope, depth + 1)]
                for k, v in value.items()
            ]
            return ["dict", sorted(items, key=_canonical)]
        if isinstance(value, (set, frozenset)):
            # Sorted: the order of a set of strings changes with the hash seed of the process.
            items = [self.describe(v, scope, depth + 1) for v in value]
            return ["set", sorted(items, key=_canonical)]
        if isinstance(value, (staticmethod, classmethod)):
            return [type(value).__name__, self.describe(value.__func__, scope, depth + 1)]
        if isinstance(value, property):
            parts = (value.fget, value.fset, value.fdel)
            return ["property", [self.describe(p, scope, depth + 1) for p in parts]]
        if isinstance(value, functools.partial):
            parts = [value.func, value.args, value.keywords]
            return ["partial", [self.describe(p, scope, depth + 1) for p in parts]]
        if isinstance(value, (types.FunctionType, type)):
            return self._definition(value, depth)
        if isinstance(value, (types.BuiltinFunctionType, types.MethodType)):
            owner = getattr(value, "__self__", None)
            if isinstance(value, types.MethodType):
                return ["method", self.describe(value.__func__, scope, depth + 1)]
            return ["builtin", getattr(owner, "__name__", None), value.__qualname__]
        return self._instance(value, scope, depth)

    def _definition(self, value: Any, depth: int) -> Any:
        """A function or class: by identity when it is rlcompare's or a library's, in full
        (code, defaults, attributes) when it is the user's."""
        module = getattr(value, "__module__", None) or ""
        name = f"{module}.{value.__qualname__}"
        if module.startswith("rlcompare."):
            origin = "rlcompare"
        elif module == "builtins" or module in sys.builtin_module_names:
            origin = "library"  # object, dict, ...: no file, yet not the user's
        else:
            origin = code_origin(_defined_in(value))
        if origin == "rlcompare":
            return ["rlcompare", value.__qualname__, rlcompare_digest(module)]
        if origin == "library":
            return ["library", value.__qualname__, _library_identity(module)]
        if id(value) in self._seen:
            return ["ref", value.__qualname__]
        self._seen.add(id(value))
        if isinstance(value, type):
            attributes = {
                key: self.describe(item, None, depth + 1)
                for key, item in sorted(vars(value).items())
                if key not in _CLASS_NOISE
            }
            bases = [self.describe(base, None, depth + 1) for base in value.__bases__]
            return ["class", value.__qualname__, bases, attributes]
        cells = []
        for cell in value.__closure__ or ():
            try:
                cells.append(self.describe(cell.cell_contents, None, depth + 1))
            except ValueError:  # an empty cell
                cells.append(["empty"])
        scope = value.__globals__
        return [
            "function",
            name.rpartition(".")[2],
            self._code(value.__code__, scope, depth + 1),
            self.describe(value.__defaults__, scope, depth + 1),
            self.describe(value.__kwdefaults__, scope, depth + 1),
            cells,
        ]

    def _code(self, code: types.CodeType, scope: dict[str, Any] | None, depth: int) -> Any:
        """Bytecode, constants and names of ``code`` (no file, no line numbers), and the user
        definitions and constants its global names refer to in ``scope``."""
        used = []
        for name in code.co_names:
            if scope is None or name not in scope:
                continue
            target = scope[name]
            if isinstance(target, (types.FunctionType, type, types.ModuleType)) or _is_data(target):
                used.append([name, self.describe(target, scope, depth + 1)])
        return [
            "code",
            hashlib.sha256(code.co_code).hexdigest()[:16],
            [self.describe(c, scope, depth + 1) for c in code.co_consts],
            list(code.co_names),
            list(code.co_varnames),
            [code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags],
            used,
        ]

    def _instance(self, value: Any, scope: dict[str, Any] | None, depth: int) -> Any:
        """Any other object: arrays by content, dataclasses and user objects by their fields,
        the rest by type (and its repr when that holds no memory address)."""
        kind = type(value)
        label = f"{kind.__module__}.{kind.__qualname__}"
        if hasattr(value, "dtype") and hasattr(value, "tobytes") and hasattr(value, "shape"):
            raw = value.tobytes()
            return ["array", str(value.dtype), list(value.shape), hashlib.sha256(raw).hexdigest()]
        if id(value) in self._seen:
            return ["ref", label]
        self._seen.add(id(value))
        if dataclasses.is_dataclass(value):
            # A "package:Class" field (register_sb3's trainer names its SB3 class so) is code:
            # its module's identity (a library's version) goes in, not the text alone.
            fields = {
                f.name: [item, module_digest(item.partition(":")[0])]
                if isinstance(item, str) and _TARGET.match(item)
                else self.describe(item, scope, depth + 1)
                for f in dataclasses.fields(value)
                for item in (getattr(value, f.name),)
            }
            return ["dataclass", self.describe(kind, scope, depth + 1), fields]
        if hasattr(value, "_asdict"):  # a NamedTuple
            return ["namedtuple", label, self.describe(tuple(value), scope, depth + 1)]
        if code_origin(_defined_in(kind)) == "user" and hasattr(value, "__dict__"):
            state = self.describe(dict(vars(value)), scope, depth + 1)
            return ["object", self.describe(kind, scope, depth + 1), state]
        text = repr(value)
        shown = text if len(text) <= 200 and " at 0x" not in text else None
        return ["object", label, shown]


def _is_data(value: Any) -> bool:
    """Immutable constants a module may define and code may read (numbers, text, tuples and
    frozensets of them). Mutable globals (a list used as a counter, a cache dict) change as
    runs happen and would make every run stale; other globals (open files, models, frames)
    are not code either: both are left out."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return True
    if isinstance(value, (tuple, frozenset)):
        return len(value) <= 1000 and all(_is_data(v) for v in value)
    return False


def _canonical(item: Any) -> str:
    return json.dumps(item, sort_keys=True, default=str)
