"""Reading ``--set`` and ``--env-set`` values: ``NAME=VALUE`` pairs, and ``--set`` split per
algo (``ALGO.NAME=VALUE`` for that algo only), for every command that takes them."""

from __future__ import annotations

from collections.abc import Sequence

from rlcompare.errors import SpecError


def name_values(items: Sequence[str], flag: str) -> dict[str, str]:
    """``NAME=VALUE`` items of ``flag`` as a dict (a bad item names the flag)."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SpecError(f"{flag} {item!r} is invalid; valid: NAME=VALUE")
        pairs[name] = value
    return pairs


def split_sets(raw: dict[str, str], algos: Sequence[str]) -> dict[str, dict[str, str]]:
    """``--set`` values per algo: ``NAME=VALUE`` for every algo of ``--algo``,
    ``ALGO.NAME=VALUE`` for that one only (it wins over the unprefixed one).

    Raises:
        SpecError: a prefix that is not one of ``algos``, naming them; an unprefixed name
            that some algo lacks, naming the prefixed form for those that have it.
    """
    from rlcompare.spec.registry import get_algorithm

    shared: dict[str, str] = {}
    own: dict[str, dict[str, str]] = {algo: {} for algo in algos}
    # Longest first: algo names may hold dots themselves.
    by_length = sorted(algos, key=len, reverse=True)
    for name, text in raw.items():
        target = next((a for a in by_length if name.startswith(a + ".")), None)
        if target is not None:
            own[target][name[len(target) + 1 :]] = text
        elif "." in name:
            prefix = name.partition(".")[0]
            raise SpecError(
                f"--set {name}={text}: {prefix!r} is not an algo of --algo "
                f"{','.join(algos)}; valid: NAME=VALUE (every algo) or ALGO.NAME=VALUE with "
                f"ALGO one of {', '.join(algos)}"
                + (f" (did you mean {close}?)" if (close := close_matches(prefix, algos)) else "")
            )
        else:
            shared[name] = text
    for name, text in shared.items():
        has = [a for a in algos if name in get_algorithm(a).params]
        lacks = [a for a in algos if a not in has and name not in own[a]]
        if lacks and has:
            raise SpecError(
                f"--set {name}={text} applies to every algo of --algo, and {lacks[0]!r} has no "
                f"hyperparameter {name!r}; valid: "
                + " ".join(f"--set {a}.{name}={text}" for a in has)
                + " (that algo only)"
            )
    return {algo: {**shared, **own[algo]} for algo in algos}


def close_matches(word: str, valid: Sequence[str]) -> str:
    """Up to three of ``valid`` close to ``word``, comma-separated ("" when none is)."""
    import difflib

    return ", ".join(difflib.get_close_matches(word, list(valid), n=3))
