"""Scenes loaded for search: vectors, gates, indexes and catalogs, and the query encoders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.device import limit_blas_threads
from core.errors import IndexMismatchError, QueryError, SceneNotFoundError
from core.ingest.refresh import recorded_scene_key
from core.model.amfmn import AMFMN
from core.model.checkpoint import scene_fingerprint
from core.model.inference import Towers, torch_towers
from core.search.shard_contract import Shards, ShardSpec
from core.search.tile_columns import TileColumns
from core.store.index import TEXT_METRIC, VISUAL_METRIC, VectorIndex, load_index
from core.store.manifest import SceneManifest
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS

EXACT_CHUNK = 65536  # rows scored at once, so a 1M-tile scene never needs a full float32 copy


@dataclass
class SceneIndex:
    """One ready scene: tile columns, vectors and indexes, loaded read-only.

    Vectors, gates and indexes are memory-mapped, so only the pages queries touch are
    resident; the tile columns are the scene's own memory (a few bytes per tile).
    """

    name: str
    tiles: TileColumns
    visual: np.ndarray
    gate: np.ndarray | None
    visual_ann: VectorIndex
    text_ann: VectorIndex | None
    manifest: SceneManifest

    @property
    def windows(self) -> np.ndarray:
        """``(col_off, row_off, width, height)`` of every tile."""
        return self.tiles.windows

    @property
    def scales(self) -> np.ndarray:
        """Tile size of every tile."""
        return self.tiles.scales

    def __len__(self) -> int:
        return len(self.visual)


def check_manifest(
    workspace: Workspace, name: str, manifest: SceneManifest, scene_key: str
) -> None:
    """Refuse a scene tiled the old way, or whose gates and text index another model made.

    ``scene_key`` is the searching model's ``checkpoint.scene_digest``: versions that differ
    only in their query adapters search the same scene files.

    Raises:
        IndexMismatchError: naming the command that brings the scene up to date.
    """
    source = manifest.source or "SCENE.tif"
    redo = f"python -m core ingest {source} --name {name} --workspace {workspace.root}"
    if manifest.outdated_tiling:
        raise IndexMismatchError(
            f"scene {name!r} was tiled by an older SceneSeek whose edge tiles ran past the "
            f"raster; re-ingest needed: {redo}"
        )
    if recorded_scene_key(workspace, manifest) != scene_key:
        raise IndexMismatchError(
            f"scene {name!r} was embedded by model {manifest.model}, not by the active model "
            f"({scene_key}); re-embed it: {redo}"
        )


def stored_vectors(embeddings: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """A scene's visual vectors and gates (None for a model without gates), memory-mapped."""
    gate_path = embeddings / "gate.npy"
    gate = np.load(gate_path, mmap_mode="r") if gate_path.exists() else None
    return np.load(embeddings / "visual.npy", mmap_mode="r"), gate


def load_scene(workspace: Workspace, name: str, dim: int, scene_key: str) -> SceneIndex:
    """Load a ready scene, refusing one embedded by another model (see ``check_manifest``).

    The visual index is keyed by the image tower that made it, the text index by the scene
    key (each by the model version in manifests from before that record).

    Raises:
        SceneNotFoundError: when it is missing or not ready.
        IndexMismatchError: when it was embedded by another model version.
    """
    scene = workspace.existing_scene(name)
    manifest = scene.read_manifest()
    check_manifest(workspace, name, manifest, scene_key)
    visual, gate = stored_vectors(scene.embeddings)
    text_key = manifest.scene_key or manifest.model
    text_ann = (
        load_index(scene.text_index, dim, text_key, TEXT_METRIC) if gate is not None else None
    )
    return SceneIndex(
        name=name,
        tiles=TileColumns.read(scene.catalog),
        visual=visual,
        gate=gate,
        visual_ann=load_index(
            scene.visual_index, dim, manifest.image_tower or manifest.model, VISUAL_METRIC
        ),
        text_ann=text_ann,
        manifest=manifest,
    )


