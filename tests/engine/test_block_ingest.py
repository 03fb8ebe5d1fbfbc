"""Ingest by blocks of tiles: the vectors per-tile reads give, on a real shared scene."""

import numpy as np
import pytest
import torch

from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.reader import block_batches
from core.ingest.embed.runner import LocalParts, embed_tiles, reader_workers
from core.model.checkpoint import load_checkpoint
from tiles import WINDOW_FIELDS, TileReader, TilingConfig, build_catalog

SCENES = ["berkeley_z17_webmercator_naip.tif", "rasterio_RGB.byte.tif"]


@pytest.fixture(scope="module")
def embedder(model_checkpoint):
    model, _ = load_checkpoint(model_checkpoint)
    return TileEmbedder(model, torch.device("cpu"))


@pytest.mark.slow
@pytest.mark.parametrize("name", SCENES)
def test_block_vectors_match_per_tile_vectors(embedder, scenes_dir, tmp_path, name):
    catalog = build_catalog(scenes_dir / name, TilingConfig())
    windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
    reader = TileReader.from_catalog(catalog)
    tiles = torch.from_numpy(reader.read_batch([tuple(w) for w in windows]))
    expected = np.concatenate([embedder(b)["visual"] for b in tiles.split(8)]).astype(np.float32)
    # a 1 MB budget and parts of 24 tiles: many blocks, batches regrouped across blocks
    parts = LocalParts(reader, windows, embedder, batch_size=8, workers=1, reader_mb=1)
    assert len(reader.plan_blocks(windows, 1)) < len(windows)
    result = embed_tiles(parts, len(windows), tmp_path, part_size=24)
    got = np.load(result.files["visual"]).astype(np.float32)
    cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cos.min() >= 0.999, f"tiles {np.nonzero(cos < 0.999)[0]}"


def test_a_block_is_batched_in_near_equal_batches_of_at_most_the_batch_size():
    for n_tiles in (1, 31, 32, 33, 144):
        batches = block_batches(n_tiles, 32)
        sizes = [len(b) for b in batches]
        assert np.array_equal(np.concatenate(batches), np.arange(n_tiles))
        assert max(sizes) <= 32 and max(sizes) - min(sizes) <= 1


def test_reader_workers_follow_the_engine_unless_set(monkeypatch):
    monkeypatch.delenv("SCENESEEK_READER_WORKERS", raising=False)
    assert reader_workers("onnx") == 0 and reader_workers("torch") == 2
    monkeypatch.setenv("SCENESEEK_READER_WORKERS", "3")
    assert reader_workers("onnx") == reader_workers("torch") == 3
