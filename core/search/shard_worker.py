"""The worker side of sharded search: each Dask worker keeps the scenes it serves loaded.

Loaded scenes live in this module of the worker process, one per (workspace, scene), stamped
with the model version and the scene's ``finished`` time. A query whose spec carries the same
stamps reuses them; a re-indexed scene, an added one or another active model version
(promotion, rollback) is loaded anew, and scenes gone from the workspace are dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.device import limit_blas_threads
from core.search.aoi import AreaOfInterest
from core.search.localize import heat_map
from core.search.ranking import area_tiles, scene_top
from core.search.scenes import SceneIndex, load_scene
from core.search.shard_contract import Candidate, Filters, HeatMap, ShardSpec
from core.store.workspace import Workspace

Stamp = tuple[str, float | None]  # (model version tag, the scene's manifest ``finished``)
_LOADED: dict[tuple[str, str], tuple[Stamp, SceneIndex]] = {}


def shard_scenes(spec: ShardSpec) -> list[SceneIndex]:
    """The spec's scenes, loaded on first use and kept for later queries.

    Raises:
        SceneNotFoundError, IndexMismatchError: as ``load_scene``.
    """
    limit_blas_threads()
    for root, name in list(_LOADED):
        if root == spec.root and name not in spec.known:
            del _LOADED[(root, name)]
    scenes = []
    for name, finished in spec.scenes:
        stamp = (spec.scene_key, finished)
        held = _LOADED.get((spec.root, name))
        if held is None or held[0] != stamp:
            scene = load_scene(Workspace(Path(spec.root)), name, spec.dim, spec.scene_key)
            held = _LOADED[(spec.root, name)] = (stamp, scene)
        scenes.append(held[1])
    return scenes


def shard_search(
    spec: ShardSpec, kind: str, vector: np.ndarray, f: Filters
) -> dict[str, list[Candidate]]:
    """Worker task: each of the shard's scenes' best tiles (``ranking.scene_top``).

    An area of interest travels in ``f``; each worker finds its tiles in its own scenes.
    """
    return {scene.name: scene_top(scene, kind, vector, f) for scene in shard_scenes(spec)}


def shard_area_tiles(spec: ShardSpec, f: Filters) -> dict[str, int]:
    """Worker task: how many tiles of each of the shard's scenes lie in ``f``'s area."""
    return {scene.name: area_tiles(scene, f) for scene in shard_scenes(spec)}


def shard_heat(
    spec: ShardSpec, vector: np.ndarray, kind: str, area: AreaOfInterest | None = None
) -> dict[str, HeatMap]:
    """Worker task: the heat map of each of the shard's scenes (``localize.heat_map``)."""
    return {
        scene.name: heat_map(scene, vector, kind=kind, area=area) for scene in shard_scenes(spec)
    }


def shard_facts(spec: ShardSpec) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Worker task: tile count and tile sizes of each of the shard's scenes (for menus)."""
    return {
        scene.name: (len(scene), tuple(int(s) for s in np.unique(scene.scales)))
        for scene in shard_scenes(spec)
    }


def loaded_stamps() -> dict[str, Stamp]:
    """What this worker holds, ``"ROOT/NAME"`` -> stamp (for tests and diagnostics)."""
    return {f"{root}/{name}": stamp for (root, name), (stamp, _) in _LOADED.items()}
