"""Exceptions and warnings raised by the tiles package.

Every error derives from :class:`TilesError`; most also derive from the builtin a generic
handler would expect (``OSError`` for files, ``ValueError`` for arguments), like rasterio's
``RasterioIOError(RasterioError, OSError)``.
"""


class TilesError(Exception):
    """Root of every error raised by the tiles package."""


class SceneOpenError(TilesError, OSError):
    """Raised when a scene file is missing, is not a raster, or is corrupt or truncated."""


class NotGeoTiffError(TilesError, ValueError):
    """Raised when a file that must be a GeoTIFF is another format, whatever its name says."""


class SceneReadError(TilesError, OSError):
    """Raised when pixels cannot be read from a scene that did open."""


class NotGeoreferencedError(TilesError, ValueError):
    """Raised when a scene has no CRS or no geotransform, so it cannot be put on a map."""


class BandSelectionError(TilesError, ValueError):
    """Raised when no RGB composite can be made from a scene's bands or the override."""


class TilingError(TilesError, ValueError):
    """Raised when tiling settings are invalid or a scene yields no usable tile."""


class SceneTooLargeError(TilingError):
    """Raised when a scene's header declares more pixels or tiles than the configured limits."""


class CatalogError(TilesError, ValueError):
    """Raised when a file is not a tile catalog written by this package."""


class RemoteRefusedError(TilesError, PermissionError):
    """Raised when a URL is not on the allow-list, reaches a private address or carries secrets."""


class RemoteReadError(TilesError, OSError):
    """Raised when a remote scene cannot be reached or does not answer like a COG server."""


class NoOverviewsWarning(UserWarning):
    """Raised when a remote scene has no overviews, so coarse tiles read full-resolution bytes."""


class AlphaBandIgnoredWarning(UserWarning):
    """Raised when a band tagged alpha holds image data and is used neither as mask nor colour."""


class NIRBandDroppedWarning(UserWarning):
    """Raised when a 4th band without colour tags is assumed to be near-infrared and left out."""


class SourceChangedError(TilesError, OSError):
    """Raised when a scene's file is not the one that was ingested (replaced or rewritten)."""
