"""Ingest a GeoTIFF: tile it, embed every tile, build the indexes, then mark it ready.

Each stage's output is written atomically and the manifest is written last, so a kill at
any point leaves either the previous scene or a resumable partial one, never a half file a
search would read. Rerunning the same command resumes; with unchanged inputs it is a no-op,
and when only the model version changed but not its image tower it recomputes just the gates
and the text index from the stored vectors (``refresh``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.runner import PART_SIZE, LocalParts, PartComputer, embed_tiles
from core.ingest.embed.shared import SharedParts
from core.ingest.refresh import adopt_scene, can_refresh, recorded_scene_key, refresh_scene
from core.ingest.source import SceneSource, scene_source
from core.model.checkpoint import image_tower_fingerprint, scene_fingerprint
from core.model.inference import caption_energy
from core.settings import get_settings
from core.store.index import INDEX_DIM, TEXT_METRIC, VISUAL_METRIC, build_index, soft_index_vectors
from core.store.manifest import READY, SceneManifest
from core.store.workspace import SceneDir, Workspace, check_free_space, scene_name_from
from tiles import (
    CATALOG_KEY,
    TILING_VERSION,
    WINDOW_FIELDS,
    SceneInfo,
    TileReader,
    TilingConfig,
    build_catalog,
    check_not_uniform,
    check_scene_size,
    describe,
    file_stamp,
    read_catalog,
    write_catalog,
)
from tiles.overlay import MAP_CRS, write_quicklook_png
from tiles.scene import ScenePath

Stage = Callable[[str, int, int, float], None]
BYTES_PER_TILE = 16 * 1024  # vectors, parts, catalog and both indexes, with room to spare
# Leaflet stretches overlays linearly in Web Mercator, so overlays are warped to it.


@dataclass(frozen=True)
class IngestOptions:
    """User-facing ingest settings (tiling plus throughput)."""

    tiling: TilingConfig = TilingConfig()
    batch_size: int = 32
    workers: int | None = None  # tile-reading processes; None: ``runner.reader_workers``
    part_size: int = PART_SIZE
    shared_stages: int = 0  # > 0: share that many backbone stages between overlapping tiles


@dataclass(frozen=True)
class IngestResult:
    """What an ingest produced."""

    scene: str
    n_tiles: int
    skipped: bool
    seconds: float
    tiles_per_second: float
    model_tag: str = ""


def _fingerprint(source: SceneSource, options: IngestOptions, model_tag: str) -> dict[str, Any]:
    fingerprint = {
        "source": source.recorded,
        **source.facts,
        "tiling": asdict(options.tiling),
        "tiling_version": TILING_VERSION,
        "model": model_tag,
    }
    if options.shared_stages:  # changes the vectors; absent when off, as in older manifests
        fingerprint["shared_stages"] = options.shared_stages
    return fingerprint


def _run_tag(fingerprint: dict[str, Any]) -> str:
    """Short hash of the settings, put in every part's file name.

    A part left by a run with another source, tiling or model is then never reused.
    """
    text = json.dumps(fingerprint, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _same_input(recorded: dict[str, Any], fingerprint: dict[str, Any]) -> bool:
    """Same source and tiling: only the model differs, or nothing does."""
    return {**recorded, "model": None} == {**fingerprint, "model": None}


def _normalise(value: Any) -> Any:
    """Round-trip through JSON types so tuples and lists compare equal."""
    return json.loads(json.dumps(value, default=str))


def check_declared(source: ScenePath, tiling: TilingConfig) -> SceneInfo:
    """Refuse a scene from its header alone: too big blocks, pixels or tiles.

    Cheap (no pixel but one is read), so callers run it before loading a model.
    """
    settings = get_settings()
    info = describe(source, max_block_mb=settings.max_block_mb)
    check_scene_size(info, tiling, max_pixels=settings.max_pixels, max_tiles=settings.max_tiles)
    return info


def _scene_summary(source: ScenePath, tiling: TilingConfig) -> dict[str, Any]:
    """Facts about the source, after refusing a scene that declares too much or shows nothing."""
    info = check_declared(source, tiling)
    check_not_uniform(source, tiling.bands)
    return {
        "crs": info.crs.to_string() if info.crs else None,
        "width": info.width,
        "height": info.height,
        "bands": info.count,
        "dtype": str(info.dtypes[0]),
        "resolution_m": round(float(min(info.ground_pixel_size_m)), 3),
        "bounds": list(info.bounds_4326),
    }


def ingest(
    source: str | Path,
    workspace: Workspace,
    embedder: TileEmbedder,
    model_tag: str,
    name: str | None = None,
    options: IngestOptions | None = None,
    progress: Stage | None = None,
    parts_factory: Callable[[TileReader, np.ndarray], PartComputer] | None = None,
) -> IngestResult:
    """Run (or resume) the whole pipeline for one scene, from a file or an allowed COG URL.

    ``embedder`` computes embeddings in this process unless ``parts_factory`` chooses
    another place (see ``core.ingest.distributed`` for a Dask cluster); the workspace files are the
    same either way.

    Only one process writes a scene at a time: the scene's writer lock is held throughout.

    Raises:
        tiles.TilesError: for unreadable, non-georeferenced or empty scenes (nothing is
            written for them).
        WorkspaceError: for an invalid scene name.
        SceneBusyError: when another process is writing the scene.
        DiskSpaceError: when the disk would fall below ``SCENESEEK_MIN_FREE_GB``.
    """
    scene = workspace.scene(name or scene_name_from(source))
    with workspace.writing(scene.name):
        checked = scene_source(source)
        with checked.environment():
            return _ingest(
                checked, workspace, scene, embedder, model_tag, options, progress, parts_factory
            )


def _ingest(
    source: SceneSource,
    workspace: Workspace,
    scene: SceneDir,
    embedder: TileEmbedder,
    model_tag: str,
    options: IngestOptions | None,
    progress: Stage | None,
    parts_factory: Callable[[TileReader, np.ndarray], PartComputer] | None,
) -> IngestResult:
    """``ingest``'s body, run while holding the scene's writer lock."""
    options = options or IngestOptions()
    started = time.time()
    check_free_space(workspace, 0, f"ingesting {scene.name}")
    stamp = None if source.remote else file_stamp(source.read_path)  # before the checks
    summary = _scene_summary(source.read_path, options.tiling)
    fingerprint = _normalise(_fingerprint(source, options, model_tag))
    image_tower = image_tower_fingerprint(embedder.model)
    scene_key = scene_fingerprint(embedder.model)
    manifest = scene.read_manifest()
    replaced = manifest.source_stamp not in (None, stamp)  # even with the same size and time
    same_input = _same_input(manifest.fingerprint, fingerprint) and not replaced
    if same_input and manifest.status and manifest.source_stamp != stamp:
        manifest.source_stamp = stamp  # a manifest from before stamps: the file checked now
        manifest.save(scene.manifest)
    current = recorded_scene_key(workspace, manifest) == scene_key
    if same_input and manifest.ready and current:  # also a version that only added adapters
        adopt_scene(scene, model_tag, scene_key)
        return IngestResult(scene.name, manifest.n_tiles or 0, True, 0.0, 0.0, model_tag)
    if not current and same_input and can_refresh(workspace, scene, image_tower):
        refresh_scene(scene, embedder.model, model_tag, image_tower, progress)
        return IngestResult(
            scene.name, manifest.n_tiles or 0, False, time.time() - started, 0.0, model_tag
        )
    if manifest.fingerprint != fingerprint or replaced:
        _reset(scene)
    elif manifest.ready:
        return IngestResult(scene.name, manifest.n_tiles or 0, True, 0.0, 0.0, model_tag)
    manifest = SceneManifest(
        scene.name,
        fingerprint,
        summary,
        status="tiling",
        tiling_version=TILING_VERSION,
        source_stamp=stamp,
    )
    manifest.save(scene.manifest)
    try:
        catalog = _catalog(scene, source, options, progress)
        bounds = write_quicklook_png(
            source.read_path, scene.quicklook, bands=options.tiling.bands, dst_crs=MAP_CRS
        )
    except Exception:
        workspace.delete_scene(scene.name)
        raise
    manifest.status, manifest.n_tiles, manifest.quicklook_bounds = "embedding", len(catalog), bounds
    manifest.save(scene.manifest)
    check_free_space(workspace, len(catalog) * BYTES_PER_TILE, f"embedding {scene.name}")
    windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
    reader = TileReader.from_catalog(catalog, path=source.read_path)
    settings = get_settings()
    if parts_factory is not None:
        parts = parts_factory(reader, windows)
    elif options.shared_stages:
        parts = SharedParts(reader, windows, embedder, options.shared_stages, options.workers)
    else:
        parts = LocalParts(
            reader, windows, embedder, options.batch_size, options.workers, settings.reader_mb
        )
    result = embed_tiles(
        parts,
        len(windows),
        scene.embeddings,
        (lambda d, t, r: progress("embedding", d, t, r)) if progress else None,
        options.part_size,
        run_tag=_run_tag(fingerprint),
    )
    if progress:
        progress("indexing", 0, 2, 0.0)
    vectors = np.load(result.files["visual"])
    build_index(vectors, scene.visual_index, image_tower, VISUAL_METRIC, index_dim=INDEX_DIM)
    if "gate" in result.files:
        energy = caption_energy(embedder.model, embedder.towers)
        text_vectors = soft_index_vectors(vectors, np.load(result.files["gate"]), energy)
        build_index(text_vectors, scene.text_index, scene_key, TEXT_METRIC, index_dim=INDEX_DIM)
    elapsed = time.time() - started
    manifest.status, manifest.model, manifest.finished = READY, model_tag, time.time()
    manifest.image_tower, manifest.scene_key = image_tower, scene_key
    manifest.ingest_seconds = round(elapsed, 1)
    manifest.engine = parts.engine  # information only: either engine's vectors interchange
    if result.seconds:
        manifest.embed_tiles_per_second = round(result.computed / result.seconds, 2)
    manifest.save(scene.manifest)
    if progress:
        progress("done", len(catalog), len(catalog), 0.0)
    rate = result.computed / elapsed if elapsed else 0.0
    return IngestResult(scene.name, len(catalog), False, elapsed, rate, model_tag)


def _reset(scene: SceneDir) -> None:
    """Forget outputs of other settings; the manifest goes first so no search reads them."""
    scene.manifest.unlink(missing_ok=True)
    shutil.rmtree(scene.embeddings, ignore_errors=True)
    for path in (scene.catalog, scene.quicklook, scene.visual_index, scene.text_index):
        path.unlink(missing_ok=True)
    scene.root.mkdir(parents=True, exist_ok=True)


def _catalog(
    scene: SceneDir, source: SceneSource, options: IngestOptions, progress: Stage | None
) -> gpd.GeoDataFrame:
    if scene.catalog.exists():
        return read_catalog(scene.catalog)
    if progress:
        progress("tiling", 0, 1, 0.0)
    settings = get_settings()
    catalog = build_catalog(
        source.read_path,
        options.tiling,
        max_pixels=settings.max_pixels,
        max_tiles=settings.max_tiles,
    )
    catalog.attrs[CATALOG_KEY]["source"] = source.recorded  # never a URL's credentials
    write_catalog(catalog, scene.catalog)
    return catalog
