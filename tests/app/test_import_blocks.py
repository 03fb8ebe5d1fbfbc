"""The import folder refuses a scene whose blocks decode to more than SCENESEEK_MAX_BLOCK_MB."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import AppError
from app.uploads import resolve_import
from tests.tiles.block_bomb import make_block_bomb
from tests.tiles.test_block_limits import two_strips


def test_a_one_tile_scene_is_refused_from_its_header(tmp_path: Path) -> None:
    make_block_bomb(tmp_path / "ortho.tif", 8192)  # 192 MB in one tile
    with pytest.raises(
        AppError, match=r"ortho.tif stores its pixels in blocks of 8,192"
    ) as excinfo:
        resolve_import(tmp_path, "ortho.tif")
    assert "gdal_translate -co TILED=YES" in str(excinfo.value)
    assert str(tmp_path) not in str(excinfo.value)  # named as the analyst typed it


def test_the_limit_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    two_strips(tmp_path / "strips.tif")  # strips of 6 MB
    assert resolve_import(tmp_path, "strips.tif") == (tmp_path / "strips.tif").resolve()
    monkeypatch.setenv("SCENESEEK_MAX_BLOCK_MB", "4")
    with pytest.raises(AppError, match=r"more than the limit of 4 MB \(setting SCENESEEK_MAX"):
        resolve_import(tmp_path, "strips.tif")
