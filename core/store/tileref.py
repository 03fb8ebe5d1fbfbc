"""``TileRef``: the one way a tile is named across scenes (``SCENE:TILE_ID``)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import QueryError


@dataclass(frozen=True, slots=True)
class TileRef:
    """A tile of a scene; ``str()`` gives ``SCENE:TILE_ID``, ``parse`` reads it back."""

    scene: str
    tile_id: int

    def __str__(self) -> str:
        return f"{self.scene}:{self.tile_id}"

    @classmethod
    def parse(cls, ref: str) -> TileRef:
        """Read ``SCENE:TILE_ID``; scene names may contain colons, the last one splits.

        Raises:
            QueryError: when it is not of that form.
        """
        scene, sep, tile = ref.rpartition(":")
        if not sep or not scene or not tile.isdigit():
            raise QueryError(f"a tile is named SCENE:TILE_ID, e.g. berkeley:42; got {ref!r}")
        return cls(scene, int(tile))

    @classmethod
    def of(cls, item: object) -> TileRef:
        """The tile of anything with ``scene`` and ``tile_id`` attributes (hits, marks)."""
        return cls(str(item.scene), int(item.tile_id))  # type: ignore[attr-defined]
