"""Bring a scene to another model version without re-embedding, when the image tower is shared.

A scene's ``visual.npy`` and visual index depend only on the image tower (the modules before
the stored vector, ``checkpoint.image_tower_digest``); its gates and text index depend on the
gate and the text tower too (``checkpoint.scene_digest``: everything but the query adapters).
A version that changed only adapters (what fine-tuning changes by default) shares all of
them and needs nothing; one that changed the text tower or gate (``--recipe tower``) is taken
in by recomputing the gates from the stored vectors and rebuilding the text index: seconds at
100k tiles, where re-embedding takes hours.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from core.errors import CheckpointError
from core.model.amfmn import AMFMN
from core.model.checkpoint import checkpoint_image_tower, checkpoint_scene_key, scene_fingerprint
from core.model.inference import caption_energy
from core.model.versions import ModelRegistry
from core.store.index import (
    INDEX_DIM,
    TEXT_METRIC,
    build_index,
    meta_path,
    rekey_index,
    soft_index_vectors,
)
from core.store.manifest import SceneManifest
from core.store.workspace import SceneDir, Workspace
from tiles.atomic import atomic_path

GATE_CHUNK = 65536  # rows gated at once, so memory stays bounded on any scene size
Stage = Callable[[str, int, int, float], None]


def _from_registry(
    workspace: Workspace, manifest: SceneManifest, digest: Callable[[str], str]
) -> str | None:
    """``digest`` of the registered checkpoint whose tag the manifest names, if any."""
    registry = ModelRegistry(workspace)
    if not manifest.model or not registry.path.exists():
        return None
    for version in registry.versions():
        if version.tag == manifest.model:
            try:
                return digest(version.path)
            except (CheckpointError, OSError):
                return None
    return None


def recorded_image_tower(workspace: Workspace, manifest: SceneManifest) -> str | None:
    """The image tower that made a scene's vectors, or None when it cannot be known.

    Manifests from before the record name only the model version; its image tower is read
    from the registered checkpoint with that tag.
    """
    return manifest.image_tower or _from_registry(workspace, manifest, checkpoint_image_tower)


def recorded_scene_key(workspace: Workspace, manifest: SceneManifest) -> str | None:
    """What a scene's gates and text index were made by (``scene_digest``), if known.

    Manifests from before the record name only the model version; its key is read from the
    registered checkpoint with that tag.
    """
    return manifest.scene_key or _from_registry(workspace, manifest, checkpoint_scene_key)


def can_refresh(workspace: Workspace, scene: SceneDir, image_tower: str) -> bool:
    """True when a ready scene's stored vectors were made by ``image_tower``."""
    manifest = scene.read_manifest()
    return (
        manifest.ready
        and (scene.embeddings / "visual.npy").is_file()
        and meta_path(scene.visual_index).is_file()
        and recorded_image_tower(workspace, manifest) == image_tower
    )


def adopt_scene(scene: SceneDir, model_tag: str, scene_key: str) -> None:
    """Name another version in a scene whose files it shares (same ``scene_key``).

    Nothing is recomputed: only the manifest (and a text index sidecar keyed by the model
    tag, from before scene keys) changes; ``finished`` stays, so searches keep what they hold.
    """
    manifest = scene.read_manifest()
    if manifest.model == model_tag and manifest.scene_key == scene_key:
        return
    if meta_path(scene.text_index).is_file():
        rekey_index(scene.text_index, scene_key)
    manifest.model, manifest.scene_key = model_tag, scene_key
    manifest.fingerprint = {**manifest.fingerprint, "model": model_tag}
    manifest.save(scene.manifest)


@torch.inference_mode()
def stored_gates(model: AMFMN, visual: np.ndarray) -> np.ndarray:
    """Float16 soft-attention gates of stored visual vectors, in bounded chunks."""
    device = next(model.attention.parameters()).device
    gates = np.empty(visual.shape, dtype=np.float16)
    for start in range(0, len(visual), GATE_CHUNK):
        rows = torch.from_numpy(np.asarray(visual[start : start + GATE_CHUNK], dtype=np.float32))
        out = model.image_gates(rows.to(device))
        if out is None:
            raise ValueError("the model's attention keeps no per-tile gates")
        gates[start : start + GATE_CHUNK] = out.float().cpu().numpy()
    return gates


def refresh_scene(
    scene: SceneDir,
    model: AMFMN,
    model_tag: str,
    image_tower: str,
    progress: Stage | None = None,
) -> float:
    """Recompute a scene's gates and text index for ``model`` from its stored vectors.

    ``visual.npy`` and the visual index stay as they are (the index's sidecar is re-keyed to
    the image tower); the text index is keyed by the model's ``scene_fingerprint``; the
    manifest is written last. Returns the seconds it took.
    """
    started = time.time()
    scene_key = scene_fingerprint(model)
    manifest = scene.read_manifest()
    visual = np.load(scene.embeddings / "visual.npy", mmap_mode="r")
    if progress:
        progress("gates", 0, 2, 0.0)
    if model.has_gates:
        gates = stored_gates(model, visual)
        with atomic_path(scene.embeddings / "gate.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, gates)
        if progress:
            progress("text index", 1, 2, 0.0)
        vectors = soft_index_vectors(visual, gates, caption_energy(model))
        build_index(vectors, scene.text_index, scene_key, TEXT_METRIC, index_dim=INDEX_DIM)
    rekey_index(scene.visual_index, image_tower)
    manifest.model, manifest.image_tower, manifest.scene_key = model_tag, image_tower, scene_key
    manifest.fingerprint = {**manifest.fingerprint, "model": model_tag}
    manifest.finished = time.time()
    manifest.save(scene.manifest)
    if progress:
        progress("done", 2, 2, 0.0)
    return time.time() - started
