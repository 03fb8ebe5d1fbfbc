"""The Search page with ``SCENESEEK_DASK=local:2`` finds what it finds in one process."""

from __future__ import annotations

import pytest

from app.resources import _load_engine, active_version
from core.store.workspace import Workspace
from tests.app.test_search_page import ask, search_page

QUERY = "a road between trees"


def _hits(ws: Workspace) -> list[tuple[str, int, float]]:
    result = ask(search_page(), QUERY).session_state["result"]
    assert not result.partial
    return [(h.scene, h.tile_id, round(h.score, 4)) for h in result.hits]


@pytest.mark.slow
def test_search_page_on_a_local_dask_cluster_gives_the_same_hits(
    ready_env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = _hits(ready_env)
    version = active_version(ready_env)
    monkeypatch.setenv("SCENESEEK_DASK", "local:2")
    try:
        assert _hits(ready_env) == alone and len(alone) == 10
    finally:
        engine = _load_engine(str(ready_env.root), version.version, version.tag, "local:2")
        _load_engine.clear()
        engine.resources.shards.close()
    assert not engine.resources.scenes  # the workers held the scenes, not the app
