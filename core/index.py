"""Annoy indexes built from a scene's stored vectors, with their identity checked on load.

Annoy cannot add items after a build and segfaults when loaded with the wrong metric or
dimension, so every index gets a sidecar JSON (metric, dimension, trees, item count, model
version) that ``load_index`` checks first. Indexes are written to a temp file and renamed,
never overwritten in place while another process may have them memory-mapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from core.errors import IndexMismatchError
from core.workspace import read_json, write_json
from tiles.atomic import atomic_path

VISUAL_METRIC = "angular"
TEXT_METRIC = "dot"
DEFAULT_TREES = 32


@dataclass(frozen=True)
class IndexMeta:
    """What an index file was built from."""

    metric: str
    dim: int
    n_items: int
    n_trees: int
    model: str

    def to_dict(self) -> dict[str, object]:
        """JSON form of the sidecar."""
        return self.__dict__.copy()


def meta_path(index_path: Path) -> Path:
    """Sidecar JSON beside an index file."""
    return index_path.with_suffix(".json")


def soft_index_vectors(visual: np.ndarray, gate: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Vectors whose inner product with a caption ranks tiles like the exact soft score.

    The exact score is ``(v*g).t / (|v| sqrt((g*g).(t*t)))``; replacing the query-dependent
    ``t*t`` in the denominator by ``energy`` (its mean over typical captions) leaves a dot
    product, so an inner-product index proposes candidates that exact scoring re-ranks.
    """
    v = np.asarray(visual, dtype=np.float32)
    g = np.asarray(gate, dtype=np.float32)
    denominator = np.linalg.norm(v, axis=1) * np.sqrt(np.clip((g * g) @ energy, 1e-12, None))
    return (v * g) / denominator[:, None]


def build_index(
    vectors: np.ndarray, path: Path, model: str, metric: str, n_trees: int = DEFAULT_TREES
) -> IndexMeta:
    """Build an index over ``vectors`` (item ``i`` is row ``i``) and save it atomically."""
    dim = int(vectors.shape[1])
    index = AnnoyIndex(dim, metric)
    index.set_seed(0)
    for i, row in enumerate(np.asarray(vectors, dtype=np.float32)):
        index.add_item(i, row)
    index.build(n_trees, n_jobs=1)
    with atomic_path(path) as tmp:
        index.save(tmp)
    index.unload()
    meta = IndexMeta(metric, dim, len(vectors), n_trees, model)
    write_json(meta_path(path), meta.to_dict())
    return meta


def load_index(path: Path, dim: int, model: str, metric: str) -> AnnoyIndex:
    """Memory-map an index after checking it matches the expected dimension and model.

    Raises:
        IndexMismatchError: when the sidecar is missing or names another metric, dimension
            or model version.
    """
    sidecar = meta_path(path)
    if not sidecar.exists() or not path.exists():
        raise IndexMismatchError(f"index {path} or its sidecar is missing; re-ingest the scene")
    meta = IndexMeta(**read_json(sidecar))
    if meta.metric != metric or meta.dim != dim:
        raise IndexMismatchError(
            f"{path} is a {meta.metric}/{meta.dim}-d index; expected {metric}/{dim}"
        )
    if meta.model != model:
        raise IndexMismatchError(
            f"{path} was built by model {meta.model}, but the active model is {model}; "
            "re-embed the scene (python -m core ingest ... or Re-index in the app)"
        )
    index = AnnoyIndex(dim, metric)
    index.load(str(path))
    return index
