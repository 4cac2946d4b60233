"""Saving figures with their provenance, reading it back, and a gallery page.

Every figure written by :func:`save_figure` carries, inside the file, what produced it: the
rlcompare version, the git commit (and whether the tree had uncommitted changes), the
parameters and seeds, and the versions of every package that decides the numbers
(``rlcompare.versions.RESULT_PACKAGES``, the list the run metadata records). There is no timestamp,
so a rerun gives the same record. It is stored as one JSON string: a PNG text chunk (key
``rlcompare``), the PDF info dict's ``Subject`` and the SVG ``Description``.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from matplotlib.figure import Figure

from rlcompare.versions import git_commit, git_dirty, package_versions

FORMATS = ("png", "pdf", "svg")
DEFAULT_DIRECTORY = "figures"
ENV_VAR = "RLCOMPARE_FIGURES"
PNG_KEY = "rlcompare"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# A PDF literal string as matplotlib writes it: backslash escapes, no raw parentheses.
_PDF_SUBJECT = re.compile(rb"/Subject\s*\(((?:\\.|[^\\()])*)\)", re.DOTALL)
_PDF_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}
_SVG_DESCRIPTION = re.compile(r"<dc:description>(.*?)</dc:description>", re.DOTALL)

__all__ = [
    "FORMATS",
    "figure_directory",
    "git_commit",
    "git_dirty",
    "provenance",
    "read_provenance",
    "save_figure",
    "SavedFigure",
    "write_gallery",
]
# Output metadata key of a figure's caption in a notebook: the HTML report finds the caption
# of each figure by it (rlcompare.viz.html_report).
CAPTION_KEY = "rlcompare_figure"


class SavedFigure(list):  # type: ignore[type-arg]
    """The paths :func:`save_figure` wrote (a ``list[Path]``), with the figure's name and caption.

    In a notebook it displays as nothing: :func:`save_figure` has already shown the figure
    with its caption, and a list of this machine's paths tells a reader nothing.
    """

    def __init__(self, paths: Iterable[Path], name: str, caption: str | None) -> None:
        super().__init__(paths)
        self.name = name
        self.caption = caption

    def _ipython_display_(self) -> None:
        return None


def caption_html(name: str, caption: str | None, pdf: str | None) -> str:
    """A figure's caption: its name in bold, the caption, and a link to its PDF."""
    text = f"<b>{html.escape(name)}</b>" + (f": {html.escape(caption)}" if caption else "")
    if pdf is not None:
        text += f' · <a href="{html.escape(pdf)}">PDF</a>'
    return text


def _in_notebook_kernel() -> bool:
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _show_in_notebook(fig: Figure, name: str, caption: str | None, paths: list[Path]) -> None:
    """Shows ``fig`` and, under it, its caption with a link to its PDF (relative to the
    kernel's working folder, the notebook's); the figure is then closed so the inline
    backend does not show it a second time, captionless, at the end of the cell."""
    import matplotlib.pyplot as plt
    from IPython.display import display, publish_display_data

    pdfs = [p for p in paths if p.suffix == ".pdf"]
    pdf = os.path.relpath(pdfs[0]) if pdfs else None
    display(fig)
    plt.close(fig)
    plain = f"{name}: {caption}" if caption else name
    publish_display_data(
        data={
            "text/plain": plain + (f" ({pdfs[0].name})" if pdfs else ""),
            "text/html": f'<p class="rlcompare-caption">{caption_html(name, caption, pdf)}</p>',
        },
        metadata={
            CAPTION_KEY: {"name": name, "caption": caption, "files": [p.name for p in paths]}
        },
    )


def provenance(
    params: Mapping[str, Any] | None = None,
    seeds: Iterable[int] | None = None,
    caption: str | None = None,
) -> dict[str, Any]:
    """The record embedded in a figure (JSON-ready; non-JSON values become strings)."""
    versions = package_versions()
    record = {
        "caption": caption,
        "rlcompare": versions["rlcompare"],
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "params": dict(params) if params is not None else {},
        "seeds": [int(seed) for seed in seeds] if seeds is not None else [],
        "packages": versions,
    }
    return json.loads(json.dumps(record, default=str))


def figure_directory(directory: str | os.PathLike[str] | None = None) -> Path:
    """``directory``, else ``$RLCOMPARE_FIGURES``, else ``figures/`` under the working dir."""
    return Path(directory or os.environ.get(ENV_VAR) or DEFAULT_DIRECTORY)


def _check_name_and_formats(name: str, formats: Sequence[str]) -> list[str]:
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"figure name {name!r} is not a safe file stem; valid: letters, digits, "
            "'_', '-', '.', starting with a letter or digit (no '/', no '..')"
        )
    formats = [formats] if isinstance(formats, str) else list(formats)
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"figure format {fmt!r} is invalid; valid: {', '.join(FORMATS)}")
    if not formats:
        raise ValueError(f"no figure format given; valid: {', '.join(FORMATS)}")
    return formats


