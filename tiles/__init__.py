"""Turn any georeferenced scene into model-ready tiles and map-ready footprints.

Typical use::

    tiles.check_gtiff("upload.tif")                     # files from outside: GeoTIFF only
    catalog = tiles.build_catalog("scene.tif")          # GeoDataFrame of tiles, size-checked
    tiles.write_catalog(catalog, "scene.tiles.parquet")
    reader = tiles.TileReader.from_catalog(catalog)     # picklable, for DataLoaders
    batch = reader.read_batch(catalog.itertuples())     # (n, 256, 256, 3) uint8

Nothing here imports torch.
"""

_EXPORTS = {
    "AlignedTileReader": "tiles.aligned",
    "AlphaBandIgnoredWarning": "tiles.errors",
    "BandSelectionError": "tiles.errors",
    "CATALOG_KEY": "tiles.catalog",
    "CatalogError": "tiles.errors",
    "MAX_PIXELS": "tiles.limits",
    "MAX_TILES": "tiles.limits",
    "NIRBandDroppedWarning": "tiles.errors",
    "NotGeoTiffError": "tiles.errors",
    "NotGeoreferencedError": "tiles.errors",
    "PixelGrid": "tiles.aligned",
    "SceneInfo": "tiles.scene",
    "SceneOpenError": "tiles.errors",
    "SceneReadError": "tiles.errors",
    "SceneTooLargeError": "tiles.errors",
    "Stretch": "tiles.bands",
    "TIFF_SIGNATURES": "tiles.scene",
    "TILING_VERSION": "tiles.catalog",
    "TileReader": "tiles.reader",
    "TilesError": "tiles.errors",
    "TilingConfig": "tiles.config",
    "TilingError": "tiles.errors",
    "WINDOW_FIELDS": "tiles.grid",
    "build_catalog": "tiles.catalog",
    "catalog_tiling_version": "tiles.catalog",
    "check_gtiff": "tiles.scene",
    "check_scene_size": "tiles.limits",
    "clip_to_scene": "tiles.io",
    "count_tiles": "tiles.limits",
    "describe": "tiles.scene",
    "estimate_stretch": "tiles.bands",
    "grid_sizes": "tiles.grid",
    "open_scene": "tiles.scene",
    "quicklook": "tiles.overlay",
    "read_catalog": "tiles.catalog",
    "scene_footprints": "tiles.catalog",
    "select_rgb_bands": "tiles.bands",
    "summed_area_table": "tiles.grid",
    "table_valid_fractions": "tiles.grid",
    "tile_offsets": "tiles.grid",
    "tile_thumbnail": "tiles.overlay",
    "to_uint8": "tiles.bands",
    "write_catalog": "tiles.catalog",
    "write_quicklook_png": "tiles.overlay",
}

__all__ = [
    "CATALOG_KEY",
    "MAX_PIXELS",
    "MAX_TILES",
    "TIFF_SIGNATURES",
    "TILING_VERSION",
    "WINDOW_FIELDS",
    "AlignedTileReader",
    "AlphaBandIgnoredWarning",
    "BandSelectionError",
    "CatalogError",
    "NIRBandDroppedWarning",
    "NotGeoTiffError",
    "NotGeoreferencedError",
    "PixelGrid",
    "SceneInfo",
    "SceneOpenError",
    "SceneReadError",
    "SceneTooLargeError",
    "Stretch",
    "TileReader",
    "TilesError",
    "TilingConfig",
    "TilingError",
    "build_catalog",
    "catalog_tiling_version",
    "check_gtiff",
    "check_scene_size",
    "clip_to_scene",
    "count_tiles",
    "describe",
    "estimate_stretch",
    "grid_sizes",
    "open_scene",
    "quicklook",
    "read_catalog",
    "scene_footprints",
    "select_rgb_bands",
    "summed_area_table",
    "table_valid_fractions",
    "tile_offsets",
    "tile_thumbnail",
    "to_uint8",
    "write_catalog",
    "write_quicklook_png",
]


def __getattr__(name: str) -> object:
    """Import submodules on first use, so ``import tiles.atomic`` stays cheap (PEP 562)."""
    import importlib

    if name not in _EXPORTS:
        raise AttributeError(f"module 'tiles' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
