"""Where a result came from: package versions, the git commit of the source tree, and which
files are the user's own code (not rlcompare's, not an installed package's, not Python's).

Shared by the run metadata (``runner.runs``: the frame of user code where a run failed), the
code fingerprint of stored runs (``store.fingerprint``) and the figure provenance
(``viz.figures``).
"""

from __future__ import annotations

import functools
import linecache
import os
import subprocess
import sysconfig
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "RESULT_PACKAGES",
    "VERSION",
    "code_origin",
    "cpu_model",
    "first_user_frame",
    "format_frame",
    "git_commit",
    "git_dirty",
    "package_version",
    "package_versions",
]

# This package's version; pyproject.toml reads it from here.
VERSION = "0.1.0"
# The packages whose versions decide a result: recorded with every run and every figure.
RESULT_PACKAGES = (
    "rlcompare",
    "numpy",
    "scipy",
    "numba",
    "gymnasium",
    "torch",
    "stable-baselines3",
    "pandas",
    "rliable",
    "matplotlib",
    "seaborn",
)


def package_version(package: str) -> str | None:
    """The installed version of ``package``, or None when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    """The installed version of every package in ``RESULT_PACKAGES`` (None if missing)."""
    return dict(_package_versions())


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, str | None], ...]:
    # Read once per process: every run stores them, and parsing every package's metadata
    # cost ~30 ms a run (a third of a short tabular run's time), while installs do not change
    # under a running process.
    versions = {name: package_version(name) for name in RESULT_PACKAGES}
    versions["rlcompare"] = versions["rlcompare"] or VERSION  # a never-installed source tree
    return tuple(versions.items())


def _git(*args: str, directory: str | os.PathLike[str] | None = None) -> str | None:
    where = Path(directory) if directory is not None else Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


@functools.lru_cache(maxsize=8)
def _commit(directory: str | None) -> str | None:
    return _git("rev-parse", "HEAD", directory=directory) or None


def git_commit(directory: str | os.PathLike[str] | None = None) -> str | None:
    """``git rev-parse HEAD`` in ``directory`` (default: this package's folder), else None.

    Cached per directory: every run stores it, and HEAD does not move under a running process
    often enough to pay a subprocess per run.
    """
    return _commit(None if directory is None else os.fspath(directory))


def git_dirty(directory: str | os.PathLike[str] | None = None) -> bool | None:
    """Whether tracked files differ from HEAD (None outside a git checkout)."""
    status = _git("status", "--porcelain", "--untracked-files=no", directory=directory)
    return None if status is None else bool(status)


# This package's folder: its files are rlcompare's code, never a user's.
PACKAGE_DIR = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[Path, ...]:
    """Folders of Python's own and installed packages (site-packages, the standard library)."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    found = {Path(p).resolve() for p in (sysconfig.get_path(n) for n in names) if p}
    return tuple(sorted(found, key=lambda p: len(p.parts), reverse=True))


@functools.lru_cache(maxsize=4096)
def code_origin(filename: str | None) -> str:
    """Whose code the file ``filename`` holds: ``"rlcompare"``, ``"library"`` (the standard
    library or an installed package: site-packages, dist-packages) or ``"user"`` (anything
    else: a script, a module of the user's, a notebook cell, code given to ``exec``).

    ``None`` (a module without a file: a notebook's ``__main__``) is the user's.
    """
    if not filename:
        return "user"
    if filename.startswith("<"):
        # "<frozen importlib._bootstrap>" is Python's; "<string>", "<ipython-input-...>",
        # "<cell-1>" are code a user handed to exec or typed into a notebook.
        return "library" if filename.startswith("<frozen ") else "user"
    path = Path(filename).resolve()
    if path == PACKAGE_DIR or PACKAGE_DIR in path.parents:
        return "rlcompare"
    if any(part in ("site-packages", "dist-packages") for part in path.parts):
        return "library"
    if any(path.is_relative_to(folder) for folder in _library_dirs()):
        return "library"
    return "user"


def first_user_frame(error: BaseException) -> dict[str, Any] | None:
    """The frame of user code nearest to where ``error`` was raised (the last one of its
    traceback whose file is the user's, see :func:`code_origin`), as ``file``,
    ``line_number``, ``function`` and the source ``line``; None when no user code was on the
    stack (an error inside rlcompare or a library called by rlcompare alone)."""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if code_origin(frame.filename) == "user":
            line = frame.line or linecache.getline(frame.filename, frame.lineno or 0).strip()
            return {
                "file": frame.filename,
                "line_number": frame.lineno,
                "function": frame.name,
                "line": line,
            }
    return None


def format_frame(frame: dict[str, Any] | None) -> str:
    """``file:line in function: source line`` of a :func:`first_user_frame` ("" for None)."""
    if not frame:
        return ""
    return (
        f"{frame.get('file')}:{frame.get('line_number')} in {frame.get('function')}: "
        f"{frame.get('line') or ''}"
    ).rstrip(": ")


def cpu_model() -> str:
    """``lscpu``'s "Model name", or "unknown" (absolute times mean little without it)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"