def _metadata(fmt: str, name: str, record: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(record, sort_keys=True)  # ASCII only, so every format stores it as is
    if fmt == "png":
        return {"Title": name, PNG_KEY: text}
    if fmt == "pdf":  # no CreationDate, so the same figure gives the same bytes
        return {
            "Title": name,
            "Subject": text,
            "Keywords": "rlcompare provenance",
            "CreationDate": None,
        }
    return {"Title": name, "Description": text, "Date": None}


def save_figure(
    fig: Figure,
    name: str,
    formats: Sequence[str] = ("png", "pdf"),
    directory: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    seeds: Iterable[int] | None = None,
    caption: str | None = None,
    dpi: float | None = 300,
) -> SavedFigure:
    """Write ``fig`` as ``<directory>/<name>.<fmt>`` for each format, provenance embedded.

    Each file is written to a temporary file beside it and moved into place, so a crash
    never leaves a half-written figure. In a notebook the figure is shown once, here, with
    its caption and a link to its PDF under it (and closed, so the cell does not show it
    again); the returned paths display as nothing.

    Args:
        fig: The figure.
        name: File stem (letters, digits, ``_ - .``).
        formats: Any of ``png``, ``pdf``, ``svg``.
        directory: Output folder; default ``$RLCOMPARE_FIGURES`` or ``figures/``.
        params: Parameters that produced the figure (stored as JSON).
        seeds: Seeds of the runs shown.
        caption: One-line caption, shown under the figure in a notebook, in the HTML report
            and by :func:`write_gallery`.
        dpi: Resolution of raster formats.

    Returns:
        The written paths, in the order of ``formats`` (a list of ``Path``).
    """
    formats = _check_name_and_formats(name, formats)
    folder = figure_directory(directory)
    folder.mkdir(parents=True, exist_ok=True)
    record = provenance(params, seeds, caption)
    paths = []
    for fmt in formats:
        target = folder / f"{name}.{fmt}"
        _atomic_write(
            target,
            lambda stream, fmt=fmt: fig.savefig(
                stream, format=fmt, dpi=dpi, metadata=_metadata(fmt, name, record)
            ),
        )
        paths.append(target)
    if _in_notebook_kernel():
        _show_in_notebook(fig, name, caption, paths)
    return SavedFigure(paths, name, caption)


def _atomic_write(target: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write`` on a temporary file beside ``target``, then move it into place."""
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; figures are meant to be shared
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _pdf_unescape(raw: bytes) -> bytes:
    return re.sub(
        rb"\\(.)", lambda m: _PDF_ESCAPES.get(m.group(1), m.group(1)), raw, flags=re.DOTALL
    )


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The provenance record that :func:`save_figure` embedded in a PNG, PDF or SVG file.

    Raises:
        ValueError: The file has no rlcompare provenance or is not png/pdf/svg.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    text: str | None = None
    if fmt == "png":
        from PIL import Image  # matplotlib depends on Pillow

        with Image.open(path) as image:
            text = getattr(image, "text", {}).get(PNG_KEY)
    elif fmt == "pdf":
        match = _PDF_SUBJECT.search(path.read_bytes())
        text = _pdf_unescape(match.group(1)).decode("latin-1") if match else None
    elif fmt == "svg":
        match = _SVG_DESCRIPTION.search(path.read_text(encoding="utf-8"))
        text = html.unescape(match.group(1)) if match else None
    else:
        raise ValueError(
            f"cannot read provenance from {str(path)!r}; valid formats: {', '.join(FORMATS)}"
        )
    try:
        record = json.loads(text) if text else None
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        raise ValueError(f"{str(path)!r} has no rlcompare provenance")
    return record


def write_gallery(directory: str | os.PathLike[str] | None = None) -> Path:
    """Write ``index.md`` in the figure folder: every PNG, its caption and provenance.

    Args:
        directory: Figure folder; default as in :func:`save_figure`.

    Returns:
        The path of the index.
    """
    folder = figure_directory(directory)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Figures",
        "",
        "Generated by `rlcompare.viz.figures.write_gallery`; do not edit.",
        "",
    ]
    for png in sorted(folder.glob("*.png")):
        try:
            record = read_provenance(png)
        except (ValueError, OSError):
            record = {}
        caption = record.get("caption") or png.stem
        others = [
            f"[{p.suffix[1:]}]({p.name})"
            for p in sorted(folder.glob(f"{png.stem}.*"))
            if p.suffix in (".pdf", ".svg")
        ]
        lines += [f"## {png.stem}", "", f"![{caption}]({png.name})", "", caption, ""]
        if others:
            lines += [f"Also: {', '.join(others)}", ""]
        if record:
            versions = sorted(record.get("packages", {}).items())
            packages = ", ".join(f"{name} {version}" for name, version in versions)
            lines += [
                f"- rlcompare {record.get('rlcompare')}, commit `{record.get('git_commit')}`"
                + (" (uncommitted changes)" if record.get("git_dirty") else ""),
                f"- params: `{json.dumps(record.get('params', {}), sort_keys=True)}`",
                f"- seeds: `{record.get('seeds', [])}`",
                f"- packages: {packages}",
                "",
            ]
        else:
            lines += ["- no provenance recorded", ""]
    index = folder / "index.md"
    _atomic_write(index, lambda stream: stream.write("\n".join(lines).encode("utf-8")))
    return index
