"""Saw-tooth areas: the polygon that made area search slow, for benchmarks and tests.

Its teeth run across the whole area, each nine tenths as deep as the area is high, so every
edge is long and almost every tile window lies near one: the worst shape for a lookup that
cuts edges into pieces or buffers them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def saw_tooth(bounds: tuple[float, float, float, float], vertices: int) -> dict[str, Any]:
    """A GeoJSON Polygon over ``bounds`` (lon/lat) whose ring has ``vertices`` points.

    The ring's first point is repeated at its end, as GeoJSON wants, and counts.
    """
    west, south, east, north = (float(v) for v in bounds)
    teeth = vertices - 3  # the two bottom corners and the closing point
    lons = np.linspace(west, east, teeth)
    lats = np.where(np.arange(teeth) % 2 == 0, north, south + (north - south) * 0.1)
    ring = [[east, south], [west, south], *np.column_stack([lons, lats]).tolist()]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
