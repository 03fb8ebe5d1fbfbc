"""Labelled scenes for measuring search and fine-tuning: GeoTIFF mosaics of dataset images.

Real scenes carry no ground truth, so precision or recall cannot be measured on them. Here
every 256 px cell is one dataset image whose label is known (a UC Merced land-use class, or
an RSICD test image and so its captions), placed on a UTM grid at 0.3 m; tiling it at 256 px
without overlap makes tile ``i`` exactly image ``i``. Mosaics are written to a temp folder
by tests and benchmarks, never committed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import IngestOptions, ingest
from core.learn.data.sources import load_dataset
from core.model.loading import load_model
from core.store.workspace import Workspace
from tiles import TilingConfig

CELL = 256
PIXEL_M = 0.3
CLASS_OF = re.compile(r"^(\d+)\.jpg$")
UCM_CLASSES = (
    "agricultural",
    "airplane",
    "baseball diamond",
    "beach",
    "buildings",
    "chaparral",
    "dense residential",
    "forest",
    "freeway",
    "golf course",
    "harbor",
    "intersection",
    "medium residential",
    "mobile home park",
    "overpass",
    "parking lot",
    "river",
    "runway",
    "sparse residential",
    "storage tanks",
    "tennis court",
)


@dataclass(frozen=True)
class Mosaic:
    """The mosaic file and the label of each cell (row-major): a UCM class or an image name."""

    path: Path
    classes: tuple[str, ...]
    columns: int


def ucm_class(file_name: str) -> str:
    """Land-use class of a UCM-captions image (files are numbered class * 100 + n + 1)."""
    match = CLASS_OF.match(Path(file_name).name)
    if not match:
        raise ValueError(f"not a UCM-captions image name: {file_name}")
    return UCM_CLASSES[(int(match.group(1)) - 1) // 100]


def ucm_images(
    splits: tuple[str, ...] = ("val", "test"),
    data_root: Path | None = None,
    classes: tuple[str, ...] | None = None,
) -> list[Path]:
    """The UCM images a mosaic holds, in cell order."""
    paths = [p for split in splits for p in load_dataset("ucm", split, data_root).image_paths]
    return [p for p in paths if classes is None or ucm_class(p.name) in classes]


def make_ucm_mosaic(
    path: Path,
    splits: tuple[str, ...] = ("val", "test"),
    columns: int = 21,
    data_root: Path | None = None,
    classes: tuple[str, ...] | None = None,
) -> Mosaic:
    """Write the images of the given UCM splits (unseen by training) as one GeoTIFF.

    ``classes`` keeps only images of those classes (a smaller scene of look-alikes).
    """
    paths = ucm_images(splits, data_root, classes)
    write_mosaic(path, paths, columns)
    return Mosaic(path, tuple(ucm_class(p.name) for p in paths), columns)


def write_mosaic(path: Path, paths: list[Path], columns: int) -> None:
    """Write ``paths`` as 256 px cells of one tiled GeoTIFF, row-major."""
    rows = -(-len(paths) // columns)
    profile = {
        "driver": "GTiff",
        "width": columns * CELL,
        "height": rows * CELL,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32610",
        "tiled": True,
        "blockxsize": CELL,
        "blockysize": CELL,
        "compress": "deflate",
        "transform": from_origin(560_000.0, 4_190_000.0, PIXEL_M, PIXEL_M),
    }
    with rasterio.open(path, "w", **profile) as dst:
        for i, image_path in enumerate(paths):
            with Image.open(image_path) as image:
                pixels = np.asarray(
                    image.convert("RGB").resize((CELL, CELL), Image.Resampling.BILINEAR)
                )
            window = rasterio.windows.Window(
                (i % columns) * CELL, (i // columns) * CELL, CELL, CELL
            )
            dst.write(np.moveaxis(pixels, -1, 0), window=window)


def ingest_cells(
    workspace: Workspace, path: Path, scene: str, checkpoint: str | None = None
) -> str:
    """Ingest a mosaic at 256 px without overlap, so tile ``i`` is cell ``i``; the model tag.

    ``checkpoint`` embeds with that file instead of the workspace's active version.
    """
    loaded = load_model(workspace, checkpoint, device="cpu")
    options = IngestOptions(
        tiling=TilingConfig(sizes=(CELL,), overlap=0.0, min_valid=0.5), workers=0
    )
    embedder = TileEmbedder(loaded.model, loaded.device, loaded.towers)
    ingest(path, workspace, embedder, loaded.tag, scene, options)
    return loaded.tag


def cell_of(mosaic: Mosaic, window: tuple[int, int, int, int]) -> int | None:
    """Index of the image a 256 px tile window covers exactly (None otherwise)."""
    col, row, width, height = window
    if width != CELL or height != CELL or col % CELL or row % CELL:
        return None
    index = (row // CELL) * mosaic.columns + col // CELL
    return index if index < len(mosaic.classes) else None
