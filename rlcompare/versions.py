"""Where a result came from: package versions and the git commit of the source tree.

Shared by the run metadata (``runner.runs``) and the figure provenance (``viz.figures``).
"""

from __future__ import annotations

import functools
import os
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = [
    "RESULT_PACKAGES",
    "VERSION",
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
