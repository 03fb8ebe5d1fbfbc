"""A scene file in the import folder replaced after its ingest: re-index and thumbnails check it."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from streamlit.testing.v1 import AppTest

import tiles
from app import images
from core.ingest.jobs import reindex_job
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_SCENE, SMALL_TILING, open_page
from tests.tiles.test_reopen import recording_server, vrt_over

pytestmark = pytest.mark.slow  # one ingest for the module, one more to re-index

NAME = "ortho"
finetune_page = partial(open_page, "views/finetune.py", 120)


def captions(at: AppTest) -> str:
    return re.sub(r"\\(.)", r"\1", "\n".join(str(c.value) for c in at.caption))


def no_progress(stage: str, done: int, total: int, rate: float) -> None:
    """Re-index jobs report progress; these tests read outcomes."""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Path:
    """``ws/`` holding ``import/ortho.tif`` ingested, kept under ``pristine/`` for each test."""
    from core.ingest.embed.mapper import TileEmbedder
    from core.ingest.pipeline import IngestOptions, ingest
    from core.model.loading import load_model
    from core.model.versions import ModelRegistry

    root = tmp_path_factory.mktemp("replaced")
    (root / "import").mkdir()
    (root / "private").mkdir()
    shutil.copy2(SMALL_SCENE, root / "import" / "ortho.tif")
    shutil.copy2(SMALL_SCENE, root / "private" / "secret.tif")
    ws = Workspace(root / "pristine" / "ws")
    ModelRegistry(ws, checkpoint).active()
    loaded = load_model(ws)
    options = IngestOptions(tiling=tiles.TilingConfig(**SMALL_TILING), workers=0)
    embedder = TileEmbedder(loaded.model, loaded.device)
    ingest(root / "import" / "ortho.tif", ws, embedder, loaded.tag, NAME, options)
    shutil.copy2(root / "import" / "ortho.tif", root / "pristine" / "ortho.tif")
    return root


@pytest.fixture
def story(pristine: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """The ingested workspace and its import folder as the ingest left them."""
    shutil.rmtree(pristine / "ws", ignore_errors=True)
    shutil.copytree(pristine / "pristine" / "ws", pristine / "ws")
    shutil.copy2(pristine / "pristine" / "ortho.tif", pristine / "import" / "ortho.tif")
    monkeypatch.setenv("SCENESEEK_WORKSPACE", str(pristine / "ws"))
    monkeypatch.setenv("SCENESEEK_IMPORT_DIR", str(pristine / "import"))
    monkeypatch.setenv("SCENESEEK_MODEL", str(checkpoint))
    yield Workspace(pristine / "ws")


def rewrite_in_place(path: Path) -> None:
    """Another valid GeoTIFF at the same path, with the same size and modification time."""
    stat = path.stat()
    with rasterio.open(path, "r+") as ds:
        ds.write(np.full((4, 8, ds.width), 255, np.uint8), window=Window(0, 0, ds.width, 8))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size


def test_reindex_refuses_a_vrt_swapped_in_and_reads_nothing_outside(story: Workspace) -> None:
    ortho = Path(story.scene(NAME).read_manifest().source or "")
    before = story.scene(NAME).read_manifest().to_dict()
    assert before["source_stamp"] == tiles.file_stamp(ortho)
    with recording_server() as (url, seen):
        vrt_over(ortho, ["../private/secret.tif", f"/vsicurl/{url}/secret.tif"])
        with pytest.raises(tiles.NotGeoTiffError, match="not a TIFF or BigTIFF") as excinfo:
            reindex_job(story, {"name": NAME}, no_progress)
        assert str(ortho) in str(excinfo.value)
        assert seen == []
    assert story.scene(NAME).read_manifest().to_dict() == before  # the scene is kept as it was
    assert (story.scene(NAME).embeddings / "visual.npy").is_file()


def test_a_thumbnail_of_a_replaced_file_says_source_changed(story: Workspace) -> None:
    at = finetune_page()
    assert len(at.image) == 1 and "source" not in captions(at)  # tile 0 of the ingested file
    rewrite_in_place(Path(story.scene(NAME).read_manifest().source or ""))
    at = finetune_page()
    assert len(at.image) == 0
    assert "source changed; re-index" in captions(at)


def test_reindex_of_a_replaced_geotiff_records_it_and_thumbnails_come_back(
    story: Workspace,
) -> None:
    manifest = story.scene(NAME).read_manifest()
    ortho = Path(manifest.source or "")
    rewrite_in_place(ortho)
    window = (0, 0, 64, 64)
    assert images.thumbnail(manifest, window) is None
    result = reindex_job(story, {"name": NAME}, no_progress)
    assert not result["skipped"]  # same size and time, other bytes: embedded again
    manifest = story.scene(NAME).read_manifest()
    assert manifest.ready and manifest.source_stamp == tiles.file_stamp(ortho)
    assert images.thumbnail(manifest, window) is not None
    at = finetune_page()
    assert len(at.image) == 1 and "source" not in captions(at)
