"""Search hits and the formats they leave the engine in (JSON, GeoJSON, table, CSV)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry


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

    def to_dict(self) -> dict[str, Any]:
        """``{"query", "model", "hits"}`` as printed by ``--format json``."""
        return {"query": self.query, "model": self.model, "hits": [h.to_dict() for h in self.hits]}

    def to_geojson(self) -> dict[str, Any]:
        """A FeatureCollection of the hits, properties carrying rank, score and tile."""
        features = []
        for hit in self.hits:
            props = {k: v for k, v in hit.to_dict().items() if k != "geometry"}
            features.append(
                {"type": "Feature", "geometry": mapping(hit.geometry), "properties": props}
            )
        return {
            "type": "FeatureCollection",
            "features": features,
            "properties": {"query": self.query, "model": self.model},
        }

    def to_csv(self) -> str:
        """One row per hit with its bounds and footprint as WKT, for spreadsheets and GIS."""
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
                "wkt",
            ]
        )
        for h in self.hits:
            writer.writerow(
                [
                    h.rank,
                    f"{h.score:.6f}",
                    h.scene,
                    h.tile_id,
                    h.scale,
                    *h.window,
                    *(f"{b:.7f}" for b in h.bounds),
                    h.geometry.wkt,
                ]
            )
        return out.getvalue()

    def to_table(self) -> str:
        """Aligned plain-text table for the terminal."""
        lines = [
            f"model {self.model}",
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
