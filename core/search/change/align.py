"""Put the earlier scene on the later scene's tile grid and embed it there, once per pair.

Co-located tiles must cover the same ground, and two acquisitions rarely share a grid, so
the earlier scene is read through a warp onto the later scene's catalog windows
(``tiles.AlignedTileReader``) and embedded by the ingest machinery (``embed_tiles`` with the
same parts the later scene was embedded with). The vectors, and how much of each tile the
earlier scene covers, are kept with the pair (``core.store.pairs``) and reused until the
model or either scene changes.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.errors import IndexMismatchError, PairError
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.runner import LocalParts, PartComputer, embed_tiles
from core.ingest.embed.shared import SharedParts
from core.ingest.refresh import recorded_scene_key
from core.model.loading import load_model
from core.store.manifest import READY, SceneManifest
from core.store.pairs import PairDir, PairManifest, pair_dir, pair_identity
from core.store.remote import catalog_scene
from core.store.workspace import Workspace
from tiles import CATALOG_KEY, WINDOW_FIELDS, AlignedTileReader, read_catalog
from tiles.atomic import atomic_path

Progress = Callable[[int, int, float], None]


def footprint_overlap(before: SceneManifest, after: SceneManifest) -> float:
    """Share of the later scene's lon/lat box inside the earlier one's (0 when apart)."""
    b, a = before.scene.get("bounds"), after.scene.get("bounds")
    if not a or not b:
        return 0.0
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    area = (a[2] - a[0]) * (a[3] - a[1])
    return max(width, 0) * max(height, 0) / area if area > 0 else 0.0


def scene_manifests(
    workspace: Workspace, before: str, after: str, scene_key: str
) -> tuple[SceneManifest, SceneManifest]:
    """Both scenes' manifests, once they are known to be comparable.

    ``scene_key`` is the model's ``checkpoint.scene_digest`` (see ``scenes.check_manifest``).

    Raises:
        PairError: for one scene twice, or scenes whose footprints do not overlap.
        SceneNotFoundError: when a scene is missing or not ready.
        IndexMismatchError: when a scene was embedded by another model or tiled the old way.
    """
    if before == after:
        raise PairError(f"--before and --after both name {before!r}; pick two dates")
    manifests = []
    for name in (before, after):
        manifest = workspace.existing_scene(name).read_manifest()
        if manifest.outdated_tiling or recorded_scene_key(workspace, manifest) != scene_key:
            raise IndexMismatchError(
                f"scene {name!r} was embedded by model {manifest.model or 'unknown'} (or tiled "
                f"by an older SceneSeek), not by the active model ({scene_key}): re-ingest it with "
                f"python -m core ingest {manifest.source or 'SCENE.tif'} --name {name}"
            )
        manifests.append(manifest)
    if footprint_overlap(manifests[0], manifests[1]) <= 0:
        raise PairError(
            f"scenes {before!r} and {after!r} do not overlap on the ground; change search "
            "compares two dates of the same place"
        )
    return manifests[0], manifests[1]


def is_aligned(workspace: Workspace, before: str, after: str, scene_key: str) -> bool:
    """True when the pair's vectors are ready for the scenes and model as they are now.

    Raises:
        PairError, SceneNotFoundError, IndexMismatchError: as ``scene_manifests``.
    """
    b, a = scene_manifests(workspace, before, after, scene_key)
    manifest = pair_dir(workspace, before, after).read_manifest()
    return manifest.ready and manifest.identity == pair_identity(b, a, scene_key)


def _parts(
    reader: AlignedTileReader,
    windows: np.ndarray,
    after: SceneManifest,
    embedder: TileEmbedder,
    batch_size: int,
    workers: int | None,
) -> PartComputer:
    """The parts the later scene was embedded with, so both dates' vectors are comparable."""
    shared = int(after.fingerprint.get("shared_stages", 0))
    if shared:
        return SharedParts(reader, windows, embedder, shared, workers)
    return LocalParts(reader, windows, embedder, batch_size, workers)


def _save_array(path: Path, values: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, values)


def align_pair(
    workspace: Workspace,
    before: str,
    after: str,
    embedder: TileEmbedder,
    scene_key: str,
    progress: Progress | None = None,
    batch_size: int = 32,
    workers: int | None = None,
) -> PairManifest:
    """Embed ``before`` on ``after``'s tile grid, or reuse the vectors already there.

    Returns:
        The pair's manifest once it is ready.

    Raises:
        PairError: for one scene twice, or scenes with no tile in common.
        SceneNotFoundError: when a scene is missing or not ready.
        IndexMismatchError: when a scene was embedded by another model.
    """
    b_manifest, a_manifest = scene_manifests(workspace, before, after, scene_key)
    identity = pair_identity(b_manifest, a_manifest, scene_key)
    pair = pair_dir(workspace, before, after)
    manifest = pair.read_manifest()
    if manifest.ready and manifest.identity == identity:
        return manifest
    started = time.time()
    if manifest.identity != identity:
        _reset(pair)
    catalog = read_catalog(workspace.scene(after).catalog)
    windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
    earlier = read_catalog(workspace.scene(before).catalog)
    reader = AlignedTileReader.from_catalogs(earlier, catalog, catalog_scene(earlier))
    coverage = reader.coverage(windows)
    min_valid = catalog.attrs[CATALOG_KEY]["config"]["min_valid"]
    comparable = int(np.count_nonzero(coverage >= min_valid))
    if comparable == 0:
        raise PairError(
            f"scene {before!r} covers none of {after!r}'s tiles; change search compares two "
            "dates of the same place"
        )
    manifest = PairManifest(before, after, identity, "embedding", len(windows), comparable)
    manifest.save(pair.manifest)
    parts = _parts(reader, windows, a_manifest, embedder, batch_size, workers)
    embed_tiles(parts, len(windows), pair.embeddings, progress)
    _save_array(pair.coverage, coverage.astype(np.float32))
    manifest.status, manifest.finished = READY, time.time()
    manifest.seconds = round(manifest.finished - started, 1)
    manifest.save(pair.manifest)
    return manifest


def _reset(pair: PairDir) -> None:
    """Forget vectors of other scenes or another model; the manifest goes first."""
    pair.manifest.unlink(missing_ok=True)
    shutil.rmtree(pair.embeddings, ignore_errors=True)
    pair.coverage.unlink(missing_ok=True)
    pair.root.mkdir(parents=True, exist_ok=True)


def prepare_pair(
    workspace: Workspace,
    before: str,
    after: str,
    *,
    checkpoint: str | None = None,
    device: str = "auto",
    progress: Progress | None = None,
) -> PairManifest:
    """``align_pair`` with the workspace's active model (or ``checkpoint``), loaded here.

    Raises:
        CheckpointError: when the model cannot be loaded.
        PairError, SceneNotFoundError, IndexMismatchError: as ``align_pair``.
    """
    loaded = load_model(workspace, checkpoint, device)
    embedder = TileEmbedder(loaded.model, loaded.device)
    return align_pair(workspace, before, after, embedder, loaded.scene_key, progress)
