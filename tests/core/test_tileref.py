"""TileRef: one format and one parse for SCENE:TILE_ID."""

import pytest

from core.errors import QueryError
from core.store.tileref import TileRef


def test_round_trip_and_colons_in_scene_names():
    for ref in (TileRef("berkeley", 42), TileRef("a:b", 0)):
        assert TileRef.parse(str(ref)) == ref
    assert str(TileRef("berkeley", 42)) == "berkeley:42"


@pytest.mark.parametrize("bad", ["berkeley", "berkeley:", ":3", "berkeley:x", "berkeley:-1"])
def test_malformed_refs_are_refused(bad):
    with pytest.raises(QueryError, match="SCENE:TILE_ID"):
        TileRef.parse(bad)
