"""One analyst judgement about one tile, the value the feedback store and its rules share.

Kept apart from ``core.store.feedback`` so ``core.store.mark_rules``, which the store calls
before it writes, can name the type without importing the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Label = Literal["relevant", "irrelevant", "caption"]


@dataclass(frozen=True)
class Mark:
    """One analyst judgement about one tile for one query."""

    query_kind: str  # "text", "image" or "tile"
    query: str  # the text, the image's SHA-256, or SCENE:TILE
    scene: str
    tile_id: int
    label: Label
    caption: str = ""
    model: str = ""
    created: float = 0.0
    footprint: str = ""  # the tile's EPSG:4326 polygon (WKT) when marked; "" if unknown
    author: str = ""  # who made it: the signed-in user, or the OS user of the CLI
    id: int | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-lines form (export)."""
        return asdict(self)
