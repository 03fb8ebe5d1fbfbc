"""Annoy indexes: projection to fewer dimensions, sidecar checks, older index files."""

import json

import numpy as np
import pytest

from core.errors import IndexMismatchError
from core.store.index import (
    TEXT_METRIC,
    VISUAL_METRIC,
    build_index,
    fit_projection,
    load_index,
    meta_path,
    projection_path,
)


def low_rank(n: int, dim: int = 64, rank: int = 12, seed: int = 0) -> np.ndarray:
    """Vectors spanning ``rank`` directions of a ``dim``-dimensional space, plus a little noise."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, dim))
    x = rng.standard_normal((n, rank)) @ basis + 0.01 * rng.standard_normal((n, dim))
    return x.astype(np.float32)


def test_projection_is_orthonormal_and_keeps_inner_products():
    x = low_rank(3000)
    p = fit_projection(x, 16)
    assert p.shape == (64, 16)
    np.testing.assert_allclose(p.T @ p, np.eye(16), atol=1e-5)
    q = low_rank(20, seed=1)
    full, reduced = x @ q.T, (x @ p) @ (q @ p).T
    assert np.abs(full - reduced).max() < 0.02 * np.abs(full).max()


def test_projected_index_finds_the_best_inner_products(tmp_path):
    x = low_rank(3000)
    path = tmp_path / "text.ann"
    meta = build_index(x, path, "m1", TEXT_METRIC, n_trees=8, index_dim=16)
    assert (meta.dim, meta.index_dim, meta.n_items) == (64, 16, 3000)
    assert np.load(projection_path(path)).shape == (64, 16)
    index = load_index(path, 64, "m1", TEXT_METRIC)
    queries = low_rank(30, seed=2)
    recall = []
    for q in queries:
        candidates = index.nearest(q, 100, search_k=5000)
        best = set(np.argsort(-(x @ q))[:10].tolist())
        recall.append(len(best & set(candidates.tolist())) / 10)
    assert np.mean(recall) >= 0.95


def test_full_dimension_index_has_no_projection(tmp_path):
    x = low_rank(500)
    path = tmp_path / "visual.ann"
    build_index(x, path, "m1", VISUAL_METRIC, n_trees=4)
    assert not projection_path(path).exists()
    index = load_index(path, 64, "m1", VISUAL_METRIC)
    assert index.projection is None
    assert index.nearest(x[7], 1, search_k=2000)[0] == 7


def test_rebuilding_without_projection_removes_the_old_one(tmp_path):
    x = low_rank(500)
    path = tmp_path / "text.ann"
    build_index(x, path, "m1", TEXT_METRIC, n_trees=4, index_dim=16)
    build_index(x, path, "m1", TEXT_METRIC, n_trees=4)
    assert not projection_path(path).exists()
    assert load_index(path, 64, "m1", TEXT_METRIC).projection is None


def test_index_written_before_projections_still_loads(tmp_path):
    x = low_rank(500)
    path = tmp_path / "text.ann"
    build_index(x, path, "m1", TEXT_METRIC, n_trees=4)
    sidecar = json.loads(meta_path(path).read_text())
    del sidecar["index_dim"]  # the sidecar format of the first release
    meta_path(path).write_text(json.dumps(sidecar))
    index = load_index(path, 64, "m1", TEXT_METRIC)
    assert index.projection is None
    assert len(index.nearest(x[0], 5, search_k=500)) == 5


def test_mismatched_projection_or_model_is_refused(tmp_path):
    x = low_rank(500)
    path = tmp_path / "text.ann"
    build_index(x, path, "m1", TEXT_METRIC, n_trees=4, index_dim=16)
    with pytest.raises(IndexMismatchError, match="active model is m2"):
        load_index(path, 64, "m2", TEXT_METRIC)
    with pytest.raises(IndexMismatchError, match="expected dot/32"):
        load_index(path, 32, "m1", TEXT_METRIC)
    np.save(projection_path(path), np.zeros((64, 8), np.float32))
    with pytest.raises(IndexMismatchError, match="does not match"):
        load_index(path, 64, "m1", TEXT_METRIC)