@dataclass
class SearchResources:
    """Everything a query needs, loaded once and reused."""

    model: AMFMN
    model_tag: str  # the version's, in every result; scenes are keyed by ``scene_key``
    workspace: Workspace
    device: torch.device
    scenes: dict[str, SceneIndex] = field(default_factory=dict)
    stale: dict[str, str] = field(default_factory=dict)
    towers: Towers = field(kw_only=True)  # what encodes queries (ONNX Runtime or torch)
    shards: Shards | None = field(default=None, kw_only=True)  # Dask workers hold scenes
    manifests: dict[str, SceneManifest] = field(default_factory=dict)  # ready scenes, sharded
    scene_key: str = field(default="", kw_only=True)  # checkpoint.scene_digest of the model

    @classmethod
    def load(
        cls,
        workspace: Workspace,
        model: AMFMN,
        model_tag: str,
        device: torch.device,
        towers: Towers | None = None,
        shards: Shards | None = None,
    ) -> SearchResources:
        """Load the model's resources and every ready scene; ``towers`` default to torch.

        With ``shards``, the scenes are loaded by the Dask workers instead of here.
        """
        limit_blas_threads()
        model = model.to(device).eval()
        towers = towers or torch_towers(model, device)
        resources = cls(
            model,
            model_tag,
            workspace,
            device,
            towers=towers,
            shards=shards,
            scene_key=scene_fingerprint(model),
        )
        resources.refresh()
        return resources

    def refresh(self) -> None:
        """Pick up scenes ingested, re-indexed or deleted since the last load."""
        if self.shards is not None:
            self._refresh_manifests()
            return
        names = set(self.workspace.scene_names())
        for gone in set(self.scenes) - names:
            del self.scenes[gone]
        self.stale = {}
        for name in sorted(names):
            finished = self.workspace.scene(name).read_manifest().finished
            known = self.scenes.get(name)
            if known is not None and known.manifest.finished == finished:
                continue
            try:
                self.scenes[name] = load_scene(
                    self.workspace, name, self.model.cfg.embed_dim, self.scene_key
                )
            except IndexMismatchError as exc:
                self.scenes.pop(name, None)
                self.stale[name] = str(exc)

    def _refresh_manifests(self) -> None:
        """Under shards, only manifests are read here; workers load what they serve."""
        self.stale, self.manifests = {}, {}
        for name in self.workspace.scene_names():
            manifest = self.workspace.scene(name).read_manifest()
            try:
                check_manifest(self.workspace, name, manifest, self.scene_key)
            except IndexMismatchError as exc:
                self.stale[name] = str(exc)
            else:
                self.manifests[name] = manifest

    @property
    def ready(self) -> dict[str, SceneManifest]:
        """Manifests of the searchable scenes, by name, in search order."""
        if self.shards is None:
            return {name: scene.manifest for name, scene in self.scenes.items()}
        return self.manifests

    def select(self, names: list[str] | None) -> list[SceneIndex]:
        """Scenes to search (all when ``names`` is empty).

        Under shards they are loaded here on demand (a change pair needs its two scenes).

        Raises:
            SceneNotFoundError: for a name that is not a ready scene.
            IndexMismatchError: for a scene embedded by another model version.
        """
        chosen = self.chosen(names)
        if self.shards is None:
            return [self.scenes[name] for name in chosen]
        dim = self.model.cfg.embed_dim
        return [load_scene(self.workspace, name, dim, self.scene_key) for name in chosen]

    def chosen(self, names: list[str] | None) -> list[str]:
        """Names of the scenes to search (all ready ones when ``names`` is empty).

        Raises:
            SceneNotFoundError: for a name that is not a ready scene.
            IndexMismatchError: for a scene embedded by another model version.
        """
        ready = self.ready
        if not names:
            if not ready:
                raise SceneNotFoundError(
                    f"no ingested scenes in {self.workspace.root}; ingest one first"
                    + (
                        f" ({len(self.stale)} need re-embedding with the active model)"
                        if self.stale
                        else ""
                    )
                )
            return list(ready)
        for name in names:
            if name in self.stale:
                raise IndexMismatchError(self.stale[name])
            if name not in ready:
                known = ", ".join(sorted(ready)) or "none"
                raise SceneNotFoundError(f"no ingested scene {name!r} (ready: {known})")
        return list(names)

    def shard_spec(self, names: list[str]) -> tuple[ShardSpec, dict[str, int]]:
        """What the workers must hold to search ``names``, and each scene's tile count."""
        ready = self.ready
        spec = ShardSpec(
            str(self.workspace.root),
            self.scene_key,
            self.model.cfg.embed_dim,
            tuple((name, ready[name].finished) for name in names),
            frozenset(ready),
        )
        return spec, {name: ready[name].n_tiles or 0 for name in names}

    def tile_vectors(self, scene: str, tile_id: int) -> tuple[np.ndarray, np.ndarray | None]:
        """A stored tile's visual vector and gate as float32.

        Under shards they are read from the files, never by loading the scene.

        Raises:
            SceneNotFoundError: for a scene that is not ready.
            QueryError: for a tile id outside the scene.
        """
        name = self.chosen([scene])[0]
        if self.shards is None:
            visual, gate = self.scenes[name].visual, self.scenes[name].gate
        else:
            visual, gate = stored_vectors(self.workspace.scene(name).embeddings)
        if not 0 <= tile_id < len(visual):
            raise QueryError(f"scene {scene!r} has tiles 0..{len(visual) - 1}; no tile {tile_id}")
        row = np.asarray(visual[tile_id], dtype=np.float32)
        return row, None if gate is None else np.asarray(gate[tile_id], dtype=np.float32)

    def tile_window(self, scene: str, tile_id: int) -> tuple[int, int, int, int] | None:
        """``(col_off, row_off, width, height)`` of a tile; None when there is no such tile."""
        if scene not in self.ready:
            return None
        if self.shards is None:
            windows = self.scenes[scene].windows
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(self.workspace.scene(scene).catalog, columns=list(WINDOW_FIELDS))
            windows = np.column_stack([table[c].to_numpy() for c in WINDOW_FIELDS])
        if not 0 <= tile_id < len(windows):
            return None
        return tuple(int(v) for v in windows[tile_id])  # type: ignore[return-value]

    def scales(self) -> list[int]:
        """Tile sizes of the searchable scenes, for the app's menus."""
        if self.shards is None:
            found = {int(s) for scene in self.scenes.values() for s in np.unique(scene.scales)}
        else:
            facts = self.shards.facts(*self.shard_spec(list(self.ready)))
            found = {s for _, sizes in facts.values() for s in sizes}
        return sorted(found)

    @torch.inference_mode()
    def encode_text(self, text: str) -> np.ndarray:
        """Query vector of a validated text query (the version's adapters applied)."""
        return self.towers.encode_query(self.model.tokenize([text]))[0]

    @torch.inference_mode()
    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Visual vector of one ``S x S x 3`` uint8 example."""
        from core.model.transforms import to_tensor_batch

        batch = to_tensor_batch([pixels], self.model.cfg.preprocess)
        return self.towers.image(batch)["visual"][0]
