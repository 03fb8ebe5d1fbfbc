"""Turn any georeferenced scene into model-ready tiles and map-ready footprints.

Typical use::

    catalog = tiles.build_catalog("scene.tif")          # GeoDataFrame of tiles
    tiles.write_catalog(catalog, "scene.tiles.parquet")
    reader = tiles.TileReader.from_catalog(catalog)     # picklable, for DataLoaders
    batch = reader.read_batch(catalog.itertuples())     # (n, 256, 256, 3) uint8

Nothing here imports torch.
"""

from tiles.bands import Stretch, estimate_stretch, select_rgb_bands, to_uint8
from tiles.catalog import (
    CATALOG_KEY,
    TilingConfig,
    build_catalog,
    read_catalog,
    scene_footprints,
    write_catalog,
)
from tiles.errors import (
    AlphaBandIgnoredWarning,
    BandSelectionError,
    CatalogError,
    NIRBandDroppedWarning,
    NotGeoreferencedError,
    SceneOpenError,
    SceneReadError,
    TilesError,
    TilingError,
)
from tiles.quicklook import quicklook, tile_thumbnail, write_quicklook_png
from tiles.reader import TileReader
from tiles.scene import SceneInfo, describe, open_scene

__all__ = [
    "CATALOG_KEY",
    "AlphaBandIgnoredWarning",
    "BandSelectionError",
    "CatalogError",
    "NIRBandDroppedWarning",
    "NotGeoreferencedError",
    "SceneInfo",
    "SceneOpenError",
    "SceneReadError",
    "Stretch",
    "TileReader",
    "TilesError",
    "TilingConfig",
    "TilingError",
    "build_catalog",
    "describe",
    "estimate_stretch",
    "open_scene",
    "quicklook",
    "read_catalog",
    "scene_footprints",
    "select_rgb_bands",
    "tile_thumbnail",
    "to_uint8",
    "write_catalog",
    "write_quicklook_png",
]
