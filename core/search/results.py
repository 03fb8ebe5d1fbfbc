"""Search hits and the formats they leave the engine in (JSON, GeoJSON, table, CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from core.store.tileref import TileRef

QUERY_KINDS = ("text", "image", "tile")  # the keys a result's query is stored under
Marks = Mapping[str, str]  # "SCENE:TILE" -> "relevant" | "irrelevant", the analyst's marks


@dataclass(frozen=True)
class Hit:
    """One ranked tile."""

    rank: int
    score: float
    scene: str
    tile_id: int
    scale: int
    window: tuple[int, int, int, int]
    geometry: BaseGeometry

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat) of the footprint."""
        return tuple(float(v) for v in self.geometry.bounds)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """The hit object of ``--format json``."""
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "scene": self.scene,
            "tile_id": self.tile_id,
            "scale": self.scale,
            "window": list(self.window),
            "bounds": list(self.bounds),
            "geometry": mapping(self.geometry),
        }


@dataclass(frozen=True)
class SearchResult:
    """Hits for one query, with the model version that scored them."""

    query: dict[str, Any]
    model: str
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    kind: str = "text"
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    missing: tuple[str, ...] = ()  # scenes whose shard never answered (a lost Dask worker)

    @property
    def partial(self) -> bool:
        """True when some scenes were not searched, so better hits may exist."""
        return bool(self.missing)

    @property
    def partial_note(self) -> str:
        """One line naming the scenes a partial answer lacks; empty for a whole answer."""
        if not self.missing:
            return ""
        return f"partial: not searched (their Dask worker was lost): {', '.join(self.missing)}"

    def to_dict(self) -> dict[str, Any]:
        """``{"query", "model", "hits"}`` as printed by ``--format json``.

        A partial answer also carries ``partial`` and ``missing_scenes``.
        """
        hits = [h.to_dict() for h in self.hits]
        return {"query": self.query, "model": self.model, "hits": hits} | self._completeness()

    def _completeness(self) -> dict[str, Any]:
        return {"partial": True, "missing_scenes": list(self.missing)} if self.missing else {}

    @property
    def query_kind(self) -> str:
        """``text``, ``image`` (an example image's name) or ``tile`` (``SCENE:TILE``)."""
        return next((k for k in QUERY_KINDS if k in self.query), "text")

    @property
    def query_value(self) -> str:
        """The query in one string: the text, the image's name, or ``SCENE:TILE``."""
        return str(self.query.get(self.query_kind, ""))

    def _tags(self, hit: Hit, marks: Marks) -> dict[str, Any]:
        """What a hit carries into a file besides itself: its query and the analyst's mark."""
        return {
            "query_kind": self.query_kind,
            "query": self.query_value,
            "mark": marks.get(str(TileRef(hit.scene, hit.tile_id))),
        }

    def to_geojson(self, marks: Marks | None = None) -> dict[str, Any]:
        """A FeatureCollection of the hits: rank, score, tile, query and mark in the properties.

        The mark (``relevant``, ``irrelevant`` or null) and the query travel with each hit, so
        a GIS layer of the hits keeps what they were found for and how they were judged.
        """
        features = []
        for hit in self.hits:
            props = {k: v for k, v in hit.to_dict().items() if k != "geometry"}
            props |= self._tags(hit, marks or {})
            features.append(
                {"type": "Feature", "geometry": mapping(hit.geometry), "properties": props}
            )
        properties = {"query": self.query, "model": self.model} | self._completeness()
        return {"type": "FeatureCollection", "features": features, "properties": properties}

    def to_csv(self, marks: Marks | None = None) -> str:
        """One row per hit: bounds, query, mark (empty when unmarked) and footprint as WKT."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "rank",
                "score",
                "scene",
                "tile_id",
                "scale",
                "col_off",
                "row_off",
                "width",
                "height",
                "min_lon",
                "min_lat",
                "max_lon",
                "max_lat",
                "query_kind",
                "query",
                "mark",
                "wkt",
            ]
        )
        for h in self.hits:
            tags = self._tags(h, marks or {})
            writer.writerow(
                [
                    h.rank,
                    f"{h.score:.6f}",
                    h.scene,
                    h.tile_id,
                    h.scale,
                    *h.window,
                    *(f"{b:.7f}" for b in h.bounds),
                    tags["query_kind"],
                    tags["query"],
                    tags["mark"] or "",
                    h.geometry.wkt,
                ]
            )
        return out.getvalue()

    def to_table(self) -> str:
        """Aligned plain-text table for the terminal."""
        lines = [
            f"model {self.model}",
            *([self.partial_note] if self.missing else []),
            f"{'rank':>4}  {'score':>8}  {'scene':<24} {'tile':>8} {'scale':>6}  bounds",
        ]
        for h in self.hits:
            b = ", ".join(f"{v:.5f}" for v in h.bounds)
            lines.append(
                f"{h.rank:>4}  {h.score:>8.4f}  {h.scene:<24} {h.tile_id:>8} {h.scale:>6}  [{b}]"
            )
        return "\n".join(lines)

    def render(self, fmt: str) -> str:
        """Text in one of the CLI's formats: ``json``, ``geojson``, ``table`` or ``csv``."""
        if fmt == "json":
            return json.dumps(self.to_dict())
        if fmt == "geojson":
            return json.dumps(self.to_geojson())
        if fmt == "csv":
            return self.to_csv()
        return self.to_table()
