"""A pair of scenes loaded for change search, the change heat map, and pairs worth comparing."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.errors import PairError
from core.search.change.align import footprint_overlap, is_aligned
from core.search.change.results import scene_date
from core.search.change.score import change_scores
from core.search.localize import HeatMap, tile_heat
from core.search.scenes import SceneIndex, SearchResources
from core.store.pairs import PairManifest, pair_dir
from core.store.workspace import Workspace


@dataclass
class ScenePair:
    """Two dates of one place on the later scene's tiles.

    Attributes:
        later: The later scene as search loaded it.
        earlier: The earlier date's vectors and gates on the later scene's tiles (its
            catalog and indexes are the later scene's; change queries score exactly and
            never use the indexes).
        coverage: Share of each tile the earlier scene covers.
        change: Robust z-score of each tile's change (``score.change_scores``), NaN where
            the earlier scene does not cover the tile.
        manifest: The pair's manifest.
    """

    later: SceneIndex
    earlier: SceneIndex
    coverage: np.ndarray
    change: np.ndarray
    manifest: PairManifest

    @property
    def before(self) -> str:
        """Name of the earlier scene."""
        return self.manifest.before

    @property
    def after(self) -> str:
        """Name of the later scene, whose tiles the pair uses."""
        return self.manifest.after

    @property
    def comparable(self) -> np.ndarray:
        """True for tiles both dates cover."""
        return np.isfinite(self.change)


def load_pair(res: SearchResources, before: str, after: str) -> ScenePair:
    """Load an aligned pair and score every tile's change.

    Raises:
        PairError: when the pair is not aligned for the scenes and model as they are now
            (``python -m core change`` or the app's Change page aligns it).
        SceneNotFoundError: when a scene is missing or not ready.
        IndexMismatchError: when a scene was embedded by another model.
    """
    later = res.select([after])[0]
    res.select([before])
    if not is_aligned(res.workspace, before, after, res.scene_key):
        raise PairError(
            f"{before!r} is not aligned on {after!r}'s tiles for the active model yet; align "
            f"it: python -m core change --before {before} --after {after}"
        )
    folder = pair_dir(res.workspace, before, after)
    gate = folder.embeddings / "gate.npy"
    earlier = replace(
        later,
        name=before,
        visual=np.load(folder.embeddings / "visual.npy", mmap_mode="r"),
        gate=np.load(gate, mmap_mode="r") if gate.exists() else None,
        text_ann=None,
    )
    coverage = np.load(folder.coverage)
    min_valid = float(later.tiles.meta["config"]["min_valid"])
    change = change_scores(later.visual, earlier.visual, later.scales, coverage >= min_valid)
    return ScenePair(later, earlier, coverage, change, folder.read_manifest())


def change_heat(pair: ScenePair) -> HeatMap:
    """Heat map of the change scores on the later scene's grid (as the localisation map)."""
    return tile_heat(pair.later, pair.change)


def suggest_pairs(workspace: Workspace) -> list[tuple[str, str, float]]:
    """(earlier, later, overlap) of ready scenes whose footprints overlap, best overlap first.

    Which is earlier is guessed from a date in the names (``..._20090818_...``), else from
    the name order; the analyst can swap them.
    """
    manifests = {name: workspace.scene(name).read_manifest() for name in workspace.scene_names()}
    found = []
    names = sorted(manifests, key=lambda n: (scene_date(n) or "", n))
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            share = footprint_overlap(manifests[first], manifests[second])
            if share > 0:
                found.append((first, second, round(share, 3)))
    return sorted(found, key=lambda t: -t[2])
