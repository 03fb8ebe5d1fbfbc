"""Shared feature maps: block planning, agreement with per-tile vectors, ingest option."""

import numpy as np
import pytest
import torch

from core.errors import ConfigError
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.shared import BLOCK_PX, MAX_STRIDE, SharedFeatureEmbedder, SharedParts
from core.ingest.pipeline import IngestOptions, ingest
from core.model.checkpoint import load_checkpoint
from core.model.versions import model_tag
from core.search.ranking import Filters, search_text
from core.search.scenes import SearchResources
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS, TileReader, TilingConfig, build_catalog
from tiles.blocks import on_grid, plan_blocks
from tiles.grid import tile_windows

BERKELEY = "berkeley_z17_webmercator_naip.tif"


def catalog_windows(width: int, height: int, sizes=(256, 512, 1024)) -> np.ndarray:
    return np.concatenate([tile_windows(width, height, s, s // 2) for s in sizes])


def test_every_tile_lands_in_one_block_on_whole_feature_cells():
    windows = catalog_windows(5000, 3000)
    blocks = plan_blocks(windows, 256, BLOCK_PX, MAX_STRIDE)
    members = np.concatenate([b.members for b in blocks])
    assert sorted(members.tolist()) == list(range(len(windows)))
    singles = [b for b in blocks if not on_grid(windows[b.members], 256, MAX_STRIDE).all()]
    assert singles and all(len(b.members) == 1 and b.out_shape == (256, 256) for b in singles)
    for b in singles:
        assert b.window == tuple(windows[b.members[0]]) and not b.offsets.any()
    assert sum(len(b.members) for b in singles) < len(windows) / 4  # most tiles share
    for b in blocks:
        if b in singles:
            continue
        col, row, width, height = b.window
        scale = 256 / windows[b.members[0], 2]
        assert set(windows[b.members, 2]) == {windows[b.members[0], 2]}  # one scale per block
        assert b.out_shape == (round(height * scale), round(width * scale))
        assert np.all(b.offsets % MAX_STRIDE == 0)
        expected = (windows[b.members][:, [1, 0]] - [row, col]) * scale
        np.testing.assert_array_equal(b.offsets, expected)
        assert np.all(b.offsets + 256 <= b.out_shape)  # every tile inside its block


def test_tiles_off_the_feature_grid_get_a_block_of_their_own():
    windows = tile_windows(3000, 3000, 333, 166)
    blocks = plan_blocks(windows, 256, BLOCK_PX, MAX_STRIDE)
    assert len(blocks) == len(windows)
    assert all(b.out_shape == (256, 256) and not b.offsets.any() for b in blocks)


@pytest.fixture(scope="module")
def embedder(model_checkpoint):
    model, _ = load_checkpoint(model_checkpoint)
    return TileEmbedder(model, torch.device("cpu"))


@pytest.fixture(scope="module")
def berkeley(scenes_dir):
    catalog = build_catalog(scenes_dir / BERKELEY, TilingConfig())
    windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
    return TileReader.from_catalog(catalog), windows


def test_a_block_of_one_tile_gives_the_per_tile_vector(embedder, berkeley):
    reader, windows = berkeley
    window = tuple(windows[0])
    pixels, _ = reader.read_block(window, (256, 256))
    expected = embedder(torch.from_numpy(reader.read(window))[None])
    for stages in (1, 5):
        got = SharedFeatureEmbedder(embedder, stages)(
            torch.from_numpy(pixels), np.zeros((1, 2), int)
        )
        np.testing.assert_allclose(
            got["visual"].astype(np.float32), expected["visual"].astype(np.float32), atol=2e-3
        )


def test_one_shared_stage_stays_close_to_per_tile_vectors(embedder, berkeley):
    reader, windows = berkeley
    parts = SharedParts(reader, windows, embedder, shared_stages=1, workers=0)
    ((start, stop, arrays),) = parts.run([(0, len(windows))], lambda n: None)
    reference = embedder(torch.from_numpy(reader.read_batch([tuple(w) for w in windows])))
    a, b = reference["visual"].astype(np.float32), arrays["visual"].astype(np.float32)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert (start, stop) == (0, len(windows))
    assert cos.min() > 0.95 and cos.mean() > 0.98


def test_shared_stages_must_be_valid(embedder, berkeley):
    reader, windows = berkeley
    with pytest.raises(ConfigError, match="1..5"):
        SharedParts(reader, windows, embedder, shared_stages=7)


@pytest.mark.slow
def test_ingest_with_shared_stages_is_searchable_and_kept_apart(
    embedder, model_checkpoint, scenes_dir, tmp_path
):
    from core.model.checkpoint import file_sha256

    ws = Workspace(tmp_path / "ws")
    tag = model_tag(file_sha256(model_checkpoint))
    scene = scenes_dir / BERKELEY
    shared = IngestOptions(shared_stages=1, workers=0)
    first = ingest(scene, ws, embedder, tag, "b", shared)
    assert not first.skipped and ingest(scene, ws, embedder, tag, "b", shared).skipped
    manifest = ws.scene("b").read_manifest()
    assert manifest.fingerprint["shared_stages"] == 1
    shared_vectors = np.load(ws.scene("b").embeddings / "visual.npy")
    per_tile = ingest(scene, ws, embedder, tag, "b", IngestOptions(workers=0))
    assert not per_tile.skipped  # other vectors: re-embedded, not reused
    assert "shared_stages" not in ws.scene("b").read_manifest().fingerprint
    assert not np.array_equal(shared_vectors, np.load(ws.scene("b").embeddings / "visual.npy"))
    ingest(scene, ws, embedder, tag, "b", shared)
    resources = SearchResources.load(ws, embedder.model, tag, torch.device("cpu"))
    hits = search_text(resources, "houses and trees", Filters(k=5)).hits
    assert len(hits) == 5 and {h.scene for h in hits} == {"b"}
