"""Annoy indexes built from a scene's stored vectors, with their identity checked on load.

Annoy cannot add items after a build and segfaults when loaded with the wrong metric or
dimension, so every index gets a sidecar JSON (metric, dimension, trees, item count, model
version) that ``load_index`` checks first. Indexes are written to a temp file and renamed,
never overwritten in place while another process may have them memory-mapped.

Annoy's random-hyperplane trees lose recall as the dimension grows, so an index can store its
vectors projected onto a smaller orthonormal basis (``fit_projection``, saved beside it);
``VectorIndex.nearest`` projects each query the same way. Exact scoring of the candidates
then restores the full-dimension ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from core.errors import IndexMismatchError
from core.store.workspace import read_json, write_json
from tiles.atomic import atomic_path

VISUAL_METRIC = "angular"
TEXT_METRIC = "dot"
DEFAULT_TREES = 16  # recall@10 as good as 32 trees at 100k-250k tiles (docs/BENCHMARKS.md)
INDEX_DIM = 128  # stored dimension of both scene indexes (docs/BENCHMARKS.md)
PROJECTION_SAMPLE = 50_000


@dataclass(frozen=True)
class IndexMeta:
    """What an index file was built from."""

    metric: str
    dim: int
    n_items: int
    n_trees: int
    model: str
    index_dim: int | None = None  # of the stored vectors, when a projection reduces ``dim``

    def to_dict(self) -> dict[str, object]:
        """JSON form of the sidecar."""
        return self.__dict__.copy()


def meta_path(index_path: Path) -> Path:
    """Sidecar JSON beside an index file."""
    return index_path.with_suffix(".json")


def projection_path(index_path: Path) -> Path:
    """Projection matrix beside an index file that stores reduced vectors."""
    return index_path.with_suffix(".projection.npy")


@dataclass
class VectorIndex:
    """A memory-mapped annoy index, queried with full-size vectors."""

    ann: AnnoyIndex
    projection: np.ndarray | None = None

    def nearest(self, vector: np.ndarray, n: int, search_k: int) -> np.ndarray:
        """Ids of (about) the ``n`` items nearest ``vector``, best first."""
        query = np.asarray(vector, dtype=np.float32)
        if self.projection is not None:
            query = query @ self.projection
        return np.asarray(self.ann.get_nns_by_vector(query, n, search_k=search_k), dtype=np.int64)


def fit_projection(
    vectors: np.ndarray, dim: int, sample: int = PROJECTION_SAMPLE, seed: int = 0
) -> np.ndarray:
    """Orthonormal ``[d, dim]`` basis that keeps the most of every inner product ``x . q``.

    The top eigenvectors of the uncentred second moment ``E[x x^T]`` (over at most ``sample``
    rows): projecting both sides onto them loses the least of ``x . q`` for typical ``x``.
    """
    rows = np.asarray(vectors, dtype=np.float32)
    if len(rows) > sample:
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), sample, replace=False))
        rows = rows[pick]
    moment = (rows.T @ rows) / max(len(rows), 1)
    _, eigenvectors = np.linalg.eigh(moment.astype(np.float64))
    return np.ascontiguousarray(eigenvectors[:, ::-1][:, :dim], dtype=np.float32)


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
    vectors: np.ndarray,
    path: Path,
    model: str,
    metric: str,
    n_trees: int = DEFAULT_TREES,
    index_dim: int | None = None,
) -> IndexMeta:
    """Build an index over ``vectors`` (item ``i`` is row ``i``) and save it atomically.

    With ``index_dim`` below the vectors' dimension, the index stores them projected onto
    ``fit_projection``'s basis, saved beside it.
    """
    dim = int(vectors.shape[1])
    stored = np.asarray(vectors, dtype=np.float32)
    projection_file = projection_path(path)
    if index_dim is not None and index_dim < dim:
        projection = fit_projection(stored, index_dim)
        with atomic_path(projection_file) as tmp, open(tmp, "wb") as f:
            np.save(f, projection)
        stored = stored @ projection
    else:
        projection_file.unlink(missing_ok=True)
    index = AnnoyIndex(int(stored.shape[1]), metric)
    index.set_seed(0)
    for i, row in enumerate(stored):
        index.add_item(i, row)
    index.build(n_trees, n_jobs=1)
    with atomic_path(path) as tmp:
        index.save(tmp)
    index.unload()
    meta = IndexMeta(metric, dim, len(vectors), n_trees, model, int(stored.shape[1]))
    write_json(meta_path(path), meta.to_dict())
    return meta


def load_index(path: Path, dim: int, model: str, metric: str) -> VectorIndex:
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
    projection = None
    if meta.index_dim is not None and meta.index_dim != dim:
        projection = np.load(projection_path(path))
        if projection.shape != (dim, meta.index_dim):
            raise IndexMismatchError(
                f"{projection_path(path)} does not match {path}; re-ingest the scene"
            )
    index = AnnoyIndex(meta.index_dim or dim, metric)
    index.load(str(path))
    return VectorIndex(index, projection)


def rekey_index(path: Path, model: str) -> None:
    """Record another identity in an index's sidecar, for vectors it would build identically.

    The visual index depends only on the image tower: a model version that shares it takes
    the index over by renaming it here, without a rebuild.
    """
    sidecar = meta_path(path)
    meta = read_json(sidecar)
    if meta.get("model") != model:
        write_json(sidecar, {**meta, "model": model})
