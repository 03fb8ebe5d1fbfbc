"""Why a search gave fewer hits than asked for, in words an analyst can act on."""

from __future__ import annotations


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def fewer_hits(found: int, k: int, held: int, in_area: bool, besides: str = "") -> str:
    """The notice for ``found`` hits out of ``k`` asked, from ``held`` tiles that could match.

    Fewer come back when the scenes (or the area) hold fewer tiles than ``k``, or when the
    rest overlap a better hit: overlap suppression keeps one tile per place. ``besides``
    names what else was left out (find similar leaves out the tile asked about).
    """
    if held == 0:
        if in_area:
            return "No tile of the chosen scenes and sizes lies in the area of interest."
        return "The scenes searched hold no tile of the chosen sizes."
    where = "the area holds" if in_area else "the scenes searched hold"
    short = f"{_count(found, 'hit')}, not {k}"
    if found >= held:
        return f"{short}: {where} only {_count(held, 'tile')}."
    return (
        f"{short}: {where} {_count(held, 'tile')}, and only {found:,} "
        f"{'place' if found == 1 else 'places'} that do not overlap one another{besides}."
    )
