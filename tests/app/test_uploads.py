"""app/uploads.py: size, header and raster checks before anything enters the workspace."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.errors import AppError
from app.uploads import import_candidates, resolve_import, save_upload, uploads_dir
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_SCENE


class FakeUpload(io.BytesIO):
    """What st.file_uploader hands the app: a BytesIO with a name and a size."""

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__(data)
        self.name = name
        self.size = len(data)


def temp_uploads(tmp: Path) -> list[Path]:
    return list(tmp.glob("sceneseek-upload-*"))


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where upload temp files go, watched to prove they are deleted."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def test_valid_upload_is_kept_in_the_workspace(tmp_path: Path, tmp: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    path = save_upload(FakeUpload("scene.tif", SMALL_SCENE.read_bytes()), ws, "scene", 10)
    assert path == uploads_dir(ws) / "scene.tif"
    assert path.read_bytes() == SMALL_SCENE.read_bytes()
    assert temp_uploads(tmp) == []


@pytest.mark.parametrize(
    ("name", "data", "limit", "message"),
    [
        ("big.tif", b"II*\x00" + bytes(2 * 2**20), 1, "limited to 1 MB"),
        ("notes.txt", b"hello", 10, "expected a .tif or .tiff"),
        ("photo.tif", b"\x89PNG\r\n\x1a\n", 10, "does not start with a TIFF header"),
        (
            "broken.tif",
            b"II*\x00" + bytes(100),
            10,
            "broken.tif starts like a TIFF but cannot be opened",
        ),
    ],
)
def test_invalid_upload_writes_nothing(
    tmp_path: Path, tmp: Path, name: str, data: bytes, limit: int, message: str
) -> None:
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(AppError, match=message):
        save_upload(FakeUpload(name, data), ws, "scene", limit)
    assert not ws.root.exists()
    assert temp_uploads(tmp) == []


def test_truncated_geotiff_names_the_uploaded_file(tmp_path: Path, tmp: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    data = SMALL_SCENE.read_bytes()[:5000]
    with pytest.raises(AppError, match="cut.tif") as error:
        save_upload(FakeUpload("cut.tif", data), ws, "scene", 10)
    assert str(tmp) not in str(error.value)
    assert not ws.root.exists() and temp_uploads(tmp) == []


def test_import_folder_lists_geotiffs_only(tmp_path: Path) -> None:
    folder = tmp_path / "import"
    (folder / "city").mkdir(parents=True)
    (folder / "a.tif").write_bytes(b"x")
    (folder / "city" / "b.TIFF").write_bytes(b"x")
    (folder / "notes.txt").write_bytes(b"x")
    (folder / ".hidden.tif").write_bytes(b"x")
    assert import_candidates(folder) == ["a.tif", "city/b.TIFF"]
    assert import_candidates(tmp_path / "missing") == []


def test_import_path_must_stay_inside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "scene.tif").symlink_to(SMALL_SCENE)  # a link out of the folder
    (folder / "inside.tif").write_bytes(SMALL_SCENE.read_bytes())
    for outside in ("../elsewhere.tif", str(SMALL_SCENE), "/etc/passwd", "scene.tif"):
        with pytest.raises(AppError, match="outside the import folder"):
            resolve_import(folder, outside)
    assert resolve_import(folder, "inside.tif") == (folder / "inside.tif").resolve()
    assert resolve_import(folder, str(folder / "inside.tif")) == (folder / "inside.tif").resolve()


def test_import_path_is_validated(tmp_path: Path) -> None:
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "bad.tif").write_bytes(b"II*\x00junk")
    with pytest.raises(AppError, match="not a file"):
        resolve_import(folder, "missing.tif")
    with pytest.raises(AppError, match="bad.tif starts like a TIFF but cannot be opened"):
        resolve_import(folder, "bad.tif")


def test_import_refuses_a_vrt_named_tif(tmp_path: Path) -> None:
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "remote.tif").write_text(
        '<VRTDataset rasterXSize="1" rasterYSize="1"><VRTRasterBand band="1">'
        "<SimpleSource><SourceFilename>/vsicurl/http://10.0.0.1/x.tif</SourceFilename>"
        "</SimpleSource></VRTRasterBand></VRTDataset>"
    )
    with pytest.raises(AppError, match="remote.tif is not a GeoTIFF"):
        resolve_import(folder, "remote.tif")


def test_import_refuses_a_header_that_declares_a_million_pixels_a_side(tmp_path: Path) -> None:
    from tests.tiles.sparse_scene import make_sparse_scene

    folder = tmp_path / "import"
    folder.mkdir()
    make_sparse_scene(folder / "bomb.tif", 1_000_000)
    with pytest.raises(AppError, match="SCENESEEK_MAX_PIXELS"):
        resolve_import(folder, "bomb.tif")
