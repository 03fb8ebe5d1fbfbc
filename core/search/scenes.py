"""Scenes loaded for search: vectors, gates, indexes and catalogs, and the query encoders."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import torch

from core.device import limit_blas_threads
from core.errors import IndexMismatchError, SceneNotFoundError
from core.model.amfmn import AMFMN
from core.model.inference import Towers, torch_towers
from core.store.index import TEXT_METRIC, VISUAL_METRIC, VectorIndex, load_index
from core.store.manifest import SceneManifest
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS, read_catalog

EXACT_CHUNK = 65536  # rows scored at once, so a 1M-tile scene never needs a full float32 copy


@dataclass
class SceneIndex:
    """One ready scene: catalog, vectors and indexes, loaded read-only."""

    name: str
    catalog: gpd.GeoDataFrame
    visual: np.ndarray
    gate: np.ndarray | None
    visual_ann: VectorIndex
    text_ann: VectorIndex | None
    manifest: SceneManifest
    windows: np.ndarray = field(init=False)
    scales: np.ndarray = field(init=False)
    norms: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.windows = self.catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
        self.scales = self.catalog["scale"].to_numpy(np.int64)
        self.norms = np.concatenate(
            [
                np.linalg.norm(
                    np.asarray(self.visual[i : i + EXACT_CHUNK], dtype=np.float32), axis=1
                )
                for i in range(0, len(self.visual), EXACT_CHUNK)
            ]
            or [np.empty(0, dtype=np.float32)]
        )

    def __len__(self) -> int:
        return len(self.visual)


def load_scene(workspace: Workspace, name: str, dim: int, model_tag: str) -> SceneIndex:
    """Load a ready scene, refusing one embedded by another model version.

    The visual index is keyed by the image tower that made it (by the model version in
    manifests from before that record), the text index by the whole model version.

    Raises:
        SceneNotFoundError: when it is missing or not ready.
        IndexMismatchError: when it was embedded by another model version.
    """
    scene = workspace.existing_scene(name)
    manifest = scene.read_manifest()
    if manifest.outdated_tiling:
        raise IndexMismatchError(
            f"scene {name!r} was tiled by an older SceneSeek whose edge tiles ran past the "
            f"raster; re-ingest needed: python -m core ingest {manifest.source or 'SCENE.tif'} "
            f"--name {name} --workspace {workspace.root}"
        )
    if manifest.model != model_tag:
        source = manifest.source or "SCENE.tif"
        raise IndexMismatchError(
            f"scene {name!r} was embedded by model {manifest.model}, the active model is "
            f"{model_tag}; re-embed it: python -m core ingest {source} --name {name} "
            f"--workspace {workspace.root}"
        )
    visual = np.load(scene.embeddings / "visual.npy", mmap_mode="r")
    gate_path = scene.embeddings / "gate.npy"
    gate = np.load(gate_path, mmap_mode="r") if gate_path.exists() else None
    text_ann = (
        load_index(scene.text_index, dim, model_tag, TEXT_METRIC) if gate is not None else None
    )
    return SceneIndex(
        name=name,
        catalog=read_catalog(scene.catalog),
        visual=visual,
        gate=gate,
        visual_ann=load_index(
            scene.visual_index, dim, manifest.image_tower or model_tag, VISUAL_METRIC
        ),
        text_ann=text_ann,
        manifest=manifest,
    )


@dataclass
class SearchResources:
    """Everything a query needs, loaded once and reused."""

    model: AMFMN
    model_tag: str
    workspace: Workspace
    device: torch.device
    scenes: dict[str, SceneIndex] = field(default_factory=dict)
    stale: dict[str, str] = field(default_factory=dict)
    towers: Towers = field(kw_only=True)  # what encodes queries (ONNX Runtime or torch)

    @classmethod
    def load(
        cls,
        workspace: Workspace,
        model: AMFMN,
        model_tag: str,
        device: torch.device,
        towers: Towers | None = None,
    ) -> SearchResources:
        """Load the model's resources and every ready scene; ``towers`` default to torch."""
        limit_blas_threads()
        model = model.to(device).eval()
        towers = towers or torch_towers(model, device)
        resources = cls(model, model_tag, workspace, device, towers=towers)
        resources.refresh()
        return resources

    def refresh(self) -> None:
        """Pick up scenes ingested, re-indexed or deleted since the last load."""
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
                    self.workspace, name, self.model.cfg.embed_dim, self.model_tag
                )
            except IndexMismatchError as exc:
                self.scenes.pop(name, None)
                self.stale[name] = str(exc)

    def select(self, names: list[str] | None) -> list[SceneIndex]:
        """Scenes to search (all when ``names`` is empty).

        Raises:
            SceneNotFoundError: for a name that is not a ready scene.
            IndexMismatchError: for a scene embedded by another model version.
        """
        if not names:
            if not self.scenes:
                raise SceneNotFoundError(
                    f"no ingested scenes in {self.workspace.root}; ingest one first"
                    + (
                        f" ({len(self.stale)} need re-embedding with the active model)"
                        if self.stale
                        else ""
                    )
                )
            return list(self.scenes.values())
        chosen = []
        for name in names:
            if name in self.stale:
                raise IndexMismatchError(self.stale[name])
            if name not in self.scenes:
                known = ", ".join(sorted(self.scenes)) or "none"
                raise SceneNotFoundError(f"no ingested scene {name!r} (ready: {known})")
            chosen.append(self.scenes[name])
        return chosen

    @torch.inference_mode()
    def encode_text(self, text: str) -> np.ndarray:
        """Caption vector of a validated query."""
        return self.towers.text(self.model.tokenize([text]))[0]

    @torch.inference_mode()
    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Visual vector of one ``S x S x 3`` uint8 example."""
        from core.model.transforms import to_tensor_batch

        batch = to_tensor_batch([pixels], self.model.cfg.preprocess)
        return self.towers.image(batch)["visual"][0]
