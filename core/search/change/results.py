"""Change hits: the search contract (``Hit``, ``SearchResult``) plus both dates of each tile."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from core.search.results import Hit, Marks, SearchResult

DATE_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)")
CHANGE_FIELDS = ("change", "before_score", "after_score")


def scene_date(name: str) -> str | None:
    """ISO date written in a scene name (NAIP's ``..._20200831_...``), or None."""
    for match in DATE_IN_NAME.finditer(name):
        try:
            return date(*(int(g) for g in match.groups())).isoformat()
        except ValueError:
            continue
    return None


def _rounded(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


@dataclass(frozen=True)
class ChangeHit(Hit):
    """A tile of the later scene, with its change score and, for queries, both dates' scores.

    Attributes:
        change: Robust z-score of the tile's change (``score.change_scores``).
        before_score: The query's score on the earlier date (None without a query).
        after_score: The query's score on the later date (None without a query).
    """

    change: float = math.nan
    before_score: float | None = None
    after_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The search hit object plus ``change``, ``before_score`` and ``after_score``."""
        return {
            **super().to_dict(),
            "change": _rounded(self.change),
            "before_score": _rounded(self.before_score),
            "after_score": _rounded(self.after_score),
        }


@dataclass(frozen=True)
class ChangeResult(SearchResult):
    """Change hits on the later scene's grid, naming both scenes (and dates, when known)."""

    before: str = ""
    after: str = ""

    @property
    def pair(self) -> dict[str, dict[str, str | None]]:
        """``{"before": {"scene", "date"}, "after": {...}}`` as exports carry it."""
        return {
            "before": {"scene": self.before, "date": scene_date(self.before)},
            "after": {"scene": self.after, "date": scene_date(self.after)},
        }

    def to_dict(self) -> dict[str, Any]:
        """``{"query", "model", "pair", "hits"}``."""
        return {**super().to_dict(), "pair": self.pair}

    def to_geojson(self, marks: Marks | None = None) -> dict[str, Any]:
        """The search FeatureCollection, with the pair among its properties."""
        collection = super().to_geojson(marks)
        collection["properties"]["pair"] = self.pair
        return collection

    def to_table(self) -> str:
        """The search table, naming both scenes, with each hit's change score at its end."""
        lines = super().to_table().splitlines()
        lines[0] += f"  ({self.before} -> {self.after})"
        lines[1] += "  change"
        for i, hit in enumerate(self.hits, start=2):
            lines[i] += f"  {hit.change:6.2f}"
        return "\n".join(lines)

    def to_csv(self, marks: Marks | None = None) -> str:
        """The search CSV plus change, both scores and both scenes on every row."""
        rows = list(csv.reader(io.StringIO(super().to_csv(marks))))
        rows[0] += ["change", "before_score", "after_score", "before_scene", "after_scene"]
        for row, hit in zip(rows[1:], self.hits, strict=True):
            values = hit.to_dict()
            row += [
                *("" if values[k] is None else f"{values[k]:.6f}" for k in CHANGE_FIELDS),
                self.before,
                self.after,
            ]
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        return out.getvalue()
